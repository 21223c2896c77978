//! Multi-head attention shared by the Transformer models of the zoo (BERT,
//! T5, XLNet, TrOCR): scaled or unscaled dot products, key-padding and
//! causal masks, an additive position bias (T5's relative buckets), separate
//! widths for the heads and the model (T5's `d_kv`), and a key/value cache for
//! step-by-step decoding.
//!
//! Burn's own `MultiHeadAttention` has no additive bias, no unscaled mode and
//! ties the inner width to the model's; this module adds them and keeps
//! PyTorch's layout: `query`, `key`, `value` and `output` are [`Linear`]
//! layers (Burn holds the weight as `[in, out]`, the transpose of PyTorch's
//! `[out, in]`; the interop mapping transposes on load).
//!
//! Masked scores are set to the lowest finite value of the scores' dtype,
//! as `transformers` does, so a row whose keys are all masked attends
//! uniformly instead of turning into NaN.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Tensor};

use crate::Device;

/// Configuration of [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Width of the queries' input (and of the output).
    pub d_model: usize,
    /// Number of heads.
    pub n_heads: usize,
    /// Width of each head; default `d_model / n_heads` (T5 sets it apart).
    #[config(default = "None")]
    pub d_head: Option<usize>,
    /// Width of the keys' and values' input when it differs from `d_model`
    /// (cross-attention to an encoder of another width).
    #[config(default = "None")]
    pub d_context: Option<usize>,
    /// Whether the four projections have biases (BERT yes, T5 no).
    #[config(default = true)]
    pub bias: bool,
    /// Whether scores are divided by `√d_head` (T5 folds the scale into its
    /// initialisation and does not).
    #[config(default = true)]
    pub scaled: bool,
    /// Dropout on the attention probabilities.
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// Multi-head attention: `softmax(q·kᵀ/√d + bias, masked) · v`, per head,
/// then the output projection.
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    /// Query projection, `d_model → n_heads·d_head`.
    pub query: Linear,
    /// Key projection, `d_context → n_heads·d_head`.
    pub key: Linear,
    /// Value projection, `d_context → n_heads·d_head`.
    pub value: Linear,
    /// Output projection, `n_heads·d_head → d_model`.
    pub output: Linear,
    dropout: Dropout,
    n_heads: usize,
    d_head: usize,
    scaled: bool,
}

/// What a query may attend to, and what is added to its scores.
#[derive(Debug, Clone, Default)]
pub struct AttentionMask {
    /// `[batch, keys]`, `true` where the key is padding (never attended).
    pub key_padding: Option<Tensor<2, Bool>>,
    /// Whether query `i` may only see keys `j ≤ i + offset`, where `offset`
    /// is the number of cached keys (decoders).
    pub causal: bool,
    /// Added to the scores before the softmax: `[1 or batch, heads, queries,
    /// keys]` (T5's relative position bias, XLNet's relative terms).
    pub bias: Option<Tensor<4>>,
}

impl AttentionMask {
    /// Only a key-padding mask.
    pub fn padding(key_padding: Tensor<2, Bool>) -> Self {
        AttentionMask {
            key_padding: Some(key_padding),
            ..Default::default()
        }
    }
}

/// Keys and values of the steps decoded so far, per layer, so that each new
/// step projects only its own token.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// `[batch, heads, steps, d_head]`.
    keys: Option<Tensor<4>>,
    /// `[batch, heads, steps, d_head]`.
    values: Option<Tensor<4>>,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached steps.
    pub fn len(&self) -> usize {
        self.keys.as_ref().map_or(0, |k| k.dims()[2])
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps batch rows `rows` (`[n]` indices, repeats allowed), in that
    /// order: beam search reorders its hypotheses with it.
    pub fn select(&self, rows: Tensor<1, burn::tensor::Int>) -> KvCache {
        KvCache {
            keys: self.keys.clone().map(|k| k.select(0, rows.clone())),
            values: self.values.clone().map(|v| v.select(0, rows)),
        }
    }
}

impl MultiHeadAttentionConfig {
    /// Builds the layer; the projections use Burn's default initialiser.
    ///
    /// # Panics
    /// When `d_head` is not given and `n_heads` does not divide `d_model`
    /// (model configs check this first and return a typed error).
    pub fn init(&self, device: &Device) -> MultiHeadAttention {
        let d_head = self.d_head.unwrap_or_else(|| {
            assert!(
                self.n_heads > 0 && self.d_model.is_multiple_of(self.n_heads),
                "d_model {} is not a multiple of n_heads {}",
                self.d_model,
                self.n_heads
            );
            self.d_model / self.n_heads
        });
        let inner = self.n_heads * d_head;
        let d_context = self.d_context.unwrap_or(self.d_model);
        let linear = |i: usize, o: usize| LinearConfig::new(i, o).with_bias(self.bias).init(device);
        MultiHeadAttention {
            query: linear(self.d_model, inner),
            key: linear(d_context, inner),
            value: linear(d_context, inner),
            output: linear(inner, self.d_model),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_heads: self.n_heads,
            d_head,
            scaled: self.scaled,
        }
    }
}

impl MultiHeadAttention {
    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    /// Width of each head.
    pub fn d_head(&self) -> usize {
        self.d_head
    }

    /// `[B, L, n·d] → [B, n, L, d]`.
    fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, _] = x.dims();
        x.reshape([b, l, self.n_heads, self.d_head]).swap_dims(1, 2)
    }

    /// Attention of `query` over `context` (itself when `None`).
    ///
    /// # Shapes
    /// - `query`: `[batch, queries, d_model]`
    /// - `context`: `[batch, keys, d_context]`
    /// - `mask.key_padding`: `[batch, keys]`; `mask.bias`: `[1|batch, heads, queries, keys]`
    /// - output: `[batch, queries, d_model]`
    pub fn forward(
        &self,
        query: Tensor<3>,
        context: Option<Tensor<3>>,
        mask: &AttentionMask,
    ) -> Tensor<3> {
        let context = context.unwrap_or_else(|| query.clone());
        let k = self.heads(self.key.forward(context.clone()));
        let v = self.heads(self.value.forward(context));
        self.attend(query, k, v, mask, 0)
    }

    /// Self-attention of the new decoder steps `query` over the cached steps
    /// and themselves; appends their keys and values to `cache`. With
    /// `mask.causal` query `i` sees the cached keys and new keys `≤ i`.
    ///
    /// # Shapes
    /// - `query`: `[batch, new steps, d_model]`
    /// - `mask.key_padding`: `[batch, cached + new steps]`; `mask.bias`:
    ///   `[1|batch, heads, new steps, cached + new steps]`
    /// - output: `[batch, new steps, d_model]`
    pub fn forward_cached(
        &self,
        query: Tensor<3>,
        cache: &mut KvCache,
        mask: &AttentionMask,
    ) -> Tensor<3> {
        let offset = cache.len();
        let k = self.heads(self.key.forward(query.clone()));
        let v = self.heads(self.value.forward(query.clone()));
        let k = match cache.keys.take() {
            Some(old) => Tensor::cat(vec![old, k], 2),
            None => k,
        };
        let v = match cache.values.take() {
            Some(old) => Tensor::cat(vec![old, v], 2),
            None => v,
        };
        cache.keys = Some(k.clone());
        cache.values = Some(v.clone());
        self.attend(query, k, v, mask, offset)
    }

    /// Cross-attention whose keys and values (from a fixed encoder output)
    /// are projected once and kept in `cache`.
    ///
    /// # Shapes
    /// - `query`: `[batch, queries, d_model]`; `context`: `[batch, keys, d_context]`
    /// - output: `[batch, queries, d_model]`
    pub fn forward_cross_cached(
        &self,
        query: Tensor<3>,
        context: Tensor<3>,
        cache: &mut KvCache,
        mask: &AttentionMask,
    ) -> Tensor<3> {
        if cache.keys.is_none() {
            cache.keys = Some(self.heads(self.key.forward(context.clone())));
            cache.values = Some(self.heads(self.value.forward(context)));
        }
        let k = cache.keys.clone().expect("set above");
        let v = cache.values.clone().expect("set above");
        self.attend(query, k, v, mask, 0)
    }

    fn attend(
        &self,
        query: Tensor<3>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: &AttentionMask,
        offset: usize,
    ) -> Tensor<3> {
        let [b, lq, _] = query.dims();
        let lk = k.dims()[2];
        let q = self.heads(self.query.forward(query));
        let mut scores = q.matmul(k.swap_dims(2, 3));
        if self.scaled {
            scores = scores.div_scalar((self.d_head as f64).sqrt());
        }
        if let Some(bias) = &mask.bias {
            scores = scores + bias.clone();
        }
        let lowest = lowest_finite(scores.dtype());
        if let Some(pad) = &mask.key_padding {
            let pad = pad
                .clone()
                .reshape([b, 1, 1, lk])
                .expand([b, self.n_heads, lq, lk]);
            scores = scores.mask_fill(pad, lowest);
        }
        if mask.causal {
            let future = causal_mask(lq, lk, offset, &scores.device());
            scores = scores.mask_fill(
                future.unsqueeze::<4>().expand([b, self.n_heads, lq, lk]),
                lowest,
            );
        }
        let probs = self.dropout.forward(softmax(scores, 3));
        let out = probs
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, lq, self.n_heads * self.d_head]);
        self.output.forward(out)
    }
}

/// `[queries, keys]`, `true` where key `j` lies after query `i` (`j > i + offset`).
pub fn causal_mask(queries: usize, keys: usize, offset: usize, device: &Device) -> Tensor<2, Bool> {
    let data: Vec<bool> = (0..queries)
        .flat_map(|i| (0..keys).map(move |j| j > i + offset))
        .collect();
    Tensor::from_data(burn::tensor::TensorData::new(data, [queries, keys]), device)
}

/// The lowest finite value of `dtype` (what masked scores are set to).
pub(crate) fn lowest_finite(dtype: DType) -> f32 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.38e38,
        _ => f32::MIN,
    }
}
