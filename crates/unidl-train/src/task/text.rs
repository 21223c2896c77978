//! Text classification and sentence-pair similarity as classification:
//! token ids (the `Tokenize` transform's output) padded to the longest
//! sequence of the batch with an attention mask → logits `[B, classes]`;
//! cross-entropy; softmax top-k; classification metrics.

use burn::tensor::{Bool, Int, Tensor as BTensor};
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use super::classification::{ClassTargets, check_smoothing, classification_outputs};
use super::{Task, TaskIo, pad_ids, tokens_of};
use crate::error::{Result, TrainError};
use crate::infer::Classification;

/// A model that classifies token sequences (what [`TextClassification`] trains).
pub trait SequenceClassifier {
    /// # Shapes
    /// ids `[B, T]` (int), mask `[B, T]` (true on real tokens) → logits `[B, classes]`.
    fn classify_tokens(&self, ids: BTensor<2, Int>, mask: BTensor<2, Bool>) -> BTensor<2>;

    /// Weight constraints applied after every optimizer update (e.g. the
    /// max-norm of Kim 2014's classifier); identity by default.
    fn constrain(self) -> Self
    where
        Self: Sized,
    {
        self
    }
}

/// Text classification over the token ids of input `input` (default
/// `"tokens"`, what `Tokenize` writes).
#[derive(Debug, Clone, PartialEq)]
pub struct TextClassification {
    /// Class names by index.
    pub class_names: Vec<String>,
    /// Name of the [`Input::Tokens`](unidl_data::Input::Tokens) input.
    pub input: String,
    /// Id used for padding (the tokenizer's `[PAD]`).
    pub pad_id: u32,
    /// Shortest padded length (a convolution with window `w` needs `T ≥ w`).
    pub min_length: usize,
    /// Label smoothing ε in [0, 1).
    pub label_smoothing: f64,
    /// Longest token sequence the model takes (BERT's learnt positions);
    /// a longer one is an error naming the sample, never cut silently
    /// (cut it with `[data.tokenizer] max_length`).
    pub max_length: Option<usize>,
}

impl Default for TextClassification {
    fn default() -> Self {
        TextClassification {
            class_names: Vec::new(),
            input: "tokens".into(),
            pad_id: 0,
            min_length: 1,
            label_smoothing: 0.0,
            max_length: None,
        }
    }
}

/// A collated text-classification batch.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// `[B, T]` token ids, padded with `pad_id`.
    pub ids: BTensor<2, Int>,
    /// `[B, T]`, true on real tokens.
    pub mask: BTensor<2, Bool>,
    /// Labels.
    pub targets: ClassTargets,
}

impl TaskIo for TextClassification {
    type Batch = TokenBatch;
    type Post = Classification;

    fn name(&self) -> &'static str {
        "text_classification"
    }

    fn loss_name(&self) -> &'static str {
        "cross_entropy"
    }

    fn collate(&self, samples: &[Sample], device: &Device) -> Result<TokenBatch> {
        check_smoothing(self.label_smoothing)?;
        let seqs = token_sequences(samples, &self.input, self.max_length)?;
        let (ids, mask) = pad_ids(&seqs, self.pad_id, self.min_length, device)?;
        Ok(TokenBatch {
            ids,
            mask,
            targets: ClassTargets::collate(samples, device)?,
        })
    }

    classification_outputs!();
}

impl<M: SequenceClassifier + Send + Sync + 'static> Task<M> for TextClassification {
    fn forward(&self, model: &M, batch: &TokenBatch) -> Result<Tensor> {
        let logits = model.classify_tokens(batch.ids.clone(), batch.mask.clone());
        unidl_tensor::trace::record("(model)", &logits.dims());
        Ok(Tensor::from_burn(logits)?)
    }

    fn loss(&self, model: &M, batch: &TokenBatch) -> Result<Tensor> {
        Ok(self.loss_and_outputs(model, batch)?.0)
    }

    fn loss_and_outputs(&self, model: &M, batch: &TokenBatch) -> Result<(Tensor, Tensor)> {
        let logits = model.classify_tokens(batch.ids.clone(), batch.mask.clone());
        batch.targets.loss_and_outputs(logits, self.label_smoothing)
    }

    fn after_update(&self, model: M) -> M {
        model.constrain()
    }
}

/// The token ids of input `input` of every sample of a batch: a typed error
/// for an empty batch, a sample without the input, or one longer than `max`
/// tokens (named, never cut).
pub(super) fn token_sequences<'a>(
    samples: &'a [Sample],
    input: &str,
    max: Option<usize>,
) -> Result<Vec<&'a [u32]>> {
    if samples.is_empty() {
        return Err(TrainError::Model("text batch: no samples".into()));
    }
    let seqs = samples
        .iter()
        .map(|s| tokens_of(s, input))
        .collect::<Result<Vec<_>>>()?;
    if let Some(max) = max
        && let Some((s, t)) = samples.iter().zip(&seqs).find(|(_, t)| t.len() > max)
    {
        return Err(TrainError::Model(format!(
            "{}: {} tokens, but the model takes at most {max} (set [data.tokenizer] max_length)",
            s.source,
            t.len()
        )));
    }
    Ok(seqs)
}
