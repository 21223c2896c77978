//! The detection backbone with trainable batch norm (`norm = "batch"`)
//! against torchvision 0.24.0 (`tests/reference/gen_backbone_bn.py` →
//! `tests/reference/backbone_bn/`): a ResNet-50 body at width 4 with
//! `nn.BatchNorm2d` and `trainable_layers = 3`, loaded from torchvision's
//! state dict: stage outputs in training mode (batch statistics), gradients,
//! the running statistics after one training forward (frozen stages
//! included), evaluation-mode output afterwards; and the standard
//! RetinaNet's parameter count with batch norm.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::ModuleApi;
use unidl_vision::detection::{
    BackboneNorm, BackboneNormKind, ResNetBody, ResNetBodyConfig, RetinaNetConfig,
};
use unidl_vision::torchvision::load_torchvision;

use crate::common::{
    Reference, check_close as check, floats, max_diff, pattern01 as pattern, rel_l2, values,
};

fn reference() -> Reference {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/backbone_bn");
    Reference::at(&dir, "backbone_bn.json")
}

fn body(r: &Reference, dev: &Device) -> ResNetBody {
    let config: ResNetBodyConfig = serde_json::from_value(r.meta["config"].clone()).unwrap();
    assert_eq!(config.norm, BackboneNormKind::Batch);
    let model = config.init(dev).unwrap();
    let path = r.dir.join(format!("{}.safetensors", r.name));
    let (model, report) = load_torchvision(model, &path, dev).unwrap_or_else(|e| panic!("{e}"));
    // torchvision's `num_batches_tracked` counters have no counterpart
    assert!(
        report.missing.is_empty() && report.shape_mismatch.is_empty(),
        "{report}"
    );
    model
}

/// γ's or β's gradient of a batch-norm backbone layer.
fn norm_grad(n: &BackboneNorm, beta: bool, grads: &burn::tensor::Gradients) -> Option<Tensor<1>> {
    let BackboneNorm::Batch(bn) = n else {
        panic!("not a batch norm")
    };
    let p = if beta {
        &bn.inner().beta
    } else {
        &bn.inner().gamma
    };
    p.grad(grads)
}

#[test]
fn batch_norm_backbone_matches_torchvision_in_training_and_after() {
    let r = reference();
    let dev = Device::flex();
    let io = r.io(&dev);
    let model = body(&r, &dev);
    let shape: Vec<usize> = serde_json::from_value(r.meta["shape"].clone()).unwrap();
    let shape = [shape[0], shape[1], shape[2], shape[3]];

    let trainable: usize = model.get_parameters().iter().map(|(_, t)| t.numel()).sum();
    assert_eq!(
        trainable as u64,
        r.meta["trainable_params"].as_u64().unwrap(),
        "trainable parameters (conv1, bn1 and layer1 frozen)"
    );

    // training mode: batch statistics, gradients, running-statistic updates
    let ad = dev.clone().autodiff();
    let m = model.fork(&ad).train();
    let cs = m.forward(pattern(shape, &ad));
    // batch statistics over few values per channel (12 in C5) amplify
    // rounding: torchvision in float32 differs from itself in float64 by
    // 5e-6 (C2) … 1.4e-4 (C5) of the largest value; allow 5e-4
    for (k, c) in cs.iter().enumerate() {
        let want = floats(&io, &format!("train/c{}", k + 2));
        check(
            &format!("train c{}", k + 2),
            &values(c.clone()),
            &want,
            5e-4,
        );
    }
    let loss = cs
        .iter()
        .map(|c| c.clone().powi_scalar(2).mean())
        .reduce(|a, b| a + b)
        .unwrap();
    let want_loss = floats(&io, "loss")[0];
    let got_loss = values(loss.clone())[0];
    assert!(
        (got_loss - want_loss).abs() <= 1e-4 * want_loss.abs(),
        "loss {got_loss} vs {want_loss}"
    );
    let grads = loss.backward();
    let l2 = &m.layer2[0];
    // The whole body in training mode is chaotic at float32: batch
    // statistics over few values (12 per channel in C5) and ReLU and
    // max-pool kinks make torchvision's own float64 layer-3 gradients move
    // by percents when the image changes by 1e-6 (gen_backbone_bn.py). So
    // gradients here are compared by relative L2 distance with a loose
    // bound, which still catches a wrong formula (errors of order 1); the
    // tight gradient check is the two-block case below.
    let grad = |name: &str, g: Option<Vec<f32>>| {
        let g = g.unwrap_or_else(|| panic!("no gradient for {name}"));
        let want = floats(&io, &format!("grad/{name}"));
        let rel = rel_l2(&g, &want);
        eprintln!(
            "grad {name}: relative L2 {rel:.2e}, max |Δ| {:.2e}",
            max_diff(&g, &want)
        );
        assert!(rel <= 3e-2, "grad {name}: relative L2 distance {rel}");
    };
    grad(
        "layer2.0.conv1.weight",
        l2.conv1.weight.grad(&grads).map(values),
    );
    grad(
        "layer2.0.bn1.weight",
        norm_grad(&l2.bn1, false, &grads).map(values),
    );
    grad(
        "layer3.1.bn2.bias",
        norm_grad(&m.layer3[1].bn2, true, &grads).map(values),
    );
    grad(
        "layer4.0.downsample.1.weight",
        norm_grad(&m.layer4[0].downsample.as_ref().unwrap().bn, false, &grads).map(values),
    );
    grad(
        "layer4.2.bn3.bias",
        norm_grad(m.layer4[2].bn3.as_ref().unwrap(), true, &grads).map(values),
    );
    // frozen stages: no gradients, as torchvision's requires_grad = False
    assert!(m.layer1[0].conv1.weight.grad(&grads).is_none());
    assert!(norm_grad(&m.bn1, false, &grads).is_none());

    // running statistics after the step (frozen stages update theirs too)
    let state = m.state_dict();
    for key in r.meta["stats"].as_array().unwrap() {
        let key = key.as_str().unwrap();
        check(
            &format!("after {key}"),
            &floats(&state, key),
            &floats(&io, &format!("after/{key}")),
            1e-4,
        );
    }

    // evaluation mode uses the updated running statistics
    let eval = m.valid();
    let c5 = eval.forward(pattern(shape, &dev))[3].clone();
    check("eval c5", &values(c5), &floats(&io, "eval/c5"), 5e-4);
}

#[test]
fn standard_retinanet_with_batch_norm_has_torchvision_parameter_count() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    let r = Reference::at(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/retinanet"),
        "retinanet.json",
    );
    // retinanet_resnet50_fpn(weights=None, weights_backbone=None): batch
    // norm and every stage trainable
    let mut config = RetinaNetConfig::new(91);
    config.backbone.norm = BackboneNormKind::Batch;
    config.backbone.trainable_layers = 5;
    let model = config.init(&dev).unwrap();
    let n: usize = model.get_parameters().iter().map(|(_, t)| t.numel()).sum();
    assert_eq!(
        n as u64,
        r.meta["counts"]["retinanet_resnet50_fpn_batch_norm"]
            .as_u64()
            .unwrap()
    );
}

#[test]
fn batch_norm_blocks_match_torchvision_gradients_tightly() {
    let r = reference();
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let io = r.io(&ad);
    let m = body(&r, &dev).fork(&ad).train();
    let shape = [2, 64, 4, 5];
    let t = |k: &str| Tensor::<4>::from_data(TensorData::new(floats(&io, k), shape), &ad);
    let x = t("block/x").require_grad();
    let y = m.layer3[5].forward(m.layer3[4].forward(x.clone()));
    check("block y", &values(y.clone()), &floats(&io, "block/y"), 1e-5);
    let grads = (y * t("block/G")).sum().backward();
    let want = |k: &str| floats(&io, &format!("block/grad/{k}"));
    check(
        "block grad x",
        &values(x.grad(&grads).unwrap()),
        &want("x"),
        1e-5,
    );
    let b4 = &m.layer3[4];
    check(
        "block grad layer3.4.conv1.weight",
        &values(b4.conv1.weight.grad(&grads).unwrap()),
        &want("layer3.4.conv1.weight"),
        1e-5,
    );
    check(
        "block grad layer3.4.bn2.weight",
        &values(norm_grad(&b4.bn2, false, &grads).unwrap()),
        &want("layer3.4.bn2.weight"),
        1e-5,
    );
    check(
        "block grad layer3.5.conv3.weight",
        &values(
            m.layer3[5]
                .conv3
                .as_ref()
                .unwrap()
                .weight
                .grad(&grads)
                .unwrap(),
        ),
        &want("layer3.5.conv3.weight"),
        1e-5,
    );
}
