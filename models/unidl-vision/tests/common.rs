//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use unidl_backend::Device;
pub use unidl_testkit::{
    check_close, check_grad, check_loss, floats, max_abs, max_diff, rel_l2, seeded, values,
};

/// `tests/reference/small`.
pub fn small_ref() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/small")
}

/// A deterministic input batch with values in [-1, 1).
pub fn input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 2003) as f32 / 2003.0) * 2.0 - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Trainable parameter count through the standard's Module API.
pub fn count_params<M: unidl_tensor::module::ModuleApi>(m: &M) -> usize {
    m.get_parameters().iter().map(|(_, t)| t.numel()).sum()
}

/// torchvision's parameter count of a standard variant (`resnet18`, …).
pub fn torchvision_params(name: &str) -> usize {
    let text = std::fs::read_to_string(small_ref().join("params.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} not in params.json")) as usize
}

/// A detection reference written by a generator script
/// (`gen_retinanet.py`, `gen_faster_rcnn.py`): its folder, model name and
/// metadata (`<json>` in the folder).
pub struct Reference {
    /// The folder.
    pub dir: PathBuf,
    /// The model's name: `<name>.safetensors`, `<name>.io.safetensors`.
    pub name: String,
    /// The metadata.
    pub meta: serde_json::Value,
}

impl Reference {
    /// `tests/reference/<name>/<name>.json` of this crate.
    pub fn committed(name: &str) -> Self {
        Reference::at(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/reference")
                .join(name),
            &format!("{name}.json"),
        )
    }

    /// The model `init` builds from the metadata's `config`, with the
    /// reference's weights loaded strictly through the model's
    /// torchvision-name mapping (every key used, none missing).
    pub fn model<C, M>(&self, dev: &Device, init: impl Fn(&C, &Device) -> M) -> M
    where
        C: serde::de::DeserializeOwned,
        M: unidl_vision::torchvision::TorchvisionNames,
    {
        let config: C = serde_json::from_value(self.meta["config"].clone()).unwrap();
        let path = self.dir.join(format!("{}.safetensors", self.name));
        let (model, report) =
            unidl_vision::torchvision::load_torchvision(init(&config, dev), &path, dev)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.is_clean() && !report.loaded.is_empty(), "{report}");
        model
    }

    /// Reads `dir/json`.
    pub fn at(dir: &Path, json: &str) -> Self {
        let text = std::fs::read_to_string(dir.join(json)).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
        Reference {
            dir: dir.to_path_buf(),
            name: meta["name"].as_str().unwrap().to_string(),
            meta,
        }
    }

    /// The saved inputs and outputs.
    pub fn io(&self, dev: &Device) -> unidl_tensor::module::StateDict {
        unidl_tensor::module::load_state_dict_file(
            &self.dir.join(format!("{}.io.safetensors", self.name)),
            dev,
        )
        .unwrap()
    }

    /// The training targets of `case`, for images of `size`.
    pub fn targets(&self, case: &str, size: [usize; 2]) -> Vec<unidl_train::ObjectTargets> {
        self.meta["targets"][case]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| unidl_train::ObjectTargets {
                boxes: t["boxes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| {
                        let v: Vec<f32> = b
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_f64().unwrap() as f32)
                            .collect();
                        [v[0], v[1], v[2], v[3]]
                    })
                    .collect(),
                classes: t["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as usize)
                    .collect(),
                masks: vec![],
                size,
            })
            .collect()
    }
}

/// The detection generators' image batch: value i is ((i·7919) mod 2003) / 2003.
pub fn pattern01(shape: [usize; 4], dev: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 2003) as f32 / 2003.0)
        .collect();
    Tensor::from_data(TensorData::new(v, shape), dev)
}

/// The full-size reference a generator wrote into the cache named by the
/// environment variable `env` (`.ci/run` fills it with `script --full`):
/// `None`, after saying so, when it is absent — a failure instead when
/// `UNIDL_REQUIRE_ZOO_REF=1`.
pub fn full_reference(env: &str, json: &str, script: &str) -> Option<Reference> {
    let how = format!("`tests/reference/{script} --full` (.ci/run does)");
    unidl_testkit::cached_reference(env, json, &how).map(|d| Reference::at(&d, json))
}
