//! Integration tests of the Keras, TensorFlow tensor-bundle and ONNX readers
//! and the ONNX writer, on `Device::flex()`. Fixtures come from
//! `tests/fixtures/gen/gen_keras.py` and `gen_onnx.py` (committed outputs).

mod reference_model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use reference_model::{Fixture, RefModel};
use unidl_backend::Device;
use unidl_interop::keras::{self, KERAS_BN_EPSILON};
use unidl_interop::mapping::{self, MappingRules};
use unidl_interop::{Checkpoint, HostData, InteropError, tf};

fn device() -> Device {
    Device::flex()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Loads a checkpoint already under unidl names (what
/// [`keras::keras_to_unidl`] gives) with the mapping layer's `load_into`,
/// strictly: a missing, unexpected or mis-shaped key fails.
fn load_into(model: RefModel, ckpt: &Checkpoint, _device: &Device) -> RefModel {
    let rules = MappingRules::new();
    let (model, report) = mapping::load_into(model, ckpt, &rules, true)
        .unwrap_or_else(|e| panic!("{}: {e}", ckpt.source.display()));
    assert!(report.mapping.converted.is_empty(), "{report}");
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
    let archive = keras::read_keras_archive(fixtures().join("keras/ref.keras")).unwrap();
    let eps = archive.layer_epsilon("bn").unwrap();
    let mapped = keras::keras_to_unidl(&archive.checkpoint).unwrap();
    for (name, dev) in unidl_backend::cpu_devices() {
        let model = load_into(RefModel::new(&dev, eps), &mapped, &dev);
        let diff = fx.max_abs_diff(&model, &dev);
        assert!(diff < 1e-4, "{name}: .keras: max |Δ| = {diff}");
    }
}

#[test]
fn keras_weights_h5_and_tf_checkpoint_match_keras_logits() {
    let fx = keras_fixture();
    for (name, dev) in unidl_backend::cpu_devices() {
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
        assert!(diff < 1e-4, "{name}: tf checkpoint: max |Δ| = {diff}");
    }
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

// ------------------------------------------------------------------ ONNX

use unidl_interop::onnx::{self, OnnxActivation, OnnxLayer};

/// Sets every float parameter (BatchNorm running statistics included) to a
/// deterministic pattern; variances stay positive.
struct Pattern {
    path: Vec<String>,
    n: usize,
    device: Device,
}

impl ModuleMapper for Pattern {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.n += 1;
        let key = self.path.join(".");
        let shape = param.val().dims();
        let count: usize = shape.iter().product();
        let k = self.n as f32;
        let v: Vec<f32> = (0..count)
            .map(|i| {
                let s = (0.7 * i as f32 + 1.3 * k).sin() * 0.5;
                if key.ends_with("running_var") {
                    0.6 + s.abs()
                } else {
                    s
                }
            })
            .collect();
        let device = self.device.clone();
        param.map(|_| Tensor::from_data(TensorData::new(v, shape.to_vec()), &device))
    }
}

fn patterned<M: Module>(m: M, dev: &Device) -> M {
    m.map(&mut Pattern {
        path: Vec::new(),
        n: 0,
        device: dev.clone(),
    })
}

struct Cnn {
    conv: unidl_nn::Conv2d,
    bn: unidl_nn::BatchNorm2d,
    max: unidl_nn::MaxPool2d,
    avg: unidl_nn::AvgPool2d,
    fc: unidl_nn::Linear,
}

fn cnn(dev: &Device) -> Cnn {
    use unidl_nn::*;
    Cnn {
        conv: patterned(
            Conv2dConfig::new([3, 4], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(dev),
            dev,
        ),
        bn: BatchNorm2d::from(patterned(burn::nn::BatchNormConfig::new(4).init(dev), dev)),
        max: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        avg: AvgPool2dConfig::new([2, 2])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(),
        fc: patterned(LinearConfig::new(4, 3).init(dev), dev),
    }
}

impl Cnn {
    fn layers(&self) -> Vec<OnnxLayer> {
        vec![
            OnnxLayer::from_conv2d(&self.conv).unwrap(),
            OnnxLayer::from_batch_norm(self.bn.inner()).unwrap(),
            OnnxLayer::Activation(OnnxActivation::Relu),
            OnnxLayer::from_max_pool2d(&self.max).unwrap(),
            OnnxLayer::from_avg_pool2d(&self.avg).unwrap(),
            OnnxLayer::GlobalAvgPool,
            OnnxLayer::Flatten,
            OnnxLayer::from_linear(&self.fc).unwrap(),
            OnnxLayer::Activation(OnnxActivation::Sigmoid),
        ]
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, _, _, _] = x.dims();
        let y = self.bn.inner().forward(self.conv.forward(x)); // [N, 4, 8, 8]
        let y = self
            .avg
            .forward(self.max.forward(burn::tensor::activation::relu(y))); // [N, 4, 5, 5]
        let y = y.mean_dim(3).mean_dim(2).reshape([n, 4]); // [N, 4]
        burn::tensor::activation::sigmoid(self.fc.forward(y)) // [N, 3]
    }
}

struct Seq {
    lstm: unidl_nn::Lstm,
    gru: unidl_nn::Gru,
}

fn seq(dev: &Device) -> Seq {
    use unidl_nn::*;
    Seq {
        lstm: patterned(
            LstmConfig::new(4, 5)
                .with_num_layers(2)
                .with_bidirectional(true)
                .with_batch_first(true)
                .init(dev),
            dev,
        ),
        gru: patterned(GruConfig::new(10, 3).with_batch_first(true).init(dev), dev),
    }
}

impl Seq {
    fn layers(&self) -> Vec<OnnxLayer> {
        vec![
            OnnxLayer::from_lstm(&self.lstm).unwrap(),
            OnnxLayer::from_gru(&self.gru).unwrap(),
            OnnxLayer::Activation(OnnxActivation::Tanh),
        ]
    }
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (y, _) = self.lstm.forward(x, None); // [N, T, 10]
        let (y, _) = self.gru.forward(y, None); // [N, T, 3]
        y.tanh()
    }
}

/// `fixtures/onnx/unidl_export.json`, written by `gen/gen_onnx.py` after
/// running the exported files in onnxruntime.
#[derive(serde::Deserialize)]
struct OrtRun {
    sha256: String,
    input_shape: Vec<usize>,
    input: Vec<f32>,
    output_shape: Vec<usize>,
    output: Vec<f32>,
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The exported files are byte-identical to the ones onnxruntime ran (their
/// SHA-256 is recorded), and unidl's forward pass matches onnxruntime's
/// output. `UNIDL_WRITE_ONNX_FIXTURES=1` rewrites the files instead (then
/// rerun `gen/gen_onnx.py`).
#[test]
fn onnx_export_matches_onnxruntime() {
    let dev = device();
    let dir = fixtures().join("onnx");
    let cnn = cnn(&dev);
    let rnn = seq(&dev);
    let files = [
        (
            "unidl_cnn",
            onnx::export_sequential(&cnn.layers(), &[2, 3, 8, 8]).unwrap(),
        ),
        (
            "unidl_rnn",
            onnx::export_sequential(&rnn.layers(), &[2, 5, 4]).unwrap(),
        ),
    ];
    if std::env::var_os("UNIDL_WRITE_ONNX_FIXTURES").is_some() {
        for (name, bytes) in &files {
            std::fs::write(dir.join(format!("{name}.onnx")), bytes).unwrap();
        }
        return;
    }
    let text = std::fs::read_to_string(dir.join("unidl_export.json")).unwrap();
    let runs: BTreeMap<String, OrtRun> = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["models"].clone(),
    )
    .unwrap();
    for (name, bytes) in &files {
        let committed = std::fs::read(dir.join(format!("{name}.onnx"))).unwrap();
        assert!(
            committed == *bytes,
            "{name}.onnx: the writer's output changed; regenerate"
        );
        assert_eq!(
            runs[*name].sha256,
            sha256_hex(bytes),
            "{name}: file onnxruntime ran"
        );
    }
    let run = &runs["unidl_cnn"];
    let x = Tensor::<4>::from_data(
        TensorData::new(run.input.clone(), run.input_shape.clone()),
        &dev,
    );
    let y = cnn.forward(x);
    assert_eq!(y.dims().to_vec(), run.output_shape);
    let d = max_diff(&y.into_data().try_to_vec::<f32>().unwrap(), &run.output);
    assert!(d < 1e-4, "cnn: max |Δ| = {d}");
    let run = &runs["unidl_rnn"];
    let x = Tensor::<3>::from_data(
        TensorData::new(run.input.clone(), run.input_shape.clone()),
        &dev,
    );
    let y = rnn.forward(x);
    assert_eq!(y.dims().to_vec(), run.output_shape);
    let d = max_diff(&y.into_data().try_to_vec::<f32>().unwrap(), &run.output);
    assert!(d < 1e-4, "rnn: max |Δ| = {d}");

    // The reader gets the writer's initializers back.
    let back = onnx::read_onnx_initializers(dir.join("unidl_cnn.onnx")).unwrap();
    let w = &back.tensors["conv0_weight"];
    assert_eq!(w.shape, [4, 3, 3, 3]);
    assert_eq!(
        w.data.to_f32(),
        cnn.conv
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    );
}

/// SHA-256 (FIPS 180-4), for checking which file a script validated.
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_known_answer() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// Initializers of the Keras model exported by tf2onnx equal the weights the
/// Keras reader + rules give (conv OIHW, dense `[in, out]`, attention
/// `[E, heads·head_dim]`), and tf2onnx's LSTM `W` is unidl's `weight_ih` with
/// the gates in ONNX's i, o, f, c order.
#[test]
fn onnx_initializers_of_the_keras_export_match_the_keras_weights() {
    let onnx = onnx::read_onnx_initializers(fixtures().join("onnx/keras_ref.onnx")).unwrap();
    assert_eq!(onnx.framework, unidl_interop::Framework::Onnx);
    let keras = keras::read_keras(fixtures().join("keras/ref.keras")).unwrap();
    let unidl = keras::keras_to_unidl(&keras).unwrap();
    for (onnx_key, unidl_key) in [
        ("ref_1/conv_1/convolution/ReadVariableOp:0", "conv.weight"),
        ("ref_1/fc_1/Cast/ReadVariableOp:0", "fc.weight"),
        ("ref_1/emb_1/GatherV2/ReadVariableOp:0", "emb.weight"),
        ("ref_1/attn_1/query_1/Reshape:0", "attn.query.weight"),
        (
            "ref_1/attn_1/attention_output_1/Reshape_1:0",
            "attn.output.weight",
        ),
    ] {
        assert_eq!(
            onnx.tensors[onnx_key], unidl.tensors[unidl_key],
            "{onnx_key}"
        );
    }
    let w = &onnx.tensors["W0__30"];
    assert_eq!(w.shape, [1, 48, 16]);
    let ih = unidl.tensors["lstm.layers.0.forward.weight_ih"]
        .data
        .to_f32();
    let gate = |g: usize| &ih[g * 12 * 16..(g + 1) * 12 * 16];
    let iofc: Vec<f32> = [0, 3, 1, 2]
        .iter()
        .flat_map(|&g| gate(g).to_vec())
        .collect();
    assert_eq!(w.data.to_f32(), iofc);
    // Integer initializers come through as i64.
    assert!(matches!(
        onnx.tensors["const_fold_opt__104"].data,
        HostData::I64(_)
    ));
}

#[test]
fn onnx_reader_typed_fields_and_malformed_files() {
    let dir = fixtures().join("onnx");
    let typed = onnx::read_onnx_initializers(dir.join("typed_fields.onnx")).unwrap();
    assert_eq!(typed.tensors["i"].data, HostData::I64(vec![1, -2, 3]));
    assert_eq!(typed.tensors["f"].shape, [2, 2]);
    assert_eq!(
        typed.tensors["f"].data,
        HostData::F32(vec![0.5, 1.5, -2.0, 4.0])
    );
    match onnx::read_onnx_initializers(dir.join("external_data.onnx")) {
        Err(InteropError::Unsupported { reason, .. }) => {
            assert!(
                reason.contains("`w`") && reason.contains("external"),
                "{reason}"
            )
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    match onnx::read_onnx_initializers(dir.join("string_init.onnx")) {
        Err(InteropError::Unsupported { reason, .. }) => {
            assert!(reason.contains("`names`"), "{reason}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    match onnx::read_onnx_initializers(dir.join("short_raw.onnx")) {
        Err(InteropError::Corrupt { reason, .. }) => {
            assert!(reason.contains("raw_data"), "{reason}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let cut = truncated_copy(&dir.join("unidl_rnn.onnx"), "cut.onnx", 0.6);
    assert!(matches!(
        onnx::read_onnx_initializers(&cut),
        Err(InteropError::Corrupt { path, .. }) if path == cut
    ));
    assert!(matches!(
        onnx::read_onnx_initializers(dir.join("absent.onnx")),
        Err(InteropError::NotFound { .. })
    ));
}

/// Shapes the writer cannot express are refused with the layer named.
#[test]
fn onnx_writer_rejects_inconsistent_layers() {
    use unidl_interop::HostTensor;
    let bad = OnnxLayer::Conv2d {
        weight: HostTensor {
            shape: vec![4, 3, 3],
            data: HostData::F32(vec![0.0; 36]),
        },
        bias: None,
        stride: [1, 1],
        padding: [0; 4],
        dilation: [1, 1],
        groups: 1,
    };
    match onnx::export_sequential(&[bad], &[1, 3, 8, 8]) {
        Err(InteropError::Mapping { key, .. }) => {
            assert!(key.contains("layer 0 (Conv2d)"), "{key}")
        }
        other => panic!("expected Mapping, got {other:?}"),
    }
    let same = unidl_nn::Conv2dConfig::new([3, 4], [3, 3])
        .with_padding(unidl_nn::PaddingConfig2d::Same)
        .init(&device());
    assert!(matches!(
        OnnxLayer::from_conv2d(&same),
        Err(InteropError::Mapping { .. })
    ));
}

/// A protobuf length-delimited field.
fn pb_bytes(field: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    let mut n = payload.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(payload);
    out
}

/// An initializer whose dims multiply past 2^64 (found by the fuzzer, issue
/// 13): the element count overflowed, a panic in debug builds and a wrapped
/// length check in release. It is a corrupt error naming the initializer.
#[test]
fn an_onnx_initializer_whose_dims_overflow_is_a_corrupt_error() {
    // TensorProto { dims: [2^32, 2^32], data_type: FLOAT, name: "w" }
    let mut tensor = Vec::new();
    for _ in 0..2 {
        tensor.extend_from_slice(&[0x08, 0x80, 0x80, 0x80, 0x80, 0x10]); // dims = 2^32
    }
    tensor.extend_from_slice(&[0x10, 0x01]);
    tensor.extend(pb_bytes(8, b"w"));
    let model = pb_bytes(7, &pb_bytes(5, &tensor));
    let p = tmp("dims_overflow").with_extension("onnx");
    std::fs::write(&p, model).unwrap();
    match onnx::read_onnx_initializers(&p) {
        Err(InteropError::Corrupt { reason, .. }) => {
            assert!(
                reason.contains("`w`") && reason.contains("overflow"),
                "{reason}"
            )
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
