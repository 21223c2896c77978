//! Post-processing (§6.2.3.5 Post-a/Post-b): reference comparisons with
//! torchvision/PyTorch values from `tests/reference/gen_postprocess.py`
//! (committed `postprocess.json`), hand-made cases and typed errors.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use unidl_backend::Device;
use unidl_tensor::Tensor;
use unidl_train::postprocess::*;
use unidl_train::{InferOptions, PostProcess, TrainError};

fn reference() -> &'static Value {
    static R: OnceLock<Value> = OnceLock::new();
    R.get_or_init(|| {
        let text = include_str!("reference/postprocess.json");
        serde_json::from_str(text).expect("postprocess.json parses")
    })
}

fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(f32s).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        other => panic!("not a number array: {other}"),
    }
}

fn f64s(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(f64s).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number array: {other}"),
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    f64s(v).into_iter().map(|x| x as usize).collect()
}

fn boxes(v: &Value) -> Vec<[f32; 4]> {
    f32s(v)
        .chunks(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect()
}

fn tensor(values: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_f32(values, shape, &Device::flex()).unwrap()
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn options() -> InferOptions {
    InferOptions::default()
}

// ------------------------------------------------------------------ NMS

#[test]
fn nms_and_batched_nms_match_torchvision() {
    for (i, case) in reference()["nms"].as_array().unwrap().iter().enumerate() {
        let b = boxes(&case["boxes"]);
        let s = f32s(&case["scores"]);
        let idxs = usizes(&case["idxs"]);
        let thr = case["iou_threshold"].as_f64().unwrap();
        assert_eq!(nms(&b, &s, thr), usizes(&case["keep"]), "nms case {i}");
        assert_eq!(
            batched_nms(&b, &s, &idxs, thr),
            usizes(&case["batched_keep"]),
            "batched_nms case {i}"
        );
    }
}

#[test]
fn overlapping_boxes_of_one_class_keep_one_of_two_classes_keep_both() {
    let a = [0.0, 0.0, 10.0, 10.0];
    let b = [1.0, 0.0, 11.0, 10.0]; // IoU = 90 / 110 ≈ 0.818
    assert!((box_iou(&a, &b) - 90.0 / 110.0).abs() < 1e-6);
    let scores = [0.9, 0.8];
    assert_eq!(nms(&[a, b], &scores, 0.5), vec![0]);
    assert_eq!(nms(&[a, b], &scores, 0.9), vec![0, 1]);
    assert_eq!(batched_nms(&[a, b], &scores, &[0, 0], 0.5), vec![0]);
    assert_eq!(batched_nms(&[a, b], &scores, &[0, 1], 0.5), vec![0, 1]);
    // the lower score first in the input: output still by score
    assert_eq!(batched_nms(&[b, a], &[0.8, 0.9], &[1, 0], 0.5), vec![1, 0]);

    // the same through the detection post-processor, decoded [1, 2, 4 + 2]
    let post = DetectionPost::new(DetectionConfig::new(BoxCoding::Decoded {
        format: BoxFormat::Xyxy,
        objectness: false,
    }))
    .unwrap();
    let same_class = tensor(
        vec![0., 0., 10., 10., 0.9, 0.1, 1., 0., 11., 10., 0.8, 0.1],
        &[1, 2, 6],
    );
    let opts = InferOptions {
        score_threshold: 0.3,
        ..options()
    };
    let dets = post.process(&same_class, &opts).unwrap();
    assert_eq!(dets[0].len(), 1);
    assert_eq!((dets[0][0].class, dets[0][0].score), (0, 0.9));
    let two_classes = tensor(
        vec![0., 0., 10., 10., 0.9, 0.1, 1., 0., 11., 10., 0.1, 0.8],
        &[1, 2, 6],
    );
    let dets = post.process(&two_classes, &opts).unwrap();
    let classes: Vec<usize> = dets[0].iter().map(|d| d.class).collect();
    assert_eq!(classes, vec![0, 1]);
    // class-agnostic suppression keeps one
    let mut cfg = post.config().clone();
    cfg.class_agnostic = true;
    let dets = DetectionPost::new(cfg)
        .unwrap()
        .process(&two_classes, &opts)
        .unwrap();
    assert_eq!(dets[0].len(), 1);
}

// ------------------------------------------------------------------ detection

fn anchors_post(weights: Option<[f32; 4]>, activation: ScoreActivation) -> DetectionPost {
    let det = &reference()["detection"];
    let mut cfg = DetectionConfig::new(BoxCoding::Anchors {
        anchors: boxes(&det["anchors"]),
        weights,
        variances: None,
        clamp: (1000.0f32 / 16.0).ln(),
    });
    cfg.score_activation = activation;
    DetectionPost::new(cfg).unwrap()
}

#[test]
fn anchor_deltas_decode_as_torchvision_box_coder() {
    let det = &reference()["detection"];
    let rows = f32s(&det["outputs"]);
    let n = rows.len() / 7;
    for name in ["unit", "faster_rcnn"] {
        let case = &det["decoded"][name];
        let w = f32s(&case["weights"]);
        let post = anchors_post(Some([w[0], w[1], w[2], w[3]]), ScoreActivation::None);
        // one class whose score falls with the row: the output order is the row order
        let mut input = Vec::new();
        for (i, r) in rows.chunks(7).enumerate() {
            input.extend_from_slice(&r[..4]);
            input.push(1.0 - i as f32 / 1000.0);
        }
        let opts = InferOptions {
            iou_threshold: 1.0,
            max_detections: n,
            ..options()
        };
        let dets = post.process(&tensor(input, &[1, n, 5]), &opts).unwrap();
        assert_eq!(dets[0].len(), n);
        for (i, (d, e)) in dets[0].iter().zip(boxes(&case["boxes"])).enumerate() {
            let got = [d.x0, d.y0, d.x1, d.y1];
            for k in 0..4 {
                assert!(
                    close(got[k], e[k], 1e-5),
                    "{name} box {i}: {got:?} vs {e:?}"
                );
            }
        }
    }
    // variances are the reciprocal of weights
    let v = anchors_post(None, ScoreActivation::None);
    let mut cfg = v.config().clone();
    if let BoxCoding::Anchors { variances, .. } = &mut cfg.coding {
        *variances = Some([0.1, 0.1, 0.2, 0.2]);
    }
    let with_var = DetectionPost::new(cfg).unwrap();
    let with_w = anchors_post(Some([10.0, 10.0, 5.0, 5.0]), ScoreActivation::None);
    let input: Vec<f32> = rows
        .chunks(7)
        .enumerate()
        .flat_map(|(i, r)| [r[0], r[1], r[2], r[3], 1.0 - i as f32 / 1000.0])
        .collect();
    let opts = InferOptions {
        iou_threshold: 1.0,
        max_detections: n,
        ..options()
    };
    let a = with_var
        .process(&tensor(input.clone(), &[1, n, 5]), &opts)
        .unwrap();
    let b = with_w.process(&tensor(input, &[1, n, 5]), &opts).unwrap();
    for (x, y) in a[0].iter().zip(&b[0]) {
        assert!(close(x.x1, y.x1, 1e-5) && close(x.y0, y.y0, 1e-5));
    }
}

#[test]
fn retinanet_style_pipeline_matches_torchvision() {
    let det = &reference()["detection"];
    let rows = f32s(&det["outputs"]);
    let n = rows.len() / 7;
    let geometry: ImageGeometry = serde_json::from_value(det["geometry"].clone()).unwrap();
    let opts = InferOptions {
        score_threshold: det["score_threshold"].as_f64().unwrap(),
        iou_threshold: det["iou_threshold"].as_f64().unwrap(),
        max_detections: det["max_detections"].as_u64().unwrap() as usize,
        geometry: vec![geometry],
        ..options()
    };
    let input = tensor(rows, &[1, n, 7]);
    for (key, agnostic) in [("expected", false), ("expected_agnostic", true)] {
        let mut cfg = anchors_post(None, ScoreActivation::Sigmoid)
            .config()
            .clone();
        cfg.class_agnostic = agnostic;
        let got = &DetectionPost::new(cfg)
            .unwrap()
            .process(&input, &opts)
            .unwrap()[0];
        let expected = det[key].as_array().unwrap();
        assert_eq!(got.len(), expected.len(), "{key}");
        for (d, e) in got.iter().zip(expected) {
            let e = f32s(e);
            let g = [d.x0, d.y0, d.x1, d.y1];
            for k in 0..4 {
                assert!(close(g[k], e[k], 1e-5), "{key}: {d:?} vs {e:?}");
            }
            assert_eq!(d.class, e[4] as usize, "{key}");
            assert!(close(d.score, e[5], 1e-6), "{key}: {d:?} vs {e:?}");
        }
    }
}

#[test]
fn yolo_grid_outputs_decode_per_variant_and_letterbox_is_undone() {
    // one level, stride 8 on a 16×16 input: 2×2 cells, one anchor 10×20
    let coding = |variant| BoxCoding::Grid {
        variant,
        input_size: [16, 16],
        levels: vec![GridLevel {
            stride: 8,
            anchors: vec![[10.0, 20.0]],
        }],
        objectness: true,
    };
    // raw rows [tx, ty, tw, th, obj, cls]: only cell (x=1, y=0) is confident
    let mut raw = vec![-10.0f32; 4 * 6];
    raw[6..12].copy_from_slice(&[0.0, 0.0, 0.0, 0.0, 10.0, 10.0]);
    let input = tensor(raw, &[1, 4, 6]);
    let opts = InferOptions {
        score_threshold: 0.5,
        ..options()
    };
    let decode = |variant| {
        let mut cfg = DetectionConfig::new(coding(variant));
        cfg.score_activation = ScoreActivation::Sigmoid;
        DetectionPost::new(cfg)
            .unwrap()
            .process(&input, &opts)
            .unwrap()[0]
            .clone()
    };
    // v3: centre ((σ(0) + 1)·8, (σ(0) + 0)·8) = (12, 4), size exp(0)·anchor
    let d = decode(YoloVariant::V3);
    assert_eq!(d.len(), 1);
    let b = [d[0].x0, d[0].y0, d[0].x1, d[0].y1];
    assert_eq!(b, [7.0, -6.0, 17.0, 14.0]);
    // v5: centre ((2σ(0) − 0.5 + 1)·8, (2σ(0) − 0.5)·8) = (12, 4), size (2σ(0))²·anchor
    let d = decode(YoloVariant::V5);
    assert_eq!(
        [d[0].x0, d[0].y0, d[0].x1, d[0].y1],
        [7.0, -6.0, 17.0, 14.0]
    );
    // yolox: centre ((0 + 1)·8, 0·8), size exp(0)·8
    let d = decode(YoloVariant::Yolox);
    assert_eq!([d[0].x0, d[0].y0, d[0].x1, d[0].y1], [4.0, -4.0, 12.0, 4.0]);
    let expected_score = 1.0 / (1.0 + (-10.0f32).exp());
    assert!((d[0].score - expected_score * expected_score).abs() < 1e-6);

    // letterbox: a 40×20 image in a 16×16 input is scaled by 0.4 and moved down 4 px
    let g = ImageGeometry::letterbox(40, 20, 16, 16);
    assert_eq!(
        (g.scale_x, g.pad_x, g.pad_y),
        (0.4000000059604645, 0.0, 4.0)
    );
    let post = DetectionPost::new(DetectionConfig::new(BoxCoding::Decoded {
        format: BoxFormat::Cxcywh,
        objectness: false,
    }))
    .unwrap();
    let opts = InferOptions {
        geometry: vec![g],
        ..options()
    };
    let d = post
        .process(&tensor(vec![8.0, 8.0, 4.0, 2.0, 0.7], &[1, 1, 5]), &opts)
        .unwrap();
    let d = d[0][0];
    for (got, want) in [(d.x0, 15.0), (d.y0, 7.5), (d.x1, 25.0), (d.y1, 12.5)] {
        assert!((got - want).abs() < 1e-4, "{d:?}");
    }
    // clipped to the original image
    let d = post
        .process(&tensor(vec![1.0, 8.0, 4.0, 16.0, 0.7], &[1, 1, 5]), &opts)
        .unwrap()[0][0];
    assert_eq!((d.x0, d.y0, d.y1), (0.0, 0.0, 20.0));
}

#[test]
fn yolov5_grid_decoding_matches_its_detect_head() {
    let y = &reference()["yolo"];
    let raw = f32s(&y["raw"]);
    let n = raw.len() / 6;
    let anchors = y["anchors"].as_array().unwrap();
    let levels = usizes(&y["strides"])
        .into_iter()
        .zip(anchors)
        .map(|(stride, a)| GridLevel {
            stride,
            anchors: f32s(a).chunks(2).map(|c| [c[0], c[1]]).collect(),
        })
        .collect();
    let mut cfg = DetectionConfig::new(BoxCoding::Grid {
        variant: YoloVariant::V5,
        input_size: [32, 32],
        levels,
        objectness: true,
    });
    cfg.score_activation = ScoreActivation::Sigmoid;
    let post = DetectionPost::new(cfg).unwrap();
    let opts = InferOptions {
        iou_threshold: 1.0,
        max_detections: n,
        ..options()
    };
    let got = &post.process(&tensor(raw, &[1, n, 6]), &opts).unwrap()[0];
    let expected = y["expected"].as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    for (d, e) in got.iter().zip(expected) {
        let e = f32s(e);
        for (g, w) in [d.x0, d.y0, d.x1, d.y1, d.score].into_iter().zip(e) {
            assert!(close(g, w, 1e-5), "{d:?} vs {w}");
        }
    }
    // a pre-NMS cap keeps the best candidates
    let mut cfg = post.config().clone();
    cfg.pre_nms_top_k = Some(5);
    let capped = &DetectionPost::new(cfg)
        .unwrap()
        .process(&tensor(f32s(&y["raw"]), &[1, n, 6]), &opts)
        .unwrap()[0];
    assert_eq!(capped.len(), 5);
    assert_eq!(capped[..], got[..5]);
}

#[test]
fn max_detections_and_background_class_are_honoured() {
    let mut cfg = DetectionConfig::new(BoxCoding::Decoded {
        format: BoxFormat::Xyxy,
        objectness: false,
    });
    cfg.score_activation = ScoreActivation::Softmax;
    cfg.background_class = Some(0);
    let post = DetectionPost::new(cfg).unwrap();
    // three far-apart boxes; box 1 is background
    let raw = vec![
        0., 0., 5., 5., 0., 3., 0., //
        20., 20., 25., 25., 5., 0., 0., //
        40., 40., 45., 45., 0., 0., 2., //
    ];
    let input = tensor(raw, &[1, 3, 7]);
    let opts = InferOptions {
        score_threshold: 0.5,
        ..options()
    };
    let d = &post.process(&input, &opts).unwrap()[0];
    let classes: Vec<usize> = d.iter().map(|x| x.class).collect();
    assert_eq!(classes, vec![1, 2]);
    let one = InferOptions {
        max_detections: 1,
        ..opts
    };
    assert_eq!(post.process(&input, &one).unwrap()[0].len(), 1);
}

// ------------------------------------------------------------------ segmentation

#[test]
fn bilinear_resize_and_argmax_match_interpolate() {
    let seg = &reference()["segmentation"];
    let logits = f32s(&seg["logits"]);
    let (b, c, h, w) = (2, 4, 5, 7);
    for case in seg["resize"].as_array().unwrap() {
        let size = usizes(&case["size"]);
        let (oh, ow) = (size[0], size[1]);
        let want = f32s(&case["values"]);
        for plane in 0..b * c {
            let got = resize_bilinear(&logits[plane * h * w..(plane + 1) * h * w], h, w, oh, ow);
            for (i, (g, e)) in got.iter().zip(&want[plane * oh * ow..]).enumerate() {
                assert!(
                    close(*g, *e, 1e-5),
                    "{size:?} plane {plane} pixel {i}: {g} vs {e}"
                );
            }
        }
        let argmax: Vec<u32> = usizes(&case["argmax"])
            .into_iter()
            .map(|x| x as u32)
            .collect();
        let post = SemanticSegmentation::new(SegmentationConfig {
            output_size: Some([oh, ow]),
            ..Default::default()
        })
        .unwrap();
        let maps = post
            .process(&tensor(logits.clone(), &[b, c, h, w]), &options())
            .unwrap();
        for (s, m) in maps.iter().enumerate() {
            assert_eq!((m.width, m.height), (ow, oh));
            assert_eq!(
                m.classes,
                argmax[s * oh * ow..(s + 1) * oh * ow],
                "{size:?} sample {s}"
            );
        }
        // the same through a resize geometry to the original size
        let post = SemanticSegmentation::new(SegmentationConfig::default()).unwrap();
        let opts = InferOptions {
            geometry: vec![ImageGeometry::resize(ow, oh, w, h)],
            ..options()
        };
        let maps = post
            .process(&tensor(logits.clone(), &[b, c, h, w]), &opts)
            .unwrap();
        assert_eq!(maps[1].classes, argmax[oh * ow..], "{size:?} via geometry");
    }
}

#[test]
fn letterboxed_segmentation_drops_the_padding() {
    // input 4×4, original 4 wide × 2 high letterboxed: rows 1..3 are the image
    let g = ImageGeometry::letterbox(4, 2, 4, 4);
    assert_eq!((g.scale_y, g.pad_y), (1.0, 1.0));
    // class 1 wins on row 1, class 0 elsewhere
    let mut logits = vec![0.0f32; 2 * 16];
    for x in 0..4 {
        logits[16 + 4 + x] = 1.0;
    }
    let post = SemanticSegmentation::new(SegmentationConfig::default()).unwrap();
    let opts = InferOptions {
        geometry: vec![g],
        ..options()
    };
    let m = &post.process(&tensor(logits, &[1, 2, 4, 4]), &opts).unwrap()[0];
    assert_eq!((m.width, m.height), (4, 2));
    assert_eq!(m.classes, vec![1, 1, 1, 1, 0, 0, 0, 0]);
}

#[test]
fn masks_paste_as_torchvision_and_threshold() {
    let inst = &reference()["instance"];
    let masks = f32s(&inst["masks"]);
    let bxs = boxes(&inst["boxes"]);
    let size = usizes(&inst["image_size"]);
    let (ih, iw) = (size[0], size[1]);
    let pasted: Vec<Vec<f32>> = inst["pasted"]
        .as_array()
        .unwrap()
        .iter()
        .map(f32s)
        .collect();
    let m = 14;
    for (k, b) in bxs.iter().enumerate() {
        let got = paste_mask(&masks[k * m * m..(k + 1) * m * m], m, m, *b, iw, ih);
        for (i, (g, e)) in got.iter().zip(&pasted[k]).enumerate() {
            assert!((g - e).abs() < 1e-5, "mask {k} pixel {i}: {g} vs {e}");
        }
    }
    // through the post-processor: rows [x0, y0, x1, y1, score, class, mask…] + a padding row
    let mut rows = Vec::new();
    for (k, b) in bxs.iter().enumerate() {
        rows.extend_from_slice(b);
        rows.extend_from_slice(&[0.9 - k as f32 * 0.1, k as f32]);
        rows.extend_from_slice(&masks[k * m * m..(k + 1) * m * m]);
    }
    rows.extend(std::iter::repeat_n(0.0, 6 + m * m));
    let post = InstanceSegmentation::new(InstanceConfig {
        logits: false,
        image_size: Some([ih, iw]),
        ..InstanceConfig::new([m, m])
    })
    .unwrap();
    let out = &post
        .process(&tensor(rows, &[1, 4, 6 + m * m]), &options())
        .unwrap()[0];
    assert_eq!(out.len(), 3, "the zero-score padding row is dropped");
    for (k, inst) in out.iter().enumerate() {
        assert_eq!((inst.width, inst.height, inst.detection.class), (iw, ih, k));
        let want: Vec<u8> = pasted[k].iter().map(|&p| u8::from(p > 0.5)).collect();
        assert_eq!(inst.mask, want, "mask {k}");
        assert!(inst.mask.contains(&1));
    }
}

// ------------------------------------------------------------------ keypoints

#[test]
fn heatmap_keypoints_match_hrnet_and_dark() {
    let kp = &reference()["keypoints"];
    let heat = f32s(&kp["heatmaps"]);
    let (b, k, h, w) = (2, 4, 16, 12);
    let input = tensor(heat, &[b, k, h, w]);
    let quarter = f64s(&kp["quarter"]);
    let maxvals = f32s(&kp["maxvals"]);
    let post = HeatmapKeypoints::new(HeatmapConfig::default()).unwrap();
    let got: Vec<_> = post.process(&input, &options()).unwrap().concat();
    for (i, p) in got.iter().enumerate() {
        assert_eq!(
            (f64::from(p.x), f64::from(p.y)),
            (quarter[2 * i], quarter[2 * i + 1]),
            "point {i}"
        );
        assert_eq!(p.score, maxvals[i]);
    }
    for kernel in [5usize, 11] {
        let want = f64s(&kp["dark"][kernel.to_string()]);
        let post = HeatmapKeypoints::new(HeatmapConfig {
            refinement: HeatmapRefinement::Dark,
            blur_kernel: kernel,
            input_size: None,
            stride: None,
        })
        .unwrap();
        let got: Vec<_> = post.process(&input, &options()).unwrap().concat();
        for (i, p) in got.iter().enumerate() {
            assert!(
                (f64::from(p.x) - want[2 * i]).abs() < 1e-4
                    && (f64::from(p.y) - want[2 * i + 1]).abs() < 1e-4,
                "kernel {kernel} point {i}: {p:?} vs {:?}",
                &want[2 * i..2 * i + 2]
            );
        }
    }
}

#[test]
fn a_peak_between_pixels_gives_a_sub_pixel_position() {
    // Gaussian centred at (5.3, 7.0) on a 12 × 16 heatmap
    let (h, w) = (16, 12);
    let (cx, cy) = (5.3f32, 7.0f32);
    let heat: Vec<f32> = (0..h * w)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            (-((x - cx).powi(2) + (y - cy).powi(2)) / 8.0).exp()
        })
        .collect();
    let input = tensor(heat, &[1, 1, h, w]);
    let none = HeatmapKeypoints::new(HeatmapConfig {
        refinement: HeatmapRefinement::None,
        ..Default::default()
    })
    .unwrap();
    let p = none.process(&input, &options()).unwrap()[0][0];
    assert_eq!((p.x, p.y), (5.0, 7.0));
    let quarter = HeatmapKeypoints::new(HeatmapConfig::default()).unwrap();
    let p = quarter.process(&input, &options()).unwrap()[0][0];
    assert_eq!(
        (p.x, p.y),
        (5.25, 7.0),
        "a quarter toward the higher right neighbour"
    );
    let dark = HeatmapKeypoints::new(HeatmapConfig {
        refinement: HeatmapRefinement::Dark,
        ..Default::default()
    })
    .unwrap();
    let p = dark.process(&input, &options()).unwrap()[0][0];
    assert!(
        (p.x - cx).abs() < 0.02 && (p.y - cy).abs() < 0.02,
        "DARK recovers the centre: {p:?}"
    );
    // heatmap 4× smaller than a 64 × 48 input, letterboxed from a 96 × 128 image (scale 0.5, pad 0)
    let scaled = HeatmapKeypoints::new(HeatmapConfig {
        input_size: Some([64, 48]),
        ..Default::default()
    })
    .unwrap();
    let opts = InferOptions {
        geometry: vec![ImageGeometry::letterbox(96, 128, 48, 64)],
        ..options()
    };
    let p = scaled.process(&input, &opts).unwrap()[0][0];
    assert_eq!((p.x, p.y), (5.25 * 4.0 * 2.0, 7.0 * 4.0 * 2.0));
    // the same input size given as the heatmap's stride (what the keypoint task sets)
    let strided = HeatmapKeypoints::new(HeatmapConfig {
        stride: Some(4),
        ..Default::default()
    })
    .unwrap();
    let p = strided.process(&input, &opts).unwrap()[0][0];
    assert_eq!((p.x, p.y), (5.25 * 4.0 * 2.0, 7.0 * 4.0 * 2.0));
}

#[test]
fn regressed_keypoints_scale_to_pixels() {
    let post = RegressionKeypoints::new(RegressionConfig {
        normalized: true,
        input_size: Some([100, 200]),
    })
    .unwrap();
    let out = post
        .process(
            &tensor(vec![0.5, 0.25, 1.0, 0.0, 0.1, 0.2, 0.3, 0.4], &[2, 4]),
            &options(),
        )
        .unwrap();
    assert_eq!((out[0][0].x, out[0][0].y), (100.0, 25.0));
    assert_eq!(
        (out[0][1].x, out[0][1].y, out[0][1].score),
        (200.0, 0.0, 1.0)
    );
    assert_eq!(out[1].len(), 2);
    let pixels = RegressionKeypoints::new(RegressionConfig {
        normalized: false,
        input_size: None,
    })
    .unwrap();
    let opts = InferOptions {
        geometry: vec![ImageGeometry::resize(20, 10, 40, 40)],
        ..options()
    };
    let out = pixels
        .process(&tensor(vec![20.0, 8.0], &[1, 2]), &opts)
        .unwrap();
    assert_eq!((out[0][0].x, out[0][0].y), (10.0, 2.0));
}

// ------------------------------------------------------------------ CTC

fn ctc(method: CtcMethod, blank: usize, layout: CtcLayout, vocab: Vocabulary) -> CtcDecoding {
    CtcDecoding::new(
        CtcConfig {
            blank,
            layout,
            method,
            separator: String::new(),
        },
        vocab,
    )
    .unwrap()
}

#[test]
fn ctc_greedy_and_prefix_beam_search_match_the_reference() {
    for (ci, case) in reference()["ctc"].as_array().unwrap().iter().enumerate() {
        let logits = f32s(&case["logits"]);
        let blank = case["blank"].as_u64().unwrap() as usize;
        let (t, v) = {
            let a = case["logits"][0].as_array().unwrap();
            (a.len(), a[0].as_array().unwrap().len())
        };
        let btv = tensor(logits.clone(), &[2, t, v]);
        // the same scores as [T, B, V]
        let mut tbv = vec![0.0f32; logits.len()];
        for b in 0..2 {
            for s in 0..t {
                let src = (b * t + s) * v;
                let dst = (s * 2 + b) * v;
                tbv[dst..dst + v].copy_from_slice(&logits[src..src + v]);
            }
        }
        let tbv = tensor(tbv, &[t, 2, v]);
        let samples = case["samples"].as_array().unwrap();
        let check = |method, key: &Value, what: String| {
            for (layout, input) in [(CtcLayout::Btv, &btv), (CtcLayout::Tbv, &tbv)] {
                let out = ctc(method, blank, layout, Vocabulary::None)
                    .process(input, &options())
                    .unwrap();
                for (b, s) in samples.iter().enumerate() {
                    let want = &s[key.as_str().unwrap()];
                    let want = match method {
                        CtcMethod::Beam { width } if key == "beam" => &want[width.to_string()],
                        _ => want,
                    };
                    let ids: Vec<u32> = usizes(&want[0]).into_iter().map(|x| x as u32).collect();
                    assert_eq!(out[b].ids, ids, "{what} {layout:?} sample {b}");
                    let lp = want[1].as_f64().unwrap();
                    assert!(
                        (out[b].log_prob - lp).abs() < 1e-6,
                        "{what} sample {b}: {} vs {lp}",
                        out[b].log_prob
                    );
                }
            }
        };
        check(
            CtcMethod::Greedy,
            &Value::from("greedy"),
            format!("case {ci} greedy"),
        );
        for width in [1usize, 3, 8, 64] {
            check(
                CtcMethod::Beam { width },
                &Value::from("beam"),
                format!("case {ci} beam {width}"),
            );
        }
        // a wide beam finds the exact most probable labelling (all paths enumerated)
        if samples[0].get("exact").is_some() {
            check(
                CtcMethod::Beam { width: 64 },
                &Value::from("exact"),
                format!("case {ci} exact"),
            );
        }
    }
}

#[test]
fn ctc_collapses_repeats_and_keeps_repeats_split_by_blank() {
    // "aa-ab" (blank "-") → "aab"
    let vocab = vec!["-".to_string(), "a".into(), "b".into()];
    let path = [1usize, 1, 0, 1, 2];
    let mut logits = Vec::new();
    for &c in &path {
        let mut row = vec![-5.0f32; 3];
        row[c] = 5.0;
        logits.extend(row);
    }
    let input = tensor(logits, &[1, 5, 3]);
    for method in [CtcMethod::Greedy, CtcMethod::Beam { width: 4 }] {
        let out = ctc(method, 0, CtcLayout::Btv, Vocabulary::List(vocab.clone()))
            .process(&input, &options())
            .unwrap();
        assert_eq!(out[0].ids, vec![1, 1, 2], "{method:?}");
        assert_eq!(out[0].text.as_deref(), Some("aab"), "{method:?}");
        assert!(out[0].log_prob < 0.0 && out[0].log_prob > -0.01);
    }
    // the beam sums alignments: two equally likely steps "a" or blank → "a" wins over ""
    let half = (0.5f32).ln();
    let two = tensor(
        vec![half, half, f32::NEG_INFINITY, half, half, f32::NEG_INFINITY],
        &[1, 2, 3],
    );
    let out = ctc(
        CtcMethod::Beam { width: 3 },
        0,
        CtcLayout::Btv,
        Vocabulary::None,
    )
    .process(&two, &options())
    .unwrap();
    // paths: "--" → "", "-a", "a-", "aa" → "a" (3/4)
    assert_eq!(out[0].ids, vec![1]);
    assert!((out[0].log_prob - 0.75f64.ln()).abs() < 1e-6);
}

// ------------------------------------------------------------------ text

#[test]
fn text_decoding_stops_at_eos_and_drops_special_tokens() {
    let vocab: Vec<String> = ["<pad>", "<bos>", "<eos>", "hello", "world", "!"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let post = TextDecoding::new(
        TextConfig {
            eos_id: Some(2),
            special_ids: vec![0, 1],
            separator: " ".into(),
        },
        Vocabulary::List(vocab.clone()),
    )
    .unwrap();
    let ids = tensor(vec![1., 3., 4., 2., 5., 0., 3., 0., 5., 0.], &[2, 5]);
    let out = post.process(&ids, &options()).unwrap();
    assert_eq!(out[0].ids, vec![3, 4]);
    assert_eq!(out[0].text.as_deref(), Some("hello world"));
    assert_eq!(out[1].text.as_deref(), Some("hello !"));
    // logits [1, 3, 6]: argmax 3, 2 (eos), 4
    let mut logits = vec![0.0f32; 18];
    logits[3] = 4.0;
    logits[6 + 2] = 4.0;
    logits[12 + 4] = 4.0;
    let out = post
        .process(&tensor(logits, &[1, 3, 6]), &options())
        .unwrap();
    assert_eq!(out[0].ids, vec![3]);
    let step = 4.0 - (4.0f64.exp() + 5.0).ln();
    assert!(
        (out[0].log_prob - 2.0 * step).abs() < 1e-6,
        "{}",
        out[0].log_prob
    );
    // an id the vocabulary does not have is a model error
    let bad = tensor(vec![7.0], &[1, 1]);
    assert!(matches!(post.process(&bad, &options()), Err(TrainError::Model(m)) if m.contains("7")));
}

#[test]
fn text_decoding_through_a_tokenizer() {
    use unidl_data::text::{Corpus, SPECIAL_TOKENS, TextTokenizer};
    let tok = TextTokenizer::train_wordpiece(
        &Corpus::texts(["the cat sat on the mat", "the dog sat on the log"]),
        60,
        1,
        &SPECIAL_TOKENS,
    )
    .unwrap();
    let mut ids = vec![tok.cls_id().unwrap()];
    ids.extend(tok.encode("the cat sat").unwrap());
    ids.push(tok.sep_id().unwrap());
    ids.push(tok.pad_id().unwrap());
    let input = tensor(ids.iter().map(|&i| i as f32).collect(), &[1, ids.len()]);
    let post = TextDecoding::new(
        TextConfig {
            eos_id: tok.sep_id(),
            ..Default::default()
        },
        Vocabulary::Tokenizer(Arc::new(tok.clone())),
    )
    .unwrap();
    let out = post.process(&input, &options()).unwrap();
    assert_eq!(out[0].text.as_deref(), Some("the cat sat"));
    assert_eq!(
        out[0].ids,
        tok.encode("the cat sat").unwrap(),
        "[CLS] dropped, stop at [SEP]"
    );
}

#[test]
fn cosine_similarity_matches_torch_and_ranks_neighbours() {
    let s = &reference()["similarity"];
    let emb = f32s(&s["embeddings"]);
    let want = f64s(&s["matrix"]);
    let got = cosine_similarity_matrix(&emb, &emb, 8);
    for (g, e) in got.iter().zip(&want) {
        assert!((g - e).abs() < 1e-6, "{g} vs {e}");
    }
    let post = Similarity::new(SimilarityConfig::default()).unwrap();
    let opts = InferOptions {
        top_k: 2,
        ..options()
    };
    let out = post.process(&tensor(emb.clone(), &[5, 8]), &opts).unwrap();
    assert_eq!(out[1][0].index, 3, "the near-duplicate is the nearest");
    assert_eq!(out[3][0].index, 1);
    for (i, n) in out.iter().enumerate() {
        assert_eq!(n.len(), 2);
        assert!(n.iter().all(|x| x.index != i));
        assert!(n[0].similarity >= n[1].similarity);
        assert!((n[0].similarity - want[i * 5 + n[0].index]).abs() < 1e-6);
    }
    // against a gallery
    let gallery = Similarity::new(SimilarityConfig {
        gallery: Some(vec![emb[8..16].to_vec(), emb[..8].to_vec()]),
        exclude_self: true,
    })
    .unwrap();
    let out = gallery
        .process(&tensor(emb[..8].to_vec(), &[1, 8]), &opts)
        .unwrap();
    assert_eq!(out[0][0].index, 1);
    assert!((out[0][0].similarity - 1.0).abs() < 1e-9);
}

// ------------------------------------------------------------------ errors

fn config_key(r: Result<impl std::fmt::Debug, TrainError>) -> String {
    match r {
        Err(TrainError::Config { key, .. }) => key,
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn is_shape(r: Result<impl std::fmt::Debug, TrainError>, what: &str) {
    match r {
        Err(TrainError::Shape { what: w, got, .. }) => assert!(w.contains(what), "{w} / {got:?}"),
        other => panic!("expected a shape error for {what}, got {other:?}"),
    }
}

#[test]
fn wrong_shapes_are_typed_errors_naming_the_tensor() {
    let o = options();
    let decoded = DetectionPost::new(DetectionConfig::new(BoxCoding::Decoded {
        format: BoxFormat::Xyxy,
        objectness: true,
    }))
    .unwrap();
    is_shape(
        decoded.process(&tensor(vec![0.0; 8], &[2, 4]), &o),
        "detection",
    );
    is_shape(
        decoded.process(&tensor(vec![0.0; 10], &[1, 2, 5]), &o),
        "detection",
    );
    let anchors = anchors_post(None, ScoreActivation::Sigmoid);
    is_shape(
        anchors.process(&tensor(vec![0.0; 14], &[1, 2, 7]), &o),
        "detection",
    );
    let seg = SemanticSegmentation::new(SegmentationConfig::default()).unwrap();
    is_shape(
        seg.process(&tensor(vec![0.0; 8], &[2, 2, 2]), &o),
        "segmentation",
    );
    let inst = InstanceSegmentation::new(InstanceConfig::new([2, 2])).unwrap();
    is_shape(
        inst.process(&tensor(vec![0.0; 9], &[1, 1, 9]), &o),
        "instance",
    );
    let hm = HeatmapKeypoints::new(HeatmapConfig::default()).unwrap();
    is_shape(hm.process(&tensor(vec![0.0; 4], &[1, 4]), &o), "heatmaps");
    let reg = RegressionKeypoints::new(RegressionConfig {
        normalized: false,
        input_size: None,
    })
    .unwrap();
    is_shape(reg.process(&tensor(vec![0.0; 3], &[1, 3]), &o), "keypoint");
    let text = TextDecoding::new(TextConfig::default(), Vocabulary::None).unwrap();
    is_shape(text.process(&tensor(vec![0.0; 2], &[2]), &o), "text");
    let sim = Similarity::new(SimilarityConfig::default()).unwrap();
    is_shape(sim.process(&tensor(vec![0.0; 2], &[2]), &o), "embeddings");
    let c = ctc(CtcMethod::Greedy, 3, CtcLayout::Btv, Vocabulary::None);
    is_shape(c.process(&tensor(vec![0.0; 6], &[1, 2, 3]), &o), "CTC");
    is_shape(c.process(&tensor(vec![0.0; 6], &[2, 3]), &o), "CTC");
    let with_vocab = ctc(
        CtcMethod::Greedy,
        0,
        CtcLayout::Btv,
        Vocabulary::List(vec!["-".into(), "a".into()]),
    );
    is_shape(
        with_vocab.process(&tensor(vec![0.0; 6], &[1, 2, 3]), &o),
        "CTC",
    );
    // the message names the expected layout and the shape received
    let msg = decoded
        .process(&tensor(vec![0.0; 8], &[2, 4]), &o)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[batch, boxes, 4 + 1 + classes]") && msg.contains("[2, 4]"),
        "{msg}"
    );
}

#[test]
fn bad_configs_are_typed_errors_naming_the_key() {
    let decoded = || {
        DetectionConfig::new(BoxCoding::Decoded {
            format: BoxFormat::Xyxy,
            objectness: false,
        })
    };
    let mut cfg = decoded();
    cfg.pre_nms_top_k = Some(0);
    assert_eq!(
        config_key(DetectionPost::new(cfg)),
        "detection.pre_nms_top_k"
    );
    assert_eq!(
        config_key(DetectionPost::new(DetectionConfig::new(
            BoxCoding::Anchors {
                anchors: vec![[0.0, 0.0, 1.0, 1.0]],
                weights: Some([1.0; 4]),
                variances: Some([1.0; 4]),
                clamp: 4.0,
            }
        ))),
        "detection.coding.variances"
    );
    assert_eq!(
        config_key(DetectionPost::new(DetectionConfig::new(
            BoxCoding::Anchors {
                anchors: vec![[2.0, 0.0, 1.0, 1.0]],
                weights: None,
                variances: None,
                clamp: 4.0,
            }
        ))),
        "detection.coding.anchors"
    );
    assert_eq!(
        config_key(DetectionPost::new(DetectionConfig::new(BoxCoding::Grid {
            variant: YoloVariant::V5,
            input_size: [20, 20],
            levels: vec![GridLevel {
                stride: 8,
                anchors: vec![],
            }],
            objectness: true,
        }))),
        "detection.coding.levels[0].stride"
    );
    let mut cfg = decoded();
    cfg.background_class = Some(5);
    let post = DetectionPost::new(cfg).unwrap();
    assert_eq!(
        config_key(post.process(&tensor(vec![0.0; 6], &[1, 1, 6]), &options())),
        "detection.background_class"
    );
    // geometry for 3 samples on a batch of 2
    let opts = InferOptions {
        geometry: vec![ImageGeometry::identity(4, 4); 3],
        ..options()
    };
    let post = DetectionPost::new(decoded()).unwrap();
    assert_eq!(
        config_key(post.process(&tensor(vec![0.0; 12], &[2, 1, 6]), &opts)),
        "infer.geometry"
    );
    assert_eq!(
        config_key(
            ImageGeometry {
                scale_x: 0.0,
                ..ImageGeometry::identity(4, 4)
            }
            .validate("infer.geometry[0]")
            .map(|_| 0)
        ),
        "infer.geometry[0].scale_x"
    );
    assert_eq!(
        config_key(SemanticSegmentation::new(SegmentationConfig {
            output_size: Some([0, 3]),
            ..Default::default()
        })),
        "segmentation.output_size"
    );
    assert_eq!(
        config_key(InstanceSegmentation::new(InstanceConfig {
            mask_threshold: 1.5,
            ..InstanceConfig::new([2, 2])
        })),
        "instance.mask_threshold"
    );
    let inst = InstanceSegmentation::new(InstanceConfig::new([1, 1])).unwrap();
    assert_eq!(
        config_key(inst.process(
            &tensor(vec![0., 0., 1., 1., 0.9, 0., 1.], &[1, 1, 7]),
            &options()
        )),
        "instance.image_size"
    );
    assert_eq!(
        config_key(HeatmapKeypoints::new(HeatmapConfig {
            blur_kernel: 4,
            ..Default::default()
        })),
        "keypoints.blur_kernel"
    );
    assert_eq!(
        config_key(RegressionKeypoints::new(RegressionConfig {
            normalized: true,
            input_size: None,
        })),
        "keypoints.input_size"
    );
    assert_eq!(
        config_key(CtcDecoding::new(
            CtcConfig {
                method: CtcMethod::Beam { width: 0 },
                ..Default::default()
            },
            Vocabulary::None
        )),
        "ctc.method.width"
    );
    assert_eq!(
        config_key(CtcDecoding::new(
            CtcConfig {
                blank: 2,
                ..Default::default()
            },
            Vocabulary::List(vec!["-".into(), "a".into()])
        )),
        "ctc.blank"
    );
    assert_eq!(
        config_key(TextDecoding::new(
            TextConfig {
                eos_id: Some(9),
                ..Default::default()
            },
            Vocabulary::List(vec!["a".into()])
        )),
        "text.eos_id"
    );
    assert_eq!(
        config_key(Similarity::new(SimilarityConfig {
            gallery: Some(vec![vec![1.0, 2.0], vec![1.0]]),
            exclude_self: true,
        })),
        "similarity.gallery"
    );
}

#[test]
fn configs_read_from_toml_and_reject_unknown_keys() {
    let cfg: DetectionConfig = toml::from_str(
        r#"
        score_activation = "sigmoid"
        class_agnostic = true
        [coding]
        type = "grid"
        variant = "v5"
        input_size = [32, 32]
        levels = [{ stride = 8, anchors = [[10.0, 13.0], [16.0, 30.0]] }, { stride = 16 }]
        "#,
    )
    .unwrap();
    assert!(cfg.multi_label && cfg.class_agnostic);
    DetectionPost::new(cfg).unwrap();
    let err = toml::from_str::<DetectionConfig>(
        r#"
        iou_treshold = 0.5
        [coding]
        type = "decoded"
        "#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("iou_treshold"), "{err}");
    let err = toml::from_str::<DetectionConfig>("[coding]\ntype = \"decoded\"\nformt = \"xyxy\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("formt"), "{err}");
    let ctc: CtcConfig =
        toml::from_str("blank = 3\nlayout = \"tbv\"\n[method]\ntype = \"beam\"\nwidth = 8\n")
            .unwrap();
    assert_eq!(ctc.method, CtcMethod::Beam { width: 8 });
    assert!(toml::from_str::<CtcConfig>("[method]\ntype = \"beam\"\nwidht = 8\n").is_err());
    assert!(toml::from_str::<HeatmapConfig>("refinement = \"dark\"\nkernel = 3\n").is_err());
    // the new InferOptions keys have defaults, so older configs still read
    let o: InferOptions = toml::from_str("batch_size = 4\n").unwrap();
    assert_eq!(
        (o.iou_threshold, o.max_detections, o.geometry.len()),
        (0.5, 100, 0)
    );
    let o: InferOptions = toml::from_str(
        "iou_threshold = 0.6\n[[geometry]]\noriginal_width = 640\noriginal_height = 480\nscale_x = 0.5\nscale_y = 0.5\npad_y = 16.0\n",
    )
    .unwrap();
    assert_eq!(o.geometry[0].y_to_original(16.0), 0.0);
    assert!(
        toml::from_str::<InferOptions>(
            "[[geometry]]\noriginal_width = 1\noriginal_height = 1\nscale = 2.0\n"
        )
        .is_err()
    );
}
