//! Errors of RoI Align and the multi-scale pooler.

/// Largest sampling grid along one axis of a bin (adaptive sampling of an
/// enormous box would otherwise loop for hours, as torchvision's kernel does).
pub const MAX_SAMPLING_GRID: i64 = 1 << 16;

/// What [`roi_align()`](super::roi_align()), [`RoiAlign`](super::RoiAlign)
/// and [`MultiScaleRoiAlign`](super::MultiScaleRoiAlign) refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoiAlignError {
    /// An output side is zero.
    #[error("roi_align: output size {size:?}: both sides must be at least 1")]
    OutputSize {
        /// The output size given, `[h, w]`.
        size: [usize; 2],
    },
    /// The spatial scale is not a finite positive number.
    #[error("roi_align: spatial scale {value}: must be finite and positive")]
    SpatialScale {
        /// The scale given.
        value: f32,
    },
    /// The feature map has no channel, row or column to sample.
    #[error(
        "roi_align: features of shape {shape:?}: channels, height and width must be at least 1"
    )]
    EmptyFeatures {
        /// The features' shape `[N, C, H, W]`.
        shape: [usize; 4],
    },
    /// The RoI tensor is not `[K, 5]`.
    #[error("roi_align: RoIs of shape {shape:?}: expected [K, 5] (batch index, x1, y1, x2, y2)")]
    RoisShape {
        /// The shape given.
        shape: Vec<usize>,
    },
    /// One image's box tensor is not `[L, 4]`.
    #[error(
        "roi_align: boxes of image {image} of shape {shape:?}: expected [L, 4] (x1, y1, x2, y2)"
    )]
    BoxesShape {
        /// The image (position in the list).
        image: usize,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// A RoI's batch index is not a whole number naming an image of the batch.
    #[error("roi_align: RoI {roi}: batch index {index} is not an image of the batch of {batch}")]
    BatchIndex {
        /// The RoI (row of the `[K, 5]` tensor, or position in the
        /// concatenated per-image boxes).
        roi: usize,
        /// The batch index given.
        index: f32,
        /// The batch size `N`.
        batch: usize,
    },
    /// A RoI has a NaN or infinite coordinate.
    #[error("roi_align: RoI {roi}: coordinates {coords:?} are not all finite")]
    NonFiniteBox {
        /// The RoI.
        roi: usize,
        /// Its `x1, y1, x2, y2`.
        coords: [f32; 4],
    },
    /// A RoI asks for more than [`MAX_SAMPLING_GRID`] sampling points per
    /// bin along one axis.
    #[error(
        "roi_align: RoI {roi}: a sampling grid of {grid} points per bin along one axis (at most {MAX_SAMPLING_GRID})"
    )]
    SamplingGrid {
        /// The RoI.
        roi: usize,
        /// The grid size along the larger axis.
        grid: i64,
    },
    /// None of the feature maps is named in `featmap_names`.
    #[error("MultiScaleRoIAlign: no feature map named {names:?} among {given:?}")]
    NoFeatureMaps {
        /// The names the pooler takes.
        names: Vec<String>,
        /// The names given.
        given: Vec<String>,
    },
    /// The named feature maps do not fit together.
    #[error("MultiScaleRoIAlign: feature map `{name}` of shape {shape:?}: {reason}")]
    FeatureMap {
        /// Its name.
        name: String,
        /// Its shape `[N, C, H, W]`.
        shape: [usize; 4],
        /// Why it is refused.
        reason: String,
    },
    /// The image sizes cannot give the feature maps' scales.
    #[error("MultiScaleRoIAlign: image shapes {shapes:?}: {reason}")]
    ImageShapes {
        /// The `(h, w)` given.
        shapes: Vec<[usize; 2]>,
        /// Why they are refused.
        reason: String,
    },
    /// The feature maps' scales are not one FPN level apart each.
    #[error("MultiScaleRoIAlign: feature maps at scales {scales:?}: {reason}")]
    Scales {
        /// The scales inferred, one per named feature map.
        scales: Vec<f32>,
        /// Why they are refused.
        reason: String,
    },
}

/// Result with [`RoiAlignError`].
pub(crate) type Result<T> = std::result::Result<T, RoiAlignError>;
