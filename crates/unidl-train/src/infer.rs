//! Inference (§6.2.3.3, B.5) and post-processing (§6.2.3.5):
//! `construct_inference`, `infer_one_sample`, `infer_samples` with real
//! batching and per-call overrides.

use burn::module::Module;
use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_data::Sample;
use unidl_data::transform::{Compose, Transform, rng_for};
use unidl_tensor::Tensor;

use crate::error::{Result, TrainError};

/// Turns samples into raw model outputs (In-b: preprocess → model).
pub trait Predictor<M>: Send + Sync {
    /// Raw outputs for a batch, first axis = sample.
    fn outputs(&self, model: &M, samples: &[Sample], device: &Device) -> Result<Tensor>;

    /// [`outputs`](Self::outputs) under a call's options (generation
    /// settings reach the model here); by default the options do not matter.
    fn outputs_with(
        &self,
        model: &M,
        samples: &[Sample],
        device: &Device,
        _options: &InferOptions,
    ) -> Result<Tensor> {
        self.outputs(model, samples, device)
    }
}

/// The base class of post-processing (Post-a): raw outputs of a batch →
/// one meaningful structure per sample (Post-b).
pub trait PostProcess: Send + Sync {
    /// The structure per sample (serialisable: `evalvate` records it and
    /// `unidl infer --json` prints it).
    type Output: Serialize;
    /// Converts a batch of outputs.
    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<Self::Output>>;

    /// Whether [`process`](Self::process) needs each sample's image size in
    /// [`InferOptions::geometry`] (instance masks are pasted into their
    /// image). Where the caller gives no geometry, inference and validation
    /// then give the identity geometry of each input image
    /// ([`with_input_geometry`]). Default: no.
    fn needs_geometry(&self) -> bool {
        false
    }
}

/// `options`, or — when it has no geometry and `needed` — a copy with the
/// identity geometry of each sample's input image (`image`), so that outputs
/// are placed on the image the model saw. Samples without an image input
/// leave the options as they are.
pub fn with_input_geometry<'a>(
    needed: bool,
    options: &'a InferOptions,
    samples: &[Sample],
) -> std::borrow::Cow<'a, InferOptions> {
    use std::borrow::Cow;
    if !needed || !options.geometry.is_empty() {
        return Cow::Borrowed(options);
    }
    let geometry: Option<Vec<_>> = samples
        .iter()
        .map(|s| {
            s.image_input("image")
                .map(|i| crate::geometry::ImageGeometry::identity(i.width, i.height))
        })
        .collect();
    match geometry {
        Some(geometry) => Cow::Owned(InferOptions {
            geometry,
            ..options.clone()
        }),
        None => Cow::Borrowed(options),
    }
}

/// The geometry of each sample that the inference preprocessing warped
/// (`None` when it warped none): from its [`Frame`](unidl_data::Frame), the
/// identity for an unwarped image among warped ones.
fn preprocess_geometry(samples: &[Sample]) -> Result<Option<Vec<crate::geometry::ImageGeometry>>> {
    use crate::geometry::ImageGeometry;
    if samples.iter().all(|s| s.frame.is_none()) {
        return Ok(None);
    }
    samples
        .iter()
        .map(|s| match (&s.frame, s.image_input("image")) {
            (Some(frame), _) => ImageGeometry::from_frame(frame, &s.source),
            (None, Some(img)) => Ok(ImageGeometry::identity(img.width, img.height)),
            (None, None) => Err(TrainError::Model(format!(
                "`{}` has no image input while others of its batch were warped",
                s.source
            ))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Per-call settings (B.5.2 `infer_config`): batch size, top-k, score threshold.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InferOptions {
    /// Samples per forward pass (In-c).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// How many classes to report.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Drop classes with a lower probability.
    #[serde(default)]
    pub score_threshold: f64,
    /// IoU above which NMS suppresses a box (detection post-processing).
    #[serde(default = "default_iou")]
    pub iou_threshold: f64,
    /// Most detections reported per sample (detection post-processing).
    #[serde(default = "default_max_detections")]
    pub max_detections: usize,
    /// How each sample's original image became the network input (resize or
    /// letterbox), to map boxes, masks and keypoints back: empty = outputs
    /// stay in input pixels, one entry = the same for every sample, else one
    /// per sample of the batch handed to post-processing.
    #[serde(default)]
    pub geometry: Vec<crate::geometry::ImageGeometry>,
    /// How encoder–decoders generate (`[infer.generation]`; default: the
    /// task's own settings).
    #[serde(default)]
    pub generation: Option<crate::decoding::GenerationConfig>,
}

fn default_batch() -> usize {
    64
}
fn default_top_k() -> usize {
    5
}
fn default_iou() -> f64 {
    0.5
}
fn default_max_detections() -> usize {
    100
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            batch_size: default_batch(),
            top_k: default_top_k(),
            score_threshold: 0.0,
            iou_threshold: default_iou(),
            max_detections: default_max_detections(),
            geometry: Vec::new(),
            generation: None,
        }
    }
}

impl InferOptions {
    fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("infer.batch_size", self.batch_size),
            ("infer.top_k", self.top_k),
        ] {
            if value == 0 {
                return Err(TrainError::Config {
                    key: key.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return Err(TrainError::Config {
                key: "infer.score_threshold".into(),
                reason: format!("{} is outside [0, 1]", self.score_threshold),
            });
        }
        crate::geometry::check_unit("infer.iou_threshold", self.iou_threshold)?;
        if self.max_detections == 0 {
            return Err(TrainError::Config {
                key: "infer.max_detections".into(),
                reason: "must be at least 1".into(),
            });
        }
        for (i, g) in self.geometry.iter().enumerate() {
            g.validate(&format!("infer.geometry[{i}]"))?;
        }
        if let Some(g) = &self.generation {
            g.validate()?;
        }
        Ok(())
    }
}

/// One ranked class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// Class index.
    pub class: usize,
    /// Class name (the index as text when no names are known).
    pub label: String,
    /// Softmax probability.
    pub probability: f64,
}

/// Classification post-processing: softmax over logits `[B, classes]`, the
/// top-k classes above the threshold, with names.
#[derive(Debug, Clone, Default)]
pub struct Classification {
    /// Class names by index.
    pub class_names: Vec<String>,
}

impl PostProcess for Classification {
    type Output = Vec<ClassScore>;

    fn process(&self, outputs: &Tensor, options: &InferOptions) -> Result<Vec<Vec<ClassScore>>> {
        if outputs.rank() != 2 {
            return Err(TrainError::Model(format!(
                "classification expects logits [batch, classes], got {:?}",
                outputs.shape()
            )));
        }
        let classes = outputs.shape()[1];
        let probs = outputs.softmax(1)?.to_vec_f64()?;
        Ok(probs
            .chunks(classes)
            .map(|row| {
                let mut idx: Vec<usize> = (0..classes).collect();
                idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                idx.into_iter()
                    .take(options.top_k)
                    .filter(|&c| row[c] >= options.score_threshold)
                    .map(|c| ClassScore {
                        class: c,
                        label: self
                            .class_names
                            .get(c)
                            .cloned()
                            .unwrap_or_else(|| c.to_string()),
                        probability: row[c],
                    })
                    .collect()
            })
            .collect())
    }
}

/// A model ready for inference: preprocessing, predictor, post-processing.
pub struct Inference<M, P: Predictor<M>, Q: PostProcess> {
    model: M,
    predictor: P,
    post: Q,
    preprocess: Compose,
    options: InferOptions,
    device: Device,
}

/// `construct_inference(model, infer_config{preproc, postproc})` (B.5.1).
/// The model is switched to inference mode. Errors: a config value out of
/// range ([`TrainError::Config`] naming the key); a model that cannot infer
/// — a parameter holding NaN or an infinity, e.g. from a diverged run or a
/// corrupt checkpoint ([`TrainError::Model`] naming the parameter).
pub fn construct_inference<M: Module, P: Predictor<M>, Q: PostProcess>(
    model: M,
    predictor: P,
    preprocess: Compose,
    post: Q,
    options: InferOptions,
    device: &Device,
) -> Result<Inference<M, P, Q>> {
    options.validate()?;
    if let Some(param) = crate::optim::first_non_finite_parameter(&model)? {
        return Err(TrainError::Model(format!(
            "parameter `{param}` holds NaN or infinite values: the model cannot infer"
        )));
    }
    let device = device.clone().without_autodiff();
    let model = model.valid().fork(&device);
    Ok(Inference {
        model,
        predictor,
        post,
        preprocess,
        options,
        device,
    })
}

impl<M: Module, P: Predictor<M>, Q: PostProcess> Inference<M, P, Q> {
    /// `infer_one_sample(input, infer_config?)` (B.5.2).
    pub fn infer_one_sample(
        &self,
        input: Sample,
        overrides: Option<&InferOptions>,
    ) -> Result<Q::Output> {
        let mut out = self.infer_samples(vec![input], overrides)?;
        out.pop()
            .ok_or_else(|| TrainError::Model("the model returned no output".into()))
    }

    /// `infer_samples(inputs, infer_config?)` (B.5.3): batched by `batch_size`.
    ///
    /// Outputs are placed on each input as given: where the inference
    /// preprocessing resizes, letterboxes or crops an image (and the options
    /// carry no geometry of their own), boxes, masks and keypoints are mapped
    /// back through the [`Frame`](unidl_data::Frame) it left on the sample.
    /// A data set's samples, transformed before they get here, keep the frame
    /// of their transformed images, which is where their targets are.
    pub fn infer_samples(
        &self,
        inputs: Vec<Sample>,
        overrides: Option<&InferOptions>,
    ) -> Result<Vec<Q::Output>> {
        let options = overrides.unwrap_or(&self.options);
        options.validate()?;
        let mut rng = rng_for(0, 0, 0);
        let prepared = inputs
            .into_iter()
            .map(|mut s| {
                // only this pipeline's own warps are undone
                s.frame = None;
                self.preprocess.apply(s, &mut rng)
            })
            .collect::<unidl_data::Result<Vec<_>>>()?;
        let tracked = if options.geometry.is_empty() {
            preprocess_geometry(&prepared)?
        } else {
            None
        };
        let mut out = Vec::with_capacity(prepared.len());
        let per_sample = options.geometry.len() > 1 && options.geometry.len() == prepared.len();
        for (k, chunk) in prepared.chunks(options.batch_size).enumerate() {
            let raw = self
                .predictor
                .outputs_with(&self.model, chunk, &self.device, options)?;
            let start = k * options.batch_size;
            if let Some(tracked) = &tracked {
                let own = InferOptions {
                    geometry: tracked[start..start + chunk.len()].to_vec(),
                    ..options.clone()
                };
                out.extend(self.post.process(&raw, &own)?);
            } else if options.geometry.is_empty() {
                let own = with_input_geometry(self.post.needs_geometry(), options, chunk);
                out.extend(self.post.process(&raw, &own)?);
            } else if per_sample {
                // Each chunk gets the geometry entries of its own samples.
                let sliced = InferOptions {
                    geometry: options.geometry[start..start + chunk.len()].to_vec(),
                    ..options.clone()
                };
                out.extend(self.post.process(&raw, &sliced)?);
            } else {
                out.extend(self.post.process(&raw, options)?);
            }
        }
        Ok(out)
    }

    /// The default per-call settings.
    pub fn options(&self) -> &InferOptions {
        &self.options
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }
}
