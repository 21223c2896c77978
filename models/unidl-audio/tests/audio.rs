//! unidl-audio's Conformer against torchaudio 2.9.0
//! (`tests/reference/gen_conformer.py`): the blocks in eval mode (batch and
//! group norm, attention or convolution first) on padded batches with
//! per-sample lengths; the full CTC model (the paper's subsampling front
//! end, the blocks, a linear head) for one train-mode step — log-probs,
//! output lengths, `ctc_loss` against `torch.nn.functional.ctc_loss` and
//! every gradient —; Conformer-S's parameter count; typed errors.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Float, Int, Tensor as BT};
use unidl_audio::weights::{load_torchaudio_conformer, torchaudio_conformer_rules};
use unidl_audio::{Conformer, ConformerConfig};
use unidl_backend::Device;
use unidl_interop::{Checkpoint, Framework, MappingRules};
use unidl_tensor::Tensor;
use unidl_tensor::module::{Forward, ModuleApi, StateDict, backward, load_state_dict_file};
use unidl_testkit::{check_close, floats, values};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/conformer")
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("conformer.json")).unwrap()).unwrap()
}

fn config(name: &str) -> ConformerConfig {
    serde_json::from_value(meta()["models"][name]["config"].clone()).unwrap()
}

fn io(name: &str, dev: &Device) -> StateDict {
    load_state_dict_file(&dir().join(format!("{name}.io.safetensors")), dev).unwrap()
}

fn ints(io: &StateDict, key: &str) -> Vec<i64> {
    io[key]
        .clone()
        .into_burn::<1, Int>()
        .unwrap()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap()
}

fn lengths(io: &StateDict, key: &str) -> Vec<usize> {
    ints(io, key).into_iter().map(|v| v as usize).collect()
}

fn input(io: &StateDict, dev: &Device) -> BT<3> {
    BT::from_data(
        io["input"]
            .clone()
            .into_burn::<3, Float>()
            .unwrap()
            .into_data(),
        dev,
    )
}

fn params<M: ModuleApi>(m: &M) -> usize {
    m.get_parameters().iter().map(|(_, t)| t.numel()).sum()
}

#[test]
fn conformer_s_blocks_have_torchaudios_parameter_count() {
    let m = ConformerConfig::small(144).init(&Device::flex()).unwrap();
    assert_eq!(params(&m), 7_771_392);
    assert_eq!(meta()["conformer_s_params"], 7_771_392);
}

#[test]
fn blocks_match_torchaudio_in_eval_mode() {
    let dev = Device::flex();
    for name in ["blocks", "blocks_gn"] {
        let (m, report) = load_torchaudio_conformer(
            config(name).init(&dev).unwrap(),
            &dir().join(format!("{name}.safetensors")),
            true,
        )
        .unwrap();
        assert!(report.load.missing.is_empty(), "{report}");
        let io = io(name, &dev);
        let (y, n) = m
            .try_forward(input(&io, &dev), &lengths(&io, "lengths"))
            .unwrap();
        assert_eq!(n, lengths(&io, "output_lengths"));
        check_close(name, &values(y), &floats(&io, "output"), 1e-4);
    }
}

/// The CTC model's rules: unidl's parts under the generator's names.
fn ctc_rules() -> MappingRules {
    MappingRules::new()
        .rename(r"^frontend\.", "subsampling.")
        .and_then(|r| r.rename(r"^blocks\.", ""))
        .and_then(|r| r.rename(r"^head\.", "ctc_head."))
        .unwrap()
        .then(torchaudio_conformer_rules(false).unwrap())
}

/// The model and a CTC loss over fixed targets, for `backward`.
#[derive(Module, Debug)]
struct CtcLoss {
    m: Conformer,
    #[module(skip)]
    lengths: Vec<usize>,
    #[module(skip)]
    targets: Vec<Vec<u32>>,
}

impl Forward for CtcLoss {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        let (lp, n) = self
            .m
            .ctc(input.clone().into_burn::<3, Float>()?, &self.lengths)
            .expect("a CTC head");
        Tensor::from_burn(unidl_train::ctc_loss(lp, &self.targets, &n, 0).unwrap())
    }
}

#[test]
fn ctc_model_train_step_matches_torch() {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let ckpt = unidl_interop::read_safetensors(&dir().join("ctc.safetensors"), Framework::PyTorch)
        .unwrap();
    let (m, report) =
        unidl_interop::load_into(config("ctc").init(&dev).unwrap(), &ckpt, &ctc_rules(), true)
            .unwrap();
    assert!(report.load.missing.is_empty(), "{report}");
    let io = io("ctc", &dev);
    let lens = lengths(&io, "lengths");
    let tl = lengths(&io, "target_lengths");
    let flat = ints(&io, "targets_flat");
    let width = flat.len() / tl.len();
    let targets: Vec<Vec<u32>> = tl
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            flat[i * width..i * width + n]
                .iter()
                .map(|&v| v as u32)
                .collect()
        })
        .collect();

    // train mode: batch statistics in the convolution modules
    let (lp, n) = m.clone().fork(&ad).ctc(input(&io, &ad), &lens).unwrap();
    assert_eq!(n, lengths(&io, "output_lengths"));
    check_close(
        "ctc log-probs",
        &values(lp.clone()),
        &floats(&io, "log_probs"),
        1e-4,
    );
    let loss = unidl_train::ctc_loss(lp, &targets, &n, 0).unwrap();
    unidl_testkit::check_loss("ctc loss", &loss, floats(&io, "loss")[0]);

    let wrap = CtcLoss {
        m,
        lengths: lens,
        targets,
    };
    let x = io["input"].clone();
    let one = Tensor::from_f32(vec![1.0], &[1], &dev).unwrap();
    let grads = backward(&wrap, &x, &one).unwrap();
    let src =
        unidl_interop::read_safetensors(&dir().join("ctc.io.safetensors"), Framework::PyTorch)
            .unwrap();
    let ckpt = Checkpoint {
        source: src.source.clone(),
        framework: Framework::PyTorch,
        tensors: src
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix("grad.").map(|k| (k.to_string(), t.clone())))
            .collect(),
    };
    let types = unidl_interop::mapping::module_types(&wrap.m);
    let (mapped, _) = unidl_interop::mapping::map_checkpoint(&ckpt, &ctc_rules(), &types).unwrap();
    // in_proj_{weight,bias} split in three: every unidl parameter has one
    assert_eq!(mapped.len(), wrap.m.get_parameters().len());
    let pairs: Vec<(String, Vec<f32>, Vec<f32>)> = mapped
        .iter()
        .map(|(k, t)| {
            let want = t.to_tensor(&dev).unwrap().to_vec_f32().unwrap();
            let got = grads.parameters[&format!("m.{k}")].to_vec_f32().unwrap();
            (k.clone(), got, want)
        })
        .collect();
    // a gradient that is zero in exact arithmetic (the depthwise bias before
    // train-mode batch norm) is compared at 1 % of the largest one's norm
    unidl_testkit::check_grads_l2("ctc model", &pairs, 1e-2, 1e-4);
}

#[test]
fn bad_configs_and_inputs_are_named() {
    let dev = Device::flex();
    let e = ConformerConfig {
        depthwise_conv_kernel_size: 4,
        ..ConformerConfig::small(80)
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("depthwise_conv_kernel_size") && e.contains("odd"),
        "{e}"
    );
    let e = ConformerConfig {
        num_heads: 5,
        ..ConformerConfig::small(80)
    }
    .init(&dev)
    .unwrap_err()
    .to_string();
    assert!(e.contains("num_heads"), "{e}");
    let e = toml::from_str::<ConformerConfig>("input_dim = 80\nnum_layer = 2")
        .unwrap_err()
        .to_string();
    assert!(e.contains("num_layer"), "{e}");
    let m = ConformerConfig {
        num_layers: 1,
        subsampling: true,
        vocab_size: Some(5),
        ..ConformerConfig::small(20)
    }
    .init(&dev)
    .unwrap();
    let e = m
        .try_forward(BT::<3>::zeros([2, 30, 19], &dev), &[30, 20])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[2, 30, 19]") && e.contains("20 features"),
        "{e}"
    );
    let e = m
        .try_forward(BT::<3>::zeros([2, 30, 20], &dev), &[31, 20])
        .unwrap_err()
        .to_string();
    assert!(e.contains("length 31"), "{e}");
    let e = m
        .try_forward(BT::<3>::zeros([1, 6, 20], &dev), &[6])
        .unwrap_err()
        .to_string();
    assert!(e.contains("7 frames"), "{e}");
    let (y, n) = m
        .try_forward(BT::<3>::zeros([2, 30, 20], &dev), &[30, 20])
        .unwrap();
    assert_eq!((y.dims(), n), ([2, 6, 144], vec![6, 4]));
}

/// Writes a 16 kHz WAV of two 0.25 s tones, the "a" tone (300 Hz) and the
/// "b" tone (1,200 Hz), in the order of `word` (each ± 10 % by `jitter`).
fn tone_word(path: &Path, word: &str, jitter: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for c in word.chars() {
        let f = if c == 'a' { 300.0 } else { 1200.0 } * (1.0 + 0.1 * jitter);
        for i in 0..4000 {
            let t = i as f32 / 16_000.0;
            let v = 0.5 * (std::f32::consts::TAU * f * t).sin();
            w.write_sample((v * 32_000.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// `conformer` through the registry: an audio manifest, the log-mel
/// transform, CTC training whose loss falls, held-out CER, and `unidl
/// infer speech.wav` printing the transcript; a CTC head that does not
/// fit the alphabet is an error naming `model.vocab_size`.
#[test]
fn conformer_recognises_tone_words_through_the_registry() {
    let dir = std::env::temp_dir().join(format!("unidl-audio-route-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("wav")).unwrap();
    let words = ["ab", "ba", "aba", "bab", "abab", "baba"];
    for (split, n) in [("train", 36), ("val", 12)] {
        let mut lines = String::new();
        for i in 0..n {
            let word = words[i % words.len()];
            let name = format!("wav/{split}{i}.wav");
            let jitter = ((i * 7919) % 21) as f32 / 10.0 - 1.0;
            tone_word(&dir.join(&name), word, jitter);
            lines.push_str(&format!(
                "{{\"path\": \"{name}\", \"transcript\": \"{word}\"}}\n"
            ));
        }
        std::fs::write(dir.join(format!("{split}.jsonl")), lines).unwrap();
    }
    let config = |vocab: usize| {
        format!(
            r#"seed = 1
[model]
name = "conformer"
input_dim = 20
d_model = 32
num_heads = 2
ffn_dim = 64
num_layers = 2
depthwise_conv_kernel_size = 7
subsampling = true
vocab_size = {vocab}
[task]
alphabet = "ab"
[data]
format = "audio_manifest"
train = "{train}"
val = "{val}"
sample_rate = 16000
transforms = [{{ type = "mel_spectrogram", n_fft = 400, hop_length = 160, n_mels = 20, log = "log" }}]
[optimizer]
optimizer_method = "adam_w"
base_learningrate = 0.003
[trainer]
epochs = 12
batch_size = 6
progress = false
output_dir = "run"
[eval]
metrics = ["cer", "wer"]
"#,
            train = dir.join("train.jsonl").display(),
            val = dir.join("val.jsonl").display(),
        )
    };
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_audio::register(&mut reg).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, config(5)).unwrap();
    let e = unidl_run::train_config(&reg, &bad, Some("flex"), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.vocab_size") && e.contains("5 labels"),
        "{e}"
    );
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, config(3)).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let steps = std::fs::read_to_string(dir.join("run/steps.csv")).unwrap();
    let losses: Vec<f64> = steps
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(
        losses[losses.len() - 1] < 0.5 * losses[0],
        "CTC loss did not halve: {losses:?}"
    );
    unidl_run::eval_config(&reg, &cfg, Some("flex")).unwrap();
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/eval/scores.json")).unwrap())
            .unwrap();
    let cer = scores["cer"].as_f64().unwrap();
    assert!(cer <= 0.1, "held-out CER {cer}: {scores}");
    let out = unidl_run::infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &unidl_run::InferArgs {
            files: vec![dir.join("wav/val0.wav")],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(out[0]["output"]["text"], "ab", "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `wavenet` through the registry (`speech_synthesis`): a vocoder on the
/// log-mel frames of tone words learns (the loss falls), and `unidl infer
/// --text` joins a voice bank's recordings of the words, generates the
/// waveform from their frames and writes it as a WAV of the frames' length;
/// unknown words and a missing bank are errors naming them.
#[test]
fn wavenet_vocodes_tone_words_through_the_registry() {
    let dir = std::env::temp_dir().join(format!("unidl-wavenet-route-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("wav")).unwrap();
    let words = ["ab", "ba", "aab", "bba"];
    for (split, n) in [("train", 16), ("val", 4)] {
        let mut lines = String::new();
        for i in 0..n {
            let word = words[i % words.len()];
            let name = format!("wav/{split}{i}.wav");
            let jitter = ((i * 7919) % 21) as f32 / 10.0 - 1.0;
            tone_word(&dir.join(&name), word, jitter);
            lines.push_str(&format!(
                "{{\"path\": \"{name}\", \"transcript\": \"{word}\", \"speaker\": \"tones\"}}\n"
            ));
        }
        std::fs::write(dir.join(format!("{split}.jsonl")), lines).unwrap();
    }
    let config = |bank: &str| {
        format!(
            r#"seed = 1
[model]
name = "wavenet"
layers = 6
stacks = 2
residual_channels = 16
gate_channels = 32
skip_out_channels = 16
kernel_size = 2
dropout = 0.0
cin_channels = 16
upsample_scales = [4, 4]
[task]
segment_frames = 32
{bank}
[task.generation]
temperature = 0.0
[data]
format = "audio_manifest"
train = "{train}"
val = "{val}"
sample_rate = 8000
audio_channels = 1
transforms = [{{ type = "mel_spectrogram", output = "mel", n_fft = 64, hop_length = 16, n_mels = 16, log = "log" }}]
[optimizer]
optimizer_method = "adam"
base_learningrate = 0.01
[trainer]
epochs = 12
batch_size = 4
progress = false
output_dir = "run"
"#,
            train = dir.join("train.jsonl").display(),
            val = dir.join("val.jsonl").display(),
        )
    };
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_audio::register(&mut reg).unwrap();
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, config("")).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let steps = std::fs::read_to_string(dir.join("run/steps.csv")).unwrap();
    let losses: Vec<f64> = steps
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(
        losses[losses.len() - 1] < 0.8 * losses[0],
        "vocoder loss did not fall: {losses:?}"
    );
    let infer = |texts: Vec<String>| {
        unidl_run::infer_config(
            &reg,
            &cfg,
            Some("flex"),
            &unidl_run::InferArgs {
                texts,
                draw: Some(dir.join("out")),
                ..Default::default()
            },
        )
    };
    let e = infer(vec!["ab".into()]).unwrap_err().to_string();
    assert!(e.contains("voice_bank"), "{e}");
    std::fs::write(
        &cfg,
        config(&format!(
            "voice_bank = \"{}\"\nvoice = \"tones\"",
            dir.join("train.jsonl").display()
        )),
    )
    .unwrap();
    let e = infer(vec!["ab abba".into()]).unwrap_err().to_string();
    assert!(
        e.contains("\"abba\"") && e.contains("aab, ab, ba, bba"),
        "{e}"
    );
    let out = infer(vec!["ab ba".into()]).unwrap();
    // two 0.5 s words at 8 kHz and 50 ms between them: 8,400 samples, 525 frames of 16
    assert_eq!(out[0]["output"]["samples"], 8400, "{out:?}");
    let wav = hound::WavReader::open(dir.join("out/ab_ba.wav")).unwrap();
    assert_eq!(wav.spec().sample_rate, 8000);
    assert_eq!(wav.len(), 8400);
    let _ = std::fs::remove_dir_all(&dir);
}
