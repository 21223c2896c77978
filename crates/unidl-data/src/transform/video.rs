//! Temporal crops of video clips: a window of consecutive frames, drawn at
//! random (training) or centred (evaluation). Spatial transforms treat every
//! frame of a clip alike already (one draw per clip).

use rand::Rng as _;

use super::{Rng, Transform};
use crate::error::{DataError, Result};
use crate::sample::{Input, Sample};

/// Keeps `frames` consecutive frames of every clip of the sample: from a
/// random start (`random`) or the centred window. A clip with fewer frames
/// is an error naming the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalCrop {
    /// Frames kept.
    pub frames: usize,
    /// Random start (else centred).
    pub random: bool,
}

impl Transform for TemporalCrop {
    fn name(&self) -> &str {
        if self.random {
            "random_temporal_crop"
        } else {
            "center_temporal_crop"
        }
    }

    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let mut seen = false;
        let source = s.source.clone();
        for input in s.inputs.values_mut() {
            let Input::Video(frames, _) = input else {
                continue;
            };
            seen = true;
            let len = frames.len();
            if len < self.frames {
                return Err(DataError::transform(
                    self.name(),
                    format!(
                        "sample `{source}` has {len} frames, fewer than the {} kept",
                        self.frames
                    ),
                ));
            }
            let start = if self.random {
                rng.random_range(0..=len - self.frames)
            } else {
                (len - self.frames) / 2
            };
            frames.truncate(start + self.frames);
            frames.drain(..start);
        }
        if !seen {
            return Err(DataError::transform(
                self.name(),
                format!("sample `{source}` has no video input"),
            ));
        }
        Ok(s)
    }
}
