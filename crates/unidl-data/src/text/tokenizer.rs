//! Tokenisers (WordPiece, BPE) trained offline, saved as `tokenizer.json`, and
//! the [`Tokenize`] transform (§6.2.3.4 Pre-a).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ahash::AHashMap;
use compact_str::CompactString;
use tokenizers::decoders::bpe::BPEDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::ModelWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::unigram::{Unigram, UnigramTrainerBuilder};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::normalizers::unicode::NFKC;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{
    AddedToken, Model, NormalizedString, Normalizer, OffsetReferential, OffsetType,
    PreTokenizedString, PreTokenizer, Tokenizer,
};

use crate::error::{DataError, Result};
use crate::sample::{Input, Sample};
use crate::transform::{Rng, Transform};

/// Padding token.
pub const PAD: &str = "[PAD]";
/// Unknown-word token.
pub const UNK: &str = "[UNK]";
/// Start-of-sequence (classification) token.
pub const CLS: &str = "[CLS]";
/// Separator / end-of-sequence token.
pub const SEP: &str = "[SEP]";
/// Masked-language-model token.
pub const MASK: &str = "[MASK]";
/// The BERT special tokens, in the order they get ids 0..5 when passed to a trainer.
pub const SPECIAL_TOKENS: [&str; 5] = [PAD, UNK, CLS, SEP, MASK];

/// Suffix the whitespace BPE model appends to the last piece of each word,
/// so that decoding can put the spaces back.
const END_OF_WORD: &str = "</w>";

/// What a tokeniser is trained on.
#[derive(Debug, Clone, PartialEq)]
pub enum Corpus {
    /// In-memory texts, one training sequence each.
    Texts(Vec<String>),
    /// UTF-8 text files, one training sequence per line.
    Files(Vec<PathBuf>),
}

impl Corpus {
    /// A corpus of in-memory texts.
    pub fn texts<I, S>(texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Corpus::Texts(texts.into_iter().map(Into::into).collect())
    }

    /// A corpus of text files.
    pub fn files<I, P>(files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Corpus::Files(files.into_iter().map(Into::into).collect())
    }

    /// The training sequences; a missing or non-UTF-8 file is an error naming it.
    fn sequences(&self) -> Result<Vec<String>> {
        match self {
            Corpus::Texts(t) => Ok(t.clone()),
            Corpus::Files(files) => {
                let mut out = Vec::new();
                for f in files {
                    let text = std::fs::read_to_string(f).map_err(|e| DataError::io(f, e))?;
                    out.extend(text.lines().map(str::to_string));
                }
                Ok(out)
            }
        }
    }
}

/// How a BPE tokeniser splits text into words before merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BpeKind {
    /// GPT-2 style: text is mapped to bytes first, so no input is ever unknown
    /// and decoding gives back the exact text.
    #[default]
    ByteLevel,
    /// Words and punctuation runs (`\w+|[^\w\s]+`); characters never seen in
    /// training become `[UNK]` when it is among the special tokens. Decoding
    /// puts one space between words (and before punctuation).
    Whitespace,
}

/// A trained or loaded tokeniser (a wrapper of `tokenizers::Tokenizer`).
///
/// ```no_run
/// use unidl_data::text::{Corpus, SPECIAL_TOKENS, TextTokenizer};
/// let corpus = Corpus::texts(["the cat sat on the mat", "the dog ate the bone"]);
/// let tok = TextTokenizer::train_wordpiece(&corpus, 200, 1, &SPECIAL_TOKENS)?;
/// let ids = tok.encode("The cat ate.")?;
/// assert_eq!(tok.decode(&ids)?, "the cat ate.");
/// tok.save("tokenizer.json")?;
/// let again = TextTokenizer::load("tokenizer.json")?;
/// assert_eq!(again.encode("The cat ate.")?, ids);
/// # Ok::<(), unidl_data::DataError>(())
/// ```
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// Where it came from, for error messages.
    origin: String,
}

impl fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("origin", &self.origin)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

fn check_training(vocab_size: usize, special_tokens: &[&str]) -> Result<Vec<AddedToken>> {
    if vocab_size == 0 {
        return Err(DataError::config("vocab_size", "must be positive"));
    }
    if vocab_size < special_tokens.len() {
        return Err(DataError::config(
            "vocab_size",
            format!(
                "{vocab_size} is smaller than the {} special tokens",
                special_tokens.len()
            ),
        ));
    }
    if let Some(t) = special_tokens.iter().find(|t| t.trim().is_empty()) {
        return Err(DataError::config(
            "special_tokens",
            format!("{t:?} is not a token"),
        ));
    }
    Ok(special_tokens
        .iter()
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect())
}

/// Seeds of the word-count map handed to the trainer: the `tokenizers`
/// trainers give ids (and break ties between equally frequent merges) in the
/// iteration order of that map, so a fixed hasher makes training reproducible.
const WORD_COUNT_SEEDS: [u64; 4] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
];

fn training_error(what: &str, e: impl fmt::Display) -> DataError {
    DataError::Invalid {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Counts the words of `corpus` as `tokenizer`'s normaliser and pre-tokeniser
/// split them, in a map with a fixed hasher filled in sorted order.
fn word_counts(
    tokenizer: &Tokenizer,
    corpus: &Corpus,
    what: &str,
) -> Result<AHashMap<CompactString, u64>> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for sequence in corpus.sequences()? {
        let mut normalized = NormalizedString::from(sequence.as_str());
        if let Some(n) = tokenizer.get_normalizer() {
            n.normalize(&mut normalized)
                .map_err(|e| training_error(what, e))?;
        }
        let mut split = PreTokenizedString::from(normalized);
        if let Some(p) = tokenizer.get_pre_tokenizer() {
            p.pre_tokenize(&mut split)
                .map_err(|e| training_error(what, e))?;
        }
        for (word, _, _) in split.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *counts.entry(word.to_string()).or_default() += 1;
        }
    }
    let [k0, k1, k2, k3] = WORD_COUNT_SEEDS;
    let mut map = AHashMap::with_hasher(ahash::RandomState::with_seeds(k0, k1, k2, k3));
    for (word, count) in counts {
        map.insert(CompactString::from(word), count);
    }
    Ok(map)
}

/// The trained unigram model with a reproducible order: `tokenizers` 0.23
/// appends characters the EM pruned away with scores rising by 1e-4 in the
/// iteration order of a hash set (different in every process); they are
/// given those scores again in character order, and ties are broken by
/// the piece, so the same corpus always gives the same ids.
fn canonical_unigram(model: &Unigram, n_special: usize) -> std::result::Result<Unigram, String> {
    let vocab: Vec<(String, f64)> = model.iter().map(|(p, s)| (p.clone(), *s)).collect();
    let (specials, pieces) = vocab.split_at(n_special.min(vocab.len()));
    let mut pieces = pieces.to_vec();
    // The re-added characters: the lowest scores, spaced by the trainer's
    // penalty step from the lowest one.
    const STEP: f64 = 1e-4;
    let lowest = pieces.iter().map(|(_, s)| *s).fold(f64::INFINITY, f64::min);
    let mut added: Vec<usize> = Vec::new();
    for k in 0.. {
        let target = lowest + STEP * k as f64;
        let hit = pieces.iter().enumerate().position(|(i, (p, s))| {
            (s - target).abs() < STEP * 1e-3 && p.chars().count() == 1 && !added.contains(&i)
        });
        match hit {
            Some(i) => added.push(i),
            None => break,
        }
    }
    let mut chars: Vec<String> = added.iter().map(|&i| pieces[i].0.clone()).collect();
    chars.sort();
    for (k, (&i, c)) in added.iter().zip(&chars).enumerate() {
        pieces[i] = (c.clone(), lowest + STEP * k as f64);
    }
    pieces.sort_by(|(pa, a), (pb, b)| b.total_cmp(a).then_with(|| pa.cmp(pb)));
    let unk = model.token_to_id(UNK).map(|i| i as usize);
    Unigram::from(
        specials.iter().cloned().chain(pieces).collect(),
        unk,
        model.byte_fallback(),
    )
    .map_err(|e| e.to_string())
}

/// Puts `model` into `tokenizer` and registers the special tokens.
fn finish(
    mut tokenizer: Tokenizer,
    model: impl Into<ModelWrapper>,
    specials: Vec<AddedToken>,
    what: &str,
) -> Result<TextTokenizer> {
    tokenizer.with_model(model);
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| training_error(what, e))?;
    Ok(TextTokenizer {
        inner: tokenizer,
        origin: what.to_string(),
    })
}

impl TextTokenizer {
    /// Trains a BERT-style WordPiece tokeniser: lower-cased, accents stripped,
    /// split on whitespace and punctuation, sub-words prefixed with `##`.
    ///
    /// `vocab_size` counts special tokens and the alphabet; pieces seen fewer
    /// than `min_frequency` times are not merged. `special_tokens` get the
    /// first ids in the order given and must include [`UNK`] (pass
    /// [`SPECIAL_TOKENS`] for the usual BERT set).
    ///
    /// Training is reproducible: the same corpus and settings give the same
    /// vocabulary and ids in every run.
    pub fn train_wordpiece(
        corpus: &Corpus,
        vocab_size: usize,
        min_frequency: u64,
        special_tokens: &[&str],
    ) -> Result<Self> {
        let specials = check_training(vocab_size, special_tokens)?;
        if !special_tokens.contains(&UNK) {
            return Err(DataError::config(
                "special_tokens",
                format!("a WordPiece tokeniser needs {UNK} among its special tokens"),
            ));
        }
        let what = "wordpiece training";
        let mut tokenizer = Tokenizer::new(WordPiece::default());
        tokenizer
            .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .map_err(|e| training_error(what, e))?;
        tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
        tokenizer.with_decoder(Some(WordPieceDecoder::new("##".to_string(), true)));
        // WordPiece vocabularies are learnt as BPE merges with a `##` prefix
        // on word-inner pieces (what `WordPieceTrainer` does inside).
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .special_tokens(specials.clone())
            .continuing_subword_prefix("##".to_string())
            .show_progress(false)
            .build();
        let mut bpe = BPE::default();
        trainer
            .do_train(&word_counts(&tokenizer, corpus, what)?, &mut bpe)
            .map_err(|e| training_error(what, e))?;
        // unknown token `[UNK]`, prefix `##`
        let model = WordPiece::from_bpe(&bpe);
        finish(tokenizer, model, specials, what)
    }

    /// Trains a BPE tokeniser, byte-level (GPT-2 style, exact round trip, no
    /// unknown input) or on whitespace/punctuation-split words (see [`BpeKind`]).
    ///
    /// `vocab_size` counts special tokens and the alphabet (256 symbols for
    /// byte level); `special_tokens` get the first ids in the order given.
    /// Training is reproducible, as for [`train_wordpiece`](Self::train_wordpiece).
    pub fn train_bpe(
        corpus: &Corpus,
        vocab_size: usize,
        min_frequency: u64,
        special_tokens: &[&str],
        kind: BpeKind,
    ) -> Result<Self> {
        let specials = check_training(vocab_size, special_tokens)?;
        let what = "bpe training";
        let builder = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .special_tokens(specials.clone())
            .show_progress(false);
        let (tokenizer, trainer, mut model) = match kind {
            BpeKind::ByteLevel => {
                let mut tokenizer = Tokenizer::new(BPE::default());
                let byte_level = ByteLevel::new(false, true, true);
                tokenizer.with_pre_tokenizer(Some(byte_level));
                tokenizer.with_decoder(Some(byte_level));
                let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
                let trainer = builder.initial_alphabet(alphabet).build();
                (tokenizer, trainer, BPE::default())
            }
            BpeKind::Whitespace => {
                let mut model = BPE::builder().end_of_word_suffix(END_OF_WORD.to_string());
                if special_tokens.contains(&UNK) {
                    model = model.unk_token(UNK.to_string());
                }
                let model = model.build().map_err(|e| training_error(what, e))?;
                let mut tokenizer = Tokenizer::new(BPE::default());
                tokenizer.with_pre_tokenizer(Some(Whitespace));
                tokenizer.with_decoder(Some(BPEDecoder::new(END_OF_WORD.to_string())));
                let trainer = builder.end_of_word_suffix(END_OF_WORD.to_string()).build();
                (tokenizer, trainer, model)
            }
        };
        trainer
            .do_train(&word_counts(&tokenizer, corpus, what)?, &mut model)
            .map_err(|e| training_error(what, e))?;
        finish(tokenizer, model, specials, what)
    }

    /// Trains a SentencePiece-style unigram tokeniser (T5's kind): NFKC
    /// normalisation, words marked by a leading `▁` (so decoding restores the
    /// spacing exactly, case and accents kept), pieces chosen by the unigram
    /// language model's EM and pruning (Kudo 2018).
    ///
    /// `vocab_size` counts the special tokens, which get the first ids in the
    /// order given and must include [`UNK`] (characters never seen become it).
    /// Training is reproducible, as for [`train_wordpiece`](Self::train_wordpiece);
    /// `min_frequency` drops words seen fewer times from the training counts.
    pub fn train_unigram(
        corpus: &Corpus,
        vocab_size: usize,
        min_frequency: u64,
        special_tokens: &[&str],
    ) -> Result<Self> {
        let specials = check_training(vocab_size, special_tokens)?;
        if !special_tokens.contains(&UNK) {
            return Err(DataError::config(
                "special_tokens",
                format!("a unigram tokeniser needs {UNK} among its special tokens"),
            ));
        }
        let what = "unigram training";
        let mut tokenizer = Tokenizer::new(Unigram::default());
        tokenizer
            .with_normalizer(Some(NFKC))
            .map_err(|e| training_error(what, e))?;
        let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
        tokenizer.with_pre_tokenizer(Some(metaspace.clone()));
        tokenizer.with_decoder(Some(metaspace));
        let trainer = UnigramTrainerBuilder::default()
            .vocab_size(u32::try_from(vocab_size).map_err(|_| {
                DataError::config("vocab_size", format!("{vocab_size} is too large"))
            })?)
            .special_tokens(specials.clone())
            .unk_token(Some(UNK.to_string()))
            .show_progress(false)
            .build()
            .map_err(|e| training_error(what, e))?;
        // Sorted (word, count) pairs: the trainer's seeds and EM follow the
        // order it is given.
        let mut sentences: Vec<(String, u32)> = word_counts(&tokenizer, corpus, what)?
            .into_iter()
            .filter(|(_, c)| *c >= min_frequency)
            .map(|(w, c)| (w.to_string(), u32::try_from(c).unwrap_or(u32::MAX)))
            .collect();
        sentences.sort();
        if sentences.is_empty() {
            return Err(training_error(
                what,
                format!("no word is seen {min_frequency} times or more"),
            ));
        }
        let mut model = Unigram::default();
        trainer
            .do_train(sentences, &mut model)
            .map_err(|e| training_error(what, e))?;
        let model =
            canonical_unigram(&model, special_tokens.len()).map_err(|e| training_error(what, e))?;
        finish(tokenizer, model, specials, what)
    }

    /// Wraps any `tokenizers::Tokenizer` (e.g. one built by hand).
    pub fn from_tokenizer(inner: Tokenizer) -> Self {
        TextTokenizer {
            inner,
            origin: "tokenizer".to_string(),
        }
    }

    /// The wrapped `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Writes `tokenizer.json` (the `tokenizers` format, pretty-printed).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self.inner.to_string(true).map_err(|e| DataError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("cannot serialise the tokenizer: {e}"),
        })?;
        std::fs::write(path, json).map_err(|e| DataError::io(path, e))
    }

    /// Reads a `tokenizer.json` (its padding and truncation settings
    /// dropped: collation pads, [`Tokenize`] cuts). A missing file is [`DataError::NotFound`],
    /// invalid JSON [`DataError::Parse`] (with its line) and JSON that is not
    /// a tokenizer [`DataError::Corrupt`], each naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        // `tokenizers` 0.23 panics (`expect("Helper")` in its decoder's
        // `Deserialize`) when the `decoder` value is not well-formed JSON,
        // so the syntax is checked first, without building anything.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: Some(e.line()),
                reason: e.to_string(),
            });
        }
        let inner: Tokenizer = serde_json::from_str(&text).map_err(|e| match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                DataError::Parse {
                    path: path.to_path_buf(),
                    line: Some(e.line()),
                    reason: e.to_string(),
                }
            }
            _ => DataError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("not a tokenizer.json: {e}"),
            },
        })?;
        // Batches are padded by collation (to the batch's longest text) and
        // cut by `Tokenize`'s `max_length`, so padding and truncation saved in
        // the file (all-MiniLM-L6-v2's pad and cut every text to 128) are
        // dropped: one place decides a text's length, the run config.
        let mut inner = inner;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| DataError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("cannot drop its truncation: {e}"),
            })?;
        Ok(TextTokenizer {
            inner,
            origin: path.display().to_string(),
        })
    }

    /// Token ids of `text`, without special tokens (no `[CLS]`/`[SEP]`,
    /// whatever post-processor a loaded file declares; see [`Tokenize`]).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| DataError::Invalid {
                what: format!("tokenizer ({})", self.origin),
                reason: format!("cannot encode {text:?}: {e}"),
            })
    }

    /// Token ids of `text` with the special tokens the file's post-processor
    /// adds (BERT's `[CLS] … [SEP]`): what a pretrained model was trained on.
    pub fn encode_with_special_tokens(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, true)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| DataError::Invalid {
                what: format!("tokenizer ({})", self.origin),
                reason: format!("cannot encode {text:?}: {e}"),
            })
    }

    /// The text of `ids`, skipping special tokens (padding, `[CLS]`, …).
    /// WordPiece gives lower-cased text with BERT spacing around punctuation.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        // Some decoders (BPE) cannot take an empty token list: answer "" for
        // ids that are all special or unknown.
        let added = self.inner.get_added_vocabulary();
        let any_text = ids.iter().any(|id| {
            self.inner
                .id_to_token(*id)
                .is_some_and(|t| !added.is_special_token(&t))
        });
        if !any_text {
            return Ok(String::new());
        }
        self.inner
            .decode(ids, true)
            .map_err(|e| DataError::Invalid {
                what: format!("tokenizer ({})", self.origin),
                reason: format!("cannot decode {ids:?}: {e}"),
            })
    }

    /// Number of tokens, special and added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token of `id`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Id of [`PAD`].
    pub fn pad_id(&self) -> Option<u32> {
        self.token_to_id(PAD)
    }

    /// Id of [`UNK`].
    pub fn unk_id(&self) -> Option<u32> {
        self.token_to_id(UNK)
    }

    /// Id of [`CLS`].
    pub fn cls_id(&self) -> Option<u32> {
        self.token_to_id(CLS)
    }

    /// Id of [`SEP`].
    pub fn sep_id(&self) -> Option<u32> {
        self.token_to_id(SEP)
    }

    /// Id of [`MASK`].
    pub fn mask_id(&self) -> Option<u32> {
        self.token_to_id(MASK)
    }
}

/// Options of [`Tokenize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizeOptions {
    /// Name of the [`Input::Text`] to read (default `"text"`).
    pub input: String,
    /// Name of the [`Input::Tokens`] to write (default `"tokens"`; the input
    /// is replaced when both names are equal).
    pub output: String,
    /// Longest output, special tokens included; longer sequences are cut at the end.
    pub max_length: Option<usize>,
    /// Pad with the [`PAD`] id up to `max_length` (which must be set).
    pub pad: bool,
    /// Wrap as `[CLS] … [SEP]`.
    pub add_special_tokens: bool,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        TokenizeOptions {
            input: "text".to_string(),
            output: "tokens".to_string(),
            max_length: None,
            pad: false,
            add_special_tokens: false,
        }
    }
}

/// Text → token ids (§6.2.3.4 Pre-a): reads the [`Input::Text`] named
/// `input`, writes [`Input::Tokens`] under `output`, optionally wrapped as
/// `[CLS] … [SEP]`, truncated to `max_length` and padded to it with `[PAD]`.
/// Uses no randomness.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use unidl_data::text::{TextTokenizer, Tokenize, TokenizeOptions};
/// let tok = Arc::new(TextTokenizer::load("tokenizer.json")?);
/// // "the cat sat" → [CLS] the cat sat [SEP] [PAD] [PAD] [PAD]
/// let t = Tokenize::new(tok, TokenizeOptions {
///     max_length: Some(8),
///     pad: true,
///     add_special_tokens: true,
///     ..TokenizeOptions::default()
/// })?;
/// # Ok::<(), unidl_data::DataError>(())
/// ```
///
/// In TOML (after [`register_text_transforms`](super::register_text_transforms)):
/// `{ type = "custom", name = "tokenize", params = { tokenizer = "tokenizer.json", max_length = 8, pad = true, add_special_tokens = true } }`.
#[derive(Debug, Clone)]
pub struct Tokenize {
    tokenizer: Arc<TextTokenizer>,
    options: TokenizeOptions,
    pad_id: Option<u32>,
    wrap: Option<(u32, u32)>,
}

impl Tokenize {
    /// Checks the options against the tokeniser: padding needs `max_length`
    /// and a `[PAD]` token; wrapping needs `[CLS]`, `[SEP]` and a
    /// `max_length` of at least 2.
    pub fn new(tokenizer: Arc<TextTokenizer>, options: TokenizeOptions) -> Result<Self> {
        if options.max_length == Some(0) {
            return Err(DataError::config("tokenize.max_length", "must be positive"));
        }
        let pad_id = if options.pad {
            if options.max_length.is_none() {
                return Err(DataError::config(
                    "tokenize.pad",
                    "padding needs `max_length`",
                ));
            }
            Some(tokenizer.pad_id().ok_or_else(|| {
                DataError::config("tokenize.pad", format!("the tokenizer has no {PAD} token"))
            })?)
        } else {
            None
        };
        let wrap = if options.add_special_tokens {
            if options.max_length.is_some_and(|m| m < 2) {
                return Err(DataError::config(
                    "tokenize.max_length",
                    format!("must be at least 2 to hold {CLS} and {SEP}"),
                ));
            }
            match (tokenizer.cls_id(), tokenizer.sep_id()) {
                (Some(c), Some(s)) => Some((c, s)),
                _ => {
                    return Err(DataError::config(
                        "tokenize.add_special_tokens",
                        format!("the tokenizer lacks {CLS} or {SEP}"),
                    ));
                }
            }
        } else {
            None
        };
        Ok(Tokenize {
            tokenizer,
            options,
            pad_id,
            wrap,
        })
    }

    /// The tokeniser.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The options.
    pub fn options(&self) -> &TokenizeOptions {
        &self.options
    }

    /// Ids of `text` after wrapping, truncation and padding.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self
            .tokenizer
            .encode(text)
            .map_err(|e| DataError::transform("tokenize", e.to_string()))?;
        let max = self.options.max_length;
        if let Some((cls, sep)) = self.wrap {
            if let Some(m) = max {
                ids.truncate(m - 2);
            }
            ids.insert(0, cls);
            ids.push(sep);
        } else if let Some(m) = max {
            ids.truncate(m);
        }
        if let (Some(pad), Some(m)) = (self.pad_id, max) {
            ids.resize(m, pad);
        }
        Ok(ids)
    }
}

impl Transform for Tokenize {
    fn name(&self) -> &str {
        "tokenize"
    }

    fn apply(&self, mut sample: Sample, _rng: &mut Rng) -> Result<Sample> {
        let ids = match sample.inputs.get(&self.options.input) {
            Some(Input::Text(t)) => self.ids(t)?,
            Some(_) => {
                return Err(DataError::transform(
                    "tokenize",
                    format!(
                        "{}: input `{}` is not text",
                        sample.source, self.options.input
                    ),
                ));
            }
            None => {
                return Err(DataError::transform(
                    "tokenize",
                    format!("{}: no input `{}`", sample.source, self.options.input),
                ));
            }
        };
        sample
            .inputs
            .insert(self.options.output.clone(), Input::Tokens(ids));
        Ok(sample)
    }
}
