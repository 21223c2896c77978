//! LSTM and GRU nodes: PyTorch gate order and weights regrouped the ONNX way.

use super::RecurrentHost;
use super::builder::{Builder, attr_int, attr_ints, check_len};
use super::proto::*;
use crate::error::{InteropError, Result};
use crate::host::{HostData, HostTensor};

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

pub(super) fn recurrent(
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
