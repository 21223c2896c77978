//! Mask R-CNN against torchvision 0.24.0 (`tests/reference/gen_mask_rcnn.py`
//! → `tests/reference/mask_rcnn/`): the standard configuration's parameter
//! counts; on a reduced model (ResNet-50 at width 4, 16-channel FPN, RPN and
//! mask head, 5 classes) loaded from torchvision's state dict, the five
//! training losses with ground-truth masks, gradients (the mask branch's
//! among them), the detections with their 28×28 mask probabilities and the
//! masks pasted into the image, at a fixed size and after the transform's
//! resize; the checkpoint's legacy mask-head keys; typed errors; training
//! through the task layer and the registry.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;
use unidl_backend::Device;
use unidl_tensor::module::ModuleApi;
use unidl_train::postprocess::{InstanceConfig, paste_mask};
use unidl_train::*;
use unidl_vision::VisionError;
use unidl_vision::detection::FasterRcnnConfig;
use unidl_vision::segmentation::{MaskRcnn, MaskRcnnConfig};
use unidl_vision::torchvision::{
    TorchvisionNames, load_torchvision, map_torchvision_state, read_torch_state,
};

use crate::common::{Reference, check_close, floats, max_diff, pattern01 as pattern, values};

fn reference() -> Reference {
    Reference::at(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/mask_rcnn"),
        "mask_rcnn.json",
    )
}

fn config_of(r: &Reference) -> MaskRcnnConfig {
    serde_json::from_value(r.meta["config"].clone()).unwrap()
}

fn model_of(r: &Reference, dev: &Device) -> MaskRcnn {
    let model = config_of(r).init(dev).unwrap();
    let path = r.dir.join(format!("{}.safetensors", r.name));
    let (model, report) = load_torchvision(model, &path, dev).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_clean() && !report.loaded.is_empty(), "{report}");
    model
}

/// The generator's mask of a box: the inscribed ellipse, in `f64` as there.
fn ellipse(b: [f32; 4], [h, w]: [usize; 2]) -> Vec<u8> {
    let [x0, y0, x1, y1] = b.map(f64::from);
    let (cx, cy, rx, ry) = (
        (x0 + x1) / 2.0,
        (y0 + y1) / 2.0,
        (x1 - x0) / 2.0,
        (y1 - y0) / 2.0,
    );
    let mut m = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let dx = (x as f64 + 0.5 - cx) / rx;
            let dy = (y as f64 + 0.5 - cy) / ry;
            m.push(u8::from(dx * dx + dy * dy <= 1.0));
        }
    }
    m
}

/// The case's targets with their masks, as the task layer's classes.
fn targets(r: &Reference, case: &str, size: [usize; 2]) -> Vec<ObjectTargets> {
    let mut t = r.targets(case, size);
    for (i, x) in t.iter_mut().enumerate() {
        x.classes.iter_mut().for_each(|c| *c -= 1);
        x.masks = x.boxes.iter().map(|&b| ellipse(b, size)).collect();
        let pixels: Vec<u64> = x
            .masks
            .iter()
            .map(|m| m.iter().map(|&v| u64::from(v)).sum())
            .collect();
        let want: Vec<u64> = r.meta["cases"][case]["mask_pixels"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            pixels, want,
            "{case}: image {i}: the masks are not the generator's"
        );
    }
    t
}

#[test]
fn standard_mask_rcnn_has_torchvision_parameter_counts() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    let counts = &reference().meta["counts"];
    assert_eq!(counts["published_num_params"], 44_401_393);
    let mut all = MaskRcnnConfig::new(91);
    all.0.backbone.trainable_layers = 5;
    let n = crate::common::count_params(&all.init(&dev).unwrap());
    assert_eq!(n, 44_401_393);
    assert_eq!(
        n as u64,
        counts["maskrcnn_resnet50_fpn_frozen_bn"].as_u64().unwrap()
    );
    let model = MaskRcnnConfig::default().init(&dev).unwrap();
    let trainable: usize = model.get_parameters().iter().map(|(_, t)| t.numel()).sum();
    assert_eq!(
        trainable as u64,
        counts["maskrcnn_resnet50_fpn_frozen_bn_trainable"]
            .as_u64()
            .unwrap()
    );
    // the mask branch under torchvision's names
    let keys: Vec<String> = model
        .get_parameters()
        .iter()
        .filter_map(|(k, _)| model.torchvision_key(k))
        .filter(|k| k.contains("mask"))
        .collect();
    for k in [
        "roi_heads.mask_head.0.0.weight",
        "roi_heads.mask_head.3.0.bias",
        "roi_heads.mask_predictor.conv5_mask.weight",
        "roi_heads.mask_predictor.mask_fcn_logits.bias",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not among {keys:?}");
    }
}

fn check_case(case: &str, shape: [usize; 4]) {
    let dev = Device::flex();
    let r = reference();
    let io = r.io(&dev);
    let model = model_of(&r, &dev);
    let x = pattern(shape, &dev);
    let t = targets(&r, case, [shape[2], shape[3]]);

    // the five losses, in torchvision's order
    let losses = model.forward_losses(x.clone(), &t).unwrap().named();
    let names: Vec<&str> = losses.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        r.meta["losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect::<Vec<_>>()
    );
    for (key, got) in &losses {
        let want = floats(&io, &format!("{case}.loss.{key}"))[0];
        crate::common::check_loss(&format!("{case}: {key}"), got, want);
    }

    // gradients of their sum
    let ad = dev.clone().autodiff();
    let m = model.clone().fork(&ad).train();
    let xa = Tensor::<4>::from_data(x.clone().into_data(), &ad);
    let grads = m.forward_losses(xa, &t).unwrap().total().backward();
    let check_grad = |name: &str, g: Option<Vec<f32>>| {
        let want = floats(&io, &format!("{case}.grad.{name}"));
        crate::common::check_grad(&format!("{case}: {name}"), g, &want, 1e-4);
    };
    let conv = |g: Option<Tensor<4>>| g.map(values);
    let rh = &m.roi_heads;
    let head = rh.mask_head.as_ref().unwrap();
    let pred = rh.mask_predictor.as_ref().unwrap();
    check_grad(
        "roi_heads.mask_predictor.mask_fcn_logits.weight",
        conv(pred.mask_fcn_logits.weight.grad(&grads)),
    );
    check_grad(
        "roi_heads.mask_predictor.conv5_mask.weight",
        conv(pred.conv5_mask.weight.grad(&grads)),
    );
    check_grad(
        "roi_heads.mask_head.0.0.weight",
        conv(head.layers[0].weight.grad(&grads)),
    );
    check_grad(
        "roi_heads.mask_head.3.0.bias",
        head.layers[3]
            .bias
            .as_ref()
            .and_then(|b| b.grad(&grads))
            .map(values),
    );
    check_grad(
        "roi_heads.box_predictor.cls_score.weight",
        rh.box_predictor
            .cls_score
            .weight
            .grad(&grads)
            .map(|g| values(g.transpose())),
    );
    check_grad(
        "backbone.body.layer3.0.conv2.weight",
        conv(m.backbone.body.layer3[0].conv2.weight.grad(&grads)),
    );
    check_grad(
        "rpn.head.cls_logits.weight",
        conv(m.rpn.head.cls_logits.weight.grad(&grads)),
    );

    // evaluation: detections in torchvision's order, their mask
    // probabilities, and the first masks pasted into the image
    let instances = model.predict_instances(x.clone()).unwrap();
    assert_eq!(
        instances
            .iter()
            .map(|v| v.iter().map(|i| i.detection).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        model.predict(x).unwrap(),
        "predict_instances' detections are predict's"
    );
    let probs = r.meta["probs"].as_u64().unwrap() as usize;
    let pasted = r.meta["pasted"].as_u64().unwrap() as usize;
    for (i, inst) in instances.iter().enumerate() {
        let want_scores = floats(&io, &format!("{case}.det{i}.scores"));
        let want_labels = floats(&io, &format!("{case}.det{i}.labels"));
        let want_boxes = floats(&io, &format!("{case}.det{i}.boxes"));
        assert_eq!(inst.len(), want_scores.len(), "{case}: image {i}: count");
        let labels: Vec<f32> = inst
            .iter()
            .map(|d| (d.detection.class + 1) as f32)
            .collect();
        assert_eq!(labels, want_labels, "{case}: image {i}: labels or order");
        let boxes: Vec<f32> = inst
            .iter()
            .flat_map(|d| {
                [
                    d.detection.x0,
                    d.detection.y0,
                    d.detection.x1,
                    d.detection.y1,
                ]
            })
            .collect();
        let scores: Vec<f32> = inst.iter().map(|d| d.detection.score).collect();
        check_close(
            &format!("{case}: image {i}: boxes"),
            &boxes,
            &want_boxes,
            1e-3,
        );
        check_close(
            &format!("{case}: image {i}: scores"),
            &scores,
            &want_scores,
            1e-4,
        );
        let sigmoid = |v: &f32| 1.0 / (1.0 + (-v).exp());
        let got: Vec<f32> = inst[..probs.min(inst.len())]
            .iter()
            .flat_map(|d| d.mask_logits.iter().map(sigmoid))
            .collect();
        check_close(
            &format!("{case}: image {i}: mask probabilities"),
            &got,
            &floats(&io, &format!("{case}.inner{i}.mask_probs")),
            1e-4,
        );
        let want_pasted = floats(&io, &format!("{case}.det{i}.masks"));
        let [h, w] = [shape[2], shape[3]];
        for (j, d) in inst.iter().take(pasted).enumerate() {
            let p: Vec<f32> = d.mask_logits.iter().map(sigmoid).collect();
            let b = d.detection;
            let got = paste_mask(&p, 28, 28, [b.x0, b.y0, b.x1, b.y1], w, h);
            let want = &want_pasted[j * h * w..(j + 1) * h * w];
            let diff = max_diff(&got, want);
            eprintln!("{case}: image {i}: pasted mask {j}: max |Δ| {diff:.2e}");
            assert!(
                diff <= 1e-3,
                "{case}: image {i}: pasted mask {j} differs by {diff}"
            );
        }
    }
}

#[test]
fn reduced_mask_rcnn_matches_torchvision_at_a_fixed_size() {
    check_case("fixed", [2, 3, 128, 160]);
}

#[test]
fn reduced_mask_rcnn_matches_torchvision_after_resizing() {
    check_case("resized", [2, 3, 100, 120]);
}

/// torchvision's COCO checkpoint predates `MaskRCNNHeads` version 2 and
/// names the head's convolutions `mask_fcn1`…`mask_fcn4`; they load.
#[test]
fn the_mask_head_loads_under_its_legacy_names() {
    let dev = Device::flex();
    let r = reference();
    let model = config_of(&r).init(&dev).unwrap();
    let mut sd = read_torch_state(&r.dir.join(format!("{}.safetensors", r.name)), &dev).unwrap();
    for i in 0..4 {
        for leaf in ["weight", "bias"] {
            let t = sd
                .remove(&format!("roi_heads.mask_head.{i}.0.{leaf}"))
                .unwrap();
            sd.insert(format!("roi_heads.mask_head.mask_fcn{}.{leaf}", i + 1), t);
        }
    }
    let (usable, report) = map_torchvision_state(&model, &sd).unwrap();
    assert!(report.is_clean(), "{report}");
    assert!(
        report
            .loaded
            .iter()
            .any(|k| k == "roi_heads.mask_head.mask_fcn4.bias")
    );
    assert!(usable.contains_key("roi_heads.mask_head.layers.0.weight"));
}

#[test]
fn mask_rcnn_refuses_bad_configs_and_targets() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    let r = reference();
    let bad = |edit: &dyn Fn(&mut MaskRcnnConfig), key: &str| {
        let mut c = config_of(&r);
        edit(&mut c);
        match c.init(&dev) {
            Err(VisionError::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: expected a config error, got {other:?}"),
        }
    };
    bad(
        &|c| c.0.mask_head.as_mut().unwrap().layers.clear(),
        "mask_head.layers",
    );
    bad(
        &|c| c.0.mask_head.as_mut().unwrap().dilation = 0,
        "mask_head.dilation",
    );
    bad(
        &|c| c.0.mask_head.as_mut().unwrap().predictor_channels = 0,
        "mask_head.predictor_channels",
    );
    let e = toml::from_str::<MaskRcnnConfig>("[mask_head]\nlayer = [8]").unwrap_err();
    assert!(e.to_string().contains("layer"), "{e}");
    // a config without [mask_head] still builds the mask branch
    let c: MaskRcnnConfig = toml::from_str("num_classes = 3").unwrap();
    assert_eq!(c.0.mask_head, Some(Default::default()));

    let model = model_of(&r, &dev);
    let x = pattern([1, 3, 64, 64], &dev);
    let one = |masks: Vec<Vec<u8>>| {
        vec![ObjectTargets {
            boxes: vec![[4.0, 4.0, 40.0, 40.0]],
            classes: vec![1],
            masks,
            size: [64, 64],
        }]
    };
    let e = model.forward_losses(x.clone(), &one(vec![])).unwrap_err();
    assert!(e.to_string().contains("0 masks for 1 boxes"), "{e}");
    let e = model
        .forward_losses(x.clone(), &one(vec![vec![1; 10]]))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("mask 0 has 10 values for an image of 64x64"),
        "{e}"
    );
    assert!(
        model
            .forward_losses(x.clone(), &one(vec![vec![1; 64 * 64]]))
            .is_ok()
    );

    // a Faster R-CNN has no mask branch
    let frcnn = FasterRcnnConfig {
        mask_head: None,
        ..config_of(&r).0
    }
    .init(&dev)
    .unwrap();
    assert!(matches!(
        frcnn.predict_instances(x.clone()),
        Err(VisionError::Config { .. })
    ));
    let e = frcnn
        .instance_losses(x, &one(vec![vec![1; 64 * 64]]))
        .unwrap_err();
    assert!(e.to_string().contains("no mask branch"), "{e}");
}

/// Ten Adam steps (1e-4) of a small Mask R-CNN (ResNet-18 body at width
/// 8, every stage trainable, 32-channel FPN and mask head, images resized
/// 256 → 128) on four images of the committed COCO composite through the
/// instance-segmentation task: the summed loss falls and the task's
/// post-processor turns `segment_instances` into the model's own
/// detections, each with a mask pasted into the image. A trainability
/// check, not a measure of accuracy.
#[test]
fn small_mask_rcnn_trains_on_the_coco_composite() {
    let dev = Device::flex();
    let train = crate::detectors::composite_train();
    let classes = train.classes().len();
    let cfg: MaskRcnnConfig = toml::from_str(&format!(
        "num_classes = {}\nfpn_channels = 32\nrepresentation_size = 64\n\
         [backbone]\ndepth = 18\nwidth = 8\ntrainable_layers = 5\n\
         [transform]\nmin_size = 128\nmax_size = 128\n\
         [mask_head]\nlayers = [32, 32]\npredictor_channels = 32\n",
        classes + 1
    ))
    .unwrap();
    let model = {
        let _rng = crate::common::seeded(&dev, 23);
        cfg.init(&dev).unwrap()
    };
    let _rng = crate::common::seeded(&dev, 5);
    let samples: Vec<_> = (0..4)
        .map(|i| unidl_data::get_sample(&train, i).unwrap())
        .collect();
    let task = || InstanceSegmentationTraining {
        class_names: train.classes().to_vec(),
        post: InstanceConfig::new([28, 28]),
    };
    let (losses, trainer) =
        crate::detectors::steps_on(model, task(), &train, &samples, 10, 1e-4, 5);
    eprintln!("Mask R-CNN on 4 composite images: losses {losses:.3?}");
    let first = (losses[0] + losses[1]) / 2.0;
    let last = losses[6..].iter().sum::<f64>() / 4.0;
    assert!(last < 0.85 * first, "loss did not fall: {losses:?}");

    let model = trainer.model().clone().valid();
    let task = task();
    let batch = task.collate(&samples[..2], &dev).unwrap();
    let want = model.predict_instances(batch.images.clone()).unwrap();
    let raw = task.forward(&model, &batch).unwrap();
    let opts = InferOptions {
        max_detections: 300,
        ..InferOptions::default()
    };
    let post = task.post();
    let got = post
        .process(
            &raw,
            &with_input_geometry(post.needs_geometry(), &opts, &samples[..2]),
        )
        .unwrap();
    let [_, _, h, w] = batch.images.dims();
    for (g, wnt) in got.iter().zip(&want) {
        let kept: Vec<_> = wnt
            .iter()
            .filter(|i| f64::from(i.detection.score) > opts.score_threshold)
            .collect();
        assert_eq!(g.len(), kept.len());
        for (a, b) in g.iter().zip(kept) {
            assert_eq!(
                (a.detection.class, a.detection.score),
                (b.detection.class, b.detection.score)
            );
            assert_eq!((a.width, a.height), (w, h));
            assert_eq!(a.mask.len(), w * h);
        }
    }
}

/// `mask_rcnn` from a run config through the registry: trains, reports
/// mask mAP, infers with a drawn picture; 13 object classes need
/// `num_classes` ≥ 14.
#[test]
fn a_mask_rcnn_config_trains_evaluates_and_infers_through_the_registry() {
    crate::detectors::run_route_scored(
        "mask_rcnn",
        "fpn_channels = 16\nrepresentation_size = 32\n\
         [model.backbone]\ndepth = 18\nwidth = 8\ntrainable_layers = 5\n\
         [model.transform]\nmin_size = 128\nmax_size = 128\n\
         [model.mask_head]\nlayers = [16]\npredictor_channels = 16",
        "num_classes = 14",
        "num_classes = 13",
        "mask_map",
    );
}

/// torchvision's standard Mask R-CNN ResNet-50-FPN (14 classes with the
/// background; transform min 128 / max 160) trains for two steps.
#[test]
fn standard_mask_rcnn_trains_a_few_steps() {
    let dev = Device::flex();
    let mut cfg = MaskRcnnConfig::new(14);
    cfg.0.transform.min_size = 128;
    cfg.0.transform.max_size = 160;
    let model = {
        let _rng = crate::common::seeded(&dev, 24);
        cfg.init(&dev).unwrap()
    };
    let train = crate::detectors::composite_train();
    let _rng = crate::common::seeded(&dev, 5);
    let samples: Vec<_> = (0..4)
        .map(|i| unidl_data::get_sample(&train, i).unwrap())
        .collect();
    let task = InstanceSegmentationTraining {
        class_names: train.classes().to_vec(),
        post: InstanceConfig::new([28, 28]),
    };
    let (losses, _) = crate::detectors::steps_on(model, task, &train, &samples, 2, 1e-4, 5);
    crate::detectors::assert_two_steps_train("standard Mask R-CNN", &losses);
}
