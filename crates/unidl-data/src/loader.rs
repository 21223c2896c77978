//! A multi-threaded loader with prefetch (I-a, I-b). Batches come out in the
//! sampler's order with identical content for any number of workers: each
//! sample's random draws are seeded by (seed, epoch, index), never by thread.

use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use unidl_backend::Device;
use unidl_tensor::Tensor;

use crate::dataset::PreparedDataset;
use crate::error::{DataError, Result};
use crate::sample::{Input, Sample};
use crate::sampler::Sampler;

/// Loader settings.
#[derive(Debug, Clone, Copy)]
pub struct LoaderConfig {
    /// Threads decoding and transforming samples (≥ 1).
    pub workers: usize,
    /// Batches prepared ahead of the consumer (≥ 1).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            workers: 2,
            prefetch: 2,
        }
    }
}

/// Samples of one batch plus the sampler state after it (for checkpoints).
#[derive(Debug, Clone)]
pub struct LoadedBatch {
    /// The samples, in sampler order.
    pub samples: Vec<Sample>,
    /// Epoch and position after this batch.
    pub state: crate::sampler::SamplerState,
}

/// A batch already collated by the loader (see [`DataLoader::with_collate`]).
#[derive(Debug, Clone)]
pub struct Collated<B> {
    /// What the collate function returned.
    pub batch: B,
    /// Samples in the batch.
    pub len: usize,
    /// Epoch and position after this batch.
    pub state: crate::sampler::SamplerState,
}

/// An iterator of batches prepared by worker threads: [`LoadedBatch`]es of
/// samples ([`DataLoader::new`]) or batches collated off the consumer's
/// thread ([`DataLoader::with_collate`]). Items are `Result<T, E>`.
pub struct DataLoader<T = LoadedBatch, E = DataError> {
    rx: Receiver<std::result::Result<T, E>>,
    handle: Option<JoinHandle<()>>,
}

impl DataLoader {
    /// Starts loading `dataset` in the order of `sampler`.
    pub fn new(dataset: PreparedDataset, sampler: Sampler, config: LoaderConfig) -> Result<Self> {
        spawn(dataset, sampler, config, |samples, state| {
            Ok(LoadedBatch { samples, state })
        })
    }
}

impl<B: Send + 'static, E: From<DataError> + Send + 'static> DataLoader<Collated<B>, E> {
    /// Starts loading `dataset` in the order of `sampler` and runs `collate`
    /// on each batch in the loader's thread, so that the consumer (the
    /// training loop) receives device-ready batches (Burn's `Batcher`
    /// pattern). `collate` also receives the sampler state after the batch
    /// (a seed for batch-level augmentation such as MixUp that is the same for
    /// any worker count). A collate error ends the iteration after being returned.
    pub fn with_collate(
        dataset: PreparedDataset,
        sampler: Sampler,
        config: LoaderConfig,
        collate: impl Fn(Vec<Sample>, &crate::sampler::SamplerState) -> std::result::Result<B, E>
        + Send
        + 'static,
    ) -> Result<Self> {
        spawn(dataset, sampler, config, move |samples, state| {
            let len = samples.len();
            Ok(Collated {
                batch: collate(samples, &state)?,
                len,
                state,
            })
        })
    }
}

fn spawn<T: Send + 'static, E: From<DataError> + Send + 'static>(
    dataset: PreparedDataset,
    mut sampler: Sampler,
    config: LoaderConfig,
    finish: impl Fn(Vec<Sample>, crate::sampler::SamplerState) -> std::result::Result<T, E>
    + Send
    + 'static,
) -> Result<DataLoader<T, E>> {
    if config.workers == 0 || config.prefetch == 0 {
        return Err(DataError::config(
            "loader",
            "workers and prefetch must be at least 1",
        ));
    }
    let (tx, rx) = sync_channel(config.prefetch);
    let handle = std::thread::spawn(move || {
        while let Some(batch) = sampler.next_batch() {
            let state = sampler.state();
            let chunk = batch.len().div_ceil(config.workers);
            let loaded: Result<Vec<Sample>> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .chunks(chunk.max(1))
                    .map(|part| {
                        let ds = &dataset;
                        scope.spawn(move || {
                            part.iter()
                                .map(|&(e, i)| ds.get_sample_at(i, e))
                                .collect::<Result<Vec<_>>>()
                        })
                    })
                    .collect();
                let mut out = Vec::with_capacity(batch.len());
                for h in handles {
                    out.extend(h.join().map_err(|_| DataError::Invalid {
                        what: "loader".into(),
                        reason: "a worker panicked".into(),
                    })??);
                }
                Ok(out)
            });
            let item = match loaded {
                Ok(samples) => finish(samples, state),
                Err(e) => Err(E::from(e)),
            };
            let stop = item.is_err();
            if tx.send(item).is_err() || stop {
                break;
            }
        }
    });
    Ok(DataLoader {
        rx,
        handle: Some(handle),
    })
}

impl<T, E> Iterator for DataLoader<T, E> {
    type Item = std::result::Result<T, E>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                None
            }
        }
    }
}

/// A batch of images and labels as tensors (Pre-c).
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[batch, channels, height, width]` float32.
    pub images: Tensor,
    /// `[batch]` int64 class labels; `None` when no sample has one (inference).
    pub labels: Option<Tensor>,
}

/// Stacks the `image` inputs (all the same size) into `[B, C, H, W]` and the
/// labels into `[B]`; a size mismatch, or a label on some samples but not
/// others, names the sample.
pub fn collate_images(samples: &[Sample], device: &Device) -> Result<ImageBatch> {
    let images = stack_images(samples, device)?;
    let labels = if samples.iter().all(|s| s.targets.label.is_none()) {
        None
    } else {
        let v = samples
            .iter()
            .map(|s| {
                s.targets
                    .label
                    .map(|l| l as i64)
                    .ok_or_else(|| DataError::Invalid {
                        what: s.source.clone(),
                        reason: "no label (other samples of the batch have one)".into(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Some(Tensor::from_i64(v, &[samples.len()], device)?)
    };
    Ok(ImageBatch { images, labels })
}

/// The `image` inputs (all the same size) as one `[B, C, H, W]` float32
/// tensor (Pre-c); a missing image or a size mismatch names the sample.
pub fn stack_images(samples: &[Sample], device: &Device) -> Result<Tensor> {
    let first = samples
        .first()
        .ok_or_else(|| DataError::config("batch", "empty batch"))?;
    let img0 = first
        .image_input("image")
        .ok_or_else(|| DataError::Invalid {
            what: first.source.clone(),
            reason: "no `image` input".into(),
        })?;
    let (c, h, w) = (img0.channels, img0.height, img0.width);
    let mut data = Vec::with_capacity(samples.len() * c * h * w);
    for s in samples {
        let img = match s.inputs.get("image") {
            Some(Input::Image(i)) => i,
            _ => {
                return Err(DataError::Invalid {
                    what: s.source.clone(),
                    reason: "no `image` input".into(),
                });
            }
        };
        if (img.channels, img.height, img.width) != (c, h, w) {
            return Err(DataError::Invalid {
                what: s.source.clone(),
                reason: format!(
                    "image is {}x{}x{}, batch is {c}x{h}x{w}: add a resize or crop",
                    img.channels, img.height, img.width
                ),
            });
        }
        // HWC -> CHW
        for ch in 0..c {
            data.extend(img.data.iter().skip(ch).step_by(c));
        }
    }
    Ok(Tensor::from_f32(data, &[samples.len(), c, h, w], device)?)
}

/// The `input` clips (frames `T × H × W × C`, every clip alike) as one
/// `[B, C, T, H, W]` float32 tensor; a missing or empty clip, frames of
/// different sizes or a clip unlike the batch's first name the sample.
pub fn stack_clips(samples: &[Sample], input: &str, device: &Device) -> Result<Tensor> {
    let invalid = |s: &Sample, reason: String| DataError::Invalid {
        what: s.source.clone(),
        reason,
    };
    let mut dims: Option<[usize; 4]> = None;
    let mut data = Vec::new();
    for s in samples {
        let frames = match s.inputs.get(input) {
            Some(Input::Video(frames, _)) if !frames.is_empty() => frames,
            _ => return Err(invalid(s, format!("no `{input}` clip with frames"))),
        };
        let f0 = &frames[0];
        let d = [f0.channels, frames.len(), f0.height, f0.width];
        if frames
            .iter()
            .any(|f| (f.channels, f.height, f.width) != (d[0], d[2], d[3]))
        {
            return Err(invalid(s, "frames of different sizes in one clip".into()));
        }
        match dims {
            None => dims = Some(d),
            Some(b) if b != d => {
                return Err(invalid(
                    s,
                    format!(
                        "clip is C×T×H×W {d:?}, the batch's is {b:?} (set `frames` and `frame_size`)"
                    ),
                ));
            }
            _ => {}
        }
        let c = d[0];
        // THWC -> CTHW
        for ch in 0..c {
            for f in frames {
                data.extend(f.data.iter().skip(ch).step_by(c));
            }
        }
    }
    let [c, t, h, w] = dims.ok_or_else(|| DataError::config("batch", "empty batch"))?;
    Ok(Tensor::from_f32(
        data,
        &[samples.len(), c, t, h, w],
        device,
    )?)
}

/// Pads token sequences to the longest: ids `[B, T]` (int64, `pad_id` filled)
/// and a length mask `[B, T]` (bool, true on real tokens).
pub fn collate_tokens(
    sequences: &[Vec<u32>],
    pad_id: u32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    pad_tokens(sequences, pad_id, 1, device)
}

/// [`collate_tokens`] padding to at least `min_len` (a convolution window,
/// a shifted target), for sequences of any slice type.
pub fn pad_tokens<S: AsRef<[u32]>>(
    sequences: &[S],
    pad_id: u32,
    min_len: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let t = sequences
        .iter()
        .map(|s| s.as_ref().len())
        .max()
        .unwrap_or(0)
        .max(min_len)
        .max(1);
    let mut ids = Vec::with_capacity(sequences.len() * t);
    let mut mask = Vec::with_capacity(sequences.len() * t);
    for s in sequences {
        let s = s.as_ref();
        for j in 0..t {
            ids.push(i64::from(*s.get(j).unwrap_or(&pad_id)));
            mask.push(i64::from(j < s.len()));
        }
    }
    let shape = [sequences.len(), t];
    Ok((
        Tensor::from_i64(ids, &shape, device)?,
        Tensor::from_i64(mask, &shape, device)?.to_dtype(unidl_backend::DType::Bool)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Image;

    #[test]
    fn collate_images_lays_out_batch_channel_row_column() {
        let samples: Vec<Sample> = (0..2)
            .map(|s| {
                let mut img = Image::new(3, 2, 3);
                for (i, v) in img.data.iter_mut().enumerate() {
                    *v = (s * 100 + i) as f32;
                }
                Sample::image(img, Some(s), format!("s{s}"))
            })
            .collect();
        let device = Device::default();
        let b = collate_images(&samples, &device).unwrap();
        assert_eq!(b.images.shape(), [2, 3, 2, 3]);
        let got = b.images.to_vec_f32().unwrap();
        let mut want = Vec::new();
        for s in &samples {
            let img = s.image_input("image").unwrap();
            for c in 0..3 {
                for y in 0..2 {
                    for x in 0..3 {
                        want.push(img.get(x, y, c));
                    }
                }
            }
        }
        assert_eq!(got, want);
    }
}
