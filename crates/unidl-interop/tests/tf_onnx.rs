//! Integration tests of the Keras, TensorFlow tensor-bundle and ONNX readers
//! and the ONNX writer, on `Device::flex()`. Fixtures come from
//! `tests/fixtures/gen/gen_keras.py` and `gen_onnx.py` (committed outputs).

mod reference_model;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use reference_model::{Fixture, RefModel};
use unidl_backend::Device;
use unidl_interop::keras::{self, KERAS_BN_EPSILON};
use unidl_interop::{Checkpoint, HostData, InteropError, tf};

fn device() -> Device {
    Device::flex()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Loads a unidl-named checkpoint into `module`: every float parameter must
/// be present with its shape, and every key must be used.
struct Loader<'a> {
    ckpt: &'a Checkpoint,
    path: Vec<String>,
    used: BTreeSet<String>,
    problems: Vec<String>,
    device: Device,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.join(".");
        let Some(t) = self.ckpt.tensors.get(&key) else {
            self.problems.push(format!("missing `{key}`"));
            return param;
        };
        let want = param.val().dims().to_vec();
        if t.shape != want {
            self.problems
                .push(format!("`{key}`: checkpoint {:?}, model {want:?}", t.shape));
            return param;
        }
        self.used.insert(key);
        let data = TensorData::new(t.data.to_f32(), t.shape.clone());
        let device = self.device.clone();
        param.map(|_| Tensor::from_data(data, &device))
    }
}

fn load_into(model: RefModel, ckpt: &Checkpoint, device: &Device) -> RefModel {
    let mut loader = Loader {
        ckpt,
        path: Vec::new(),
        used: BTreeSet::new(),
        problems: Vec::new(),
        device: device.clone(),
    };
    let model = model.map(&mut loader);
    let unused: Vec<_> = ckpt
        .tensors
        .keys()
        .filter(|k| !loader.used.contains(*k))
        .collect();
    assert!(
        loader.problems.is_empty() && unused.is_empty(),
        "{:?}; unused {unused:?}",
        loader.problems
    );
    model
}

fn keras_fixture() -> Fixture {
    Fixture::load(&fixtures().join("keras/io.json"))
}

const KERAS_KEYS: [&str; 20] = [
    "attn/attention_output/bias",
    "attn/attention_output/kernel",
    "attn/key/bias",
    "attn/key/kernel",
    "attn/query/bias",
    "attn/query/kernel",
    "attn/value/bias",
    "attn/value/kernel",
    "bn/beta",
    "bn/gamma",
    "bn/moving_mean",
    "bn/moving_variance",
    "conv/bias",
    "conv/kernel",
    "emb/embeddings",
    "fc/bias",
    "fc/kernel",
    "lstm/lstm_cell/bias",
    "lstm/lstm_cell/kernel",
    "lstm/lstm_cell/recurrent_kernel",
];

fn keys(c: &Checkpoint) -> Vec<&str> {
    c.tensors.keys().map(String::as_str).collect()
}

#[test]
fn keras_readers_agree_on_keys_shapes_and_values() {
    let dir = fixtures().join("keras");
    let archive = keras::read_keras_archive(dir.join("ref.keras")).unwrap();
    let weights = keras::read_keras(dir.join("ref.weights.h5")).unwrap();
    let legacy = keras::read_keras(dir.join("ref_legacy.h5")).unwrap();
    let bundle = tf::read_tf_checkpoint(fixtures().join("tf/ckpt/ref")).unwrap();
    assert_eq!(keys(&archive.checkpoint), KERAS_KEYS);
    for other in [&weights, &legacy, &bundle] {
        assert_eq!(keys(other), KERAS_KEYS, "{}", other.source.display());
        assert_eq!(
            other.tensors,
            archive.checkpoint.tensors,
            "{}",
            other.source.display()
        );
    }
    assert_eq!(
        archive.checkpoint.tensors["conv/kernel"].shape,
        [3, 3, 3, 8]
    );
    assert_eq!(
        archive.checkpoint.tensors["attn/attention_output/kernel"].shape,
        [2, 6, 12]
    );
    // The archive's config and metadata come along.
    assert_eq!(archive.layer_epsilon("bn"), Some(1e-3));
    assert!(
        archive.metadata["keras_version"]
            .as_str()
            .unwrap()
            .starts_with('3')
    );
    // Shapes recorded by the script.
    let text = std::fs::read_to_string(dir.join("io.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (k, shape) in json["weights"].as_object().unwrap() {
        let shape: Vec<usize> = serde_json::from_value(shape.clone()).unwrap();
        assert_eq!(archive.checkpoint.tensors[k].shape, shape, "{k}");
    }
}

#[test]
fn keras_archive_matches_keras_logits() {
    let fx = keras_fixture();
    assert_eq!(fx.bn_epsilon, KERAS_BN_EPSILON);
    let dev = device();
    let archive = keras::read_keras_archive(fixtures().join("keras/ref.keras")).unwrap();
    let eps = archive.layer_epsilon("bn").unwrap();
    let mapped = keras::keras_to_unidl(&archive.checkpoint).unwrap();
    let model = load_into(RefModel::new(&dev, eps), &mapped, &dev);
    let diff = fx.max_abs_diff(&model, &dev);
    assert!(diff < 1e-4, ".keras: max |Δ| = {diff}");
}

#[test]
fn keras_weights_h5_and_tf_checkpoint_match_keras_logits() {
    let fx = keras_fixture();
    let dev = device();
    for path in [
        fixtures().join("keras/ref.weights.h5"),
        fixtures().join("keras/ref_legacy.h5"),
    ] {
        let ckpt = keras::read_keras(&path).unwrap();
        let mapped = keras::keras_to_unidl(&ckpt).unwrap();
        let model = load_into(RefModel::new(&dev, KERAS_BN_EPSILON), &mapped, &dev);
        let diff = fx.max_abs_diff(&model, &dev);
        assert!(diff < 1e-4, "{}: max |Δ| = {diff}", path.display());
    }
    let ckpt = tf::read_tf_checkpoint(fixtures().join("tf/ckpt/ref.index")).unwrap();
    let mapped = keras::keras_to_unidl(&ckpt).unwrap();
    let model = load_into(RefModel::new(&dev, KERAS_BN_EPSILON), &mapped, &dev);
    let diff = fx.max_abs_diff(&model, &dev);
    assert!(diff < 1e-4, "tf checkpoint: max |Δ| = {diff}");
}

/// Each Keras layout rule on a hand-made tensor whose values say where they
/// came from.
#[test]
fn keras_layout_rules() {
    use unidl_interop::HostTensor;
    let seq = |shape: &[usize]| HostTensor {
        shape: shape.to_vec(),
        data: HostData::F32(
            (0..shape.iter().product::<usize>())
                .map(|i| i as f32)
                .collect(),
        ),
    };
    let mut tensors = BTreeMap::new();
    tensors.insert("c/kernel".to_string(), seq(&[2, 3, 4, 5])); // HWIO
    tensors.insert("g/gru_cell/kernel".to_string(), seq(&[2, 6])); // in 2, hidden 2
    tensors.insert("g/gru_cell/recurrent_kernel".to_string(), seq(&[2, 6]));
    tensors.insert("g/gru_cell/bias".to_string(), seq(&[2, 6]));
    tensors.insert("n/gamma".to_string(), seq(&[3]));
    tensors.insert("n/moving_variance".to_string(), seq(&[3]));
    let ckpt = Checkpoint {
        source: PathBuf::from("mem"),
        framework: unidl_interop::Framework::TensorFlow,
        tensors,
    };
    let out = keras::keras_to_unidl(&ckpt).unwrap();
    // HWIO [2,3,4,5] → OIHW [5,4,2,3]: w[o][i][h][w] = k[h][w][i][o].
    let w = &out.tensors["c.weight"];
    assert_eq!(w.shape, [5, 4, 2, 3]);
    let v = w.data.to_f32();
    let (o, i, h, x) = (3, 1, 1, 2);
    assert_eq!(
        v[((o * 4 + i) * 2 + h) * 3 + x],
        (((h * 3 + x) * 4 + i) * 5 + o) as f32
    );
    // GRU: Keras columns z|r|h → rows r|z|n, transposed.
    let wi = out.tensors["g.layers.0.forward.weight_ih"].data.to_f32();
    assert_eq!(out.tensors["g.layers.0.forward.weight_ih"].shape, [6, 2]);
    // row 0 = Keras column 2 (r gate, unit 0): values 2, 8.
    assert_eq!(&wi[0..2], &[2.0, 8.0]);
    // row 2 = Keras column 0 (z gate, unit 0).
    assert_eq!(&wi[4..6], &[0.0, 6.0]);
    let bhh = out.tensors["g.layers.0.forward.bias_hh"].data.to_f32();
    assert_eq!(bhh, [8.0, 9.0, 6.0, 7.0, 10.0, 11.0]);
    assert!(out.tensors.contains_key("n.gamma"));
    assert!(out.tensors.contains_key("n.running_var"));

    // A GRU without reset_after (bias [3h]) is refused with the key named.
    let mut bad = ckpt.clone();
    bad.tensors.insert("g/gru_cell/bias".into(), seq(&[6]));
    match keras::keras_to_unidl(&bad) {
        Err(InteropError::Mapping { key, .. }) => assert_eq!(key, "g/gru_cell/bias"),
        other => panic!("expected a mapping error, got {other:?}"),
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("unidl-tf-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn truncated_copy(src: &Path, name: &str, keep: f64) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let dst = tmp(name);
    std::fs::write(&dst, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
    dst
}

#[test]
fn malformed_keras_files_give_typed_errors() {
    let dir = fixtures().join("keras");
    // Truncated zip and HDF5.
    let zip = truncated_copy(&dir.join("ref.keras"), "cut.keras", 0.5);
    assert!(
        matches!(keras::read_keras(&zip), Err(InteropError::Corrupt { path, .. }) if path == zip)
    );
    let h5 = truncated_copy(&dir.join("ref.weights.h5"), "cut.weights.h5", 0.5);
    assert!(matches!(
        keras::read_keras(&h5),
        Err(InteropError::Corrupt { .. })
    ));
    // Not HDF5 at all.
    let junk = tmp("junk.h5");
    std::fs::write(&junk, b"definitely not hdf5").unwrap();
    assert!(matches!(
        keras::read_keras(&junk),
        Err(InteropError::Corrupt { .. })
    ));
    // A string dataset where a kernel should be.
    match keras::read_keras(dir.join("string_kernel.weights.h5")) {
        Err(InteropError::Unsupported { reason, .. }) => {
            assert!(reason.contains("layers/dense/vars/0"), "{reason}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(matches!(
        keras::read_keras(dir.join("missing.keras")),
        Err(InteropError::NotFound { .. })
    ));
}

#[test]
fn malformed_tf_bundles_give_typed_errors() {
    let src = fixtures().join("tf/ckpt");
    let copy = |name: &str, edit: &dyn Fn(&mut Vec<u8>), data_edit: &dyn Fn(&mut Vec<u8>)| {
        let prefix = tmp(name);
        let mut index = std::fs::read(src.join("ref.index")).unwrap();
        let mut data = std::fs::read(src.join("ref.data-00000-of-00001")).unwrap();
        edit(&mut index);
        data_edit(&mut data);
        std::fs::write(prefix.with_extension("index"), index).unwrap();
        std::fs::write(prefix.with_extension("data-00000-of-00001"), data).unwrap();
        prefix
    };
    let keep = |_: &mut Vec<u8>| {};
    // A flipped byte inside a block: checksum mismatch.
    let p = copy("flip", &|b| b[10] ^= 0x40, &keep);
    match tf::read_tf_checkpoint(&p) {
        Err(InteropError::Corrupt { reason, .. }) => {
            assert!(reason.contains("checksum"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A truncated index: no footer magic.
    let p = copy("cut", &|b| b.truncate(b.len() - 10), &keep);
    assert!(matches!(
        tf::read_tf_checkpoint(&p),
        Err(InteropError::Corrupt { .. })
    ));
    // A truncated data shard: the entry's bytes lie outside it.
    let p = copy("short", &keep, &|d| d.truncate(d.len() / 2));
    match tf::read_tf_checkpoint(&p) {
        Err(InteropError::Corrupt { reason, .. }) => {
            assert!(reason.contains("outside"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Changed tensor bytes: CRC32C of the entry.
    let p = copy("bits", &keep, &|d| d[3] ^= 1);
    match tf::read_tf_checkpoint(&p) {
        Err(InteropError::Corrupt { reason, .. }) => assert!(reason.contains("CRC32C"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // complex64 is not a dtype this reader converts.
    match tf::read_tf_checkpoint(fixtures().join("tf/complex/ckpt")) {
        Err(InteropError::Unsupported { reason, .. }) => {
            assert!(reason.contains("dtype"), "{reason}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(matches!(
        tf::read_tf_checkpoint(tmp("absent")),
        Err(InteropError::NotFound { .. })
    ));
}
