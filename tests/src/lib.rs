//! Cross-back-end conformance suite.
