//! Every standard variant: parameter count equal to torchvision's, logits of
//! the right shape, stage shapes traced for the summary.

use unidl_backend::Device;
use unidl_tensor::trace;
use unidl_vision::classification::*;

use crate::common::{count_params, input, torchvision_params};

fn check(name: &str, model: Classifier, side: usize, stages: &[(&str, Vec<usize>)]) {
    let dev = Device::flex();
    assert_eq!(
        count_params(&model),
        torchvision_params(name),
        "{name}: parameter count differs from torchvision's"
    );
    model.check_input(&[2, 3, side, side]).unwrap();
    let (y, traced) = trace::capture(|| model.forward(input([2, 3, side, side], &dev)));
    assert_eq!(y.dims(), [2, 1000], "{name}");
    for (path, shape) in stages {
        let t = traced
            .iter()
            .find(|t| t.path == *path)
            .unwrap_or_else(|| panic!("{name}: `{path}` not traced: {traced:?}"));
        assert_eq!(&t.shape, shape, "{name}: {path}");
    }
}

#[test]
fn resnet_variants_match_torchvision_parameter_counts_and_shapes() {
    let dev = Device::flex();
    for depth in [18, 34, 50, 101, 152] {
        let e = if depth >= 50 { 4 } else { 1 };
        let m = ResNetConfig::new(depth).init(&dev).unwrap();
        check(
            &format!("resnet{depth}"),
            Classifier::ResNet(m),
            64,
            &[
                ("stem", vec![2, 64, 16, 16]),
                ("layer1", vec![2, 64 * e, 16, 16]),
                ("layer2", vec![2, 128 * e, 8, 8]),
                ("layer3", vec![2, 256 * e, 4, 4]),
                ("layer4", vec![2, 512 * e, 2, 2]),
                ("fc", vec![2, 1000]),
            ],
        );
    }
}

#[test]
fn vgg_variants_match_torchvision_parameter_counts_and_shapes() {
    let dev = Device::flex();
    for depth in [11, 13, 16, 19] {
        for bn in [false, true] {
            let m = VggConfig::new(depth, bn).init(&dev).unwrap();
            let name = format!("vgg{depth}{}", if bn { "_bn" } else { "" });
            check(
                &name,
                Classifier::Vgg(m),
                32,
                &[
                    ("features.block1", vec![2, 64, 16, 16]),
                    ("features.block5", vec![2, 512, 1, 1]),
                    ("avgpool", vec![2, 512, 7, 7]),
                    ("classifier", vec![2, 1000]),
                ],
            );
        }
    }
}

#[test]
fn efficientnet_variants_match_torchvision_parameter_counts_and_shapes() {
    let dev = Device::flex();
    // stem: 32 · width_mult and head: 4 × 320 · width_mult, both rounded to a multiple of 8
    let stems = [32, 32, 32, 40, 48, 48, 56, 64];
    let heads = [1280, 1280, 1408, 1536, 1792, 2048, 2304, 2560];
    for (i, v) in EfficientNetVariant::ALL.into_iter().enumerate() {
        let m = EfficientNetConfig::new(v).init(&dev).unwrap();
        check(
            &v.torchvision_name(),
            Classifier::EfficientNet(m),
            32,
            &[
                ("stem", vec![2, stems[i], 16, 16]),
                ("stages.6", vec![2, heads[i] / 4, 1, 1]),
                ("head", vec![2, heads[i], 1, 1]),
                ("classifier", vec![2, 1000]),
            ],
        );
    }
}

#[test]
fn any_class_and_channel_count_and_the_small_image_stem() {
    let dev = Device::flex();
    let m = ResNetConfig::new(18)
        .with_in_channels(1)
        .with_num_classes(10)
        .with_small_input(true)
        .init(&dev)
        .unwrap();
    let (y, traced) = trace::capture(|| m.forward(input([3, 1, 28, 28], &dev)));
    assert_eq!(y.dims(), [3, 10]);
    let stem = traced.iter().find(|t| t.path == "stem").unwrap();
    assert_eq!(
        stem.shape,
        [3, 64, 28, 28],
        "small stem keeps the resolution"
    );
    let layer4 = traced.iter().find(|t| t.path == "layer4").unwrap();
    assert_eq!(layer4.shape, [3, 512, 4, 4]);
    // only the stem conv and the classifier change size with channels and classes
    let d = crate::common::count_params(&m) as i64 - 11_689_512;
    assert_eq!(
        d,
        (64 * 9 - 64 * 3 * 49) + (512 * 10 + 10 - 512 * 1000 - 1000)
    );

    let m = VggConfig::new(11, true)
        .with_in_channels(1)
        .with_num_classes(10)
        .with_width(16, 64)
        .init(&dev)
        .unwrap();
    assert_eq!(m.forward(input([2, 1, 32, 32], &dev)).dims(), [2, 10]);
    let m = EfficientNetConfig::new(EfficientNetVariant::B0)
        .with_in_channels(1)
        .with_num_classes(7)
        .init(&dev)
        .unwrap();
    assert_eq!(m.forward(input([2, 1, 28, 28], &dev)).dims(), [2, 7]);
    assert_eq!(
        m.stem.conv.weight.dims(),
        [32, 1, 3, 3],
        "stem takes one channel"
    );
    let (_, traced) = trace::capture(|| m.forward(input([2, 1, 28, 28], &dev)));
    let head = traced.iter().find(|t| t.path == "head").unwrap();
    assert_eq!(head.shape, [2, 1280, 1, 1], "32x downsampling");

    // EfficientNet's small-image stem (stride 1): 16x downsampling, same parameters
    let small = EfficientNetConfig::new(EfficientNetVariant::B0)
        .with_in_channels(1)
        .with_num_classes(7)
        .with_small_input(true)
        .init(&dev)
        .unwrap();
    let (y, traced) = trace::capture(|| small.forward(input([2, 1, 28, 28], &dev)));
    assert_eq!(y.dims(), [2, 7]);
    let stem = traced.iter().find(|t| t.path == "stem").unwrap();
    assert_eq!(stem.shape, [2, 32, 28, 28], "stride-1 stem");
    let head = traced.iter().find(|t| t.path == "head").unwrap();
    assert_eq!(head.shape, [2, 1280, 2, 2], "16x downsampling");
    assert_eq!(
        crate::common::count_params(&small),
        crate::common::count_params(&m)
    );
}
