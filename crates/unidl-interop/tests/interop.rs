//! Integration tests of the PyTorch, PaddlePaddle and MindSpore readers, the
//! mapping layer and the safetensors writer; parity on every compiled-in CPU
//! back-end (flex, and ndarray/tch under `cargo xtask test`).
//!
//! Fixtures come from `tests/fixtures/gen/gen_{pytorch,paddle,mindspore}.py`
//! (committed, with the framework versions in each `io.json`).

mod reference_model;

use std::path::{Path, PathBuf};

use reference_model::{Fixture, RefModel};
use unidl_backend::Device;
use unidl_interop::mapping::{MappingRules, load_into};
use unidl_interop::{Checkpoint, Framework, InteropError, default_rules};

fn device() -> Device {
    Device::flex()
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Loads `ckpt` into a fresh reference model with the framework's default
/// rules, strictly, and returns the largest logit difference.
/// On every compiled-in CPU back-end (`reference_model::cpu_devices`).
fn parity(ckpt: &Checkpoint, io: &Fixture) -> f32 {
    let mut worst = 0f32;
    for (name, dev) in unidl_backend::cpu_devices() {
        let rules = default_rules(ckpt.framework).unwrap();
        let eps = rules.bn_epsilon.unwrap();
        assert_eq!(eps, io.bn_epsilon, "reported epsilon is the framework's");
        let model = RefModel::new(&dev, eps);
        let (model, report) = load_into(model, ckpt, &rules, true)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", ckpt.source.display()));
        assert!(report.load.is_clean(), "{report}");
        let d = io.max_abs_diff(&model, &dev);
        assert!(
            d < 1e-4,
            "{name}: {}: max |diff| = {d}",
            ckpt.source.display()
        );
        worst = worst.max(d);
    }
    worst
}

#[test]
fn reference_model_output_shape() {
    let dev = device();
    let m = RefModel::new(&dev, 1e-5);
    let x = burn::tensor::Tensor::<4>::zeros([2, 3, 16, 16], &dev);
    let t = burn::tensor::Tensor::<2, burn::tensor::Int>::zeros([2, 6], &dev);
    assert_eq!(m.forward(x, t).dims(), [2, 5]);
}

#[test]
fn pytorch_zip_matches_torch_logits() {
    let ckpt = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    assert_eq!(ckpt.framework, Framework::PyTorch);
    assert_eq!(ckpt.tensors["attn.in_proj_weight"].shape, vec![36, 12]);
    let io = Fixture::load(&fixture("pytorch/io.json"));
    let diff = parity(&ckpt, &io);
    assert!(diff < 1e-4, "max |diff| = {diff}");
}

#[test]
fn pytorch_legacy_and_safetensors_equal_zip() {
    let zip = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    let legacy = unidl_interop::read_pytorch(&fixture("pytorch/ref_legacy.pt")).unwrap();
    let st = unidl_interop::read_pytorch(&fixture("pytorch/ref.safetensors")).unwrap();
    assert_eq!(zip.tensors, legacy.tensors);
    assert_eq!(zip.tensors, st.tensors);
    assert_eq!(zip.tensors.len(), 18);
}

#[test]
fn hostile_pickle_is_refused_naming_the_global() {
    let err = unidl_interop::read_pytorch(&fixture("pytorch/hostile.pt")).unwrap_err();
    match &err {
        InteropError::Unsupported { reason, .. } => {
            assert!(reason.contains("posix.system"), "{reason}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn truncated_zip_is_a_corrupt_error() {
    let bytes = std::fs::read(fixture("pytorch/ref.pt")).unwrap();
    let dir = std::env::temp_dir().join(format!("unidl-interop-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("truncated.pt");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let err = unidl_interop::read_pytorch(&p).unwrap_err();
    assert!(
        matches!(err, InteropError::Corrupt { ref path, .. } if path == &p),
        "{err:?}"
    );
    let missing = unidl_interop::read_pytorch(&dir.join("absent.pt")).unwrap_err();
    assert!(
        matches!(missing, InteropError::NotFound { .. }),
        "{missing:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `cyclic.weights.h5` is `keras/ref.weights.h5` with a few bytes changed
/// (found by a mutation run) so that a layer group links back to its
/// ancestor. The group walk recursed until the stack overflowed — an abort
/// that took the whole process down; it is now a typed error naming the file.
#[test]
fn a_keras_file_whose_groups_form_a_cycle_is_a_corrupt_error() {
    let p = fixture("keras/cyclic.weights.h5");
    let err = unidl_interop::keras::read_keras(&p).unwrap_err();
    assert!(
        matches!(err, InteropError::Corrupt { ref path, .. } if path == &p),
        "{err:?}"
    );
    assert!(err.to_string().contains("cycle"), "{err}");
}

#[test]
fn strict_load_reports_every_mismatch() {
    let dev = device();
    let mut ckpt = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    ckpt.tensors.remove("fc.bias");
    let extra = ckpt.tensors["conv.bias"].clone();
    ckpt.tensors.insert("head.bias".into(), extra);
    let rules = default_rules(Framework::PyTorch).unwrap();
    let err = load_into(RefModel::new(&dev, 1e-5), &ckpt, &rules, true).unwrap_err();
    match err {
        InteropError::Load { report, .. } => {
            assert_eq!(report.missing, vec!["fc.bias".to_string()]);
            assert_eq!(report.unexpected, vec!["head.bias".to_string()]);
        }
        other => panic!("expected Load, got {other:?}"),
    }
    // Lenient: the rest loads and the report lists the same keys.
    let (_, report) = load_into(RefModel::new(&dev, 1e-5), &ckpt, &rules, false).unwrap();
    assert_eq!(report.load.missing, vec!["fc.bias".to_string()]);
    assert_eq!(report.load.loaded.len(), 20);
    // Without the Linear transpose rule the fc weight has the wrong shape.
    let no_transpose = {
        let mut r = rules.clone();
        r.layouts.clear();
        r
    };
    let ckpt = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    let (_, report) = load_into(RefModel::new(&dev, 1e-5), &ckpt, &no_transpose, false).unwrap();
    assert!(
        report
            .load
            .shape_mismatch
            .contains(&("fc.weight".to_string(), vec![20, 5], vec![5, 20])),
        "{report}"
    );
}

#[test]
fn user_rules_from_toml_strip_a_prefix() {
    let dev = device();
    let mut ckpt = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    ckpt.tensors = ckpt
        .tensors
        .into_iter()
        .map(|(k, v)| (format!("module.backbone.{k}"), v))
        .collect();
    let user = MappingRules::from_toml(
        r#"
        [[rename]]
        pattern = "^module\\.backbone\\.(.*)$"
        replace = "$1"
        "#,
    )
    .unwrap();
    let rules = user.then(default_rules(Framework::PyTorch).unwrap());
    let io = Fixture::load(&fixture("pytorch/io.json"));
    let (model, report) = load_into(RefModel::new(&dev, 1e-5), &ckpt, &rules, true).unwrap();
    assert!(report.load.is_clean());
    assert!(io.max_abs_diff(&model, &dev) < 1e-4);
    let bad = MappingRules::from_toml("[[rename]]\npatern = \"x\"\nreplace = \"y\"\n").unwrap_err();
    assert!(bad.to_string().contains("patern"), "{bad}");
}

#[test]
fn paddle_pdparams_matches_paddle_logits() {
    let ckpt = unidl_interop::read_pdparams(&fixture("paddle/ref.pdparams")).unwrap();
    assert_eq!(ckpt.framework, Framework::Paddle);
    // Paddle's Linear is [in, out], as Burn's: no transpose.
    assert_eq!(ckpt.tensors["fc.weight"].shape, vec![20, 5]);
    let io = Fixture::load(&fixture("paddle/io.json"));
    let diff = parity(&ckpt, &io);
    assert!(diff < 1e-4, "max |diff| = {diff}");
}

#[test]
fn paddle_file_with_a_foreign_global_is_refused() {
    // A protocol-2 pickle: {'w': builtins.eval('1')}: GLOBAL, args, REDUCE.
    let mut p = vec![0x80, 2, b'}', b'q', 0, b'X', 1, 0, 0, 0, b'w'];
    p.extend_from_slice(b"cbuiltins\neval\n");
    p.extend_from_slice(&[b'X', 1, 0, 0, 0, b'1', 0x85, b'R', b's', b'.']);
    let dir = std::env::temp_dir().join(format!("unidl-interop-pd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("evil.pdparams");
    std::fs::write(&path, &p).unwrap();
    let err = unidl_interop::read_pdparams(&path).unwrap_err();
    assert!(
        matches!(&err, InteropError::Unsupported { reason, .. } if reason.contains("builtins.eval")),
        "{err:?}"
    );
    // A wrong NumPy dtype (complex) is refused with the dtype named.
    let good = std::fs::read(fixture("paddle/ref.pdparams")).unwrap();
    let pos = good.windows(4).position(|w| w == b"\x8c\x02f4").unwrap();
    let mut bad = good.clone();
    bad[pos + 2..pos + 4].copy_from_slice(b"c8");
    std::fs::write(&path, &bad).unwrap();
    let err = unidl_interop::read_pdparams(&path).unwrap_err();
    assert!(
        matches!(&err, InteropError::Unsupported { reason, .. } if reason.contains("c8")),
        "{err:?}"
    );
    // Truncated: a typed error, no panic.
    std::fs::write(&path, &good[..good.len() / 3]).unwrap();
    let err = unidl_interop::read_pdparams(&path).unwrap_err();
    assert!(matches!(err, InteropError::Corrupt { .. }), "{err:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mindspore_ckpt_matches_mindspore_logits() {
    let ckpt = unidl_interop::read_mindspore(&fixture("mindspore/ref.ckpt")).unwrap();
    assert_eq!(ckpt.framework, Framework::MindSpore);
    assert_eq!(ckpt.tensors["fc.weight"].shape, vec![5, 20]);
    let io = Fixture::load(&fixture("mindspore/io.json"));
    let diff = parity(&ckpt, &io);
    assert!(diff < 1e-4, "max |diff| = {diff}");
}

#[test]
fn malformed_mindspore_files_give_typed_errors() {
    let good = std::fs::read(fixture("mindspore/ref.ckpt")).unwrap();
    let dir = std::env::temp_dir().join(format!("unidl-interop-ms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.ckpt");
    // Truncated in the middle of a tensor.
    std::fs::write(&path, &good[..good.len() - 7]).unwrap();
    let err = unidl_interop::read_mindspore(&path).unwrap_err();
    assert!(matches!(err, InteropError::Corrupt { .. }), "{err:?}");
    // Wrong dtype name: "Float32" → "Complex" (same length keeps the framing).
    let pos = good.windows(7).position(|w| w == b"Float32").unwrap();
    let mut bad = good.clone();
    bad[pos..pos + 7].copy_from_slice(b"Complex");
    std::fs::write(&path, &bad).unwrap();
    let err = unidl_interop::read_mindspore(&path).unwrap_err();
    assert!(
        matches!(&err, InteropError::Unsupported { reason, .. } if reason.contains("Complex") && reason.contains("conv.weight")),
        "{err:?}"
    );
    // dtype with a different width than the content: "Float32" → "Float64".
    bad[pos..pos + 7].copy_from_slice(b"Float64");
    std::fs::write(&path, &bad).unwrap();
    let err = unidl_interop::read_mindspore(&path).unwrap_err();
    assert!(
        matches!(&err, InteropError::Corrupt { reason, .. } if reason.contains("conv.weight")),
        "{err:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// unidl → safetensors under PyTorch names. The MindSpore checkpoint is read,
/// mapped into the reference model and written back out; the bytes must equal
/// the committed file that `gen/check_writer.py` loaded into `torch` with a
/// strict `load_state_dict` and ran (its record `writer/check.json` holds the
/// file's sha256 and the logit difference to MindSpore's).
#[test]
fn writer_output_loads_in_torch() {
    let dev = device();
    let ckpt = unidl_interop::read_mindspore(&fixture("mindspore/ref.ckpt")).unwrap();
    let rules = default_rules(Framework::MindSpore).unwrap();
    let (model, _) = load_into(RefModel::new(&dev, 1e-5), &ckpt, &rules, true).unwrap();
    let committed = fixture("writer/from_mindspore.safetensors");
    let out = std::env::temp_dir().join(format!("unidl-writer-{}.safetensors", std::process::id()));
    unidl_interop::save_pytorch_safetensors(&model, &out).unwrap();
    let written = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).ok();
    if std::env::var_os("UNIDL_REGEN_WRITER").is_some() {
        // Regenerating is never a pass: the new file has not been checked yet.
        std::fs::write(&committed, &written).unwrap();
        panic!(
            "wrote {}; now run gen/check_writer.py with the torch venv and rerun this test without UNIDL_REGEN_WRITER",
            committed.display()
        );
    }
    assert_eq!(
        written,
        std::fs::read(&committed).unwrap(),
        "writer output changed: rerun with UNIDL_REGEN_WRITER=1, then gen/check_writer.py"
    );
    let check: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("writer/check.json")).unwrap())
            .unwrap();
    // The torch check is about these very bytes.
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&written)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(
        check["sha256"].as_str(),
        Some(sha.as_str()),
        "check.json is about another file: rerun gen/check_writer.py"
    );
    assert_eq!(check["pass"], serde_json::Value::Bool(true));
    assert!(check["max_abs_diff_vs_mindspore_logits"].as_f64().unwrap() < 1e-4);
    // Same names and shapes as torch's own state dict of the reference model.
    let torch_sd = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    let ours = unidl_interop::read_safetensors(&committed, Framework::PyTorch).unwrap();
    let shapes = |c: &unidl_interop::Checkpoint| -> Vec<(String, Vec<usize>)> {
        c.tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.shape.clone()))
            .collect()
    };
    assert_eq!(shapes(&ours), shapes(&torch_sd));
    let keys: Vec<String> = check["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ours.tensors.keys().cloned().collect::<Vec<_>>());
    // And reading it back through the PyTorch rules gives the same model outputs.
    let io = Fixture::load(&fixture("mindspore/io.json"));
    assert!(
        parity(
            &ours,
            &Fixture {
                bn_epsilon: 1e-5,
                ..io
            }
        ) < 1e-4
    );
}

fn host(shape: &[usize]) -> unidl_interop::HostTensor {
    let n: usize = shape.iter().product();
    unidl_interop::HostTensor::new(
        shape.to_vec(),
        unidl_interop::HostData::F32((0..n).map(|i| i as f32).collect()),
        "t",
    )
    .unwrap()
}

fn values(t: &unidl_interop::HostTensor) -> Vec<f32> {
    t.data.to_f32()
}

#[test]
fn layout_rules_convert_each_axis_correctly() {
    use unidl_interop::Layout;
    // Transpose: [2, 3] → [3, 2].
    let t = Layout::Transpose
        .apply(&host(&[2, 3]), "fc.weight")
        .unwrap();
    assert_eq!(t.shape, vec![3, 2]);
    assert_eq!(values(&t), vec![0., 3., 1., 4., 2., 5.]);
    // HWIO [kh, kw, i, o] → OIHW: element (h, w, i, o) lands at (o, i, h, w).
    let k = host(&[2, 3, 4, 5]);
    let o = Layout::HwioToOihw.apply(&k, "conv.kernel").unwrap();
    assert_eq!(o.shape, vec![5, 4, 2, 3]);
    let (h, w, i, oc) = (1, 2, 3, 4);
    let src = ((h * 3 + w) * 4 + i) * 5 + oc;
    let dst = ((oc * 4 + i) * 2 + h) * 3 + w;
    assert_eq!(values(&o)[dst], src as f32);
    // and back.
    assert_eq!(Layout::OihwToHwio.apply(&o, "k").unwrap(), k);
    // Gates: Keras GRU z, r, h → PyTorch r, z, n along the last axis of [I, 3H].
    let g = Layout::Gates {
        from: "zrh".into(),
        to: "rzn".into(),
        axis: 1,
    }
    .apply(&host(&[1, 6]), "gru.kernel")
    .unwrap();
    assert_eq!(values(&g), vec![2., 3., 0., 1., 4., 5.]);
    // Keras LSTM i, f, c, o is PyTorch's i, f, g, o: unchanged.
    let same = Layout::Gates {
        from: "ifco".into(),
        to: "ifgo".into(),
        axis: 0,
    }
    .apply(&host(&[8, 2]), "lstm")
    .unwrap();
    assert_eq!(same, host(&[8, 2]));
    // Bad inputs are typed errors naming the key.
    let err = Layout::HwioToOihw
        .apply(&host(&[3, 3]), "dense.kernel")
        .unwrap_err();
    assert!(matches!(&err, InteropError::Mapping { key, .. } if key == "dense.kernel"));
    let err = Layout::Gates {
        from: "ifgo".into(),
        to: "ifgx".into(),
        axis: 0,
    }
    .apply(&host(&[8]), "lstm.bias")
    .unwrap_err();
    assert!(matches!(err, InteropError::Mapping { .. }));
}

#[test]
fn qkv_split_and_bn_names_follow_the_rules() {
    let dev = device();
    let ckpt = unidl_interop::read_pytorch(&fixture("pytorch/ref.pt")).unwrap();
    let rules = default_rules(Framework::PyTorch).unwrap();
    let types = unidl_interop::mapping::module_types(&RefModel::new(&dev, 1e-5));
    assert_eq!(types["bn"], "BatchNorm");
    assert_eq!(types["fc"], "Linear");
    let (mapped, log) = unidl_interop::mapping::map_checkpoint(&ckpt, &rules, &types).unwrap();
    // in_proj_weight [36, 12] rows q, k, v, each [out, in], then transposed to [in, out].
    let w = &ckpt.tensors["attn.in_proj_weight"];
    let rows = values(w);
    let k = &mapped["attn.key.weight"];
    assert_eq!(k.shape, vec![12, 12]);
    // key.weight[in = 3, out = 5] = in_proj_weight[12 + 5, 3].
    assert_eq!(values(k)[3 * 12 + 5], rows[(12 + 5) * 12 + 3]);
    assert_eq!(
        values(&mapped["attn.value.bias"]),
        values(&ckpt.tensors["attn.in_proj_bias"])[24..].to_vec()
    );
    assert!(mapped.contains_key("bn.gamma") && mapped.contains_key("bn.beta"));
    assert!(mapped.contains_key("lstm.layers.0.forward.weight_ih"));
    assert_eq!(log.ignored, vec!["bn.num_batches_tracked".to_string()]);
    assert!(
        log.converted
            .contains(&("fc.weight".to_string(), "transpose".to_string()))
    );
    // A `weight` outside a BatchNorm is not renamed to gamma.
    assert!(mapped.contains_key("conv.weight"));
}

/// A safetensors file whose header length has 0x80 as its low byte starts
/// with the same byte as a pickle stream; `read_pytorch` must still read it as
/// safetensors (found on torchvision's resnet50 state dict).
#[test]
fn read_pytorch_tells_safetensors_from_a_legacy_pickle() {
    let mut header = String::from(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#);
    while header.len() < 0x80 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    assert_eq!(bytes[0], 0x80);
    bytes.extend_from_slice(header.as_bytes());
    for v in [1.5f32, -2.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let path = std::env::temp_dir().join(format!("unidl-st80-{}.safetensors", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let ckpt = unidl_interop::read_pytorch(&path);
    let _ = std::fs::remove_file(&path);
    let ckpt = ckpt.unwrap();
    assert_eq!(ckpt.tensors["w"].data.to_f32(), vec![1.5, -2.0]);
}

// ------------------------------------------- crafted files (issue 13 fuzzing)

fn unpickle_plain(bytes: &[u8]) -> unidl_interop::Result<unidl_interop::pickle::Value> {
    let path = Path::new("crafted.pkl");
    unidl_interop::pickle::unpickle(bytes, path, unidl_interop::pickle::no_persistent_load(path))
        .map(|(v, _)| v)
}

/// A million nested lists (`]` a million times, then `a` to put each into
/// the one below) took the unpickler's recursive drop past the end of the
/// stack: an abort. Nesting is bounded now.
#[test]
fn a_pickle_nesting_lists_a_million_deep_is_a_corrupt_error() {
    let n = 1_000_000;
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b']', n));
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    let err = unpickle_plain(&p).unwrap_err();
    assert!(
        matches!(&err, InteropError::Corrupt { reason, .. } if reason.contains("nested deeper")),
        "{err}"
    );
    // A nesting a state dict could have still reads.
    let mut p = b"\x80\x02".to_vec();
    p.extend(std::iter::repeat_n(b']', 20));
    p.extend(std::iter::repeat_n(b'a', 19));
    p.push(b'.');
    assert!(unpickle_plain(&p).is_ok());
}

/// `DUP` then `APPEND` copies a list into itself: 64 pairs of bytes would
/// build 2^64 nodes. The copies are bounded by the pickle's size.
#[test]
fn a_pickle_that_doubles_itself_is_a_corrupt_error_not_an_exhausted_memory() {
    let mut p = b"\x80\x02]".to_vec();
    for _ in 0..64 {
        p.extend_from_slice(b"2a");
    }
    p.push(b'.');
    let err = unpickle_plain(&p).unwrap_err();
    assert!(
        matches!(&err, InteropError::Corrupt { reason, .. } if reason.contains("copies exceed")),
        "{err}"
    );
    // The same through the memo (`PUT`/`GET`): each level holds ten copies
    // of the one below.
    let mut p = b"\x80\x02N".to_vec();
    for level in 0..12u8 {
        p.extend_from_slice(&[b'q', level, b'0', b'(']);
        for _ in 0..10 {
            p.extend_from_slice(&[b'h', level]);
        }
        p.push(b'l');
    }
    p.push(b'.');
    let err = unpickle_plain(&p).unwrap_err();
    assert!(err.to_string().contains("copies exceed"), "{err}");
}

/// A NumPy array whose shape's product overflows: a multiplication overflow
/// panic in debug builds, a wrapped (wrong) length check in release.
#[test]
fn a_numpy_shape_whose_product_overflows_is_a_corrupt_error() {
    let mut p = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01"
        .to_vec();
    for _ in 0..2 {
        p.extend_from_slice(b"\x8a\x05\x00\x00\x00\x00\x01"); // 2^32
    }
    p.extend_from_slice(b"\x86cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R\x89C\x00tb.");
    let err = unpickle_plain(&p).unwrap_err();
    assert!(
        matches!(&err, InteropError::Corrupt { reason, .. } if reason.contains("overflows")),
        "{err}"
    );
}

/// A legacy `torch.save` file of one tensor `w` over a one-element float
/// storage, with the view `size`/`stride` given.
fn legacy_torch_file(size: &[u8], stride: &[u8]) -> Vec<u8> {
    let magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    let mut f = b"\x80\x02\x8a\x0a".to_vec();
    f.extend_from_slice(&magic);
    f.extend_from_slice(b".\x80\x02M\xe9\x03.\x80\x02}.");
    f.extend_from_slice(b"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(");
    f.extend_from_slice(
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ",
    );
    f.extend_from_slice(b"K\x00");
    f.extend_from_slice(size);
    f.extend_from_slice(stride);
    f.extend_from_slice(b"\x89tRu.");
    f.extend_from_slice(b"\x80\x02](X\x01\x00\x00\x000e.");
    f.extend_from_slice(&1u64.to_le_bytes());
    f.extend_from_slice(&2.5f32.to_le_bytes());
    f
}

/// A view with stride 0 reads its one storage element 2^40 times: the
/// reader allocated the 2^40 indices (8 TiB) and the failed allocation
/// aborted. Overlapping views are bounded now; a small one still reads.
#[test]
fn a_torch_view_expanding_one_element_beyond_the_bound_is_refused() {
    let dir = std::env::temp_dir().join(format!("unidl-interop-expand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("expanded.pt");
    std::fs::write(
        &p,
        legacy_torch_file(b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85", b"K\x00\x85"),
    )
    .unwrap();
    let err = unidl_interop::read_pytorch(&p).unwrap_err();
    assert!(
        matches!(&err, InteropError::Unsupported { reason, .. } if reason.contains("overlapping views")),
        "{err}"
    );
    // size (3,), stride (0,): an expand PyTorch can save; read as three copies.
    std::fs::write(&p, legacy_torch_file(b"K\x03\x85", b"K\x00\x85")).unwrap();
    let ckpt = unidl_interop::read_pytorch(&p).unwrap();
    assert_eq!(ckpt.tensors["w"].data.to_f32(), vec![2.5; 3]);
    // A view whose last position (4 x 2^62) overflows is a corrupt error.
    std::fs::write(
        &p,
        legacy_torch_file(
            b"K\x05\x85",
            b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x85",
        ),
    )
    .unwrap();
    let err = unidl_interop::read_pytorch(&p).unwrap_err();
    assert!(
        matches!(&err, InteropError::Corrupt { reason, .. } if reason.contains("overflows")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
