//! Module API (A.2) — see below.
