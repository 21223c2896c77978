//! HRNet against timm 1.0.31 (`tests/reference/gen_hrnet.py` →
//! `tests/reference/hrnet/`): parameter counts of HRNet-W32 (timm's body,
//! the paper's pose network); on a reduced model (branch widths 8–64, one
//! block and one module per stage) loaded from timm's state dict, the stem
//! and stage-4 features and the heatmaps in evaluation mode, and in
//! training mode the heatmaps, the loss, gradients and running statistics;
//! typed errors.

use burn::module::Module;
use unidl_backend::Device;
use unidl_tensor::module::ModuleApi;
use unidl_vision::VisionError;
use unidl_vision::keypoints::{FinalFuse, HrNet, HrNetConfig};
use unidl_vision::torchvision::TorchvisionNames;

use crate::common::{Reference, check_close, floats, pattern01 as pattern, rel_l2, values};

fn reference() -> Reference {
    Reference::committed("hrnet")
}

fn model_of(r: &Reference, dev: &Device) -> HrNet {
    r.model(dev, |c: &HrNetConfig, d| c.init(d).unwrap())
}

#[test]
fn hrnet_w32_has_the_papers_and_timms_parameter_counts() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    let r = reference();
    let counts = &r.meta["counts"];
    let pose = crate::common::count_params(&HrNetConfig::new(17).init(&dev).unwrap());
    assert_eq!(
        pose as u64,
        counts["pose_hrnet_w32_17_joints"].as_u64().unwrap()
    );
    assert_eq!(pose, 28_536_113, "the paper's 28.5 M");
    let all = HrNetConfig {
        final_fuse: FinalFuse::All,
        ..HrNetConfig::new(17)
    };
    let n = crate::common::count_params(&all.init(&dev).unwrap());
    // timm's body plus the 1x1 head (32 · 17 + 17)
    assert_eq!(
        n as u64,
        counts["timm_hrnet_w32_features"].as_u64().unwrap() + 32 * 17 + 17
    );
    let reduced = crate::common::count_params(&model_of(&r, &dev));
    assert_eq!(reduced as u64, r.meta["params"].as_u64().unwrap());
}

#[test]
fn reduced_hrnet_matches_timm() {
    let dev = Device::flex();
    let r = reference();
    let io = r.io(&dev);
    let model = model_of(&r, &dev);
    let shape: Vec<usize> = serde_json::from_value(r.meta["shape"].clone()).unwrap();
    let shape = [shape[0], shape[1], shape[2], shape[3]];
    let x = pattern(shape, &dev);
    assert_eq!(values(x.clone()), floats(&io, "x"));

    // evaluation: running statistics
    let (stem, branches) = model.features(x.clone()).unwrap();
    check_close("eval stem", &values(stem), &floats(&io, "eval.f0"), 1e-5);
    for (i, b) in branches.iter().enumerate() {
        check_close(
            &format!("eval branch {i}"),
            &values(b.clone()),
            &floats(&io, &format!("eval.f{}", i + 1)),
            1e-5,
        );
    }
    let heat = model.forward(x.clone()).unwrap();
    assert_eq!(heat.dims(), [2, 5, 16, 16]);
    check_close(
        "eval heatmaps",
        &values(heat),
        &floats(&io, "eval.heatmaps"),
        1e-5,
    );

    // training: batch statistics, the loss, gradients, running statistics
    let ad = dev.clone().autodiff();
    let m = model.fork(&ad).train();
    let heat = m.forward(pattern(shape, &ad)).unwrap();
    check_close(
        "train heatmaps",
        &values(heat.clone()),
        &floats(&io, "train.heatmaps"),
        1e-4,
    );
    let target = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(floats(&io, "train.target"), heat.dims()),
        &ad,
    );
    let loss = (heat - target).powi_scalar(2).mean();
    let got = values(loss.clone())[0];
    let want = floats(&io, "train.loss")[0];
    eprintln!("loss {got:.7} vs timm {want:.7}");
    assert!((got - want).abs() <= 1e-5 * want, "loss {got} vs {want}");
    let grads = loss.backward();
    let s4 = &m.stage4[0];
    let conv = |c: &unidl_nn::Conv2d| c.weight.grad(&grads).map(values);
    let wanted: Vec<(&str, Option<Vec<f32>>)> = vec![
        ("final_layer.weight", conv(&m.final_layer)),
        (
            "final_layer.bias",
            m.final_layer
                .bias
                .as_ref()
                .and_then(|b| b.grad(&grads))
                .map(values),
        ),
        (
            "stage4.0.fuse_layers.0.3.0.weight",
            conv(&s4.fuse_layers[0][3].up.as_ref().unwrap().conv),
        ),
        (
            "stage4.0.fuse_layers.0.1.0.weight",
            conv(&s4.fuse_layers[0][1].up.as_ref().unwrap().conv),
        ),
        (
            "stage4.0.branches.3.0.conv1.weight",
            conv(&s4.branches[3][0].conv1),
        ),
        (
            "stage4.0.branches.2.0.conv2.weight",
            conv(&s4.branches[2][0].conv2),
        ),
        (
            "transition3.3.0.0.weight",
            conv(&m.transition3[3].down.as_ref().unwrap().links[0].conv),
        ),
        (
            "layer1.0.downsample.0.weight",
            conv(&m.layer1[0].downsample.as_ref().unwrap().conv),
        ),
        ("conv1.weight", conv(&m.conv1)),
        ("bn2.weight", m.bn2.inner().gamma.grad(&grads).map(values)),
    ];
    let listed: Vec<&str> = r.meta["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, wanted.iter().map(|w| w.0).collect::<Vec<_>>());
    for (name, g) in wanted {
        let g = g.unwrap_or_else(|| panic!("no gradient for {name}"));
        let want = floats(&io, &format!("train.grad.{name}"));
        let rel = rel_l2(&g, &want);
        eprintln!("grad {name}: relative L2 {rel:.2e}");
        assert!(rel <= 1e-3, "grad {name}: relative L2 {rel}");
    }
    let state = m.state_dict();
    for name in r.meta["stats"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let key = state
            .keys()
            .find(|k| m.torchvision_key(k).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} has no counterpart"));
        check_close(
            &format!("after the step: {name}"),
            &floats(&state, key),
            &floats(&io, &format!("train.{name}")),
            1e-5,
        );
    }
}

#[test]
fn hrnet_refuses_bad_configs_and_inputs() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    for (toml_text, key) in [
        ("joints = 0", "joints"),
        ("width = 0", "width"),
        ("modules = [1, 0, 1]", "modules"),
    ] {
        let c: HrNetConfig = toml::from_str(toml_text).unwrap();
        match c.init(&dev) {
            Err(VisionError::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{toml_text}: expected a config error, got {other:?}"),
        }
    }
    assert!(toml::from_str::<HrNetConfig>("widht = 8").is_err());
    let model = model_of(&reference(), &dev);
    for shape in [[1, 3, 48, 64], [1, 1, 64, 64]] {
        let e = model.forward(pattern(shape, &dev)).unwrap_err();
        assert!(matches!(e, VisionError::Input { .. }), "{e}");
    }
}

/// `name` from a run config (`model_toml`: the `[model]` keys after the
/// name; `data_extra`: more `[data]` lines) through the registry on
/// keypoint crops of the committed COCO composite
/// (`prepare::keypoint_crops`): one epoch, PCK, NME and keypoint AP from
/// `unidl eval`, five joints and a drawn picture from `unidl infer`;
/// `joints_line` replaced by `wrong` is refused naming the key. A check that
/// the route works, not of accuracy.
pub fn keypoint_route(
    name: &str,
    model_toml: &str,
    data_extra: &str,
    joints_line: &str,
    wrong: &str,
) {
    let _rng = crate::common::seeded(&Device::flex(), 3);
    let dir = std::env::temp_dir().join(format!("unidl-{name}-route-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("crops");
    let n = unidl_data::prepare::keypoint_crops(
        &crate::detectors::composite(),
        &data,
        &unidl_data::prepare::KeypointCropOptions::default(),
    )
    .unwrap();
    assert!(n.train > 0 && n.test > 0, "{n:?}");
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_vision::register(&mut reg).unwrap();
    let text = format!(
        "seed = 3\n\
         [model]\nname = \"{name}\"\n{joints_line}\n{model_toml}\n\
         [task]\npck_alpha = 0.1\noks_sigmas = [0.05, 0.05, 0.05, 0.05, 0.05]\n\
         [data]\ntrain = \"{t}\"\nval = \"{v}\"\nimages_dir = \"../images/{{stem}}\"\nchannels = 3\n{data_extra}\n\
         [optimizer]\noptimizer_method = \"adam\"\nbase_learningrate = 0.001\n\
         [trainer]\nepochs = 1\nbatch_size = 8\noutput_dir = \"run\"\nprogress = false\n\
         [eval]\nmetrics = [\"pck\", \"nme\", \"keypoint_ap\"]\n",
        t = data.join("annotations/train.json").display(),
        v = data.join("annotations/test.json").display(),
    );
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, &text).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    unidl_run::eval_config(&reg, &cfg, Some("flex")).unwrap();
    let scores = std::fs::read_to_string(dir.join("run/eval/scores.json")).unwrap();
    for key in ["\"pck\"", "\"nme\"", "\"keypoint_ap\""] {
        assert!(scores.contains(key), "{scores}");
    }
    let first = std::fs::read_dir(data.join("images/test"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let picture = dir.join("drawn.png");
    let out = unidl_run::infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &unidl_run::InferArgs {
            texts: Vec::new(),
            files: vec![first],
            json: true,
            draw: Some(picture.clone()),
            ..unidl_run::InferArgs::default()
        },
    )
    .unwrap();
    assert_eq!(
        out[0]["output"].as_array().map(Vec::len),
        Some(5),
        "{}",
        out[0]
    );
    assert!(picture.is_file());
    std::fs::write(&cfg, text.replace(joints_line, wrong)).unwrap();
    let e = unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap_err();
    let key = wrong.split(' ').next().unwrap();
    assert!(e.to_string().contains(key), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_hrnet_config_trains_evaluates_and_infers_through_the_registry() {
    keypoint_route(
        "hrnet",
        "width = 8\nblocks = 1\nmodules = [1, 1, 1]\nstage1_blocks = 1",
        "",
        "joints = 5",
        "joints = 4",
    );
}
