//! `video_resnet` and `s3d` in `unidl` runs: video classification on
//! `video_folder` data, torchvision's state dicts as `[pretrained]` weights.

use std::path::Path;

use unidl_backend::Device;
use unidl_run::{BoxError, DataFacts, ZooModel};
use unidl_train::VideoClassification;

use crate::weights::{load_torchvision_s3d, load_torchvision_video_resnet};
use crate::{S3d, S3dConfig, VideoResNet, VideoResNetConfig};

/// A report for `ZooModel::load_weights`; a file of which nothing fits is refused.
fn loaded<M>(
    loaded: crate::Result<(M, unidl_interop::Report)>,
    path: &Path,
) -> Result<(M, String), BoxError> {
    let (model, report) = loaded?;
    if report.load.loaded.is_empty() {
        return Err(format!(
            "{}: no tensor of it fits the model ({report})",
            path.display()
        )
        .into());
    }
    Ok((model, report.to_string()))
}

/// The data's class count must be the model's.
fn check_classes(facts: &DataFacts, num_classes: usize) -> Result<(), BoxError> {
    let n = facts.class_names.len();
    if n > 0 && n != num_classes {
        return Err(crate::VideoError::Config {
            key: "num_classes".into(),
            reason: format!("{num_classes}, but the data has {n} classes"),
        }
        .into());
    }
    Ok(())
}

impl ZooModel for VideoResNetConfig {
    type Model = VideoResNet;
    type Task = VideoClassification;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<VideoResNet, BoxError> {
        check_classes(facts, self.num_classes)?;
        Ok(VideoResNetConfig::init(self, device)?)
    }

    fn load_weights(
        &self,
        model: VideoResNet,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(VideoResNet, String), BoxError> {
        loaded(load_torchvision_video_resnet(model, path, strict), path)
    }
}

impl ZooModel for S3dConfig {
    type Model = S3d;
    type Task = VideoClassification;

    fn init(&self, facts: &DataFacts, device: &Device) -> Result<S3d, BoxError> {
        check_classes(facts, self.num_classes)?;
        Ok(S3dConfig::init(self, device)?)
    }

    fn load_weights(
        &self,
        model: S3d,
        path: &Path,
        strict: bool,
        _device: &Device,
    ) -> Result<(S3d, String), BoxError> {
        loaded(load_torchvision_s3d(model, path, strict), path)
    }
}
