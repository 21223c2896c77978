//! T5's modules: relative-position buckets, attention, feed-forward,
//! blocks and stacks, and the encoder–decoder with its head.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{AttentionMask, KvCache, MultiHeadAttention, MultiHeadAttentionConfig};

use super::{FeedForwardProj, T5Config};
use crate::TextError;

impl T5Config {
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
