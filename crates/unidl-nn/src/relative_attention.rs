//! Relative multi-head attention with two streams, as Transformer-XL
//! (Dai et al., 2019) and XLNet (Yang et al., "XLNet: Generalized
//! Autoregressive Pretraining for Language Understanding", NeurIPS 2019)
//! define it.
//!
//! The score of query `i` for key `j` is the sum of three terms, scaled by
//! `1/√d_head`:
//!
//! - **content**: `(q_i + u) · k_j`, `u` the learnt [`content_bias`]
//!   (`r_w_bias` in `transformers`);
//! - **position**: `(q_i + v) · W_r p(i − j)`, `p` a sinusoidal encoding of
//!   the distance ([`sinusoid_relative_positions`]) and `v` the
//!   [`position_bias`] (`r_r_bias`); it is computed against every distance
//!   once and moved into place by [`rel_shift`];
//! - **segment** (XLNet): `(q_i + b) · s_{ij}`, `s_{ij}` one of two learnt
//!   vectors ([`segment_embed`]) chosen by whether `i` and `j` lie in the same
//!   segment, `b` the [`segment_bias`] (`r_s_bias`).
//!
//! Masked scores are set to the lowest finite value, so a row whose keys
//! are all masked attends uniformly (as `transformers`' `−1e30` does).
//!
//! **Two streams** (XLNet's permutation language modelling): the content
//! stream `h` attends with queries from its own tokens; the query stream `g`
//! attends to the same keys and values (the content stream's) with queries
//! from `g`, under its own mask (a token must not see itself there), and,
//! given a `target_mapping`, only for the predicted positions.
//!
//! The projections are stored as `[d_model, n_heads, d_head]` tensors with
//! no bias, the layout of the original XLNet code and of `transformers`, so
//! that its checkpoints load without reshaping.
//!
//! [`content_bias`]: RelativeAttention::content_bias
//! [`position_bias`]: RelativeAttention::position_bias
//! [`segment_bias`]: RelativeAttention::segment_bias
//! [`segment_embed`]: RelativeAttention::segment_embed

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use crate::Device;
use crate::attention::lowest_finite;

/// Configuration of [`RelativeAttention`].
#[derive(Config, Debug)]
pub struct RelativeAttentionConfig {
    /// Width of the input and output.
    pub d_model: usize,
    /// Number of heads.
    pub n_heads: usize,
    /// Width of each head (XLNet: `d_model / n_heads`).
    pub d_head: usize,
    /// Dropout on the attention probabilities.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Standard deviation of the normal initial values of every parameter
    /// (XLNet's `initializer_range`).
    #[config(default = 0.02)]
    pub initializer_std: f64,
}

/// Relative multi-head attention (content, position and segment terms)
/// for one or two streams; see the [module docs](self).
#[derive(Module, Debug)]
pub struct RelativeAttention {
    /// Query projection `[d_model, n_heads, d_head]` (`q`).
    pub query: Param<Tensor<3>>,
    /// Key projection `[d_model, n_heads, d_head]` (`k`).
    pub key: Param<Tensor<3>>,
    /// Value projection `[d_model, n_heads, d_head]` (`v`).
    pub value: Param<Tensor<3>>,
    /// Output projection `[d_model, n_heads, d_head]` (`o`; applied as its
    /// transpose, heads → model).
    pub output: Param<Tensor<3>>,
    /// Projection of the position encodings `[d_model, n_heads, d_head]` (`r`).
    pub position: Param<Tensor<3>>,
    /// `u`, added to the queries of the content term, `[n_heads, d_head]` (`r_w_bias`).
    pub content_bias: Param<Tensor<2>>,
    /// `v`, added to the queries of the position term, `[n_heads, d_head]` (`r_r_bias`).
    pub position_bias: Param<Tensor<2>>,
    /// Added to the queries of the segment term, `[n_heads, d_head]` (`r_s_bias`).
    pub segment_bias: Param<Tensor<2>>,
    /// The segment vectors `[2, n_heads, d_head]`: index 0 for a key in the
    /// query's segment, 1 for another segment (`seg_embed`).
    pub segment_embed: Param<Tensor<3>>,
    dropout: Dropout,
    n_heads: usize,
    d_head: usize,
}

/// What every layer's relative attention shares for one batch: the
/// position encodings, the segment matrix and the masks of both streams.
///
/// `queries` is the number of tokens of the batch, `keys` the number of
/// positions attended to (the same, as no memory is carried over).
#[derive(Debug, Clone)]
pub struct RelativeContext {
    /// `[queries + keys, d_model]`: the encodings of the distances `keys`,
    /// `keys − 1`, …, `1 − queries`, in that order
    /// ([`sinusoid_relative_positions`]).
    pub positions: Tensor<2>,
    /// `[batch, queries, keys]`: 1 where query and key lie in different
    /// segments, 0 where in the same ([`segment_matrix`]); `None`: one
    /// segment (no segment term).
    pub segments: Option<Tensor<3>>,
    /// `[batch, queries, keys]`: `true` where the content stream may not
    /// attend; `None`: everything is attended.
    pub content_mask: Option<Tensor<3, Bool>>,
    /// `[batch, queries, keys]`: `true` where the query stream may not
    /// attend; `None`: everything is attended.
    pub query_mask: Option<Tensor<3, Bool>>,
}

impl RelativeAttentionConfig {
    /// Builds the layer with normal initial values of standard deviation
    /// `initializer_std` for every parameter (as `transformers` initialises
    /// XLNet).
    pub fn init(&self, device: &Device) -> RelativeAttention {
        let normal = Initializer::Normal {
            mean: 0.0,
            std: self.initializer_std,
        };
        let (d, n, h) = (self.d_model, self.n_heads, self.d_head);
        let proj = || normal.init([d, n, h], device);
        let bias = || normal.init([n, h], device);
        RelativeAttention {
            query: proj(),
            key: proj(),
            value: proj(),
            output: proj(),
            position: proj(),
            content_bias: bias(),
            position_bias: bias(),
            segment_bias: bias(),
            segment_embed: normal.init([2, n, h], device),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_heads: n,
            d_head: h,
        }
    }
}

impl RelativeAttention {
    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    /// Width of each head.
    pub fn d_head(&self) -> usize {
        self.d_head
    }

    /// `x · W` per head.
    ///
    /// # Shapes
    /// - `x`: `[batch, tokens, d_model]`, `w`: `[d_model, heads, d_head]`
    ///   → `[batch, heads, tokens, d_head]`
    fn project(&self, x: Tensor<3>, w: &Param<Tensor<3>>) -> Tensor<4> {
        let [b, l, d] = x.dims();
        let (n, h) = (self.n_heads, self.d_head);
        x.reshape([b * l, d])
            .matmul(w.val().reshape([d, n * h]))
            .reshape([b, l, n, h])
            .swap_dims(1, 2)
    }

    /// The output projection of the attention vectors.
    ///
    /// # Shapes
    /// - `vec`: `[batch, heads, tokens, d_head]` → `[batch, tokens, d_model]`
    fn project_out(&self, vec: Tensor<4>) -> Tensor<3> {
        let [b, n, l, h] = vec.dims();
        let w = self.output.val();
        let d = w.dims()[0];
        vec.swap_dims(1, 2)
            .reshape([b * l, n * h])
            .matmul(w.reshape([d, n * h]).transpose())
            .reshape([b, l, d])
    }

    /// A `[heads, d_head]` bias as `[1, heads, 1, d_head]`.
    fn head_bias(&self, p: &Param<Tensor<2>>) -> Tensor<4> {
        p.val().reshape([1, self.n_heads, 1, self.d_head])
    }

    /// The attention vectors of queries `q` over keys `k` and values `v`.
    ///
    /// # Shapes
    /// - `q`: `[batch, heads, queries, d_head]`; `k`, `v`: `[batch, heads,
    ///   keys, d_head]`; `k_r`: `[batch, heads, queries + keys, d_head]`
    /// - `segments`, `mask`: `[batch, queries, keys]`
    /// - output: `[batch, heads, queries, d_head]`
    fn core(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        k_r: Tensor<4>,
        segments: Option<&Tensor<3>>,
        mask: Option<&Tensor<3, Bool>>,
    ) -> Tensor<4> {
        let [b, n, lq, h] = q.dims();
        let lk = k.dims()[2];
        let content = (q.clone() + self.head_bias(&self.content_bias)).matmul(k.swap_dims(2, 3));
        let position =
            (q.clone() + self.head_bias(&self.position_bias)).matmul(k_r.swap_dims(2, 3));
        let mut scores = content + rel_shift(position, lk);
        if let Some(segments) = segments {
            let qs = q + self.head_bias(&self.segment_bias);
            // (q + b) · s for s = same (0) and other (1): [b, n, lq, 2]
            let s = self
                .segment_embed
                .val()
                .permute([1, 2, 0])
                .unsqueeze_dim::<4>(0)
                .expand([b, n, h, 2]);
            let e = qs.matmul(s);
            let same = e.clone().narrow(3, 0, 1);
            let other = e.narrow(3, 1, 1);
            let differ = segments.clone().unsqueeze_dim::<4>(1);
            scores = scores + same.clone() + (other - same) * differ;
        }
        scores = scores.div_scalar((h as f64).sqrt());
        if let Some(mask) = mask {
            let lowest = lowest_finite(scores.dtype());
            scores = scores.mask_fill(
                mask.clone().unsqueeze_dim::<4>(1).expand([b, n, lq, lk]),
                lowest,
            );
        }
        self.dropout.forward(softmax(scores, 3)).matmul(v)
    }

    /// The projected position encodings, one set per batch row.
    ///
    /// # Shapes
    /// - `positions`: `[distances, d_model]` → `[batch, heads, distances, d_head]`
    fn position_keys(&self, positions: Tensor<2>, batch: usize) -> Tensor<4> {
        let [r, _] = positions.dims();
        self.project(positions.unsqueeze_dim::<3>(0), &self.position)
            .expand([batch, self.n_heads, r, self.d_head])
    }

    /// The content stream alone (XLNet's fine-tuning and inference):
    /// attention of `h` over itself, before the residual connection.
    ///
    /// # Shapes
    /// - `h`: `[batch, tokens, d_model]`
    /// - `ctx.positions`: `[2·tokens, d_model]`; `ctx.segments`,
    ///   `ctx.content_mask`: `[batch, tokens, tokens]`
    /// - output: `[batch, tokens, d_model]`
    pub fn forward(&self, h: Tensor<3>, ctx: &RelativeContext) -> Tensor<3> {
        let b = h.dims()[0];
        let q = self.project(h.clone(), &self.query);
        let k = self.project(h.clone(), &self.key);
        let v = self.project(h, &self.value);
        let k_r = self.position_keys(ctx.positions.clone(), b);
        let vec = self.core(
            q,
            k,
            v,
            k_r,
            ctx.segments.as_ref(),
            ctx.content_mask.as_ref(),
        );
        self.project_out(vec)
    }

    /// Both streams (XLNet's two-stream attention): the content stream `h`
    /// as [`forward`](Self::forward), and the query stream `g` attending to
    /// `h`'s keys and values under `ctx.query_mask`. With a
    /// `target_mapping` (`[batch, predictions, tokens]`, row `m` one-hot on
    /// the position of prediction `m`), `g` holds one row per prediction,
    /// whose query takes that position's encodings and mask; without one,
    /// `g` holds one row per token.
    ///
    /// Returns the attention outputs of both streams, before the residual
    /// connections.
    ///
    /// # Shapes
    /// - `h`: `[batch, tokens, d_model]`
    /// - `g`: `[batch, predictions, d_model]` (`[batch, tokens, d_model]`
    ///   without a `target_mapping`)
    /// - `target_mapping`: `[batch, predictions, tokens]`
    /// - `ctx`: as for [`forward`](Self::forward), `ctx.query_mask`:
    ///   `[batch, tokens, tokens]`
    /// - output: `([batch, tokens, d_model], [batch, predictions, d_model])`
    pub fn forward_two_stream(
        &self,
        h: Tensor<3>,
        g: Tensor<3>,
        target_mapping: Option<Tensor<3>>,
        ctx: &RelativeContext,
    ) -> (Tensor<3>, Tensor<3>) {
        let [b, t, _] = h.dims();
        let n = self.n_heads;
        let q_h = self.project(h.clone(), &self.query);
        let k = self.project(h.clone(), &self.key);
        let v = self.project(h, &self.value);
        let k_r = self.position_keys(ctx.positions.clone(), b);
        let vec_h = self.core(
            q_h,
            k.clone(),
            v.clone(),
            k_r.clone(),
            ctx.segments.as_ref(),
            ctx.content_mask.as_ref(),
        );
        let q_g = self.project(g, &self.query);
        let vec_g = match target_mapping {
            Some(map) => {
                let p = map.dims()[1];
                let map = map.unsqueeze_dim::<4>(1); // [b, 1, p, t]
                // each prediction's query moves to its position …
                let q_pos = map.clone().swap_dims(2, 3).expand([b, n, t, p]).matmul(q_g);
                let vec = self.core(
                    q_pos,
                    k,
                    v,
                    k_r,
                    ctx.segments.as_ref(),
                    ctx.query_mask.as_ref(),
                );
                // … and its result back to the prediction
                map.expand([b, n, p, t]).matmul(vec)
            }
            None => self.core(
                q_g,
                k,
                v,
                k_r,
                ctx.segments.as_ref(),
                ctx.query_mask.as_ref(),
            ),
        };
        (self.project_out(vec_h), self.project_out(vec_g))
    }
}

/// Transformer-XL's relative shift: moves the scores computed against every
/// distance (`x[…, i, p]` for the distance `keys − p`, as
/// [`sinusoid_relative_positions`] orders them) to the scores of key `j`
/// (`out[…, i, j] = x[…, i, queries − i + j]`, the distance `i − j` when
/// queries and keys are the same tokens). A reshape, not a gather, so it is
/// cheap and differentiable.
///
/// # Shapes
/// - `x`: `[batch, heads, queries, queries + keys]` → `[batch, heads, queries, keys]`
pub fn rel_shift(x: Tensor<4>, keys: usize) -> Tensor<4> {
    let [b, n, q, r] = x.dims();
    if q == 0 || r == 0 {
        return Tensor::zeros([b, n, q, keys], &x.device());
    }
    x.reshape([b, n, r, q])
        .narrow(2, 1, r - 1)
        .reshape([b, n, q, r - 1])
        .narrow(3, 0, keys)
}

/// XLNet's sinusoidal encodings of the relative distances `keys`,
/// `keys − 1`, …, `1 − queries` (bidirectional attention), each distance
/// clamped to `±clamp` when given: `[sin(d·f), cos(d·f)]` with the
/// frequencies `f_k = 10000^(−2k/d_model)`, `k < d_model/2`, computed in
/// `f32` as `transformers` does.
///
/// # Shapes
/// - output: `[queries + keys, 2·⌊d_model/2⌋]` (`d_model` is even in XLNet)
pub fn sinusoid_relative_positions(
    queries: usize,
    keys: usize,
    d_model: usize,
    clamp: Option<usize>,
    device: &Device,
) -> Tensor<2> {
    let half = d_model / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|k| 1.0 / 10000f32.powf((2 * k) as f32 / d_model as f32))
        .collect();
    let rows = queries + keys;
    let mut data = Vec::with_capacity(rows * 2 * half);
    for p in 0..rows {
        let mut d = keys as i64 - p as i64;
        if let Some(c) = clamp {
            d = d.clamp(-(c as i64), c as i64);
        }
        let d = d as f32;
        data.extend(freqs.iter().map(|f| (d * f).sin()));
        data.extend(freqs.iter().map(|f| (d * f).cos()));
    }
    Tensor::from_data(TensorData::new(data, [rows, 2 * half]), device)
}

/// XLNet's segment matrix: 1 where query `i`'s segment id differs from key
/// `j`'s, 0 where they are equal (any ids: only equality matters, so
/// XLNet's `<cls>` segment 2 and padding segment 3 are segments of their own).
///
/// # Shapes
/// - `query_segments`: `[batch, queries]`, `key_segments`: `[batch, keys]`
///   → `[batch, queries, keys]`
pub fn segment_matrix(query_segments: Tensor<2, Int>, key_segments: Tensor<2, Int>) -> Tensor<3> {
    let [b, q] = query_segments.dims();
    let k = key_segments.dims()[1];
    query_segments
        .unsqueeze_dim::<3>(2)
        .expand([b, q, k])
        .not_equal(key_segments.unsqueeze_dim::<3>(1).expand([b, q, k]))
        .float()
}
