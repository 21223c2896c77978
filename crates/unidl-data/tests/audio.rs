//! Audio, feature and hue transforms: each transform's effect (measured, e.g.
//! a sine's frequency by FFT peak), torchaudio/torchvision reference values
//! (`tests/reference/gen_audio.py` → `audio.json`), seeded reproducibility,
//! TOML configs and error cases.

use std::path::PathBuf;

use realfft::RealFftPlanner;
use serde_json::Value;
use unidl_data::sample::HostTensor;
use unidl_data::transform::{
    AddNoise, Gain, MaskValue, MelSpectrogram, PitchShift, Registry, Resample, ShiftMode,
    SpecAugment, Speed, TimeShift, Transform, TransformConfig, adjust_hue, pipeline_from_toml,
    rng_for,
};
use unidl_data::*;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/audio.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unidl-audio-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A sample with one input `audio`.
fn audio_sample(samples: Vec<f32>, sample_rate: u32, channels: u16) -> Sample {
    let mut s = Sample {
        source: "synthetic.wav".into(),
        ..Sample::default()
    };
    s.inputs.insert(
        "audio".into(),
        Input::Audio(Audio {
            samples,
            sample_rate,
            channels,
        }),
    );
    s
}

fn sine(freq: f64, sample_rate: u32, frames: usize, amp: f64) -> Vec<f32> {
    (0..frames)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(sample_rate)).sin())
                as f32
        })
        .collect()
}

fn audio_of(s: &Sample) -> &Audio {
    match &s.inputs["audio"] {
        Input::Audio(a) => a,
        other => panic!("not audio: {other:?}"),
    }
}

fn tensor_of<'a>(s: &'a Sample, name: &str) -> &'a HostTensor {
    match &s.inputs[name] {
        Input::Tensor(t) => t,
        other => panic!("not a tensor: {other:?}"),
    }
}

fn channel(a: &Audio, c: usize) -> Vec<f32> {
    a.samples
        .iter()
        .skip(c)
        .step_by(usize::from(a.channels))
        .copied()
        .collect()
}

/// The frequency of the strongest FFT bin (Hann window, parabolic interpolation).
fn dominant_frequency(x: &[f32], sample_rate: u32) -> f64 {
    let n = x.len();
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut input: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            f64::from(*v) * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        })
        .collect();
    let mut spec = fft.make_output_vec();
    fft.process(&mut input, &mut spec).unwrap();
    let mag: Vec<f64> = spec.iter().map(|c| c.norm()).collect();
    let k = (1..mag.len() - 1)
        .max_by(|a, b| mag[*a].total_cmp(&mag[*b]))
        .unwrap();
    let (a, b, c) = (mag[k - 1].ln(), mag[k].ln(), mag[k + 1].ln());
    let delta = 0.5 * (a - c) / (a - 2.0 * b + c);
    (k as f64 + delta) * f64::from(sample_rate) / n as f64
}

fn power(x: &[f32]) -> f64 {
    x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64
}

fn build(toml_text: &str) -> transform::Compose {
    pipeline_from_toml(toml_text, &Registry::new()).unwrap()
}

#[test]
fn speed_changes_length_and_frequency_by_the_factor() {
    let sr = 16_000;
    let src = audio_sample(sine(440.0, sr, 16_000, 0.5), sr, 1);
    for factor in [1.25f32, 0.8] {
        let t = Speed {
            input: "audio".into(),
            factor: [factor, factor],
        };
        let out = t.apply(src.clone(), &mut rng_for(0, 0, 0)).unwrap();
        let a = audio_of(&out);
        let want = (16_000.0 / f64::from(factor)).round() as usize;
        assert_eq!(a.samples.len(), want, "factor {factor}");
        assert_eq!(a.sample_rate, sr);
        let f = dominant_frequency(&a.samples, sr);
        assert!(
            (f - 440.0 * f64::from(factor)).abs() < 1.0,
            "factor {factor}: peak at {f} Hz"
        );
    }
}

#[test]
fn pitch_shift_keeps_length_and_moves_the_peak_by_the_semitone_ratio() {
    let sr = 16_000;
    let frames = 16_000;
    // stereo: 440 Hz left, 660 Hz right
    let (l, r) = (sine(440.0, sr, frames, 0.5), sine(660.0, sr, frames, 0.4));
    let inter: Vec<f32> = l.iter().zip(&r).flat_map(|(a, b)| [*a, *b]).collect();
    let src = audio_sample(inter, sr, 2);
    for steps in [3.0f32, -5.0, 12.0] {
        let t = PitchShift {
            input: "audio".into(),
            semitones: [steps, steps],
            n_fft: 1024,
        };
        let out = t.apply(src.clone(), &mut rng_for(0, 0, 0)).unwrap();
        let a = audio_of(&out);
        assert_eq!(a.samples.len(), frames * 2, "duration kept");
        let ratio = 2f64.powf(f64::from(steps) / 12.0);
        for (c, f0) in [(0, 440.0), (1, 660.0)] {
            let ch = channel(a, c);
            // skip the edges, where the vocoder ramps in and out
            let f = dominant_frequency(&ch[2000..frames - 2000], sr);
            assert!(
                (f / (f0 * ratio) - 1.0).abs() < 0.005,
                "{steps} semitones, channel {c}: {f} Hz, want {}",
                f0 * ratio
            );
            // the tone keeps its level in the middle of the clip
            let p = power(&ch[2000..frames - 2000]).sqrt() * std::f64::consts::SQRT_2;
            let amp = if c == 0 { 0.5 } else { 0.4 };
            assert!((p / amp - 1.0).abs() < 0.1, "amplitude {p} vs {amp}");
        }
    }
}

#[test]
fn white_noise_reaches_the_drawn_snr_exactly() {
    let sr = 8000;
    let clean: Vec<f32> = sine(300.0, sr, 8000, 0.3);
    let src = audio_sample(clean.clone(), sr, 1);
    let exact = AddNoise {
        input: "audio".into(),
        snr_db: [10.0, 10.0],
        noise_file: None,
        noise: None,
    }
    .load()
    .unwrap();
    let out = exact.apply(src.clone(), &mut rng_for(1, 0, 0)).unwrap();
    let noisy = &audio_of(&out).samples;
    let noise: Vec<f32> = noisy.iter().zip(&clean).map(|(a, b)| a - b).collect();
    let snr = 10.0 * (power(&clean) / power(&noise)).log10();
    assert!((snr - 10.0).abs() < 1e-3, "realised SNR {snr}");
    // noise is white: no strong tone of its own, mean near zero
    let mean = noise.iter().map(|v| f64::from(*v)).sum::<f64>() / noise.len() as f64;
    assert!(mean.abs() < 0.01, "noise mean {mean}");

    // a range: every draw lands in it, and draws differ
    let ranged = build("[[transforms]]\ntype = \"add_noise\"\nsnr_db = [0.0, 20.0]\n");
    let mut seen = Vec::new();
    for i in 0..8 {
        let out = ranged.apply(src.clone(), &mut rng_for(2, 0, i)).unwrap();
        let noise: Vec<f32> = audio_of(&out)
            .samples
            .iter()
            .zip(&clean)
            .map(|(a, b)| a - b)
            .collect();
        let snr = 10.0 * (power(&clean) / power(&noise)).log10();
        assert!((-1e-3..=20.0 + 1e-3).contains(&snr), "{snr}");
        seen.push(snr);
    }
    assert!(seen.iter().any(|s| (s - seen[0]).abs() > 0.5));
}

#[test]
fn noise_file_is_mixed_at_the_snr_and_missing_files_are_named() {
    let dir = tmp("noise");
    let path = dir.join("hum.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    // 0.25 s of a 100 Hz hum, shorter than the clip so it loops
    for v in sine(100.0, 8000, 2000, 0.5) {
        let q = (v * 32767.0) as i16;
        w.write_sample(q).unwrap();
        w.write_sample(q).unwrap();
    }
    w.finalize().unwrap();

    let clean = sine(1000.0, 8000, 8000, 0.2);
    let text = format!(
        "[[transforms]]\ntype = \"add_noise\"\nsnr_db = [5.0, 5.0]\nnoise_file = {:?}\n",
        path.to_str().unwrap()
    );
    let p = build(&text);
    let out = p
        .apply(audio_sample(clean.clone(), 8000, 1), &mut rng_for(0, 0, 4))
        .unwrap();
    let noise: Vec<f32> = audio_of(&out)
        .samples
        .iter()
        .zip(&clean)
        .map(|(a, b)| a - b)
        .collect();
    let snr = 10.0 * (power(&clean) / power(&noise)).log10();
    assert!((snr - 5.0).abs() < 1e-3, "realised SNR {snr}");
    // the added noise is the hum
    let f = dominant_frequency(&noise, 8000);
    assert!((f - 100.0).abs() < 1.0, "noise peak {f}");

    let missing = format!(
        "[[transforms]]\ntype = \"add_noise\"\nsnr_db = [5.0, 5.0]\nnoise_file = {:?}\n",
        dir.join("nope.wav").to_str().unwrap()
    );
    match pipeline_from_toml(&missing, &Registry::new()) {
        Err(DataError::NotFound { path }) => assert!(path.ends_with("nope.wav")),
        other => panic!("{other:?}"),
    }
    std::fs::write(dir.join("bad.wav"), b"RIFF....WAVEjunk").unwrap();
    let corrupt = missing.replace("nope.wav", "bad.wav");
    match pipeline_from_toml(&corrupt, &Registry::new()) {
        Err(DataError::Corrupt { path, .. }) => assert!(path.ends_with("bad.wav")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gain_scales_by_the_decibels() {
    let clean = sine(500.0, 8000, 800, 0.1);
    let src = audio_sample(clean.clone(), 8000, 1);
    let t = Gain {
        input: "audio".into(),
        db: [6.0, 6.0],
    };
    let out = t.apply(src.clone(), &mut rng_for(0, 0, 0)).unwrap();
    let g = 10f64.powf(6.0 / 20.0);
    for (a, b) in audio_of(&out).samples.iter().zip(&clean) {
        assert!((f64::from(*a) - f64::from(*b) * g).abs() < 1e-6);
    }
    let t = Gain {
        input: "audio".into(),
        db: [-12.0, -3.0],
    };
    for i in 0..5 {
        let out = t.apply(src.clone(), &mut rng_for(0, 0, i)).unwrap();
        let db = 10.0 * (power(&audio_of(&out).samples) / power(&clean)).log10();
        assert!((-12.0 - 1e-4..=-3.0 + 1e-4).contains(&db), "{db}");
    }
}

#[test]
fn time_shift_rolls_or_zero_pads_within_the_fraction() {
    // stereo ramp: frame i holds (i, -i)
    let frames = 100usize;
    let src: Vec<f32> = (0..frames).flat_map(|i| [i as f32, -(i as f32)]).collect();
    let s = audio_sample(src, 1000, 2);
    let mut shifts = std::collections::BTreeSet::new();
    for i in 0..20 {
        let roll = TimeShift {
            input: "audio".into(),
            max_fraction: 0.2,
            mode: ShiftMode::Roll,
        };
        let out = roll.apply(s.clone(), &mut rng_for(3, 0, i)).unwrap();
        let a = audio_of(&out);
        assert_eq!(a.samples.len(), 2 * frames);
        // frame j holds source frame (j - k) mod n
        let k = (frames as i64 - a.samples[0] as i64).rem_euclid(frames as i64);
        let k = if k > frames as i64 / 2 {
            k - frames as i64
        } else {
            k
        };
        assert!(k.abs() <= 20, "shift {k}");
        for j in 0..frames {
            let src_frame = (j as i64 - k).rem_euclid(frames as i64) as f32;
            assert_eq!(a.samples[2 * j], src_frame);
            assert_eq!(a.samples[2 * j + 1], -src_frame);
        }
        shifts.insert(k);

        let zero = TimeShift {
            mode: ShiftMode::Zero,
            ..roll
        };
        let out = zero.apply(s.clone(), &mut rng_for(3, 0, i)).unwrap();
        let a = audio_of(&out);
        for j in 0..frames as i64 {
            let src_frame = j - k;
            let want = if (0..frames as i64).contains(&src_frame) {
                src_frame as f32
            } else {
                0.0
            };
            assert_eq!(a.samples[2 * j as usize], want, "shift {k}, frame {j}");
        }
    }
    assert!(shifts.len() > 3, "shifts vary: {shifts:?}");
}

#[test]
fn resample_keeps_duration_and_frequency_and_follows_torchaudio() {
    let r = reference();
    let input = floats(&r["resample"]["input"]);
    let src = audio_sample(input.clone(), 8000, 1);
    for (rate, key) in [(16_000u32, "to_16000"), (5000, "to_5000")] {
        let t = Resample {
            input: "audio".into(),
            sample_rate: rate,
        };
        let out = t.apply(src.clone(), &mut rng_for(0, 0, 0)).unwrap();
        let a = audio_of(&out);
        assert_eq!(a.sample_rate, rate);
        let want = floats(&r["resample"][key]);
        assert_eq!(a.samples.len(), want.len(), "{rate} Hz length");
        let f = dominant_frequency(&a.samples, rate);
        assert!((f - 440.0).abs() < 1.0, "{rate} Hz: peak at {f}");
        // rubato's FFT resampler and torchaudio's windowed sinc differ; away
        // from the edges both reconstruct the same band-limited tone
        let edge = want.len() / 10;
        let err = a.samples[edge..want.len() - edge]
            .iter()
            .zip(&want[edge..want.len() - edge])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 2e-3, "{rate} Hz: max difference {err}");
    }
}

#[test]
fn mel_spectrogram_matches_torchaudio() {
    let r = reference();
    let sr = r["sample_rate"].as_u64().unwrap() as u32;
    let chans: Vec<Vec<f32>> = r["signal"].as_array().unwrap().iter().map(floats).collect();
    let inter: Vec<f32> = (0..chans[0].len())
        .flat_map(|i| [chans[0][i], chans[1][i]])
        .collect();
    let src = audio_sample(inter, sr, 2);
    for case in r["mel"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut text = format!(
            "[[transforms]]\ntype = \"mel_spectrogram\"\nn_fft = {}\nhop_length = {}\nn_mels = {}\nf_min = {:?}\nmel_scale = {}\npower = {:?}\nlog = {}\neps = {:?}\n",
            case["n_fft"],
            case["hop"],
            case["n_mels"],
            case["f_min"].as_f64().unwrap(),
            case["mel_scale"],
            case["power"].as_f64().unwrap(),
            case["log"],
            case["eps"].as_f64().unwrap(),
        );
        if let Some(f) = case["f_max"].as_f64() {
            text += &format!("f_max = {f:?}\n");
        }
        if let Some(n) = case["norm"].as_str() {
            text += &format!("norm = {n:?}\n");
        }
        if let Some(t) = case["top_db"].as_f64() {
            text += &format!("top_db = {t:?}\n");
        }
        let out = build(&text)
            .apply(src.clone(), &mut rng_for(0, 0, 0))
            .unwrap();
        let t = tensor_of(&out, "audio");
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.shape, shape, "{name}");
        let want = floats(&case["data"]);
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let mut worst = 0.0f32;
        for (got, want) in t.data.iter().zip(&want) {
            // relative error, with a floor at 1e-6 of the largest magnitude
            let err = (got - want).abs() / want.abs().max(1e-6 * scale);
            worst = worst.max(err);
        }
        assert!(worst < 1e-4, "{name}: worst relative error {worst}");
    }
}

#[test]
fn mel_output_can_go_under_a_new_name() {
    let s = audio_sample(sine(440.0, 8000, 4000, 0.5), 8000, 1);
    let t = MelSpectrogram {
        output: Some("mel".into()),
        ..toml::from_str::<MelSpectrogram>("").unwrap()
    };
    let out = t.apply(s, &mut rng_for(0, 0, 0)).unwrap();
    assert!(matches!(out.inputs["audio"], Input::Audio(_)));
    let m = tensor_of(&out, "mel");
    // defaults: n_fft 400, hop 200, 128 mels
    assert_eq!(m.shape, vec![1, 128, 1 + 4000 / 200]);
}

#[test]
fn spec_augment_masks_whole_bands_of_bounded_width() {
    let (c, freq, time) = (2usize, 40usize, 100usize);
    let tensor = HostTensor {
        shape: vec![c, freq, time],
        data: vec![1.0; c * freq * time],
    };
    let mut s = Sample::default();
    s.inputs.insert("audio".into(), Input::Tensor(tensor));
    let t = SpecAugment {
        input: "audio".into(),
        freq_masks: 2,
        freq_width: 6,
        time_masks: 3,
        time_width: 10,
        mask_value: MaskValue::Zero,
    };
    let mut any_masked = false;
    for i in 0..30 {
        let out = t.apply(s.clone(), &mut rng_for(5, 0, i)).unwrap();
        let d = &tensor_of(&out, "audio").data;
        // channels get the same masks
        assert_eq!(d[..freq * time], d[freq * time..]);
        let cell = |f: usize, t: usize| d[f * time + t];
        let rows: Vec<bool> = (0..freq)
            .map(|f| (0..time).all(|t| cell(f, t) == 0.0))
            .collect();
        let cols: Vec<bool> = (0..time)
            .map(|t| (0..freq).all(|f| cell(f, t) == 0.0))
            .collect();
        // every zero lies in a masked row or column
        for (f, row_masked) in rows.iter().enumerate() {
            for (tt, col_masked) in cols.iter().enumerate() {
                if cell(f, tt) == 0.0 {
                    assert!(*row_masked || *col_masked, "stray zero at ({f}, {tt})");
                }
            }
        }
        // masked rows: at most 2 runs, at most 2 × 6 rows, every run ≤ 2 × 6
        let runs = |v: &[bool]| {
            let mut out = Vec::new();
            let mut n = 0;
            for &m in v.iter().chain([false].iter()) {
                if m {
                    n += 1;
                } else if n > 0 {
                    out.push(n);
                    n = 0;
                }
            }
            out
        };
        let (fr, tr) = (runs(&rows), runs(&cols));
        assert!(fr.len() <= 2 && fr.iter().sum::<usize>() <= 12, "{fr:?}");
        assert!(tr.len() <= 3 && tr.iter().sum::<usize>() <= 30, "{tr:?}");
        any_masked |= !fr.is_empty() && !tr.is_empty();
    }
    assert!(any_masked);

    // mean fill and a one-mask-of-fixed-width check
    let mut ramp = Sample::default();
    ramp.inputs.insert(
        "spec".into(),
        Input::Tensor(HostTensor {
            shape: vec![4, 6],
            data: (0..24).map(|v| v as f32).collect(),
        }),
    );
    let t = SpecAugment {
        input: "spec".into(),
        freq_masks: 0,
        freq_width: 0,
        time_masks: 1,
        time_width: 6,
        mask_value: MaskValue::Mean,
    };
    let mut widest = 0;
    for i in 0..20 {
        let out = t.apply(ramp.clone(), &mut rng_for(6, 0, i)).unwrap();
        let d = &tensor_of(&out, "spec").data;
        // 11.5 (the mean) is no value of the ramp, so it marks masked cells
        let masked = d.iter().filter(|v| **v == 11.5).count();
        assert_eq!(masked % 4, 0, "whole columns");
        assert!(masked / 4 <= 6, "width {} > 6", masked / 4);
        widest = widest.max(masked / 4);
    }
    assert!(
        widest >= 3,
        "widths are drawn up to 6, widest seen {widest}"
    );
}

#[test]
fn audio_pipelines_are_reproducible_per_seed_and_index() {
    let text = r#"
[[transforms]]
type = "speed"
factor = [0.9, 1.1]
[[transforms]]
type = "pitch_shift"
semitones = [-1.0, 1.0]
n_fft = 256
[[transforms]]
type = "gain"
db = [-3.0, 3.0]
[[transforms]]
type = "add_noise"
snr_db = [20.0, 30.0]
[[transforms]]
type = "time_shift"
max_fraction = 0.1
[[transforms]]
type = "resample"
sample_rate = 16000
[[transforms]]
type = "mel_spectrogram"
n_fft = 256
hop_length = 128
n_mels = 20
[[transforms]]
type = "spec_augment"
freq_masks = 1
freq_width = 4
time_masks = 1
time_width = 5
"#;
    let p = build(text);
    let src = audio_sample(sine(440.0, 8000, 4000, 0.5), 8000, 1);
    let a = p.apply(src.clone(), &mut rng_for(9, 1, 3)).unwrap();
    let b = p.apply(src.clone(), &mut rng_for(9, 1, 3)).unwrap();
    let c = p.apply(src, &mut rng_for(9, 1, 4)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(tensor_of(&a, "audio").shape[..2], [1, 20]);
}

#[test]
fn every_variant_deserialises_from_toml() {
    let text = r#"
[[transforms]]
type = "speed"
factor = [0.9, 1.1]
[[transforms]]
type = "pitch_shift"
input = "voice"
semitones = [-2.0, 2.0]
[[transforms]]
type = "add_noise"
snr_db = [10.0, 20.0]
[[transforms]]
type = "gain"
db = [-6.0, 6.0]
[[transforms]]
type = "time_shift"
max_fraction = 0.1
mode = "zero"
[[transforms]]
type = "resample"
sample_rate = 16000
[[transforms]]
type = "mel_spectrogram"
n_fft = 512
hop_length = 128
n_mels = 40
f_max = 4000.0
mel_scale = "slaney"
norm = "slaney"
log = "log"
output = "mel"
[[transforms]]
type = "spec_augment"
input = "mel"
freq_masks = 2
freq_width = 8
time_masks = 2
time_width = 20
mask_value = "mean"
[[transforms]]
type = "standardize"
mean = [0.5]
std = [2.0]
[[transforms]]
type = "min_max"
lo = -1.0
hi = 1.0
[[transforms]]
type = "normalize_l2"
axis = 0
[[transforms]]
type = "color_jitter"
hue = 0.1
"#;
    let cfg: transform::PipelineConfig = toml::from_str(text).unwrap();
    let t = &cfg.transforms;
    assert_eq!(t.len(), 12);
    assert_eq!(
        t[1],
        TransformConfig::PitchShift(PitchShift {
            input: "voice".into(),
            semitones: [-2.0, 2.0],
            n_fft: 1024,
        })
    );
    assert_eq!(
        t[4],
        TransformConfig::TimeShift(TimeShift {
            input: "audio".into(),
            max_fraction: 0.1,
            mode: ShiftMode::Zero,
        })
    );
    match &t[6] {
        TransformConfig::MelSpectrogram(m) => {
            assert_eq!(m.n_fft, 512);
            assert_eq!(m.output.as_deref(), Some("mel"));
            assert_eq!(m.mel_scale, transform::MelScale::Slaney);
            assert_eq!(m.norm, transform::MelNorm::Slaney);
            assert_eq!(m.log, transform::MelLog::Log);
            assert_eq!(m.power, 2.0);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &t[7],
        TransformConfig::SpecAugment(SpecAugment {
            mask_value: MaskValue::Mean,
            ..
        })
    ));
    assert!(matches!(&t[11], TransformConfig::ColorJitter { hue, .. } if *hue == 0.1));
    for c in t {
        c.build(&Registry::new()).unwrap();
    }
    // unknown keys inside a variant are errors that name the key
    let bad = "[[transforms]]\ntype = \"gain\"\ndb = [0.0, 1.0]\ndecibels = 3\n";
    let e = pipeline_from_toml(bad, &Registry::new()).unwrap_err();
    assert!(e.to_string().contains("decibels"), "{e}");
}

#[test]
fn missing_audio_input_names_transform_and_input() {
    let image = Sample::image(Image::new(4, 4, 3), None, "cat.png");
    let cases = [
        "type = \"speed\"\nfactor = [1.0, 1.0]",
        "type = \"pitch_shift\"\nsemitones = [1.0, 1.0]",
        "type = \"add_noise\"\nsnr_db = [1.0, 1.0]",
        "type = \"gain\"\ndb = [1.0, 1.0]",
        "type = \"time_shift\"\nmax_fraction = 0.5",
        "type = \"resample\"\nsample_rate = 8000",
        "type = \"mel_spectrogram\"",
        "type = \"spec_augment\"",
    ];
    for case in cases {
        let p = build(&format!("[[transforms]]\n{case}\n"));
        let name = case.split('"').nth(1).unwrap();
        match p.apply(image.clone(), &mut rng_for(0, 0, 0)) {
            Err(DataError::Transform { transform, reason }) => {
                assert_eq!(transform, name);
                assert!(reason.contains("`audio`"), "{reason}");
                assert!(reason.contains("cat.png"), "{reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // an input of the wrong kind under the audio name
    let mut s = Sample::default();
    s.inputs.insert("audio".into(), Input::Text("hello".into()));
    let e = build("[[transforms]]\ntype = \"gain\"\ndb = [0.0, 0.0]\n")
        .apply(s, &mut rng_for(0, 0, 0))
        .unwrap_err();
    assert!(e.to_string().contains("is text, not audio"), "{e}");
}

#[test]
fn bad_parameters_are_config_errors_naming_the_key() {
    let cases = [
        (
            "type = \"mel_spectrogram\"\nn_fft = 0",
            "mel_spectrogram.n_fft",
        ),
        (
            "type = \"mel_spectrogram\"\nhop_length = 0",
            "mel_spectrogram.hop_length",
        ),
        (
            "type = \"mel_spectrogram\"\npower = 3.0",
            "mel_spectrogram.power",
        ),
        (
            "type = \"mel_spectrogram\"\nf_min = 500.0\nf_max = 100.0",
            "mel_spectrogram.f_max",
        ),
        (
            "type = \"add_noise\"\nsnr_db = [20.0, 10.0]",
            "add_noise.snr_db",
        ),
        ("type = \"speed\"\nfactor = [0.0, 1.0]", "speed.factor"),
        (
            "type = \"pitch_shift\"\nsemitones = [1.0, -1.0]",
            "pitch_shift.semitones",
        ),
        (
            "type = \"pitch_shift\"\nsemitones = [1.0, 1.0]\nn_fft = 4",
            "pitch_shift.n_fft",
        ),
        ("type = \"gain\"\ndb = [6.0, -6.0]", "gain.db"),
        (
            "type = \"time_shift\"\nmax_fraction = 1.5",
            "time_shift.max_fraction",
        ),
        (
            "type = \"resample\"\nsample_rate = 0",
            "resample.sample_rate",
        ),
        ("type = \"color_jitter\"\nhue = 0.6", "color_jitter.hue"),
        (
            "type = \"standardize\"\nmean = [0.0]\nstd = [0.0]",
            "standardize.std",
        ),
        (
            "type = \"standardize\"\nmean = [0.0, 1.0]\nstd = [1.0]",
            "standardize.std",
        ),
        ("type = \"min_max\"\nlo = 1.0\nhi = 0.0", "min_max.hi"),
    ];
    for (case, key) in cases {
        match pipeline_from_toml(&format!("[[transforms]]\n{case}\n"), &Registry::new()) {
            Err(DataError::Config { key: k, .. }) => assert_eq!(k, key, "{case}"),
            other => panic!("{case}: {other:?}"),
        }
    }
    // a negative size cannot be read into a size: the parse error names the key
    for (case, key) in [
        (
            "type = \"mel_spectrogram\"\nn_fft = -400",
            "mel_spectrogram.n_fft",
        ),
        (
            "type = \"mel_spectrogram\"\nhop_length = -1",
            "mel_spectrogram.hop_length",
        ),
        (
            "type = \"pitch_shift\"\nsemitones = [1.0, 1.0]\nn_fft = -8",
            "pitch_shift.n_fft",
        ),
    ] {
        match pipeline_from_toml(&format!("[[transforms]]\n{case}\n"), &Registry::new()) {
            Err(e @ DataError::Parse { line: Some(_), .. }) => {
                assert!(e.to_string().contains(key), "{e}")
            }
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn standardize_min_max_and_l2_on_tensors_and_images() {
    // [3 frames, 2 features]
    let feats = HostTensor {
        shape: vec![3, 2],
        data: vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0],
    };
    let mut s = Sample::default();
    s.inputs.insert("x".into(), Input::Tensor(feats.clone()));
    s.inputs.insert(
        "audio".into(),
        Input::Audio(Audio {
            samples: vec![0.5],
            sample_rate: 8000,
            channels: 1,
        }),
    );
    let rng = &mut rng_for(0, 0, 0);
    let get = |s: &Sample| tensor_of(s, "x").data.clone();

    let given = build(
        "[[transforms]]\ntype = \"standardize\"\ninput = \"x\"\nmean = [2.0, 20.0]\nstd = [1.0, 10.0]\n",
    );
    assert_eq!(
        get(&given.apply(s.clone(), rng).unwrap()),
        [-1.0, -1.0, 0.0, 0.0, 1.0, 1.0]
    );
    // per feature along axis 0 (one statistic per frame)
    let rows = build(
        "[[transforms]]\ntype = \"standardize\"\ninput = \"x\"\naxis = 0\nmean = [0.0, 1.0, 2.0]\nstd = [1.0, 1.0, 1.0]\n",
    );
    assert_eq!(
        get(&rows.apply(s.clone(), rng).unwrap()),
        [1.0, 10.0, 1.0, 19.0, 1.0, 28.0]
    );
    // per sample: zero mean, unit (population) variance; audio untouched when
    // `input` is absent
    let own = build("[[transforms]]\ntype = \"standardize\"\n");
    let out = own.apply(s.clone(), rng).unwrap();
    let d = get(&out);
    let mean = d.iter().sum::<f32>() / 6.0;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 6.0;
    assert!(
        mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
        "{mean} {var}"
    );
    assert_eq!(out.inputs["audio"], s.inputs["audio"]);
    // wrong count of means for the axis
    let e = build("[[transforms]]\ntype = \"standardize\"\ninput = \"x\"\nmean = [1.0, 2.0, 3.0]\nstd = [1.0, 1.0, 1.0]\n")
        .apply(s.clone(), rng)
        .unwrap_err();
    assert!(
        matches!(e, DataError::Transform { .. }) && e.to_string().contains("[3, 2]"),
        "{e}"
    );

    let mm = build("[[transforms]]\ntype = \"min_max\"\ninput = \"x\"\nlo = -1.0\nhi = 1.0\n");
    let d = get(&mm.apply(s.clone(), rng).unwrap());
    assert_eq!(d.iter().copied().fold(f32::INFINITY, f32::min), -1.0);
    assert_eq!(d.iter().copied().fold(f32::NEG_INFINITY, f32::max), 1.0);
    assert!((d[0] - (-1.0)).abs() < 1e-6 && (d[5] - 1.0).abs() < 1e-6);
    let mm_given = build(
        "[[transforms]]\ntype = \"min_max\"\ninput = \"x\"\nmin = [0.0, 0.0]\nmax = [4.0, 40.0]\n",
    );
    assert_eq!(
        get(&mm_given.apply(s.clone(), rng).unwrap()),
        [0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    );

    let l2 = build("[[transforms]]\ntype = \"normalize_l2\"\ninput = \"x\"\n");
    let d = get(&l2.apply(s.clone(), rng).unwrap());
    for row in d.chunks(2) {
        assert!((row[0].hypot(row[1]) - 1.0).abs() < 1e-6);
        assert!((row[1] / row[0] - 10.0).abs() < 1e-4);
    }
    // on the audio input: a typed error
    let e = build("[[transforms]]\ntype = \"normalize_l2\"\ninput = \"audio\"\n")
        .apply(s.clone(), rng)
        .unwrap_err();
    assert!(
        e.to_string().contains("is audio, not a tensor or image"),
        "{e}"
    );

    // images: features are channels
    let mut img = Image::new(2, 1, 3);
    img.data = vec![0.2, 0.4, 0.6, 0.4, 0.8, 1.0];
    let out = build(
        "[[transforms]]\ntype = \"standardize\"\nmean = [0.3, 0.6, 0.8]\nstd = [0.1, 0.2, 0.2]\n",
    )
    .apply(Sample::image(img, None, "i"), rng)
    .unwrap();
    let d = &out.image_input("image").unwrap().data;
    for (g, w) in d.iter().zip([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]) {
        assert!((g - w).abs() < 1e-5, "{d:?}");
    }
}

#[test]
fn hue_matches_torchvision_adjust_hue() {
    let r = reference();
    let h = &r["hue"];
    let (height, width) = (
        h["height"].as_u64().unwrap() as usize,
        h["width"].as_u64().unwrap() as usize,
    );
    let src = Image {
        width,
        height,
        channels: 3,
        data: floats(&h["image"]),
    };
    for case in h["cases"].as_array().unwrap() {
        let f = case["factor"].as_f64().unwrap() as f32;
        let mut img = src.clone();
        adjust_hue(&mut img, f);
        let want = floats(&case["data"]);
        for (i, (g, w)) in img.data.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5, "factor {f}, value {i}: {g} vs {w}");
        }
    }
    // jitter: hue only changes hue (gray stays gray), and is seeded
    let p = build("[[transforms]]\ntype = \"color_jitter\"\nhue = 0.5\n");
    let s = Sample::image(src.clone(), None, "x");
    let a = p.apply(s.clone(), &mut rng_for(1, 0, 0)).unwrap();
    let b = p.apply(s.clone(), &mut rng_for(1, 0, 0)).unwrap();
    assert_eq!(a, b);
    let img = a.image_input("image").unwrap();
    assert_eq!(&img.data[..3], &[0.5, 0.5, 0.5]);
    assert_ne!(img.data, src.data);
    // value (max channel) is kept for every pixel
    for (p, q) in img.data.chunks(3).zip(src.data.chunks(3)) {
        let (m1, m2) = (
            p.iter().copied().fold(0.0, f32::max),
            q.iter().copied().fold(0.0, f32::max),
        );
        assert!((m1 - m2).abs() < 1e-5);
    }
}
