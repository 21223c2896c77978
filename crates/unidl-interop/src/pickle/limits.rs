//! Bounds on what a pickle may build: nesting depth and copy size.

use super::Value;

/// Deepest container nesting a pickle may build (state dicts nest a few
/// levels).
pub const MAX_DEPTH: usize = 128;

/// The size of `v` in nodes (strings and bytes count one per 16 bytes),
/// walked without recursion; stops counting past `limit`.
pub(super) fn weight(v: &Value, limit: usize) -> usize {
    let mut total = 0usize;
    let mut todo: Vec<&Value> = vec![v];
    while let Some(v) = todo.pop() {
        total += 1;
        match v {
            Value::Str(x) | Value::Global(x) => total += x.len() / 16,
            Value::Bytes(b) | Value::BigInt(b) => total += b.len() / 16,
            Value::List(items) | Value::Tuple(items) => todo.extend(items),
            Value::Dict(pairs) => todo.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            Value::TorchTensor(t) => total += (t.size.len() + t.stride.len()) / 4,
            _ => {}
        }
        if total > limit {
            break;
        }
    }
    total
}
