//! Transforms (§6.2.2.2, A-a/A-b/A-c): a base trait, derived transforms, and
//! combinators, built from TOML as tagged enums.
//!
//! ```toml
//! [[transforms]]
//! type = "random_resized_crop"
//! size = [24, 24]
//! [[transforms]]
//! type = "random_horizontal_flip"
//! p = 0.5
//! [[transforms]]
//! type = "normalize"
//! mean = [0.1307]
//! std = [0.3081]
//! ```
//!
//! Audio transforms (speed, pitch shift, noise at an SNR, gain, time shift,
//! resampling, log-mel spectrograms, SpecAugment) live in `audio`, feature
//! scaling (standardize, min-max, L2) in `feature`.
//!
//! Randomness comes only from the `rng` argument. The loader seeds it from
//! (pipeline seed, epoch, sample index), so a pipeline gives the same output for
//! a sample whatever the number of workers.

mod audio;
mod feature;
mod image;
mod mix;
mod video;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand::Rng as _;
use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::sample::Sample;

pub use audio::{
    AddNoise, Gain, MaskValue, MelLog, MelNorm, MelScale, MelSpectrogram, PitchShift, Resample,
    ShiftMode, SpecAugment, Speed, TimeShift,
};
pub use feature::{MinMax, NormalizeL2, Standardize};
pub use image::{
    CenterCrop, ColorJitter, Grayscale, HorizontalFlip, Normalize, RandomAffine, RandomCrop,
    RandomResizedCrop, Resize, VerticalFlip, adjust_brightness, adjust_contrast, adjust_hue,
    adjust_saturation,
};
pub use mix::{BatchTransform, BatchTransformConfig, CutMix, MixUp};
pub use video::TemporalCrop;

/// The random generator every transform draws from (portable and reproducible).
pub type Rng = rand_chacha::ChaCha8Rng;

/// A deterministic permutation of `0..n` for (seed, epoch): the sampler's
/// shuffle order (here, beside the generators, so that data sets and the
/// sampler both use it without depending on each other).
pub fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    shuffled(n, &mut rng_for(seed, 0x005E_ED0F_5A3D, epoch))
}

/// A deterministic generator for `(seed, stream, index)`: the same triple gives
/// the same stream on every platform and in every thread.
pub fn rng_for(seed: u64, stream: u64, index: u64) -> Rng {
    use rand::SeedableRng;
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    // splitmix64 finaliser
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    Rng::seed_from_u64(z)
}

/// A Fisher–Yates permutation of `0..n` drawn from `rng` (the one shuffle
/// behind samplers, `RandomOrder` and batch mixing).
pub fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
    v
}

/// The base class of every transform (A-a): a function of a sample and a random
/// generator. Geometric transforms move boxes, masks and keypoints with the image (A-b).
pub trait Transform: Send + Sync + fmt::Debug {
    /// The name used in configs and errors.
    fn name(&self) -> &str;
    /// Transforms one sample.
    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample>;
}

/// A transform shared between loader workers.
pub type DynTransform = Arc<dyn Transform>;

/// Runs transforms in order.
#[derive(Debug, Clone)]
pub struct Compose(pub Vec<DynTransform>);

impl Transform for Compose {
    fn name(&self) -> &str {
        "compose"
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Sample> {
        for t in &self.0 {
            sample = t.apply(sample, rng)?;
        }
        Ok(sample)
    }
}

/// Applies the inner transforms with probability `p`.
#[derive(Debug, Clone)]
pub struct RandomApply {
    /// Probability.
    pub p: f64,
    /// What to apply.
    pub inner: Compose,
}

impl Transform for RandomApply {
    fn name(&self) -> &str {
        "random_apply"
    }
    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        if rng.random::<f64>() < self.p {
            self.inner.apply(sample, rng)
        } else {
            Ok(sample)
        }
    }
}

/// Applies one of the transforms, chosen with the given weights.
#[derive(Debug, Clone)]
pub struct RandomChoice {
    /// Candidates.
    pub choices: Vec<DynTransform>,
    /// Non-negative weights, one per candidate.
    pub weights: Vec<f64>,
}

impl Transform for RandomChoice {
    fn name(&self) -> &str {
        "random_choice"
    }
    fn apply(&self, sample: Sample, rng: &mut Rng) -> Result<Sample> {
        let total: f64 = self.weights.iter().sum();
        let mut r = rng.random::<f64>() * total;
        for (t, w) in self.choices.iter().zip(&self.weights) {
            if r < *w {
                return t.apply(sample, rng);
            }
            r -= w;
        }
        match self.choices.last() {
            Some(t) => t.apply(sample, rng),
            None => Ok(sample),
        }
    }
}

/// Applies all transforms in a random order.
#[derive(Debug, Clone)]
pub struct RandomOrder(pub Vec<DynTransform>);

impl Transform for RandomOrder {
    fn name(&self) -> &str {
        "random_order"
    }
    fn apply(&self, mut sample: Sample, rng: &mut Rng) -> Result<Sample> {
        let order = shuffled(self.0.len(), rng);
        for i in order {
            sample = self.0[i].apply(sample, rng)?;
        }
        Ok(sample)
    }
}

fn default_p() -> f64 {
    0.5
}

fn default_scale() -> [f32; 2] {
    [0.08, 1.0]
}

fn default_ratio() -> [f32; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

/// A transform as written in a config file (`type = "…"` selects the variant).
/// Unknown keys are errors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformConfig {
    /// Resize to `size = [height, width]`; with `keep_ratio`, scale to fit and pad (letterbox).
    Resize {
        /// `[height, width]`.
        size: [usize; 2],
        /// Keep the aspect ratio and pad with `fill`.
        #[serde(default)]
        keep_ratio: bool,
        /// Padding value for letterboxing.
        #[serde(default)]
        fill: f32,
    },
    /// Crop the centre `size = [height, width]`.
    CenterCrop {
        /// `[height, width]`.
        size: [usize; 2],
    },
    /// Crop a random `size = [height, width]` window.
    RandomCrop {
        /// `[height, width]`.
        size: [usize; 2],
    },
    /// Crop a random area fraction in `scale` with aspect ratio in `ratio`, resize to `size`.
    RandomResizedCrop {
        /// Output `[height, width]`.
        size: [usize; 2],
        /// Area fraction range.
        #[serde(default = "default_scale")]
        scale: [f32; 2],
        /// Aspect-ratio range (width / height).
        #[serde(default = "default_ratio")]
        ratio: [f32; 2],
    },
    /// Mirror left-right with probability `p`; `flip_pairs` lists keypoint index pairs to swap.
    RandomHorizontalFlip {
        /// Probability.
        #[serde(default = "default_p")]
        p: f64,
        /// Keypoint pairs `[[left, right], …]` to swap.
        #[serde(default)]
        flip_pairs: Vec<[usize; 2]>,
    },
    /// Mirror top-bottom with probability `p`.
    RandomVerticalFlip {
        /// Probability.
        #[serde(default = "default_p")]
        p: f64,
    },
    /// Rotate by an angle in `degrees`, translate by up to `translate` × size,
    /// scale by a factor in `scale`, about the centre.
    RandomAffine {
        /// Rotation range in degrees.
        #[serde(default)]
        degrees: [f32; 2],
        /// Maximum translation as fractions of `[width, height]`.
        #[serde(default)]
        translate: [f32; 2],
        /// Scale range.
        #[serde(default = "unit_scale")]
        scale: [f32; 2],
        /// Value of uncovered pixels.
        #[serde(default)]
        fill: f32,
    },
    /// Rotate by an angle drawn from `degrees` about the centre.
    RandomRotation {
        /// Rotation range in degrees.
        degrees: [f32; 2],
        /// Value of uncovered pixels.
        #[serde(default)]
        fill: f32,
    },
    /// Random brightness, contrast and saturation factors in `[1 - x, 1 + x]`,
    /// and a hue shift in `[-hue, hue]` (fractions of a turn, `hue` ≤ 0.5).
    ColorJitter {
        /// Brightness strength.
        #[serde(default)]
        brightness: f32,
        /// Contrast strength.
        #[serde(default)]
        contrast: f32,
        /// Saturation strength.
        #[serde(default)]
        saturation: f32,
        /// Hue strength in [0, 0.5].
        #[serde(default)]
        hue: f32,
    },
    /// Convert to `channels` (1 or 3) gray channels.
    Grayscale {
        /// Output channel count.
        #[serde(default = "one")]
        channels: usize,
    },
    /// `(x - mean) / std` per channel.
    Normalize {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel standard deviation.
        std: Vec<f32>,
    },
    /// Change audio speed and pitch together ([`Speed`]).
    Speed(Speed),
    /// Shift audio pitch, keeping the duration ([`PitchShift`]).
    PitchShift(PitchShift),
    /// Add background noise at an SNR ([`AddNoise`]).
    AddNoise(AddNoise),
    /// Audio gain in dB ([`Gain`]).
    Gain(Gain),
    /// Shift audio in time ([`TimeShift`]).
    TimeShift(TimeShift),
    /// Resample audio to a rate ([`Resample`]).
    Resample(Resample),
    /// Log-mel spectrogram of audio ([`MelSpectrogram`]).
    MelSpectrogram(MelSpectrogram),
    /// Frequency and time masks on a spectrogram ([`SpecAugment`]).
    SpecAugment(SpecAugment),
    /// Zero mean, unit variance features ([`Standardize`]).
    Standardize(Standardize),
    /// Scale features to `[lo, hi]` ([`MinMax`]).
    MinMax(MinMax),
    /// Unit L2 norm along an axis ([`NormalizeL2`]).
    NormalizeL2(NormalizeL2),
    /// Run `transforms` in order.
    Compose {
        /// The list.
        transforms: Vec<TransformConfig>,
    },
    /// Run `transforms` with probability `p`.
    RandomApply {
        /// Probability.
        p: f64,
        /// The list.
        transforms: Vec<TransformConfig>,
    },
    /// Run one of `transforms`, drawn with `weights` (equal when omitted).
    RandomChoice {
        /// Candidates.
        transforms: Vec<TransformConfig>,
        /// Weights.
        #[serde(default)]
        weights: Vec<f64>,
    },
    /// Run all `transforms` in a random order.
    RandomOrder {
        /// The list.
        transforms: Vec<TransformConfig>,
    },
    /// Video: `frames` consecutive frames from a random start (decode more
    /// with `[data] frames`, keep a random window for training).
    RandomTemporalCrop {
        /// Frames kept.
        frames: usize,
    },
    /// Video: the centred window of `frames` consecutive frames.
    CenterTemporalCrop {
        /// Frames kept.
        frames: usize,
    },
    /// A transform registered by the user under `name`, with its own parameters.
    Custom {
        /// Registered name.
        name: String,
        /// Parameters passed to the factory.
        #[serde(default)]
        params: BTreeMap<String, toml::Value>,
    },
}

fn one() -> usize {
    1
}

fn unit_scale() -> [f32; 2] {
    [1.0, 1.0]
}

/// Builds user transforms from their parameters.
pub type Factory =
    Arc<dyn Fn(&BTreeMap<String, toml::Value>) -> Result<DynTransform> + Send + Sync>;

/// Names → factories of user-defined transforms (A-c: new transforms are easy to add).
#[derive(Default, Clone)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `factory` under `name` (used by `type = "custom"`, `name = "…"`).
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(&BTreeMap<String, toml::Value>) -> Result<DynTransform> + Send + Sync + 'static,
    ) {
        self.factories.insert(name.to_string(), Arc::new(factory));
    }
}

fn check_p(key: &str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(DataError::config(
            key,
            format!("probability {p} is outside [0, 1]"),
        ))
    }
}

impl TransformConfig {
    /// Builds the transform, checking every value; `registry` resolves `custom` entries.
    pub fn build(&self, registry: &Registry) -> Result<DynTransform> {
        let list = |ts: &[TransformConfig]| {
            ts.iter()
                .map(|t| t.build(registry))
                .collect::<Result<Vec<_>>>()
        };
        let positive = |key: &str, s: [usize; 2]| {
            if s[0] == 0 || s[1] == 0 {
                Err(DataError::config(
                    key,
                    format!("size {s:?} must be positive"),
                ))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            TransformConfig::Resize {
                size,
                keep_ratio,
                fill,
            } => {
                positive("resize.size", *size)?;
                Arc::new(Resize {
                    size: *size,
                    keep_ratio: *keep_ratio,
                    fill: *fill,
                })
            }
            TransformConfig::CenterCrop { size } => {
                positive("center_crop.size", *size)?;
                Arc::new(CenterCrop { size: *size })
            }
            TransformConfig::RandomCrop { size } => {
                positive("random_crop.size", *size)?;
                Arc::new(RandomCrop { size: *size })
            }
            TransformConfig::RandomResizedCrop { size, scale, ratio } => {
                positive("random_resized_crop.size", *size)?;
                if !(0.0 < scale[0] && scale[0] <= scale[1] && scale[1] <= 1.0) {
                    return Err(DataError::config(
                        "random_resized_crop.scale",
                        format!("{scale:?} must satisfy 0 < min <= max <= 1"),
                    ));
                }
                if !(0.0 < ratio[0] && ratio[0] <= ratio[1]) {
                    return Err(DataError::config(
                        "random_resized_crop.ratio",
                        format!("{ratio:?} must satisfy 0 < min <= max"),
                    ));
                }
                Arc::new(RandomResizedCrop {
                    size: *size,
                    scale: *scale,
                    ratio: *ratio,
                })
            }
            TransformConfig::RandomHorizontalFlip { p, flip_pairs } => {
                check_p("random_horizontal_flip.p", *p)?;
                Arc::new(RandomApply {
                    p: *p,
                    inner: Compose(vec![Arc::new(HorizontalFlip {
                        flip_pairs: flip_pairs.clone(),
                    })]),
                })
            }
            TransformConfig::RandomVerticalFlip { p } => {
                check_p("random_vertical_flip.p", *p)?;
                Arc::new(RandomApply {
                    p: *p,
                    inner: Compose(vec![Arc::new(VerticalFlip)]),
                })
            }
            TransformConfig::RandomAffine {
                degrees,
                translate,
                scale,
                fill,
            } => {
                if degrees[0] > degrees[1]
                    || !(0.0 < scale[0] && scale[0] <= scale[1])
                    || translate.iter().any(|t| !(0.0..=1.0).contains(t))
                {
                    return Err(DataError::config(
                        "random_affine",
                        format!(
                            "degrees {degrees:?} must be [min, max], scale {scale:?} positive [min, max], translate {translate:?} in [0, 1]"
                        ),
                    ));
                }
                Arc::new(RandomAffine {
                    degrees: *degrees,
                    translate: *translate,
                    scale: *scale,
                    fill: *fill,
                })
            }
            TransformConfig::RandomRotation { degrees, fill } => {
                if degrees[0] > degrees[1] {
                    return Err(DataError::config(
                        "random_rotation.degrees",
                        format!("{degrees:?} must be [min, max]"),
                    ));
                }
                Arc::new(RandomAffine {
                    degrees: *degrees,
                    translate: [0.0, 0.0],
                    scale: [1.0, 1.0],
                    fill: *fill,
                })
            }
            TransformConfig::ColorJitter {
                brightness,
                contrast,
                saturation,
                hue,
            } => {
                if !(0.0..=0.5).contains(hue) {
                    return Err(DataError::config(
                        "color_jitter.hue",
                        format!("{hue} is outside [0, 0.5]"),
                    ));
                }
                for (k, v) in [
                    ("brightness", brightness),
                    ("contrast", contrast),
                    ("saturation", saturation),
                ] {
                    if !(0.0..=1.0).contains(v) {
                        return Err(DataError::config(
                            &format!("color_jitter.{k}"),
                            format!("{v} is outside [0, 1]"),
                        ));
                    }
                }
                Arc::new(ColorJitter {
                    brightness: *brightness,
                    contrast: *contrast,
                    saturation: *saturation,
                    hue: *hue,
                })
            }
            TransformConfig::Grayscale { channels } => {
                if !matches!(channels, 1 | 3) {
                    return Err(DataError::config(
                        "grayscale.channels",
                        format!("{channels} must be 1 or 3"),
                    ));
                }
                Arc::new(Grayscale {
                    channels: *channels,
                })
            }
            TransformConfig::Normalize { mean, std } => {
                if mean.len() != std.len() || mean.is_empty() {
                    return Err(DataError::config(
                        "normalize",
                        format!("mean has {} values, std {}", mean.len(), std.len()),
                    ));
                }
                if std.iter().any(|s| *s <= 0.0) {
                    return Err(DataError::config(
                        "normalize.std",
                        "every std must be positive",
                    ));
                }
                Arc::new(Normalize {
                    mean: mean.clone(),
                    std: std.clone(),
                })
            }
            TransformConfig::Speed(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::PitchShift(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::AddNoise(t) => Arc::new(t.load()?),
            TransformConfig::Gain(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::TimeShift(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::Resample(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::MelSpectrogram(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::SpecAugment(t) => Arc::new(t.clone()),
            TransformConfig::Standardize(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::MinMax(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::NormalizeL2(t) => {
                t.check()?;
                Arc::new(t.clone())
            }
            TransformConfig::Compose { transforms } => Arc::new(Compose(list(transforms)?)),
            TransformConfig::RandomApply { p, transforms } => {
                check_p("random_apply.p", *p)?;
                Arc::new(RandomApply {
                    p: *p,
                    inner: Compose(list(transforms)?),
                })
            }
            TransformConfig::RandomChoice {
                transforms,
                weights,
            } => {
                let weights = if weights.is_empty() {
                    vec![1.0; transforms.len()]
                } else {
                    weights.clone()
                };
                if weights.len() != transforms.len()
                    || weights.iter().any(|w| *w < 0.0)
                    || weights.iter().sum::<f64>() <= 0.0
                {
                    return Err(DataError::config(
                        "random_choice.weights",
                        "one non-negative weight per transform, not all zero",
                    ));
                }
                Arc::new(RandomChoice {
                    choices: list(transforms)?,
                    weights,
                })
            }
            TransformConfig::RandomOrder { transforms } => Arc::new(RandomOrder(list(transforms)?)),
            TransformConfig::RandomTemporalCrop { frames } => {
                positive_count("random_temporal_crop.frames", *frames)?;
                Arc::new(TemporalCrop {
                    frames: *frames,
                    random: true,
                })
            }
            TransformConfig::CenterTemporalCrop { frames } => {
                positive_count("center_temporal_crop.frames", *frames)?;
                Arc::new(TemporalCrop {
                    frames: *frames,
                    random: false,
                })
            }
            TransformConfig::Custom { name, params } => {
                let f = registry.factories.get(name).ok_or_else(|| {
                    DataError::config(
                        "custom.name",
                        format!("no transform registered as `{name}` (registered: {registry:?})"),
                    )
                })?;
                f(params)?
            }
        })
    }
}

/// A pipeline file section: `[[transforms]]` entries.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The transforms, in order.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
}

/// Parses a `[[transforms]]` TOML document and builds the pipeline; errors name
/// the line and key.
pub fn pipeline_from_toml(text: &str, registry: &Registry) -> Result<Compose> {
    let cfg: PipelineConfig = toml::from_str(text).map_err(|e| DataError::Parse {
        path: "<pipeline>".into(),
        line: e.span().map(|s| text[..s.start].matches('\n').count() + 1),
        reason: e.message().to_string(),
    })?;
    Ok(Compose(
        cfg.transforms
            .iter()
            .map(|t| t.build(registry))
            .collect::<Result<_>>()?,
    ))
}

fn positive_count(key: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(DataError::config(key, "must be at least 1"));
    }
    Ok(())
}
