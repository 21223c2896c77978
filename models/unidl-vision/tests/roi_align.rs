//! RoI Align and MultiScaleRoIAlign against torchvision 0.24.0: forward
//! values and gradients with respect to the features (torch autograd through
//! `torchvision.ops.roi_align` for a fixed random grad_output), within 1e-5
//! on flex. Reference: `tests/reference/roi_align.json`, written by
//! `tests/reference/gen_roi_align.py`.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use serde_json::Value;
use unidl_backend::Device;
use unidl_vision::VisionError;
use unidl_vision::detection::roi_align::roi_align_in_chunks;
use unidl_vision::detection::{
    LevelMapper, MultiScaleRoiAlign, RoiAlign, RoiAlignError, roi_align, rois_from_boxes,
};

const TOL: f32 = 1e-5;

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/roi_align.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn shape<const D: usize>(v: &Value) -> [usize; D] {
    let s: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    s.try_into().unwrap()
}

/// A `{shape, data}` tensor of the reference on `dev`.
fn tensor<const D: usize>(v: &Value, dev: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(floats(&v["data"]), shape::<D>(v)), dev)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// `op` on flex and on flex's autodiff device: the output (checked to be the
/// same on both) and d(Σ output · grad_output)/d features.
fn forward_and_grad(
    features: &Value,
    grad_output: &[f32],
    op: impl Fn(Tensor<4>) -> Tensor<4>,
) -> (Vec<f32>, Vec<f32>) {
    let dev = Device::flex();
    let plain = values(op(tensor::<4>(features, &dev)));
    let ad = dev.autodiff();
    let x = tensor::<4>(features, &ad).require_grad();
    let y = op(x.clone());
    let dims = y.dims();
    let g = Tensor::<4>::from_data(TensorData::new(grad_output.to_vec(), dims), &ad);
    let grads = (y.clone() * g).sum().backward();
    let out = values(y);
    assert_eq!(out, plain, "autodiff and plain forward differ");
    let grad = x
        .grad(&grads)
        .map(values)
        .unwrap_or_else(|| vec![0.0; shape::<4>(features).iter().product()]);
    (out, grad)
}

fn config(case: &Value) -> RoiAlign {
    let size: Vec<usize> = case["output_size"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    RoiAlign::new([size[0], size[1]])
        .with_spatial_scale(case["spatial_scale"].as_f64().unwrap() as f32)
        .with_sampling_ratio(case["sampling_ratio"].as_i64().unwrap() as i32)
        .with_aligned(case["aligned"].as_bool().unwrap())
}

#[test]
fn roi_align_matches_torchvision_forward_and_gradient() {
    let r = reference();
    let rois = &r["rois"];
    let (mut worst_out, mut worst_grad) = (0.0f32, 0.0f32);
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for case in cases {
        let cfg = config(case);
        let (out, grad) = forward_and_grad(&r["features"], &floats(&case["grad_output"]), |x| {
            let rois = tensor::<2>(rois, &x.device());
            roi_align(
                x,
                rois,
                cfg.output_size,
                cfg.spatial_scale,
                cfg.sampling_ratio,
                cfg.aligned,
            )
            .unwrap()
        });
        let d_out = max_diff(&out, &floats(&case["output"]));
        let d_grad = max_diff(&grad, &floats(&case["grad_input"]));
        eprintln!(
            "{}: max |Δout| {d_out:.1e}, max |Δgrad| {d_grad:.1e}",
            case["name"]
        );
        assert!(d_out <= TOL, "{}: output differs by {d_out}", case["name"]);
        assert!(
            d_grad <= TOL,
            "{}: gradient differs by {d_grad}",
            case["name"]
        );
        worst_out = worst_out.max(d_out);
        worst_grad = worst_grad.max(d_grad);
    }
    eprintln!("roi_align vs torchvision: max |Δout| {worst_out:.2e}, max |Δgrad| {worst_grad:.2e}");
    // the reference is not vacuous: outputs and gradients are mostly non-zero
    let nonzero = floats(&cases[0]["grad_input"])
        .iter()
        .filter(|v| **v != 0.0)
        .count();
    assert!(nonzero > 100, "{nonzero}");
}

/// The per-image list of boxes gives the rows of the `[K, 5]` form, image 0's
/// first; `rois_from_boxes` turns the list back into `[K, 5]`.
#[test]
fn roi_align_per_image_boxes_match_the_rois_form() {
    let r = reference();
    let dev = Device::flex();
    let features = tensor::<4>(&r["features"], &dev);
    let n = features.dims()[0];
    let rois = floats(&r["rois"]["data"]);
    let mut per_image: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut order = Vec::new();
    for (image, boxes) in per_image.iter_mut().enumerate() {
        for (k, row) in rois.chunks_exact(5).enumerate() {
            if row[0] as usize == image {
                boxes.extend_from_slice(&row[1..]);
                order.push(k);
            }
        }
    }
    let boxes: Vec<Tensor<2>> = per_image
        .into_iter()
        .map(|b| {
            let l = b.len() / 4;
            Tensor::from_data(TensorData::new(b, [l, 4]), &dev)
        })
        .collect();
    for case in r["cases"].as_array().unwrap().iter().step_by(5) {
        let cfg = config(case);
        let got = values(cfg.forward_boxes(features.clone(), &boxes).unwrap());
        let want = floats(&case["output"]);
        let per_roi = want.len() / order.len();
        let want: Vec<f32> = order
            .iter()
            .flat_map(|&k| want[k * per_roi..(k + 1) * per_roi].to_vec())
            .collect();
        let d = max_diff(&got, &want);
        assert!(d <= TOL, "{}: per-image boxes differ by {d}", case["name"]);
        let again = values(
            cfg.forward(features.clone(), rois_from_boxes(&boxes).unwrap())
                .unwrap(),
        );
        assert_eq!(again, got, "{}", case["name"]);
    }
}

/// Many small chunks of RoIs (one RoI per chunk, then a few per chunk) give
/// torchvision's outputs and gradients too.
#[test]
fn roi_align_in_chunks_matches_torchvision() {
    let r = reference();
    let cases = r["cases"].as_array().unwrap();
    // legacy, 3x4 bins; aligned, 3x4 bins
    for (case, chunk) in [(&cases[1], 1), (&cases[13], 200)] {
        let cfg = config(case);
        let (out, grad) = forward_and_grad(&r["features"], &floats(&case["grad_output"]), |x| {
            let rois = tensor::<2>(&r["rois"], &x.device());
            roi_align_in_chunks(x, rois, &cfg, chunk).unwrap()
        });
        let d_out = max_diff(&out, &floats(&case["output"]));
        let d_grad = max_diff(&grad, &floats(&case["grad_input"]));
        assert!(
            d_out <= TOL && d_grad <= TOL,
            "chunk {chunk}: {d_out} {d_grad}"
        );
    }
}

#[test]
fn multiscale_roi_align_matches_torchvision() {
    let r = reference();
    let ms = &r["multiscale"];
    let names: Vec<String> = ms["featmap_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let image_shapes: Vec<[usize; 2]> = ms["image_shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            [
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
            ]
        })
        .collect();
    let feature_refs: Vec<(String, &Value)> = ms["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), &p[1]))
        .collect();
    let (mut worst_out, mut worst_grad) = (0.0f32, 0.0f32);
    for case in ms["cases"].as_array().unwrap() {
        let size = &case["output_size"];
        let pooler = MultiScaleRoiAlign::new(
            &name_refs,
            [
                size[0].as_u64().unwrap() as usize,
                size[1].as_u64().unwrap() as usize,
            ],
            case["sampling_ratio"].as_i64().unwrap() as i32,
        );
        let ad = Device::flex().autodiff();
        let features: Vec<(String, Tensor<4>)> = feature_refs
            .iter()
            .map(|(k, v)| (k.clone(), tensor::<4>(v, &ad).require_grad()))
            .collect();
        let boxes: Vec<Tensor<2>> = ms["boxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| tensor::<2>(b, &ad))
            .collect();

        // scales and levels
        let sizes: Vec<[usize; 2]> = features
            .iter()
            .filter(|(k, _)| names.contains(k))
            .map(|(_, t)| [t.dims()[2], t.dims()[3]])
            .collect();
        let (scales, mapper) = pooler.setup_scales(&sizes, &image_shapes).unwrap();
        assert_eq!(scales, floats(&case["scales"]));
        assert_eq!(mapper, LevelMapper::new(2, 4, 224, 4));
        let levels: Vec<Option<usize>> = case["levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Some(v.as_i64().unwrap() as usize))
            .collect();
        assert_eq!(mapper.levels(&boxes).unwrap(), levels);

        // forward and gradients of every named map
        let y = pooler.forward(&features, &boxes, &image_shapes).unwrap();
        let g =
            Tensor::<4>::from_data(TensorData::new(floats(&case["grad_output"]), y.dims()), &ad);
        let grads = (y.clone() * g).sum().backward();
        let d_out = max_diff(&values(y), &floats(&case["output"]));
        let mut d_grad = 0.0f32;
        for (k, t) in &features {
            let got = t.grad(&grads);
            match case["grad_features"].get(k) {
                Some(want) => {
                    let got = got.map(values).unwrap();
                    d_grad = d_grad.max(max_diff(&got, &floats(want)));
                }
                None => assert!(got.is_none(), "`{k}` is not pooled but has a gradient"),
            }
        }
        eprintln!(
            "MultiScaleRoIAlign {size}, sampling {}: max |Δout| {d_out:.1e}, max |Δgrad| {d_grad:.1e}",
            case["sampling_ratio"]
        );
        assert!(d_out <= TOL, "output differs by {d_out}");
        assert!(d_grad <= TOL, "gradient differs by {d_grad}");
        worst_out = worst_out.max(d_out);
        worst_grad = worst_grad.max(d_grad);
    }
    eprintln!(
        "MultiScaleRoIAlign vs torchvision: max |Δout| {worst_out:.2e}, max |Δgrad| {worst_grad:.2e}"
    );
}

#[test]
fn level_mapper_follows_the_fpn_heuristic() {
    let m = LevelMapper::new(2, 5, 224, 4);
    // sqrt(area) 224 -> level 4 (index 2); just under 112 -> 2; exactly 112 -> 3
    assert_eq!(m.level([0.0, 0.0, 224.0, 224.0]), Some(2));
    assert_eq!(m.level([0.0, 0.0, 111.9, 112.0]), Some(0));
    assert_eq!(m.level([0.0, 0.0, 112.0, 112.0]), Some(1));
    // clamped at both ends; an empty box is the finest level
    assert_eq!(m.level([0.0, 0.0, 5000.0, 5000.0]), Some(3));
    assert_eq!(m.level([3.0, 3.0, 3.0, 3.0]), Some(0));
    // an inverted box (negative area) has no level, as in torchvision
    assert_eq!(m.level([10.0, 0.0, 0.0, 10.0]), None);
}

#[test]
fn roi_align_handles_no_rois_and_rois_outside() {
    let dev = Device::flex();
    let x = Tensor::<4>::ones([2, 3, 5, 4], &dev);
    let none = Tensor::<2>::from_data(TensorData::new(Vec::<f32>::new(), [0, 5]), &dev);
    let y = RoiAlign::new([2, 3]).forward(x.clone(), none).unwrap();
    assert_eq!(y.dims(), [0, 3, 2, 3]);
    // wholly outside: zeros; inside a constant map: the constant
    let rois = Tensor::<2>::from_data(
        TensorData::new(
            vec![1.0f32, -50.0, -50.0, -20.0, -20.0, 0.0, 0.5, 0.5, 2.5, 3.5],
            [2, 5],
        ),
        &dev,
    );
    let y = values(RoiAlign::new([2, 2]).forward(x, rois).unwrap());
    assert_eq!(&y[..12], &[0.0; 12]);
    assert!(y[12..].iter().all(|v| (v - 1.0).abs() < 1e-6), "{y:?}");
}

#[test]
fn roi_align_refusals_are_typed_errors() {
    let dev = Device::flex();
    let x = Tensor::<4>::zeros([2, 1, 4, 4], &dev);
    let rois =
        |v: Vec<f32>, k: usize, w: usize| Tensor::<2>::from_data(TensorData::new(v, [k, w]), &dev);
    let ok = || rois(vec![0.0, 0.0, 0.0, 2.0, 2.0], 1, 5);
    let cfg = RoiAlign::new([2, 2]);

    let e = cfg
        .forward(x.clone(), rois(vec![0.0; 8], 2, 4))
        .unwrap_err();
    assert_eq!(e, RoiAlignError::RoisShape { shape: vec![2, 4] });
    let e = cfg
        .forward(x.clone(), rois(vec![2.0, 0.0, 0.0, 1.0, 1.0], 1, 5))
        .unwrap_err();
    assert!(
        matches!(
            e,
            RoiAlignError::BatchIndex {
                roi: 0,
                batch: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = cfg
        .forward(
            x.clone(),
            rois(
                vec![0.0, 0.0, 0.0, 1.0, 1.0, -1.0, 0.0, 0.0, 1.0, 1.0],
                2,
                5,
            ),
        )
        .unwrap_err();
    assert!(matches!(e, RoiAlignError::BatchIndex { roi: 1, .. }), "{e}");
    let e = cfg
        .forward(x.clone(), rois(vec![0.5, 0.0, 0.0, 1.0, 1.0], 1, 5))
        .unwrap_err();
    assert!(matches!(e, RoiAlignError::BatchIndex { .. }), "{e}");
    let e = cfg
        .forward(x.clone(), rois(vec![0.0, 0.0, f32::NAN, 1.0, 1.0], 1, 5))
        .unwrap_err();
    assert!(
        matches!(e, RoiAlignError::NonFiniteBox { roi: 0, .. }),
        "{e}"
    );
    let e = roi_align(x.clone(), ok(), [0, 2], 1.0, 2, false).unwrap_err();
    assert_eq!(e, RoiAlignError::OutputSize { size: [0, 2] });
    for scale in [f32::NAN, f32::INFINITY, 0.0, -0.5] {
        let e = roi_align(x.clone(), ok(), [2, 2], scale, 2, false).unwrap_err();
        assert!(matches!(e, RoiAlignError::SpatialScale { .. }), "{e}");
    }
    let e = cfg
        .forward(Tensor::<4>::zeros([2, 1, 0, 4], &dev), ok())
        .unwrap_err();
    assert!(matches!(e, RoiAlignError::EmptyFeatures { .. }), "{e}");
    let e = cfg
        .forward(x.clone(), rois(vec![0.0, 0.0, 0.0, 1e12, 1e12], 1, 5))
        .unwrap_err();
    assert!(
        matches!(e, RoiAlignError::SamplingGrid { roi: 0, .. }),
        "{e}"
    );
    // the per-image form: a box tensor not [L, 4], more images than the batch
    let e = cfg
        .forward_boxes(x.clone(), &[rois(vec![0.0; 5], 1, 5)])
        .unwrap_err();
    assert!(
        matches!(e, RoiAlignError::BoxesShape { image: 0, .. }),
        "{e}"
    );
    let b = || rois(vec![0.0, 0.0, 1.0, 1.0], 1, 4);
    let e = cfg.forward_boxes(x.clone(), &[b(), b(), b()]).unwrap_err();
    assert!(matches!(e, RoiAlignError::BatchIndex { roi: 2, .. }), "{e}");
    // into the zoo's error
    let v: VisionError = e.into();
    assert!(v.to_string().contains("batch index"), "{v}");

    // MultiScaleRoIAlign
    let pooler = MultiScaleRoiAlign::new(&["0", "1"], [2, 2], 2);
    let feats = |a: [usize; 4], b: [usize; 4]| {
        vec![
            ("0".to_string(), Tensor::<4>::zeros(a, &dev)),
            ("1".to_string(), Tensor::<4>::zeros(b, &dev)),
        ]
    };
    let good = feats([2, 1, 16, 16], [2, 1, 8, 8]);
    pooler.forward(&good, &[b()], &[[64, 64]]).unwrap();
    let e = pooler.forward(&good, &[b()], &[]).unwrap_err();
    assert!(matches!(e, RoiAlignError::ImageShapes { .. }), "{e}");
    let e = pooler.forward(&good, &[b()], &[[0, 64]]).unwrap_err();
    assert!(matches!(e, RoiAlignError::ImageShapes { .. }), "{e}");
    let e = pooler
        .forward(&feats([2, 1, 16, 16], [2, 2, 8, 8]), &[b()], &[[64, 64]])
        .unwrap_err();
    assert!(matches!(e, RoiAlignError::FeatureMap { .. }), "{e}");
    // two octaves apart
    let e = pooler
        .forward(&feats([2, 1, 16, 16], [2, 1, 4, 4]), &[b()], &[[64, 64]])
        .unwrap_err();
    assert!(matches!(e, RoiAlignError::Scales { .. }), "{e}");
    let other = MultiScaleRoiAlign::new(&["p3"], [2, 2], 2);
    let e = other.forward(&good, &[b()], &[[64, 64]]).unwrap_err();
    assert!(matches!(e, RoiAlignError::NoFeatureMaps { .. }), "{e}");
    let e = MultiScaleRoiAlign::new(&["0", "1"], [2, 0], 2)
        .forward(&good, &[b()], &[[64, 64]])
        .unwrap_err();
    assert!(matches!(e, RoiAlignError::OutputSize { .. }), "{e}");
}
