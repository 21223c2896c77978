//! Choosing a back-end by name at start-up (§6.1.1-f).

use std::fmt;
use std::str::FromStr;

use crate::{BackendError, Device};

/// Environment variable that names the back-end (`flex`, `tch`, `wgpu:0`, …).
pub const ENV_VAR: &str = unidl_env::BACKEND_VAR;

/// A back-end unidl knows about, compiled in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Pure-Rust CPU back-end (default).
    Flex,
    /// ndarray CPU back-end.
    NdArray,
    /// LibTorch (PyTorch's engine).
    Tch,
    /// WGPU (WGSL shaders over Vulkan, Metal or DX12).
    Wgpu,
    /// CUDA through CubeCL.
    Cuda,
}

impl BackendKind {
    /// Every back-end unidl knows, in the order of the capability report.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Flex,
        BackendKind::NdArray,
        BackendKind::Tch,
        BackendKind::Wgpu,
        BackendKind::Cuda,
    ];

    /// The name used in `UNIDL_BACKEND`, configs and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::NdArray => "ndarray",
            BackendKind::Tch => "tch",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// The cargo feature (of `unidl-backend` and of the `unidl` facade) that compiles it in.
    pub fn feature(self) -> &'static str {
        self.name()
    }

    /// Whether this build contains the back-end.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::NdArray => cfg!(feature = "ndarray"),
            BackendKind::Tch => cfg!(feature = "tch"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The compiled-in back-ends.
    pub fn compiled() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|k| k.is_compiled()).collect()
    }

    fn from_name(name: &str) -> Option<BackendKind> {
        let kind = match name.trim().to_ascii_lowercase().as_str() {
            "flex" | "cpu-flex" => BackendKind::Flex,
            "ndarray" => BackendKind::NdArray,
            "tch" | "libtorch" | "torch" => BackendKind::Tch,
            "wgpu" | "vulkan" | "webgpu" => BackendKind::Wgpu,
            "cuda" => BackendKind::Cuda,
            _ => return None,
        };
        Some(kind)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed back-end request: `name` or `name:index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSpec {
    /// Which back-end.
    pub kind: BackendKind,
    /// Device index for back-ends with several devices (`wgpu:1`, `cuda:0`);
    /// `None` picks the back-end's default device.
    pub index: Option<usize>,
}

impl BackendSpec {
    /// Parses `spec`, recording `origin` (e.g. "environment variable UNIDL_BACKEND")
    /// in the error.
    pub fn parse_from(spec: &str, origin: &str) -> Result<BackendSpec, BackendError> {
        let (name, index) = match spec.split_once(':') {
            Some((n, i)) => (n, Some(i)),
            None => (spec, None),
        };
        let kind = BackendKind::from_name(name).ok_or_else(|| BackendError::Unknown {
            name: spec.to_string(),
            source_of: origin.to_string(),
            known: names(&BackendKind::ALL),
        })?;
        let index = match index {
            None => None,
            Some(i) => Some(
                i.trim()
                    .parse::<usize>()
                    .map_err(|_| BackendError::BadIndex {
                        spec: spec.to_string(),
                        index: i.to_string(),
                    })?,
            ),
        };
        Ok(BackendSpec { kind, index })
    }

    /// Builds the Burn device, or says which feature is missing.
    pub fn device(&self) -> Result<Device, BackendError> {
        if !self.kind.is_compiled() {
            return Err(BackendError::NotCompiled {
                backend: self.kind.name().to_string(),
                feature: self.kind.feature().to_string(),
                available: names(&BackendKind::compiled()),
            });
        }
        Ok(make_device(self.kind, self.index))
    }
}

impl FromStr for BackendSpec {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendSpec::parse_from(s, "argument")
    }
}

impl fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}:{i}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

fn names(kinds: &[BackendKind]) -> String {
    let v: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[allow(unused_variables, deprecated, unreachable_code)]
fn make_device(kind: BackendKind, index: Option<usize>) -> Device {
    match kind {
        #[cfg(feature = "flex")]
        BackendKind::Flex => Device::flex(),
        #[cfg(feature = "ndarray")]
        BackendKind::NdArray => Device::ndarray(),
        #[cfg(feature = "tch")]
        BackendKind::Tch => match index {
            Some(i) => Device::libtorch_cuda(i),
            None => Device::libtorch(),
        },
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => match index {
            Some(i) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)),
            None => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        },
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Device::cuda(index.unwrap_or(0)),
        #[allow(unreachable_patterns)]
        other => unreachable!("{other} checked as compiled in before"),
    }
}

/// The back-end chosen for this run: its spec, where the choice came from, and its device.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// What was chosen.
    pub spec: BackendSpec,
    /// Where the choice came from: `argument`, `environment variable UNIDL_BACKEND`,
    /// `config key backend`, or `default`.
    pub origin: String,
    /// The device for inference (no autodiff).
    pub device: Device,
}

impl Runtime {
    /// The same device with automatic differentiation, for training.
    pub fn autodiff_device(&self) -> Device {
        self.device.clone().autodiff()
    }

    /// Seeds the device's random generators (see [`crate::seed`]).
    pub fn seed(&self, seed: u64) {
        crate::seed(&self.device, seed);
    }
}

/// Chooses the back-end: `explicit` (a CLI argument or API call) wins, then the
/// `UNIDL_BACKEND` environment variable, then `config` (a config-file value),
/// then `flex`.
///
/// A name that is unknown, or a back-end not compiled in, is an error — never a
/// silent fallback.
pub fn select(explicit: Option<&str>, config: Option<&str>) -> Result<Runtime, BackendError> {
    let (text, origin) = unidl_env::backend_choice(explicit, config);
    let spec = BackendSpec::parse_from(&text, &origin)?;
    let device = spec.device()?;
    Ok(Runtime {
        spec,
        origin,
        device,
    })
}

/// The default device of every compiled-in CPU back-end (flex always;
/// ndarray and tch when their features are on), with its name: what
/// parity tests loop over to check "every CPU back-end".
pub fn cpu_devices() -> Vec<(&'static str, Device)> {
    [BackendKind::Flex, BackendKind::NdArray, BackendKind::Tch]
        .into_iter()
        .filter(|k| k.is_compiled())
        .map(|kind| (kind.name(), make_device(kind, None)))
        .collect()
}

/// Which back-end a device belongs to (autodiff devices answer for the device they wrap).
pub fn backend_of(device: &Device) -> Option<BackendKind> {
    let text = format!("{device:?}").to_ascii_lowercase();
    // Burn's Debug output names the dispatch variant; the order matters
    // ("autodiff(flex…)" must match flex, not something else).
    [
        ("flex", BackendKind::Flex),
        ("ndarray", BackendKind::NdArray),
        ("libtorch", BackendKind::Tch),
        ("wgpu", BackendKind::Wgpu),
        ("cuda", BackendKind::Cuda),
    ]
    .into_iter()
    .find(|(needle, _)| text.contains(needle))
    .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_indices() {
        let s: BackendSpec = "wgpu:1".parse().unwrap();
        assert_eq!(s.kind, BackendKind::Wgpu);
        assert_eq!(s.index, Some(1));
        let s: BackendSpec = "LibTorch".parse().unwrap();
        assert_eq!(s.kind, BackendKind::Tch);
        assert_eq!(s.index, None);
    }

    #[test]
    fn unknown_name_is_typed_error() {
        let e = "tpu".parse::<BackendSpec>().unwrap_err();
        assert!(matches!(e, BackendError::Unknown { .. }));
        assert!(e.to_string().contains("flex, ndarray, tch, wgpu, cuda"));
        let e = "wgpu:x".parse::<BackendSpec>().unwrap_err();
        assert!(matches!(e, BackendError::BadIndex { .. }));
    }

    #[test]
    fn missing_feature_names_the_feature() {
        // cuda never builds in this project's default/CI feature sets.
        if BackendKind::Cuda.is_compiled() {
            return;
        }
        let e = select(Some("cuda"), None).unwrap_err();
        match &e {
            BackendError::NotCompiled { feature, .. } => assert_eq!(feature, "cuda"),
            other => panic!("wrong error {other:?}"),
        }
        assert!(e.to_string().contains("--features cuda"));
    }

    #[test]
    fn explicit_beats_config_and_default_is_flex() {
        let r = select(Some("flex"), Some("ndarray")).unwrap();
        assert_eq!(r.spec.kind, BackendKind::Flex);
        assert_eq!(r.origin, "argument");
        if std::env::var(ENV_VAR).is_err() {
            let r = select(None, None).unwrap();
            assert_eq!(r.spec.kind, BackendKind::Flex);
            assert_eq!(r.origin, "default");
            let e = select(None, Some("nope")).unwrap_err();
            assert!(e.to_string().contains("config key"));
        }
    }
}
