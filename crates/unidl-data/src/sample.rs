//! Samples: inputs of any modality plus their targets (§6.2.2, Pre-a/Pre-b).

use std::collections::BTreeMap;

/// An image in host memory: `height × width × channels` floats in [0, 1]
/// (row-major, channels last), the layout every image transform works on.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (gray), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// `height * width * channels` values.
    pub data: Vec<f32>,
}

impl Image {
    /// A black image.
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Image {
            width,
            height,
            channels,
            data: vec![0.0; width * height * channels],
        }
    }

    /// Value at (x, y, c).
    pub fn get(&self, x: usize, y: usize, c: usize) -> f32 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// Sets the value at (x, y, c).
    pub fn set(&mut self, x: usize, y: usize, c: usize, v: f32) {
        self.data[(y * self.width + x) * self.channels + c] = v;
    }
}

/// Audio in host memory: interleaved samples in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Interleaved samples.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
}

/// A plain host tensor (features, spectrograms, embeddings).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// One input of a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An image.
    Image(Image),
    /// A clip: frames and frames per second.
    Video(Vec<Image>, f64),
    /// Audio.
    Audio(Audio),
    /// Raw text.
    Text(String),
    /// Token ids (after tokenisation).
    Tokens(Vec<u32>),
    /// Any numeric features.
    Tensor(HostTensor),
}

/// An axis-aligned box in pixels, `(x0, y0)` top-left, `(x1, y1)` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Left.
    pub x0: f32,
    /// Top.
    pub y0: f32,
    /// Right.
    pub x1: f32,
    /// Bottom.
    pub y1: f32,
    /// Class index.
    pub class: usize,
}

/// A binary mask the size of its image (one byte per pixel, 0 or 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Row-major 0/1 values.
    pub data: Vec<u8>,
    /// Class index.
    pub class: usize,
}

/// A keypoint in pixels with COCO visibility (0 = not labelled, 1 = occluded, 2 = visible).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    /// x.
    pub x: f32,
    /// y.
    pub y: f32,
    /// Visibility flag.
    pub visibility: u8,
}

/// What a sample should be predicted as.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Class label.
    pub label: Option<usize>,
    /// Soft label over classes (set by MixUp/CutMix; sums to 1).
    pub soft_label: Option<Vec<f32>>,
    /// Boxes.
    pub boxes: Vec<BBox>,
    /// Instance or semantic masks.
    pub masks: Vec<Mask>,
    /// For each mask, the index in `boxes` of its instance (parallel to
    /// `masks`); empty when the masks are not tied to boxes (semantic masks).
    /// Geometric transforms that drop a box drop its mask and renumber these.
    pub mask_boxes: Vec<usize>,
    /// Keypoints (one instance; left/right pairs are swapped by horizontal
    /// flips; a keypoint a transform moves off the image gets visibility 0).
    pub keypoints: Vec<Keypoint>,
    /// Token ids of a target sequence.
    pub token_ids: Vec<u32>,
    /// A transcript or target text.
    pub text: Option<String>,
    /// Keypoints of every annotated instance in annotation order (COCO
    /// `keypoints` of each annotation that has them); `keypoints` is the first
    /// when the sample is loaded. Every instance is mapped and pair-swapped like
    /// `keypoints`.
    pub instance_keypoints: Vec<Vec<Keypoint>>,
    /// For each entry of `instance_keypoints`, the index in `boxes` of its
    /// instance; empty when they are not tied to boxes. Geometric transforms
    /// that drop a box drop its keypoints and renumber these.
    pub keypoint_boxes: Vec<usize>,
    /// Per box, parallel to `boxes`: COCO `iscrowd` (empty when the format has
    /// no such flag); geometric transforms drop an entry with its box.
    pub crowd: Vec<bool>,
    /// Per box, parallel to `boxes`: the annotation's area in pixels (COCO
    /// `area`, the segment's area; its box's `w·h` where the annotation has
    /// none), what COCO's area ranges and keypoint similarity use; empty when
    /// the format has no areas. Geometric transforms scale it by the warp's
    /// area factor and drop it with its box (a crop does not clip it).
    pub areas: Vec<f64>,
    /// Per box, parallel to `boxes`: Pascal VOC `difficult` (empty when the
    /// format has no such flag); geometric transforms drop an entry with its box.
    pub difficult: Vec<bool>,
    /// Speaker of an utterance (audio manifests).
    pub speaker: Option<String>,
}

/// One element of a data set: named inputs (several for multimodal data) and targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Inputs by name (`"image"`, `"audio"`, `"text"`, …).
    pub inputs: BTreeMap<String, Input>,
    /// Targets.
    pub targets: Targets,
    /// Where it came from (file path or manifest line), for error messages.
    pub source: String,
    /// How the geometric transforms applied so far moved the image pixels
    /// (`None` until one runs): inference maps its outputs back to the image
    /// as read through it.
    pub frame: Option<Frame>,
}

/// The affine map from the pixel coordinates of an image as read
/// (`original_width × original_height`) to those of the sample's current
/// image inputs: `x' = a·x + b·y + tx`, `y' = c·x + d·y + ty`. Geometric
/// transforms compose their warp onto it.
///
/// Example: a 64×48 image resized to 32×32 has `a = 0.5`, `d = 2/3`, the
/// rest 0; a centre crop of 40×40 out of it then adds `tx = -12`, `ty = -4`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Width of the image as read.
    pub original_width: usize,
    /// Height of the image as read.
    pub original_height: usize,
    /// `∂x'/∂x`.
    pub a: f32,
    /// `∂x'/∂y`.
    pub b: f32,
    /// `∂y'/∂x`.
    pub c: f32,
    /// `∂y'/∂y`.
    pub d: f32,
    /// Horizontal translation, in current pixels.
    pub tx: f32,
    /// Vertical translation, in current pixels.
    pub ty: f32,
}

impl Frame {
    /// The identity on a `width × height` image.
    pub fn identity(width: usize, height: usize) -> Self {
        Frame {
            original_width: width,
            original_height: height,
            a: 1.0,
            b: 0.0,
            c: 0.0,
            d: 1.0,
            tx: 0.0,
            ty: 0.0,
        }
    }

    /// This map followed by `x' = a·x + b·y + tx`, `y' = c·x + d·y + ty`.
    pub fn then(&self, [a, b, c, d, tx, ty]: [f32; 6]) -> Self {
        Frame {
            original_width: self.original_width,
            original_height: self.original_height,
            a: a * self.a + b * self.c,
            b: a * self.b + b * self.d,
            c: c * self.a + d * self.c,
            d: c * self.b + d * self.d,
            tx: a * self.tx + b * self.ty + tx,
            ty: c * self.tx + d * self.ty + ty,
        }
    }

    /// Whether the map only scales (positively) and shifts each axis: no
    /// rotation, shear or flip.
    pub fn is_axis_aligned(&self) -> bool {
        self.b == 0.0 && self.c == 0.0 && self.a > 0.0 && self.d > 0.0
    }
}

impl Sample {
    /// A sample with one image input named `image`.
    pub fn image(image: Image, label: Option<usize>, source: impl Into<String>) -> Self {
        let mut s = Sample {
            source: source.into(),
            ..Sample::default()
        };
        s.inputs.insert("image".into(), Input::Image(image));
        s.targets.label = label;
        s
    }

    /// The input named `name` as an image.
    pub fn image_input(&self, name: &str) -> Option<&Image> {
        match self.inputs.get(name) {
            Some(Input::Image(i)) => Some(i),
            _ => None,
        }
    }
}
