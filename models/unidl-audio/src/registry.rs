//! `conformer` and `rnnt` in `unidl` runs: CTC and transducer speech
//! recognition on audio manifests.

use std::path::Path;

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_run::{BoxError, DataFacts, ZooModel};
use unidl_train::{SpeechRecognition, TransducerRecognition};

use crate::{AudioError, Conformer, ConformerConfig, Rnnt, RnntConfig};

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
        let (m, report) = crate::weights::load_torchaudio_conformer(model, path, strict)?;
        if report.load.loaded.is_empty() {
            return Err(format!(
                "{}: no tensor of it fits the model ({report})",
                path.display()
            )
            .into());
        }
        Ok((m, report.to_string()))
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
        let (m, report) = crate::weights::load_torchaudio_rnnt(model, path, strict)?;
        if report.load.loaded.is_empty() {
            return Err(format!(
                "{}: no tensor of it fits the model ({report})",
                path.display()
            )
            .into());
        }
        Ok((m, report.to_string()))
    }
}
