//! unidl-audio's RNN-T against torchaudio 2.9.0
//! (`tests/reference/gen_rnnt.py`): reduced models with a Conformer and an
//! LSTM transcriber — eval logits on a padded batch, one training step's
//! loss (`torchaudio.functional.rnnt_loss`) and every gradient —; the loss
//! alone with per-sample lengths; `conformer_rnnt_base`'s parameter count;
//! greedy decoding checked against the teacher-forced joiner, the beam
//! against greedy; typed errors; `rnnt` trained through the registry.

mod common;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Float, Tensor as BT};
use common::{GradTolerance, Reference, float_tensor, lengths, params, targets};
use unidl_audio::weights::{load_torchaudio_rnnt, torchaudio_conformer_rules};
use unidl_audio::{Rnnt, RnntConfig, TranscriberKind};
use unidl_backend::Device;
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, backward};
use unidl_testkit::{check_close, floats, values};
use unidl_train::transducer_loss;

const REF: Reference = Reference::committed("rnnt");

fn config(name: &str) -> RnntConfig {
    REF.config(name)
}

fn load(name: &str, dev: &Device) -> Rnnt {
    REF.load(name, config(name).init(dev).unwrap(), load_torchaudio_rnnt)
}

#[test]
fn conformer_rnnt_base_has_torchaudios_parameter_count() {
    let m = RnntConfig::base(80, 29).init(&Device::flex()).unwrap();
    assert_eq!(
        params(&m) as u64,
        REF.meta()["conformer_rnnt_base_params"].as_u64().unwrap()
    );
    for name in ["conformer", "lstm"] {
        let m = config(name).init(&Device::flex()).unwrap();
        assert_eq!(
            params(&m) as u64,
            REF.meta()["models"][name]["params"].as_u64().unwrap(),
            "{name}"
        );
    }
}

/// The model and the transducer loss over fixed targets, for `backward`.
#[derive(Module, Debug)]
struct RnntLoss {
    m: Rnnt,
    #[module(skip)]
    lengths: Vec<usize>,
    #[module(skip)]
    targets: Vec<Vec<u32>>,
}

impl Forward for RnntLoss {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        let (logits, n) = self.m.forward(
            input.clone().into_burn::<3, Float>()?,
            &self.lengths,
            &self.targets,
        );
        Tensor::from_burn(transducer_loss(log_softmax(logits, 3), &self.targets, &n, 0).unwrap())
    }
}

fn matches_torchaudio(name: &str) {
    let dev = Device::flex();
    let m = load(name, &dev);
    let io = REF.io(name, &dev);
    let lens = lengths(&io, "lengths");
    let targets = targets(&io);
    let (logits, n) = m
        .clone()
        .valid()
        .try_forward(float_tensor(&io, "input", &dev), &lens, &targets)
        .unwrap();
    assert_eq!(n, lengths(&io, "output_lengths"), "{name}");
    check_close(
        &format!("{name} logits"),
        &values(logits.clone()),
        &floats(&io, "logits"),
        1e-4,
    );
    let loss = transducer_loss(log_softmax(logits, 3), &targets, &n, 0).unwrap();
    unidl_testkit::check_loss(&format!("{name} loss"), &loss, floats(&io, "loss")[0]);

    // one training step: every gradient
    let wrap = RnntLoss {
        m,
        lengths: lens,
        targets,
    };
    let one = Tensor::from_f32(vec![1.0], &[1], &dev).unwrap();
    let grads = backward(&wrap, &io["input"], &one).unwrap();
    common::check_reference_grads(
        &format!("{name} rnnt"),
        &REF.io_file(name),
        &torchaudio_conformer_rules(true).unwrap(),
        &wrap.m,
        &grads,
        "m.",
        GradTolerance::l2(1e-3, 1e-4),
    );
}

#[test]
fn conformer_transducer_matches_torchaudio() {
    matches_torchaudio("conformer");
}

#[test]
fn lstm_transducer_matches_torchaudio() {
    matches_torchaudio("lstm");
}

/// The loss and its gradient through the log-softmax equal torchaudio's
/// `rnnt_loss` on logits with per-sample logit and target lengths.
#[test]
fn transducer_loss_matches_torchaudio_rnnt_loss() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let io = REF.io("loss", &dev);
    let z = float_tensor::<4>(&io, "logits", &ad).require_grad();
    let loss = transducer_loss(
        log_softmax(z.clone(), 3),
        &targets(&io),
        &lengths(&io, "logit_lengths"),
        0,
    )
    .unwrap();
    unidl_testkit::check_loss("rnnt_loss", &loss, floats(&io, "loss")[0]);
    let g = z.grad(&loss.backward()).unwrap();
    check_close("rnnt_loss gradient", &values(g), &floats(&io, "grad"), 1e-4);
}

/// Greedy decoding is the best-label walk through the teacher-forced
/// joiner over its own output; where greedy's path is within the beam's
/// reach (at most its labels per frame), the beam's choice is at least as
/// probable.
#[test]
fn greedy_is_the_argmax_walk_and_the_beam_is_no_worse() {
    let dev = Device::flex();
    let m = load("conformer", &dev).valid();
    let io = REF.io("conformer", &dev);
    let lens = lengths(&io, "lengths");
    let x = float_tensor::<3>(&io, "input", &dev);
    let greedy = m.decode(x.clone(), &lens, 1);
    let (logits, n) = m.forward(x.clone(), &lens, &greedy);
    let [_, t, u1, v] = logits.dims();
    let host = values(logits);
    // samples whose greedy path has at most the beam's labels per frame
    let mut reachable = Vec::new();
    for (k, y) in greedy.iter().enumerate() {
        let (mut i, mut j, mut here, mut most) = (0, 0, 0, 0);
        while i < n[k] {
            let row = &host[((k * t + i) * u1 + j) * v..((k * t + i) * u1 + j + 1) * v];
            let best = (0..v).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            if best == 0 || here == unidl_audio::rnnt::MAX_SYMBOLS_PER_FRAME {
                (i, here) = (i + 1, 0);
            } else {
                assert_eq!(y.get(j), Some(&(best as u32)), "sample {k} label {j}");
                (j, here) = (j + 1, here + 1);
                most = most.max(here);
            }
        }
        assert_eq!(j, y.len(), "sample {k}: {y:?}");
        if most <= unidl_audio::rnnt::BEAM_SYMBOLS_PER_FRAME {
            reachable.push(k);
        }
    }
    assert!(
        !reachable.is_empty(),
        "no greedy path within the beam's reach"
    );
    let beam = m.decode(x.clone(), &lens, 4);
    // −log P(y | x), what the beam ranks by
    let nll = |ys: &[Vec<u32>], k: usize| {
        let one = x.clone().narrow(0, k, 1);
        let (l, n) = m.forward(one, &lens[k..k + 1], &ys[k..k + 1]);
        values(transducer_loss(log_softmax(l, 3), &ys[k..k + 1], &n, 0).unwrap())[0]
    };
    for &k in &reachable {
        assert!(
            nll(&beam, k) <= nll(&greedy, k) + 1e-4,
            "sample {k}: beam {:?} ({}) vs greedy {:?} ({})",
            beam[k],
            nll(&beam, k),
            greedy[k],
            nll(&greedy, k)
        );
    }
}

#[test]
fn bad_configs_and_inputs_are_named() {
    let dev = Device::flex();
    let small = config("conformer");
    let e = RnntConfig {
        depthwise_conv_kernel_size: 4,
        ..small.clone()
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("depthwise_conv_kernel_size"), "{e}");
    let e = RnntConfig {
        vocab_size: 1,
        ..small.clone()
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("vocab_size"), "{e}");
    let e = RnntConfig {
        lstm_dropout: 1.0,
        ..small.clone()
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("lstm_dropout"), "{e}");
    let e = toml::from_str::<RnntConfig>("input_dim = 80\nvocab_size = 29\ntranscriber = \"gru\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("gru"), "{e}");
    let m = RnntConfig {
        transcriber: TranscriberKind::Lstm,
        ..small
    }
    .init(&dev)
    .unwrap();
    let e = m
        .try_forward(
            BT::<3>::zeros([2, 20, 7], &dev),
            &[20, 12],
            &[vec![1], vec![2]],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("[2, 20, 7]") && e.contains("8 features"), "{e}");
    let e = m
        .try_forward(
            BT::<3>::zeros([2, 20, 8], &dev),
            &[20, 3],
            &[vec![1], vec![2]],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("length 3") && e.contains("stacks 4"), "{e}");
    let e = m
        .try_forward(
            BT::<3>::zeros([2, 20, 8], &dev),
            &[20, 12],
            &[vec![1], vec![6]],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 6"), "{e}");
    let (y, n) = m
        .try_forward(
            BT::<3>::zeros([2, 20, 8], &dev),
            &[20, 12],
            &[vec![1, 2], vec![3]],
        )
        .unwrap();
    assert_eq!((y.dims(), n), ([2, 5, 3, 6], vec![5, 3]));
}

/// `rnnt` through the registry (`transducer_recognition`): the transducer
/// loss falls, held-out CER, `unidl infer` prints the transcript greedily
/// and with the beam; a joiner that does not fit the alphabet is an error
/// naming `model.vocab_size`.
#[test]
fn rnnt_recognises_tone_words_through_the_registry() {
    let dir = common::scratch_dir("unidl-rnnt-route");
    let words = ["ab", "ba", "aba", "bab", "abab", "baba"];
    for (split, n) in [("train", 36), ("val", 12)] {
        common::write_tone_split(&dir, split, n, &words, "");
    }
    let config = |vocab: usize, beam: usize| {
        format!(
            r#"seed = 1
[model]
name = "rnnt"
input_dim = 20
vocab_size = {vocab}
encoding_dim = 32
time_reduction_stride = 4
d_model = 32
num_heads = 2
ffn_dim = 64
num_layers = 2
depthwise_conv_kernel_size = 7
dropout = 0.0
symbol_embedding_dim = 16
num_lstm_layers = 1
lstm_hidden_dim = 32
lstm_dropout = 0.0
[task]
name = "transducer_recognition"
alphabet = "ab"
beam_width = {beam}
{data}
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.005
[trainer]
epochs = 20
batch_size = 6
progress = false
output_dir = "run"
[eval]
metrics = ["cer", "wer"]
"#,
            data = common::tone_recognition_data(&dir),
        )
    };
    let reg = common::registry();
    let e = common::train_error(&reg, &dir.join("bad.toml"), &config(5, 1));
    assert!(
        e.contains("model.vocab_size") && e.contains("5 labels"),
        "{e}"
    );
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, config(3, 1)).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let losses = common::step_losses(&dir.join("run/steps.csv"));
    assert!(
        losses[losses.len() - 1] < 0.2 * losses[0],
        "transducer loss did not fall: {losses:?}"
    );
    let scores = common::eval_scores(&reg, &cfg, &dir);
    let cer = scores["cer"].as_f64().unwrap();
    assert!(
        cer <= 0.1,
        "held-out CER {cer}: {scores}; losses {losses:?}"
    );
    for beam in [1, 3] {
        std::fs::write(&cfg, config(3, beam)).unwrap();
        let out = unidl_run::infer_config(
            &reg,
            &cfg,
            Some("flex"),
            &unidl_run::InferArgs {
                files: vec![dir.join("wav/val0.wav"), dir.join("wav/val3.wav")],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(out[0]["output"]["text"], "ab", "beam {beam}: {out:?}");
        assert_eq!(out[1]["output"]["text"], "bab", "beam {beam}: {out:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
