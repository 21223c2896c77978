//! U-Net against the paper's network written in PyTorch
//! (`tests/reference/gen_unet.py` → `tests/reference/unet/`): the paper
//! configuration's parameter count (31,030,658); logits, loss and gradients
//! of reduced models (base 4, depth 4) with unpadded and padded
//! convolutions; the tile rule and `segment_any` on any input size;
//! training through the task layer; typed errors.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::ModuleApi;
use unidl_train::SemanticSegmenter;
use unidl_train::task::pixel_cross_entropy;
use unidl_vision::VisionError;
use unidl_vision::segmentation::{UNetConfig, UNetPadding};

use crate::common::{Reference, floats, max_abs, max_diff, pattern01 as pattern, values};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/unet")
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join("unet.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn paper_unet_has_31_030_658_parameters() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    assert_eq!(reference()["paper_params"], 31_030_658);
    let m = UNetConfig::new().init(&dev).unwrap();
    let n: usize = m.get_parameters().iter().map(|(_, t)| t.numel()).sum();
    assert_eq!(n, 31_030_658);
    // the paper's tile: 572 × 572 in, 388 × 388 out
    let cfg = UNetConfig::new();
    assert_eq!(cfg.output_side(572), Some(388));
    assert_eq!(cfg.output_side(570), None);
    assert_eq!(cfg.tile_for(388), (572, 388));
    let same = UNetConfig {
        padding: UNetPadding::Same,
        ..UNetConfig::new()
    };
    assert_eq!(same.output_side(64), Some(64));
    assert_eq!(same.tile_for(60), (64, 64));
}

fn check_case(case: &str) {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let meta = &reference()["cases"][case];
    let config: UNetConfig = serde_json::from_value(meta["config"].clone()).unwrap();
    let r = Reference {
        dir: dir(),
        name: format!("unet_{case}"),
        meta: meta.clone(),
    };
    let io = r.io(&ad);
    let state = unidl_tensor::module::load_state_dict_file(
        &dir().join(format!("unet_{case}.safetensors")),
        &dev,
    )
    .unwrap();
    // PyTorch names equal unidl's (transposed convolutions have the same
    // [in, out, k, k] layout in both)
    let model = config.init(&dev).unwrap().load_state_dict(&state).unwrap();
    let m = model.fork(&ad).train();
    let shape: Vec<usize> = serde_json::from_value(meta["shape"].clone()).unwrap();
    let logits = m
        .forward(pattern([shape[0], shape[1], shape[2], shape[3]], &ad))
        .unwrap();
    let out: Vec<usize> = serde_json::from_value(meta["out"].clone()).unwrap();
    assert_eq!(logits.dims().to_vec(), out);
    let want = floats(&io, "logits");
    let d = max_diff(&values(logits.clone()), &want);
    eprintln!(
        "{case}: logits max |Δ| {d:.2e} (max {:.2e})",
        max_abs(&want)
    );
    assert!(d <= 1e-5 * max_abs(&want));
    let t: Vec<i64> = floats(&io, "target").iter().map(|&v| v as i64).collect();
    let t = Tensor::<3, Int>::from_data(TensorData::new(t, [out[0], out[2], out[3]]), &ad);
    let loss = pixel_cross_entropy(logits, t, None);
    let (got, want) = (values(loss.clone())[0], floats(&io, "loss")[0]);
    eprintln!("{case}: loss {got:.6} vs PyTorch {want:.6}");
    assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0));
    let grads = loss.backward();
    let g = |name: &str| -> Vec<f32> {
        let d = &m.decoder;
        match name {
            "encoder.0.conv1.weight" => values(m.encoder[0].conv1.weight.grad(&grads).unwrap()),
            "encoder.4.conv2.weight" => values(m.encoder[4].conv2.weight.grad(&grads).unwrap()),
            "decoder.0.up.weight" => values(d[0].up.weight.grad(&grads).unwrap()),
            "decoder.3.conv.conv1.bias" => {
                values(d[3].conv.conv1.bias.as_ref().unwrap().grad(&grads).unwrap())
            }
            "head.weight" => values(m.head.weight.grad(&grads).unwrap()),
            other => panic!("no accessor for {other}"),
        }
    };
    for name in reference()["grads"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let want = floats(&io, &format!("grad.{name}"));
        let d = max_diff(&g(name), &want);
        eprintln!(
            "{case}: grad {name}: max |Δ| {d:.2e} (max {:.2e})",
            max_abs(&want)
        );
        assert!(
            d <= 1e-4 * max_abs(&want),
            "{case}: grad {name} differs by {d}"
        );
    }
}

#[test]
fn valid_unet_matches_the_pytorch_definition() {
    check_case("valid");
}

#[test]
fn same_unet_matches_the_pytorch_definition() {
    check_case("same");
}

/// Any input size comes back at its size: mirrored out to the tile (valid)
/// or padded to a multiple of 16 (same); an input the network takes as it
/// is (same padding, 64 × 64) gives exactly the network's logits.
#[test]
fn segment_any_returns_logits_at_the_input_size() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 4);
    for padding in [UNetPadding::Valid, UNetPadding::Same] {
        let m = UNetConfig {
            base_channels: 2,
            in_channels: 3,
            num_classes: 4,
            padding,
            ..UNetConfig::new()
        }
        .init(&dev)
        .unwrap();
        for (h, w) in [(37, 50), (64, 64), (5, 9)] {
            let y = m.segment_any(pattern([1, 3, h, w], &dev)).unwrap();
            assert_eq!(y.dims(), [1, 4, h, w], "{padding:?} {h}x{w}");
        }
        if padding == UNetPadding::Same {
            let x = pattern([1, 3, 64, 64], &dev);
            let direct = values(m.forward(x.clone()).unwrap());
            assert_eq!(values(m.segment_any(x).unwrap()), direct);
        }
        let y = m.segment(pattern([2, 3, 20, 30], &dev)).unwrap();
        assert_eq!(y.dims(), [2, 4, 20, 30]);
        // the wrong channel count is an error naming the shape
        let e = m.segment(pattern([1, 1, 20, 30], &dev)).unwrap_err();
        assert!(e.to_string().contains("3 channels"), "{e}");
    }
    // a size the network cannot pool is an error from `forward`
    let m = UNetConfig {
        base_channels: 2,
        ..UNetConfig::new()
    }
    .init(&dev)
    .unwrap();
    match m.forward(pattern([1, 1, 100, 100], &dev)) {
        Err(VisionError::Input { shape, .. }) => assert_eq!(shape, vec![1, 1, 100, 100]),
        other => panic!("{:?}", other.map(|t| t.dims())),
    }
}

#[test]
fn unet_refuses_bad_configs() {
    let dev = Device::flex();
    for (toml_text, key) in [
        ("num_classes = 0", "num_classes"),
        ("in_channels = 0", "in_channels"),
        ("depth = 0", "depth"),
        ("base_channels = 0", "base_channels"),
        ("dropout = 2.0", "dropout"),
    ] {
        let c: UNetConfig = toml::from_str(toml_text).unwrap();
        match c.init(&dev) {
            Err(VisionError::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{toml_text}: {:?}", other.map(|_| ())),
        }
    }
    let e = toml::from_str::<UNetConfig>("padding = \"full\"").unwrap_err();
    assert!(e.to_string().contains("full"), "{e}");
}

/// `unet` from a run config through the registry.
#[test]
fn a_unet_config_trains_evaluates_and_infers_through_the_registry() {
    crate::detectors::run_route_scored(
        "unet",
        "in_channels = 3\nbase_channels = 4\npadding = \"same\"\n",
        "num_classes = 14",
        "num_classes = 13",
        "miou",
    );
}

/// Twelve Adam steps of a small U-Net (base 8, same padding) on four
/// composite images at 128 × 128: the loss falls.
#[test]
fn unet_trains_on_the_coco_composite() {
    let train = crate::detectors::composite_train();
    let classes = train.classes().len() + 1;
    let cfg = UNetConfig {
        in_channels: 3,
        num_classes: classes,
        base_channels: 8,
        padding: UNetPadding::Same,
        ..UNetConfig::new()
    };
    let losses = crate::deeplabv3::train_segmenter_with(
        |dev| cfg.init(dev).unwrap(),
        classes,
        12,
        3e-3,
        &train,
    );
    eprintln!("small U-Net on 4 composite images: losses {losses:.3?}");
    let first = (losses[0] + losses[1]) / 2.0;
    let last = losses[8..].iter().sum::<f64>() / 4.0;
    assert!(last < 0.7 * first, "loss did not fall: {losses:?}");
}

/// `[task] class_weights` and `dice_weight` through the run layer: a U-Net
/// trains an epoch with both; a weight list of the wrong length, a negative
/// weight or a negative Dice weight is a config error naming the key.
#[test]
fn segmentation_loss_options_train_and_bad_ones_are_named() {
    let _rng = crate::common::seeded(&Device::flex(), 3);
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_vision::register(&mut reg).unwrap();
    let root = crate::detectors::composite();
    let dir = std::env::temp_dir().join(format!("unidl-unet-loss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = |task: &str| {
        format!(
            "seed = 3\n[model]\nname = \"unet\"\nnum_classes = 14\nin_channels = 3\n\
             base_channels = 4\npadding = \"same\"\n[task]\n{task}\n\
             [data]\ntrain = \"{a}\"\nval = \"{a}\"\nimages_dir = \"../images/test\"\nchannels = 3\n\
             [optimizer]\noptimizer_method = \"adam\"\nbase_learningrate = 0.0003\n\
             [trainer]\nepochs = 1\nbatch_size = 2\noutput_dir = \"run\"\nprogress = false\n",
            a = root.join("annotations/test.json").display()
        )
    };
    let cfg = dir.join("unet.toml");
    let weights = format!("[0.2{}]", ", 1.0".repeat(13));
    std::fs::write(
        &cfg,
        config(&format!("class_weights = {weights}\ndice_weight = 1.0")),
    )
    .unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let csv = std::fs::read_to_string(dir.join("run/epochs.csv")).unwrap();
    assert!(csv.lines().count() >= 2, "{csv}");
    for (task, want) in [
        ("class_weights = [1.0, 2.0]", "class_weights: 2 values"),
        (
            &*format!("class_weights = [-1.0{}]", ", 1.0".repeat(13)),
            "finite and ≥ 0",
        ),
        ("dice_weight = -0.5", "dice_weight"),
    ] {
        std::fs::write(&cfg, config(task)).unwrap();
        let e = unidl_run::train_config(&reg, &cfg, Some("flex"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{task}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
