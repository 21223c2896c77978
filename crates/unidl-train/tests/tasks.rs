//! The task layer on hand-made batches: collation, losses checked against
//! values computed independently on the host, and the typed errors.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Int, Tensor as BT};
use unidl_backend::Device;
use unidl_data::transform::{BatchTransform, MixUp, rng_for};
use unidl_data::{Image, Input, Sample};
use unidl_train::*;

/// Logits = a linear map of the flattened image (2x2 gray → 3 classes).
#[derive(Module, Debug)]
struct Flat {
    lin: Linear,
}

impl ImageClassifier for Flat {
    fn classify(&self, images: BT<4>) -> BT<2> {
        self.lin.forward(images.flatten(1, 3))
    }
}

fn image(values: [f32; 4], label: usize) -> Sample {
    let mut img = Image::new(2, 2, 1);
    img.data = values.to_vec();
    Sample::image(img, Some(label), format!("img{label}"))
}

fn batch() -> Vec<Sample> {
    vec![
        image([0.1, 0.9, 0.3, 0.4], 0),
        image([0.8, 0.2, 0.5, 0.7], 1),
        image([0.6, 0.6, 0.1, 0.0], 2),
        image([0.3, 0.5, 0.9, 0.2], 1),
    ]
}

/// `-mean_b Σ_k t_bk · log softmax(z_b)_k` in f64 on the host.
fn host_soft_ce(logits: &[f32], targets: &[f32], k: usize) -> f64 {
    let rows = logits.len() / k;
    let mut total = 0.0;
    for b in 0..rows {
        let z: Vec<f64> = logits[b * k..(b + 1) * k]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for c in 0..k {
            total -= targets[b * k + c] as f64 * (z[c] - lse);
        }
    }
    total / rows as f64
}

fn setup() -> (Flat, Device) {
    let dev = Device::flex();
    unidl_backend::seed(&dev, 3);
    (
        Flat {
            lin: LinearConfig::new(4, 3).init(&dev),
        },
        dev,
    )
}

fn logits_of(model: &Flat, task: &ImageClassification, b: &ImageBatch) -> Vec<f32> {
    task.forward(model, b).unwrap().to_vec_f32().unwrap()
}

#[test]
fn mixup_soft_labels_train_against_the_mixed_target() {
    let (model, dev) = setup();
    let task = ImageClassification::default();
    let mixed = MixUp {
        alpha: 0.4,
        num_classes: 3,
    }
    .apply_batch(batch(), &mut rng_for(1, 0, 0))
    .unwrap();
    let targets: Vec<f32> = mixed
        .iter()
        .flat_map(|s| s.targets.soft_label.clone().unwrap())
        .collect();
    // The mixed targets are not one-hot: the loss must differ from the hard one.
    assert!(targets.iter().any(|&t| t > 0.01 && t < 0.99), "{targets:?}");
    let b = task.collate(&mixed, &dev).unwrap();
    let z = logits_of(&model, &task, &b);
    let loss = task.loss(&model, &b).unwrap().item().unwrap();
    let want = host_soft_ce(&z, &targets, 3);
    assert!((loss - want).abs() < 1e-5, "loss {loss} vs host {want}");
    let hard: Vec<f32> = batch()
        .iter()
        .flat_map(|s| (0..3).map(move |c| f32::from(u8::from(c == s.targets.label.unwrap()))))
        .collect();
    assert!((loss - host_soft_ce(&z, &hard, 3)).abs() > 1e-4);
}

#[test]
fn hard_labels_and_label_smoothing_match_the_host_formula() {
    let (model, dev) = setup();
    for eps in [0.0, 0.1] {
        let task = ImageClassification {
            label_smoothing: eps,
            ..Default::default()
        };
        let b = task.collate(&batch(), &dev).unwrap();
        let z = logits_of(&model, &task, &b);
        let targets: Vec<f32> = batch()
            .iter()
            .flat_map(|s| {
                let l = s.targets.label.unwrap();
                (0..3).map(move |c| {
                    (1.0 - eps as f32) * f32::from(u8::from(c == l)) + eps as f32 / 3.0
                })
            })
            .collect();
        let loss = task.loss(&model, &b).unwrap().item().unwrap();
        let want = host_soft_ce(&z, &targets, 3);
        assert!((loss - want).abs() < 1e-5, "eps {eps}: {loss} vs {want}");
    }
}

#[test]
fn a_batch_mixing_soft_and_hard_labels_uses_one_hot_for_the_hard_ones() {
    let (model, dev) = setup();
    let task = ImageClassification::default();
    let mut samples = batch();
    samples[1].targets.soft_label = Some(vec![0.25, 0.75, 0.0]);
    let b = task.collate(&samples, &dev).unwrap();
    let z = logits_of(&model, &task, &b);
    let t = [
        1.0, 0.0, 0.0, 0.25, 0.75, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0f32,
    ];
    let loss = task.loss(&model, &b).unwrap().item().unwrap();
    assert!((loss - host_soft_ce(&z, &t, 3)).abs() < 1e-5);
}

#[test]
fn classification_errors_name_the_sample_and_the_key() {
    let (model, dev) = setup();
    let task = ImageClassification::default();
    let mut samples = batch();
    samples[2].targets.label = Some(7);
    let b = task.collate(&samples, &dev).unwrap();
    let e = task.loss(&model, &b).unwrap_err().to_string();
    assert!(
        e.contains("img2") && e.contains("label 7") && e.contains("3 classes"),
        "{e}"
    );

    let mut samples = batch();
    samples[3].targets.label = None;
    let e = task.collate(&samples, &dev).unwrap_err().to_string();
    assert!(e.contains("img1") && e.contains("no label"), "{e}");

    let bad = ImageClassification {
        label_smoothing: 1.0,
        ..Default::default()
    };
    let e = bad.collate(&batch(), &dev).unwrap_err().to_string();
    assert!(e.contains("label_smoothing"), "{e}");

    let mut samples = batch();
    samples[0].targets.soft_label = Some(vec![0.5, 0.5]);
    samples[1].targets.soft_label = Some(vec![0.2, 0.3, 0.5]);
    let e = task.collate(&samples, &dev).unwrap_err().to_string();
    assert!(e.contains("img1") && e.contains("3 classes"), "{e}");
}

/// Mean of the embedded real tokens → logits; records what it was given.
#[derive(Module, Debug)]
struct BagOfWords {
    emb: burn::nn::Embedding,
    lin: Linear,
}

impl SequenceClassifier for BagOfWords {
    fn classify_tokens(&self, ids: BT<2, Int>, mask: BT<2, Bool>) -> BT<2> {
        let e = self.emb.forward(ids); // [B, T, D]
        let m = mask.float().unsqueeze_dim::<3>(2); // [B, T, 1]
        let sum = (e * m.clone()).sum_dim(1).squeeze_dim::<2>(1); // [B, D]
        let n = m.sum_dim(1).squeeze_dim::<2>(1); // [B, 1]
        self.lin.forward(sum / n)
    }
}

fn text(tokens: &[u32], label: Option<usize>, name: &str) -> Sample {
    let mut s = Sample {
        source: name.into(),
        ..Sample::default()
    };
    s.inputs
        .insert("tokens".into(), Input::Tokens(tokens.to_vec()));
    s.targets.label = label;
    s
}

#[test]
fn text_batches_pad_to_the_longest_with_a_mask_and_train() {
    let dev = Device::flex();
    let task = TextClassification {
        pad_id: 0,
        min_length: 5,
        ..TextClassification::default()
    };
    let samples = vec![
        text(&[5, 6, 7], Some(1), "a"),
        text(&[8, 9, 10, 11, 12, 13], Some(0), "b"),
        text(&[14], Some(1), "c"),
    ];
    let b = task.collate(&samples, &dev).unwrap();
    assert_eq!(b.ids.dims(), [3, 6]);
    let ids: Vec<i64> = b.ids.to_data().convert::<i64>().try_into_vec().unwrap();
    assert_eq!(
        ids,
        [5, 6, 7, 0, 0, 0, 8, 9, 10, 11, 12, 13, 14, 0, 0, 0, 0, 0]
    );
    let mask: Vec<bool> = b.mask.to_data().try_into_vec().unwrap();
    assert_eq!(mask.iter().filter(|m| **m).count(), 10);
    assert_eq!(b.targets.label_values, Some(vec![1, 0, 1]));
    // `min_length` pads short batches (a window-5 convolution needs T ≥ 5).
    let short = task.collate(&[text(&[1, 2], Some(0), "s")], &dev).unwrap();
    assert_eq!(short.ids.dims(), [1, 5]);

    // Padding does not change the prediction: the mask hides it.
    let ad = dev.clone().autodiff();
    unidl_backend::seed(&ad, 2);
    let model = BagOfWords {
        emb: burn::nn::EmbeddingConfig::new(16, 4).init(&ad),
        lin: LinearConfig::new(4, 2).init(&ad),
    };
    let alone = task
        .forward(&model, &task.collate(&[samples[2].clone()], &ad).unwrap())
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let padded = task
        .forward(&model, &task.collate(&samples, &ad).unwrap())
        .unwrap()
        .to_vec_f32()
        .unwrap();
    for (a, p) in alone.iter().zip(&padded[4..6]) {
        assert!((a - p).abs() < 1e-6, "{alone:?} vs {padded:?}");
    }

    // The loss is the cross-entropy of the logits and it falls under SGD.
    let mut opt =
        construct_optimizer(&model, &OptimizerConfig::new(OptimizerMethod::Sgd, 0.5)).unwrap();
    let batch = task.collate(&samples, &ad).unwrap();
    let mut model = model;
    let first = task.loss(&model, &batch).unwrap().item().unwrap();
    for _ in 0..30 {
        let loss = task.loss(&model, &batch).unwrap();
        opt.backward(&loss, &model).unwrap();
        model = update_learnable_parameter(model, &mut opt).unwrap();
    }
    let last = task.loss(&model, &batch).unwrap().item().unwrap();
    assert!(last < first * 0.5, "{first} -> {last}");
}

#[test]
fn text_batches_without_tokens_name_the_sample() {
    let dev = Device::flex();
    let mut s = Sample {
        source: "mail-17".into(),
        ..Sample::default()
    };
    s.inputs.insert("text".into(), Input::Text("hello".into()));
    let e = TextClassification::default()
        .collate(&[s], &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mail-17") && e.contains("tokenize"), "{e}");
}

#[test]
fn a_task_is_an_inference_predictor() {
    let (model, dev) = setup();
    let task = ImageClassification {
        class_names: vec!["zero".into(), "one".into(), "two".into()],
        ..Default::default()
    };
    let infer = construct_inference(
        model,
        TaskPredictor(task.clone()),
        unidl_data::transform::Compose(vec![]),
        task.post(),
        InferOptions {
            top_k: 2,
            ..InferOptions::default()
        },
        &dev,
    )
    .unwrap();
    let out = infer.infer_samples(batch(), None).unwrap();
    assert_eq!(out.len(), 4);
    assert!(
        out.iter()
            .all(|r| r.len() == 2 && r[0].probability >= r[1].probability)
    );
    assert!(["zero", "one", "two"].contains(&out[0][0].label.as_str()));
}

/// B.5.1's two error cases: a config value out of range (naming the key,
/// at construction and as a per-call override) and a model that cannot infer.
#[test]
fn construct_inference_refuses_bad_configs_and_broken_models() {
    let build = |model: Flat, options: InferOptions| {
        let task = ImageClassification::default();
        construct_inference(
            model,
            TaskPredictor(task.clone()),
            unidl_data::transform::Compose(vec![]),
            task.post(),
            options,
            &Device::flex(),
        )
    };
    let d = InferOptions::default;
    for (options, key) in [
        (
            InferOptions {
                batch_size: 0,
                ..d()
            },
            "infer.batch_size",
        ),
        (InferOptions { top_k: 0, ..d() }, "infer.top_k"),
        (
            InferOptions {
                score_threshold: 1.5,
                ..d()
            },
            "infer.score_threshold",
        ),
        (
            InferOptions {
                iou_threshold: -0.1,
                ..d()
            },
            "infer.iou_threshold",
        ),
        (
            InferOptions {
                max_detections: 0,
                ..d()
            },
            "infer.max_detections",
        ),
    ] {
        match build(setup().0, options) {
            Err(TrainError::Config { key: k, .. }) => assert_eq!(k, key),
            Err(e) => panic!("{key}: {e}"),
            Ok(_) => panic!("{key}: accepted"),
        }
    }
    // A per-call override is checked the same way.
    let infer = build(setup().0, d()).unwrap();
    let e = infer
        .infer_samples(batch(), Some(&InferOptions { top_k: 0, ..d() }))
        .err()
        .unwrap();
    assert!(e.to_string().contains("infer.top_k"), "{e}");
    // A model whose weights hold a NaN (a diverged run, a corrupt file) is a
    // model error naming the parameter, not a stream of NaN scores.
    let (model, dev) = setup();
    let mut w = model
        .lin
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    w[5] = f32::NAN;
    let lin = burn::nn::Linear {
        weight: burn::module::Param::from_tensor(BT::<2>::from_data(
            burn::tensor::TensorData::new(w, [4, 3]),
            &dev,
        )),
        bias: model.lin.bias.clone(),
    };
    match build(Flat { lin }, d()) {
        Err(TrainError::Model(m)) => assert!(m.contains("`lin.weight`"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a NaN weight was accepted"),
    }
}

#[path = "tasks/families.rs"]
mod families;

/// One decoded box on the middle half of whatever image the model sees
/// (`[x0, y0, x1, y1, score]`, one class), in input pixels.
struct MiddleHalf;

impl Predictor<Flat> for MiddleHalf {
    fn outputs(
        &self,
        _model: &Flat,
        samples: &[Sample],
        device: &Device,
    ) -> unidl_train::Result<unidl_tensor::Tensor> {
        let mut values = Vec::new();
        for s in samples {
            let img = s.image_input("image").expect("an image");
            let (w, h) = (img.width as f32, img.height as f32);
            values.extend([w / 4.0, h / 4.0, 3.0 * w / 4.0, 3.0 * h / 4.0, 0.9]);
        }
        Ok(unidl_tensor::Tensor::from_f32(
            values,
            &[samples.len(), 1, 5],
            device,
        )?)
    }
}

#[test]
fn inference_maps_outputs_back_through_its_own_preprocessing() {
    use std::sync::Arc;
    use unidl_data::transform::{CenterCrop, Compose, Resize};
    use unidl_train::postprocess::detection::{BoxCoding, BoxFormat};
    let (model, dev) = setup();
    let infer_with = |preprocess: Vec<unidl_data::transform::DynTransform>| {
        construct_inference(
            setup().0,
            MiddleHalf,
            Compose(preprocess),
            DetectionPost::new(DetectionConfig::new(BoxCoding::Decoded {
                format: BoxFormat::Xyxy,
                objectness: false,
            }))
            .unwrap(),
            InferOptions::default(),
            &dev,
        )
        .unwrap()
    };
    drop(model);
    let photo =
        |w: usize, h: usize| Sample::image(Image::new(w, h, 1), None, format!("{w}x{h}.png"));
    let boxes = |infer: &Inference<Flat, MiddleHalf, DetectionPost>, samples: Vec<Sample>| {
        infer
            .infer_samples(samples, None)
            .unwrap()
            .into_iter()
            .map(|d| [d[0].x0, d[0].y0, d[0].x1, d[0].y1])
            .collect::<Vec<_>>()
    };
    // A plain resize: 64x48 and 20x40 both become 32x32; the box on the
    // middle half of the network input is the middle half of each photo.
    let resize = infer_with(vec![Arc::new(Resize {
        size: [32, 32],
        keep_ratio: false,
        fill: 0.0,
    })]);
    let got = boxes(&resize, vec![photo(64, 48), photo(20, 40)]);
    assert_eq!(got, vec![[16.0, 12.0, 48.0, 36.0], [5.0, 10.0, 15.0, 30.0]]);
    // A letterbox, then a centre crop: 64x32 → 32x16 on a 32x32 canvas
    // (8 px bands above and below) → the middle 16x16, i.e. x 8..24, y 8..24
    // of the canvas; its middle half is x 12..20, y 12..20 of the canvas,
    // which is x 24..40, y 8..24 of the photo.
    let crop = infer_with(vec![
        Arc::new(Resize {
            size: [32, 32],
            keep_ratio: true,
            fill: 0.0,
        }),
        Arc::new(CenterCrop { size: [16, 16] }),
    ]);
    assert_eq!(
        boxes(&crop, vec![photo(64, 32)]),
        vec![[24.0, 8.0, 40.0, 24.0]]
    );
    // Without preprocessing the outputs stay where the model put them, also
    // for samples a data set already transformed (their targets are there).
    let none = infer_with(vec![]);
    let mut transformed = photo(64, 48);
    transformed.frame =
        Some(unidl_data::Frame::identity(128, 96).then([0.5, 0.0, 0.0, 0.5, 0.0, 0.0]));
    assert_eq!(
        boxes(&none, vec![transformed]),
        vec![[16.0, 12.0, 48.0, 36.0]]
    );
    // A flip cannot be undone per axis: a typed error naming the input.
    let flip = infer_with(vec![Arc::new(unidl_data::transform::HorizontalFlip {
        flip_pairs: vec![],
    })]);
    let e = flip.infer_samples(vec![photo(8, 8)], None).unwrap_err();
    assert!(
        matches!(&e, TrainError::Config { key, reason } if key == "preprocess" && reason.contains("8x8.png")),
        "{e}"
    );
}

/// The supervised contrastive loss against the formula computed on the
/// host in f64: anchors with a positive only, the others of the batch as
/// the denominator; a batch without positive pairs gives 0 with gradients.
#[test]
fn supervised_contrastive_loss_matches_the_formula() {
    let dev = Device::flex().autodiff();
    let (b, d, tau) = (5usize, 3usize, 0.5f64);
    let values: Vec<f32> = (0..b * d)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
        .collect();
    let labels = [0usize, 1, 0, 1, 2]; // label 2 has no positive: not an anchor
    let unit: Vec<Vec<f64>> = values
        .chunks(d)
        .map(|r| {
            let n = r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            r.iter().map(|&x| x as f64 / n).collect()
        })
        .collect();
    let s = |i: usize, j: usize| {
        unit[i]
            .iter()
            .zip(&unit[j])
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / tau
    };
    let (mut total, mut anchors) = (0.0, 0.0);
    for i in 0..b {
        let pos: Vec<usize> = (0..b)
            .filter(|&j| j != i && labels[j] == labels[i])
            .collect();
        if pos.is_empty() {
            continue;
        }
        let denom: f64 = (0..b).filter(|&a| a != i).map(|a| s(i, a).exp()).sum();
        total -= pos
            .iter()
            .map(|&p| (s(i, p).exp() / denom).ln())
            .sum::<f64>()
            / pos.len() as f64;
        anchors += 1.0;
    }
    let want = total / anchors;
    let e = BT::<2>::from_data(burn::tensor::TensorData::new(values, [b, d]), &dev).require_grad();
    let loss = supervised_contrastive_loss(e.clone(), &labels, tau);
    let got = loss
        .clone()
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap()[0];
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let grads = loss.backward();
    let g: Vec<f32> = e
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .unwrap();
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| v.abs() > 1e-4));
    // no positive pair at all
    let e = BT::<2>::from_data(
        burn::tensor::TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]),
        &dev,
    )
    .require_grad();
    let loss = supervised_contrastive_loss(e.clone(), &[0, 1], tau);
    assert_eq!(
        loss.clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap(),
        vec![0.0]
    );
    assert!(e.grad(&loss.backward()).is_some());
}

/// Masked-LM collation: about 15 % of the real non-special tokens chosen,
/// 80 % of those shown as `[MASK]`, 10 % random, 10 % unchanged; `[CLS]`,
/// `[SEP]` and padding never chosen; the same batch masks the same way
/// twice; a text with a `[MASK]` of its own has exactly that predicted.
#[test]
fn masked_lm_batches_hide_fifteen_percent_and_respect_given_masks() {
    use std::sync::Arc;
    use unidl_data::text::{Corpus, SPECIAL_TOKENS, TextTokenizer};
    let dev = Device::flex();
    let words = "the quick brown fox jumps over the lazy dog while a cat sleeps on the warm mat";
    let tok = TextTokenizer::train_wordpiece(
        &Corpus::texts(vec![words.to_string(); 4]),
        60,
        1,
        &SPECIAL_TOKENS,
    )
    .unwrap();
    let task = MaskedLanguageModelling::for_tokenizer(Arc::new(tok.clone())).unwrap();
    let (cls, sep) = (
        tok.token_to_id("[CLS]").unwrap(),
        tok.token_to_id("[SEP]").unwrap(),
    );
    let ids: Vec<u32> = tok.encode(words).unwrap();
    let samples: Vec<Sample> = (0..200)
        .map(|i| {
            // rotate so that the batch holds different texts
            let mut t = ids.clone();
            t.rotate_left(i % ids.len());
            let mut t2 = vec![cls];
            t2.extend(t);
            t2.push(sep);
            text(&t2, None, &format!("s{i}"))
        })
        .collect();
    let b = task.collate(&samples, &dev).unwrap();
    let shown: Vec<i64> = b.ids.to_data().convert::<i64>().try_into_vec().unwrap();
    let t = b.ids.dims()[1];
    let (mut chosen, mut masked, mut same, mut real) = (0usize, 0usize, 0usize, 0usize);
    for (i, kinds) in b.kinds.iter().enumerate() {
        for (j, &k) in kinds.iter().enumerate() {
            let orig = b.original[i][j];
            if orig == cls || orig == sep {
                assert_eq!(k, 0, "special token chosen");
                continue;
            }
            real += 1;
            if k == 1 {
                chosen += 1;
                let s = shown[i * t + j] as u32;
                masked += usize::from(s == task.mask_id);
                same += usize::from(s == orig);
            }
        }
    }
    let rate = chosen as f64 / real as f64;
    assert!((0.12..0.18).contains(&rate), "chosen {rate}");
    let m = masked as f64 / chosen as f64;
    assert!((0.74..0.86).contains(&m), "[MASK] share {m}");
    assert!(same as f64 / chosen as f64 > 0.05, "unchanged share");
    // deterministic for the same batch
    let again = task.collate(&samples, &dev).unwrap();
    assert_eq!(again.kinds, b.kinds);
    // a text with its own [MASK]: exactly that position, not chosen at random
    let mut given = vec![cls];
    given.extend(&ids[..5]);
    given[2] = task.mask_id;
    given.push(sep);
    let b = task.collate(&[text(&given, None, "given")], &dev).unwrap();
    assert_eq!(b.kinds[0], vec![0, 0, 2, 0, 0, 0, 0]);
    let predict: Vec<bool> = b.predict.to_data().try_into_vec().unwrap();
    assert!(predict.iter().all(|p| !p), "given masks are not trained on");
}
