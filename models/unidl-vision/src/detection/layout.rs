//! Layouts shared by the detectors: dense head outputs (RetinaNet's heads,
//! the RPN), host copies of outputs, and detections as the task layer takes
//! them.

use burn::tensor::{Tensor, TensorData};
use unidl_backend::Device;
use unidl_train::outputs::Detection;

use crate::error::{Result, VisionError};

/// torchvision's `permute_and_flatten`: a head output with `A · per`
/// channels per cell, flattened in cell-row, cell-column, anchor order.
///
/// # Shapes
/// `[B, A·per, H, W]` → `[B, H·W·A, per]`.
pub(crate) fn permute_and_flatten(y: Tensor<4>, per: usize) -> Tensor<3> {
    let [b, ap, h, w] = y.dims();
    let a = ap / per;
    y.reshape([b, a, per, h, w]) // [B, A, per, H, W]
        .permute([0, 3, 4, 1, 2]) // [B, H, W, A, per]
        .reshape([b, h * w * a, per]) // [B, H·W·A, per]
}

/// The values of a tensor on the host, as f32; a failed read is
/// [`VisionError::Input`] naming `model` and `what`.
pub(crate) fn host_values<const D: usize>(
    t: &Tensor<D>,
    model: &str,
    what: &str,
) -> Result<Vec<f32>> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| VisionError::Input {
            model: model.into(),
            shape: t.dims().to_vec(),
            reason: format!("{what}: {e:?}"),
        })
}

/// Detections as the task layer's `Detector::detect` returns them: one row
/// per detection, the box in input pixels, then a score vector over
/// `classes` that is zero except at the detection's class. Images with
/// fewer detections are padded with all-zero rows, which a score threshold
/// ≥ 0 drops.
///
/// # Shapes
/// `B` lists → `[B, max(1, D_max), 4 + classes]`.
pub(crate) fn detections_tensor(
    dets: &[Vec<Detection>],
    classes: usize,
    device: &Device,
) -> Tensor<3> {
    let rows = dets.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let width = 4 + classes;
    let mut v = vec![0f32; dets.len() * rows * width];
    for (i, d) in dets.iter().enumerate() {
        for (j, det) in d.iter().enumerate() {
            let r = &mut v[(i * rows + j) * width..(i * rows + j + 1) * width];
            r[..4].copy_from_slice(&[det.x0, det.y0, det.x1, det.y1]);
            r[4 + det.class] = det.score;
        }
    }
    Tensor::from_data(TensorData::new(v, [dets.len(), rows, width]), device)
}

/// `Detector::detect` of a detector whose `predict` gives final detections:
/// [`detections_tensor`] over `classes` of what `predict` returns for
/// `images`, a model error as the task layer's.
pub(crate) fn detect_with(
    images: Tensor<4>,
    classes: usize,
    predict: impl FnOnce(Tensor<4>) -> Result<Vec<Vec<Detection>>>,
) -> unidl_train::Result<Tensor<3>> {
    let device = images.device();
    let dets = predict(images).map_err(|e| unidl_train::TrainError::Model(e.to_string()))?;
    Ok(detections_tensor(&dets, classes, &device))
}

/// Refuses an image batch a detector cannot take: no image, or a channel
/// count other than `channels` ([`VisionError::Input`] naming `model`).
pub(crate) fn check_images(model: &str, images: &Tensor<4>, channels: usize) -> Result<()> {
    let dims = images.dims();
    if dims[1] != channels || dims[0] == 0 {
        return Err(VisionError::Input {
            model: model.into(),
            shape: dims.to_vec(),
            reason: format!("expected [B ≥ 1, {channels}, H, W]"),
        });
    }
    Ok(())
}

/// `[H, W]` of each feature map.
pub(crate) fn grid_sizes(maps: &[Tensor<4>]) -> Vec<[usize; 2]> {
    maps.iter()
        .map(|f| {
            let [_, _, h, w] = f.dims();
            [h, w]
        })
        .collect()
}
