//! torchvision's `BalancedPositiveNegativeSampler`
//! (`models.detection._utils`): which anchors or proposals a two-stage
//! detector trains on.

use burn::tensor::{Distribution, Tensor};
use unidl_backend::Device;

use crate::error::{Result, VisionError};

/// Samples at most `batch_size_per_image` candidates per image, of which at
/// most `⌊batch_size_per_image · positive_fraction⌋` positive; the rest of
/// the batch is filled with negatives where there are enough.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalancedSampler {
    /// Candidates per image (RPN 256, RoI heads 512).
    pub batch_size_per_image: usize,
    /// Largest share of positives (RPN 0.5, RoI heads 0.25).
    pub positive_fraction: f64,
}

impl BalancedSampler {
    /// The sampled positives and negatives of one image, each in ascending
    /// index order. `labels[i]` ≥ 1 is a positive, 0 a negative, below 0
    /// ignored.
    ///
    /// When there are more candidates than places the choice is uniformly
    /// random, drawn from `device`'s generator (so seeding the device,
    /// `unidl_backend::seed`, makes it reproducible), as torchvision draws
    /// from `torch.randperm`; when every candidate fits, all are taken and
    /// nothing is drawn.
    pub fn sample(&self, labels: &[i64], device: &Device) -> Result<(Vec<usize>, Vec<usize>)> {
        let positive: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] >= 1).collect();
        let negative: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == 0).collect();
        // int(batch_size_per_image * positive_fraction), in double precision
        let num_pos = ((self.batch_size_per_image as f64 * self.positive_fraction) as usize)
            .min(positive.len());
        let num_neg = (self.batch_size_per_image - num_pos).min(negative.len());
        Ok((
            pick(positive, num_pos, device)?,
            pick(negative, num_neg, device)?,
        ))
    }
}

/// `k` of `candidates` chosen uniformly at random, ascending.
fn pick(candidates: Vec<usize>, k: usize, device: &Device) -> Result<Vec<usize>> {
    let n = candidates.len();
    if k >= n {
        return Ok(candidates);
    }
    // a random permutation: the order of n uniform keys
    let keys: Vec<f32> = Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), device)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| VisionError::Input {
            model: "BalancedSampler".into(),
            shape: vec![n],
            reason: format!("random keys: {e:?}"),
        })?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let mut chosen: Vec<usize> = order[..k].iter().map(|&i| candidates[i]).collect();
    chosen.sort_unstable();
    Ok(chosen)
}
