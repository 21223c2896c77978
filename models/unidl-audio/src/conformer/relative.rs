//! The paper's relative positional self-attention (`pos_encoding =
//! "relative"`): Transformer-XL's relative sinusoidal encoding (Dai et al.,
//! 2019, §3.3), as ESPnet's `RelPositionalEncoding` and
//! `RelPositionMultiHeadedAttention` (the "latest" `rel_pos_type`) define it.
//!
//! Before the layers, [`RelPositionalEncoding`] scales the frames by
//! `√d_model` and encodes the relative positions `T − 1, T − 2, …, −(T − 1)`
//! (dropout on both). In each layer the score of query `i` for key `j` is
//!
//! ```text
//! ((q_i + u)·k_j + (q_i + v)·W_pos p(i − j)) / √d_head
//! ```
//!
//! with `u`, `v` the learnt [`pos_bias_u`](RelPositionTerms::pos_bias_u),
//! [`pos_bias_v`](RelPositionTerms::pos_bias_v) and `W_pos` the bias-free
//! [`linear_pos`](RelPositionTerms::linear_pos); the position term is
//! computed against every relative position once and moved into place by
//! [`unidl_nn::rel_shift`]. The query, key, value and output projections are
//! the layer's `self_attn` (ESPnet's `linear_{q,k,v,out}`).

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{DType, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{
    AttentionMask, Dropout, DropoutConfig, Initializer, Linear, LinearConfig, MultiHeadAttention,
};

/// The encodings of the relative positions `T − 1, T − 2, …, −(T − 1)`, in
/// that order (ESPnet's `RelPositionalEncoding.pe` around its centre): row
/// `p` holds position `t = T − 1 − p` as `sin(t·f_k)` at column `2k` and
/// `cos(t·f_k)` at `2k + 1`, `f_k = exp(−2k·ln(10000)/d_model)`, computed in
/// `f32` as PyTorch does.
///
/// # Shapes
/// output: `[2T − 1, d_model]` (`d_model` even; `T ≥ 1`)
pub fn relative_sinusoids(frames: usize, d_model: usize, device: &Device) -> Tensor<2> {
    let step = -(10000f64.ln() / d_model as f64) as f32;
    let freqs: Vec<f32> = (0..d_model / 2)
        .map(|k| ((2 * k) as f32 * step).exp())
        .collect();
    let rows = 2 * frames - 1;
    let mut data = Vec::with_capacity(rows * d_model);
    for p in 0..rows {
        let t = (frames as i64 - 1 - p as i64) as f32;
        for f in &freqs {
            let a = t * f;
            data.extend([a.sin(), a.cos()]);
        }
    }
    Tensor::from_data(TensorData::new(data, [rows, d_model]), device)
}

/// The front of the relative variant (no parameters): the frames scaled by
/// `√d_model` and the relative position encodings, dropout on both.
#[derive(Module, Debug)]
pub struct RelPositionalEncoding {
    dropout: Dropout,
    d_model: usize,
}

impl RelPositionalEncoding {
    /// With `dropout` on the scaled frames and on the encodings.
    pub fn new(d_model: usize, dropout: f64) -> Self {
        RelPositionalEncoding {
            dropout: DropoutConfig::new(dropout).init(),
            d_model,
        }
    }

    /// # Shapes
    /// `[B, T, d]` → (`[B, T, d]` scaled, the encodings `[2T − 1, d]`).
    pub fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<2>) {
        let t = x.dims()[1];
        let pos = relative_sinusoids(t, self.d_model, &x.device());
        let x = x.mul_scalar((self.d_model as f64).sqrt());
        (self.dropout.forward(x), self.dropout.forward(pos))
    }
}

/// What the relative attention adds to a layer's `self_attn` (ESPnet's
/// `self_attn.{linear_pos,pos_bias_u,pos_bias_v}`): `d² + 2d` parameters.
#[derive(Module, Debug)]
pub struct RelPositionTerms {
    /// Projection of the position encodings, `d → d`, no bias.
    pub linear_pos: Linear,
    /// `u`, added to the queries of the content term, `[heads, d_head]`.
    pub pos_bias_u: Param<Tensor<2>>,
    /// `v`, added to the queries of the position term, `[heads, d_head]`.
    pub pos_bias_v: Param<Tensor<2>>,
    /// On the attention probabilities.
    dropout: Dropout,
    n_heads: usize,
    d_head: usize,
}

impl RelPositionTerms {
    /// PyTorch's initialisation, as ESPnet: `linear_pos` as any `nn.Linear`,
    /// `u` and `v` Xavier-uniform over `[heads, d_head]`.
    pub fn new(d_model: usize, n_heads: usize, dropout: f64, device: &Device) -> Self {
        let d_head = d_model / n_heads;
        let xavier = || {
            Initializer::XavierUniform { gain: 1.0 }.init_with(
                [n_heads, d_head],
                Some(d_head),
                Some(n_heads),
                device,
            )
        };
        RelPositionTerms {
            linear_pos: LinearConfig::new(d_model, d_model)
                .with_bias(false)
                .init(device),
            pos_bias_u: xavier(),
            pos_bias_v: xavier(),
            dropout: DropoutConfig::new(dropout).init(),
            n_heads,
            d_head,
        }
    }

    /// `[B, L, h·d_head]` → `[B, L, h, d_head]`.
    fn heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, l, _] = x.dims();
        x.reshape([b, l, self.n_heads, self.d_head])
    }

    /// A `[heads, d_head]` bias as `[1, 1, heads, d_head]`.
    fn bias(&self, p: &Param<Tensor<2>>) -> Tensor<4> {
        p.val().reshape([1, 1, self.n_heads, self.d_head])
    }

    /// Relative self-attention of `x` with `attn`'s projections; padded keys
    /// (`mask.key_padding`) are never attended.
    ///
    /// # Shapes
    /// `x`: `[B, T, d]`; `pos`: `[2T − 1, d]`
    /// ([`relative_sinusoids`]); `mask.key_padding`: `[B, T]` → `[B, T, d]`.
    pub fn forward(
        &self,
        attn: &MultiHeadAttention,
        x: Tensor<3>,
        pos: Tensor<2>,
        mask: &AttentionMask,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, dh) = (self.n_heads, self.d_head);
        let r = pos.dims()[0];
        let q = self.heads(attn.query.forward(x.clone())); // [B, T, h, dh]
        let k = self.heads(attn.key.forward(x.clone())).swap_dims(1, 2); // [B, h, T, dh]
        let v = self.heads(attn.value.forward(x)).swap_dims(1, 2); // [B, h, T, dh]
        let p = self
            .heads(self.linear_pos.forward(pos.unsqueeze_dim::<3>(0))) // [1, 2T−1, h, dh]
            .swap_dims(1, 2)
            .expand([b, h, r, dh]); // [B, h, 2T−1, dh]
        let q_u = (q.clone() + self.bias(&self.pos_bias_u)).swap_dims(1, 2); // [B, h, T, dh]
        let q_v = (q + self.bias(&self.pos_bias_v)).swap_dims(1, 2); // [B, h, T, dh]
        let content = q_u.matmul(k.swap_dims(2, 3)); // [B, h, T, T]
        let position = q_v.matmul(p.swap_dims(2, 3)); // [B, h, T, 2T−1]
        // a zero column in front makes distance i − j sit at column T − i + j,
        // what unidl_nn::rel_shift picks: [B, h, T, 2T] → [B, h, T, T]
        let zero = Tensor::zeros([b, h, t, 1], &position.device());
        let position = unidl_nn::rel_shift(Tensor::cat(vec![zero, position], 3), t);
        let mut scores = (content + position).div_scalar((dh as f64).sqrt());
        if let Some(pad) = &mask.key_padding {
            let lowest = match scores.dtype() {
                DType::F16 => -65504.0,
                DType::BF16 => -3.38e38,
                _ => f32::MIN,
            };
            let pad = pad.clone().reshape([b, 1, 1, t]).expand([b, h, t, t]);
            scores = scores.mask_fill(pad, lowest);
        }
        let probs = self.dropout.forward(softmax(scores, 3)); // [B, h, T, T]
        let y = probs.matmul(v).swap_dims(1, 2).reshape([b, t, h * dh]); // [B, T, d]
        attn.output.forward(y)
    }
}
