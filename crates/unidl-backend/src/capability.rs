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
    /// Dtypes the device stores and computes with, **measured**: a small
    /// tensor of each is made, added to and read back (see [`report_for`];
    /// on GPU back-ends only the dtypes Burn claims are tried). Not what
    /// Burn claims (`require_dtype` asks that), so the conformance suite can
    /// check the claim against the measurement.
    pub dtypes: Vec<DType>,
    /// Whether reverse-mode autodiff works on it, measured: the gradient of
    /// `sum(x * x)` on the autodiff device is read back and checked.
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
        BackendKind::Tch => {
            v.push("dtypes Burn's LibTorch device does not claim are measured, not assumed")
        }
        BackendKind::Wgpu => v.push("float64 on most GPUs; speed on lavapipe (software Vulkan)"),
        BackendKind::Cuda => v.push("offline builds: its build script downloads an LLVM bundle"),
    }
    v.into_iter().map(String::from).collect()
}

/// The report for one back-end; opens its default device when compiled in
/// and measures what it can do there. A measurement that panics inside the
/// back-end counts as "cannot" (the panic message may be printed).
pub fn report_for(kind: BackendKind) -> BackendReport {
    let compiled = kind.is_compiled();
    let mut report = BackendReport {
        kind,
        compiled,
        devices: Vec::new(),
        dtypes: Vec::new(),
        autodiff: false,
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
    // CPU back-ends are asked to do every dtype, claimed or not, so a claim
    // that is wrong either way shows. On a GPU a failed kernel can leave the
    // device unusable for what follows, so only the dtypes Burn claims are
    // tried there (a claim that does not hold still shows).
    let try_unclaimed = matches!(
        kind,
        BackendKind::Flex | BackendKind::NdArray | BackendKind::Tch
    );
    report.dtypes = DType::ALL
        .into_iter()
        .filter(|d| {
            (try_unclaimed || require_dtype(&device, "report", *d).is_ok())
                && measure_dtype(&device, *d)
        })
        .collect();
    report.autodiff = measure_autodiff(&device);
    report
}

/// Whether an unclaimed `dtype` works on `device`'s back-end, measured once
/// per (back-end, dtype); always `false` on GPU back-ends.
fn measured_on_cpu(device: &crate::Device, dtype: DType) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<(BackendKind, DType), bool>>> = OnceLock::new();
    let Some(kind) = crate::backend_of(device) else {
        return false;
    };
    if !matches!(
        kind,
        BackendKind::Flex | BackendKind::NdArray | BackendKind::Tch
    ) {
        return false;
    }
    let cache = CACHE.get_or_init(Default::default);
    if let Some(&v) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(kind, dtype))
    {
        return v;
    }
    let v = measure_dtype(device, dtype);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((kind, dtype), v);
    v
}

/// Runs `f`, mapping a panic inside the back-end to `false`.
fn survives(f: impl FnOnce() -> bool) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(false)
}

/// Makes `[1, 2, 3]` of `dtype` on `device`, adds one and reads `[2, 3, 4]` back.
fn measure_dtype(device: &crate::Device, dtype: DType) -> bool {
    use burn::tensor::{Int, Tensor, TensorData};
    let want = [2.0f64, 3.0, 4.0];
    let read = |data: TensorData| {
        data.convert::<f64>()
            .try_to_vec::<f64>()
            .is_ok_and(|v| v == want)
    };
    match dtype {
        // strings live on the host; complex64 is a pair of float32 tensors
        DType::String => true,
        DType::Complex64 => measure_dtype(device, DType::Float32),
        DType::Bool => survives(|| {
            let t = Tensor::<1, burn::tensor::Bool>::from_data(
                TensorData::new(vec![true, false, true], [3]),
                device,
            );
            t.bool_not()
                .into_data()
                .convert::<u8>()
                .try_to_vec::<u8>()
                .is_ok_and(|v| v == [0, 1, 0])
        }),
        d => {
            let Some(b) = d.to_burn() else { return false };
            let data = TensorData::new(vec![1i64, 2, 3], [3]).convert_dtype(b);
            // The result must still be of `dtype`: a back-end that silently
            // stores another dtype does not support it.
            if d.is_float() {
                survives(|| {
                    let t = Tensor::<1>::from_data(data, (device, b)).add_scalar(1.0);
                    t.dtype() == b && read(t.into_data())
                })
            } else {
                survives(|| {
                    let t = Tensor::<1, Int>::from_data(data, (device, b)).add_scalar(1);
                    t.dtype() == b && read(t.into_data())
                })
            }
        }
    }
}

/// The gradient of `sum(x * x)` at `x = [1, 2, 3]` on the autodiff device is `[2, 4, 6]`.
fn measure_autodiff(device: &crate::Device) -> bool {
    use burn::tensor::{Tensor, TensorData};
    let ad = if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    };
    survives(|| {
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [3]), &ad)
            .require_grad();
        let grads = (x.clone() * x.clone()).sum().backward();
        x.grad(&grads).is_some_and(|g| {
            g.into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .is_ok_and(|v| v == [2.0, 4.0, 6.0])
        })
    })
}

/// Reports for every back-end unidl knows (compiled in or not), in a fixed order.
pub fn capabilities() -> Vec<BackendReport> {
    BackendKind::ALL.into_iter().map(report_for).collect()
}

/// `Ok` when `device` can hold `dtype`, else [`BackendError::Unsupported`] naming `op`,
/// the dtype and the device's back-end. Burn's claim decides, except that on
/// a CPU back-end a dtype Burn does not claim is measured once per back-end
/// (as [`report_for`] does) and accepted when it works: LibTorch computes in
/// int32 although Burn's device reports it unsupported (found by the
/// conformance suite comparing the two).
pub fn require_dtype(device: &crate::Device, op: &str, dtype: DType) -> Result<(), BackendError> {
    let ok = match dtype {
        DType::Bool | DType::String => true,
        DType::Complex64 => device.supports_dtype(burn::tensor::DType::F32),
        d => d.to_burn().is_some_and(|b| device.supports_dtype(b)) || measured_on_cpu(device, d),
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
        assert!(r.autodiff, "autodiff measured on flex");
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
