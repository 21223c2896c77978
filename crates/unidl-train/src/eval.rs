//! Evaluation (B.6): classification metrics and the evaluator under the
//! standard's spelling (`construct_evalvater`, `evalvate`) with the correct
//! spelling as aliases (`construct_evaluator`, `evaluate`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use serde::Deserialize;
use unidl_data::{PreparedDataset, Sample, get_sample};

use crate::error::{Result, TrainError};
use crate::infer::{ClassScore, Classification, InferOptions, Inference, PostProcess, Predictor};

/// A metric name as written in configs.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Fraction of exact matches.
    Accuracy,
    /// Fraction whose label is among the top 5.
    Top5,
    /// Macro-averaged precision.
    PrecisionMacro,
    /// Macro-averaged recall.
    RecallMacro,
    /// Macro-averaged F1.
    F1Macro,
    /// Micro-averaged F1 (equals accuracy for single-label classification).
    F1Micro,
    /// Micro-averaged precision ([`crate::metrics::ClassCounts`]).
    PrecisionMicro,
    /// Micro-averaged recall.
    RecallMicro,
    /// Support-weighted precision.
    PrecisionWeighted,
    /// Support-weighted recall.
    RecallWeighted,
    /// Support-weighted F1.
    F1Weighted,
    /// COCO box AP at IoU 0.50:0.95 ([`crate::metrics::BoxMap`]).
    Map,
    /// COCO box AP at IoU 0.50.
    #[serde(rename = "map_50")]
    Map50,
    /// COCO box AP at IoU 0.75.
    #[serde(rename = "map_75")]
    Map75,
    /// COCO mask AP at IoU 0.50:0.95 ([`crate::metrics::MaskMap`]).
    MaskMap,
    /// COCO mask AP at IoU 0.50.
    #[serde(rename = "mask_map_50")]
    MaskMap50,
    /// COCO mask AP at IoU 0.75.
    #[serde(rename = "mask_map_75")]
    MaskMap75,
    /// PASCAL VOC box AP at IoU 0.5 ([`crate::metrics::VocMap`]).
    VocMap,
    /// Mean IoU of semantic segmentation ([`crate::metrics::SegmentationCounts`]).
    Miou,
    /// Pixel accuracy of semantic segmentation.
    PixelAccuracy,
    /// Percentage of correct keypoints ([`crate::metrics::Pck`]).
    Pck,
    /// Normalised mean error of keypoints ([`crate::metrics::Nme`]).
    Nme,
    /// COCO keypoint AP at OKS 0.50:0.95 ([`crate::metrics::KeypointAp`]).
    KeypointAp,
    /// COCO keypoint AP at OKS 0.50.
    #[serde(rename = "keypoint_ap_50")]
    KeypointAp50,
    /// COCO keypoint AP at OKS 0.75.
    #[serde(rename = "keypoint_ap_75")]
    KeypointAp75,
    /// COCO keypoint AP of medium instances (32² ≤ area ≤ 96²).
    KeypointApMedium,
    /// COCO keypoint AP of large instances (area ≥ 96²).
    KeypointApLarge,
    /// COCO keypoint AR at OKS 0.50:0.95 (20 poses per image).
    KeypointAr,
    /// Character error rate ([`crate::metrics::ErrorRate`]).
    Cer,
    /// Word error rate.
    Wer,
    /// Corpus BLEU-4 ([`crate::metrics::Bleu`]).
    Bleu,
    /// Perplexity ([`crate::metrics::Perplexity`]).
    Perplexity,
    /// Share of samples whose nearest other sample (cosine of their
    /// embeddings) has their label (text similarity).
    NeighbourAccuracy,
    /// Share of masked tokens predicted exactly (masked language modelling).
    MaskedAccuracy,
    /// Corpus chrF, character n-gram F-score (sacrebleu's defaults, 0–100).
    Chrf,
}

impl Metric {
    /// The name used in score maps.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Top5 => "top5",
            Metric::PrecisionMacro => "precision_macro",
            Metric::RecallMacro => "recall_macro",
            Metric::F1Macro => "f1_macro",
            Metric::F1Micro => "f1_micro",
            Metric::PrecisionMicro => "precision_micro",
            Metric::RecallMicro => "recall_micro",
            Metric::PrecisionWeighted => "precision_weighted",
            Metric::RecallWeighted => "recall_weighted",
            Metric::F1Weighted => "f1_weighted",
            Metric::Map => "map",
            Metric::Map50 => "map_50",
            Metric::Map75 => "map_75",
            Metric::MaskMap => "mask_map",
            Metric::MaskMap50 => "mask_map_50",
            Metric::MaskMap75 => "mask_map_75",
            Metric::VocMap => "voc_map",
            Metric::Miou => "miou",
            Metric::PixelAccuracy => "pixel_accuracy",
            Metric::Pck => "pck",
            Metric::Nme => "nme",
            Metric::KeypointAp => "keypoint_ap",
            Metric::KeypointAp50 => "keypoint_ap_50",
            Metric::KeypointAp75 => "keypoint_ap_75",
            Metric::KeypointApMedium => "keypoint_ap_medium",
            Metric::KeypointApLarge => "keypoint_ap_large",
            Metric::KeypointAr => "keypoint_ar",
            Metric::Cer => "cer",
            Metric::Wer => "wer",
            Metric::Bleu => "bleu",
            Metric::Perplexity => "perplexity",
            Metric::NeighbourAccuracy => "neighbour_accuracy",
            Metric::MaskedAccuracy => "masked_accuracy",
            Metric::Chrf => "chrf",
        }
    }

    /// Whether the classification evaluator computes this metric.
    pub fn is_classification(self) -> bool {
        matches!(
            self,
            Metric::Accuracy
                | Metric::Top5
                | Metric::PrecisionMacro
                | Metric::RecallMacro
                | Metric::F1Macro
                | Metric::F1Micro
                | Metric::PrecisionMicro
                | Metric::RecallMicro
                | Metric::PrecisionWeighted
                | Metric::RecallWeighted
                | Metric::F1Weighted
        )
    }
}

/// Fraction of `pred[i] == target[i]`.
pub fn accuracy(pred: &[usize], target: &[usize]) -> f64 {
    if target.is_empty() {
        return 0.0;
    }
    pred.iter().zip(target).filter(|(p, t)| p == t).count() as f64 / target.len() as f64
}

/// Fraction of samples whose target is among the first `k` of its ranking.
pub fn top_k_accuracy(rankings: &[Vec<usize>], target: &[usize], k: usize) -> f64 {
    if target.is_empty() {
        return 0.0;
    }
    rankings
        .iter()
        .zip(target)
        .filter(|(r, t)| r.iter().take(k).any(|c| c == *t))
        .count() as f64
        / target.len() as f64
}

/// `m[true][pred]` counts over `classes` classes.
pub fn confusion_matrix(pred: &[usize], target: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&p, &t) in pred.iter().zip(target) {
        if p < classes && t < classes {
            m[t][p] += 1;
        }
    }
    m
}

/// Per-class precision, recall and F1 from a confusion matrix (0 where undefined, as scikit-learn's `zero_division=0`).
pub fn per_class_prf(m: &[Vec<usize>]) -> Vec<(f64, f64, f64)> {
    let n = m.len();
    (0..n)
        .map(|c| {
            let tp = m[c][c] as f64;
            let predicted: f64 = (0..n).map(|t| m[t][c] as f64).sum();
            let actual: f64 = m[c].iter().map(|&v| v as f64).sum();
            let p = if predicted > 0.0 { tp / predicted } else { 0.0 };
            let r = if actual > 0.0 { tp / actual } else { 0.0 };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (p, r, f)
        })
        .collect()
}

/// Macro averages `(precision, recall, f1)` over the classes present in
/// `pred ∪ target` (scikit-learn's default label set).
pub fn macro_prf(pred: &[usize], target: &[usize], classes: usize) -> (f64, f64, f64) {
    let m = confusion_matrix(pred, target, classes);
    let present: Vec<usize> = (0..classes)
        .filter(|&c| pred.contains(&c) || target.contains(&c))
        .collect();
    let prf = per_class_prf(&m);
    let n = present.len().max(1) as f64;
    let sum = |f: fn(&(f64, f64, f64)) -> f64| present.iter().map(|&c| f(&prf[c])).sum::<f64>() / n;
    (sum(|x| x.0), sum(|x| x.1), sum(|x| x.2))
}

/// Evaluation settings (B.6.1 `eval_config`).
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Data set used when `evalvate` is given none.
    pub default_dataset: Option<PreparedDataset>,
    /// Metrics to compute.
    pub eval_metric: Vec<Metric>,
    /// Where `evalvate` records its results (B.6.2): `predictions.jsonl`, one
    /// line per sample (`index`, `source`, the post-processed `output`), and
    /// `scores.json`; each written to a temporary file and renamed, so a
    /// reader never sees half a record. `None`: nothing is written.
    pub output_dir: Option<PathBuf>,
}

impl EvalConfig {
    /// Metrics `eval_metric`, no default data set, nothing recorded.
    pub fn new(eval_metric: Vec<Metric>) -> Self {
        EvalConfig {
            default_dataset: None,
            eval_metric,
            output_dir: None,
        }
    }
}

/// Writes `predictions.jsonl` line by line into a temporary file that is
/// renamed into place when every sample is in.
struct PredictionLog {
    dir: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl PredictionLog {
    fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let tmp = dir.join("predictions.jsonl.partial");
        let file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
        Ok(PredictionLog {
            dir: dir.to_path_buf(),
            tmp,
            out: std::io::BufWriter::new(file),
        })
    }

    fn write<O: serde::Serialize>(
        &mut self,
        index: usize,
        sample: &Sample,
        output: &O,
    ) -> Result<()> {
        use std::io::Write;
        let line = serde_json::json!({ "index": index, "source": sample.source, "output": output });
        writeln!(self.out, "{line}").map_err(|e| io_error(&self.tmp, e))
    }

    fn finish(self, scores: &Scores) -> Result<()> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_error(&self.tmp, e.error()))?;
        file.sync_all().map_err(|e| io_error(&self.tmp, e))?;
        let path = self.dir.join("predictions.jsonl");
        std::fs::rename(&self.tmp, &path).map_err(|e| io_error(&path, e))?;
        let path = self.dir.join("scores.json");
        let text = serde_json::to_string_pretty(scores).map_err(|e| io_error(&path, e))?;
        unidl_tensor::module::write_atomic(&path, text.as_bytes()).map_err(|e| io_error(&path, e))
    }
}

/// Scores by metric name.
pub type Scores = BTreeMap<String, f64>;

/// Accumulates one task's metrics over batches: post-processed outputs and
/// the samples (with their targets) they came from.
pub trait TaskMetrics<O> {
    /// Adds one batch.
    fn update(&mut self, outputs: &[O], samples: &[Sample]) -> Result<()>;
    /// Scores by metric name.
    fn compute(&self) -> Result<Scores>;
}

/// What an evaluator needs to know about a task: which metrics it computes,
/// how to start a fresh accumulator, and the inference settings to use.
pub trait EvaluationTask<O>: Send + Sync {
    /// Whether this task computes `metric`.
    fn supports(&self, metric: Metric) -> bool;
    /// A fresh accumulator for `metrics` over `dataset`.
    fn start(
        &self,
        metrics: &[Metric],
        dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<O>>>;
    /// Inference settings while evaluating (default: the inference's own).
    fn options(&self, base: &InferOptions, _dataset: &PreparedDataset) -> InferOptions {
        base.clone()
    }
}

impl<O> EvaluationTask<O> for Box<dyn EvaluationTask<O>> {
    fn supports(&self, metric: Metric) -> bool {
        self.as_ref().supports(metric)
    }
    fn start(
        &self,
        metrics: &[Metric],
        dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<O>>> {
        self.as_ref().start(metrics, dataset)
    }
    fn options(&self, base: &InferOptions, dataset: &PreparedDataset) -> InferOptions {
        self.as_ref().options(base, dataset)
    }
}

/// An evaluator: an inference, the metrics to compute and the task that computes them.
pub struct Evaluator<'a, M, P: Predictor<M>, Q: PostProcess> {
    infer: &'a Inference<M, P, Q>,
    config: EvalConfig,
    task: Box<dyn EvaluationTask<Q::Output> + 'a>,
}

fn check_metrics<O>(task: &dyn EvaluationTask<O>, metrics: &[Metric]) -> Result<()> {
    if metrics.is_empty() {
        return Err(TrainError::Config {
            key: "eval_metric".into(),
            reason: "name at least one metric".into(),
        });
    }
    if let Some(m) = metrics.iter().find(|m| !task.supports(**m)) {
        return Err(TrainError::Config {
            key: "eval_metric".into(),
            reason: format!("`{}` is not computed by this task's evaluator", m.name()),
        });
    }
    Ok(())
}

/// `construct_evalvater(infer, eval_config)` (B.6.1; the standard's spelling)
/// for a classification inference. An empty metric list, or a metric of
/// another task, is a config error naming `eval_metric`.
pub fn construct_evalvater<'a, M: Module, P: Predictor<M>>(
    infer: &'a Inference<M, P, Classification>,
    config: EvalConfig,
) -> Result<Evaluator<'a, M, P, Classification>> {
    construct_evalvater_for(infer, config, ClassificationTask)
}

/// Correctly spelled alias of [`construct_evalvater`].
pub fn construct_evaluator<'a, M: Module, P: Predictor<M>>(
    infer: &'a Inference<M, P, Classification>,
    config: EvalConfig,
) -> Result<Evaluator<'a, M, P, Classification>> {
    construct_evalvater(infer, config)
}

/// `construct_evalvater` for any task: detection, segmentation, keypoints,
/// text (see [`crate::eval_tasks`]) or a user's own [`EvaluationTask`].
pub fn construct_evalvater_for<'a, M: Module, P: Predictor<M>, Q: PostProcess>(
    infer: &'a Inference<M, P, Q>,
    config: EvalConfig,
    task: impl EvaluationTask<Q::Output> + 'a,
) -> Result<Evaluator<'a, M, P, Q>> {
    check_metrics(&task, &config.eval_metric)?;
    Ok(Evaluator {
        infer,
        config,
        task: Box::new(task),
    })
}

impl<M: Module, P: Predictor<M>, Q: PostProcess> Evaluator<'_, M, P, Q> {
    /// `evalvate(dataset?, eval_config?) -> score` (B.6.2): infers every sample
    /// of the data set (the given one, else the configured default) in
    /// batches, feeds outputs and targets to the task's metrics and returns
    /// the scores by metric name. With `output_dir` set, the per-sample
    /// predictions and the scores are recorded there.
    pub fn evalvate(
        &self,
        dataset: Option<&PreparedDataset>,
        config: Option<&EvalConfig>,
    ) -> Result<Scores> {
        let cfg = config.unwrap_or(&self.config);
        check_metrics(self.task.as_ref(), &cfg.eval_metric)?;
        let ds = dataset
            .or(cfg.default_dataset.as_ref())
            .or(self.config.default_dataset.as_ref())
            .ok_or_else(|| TrainError::Config {
                key: "default_dataset".into(),
                reason: "no data set given and no default_dataset configured".into(),
            })?;
        let options = (*self.task).options(self.infer.options(), ds);
        let mut acc = (*self.task).start(&cfg.eval_metric, ds)?;
        let mut log = match cfg.output_dir.as_deref() {
            Some(dir) => Some(PredictionLog::create(dir)?),
            None => None,
        };
        let batch = options.batch_size;
        let mut i = 0;
        while i < ds.len() {
            let end = (i + batch).min(ds.len());
            let samples = (i..end)
                .map(|j| get_sample(ds, j))
                .collect::<unidl_data::Result<Vec<_>>>()?;
            let out = self.infer.infer_samples(samples.clone(), Some(&options))?;
            if let Some(log) = log.as_mut() {
                for (k, (o, s)) in out.iter().zip(&samples).enumerate() {
                    log.write(i + k, s, o)?;
                }
            }
            acc.update(&out, &samples)?;
            i = end;
        }
        let scores = acc.compute()?;
        if let Some(log) = log {
            log.finish(&scores)?;
        }
        Ok(scores)
    }

    /// Correctly spelled alias of [`Evaluator::evalvate`].
    pub fn evaluate(
        &self,
        dataset: Option<&PreparedDataset>,
        config: Option<&EvalConfig>,
    ) -> Result<Scores> {
        self.evalvate(dataset, config)
    }
}

/// Classification: accuracy, top-5 and precision/recall/F1 (macro, micro,
/// weighted) from the ranked classes and `targets.label`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassificationTask;

struct ClassificationMetrics {
    classes: usize,
    metrics: Vec<Metric>,
    rankings: Vec<Vec<usize>>,
    target: Vec<usize>,
}

impl EvaluationTask<Vec<ClassScore>> for ClassificationTask {
    fn supports(&self, metric: Metric) -> bool {
        metric.is_classification()
    }

    fn start(
        &self,
        metrics: &[Metric],
        dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<Vec<ClassScore>>>> {
        Ok(Box::new(ClassificationMetrics {
            classes: dataset.classes().len().max(1),
            metrics: metrics.to_vec(),
            rankings: Vec::new(),
            target: Vec::new(),
        }))
    }

    fn options(&self, base: &InferOptions, dataset: &PreparedDataset) -> InferOptions {
        // Every class ranked, nothing cut by a threshold.
        InferOptions {
            top_k: dataset.classes().len().max(1),
            score_threshold: 0.0,
            ..base.clone()
        }
    }
}

impl TaskMetrics<Vec<ClassScore>> for ClassificationMetrics {
    fn update(&mut self, outputs: &[Vec<ClassScore>], samples: &[Sample]) -> Result<()> {
        for (o, s) in outputs.iter().zip(samples) {
            self.target.push(
                s.targets.label.ok_or_else(|| {
                    TrainError::Model(format!("sample `{}` has no label", s.source))
                })?,
            );
            self.rankings.push(o.iter().map(|c| c.class).collect());
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        let (classes, target, rankings) = (self.classes, &self.target, &self.rankings);
        let pred: Vec<usize> = rankings
            .iter()
            .map(|r| r.first().copied().unwrap_or(usize::MAX))
            .collect();
        let (p, r, f) = macro_prf(&pred, target, classes);
        let averaged = |avg: crate::metrics::Average| {
            let mut counts = crate::metrics::ClassCounts::new(classes);
            counts.update(&pred, target)?;
            counts.average(avg)
        };
        self.metrics
            .iter()
            .map(|m| {
                use crate::metrics::Average::{Micro, Weighted};
                let v = match m {
                    Metric::Accuracy | Metric::F1Micro => accuracy(&pred, target),
                    Metric::Top5 => top_k_accuracy(rankings, target, 5),
                    Metric::PrecisionMacro => p,
                    Metric::RecallMacro => r,
                    Metric::F1Macro => f,
                    Metric::PrecisionMicro => averaged(Micro)?.precision,
                    Metric::RecallMicro => averaged(Micro)?.recall,
                    Metric::PrecisionWeighted => averaged(Weighted)?.precision,
                    Metric::RecallWeighted => averaged(Weighted)?.recall,
                    Metric::F1Weighted => averaged(Weighted)?.f1,
                    other => {
                        return Err(TrainError::Config {
                            key: "eval_metric".into(),
                            reason: format!("`{}` is not a classification metric", other.name()),
                        });
                    }
                };
                Ok((m.name().to_string(), v))
            })
            .collect()
    }
}
