//! The writer: [`export_sequential`] turns a chain of [`OnnxLayer`]s into a
//! serialized `ModelProto`.

use prost::Message;

use super::builder::{Builder, attr_float, attr_int, attr_ints, check_len};
use super::proto::*;
use super::recurrent::recurrent;
use super::{OnnxActivation, OnnxLayer};
use crate::error::{InteropError, Result};

/// Opset the writer targets.
pub const EXPORT_OPSET: i64 = 17;

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
