//! # unidl-onnx-models — ONNX graphs as Burn modules (T/AII 008 G-a, §6.1.1-e)
//!
//! Whole-graph import: ONNX files exported from PyTorch, TensorFlow/Keras,
//! PaddlePaddle and MindSpore are turned into Rust code by burn-onnx 0.22.0's
//! build-time code generation (`ModelGen` in `build.rs`). Each graph becomes a
//! module here holding a generated `Model` (a Burn `Module` with `new(&Device)`
//! and a typed `forward`); its weights are a Burnpack file written to
//! `OUT_DIR` at build time ([`ImportedGraph::weights`]) and loaded at run time
//! with [`load_burnpack`], which turns every failure into an
//! [`OnnxModelError`] (the generated `from_file` panics instead).
//!
//! The graphs are the interop reference model of `unidl-interop`
//! (conv + BatchNorm + pooling, embedding, LSTM, multi-head attention, linear)
//! and a reduced model of its image branch (conv + BatchNorm + ReLU +
//! max-pool + global average + linear), exported by the checked-in scripts
//! in `gen/`; `tests/import.rs` runs each on the recorded input on the flex
//! back-end and matches the exporting framework's logits within 1e-4.
//! [`REFUSED`] lists the exports burn-onnx 0.22.0 does not import, with its
//! message; see `docs/INTEROP.md` ("ONNX graph import (burn-onnx)").
//!
//! Adding a graph: put `my_model.onnx` under `onnx/`, add its stem to
//! `IMPORTED` in `build.rs`, and an `imported!` line here.
//!
//! Architecture invariant: depends on Burn, burn-store and `unidl-backend`
//! only (burn-onnx is a build dependency); nothing here parses ONNX at run
//! time.
//!
//! Depends on: `unidl-backend`.

use std::path::{Path, PathBuf};

use burn_store::{BurnpackStore, ModuleSnapshot};

macro_rules! imported {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[allow(missing_docs, unused_variables, unused_imports, clippy::all)]
        pub mod $name {
            include!(concat!(env!("OUT_DIR"), "/model/", stringify!($name), ".rs"));
        }
    };
}

imported! {
    /// PyTorch reference model, dynamo exporter (opset 18, batch 2).
    ///
    /// `Model::forward(x: Tensor<4> [2, 3, 16, 16], t: Tensor<2, Int> [2, 6]) -> Tensor<2> [2, 5]`.
    torch_ref
}
imported! {
    /// PyTorch reduced model (TorchScript exporter, opset 17, dynamic batch).
    ///
    /// `Model::forward(x: Tensor<4> [B, 3, 16, 16]) -> Tensor<2> [B, 5]`.
    torch_cnn
}
imported! {
    /// Keras reference model, tf2onnx with batch 2 and onnxruntime constant
    /// folding (opset 17).
    ///
    /// `Model::forward(x: Tensor<4> [2, 3, 16, 16], t: Tensor<2, Int> [2, 6]) -> Tensor<2> [2, 5]`.
    keras_ref_folded
}
imported! {
    /// Keras reduced model (tf2onnx, opset 17, dynamic batch).
    ///
    /// `Model::forward(x: Tensor<4> [B, 3, 16, 16]) -> Tensor<2> [B, 5]`.
    keras_cnn
}
imported! {
    /// PaddlePaddle reference model (paddle2onnx, opset 17, dynamic batch).
    ///
    /// `Model::forward(x: Tensor<4> [B, 3, 16, 16], t: Tensor<2, Int> [B, 6]) -> Tensor<2> [B, 5]`.
    paddle_ref
}
imported! {
    /// PaddlePaddle reduced model (paddle2onnx, opset 17, dynamic batch).
    ///
    /// `Model::forward(x: Tensor<4> [B, 3, 16, 16]) -> Tensor<2> [B, 5]`.
    paddle_cnn
}
imported! {
    /// MindSpore reference model (`mindspore.onnx.export`, opset 11).
    ///
    /// `Model::forward(x: Tensor<4> [B, 3, 16, 16], t: Tensor<2, Int> [B, 6]) -> Tensor<2> [B, 5]`.
    mindspore_ref
}
imported! {
    /// MindSpore reduced model (`mindspore.onnx.export`, opset 11).
    ///
    /// `Model::forward(x: Tensor<4> [B, 3, 16, 16]) -> Tensor<2> [B, 5]`.
    mindspore_cnn
}

/// The framework that exported a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// PyTorch (`torch.onnx.export`).
    PyTorch,
    /// TensorFlow/Keras (tf2onnx).
    Keras,
    /// PaddlePaddle (`paddle.onnx.export`, paddle2onnx).
    Paddle,
    /// MindSpore (`mindspore.onnx.export`).
    MindSpore,
}

/// What was exported: the interop reference model or its image branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Conv + BatchNorm + pooling, embedding, LSTM, multi-head attention,
    /// linear; inputs `x` and `t`.
    Reference,
    /// Conv + BatchNorm + ReLU + max-pool + global average + linear; input `x`.
    Reduced,
}

/// One graph imported at build time.
#[derive(Debug, Clone, Copy)]
pub struct ImportedGraph {
    /// Module name in this crate and stem of `onnx/<name>.onnx`.
    pub name: &'static str,
    /// Exporting framework.
    pub exporter: Exporter,
    /// Which model.
    pub variant: Variant,
    /// The Burnpack weights burn-onnx wrote at build time (absolute path in
    /// this build's `OUT_DIR`).
    pub weights: &'static str,
}

macro_rules! graph {
    ($name:literal, $exporter:ident, $variant:ident) => {
        ImportedGraph {
            name: $name,
            exporter: Exporter::$exporter,
            variant: Variant::$variant,
            weights: concat!(env!("OUT_DIR"), "/model/", $name, ".bpk"),
        }
    };
}

/// Every imported graph, in the order of the modules above.
pub const GRAPHS: &[ImportedGraph] = &[
    graph!("torch_ref", PyTorch, Reference),
    graph!("torch_cnn", PyTorch, Reduced),
    graph!("keras_ref_folded", Keras, Reference),
    graph!("keras_cnn", Keras, Reduced),
    graph!("paddle_ref", Paddle, Reference),
    graph!("paddle_cnn", Paddle, Reduced),
    graph!("mindspore_ref", MindSpore, Reference),
    graph!("mindspore_cnn", MindSpore, Reduced),
];

/// The imported graph called `name`, if any.
pub fn graph(name: &str) -> Option<&'static ImportedGraph> {
    GRAPHS.iter().find(|g| g.name == name)
}

/// An export that burn-onnx 0.22.0 does not import (`onnx/refused/<name>.onnx`).
#[derive(Debug, Clone, Copy)]
pub struct RefusedGraph {
    /// Stem of `onnx/refused/<name>.onnx`.
    pub name: &'static str,
    /// Exporting framework.
    pub exporter: Exporter,
    /// The ONNX node type burn-onnx stops at.
    pub op: &'static str,
    /// burn-onnx's message from this build (`IMPORTED` if it now imports).
    pub message: &'static str,
}

/// Exports of the reference model that burn-onnx 0.22.0 refuses; each was
/// tried by `build.rs` in this very build.
pub const REFUSED: &[RefusedGraph] = &[
    RefusedGraph {
        name: "torch_ref_ts",
        exporter: Exporter::PyTorch,
        op: "Reshape",
        message: include_str!(concat!(env!("OUT_DIR"), "/refused/torch_ref_ts.txt")),
    },
    RefusedGraph {
        name: "keras_ref",
        exporter: Exporter::Keras,
        op: "ReduceProd",
        message: include_str!(concat!(env!("OUT_DIR"), "/refused/keras_ref.txt")),
    },
];

/// Errors of loading an imported graph's weights.
#[derive(Debug, thiserror::Error)]
pub enum OnnxModelError {
    /// The weights file does not exist.
    #[error("{path}: weights file not found")]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The file is not a readable Burnpack file, or its tensors do not fit the
    /// model (missing tensors, shape or dtype mismatches).
    #[error("{path}: cannot load the weights: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// burn-store's message.
        reason: String,
    },
    /// The file holds tensors the model does not have (weights of another
    /// graph).
    #[error("{path}: tensors not in the model: {unused:?}")]
    Unused {
        /// The file.
        path: PathBuf,
        /// Their names.
        unused: Vec<String>,
    },
}

/// Loads a Burnpack weights file (e.g. [`ImportedGraph::weights`]) into a
/// generated model built with `Model::new(&device)`, strictly: every tensor
/// of the model must be in the file with its shape and dtype, and the file
/// must hold nothing else.
///
/// ```no_run
/// use unidl_onnx_models::{graph, load_burnpack, torch_cnn};
/// let device = unidl_backend::Device::flex();
/// let weights = graph("torch_cnn").unwrap().weights;
/// let model = load_burnpack(torch_cnn::Model::new(&device), weights)?;
/// # Ok::<(), unidl_onnx_models::OnnxModelError>(())
/// ```
pub fn load_burnpack<M: ModuleSnapshot>(
    mut model: M,
    path: impl AsRef<Path>,
) -> Result<M, OnnxModelError> {
    let path = path.as_ref();
    if !path.is_file() {
        return Err(OnnxModelError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| OnnxModelError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !result.unused.is_empty() {
        return Err(OnnxModelError::Unused {
            path: path.to_path_buf(),
            unused: result.unused,
        });
    }
    Ok(model)
}
