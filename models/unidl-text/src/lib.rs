//! # unidl-text — the text model zoo (T/AII 008 §6.3.2)
//!
//! | task | model | module |
//! |---|---|---|
//! | text classification | TextCNN (Kim 2014) | [`textcnn`] |
//! | similarity, classification, masked-token filling | BERT (Devlin et al. 2019) | [`bert`] |
//! | translation, text-to-text classification | T5 (Raffel et al. 2020) | [`t5`] |
//! | byte-level translation | ByteNet (Kalchbrenner et al. 2016) | [`bytenet`] |
//! | text classification | XLNet (Yang et al. 2019) | [`xlnet`] |
//! | optical character recognition (image → text) | TrOCR (Li et al. 2021) | [`trocr`] |
//!
//! Each model is a documented `…Config` (serde, unknown keys refused) with
//! `init(&Device)` and a `forward` whose documentation has a `# Shapes`
//! section. [`register`] adds the models to a [`unidl_run::ModelRegistry`].
//!
//! ## Architecture invariant
//!
//! Depends on the core (`unidl-backend`, `unidl-tensor`, `unidl-nn`,
//! `unidl-interop`, `unidl-train`, `unidl-run`) and Burn — never on the CLI
//! or another zoo crate. Nothing is downloaded.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-nn`, `unidl-interop`, `unidl-train`, `unidl-run`.
//! Dev-depends on: `unidl-data`, `unidl-env`, `unidl-testkit`.

pub mod bert;
pub mod bytenet;
mod hf;
pub mod t5;
pub mod textcnn;
pub mod trocr;
pub mod xlnet;

pub use bert::{
    BertClassifierConfig, BertConfig, BertForMaskedLm, BertForSequenceClassification,
    BertMlmConfig, BertModel, SentenceBertConfig,
};
pub use bytenet::{ByteNet, ByteNetConfig};
pub use textcnn::{TextCnn, TextCnnConfig};
pub use trocr::{TrOcr, TrOcrConfig};
pub use xlnet::{XLNetConfig, XLNetForSequenceClassification, XLNetModel};

/// Errors of the text zoo.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A config value is out of range; names the key.
    #[error("config key `{key}`: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A file (a `config.json`, a vocabulary) cannot be read or parsed.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Foreign weights do not load (the report lists every key at fault).
    #[error("weights: {0}")]
    Weights(String),
    /// A model's input does not fit (a shape, an empty batch); names the input.
    #[error("input `{name}`: {reason}")]
    Input {
        /// The input.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Registers `textcnn`, `bert`, `sentence_bert`, `bert_mlm`, `t5`, `bytenet`, `xlnet` and `trocr`.
pub fn register(registry: &mut unidl_run::ModelRegistry) -> unidl_run::Result<()> {
    registry.register::<TextCnnConfig>(
        "textcnn",
        "TextCNN: 3/4/5-gram convolutions, max-over-time pooling (Kim 2014)",
    )?;
    registry.register::<BertClassifierConfig>(
        "bert",
        "BERT text classifier on the pooled output (Devlin et al. 2019; transformers' weights load)",
    )?;
    registry.register::<SentenceBertConfig>(
        "sentence_bert",
        "BERT sentence embeddings (mean pooling, as sentence-transformers) for text similarity",
    )?;
    registry.register::<BertMlmConfig>(
        "bert_mlm",
        "BERT masked-token generation (the masked-language-model head, tied decoder)",
    )?;
    registry.register::<t5::T5ModelConfig>(
        "t5",
        "T5 encoder-decoder for translation (Raffel et al. 2020; transformers' weights load)",
    )?;
    registry.register::<bytenet::ByteNetModelConfig>(
        "bytenet",
        "ByteNet: byte-level translation with stacked dilated convolutions, dynamically unfolded (Kalchbrenner et al. 2016)",
    )?;
    registry.register::<xlnet::XLNetClassifierConfig>(
        "xlnet",
        "XLNet text classifier on the last real token's summary (Yang et al. 2019; transformers' weights load)",
    )?;
    registry.register::<trocr::TrOcrModelConfig>(
        "trocr",
        "TrOCR: a ViT/DeiT image encoder and a Transformer text decoder for text-line OCR (Li et al. 2021; transformers' weights load)",
    )
}
