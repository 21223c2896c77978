//! Task metrics (B.6) against reference tools: scikit-learn, pycocotools,
//! MMDetection's `eval_map` and MMPose's `keypoint_pck_accuracy` /
//! `keypoint_nme` (their own code: mmdet 3.3.0, mmpose 1.3.2), mmseg's
//! convention (written in numpy, checked against torchmetrics and
//! scikit-learn), jiwer, sacrebleu and torchmetrics. Inputs and expected values come from
//! `tests/reference/task_metrics.json` (written by `gen_task_metrics.py`);
//! plus hand-checkable cases and the error cases.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in small cases

use serde_json::Value;
use unidl_data::{BBox, Keypoint, Mask};
use unidl_train::metrics::*;
use unidl_train::outputs::{ClassMap, Detection, InstanceMask, PredictedKeypoint};
use unidl_train::{Metric, TrainError};

#[path = "metrics/keypoint_ap.rs"]
mod keypoint_ap;

const TOL: f64 = 1e-6;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/task_metrics.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got}, reference {want} (diff {})",
        (got - want).abs()
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| usizes(r).into_iter().map(|x| x as u8).collect())
        .collect()
}

fn check_prf(what: &str, got: Prf, want: &Value) {
    close(
        &format!("{what} precision"),
        got.precision,
        f(&want["precision"]),
    );
    close(&format!("{what} recall"), got.recall, f(&want["recall"]));
    close(&format!("{what} f1"), got.f1, f(&want["f1"]));
}

fn check_report(what: &str, counts: &ClassCounts, want: &Value) {
    let report = counts.report().unwrap();
    let want = want.as_array().unwrap();
    assert_eq!(report.len(), want.len(), "{what}: report rows");
    for (r, w) in report.iter().zip(want) {
        assert_eq!(r.class as u64, w["class"].as_u64().unwrap(), "{what}");
        assert_eq!(
            r.support,
            w["support"].as_u64().unwrap(),
            "{what} class {}",
            r.class
        );
        check_prf(&format!("{what} class {}", r.class), r.prf, w);
    }
}

#[test]
fn classification_averages_match_scikit_learn() {
    let r = reference();
    for (i, case) in r["classification"]["multiclass"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let (pred, target) = (usizes(&case["pred"]), usizes(&case["target"]));
        let classes = case["classes"].as_u64().unwrap() as usize;
        // two batches through the accumulator equal one call
        let mut counts = ClassCounts::new(classes);
        let half = pred.len() / 2;
        counts.update(&pred[..half], &target[..half]).unwrap();
        counts.update(&pred[half..], &target[half..]).unwrap();
        for (avg, key) in [
            (Average::Micro, "micro"),
            (Average::Macro, "macro"),
            (Average::Weighted, "weighted"),
        ] {
            check_prf(
                &format!("multiclass {i} {key}"),
                counts.average(avg).unwrap(),
                &case[key],
            );
            check_prf(
                &format!("multiclass {i} {key} one-shot"),
                prf(&pred, &target, classes, avg).unwrap(),
                &case[key],
            );
        }
        check_report(&format!("multiclass {i}"), &counts, &case["report"]);
    }
    for (i, case) in r["classification"]["multilabel"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let (pred, target) = (rows(&case["pred"]), rows(&case["target"]));
        let mut counts = ClassCounts::new(target[0].len());
        counts.update_multilabel(&pred[..7], &target[..7]).unwrap();
        counts.update_multilabel(&pred[7..], &target[7..]).unwrap();
        for (avg, key) in [
            (Average::Micro, "micro"),
            (Average::Macro, "macro"),
            (Average::Weighted, "weighted"),
        ] {
            check_prf(
                &format!("multilabel {i} {key}"),
                counts.average(avg).unwrap(),
                &case[key],
            );
            check_prf(
                &format!("multilabel {i} {key} one-shot"),
                multilabel_prf(&pred, &target, avg).unwrap(),
                &case[key],
            );
        }
        check_report(&format!("multilabel {i}"), &counts, &case["report"]);
    }
}

/// Row-major runs starting with zeros → 0/1 pixels.
fn decode_runs(counts: &Value, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    for (i, n) in usizes(counts).into_iter().enumerate() {
        out.extend(std::iter::repeat_n((i % 2) as u8, n));
    }
    assert_eq!(out.len(), len);
    out
}

fn coords(v: &Value) -> [f32; 4] {
    let b: Vec<f32> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    [b[0], b[1], b[2], b[3]]
}

struct Image {
    dts: Vec<Detection>,
    masks: Vec<InstanceMask>,
    gts: Vec<BBox>,
    gt_masks: Vec<Mask>,
    crowd: Vec<bool>,
}

fn detection_images(r: &Value) -> Vec<Image> {
    r["detection"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| {
            let (w, h) = (
                im["width"].as_u64().unwrap() as usize,
                im["height"].as_u64().unwrap() as usize,
            );
            let mut out = Image {
                dts: vec![],
                masks: vec![],
                gts: vec![],
                gt_masks: vec![],
                crowd: vec![],
            };
            for d in im["dt"].as_array().unwrap() {
                let [x0, y0, x1, y1] = coords(&d["box"]);
                let det = Detection {
                    x0,
                    y0,
                    x1,
                    y1,
                    class: d["class"].as_u64().unwrap() as usize,
                    score: f(&d["score"]) as f32,
                };
                out.dts.push(det);
                out.masks.push(InstanceMask {
                    detection: det,
                    width: w,
                    height: h,
                    mask: decode_runs(&d["mask"], w * h),
                });
            }
            for g in im["gt"].as_array().unwrap() {
                let [x0, y0, x1, y1] = coords(&g["box"]);
                let class = g["class"].as_u64().unwrap() as usize;
                out.gts.push(BBox {
                    x0,
                    y0,
                    x1,
                    y1,
                    class,
                });
                out.gt_masks.push(Mask {
                    width: w,
                    height: h,
                    data: decode_runs(&g["mask"], w * h),
                    class,
                });
                out.crowd.push(g["crowd"].as_bool().unwrap());
            }
            out
        })
        .collect()
}

fn check_coco(what: &str, got: &CocoSummary, want: &Value) {
    let stats: Vec<f64> = want["stats"].as_array().unwrap().iter().map(f).collect();
    let ours = [
        got.map,
        got.map_50,
        got.map_75,
        got.map_small,
        got.map_medium,
        got.map_large,
        got.ar_1,
        got.ar_10,
        got.ar_100,
        got.ar_small,
        got.ar_medium,
        got.ar_large,
    ];
    for (i, (o, w)) in ours.iter().zip(&stats).enumerate() {
        close(&format!("{what} stats[{i}]"), o.unwrap_or(-1.0), *w);
    }
    let per_class = want["per_class_ap"].as_object().unwrap();
    assert_eq!(
        got.per_class_ap.len(),
        per_class.len(),
        "{what}: classes with ground truth"
    );
    for (c, w) in per_class {
        close(
            &format!("{what} class {c}"),
            got.per_class_ap[&c.parse::<usize>().unwrap()],
            f(w),
        );
    }
}

#[test]
fn coco_box_and_mask_map_match_pycocotools() {
    let r = reference();
    let images = detection_images(&r);
    let (mut boxes, mut masks) = (BoxMap::new(), MaskMap::new());
    for im in &images {
        boxes
            .update_with_crowd(&im.dts, &im.gts, &im.crowd)
            .unwrap();
        masks
            .update_with_crowd(&im.masks, &im.gt_masks, &im.crowd)
            .unwrap();
    }
    assert_eq!(boxes.images(), images.len());
    let bbox = boxes.compute();
    check_coco("bbox", &bbox, &r["detection"]["bbox"]);
    check_coco("segm", &masks.compute(), &r["detection"]["segm"]);
    // class 3's only ground truth is a crowd region and class 4 has none: no AP
    assert!(!bbox.per_class_ap.contains_key(&3) && !bbox.per_class_ap.contains_key(&4));
}

#[test]
fn voc_map_matches_mmdetection_algorithm() {
    let r = reference();
    let mut voc = VocMap::new();
    for im in detection_images(&r) {
        voc.update_with_crowd(&im.dts, &im.gts, &im.crowd).unwrap();
    }
    let got = voc.compute();
    let want = &r["detection"]["voc"];
    close("voc map", got.map.unwrap(), f(&want["map"]));
    let per_class = want["per_class_ap"].as_object().unwrap();
    assert_eq!(got.per_class_ap.len(), per_class.len());
    for (c, w) in per_class {
        close(
            &format!("voc class {c}"),
            got.per_class_ap[&c.parse::<usize>().unwrap()],
            f(w),
        );
    }
}

fn det(b: [f32; 4], class: usize, score: f32) -> Detection {
    Detection {
        x0: b[0],
        y0: b[1],
        x1: b[2],
        y1: b[3],
        class,
        score,
    }
}

fn bbox(b: [f32; 4], class: usize) -> BBox {
    BBox {
        x0: b[0],
        y0: b[1],
        x1: b[2],
        y1: b[3],
        class,
    }
}

#[test]
fn detection_hand_cases() {
    let gt = vec![vec![
        bbox([0., 0., 10., 10.], 0),
        bbox([20., 20., 60., 60.], 1),
    ]];
    // perfect predictions: every AP and AR is 1
    let perfect = vec![vec![
        det([0., 0., 10., 10.], 0, 0.9),
        det([20., 20., 60., 60.], 1, 0.8),
    ]];
    let s = box_map(&perfect, &gt).unwrap();
    // (pycocotools' precision is tp / (tp + fp + eps): 1 up to 2e-16)
    for v in [
        s.map,
        s.map_50,
        s.map_75,
        s.map_small,
        s.map_medium,
        s.ar_1,
        s.ar_100,
    ] {
        close("perfect", v.unwrap(), 1.0);
    }
    assert_eq!(s.map_large, None, "no large ground truth: pycocotools' -1");
    assert_eq!(voc_map(&perfect, &gt).unwrap().map, Some(1.0));
    // no detections: AP 0; a duplicate is a false positive but the hit still ranks first
    assert_eq!(box_map(&[vec![]], &gt).unwrap().map, Some(0.0));
    let dup = vec![vec![
        det([0., 0., 10., 10.], 0, 0.9),
        det([0., 0., 10., 10.], 0, 0.5),
        det([20., 20., 60., 60.], 1, 0.8),
    ]];
    close("duplicate", box_map(&dup, &gt).unwrap().map.unwrap(), 1.0);
    // a box shifted to IoU 1/3 fails every threshold
    let shifted = vec![vec![det([5., 0., 15., 10.], 0, 0.9)]];
    assert_eq!(box_map(&shifted, &gt).unwrap().per_class_ap[&0], 0.0);
    // no ground truth at all: every summary number is absent, not NaN
    let none = box_map(&[vec![det([0., 0., 1., 1.], 0, 0.5)]], &[vec![]]).unwrap();
    assert_eq!(none.map, None);
    assert!(none.per_class_ap.is_empty());
    assert_eq!(voc_map(&[vec![]], &[vec![]]).unwrap().map, None);
    // a detection inside a crowd region is neither a hit nor a false positive
    let mut m = BoxMap::new();
    m.update_with_crowd(
        &[
            det([0., 0., 10., 10.], 0, 0.9),
            det([100., 100., 110., 110.], 0, 0.95),
        ],
        &[bbox([0., 0., 10., 10.], 0), bbox([90., 90., 130., 130.], 0)],
        &[false, true],
    )
    .unwrap();
    close("crowd", m.compute().map.unwrap(), 1.0);
    // masks: a perfect mask is AP 1
    let mut mask = vec![0u8; 16];
    mask[5] = 1;
    mask[6] = 1;
    let pred = InstanceMask {
        detection: det([1., 1., 3., 2.], 2, 0.7),
        width: 4,
        height: 4,
        mask: mask.clone(),
    };
    let gt = Mask {
        width: 4,
        height: 4,
        data: mask,
        class: 2,
    };
    close(
        "mask",
        mask_map(&[vec![pred]], &[vec![gt]]).unwrap().map.unwrap(),
        1.0,
    );
}

fn class_map(v: &Value) -> (ClassMap, ClassMap) {
    let (w, h) = (
        v["width"].as_u64().unwrap() as usize,
        v["height"].as_u64().unwrap() as usize,
    );
    let m = |k: &str| ClassMap {
        width: w,
        height: h,
        classes: usizes(&v[k]).into_iter().map(|c| c as u32).collect(),
    };
    (m("pred"), m("target"))
}

fn optional(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(Value::as_f64).collect()
}

fn close_optional(what: &str, got: &[Option<f64>], want: &[Option<f64>]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (Some(g), Some(w)) => close(&format!("{what} class {c}"), *g, *w),
            (None, None) => {}
            _ => panic!("{what} class {c}: got {g:?}, reference {w:?}"),
        }
    }
}

#[test]
fn semantic_segmentation_matches_mmseg_convention() {
    let r = reference();
    let s = &r["semantic"];
    let classes = s["classes"].as_u64().unwrap() as usize;
    let ignore = s["ignore_index"].as_u64().unwrap() as u32;
    let (pred, target): (Vec<ClassMap>, Vec<ClassMap>) = s["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(class_map)
        .unzip();
    let got = segmentation_scores(&pred, &target, classes, Some(ignore)).unwrap();
    close("miou", got.miou, f(&s["miou"]));
    close(
        "pixel accuracy",
        got.pixel_accuracy,
        f(&s["pixel_accuracy"]),
    );
    close("mean accuracy", got.mean_accuracy, f(&s["mean_accuracy"]));
    close_optional("iou", &got.per_class_iou, &optional(&s["per_class_iou"]));
    close_optional(
        "accuracy",
        &got.per_class_accuracy,
        &optional(&s["per_class_accuracy"]),
    );
    assert_eq!(got.per_class_iou[5], None, "class 5 is absent from both");
    assert_eq!(got.per_class_iou[4], Some(0.0), "class 4 is only predicted");

    // hand cases: perfect prediction; ignored pixels do not count
    let t = ClassMap {
        width: 3,
        height: 1,
        classes: vec![0, 1, 255],
    };
    let p = ClassMap {
        width: 3,
        height: 1,
        classes: vec![0, 1, 0],
    };
    let perfect = segmentation_scores(&[p], &[t], 3, Some(255)).unwrap();
    assert_eq!((perfect.miou, perfect.pixel_accuracy), (1.0, 1.0));
    assert_eq!(perfect.per_class_iou, vec![Some(1.0), Some(1.0), None]);
    // one of two pixels wrong: class 0 IoU 1/2, class 1 IoU 0
    let half = segmentation_scores(
        &[ClassMap {
            width: 2,
            height: 1,
            classes: vec![0, 0],
        }],
        &[ClassMap {
            width: 2,
            height: 1,
            classes: vec![0, 1],
        }],
        2,
        None,
    )
    .unwrap();
    assert_eq!(
        (half.miou, half.pixel_accuracy, half.mean_accuracy),
        (0.25, 0.5, 0.5)
    );
}

fn kps(v: &Value) -> (Vec<Keypoint>, Vec<PredictedKeypoint>) {
    let gt = v["gt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let k = k.as_array().unwrap();
            Keypoint {
                x: f(&k[0]) as f32,
                y: f(&k[1]) as f32,
                visibility: k.get(2).map_or(2, |v| f(v) as u8),
            }
        })
        .collect();
    let pred = v["pred"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| PredictedKeypoint {
            x: f(&k[0]) as f32,
            y: f(&k[1]) as f32,
            score: 1.0,
        })
        .collect();
    (gt, pred)
}

#[test]
fn keypoint_pck_and_nme_match_mmpose() {
    let r = reference();
    let k = &r["keypoints"];
    let inst = k["instances"].as_array().unwrap();
    let (gts, preds): (Vec<_>, Vec<_>) = inst.iter().map(kps).unzip();
    let boxes: Vec<Normalizer> = inst
        .iter()
        .map(|i| {
            let [x0, y0, x1, y1] = coords(&i["box"]);
            Normalizer::BoxSize(bbox([x0, y0, x1, y1], 0))
        })
        .collect();
    let lengths: Vec<Normalizer> = inst
        .iter()
        .map(|i| Normalizer::Length(f(&i["length"])))
        .collect();
    let eyes = vec![Normalizer::InterOcular { left: 1, right: 2 }; inst.len()];

    let by_box = pck(&preds, &gts, &boxes, 0.2).unwrap();
    close("pck box 0.2", by_box.pck, f(&k["pck_box_0.2"]));
    close_optional(
        "pck box per keypoint",
        &by_box.per_keypoint,
        &optional(&k["pck_box_0.2_per_keypoint"]),
    );
    let by_len = pck(&preds, &gts, &lengths, 0.1).unwrap();
    close("pck length 0.1", by_len.pck, f(&k["pck_length_0.1"]));
    close_optional(
        "pck length per keypoint",
        &by_len.per_keypoint,
        &optional(&k["pck_length_0.1_per_keypoint"]),
    );
    close(
        "nme eyes",
        nme(&preds, &gts, &eyes).unwrap(),
        f(&k["nme_eyes"]),
    );
    close(
        "nme box",
        nme(&preds, &gts, &boxes).unwrap(),
        f(&k["nme_box"]),
    );

    let (fg, fp): (Vec<_>, Vec<_>) = k["faces"].as_array().unwrap().iter().map(kps).unzip();
    let io = vec![
        Normalizer::InterOcular {
            left: 36,
            right: 45
        };
        fg.len()
    ];
    // accumulator, one face at a time
    let mut m = Nme::new();
    for ((p, g), n) in fp.iter().zip(&fg).zip(&io) {
        m.update(p, g, n).unwrap();
    }
    close("nme 300W", m.compute().unwrap(), f(&k["nme_300w"]));

    // hand cases: exact predictions; a point 0.3 box sizes away misses PCK@0.2
    let g = vec![
        Keypoint {
            x: 0.0,
            y: 0.0,
            visibility: 2,
        },
        Keypoint {
            x: 10.0,
            y: 0.0,
            visibility: 2,
        },
    ];
    let exact: Vec<PredictedKeypoint> = g
        .iter()
        .map(|k| PredictedKeypoint {
            x: k.x,
            y: k.y,
            score: 1.0,
        })
        .collect();
    let norm = [Normalizer::Length(10.0)];
    assert_eq!(
        pck(&[exact.clone()], &[g.clone()], &norm, 0.2).unwrap().pck,
        1.0
    );
    assert_eq!(nme(&[exact.clone()], &[g.clone()], &norm).unwrap(), 0.0);
    let mut off = exact.clone();
    off[1].y = 3.0;
    assert_eq!(
        pck(&[off.clone()], &[g.clone()], &norm, 0.2)
            .unwrap()
            .per_keypoint,
        vec![Some(1.0), Some(0.0)]
    );
    close("nme hand", nme(&[off], &[g.clone()], &norm).unwrap(), 0.15);
    // a keypoint with visibility 0 is not counted
    let mut hidden = g.clone();
    hidden[1].visibility = 0;
    let far = vec![
        exact[0],
        PredictedKeypoint {
            x: 99.0,
            y: 99.0,
            score: 1.0,
        },
    ];
    assert_eq!(
        pck(&[far], &[hidden], &norm, 0.2).unwrap().per_keypoint,
        vec![Some(1.0), None]
    );
}

#[test]
fn cer_and_wer_match_jiwer() {
    let r = reference();
    let t = &r["text"];
    let (refs, hyps) = (strings(&t["references"]), strings(&t["hypotheses"]));
    close("wer", wer(&hyps, &refs).unwrap(), f(&t["wer"]));
    close("cer", cer(&hyps, &refs).unwrap(), f(&t["cer"]));
    // accumulated in two batches
    let mut m = ErrorRate::new(ErrorUnit::Word);
    m.update(&hyps[..3], &refs[..3]).unwrap();
    m.update(&hyps[3..], &refs[3..]).unwrap();
    close("wer batches", m.compute().unwrap(), f(&t["wer"]));
    // hand cases
    assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
    assert_eq!(wer(&["a b c"], &["a b c"]).unwrap(), 0.0);
    assert_eq!(wer(&["a x c d"], &["a b c"]).unwrap(), 2.0 / 3.0);
    assert_eq!(cer(&[""], &["abcd"]).unwrap(), 1.0);
}

#[test]
fn bleu_matches_sacrebleu() {
    let r = reference();
    let t = &r["text"];
    for (raw, want) in t["tokenized_13a"].as_object().unwrap() {
        assert_eq!(
            tokenize_13a(raw.trim_end()),
            want.as_str().unwrap(),
            "13a of {raw:?}"
        );
    }
    let hyps = strings(&t["bleu_hypotheses"]);
    let (a, b) = (strings(&t["bleu_refs_a"]), strings(&t["bleu_refs_b"]));
    for (name, smoothing) in [
        ("exp", BleuSmoothing::Exp),
        ("none", BleuSmoothing::None),
        ("floor", BleuSmoothing::Floor(0.1)),
        ("add-k", BleuSmoothing::AddK(1.0)),
    ] {
        for (refs, streams) in [("two_refs", vec![&a, &b]), ("one_ref", vec![&a])] {
            let mut m = Bleu::new(smoothing);
            for (i, h) in hyps.iter().enumerate() {
                let rs: Vec<&str> = streams.iter().map(|s| s[i].as_str()).collect();
                m.update(h, &rs).unwrap();
            }
            let got = m.compute();
            let want = &t["bleu"][format!("{name}/{refs}")];
            close(&format!("bleu {name}/{refs}"), got.score, f(&want["score"]));
            close(
                &format!("bp {name}/{refs}"),
                got.brevity_penalty,
                f(&want["bp"]),
            );
            // sacrebleu's add-k adds k to its reported counts of n >= 2 in place
            let k = if name == "add-k" { 1 } else { 0 };
            let unsmoothed = |key: &str| -> Vec<u64> {
                usizes(&want[key])
                    .iter()
                    .enumerate()
                    .map(|(n, &c)| c as u64 - if n > 0 { k } else { 0 })
                    .collect()
            };
            assert_eq!(
                got.correct.to_vec(),
                unsmoothed("counts"),
                "counts {name}/{refs}"
            );
            assert_eq!(
                got.total.to_vec(),
                unsmoothed("totals"),
                "totals {name}/{refs}"
            );
            assert_eq!(
                (got.sys_len, got.ref_len),
                (
                    want["sys_len"].as_u64().unwrap(),
                    want["ref_len"].as_u64().unwrap()
                )
            );
        }
    }
    let refs: Vec<Vec<String>> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| vec![x.clone(), y.clone()])
        .collect();
    close(
        "corpus_bleu",
        corpus_bleu(&hyps, &refs).unwrap().score,
        f(&t["bleu"]["exp/two_refs"]["score"]),
    );
    // hand cases: identical text is 100, nothing in common is 0
    let same = corpus_bleu(
        &["the cat sat on the mat ."],
        &[vec!["the cat sat on the mat ."]],
    )
    .unwrap();
    close("bleu identical", same.score, 100.0);
    assert_eq!(
        corpus_bleu(&["a b c d"], &[vec!["w x y z"]]).unwrap().score,
        0.0
    );
}

#[test]
fn perplexity_matches_torchmetrics() {
    let r = reference();
    let t = &r["text"];
    let lp: Vec<f64> = t["log_probs"].as_array().unwrap().iter().map(f).collect();
    close("perplexity", perplexity(&lp).unwrap(), f(&t["perplexity"]));
    close(
        "perplexity from nll",
        perplexity_from_mean_nll(f(&t["mean_nll"])).unwrap(),
        f(&t["perplexity"]),
    );
    let mut m = Perplexity::new();
    m.update_log_probs(&lp[..10]).unwrap();
    m.update_log_probs(&lp[10..]).unwrap();
    close(
        "perplexity batches",
        m.compute().unwrap(),
        f(&t["perplexity"]),
    );
    // a model certain of every token has perplexity 1; uniform over 4 has 4
    assert_eq!(perplexity(&[0.0, 0.0]).unwrap(), 1.0);
    close("uniform", perplexity(&[(0.25f64).ln(); 3]).unwrap(), 4.0);
}

fn is_config(r: Result<impl std::fmt::Debug, TrainError>, key: &str) {
    match r {
        Err(TrainError::Config { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected a config error on `{key}`, got {other:?}"),
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    is_config(prf(&[0, 1], &[0], 2, Average::Micro), "pred");
    is_config(prf(&[0, 5], &[0, 1], 2, Average::Micro), "pred");
    is_config(
        ClassCounts::new(3).average(Average::Macro),
        "classification",
    );
    is_config(
        multilabel_prf(&[vec![0, 2]], &[vec![0, 1]], Average::Micro),
        "pred",
    );
    let mut mixed = ClassCounts::new(2);
    mixed.update(&[0], &[1]).unwrap();
    is_config(
        mixed.update_multilabel(&[vec![0, 1]], &[vec![1, 1]]),
        "classification",
    );

    let g = [bbox([0., 0., 1., 1.], 0)];
    is_config(box_map(&[vec![]], &[]), "detections");
    is_config(
        BoxMap::new().update_with_crowd(&[], &g, &[true, false]),
        "crowd",
    );
    is_config(
        BoxMap::new().update(&[det([0., 0., f32::NAN, 1.], 0, 0.5)], &g),
        "detections",
    );
    let small = Mask {
        width: 2,
        height: 2,
        data: vec![0, 1, 1, 0],
        class: 0,
    };
    let big = InstanceMask {
        detection: det([0., 0., 1., 1.], 0, 0.5),
        width: 3,
        height: 2,
        mask: vec![0; 6],
    };
    is_config(MaskMap::new().update(&[big], &[small]), "ground_truth");
    is_config(VocMap::with_iou_threshold(0.0), "iou_threshold");

    let m = |c: Vec<u32>| ClassMap {
        width: c.len(),
        height: 1,
        classes: c,
    };
    is_config(
        segmentation_scores(&[m(vec![0, 1])], &[m(vec![0, 7])], 2, Some(255)),
        "target",
    );
    is_config(
        segmentation_scores(&[m(vec![0, 3])], &[m(vec![0, 1])], 2, Some(255)),
        "pred",
    );
    is_config(
        segmentation_scores(&[m(vec![0])], &[m(vec![0, 1])], 2, None),
        "pred",
    );
    is_config(
        segmentation_scores(&[m(vec![0])], &[m(vec![255])], 2, Some(255)),
        "target",
    );

    let k = vec![Keypoint {
        x: 0.0,
        y: 0.0,
        visibility: 2,
    }];
    let p = vec![PredictedKeypoint {
        x: 0.0,
        y: 0.0,
        score: 1.0,
    }];
    is_config(Pck::new(0.0), "alpha");
    is_config(
        pck(&[vec![]], &[k.clone()], &[Normalizer::Length(1.0)], 0.2),
        "pred",
    );
    is_config(
        nme(&[p.clone()], &[k.clone()], &[Normalizer::Length(-1.0)]),
        "normalizer",
    );
    is_config(
        nme(
            &[p.clone()],
            &[k.clone()],
            &[Normalizer::InterOcular { left: 0, right: 3 }],
        ),
        "normalizer",
    );
    // a zero reference length skips the instance, so nothing is counted
    is_config(nme(&[p], &[k], &[Normalizer::Length(0.0)]), "gt");

    is_config(wer(&["a"], &["a", "b"]), "hypotheses");
    is_config(wer(&["a"], &["   "]), "references");
    is_config(Bleu::default().update("a", &[] as &[&str]), "references");
    is_config(perplexity(&[]), "log_probs");
    is_config(perplexity(&[0.5]), "log_probs");
    is_config(perplexity(&[f64::NAN]), "log_probs");
    is_config(perplexity_from_mean_nll(f64::INFINITY), "mean_nll");
}

#[test]
fn metric_names_round_trip_through_configs() {
    #[derive(serde::Deserialize)]
    struct C {
        m: Vec<Metric>,
    }
    let names = [
        "accuracy",
        "top5",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "f1_micro",
        "precision_micro",
        "recall_micro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "map",
        "map_50",
        "map_75",
        "mask_map",
        "mask_map_50",
        "mask_map_75",
        "voc_map",
        "miou",
        "pixel_accuracy",
        "pck",
        "nme",
        "keypoint_ap",
        "keypoint_ap_50",
        "keypoint_ap_75",
        "keypoint_ap_medium",
        "keypoint_ap_large",
        "keypoint_ar",
        "cer",
        "wer",
        "bleu",
        "perplexity",
    ];
    let toml_text = format!(
        "m = [{}]",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let parsed: C = toml::from_str(&toml_text).unwrap();
    let back: Vec<&str> = parsed.m.iter().map(|m| m.name()).collect();
    assert_eq!(back, names);
    let classification: Vec<&str> = parsed
        .m
        .iter()
        .filter(|m| m.is_classification())
        .map(|m| m.name())
        .collect();
    assert_eq!(classification, names[..11]);
    assert!(toml::from_str::<C>("m = [\"mAP\"]").is_err());
}

mod evaluator {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use unidl_backend::Device;
    use unidl_data::Sample;
    use unidl_data::transform::Compose;
    use unidl_tensor::Tensor;
    use unidl_train::*;

    #[derive(Module, Debug)]
    struct Tiny {
        lin: Linear,
    }

    /// Never reached: the metric check comes before any inference.
    struct Unused;

    impl Predictor<Tiny> for Unused {
        fn outputs(&self, _: &Tiny, _: &[Sample], _: &Device) -> Result<Tensor> {
            Err(TrainError::Model("the evaluator must not infer".into()))
        }
    }

    #[test]
    fn classification_evaluator_refuses_task_metrics_with_a_config_error() {
        let dev = Device::flex();
        let infer = construct_inference(
            Tiny {
                lin: LinearConfig::new(2, 2).init(&dev),
            },
            Unused,
            Compose(vec![]),
            Classification {
                class_names: vec!["a".into(), "b".into()],
            },
            InferOptions::default(),
            &dev,
        )
        .unwrap();
        let config = EvalConfig::new;
        let ev = construct_evalvater(&infer, config(vec![Metric::Accuracy, Metric::F1Weighted]))
            .unwrap();
        for bad in [Metric::Map, Metric::Miou, Metric::Bleu, Metric::Perplexity] {
            match ev.evalvate(None, Some(&config(vec![Metric::Accuracy, bad]))) {
                Err(TrainError::Config { key, reason }) => {
                    assert_eq!(key, "eval_metric");
                    assert!(reason.contains(bad.name()), "{reason}");
                }
                other => panic!("{bad:?}: expected a config error, got {other:?}"),
            }
        }
        // classification metrics pass the check and reach the data-set lookup
        match ev.evalvate(None, None) {
            Err(TrainError::Config { key, .. }) => assert_eq!(key, "default_dataset"),
            other => panic!("expected the missing data set, got {other:?}"),
        }
    }
}

/// chrF against sacrebleu 2.6.0's `CHRF()` (`reference/gen_chrf.py`):
/// corpus scores with one and two references, and every sentence alone.
#[test]
fn chrf_matches_sacrebleu() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/chrf.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hyps = strings(&r["hypotheses"]);
    let (a, b) = (strings(&r["refs_a"]), strings(&r["refs_b"]));
    let mut one = ChrF::new();
    let mut two = ChrF::new();
    for (i, h) in hyps.iter().enumerate() {
        one.update(h, &[&a[i]]).unwrap();
        two.update(h, &[&a[i], &b[i]]).unwrap();
        let mut s = ChrF::new();
        s.update(h, &[&a[i]]).unwrap();
        close(
            &format!("chrf sentence {i}"),
            s.compute(),
            f(&r["sentences"][i]),
        );
    }
    close(
        "chrf corpus, one reference",
        one.compute(),
        f(&r["corpus_one_ref"]),
    );
    close(
        "chrf corpus, two references",
        two.compute(),
        f(&r["corpus_two_refs"]),
    );
    assert!(ChrF::new().update("x", &[] as &[&str]).is_err());
}
