//! Per-channel normalisation.

use super::map_images;
use crate::error::{DataError, Result};
use crate::sample::Sample;
use crate::transform::{Rng, Transform};

/// `(x - mean[c]) / std[c]`; one value applies to every channel.
#[derive(Debug, Clone)]
pub struct Normalize {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
}

impl Transform for Normalize {
    fn name(&self) -> &str {
        "normalize"
    }
    fn apply(&self, s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let source = s.source.clone();
        map_images(s, self.name(), |img| {
            let n = self.mean.len();
            if n != 1 && n != img.channels {
                return Err(DataError::transform(
                    "normalize",
                    format!(
                        "{n} means for an image with {} channels (`{source}`)",
                        img.channels
                    ),
                ));
            }
            if n == 1 {
                let (m, sd) = (self.mean[0], self.std[0]);
                img.data.iter_mut().for_each(|v| *v = (*v - m) / sd);
            } else {
                for px in img.data.chunks_exact_mut(n) {
                    for ((v, m), sd) in px.iter_mut().zip(&self.mean).zip(&self.std) {
                        *v = (*v - m) / sd;
                    }
                }
            }
            Ok(())
        })
    }
}
