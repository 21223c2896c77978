//! ONNX: initializers in (any framework's export) and unidl modules out.
//!
//! The protobuf subset both directions need is declared here with `prost`
//! derives (no protoc, no generated code): `ModelProto`, `GraphProto`,
//! `NodeProto`, `AttributeProto`, `TensorProto`, `ValueInfoProto`.
//!
//! - [`read_onnx_initializers`] returns every `graph.initializer` as a host
//!   tensor under its ONNX name, from `raw_data` or the typed fields
//!   (`float_data`, `int32_data`, `int64_data`, `double_data`,
//!   `uint64_data`). Tensors kept in external files give
//!   [`InteropError::Unsupported`].
//! - [`export_sequential`] writes a chain of [`OnnxLayer`]s (convolution,
//!   linear, batch norm, pooling, activations, flatten, LSTM and GRU) as an
//!   opset-17 model; the `OnnxLayer::from_*` constructors take the unidl
//!   (Burn) modules. Whole-graph import into Burn is burn-onnx's job
//!   (build-time code generation), see `docs/INTEROP.md`.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use crate::error::{InteropError, Result};
use crate::host::{Checkpoint, Framework, HostData, HostTensor};
use crate::pickle::ElemType;

/// `onnx.ModelProto` (subset).
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
}

/// `onnx.OperatorSetIdProto`.
#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

/// `onnx.GraphProto` (subset).
#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

/// `onnx.NodeProto` (subset).
#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

/// `onnx.AttributeProto` (scalar and list numbers).
#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, tag = "2")]
    f: f32,
    #[prost(int64, tag = "3")]
    i: i64,
    #[prost(bytes = "vec", tag = "4")]
    s: Vec<u8>,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
    /// `AttributeType`: FLOAT 1, INT 2, STRING 3, INTS 7.
    #[prost(int32, tag = "20")]
    r#type: i32,
}

/// `onnx.TensorProto` (subset).
#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    double_data: Vec<f64>,
    #[prost(uint64, repeated, tag = "11")]
    uint64_data: Vec<u64>,
    /// `DataLocation`: DEFAULT 0, EXTERNAL 1.
    #[prost(int32, tag = "14")]
    data_location: i32,
}

/// `onnx.ValueInfoProto`.
#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

/// `onnx.TypeProto` (the `tensor_type` case of its oneof).
#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TypeProtoTensor>,
}

/// `onnx.TypeProto.Tensor`.
#[derive(Clone, PartialEq, Message)]
struct TypeProtoTensor {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

/// `onnx.TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

/// `onnx.TensorShapeProto.Dimension` (its oneof as two optional fields).
#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const UINT16: i32 = 4;
const INT16: i32 = 5;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;
const UINT32: i32 = 12;
const UINT64: i32 = 13;
const BFLOAT16: i32 = 16;

/// Opset the writer targets.
pub const EXPORT_OPSET: i64 = 17;

// ------------------------------------------------------------------ reader

/// Reads the initializers (weights) of an ONNX model into a checkpoint keyed
/// by initializer name.
///
/// # Errors
/// [`InteropError::NotFound`]; [`InteropError::Corrupt`] for a file that is
/// not a `ModelProto`, has no graph, or whose values do not fill a shape;
/// [`InteropError::Unsupported`] for external data, strings, complex numbers
/// and 8-bit/4-bit float types.
pub fn read_onnx_initializers(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InteropError::NotFound {
            path: path.to_path_buf(),
        },
        _ => corrupt(path, e),
    })?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| corrupt(path, format!("not an ONNX ModelProto: {e}")))?;
    let graph = model
        .graph
        .ok_or_else(|| corrupt(path, "ModelProto without a graph"))?;
    let mut tensors = BTreeMap::new();
    for t in &graph.initializer {
        tensors.insert(t.name.clone(), tensor_from_proto(t, path)?);
    }
    Ok(Checkpoint {
        source: path.to_path_buf(),
        framework: Framework::Onnx,
        tensors,
    })
}

fn tensor_from_proto(t: &TensorProto, path: &Path) -> Result<HostTensor> {
    let name = &t.name;
    if t.data_location == 1 {
        return Err(unsupported(
            path,
            format!("initializer `{name}` keeps its data in an external file"),
        ));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            corrupt(
                path,
                format!("initializer `{name}`: negative dim {:?}", t.dims),
            )
        })?;
    let n = crate::host::checked_volume(&shape).ok_or_else(|| {
        corrupt(
            path,
            format!("initializer `{name}`: dims {:?} overflow", t.dims),
        )
    })?;
    let raw = !t.raw_data.is_empty() || n == 0;
    let data = if raw {
        let elem = match t.data_type {
            BOOL => ElemType::Bool,
            UINT8 => ElemType::U8,
            INT8 => ElemType::I8,
            FLOAT16 => ElemType::F16,
            BFLOAT16 => ElemType::BF16,
            INT16 => ElemType::I16,
            UINT16 => ElemType::U16,
            FLOAT => ElemType::F32,
            INT32 => ElemType::I32,
            UINT32 => ElemType::U32,
            DOUBLE => ElemType::F64,
            INT64 => ElemType::I64,
            UINT64 => ElemType::U64,
            d => return Err(dtype_error(path, name, d)),
        };
        let size = elem.size();
        if n.checked_mul(size) != Some(t.raw_data.len()) {
            return Err(corrupt(
                path,
                format!(
                    "initializer `{name}`: raw_data has {} bytes, shape {shape:?} needs {}",
                    t.raw_data.len(),
                    n.saturating_mul(size)
                ),
            ));
        }
        elem.decode(&t.raw_data, false)
            .map_err(|e| corrupt(path, format!("initializer `{name}`: {e}")))?
    } else {
        match t.data_type {
            FLOAT => HostData::F32(t.float_data.clone()),
            DOUBLE => HostData::F64(t.double_data.clone()),
            INT64 => HostData::I64(t.int64_data.clone()),
            INT32 | INT16 | INT8 | UINT16 | UINT8 => {
                HostData::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            }
            BOOL => HostData::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
            FLOAT16 => HostData::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::f16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            BFLOAT16 => HostData::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::bf16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            UINT32 | UINT64 => HostData::I64(t.uint64_data.iter().map(|&v| v as i64).collect()),
            d => return Err(dtype_error(path, name, d)),
        }
    };
    HostTensor::new(shape, data, name).map_err(|e| corrupt(path, format!("initializer {e}")))
}

fn dtype_error(path: &Path, name: &str, dtype: i32) -> InteropError {
    unsupported(
        path,
        format!("initializer `{name}` has ONNX data type {dtype} (not a bool, integer or float)"),
    )
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn unsupported(path: &Path, reason: impl std::fmt::Display) -> InteropError {
    InteropError::Unsupported {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

// ------------------------------------------------------------------ writer

/// An element-wise activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnnxActivation {
    /// `Relu`.
    Relu,
    /// `Sigmoid`.
    Sigmoid,
    /// `Tanh`.
    Tanh,
    /// `LeakyRelu` with this negative slope.
    LeakyRelu(f32),
    /// `Softmax` over this axis.
    Softmax(i64),
}

/// Weights of one direction of one recurrent layer, PyTorch layout:
/// `weight_ih` `[G·h, in]`, `weight_hh` `[G·h, h]`, biases `[G·h]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentHost {
    /// Input weights.
    pub weight_ih: HostTensor,
    /// Recurrent weights.
    pub weight_hh: HostTensor,
    /// Input bias.
    pub bias_ih: Option<HostTensor>,
    /// Recurrent bias.
    pub bias_hh: Option<HostTensor>,
}

/// One layer of a sequential model the ONNX writer can express.
#[derive(Debug, Clone, PartialEq)]
pub enum OnnxLayer {
    /// 2-D convolution, weight OIHW.
    Conv2d {
        /// `[out, in/groups, kh, kw]`.
        weight: HostTensor,
        /// `[out]`.
        bias: Option<HostTensor>,
        /// Strides (h, w).
        stride: [usize; 2],
        /// Padding top, left, bottom, right.
        padding: [usize; 4],
        /// Dilation (h, w).
        dilation: [usize; 2],
        /// Groups.
        groups: usize,
    },
    /// Fully connected layer on the last axis, weight `[in, out]`.
    Linear {
        /// `[in, out]`.
        weight: HostTensor,
        /// `[out]`.
        bias: Option<HostTensor>,
    },
    /// Batch normalisation in inference mode over axis 1.
    BatchNorm {
        /// Scale.
        gamma: HostTensor,
        /// Shift.
        beta: HostTensor,
        /// Running mean.
        mean: HostTensor,
        /// Running variance.
        var: HostTensor,
        /// Epsilon.
        epsilon: f64,
    },
    /// 2-D max pooling.
    MaxPool2d {
        /// Window (h, w).
        kernel: [usize; 2],
        /// Strides.
        stride: [usize; 2],
        /// Padding top, left, bottom, right.
        padding: [usize; 4],
        /// Dilation.
        dilation: [usize; 2],
        /// Round output sizes up.
        ceil_mode: bool,
    },
    /// 2-D average pooling.
    AvgPool2d {
        /// Window (h, w).
        kernel: [usize; 2],
        /// Strides.
        stride: [usize; 2],
        /// Padding top, left, bottom, right.
        padding: [usize; 4],
        /// Count padded zeros in the average.
        count_include_pad: bool,
        /// Round output sizes up.
        ceil_mode: bool,
    },
    /// Global average pooling `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// Flatten to `[N, rest]`.
    Flatten,
    /// Activation.
    Activation(OnnxActivation),
    /// Multi-layer LSTM (PyTorch semantics and gate order i, f, g, o); input
    /// and output batch-first `[N, T, F]` when `batch_first`, else `[T, N, F]`.
    Lstm {
        /// Per layer: forward and optional reverse direction.
        layers: Vec<(RecurrentHost, Option<RecurrentHost>)>,
        /// Batch-first input/output.
        batch_first: bool,
    },
    /// Multi-layer GRU (PyTorch semantics, gate order r, z, n).
    Gru {
        /// Per layer: forward and optional reverse direction.
        layers: Vec<(RecurrentHost, Option<RecurrentHost>)>,
        /// Batch-first input/output.
        batch_first: bool,
    },
}

fn host_of<const D: usize>(t: burn::tensor::Tensor<D>, what: &str) -> Result<HostTensor> {
    let shape = t.dims().to_vec();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| InteropError::Mapping {
            key: what.to_string(),
            reason: format!("{e:?}"),
        })?;
    Ok(HostTensor {
        shape,
        data: HostData::F32(v),
    })
}

fn pad4(p: &burn::nn::PaddingConfig2d, what: &str) -> Result<[usize; 4]> {
    match p {
        burn::nn::PaddingConfig2d::Valid => Ok([0; 4]),
        burn::nn::PaddingConfig2d::Explicit(t, l, b, r) => Ok([*t, *l, *b, *r]),
        other => Err(InteropError::Mapping {
            key: what.to_string(),
            reason: format!("padding {other:?} depends on the input size; use explicit padding"),
        }),
    }
}

fn recurrent_host(
    layers: &[unidl_nn::RecurrentLayer],
) -> Result<Vec<(RecurrentHost, Option<RecurrentHost>)>> {
    let one = |w: &unidl_nn::RecurrentWeights| -> Result<RecurrentHost> {
        Ok(RecurrentHost {
            weight_ih: host_of(w.weight_ih.val(), "weight_ih")?,
            weight_hh: host_of(w.weight_hh.val(), "weight_hh")?,
            bias_ih: w
                .bias_ih
                .as_ref()
                .map(|b| host_of(b.val(), "bias_ih"))
                .transpose()?,
            bias_hh: w
                .bias_hh
                .as_ref()
                .map(|b| host_of(b.val(), "bias_hh"))
                .transpose()?,
        })
    };
    layers
        .iter()
        .map(|l| Ok((one(&l.forward)?, l.reverse.as_ref().map(one).transpose()?)))
        .collect()
}

impl OnnxLayer {
    /// From a Burn/unidl `Conv2d`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] for `Same` padding (size-dependent).
    pub fn from_conv2d(m: &unidl_nn::Conv2d) -> Result<Self> {
        Ok(OnnxLayer::Conv2d {
            weight: host_of(m.weight.val(), "conv.weight")?,
            bias: m
                .bias
                .as_ref()
                .map(|b| host_of(b.val(), "conv.bias"))
                .transpose()?,
            stride: m.stride,
            padding: pad4(&m.padding, "conv")?,
            dilation: m.dilation,
            groups: m.groups,
        })
    }

    /// From a Burn/unidl `Linear` (weight `[in, out]`).
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_linear(m: &unidl_nn::Linear) -> Result<Self> {
        Ok(OnnxLayer::Linear {
            weight: host_of(m.weight.val(), "linear.weight")?,
            bias: m
                .bias
                .as_ref()
                .map(|b| host_of(b.val(), "linear.bias"))
                .transpose()?,
        })
    }

    /// From a Burn `BatchNorm` (unidl `BatchNorm2d::inner()`), inference mode.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_batch_norm(m: &burn::nn::BatchNorm) -> Result<Self> {
        Ok(OnnxLayer::BatchNorm {
            gamma: host_of(m.gamma.val(), "bn.gamma")?,
            beta: host_of(m.beta.val(), "bn.beta")?,
            mean: host_of(m.running_mean.value(), "bn.running_mean")?,
            var: host_of(m.running_var.value(), "bn.running_var")?,
            epsilon: m.epsilon,
        })
    }

    /// From a Burn/unidl `MaxPool2d`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] for `Same` padding.
    pub fn from_max_pool2d(m: &unidl_nn::MaxPool2d) -> Result<Self> {
        Ok(OnnxLayer::MaxPool2d {
            kernel: m.kernel_size,
            stride: m.stride,
            padding: pad4(&m.padding, "max_pool2d")?,
            dilation: m.dilation,
            ceil_mode: m.ceil_mode,
        })
    }

    /// From a Burn/unidl `AvgPool2d`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] for `Same` padding.
    pub fn from_avg_pool2d(m: &unidl_nn::AvgPool2d) -> Result<Self> {
        Ok(OnnxLayer::AvgPool2d {
            kernel: m.kernel_size,
            stride: m.stride,
            padding: pad4(&m.padding, "avg_pool2d")?,
            count_include_pad: m.count_include_pad,
            ceil_mode: m.ceil_mode,
        })
    }

    /// From a unidl multi-layer `Lstm`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_lstm(m: &unidl_nn::Lstm) -> Result<Self> {
        Ok(OnnxLayer::Lstm {
            layers: recurrent_host(&m.layers)?,
            batch_first: m.batch_first,
        })
    }

    /// From a unidl multi-layer `Gru`.
    ///
    /// # Errors
    /// [`InteropError::Mapping`] if the weights cannot be read.
    pub fn from_gru(m: &unidl_nn::Gru) -> Result<Self> {
        Ok(OnnxLayer::Gru {
            layers: recurrent_host(&m.layers)?,
            batch_first: m.batch_first,
        })
    }
}

fn attr_ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: 7,
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: 1,
        ..Default::default()
    }
}

/// Builds the graph node by node.
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    current: String,
    counter: usize,
}

impl Builder {
    fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    fn init(&mut self, name: String, shape: &[usize], values: Vec<f32>) -> String {
        self.inits.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    fn init_i64(&mut self, name: String, values: &[i64]) -> String {
        self.inits.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    fn host(&mut self, name: String, t: &HostTensor) -> String {
        self.init(name, &t.shape, t.data.to_f32())
    }

    /// Adds a node on `inputs`, returns its output name.
    fn node(&mut self, op: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: format!("{out}_node"),
            op_type: op.into(),
            attribute: attrs,
        });
        out
    }

    /// Applies `op` to the current value.
    fn apply(&mut self, op: &str, mut extra: Vec<String>, attrs: Vec<AttributeProto>) {
        let mut inputs = vec![self.current.clone()];
        inputs.append(&mut extra);
        self.current = self.node(op, inputs, attrs);
    }
}

fn check_len(t: &HostTensor, key: &str) -> Result<()> {
    if t.data.len() != t.shape.iter().product::<usize>() {
        return Err(InteropError::Mapping {
            key: key.into(),
            reason: format!("{} values do not fill shape {:?}", t.data.len(), t.shape),
        });
    }
    Ok(())
}

/// Rows of `[G·h, cols]` regrouped by `order` (gate indices).
fn regate(t: &HostTensor, order: &[usize], hidden: usize) -> Vec<f32> {
    let cols = t.shape.get(1).copied().unwrap_or(1);
    let v = t.data.to_f32();
    order
        .iter()
        .flat_map(|&g| {
            v[g * hidden * cols..(g + 1) * hidden * cols]
                .iter()
                .copied()
        })
        .collect()
}

fn recurrent(
    b: &mut Builder,
    op: &str,
    layers: &[(RecurrentHost, Option<RecurrentHost>)],
    batch_first: bool,
    li: usize,
) -> Result<()> {
    // PyTorch → ONNX gate order: LSTM i f g o → i o f c; GRU r z n → z r h.
    let (gates, order): (usize, &[usize]) = if op == "LSTM" {
        (4, &[0, 3, 1, 2])
    } else {
        (3, &[1, 0, 2])
    };
    if batch_first {
        b.apply("Transpose", vec![], vec![attr_ints("perm", &[1, 0, 2])]);
    }
    for (l, (fwd, rev)) in layers.iter().enumerate() {
        let key = format!("layer {li} ({op}) layer {l}");
        let dirs: Vec<&RecurrentHost> = std::iter::once(fwd).chain(rev.as_ref()).collect();
        let rows = fwd.weight_ih.shape.first().copied().unwrap_or(0);
        let hidden = rows / gates;
        let input = fwd.weight_ih.shape.get(1).copied().unwrap_or(0);
        let (mut w, mut r, mut bias) = (Vec::new(), Vec::new(), Vec::new());
        for d in &dirs {
            for t in [&d.weight_ih, &d.weight_hh]
                .into_iter()
                .chain(d.bias_ih.iter())
                .chain(d.bias_hh.iter())
            {
                check_len(t, &key)?;
            }
            if d.weight_ih.shape != [gates * hidden, input]
                || d.weight_hh.shape != [gates * hidden, hidden]
                || hidden == 0
            {
                return Err(InteropError::Mapping {
                    key,
                    reason: format!(
                        "weight_ih {:?} / weight_hh {:?} are not {gates} gates of a hidden size",
                        d.weight_ih.shape, d.weight_hh.shape
                    ),
                });
            }
            w.extend(regate(&d.weight_ih, order, hidden));
            r.extend(regate(&d.weight_hh, order, hidden));
            let zeros = HostTensor {
                shape: vec![gates * hidden],
                data: HostData::F32(vec![0.0; gates * hidden]),
            };
            bias.extend(regate(d.bias_ih.as_ref().unwrap_or(&zeros), order, hidden));
            bias.extend(regate(d.bias_hh.as_ref().unwrap_or(&zeros), order, hidden));
        }
        let nd = dirs.len();
        let stem = format!("{}{li}_{l}", op.to_lowercase());
        let wn = b.init(format!("{stem}_W"), &[nd, gates * hidden, input], w);
        let rn = b.init(format!("{stem}_R"), &[nd, gates * hidden, hidden], r);
        let bn = b.init(format!("{stem}_B"), &[nd, 2 * gates * hidden], bias);
        let mut attrs = vec![attr_int("hidden_size", hidden as i64)];
        if nd == 2 {
            attrs.push(AttributeProto {
                name: "direction".into(),
                s: b"bidirectional".to_vec(),
                r#type: 3,
                ..Default::default()
            });
        }
        if op == "GRU" {
            attrs.push(attr_int("linear_before_reset", 1));
        }
        let x = b.current.clone();
        let y = b.node(op, vec![x, wn, rn, bn], attrs);
        // Y [T, dirs, N, h] → [T, N, dirs, h] → [T, N, dirs·h]
        b.current = y;
        b.apply("Transpose", vec![], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let shape_name = b.fresh("shape");
        let shape = b.init_i64(shape_name, &[0, 0, -1]);
        b.apply("Reshape", vec![shape], vec![]);
    }
    if batch_first {
        b.apply("Transpose", vec![], vec![attr_ints("perm", &[1, 0, 2])]);
    }
    Ok(())
}

/// Writes `layers`, applied in order to one float input whose shape is
/// `input_shape` with a symbolic batch axis 0 (`N`), as an ONNX model
/// (opset [`EXPORT_OPSET`]); returns the serialized `ModelProto`. The input
/// is called `input`, the output `output`.
///
/// # Errors
/// [`InteropError::Mapping`] naming the layer when its tensors have
/// inconsistent shapes.
pub fn export_sequential(layers: &[OnnxLayer], input_shape: &[usize]) -> Result<Vec<u8>> {
    let mut b = Builder {
        nodes: Vec::new(),
        inits: Vec::new(),
        current: "input".into(),
        counter: 0,
    };
    let mut rank = input_shape.len();
    for (i, layer) in layers.iter().enumerate() {
        if matches!(layer, OnnxLayer::Flatten) {
            rank = 2;
        }
        match layer {
            OnnxLayer::Conv2d {
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
            } => {
                check_len(weight, &format!("layer {i} (Conv2d) weight"))?;
                if weight.shape.len() != 4 {
                    return Err(InteropError::Mapping {
                        key: format!("layer {i} (Conv2d) weight"),
                        reason: format!("shape {:?} is not OIHW", weight.shape),
                    });
                }
                let mut extra = vec![b.host(format!("conv{i}_weight"), weight)];
                if let Some(bias) = bias {
                    check_len(bias, &format!("layer {i} (Conv2d) bias"))?;
                    extra.push(b.host(format!("conv{i}_bias"), bias));
                }
                let attrs = vec![
                    attr_ints("kernel_shape", &weight.shape[2..]),
                    attr_ints("strides", stride),
                    attr_ints("pads", padding),
                    attr_ints("dilations", dilation),
                    attr_int("group", *groups as i64),
                ];
                b.apply("Conv", extra, attrs);
            }
            OnnxLayer::Linear { weight, bias } => {
                check_len(weight, &format!("layer {i} (Linear) weight"))?;
                let w = b.host(format!("linear{i}_weight"), weight);
                b.apply("MatMul", vec![w], vec![]);
                if let Some(bias) = bias {
                    check_len(bias, &format!("layer {i} (Linear) bias"))?;
                    let bn = b.host(format!("linear{i}_bias"), bias);
                    b.apply("Add", vec![bn], vec![]);
                }
            }
            OnnxLayer::BatchNorm {
                gamma,
                beta,
                mean,
                var,
                epsilon,
            } => {
                let mut extra = Vec::new();
                for (n, t) in [
                    ("scale", gamma),
                    ("bias", beta),
                    ("mean", mean),
                    ("var", var),
                ] {
                    check_len(t, &format!("layer {i} (BatchNorm) {n}"))?;
                    extra.push(b.host(format!("bn{i}_{n}"), t));
                }
                b.apply(
                    "BatchNormalization",
                    extra,
                    vec![attr_float("epsilon", *epsilon as f32)],
                );
            }
            OnnxLayer::MaxPool2d {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            } => {
                let attrs = vec![
                    attr_ints("kernel_shape", kernel),
                    attr_ints("strides", stride),
                    attr_ints("pads", padding),
                    attr_ints("dilations", dilation),
                    attr_int("ceil_mode", i64::from(*ceil_mode)),
                ];
                b.apply("MaxPool", vec![], attrs);
            }
            OnnxLayer::AvgPool2d {
                kernel,
                stride,
                padding,
                count_include_pad,
                ceil_mode,
            } => {
                let attrs = vec![
                    attr_ints("kernel_shape", kernel),
                    attr_ints("strides", stride),
                    attr_ints("pads", padding),
                    attr_int("count_include_pad", i64::from(*count_include_pad)),
                    attr_int("ceil_mode", i64::from(*ceil_mode)),
                ];
                b.apply("AveragePool", vec![], attrs);
            }
            OnnxLayer::GlobalAvgPool => b.apply("GlobalAveragePool", vec![], vec![]),
            OnnxLayer::Flatten => b.apply("Flatten", vec![], vec![attr_int("axis", 1)]),
            OnnxLayer::Activation(a) => match a {
                OnnxActivation::Relu => b.apply("Relu", vec![], vec![]),
                OnnxActivation::Sigmoid => b.apply("Sigmoid", vec![], vec![]),
                OnnxActivation::Tanh => b.apply("Tanh", vec![], vec![]),
                OnnxActivation::LeakyRelu(s) => {
                    b.apply("LeakyRelu", vec![], vec![attr_float("alpha", *s)])
                }
                OnnxActivation::Softmax(axis) => {
                    b.apply("Softmax", vec![], vec![attr_int("axis", *axis)])
                }
            },
            OnnxLayer::Lstm {
                layers,
                batch_first,
            } => recurrent(&mut b, "LSTM", layers, *batch_first, i)?,
            OnnxLayer::Gru {
                layers,
                batch_first,
            } => recurrent(&mut b, "GRU", layers, *batch_first, i)?,
        }
    }
    // Name the last value `output`.
    b.apply("Identity", vec![], vec![]);
    if let Some(last) = b.nodes.last_mut() {
        last.output = vec!["output".into()];
    }
    // Input: symbolic batch, fixed other axes; output: symbolic axes of the
    // right rank.
    let value = |name: &str, dims: &[Option<usize>]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .enumerate()
                        .map(|(k, v)| match v {
                            Some(v) if k > 0 => Dimension {
                                dim_value: Some(*v as i64),
                                dim_param: None,
                            },
                            _ => Dimension {
                                dim_value: None,
                                dim_param: Some(if k == 0 {
                                    "N".into()
                                } else {
                                    format!("{name}_{k}")
                                }),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    };
    let in_dims: Vec<Option<usize>> = input_shape.iter().map(|&d| Some(d)).collect();
    let out_dims = vec![None; rank];
    let model = ModelProto {
        ir_version: 8,
        producer_name: "unidl".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: b.nodes,
            name: "unidl_sequential".into(),
            initializer: b.inits,
            input: vec![value("input", &in_dims)],
            output: vec![value("output", &out_dims)],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: EXPORT_OPSET,
        }],
    };
    Ok(model.encode_to_vec())
}
