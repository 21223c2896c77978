//! `transformers` XLNet checkpoints: the name mapping, the loader, and
//! `xlnet` in `unidl` runs.

use std::path::Path;

use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules, Report};
use unidl_run::{BoxError, DataFacts, ZooModel};
use unidl_tensor::module::ModuleApi;
use unidl_train::{SequenceClassifier, TextClassification};

use super::{XLNetConfig, XLNetForSequenceClassification};
use crate::TextError;

/// `transformers`' names of a layer's relative-attention parameters and
/// the [`RelativeAttention`](unidl_nn::RelativeAttention) fields they load into.
const REL_ATTN: [(&str, &str); 9] = [
    ("q", "query"),
    ("k", "key"),
    ("v", "value"),
    ("o", "output"),
    ("r", "position"),
    ("r_w_bias", "content_bias"),
    ("r_r_bias", "position_bias"),
    ("r_s_bias", "segment_bias"),
    ("seg_embed", "segment_embed"),
];

/// The rules from `transformers`' XLNet state-dict names to these modules
/// (the `transformer.` prefix of the task models kept):
/// `layer.{i}.rel_attn.{q,k,v,o,r}` → `layers.{i}.attention.{query,key,value,
/// output,position}` (all `[d_model, n_head, d_head]`, loaded as they are),
/// `r_w_bias`/`r_r_bias`/`r_s_bias`/`seg_embed` →
/// `content_bias`/`position_bias`/`segment_bias`/`segment_embed`,
/// `rel_attn.layer_norm` → `attention_norm`, `layer.{i}.ff` → `layers.{i}.ff`,
/// `sequence_summary.summary` → `summary`; the language-model head
/// (`lm_loss`, tied to the word embeddings) is ignored; then PyTorch's
/// defaults (norm `weight`/`bias` → `gamma`/`beta`, dense weights
/// transposed).
pub fn hf_xlnet_rules() -> unidl_interop::Result<MappingRules> {
    let mut r = MappingRules::new().ignore(r"^lm_loss\.(weight|bias)$")?;
    for (hf, ours) in REL_ATTN {
        r = r.rename(
            &format!(r"^(transformer\.)?layer\.(\d+)\.rel_attn\.{hf}$"),
            &format!("${{1}}layers.$2.attention.{ours}"),
        )?;
    }
    let r = r
        .rename(
            r"^(transformer\.)?layer\.(\d+)\.rel_attn\.layer_norm\.(weight|bias)$",
            "${1}layers.$2.attention_norm.$3",
        )?
        .rename(
            r"^(transformer\.)?layer\.(\d+)\.ff\.(.*)$",
            "${1}layers.$2.ff.$3",
        )?
        .rename(r"^sequence_summary\.summary\.(weight|bias)$", "summary.$1")?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch)?))
}

/// Loads a `transformers` XLNet checkpoint (`model.safetensors`, or a
/// `pytorch_model.bin`) into `model` through [`hf_xlnet_rules`]; an
/// encoder's checkpoint (`XLNetModel`) loads into a task model's
/// `transformer.` and a task model's (`XLNetLMHeadModel`'s,
/// `XLNetForSequenceClassification`'s) into an encoder. With `strict`, a
/// missing, unexpected or mis-shaped key is an error listing them all;
/// otherwise the report lists them.
pub fn load_hf_xlnet_weights<M: ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
) -> Result<(M, Report), TextError> {
    let ckpt = crate::hf::read_checkpoint(path)?;
    let model_prefixed = model
        .state_dict()
        .keys()
        .any(|k| k.starts_with("transformer."));
    let ckpt_prefixed = ckpt.tensors.keys().any(|k| k.starts_with("transformer."));
    let prefix = match (model_prefixed, ckpt_prefixed) {
        (true, false) => MappingRules::new().rename(
            r"^(word_embedding\..*|mask_emb|layer\..*)$",
            "transformer.$1",
        ),
        (false, true) => MappingRules::new().rename(r"^transformer\.(.*)$", "$1"),
        _ => Ok(MappingRules::new()),
    };
    let rules = prefix.and_then(|p| Ok(p.then(hf_xlnet_rules()?)));
    crate::hf::load_checkpoint(model, &ckpt, rules, strict, path)
}

/// `[model] name = "xlnet"`: XLNet classifying texts on its last real
/// token's summary, from scratch or from pretrained `transformers` weights
/// (`[pretrained] path = "…/model.safetensors"`, `strict = false` when the
/// checkpoint has no classifier: the summary and `logits_proj` are new).
/// The architecture under `[model.architecture]` with `transformers`' keys
/// (default xlnet-base-cased). Positions are relative, so texts of any
/// length are taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XLNetClassifierConfig {
    /// The encoder; its `vocab_size` must be the run tokenizer's.
    #[serde(default)]
    pub architecture: XLNetConfig,
    /// Classes (default: the data set's).
    #[serde(default)]
    pub num_classes: Option<usize>,
}

impl SequenceClassifier for XLNetForSequenceClassification {
    fn classify_tokens(&self, ids: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<2> {
        // the task gives a non-empty batch and a mask of the ids' shape
        let shape = ids.dims();
        self.logits(shape, ids, None, Some(mask))
    }
}

impl ZooModel for XLNetClassifierConfig {
    type Model = XLNetForSequenceClassification;
    type Task = TextClassification;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Self::Model, BoxError> {
        crate::hf::check_vocab(
            facts,
            self.architecture.vocab_size,
            "model.architecture.vocab_size",
        )?;
        let classes = self
            .num_classes
            .or((!facts.class_names.is_empty()).then_some(facts.class_names.len()))
            .ok_or_else(|| TextError::Config {
                key: "model.num_classes".into(),
                reason: "unknown: set it or use labelled data".into(),
            })?;
        Ok(self.architecture.init_classifier(classes, device)?)
    }

    /// `transformers` weights through [`load_hf_xlnet_weights`].
    fn load_weights(
        &self,
        model: Self::Model,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(Self::Model, String), BoxError> {
        crate::hf::zoo_loaded(load_hf_xlnet_weights(model, path, strict), path, "XLNet")
    }
}
