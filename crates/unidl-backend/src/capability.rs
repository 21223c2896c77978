//! The capability report: what each compiled-in back-end can do.

use std::fmt;

use crate::{BackendError, BackendKind, BackendSpec, DType};

/// Capabilities of one back-end, measured on its default device.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendReport {
    /// The back-end.
    pub kind: BackendKind,
    /// Whether this build contains it.
    pub compiled: bool,
    /// The device(s) it offers here (Burn's description).
    pub devices: Vec<String>,
    /// Dtypes the device supports for storage and arithmetic (asked of the device).
    pub dtypes: Vec<DType>,
    /// Whether reverse-mode autodiff works on it (Burn's autodiff decorator).
    pub autodiff: bool,
    /// Known gaps, in words.
    pub lacks: Vec<String>,
}

impl BackendReport {
    /// `Ok` when `dtype` is supported, else [`BackendError::Unsupported`] naming `op`.
    pub fn require(&self, op: &str, dtype: DType) -> Result<(), BackendError> {
        if self.dtypes.contains(&dtype) {
            Ok(())
        } else {
            Err(BackendError::Unsupported {
                op: op.to_string(),
                dtype,
                backend: self.kind.name().to_string(),
            })
        }
    }
}

impl fmt::Display for BackendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.compiled {
            return write!(
                f,
                "{:<8} not compiled in (cargo feature `{}`)",
                self.kind.name(),
                self.kind.feature()
            );
        }
        let dtypes: Vec<&str> = self.dtypes.iter().map(|d| d.name()).collect();
        write!(
            f,
            "{:<8} devices: {}; dtypes: {}; autodiff: {}",
            self.kind.name(),
            self.devices.join(", "),
            dtypes.join(" "),
            if self.autodiff { "yes" } else { "no" }
        )?;
        if !self.lacks.is_empty() {
            write!(f, "; lacks: {}", self.lacks.join("; "))?;
        }
        Ok(())
    }
}

/// Static knowledge about gaps that the device cannot be asked about.
fn known_gaps(kind: BackendKind) -> Vec<String> {
    let mut v: Vec<&str> =
        vec!["string and complex64 dtypes (unidl keeps them on the host / as float pairs)"];
    match kind {
        BackendKind::Flex => v.push("GPU execution"),
        BackendKind::NdArray => {
            v.push("float16/bfloat16 arithmetic");
            v.push("speed: convolution training ~48x slower than PyTorch");
        }
        BackendKind::Tch => v.push("int32/int16/int8/uint8 tensors (int64 only)"),
        BackendKind::Wgpu => v.push("float64 on most GPUs; speed on lavapipe (software Vulkan)"),
        BackendKind::Cuda => v.push("offline builds: its build script downloads an LLVM bundle"),
    }
    v.into_iter().map(String::from).collect()
}

/// The report for one back-end; opens its default device when compiled in.
pub fn report_for(kind: BackendKind) -> BackendReport {
    let compiled = kind.is_compiled();
    let mut report = BackendReport {
        kind,
        compiled,
        devices: Vec::new(),
        dtypes: Vec::new(),
        autodiff: compiled,
        lacks: known_gaps(kind),
    };
    if !compiled {
        return report;
    }
    let spec = BackendSpec { kind, index: None };
    let Ok(device) = spec.device() else {
        return report;
    };
    report.devices.push(format!("{device:?}"));
    report.dtypes = DType::ALL
        .into_iter()
        .filter(|d| require_dtype(&device, "report", *d).is_ok())
        .collect();
    report
}

/// Reports for every back-end unidl knows (compiled in or not), in a fixed order.
pub fn capabilities() -> Vec<BackendReport> {
    BackendKind::ALL.into_iter().map(report_for).collect()
}

/// `Ok` when `device` can hold `dtype`, else [`BackendError::Unsupported`] naming `op`,
/// the dtype and the device's back-end.
pub fn require_dtype(device: &crate::Device, op: &str, dtype: DType) -> Result<(), BackendError> {
    let ok = match dtype {
        DType::Bool | DType::String => true,
        DType::Complex64 => device.supports_dtype(burn::tensor::DType::F32),
        d => d.to_burn().is_some_and(|b| device.supports_dtype(b)),
    };
    if ok {
        Ok(())
    } else {
        Err(BackendError::Unsupported {
            op: op.to_string(),
            dtype,
            backend: crate::backend_of(device)
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("{device:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_supports_every_standard_dtype() {
        let r = report_for(BackendKind::Flex);
        assert!(r.compiled);
        for d in DType::ALL {
            assert!(r.dtypes.contains(&d), "flex lacks {d}");
        }
        assert!(r.require("add", DType::Int8).is_ok());
    }

    #[test]
    fn unsupported_dtype_names_op_dtype_backend() {
        let mut r = report_for(BackendKind::Flex);
        r.dtypes.retain(|d| *d != DType::Float16);
        let e = r.require("matmul", DType::Float16).unwrap_err();
        assert_eq!(
            e.to_string(),
            "operation `matmul` is not supported for dtype float16 on back-end `flex`"
        );
    }

    #[test]
    fn report_lists_all_backends() {
        let all = capabilities();
        assert_eq!(all.len(), 5);
        let text: Vec<String> = all.iter().map(|r| r.to_string()).collect();
        assert!(text[0].starts_with("flex"));
    }
}
