//! T5 — Raffel et al., "Exploring the Limits of Transfer Learning with a
//! Unified Text-to-Text Transformer", JMLR 2020, laid out as
//! `transformers`' `T5ForConditionalGeneration`: a shared embedding; an
//! encoder and a decoder of pre-norm blocks with RMS layer norms (no bias,
//! no mean subtraction), unscaled attention without biases whose scores get
//! a learnt relative-position bias (log-spaced buckets, computed by the
//! first block of each stack and shared by the others), a ReLU or gated-GELU
//! feed-forward; the decoder adds cross-attention; the language-model head
//! is the shared embedding (scaled by `d_model^-1/2`) or its own matrix.
//!
//! [`T5Config`] uses `transformers`' key names; [`load_hf_t5_weights`] maps
//! `transformers` state dicts onto these modules.

use std::path::Path;

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_interop::{Framework, MappingRules, Report};
use unidl_nn::{AttentionMask, KvCache, MultiHeadAttention, MultiHeadAttentionConfig};
use unidl_tensor::module::ModuleApi;
use unidl_train::{DecodingState, Seq2SeqModel, Seq2SeqSource, TrainError, row_index};

use crate::TextError;

/// The feed-forward block (`feed_forward_proj`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedForwardProj {
    /// `wo(relu(wi x))` (T5 v1.0, t5-small).
    #[default]
    Relu,
    /// `wo(gelu_new(wi_0 x) · wi_1 x)` (T5 v1.1, flan-t5).
    GatedGelu,
}

/// T5's architecture with `transformers`' `T5Config` names; the defaults are t5-small's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct T5Config {
    /// Vocabulary size.
    #[serde(default = "vocab_size")]
    pub vocab_size: usize,
    /// Model width.
    #[serde(default = "d_model")]
    pub d_model: usize,
    /// Width of each attention head.
    #[serde(default = "d_kv")]
    pub d_kv: usize,
    /// Feed-forward width.
    #[serde(default = "d_ff")]
    pub d_ff: usize,
    /// Encoder blocks.
    #[serde(default = "layers")]
    pub num_layers: usize,
    /// Decoder blocks (default: `num_layers`).
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads.
    #[serde(default = "heads")]
    pub num_heads: usize,
    /// Relative-position buckets.
    #[serde(default = "buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance from which all positions share the last bucket.
    #[serde(default = "max_distance")]
    pub relative_attention_max_distance: usize,
    /// Dropout everywhere (embeddings, attention, feed-forward, residuals).
    #[serde(default = "dropout")]
    pub dropout_rate: f64,
    /// RMS-norm epsilon.
    #[serde(default = "eps")]
    pub layer_norm_epsilon: f64,
    /// The feed-forward block.
    #[serde(default)]
    pub feed_forward_proj: FeedForwardProj,
    /// Whether the language-model head is the shared embedding.
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// Padding id.
    #[serde(default)]
    pub pad_token_id: usize,
    /// End-of-sequence id.
    #[serde(default = "eos")]
    pub eos_token_id: usize,
    /// The decoder's first input (T5: the padding id).
    #[serde(default)]
    pub decoder_start_token_id: usize,
    /// Scale of the initial weights (`initializer_factor`).
    #[serde(default = "one")]
    pub initializer_factor: f64,
}

fn vocab_size() -> usize {
    32128
}
fn d_model() -> usize {
    512
}
fn d_kv() -> usize {
    64
}
fn d_ff() -> usize {
    2048
}
fn layers() -> usize {
    6
}
fn heads() -> usize {
    8
}
fn buckets() -> usize {
    32
}
fn max_distance() -> usize {
    128
}
fn dropout() -> f64 {
    0.1
}
fn eps() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}
fn eos() -> usize {
    1
}
fn one() -> f64 {
    1.0
}

impl Default for T5Config {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every key has a default")
    }
}

impl T5Config {
    /// Decoder blocks.
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Checks the sizes; a typed error names the key.
    pub fn validate(&self) -> Result<(), TextError> {
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
            ),
        ] {
            if v == 0 {
                return Err(TextError::Config {
                    key: key.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.relative_attention_num_buckets < 4
            || self.relative_attention_max_distance < self.relative_attention_num_buckets / 2
        {
            return Err(TextError::Config {
                key: "relative_attention_num_buckets".into(),
                reason: format!(
                    "{} buckets up to distance {}: need at least 4 buckets and a distance of at least half of them",
                    self.relative_attention_num_buckets, self.relative_attention_max_distance
                ),
            });
        }
        for (key, id) in [
            ("pad_token_id", self.pad_token_id),
            ("eos_token_id", self.eos_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id),
        ] {
            if id >= self.vocab_size {
                return Err(TextError::Config {
                    key: key.into(),
                    reason: format!("{id} is not below vocab_size {}", self.vocab_size),
                });
            }
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return Err(TextError::Config {
                key: "dropout_rate".into(),
                reason: format!("{} is outside [0, 1)", self.dropout_rate),
            });
        }
        Ok(())
    }

    /// A bias-free dense layer with `transformers`' T5 initialisation
    /// (normal, standard deviation `factor · fan_in^-1/2`).
    fn dense(&self, i: usize, o: usize, std: f64, device: &Device) -> Linear {
        LinearConfig::new(i, o)
            .with_bias(false)
            .with_initializer(burn::nn::Initializer::Normal {
                mean: 0.0,
                std: self.initializer_factor * std,
            })
            .init(device)
    }

    fn norm(&self, device: &Device) -> RmsNorm {
        RmsNormConfig::new(self.d_model)
            .with_epsilon(self.layer_norm_epsilon)
            .init(device)
    }

    fn attention(&self, relative: bool, device: &Device) -> T5Attention {
        let (d, inner) = (self.d_model, self.num_heads * self.d_kv);
        let mut attention = MultiHeadAttentionConfig::new(d, self.num_heads)
            .with_d_head(Some(self.d_kv))
            .with_bias(false)
            .with_scaled(false)
            .with_dropout(self.dropout_rate)
            .init(device);
        attention.query = self.dense(d, inner, ((d * self.d_kv) as f64).powf(-0.5), device);
        attention.key = self.dense(d, inner, (d as f64).powf(-0.5), device);
        attention.value = self.dense(d, inner, (d as f64).powf(-0.5), device);
        attention.output = self.dense(inner, d, (inner as f64).powf(-0.5), device);
        T5Attention {
            attention,
            relative_attention_bias: relative.then(|| {
                EmbeddingConfig::new(self.relative_attention_num_buckets, self.num_heads)
                    .with_initializer(burn::nn::Initializer::Normal {
                        mean: 0.0,
                        std: self.initializer_factor * (d as f64).powf(-0.5),
                    })
                    .init(device)
            }),
        }
    }

    fn feed_forward(&self, device: &Device) -> T5FeedForward {
        let (d, f) = (self.d_model, self.d_ff);
        let wi = |_| self.dense(d, f, (d as f64).powf(-0.5), device);
        T5FeedForward {
            wi: (self.feed_forward_proj == FeedForwardProj::Relu).then(|| wi(0)),
            wi_0: (self.feed_forward_proj == FeedForwardProj::GatedGelu).then(|| wi(0)),
            wi_1: (self.feed_forward_proj == FeedForwardProj::GatedGelu).then(|| wi(1)),
            wo: self.dense(f, d, (f as f64).powf(-0.5), device),
            dropout: DropoutConfig::new(self.dropout_rate).init(),
        }
    }

    fn stack(&self, decoder: bool, device: &Device) -> T5Stack {
        let n = if decoder {
            self.decoder_layers()
        } else {
            self.num_layers
        };
        T5Stack {
            block: (0..n)
                .map(|i| T5Block {
                    self_attention: self.attention(i == 0, device),
                    self_norm: self.norm(device),
                    cross_attention: decoder.then(|| self.attention(false, device)),
                    cross_norm: decoder.then(|| self.norm(device)),
                    feed_forward: self.feed_forward(device),
                    ff_norm: self.norm(device),
                    dropout: DropoutConfig::new(self.dropout_rate).init(),
                })
                .collect(),
            final_layer_norm: self.norm(device),
            dropout: DropoutConfig::new(self.dropout_rate).init(),
            decoder,
            num_buckets: self.relative_attention_num_buckets,
            max_distance: self.relative_attention_max_distance,
        }
    }

    /// The encoder–decoder with its language-model head, initialised as
    /// `transformers` does.
    pub fn init(&self, device: &Device) -> Result<T5ForConditionalGeneration, TextError> {
        self.validate()?;
        Ok(T5ForConditionalGeneration {
            shared: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: self.initializer_factor,
                })
                .init(device),
            encoder: self.stack(false, device),
            decoder: self.stack(true, device),
            lm_head: (!self.tie_word_embeddings).then(|| {
                self.dense(
                    self.d_model,
                    self.vocab_size,
                    (self.d_model as f64).powf(-0.5),
                    device,
                )
            }),
            d_model: self.d_model,
            decoder_start: self.decoder_start_token_id,
        })
    }
}

/// T5's relative-position bucket of `relative = key − query` (as
/// `transformers`' `_relative_position_bucket`): half the buckets for each
/// direction when `bidirectional`, exact for small distances, log-spaced up
/// to `max_distance`, the last bucket beyond.
pub fn relative_position_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets as i64;
    let mut out = 0i64;
    let distance = if bidirectional {
        buckets /= 2;
        if relative > 0 {
            out += buckets;
        }
        relative.abs()
    } else {
        (-relative).max(0)
    };
    let max_exact = buckets / 2;
    if distance < max_exact {
        out += distance;
    } else {
        let large = max_exact
            + ((distance as f64 / max_exact as f64).ln()
                / (max_distance as f64 / max_exact as f64).ln()
                * (buckets - max_exact) as f64) as i64;
        out += large.min(buckets - 1);
    }
    out as usize
}

/// One attention sub-layer; the first block of a stack holds the relative
/// position bias.
#[derive(Module, Debug)]
pub struct T5Attention {
    /// `q`, `k`, `v`, `o` (no biases, unscaled).
    pub attention: MultiHeadAttention,
    /// `[buckets, heads]` (first block only).
    pub relative_attention_bias: Option<Embedding>,
}

/// The feed-forward sub-layer.
#[derive(Module, Debug)]
pub struct T5FeedForward {
    /// `wi` (ReLU).
    pub wi: Option<Linear>,
    /// `wi_0` (gated GELU: the gate).
    pub wi_0: Option<Linear>,
    /// `wi_1` (gated GELU: the value).
    pub wi_1: Option<Linear>,
    /// `wo`.
    pub wo: Linear,
    dropout: Dropout,
}

impl T5FeedForward {
    /// # Shapes
    /// - `x`: `[batch, tokens, d_model]` → the same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = match (&self.wi, &self.wi_0, &self.wi_1) {
            (Some(wi), _, _) => relu(wi.forward(x)),
            (None, Some(g), Some(v)) => gelu_approximate(g.forward(x.clone())) * v.forward(x),
            _ => unreachable!("built with wi or wi_0 and wi_1"),
        };
        self.wo.forward(self.dropout.forward(h))
    }
}

/// One pre-norm block (the decoder's with cross-attention).
#[derive(Module, Debug)]
pub struct T5Block {
    /// `layer.0.SelfAttention`.
    pub self_attention: T5Attention,
    /// `layer.0.layer_norm`.
    pub self_norm: RmsNorm,
    /// `layer.1.EncDecAttention` (decoder).
    pub cross_attention: Option<T5Attention>,
    /// `layer.1.layer_norm` (decoder).
    pub cross_norm: Option<RmsNorm>,
    /// `layer.{1,2}.DenseReluDense`.
    pub feed_forward: T5FeedForward,
    /// `layer.{1,2}.layer_norm`.
    pub ff_norm: RmsNorm,
    dropout: Dropout,
}

/// An encoder or decoder stack.
#[derive(Module, Debug)]
pub struct T5Stack {
    /// The blocks.
    pub block: Vec<T5Block>,
    /// `final_layer_norm`.
    pub final_layer_norm: RmsNorm,
    dropout: Dropout,
    #[module(skip)]
    decoder: bool,
    #[module(skip)]
    num_buckets: usize,
    #[module(skip)]
    max_distance: usize,
}

/// The encoder's output and padding, what the decoder attends to.
#[derive(Debug, Clone)]
pub struct T5Encoded {
    /// `[batch, source tokens, d_model]`.
    pub hidden: Tensor<3>,
    /// `[batch, source tokens]`, true on padding.
    pub padding: Tensor<2, Bool>,
}

/// Per decoder block: the self-attention's cache and the cross-attention's
/// projected encoder output.
#[derive(Debug, Clone, Default)]
pub struct T5DecoderCache {
    self_attention: Vec<KvCache>,
    cross_attention: Vec<KvCache>,
}

impl T5DecoderCache {
    /// Keeps batch rows `rows`, in that order (beam search).
    pub fn select(&self, rows: Tensor<1, Int>) -> T5DecoderCache {
        T5DecoderCache {
            self_attention: self
                .self_attention
                .iter()
                .map(|c| c.select(rows.clone()))
                .collect(),
            cross_attention: self
                .cross_attention
                .iter()
                .map(|c| c.select(rows.clone()))
                .collect(),
        }
    }

    /// Decoder steps cached so far.
    pub fn len(&self) -> usize {
        self.self_attention.first().map_or(0, KvCache::len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl T5Stack {
    /// `[1, heads, queries, keys]` for queries at `offset..offset + queries`.
    fn position_bias(
        &self,
        queries: usize,
        keys: usize,
        offset: usize,
        device: &Device,
    ) -> Tensor<4> {
        let table = self.block[0]
            .self_attention
            .relative_attention_bias
            .as_ref()
            .expect("the first block holds the bias");
        let buckets: Vec<i64> = (0..queries)
            .flat_map(|i| {
                (0..keys).map(move |j| {
                    relative_position_bucket(
                        j as i64 - (i + offset) as i64,
                        !self.decoder,
                        self.num_buckets,
                        self.max_distance,
                    ) as i64
                })
            })
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(buckets, [queries, keys]), device);
        let bias = table.forward(ids); // [q, k, heads]
        bias.permute([2, 0, 1]).unsqueeze::<4>()
    }

    fn run(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        encoded: Option<&T5Encoded>,
        mut cache: Option<&mut T5DecoderCache>,
    ) -> Tensor<3> {
        let [_, t, _] = x.dims();
        let device = x.device();
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let bias = self.position_bias(t, offset + t, offset, &device);
        let self_mask = AttentionMask {
            key_padding: padding,
            causal: self.decoder,
            bias: Some(bias),
        };
        let cross_mask = encoded.map(|e| AttentionMask::padding(e.padding.clone()));
        if let Some(c) = cache.as_deref_mut()
            && c.self_attention.is_empty()
        {
            c.self_attention = vec![KvCache::new(); self.block.len()];
            c.cross_attention = vec![KvCache::new(); self.block.len()];
        }
        let mut x = self.dropout.forward(x);
        for (i, block) in self.block.iter().enumerate() {
            let h = block.self_norm.forward(x.clone());
            let a = match cache.as_deref_mut() {
                Some(c) => block.self_attention.attention.forward_cached(
                    h,
                    &mut c.self_attention[i],
                    &self_mask,
                ),
                None => block.self_attention.attention.forward(h, None, &self_mask),
            };
            x = x + block.dropout.forward(a);
            if let (Some(cross), Some(norm), Some(enc), Some(mask)) = (
                &block.cross_attention,
                &block.cross_norm,
                encoded,
                &cross_mask,
            ) {
                let h = norm.forward(x.clone());
                let a = match cache.as_deref_mut() {
                    Some(c) => cross.attention.forward_cross_cached(
                        h,
                        enc.hidden.clone(),
                        &mut c.cross_attention[i],
                        mask,
                    ),
                    None => cross.attention.forward(h, Some(enc.hidden.clone()), mask),
                };
                x = x + block.dropout.forward(a);
            }
            let h = block.feed_forward.forward(block.ff_norm.forward(x.clone()));
            x = x + block.dropout.forward(h);
        }
        self.dropout.forward(self.final_layer_norm.forward(x))
    }
}

/// T5 (`transformers`' `T5ForConditionalGeneration`).
#[derive(Module, Debug)]
pub struct T5ForConditionalGeneration {
    /// `shared`: the token embedding of both stacks.
    pub shared: Embedding,
    /// The encoder.
    pub encoder: T5Stack,
    /// The decoder.
    pub decoder: T5Stack,
    /// `lm_head` when not tied to `shared`.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    d_model: usize,
    #[module(skip)]
    decoder_start: usize,
}

impl T5ForConditionalGeneration {
    /// Encodes source ids; `attention` is `true` on real tokens.
    ///
    /// # Shapes
    /// - `ids`, `attention`: `[batch, source tokens]` → hidden `[batch, source tokens, d_model]`
    pub fn encode(&self, ids: Tensor<2, Int>, attention: Tensor<2, Bool>) -> T5Encoded {
        let padding = attention.bool_not();
        let x = self.shared.forward(ids);
        let hidden = self.encoder.run(x, Some(padding.clone()), None, None);
        T5Encoded { hidden, padding }
    }

    /// Vocabulary logits of the decoder's positions (teacher forcing).
    ///
    /// # Shapes
    /// - `decoder_ids`: `[batch, target tokens]` → `[batch, target tokens, vocab]`
    pub fn decode(&self, encoded: &T5Encoded, decoder_ids: Tensor<2, Int>) -> Tensor<3> {
        let y = self.shared.forward(decoder_ids);
        let y = self.decoder.run(y, None, Some(encoded), None);
        self.logits(y)
    }

    /// The logits of new decoder steps, given the steps in `cache` (which
    /// grows by them): step-by-step generation without recomputing the prefix.
    ///
    /// # Shapes
    /// - `decoder_ids`: `[batch, new steps]` → `[batch, new steps, vocab]`
    pub fn decode_step(
        &self,
        encoded: &T5Encoded,
        decoder_ids: Tensor<2, Int>,
        cache: &mut T5DecoderCache,
    ) -> Tensor<3> {
        let y = self.shared.forward(decoder_ids);
        let y = self.decoder.run(y, None, Some(encoded), Some(cache));
        self.logits(y)
    }

    fn logits(&self, y: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = y.dims();
        match &self.lm_head {
            Some(head) => head.forward(y),
            None => {
                let y = y.mul_scalar((self.d_model as f64).powf(-0.5));
                let w = self.shared.weight.val(); // [V, d]
                let v = w.dims()[0];
                y.reshape([b * t, d])
                    .matmul(w.transpose())
                    .reshape([b, t, v])
            }
        }
    }

    /// The decoder's inputs for `labels` (`transformers`' `_shift_right`):
    /// the start token, then the labels but the last.
    ///
    /// # Shapes
    /// - `labels`: `[batch, target tokens]` → the same
    pub fn shift_right(&self, labels: Tensor<2, Int>) -> Tensor<2, Int> {
        let [b, t] = labels.dims();
        let start = Tensor::<2, Int>::full([b, 1], self.decoder_start as i64, &labels.device());
        Tensor::cat(vec![start, labels.narrow(1, 0, t - 1)], 1)
    }

    /// Encodes and decodes with teacher forcing.
    ///
    /// # Shapes
    /// - `ids`, `attention`: `[batch, source tokens]`; `decoder_ids`: `[batch, target tokens]`
    /// - output: `[batch, target tokens, vocab]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        attention: Tensor<2, Bool>,
        decoder_ids: Tensor<2, Int>,
    ) -> Tensor<3> {
        let encoded = self.encode(ids, attention);
        self.decode(&encoded, decoder_ids)
    }
}

/// What T5 keeps between decoding steps: the encoder's output and the
/// decoder's caches.
struct T5State {
    encoded: T5Encoded,
    cache: T5DecoderCache,
}

fn token_source(source: &Seq2SeqSource) -> Result<(Tensor<2, Int>, Tensor<2, Bool>), TrainError> {
    match source {
        Seq2SeqSource::Tokens { ids, mask } => Ok((ids.clone(), mask.clone())),
        Seq2SeqSource::Images(_) => Err(TrainError::Model(
            "T5 reads token ids; the task gives images".into(),
        )),
    }
}

impl Seq2SeqModel for T5ForConditionalGeneration {
    /// Teacher forcing: the decoder ids are the task's `[BOS] y` (T5's
    /// start token is the padding id; the mask is not needed: the decoder
    /// is causal and padded positions are ignored by the loss).
    fn seq2seq_logits(
        &self,
        source: &Seq2SeqSource,
        decoder_ids: Tensor<2, Int>,
        _decoder_mask: Tensor<2, Bool>,
    ) -> Tensor<3> {
        let (ids, mask) = token_source(source).expect("T5 is built for token sources");
        self.forward(ids, mask, decoder_ids)
    }

    fn begin_decoding(&self, source: &Seq2SeqSource) -> Result<DecodingState, TrainError> {
        let (ids, mask) = token_source(source)?;
        Ok(DecodingState::Model(Box::new(T5State {
            encoded: self.encode(ids, mask),
            cache: T5DecoderCache::default(),
        })))
    }

    fn decode_next(
        &self,
        state: &mut DecodingState,
        tokens: &[u32],
    ) -> Result<Tensor<2>, TrainError> {
        let s = t5_state(state)?;
        let device = s.encoded.hidden.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [tokens.len(), 1]), &device);
        let logits = self.decode_step(&s.encoded, ids, &mut s.cache); // [B, 1, V]
        let [b, _, v] = logits.dims();
        Ok(logits.reshape([b, v]))
    }

    fn reorder(
        &self,
        mut state: DecodingState,
        rows: &[usize],
    ) -> Result<DecodingState, TrainError> {
        let s = t5_state(&mut state)?;
        let index = row_index(rows, &s.encoded.hidden.device());
        let next = T5State {
            encoded: T5Encoded {
                hidden: s.encoded.hidden.clone().select(0, index.clone()),
                padding: s
                    .encoded
                    .padding
                    .clone()
                    .int()
                    .select(0, index.clone())
                    .bool(),
            },
            cache: s.cache.select(index),
        };
        Ok(DecodingState::Model(Box::new(next)))
    }
}

fn t5_state(state: &mut DecodingState) -> Result<&mut T5State, TrainError> {
    match state {
        DecodingState::Model(b) => b
            .downcast_mut::<T5State>()
            .ok_or_else(|| TrainError::Model("not a T5 decoding state".into())),
        DecodingState::Recompute { .. } => Err(TrainError::Model("not a T5 decoding state".into())),
    }
}

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
    let ckpt = crate::hf::read_checkpoint(path)?;
    // a tied model's checkpoint carries `lm_head.weight` as a copy of `shared`
    let tied = !model.state_dict().contains_key("lm_head.weight");
    let rules = (|| -> unidl_interop::Result<MappingRules> {
        let r = if tied {
            MappingRules::new().ignore(r"^lm_head\.weight$")?
        } else {
            MappingRules::new()
        };
        Ok(r.then(hf_t5_rules()?))
    })();
    crate::hf::load_checkpoint(model, &ckpt, rules, strict, path)
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
        if let Some(v) = facts.vocab_size
            && v != self.architecture.vocab_size
        {
            return Err(TextError::Config {
                key: "model.architecture.vocab_size".into(),
                reason: format!(
                    "{} does not match the run's tokenizer ({v} tokens)",
                    self.architecture.vocab_size
                ),
            }
            .into());
        }
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
