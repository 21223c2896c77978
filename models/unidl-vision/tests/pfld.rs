//! PFLD against the PyTorch definition written from the paper
//! (`tests/reference/gen_pfld.py` → `tests/reference/pfld/`): parameter
//! counts of 1X and 0.25X; on the 0.25X model with the auxiliary network,
//! landmarks and angles in evaluation mode, and in training mode the
//! outputs, the loss, gradients and a running statistic; typed errors.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use unidl_backend::Device;
use unidl_vision::VisionError;
use unidl_vision::keypoints::{Pfld, PfldConfig};

use crate::common::{Reference, check_close, floats, pattern01 as pattern, rel_l2, values};

fn reference() -> Reference {
    Reference::committed("pfld")
}

fn model_of(r: &Reference, dev: &Device) -> Pfld {
    r.model(dev, |c: &PfldConfig, d| c.init(d).unwrap())
}

#[test]
fn pfld_parameter_counts_follow_the_papers_tables() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    let counts = &reference().meta["counts"];
    for (key, width, auxiliary, want) in [
        ("1x", 1.0, false, 1_217_768u64),
        ("1x_aux", 1.0, true, 1_681_579),
        ("025x", 0.25, false, 91_712),
        ("025x_aux", 0.25, true, 120_883),
    ] {
        let c = PfldConfig {
            width,
            auxiliary,
            ..PfldConfig::new(68)
        };
        let n = crate::common::count_params(&c.init(&dev).unwrap()) as u64;
        assert_eq!(n, counts[key].as_u64().unwrap(), "{key}");
        assert_eq!(n, want, "{key}");
    }
}

#[test]
fn pfld_matches_the_pytorch_definition() {
    let dev = Device::flex();
    let r = reference();
    let io = r.io(&dev);
    let model = model_of(&r, &dev);
    let x = pattern([2, 3, 112, 112], &dev);
    assert_eq!(values(x.clone()), floats(&io, "x"));
    let out = model.forward_all(x.clone()).unwrap();
    check_close(
        "eval landmarks",
        &values(out.landmarks.clone()),
        &floats(&io, "eval.landmarks"),
        1e-5,
    );
    check_close(
        "eval angles",
        &values(out.angles.unwrap()),
        &floats(&io, "eval.angles"),
        1e-5,
    );
    assert_eq!(values(model.forward(x).unwrap()), values(out.landmarks));

    let ad = dev.clone().autodiff();
    let m = model.fork(&ad).train();
    let out = m.forward_all(pattern([2, 3, 112, 112], &ad)).unwrap();
    let (lm, angles) = (out.landmarks, out.angles.unwrap());
    check_close(
        "train landmarks",
        &values(lm.clone()),
        &floats(&io, "train.landmarks"),
        1e-4,
    );
    check_close(
        "train angles",
        &values(angles.clone()),
        &floats(&io, "train.angles"),
        1e-4,
    );
    let t = Tensor::<2>::from_data(TensorData::new(floats(&io, "train.target"), lm.dims()), &ad);
    let loss = (lm - t).powi_scalar(2).mean() + angles.powi_scalar(2).mean();
    let (got, want) = (values(loss.clone())[0], floats(&io, "train.loss")[0]);
    assert!((got - want).abs() <= 1e-5 * want, "loss {got} vs {want}");
    let grads = loss.backward();
    let aux = m.auxiliary.as_ref().unwrap();
    let lin = |g: Option<Tensor<2>>| g.map(|g| values(g.transpose()));
    let conv = |g: Option<Tensor<4>>| g.map(values);
    let wanted: Vec<(&str, Option<Vec<f32>>)> = vec![
        ("fc.weight", lin(m.fc.weight.grad(&grads))),
        ("conv8.conv.weight", conv(m.conv8.conv.weight.grad(&grads))),
        (
            "stage2.7.project.conv.weight",
            conv(m.stage2[7].project.conv.weight.grad(&grads)),
        ),
        (
            "stage1.0.depthwise.bn.weight",
            m.stage1[0]
                .depthwise
                .bn
                .inner()
                .gamma
                .grad(&grads)
                .map(values),
        ),
        ("conv1.conv.weight", conv(m.conv1.conv.weight.grad(&grads))),
        ("auxiliary.fc2.weight", lin(aux.fc2.weight.grad(&grads))),
        (
            "auxiliary.conv4.conv.weight",
            conv(aux.conv4.conv.weight.grad(&grads)),
        ),
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
        let rel = rel_l2(&g, &floats(&io, &format!("train.grad.{name}")));
        eprintln!("grad {name}: relative L2 {rel:.2e}");
        // conv8's batch norm normalises a 1 × 1 map over a batch of two
        // (two values per channel), which makes training mode chaotic: the
        // PyTorch definition's own float64 gradients move by 1–9 % (relative
        // L2) and its landmarks by 3e-4 when the image changes by 1e-6
        // (measured in the generator's setting), so gradients are compared
        // loosely, as the detection backbones' (D39); a wrong formula is off
        // by order 1
        assert!(rel <= 3e-2, "grad {name}: relative L2 {rel}");
    }
    let stats = m.stage1[0].depthwise.bn.inner().running_mean.value_sync();
    check_close(
        "running mean after the step",
        &values(stats),
        &floats(&io, "train.stage1.0.depthwise.bn.running_mean"),
        1e-5,
    );
}

#[test]
fn pfld_refuses_bad_configs_and_inputs() {
    let dev = Device::flex();
    let _rng = crate::common::seeded(&dev, 0);
    for (text, key) in [("landmarks = 0", "landmarks"), ("width = 0.0", "width")] {
        let c: PfldConfig = toml::from_str(text).unwrap();
        match c.init(&dev) {
            Err(VisionError::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{text}: expected a config error, got {other:?}"),
        }
    }
    let model = model_of(&reference(), &dev);
    for shape in [[1, 3, 96, 96], [1, 1, 112, 112]] {
        let e = model.forward(pattern(shape, &dev)).unwrap_err();
        assert!(matches!(e, VisionError::Input { .. }), "{e}");
    }
}

/// `pfld` (0.25X, no auxiliary network) through the registry on keypoint
/// crops resized to 112 × 112.
#[test]
fn a_pfld_config_trains_evaluates_and_infers_through_the_registry() {
    crate::hrnet::keypoint_route(
        "pfld",
        "width = 0.25\nauxiliary = false",
        "transforms = [{ type = \"resize\", size = [112, 112] }]",
        "landmarks = 5",
        "landmarks = 4",
    );
}
