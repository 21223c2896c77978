//! COCO keypoint AP against pycocotools' `COCOeval(iouType="keypoints")`:
//! inputs, OKS matrices and the ten `stats` from
//! `tests/reference/keypoint_ap.json` (written by `gen_keypoint_ap.py`);
//! the evaluation task on the same data; hand cases and error cases.

use serde_json::Value;
use unidl_data::{BBox, Keypoint, PreparedDataset, Sample};
use unidl_train::metrics::*;
use unidl_train::outputs::PredictedKeypoint;
use unidl_train::{EvaluationTask, KeypointTask, Metric, TrainError};

const TOL: f64 = 1e-6;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/keypoint_ap.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn triples(v: &Value) -> Vec<[f64; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let k = k.as_array().unwrap();
            [f(&k[0]), f(&k[1]), f(&k[2])]
        })
        .collect()
}

struct Image {
    preds: Vec<PosePrediction>,
    gts: Vec<PoseGroundTruth>,
    /// pycocotools' OKS matrix: predictions sorted by score and cut to 20 × ground truth.
    oks: Vec<Vec<f64>>,
}

fn images(case: &Value) -> Vec<Image> {
    case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|im| Image {
            preds: im["dt"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| PosePrediction {
                    keypoints: triples(&d["keypoints"])
                        .iter()
                        .map(|k| PredictedKeypoint {
                            x: k[0] as f32,
                            y: k[1] as f32,
                            score: k[2] as f32,
                        })
                        .collect(),
                    score: f(&d["score"]),
                })
                .collect(),
            gts: im["gt"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| {
                    let b: Vec<f32> = g["box"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| f(x) as f32)
                        .collect();
                    PoseGroundTruth {
                        keypoints: triples(&g["keypoints"])
                            .iter()
                            .map(|k| Keypoint {
                                x: k[0] as f32,
                                y: k[1] as f32,
                                visibility: k[2] as u8,
                            })
                            .collect(),
                        bbox: BBox {
                            x0: b[0],
                            y0: b[1],
                            x1: b[2],
                            y1: b[3],
                            class: 0,
                        },
                        area: g["area"].as_f64(),
                        crowd: g["crowd"].as_bool().unwrap(),
                    }
                })
                .collect(),
            oks: im["oks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row.as_array().unwrap().iter().map(f).collect())
                .collect(),
        })
        .collect()
}

fn sigmas(case: &Value) -> Option<Vec<f64>> {
    case["sigmas"].as_array().map(|s| s.iter().map(f).collect())
}

fn check_stats(what: &str, got: &KeypointApSummary, want: &Value) {
    let want: Vec<f64> = want.as_array().unwrap().iter().map(f).collect();
    assert_eq!(want.len(), 10);
    for (i, (g, w)) in got.stats().iter().zip(&want).enumerate() {
        let g = g.unwrap_or(-1.0);
        assert!(
            (g - w).abs() <= TOL,
            "{what} stats[{i}]: got {g}, pycocotools {w}"
        );
    }
}

#[test]
fn keypoint_ap_matches_pycocotools() {
    let r = reference();
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let sigmas = sigmas(case);
        let ims = images(case);
        let mut ap = match &sigmas {
            Some(s) => KeypointAp::with_sigmas(s).unwrap(),
            None => KeypointAp::new(),
        };
        for (i, im) in ims.iter().enumerate() {
            // OKS as pycocotools computed it, predictions in its order
            let mut order: Vec<usize> = (0..im.preds.len()).collect();
            order.sort_by(|&a, &b| im.preds[b].score.total_cmp(&im.preds[a].score));
            order.truncate(20);
            if im.gts.is_empty() || im.preds.is_empty() {
                assert!(im.oks.is_empty(), "{name} image {i}");
            } else {
                assert_eq!(im.oks.len(), order.len(), "{name} image {i}");
                for (row, &d) in im.oks.iter().zip(&order) {
                    for (g, want) in im.gts.iter().zip(row) {
                        let got = object_keypoint_similarity(
                            &im.preds[d].keypoints,
                            g,
                            sigmas.as_deref(),
                        )
                        .unwrap();
                        assert!(
                            (got - want).abs() <= 1e-12,
                            "{name} image {i}: OKS {got}, pycocotools {want} ({g:?})"
                        );
                    }
                }
            }
            ap.update(&im.preds, &im.gts).unwrap();
        }
        assert_eq!(ap.images(), ims.len());
        let got = ap.compute();
        check_stats(name, &got, &case["stats"]);
        // the one-shot function agrees
        let (preds, gts): (Vec<_>, Vec<_>) = ims.into_iter().map(|im| (im.preds, im.gts)).unzip();
        assert_eq!(keypoint_ap(&preds, &gts, sigmas.as_deref()).unwrap(), got);
    }
}

fn empty_dataset() -> PreparedDataset {
    #[derive(Debug)]
    struct Empty;
    impl unidl_data::Dataset for Empty {
        fn len(&self) -> usize {
            0
        }
        fn get(&self, _: usize) -> unidl_data::Result<Sample> {
            unreachable!()
        }
    }
    PreparedDataset::new(
        std::sync::Arc::new(Empty),
        unidl_data::transform::Compose(vec![]),
        0,
        ".".into(),
    )
}

const AP_METRICS: [Metric; 6] = [
    Metric::KeypointAp,
    Metric::KeypointAp50,
    Metric::KeypointAp75,
    Metric::KeypointApMedium,
    Metric::KeypointApLarge,
    Metric::KeypointAr,
];

/// The evaluation task on samples built the way the COCO reader fills them:
/// every instance's keypoints linked to its box, crowd flags and areas; one
/// predicted pose per sample, scored by its keypoints' mean score. Checked
/// against the accumulator fed the same poses directly.
#[test]
fn keypoint_task_feeds_every_instance_of_a_sample() {
    let r = reference();
    let case = &r["cases"][0];
    let ims = images(case);
    let task = KeypointTask {
        alpha: 0.2,
        length: None,
        eyes: None,
        sigmas: None,
    };
    for m in AP_METRICS {
        assert!(task.supports(m), "{m:?}");
    }
    let mut acc = task.start(&AP_METRICS, &empty_dataset()).unwrap();
    let mut direct = KeypointAp::new();
    let (mut outputs, mut samples) = (Vec::new(), Vec::new());
    for (i, im) in ims.iter().enumerate() {
        let mut s = Sample {
            source: format!("image {i}"),
            ..Sample::default()
        };
        for (b, g) in im.gts.iter().enumerate() {
            s.targets.boxes.push(g.bbox);
            s.targets.crowd.push(g.crowd);
            s.targets.areas.push(g.area());
            s.targets.instance_keypoints.push(g.keypoints.clone());
            s.targets.keypoint_boxes.push(b);
        }
        // the best-scored prediction, its keypoint scores set to its score
        let best = im
            .preds
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|p| {
                p.keypoints
                    .iter()
                    .map(|k| PredictedKeypoint {
                        score: p.score as f32,
                        ..*k
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let poses: Vec<PosePrediction> = if best.is_empty() {
            vec![]
        } else {
            vec![PosePrediction::from_keypoints(best.clone())]
        };
        direct.update(&poses, &im.gts).unwrap();
        outputs.push(best);
        samples.push(s);
    }
    acc.update(&outputs, &samples).unwrap();
    let scores = acc.compute().unwrap();
    let want = direct.compute();
    let pairs = [
        ("keypoint_ap", want.ap),
        ("keypoint_ap_50", want.ap_50),
        ("keypoint_ap_75", want.ap_75),
        ("keypoint_ap_medium", want.ap_medium),
        ("keypoint_ap_large", want.ap_large),
        ("keypoint_ar", want.ar),
    ];
    assert_eq!(scores.len(), pairs.len());
    for (name, w) in pairs {
        assert_eq!(scores[name], w.unwrap(), "{name}");
    }
    assert!(want.ap.unwrap() > 0.0);

    // five joints without sigmas: a config error naming the count
    let mut s = Sample::default();
    s.targets.keypoints = vec![
        Keypoint {
            x: 1.0,
            y: 1.0,
            visibility: 2
        };
        5
    ];
    s.targets.boxes.push(BBox {
        x0: 0.0,
        y0: 0.0,
        x1: 4.0,
        y1: 4.0,
        class: 0,
    });
    let pred = vec![
        PredictedKeypoint {
            x: 1.0,
            y: 1.0,
            score: 0.5
        };
        5
    ];
    let mut acc = task.start(&[Metric::KeypointAp], &empty_dataset()).unwrap();
    match acc.update(std::slice::from_ref(&pred), std::slice::from_ref(&s)) {
        Err(TrainError::Config { key, reason }) => {
            assert_eq!(key, "predictions");
            assert!(
                reason.contains("5 keypoints") && reason.contains("17"),
                "{reason}"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    // with five sigmas the same sample scores a perfect AP
    let task5 = KeypointTask {
        sigmas: Some(vec![0.05; 5]),
        ..task
    };
    let mut acc = task5
        .start(&[Metric::KeypointAp], &empty_dataset())
        .unwrap();
    acc.update(&[pred], &[s]).unwrap();
    near(acc.compute().unwrap()["keypoint_ap"], 1.0);
}

/// Equal up to pycocotools' `tp / (tp + fp + eps)` (1 − 1.1e-16 for a perfect score).
fn near(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

fn kp(x: f32, y: f32, visibility: u8) -> Keypoint {
    Keypoint { x, y, visibility }
}

fn pk(x: f32, y: f32, score: f32) -> PredictedKeypoint {
    PredictedKeypoint { x, y, score }
}

#[test]
fn oks_hand_cases() {
    let sigmas = [0.1, 0.2];
    let gt = PoseGroundTruth {
        keypoints: vec![kp(10.0, 10.0, 2), kp(20.0, 10.0, 0)],
        bbox: BBox {
            x0: 0.0,
            y0: 0.0,
            x1: 20.0,
            y1: 20.0,
            class: 0,
        },
        area: Some(100.0),
        crowd: false,
    };
    // exact on the one labelled keypoint: 1, whatever the unlabelled one does
    let exact = [pk(10.0, 10.0, 1.0), pk(99.0, 99.0, 1.0)];
    let oks = object_keypoint_similarity(&exact, &gt, Some(&sigmas)).unwrap();
    assert_eq!(oks, 1.0);
    // 3 px off: exp(-9 / (2·0.1)² / 100 / 2)
    let off = [pk(13.0, 10.0, 1.0), pk(0.0, 0.0, 1.0)];
    let oks = object_keypoint_similarity(&off, &gt, Some(&sigmas)).unwrap();
    let want = (-9.0f64 / 0.04 / (100.0 + f64::EPSILON) / 2.0).exp();
    assert!((oks - want).abs() < 1e-15, "{oks} vs {want}");
    // no area: the box's 400
    let boxed = PoseGroundTruth {
        area: None,
        ..gt.clone()
    };
    let oks = object_keypoint_similarity(&off, &boxed, Some(&sigmas)).unwrap();
    let want = (-9.0f64 / 0.04 / (400.0 + f64::EPSILON) / 2.0).exp();
    assert!((oks - want).abs() < 1e-15, "{oks} vs {want}");
    // no visible keypoint: distance to the box widened to [-20, 40]²
    let hidden = PoseGroundTruth {
        keypoints: vec![kp(0.0, 0.0, 0), kp(0.0, 0.0, 0)],
        ..gt.clone()
    };
    let inside = [pk(-20.0, 39.0, 1.0), pk(30.0, 30.0, 1.0)];
    assert_eq!(
        object_keypoint_similarity(&inside, &hidden, Some(&sigmas)).unwrap(),
        1.0
    );
    let outside = [pk(-23.0, 0.0, 1.0), pk(30.0, 44.0, 1.0)];
    let oks = object_keypoint_similarity(&outside, &hidden, Some(&sigmas)).unwrap();
    let e = |d2: f64, var: f64| (-(d2 / var / (100.0 + f64::EPSILON) / 2.0)).exp();
    let want = (e(9.0, 0.04) + e(16.0, 0.16)) / 2.0;
    assert!((oks - want).abs() < 1e-15, "{oks} vs {want}");

    // the instance score of a keypoint model: the mean keypoint score
    let p = PosePrediction::from_keypoints(vec![pk(0.0, 0.0, 0.25), pk(1.0, 1.0, 0.75)]);
    assert_eq!(p.score, 0.5);
    assert_eq!(PosePrediction::from_keypoints(vec![]).score, 0.0);
}

#[test]
fn keypoint_ap_hand_cases() {
    let gt = |x: f32, crowd: bool, visibility: u8| PoseGroundTruth {
        keypoints: vec![kp(x + 50.0, 50.0, visibility); 17],
        bbox: BBox {
            x0: x,
            y0: 0.0,
            x1: x + 100.0,
            y1: 100.0,
            class: 0,
        },
        area: None,
        crowd,
    };
    let pose = |x: f32, score: f64| PosePrediction {
        keypoints: vec![pk(x + 50.0, 50.0, 1.0); 17],
        score,
    };
    // two exact poses, one duplicate (a false positive after both hits)
    let s = keypoint_ap(
        &[vec![pose(0.0, 0.9), pose(200.0, 0.8), pose(0.0, 0.1)]],
        &[vec![gt(0.0, false, 2), gt(200.0, false, 2)]],
        None,
    )
    .unwrap();
    near(s.ap.unwrap(), 1.0);
    near(s.ar.unwrap(), 1.0);
    assert_eq!(s.ap_medium, None, "no medium instance: pycocotools' -1");
    near(s.ap_large.unwrap(), 1.0);
    // a crowd and an instance without visible keypoints are ignored: no AP
    // at all, and the predictions they take are not false positives
    let s = keypoint_ap(
        &[vec![pose(0.0, 0.9), pose(200.0, 0.8)], vec![pose(0.0, 0.5)]],
        &[
            vec![gt(0.0, true, 0), gt(200.0, false, 0)],
            vec![gt(0.0, false, 2)],
        ],
        None,
    )
    .unwrap();
    near(s.ap.unwrap(), 1.0);
    near(s.ar.unwrap(), 1.0);
    let s = keypoint_ap(&[vec![pose(0.0, 0.9)]], &[vec![gt(0.0, true, 0)]], None).unwrap();
    assert_eq!(s, KeypointApSummary::default(), "nothing to find: all None");
    // more than 20 poses: only the 20 best count; the true one scores lowest
    let mut many: Vec<PosePrediction> = (0..20)
        .map(|i| pose(300.0, 0.5 + i as f64 / 100.0))
        .collect();
    many.push(pose(0.0, 0.1));
    let s = keypoint_ap(&[many], &[vec![gt(0.0, false, 2)]], None).unwrap();
    assert_eq!((s.ap, s.ar), (Some(0.0), Some(0.0)));
}

fn is_config<T: std::fmt::Debug>(r: Result<T, TrainError>, key: &str, needle: &str) {
    match r {
        Err(TrainError::Config { key: k, reason }) => {
            assert_eq!(k, key, "{reason}");
            assert!(reason.contains(needle), "`{needle}` not in: {reason}");
        }
        other => panic!("expected a config error on `{key}`, got {other:?}"),
    }
}

#[test]
fn keypoint_ap_bad_input_is_a_typed_error() {
    is_config(KeypointAp::with_sigmas(&[]), "sigmas", "not none");
    is_config(KeypointAp::with_sigmas(&[0.1, 0.0]), "sigmas", "sigma 1");
    is_config(KeypointAp::with_sigmas(&[f64::NAN]), "sigmas", "sigma 0");
    let five = PoseGroundTruth {
        keypoints: vec![kp(1.0, 1.0, 2); 5],
        bbox: BBox {
            x0: 0.0,
            y0: 0.0,
            x1: 2.0,
            y1: 2.0,
            class: 0,
        },
        area: None,
        crowd: false,
    };
    // COCO's sigmas cover 17 keypoints; five need their own
    is_config(
        KeypointAp::new().update(&[], std::slice::from_ref(&five)),
        "ground_truth",
        "5 keypoints",
    );
    is_config(
        object_keypoint_similarity(&[pk(0.0, 0.0, 1.0); 5], &five, None),
        "predictions",
        "5 keypoints",
    );
    let mut ap = KeypointAp::with_sigmas(&[0.1; 5]).unwrap();
    is_config(
        ap.update(
            &[PosePrediction {
                keypoints: vec![pk(0.0, 0.0, 1.0); 4],
                score: 1.0,
            }],
            &[],
        ),
        "predictions",
        "4 keypoints but 5 sigmas",
    );
    is_config(
        ap.update(
            &[PosePrediction {
                keypoints: vec![pk(f32::NAN, 0.0, 1.0); 5],
                score: 1.0,
            }],
            &[],
        ),
        "predictions",
        "not finite",
    );
    is_config(
        ap.update(
            &[PosePrediction {
                keypoints: vec![pk(0.0, 0.0, 1.0); 5],
                score: f64::NAN,
            }],
            &[],
        ),
        "predictions",
        "non-finite score",
    );
    is_config(
        ap.update(
            &[],
            &[PoseGroundTruth {
                area: Some(-1.0),
                ..five.clone()
            }],
        ),
        "ground_truth",
        "area -1",
    );
    is_config(
        keypoint_ap(&[vec![]], &[], None),
        "predictions",
        "1 images of predictions but 0 images of ground truth",
    );
    assert_eq!(ap.images(), 0, "a refused image is not added");
}
