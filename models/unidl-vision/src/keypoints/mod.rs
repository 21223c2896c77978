//! Keypoint models: HRNet (top-down heatmaps) and PFLD (landmark regression).
//!
//! | model | module | reference |
//! |---|---|---|
//! | HRNet-W32 | [`hrnet`] | timm 1.0.31 `hrnet_w32` body + a 1×1 heatmap head |
//! | PFLD 1X / 0.25X | [`pfld`] | the paper's tables, as a PyTorch definition in `tests/reference/gen_pfld.py` |

pub mod hrnet;
pub mod pfld;

pub use hrnet::{ConvChain, FinalFuse, FusePath, HrModule, HrNet, HrNetConfig, Transition};
pub use pfld::{AuxiliaryNet, InvertedResidual, Pfld, PfldConfig, PfldOutput};
