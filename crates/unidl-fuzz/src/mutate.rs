//! Deterministic mutations of seed files.
//!
//! Case `i` of a run is a pure function of (seed, target name, `i`): the
//! mutator draws from a ChaCha stream keyed by those three, picks a seed file
//! and applies several mutations to a copy of it. The driver therefore never
//! needs the bytes a worker was running when it died: it recomputes them
//! from the case index.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Largest case, in bytes: insertions and duplications stop growing a case
/// past this (readers are not meant to be fuzzed with huge files; size
/// limits are tested by declaring sizes, not by writing them).
pub const MAX_CASE_LEN: usize = 1 << 20;

/// Most mutations applied to one case.
pub const MAX_MUTATIONS: u32 = 8;

/// The kinds of mutation, in the order [`Mutator`] numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// Flip one bit.
    BitFlip,
    /// Set one byte to 0, 0xFF, 0x7F, 0x80, 0x01 or 0xFE.
    InterestingByte,
    /// Overwrite 2, 4 or 8 bytes with an extreme integer (0, 1, -1, the
    /// signed and unsigned maxima and minima), little- or big-endian.
    InterestingInt,
    /// Overwrite one byte with a random value.
    RandomByte,
    /// Add or subtract a small amount (1..=16) to a byte or a little-endian
    /// u32 (lengths and counts that become off by a few).
    Arithmetic,
    /// Cut the case at a random length.
    Truncate,
    /// Remove a run of bytes.
    DeleteRun,
    /// Insert a run of random bytes or of one repeated byte.
    InsertRun,
    /// Copy a run of the case to another position (repeated records, nested
    /// structures opened twice).
    DuplicateRun,
    /// The start of this case followed by the end of another seed file.
    Splice,
    /// Insert or overwrite with a token of the target's dictionary (format
    /// keywords, numbers such as `-1` and `1e308`, brackets and quotes).
    Token,
}

/// Every mutation kind.
pub const ALL_MUTATIONS: [Mutation; 11] = [
    Mutation::BitFlip,
    Mutation::InterestingByte,
    Mutation::InterestingInt,
    Mutation::RandomByte,
    Mutation::Arithmetic,
    Mutation::Truncate,
    Mutation::DeleteRun,
    Mutation::InsertRun,
    Mutation::DuplicateRun,
    Mutation::Splice,
    Mutation::Token,
];

const INTERESTING_BYTES: [u8; 6] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE];

const INTERESTING_INTS: [u64; 12] = [
    0,
    1,
    u64::MAX,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x7FFF_FFFF_FFFF_FFFF,
];

/// Tokens every target's dictionary gets: numbers that break sizes and
/// indices, and the delimiters of the text formats.
pub const COMMON_TOKENS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"18446744073709551615",
    b"99999999999999999999",
    b"1e308",
    b"-1e308",
    b"NaN",
    b"inf",
    b"\"",
    b"'",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"\n",
    b"\0",
    b"\xff\xfe",
];

/// A deterministic mutator over a target's seed files.
#[derive(Debug, Clone)]
pub struct Mutator<'a> {
    seeds: &'a [Vec<u8>],
    tokens: Vec<&'a [u8]>,
    key: u64,
}

impl<'a> Mutator<'a> {
    /// A mutator for `seeds` (at least one) with the target's own `tokens`
    /// added to [`COMMON_TOKENS`]; `seed` and `target` key the random stream.
    pub fn new(seeds: &'a [Vec<u8>], tokens: &'a [&'a [u8]], seed: u64, target: &str) -> Self {
        assert!(!seeds.is_empty(), "a mutator needs at least one seed file");
        let mut all: Vec<&[u8]> = COMMON_TOKENS.to_vec();
        all.extend_from_slice(tokens);
        Mutator {
            seeds,
            tokens: all,
            key: splitmix(seed ^ fnv1a(target.as_bytes())),
        }
    }

    /// The bytes of case `index`. Case 0.. of every run start with the seed
    /// files themselves, unmutated (`index < seeds.len()`), so that a reader
    /// that fails on a good file is caught first.
    pub fn case(&self, index: u64) -> Vec<u8> {
        let n_seeds = self.seeds.len() as u64;
        if index < n_seeds {
            return self.seeds[index as usize].clone();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix(self.key ^ splitmix(index)));
        let mut data = self.seeds[rng.random_range(0..self.seeds.len())].clone();
        // Mostly few mutations (a file close to valid goes deeper into a
        // reader), sometimes many.
        let count = 1 + rng
            .random_range(0..MAX_MUTATIONS)
            .min(rng.random_range(0..MAX_MUTATIONS));
        for _ in 0..count {
            let m = ALL_MUTATIONS[rng.random_range(0..ALL_MUTATIONS.len())];
            self.apply(m, &mut data, &mut rng);
        }
        data.truncate(MAX_CASE_LEN);
        data
    }

    /// Applies one mutation in place.
    pub fn apply(&self, m: Mutation, data: &mut Vec<u8>, rng: &mut impl RngCore) {
        let len = data.len();
        match m {
            Mutation::BitFlip if len > 0 => {
                let p = rng.random_range(0..len);
                data[p] ^= 1 << rng.random_range(0..8);
            }
            Mutation::InterestingByte if len > 0 => {
                let p = rng.random_range(0..len);
                data[p] = INTERESTING_BYTES[rng.random_range(0..INTERESTING_BYTES.len())];
            }
            Mutation::InterestingInt if len > 0 => {
                let width = [2usize, 4, 8][rng.random_range(0..3)];
                let mut v = INTERESTING_INTS[rng.random_range(0..INTERESTING_INTS.len())];
                if rng.random_bool(0.25) {
                    // The signed minimum of this width.
                    v = 1u64 << (width * 8 - 1);
                }
                let bytes = if rng.random_bool(0.5) {
                    v.to_le_bytes()
                } else {
                    (v << (64 - width * 8)).to_be_bytes()
                };
                let p = rng.random_range(0..len);
                let w = width.min(len - p);
                data[p..p + w].copy_from_slice(&bytes[..w]);
            }
            Mutation::RandomByte if len > 0 => {
                let p = rng.random_range(0..len);
                data[p] = rng.random();
            }
            Mutation::Arithmetic if len > 0 => {
                let delta = rng.random_range(1..=16u32);
                let down = rng.random_bool(0.5);
                let p = rng.random_range(0..len);
                if len - p >= 4 && rng.random_bool(0.5) {
                    let mut w = [0u8; 4];
                    w.copy_from_slice(&data[p..p + 4]);
                    let x = u32::from_le_bytes(w);
                    let x = if down {
                        x.wrapping_sub(delta)
                    } else {
                        x.wrapping_add(delta)
                    };
                    data[p..p + 4].copy_from_slice(&x.to_le_bytes());
                } else {
                    let d = delta as u8;
                    data[p] = if down {
                        data[p].wrapping_sub(d)
                    } else {
                        data[p].wrapping_add(d)
                    };
                }
            }
            Mutation::Truncate if len > 0 => {
                let at = rng.random_range(0..len);
                data.truncate(at);
            }
            Mutation::DeleteRun if len > 1 => {
                let (p, n) = run(rng, len);
                data.drain(p..p + n);
            }
            Mutation::InsertRun => {
                let n = short_len(rng);
                let p = rng.random_range(0..=len);
                let bytes: Vec<u8> = if rng.random_bool(0.5) {
                    (0..n).map(|_| rng.random()).collect()
                } else {
                    let b = if rng.random_bool(0.5) {
                        INTERESTING_BYTES[rng.random_range(0..INTERESTING_BYTES.len())]
                    } else {
                        rng.random()
                    };
                    vec![b; n]
                };
                insert(data, p, &bytes);
            }
            Mutation::DuplicateRun if len > 0 => {
                let (p, n) = run(rng, len);
                let copy = data[p..p + n].to_vec();
                // Right after itself half the time (a record repeated),
                // anywhere otherwise.
                let at = if rng.random_bool(0.5) {
                    p + n
                } else {
                    rng.random_range(0..=len)
                };
                let times = if rng.random_bool(0.2) {
                    rng.random_range(2..=16)
                } else {
                    1
                };
                for _ in 0..times {
                    insert(data, at, &copy);
                }
            }
            Mutation::Splice => {
                let other = &self.seeds[rng.random_range(0..self.seeds.len())];
                if other.is_empty() {
                    return;
                }
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..other.len());
                data.truncate(cut);
                let room = MAX_CASE_LEN.saturating_sub(data.len());
                let end = other.len().min(from + room);
                data.extend_from_slice(&other[from..end]);
            }
            Mutation::Token => {
                let t = self.tokens[rng.random_range(0..self.tokens.len())];
                let p = rng.random_range(0..=len);
                if rng.random_bool(0.5) || p + t.len() > len {
                    insert(data, p, t);
                } else {
                    data[p..p + t.len()].copy_from_slice(t);
                }
            }
            // A mutation that needs bytes, on an empty case: grow it instead.
            _ => {
                let b: u8 = rng.random();
                data.push(b);
            }
        }
    }
}

/// A random run `(start, length)` inside `len > 0` bytes, mostly short.
fn run(rng: &mut impl RngCore, len: usize) -> (usize, usize) {
    let p = rng.random_range(0..len);
    let n = short_len(rng).min(len - p).max(1);
    (p, n)
}

/// A run length: 1–8 bytes most of the time, up to 4 KiB sometimes.
fn short_len(rng: &mut impl RngCore) -> usize {
    if rng.random_bool(0.8) {
        rng.random_range(1..=8)
    } else {
        rng.random_range(1..=4096)
    }
}

fn insert(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    if data.len() + bytes.len() > MAX_CASE_LEN {
        return;
    }
    let at = at.min(data.len());
    data.splice(at..at, bytes.iter().copied());
}

/// SplitMix64 finaliser: spreads nearby keys over the whole seed space.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a of a target name (stable across runs and platforms).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> Vec<Vec<u8>> {
        vec![b"hello world, a seed file".to_vec(), vec![0u8; 64]]
    }

    #[test]
    fn a_case_is_a_function_of_seed_target_and_index() {
        let s = seeds();
        let a = Mutator::new(&s, &[], 7, "t");
        let b = Mutator::new(&s, &[], 7, "t");
        for i in 0..200 {
            assert_eq!(a.case(i), b.case(i));
        }
        let other_seed = Mutator::new(&s, &[], 8, "t");
        let other_target = Mutator::new(&s, &[], 7, "u");
        let differ = |m: &Mutator| (2..200).filter(|&i| m.case(i) != a.case(i)).count();
        assert!(differ(&other_seed) > 150);
        assert!(differ(&other_target) > 150);
    }

    #[test]
    fn the_first_cases_are_the_seed_files() {
        let s = seeds();
        let m = Mutator::new(&s, &[], 1, "t");
        assert_eq!(m.case(0), s[0]);
        assert_eq!(m.case(1), s[1]);
        assert!((2..50).any(|i| m.case(i) != s[0] && m.case(i) != s[1]));
    }

    #[test]
    fn every_mutation_keeps_cases_within_the_size_cap_and_handles_empty_input() {
        let s = seeds();
        let m = Mutator::new(&s, &[b"token"], 3, "t");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for kind in ALL_MUTATIONS {
            for _ in 0..200 {
                let mut d = Vec::new();
                m.apply(kind, &mut d, &mut rng);
                let mut d = s[0].clone();
                m.apply(kind, &mut d, &mut rng);
                assert!(d.len() <= MAX_CASE_LEN);
            }
        }
        let big = vec![vec![1u8; MAX_CASE_LEN]];
        let m = Mutator::new(&big, &[], 3, "t");
        for i in 1..40 {
            assert!(m.case(i).len() <= MAX_CASE_LEN);
        }
    }
}
