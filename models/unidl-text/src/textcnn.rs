//! TextCNN — Yoon Kim, "Convolutional Neural Networks for Sentence
//! Classification", EMNLP 2014 (the CNN-rand variant: embeddings learnt from
//! scratch). Token embeddings → parallel 1-D convolutions with windows 3, 4
//! and 5 (100 feature maps each) → ReLU → max-over-time pooling → dropout
//! 0.5 → a linear classifier whose weight vectors are rescaled to an L2 norm
//! of at most 3 after every update.
//!
//! Padding never changes a prediction: max-over-time pooling only looks at
//! windows that start on a real token and lie inside the text (a text shorter
//! than a window keeps its first window).

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_run::{BoxError, DataFacts, ZooModel};
use unidl_tensor::trace;
use unidl_train::{SequenceClassifier, TextClassification};

use crate::TextError;

/// [`TextCnn`]'s config (`[model] name = "textcnn"`); the defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextCnnConfig {
    /// Vocabulary size (default: the run's tokenizer's).
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// Classes (default: the data set's class count).
    #[serde(default)]
    pub num_classes: Option<usize>,
    /// Embedding width (the paper's word2vec vectors have 300).
    #[serde(default = "embed_dim")]
    pub embed_dim: usize,
    /// Convolution window sizes.
    #[serde(default = "windows")]
    pub windows: Vec<usize>,
    /// Feature maps per window.
    #[serde(default = "maps")]
    pub feature_maps: usize,
    /// Dropout before the classifier.
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Largest L2 norm of a classifier weight vector (0 = no constraint).
    #[serde(default = "max_norm")]
    pub max_norm: f64,
}

fn embed_dim() -> usize {
    300
}
fn windows() -> Vec<usize> {
    vec![3, 4, 5]
}
fn maps() -> usize {
    100
}
fn dropout() -> f64 {
    0.5
}
fn max_norm() -> f64 {
    3.0
}

impl TextCnnConfig {
    /// The paper's configuration for `vocab_size` tokens and `num_classes` classes.
    pub fn new(vocab_size: usize, num_classes: usize) -> Self {
        TextCnnConfig {
            vocab_size: Some(vocab_size),
            num_classes: Some(num_classes),
            embed_dim: embed_dim(),
            windows: windows(),
            feature_maps: maps(),
            dropout: dropout(),
            max_norm: max_norm(),
        }
    }

    /// Builds the model; missing or zero sizes are [`TextError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<TextCnn, TextError> {
        let bad = |key: &str, reason: &str| TextError::Config {
            key: format!("textcnn.{key}"),
            reason: reason.into(),
        };
        let vocab = self.vocab_size.ok_or_else(|| {
            bad(
                "vocab_size",
                "unknown: set it or train with [data.tokenizer]",
            )
        })?;
        let classes = self
            .num_classes
            .ok_or_else(|| bad("num_classes", "unknown: set it or use labelled data"))?;
        for (k, v) in [
            ("vocab_size", vocab),
            ("num_classes", classes),
            ("embed_dim", self.embed_dim),
            ("feature_maps", self.feature_maps),
        ] {
            if v == 0 {
                return Err(bad(k, "must be at least 1"));
            }
        }
        if self.windows.is_empty() || self.windows.contains(&0) {
            return Err(bad("windows", "needs at least one window, each ≥ 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad("dropout", "must be in [0, 1)"));
        }
        if !(self.max_norm >= 0.0 && self.max_norm.is_finite()) {
            return Err(bad("max_norm", "must be ≥ 0"));
        }
        Ok(TextCnn {
            embedding: EmbeddingConfig::new(vocab, self.embed_dim).init(device),
            convs: self
                .windows
                .iter()
                .map(|&w| Conv1dConfig::new(self.embed_dim, self.feature_maps, w).init(device))
                .collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(self.feature_maps * self.windows.len(), classes)
                .init(device),
            windows: self.windows.clone(),
            max_norm: self.max_norm,
        })
    }
}

/// The TextCNN model.
#[derive(Module, Debug)]
pub struct TextCnn {
    /// Token embeddings `[vocab, embed_dim]`.
    pub embedding: Embedding,
    /// One convolution per window.
    pub convs: Vec<Conv1d>,
    /// Dropout before the classifier.
    pub dropout: Dropout,
    /// The classifier.
    pub classifier: Linear,
    /// Window sizes (parallel to `convs`).
    pub windows: Vec<usize>,
    /// L2 bound of the classifier's weight vectors (0 = none).
    pub max_norm: f64,
}

impl TextCnn {
    /// Class logits.
    ///
    /// # Shapes
    /// ids `[B, T]`, mask `[B, T]` (true on real tokens; real tokens first) →
    /// logits `[B, classes]`. `T` must be at least the largest window.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<2> {
        let [b, t] = ids.dims();
        let lengths = mask.int().sum_dim(1); // [B, 1]
        let x = self.embedding.forward(ids); // [B, T, E]
        trace::record("embedding", &x.dims());
        let x = x.swap_dims(1, 2); // [B, E, T]
        let device = x.device();
        let pooled: Vec<Tensor<2>> = self
            .convs
            .iter()
            .zip(&self.windows)
            .map(|(conv, &w)| {
                let y = relu(conv.forward(x.clone())); // [B, maps, T - w + 1]
                let p = t + 1 - w;
                // Window p is valid when it starts on a real token and ends
                // inside the text: p ≤ max(len - w, 0).
                let last = (lengths.clone() - w as i64).clamp_min(0); // [B, 1]
                let pos = Tensor::<1, Int>::arange(0..p as i64, &device)
                    .reshape([1, p])
                    .expand([b, p]); // [B, P]
                let invalid = pos.greater(last.expand([b, p])); // [B, P]
                let dims = y.dims();
                let y = y.mask_fill(invalid.unsqueeze_dim::<3>(1).expand(dims), -1e9);
                y.max_dim(2).squeeze_dim::<2>(2) // [B, maps]
            })
            .collect();
        let h = Tensor::cat(pooled, 1); // [B, maps · windows]
        trace::record("pooled", &h.dims());
        let y = self.classifier.forward(self.dropout.forward(h)); // [B, classes]
        trace::record("classifier", &y.dims());
        y
    }

    /// Rescales every classifier weight vector (one per class) whose L2 norm
    /// exceeds `max_norm` to that norm (Kim 2014, §2.1); identity when
    /// `max_norm` is 0.
    pub fn apply_max_norm(mut self) -> Self {
        if self.max_norm <= 0.0 {
            return self;
        }
        let s = self.max_norm;
        self.classifier.weight = self.classifier.weight.map(|w| {
            // w: [features, classes]; column k is class k's weight vector.
            let norms = w.clone().powf_scalar(2.0).sum_dim(0).sqrt(); // [1, classes]
            let scale = norms.recip().mul_scalar(s).clamp_max(1.0); // [1, classes]
            let tracked = w.is_require_grad();
            let w = (w * scale).detach();
            if tracked { w.require_grad() } else { w }
        });
        self
    }
}

impl SequenceClassifier for TextCnn {
    fn classify_tokens(&self, ids: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<2> {
        self.forward(ids, mask)
    }

    fn constrain(self) -> Self {
        self.apply_max_norm()
    }
}

impl ZooModel for TextCnnConfig {
    type Model = TextCnn;
    type Task = TextClassification;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<TextCnn, BoxError> {
        let cfg = TextCnnConfig {
            vocab_size: self.vocab_size.or(facts.vocab_size),
            num_classes: self
                .num_classes
                .or((!facts.class_names.is_empty()).then_some(facts.class_names.len())),
            ..self.clone()
        };
        Ok(TextCnnConfig::init(&cfg, device)?)
    }

    /// Every batch is padded to at least the largest window.
    fn adapt_task(&self, task: TextClassification) -> TextClassification {
        TextClassification {
            min_length: self.windows.iter().copied().max().unwrap_or(1),
            ..task
        }
    }

    fn load_weights(
        &self,
        _model: TextCnn,
        path: &Path,
        _strict: bool,
        _device: &Device,
    ) -> Result<(TextCnn, String), BoxError> {
        Err(format!(
            "{}: TextCNN has no published reference weights to map; load a unidl checkpoint",
            path.display()
        )
        .into())
    }
}
