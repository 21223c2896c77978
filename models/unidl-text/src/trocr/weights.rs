//! `transformers` TrOCR checkpoints: the name mapping, the loader, and
//! `trocr` in `unidl` runs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules, Report};
use unidl_tensor::module::ModuleApi;

use super::{TrOcr, TrOcrConfig};
use crate::TextError;

/// The rules from `transformers`' `VisionEncoderDecoderModel` state-dict
/// names to these modules. Encoder: `encoder.embeddings.patch_embeddings.projection`
/// → `encoder.embeddings.patch_embeddings`; blocks under either naming —
/// transformers 5's `encoder.layers.{i}.attention.{q,k,v,o}_proj`,
/// `mlp.fc{1,2}`, or the checkpoints' `encoder.encoder.layer.{i}.attention.attention.{query,key,value}`,
/// `attention.output.dense`, `intermediate.dense`, `output.dense` — onto
/// `encoder.layers.{i}.attention.{query,key,value,output}`, `fc1`, `fc2`;
/// the unused `encoder.pooler` ignored. Decoder: `decoder.model.decoder.` →
/// `decoder.`, `{q,k,v}_proj` → `query`/`key`/`value` (`out_proj` →
/// `output` by PyTorch's defaults), `decoder.output_projection` →
/// `output_projection`; `enc_to_dec_proj` as is; then PyTorch's defaults
/// (dense weights transposed, layer norms' `weight`/`bias` → `gamma`/`beta`).
pub fn hf_trocr_rules() -> unidl_interop::Result<MappingRules> {
    let r = MappingRules::new()
        .ignore(r"^encoder\.pooler\.")?
        .ignore(r"(^|\.)position_ids$")?
        .rename(
            r"^encoder\.embeddings\.patch_embeddings\.projection\.(.*)$",
            "encoder.embeddings.patch_embeddings.$1",
        )?
        // transformers 4 / hub checkpoints
        .rename(
            r"^encoder\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(.*)$",
            "encoder.layers.$1.attention.$2.$3",
        )?
        .rename(
            r"^encoder\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(.*)$",
            "encoder.layers.$1.attention.output.$2",
        )?
        .rename(
            r"^encoder\.encoder\.layer\.(\d+)\.intermediate\.dense\.(.*)$",
            "encoder.layers.$1.fc1.$2",
        )?
        .rename(
            r"^encoder\.encoder\.layer\.(\d+)\.output\.dense\.(.*)$",
            "encoder.layers.$1.fc2.$2",
        )?
        .rename(
            r"^encoder\.encoder\.layer\.(\d+)\.(layernorm_before|layernorm_after)\.(.*)$",
            "encoder.layers.$1.$2.$3",
        )?
        // transformers 5
        .rename(
            r"^encoder\.layers\.(\d+)\.attention\.q_proj\.(.*)$",
            "encoder.layers.$1.attention.query.$2",
        )?
        .rename(
            r"^encoder\.layers\.(\d+)\.attention\.k_proj\.(.*)$",
            "encoder.layers.$1.attention.key.$2",
        )?
        .rename(
            r"^encoder\.layers\.(\d+)\.attention\.v_proj\.(.*)$",
            "encoder.layers.$1.attention.value.$2",
        )?
        .rename(
            r"^encoder\.layers\.(\d+)\.attention\.o_proj\.(.*)$",
            "encoder.layers.$1.attention.output.$2",
        )?
        .rename(
            r"^encoder\.layers\.(\d+)\.mlp\.(fc1|fc2)\.(.*)$",
            "encoder.layers.$1.$2.$3",
        )?
        // the decoder
        .rename(r"^decoder\.model\.decoder\.(.*)$", "decoder.$1")?
        .rename(
            r"^decoder\.output_projection\.(.*)$",
            "output_projection.$1",
        )?
        .rename(
            r"^decoder\.layers\.(\d+)\.(self_attn|encoder_attn)\.q_proj\.(.*)$",
            "decoder.layers.$1.$2.query.$3",
        )?
        .rename(
            r"^decoder\.layers\.(\d+)\.(self_attn|encoder_attn)\.k_proj\.(.*)$",
            "decoder.layers.$1.$2.key.$3",
        )?
        .rename(
            r"^decoder\.layers\.(\d+)\.(self_attn|encoder_attn)\.v_proj\.(.*)$",
            "decoder.layers.$1.$2.value.$3",
        )?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch)?))
}

/// Loads a `transformers` TrOCR checkpoint (`model.safetensors` or
/// `pytorch_model.bin`) into `model` through [`hf_trocr_rules`] (strict:
/// every key at fault listed, nothing loaded). A tied model ignores the
/// checkpoint's `decoder.output_projection.weight` (a copy of the embedding).
pub fn load_hf_trocr_weights<M: ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
) -> Result<(M, Report), TextError> {
    crate::hf::load_with_tied_head(
        model,
        path,
        strict,
        "output_projection.weight",
        r"^decoder\.output_projection\.weight$",
        hf_trocr_rules(),
    )
}

/// `[model] name = "trocr"`: TrOCR for `sequence_to_sequence` with image
/// sources (OCR of text lines); the architecture under
/// `[model.architecture]` with `transformers`' keys in `encoder` and
/// `decoder` tables (default TrOCR-small). The run's tokenizer encodes the
/// target texts, so its vocabulary size must be the decoder's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrOcrModelConfig {
    /// The architecture.
    #[serde(default)]
    pub architecture: TrOcrConfig,
}

impl unidl_run::ZooModel for TrOcrModelConfig {
    type Model = TrOcr;
    type Task = unidl_train::SequenceToSequence;

    fn init(
        &self,
        facts: &unidl_run::DataFacts,
        device: &Device,
    ) -> Result<Self::Model, unidl_run::BoxError> {
        crate::hf::check_vocab(
            facts,
            self.architecture.decoder.vocab_size,
            "model.architecture.decoder.vocab_size",
        )?;
        Ok(self.architecture.init(device)?)
    }

    /// The source is the sample's `image` (the registry's task reads tokens).
    fn adapt_task(&self, mut task: Self::Task) -> Self::Task {
        task.source = unidl_train::SourceInput::Image;
        task
    }

    /// `transformers` weights through [`load_hf_trocr_weights`].
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), unidl_run::BoxError> {
        // The CTC head is unidl's: no checkpoint has it, so it keeps its
        // initial weights.
        let mut model = model;
        let ctc_head = model.ctc_head.take();
        let (mut model, report) =
            crate::hf::zoo_loaded(load_hf_trocr_weights(model, path, strict), path, "TrOCR")?;
        model.ctc_head = ctc_head;
        Ok((model, report))
    }
}
