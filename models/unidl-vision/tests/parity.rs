//! Logits of torchvision models (seeded random weights and running
//! statistics, eval mode) reproduced after loading their state dicts through
//! the torchvision key mapping: within 1e-4 on flex (times the largest
//! logit where that exceeds 1).

use std::path::{Path, PathBuf};

use burn::tensor::Float;
use unidl_backend::Device;
use unidl_tensor::module::load_state_dict_file;
use unidl_vision::torchvision::load_torchvision;
use unidl_vision::{ClassifierConfig, VisionError};

use crate::common::small_ref;

const TOL: f32 = 1e-4;

/// Loads every model of `dir/manifest.json`, runs its input, compares logits.
/// Returns the model names checked.
fn check_dir(dir: &Path) -> Vec<String> {
    let dev = Device::flex();
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut done = Vec::new();
    for (name, entry) in manifest["models"].as_object().unwrap() {
        let cfg: ClassifierConfig = serde_json::from_value(entry["config"].clone())
            .unwrap_or_else(|e| panic!("{name}: config: {e}"));
        let model = cfg.init(&dev).unwrap();
        assert_eq!(
            crate::common::count_params(&model) as u64,
            entry["params"].as_u64().unwrap(),
            "{name}: parameter count"
        );
        let (model, report) =
            load_torchvision(model, &dir.join(format!("{name}.safetensors")), &dev)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            report.is_clean() && !report.loaded.is_empty(),
            "{name}: {report}"
        );
        let io = load_state_dict_file(&dir.join(format!("{name}.io.safetensors")), &dev).unwrap();
        let x = io["input"].clone().into_burn::<4, Float>().unwrap();
        model.check_input(&x.dims()).unwrap();
        let want = io["logits"].to_vec_f32().unwrap();
        let got: Vec<f32> = model.forward(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let scale = want.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        eprintln!("{name}: max |Δlogit| = {worst:.2e} (max |logit| {scale:.2})");
        // The reference script damps each residual branch's last BN, so logits
        // stay of order one and an absolute tolerance is meaningful.
        assert!(
            scale < 100.0,
            "{name}: reference logits of {scale} are not of order one"
        );
        assert!(worst <= TOL, "{name}: logits differ by {worst} (> {TOL})");
        done.push(name.clone());
    }
    done
}

#[test]
fn reduced_torchvision_models_give_the_same_logits() {
    let done = check_dir(&small_ref());
    // both ResNet block kinds and stems, VGG with and without BN, EfficientNet
    // with both batch-norm settings
    assert_eq!(done.len(), 6, "{done:?}");
}

/// The full-size variants, from the cache `.ci/run` fills. Without it the
/// test says so and passes, unless `UNIDL_REQUIRE_ZOO_REF=1`.
#[test]
fn full_size_torchvision_models_give_the_same_logits() {
    let require = std::env::var("UNIDL_REQUIRE_ZOO_REF").is_ok_and(|v| v == "1");
    let dir = std::env::var_os("UNIDL_ZOO_REF").map(PathBuf::from);
    let ready = dir.as_ref().filter(|d| d.join("manifest.json").is_file());
    let Some(dir) = ready else {
        let msg = format!(
            "full-size torchvision references not found (UNIDL_ZOO_REF={dir:?}); generate them \
             with `tests/reference/gen_torchvision.py --full` (.ci/run does)"
        );
        assert!(!require, "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let done = check_dir(dir);
    assert_eq!(done.len(), 21, "{done:?}");
}

#[test]
fn a_mismatched_state_dict_is_a_typed_error_naming_the_keys() {
    let dev = Device::flex();
    // resnet50 weights into a resnet18 of the same width
    let cfg: ClassifierConfig =
        toml::from_str("name = \"resnet\"\ndepth = 18\nwidth = 4\nnum_classes = 10").unwrap();
    let e = load_torchvision(
        cfg.init(&dev).unwrap(),
        &small_ref().join("resnet50_w4.safetensors"),
        &dev,
    )
    .unwrap_err();
    let VisionError::Mismatch { report, path } = &e else {
        panic!("{e}")
    };
    assert!(path.ends_with("resnet50_w4.safetensors"));
    assert!(
        report
            .unexpected
            .iter()
            .any(|k| k == "layer1.0.conv3.weight"),
        "{report}"
    );
    assert!(
        report
            .shape_mismatch
            .iter()
            .any(|(k, m, g)| k == "layer1.0.conv1.weight"
                && m == &[4, 4, 3, 3]
                && g == &[4, 4, 1, 1]),
        "{report}"
    );
    assert!(
        !report
            .unexpected
            .iter()
            .any(|k| k.ends_with("num_batches_tracked"))
    );
    let text = e.to_string();
    assert!(
        text.contains("resnet50_w4.safetensors") && text.contains("layer1.0.conv3.weight"),
        "{text}"
    );

    // a truncated file names the file
    let dir = std::env::temp_dir().join(format!("unidl-vision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("truncated.safetensors");
    let bytes = std::fs::read(small_ref().join("vgg13_w8.safetensors")).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let cfg: ClassifierConfig =
        toml::from_str("name = \"vgg\"\ndepth = 13\nwidth = 8\nhidden = 32\nnum_classes = 7")
            .unwrap();
    let e = load_torchvision(cfg.init(&dev).unwrap(), &bad, &dev).unwrap_err();
    assert!(
        matches!(e, VisionError::Checkpoint(_)) && e.to_string().contains("truncated.safetensors"),
        "{e}"
    );
}

/// torchvision publishes `torch.save(state_dict)` zip files: the same
/// weights as a `.pth` (written by `tests/reference/gen_pth.py`, with
/// `num_batches_tracked`) load cleanly and give exactly the logits of the
/// safetensors route, which match torchvision's.
#[test]
fn a_torch_save_pth_loads_like_its_safetensors() {
    let dev = Device::flex();
    let dir = small_ref();
    let cfg: ClassifierConfig =
        toml::from_str("name = \"resnet\"\ndepth = 50\nwidth = 4\nnum_classes = 10").unwrap();
    let (a, ra) = load_torchvision(cfg.init(&dev).unwrap(), &dir.join("resnet50_w4.pth"), &dev)
        .unwrap_or_else(|e| panic!("{e}"));
    let (b, rb) = load_torchvision(
        cfg.init(&dev).unwrap(),
        &dir.join("resnet50_w4.safetensors"),
        &dev,
    )
    .unwrap();
    assert!(ra.is_clean() && ra.loaded == rb.loaded, "{ra}");
    let io = load_state_dict_file(&dir.join("resnet50_w4.io.safetensors"), &dev).unwrap();
    let x = io["input"].clone().into_burn::<4, Float>().unwrap();
    let la: Vec<f32> = a
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let lb: Vec<f32> = b.forward(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(la, lb);
    let want = io["logits"].to_vec_f32().unwrap();
    let worst = la
        .iter()
        .zip(&want)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= TOL, "logits differ by {worst}");

    // a file that is no checkpoint at all is an error naming it
    let bad = std::env::temp_dir().join(format!("unidl-vision-notpth-{}.pth", std::process::id()));
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let e = load_torchvision(cfg.init(&dev).unwrap(), &bad, &dev).unwrap_err();
    let _ = std::fs::remove_file(&bad);
    assert!(
        matches!(e, VisionError::Checkpoint(_)) && e.to_string().contains("notpth"),
        "{e}"
    );
}

#[test]
fn key_mapping_follows_the_documented_table() {
    use unidl_vision::torchvision::TorchvisionNames;
    let dev = Device::flex();
    let r = unidl_vision::classification::ResNetConfig::new(50)
        .with_width(4)
        .init(&dev)
        .unwrap();
    assert_eq!(
        r.torchvision_key("layer1.0.downsample.bn.gamma").unwrap(),
        "layer1.0.downsample.1.weight"
    );
    assert_eq!(
        r.torchvision_key("layer3.2.bn3.running_var").unwrap(),
        "layer3.2.bn3.running_var"
    );
    let v = unidl_vision::classification::VggConfig::new(11, true)
        .with_width(8, 16)
        .init(&dev)
        .unwrap();
    // vgg11_bn: conv0 bn1 relu2 pool3 | conv4 bn5 relu6 pool7 | conv8 …
    assert_eq!(
        v.torchvision_key("features.1.conv.weight").unwrap(),
        "features.4.weight"
    );
    assert_eq!(
        v.torchvision_key("features.2.bn.beta").unwrap(),
        "features.9.bias"
    );
    assert_eq!(v.torchvision_key("fc3.bias").unwrap(), "classifier.6.bias");
    let e = unidl_vision::classification::EfficientNetConfig::new(
        unidl_vision::classification::EfficientNetVariant::B0,
    )
    .with_scaling(0.25, 0.34)
    .init(&dev)
    .unwrap();
    assert_eq!(
        e.torchvision_key("stages.0.0.se.fc1.weight").unwrap(),
        "features.1.0.block.1.fc1.weight"
    );
    assert_eq!(
        e.torchvision_key("stages.1.0.project.bn.running_mean")
            .unwrap(),
        "features.2.0.block.3.1.running_mean"
    );
    assert_eq!(
        e.torchvision_key("head.conv.weight").unwrap(),
        "features.8.0.weight"
    );
}
