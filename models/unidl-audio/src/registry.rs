//! `conformer`, `rnnt` and `wavenet` in `unidl` runs: CTC and transducer
//! speech recognition, and speech synthesis (a vocoder), on audio manifests.

use std::path::Path;

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::Report;
use unidl_run::{BoxError, DataFacts, ZooModel};
use unidl_train::{Quantization, SpeechRecognition, SpeechSynthesis, TransducerRecognition};

use crate::{
    AudioError, Conformer, ConformerConfig, Rnnt, RnntConfig, WaveNet, WaveNetConfig, WaveNetOutput,
};

/// A loader's result as `load_weights` returns it: the model and the
/// report, or an error when no tensor of the file fitted the model.
fn loaded<M>(path: &Path, (m, report): (M, Report)) -> Result<(M, String), BoxError> {
    if report.load.loaded.is_empty() {
        return Err(format!(
            "{}: no tensor of it fits the model ({report})",
            path.display()
        )
        .into());
    }
    Ok((m, report.to_string()))
}

/// `[model] name = "conformer"`: [`ConformerConfig`]'s keys; `vocab_size`
/// is required (the task's alphabet and the blank: 29 for the default
/// alphabet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConformerCtcConfig(pub ConformerConfig);

impl ZooModel for ConformerCtcConfig {
    type Model = Conformer;
    type Task = SpeechRecognition;

    fn init(&self, _facts: &DataFacts, device: &Device) -> Result<Conformer, BoxError> {
        if self.0.vocab_size.is_none() {
            return Err(AudioError::Config {
                key: "vocab_size".into(),
                reason: "speech recognition needs the CTC head's size: the alphabet's characters and the blank (29 for the default alphabet)".into(),
            }
            .into());
        }
        Ok(self.0.init(device)?)
    }

    /// torchaudio `Conformer` state dicts into the blocks
    /// ([`crate::weights::load_torchaudio_conformer`]).
    fn load_weights(
        &self,
        model: Conformer,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Conformer, String), BoxError> {
        loaded(
            path,
            crate::weights::load_torchaudio_conformer(model, path, strict)?,
        )
    }
}

/// `[model] name = "rnnt"`: [`RnntConfig`]'s keys (`input_dim` and
/// `vocab_size` required), for `transducer_recognition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RnntModelConfig(pub RnntConfig);

impl ZooModel for RnntModelConfig {
    type Model = Rnnt;
    type Task = TransducerRecognition;

    fn init(&self, _facts: &DataFacts, device: &Device) -> Result<Rnnt, BoxError> {
        Ok(self.0.init(device)?)
    }

    /// torchaudio `RNNT` state dicts ([`crate::weights::load_torchaudio_rnnt`]).
    fn load_weights(
        &self,
        model: Rnnt,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Rnnt, String), BoxError> {
        loaded(
            path,
            crate::weights::load_torchaudio_rnnt(model, path, strict)?,
        )
    }
}

/// `[model] name = "wavenet"`: [`WaveNetConfig`]'s keys, a vocoder for
/// `speech_synthesis`: local conditioning on the frames (`cin_channels` =
/// the mel bands, `upsample_scales` multiplying to the transform's
/// `hop_length`), no global conditioning. With `[model.output] type =
/// "mixture_of_logistics"` the task quantises the waveforms linearly to
/// the model's `num_classes` levels (`[task] quantization_channels`, μ-law
/// levels, does not apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WaveNetModelConfig(pub WaveNetConfig);

impl ZooModel for WaveNetModelConfig {
    type Model = WaveNet;
    type Task = SpeechSynthesis;

    fn init(&self, _facts: &DataFacts, device: &Device) -> Result<WaveNet, BoxError> {
        let key = |key: &str, reason: &str| AudioError::Config {
            key: key.into(),
            reason: reason.into(),
        };
        if self.0.cin_channels.is_none() {
            return Err(key(
                "cin_channels",
                "speech synthesis conditions on spectrogram frames: set it to the mel bands",
            )
            .into());
        }
        if self.0.gin_channels.is_some() {
            return Err(key(
                "gin_channels",
                "speech synthesis runs have no per-sequence class to condition on",
            )
            .into());
        }
        Ok(self.0.init(device)?)
    }

    /// A mixture-of-logistics model: the task quantises linearly to its
    /// levels (a μ-law model keeps the task's `quantization_channels`,
    /// checked against its `out_channels` on the first batch).
    fn adapt_task(&self, task: SpeechSynthesis) -> SpeechSynthesis {
        match self.0.output {
            WaveNetOutput::MuLaw => task,
            WaveNetOutput::MixtureOfLogistics { num_classes, .. } => {
                task.with_quantization(Quantization::Linear(num_classes))
            }
        }
    }

    /// `wavenet_vocoder` state dicts ([`crate::weights::load_wavenet_vocoder`]).
    fn load_weights(
        &self,
        model: WaveNet,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(WaveNet, String), BoxError> {
        loaded(
            path,
            crate::weights::load_wavenet_vocoder(model, path, strict)?,
        )
    }
}

impl unidl_train::VocoderModel for WaveNet {
    fn hop_length(&self) -> usize {
        WaveNet::hop_length(self)
    }

    /// μ-law classes, or a mixture of logistics' linear levels.
    fn quantization(&self) -> Quantization {
        match self.output() {
            WaveNetOutput::MuLaw => Quantization::MuLaw(self.out_channels()),
            WaveNetOutput::MixtureOfLogistics { num_classes, .. } => {
                Quantization::Linear(num_classes)
            }
        }
    }

    fn vocoder_loss(
        &self,
        features: burn::tensor::Tensor<3>,
        classes: burn::tensor::Tensor<2, burn::tensor::Int>,
    ) -> unidl_train::Result<burn::tensor::Tensor<1>> {
        self.loss(classes, Some(features), None)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))
    }

    fn vocode(
        &self,
        features: burn::tensor::Tensor<3>,
        temperature: f32,
        seed: u64,
    ) -> unidl_train::Result<burn::tensor::Tensor<2, burn::tensor::Int>> {
        let cfg = crate::GenerationConfig {
            temperature,
            seed,
            ..Default::default()
        };
        self.generate(Some(features), None, &cfg)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))
    }
}
