//! Keypoint models: HRNet (top-down heatmaps).
//!
//! | model | module | reference |
//! |---|---|---|
//! | HRNet-W32 | [`hrnet`] | timm 1.0.31 `hrnet_w32` body + a 1×1 heatmap head |

pub mod hrnet;

pub use hrnet::{ConvChain, FinalFuse, FusePath, HrModule, HrNet, HrNetConfig, Transition};
