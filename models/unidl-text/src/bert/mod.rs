//! BERT — Devlin et al., "BERT: Pre-training of Deep Bidirectional
//! Transformers for Language Understanding", NAACL 2019, laid out as
//! `transformers`' `BertModel`: word, position and token-type embeddings
//! summed and layer-normalised; post-norm encoder layers (self-attention →
//! add & norm → GELU feed-forward → add & norm); a tanh pooler on the first
//! token. Heads: [`BertForSequenceClassification`] (pooler → dropout →
//! classifier) and [`BertForMaskedLm`] (dense → GELU → norm → the word
//! embeddings, tied, plus a bias).
//!
//! [`BertConfig`] uses `transformers`' key names, so a model's `config.json`
//! reads directly ([`BertConfig::from_hf_json`]), and
//! [`load_hf_weights`] maps `transformers`' state-dict names (with or
//! without the `bert.` prefix) onto these modules.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::activation::{gelu, gelu_approximate, relu, tanh};
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules, Report};
use unidl_nn::{AttentionMask, MultiHeadAttention, MultiHeadAttentionConfig};
use unidl_tensor::module::ModuleApi;

use crate::TextError;

mod zoo;
pub use zoo::{BertClassifierConfig, BertMlmConfig, SentenceBertConfig};

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// GELU with the exact error function (BERT's).
    #[default]
    Gelu,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    #[serde(alias = "gelu_pytorch_tanh")]
    GeluNew,
    /// ReLU.
    Relu,
}

impl HiddenAct {
    fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            HiddenAct::Gelu => gelu(x),
            HiddenAct::GeluNew => gelu_approximate(x),
            HiddenAct::Relu => relu(x),
        }
    }
}

/// BERT's architecture, with `transformers`' `BertConfig` names; the
/// defaults are bert-base-uncased's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertConfig {
    /// Vocabulary size.
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    /// Width of every token's representation.
    #[serde(default = "hidden_size")]
    pub hidden_size: usize,
    /// Encoder layers.
    #[serde(default = "layers")]
    pub num_hidden_layers: usize,
    /// Attention heads (must divide `hidden_size`).
    #[serde(default = "heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    #[serde(default = "intermediate_size")]
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default)]
    pub hidden_act: HiddenAct,
    /// Dropout after the embeddings, attention output and feed-forward.
    #[serde(default = "dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities.
    #[serde(default = "dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Longest input, in tokens.
    #[serde(default = "max_positions")]
    pub max_position_embeddings: usize,
    /// Number of segment (token-type) ids.
    #[serde(default = "type_vocab_size")]
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    #[serde(default = "layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Padding token id.
    #[serde(default)]
    pub pad_token_id: usize,
    /// Standard deviation of the initial weights (`initializer_range`).
    #[serde(default = "initializer_range")]
    pub initializer_range: f64,
}

fn vocab_size() -> usize {
    30522
}
fn hidden_size() -> usize {
    768
}
fn layers() -> usize {
    12
}
fn heads() -> usize {
    12
}
fn intermediate_size() -> usize {
    3072
}
fn dropout() -> f64 {
    0.1
}
fn max_positions() -> usize {
    512
}
fn type_vocab_size() -> usize {
    2
}
fn layer_norm_eps() -> f64 {
    1e-12
}
fn initializer_range() -> f64 {
    0.02
}

impl Default for BertConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

/// The keys of `transformers`' `BertConfig` that describe something this
/// implementation does not have, and the value it requires of each.
const FIXED_HF_KEYS: [(&str, &str); 2] = [
    ("position_embedding_type", "absolute"),
    ("is_decoder", "false"),
];

impl BertConfig {
    /// Reads a `transformers` `config.json`: the architecture keys are
    /// taken, bookkeeping keys (`architectures`, `torch_dtype`, …) are
    /// ignored, and a setting this implementation does not have (relative
    /// position embeddings, a decoder) is refused naming the key.
    pub fn from_hf_json(path: &Path) -> Result<Self, TextError> {
        let text = std::fs::read_to_string(path).map_err(|e| TextError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| TextError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let serde_json::Value::Object(map) = value else {
            return Err(TextError::File {
                path: path.to_path_buf(),
                reason: "not a JSON object".into(),
            });
        };
        for (key, wanted) in FIXED_HF_KEYS {
            if let Some(v) = map.get(key) {
                let got = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                if got != wanted {
                    return Err(TextError::Config {
                        key: format!("{}: {key}", path.display()),
                        reason: format!("{got} is not supported (only {wanted})"),
                    });
                }
            }
        }
        let known = serde_json::to_value(BertConfig::default()).expect("serialisable");
        let known = known.as_object().expect("an object");
        let kept: serde_json::Map<_, _> = map
            .into_iter()
            .filter(|(k, _)| known.contains_key(k))
            .collect();
        let cfg: BertConfig =
            serde_json::from_value(serde_json::Value::Object(kept)).map_err(|e| {
                TextError::File {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the sizes; a typed error names the key.
    pub fn validate(&self) -> Result<(), TextError> {
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(TextError::Config {
                    key: key.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(TextError::Config {
                key: "num_attention_heads".into(),
                reason: format!(
                    "{} does not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            });
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(TextError::Config {
                key: "pad_token_id".into(),
                reason: format!(
                    "{} is not below vocab_size {}",
                    self.pad_token_id, self.vocab_size
                ),
            });
        }
        for (key, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(TextError::Config {
                    key: key.into(),
                    reason: format!("{p} is outside [0, 1)"),
                });
            }
        }
        Ok(())
    }

    /// A dense layer with normal weights and a zero bias, as `transformers` initialises.
    fn linear(&self, i: usize, o: usize, device: &Device) -> Linear {
        let mut l = LinearConfig::new(i, o)
            .with_initializer(self.init())
            .init(device);
        l.bias = Some(Param::from_tensor(Tensor::zeros([o], device)));
        l
    }

    fn init(&self) -> burn::nn::Initializer {
        burn::nn::Initializer::Normal {
            mean: 0.0,
            std: self.initializer_range,
        }
    }

    fn norm(&self, device: &Device) -> LayerNorm {
        LayerNormConfig::new(self.hidden_size)
            .with_epsilon(self.layer_norm_eps)
            .init(device)
    }

    /// The encoder with its pooler, initialised as `transformers` does
    /// (normal weights with `initializer_range`, zero biases, unit norms).
    pub fn init_model(&self, device: &Device) -> Result<BertModel, TextError> {
        self.init_encoder(true, device)
    }

    /// The encoder, with or without the pooler (`transformers`'
    /// `add_pooling_layer`; the masked-LM model has none).
    pub fn init_encoder(&self, pooler: bool, device: &Device) -> Result<BertModel, TextError> {
        self.validate()?;
        let embed = |n: usize| {
            EmbeddingConfig::new(n, self.hidden_size)
                .with_initializer(self.init())
                .init(device)
        };
        let layer = || {
            let mut attention =
                MultiHeadAttentionConfig::new(self.hidden_size, self.num_attention_heads)
                    .with_dropout(self.attention_probs_dropout_prob)
                    .init(device);
            let h = self.hidden_size;
            attention.query = self.linear(h, h, device);
            attention.key = self.linear(h, h, device);
            attention.value = self.linear(h, h, device);
            attention.output = self.linear(h, h, device);
            BertLayer {
                attention,
                attention_norm: self.norm(device),
                intermediate: self.linear(self.hidden_size, self.intermediate_size, device),
                output: self.linear(self.intermediate_size, self.hidden_size, device),
                output_norm: self.norm(device),
                dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
                act: self.hidden_act,
            }
        };
        Ok(BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: embed(self.vocab_size),
                position_embeddings: embed(self.max_position_embeddings),
                token_type_embeddings: embed(self.type_vocab_size),
                layer_norm: self.norm(device),
                dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            },
            layers: (0..self.num_hidden_layers).map(|_| layer()).collect(),
            pooler: pooler.then(|| self.linear(self.hidden_size, self.hidden_size, device)),
        })
    }

    /// BERT with a classifier of `num_labels` classes on the pooled output.
    pub fn init_classifier(
        &self,
        num_labels: usize,
        device: &Device,
    ) -> Result<BertForSequenceClassification, TextError> {
        if num_labels == 0 {
            return Err(TextError::Config {
                key: "num_labels".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(BertForSequenceClassification {
            bert: self.init_model(device)?,
            dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            classifier: self.linear(self.hidden_size, num_labels, device),
        })
    }

    /// BERT with the masked-language-model head (decoder tied to the word embeddings).
    pub fn init_masked_lm(&self, device: &Device) -> Result<BertForMaskedLm, TextError> {
        Ok(BertForMaskedLm {
            bert: self.init_encoder(false, device)?,
            transform: self.linear(self.hidden_size, self.hidden_size, device),
            transform_norm: self.norm(device),
            bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
            act: self.hidden_act,
        })
    }
}

/// Word + position + token-type embeddings, layer norm, dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `[vocab, hidden]`.
    pub word_embeddings: Embedding,
    /// `[max positions, hidden]`.
    pub position_embeddings: Embedding,
    /// `[types, hidden]`.
    pub token_type_embeddings: Embedding,
    /// `transformers`' `LayerNorm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertEmbeddings {
    /// # Shapes
    /// - `ids`, `token_types`: `[batch, tokens]` → `[batch, tokens, hidden]`
    pub fn forward(&self, ids: Tensor<2, Int>, token_types: Option<Tensor<2, Int>>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device)
            .unsqueeze::<2>()
            .expand([b, t]);
        let types = token_types.unwrap_or_else(|| Tensor::zeros([b, t], &device));
        let x = self.word_embeddings.forward(ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// One post-norm encoder layer.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Self-attention (`attention.self` + `attention.output.dense`).
    pub attention: MultiHeadAttention,
    /// `attention.output.LayerNorm`.
    pub attention_norm: LayerNorm,
    /// `intermediate.dense`.
    pub intermediate: Linear,
    /// `output.dense`.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub output_norm: LayerNorm,
    dropout: Dropout,
    #[module(skip)]
    act: HiddenAct,
}

impl BertLayer {
    /// # Shapes
    /// - `x`: `[batch, tokens, hidden]` → the same
    pub fn forward(&self, x: Tensor<3>, mask: &AttentionMask) -> Tensor<3> {
        let a = self.attention.forward(x.clone(), None, mask);
        let x = self.attention_norm.forward(self.dropout.forward(a) + x);
        let h = self.act.apply(self.intermediate.forward(x.clone()));
        let h = self.dropout.forward(self.output.forward(h));
        self.output_norm.forward(h + x)
    }
}

/// What [`BertModel::forward`] returns.
#[derive(Debug, Clone)]
pub struct BertOutput {
    /// The last layer's token representations, `[batch, tokens, hidden]`.
    pub hidden: Tensor<3>,
    /// `tanh(W · hidden[:, 0] + b)`, `[batch, hidden]` (`None` without a pooler).
    pub pooled: Option<Tensor<2>>,
}

/// The BERT encoder (`transformers`' `BertModel`).
#[derive(Module, Debug)]
pub struct BertModel {
    /// The embeddings.
    pub embeddings: BertEmbeddings,
    /// The encoder layers (`encoder.layer`).
    pub layers: Vec<BertLayer>,
    /// `pooler.dense` (`None`: no pooler).
    pub pooler: Option<Linear>,
}

impl BertModel {
    /// Encodes token ids; `attention` is `true` on real tokens (`transformers`'
    /// `attention_mask`), `None` = every token is real.
    ///
    /// # Shapes
    /// - `ids`, `token_types`, `attention`: `[batch, tokens]`
    /// - output: hidden `[batch, tokens, hidden]`, pooled `[batch, hidden]`
    ///   (when the model has a pooler)
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> BertOutput {
        let hidden = self.encode(ids, token_types, attention);
        let [b, _, h] = hidden.dims();
        let pooled = self.pooler.as_ref().map(|pooler| {
            let first = hidden.clone().narrow(1, 0, 1).reshape([b, h]);
            tanh(pooler.forward(first))
        });
        BertOutput { hidden, pooled }
    }

    /// The last layer's token representations only (no pooler).
    ///
    /// # Shapes
    /// - `ids`, `token_types`, `attention`: `[batch, tokens]` → `[batch, tokens, hidden]`
    pub fn encode(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> Tensor<3> {
        let mask = AttentionMask {
            key_padding: attention.map(|a| a.bool_not()),
            ..Default::default()
        };
        let mut x = self.embeddings.forward(ids, token_types);
        for layer in &self.layers {
            x = layer.forward(x, &mask);
        }
        x
    }

    /// Sentence embeddings as sentence-transformers' mean pooling: the mean
    /// of the real tokens' representations.
    ///
    /// # Shapes
    /// - `ids`, `attention`: `[batch, tokens]` → `[batch, hidden]`
    pub fn mean_pooled(&self, ids: Tensor<2, Int>, attention: Tensor<2, Bool>) -> Tensor<2> {
        let hidden = self.encode(ids, None, Some(attention.clone()));
        mean_pool(hidden, attention)
    }
}

/// The mean over the tokens where `attention` is `true`.
///
/// # Shapes
/// - `hidden`: `[batch, tokens, width]`, `attention`: `[batch, tokens]` → `[batch, width]`
pub fn mean_pool(hidden: Tensor<3>, attention: Tensor<2, Bool>) -> Tensor<2> {
    let [b, _, h] = hidden.dims();
    let weights = attention.float().unsqueeze_dim::<3>(2);
    let sum = (hidden * weights.clone()).sum_dim(1).reshape([b, h]);
    let count = weights.sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
    sum / count
}

/// BERT with a classifier on the pooled output
/// (`transformers`' `BertForSequenceClassification`).
#[derive(Module, Debug)]
pub struct BertForSequenceClassification {
    /// The encoder.
    pub bert: BertModel,
    dropout: Dropout,
    /// `classifier`.
    pub classifier: Linear,
}

impl BertForSequenceClassification {
    /// # Shapes
    /// - `ids`, `attention`: `[batch, tokens]` → logits `[batch, labels]`
    pub fn forward(&self, ids: Tensor<2, Int>, attention: Option<Tensor<2, Bool>>) -> Tensor<2> {
        self.forward_with_types(ids, None, attention)
    }

    /// [`forward`](Self::forward) with segment (token-type) ids.
    ///
    /// # Shapes
    /// - `ids`, `token_types`, `attention`: `[batch, tokens]` → logits `[batch, labels]`
    pub fn forward_with_types(
        &self,
        ids: Tensor<2, Int>,
        token_types: Option<Tensor<2, Int>>,
        attention: Option<Tensor<2, Bool>>,
    ) -> Tensor<2> {
        let out = self.bert.forward(ids, token_types, attention);
        let pooled = out.pooled.unwrap_or_else(|| {
            // a classifier built on a pooler-less encoder pools the first token
            let [b, _, h] = out.hidden.dims();
            out.hidden.narrow(1, 0, 1).reshape([b, h])
        });
        self.classifier.forward(self.dropout.forward(pooled))
    }
}

/// BERT with the masked-language-model head (`transformers`'
/// `BertForMaskedLM`); the output projection is the word-embedding matrix.
#[derive(Module, Debug)]
pub struct BertForMaskedLm {
    /// The encoder.
    pub bert: BertModel,
    /// `cls.predictions.transform.dense`.
    pub transform: Linear,
    /// `cls.predictions.transform.LayerNorm`.
    pub transform_norm: LayerNorm,
    /// `cls.predictions.bias`, `[vocab]`.
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    act: HiddenAct,
}

impl BertForMaskedLm {
    /// Vocabulary logits of every position.
    ///
    /// # Shapes
    /// - `ids`, `attention`: `[batch, tokens]` → `[batch, tokens, vocab]`
    pub fn forward(&self, ids: Tensor<2, Int>, attention: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let hidden = self.bert.encode(ids, None, attention);
        let h = self
            .transform_norm
            .forward(self.act.apply(self.transform.forward(hidden)));
        let words = self.bert.embeddings.word_embeddings.weight.val();
        let [b, t, d] = h.dims();
        let logits = h.reshape([b * t, d]).matmul(words.transpose());
        let v = logits.dims()[1];
        logits.reshape([b, t, v]) + self.bias.val().reshape([1, 1, v])
    }
}

/// The rules from `transformers`' BERT state-dict names to these modules
/// (any prefix kept: `bert.` of the task models): `LayerNorm` →
/// `layer_norm`, `encoder.layer.{i}` → `layers.{i}`, `attention.self.{q,k,v}`
/// and `attention.output.dense` → the attention's `query`/`key`/`value`/
/// `output`, the MLM head's `cls.predictions.*`; the position-id buffer and
/// the tied decoder weight are ignored; then PyTorch's defaults (norm
/// `weight`/`bias` → `gamma`/`beta`, dense weights transposed).
pub fn hf_bert_rules() -> unidl_interop::Result<MappingRules> {
    let r = MappingRules::new()
        .ignore(r"(^|\.)embeddings\.position_ids$")?
        .ignore(r"^cls\.predictions\.decoder\.(weight|bias)$")?
        .ignore(r"^cls\.seq_relationship\.")?
        .rename(
            r"^(.*)embeddings\.LayerNorm\.(.*)$",
            "${1}embeddings.layer_norm.$2",
        )?
        .rename(
            r"^(.*)encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(.*)$",
            "${1}layers.$2.attention.$3.$4",
        )?
        .rename(
            r"^(.*)encoder\.layer\.(\d+)\.attention\.output\.dense\.(.*)$",
            "${1}layers.$2.attention.output.$3",
        )?
        .rename(
            r"^(.*)encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(.*)$",
            "${1}layers.$2.attention_norm.$3",
        )?
        .rename(
            r"^(.*)encoder\.layer\.(\d+)\.intermediate\.dense\.(.*)$",
            "${1}layers.$2.intermediate.$3",
        )?
        .rename(
            r"^(.*)encoder\.layer\.(\d+)\.output\.dense\.(.*)$",
            "${1}layers.$2.output.$3",
        )?
        .rename(
            r"^(.*)encoder\.layer\.(\d+)\.output\.LayerNorm\.(.*)$",
            "${1}layers.$2.output_norm.$3",
        )?
        .rename(r"^(.*)pooler\.dense\.(.*)$", "${1}pooler.$2")?
        .rename(
            r"^cls\.predictions\.transform\.dense\.(.*)$",
            "transform.$1",
        )?
        .rename(
            r"^cls\.predictions\.transform\.LayerNorm\.(.*)$",
            "transform_norm.$1",
        )?
        .rename(r"^cls\.predictions\.bias$", "bias")?;
    Ok(r.then(unidl_interop::default_rules(Framework::PyTorch)?))
}

/// Loads a `transformers` BERT checkpoint (`model.safetensors`, or a
/// `pytorch_model.bin`) into `model` through [`hf_bert_rules`]; an encoder's
/// checkpoint loads into a task model's `bert.` and a task model's into an
/// encoder. With
/// `strict`, a missing, unexpected or mis-shaped key is an error listing
/// them all; otherwise the report lists them.
pub fn load_hf_weights<M: ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
) -> Result<(M, Report), TextError> {
    let ckpt = crate::hf::read_checkpoint(path)?;
    // An encoder's checkpoint (`BertModel`: `embeddings.…`) into a task
    // model (`bert.embeddings.…`) and the reverse, as `transformers` does
    // with its `base_model_prefix`.
    let model_prefixed = model.state_dict().keys().any(|k| k.starts_with("bert."));
    let ckpt_prefixed = ckpt.tensors.keys().any(|k| k.starts_with("bert."));
    let prefix = match (model_prefixed, ckpt_prefixed) {
        (true, false) => {
            MappingRules::new().rename(r"^(embeddings|encoder|pooler)\.(.*)$", "bert.$1.$2")
        }
        (false, true) => MappingRules::new().rename(r"^bert\.(.*)$", "$1"),
        _ => Ok(MappingRules::new()),
    };
    let rules = prefix.and_then(|p| Ok(p.then(hf_bert_rules()?)));
    crate::hf::load_checkpoint(model, &ckpt, rules, strict, path)
}
