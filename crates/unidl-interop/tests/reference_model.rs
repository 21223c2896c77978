//! The interop reference model, identical in PyTorch, TensorFlow/Keras,
//! PaddlePaddle, MindSpore and here, and the fixture files the generator
//! scripts (`tests/fixtures/gen/gen_*.py`) write next to each checkpoint
//! (`io.json`).
//!
//! Used by the interop test targets as `mod reference_model;`.
//!
//! Layers, in order (inputs `x` `[B, 3, 16, 16]`, token ids `t` `[B, 6]`):
//! 1. `conv`: Conv2d 3→8, kernel 3, stride 1, padding 1, with bias;
//! 2. `bn`: BatchNorm2d(8), inference mode, epsilon as the framework's default;
//! 3. ReLU, max-pool 2×2 stride 2, global average pool → `a` `[B, 8]`;
//! 4. `emb`: Embedding(50, 16) on `t` → `[B, 6, 16]`;
//! 5. `lstm`: one-layer LSTM 16→12, batch-first → `[B, 6, 12]`;
//! 6. `attn`: multi-head self-attention, 12 features, 2 heads, biases, no
//!    dropout, no mask → `[B, 6, 12]`, mean over time → `b` `[B, 12]`;
//! 7. `fc`: Linear 20→5 on `concat(a, b)` → logits `[B, 5]`.
//!
//! unidl parameter names (what a mapped checkpoint must provide):
//! `conv.weight` `[8, 3, 3, 3]`, `conv.bias`, `bn.{gamma, beta, running_mean,
//! running_var}` `[8]`, `emb.weight` `[50, 16]`,
//! `lstm.layers.0.forward.{weight_ih [48, 16], weight_hh [48, 12], bias_ih, bias_hh}`
//! (PyTorch gate order i, f, g, o), `attn.{query, key, value, output}.{weight
//! [12, 12] as [in, out], bias}`, `fc.weight` `[20, 5]` (`[in, out]`), `fc.bias`.
#![allow(dead_code)]

use std::path::Path;

use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_nn::{
    BatchNorm2d, BatchNorm2dConfig, Conv2d, Conv2dConfig, Embedding, EmbeddingConfig, Linear,
    LinearConfig, Lstm, LstmConfig, PaddingConfig2d,
};

/// Image channels of `x`.
pub const IN_CHANNELS: usize = 3;
/// Convolution output channels.
pub const CONV_CHANNELS: usize = 8;
/// Vocabulary of `t`.
pub const VOCAB: usize = 50;
/// Embedding width.
pub const EMBED: usize = 16;
/// LSTM hidden size = attention width.
pub const HIDDEN: usize = 12;
/// Attention heads.
pub const HEADS: usize = 2;
/// Logits.
pub const CLASSES: usize = 5;

/// The reference model (see the module docs).
#[derive(Module, Debug)]
pub struct RefModel {
    /// Conv2d 3→8, 3×3, padding 1.
    pub conv: Conv2d,
    /// BatchNorm2d(8).
    pub bn: BatchNorm2d,
    /// Max-pool 2×2, stride 2 (no parameters).
    pub pool: MaxPool2d,
    /// Embedding(50, 16).
    pub emb: Embedding,
    /// LSTM 16→12, batch-first.
    pub lstm: Lstm,
    /// Self-attention, 12 features, 2 heads.
    pub attn: MultiHeadAttention,
    /// Linear 20→5.
    pub fc: Linear,
}

impl RefModel {
    /// A randomly initialised model whose BatchNorm uses `bn_epsilon`.
    pub fn new(device: &Device, bn_epsilon: f64) -> Self {
        RefModel {
            conv: Conv2dConfig::new([IN_CHANNELS, CONV_CHANNELS], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNorm2dConfig::new(CONV_CHANNELS)
                .with_epsilon(bn_epsilon)
                .init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            emb: EmbeddingConfig::new(VOCAB, EMBED).init(device),
            lstm: LstmConfig::new(EMBED, HIDDEN)
                .with_batch_first(true)
                .init(device),
            attn: MultiHeadAttentionConfig::new(HIDDEN, HEADS)
                .with_dropout(0.0)
                .init(device),
            fc: LinearConfig::new(CONV_CHANNELS + HIDDEN, CLASSES).init(device),
        }
    }

    /// Logits for images `x` and token ids `t`.
    ///
    /// # Shapes
    ///
    /// - x: `[B, 3, H, W]` (H, W even)
    /// - t: `[B, T]`
    /// - output: `[B, 5]`
    pub fn forward(&self, x: Tensor<4>, t: Tensor<2, Int>) -> Tensor<2> {
        let [b, _, _, _] = x.dims();
        let y = self.conv.forward(x); // [B, 8, H, W]
        let y = self.bn.forward(y); // [B, 8, H, W]
        let y = relu(y); // [B, 8, H, W]
        let y = self.pool.forward(y); // [B, 8, H/2, W/2]
        let a = y.mean_dim(3).mean_dim(2).reshape([b, CONV_CHANNELS]); // [B, 8]
        let e = self.emb.forward(t); // [B, T, 16]
        let (h, _) = self.lstm.forward(e, None); // [B, T, 12]
        let c = self.attn.forward(MhaInput::self_attn(h)).context; // [B, T, 12]
        let m = c.mean_dim(1).reshape([b, HIDDEN]); // [B, 12]
        let z = Tensor::cat(vec![a, m], 1); // [B, 20]
        self.fc.forward(z) // [B, 5]
    }
}

/// `tests/fixtures/<framework>/io.json`, written by the generator script:
/// flat row-major values with their shapes, the BatchNorm epsilon, and the
/// versions the script ran with (kept as further keys, ignored here).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Fixture {
    /// Framework name as the script spells it.
    pub framework: String,
    /// The framework's BatchNorm epsilon used by the model.
    pub bn_epsilon: f64,
    /// Shape of `x` (`[2, 3, 16, 16]`, NCHW).
    pub x_shape: Vec<usize>,
    /// Images, row-major.
    pub x: Vec<f64>,
    /// Shape of `t` (`[2, 6]`).
    pub t_shape: Vec<usize>,
    /// Token ids, row-major.
    pub t: Vec<i64>,
    /// Shape of the logits (`[2, 5]`).
    pub logits_shape: Vec<usize>,
    /// The framework's logits, row-major.
    pub logits: Vec<f64>,
}

impl Fixture {
    /// Reads a fixture file.
    pub fn load(path: &Path) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The images as a Burn tensor.
    pub fn x(&self, device: &Device) -> Tensor<4> {
        let data: Vec<f32> = self.x.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(data, self.x_shape.clone()), device)
    }

    /// The token ids as a Burn tensor.
    pub fn t(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.t.clone(), self.t_shape.clone()),
            device,
        )
    }

    /// Runs `model` on the fixture's inputs and returns the largest absolute
    /// difference from the framework's logits.
    pub fn max_abs_diff(&self, model: &RefModel, device: &Device) -> f32 {
        let out = model.forward(self.x(device), self.t(device));
        assert_eq!(out.dims().to_vec(), self.logits_shape, "logits shape");
        let got = out.into_data().try_to_vec::<f32>().expect("f32 logits");
        got.iter()
            .zip(&self.logits)
            .map(|(g, w)| (g - *w as f32).abs())
            .fold(0.0, f32::max)
    }
}
