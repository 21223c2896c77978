//! Every task family on hand-made batches: collation layout, the loss
//! against a value computed independently on the host (brute force where
//! the loss is a sum over alignments), post-processing and metrics.

use burn::module::{Module, Param};
use burn::tensor::{Bool, Int, Tensor as BT, TensorData};
use unidl_backend::Device;
use unidl_data::sample::HostTensor;
use unidl_data::{BBox, Image, Input, Keypoint, Mask, Sample};
use unidl_train::*;

fn dev() -> Device {
    Device::flex()
}

fn f32s<const D: usize>(t: BT<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

fn i64s<const D: usize>(t: BT<D, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().try_into_vec().unwrap()
}

fn ln_softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::MIN, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Deterministic pseudo-random values in (-2, 2).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as f64 / (1u64 << 31) as f64 * 4.0 - 2.0) as f32
        })
        .collect()
}

fn image(w: usize, h: usize, fill: f32, source: &str) -> Sample {
    let mut img = Image::new(w, h, 1);
    img.data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = fill + i as f32 * 0.01);
    Sample::image(img, None, source)
}

// ---------------------------------------------------------------- video

#[derive(Module, Debug)]
struct MeanClip {
    w: Param<BT<1>>,
}

impl VideoClassifier for MeanClip {
    fn classify_clips(&self, clips: BT<5>) -> BT<2> {
        let [b, ..] = clips.dims();
        let m = clips.flatten::<2>(1, 4).mean_dim(1); // [B, 1]
        m * self.w.val().reshape([1, 3]).expand([b, 3])
    }
}

#[test]
fn video_clips_stack_as_batch_channel_time_height_width() {
    let d = dev();
    let clip = |seed: f32, label: usize| {
        let frames: Vec<Image> = (0..3)
            .map(|t| {
                let mut f = Image::new(2, 2, 2);
                f.data
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = seed + t as f32 * 10.0 + i as f32);
                f
            })
            .collect();
        let mut s = Sample {
            source: format!("clip{label}"),
            ..Sample::default()
        };
        s.inputs.insert("video".into(), Input::Video(frames, 8.0));
        s.targets.label = Some(label);
        s
    };
    let samples = vec![clip(0.0, 0), clip(100.0, 2)];
    let task = VideoClassification::default();
    let b = task.collate(&samples, &d).unwrap();
    assert_eq!(b.clips.dims(), [2, 2, 3, 2, 2]);
    let v = f32s(b.clips.clone());
    // [b=1, c=1, t=2, y=1, x=0] = frame 2 of clip 1, pixel (x 0, y 1), channel 1:
    // value = 100 + 10·t + ((y·W + x)·C + c) = 100 + 20 + 5
    let (bi, ci, ti, yi, xi) = (1usize, 1usize, 2usize, 1usize, 0usize);
    let want = 100.0 + 10.0 * ti as f32 + ((yi * 2 + xi) * 2 + ci) as f32;
    assert_eq!(v[(((bi * 2 + ci) * 3 + ti) * 2 + yi) * 2 + xi], want);
    let model = MeanClip {
        w: Param::from_tensor(BT::from_data(
            TensorData::new(vec![0.01f32, -0.02, 0.03], [3]),
            &d,
        )),
    };
    let logits = f32s(model.classify_clips(b.clips.clone()));
    let mut want = 0.0;
    for (k, l) in [0usize, 2].iter().enumerate() {
        let lp = ln_softmax(
            &logits[k * 3..k * 3 + 3]
                .iter()
                .map(|&x| x as f64)
                .collect::<Vec<_>>(),
        );
        want -= lp[*l] / 2.0;
    }
    let loss = task.loss(&model, &b).unwrap().item().unwrap();
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    let mut short = clip(0.0, 1);
    if let Some(Input::Video(f, _)) = short.inputs.get_mut("video") {
        f.pop();
    }
    let e = task
        .collate(&[samples[0].clone(), short], &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("clip1") && e.contains("frame_size"), "{e}");
}

// --------------------------------------------------------- segmentation

#[derive(Module, Debug)]
struct PixelLinear {
    w: Param<BT<1>>,
}

impl SemanticSegmenter for PixelLinear {
    fn segment(&self, images: BT<4>) -> unidl_train::Result<BT<4>> {
        let [b, _, h, w] = images.dims();
        Ok(images.expand([b, 3, h, w]) * self.w.val().reshape([1, 3, 1, 1]).expand([b, 3, h, w]))
    }
}

fn mask(w: usize, h: usize, on: &[usize], class: usize) -> Mask {
    let mut data = vec![0u8; w * h];
    for &i in on {
        data[i] = 1;
    }
    Mask {
        width: w,
        height: h,
        data,
        class,
    }
}

/// `[task] class_weights` and `dice_weight`: the weighted cross-entropy
/// equals `torch.nn.functional.cross_entropy(weight=…, ignore_index=255)`
/// and the soft Dice loss the generator's torch definition, values and
/// gradients with respect to the logits (`tests/reference/gen_segmentation_losses.py`);
/// the task's loss is their sum as configured, and unit weights leave the
/// plain cross-entropy.
#[test]
fn segmentation_losses_match_torch() {
    let r: serde_json::Value =
        serde_json::from_str(include_str!("../reference/segmentation_losses.json")).unwrap();
    let floats = |k: &str| -> Vec<f32> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let ints: Vec<i64> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let ad = dev().autodiff();
    let logits =
        || BT::<4>::from_data(TensorData::new(floats("logits"), [2, 4, 3, 5]), &ad).require_grad();
    let targets = BT::<3, Int>::from_data(TensorData::new(ints, [2, 3, 5]), &ad);
    let weights = floats("weights");
    let close = |what: &str, got: &[f32], want: &[f32], tol: f32| {
        let d = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(got.len() == want.len() && d <= tol, "{what}: max |Δ| {d}");
    };
    for (name, want) in [("weighted_ce", "weighted_ce_grad"), ("dice", "dice_grad")] {
        let x = logits();
        let loss = match name {
            "weighted_ce" => {
                task::weighted_pixel_cross_entropy(x.clone(), targets.clone(), Some(255), &weights)
            }
            _ => task::soft_dice_loss(x.clone(), targets.clone(), Some(255)),
        };
        let value = f32s(loss.clone())[0];
        let reference = r[name].as_f64().unwrap() as f32;
        assert!(
            (value - reference).abs() < 1e-5,
            "{name}: {value} vs {reference}"
        );
        let grads = loss.backward();
        let g = x.grad(&grads).unwrap();
        close(name, &f32s(g), &floats(want), 1e-6);
    }
    // unit weights are the plain cross-entropy
    let plain = f32s(task::pixel_cross_entropy(
        logits(),
        targets.clone(),
        Some(255),
    ))[0];
    let unit = f32s(task::weighted_pixel_cross_entropy(
        logits(),
        targets.clone(),
        Some(255),
        &[1.0; 4],
    ))[0];
    assert!((plain - unit).abs() < 1e-6, "{plain} vs {unit}");

    // the task: weighted cross-entropy + 0.5 · Dice
    struct Fixed(BT<4>);
    impl SemanticSegmenter for Fixed {
        fn segment(&self, _images: BT<4>) -> unidl_train::Result<BT<4>> {
            Ok(self.0.clone())
        }
    }
    let mut task = PixelClassification::new(4);
    task.class_weights = Some(weights.clone());
    task.dice_weight = 0.5;
    let batch = PixelBatch {
        images: BT::zeros([2, 1, 3, 5], &ad),
        targets: Some(targets),
        sources: vec!["a".into(), "b".into()],
    };
    let loss = Task::<Fixed>::loss(&task, &Fixed(logits()), &batch)
        .unwrap()
        .item()
        .unwrap();
    let want = r["weighted_ce"].as_f64().unwrap() + 0.5 * r["dice"].as_f64().unwrap();
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
}

#[test]
fn segmentation_targets_paint_masks_and_the_loss_skips_ignored_pixels() {
    let d = dev();
    let mut a = image(3, 2, 0.1, "a");
    a.targets.masks = vec![
        mask(3, 2, &[0, 1, 2], 1),
        mask(3, 2, &[2, 3], 2),
        mask(3, 2, &[5], 255),
    ];
    let mut b = image(3, 2, 0.5, "b");
    b.targets.masks = vec![mask(3, 2, &[4], 2)];
    let task = PixelClassification::new(3);
    let batch = task.collate(&[a.clone(), b.clone()], &d).unwrap();
    let t = i64s(batch.targets.clone().unwrap());
    assert_eq!(t, [1, 1, 2, 2, 0, 255, 0, 0, 0, 0, 2, 0]);
    let model = PixelLinear {
        w: Param::from_tensor(BT::from_data(
            TensorData::new(vec![0.5f32, -1.0, 2.0], [3]),
            &d,
        )),
    };
    let logits = f32s(model.segment(batch.images.clone()).unwrap());
    let (mut sum, mut n) = (0.0, 0);
    for bi in 0..2 {
        for p in 0..6 {
            let target = t[bi * 6 + p];
            if target == 255 {
                continue;
            }
            let z: Vec<f64> = (0..3)
                .map(|c| logits[(bi * 3 + c) * 6 + p] as f64)
                .collect();
            sum -= ln_softmax(&z)[target as usize];
            n += 1;
        }
    }
    let loss = task.loss(&model, &batch).unwrap().item().unwrap();
    assert!(
        (loss - sum / n as f64).abs() < 1e-5,
        "{loss} vs {}",
        sum / n as f64
    );
    let mut bad = a.clone();
    bad.targets.masks.push(mask(3, 2, &[0], 7));
    let e = task.collate(&[bad], &d).unwrap_err().to_string();
    assert!(e.contains("class 7") && e.contains("num_classes"), "{e}");
    let mut small = a;
    small.targets.masks.push(mask(2, 2, &[0], 1));
    let e = task.collate(&[small], &d).unwrap_err().to_string();
    assert!(e.contains("a: mask 2x2"), "{e}");
    // post-processing and metrics: a perfect prediction scores mIoU 1
    let post = task.post();
    let perfect = BT::<4>::from_data(
        TensorData::new(
            (0..3)
                .flat_map(|c| {
                    (0..6).map(move |p| {
                        if [0i64, 0, 0, 0, 2, 0][p] == c {
                            5.0f32
                        } else {
                            0.0
                        }
                    })
                })
                .collect::<Vec<_>>(),
            [1, 3, 2, 3],
        ),
        &d,
    );
    let maps = post
        .process(
            &unidl_tensor::Tensor::from_burn(perfect).unwrap(),
            &InferOptions::default(),
        )
        .unwrap();
    assert_eq!(maps[0].classes, [0, 0, 0, 0, 2, 0]);
}

// ------------------------------------------------------------ detection

#[derive(Module, Debug)]
struct BoxMemory {
    b: Param<BT<1>>,
}

impl Detector for BoxMemory {
    fn detection_losses(
        &self,
        _images: BT<4>,
        targets: &[ObjectTargets],
    ) -> unidl_train::Result<Vec<(String, BT<1>)>> {
        let device = self.b.val().device();
        let mut terms = Vec::new();
        for t in targets {
            if let Some((boxes, _)) = t.tensors(&device) {
                let n = boxes.dims()[0];
                let pred = self.b.val().reshape([1, 4]).expand([n, 4]);
                terms.push(("l1".to_string(), (pred - boxes).abs().mean().reshape([1])));
            }
        }
        terms.push(("zero".to_string(), self.b.val().sum().mul_scalar(0.0)));
        Ok(terms)
    }
    fn detect(&self, images: BT<4>) -> unidl_train::Result<BT<3>> {
        let [b, ..] = images.dims();
        let boxes = self.b.val().reshape([1, 1, 4]).expand([b, 1, 4]);
        let scores = BT::<3>::ones([b, 1, 2], &images.device()).mul_scalar(0.5);
        Ok(BT::cat(vec![boxes, scores], 2))
    }
}

fn boxed(source: &str, boxes: &[[f32; 4]], classes: &[usize]) -> Sample {
    let mut s = image(8, 8, 0.0, source);
    s.targets.boxes = boxes
        .iter()
        .zip(classes)
        .map(|(b, &c)| BBox {
            x0: b[0],
            y0: b[1],
            x1: b[2],
            y1: b[3],
            class: c,
        })
        .collect();
    s
}

#[test]
fn detection_batches_keep_any_number_of_boxes_and_sum_the_models_loss_terms() {
    let d = dev();
    let mut a = boxed(
        "a",
        &[
            [1.0, 1.0, 3.0, 4.0],
            [2.0, 2.0, 6.0, 6.0],
            [0.0, 0.0, 8.0, 8.0],
        ],
        &[0, 1, 1],
    );
    a.targets.crowd = vec![false, false, true];
    let b = boxed("b", &[], &[]);
    let task = ObjectDetection::default();
    let batch = task.collate(&[a.clone(), b], &d).unwrap();
    assert_eq!(
        batch.targets[0].boxes,
        [[1.0, 1.0, 3.0, 4.0], [2.0, 2.0, 6.0, 6.0]]
    );
    assert_eq!(batch.targets[0].classes, [0, 1]);
    assert!(batch.targets[1].boxes.is_empty() && batch.targets[1].tensors(&d).is_none());
    let model = BoxMemory {
        b: Param::from_tensor(BT::from_data(
            TensorData::new(vec![1.0f32, 1.0, 4.0, 5.0], [4]),
            &d,
        )),
    };
    // |[1,1,4,5] - [1,1,3,4]| = (0+0+1+1)/4, |… - [2,2,6,6]| = (1+1+2+1)/4 → mean 7/8
    let loss = task.loss(&model, &batch).unwrap().item().unwrap();
    assert!((loss - 7.0 / 8.0).abs() < 1e-6, "{loss}");
    let out = task.forward(&model, &batch).unwrap();
    let dets = task.post().process(&out, &InferOptions::default()).unwrap();
    assert_eq!(dets.len(), 2);
    assert!(!dets[0].is_empty());
    let e = task
        .collate(&[boxed("flat", &[[3.0, 3.0, 3.0, 5.0]], &[0])], &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("flat") && e.contains("no area"), "{e}");
    assert!(sum_losses(Vec::new()).is_err());

    // instance segmentation: masks follow their boxes
    let inst = InstanceSegmentationTraining {
        class_names: Vec::new(),
        post: postprocess::InstanceConfig::new([4, 4]),
    };
    let mut m = boxed("m", &[[1.0, 1.0, 3.0, 4.0], [2.0, 2.0, 6.0, 6.0]], &[0, 1]);
    m.targets.masks = vec![mask(8, 8, &[9], 1), mask(8, 8, &[20], 0)];
    m.targets.mask_boxes = vec![1, 0];
    let batch = inst.collate(&[m.clone()], &d).unwrap();
    assert_eq!(batch.targets[0].masks[0][20], 1);
    assert_eq!(batch.targets[0].masks[1][9], 1);
    m.targets.mask_boxes = vec![1, 1];
    let e = inst.collate(&[m], &d).unwrap_err().to_string();
    assert!(e.contains("box 0 has no mask"), "{e}");
}

// ------------------------------------------------------------ keypoints

#[test]
fn heatmap_targets_are_hrnet_gaussians_and_the_loss_is_weighted_mse() {
    let d = dev();
    let kp = |x: f32, y: f32, v: u8| Keypoint {
        x,
        y,
        visibility: v,
    };
    let mut s = image(16, 16, 0.0, "pose");
    s.targets.keypoints = vec![kp(5.0, 9.0, 2), kp(3.0, 3.0, 0), kp(100.0, 1.0, 2)];
    let task = KeypointHeatmaps::new(3);
    let batch = task.collate(&[s.clone()], &d).unwrap();
    let Some(TargetTensor::Heatmaps(h)) = &batch.targets else {
        panic!("heatmaps")
    };
    assert_eq!(h.dims(), [1, 3, 4, 4]);
    let v = f32s(h.clone());
    // joint 0 at (5, 9)/4 + 0.5 → pixel (1, 2)
    assert_eq!(v[2 * 4 + 1], 1.0);
    assert!((v[2 * 4 + 2] - (-1.0f64 / 8.0).exp() as f32).abs() < 1e-6);
    assert!(
        v[16..].iter().all(|&x| x == 0.0),
        "invisible and outside joints have no peak"
    );
    assert_eq!(f32s(batch.weights.clone().unwrap()), [1.0, 0.0, 0.0]);
    let pred = BT::<4>::from_data(TensorData::new(values(48, 3), [1, 3, 4, 4]), &d);
    let loss = f32s(joints_mse(
        pred.clone(),
        h.clone(),
        batch.weights.clone().unwrap(),
    ))[0] as f64;
    let p = f32s(pred);
    let want: f64 = (0..16).map(|i| ((p[i] - v[i]) as f64).powi(2)).sum::<f64>() / 48.0 * 0.5;
    assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    let mut wrong = s;
    wrong.targets.keypoints.pop();
    let e = task.collate(&[wrong], &d).unwrap_err().to_string();
    assert!(
        e.contains("pose: 2 keypoints") && e.contains("3 joints"),
        "{e}"
    );
}

#[test]
fn landmark_targets_are_fractions_of_the_input_and_the_loss_skips_unlabelled_joints() {
    let d = dev();
    let mut s = image(10, 20, 0.0, "face");
    s.targets.keypoints = vec![
        Keypoint {
            x: 5.0,
            y: 10.0,
            visibility: 2,
        },
        Keypoint {
            x: 1.0,
            y: 2.0,
            visibility: 0,
        },
    ];
    let task = KeypointRegression {
        joints: 2,
        input_size: [20, 10],
        metrics: KeypointMetrics::default(),
    };
    let batch = task.collate(&[s], &d).unwrap();
    let Some(TargetTensor::Coordinates(t)) = &batch.targets else {
        panic!("coordinates")
    };
    assert_eq!(f32s(t.clone()), [0.5, 0.5, 0.1, 0.1]);
    let pred = BT::<2>::from_data(TensorData::new(vec![0.6f32, 0.3, 0.9, 0.9], [1, 4]), &d);
    let loss = f32s(landmark_mse(
        pred.clone(),
        t.clone(),
        batch.weights.clone().unwrap(),
    ))[0];
    assert!((loss - (0.01 + 0.04)).abs() < 1e-6, "{loss}");
    let kps = task
        .post()
        .process(
            &unidl_tensor::Tensor::from_burn(pred).unwrap(),
            &InferOptions::default(),
        )
        .unwrap();
    assert!((kps[0][0].x - 6.0).abs() < 1e-5 && (kps[0][0].y - 6.0).abs() < 1e-5);
}

// -------------------------------------------------------------- language

#[derive(Module, Debug)]
struct Bigram {
    table: Param<BT<2>>,
}

impl LanguageModel for Bigram {
    fn lm_logits(&self, ids: BT<2, Int>, _mask: BT<2, Bool>) -> BT<3> {
        let [b, t] = ids.dims();
        let v = self.table.val().dims()[1];
        self.table
            .val()
            .select(0, ids.reshape([b * t]))
            .reshape([b, t, v])
    }
}

fn tokens(ids: &[u32], name: &str) -> Sample {
    let mut s = Sample {
        source: name.into(),
        ..Sample::default()
    };
    s.inputs
        .insert("tokens".into(), Input::Tokens(ids.to_vec()));
    s
}

#[test]
fn language_modelling_predicts_the_next_token_and_reports_perplexity() {
    let d = dev();
    let v = 5;
    let table = values(v * v, 9);
    let model = Bigram {
        table: Param::from_tensor(BT::from_data(TensorData::new(table.clone(), [v, v]), &d)),
    };
    let task = LanguageModelling::default();
    let seqs: [&[u32]; 2] = [&[1, 2, 3, 4], &[4, 1]];
    let batch = task
        .collate(
            &seqs
                .iter()
                .enumerate()
                .map(|(i, s)| tokens(s, &format!("s{i}")))
                .collect::<Vec<_>>(),
            &d,
        )
        .unwrap();
    let (mut nll, mut n) = (0.0, 0);
    for s in seqs {
        for w in s.windows(2) {
            let row: Vec<f64> = table[w[0] as usize * v..(w[0] as usize + 1) * v]
                .iter()
                .map(|&x| x as f64)
                .collect();
            nll -= ln_softmax(&row)[w[1] as usize];
            n += 1;
        }
    }
    let loss = task.loss(&model, &batch).unwrap().item().unwrap();
    assert!(
        (loss - nll / n as f64).abs() < 1e-5,
        "{loss} vs {}",
        nll / n as f64
    );
    let out = task.forward(&model, &batch).unwrap();
    let lik = task.post().process(&out, &InferOptions::default()).unwrap();
    assert_eq!((lik[0].tokens, lik[1].tokens), (3, 1));
    let mut acc = task
        .evaluation()
        .start(&[Metric::Perplexity], &empty_dataset())
        .unwrap();
    acc.update(&lik, &[]).unwrap();
    let ppl = acc.compute().unwrap()["perplexity"];
    assert!((ppl - (nll / n as f64).exp()).abs() < 1e-4, "{ppl}");
}

fn empty_dataset() -> unidl_data::PreparedDataset {
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
    unidl_data::PreparedDataset::new(
        std::sync::Arc::new(Empty),
        unidl_data::transform::Compose(vec![]),
        0,
        ".".into(),
    )
}

/// Logits depend on the decoder position only: position p favours token
/// `favour[p]` (a copy task's perfect model).
#[derive(Module, Debug)]
struct ByPosition {
    table: Param<BT<2>>,
}

impl Seq2SeqModel for ByPosition {
    fn seq2seq_logits(
        &self,
        _s: &Seq2SeqSource,
        ids: BT<2, Int>,
        _m: BT<2, Bool>,
    ) -> unidl_train::Result<BT<3>> {
        let [b, t] = ids.dims();
        let v = self.table.val().dims()[1];
        Ok(self
            .table
            .val()
            .slice([0..t, 0..v])
            .unsqueeze_dim::<3>(0)
            .expand([b, t, v]))
    }
}

#[test]
fn sequence_to_sequence_teacher_forces_ignores_padding_and_decodes_greedily() {
    let d = dev();
    let (pad, bos, eos, v) = (0u32, 1u32, 2u32, 6usize);
    let task = SequenceToSequence {
        source: SourceInput::Tokens("tokens".into()),
        pad_id: pad,
        bos_id: bos,
        eos_id: eos,
        label_smoothing: 0.1,
        generation: unidl_train::decoding::GenerationConfig {
            max_length: 6,
            ..Default::default()
        },
        target_tokenizer: None,
        label_targets: Vec::new(),
        ctc_weight: 0.0,
    };
    let mut a = tokens(&[3, 4], "a");
    a.targets.token_ids = vec![5, 3, 4];
    let mut b = tokens(&[4], "b");
    b.targets.token_ids = vec![4];
    let batch = task.collate(&[a, b], &d).unwrap();
    assert_eq!(
        i64s(batch.decoder_ids.clone().unwrap()),
        [1, 5, 3, 4, 1, 4, 0, 0]
    );
    assert_eq!(
        i64s(batch.labels.clone().unwrap()),
        [5, 3, 4, 2, 4, 2, 0, 0]
    );
    let mut table = vec![-1.0f32; 8 * v];
    for (p, tok) in [5usize, 3, 4, 2].iter().enumerate() {
        table[p * v + tok] = 3.0;
    }
    let model = ByPosition {
        table: Param::from_tensor(BT::from_data(TensorData::new(table.clone(), [8, v]), &d)),
    };
    let labels = [[5usize, 3, 4, 2], [4, 2, 0, 0]];
    let real = [4, 2];
    let (mut sum, mut n) = (0.0, 0);
    for (k, row) in labels.iter().enumerate() {
        for p in 0..real[k] {
            let lp = ln_softmax(
                &table[p * v..(p + 1) * v]
                    .iter()
                    .map(|&x| x as f64)
                    .collect::<Vec<_>>(),
            );
            let uniform = -lp.iter().sum::<f64>() / v as f64;
            sum += 0.9 * -lp[row[p]] + 0.1 * uniform;
            n += 1;
        }
    }
    let loss = task.loss(&model, &batch).unwrap().item().unwrap();
    assert!(
        (loss - sum / n as f64).abs() < 1e-5,
        "{loss} vs {}",
        sum / n as f64
    );
    let ids = task.forward(&model, &batch).unwrap().to_vec_i64().unwrap();
    assert_eq!(&ids[..4], [5, 3, 4, 2], "greedy decoding stops at EOS");
    let decoded = task
        .post()
        .process(
            &task.forward(&model, &batch).unwrap(),
            &InferOptions::default(),
        )
        .unwrap();
    assert_eq!(decoded[0].ids, [5, 3, 4]);
    // targets longer than generation can produce are cut (max_length 6:
    // five tokens and EOS), so one long outlier does not pad the batch
    let mut long = tokens(&[3], "long");
    long.targets.token_ids = vec![3, 4, 5, 3, 4, 5, 3, 4];
    let batch = task.collate(&[long], &d).unwrap();
    assert_eq!(i64s(batch.labels.clone().unwrap()), [3, 4, 5, 3, 4, 2]);
    assert_eq!(i64s(batch.decoder_ids.clone().unwrap()), [1, 3, 4, 5, 3, 4]);
    // a model reading the other kind of source gets an error naming it
    assert!(batch.source.tokens("T5").is_ok());
    let e = batch.source.images("TrOCR").unwrap_err().to_string();
    assert!(e.contains("TrOCR reads images"), "{e}");
    let mut c = tokens(&[3], "c");
    c.targets.text = Some("hallo".into());
    let e = task.collate(&[c], &d).unwrap_err().to_string();
    assert!(
        e.contains("c: a target text but no target tokenizer"),
        "{e}"
    );
}

/// Text-to-text classification (T5's way): a labelled sample learns its
/// class name, and evaluation reads outputs as classes — exact-match
/// accuracy and macro F1 over the classes, an output that names no class
/// being wrong (hand-computed).
#[test]
fn text_to_text_classification_learns_class_names_and_scores_them() {
    use unidl_data::text::{Corpus, SPECIAL_TOKENS, TextTokenizer};
    let d = dev();
    let names: Vec<String> = ["news", "fiction", "humor"].map(String::from).to_vec();
    let tok = std::sync::Arc::new(
        TextTokenizer::train_wordpiece(
            &Corpus::texts(["news fiction humor the a story"]),
            60,
            1,
            &SPECIAL_TOKENS,
        )
        .unwrap(),
    );
    let task = SequenceToSequence {
        source: SourceInput::Tokens("tokens".into()),
        pad_id: 0,
        bos_id: 2,
        eos_id: 3,
        label_smoothing: 0.0,
        generation: Default::default(),
        target_tokenizer: Some(tok.clone()),
        label_targets: names.clone(),
        ctc_weight: 0.0,
    };
    let mut a = tokens(&[7, 8], "a");
    a.targets.label = Some(1);
    let batch = task.collate(&[a.clone()], &d).unwrap();
    let fiction: Vec<i64> = tok
        .encode("fiction")
        .unwrap()
        .into_iter()
        .map(i64::from)
        .collect();
    let mut want = fiction.clone();
    want.push(3);
    assert_eq!(i64s(batch.labels.unwrap()), want);
    // a label beyond the class names is an error naming the sample
    a.targets.label = Some(5);
    let e = task.collate(&[a], &d).unwrap_err().to_string();
    assert!(e.contains("label 5") && e.contains("3 class names"), "{e}");

    // targets a a b c; outputs a b b "zzz"
    let eval = <SequenceToSequence as TaskIo>::evaluation(&task);
    assert_eq!(
        <SequenceToSequence as TaskIo>::default_metrics(&task),
        [Metric::Accuracy, Metric::F1Macro]
    );
    let mut acc = eval
        .start(
            &[Metric::Accuracy, Metric::F1Macro, Metric::Cer],
            &empty_dataset(),
        )
        .unwrap();
    let samples: Vec<Sample> = [0usize, 0, 1, 2]
        .iter()
        .map(|&l| {
            let mut s = tokens(&[7], "s");
            s.targets.label = Some(l);
            s
        })
        .collect();
    let outputs: Vec<outputs::DecodedSequence> = ["news", " fiction", "fiction", "zzz"]
        .iter()
        .map(|t| outputs::DecodedSequence {
            ids: vec![],
            text: Some(t.to_string()),
            log_prob: 0.0,
        })
        .collect();
    acc.update(&outputs, &samples).unwrap();
    let scores = acc.compute().unwrap();
    let get = |k: &str| -> f64 {
        scores
            .iter()
            .find(|(n, _)| n.as_str() == k)
            .map(|(_, v)| *v)
            .unwrap()
    };
    assert!((get("accuracy") - 0.5).abs() < 1e-12, "{scores:?}");
    // news: p 1, r 1/2; fiction: p 1/2, r 1; humor: 0 -> (2/3 + 2/3 + 0) / 3
    assert!((get("f1_macro") - 4.0 / 9.0).abs() < 1e-12, "{scores:?}");
    assert!(get("cer") > 0.0);
    // free text (no class names): exact match only, no macro F1
    let plain = TextTask::default();
    assert!(plain.supports(Metric::Accuracy) && !plain.supports(Metric::F1Macro));
}

// ---------------------------------------------------------------- speech

/// log P of every collapsed labelling, by enumerating all V^T paths.
fn brute_ctc(lp: &[f64], t: usize, v: usize, target: &[u32], blank: usize) -> f64 {
    let mut total = f64::NEG_INFINITY;
    let mut path = vec![0usize; t];
    loop {
        let mut out = Vec::new();
        let mut prev = usize::MAX;
        for &p in &path {
            if p != prev && p != blank {
                out.push(p as u32);
            }
            prev = p;
        }
        if out == target {
            let s: f64 = path.iter().enumerate().map(|(i, &p)| lp[i * v + p]).sum();
            let m = total.max(s);
            total = m + ((total - m).exp() + (s - m).exp()).ln();
        }
        let mut k = 0;
        while k < t {
            path[k] += 1;
            if path[k] < v {
                break;
            }
            path[k] = 0;
            k += 1;
        }
        if k == t {
            return total;
        }
    }
}

#[test]
fn ctc_loss_equals_the_sum_over_every_alignment() {
    let d = dev();
    let (b, t, v) = (4, 5, 3);
    let raw = values(b * t * v, 21);
    let mut lp = Vec::new();
    for row in raw.chunks(v) {
        lp.extend(ln_softmax(
            &row.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        ));
    }
    let targets = vec![vec![1, 2], vec![1, 1], vec![2], vec![]];
    let lengths = [5, 5, 3, 4];
    let x = BT::<3>::from_data(
        TensorData::new(lp.iter().map(|&x| x as f32).collect::<Vec<_>>(), [b, t, v]),
        &d,
    );
    let loss = f32s(ctc_loss(x, &targets, &lengths, 0).unwrap())[0] as f64;
    let mut want = 0.0;
    for k in 0..b {
        let n = lengths[k];
        let rows = &lp[k * t * v..(k * t + n) * v];
        want -= brute_ctc(rows, n, v, &targets[k], 0) / targets[k].len().max(1) as f64;
    }
    want /= b as f64;
    assert!((loss - want).abs() < 1e-4, "{loss} vs brute force {want}");
    // gradients flow and are finite
    let ad = d.clone().autodiff();
    let z = BT::<3>::from_data(TensorData::new(raw, [b, t, v]), &ad).require_grad();
    let l = ctc_loss(
        burn::tensor::activation::log_softmax(z.clone(), 2),
        &targets,
        &lengths,
        0,
    )
    .unwrap();
    let g = z.grad(&l.backward()).unwrap();
    assert!(f32s(g).iter().all(|x| x.is_finite()));
}

/// log P(y|x) of a transducer lattice by enumerating every path.
#[allow(clippy::too_many_arguments)]
fn brute_rnnt(lp: &[f64], t: usize, u1: usize, v: usize, y: &[u32], blank: usize) -> f64 {
    #[allow(clippy::too_many_arguments)]
    fn go(
        lp: &[f64],
        t: usize,
        u1: usize,
        v: usize,
        y: &[u32],
        blank: usize,
        i: usize,
        j: usize,
    ) -> f64 {
        let at = |i: usize, j: usize, k: usize| lp[(i * u1 + j) * v + k];
        if i == t - 1 && j == y.len() {
            return at(i, j, blank);
        }
        let mut parts = Vec::new();
        if i + 1 < t {
            parts.push(at(i, j, blank) + go(lp, t, u1, v, y, blank, i + 1, j));
        }
        if j < y.len() {
            parts.push(at(i, j, y[j] as usize) + go(lp, t, u1, v, y, blank, i, j + 1));
        }
        let m = parts.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + parts.iter().map(|p| (p - m).exp()).sum::<f64>().ln()
    }
    go(lp, t, u1, v, y, blank, 0, 0)
}

#[test]
fn transducer_loss_equals_the_sum_over_every_lattice_path() {
    let d = dev();
    let (b, t, u1, v) = (2, 3, 3, 4);
    let raw = values(b * t * u1 * v, 33);
    let mut lp = Vec::new();
    for row in raw.chunks(v) {
        lp.extend(ln_softmax(
            &row.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        ));
    }
    let targets = vec![vec![1, 3], vec![2]];
    let lengths = [3, 2];
    let x = BT::<4>::from_data(
        TensorData::new(
            lp.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            [b, t, u1, v],
        ),
        &d,
    );
    let loss = f32s(transducer_loss(x, &targets, &lengths, 0).unwrap())[0] as f64;
    let brute = |lp: &[f64]| {
        let mut want = 0.0;
        for k in 0..b {
            let cells = &lp[k * t * u1 * v..(k + 1) * t * u1 * v];
            want -= brute_rnnt(cells, lengths[k], u1, v, &targets[k], 0);
        }
        want / b as f64
    };
    let want = brute(&lp);
    assert!((loss - want).abs() < 1e-4, "{loss} vs brute force {want}");
    // the gradient with respect to every log-prob (taken as free values)
    // equals the brute force's central differences
    let ad = d.clone().autodiff();
    let z = BT::<4>::from_data(
        TensorData::new(
            lp.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            [b, t, u1, v],
        ),
        &ad,
    )
    .require_grad();
    let l = transducer_loss(z.clone(), &targets, &lengths, 0).unwrap();
    assert!((f32s(l.clone())[0] as f64 - want).abs() < 1e-4);
    let g = f32s(z.grad(&l.backward()).unwrap());
    for i in 0..lp.len() {
        let (mut up, mut down) = (lp.clone(), lp.clone());
        up[i] += 1e-5;
        down[i] -= 1e-5;
        let fd = (brute(&up) - brute(&down)) / 2e-5;
        assert!(
            (g[i] as f64 - fd).abs() < 1e-4,
            "cell {i}: {} vs {fd}",
            g[i]
        );
    }
}

#[test]
fn speech_batches_pad_frames_and_encode_transcripts() {
    let d = dev();
    let alphabet = Alphabet::characters("ab ");
    let spec = |frames: usize, text: &str, name: &str| {
        let mut s = Sample {
            source: name.into(),
            ..Sample::default()
        };
        s.inputs.insert(
            "audio".into(),
            Input::Tensor(HostTensor {
                shape: vec![1, 2, frames],
                data: (0..2 * frames).map(|i| i as f32).collect(),
            }),
        );
        s.targets.text = Some(text.into());
        s
    };
    let task = SpeechRecognition {
        input: "audio".into(),
        alphabet: alphabet.clone(),
        beam_width: 1,
    };
    let batch = task
        .collate(&[spec(3, "ab", "x"), spec(2, "b a", "y")], &d)
        .unwrap();
    assert_eq!(batch.features.dims(), [2, 3, 2]);
    // frame j of sample 0 holds (feature 0, feature 1) = (j, 3 + j)
    assert_eq!(
        f32s(batch.features.clone())[..6],
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(batch.lengths, [3, 2]);
    assert_eq!(batch.targets, [vec![1, 2], vec![2, 3, 1]]);
    let e = task
        .collate(&[spec(3, "abc", "z")], &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("z: character 'c'"), "{e}");
}

// -------------------------------------------------------------- waveform

#[test]
fn mu_law_round_trips_and_waveform_batches_train_on_the_next_sample() {
    for x in [-1.0f32, -0.5, -0.01, 0.0, 0.01, 0.3, 1.0] {
        let q = mu_law_encode(x, 256);
        assert!(q < 256);
        assert!(
            (mu_law_decode(q, 256) - x).abs() < 0.02 + x.abs() * 0.03,
            "{x}"
        );
    }
    assert!(mu_law_encode(-1.0, 256) == 0 && mu_law_encode(1.0, 256) == 255);
    let d = dev();
    let mut s = Sample {
        source: "w".into(),
        ..Sample::default()
    };
    s.inputs.insert(
        "audio".into(),
        Input::Audio(unidl_data::Audio {
            samples: vec![0.0, 0.5, -0.5, 0.25],
            sample_rate: 16000,
            channels: 1,
        }),
    );
    let task = WaveformGeneration {
        channels: 16,
        ..WaveformGeneration::default()
    };
    let batch = task.collate(&[s], &d).unwrap();
    let ids = i64s(batch.ids.clone());
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0] as u32, mu_law_encode(0.0, 16));
    let e = task
        .collate(&[image(2, 2, 0.0, "notaudio")], &d)
        .unwrap_err()
        .to_string();
    assert!(e.contains("notaudio") && e.contains("mono"), "{e}");
}

/// A vocoder stub with a hop of 4 whose "loss" is the mean of the classes
/// it is given (so the task's quantisation shows) and whose generation is
/// class 7 everywhere.
struct StubVocoder(Quantization);

impl VocoderModel for StubVocoder {
    fn hop_length(&self) -> usize {
        4
    }
    fn quantization(&self) -> Quantization {
        self.0
    }
    fn vocoder_loss(&self, _features: BT<3>, classes: BT<2, Int>) -> Result<BT<1>> {
        Ok(classes.float().mean())
    }
    fn vocode(&self, features: BT<3>, _t: f32, _seed: u64) -> Result<BT<2, Int>> {
        let [b, _, f] = features.dims();
        Ok(BT::<2, Int>::zeros([b, f * 4], &features.device()).add_scalar(7))
    }
}

#[test]
fn quantizations_encode_decode_and_drive_speech_synthesis() {
    let lin = Quantization::Linear(65_536);
    assert_eq!(lin.levels(), 65_536);
    assert_eq!(
        (lin.encode(-1.0), lin.encode(1.0), lin.encode(0.0)),
        (0, 65_535, 32_768)
    );
    assert_eq!((lin.decode(0), lin.decode(65_535)), (-1.0, 1.0));
    assert_eq!(lin.encode(2.0), 65_535);
    for x in [-0.7f32, -1e-4, 0.0, 0.3, 0.99] {
        assert!(
            (lin.decode(lin.encode(x)) - x).abs() <= 1.0 / 65_535.0,
            "{x}"
        );
    }
    let mu = Quantization::MuLaw(256);
    for x in [-1.0f32, -0.2, 0.0, 0.6, 1.0] {
        assert_eq!(mu.encode(x), mu_law_encode(x, 256));
        assert_eq!(
            mu.decode(mu.encode(x)),
            mu_law_decode(mu_law_encode(x, 256), 256)
        );
    }
    let d = dev();
    let post = Dequantize {
        quantization: Quantization::Linear(256),
    };
    let ids = unidl_tensor::Tensor::from_i64(vec![0, 255, 300, -4], &[1, 4], &d).unwrap();
    let w = post.process(&ids, &InferOptions::default()).unwrap();
    assert_eq!(w[0].samples, vec![-1.0, 1.0, 1.0, -1.0]);

    // 16 samples of 1.0 under 5 centred frames of hop 4
    let batch = SynthesisBatch {
        utterances: vec![Utterance {
            features: vec![0.5; 2 * 5],
            frames: 5,
            samples: vec![1.0; 16],
        }],
        bins: 2,
        sources: vec!["u".into()],
        device: d.clone(),
    };
    let model = StubVocoder(Quantization::Linear(256));
    let task = SpeechSynthesis::new(2, 256, 0.0, 1);
    assert_eq!(task.loss_name(), "mu_law_cross_entropy");
    let e = task.loss(&model, &batch).unwrap_err().to_string();
    assert!(
        e.contains("task.quantization_channels")
            && e.contains("256 μ-law classes")
            && e.contains("256 linear levels"),
        "{e}"
    );
    let task = task.with_quantization(Quantization::Linear(256));
    assert_eq!(task.loss_name(), "mixture_of_logistics_nll");
    let loss = task.loss(&model, &batch).unwrap().to_vec_f32().unwrap();
    assert_eq!(loss, vec![255.0]); // every sample 1.0: the top level
    let out = task.forward(&model, &batch).unwrap();
    assert_eq!(out.to_vec_i64().unwrap(), vec![7; 16]);
    let (_, silent) = task.loss_and_outputs(&model, &batch).unwrap();
    assert_eq!(silent.to_vec_i64().unwrap(), vec![128]); // the level nearest 0
    let waves = task.post().process(&out, &InferOptions::default()).unwrap();
    assert!((waves[0].samples[0] - (14.0 / 255.0 - 1.0)).abs() < 1e-6);
}

/// A decoder whose next-token distribution depends on the prefix (vocab:
/// 0 `[BOS]`/padding, 1 `[EOS]`, 2 `A`, 3 `B`): first A 0.5, B 0.4,
/// `[EOS]` 0.1; after A: A 0.35, B 0.35, `[EOS]` 0.3; after B: `[EOS]`
/// 0.9, A 0.05, B 0.05; later always `[EOS]` 0.6, A 0.2, B 0.2. Greedy says
/// "A A …", the most likely sequence is "B `[EOS]`" (0.36).
#[derive(Module, Debug)]
struct Branching {
    unused: Param<BT<1>>,
}

fn branching_probs(prefix: &[u32]) -> [f32; 4] {
    match prefix {
        [_] => [0.0, 0.1, 0.5, 0.4],
        [_, 2] => [0.0, 0.3, 0.35, 0.35],
        [_, 3] => [0.0, 0.9, 0.05, 0.05],
        _ => [0.0, 0.6, 0.2, 0.2],
    }
}

/// Two one-token sources and [`Branching`]'s ids (`[BOS]` = padding 0,
/// `[EOS]` 1).
fn branching_source(d: &Device) -> (Seq2SeqSource, unidl_train::decoding::SpecialIds) {
    let ids = BT::<2, Int>::from_data(TensorData::new(vec![5i64, 5], [2, 1]), d);
    let mask = BT::<2, Bool>::from_data(TensorData::new(vec![true, true], [2, 1]), d);
    let special = unidl_train::decoding::SpecialIds {
        bos: 0,
        eos: 1,
        pad: 0,
    };
    (Seq2SeqSource::Tokens { ids, mask }, special)
}

impl Seq2SeqModel for Branching {
    fn seq2seq_logits(
        &self,
        _s: &Seq2SeqSource,
        ids: BT<2, Int>,
        _m: BT<2, Bool>,
    ) -> unidl_train::Result<BT<3>> {
        let [b, t] = ids.dims();
        let rows: Vec<i64> = ids.to_data().convert::<i64>().try_into_vec().unwrap();
        let mut v = Vec::with_capacity(b * t * 4);
        for r in 0..b {
            let row: Vec<u32> = rows[r * t..(r + 1) * t].iter().map(|&x| x as u32).collect();
            for p in 0..t {
                v.extend(branching_probs(&row[..=p]).map(|q| q.max(1e-9).ln()));
            }
        }
        Ok(BT::from_data(TensorData::new(v, [b, t, 4]), &ids.device()))
    }
}

/// [`Branching`] with a CTC head on its "encoder" that reads "A A" over
/// four frames (A, blank, A, blank; each at probability 0.97).
#[derive(Module, Debug)]
struct BranchingWithCtc {
    inner: Branching,
}

impl Seq2SeqModel for BranchingWithCtc {
    fn seq2seq_logits(
        &self,
        s: &Seq2SeqSource,
        ids: BT<2, Int>,
        m: BT<2, Bool>,
    ) -> unidl_train::Result<BT<3>> {
        self.inner.seq2seq_logits(s, ids, m)
    }

    fn decoding_ctc_log_probs(
        &self,
        state: &mut DecodingState,
    ) -> unidl_train::Result<Option<BT<3>>> {
        let DecodingState::Recompute { source, .. } = state else {
            panic!("Branching re-runs its prefix");
        };
        let b = source.len();
        let frame = |top: usize| -> Vec<f32> {
            (0..4)
                .map(|c| if c == top { 0.97f32 } else { 0.01 }.ln())
                .collect()
        };
        let one: Vec<f32> = [2, 0, 2, 0].into_iter().flat_map(frame).collect();
        let data: Vec<f32> = (0..b).flat_map(|_| one.clone()).collect();
        Ok(Some(BT::from_data(
            TensorData::new(data, [b, 4, 4]),
            &Device::flex(),
        )))
    }
}

/// Joint CTC/attention decoding (`ctc_weight`): the attention decoder
/// alone prefers "B [EOS]"; with the CTC head's prefix scores the beam
/// reads "A A [EOS]" (with one beam too); a model without a head, a weight
/// outside [0, 1] or with sampling are typed errors naming the key.
#[test]
fn joint_ctc_attention_decoding_follows_the_ctc_head() {
    use unidl_train::decoding::{GenerationConfig, generate};
    let d = dev();
    let inner = Branching {
        unused: Param::from_tensor(BT::zeros([1], &d)),
    };
    let (source, special) = branching_source(&d);
    let cfg = |beams, w| GenerationConfig {
        max_length: 6,
        num_beams: beams,
        ctc_weight: w,
        ..Default::default()
    };
    let attention_only = generate(&inner, &source, special, &cfg(2, 0.0)).unwrap();
    assert_eq!(attention_only, vec![vec![3, 1]; 2]);
    let model = BranchingWithCtc { inner };
    for (beams, w) in [(2, 0.5), (1, 0.5), (2, 0.3), (2, 1.0)] {
        let joint = generate(&model, &source, special, &cfg(beams, w)).unwrap();
        assert_eq!(joint, vec![vec![2, 2, 1]; 2], "beams {beams}, weight {w}");
    }
    let e = generate(&model.inner, &source, special, &cfg(2, 0.5))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("generation.ctc_weight") && e.contains("CTC head"),
        "{e}"
    );
    for bad in [
        cfg(2, 1.5),
        GenerationConfig {
            do_sample: true,
            ..cfg(1, 0.3)
        },
    ] {
        let e = generate(&model, &source, special, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("generation.ctc_weight"), "{e}");
    }
}

#[test]
fn generation_is_greedy_beam_searched_or_sampled_and_stops_at_eos() {
    use unidl_train::decoding::{GenerationConfig, generate};
    let d = dev();
    let model = Branching {
        unused: Param::from_tensor(BT::zeros([1], &d)),
    };
    let (source, special) = branching_source(&d);
    let run = |cfg: GenerationConfig| generate(&model, &source, special, &cfg).unwrap();
    // greedy: A, then A (0.35 ties B: the lower id wins), then [EOS]
    let greedy = run(GenerationConfig {
        max_length: 5,
        ..Default::default()
    });
    assert_eq!(greedy, vec![vec![2, 2, 1]; 2]);
    // two beams find "B [EOS]" (0.36 against "A [EOS]" 0.15, "A A [EOS]" 0.105)
    let beams = run(GenerationConfig {
        max_length: 5,
        num_beams: 2,
        ..Default::default()
    });
    assert_eq!(beams, vec![vec![3, 1]; 2]);
    // max_length cuts a sequence that has not ended
    let short = run(GenerationConfig {
        max_length: 1,
        ..Default::default()
    });
    assert_eq!(short, vec![vec![2]; 2]);
    // sampling: seeded, reproducible; top_k = 1 is greedy
    let sampled = |seed| {
        run(GenerationConfig {
            max_length: 5,
            do_sample: true,
            seed,
            ..Default::default()
        })
    };
    assert_eq!(sampled(3), sampled(3));
    let firsts: std::collections::BTreeSet<u32> = (0..40)
        .flat_map(|s| sampled(s).into_iter().map(|r| r[0]))
        .collect();
    assert!(firsts.contains(&2) && firsts.contains(&3), "{firsts:?}");
    let top1 = run(GenerationConfig {
        max_length: 5,
        do_sample: true,
        top_k: 1,
        seed: 9,
        ..Default::default()
    });
    assert_eq!(top1, greedy);
    // top_p = 0.45 keeps only A at the first step (its 0.5 reaches it)
    let nucleus: std::collections::BTreeSet<u32> = (0..20)
        .flat_map(|seed| {
            run(GenerationConfig {
                max_length: 1,
                do_sample: true,
                top_p: 0.45,
                seed,
                ..Default::default()
            })
            .into_iter()
            .map(|r| r[0])
        })
        .collect();
    assert_eq!(nucleus, [2].into_iter().collect());
    // bad settings are named
    let e = generate(
        &model,
        &source,
        special,
        &GenerationConfig {
            num_beams: 2,
            do_sample: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("generation.do_sample"), "{e}");
}
