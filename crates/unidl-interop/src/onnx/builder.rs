//! The graph builder: nodes, initializers and attributes, added one by one.

use super::proto::*;
use crate::error::{InteropError, Result};
use crate::host::HostTensor;

pub(super) fn attr_ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: 7,
        ..Default::default()
    }
}

pub(super) fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

pub(super) fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: v,
        r#type: 1,
        ..Default::default()
    }
}

/// Builds the graph node by node.
pub(super) struct Builder {
    pub(super) nodes: Vec<NodeProto>,
    pub(super) inits: Vec<TensorProto>,
    pub(super) current: String,
    pub(super) counter: usize,
}

impl Builder {
    pub(super) fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    pub(super) fn init(&mut self, name: String, shape: &[usize], values: Vec<f32>) -> String {
        self.inits.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    pub(super) fn init_i64(&mut self, name: String, values: &[i64]) -> String {
        self.inits.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: INT64,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    pub(super) fn host(&mut self, name: String, t: &HostTensor) -> String {
        self.init(name, &t.shape, t.data.to_f32())
    }

    /// Adds a node on `inputs`, returns its output name.
    pub(super) fn node(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) -> String {
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
    pub(super) fn apply(&mut self, op: &str, mut extra: Vec<String>, attrs: Vec<AttributeProto>) {
        let mut inputs = vec![self.current.clone()];
        inputs.append(&mut extra);
        self.current = self.node(op, inputs, attrs);
    }
}

pub(super) fn check_len(t: &HostTensor, key: &str) -> Result<()> {
    if t.data.len() != t.shape.iter().product::<usize>() {
        return Err(InteropError::Mapping {
            key: key.into(),
            reason: format!("{} values do not fill shape {:?}", t.data.len(), t.shape),
        });
    }
    Ok(())
}
