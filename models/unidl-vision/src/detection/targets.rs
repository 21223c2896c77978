//! Checks of training targets shared by the detectors.

use unidl_train::ObjectTargets;

use crate::error::{Result, VisionError};

/// Refuses targets a detector cannot train on: a target count other than
/// the batch size `batch`, boxes and classes of different counts, a class
/// outside `0..classes`, a box that is not finite or has no area. The
/// [`VisionError::Input`] names `model`, the output `shape` and the image.
pub(crate) fn check_targets(
    model: &str,
    shape: &[usize],
    targets: &[ObjectTargets],
    batch: usize,
    classes: usize,
) -> Result<()> {
    let err = |reason: String| VisionError::Input {
        model: model.into(),
        shape: shape.to_vec(),
        reason,
    };
    if targets.len() != batch {
        return Err(err(format!(
            "{} targets for a batch of {batch} images",
            targets.len()
        )));
    }
    for (i, t) in targets.iter().enumerate() {
        if t.boxes.len() != t.classes.len() {
            return Err(err(format!(
                "targets of image {i}: {} boxes and {} classes",
                t.boxes.len(),
                t.classes.len()
            )));
        }
        if let Some(c) = t.classes.iter().find(|&&c| c >= classes) {
            return Err(err(format!(
                "targets of image {i}: class {c} is not in 0..{classes}"
            )));
        }
        if let Some(bx) = t
            .boxes
            .iter()
            .find(|bx| !(bx.iter().all(|v| v.is_finite()) && bx[2] > bx[0] && bx[3] > bx[1]))
        {
            return Err(err(format!(
                "targets of image {i}: box {bx:?} is not finite with x1 > x0, y1 > y0"
            )));
        }
    }
    Ok(())
}
