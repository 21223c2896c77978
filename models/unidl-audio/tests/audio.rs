//! unidl-audio's Conformer against torchaudio 2.9.0
//! (`tests/reference/gen_conformer.py`): the blocks in eval mode (batch and
//! group norm, attention or convolution first) on padded batches with
//! per-sample lengths; the full CTC model (the paper's subsampling front
//! end, the blocks, a linear head) for one train-mode step — log-probs,
//! output lengths, `ctc_loss` against `torch.nn.functional.ctc_loss` and
//! every gradient —; Conformer-S's parameter count; typed errors.

mod common;

use burn::tensor::Tensor as BT;
use common::{Reference, params};
use unidl_audio::ConformerConfig;
use unidl_backend::Device;

const REF: Reference = Reference::committed("conformer");

#[test]
fn conformer_s_blocks_have_torchaudios_parameter_count() {
    let m = ConformerConfig::small(144).init(&Device::flex()).unwrap();
    assert_eq!(params(&m), 7_771_392);
    assert_eq!(REF.meta()["conformer_s_params"], 7_771_392);
}

#[test]
fn blocks_match_torchaudio_in_eval_mode() {
    for name in ["blocks", "blocks_gn"] {
        common::conformer::blocks_match(REF, name);
    }
}

#[test]
fn ctc_model_train_step_matches_torch() {
    common::conformer::ctc_train_step_matches(REF, "ctc", "ctc");
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

/// `conformer` through the registry: an audio manifest, the log-mel
/// transform, CTC training whose loss falls, held-out CER, and `unidl
/// infer speech.wav` printing the transcript; a CTC head that does not
/// fit the alphabet is an error naming `model.vocab_size`.
#[test]
fn conformer_recognises_tone_words_through_the_registry() {
    let dir = common::scratch_dir("unidl-audio-route");
    let words = ["ab", "ba", "aba", "bab", "abab", "baba"];
    for (split, n) in [("train", 36), ("val", 12)] {
        common::write_tone_split(&dir, split, n, &words, "");
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
{data}
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
            data = common::tone_recognition_data(&dir),
        )
    };
    let reg = common::registry();
    let e = common::train_error(&reg, &dir.join("bad.toml"), &config(5));
    assert!(
        e.contains("model.vocab_size") && e.contains("5 labels"),
        "{e}"
    );
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, config(3)).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let losses = common::step_losses(&dir.join("run/steps.csv"));
    assert!(
        losses[losses.len() - 1] < 0.5 * losses[0],
        "CTC loss did not halve: {losses:?}"
    );
    let scores = common::eval_scores(&reg, &cfg, &dir);
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
    let dir = common::scratch_dir("unidl-wavenet-route");
    let words = ["ab", "ba", "aab", "bba"];
    for (split, n) in [("train", 16), ("val", 4)] {
        common::write_tone_split(&dir, split, n, &words, ", \"speaker\": \"tones\"");
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
    let reg = common::registry();
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, config("")).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let losses = common::step_losses(&dir.join("run/steps.csv"));
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

/// The mixture-of-logistics WaveNet through the registry: `[model.output]
/// type = "mixture_of_logistics"` makes the task quantise linearly to the
/// model's levels (the trainer accepts `loss = "mixture_of_logistics_nll"`),
/// the NLL falls, and inference from text writes the WAV.
#[test]
fn mixture_wavenet_vocodes_tone_words_through_the_registry() {
    let dir = common::scratch_dir("unidl-wavenet-mol-route");
    let words = ["ab", "ba"];
    for (split, n) in [("train", 8), ("val", 2)] {
        common::write_tone_split(&dir, split, n, &words, ", \"speaker\": \"tones\"");
    }
    let config = format!(
        r#"seed = 1
[model]
name = "wavenet"
out_channels = 30
layers = 4
stacks = 2
residual_channels = 16
gate_channels = 32
skip_out_channels = 16
kernel_size = 2
dropout = 0.0
cin_channels = 16
upsample_scales = [4, 4]
[model.output]
type = "mixture_of_logistics"
[task]
segment_frames = 16
voice_bank = "{train}"
voice = "tones"
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
base_learningrate = 0.005
[trainer]
loss = "mixture_of_logistics_nll"
epochs = 8
batch_size = 4
progress = false
output_dir = "run"
"#,
        train = dir.join("train.jsonl").display(),
        val = dir.join("val.jsonl").display(),
    );
    let reg = common::registry();
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, &config).unwrap();
    unidl_run::train_config(&reg, &cfg, Some("flex"), false).unwrap();
    let losses = common::step_losses(&dir.join("run/steps.csv"));
    eprintln!("mixture NLL by step: {losses:?}");
    assert!(
        losses[losses.len() - 1] < losses[0] - 1.0,
        "vocoder loss did not fall: {losses:?}"
    );
    let out = unidl_run::infer_config(
        &reg,
        &cfg,
        Some("flex"),
        &unidl_run::InferArgs {
            texts: vec!["ab".into()],
            draw: Some(dir.join("out")),
            ..Default::default()
        },
    )
    .unwrap();
    // one 0.5 s word at 8 kHz: 4,000 samples, 250 frames of 16
    assert_eq!(out[0]["output"]["samples"], 4000, "{out:?}");
    let mut wav = hound::WavReader::open(dir.join("out/ab.wav")).unwrap();
    assert_eq!(wav.len(), 4000);
    let samples: Vec<i32> = wav.samples::<i32>().map(|s| s.unwrap()).collect();
    let distinct: std::collections::BTreeSet<i32> = samples.iter().copied().collect();
    assert!(distinct.len() > 10, "a flat waveform: {distinct:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
