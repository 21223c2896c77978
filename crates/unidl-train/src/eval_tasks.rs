//! Evaluation tasks beyond classification (B.6): each pairs a
//! post-processor's output with the sample's targets and feeds the
//! accumulators of [`crate::metrics`].
//!
//! | task | output | targets used | metrics |
//! |---|---|---|---|
//! | [`DetectionTask`] | `Vec<Detection>` | `boxes`, `crowd` | `map`, `map_50`, `map_75`, `voc_map` |
//! | [`InstanceSegmentationTask`] | `Vec<InstanceMask>` | `masks`, `boxes`, `crowd` | `mask_map`, `mask_map_50`, `mask_map_75`; box `map`, `map_50`, `map_75` |
//! | [`SemanticSegmentationTask`] | `ClassMap` | `masks` (painted into a label map) | `miou`, `pixel_accuracy` |
//! | [`KeypointTask`] | `Vec<PredictedKeypoint>` | `keypoints`, first box; for keypoint AP `instance_keypoints`, `keypoint_boxes`, `crowd`, `areas` | `pck`, `nme`, `keypoint_ap`, `keypoint_ap_50`, `keypoint_ap_75`, `keypoint_ap_medium`, `keypoint_ap_large`, `keypoint_ar` |
//! | [`TextTask`] | `DecodedSequence` | `text` (or `label`'s class name) | `cer`, `wer`, `bleu`, `chrf`, `accuracy` (exact match), `f1_macro` (with class names) |

use unidl_data::{PreparedDataset, Sample};

use crate::error::{Result, TrainError};
use crate::eval::{EvaluationTask, Metric, Scores, TaskMetrics};
use crate::metrics::{
    Bleu, BleuSmoothing, BoxMap, ChrF, ErrorRate, ErrorUnit, KeypointAp, MaskMap, Nme, Normalizer,
    Pck, PoseGroundTruth, PosePrediction, SegmentationCounts, VocMap,
};
use crate::outputs::{ClassMap, DecodedSequence, Detection, InstanceMask, PredictedKeypoint};

fn pairs<'a, O>(
    outputs: &'a [O],
    samples: &'a [Sample],
) -> Result<impl Iterator<Item = (&'a O, &'a Sample)>> {
    if outputs.len() != samples.len() {
        return Err(TrainError::Model(format!(
            "the post-processor returned {} outputs for {} samples",
            outputs.len(),
            samples.len()
        )));
    }
    Ok(outputs.iter().zip(samples))
}

fn crowd_of(sample: &Sample, n: usize) -> &[bool] {
    if sample.targets.crowd.len() == n {
        &sample.targets.crowd
    } else {
        &[]
    }
}

fn some(name: &str, v: Option<f64>) -> Result<(String, f64)> {
    v.map(|v| (name.to_string(), v)).ok_or_else(|| {
        TrainError::Model(format!(
            "`{name}` is undefined: the data set has no ground truth for it"
        ))
    })
}

/// Object detection: COCO box mAP (pycocotools algorithm) and VOC AP@0.5.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectionTask;

struct DetectionMetrics {
    metrics: Vec<Metric>,
    coco: BoxMap,
    voc: VocMap,
}

impl EvaluationTask<Vec<Detection>> for DetectionTask {
    fn supports(&self, m: Metric) -> bool {
        matches!(
            m,
            Metric::Map | Metric::Map50 | Metric::Map75 | Metric::VocMap
        )
    }

    fn start(
        &self,
        metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<Vec<Detection>>>> {
        Ok(Box::new(DetectionMetrics {
            metrics: metrics.to_vec(),
            coco: BoxMap::new(),
            voc: VocMap::new(),
        }))
    }
}

impl TaskMetrics<Vec<Detection>> for DetectionMetrics {
    fn update(&mut self, outputs: &[Vec<Detection>], samples: &[Sample]) -> Result<()> {
        for (dets, s) in pairs(outputs, samples)? {
            let gt = &s.targets.boxes;
            let crowd = crowd_of(s, gt.len());
            self.coco.update_with_crowd(dets, gt, crowd)?;
            self.voc.update_with_crowd(dets, gt, crowd)?;
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        let coco = self.coco.compute();
        self.metrics
            .iter()
            .map(|m| match m {
                Metric::Map => some("map", coco.map),
                Metric::Map50 => some("map_50", coco.map_50),
                Metric::Map75 => some("map_75", coco.map_75),
                _ => some("voc_map", self.voc.compute().map),
            })
            .collect()
    }
}

/// Instance segmentation: COCO mask mAP, and box mAP of the same instances.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceSegmentationTask;

struct MaskMetrics {
    metrics: Vec<Metric>,
    masks: MaskMap,
    boxes: BoxMap,
}

impl EvaluationTask<Vec<InstanceMask>> for InstanceSegmentationTask {
    fn supports(&self, m: Metric) -> bool {
        matches!(
            m,
            Metric::MaskMap
                | Metric::MaskMap50
                | Metric::MaskMap75
                | Metric::Map
                | Metric::Map50
                | Metric::Map75
        )
    }

    fn start(
        &self,
        metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<Vec<InstanceMask>>>> {
        Ok(Box::new(MaskMetrics {
            metrics: metrics.to_vec(),
            masks: MaskMap::new(),
            boxes: BoxMap::new(),
        }))
    }
}

impl TaskMetrics<Vec<InstanceMask>> for MaskMetrics {
    fn update(&mut self, outputs: &[Vec<InstanceMask>], samples: &[Sample]) -> Result<()> {
        for (pred, s) in pairs(outputs, samples)? {
            let gt = &s.targets.masks;
            self.masks
                .update_with_crowd(pred, gt, crowd_of(s, gt.len()))?;
            if self
                .metrics
                .iter()
                .any(|m| matches!(m, Metric::Map | Metric::Map50 | Metric::Map75))
            {
                let dets: Vec<Detection> = pred.iter().map(|m| m.detection).collect();
                let gt = &s.targets.boxes;
                self.boxes
                    .update_with_crowd(&dets, gt, crowd_of(s, gt.len()))?;
            }
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        let masks = self.masks.compute();
        let boxes = self.boxes.compute();
        self.metrics
            .iter()
            .map(|m| match m {
                Metric::MaskMap50 => some("mask_map_50", masks.map_50),
                Metric::MaskMap75 => some("mask_map_75", masks.map_75),
                Metric::Map => some("map", boxes.map),
                Metric::Map50 => some("map_50", boxes.map_50),
                Metric::Map75 => some("map_75", boxes.map_75),
                _ => some("mask_map", masks.map),
            })
            .collect()
    }
}

/// Semantic segmentation: mIoU and pixel accuracy. The ground-truth label map
/// is painted from `targets.masks` in order (later masks win); pixels no mask
/// covers are `background`.
#[derive(Debug, Clone, Copy)]
pub struct SemanticSegmentationTask {
    /// Number of classes.
    pub classes: usize,
    /// Label of pixels no mask covers.
    pub background: u32,
    /// Label excluded from the scores (e.g. 255).
    pub ignore_index: Option<u32>,
    /// Added to a mask's data-set class to give its label (see
    /// [`PixelClassification`](crate::PixelClassification)).
    pub class_offset: u32,
}

struct SegMetrics {
    task: SemanticSegmentationTask,
    metrics: Vec<Metric>,
    counts: SegmentationCounts,
}

impl EvaluationTask<ClassMap> for SemanticSegmentationTask {
    fn supports(&self, m: Metric) -> bool {
        matches!(m, Metric::Miou | Metric::PixelAccuracy)
    }

    fn start(
        &self,
        metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<ClassMap>>> {
        Ok(Box::new(SegMetrics {
            task: *self,
            metrics: metrics.to_vec(),
            counts: SegmentationCounts::new(self.classes, self.ignore_index),
        }))
    }
}

impl TaskMetrics<ClassMap> for SegMetrics {
    fn update(&mut self, outputs: &[ClassMap], samples: &[Sample]) -> Result<()> {
        for (pred, s) in pairs(outputs, samples)? {
            let gt = ClassMap {
                width: pred.width,
                height: pred.height,
                classes: crate::task::paint(
                    s,
                    pred.width,
                    pred.height,
                    self.task.background,
                    self.task.class_offset,
                )?,
            };
            self.counts.update(pred, &gt)?;
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        let s = self.counts.compute()?;
        Ok(self
            .metrics
            .iter()
            .map(|m| match m {
                Metric::Miou => ("miou".to_string(), s.miou),
                _ => ("pixel_accuracy".to_string(), s.pixel_accuracy),
            })
            .collect())
    }
}

/// Keypoints of one instance per sample: PCK@`alpha` normalised by the
/// instance's first box (or by `length` when set), NME normalised by the
/// inter-ocular distance when `eyes` is set, else as PCK; and COCO keypoint
/// AP ([`KeypointAp`], pycocotools' `keypoints` evaluation).
///
/// Keypoint AP treats each sample as one image. Its prediction is the one
/// pose the post-processor returns (none when it returns no keypoints),
/// scored by the mean of its keypoint scores, since heatmap and regression
/// keypoints carry no instance score. Its ground truth is every instance of
/// `targets.instance_keypoints` with the box `keypoint_boxes` names, that
/// box's `crowd` flag and `areas` entry (the box area where the data set has
/// no areas); a sample with only `targets.keypoints` has that one instance
/// with its first box.
#[derive(Debug, Clone)]
pub struct KeypointTask {
    /// PCK threshold as a fraction of the reference length.
    pub alpha: f64,
    /// A fixed reference length in pixels instead of the box size.
    pub length: Option<f64>,
    /// Keypoint indices of the two eyes for NME (300W: 36, 45).
    pub eyes: Option<(usize, usize)>,
    /// OKS sigmas of keypoint AP, one per keypoint; `None`: COCO's 17.
    pub sigmas: Option<Vec<f64>>,
}

struct KpMetrics {
    task: KeypointTask,
    metrics: Vec<Metric>,
    pck: Pck,
    nme: Nme,
    ap: Option<KeypointAp>,
}

/// Whether `m` is one of the keypoint AP metrics.
fn is_keypoint_ap(m: Metric) -> bool {
    matches!(
        m,
        Metric::KeypointAp
            | Metric::KeypointAp50
            | Metric::KeypointAp75
            | Metric::KeypointApMedium
            | Metric::KeypointApLarge
            | Metric::KeypointAr
    )
}

/// The ground-truth poses of one sample (see [`KeypointTask`]).
fn ground_truth_poses(s: &Sample) -> Result<Vec<PoseGroundTruth>> {
    let t = &s.targets;
    let missing = |what: String| {
        TrainError::Model(format!("sample `{}`: keypoint AP needs {what}", s.source))
    };
    let pose = |keypoints: &[unidl_data::Keypoint], b: usize| -> Result<PoseGroundTruth> {
        let bbox = *t
            .boxes
            .get(b)
            .ok_or_else(|| missing(format!("box {b} of a keypoint instance")))?;
        Ok(PoseGroundTruth {
            keypoints: keypoints.to_vec(),
            bbox,
            area: (t.areas.len() == t.boxes.len()).then(|| t.areas[b]),
            crowd: crowd_of(s, t.boxes.len()).get(b).copied().unwrap_or(false),
        })
    };
    if t.instance_keypoints.is_empty() {
        if t.keypoints.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![pose(&t.keypoints, 0)?]);
    }
    let links: Vec<usize> = if t.keypoint_boxes.is_empty() {
        if t.boxes.len() != t.instance_keypoints.len() {
            return Err(missing(format!(
                "a box per keypoint instance (`keypoint_boxes`), not {} boxes for {} instances",
                t.boxes.len(),
                t.instance_keypoints.len()
            )));
        }
        (0..t.boxes.len()).collect()
    } else {
        t.keypoint_boxes.clone()
    };
    t.instance_keypoints
        .iter()
        .zip(links)
        .map(|(k, b)| pose(k, b))
        .collect()
}

impl EvaluationTask<Vec<PredictedKeypoint>> for KeypointTask {
    fn supports(&self, m: Metric) -> bool {
        matches!(m, Metric::Pck | Metric::Nme) || is_keypoint_ap(m)
    }

    fn start(
        &self,
        metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<Vec<PredictedKeypoint>>>> {
        let ap = if metrics.iter().any(|m| is_keypoint_ap(*m)) {
            Some(match &self.sigmas {
                Some(s) => KeypointAp::with_sigmas(s)?,
                None => KeypointAp::new(),
            })
        } else {
            None
        };
        Ok(Box::new(KpMetrics {
            task: self.clone(),
            metrics: metrics.to_vec(),
            pck: Pck::new(self.alpha)?,
            nme: Nme::new(),
            ap,
        }))
    }
}

impl TaskMetrics<Vec<PredictedKeypoint>> for KpMetrics {
    fn update(&mut self, outputs: &[Vec<PredictedKeypoint>], samples: &[Sample]) -> Result<()> {
        let pck_or_nme = self.metrics.contains(&Metric::Pck) || self.metrics.contains(&Metric::Nme);
        for (pred, s) in pairs(outputs, samples)? {
            if let Some(ap) = &mut self.ap {
                let poses: Vec<PosePrediction> = if pred.is_empty() {
                    Vec::new()
                } else {
                    vec![PosePrediction::from_keypoints(pred.clone())]
                };
                ap.update(&poses, &ground_truth_poses(s)?)?;
            }
            if !pck_or_nme {
                continue;
            }
            let gt = &s.targets.keypoints;
            let size = match (self.task.length, s.targets.boxes.first()) {
                (Some(l), _) => Normalizer::Length(l),
                (None, Some(b)) => Normalizer::BoxSize(*b),
                (None, None) => {
                    return Err(TrainError::Model(format!(
                        "sample `{}`: PCK needs a box or a fixed `length` to normalise by",
                        s.source
                    )));
                }
            };
            if self.metrics.contains(&Metric::Pck) {
                self.pck.update(pred, gt, &size)?;
            }
            if self.metrics.contains(&Metric::Nme) {
                let norm = match self.task.eyes {
                    Some((left, right)) => Normalizer::InterOcular { left, right },
                    None => size,
                };
                self.nme.update(pred, gt, &norm)?;
            }
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        let ap = self.ap.as_ref().map(KeypointAp::compute);
        self.metrics
            .iter()
            .map(|&m| {
                let name = m.name();
                let Some(ap) = ap.filter(|_| is_keypoint_ap(m)) else {
                    return Ok(match m {
                        Metric::Pck => (name.to_string(), self.pck.compute()?.pck),
                        _ => (name.to_string(), self.nme.compute()?),
                    });
                };
                some(
                    name,
                    match m {
                        Metric::KeypointAp => ap.ap,
                        Metric::KeypointAp50 => ap.ap_50,
                        Metric::KeypointAp75 => ap.ap_75,
                        Metric::KeypointApMedium => ap.ap_medium,
                        Metric::KeypointApLarge => ap.ap_large,
                        _ => ap.ar,
                    },
                )
            })
            .collect()
    }
}

/// Text and speech outputs against `targets.text`: CER, WER, corpus BLEU
/// (sacrebleu's defaults, 0–100) and chrF; exact-match `accuracy` and
/// macro `f1_macro` for text-to-text classification.
///
/// With `class_names` (text-to-text classification, the target is its class
/// name), a sample without `targets.text` is compared with the name of its
/// `targets.label`; an output that is no class name counts as wrong, and the
/// macro averages run over the classes (scikit-learn's label set: those
/// present in targets or predictions).
#[derive(Debug, Clone, Default)]
pub struct TextTask {
    /// The class names the outputs are read as (empty: free text).
    pub class_names: Vec<String>,
}

struct TextMetrics {
    metrics: Vec<Metric>,
    class_names: Vec<String>,
    cer: ErrorRate,
    wer: ErrorRate,
    bleu: Bleu,
    chrf: ChrF,
    /// Class index of each output (`class_names.len()`: none) and target.
    predicted: Vec<usize>,
    target: Vec<usize>,
}

impl EvaluationTask<DecodedSequence> for TextTask {
    fn supports(&self, m: Metric) -> bool {
        matches!(
            m,
            Metric::Cer | Metric::Wer | Metric::Bleu | Metric::Chrf | Metric::Accuracy
        ) || (m == Metric::F1Macro && !self.class_names.is_empty())
    }

    fn start(
        &self,
        metrics: &[Metric],
        _dataset: &PreparedDataset,
    ) -> Result<Box<dyn TaskMetrics<DecodedSequence>>> {
        Ok(Box::new(TextMetrics {
            metrics: metrics.to_vec(),
            class_names: self.class_names.clone(),
            cer: ErrorRate::new(ErrorUnit::Char),
            wer: ErrorRate::new(ErrorUnit::Word),
            bleu: Bleu::new(BleuSmoothing::Exp),
            chrf: ChrF::new(),
            predicted: Vec::new(),
            target: Vec::new(),
        }))
    }
}

impl TextMetrics {
    /// The sample's reference: its text, or its label's class name.
    fn reference<'a>(&'a self, s: &'a Sample) -> Result<&'a str> {
        if let Some(t) = s.targets.text.as_deref() {
            return Ok(t);
        }
        match s.targets.label {
            Some(l) if !self.class_names.is_empty() => {
                self.class_names.get(l).map(String::as_str).ok_or_else(|| {
                    TrainError::Model(format!(
                        "sample `{}`: label {l} is outside the {} class names",
                        s.source,
                        self.class_names.len()
                    ))
                })
            }
            _ => Err(TrainError::Model(format!(
                "sample `{}` has no target text",
                s.source
            ))),
        }
    }

    /// Index of `text` among the class names; `None` when it is none.
    fn class_of(&self, text: &str) -> Option<usize> {
        self.class_names.iter().position(|c| c == text)
    }
}

impl TaskMetrics<DecodedSequence> for TextMetrics {
    fn update(&mut self, outputs: &[DecodedSequence], samples: &[Sample]) -> Result<()> {
        for (o, s) in pairs(outputs, samples)? {
            let hyp = o.text.as_deref().ok_or_else(|| {
                TrainError::Model(
                    "text metrics need decoded text: give the post-processor a vocabulary".into(),
                )
            })?;
            let reference = self.reference(s)?.to_string();
            self.cer.update(&[hyp], &[reference.as_str()])?;
            self.wer.update(&[hyp], &[reference.as_str()])?;
            self.bleu.update(hyp, &[reference.as_str()])?;
            self.chrf.update(hyp, &[reference.as_str()])?;
            let none = self.class_names.len();
            let (h, r) = (hyp.trim(), reference.trim());
            if none == 0 {
                // free text: exact match only
                self.target.push(0);
                self.predicted.push(usize::from(h != r));
            } else {
                self.target.push(self.class_of(r).unwrap_or(none));
                self.predicted.push(self.class_of(h).unwrap_or(none));
            }
        }
        Ok(())
    }

    fn compute(&self) -> Result<Scores> {
        self.metrics
            .iter()
            .map(|m| {
                Ok(match m {
                    Metric::Cer => ("cer".to_string(), self.cer.compute()?),
                    Metric::Wer => ("wer".to_string(), self.wer.compute()?),
                    Metric::Chrf => ("chrf".to_string(), self.chrf.compute()),
                    Metric::Accuracy => ("accuracy".to_string(), self.exact_match()),
                    Metric::F1Macro => ("f1_macro".to_string(), self.macro_f1()),
                    _ => ("bleu".to_string(), self.bleu.compute().score),
                })
            })
            .collect()
    }
}

impl TextMetrics {
    /// Share of outputs equal to their reference (surrounding spaces aside).
    fn exact_match(&self) -> f64 {
        if self.target.is_empty() {
            return 0.0;
        }
        let hits = self
            .predicted
            .iter()
            .zip(&self.target)
            .filter(|(p, t)| {
                p == t && (self.class_names.is_empty() || **t < self.class_names.len())
            })
            .count();
        hits as f64 / self.target.len() as f64
    }

    /// Macro F1 over the classes present in targets or outputs; outputs that
    /// are no class name are wrong and belong to no class.
    fn macro_f1(&self) -> f64 {
        let n = self.class_names.len();
        let prf = crate::eval::per_class_prf(&crate::eval::confusion_matrix(
            &self.predicted,
            &self.target,
            n + 1,
        ));
        let present: Vec<usize> = (0..n)
            .filter(|c| self.predicted.contains(c) || self.target.contains(c))
            .collect();
        if present.is_empty() {
            return 0.0;
        }
        present.iter().map(|&c| prf[c].2).sum::<f64>() / present.len() as f64
    }
}
