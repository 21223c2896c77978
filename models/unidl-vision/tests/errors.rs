//! Bad configs and inputs are typed errors naming the key or shape; stochastic
//! depth is the identity in evaluation and a seeded drop-path in training.

use burn::module::Module;
use unidl_backend::Device;
use unidl_vision::blocks::StochasticDepth;
use unidl_vision::classification::*;
use unidl_vision::{ClassifierConfig, VisionError};

use crate::common::input;

fn config_key(e: VisionError) -> String {
    match e {
        VisionError::Config { key, .. } => key,
        other => panic!("not a config error: {other}"),
    }
}

#[test]
fn config_errors_name_the_key() {
    let dev = Device::flex();
    assert_eq!(
        config_key(ResNetConfig::new(20).init(&dev).unwrap_err()),
        "depth"
    );
    assert_eq!(
        config_key(VggConfig::new(12, true).init(&dev).unwrap_err()),
        "depth"
    );
    assert_eq!(
        config_key(
            ResNetConfig::new(18)
                .with_num_classes(0)
                .init(&dev)
                .unwrap_err()
        ),
        "num_classes"
    );
    assert_eq!(
        config_key(
            ResNetConfig::new(18)
                .with_in_channels(0)
                .init(&dev)
                .unwrap_err()
        ),
        "in_channels"
    );
    let mut e = EfficientNetConfig::new(EfficientNetVariant::B0);
    e.stochastic_depth_prob = 1.5;
    assert_eq!(
        config_key(e.init(&dev).unwrap_err()),
        "stochastic_depth_prob"
    );
    let e = EfficientNetConfig::new(EfficientNetVariant::B0).with_scaling(0.0, 1.0);
    assert_eq!(config_key(e.init(&dev).unwrap_err()), "width_mult");
    let mut e = EfficientNetConfig::new(EfficientNetVariant::B0);
    e.classifier_init_range = Some(-0.1);
    assert_eq!(
        config_key(e.init(&dev).unwrap_err()),
        "classifier_init_range"
    );
    let msg = ResNetConfig::new(20).init(&dev).unwrap_err().to_string();
    assert!(msg.contains("depth") && msg.contains("20"), "{msg}");

    // unknown keys and unknown models are refused by name
    let e = toml::from_str::<ClassifierConfig>("name = \"resnet\"\ndepth = 18\nsmall_inptu = true")
        .unwrap_err();
    assert!(e.to_string().contains("small_inptu"), "{e}");
    let e = toml::from_str::<ClassifierConfig>("name = \"efficientnet\"\nvariant = \"b9\"")
        .unwrap_err();
    assert!(e.to_string().contains("b9"), "{e}");
    let e = toml::from_str::<ClassifierConfig>("name = \"alexnet\"").unwrap_err();
    assert!(e.to_string().contains("alexnet"), "{e}");
}

#[test]
fn bad_input_shapes_are_typed_errors() {
    let dev = Device::flex();
    let cfg: ClassifierConfig =
        toml::from_str("name = \"vgg\"\ndepth = 11\nwidth = 8\nhidden = 16\nin_channels = 1")
            .unwrap();
    let m = cfg.init(&dev).unwrap();
    for shape in [vec![1, 3, 32, 32], vec![1, 1, 28, 28], vec![1, 32, 32]] {
        let e = m.check_input(&shape).unwrap_err();
        assert!(
            matches!(&e, VisionError::Input { shape: s, .. } if *s == shape),
            "{e}"
        );
    }
    m.check_input(&[4, 1, 32, 32]).unwrap();
}

#[test]
fn stochastic_depth_is_identity_in_eval_and_a_seeded_row_drop_in_training() {
    let ad = Device::flex().autodiff();
    let sd = StochasticDepth::new(0.5);
    let x = input([64, 2, 3, 3], &ad).abs().add_scalar(1.0);
    // evaluation: valid() copy, or a device without autodiff
    let v = sd.valid();
    let e: Vec<f32> = v
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(e, x.clone().into_data().try_to_vec::<f32>().unwrap());
    let plain = input([4, 2, 3, 3], &Device::flex());
    assert_eq!(
        sd.forward(plain.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        plain.into_data().try_to_vec::<f32>().unwrap()
    );
    // training: each sample's branch is zeroed or scaled by 2, whole rows
    let run = |seed| {
        let _rng = crate::common::seeded(&ad, seed);
        let y: Vec<f32> = sd
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        y
    };
    let y = run(7);
    let xs: Vec<f32> = x.clone().into_data().try_to_vec::<f32>().unwrap();
    let mut dropped = 0;
    for (row_y, row_x) in y.chunks(18).zip(xs.chunks(18)) {
        let zero = row_y.iter().all(|v| *v == 0.0);
        let twice = row_y
            .iter()
            .zip(row_x)
            .all(|(a, b)| (a - 2.0 * b).abs() < 1e-6);
        assert!(zero || twice, "row neither dropped nor scaled: {row_y:?}");
        dropped += usize::from(zero);
    }
    assert!(
        (16..=48).contains(&dropped),
        "{dropped} of 64 rows dropped at p = 0.5"
    );
    assert_eq!(run(7), y, "same seed, same mask");
    assert_ne!(run(8), y, "another seed, another mask");
}
