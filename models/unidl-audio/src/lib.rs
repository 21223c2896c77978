//! # unidl-audio — the audio model zoo (T/AII 008 §6.3.3)
//!
//! | task | model | module |
//! |---|---|---|
//! | speech recognition (CTC) | Conformer (Gulati et al. 2020) | [`conformer`] |
//! | speech recognition (transducer) | RNN-T (Graves 2012), Conformer or LSTM transcriber | [`rnnt`] |
//! | audio generation (μ-law or mixture-of-logistics output, vocoder) | WaveNet (van den Oord et al. 2016) | [`wavenet`] |
//!
//! The Conformer blocks are laid out as `torchaudio.models.Conformer`
//! (torchaudio 2.9.0) and load its state dicts through [`weights`]; the
//! paper's convolutional 4× subsampling front end and its relative
//! positional self-attention (ESPnet's layout) are options. Each model
//! is a documented `…Config` (serde, unknown keys refused) with
//! `init(&Device)` and a `forward` whose documentation has a `# Shapes`
//! section. [`register`] adds them to a [`unidl_run::ModelRegistry`]
//! (`conformer` for `speech_recognition` runs on `audio_manifest` data
//! with a `mel_spectrogram` transform).
//!
//! ## Architecture invariant
//!
//! Depends on the core (`unidl-backend`, `unidl-tensor`, `unidl-nn`,
//! `unidl-interop`, `unidl-train`, `unidl-run`) and Burn — never on the CLI
//! or another zoo crate. Nothing is downloaded.
//!
//! Depends on: `unidl-backend`, `unidl-tensor`, `unidl-nn`, `unidl-interop`, `unidl-train`, `unidl-run`.
//! Dev-depends on: `unidl-data`, `unidl-testkit`.

pub mod conformer;
mod registry;
pub mod rnnt;
pub mod wavenet;
pub mod weights;

pub use conformer::{
    Conformer, ConformerConfig, ConformerLayer, ConvNorm, PosEncoding, RelPositionTerms,
    Subsampling,
};
pub use registry::{ConformerCtcConfig, RnntModelConfig, WaveNetModelConfig};
pub use rnnt::{JoinerActivation, Rnnt, RnntConfig, TranscriberKind};
pub use wavenet::{
    GenerationConfig, Incremental, WaveNet, WaveNetConfig, WaveNetOutput, linear_dequantize,
    mixture_of_logistics_nll, mu_law_cross_entropy, mu_law_decode, mu_law_encode,
};

/// Errors of the audio zoo.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// A config value is out of range; names the key.
    #[error("[model] {key}: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// An input the model cannot take; names it and the shape.
    #[error("{model}: input of shape {shape:?}: {reason}")]
    Input {
        /// The model.
        model: String,
        /// The shape given.
        shape: Vec<usize>,
        /// Why.
        reason: String,
    },
    /// Foreign weights do not load (the report lists every key at fault).
    #[error("weights: {0}")]
    Weights(String),
}

/// Result with [`AudioError`].
pub type Result<T> = std::result::Result<T, AudioError>;

/// Registers `conformer` (CTC speech recognition), `rnnt` (transducer
/// speech recognition) and `wavenet` (speech synthesis, a vocoder).
pub fn register(registry: &mut unidl_run::ModelRegistry) -> unidl_run::Result<()> {
    registry.register::<ConformerCtcConfig>(
        "conformer",
        "Conformer speech recogniser with a CTC head (Gulati et al. 2020; torchaudio's blocks load)",
    )?;
    registry.register::<RnntModelConfig>(
        "rnnt",
        "RNN-T speech recogniser, Conformer or LSTM transcriber (Graves 2012; torchaudio's RNNT loads)",
    )?;
    registry.register::<WaveNetModelConfig>(
        "wavenet",
        "WaveNet vocoder on log-mel frames (van den Oord et al. 2016; wavenet_vocoder's state dicts load)",
    )
}
