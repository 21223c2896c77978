//! DeepLabv3 against torchvision 0.24.0 (`tests/reference/gen_deeplabv3.py`
//! → `tests/reference/deeplabv3/`): the standard configuration's parameter
//! count; on a reduced model (ResNet-50 at width 4, dilated, 16-channel
//! ASPP at rates 2/3/4, 5 classes) loaded from torchvision's state dict, the
//! eval-mode logits of both heads, the training-mode logits, loss (main +
//! 0.5 auxiliary, ignore index 255), gradients and running statistics;
//! typed errors; and the full-size model from the CI cache.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::ModuleApi;
use unidl_train::SemanticSegmenter;
use unidl_train::task::pixel_cross_entropy;
use unidl_vision::VisionError;
use unidl_vision::segmentation::{DeepLabV3, DeepLabV3Config};
use unidl_vision::torchvision::load_torchvision;

use crate::common::{
    Reference, check_close as check, floats, max_diff, pattern01 as pattern, rel_l2, values,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/deeplabv3")
}

fn reference(dir: &Path) -> Reference {
    Reference::at(dir, "deeplabv3.json")
}

fn model_of(r: &Reference, dev: &Device) -> DeepLabV3 {
    let mut config: DeepLabV3Config = serde_json::from_value(r.meta["config"].clone()).unwrap();
    // the reference sets the dropouts' p to 0 for its training case
    config.dropout = 0.0;
    config.aux_dropout = 0.0;
    let model = config.init(dev).unwrap();
    let path = r.dir.join(format!("{}.safetensors", r.name));
    let (model, report) = load_torchvision(model, &path, dev).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_clean() && !report.loaded.is_empty(), "{report}");
    model
}

fn compare(r: &Reference, full: bool) {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let io = r.io(&dev);
    let model = model_of(r, &dev);
    let shape: Vec<usize> = serde_json::from_value(r.meta["shape"].clone()).unwrap();
    let shape = [shape[0], shape[1], shape[2], shape[3]];

    // evaluation: running statistics
    let o = model.valid().forward(pattern(shape, &dev));
    let tol = if full { 1e-4 } else { 2e-5 };
    check("eval out", &values(o.out), &floats(&io, "eval/out"), tol);
    check(
        "eval aux",
        &values(o.aux.unwrap()),
        &floats(&io, "eval/aux"),
        tol,
    );

    // training: batch statistics, the two-head loss, gradients, statistics
    let m = model.fork(&ad).train();
    let (out, aux) = m.segment_train(pattern(shape, &ad)).unwrap();
    // batch statistics over few values amplify float32 rounding (see
    // backbone_bn.rs); the logits still agree closely
    check(
        "train out",
        &values(out.clone()),
        &floats(&io, "train/out"),
        5e-4,
    );
    assert_eq!(aux.len(), 1);
    assert_eq!(aux[0].0, 0.5);
    check(
        "train aux",
        &values(aux[0].1.clone()),
        &floats(&io, "train/aux"),
        5e-4,
    );
    let t: Vec<i64> = floats(&io, "target").iter().map(|&v| v as i64).collect();
    let t = Tensor::<3, Int>::from_data(TensorData::new(t, [shape[0], shape[2], shape[3]]), &ad);
    let loss = pixel_cross_entropy(out, t.clone(), Some(255))
        + pixel_cross_entropy(aux[0].1.clone(), t, Some(255)).mul_scalar(0.5);
    let got = values(loss.clone())[0];
    let want = floats(&io, "loss")[0];
    eprintln!("loss {got:.6} vs torchvision {want:.6}");
    assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0));
    let grads = loss.backward();
    for key in r.meta["grads"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let want = floats(&io, &format!("grad/{key}"));
        let got = grad(&m, key, &grads);
        let rel = rel_l2(&got, &want);
        eprintln!(
            "grad {key}: relative L2 {rel:.2e}, max |Δ| {:.2e}",
            max_diff(&got, &want)
        );
        // the whole network in training mode is chaotic at float32
        // (gen_deeplabv3.py: torchvision's own float64 gradients move by
        // 2–6 % under a 1e-6 change of the image): a loose bound that still
        // catches a wrong formula; the heads-alone case below is tight
        let bound = 0.15;
        assert!(rel <= bound, "grad {key}: relative L2 {rel}");
    }
    let sd = m.state_dict();
    for key in r.meta["stats"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        let ours = sd
            .keys()
            .find(|k| {
                unidl_vision::torchvision::TorchvisionNames::torchvision_key(&m, k).as_deref()
                    == Some(key)
            })
            .unwrap_or_else(|| panic!("no buffer maps to {key}"))
            .clone();
        check(
            &format!("after {key}"),
            &crate::common::floats(&sd, &ours),
            &floats(&io, &format!("after/{key}")),
            1e-4,
        );
    }

    // the heads alone in training mode on fixed features: well conditioned
    let fresh = model_of(r, &dev).fork(&ad).train();
    let feat = |k: &str| {
        let v = floats(&io, k);
        let c = v.len() / (shape[0] * (shape[2] / 8) * (shape[3] / 8));
        Tensor::<4>::from_data(
            TensorData::new(v, [shape[0], c, shape[2] / 8, shape[3] / 8]),
            &ad,
        )
    };
    let up = |x: Tensor<4>| {
        burn::tensor::module::interpolate(
            x,
            burn::tensor::ops::InterpolateOptions::new(
                burn::tensor::ops::InterpolateMode::Bilinear,
            )
            .with_align_corners(false)
            .with_output_size([shape[2], shape[3]]),
        )
    };
    let out = up(fresh.classifier.forward(feat("heads/c5")));
    let aux = up(fresh
        .aux_classifier
        .as_ref()
        .unwrap()
        .forward(feat("heads/c4")));
    check(
        "heads out",
        &values(out.clone()),
        &floats(&io, "heads/out"),
        2e-5,
    );
    check(
        "heads aux",
        &values(aux.clone()),
        &floats(&io, "heads/aux"),
        2e-5,
    );
    let t: Vec<i64> = floats(&io, "target").iter().map(|&v| v as i64).collect();
    let t = Tensor::<3, Int>::from_data(TensorData::new(t, [shape[0], shape[2], shape[3]]), &ad);
    let loss = pixel_cross_entropy(out, t.clone(), Some(255))
        + pixel_cross_entropy(aux, t, Some(255)).mul_scalar(0.5);
    let (got, want) = (values(loss.clone())[0], floats(&io, "heads/loss")[0]);
    eprintln!("heads loss {got:.6} vs torchvision {want:.6}");
    assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0));
    let grads = loss.backward();
    for key in r.meta["grads"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        if key.starts_with("backbone.") {
            continue;
        }
        let want = floats(&io, &format!("heads/grad/{key}"));
        let got = grad(&fresh, key, &grads);
        let rel = rel_l2(&got, &want);
        eprintln!("heads grad {key}: relative L2 {rel:.2e}");
        assert!(rel <= 1e-4, "heads grad {key}: relative L2 {rel}");
    }
}

/// The gradient of the parameter torchvision calls `key`.
fn grad(m: &DeepLabV3, key: &str, g: &burn::tensor::Gradients) -> Vec<f32> {
    let h = &m.classifier;
    let aux = m.aux_classifier.as_ref().unwrap();
    let t = match key {
        "classifier.4.weight" => h.out.weight.grad(g),
        "classifier.1.weight" => h.conv.conv.weight.grad(g),
        "classifier.0.project.0.weight" => h.aspp.project.conv.weight.grad(g),
        "classifier.0.convs.1.0.weight" => h.aspp.convs[1].conv.weight.grad(g),
        "classifier.0.convs.4.1.weight" => h.aspp.pooling.conv.weight.grad(g),
        "aux_classifier.4.weight" => aux.out.weight.grad(g),
        "aux_classifier.0.weight" => aux.conv.conv.weight.grad(g),
        "backbone.layer4.2.conv3.weight" => {
            m.backbone.layer4[2].conv3.as_ref().unwrap().weight.grad(g)
        }
        "backbone.layer4.0.conv2.weight" => m.backbone.layer4[0].conv2.weight.grad(g),
        other => panic!("no accessor for {other}"),
    };
    values(t.unwrap_or_else(|| panic!("no gradient for {key}")))
}

#[test]
fn standard_deeplabv3_has_torchvision_parameter_count() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    let meta = reference(&dir()).meta;
    assert_eq!(meta["standard_params"], 42_004_074);
    let count = |m: &DeepLabV3| -> u64 {
        m.get_parameters()
            .iter()
            .map(|(_, t)| t.numel() as u64)
            .sum()
    };
    let with_aux = DeepLabV3Config::new(21).init(&dev).unwrap();
    assert_eq!(count(&with_aux), 42_004_074);
    let mut no_aux = DeepLabV3Config::new(21);
    no_aux.aux = false;
    assert_eq!(
        count(&no_aux.init(&dev).unwrap()),
        meta["standard_params_no_aux"].as_u64().unwrap()
    );
}

#[test]
fn reduced_deeplabv3_matches_torchvision() {
    compare(&reference(&dir()), false);
}

#[test]
fn full_size_deeplabv3_matches_torchvision() {
    let Some(r) =
        crate::common::full_reference("UNIDL_DEEPLABV3_REF", "deeplabv3.json", "gen_deeplabv3.py")
    else {
        return;
    };
    compare(&r, true);
}

#[test]
fn deeplabv3_refuses_bad_configs() {
    let dev = Device::flex();
    let bad = |edit: &dyn Fn(&mut DeepLabV3Config), key: &str| {
        let mut c = DeepLabV3Config::new(3);
        c.backbone.width = 4;
        edit(&mut c);
        match c.init(&dev) {
            Err(VisionError::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {:?}", other.map(|_| ())),
        }
    };
    bad(&|c| c.num_classes = 0, "num_classes");
    bad(&|c| c.aspp_channels = 0, "aspp_channels");
    bad(&|c| c.atrous_rates = vec![], "atrous_rates");
    bad(&|c| c.atrous_rates = vec![6, 0], "atrous_rates");
    bad(&|c| c.dropout = 1.5, "dropout");
    bad(&|c| c.aux_weight = -0.1, "aux_weight");
    bad(
        &|c| c.backbone.depth = 18,
        "backbone.replace_stride_with_dilation",
    );
    bad(&|c| c.backbone.depth = 20, "backbone.depth");
    let e = toml::from_str::<DeepLabV3Config>("num_classes = 3\nasp_channels = 8\n").unwrap_err();
    assert!(e.to_string().contains("asp_channels"), "{e}");
}

/// Twelve Adam steps (1e-2) of a small DeepLabv3 (ResNet-50 at width 4,
/// 16-channel ASPP) on four composite images, their masks as classes (label
/// 0 the background): the loss falls (measured 3.84 → 1.71). The standard configuration (full size)
/// trains two steps on the same images.
#[test]
fn deeplabv3_trains_on_the_coco_composite() {
    let train = crate::detectors::composite_train();
    let classes = train.classes().len() + 1;
    let small: DeepLabV3Config = toml::from_str(&format!(
        "num_classes = {classes}\naspp_channels = 16\natrous_rates = [2, 3, 4]\n\
         [backbone]\ndepth = 50\nwidth = 4\nnorm = \"batch\"\ntrainable_layers = 5\n\
         replace_stride_with_dilation = [false, true, true]\n"
    ))
    .unwrap();
    let losses = train_segmenter(small, 12, 1e-2, &train);
    eprintln!("small DeepLabv3 on 4 composite images: losses {losses:.3?}");
    let first = (losses[0] + losses[1]) / 2.0;
    let last = losses[8..].iter().sum::<f64>() / 4.0;
    assert!(last < 0.7 * first, "loss did not fall: {losses:?}");

    let full = train_segmenter(DeepLabV3Config::new(classes), 2, 1e-4, &train);
    crate::detectors::assert_two_steps_train("standard DeepLabv3", &full);
}

/// `steps` Adam steps of `config`'s model on the composite's first four
/// training images, 128 × 128, through `PixelClassification` (label 0 the
/// background, class `c` label `c + 1`) and the trainer.
fn train_segmenter(
    config: DeepLabV3Config,
    steps: usize,
    lr: f64,
    train: &unidl_data::PreparedDataset,
) -> Vec<f64> {
    let classes = config.num_classes;
    train_segmenter_with(|dev| config.init(dev).unwrap(), classes, steps, lr, train)
}

/// [`train_segmenter`] for any segmentation model `build` makes.
pub fn train_segmenter_with<M>(
    build: impl FnOnce(&Device) -> M,
    num_classes: usize,
    steps: usize,
    lr: f64,
    train: &unidl_data::PreparedDataset,
) -> Vec<f64>
where
    M: Module + SemanticSegmenter + Clone + Send + Sync + 'static,
{
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 6);
    let model = build(&dev);
    let task = unidl_train::PixelClassification {
        class_offset: 1,
        ..unidl_train::PixelClassification::new(num_classes)
    };
    // 256 → 128: a quarter of the pixels, the same objects
    let resize = unidl_data::transform::Resize {
        size: [128, 128],
        keep_ratio: false,
        fill: 0.0,
    };
    let mut rng = unidl_data::transform::rng_for(6, 0, 0);
    let samples: Vec<_> = (0..4)
        .map(|i| {
            let s = unidl_data::get_sample(train, i).unwrap();
            unidl_data::transform::Transform::apply(&resize, s, &mut rng).unwrap()
        })
        .collect();
    let (losses, _) = crate::detectors::steps_on(model, task, train, &samples, steps, lr, 6);
    losses
}

/// `deeplabv3` from a run config through the registry.
#[test]
fn a_deeplabv3_config_trains_evaluates_and_infers_through_the_registry() {
    crate::detectors::run_route_scored(
        "deeplabv3",
        "aspp_channels = 8\natrous_rates = [2, 3]\n\
         [model.backbone]\ndepth = 50\nwidth = 2\nnorm = \"batch\"\ntrainable_layers = 5\n\
         replace_stride_with_dilation = [false, true, true]\n",
        "num_classes = 14",
        "num_classes = 13",
        "miou",
    );
}
