//! Text (§6.2.2.2 A-a "text: tokenisation, syntactic perturbation"; §6.2.3.4 Pre-a).
//!
//! - [`TextTokenizer`]: trains WordPiece (BERT style) or BPE (byte-level or
//!   whitespace) vocabularies offline from in-memory texts or files, saves and
//!   loads `tokenizer.json`, encodes and decodes. Built on the `tokenizers` crate.
//! - [`Tokenize`]: the transform that turns an [`Input::Text`](crate::Input::Text)
//!   into [`Input::Tokens`](crate::Input::Tokens) with truncation, padding and
//!   optional `[CLS]`/`[SEP]` wrapping.
//! - Word-level syntactic perturbations (EDA style): [`RandomSwap`],
//!   [`RandomDeletion`], [`RandomInsertion`], [`SynonymReplacement`], plus
//!   [`Truncate`].
//! - [`WordByWord`]: a dictionary's word-by-word translation, the baseline
//!   of translation models.
//! - [`register_text_transforms`]: registers all of them in a transform
//!   [`Registry`](crate::transform::Registry) so that pipelines can name them
//!   in TOML:
//!
//! ```toml
//! [[transforms]]
//! type = "custom"
//! name = "synonym_replacement"
//! params = { n = 1, synonyms = { quick = ["fast", "speedy"] } }
//! [[transforms]]
//! type = "custom"
//! name = "random_swap"
//! params = { n = 2 }
//! [[transforms]]
//! type = "custom"
//! name = "tokenize"
//! params = { tokenizer = "tokenizer.json", max_length = 32, pad = true, add_special_tokens = true }
//! ```
//!
//! Perturbations split text on whitespace and join the words back with single
//! spaces. Randomness comes only from the `rng` argument of
//! [`Transform::apply`](crate::Transform::apply), so a seeded pipeline is
//! reproducible.

mod config;
mod perturb;
mod tokenizer;
mod word_by_word;

pub use config::{load_synonyms, register_text_transforms};
pub use perturb::{
    RandomDeletion, RandomInsertion, RandomSwap, SynonymReplacement, Synonyms, Truncate,
};
pub use tokenizer::{
    BpeKind, CLS, Corpus, MASK, PAD, SEP, SPECIAL_TOKENS, TextTokenizer, Tokenize, TokenizeOptions,
    UNK,
};
pub use word_by_word::WordByWord;
