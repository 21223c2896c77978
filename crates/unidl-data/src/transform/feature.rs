//! Feature transforms (§6.2.2.2): standardisation, min-max scaling and L2
//! normalisation of [`Input::Tensor`] features and images.
//!
//! Each works on the input named by `input`, or on every tensor and image
//! input when `input` is absent. "Per feature" means along one axis, `axis`
//! (default −1, the last): for a `[frames, features]` tensor each column has
//! its own statistics; an image is treated as its `[height, width, channels]`
//! buffer, so with the default axis its features are its channels.

use serde::Deserialize;

use super::{Rng, Transform};
use crate::error::{DataError, Result};
use crate::sample::{Input, Sample};

/// A view of one numeric input as `shape` + row-major `data`.
struct Values<'a> {
    shape: Vec<usize>,
    data: &'a mut [f32],
}

/// Runs `f` on the selected tensor and image inputs (all of them when `input`
/// is `None`); an error when none matches.
fn for_inputs(
    mut s: Sample,
    input: Option<&str>,
    name: &str,
    mut f: impl FnMut(Values<'_>, &str) -> Result<()>,
) -> Result<Sample> {
    let source = s.source.clone();
    let mut seen = false;
    for (key, value) in s.inputs.iter_mut() {
        if input.is_some_and(|i| i != key) {
            continue;
        }
        let what = format!("input `{key}` of sample `{source}`");
        match value {
            Input::Tensor(t) => {
                f(
                    Values {
                        shape: t.shape.clone(),
                        data: &mut t.data,
                    },
                    &what,
                )?;
                seen = true;
            }
            Input::Image(img) => {
                f(
                    Values {
                        shape: vec![img.height, img.width, img.channels],
                        data: &mut img.data,
                    },
                    &what,
                )?;
                seen = true;
            }
            other if input.is_some() => {
                return Err(DataError::transform(
                    name,
                    format!(
                        "{what} is {}, not a tensor or image",
                        super::audio::input_kind(other)
                    ),
                ));
            }
            _ => {}
        }
    }
    if !seen {
        return Err(DataError::transform(
            name,
            match input {
                Some(i) => format!("sample `{source}` has no input `{i}`"),
                None => format!("sample `{source}` has no tensor or image input"),
            },
        ));
    }
    Ok(s)
}

/// `(size of axis, stride of axis)` for a possibly negative `axis`.
fn axis_layout(shape: &[usize], axis: isize, name: &str, what: &str) -> Result<(usize, usize)> {
    let r = shape.len() as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r).contains(&a) {
        return Err(DataError::transform(
            name,
            format!("axis {axis} is out of range for {what} of shape {shape:?}"),
        ));
    }
    let a = a as usize;
    Ok((shape[a], shape[a + 1..].iter().product()))
}

/// Per-feature parameters: one value for all, or one per feature.
fn per_feature(
    values: &[f32],
    size: usize,
    key: &str,
    name: &str,
    what: &str,
    shape: &[usize],
) -> Result<()> {
    if values.len() == 1 || values.len() == size {
        Ok(())
    } else {
        Err(DataError::transform(
            name,
            format!(
                "`{key}` has {} values but {what} of shape {shape:?} has {size} features",
                values.len()
            ),
        ))
    }
}

fn pick(values: &[f32], i: usize) -> f32 {
    if values.len() == 1 {
        values[0]
    } else {
        values[i]
    }
}

/// Mean and population standard deviation of `data`.
fn moments(data: &[f32]) -> (f64, f64) {
    let n = data.len().max(1) as f64;
    let mean = data.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    let var = data
        .iter()
        .map(|v| (f64::from(*v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Zero mean, unit variance: `(x - mean[f]) / std[f]` with the given
/// per-feature `mean` and `std` (one value applies to all features), or, when
/// both are empty, with the mean and (population) standard deviation of the
/// whole sample, `std` floored at `eps`.
///
/// ```toml
/// [[transforms]]
/// type = "standardize"
/// input = "features"
/// mean = [0.5, -1.0, 3.0]
/// std = [0.1, 2.0, 1.5]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardize {
    /// The input; every tensor and image input when absent.
    #[serde(default)]
    pub input: Option<String>,
    /// Per-feature means (empty: per-sample statistics).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-feature standard deviations (positive).
    #[serde(default)]
    pub std: Vec<f32>,
    /// The feature axis (default −1).
    #[serde(default = "last_axis")]
    pub axis: isize,
    /// Floor of a per-sample standard deviation (default 1e-8).
    #[serde(default = "default_eps")]
    pub eps: f32,
}

fn last_axis() -> isize {
    -1
}
fn default_eps() -> f32 {
    1e-8
}

impl Standardize {
    /// Checks the parameters (`standardize.mean`/`std` lengths, `std` positive).
    pub fn check(&self) -> Result<()> {
        if self.mean.len() != self.std.len() {
            return Err(DataError::config(
                "standardize.std",
                format!(
                    "mean has {} values, std {}; give both or neither",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(DataError::config(
                "standardize.std",
                "every std must be positive",
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(DataError::config("standardize.eps", "must be positive"));
        }
        Ok(())
    }
}

impl Transform for Standardize {
    fn name(&self) -> &str {
        "standardize"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        for_inputs(s, self.input.as_deref(), "standardize", |v, what| {
            if self.mean.is_empty() {
                let (mean, std) = moments(v.data);
                let std = std.max(f64::from(self.eps));
                v.data
                    .iter_mut()
                    .for_each(|x| *x = ((f64::from(*x) - mean) / std) as f32);
                return Ok(());
            }
            let (size, stride) = axis_layout(&v.shape, self.axis, "standardize", what)?;
            per_feature(&self.mean, size, "mean", "standardize", what, &v.shape)?;
            for (i, x) in v.data.iter_mut().enumerate() {
                let f = (i / stride) % size;
                *x = (*x - pick(&self.mean, f)) / pick(&self.std, f);
            }
            Ok(())
        })
    }
}

/// Scale linearly to `[lo, hi]`: `lo + (x - min[f]) / (max[f] - min[f]) · (hi - lo)`
/// with the given per-feature `min`/`max`, or, when both are empty, the
/// sample's own minimum and maximum (a constant sample maps to `lo`).
///
/// ```toml
/// [[transforms]]
/// type = "min_max"
/// lo = -1.0
/// hi = 1.0
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinMax {
    /// The input; every tensor and image input when absent.
    #[serde(default)]
    pub input: Option<String>,
    /// Lower end of the output range (default 0).
    #[serde(default)]
    pub lo: f32,
    /// Upper end of the output range (default 1).
    #[serde(default = "one")]
    pub hi: f32,
    /// Per-feature minima (empty: the sample's).
    #[serde(default)]
    pub min: Vec<f32>,
    /// Per-feature maxima (empty: the sample's).
    #[serde(default)]
    pub max: Vec<f32>,
    /// The feature axis (default −1).
    #[serde(default = "last_axis")]
    pub axis: isize,
}

fn one() -> f32 {
    1.0
}

impl MinMax {
    /// Checks the parameters (`min_max.lo < hi`, `min`/`max` lengths and order).
    pub fn check(&self) -> Result<()> {
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return Err(DataError::config(
                "min_max.hi",
                format!("lo = {} must be below hi = {}", self.lo, self.hi),
            ));
        }
        if self.min.len() != self.max.len() {
            return Err(DataError::config(
                "min_max.max",
                format!(
                    "min has {} values, max {}; give both or neither",
                    self.min.len(),
                    self.max.len()
                ),
            ));
        }
        if self
            .min
            .iter()
            .zip(&self.max)
            .any(|(a, b)| a.partial_cmp(b) != Some(std::cmp::Ordering::Less))
        {
            return Err(DataError::config(
                "min_max.max",
                "every max must be above its min",
            ));
        }
        Ok(())
    }
}

impl Transform for MinMax {
    fn name(&self) -> &str {
        "min_max"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let (lo, hi) = (f64::from(self.lo), f64::from(self.hi));
        for_inputs(s, self.input.as_deref(), "min_max", |v, what| {
            if self.min.is_empty() {
                let mn = v.data.iter().copied().fold(f32::INFINITY, f32::min);
                let mx = v.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (mn, range) = (f64::from(mn), f64::from(mx) - f64::from(mn));
                v.data.iter_mut().for_each(|x| {
                    *x = if range > 0.0 {
                        (lo + (f64::from(*x) - mn) / range * (hi - lo)) as f32
                    } else {
                        lo as f32
                    }
                });
                return Ok(());
            }
            let (size, stride) = axis_layout(&v.shape, self.axis, "min_max", what)?;
            per_feature(&self.min, size, "min", "min_max", what, &v.shape)?;
            for (i, x) in v.data.iter_mut().enumerate() {
                let f = (i / stride) % size;
                let (mn, mx) = (f64::from(pick(&self.min, f)), f64::from(pick(&self.max, f)));
                *x = (lo + (f64::from(*x) - mn) / (mx - mn) * (hi - lo)) as f32;
            }
            Ok(())
        })
    }
}

/// Divide every vector along `axis` (default −1) by its L2 norm (floored at
/// `eps`), e.g. each row of a `[n, dim]` embedding tensor.
///
/// ```toml
/// [[transforms]]
/// type = "normalize_l2"
/// input = "embedding"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeL2 {
    /// The input; every tensor and image input when absent.
    #[serde(default)]
    pub input: Option<String>,
    /// The axis along which vectors are normalised (default −1).
    #[serde(default = "last_axis")]
    pub axis: isize,
    /// Floor of the norm (default 1e-12).
    #[serde(default = "default_l2_eps")]
    pub eps: f32,
}

fn default_l2_eps() -> f32 {
    1e-12
}

impl NormalizeL2 {
    /// Checks the parameters (`normalize_l2.eps` positive).
    pub fn check(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(DataError::config("normalize_l2.eps", "must be positive"));
        }
        Ok(())
    }
}

impl Transform for NormalizeL2 {
    fn name(&self) -> &str {
        "normalize_l2"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        for_inputs(s, self.input.as_deref(), "normalize_l2", |v, what| {
            let (size, stride) = axis_layout(&v.shape, self.axis, "normalize_l2", what)?;
            let block = size * stride;
            if block == 0 {
                return Ok(());
            }
            for chunk in v.data.chunks_mut(block) {
                for inner in 0..stride {
                    let norm = (0..size)
                        .map(|f| f64::from(chunk[f * stride + inner]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                        .max(f64::from(self.eps));
                    for f in 0..size {
                        let x = &mut chunk[f * stride + inner];
                        *x = (f64::from(*x) / norm) as f32;
                    }
                }
            }
            Ok(())
        })
    }
}
