//! ByteNet checkpoints of the PyTorch definition
//! (`tests/reference/gen_bytenet.py`): the name mapping, the loader, and
//! `bytenet` in `unidl` runs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules, Report};
use unidl_tensor::module::ModuleApi;

use super::{ByteNet, ByteNetConfig};
use crate::TextError;

/// The rules from the PyTorch definition's state-dict names to these
/// modules. The names are the same (`source_embedding`, `encoder.{i}.{norm1,
/// reduce,norm2,conv,norm3,expand}`, `target_embedding`, `decoder_input`,
/// `decoder.{i}.…`, `output_hidden`, `output`) and `Conv1d` weights have
/// PyTorch's layout `[out, in, k]`, so only PyTorch's defaults apply:
/// `LayerNorm` `weight`/`bias` → `gamma`/`beta`.
pub fn bytenet_rules() -> unidl_interop::Result<MappingRules> {
    unidl_interop::default_rules(Framework::PyTorch)
}

/// Loads a checkpoint of the PyTorch definition (`.safetensors` or a
/// `torch.save` state dict) into `model` through [`bytenet_rules`]
/// (strict: every key at fault listed, nothing loaded).
pub fn load_bytenet_weights<M: ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
) -> Result<(M, Report), TextError> {
    let ckpt = crate::hf::read_checkpoint(path)?;
    crate::hf::load_checkpoint(model, &ckpt, bytenet_rules(), strict, path)
}

/// `[model] name = "bytenet"`: ByteNet for `sequence_to_sequence`
/// (translation); the architecture under `[model.architecture]` (default:
/// the paper's). The run's tokenizer encodes both sides, so its vocabulary
/// size must be the model's (261 for `[data.tokenizer] kind = "bpe_bytes"`
/// with `vocab_size = 261`: bytes, no merges).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteNetModelConfig {
    /// The architecture.
    #[serde(default)]
    pub architecture: ByteNetConfig,
}

impl unidl_run::ZooModel for ByteNetModelConfig {
    type Model = ByteNet;
    type Task = unidl_train::SequenceToSequence;

    fn init(
        &self,
        facts: &unidl_run::DataFacts,
        device: &Device,
    ) -> Result<Self::Model, unidl_run::BoxError> {
        crate::hf::check_vocab(
            facts,
            self.architecture.vocab_size,
            "model.architecture.vocab_size",
        )?;
        Ok(self.architecture.init(device)?)
    }

    /// Checkpoints of the PyTorch definition through [`load_bytenet_weights`].
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), unidl_run::BoxError> {
        crate::hf::zoo_loaded(load_bytenet_weights(model, path, strict), path, "ByteNet")
    }
}
