//! Output-shape tracing for model summaries (Tr-f "model summary at start").
//!
//! Burn has no forward hooks, so models report the shape of what their
//! sub-modules return with [`record`], keyed by the sub-module's path. The
//! call is a thread-local flag test when no trace is active, so it costs
//! nothing in training. [`capture`] runs a closure with tracing on and
//! returns what was recorded, in call order.
//!
//! ```
//! use unidl_tensor::trace;
//! let ((), shapes) = trace::capture(|| {
//!     trace::record("conv1", &[1, 32, 28, 28]);
//! });
//! assert_eq!(shapes[0].path, "conv1");
//! assert_eq!(shapes[0].shape, vec![1, 32, 28, 28]);
//! ```

use std::cell::RefCell;

/// One recorded output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// Sub-module path (`layer1.0.conv1`).
    pub path: String,
    /// Output shape.
    pub shape: Vec<usize>,
}

thread_local! {
    static TRACE: RefCell<Option<Vec<Traced>>> = const { RefCell::new(None) };
}

/// Records the output shape of the sub-module at `path` when a trace is active.
pub fn record(path: &str, shape: &[usize]) {
    TRACE.with(|t| {
        if let Some(v) = t.borrow_mut().as_mut() {
            v.push(Traced {
                path: path.to_string(),
                shape: shape.to_vec(),
            });
        }
    });
}

/// Whether a trace is active on this thread (to skip building paths otherwise).
pub fn active() -> bool {
    TRACE.with(|t| t.borrow().is_some())
}

/// Runs `f` with tracing on; returns its result and the recorded outputs.
/// Nested captures are flattened into the outer one.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Traced>) {
    let outer = TRACE.with(|t| t.borrow_mut().replace(Vec::new()));
    let r = f();
    let got = TRACE.with(|t| t.borrow_mut().take()).unwrap_or_default();
    if let Some(mut o) = outer {
        o.extend(got.iter().cloned());
        TRACE.with(|t| *t.borrow_mut() = Some(o));
    }
    (r, got)
}
