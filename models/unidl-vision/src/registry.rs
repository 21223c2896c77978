//! Registration with the run layer: every model under its run-config
//! name, with the task it serves.
//!
//! | `[model] name` | config | model | task |
//! |---|---|---|---|
//! | `simple_cnn` | [`SimpleCnnConfig`] | [`SimpleCnn`] | image classification |
//! | `resnet` | [`ResNetConfig`] | [`Classifier`] | image classification |
//! | `vgg` | [`VggConfig`] | [`Classifier`] | image classification |
//! | `efficientnet` | [`EfficientNetConfig`] | [`Classifier`] | image classification |
//! | `retinanet` | [`RetinaNetConfig`] | [`RetinaNet`] | object detection |
//! | `faster_rcnn` | [`FasterRcnnConfig`] | [`FasterRcnn`] | object detection |
//! | `ssd` | [`SsdConfig`] | [`Ssd`] | object detection |
//! | `yolov8` | [`YoloV8Config`] | [`YoloV8`] | object detection |
//! | `deeplabv3` | [`DeepLabV3Config`] | [`DeepLabV3`] | semantic segmentation |
//! | `unet` | [`UNetConfig`] | [`UNet`] | semantic segmentation |
//! | `mask_rcnn` | [`MaskRcnnConfig`] | [`MaskRcnn`] | instance segmentation |
//! | `hrnet` | [`HrNetConfig`] | [`HrNet`] | keypoint heatmaps |
//! | `pfld` | [`PfldConfig`] | [`Pfld`] | keypoint regression |

use std::path::Path;

use burn::tensor::Tensor;
use unidl_backend::Device;
use unidl_run::{BoxError, DataFacts, ModelRegistry, ZooModel};
use unidl_train::{
    HeatmapModel, ImageClassification, ImageClassifier, InstanceSegmentationTraining,
    KeypointHeatmaps, KeypointRegression, LandmarkModel, ObjectDetection, PixelClassification,
};

use crate::classification::{
    Classifier, ClassifierConfig, EfficientNetConfig, ResNetConfig, SimpleCnn, SimpleCnnConfig,
    VggConfig,
};
use crate::detection::{
    FasterRcnn, FasterRcnnConfig, RetinaNet, RetinaNetConfig, Ssd, SsdConfig, YoloV8, YoloV8Config,
};
use crate::keypoints::{HrNet, HrNetConfig, Pfld, PfldConfig};
use crate::segmentation::{DeepLabV3, DeepLabV3Config, MaskRcnn, MaskRcnnConfig, UNet, UNetConfig};

/// Registers `simple_cnn`, `resnet`, `vgg`, `efficientnet`, `retinanet`,
/// `faster_rcnn`, `ssd`, `yolov8`, `deeplabv3`, `unet`, `mask_rcnn`, `hrnet`
/// and `pfld`.
pub fn register(registry: &mut ModelRegistry) -> unidl_run::Result<()> {
    registry.register::<SimpleCnnConfig>(
        "simple_cnn",
        "two conv blocks and two dense layers (the quick start's digit classifier)",
    )?;
    registry.register::<ResNetConfig>(
        "resnet",
        "ResNet-18/34/50/101/152, torchvision-exact (He et al. 2015)",
    )?;
    registry.register::<VggConfig>(
        "vgg",
        "VGG-11/13/16/19 with or without batch norm, torchvision-exact (Simonyan & Zisserman 2014)",
    )?;
    registry.register::<EfficientNetConfig>(
        "efficientnet",
        "EfficientNet-B0…B7, torchvision-exact (Tan & Le 2019)",
    )?;
    registry.register::<RetinaNetConfig>(
        "retinanet",
        "RetinaNet ResNet-50-FPN, torchvision-exact (Lin et al. 2017)",
    )?;
    registry.register::<FasterRcnnConfig>(
        "faster_rcnn",
        "Faster R-CNN ResNet-50-FPN, torchvision-exact (Ren et al. 2015)",
    )?;
    registry.register::<SsdConfig>("ssd", "SSD300-VGG16, torchvision-exact (Liu et al. 2016)")?;
    registry.register::<YoloV8Config>(
        "yolov8",
        "YOLOv8 n/s/m/l/x, numbers checked against ultralytics 8.4.190 (Jocher et al. 2023)",
    )?;
    registry.register::<DeepLabV3Config>(
        "deeplabv3",
        "DeepLabv3-ResNet-50 with the auxiliary FCN head, torchvision-exact (Chen et al. 2017)",
    )?;
    registry.register::<UNetConfig>(
        "unet",
        "U-Net, the paper's network, valid or same padding (Ronneberger et al. 2015)",
    )?;
    registry.register::<MaskRcnnConfig>(
        "mask_rcnn",
        "Mask R-CNN ResNet-50-FPN, torchvision-exact (He et al. 2017)",
    )?;
    registry.register::<HrNetConfig>(
        "hrnet",
        "HRNet-W32 top-down pose heatmaps, body checked against timm 1.0.31 (Sun et al. 2019)",
    )?;
    registry.register::<PfldConfig>(
        "pfld",
        "PFLD 1X/0.25X landmark regression on 112x112, the paper's tables (Guo et al. 2019)",
    )?;
    Ok(())
}

impl ImageClassifier for SimpleCnn {
    fn classify(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

impl ImageClassifier for Classifier {
    fn classify(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images)
    }
}

impl ZooModel for SimpleCnnConfig {
    type Model = SimpleCnn;
    type Task = ImageClassification;

    fn init(&self, _facts: &DataFacts, device: &Device) -> Result<SimpleCnn, BoxError> {
        Ok(SimpleCnnConfig::init(self, device)?)
    }
}

/// Loads a torchvision checkpoint (`.pth` or safetensors); lenient loading
/// still refuses a file of which nothing fits.
fn torchvision_weights<M: crate::torchvision::TorchvisionNames>(
    model: M,
    path: &Path,
    strict: bool,
    device: &Device,
) -> Result<(M, String), BoxError> {
    let (model, report) = if strict {
        crate::torchvision::load_torchvision(model, path, device)?
    } else {
        crate::torchvision::load_torchvision_lenient(model, path, device)?
    };
    if report.loaded.is_empty() {
        return Err(format!("no tensor of it fits the model ({report})").into());
    }
    Ok((model, report.to_string()))
}

macro_rules! torchvision_classifier {
    ($config:ty, $variant:ident) => {
        impl ZooModel for $config {
            type Model = Classifier;
            type Task = ImageClassification;

            fn init(&self, _facts: &DataFacts, device: &Device) -> Result<Classifier, BoxError> {
                Ok(ClassifierConfig::$variant(self.clone()).init(device)?)
            }

            fn load_weights(
                &self,
                model: Classifier,
                path: &Path,
                strict: bool,
                device: &Device,
            ) -> Result<(Classifier, String), BoxError> {
                torchvision_weights(model, path, strict, device)
            }
        }
    };
}

torchvision_classifier!(ResNetConfig, Resnet);
torchvision_classifier!(VggConfig, Vgg);
torchvision_classifier!(EfficientNetConfig, Efficientnet);

/// Refuses a detector whose `num_classes` key leaves room for only
/// `foreground` classes when the data has more.
fn check_class_room(
    facts: &DataFacts,
    num_classes: usize,
    foreground: usize,
) -> Result<(), BoxError> {
    let n = facts.class_names.len();
    if n > foreground {
        return Err(crate::VisionError::Config {
            key: "num_classes".into(),
            reason: format!(
                "{num_classes} leaves room for {foreground} object classes; the data has {n} ({})",
                facts.class_names.join(", ")
            ),
        }
        .into());
    }
    Ok(())
}

impl ZooModel for RetinaNetConfig {
    type Model = RetinaNet;
    type Task = ObjectDetection;

    /// Refuses a `num_classes` smaller than the data set's class count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<RetinaNet, BoxError> {
        check_class_room(facts, self.num_classes, self.num_classes)?;
        Ok(RetinaNetConfig::init(self, device)?)
    }

    /// A torchvision RetinaNet state dict (`.pth` or safetensors), e.g.
    /// `retinanet_resnet50_fpn_coco-eeacb38b.pth` (use it with
    /// `backbone.frozen_bn_eps = 0`, as torchvision does).
    fn load_weights(
        &self,
        model: RetinaNet,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(RetinaNet, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl ZooModel for FasterRcnnConfig {
    type Model = FasterRcnn;
    type Task = ObjectDetection;

    /// Refuses a `num_classes` that, less the background class, is smaller
    /// than the data set's class count, and a `[mask_head]` (a Mask R-CNN
    /// is `name = "mask_rcnn"`, trained for instance segmentation).
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<FasterRcnn, BoxError> {
        check_class_room(facts, self.num_classes, self.num_classes.saturating_sub(1))?;
        if self.mask_head.is_some() {
            return Err(crate::VisionError::Config {
                key: "mask_head".into(),
                reason: "a detector has no mask branch: use name = \"mask_rcnn\"".into(),
            }
            .into());
        }
        Ok(FasterRcnnConfig::init(self, device)?)
    }

    /// A torchvision Faster R-CNN state dict (`.pth` or safetensors), e.g.
    /// `fasterrcnn_resnet50_fpn_coco-258fb6c6.pth` (use it with
    /// `backbone.frozen_bn_eps = 0`, as torchvision does).
    fn load_weights(
        &self,
        model: FasterRcnn,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(FasterRcnn, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl ZooModel for MaskRcnnConfig {
    type Model = MaskRcnn;
    type Task = InstanceSegmentationTraining;

    /// Refuses a `num_classes` that, less the background class, is smaller
    /// than the data set's class count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<MaskRcnn, BoxError> {
        let n = self.0.num_classes;
        check_class_room(facts, n, n.saturating_sub(1))?;
        Ok(MaskRcnnConfig::init(self, device)?)
    }

    /// The post-processing reads masks on this model's grid (28 × 28).
    fn adapt_task(&self, mut task: InstanceSegmentationTraining) -> InstanceSegmentationTraining {
        let m = crate::detection::faster_rcnn::MASK_SIZE;
        task.post.mask_size = [m, m];
        task
    }

    /// A torchvision Mask R-CNN state dict (`.pth` or safetensors), e.g.
    /// `maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth` (its `mask_fcn{i}` keys
    /// are read; use it with `backbone.frozen_bn_eps = 0`, as torchvision
    /// does).
    fn load_weights(
        &self,
        model: MaskRcnn,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(MaskRcnn, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl ZooModel for SsdConfig {
    type Model = Ssd;
    type Task = ObjectDetection;

    /// Refuses a `num_classes` that, less the background class, is smaller
    /// than the data set's class count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Ssd, BoxError> {
        check_class_room(facts, self.num_classes, self.num_classes.saturating_sub(1))?;
        Ok(SsdConfig::init(self, device)?)
    }

    /// A torchvision SSD300 state dict (`.pth` or safetensors), e.g.
    /// `ssd300_vgg16_coco-b556d3b4.pth`.
    fn load_weights(
        &self,
        model: Ssd,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(Ssd, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl ZooModel for YoloV8Config {
    type Model = YoloV8;
    type Task = ObjectDetection;

    /// Refuses a `num_classes` smaller than the data set's class count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<YoloV8, BoxError> {
        check_class_room(facts, self.num_classes, self.num_classes)?;
        Ok(YoloV8Config::init(self, device)?)
    }

    /// An ultralytics YOLOv8 state dict saved as safetensors or with
    /// `torch.save(model.state_dict())` (ultralytics' own `.pt` files pickle
    /// the whole model object, which unidl does not unpickle: save its
    /// `state_dict()` first).
    fn load_weights(
        &self,
        model: YoloV8,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(YoloV8, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl ZooModel for DeepLabV3Config {
    type Model = DeepLabV3;
    type Task = PixelClassification;

    /// Refuses a `num_classes` that, less the background label 0, is
    /// smaller than the data set's class count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<DeepLabV3, BoxError> {
        check_class_room(facts, self.num_classes, self.num_classes.saturating_sub(1))?;
        Ok(DeepLabV3Config::init(self, device)?)
    }

    /// A torchvision DeepLabv3 state dict (`.pth` or safetensors), e.g.
    /// `deeplabv3_resnet50_coco-cd0a2569.pth` (21 VOC classes, label 0 the
    /// background; its inputs are ImageNet-normalised).
    fn load_weights(
        &self,
        model: DeepLabV3,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(DeepLabV3, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl ZooModel for UNetConfig {
    type Model = UNet;
    type Task = PixelClassification;

    /// Refuses a `num_classes` that, less the background label 0, is
    /// smaller than the data set's class count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<UNet, BoxError> {
        check_class_room(facts, self.num_classes, self.num_classes.saturating_sub(1))?;
        Ok(UNetConfig::init(self, device)?)
    }
}

impl HeatmapModel for HrNet {
    fn heatmaps(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<4>> {
        self.forward(images)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))
    }
}

impl ZooModel for HrNetConfig {
    type Model = HrNet;
    type Task = KeypointHeatmaps;

    /// Refuses `joints` other than the data's keypoint count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<HrNet, BoxError> {
        if let Some(n) = facts.joints
            && n != self.joints
        {
            return Err(crate::VisionError::Config {
                key: "joints".into(),
                reason: format!("{}: the data's instances have {n} keypoints", self.joints),
            }
            .into());
        }
        Ok(HrNetConfig::init(self, device)?)
    }

    /// A state dict under timm's HRNet names plus `final_layer.*`
    /// (`.pth` or safetensors); lenient loading takes a timm
    /// `hrnet_w32` body without the head.
    fn load_weights(
        &self,
        model: HrNet,
        path: &Path,
        strict: bool,
        device: &Device,
    ) -> Result<(HrNet, String), BoxError> {
        torchvision_weights(model, path, strict, device)
    }
}

impl LandmarkModel for Pfld {
    fn landmarks(&self, images: Tensor<4>) -> unidl_train::Result<Tensor<2>> {
        self.forward(images)
            .map_err(|e| unidl_train::TrainError::Model(e.to_string()))
    }
}

impl ZooModel for PfldConfig {
    type Model = Pfld;
    type Task = KeypointRegression;

    /// Refuses `landmarks` other than the data's keypoint count.
    fn init(&self, facts: &DataFacts, device: &Device) -> Result<Pfld, BoxError> {
        if let Some(n) = facts.joints
            && n != self.landmarks
        {
            return Err(crate::VisionError::Config {
                key: "landmarks".into(),
                reason: format!(
                    "{}: the data's instances have {n} keypoints",
                    self.landmarks
                ),
            }
            .into());
        }
        Ok(PfldConfig::init(self, device)?)
    }

    /// PFLD's input is 112 × 112: coordinates are fractions of that.
    fn adapt_task(&self, mut task: KeypointRegression) -> KeypointRegression {
        task.input_size = [112, 112];
        task
    }
}
