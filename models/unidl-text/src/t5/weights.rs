//! `transformers` T5 checkpoints: the name mapping, the loader, and `t5` in
//! `unidl` runs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules, Report};
use unidl_tensor::module::ModuleApi;

use super::{T5Config, T5ForConditionalGeneration};
use crate::TextError;

/// The rules from `transformers`' T5 state-dict names to these modules:
/// `block.{i}.layer.0.SelfAttention.{q,k,v,o}` → the block's
/// `self_attention.attention.{query,key,value,output}`, `layer.1.EncDecAttention`
/// (decoder), `layer.{1,2}.DenseReluDense`, the layer norms by position;
/// `encoder.embed_tokens`/`decoder.embed_tokens` (copies of `shared`)
/// ignored; then PyTorch's defaults (dense weights transposed). RMS norms'
/// `weight` becomes Burn's `gamma`.
pub fn hf_t5_rules() -> unidl_interop::Result<MappingRules> {
    let r = MappingRules::new()
        .ignore(r"^(encoder|decoder)\.embed_tokens\.weight$")?
        .rename(r"^(encoder|decoder)\.block\.(\d+)\.layer\.0\.SelfAttention\.q\.(.*)$", "$1.block.$2.self_attention.attention.query.$3")?
        .rename(r"^(encoder|decoder)\.block\.(\d+)\.layer\.0\.SelfAttention\.k\.(.*)$", "$1.block.$2.self_attention.attention.key.$3")?
        .rename(r"^(encoder|decoder)\.block\.(\d+)\.layer\.0\.SelfAttention\.v\.(.*)$", "$1.block.$2.self_attention.attention.value.$3")?
        .rename(r"^(encoder|decoder)\.block\.(\d+)\.layer\.0\.SelfAttention\.o\.(.*)$", "$1.block.$2.self_attention.attention.output.$3")?
        .rename(r"^(encoder|decoder)\.block\.(\d+)\.layer\.0\.SelfAttention\.relative_attention_bias\.(.*)$", "$1.block.$2.self_attention.relative_attention_bias.$3")?
        .rename(r"^(encoder|decoder)\.block\.(\d+)\.layer\.0\.layer_norm\.weight$", "$1.block.$2.self_norm.gamma")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.1\.EncDecAttention\.q\.(.*)$", "decoder.block.$1.cross_attention.attention.query.$2")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.1\.EncDecAttention\.k\.(.*)$", "decoder.block.$1.cross_attention.attention.key.$2")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.1\.EncDecAttention\.v\.(.*)$", "decoder.block.$1.cross_attention.attention.value.$2")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.1\.EncDecAttention\.o\.(.*)$", "decoder.block.$1.cross_attention.attention.output.$2")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.1\.layer_norm\.weight$", "decoder.block.$1.cross_norm.gamma")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.2\.DenseReluDense\.(.*)$", "decoder.block.$1.feed_forward.$2")?
        .rename(r"^decoder\.block\.(\d+)\.layer\.2\.layer_norm\.weight$", "decoder.block.$1.ff_norm.gamma")?
        .rename(r"^encoder\.block\.(\d+)\.layer\.1\.DenseReluDense\.(.*)$", "encoder.block.$1.feed_forward.$2")?
        .rename(r"^encoder\.block\.(\d+)\.layer\.1\.layer_norm\.weight$", "encoder.block.$1.ff_norm.gamma")?
        .rename(r"^(encoder|decoder)\.final_layer_norm\.weight$", "$1.final_layer_norm.gamma")?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch)?))
}

/// Loads a `transformers` T5 checkpoint into `model` through [`hf_t5_rules`]
/// (strict: every key at fault listed, nothing loaded).
pub fn load_hf_t5_weights<M: ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
) -> Result<(M, Report), TextError> {
    // a tied model's checkpoint carries `lm_head.weight` as a copy of `shared`
    crate::hf::load_with_tied_head(
        model,
        path,
        strict,
        "lm_head.weight",
        r"^lm_head\.weight$",
        hf_t5_rules(),
    )
}

/// `[model] name = "t5"`: T5 for `sequence_to_sequence` (translation); the
/// architecture under `[model.architecture]` with `transformers`' keys
/// (default t5-small). The run's tokenizer encodes both sides, so its
/// vocabulary size must be the model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct T5ModelConfig {
    /// The architecture.
    #[serde(default)]
    pub architecture: T5Config,
}

impl unidl_run::ZooModel for T5ModelConfig {
    type Model = T5ForConditionalGeneration;
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

    /// `transformers` weights through [`load_hf_t5_weights`].
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), unidl_run::BoxError> {
        let (model, report) = load_hf_t5_weights(model, path, strict)?;
        if report.load.loaded.is_empty() {
            return Err(
                format!("{}: no key matched the T5 model ({report})", path.display()).into(),
            );
        }
        Ok((model, report.to_string()))
    }
}
