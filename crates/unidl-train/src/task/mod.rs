//! The task layer: everything task-specific in one place per task — the
//! batch and its collation (run in the loader's thread, not the training
//! thread), the loss, the raw outputs and their post-processing, and the
//! metrics the evaluator computes. The trainer ([`crate::Trainer`]), the
//! inference ([`crate::Inference`]) and the evaluator ([`crate::Evaluator`])
//! are generic over [`Task`]; a model serves a task by implementing the
//! task's model trait (e.g. [`ImageClassifier`]).
//!
//! | task | model trait | batch | loss | output | metrics |
//! |---|---|---|---|---|---|
//! | [`ImageClassification`] | [`ImageClassifier`] | `[B, C, H, W]` + labels or soft labels | (soft-target) cross-entropy, label smoothing | top-k classes | accuracy, top-5, P/R/F1 |
//! | [`TextClassification`] | [`SequenceClassifier`] | padded ids `[B, T]` + mask + labels | cross-entropy | top-k classes | accuracy, P/R/F1 |
//! | [`VideoClassification`] | [`VideoClassifier`] | clips `[B, C, T, H, W]` + labels | cross-entropy | top-k classes | accuracy, P/R/F1 |
//! | [`ObjectDetection`] | [`Detector`] | images + [`ObjectTargets`] (any count per image) | the model's loss terms, summed | boxes (NMS) | COCO mAP, mAP50, mAP75 |
//! | [`InstanceSegmentationTraining`] | [`InstanceSegmenter`] | images + boxes, classes, masks | the model's loss terms | masks pasted into the image | mask mAP |
//! | [`PixelClassification`] | [`SemanticSegmenter`] | images + label maps `[B, H, W]` | per-pixel cross-entropy, `ignore_index` | class maps | mIoU, pixel accuracy |
//! | [`KeypointHeatmaps`] | [`HeatmapModel`] | images + Gaussian heatmaps + joint weights | HRNet's weighted MSE | keypoints (quarter offset / DARK) | PCK, NME |
//! | [`KeypointRegression`] | [`LandmarkModel`] | images + normalised coordinates | weighted L2 | keypoints | NME, PCK |
//! | [`TextSimilarity`] | [`SentenceEncoder`] | padded ids + mask + labels | supervised contrastive (cosine, τ) | embedding + nearest texts | neighbour accuracy |
//! | [`MaskedLanguageModelling`] | [`MaskedLanguageModel`] | ids with 15 % hidden (80/10/10) + targets | cross-entropy of the hidden positions | filled `[MASK]`s | masked accuracy |
//! | [`LanguageModelling`] | [`LanguageModel`] | padded ids + mask | next-token cross-entropy | sequence likelihood | perplexity |
//! | [`SequenceToSequence`] | [`Seq2SeqModel`] | source (ids or images) + `[BOS] y` / `y [EOS]` | cross-entropy without padding, label smoothing | greedy decoding → text | CER, WER, BLEU |
//! | [`SpeechRecognition`] | [`CtcModel`] | frames `[B, T, F]` + lengths + label ids | CTC | CTC decoding → text | CER, WER |
//! | [`TransducerRecognition`] | [`TransducerModel`] | same | transducer (RNN-T) | greedy or beam decoding → text | CER, WER |
//! | [`WaveformGeneration`] | [`WaveformModel`] | μ-law ids `[B, T]` + mask | next-sample cross-entropy | waveform | — |
//! | [`SpeechSynthesis`] | [`VocoderModel`] | log-mel frames + waveform (host), random windows | next-sample negative log-likelihood (μ-law cross-entropy or mixture of logistics) | waveform generated from the frames | — |
//!
//! How to add a task: `docs/ARCHITECTURE.md`, "How to add a task".

mod classification;
mod detection;
mod keypoints;
mod masked_lm;
mod segmentation;
mod sequence;
mod similarity;
mod speech;
mod synthesis;
mod text;
mod video;
mod waveform;

use burn::module::Module;
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_tensor::Tensor;

use crate::error::Result;
use crate::eval::{EvaluationTask, Metric};
use crate::infer::{InferOptions, PostProcess, Predictor};

pub use classification::{
    ClassTargets, ImageBatch, ImageClassification, ImageClassifier, soft_cross_entropy,
};
pub use detection::{
    Detector, InstanceSegmentationTraining, InstanceSegmenter, ObjectBatch, ObjectDetection,
    ObjectTargets, sum_losses,
};
pub use keypoints::{
    HeatmapModel, KeypointBatch, KeypointHeatmaps, KeypointMetrics, KeypointRegression,
    LandmarkModel, TargetTensor, gaussian_heatmaps, joints_mse, landmark_mse,
};
pub use masked_lm::{
    FilledText, MaskedLanguageModel, MaskedLanguageModelling, MaskedLmEvaluation, MaskedToken,
    MaskedTokens, MlmBatch,
};
pub(crate) use segmentation::paint;
pub use segmentation::{
    PixelBatch, PixelClassification, SemanticSegmenter, pixel_cross_entropy, soft_dice_loss,
    weighted_pixel_cross_entropy,
};
pub use sequence::{
    DecodingState, LanguageModel, LanguageModelTask, LanguageModelling, LmBatch, Seq2SeqBatch,
    Seq2SeqModel, Seq2SeqSource, SequenceLikelihood, SequenceToSequence, SourceInput,
    TokenLikelihoods, row_index, token_cross_entropy,
};
pub use similarity::{
    SentenceEmbedding, SentenceEmbeddings, SentenceEncoder, SimilarityEvaluation, TextSimilarity,
    supervised_contrastive_loss,
};
pub use speech::{
    Alphabet, CtcModel, SpeechBatch, SpeechRecognition, TransducerModel, TransducerRecognition,
    ctc_loss, ctc_loss_fitting, ctc_min_frames, ctc_nll, log_add, transducer_loss,
};
pub use synthesis::{SpeechSynthesis, SynthesisBatch, Utterance, VocoderModel};
pub use text::{SequenceClassifier, TextClassification, TokenBatch};
pub use video::{ClipBatch, VideoClassification, VideoClassifier};
pub use waveform::{
    Dequantize, MuLawDecode, NoMetrics, Quantization, WaveBatch, Waveform, WaveformGeneration,
    WaveformModel, mu_law_decode, mu_law_encode,
};

/// The model-independent half of a task: how samples become a batch, how
/// raw outputs become per-sample results, and which metrics judge them.
pub trait TaskIo: Clone + Send + Sync + 'static {
    /// A collated batch on a device (targets included when the samples have them).
    type Batch: Send + 'static;
    /// The post-processing of raw outputs (Post-a/Post-b).
    type Post: PostProcess + Clone + 'static;

    /// A short name for messages (`"image_classification"`).
    fn name(&self) -> &'static str;

    /// The loss this task trains with (B.4.1 `loss`), e.g. `"cross_entropy"`;
    /// `[trainer] loss` may name it and nothing else.
    fn loss_name(&self) -> &'static str;

    /// Builds a batch from samples on `device`. Called by the data loader's
    /// thread while training; errors name the offending sample.
    fn collate(&self, samples: &[Sample], device: &Device) -> Result<Self::Batch>;

    /// The post-processor turning raw outputs into per-sample results.
    fn post(&self) -> Self::Post;

    /// The evaluator side of the task: which metrics it computes from the
    /// post-processed outputs and the samples' targets.
    fn evaluation(&self) -> Box<dyn EvaluationTask<<Self::Post as PostProcess>::Output>>;

    /// Metrics computed on the validation set after each epoch and by
    /// `unidl eval` when the config names none.
    fn default_metrics(&self) -> Vec<Metric>;
}

/// One task for model `M` (Tr-b: preprocess → model → postprocess, each
/// overridable): the model-dependent half — raw outputs and the loss.
/// Implementations usually require a model trait of the task
/// (`impl<M: ImageClassifier> Task<M> for ImageClassification`).
pub trait Task<M>: TaskIo {
    /// Raw outputs of the model for a batch, first axis = sample (what the
    /// post-processor reads).
    fn forward(&self, model: &M, batch: &Self::Batch) -> Result<Tensor>;

    /// [`forward`](Self::forward) with a call's inference options (B.5.2):
    /// tasks whose forward depends on them (generation settings) override
    /// it; by default the options do not matter.
    fn forward_with(
        &self,
        model: &M,
        batch: &Self::Batch,
        _options: &InferOptions,
    ) -> Result<Tensor> {
        self.forward(model, batch)
    }

    /// The scalar training loss of a batch (targets required).
    fn loss(&self, model: &M, batch: &Self::Batch) -> Result<Tensor>;

    /// Loss and raw outputs from one forward pass where the task can (used
    /// for validation); by default two passes.
    fn loss_and_outputs(&self, model: &M, batch: &Self::Batch) -> Result<(Tensor, Tensor)> {
        Ok((self.loss(model, batch)?, self.forward(model, batch)?))
    }

    /// Applied to the model after every optimizer update (weight constraints
    /// such as TextCNN's max-norm); identity by default.
    fn after_update(&self, model: M) -> M {
        model
    }
}

/// A [`Task`] as the inference's [`Predictor`]: collate, then forward.
#[derive(Debug, Clone)]
pub struct TaskPredictor<T>(pub T);

impl<M: Module, T: Task<M>> Predictor<M> for TaskPredictor<T> {
    fn outputs(&self, model: &M, samples: &[Sample], device: &Device) -> Result<Tensor> {
        let batch = self.0.collate(samples, device)?;
        self.0.forward(model, &batch)
    }

    fn outputs_with(
        &self,
        model: &M,
        samples: &[Sample],
        device: &Device,
        options: &InferOptions,
    ) -> Result<Tensor> {
        let batch = self.0.collate(samples, device)?;
        self.0.forward_with(model, &batch, options)
    }
}

/// Pads token sequences to the longest (at least `min_len`): ids and mask
/// `[B, T]` on `device` ([`unidl_data::pad_tokens`]).
pub(crate) fn pad_ids<S: AsRef<[u32]>>(
    seqs: &[S],
    pad: u32,
    min_len: usize,
    device: &Device,
) -> Result<(
    burn::tensor::Tensor<2, burn::tensor::Int>,
    burn::tensor::Tensor<2, burn::tensor::Bool>,
)> {
    let (ids, mask) = unidl_data::pad_tokens(seqs, pad, min_len, device)?;
    Ok((ids.into_burn()?, mask.into_burn()?))
}

/// The token ids of input `input` of a sample; names the sample when absent.
pub(crate) fn tokens_of<'a>(s: &'a Sample, input: &str) -> Result<&'a [u32]> {
    match s.inputs.get(input) {
        Some(unidl_data::Input::Tokens(t)) => Ok(t),
        _ => Err(crate::TrainError::Model(format!(
            "{}: no `{input}` token input (add a `tokenize` transform)",
            s.source
        ))),
    }
}

/// Class labels of `samples` for a batch: `None` when no sample has one
/// (inference), else every sample must have one below `classes` (when known).
pub(crate) fn class_labels(samples: &[Sample]) -> Result<Option<Vec<usize>>> {
    if samples.iter().all(|s| s.targets.label.is_none()) {
        return Ok(None);
    }
    samples
        .iter()
        .map(|s| {
            s.targets.label.ok_or_else(|| {
                crate::TrainError::Model(format!(
                    "{}: no label (other samples of the batch have one)",
                    s.source
                ))
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
