//! Decoding tests over the committed fixtures in `tests/fixtures/media`
//! (rendered by `make_fixtures.sh`; these tests never run ffmpeg).
//!
//! Tests of FFmpeg-backed paths are `#[cfg(feature = "ffmpeg")]`; run both
//! `cargo test -p unidl-media` and `cargo test -p unidl-media --features ffmpeg`.

use std::path::{Path, PathBuf};

use unidl_media::{
    Audio, AudioLimits, AudioOptions, FrameSelection, MediaError, VideoOptions, load_audio,
    load_video, probe, validate_audio,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/media")
        .join(name)
}

/// Frequency estimated from positive-going zero crossings.
fn zero_crossing_hz(samples: &[f32], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
        .count();
    crossings as f64 * f64::from(rate) / samples.len() as f64
}

fn rms(samples: &[f32]) -> f64 {
    (samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64)
        .sqrt()
}

fn assert_names(err: &MediaError, file: &Path) {
    assert_eq!(
        err.path(),
        Some(file),
        "error does not carry the path: {err:?}"
    );
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "message does not name the file: {err}"
    );
}

// ---------------------------------------------------------------- WAV ----

#[test]
fn wav_sine_16k_mono() {
    let a = load_audio(fixture("sine_440_16k_mono.wav"), &AudioOptions::default()).unwrap();
    assert_eq!(a.sample_rate, 16_000);
    assert_eq!(a.channels, 1);
    assert_eq!(a.samples.len(), 16_000);
    assert!((a.duration_secs() - 1.0).abs() < 1e-9);
    let f = zero_crossing_hz(&a.samples, a.sample_rate);
    assert!((f - 440.0).abs() < 3.0, "dominant frequency {f}");
    let peak = a.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.1 && peak <= 1.0, "peak {peak}");
}

#[test]
fn wav_stereo_44k_channels() {
    let a = load_audio(fixture("stereo_44k.wav"), &AudioOptions::default()).unwrap();
    assert_eq!((a.sample_rate, a.channels), (44_100, 2));
    assert_eq!(a.frames(), 22_050);
    assert!((a.duration_secs() - 0.5).abs() < 1e-9);
    let left = a.channel(0);
    let right = a.channel(1);
    assert!((zero_crossing_hz(&left, 44_100) - 440.0).abs() < 5.0);
    assert!((zero_crossing_hz(&right, 44_100) - 1000.0).abs() < 5.0);
    let mono = a.to_mono();
    assert_eq!((mono.channels, mono.frames()), (1, 22_050));
    assert!((mono.samples[100] - (left[100] + right[100]) / 2.0).abs() < 1e-6);
}

#[test]
fn resample_44k_to_16k_keeps_length_and_pitch() {
    let opts = AudioOptions {
        sample_rate: Some(16_000),
        ..Default::default()
    };
    let a = load_audio(fixture("stereo_44k.wav"), &opts).unwrap();
    assert_eq!((a.sample_rate, a.channels), (16_000, 2));
    // 0.5 s * 16 kHz, exactly.
    assert_eq!(a.frames(), 8_000);
    // Skip the edges, where the FFT resampler's window starts and stops.
    let left = a.channel(0);
    let right = a.channel(1);
    assert!((zero_crossing_hz(&left[500..7500], 16_000) - 440.0).abs() < 5.0);
    assert!((zero_crossing_hz(&right[500..7500], 16_000) - 1000.0).abs() < 5.0);
    // The level survives resampling (gain -6 dB sine: rms ~ 0.5 / sqrt 2).
    let r = rms(&left[500..7500]);
    assert!((r - 0.354).abs() < 0.03, "rms {r}");
}

#[test]
fn downmix_and_resample_for_speech_models() {
    let a = load_audio(fixture("stereo_44k.wav"), &AudioOptions::mono(16_000)).unwrap();
    assert_eq!((a.sample_rate, a.channels, a.frames()), (16_000, 1, 8_000));
    // Upsampling works too, and mono can be widened.
    let opts = AudioOptions {
        sample_rate: Some(48_000),
        channels: Some(2),
        max_duration_secs: None,
    };
    let b = load_audio(fixture("sine_440_16k_mono.wav"), &opts).unwrap();
    assert_eq!((b.sample_rate, b.channels, b.frames()), (48_000, 2, 48_000));
    assert_eq!(b.samples[2000], b.samples[2001]);
    // In-memory resampling gives the same as resampling at load time.
    let src = load_audio(fixture("stereo_44k.wav"), &AudioOptions::default()).unwrap();
    assert_eq!(src.to_mono().resampled(16_000).unwrap(), a);
}

#[test]
fn max_duration_stops_early() {
    let opts = AudioOptions {
        max_duration_secs: Some(0.25),
        ..Default::default()
    };
    let a = load_audio(fixture("sine_440_16k_mono.wav"), &opts).unwrap();
    assert_eq!(a.frames(), 4_000);
    let b = load_audio(fixture("speech_hello.mp3"), &opts).unwrap();
    assert_eq!(b.frames(), (0.25f64 * 22_050.0).ceil() as usize);
}

#[test]
fn truncated_wav_is_an_error_naming_the_file() {
    let p = fixture("truncated.wav");
    let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
    assert!(matches!(err, MediaError::Truncated { .. }), "{err:?}");
    assert_names(&err, &p);
    assert!(err.to_string().contains("16000 frames"), "{err}");
    // Reading only the part that is there is fine.
    let opts = AudioOptions {
        max_duration_secs: Some(0.25),
        ..Default::default()
    };
    assert_eq!(load_audio(&p, &opts).unwrap().frames(), 4_000);
}

/// Peak virtual memory of this process (`VmPeak`, KiB): an allocation
/// reserves address space even where the kernel would overcommit it.
fn vm_peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmPeak:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A 48-byte WAV whose data chunk claims 4 GiB (issue 13): the decoder
/// reserved what the header declared (16 GiB of f32 samples), which aborts
/// under a memory limit. It is a Truncated error and reserves nothing large.
#[test]
fn a_wav_header_declaring_gigabytes_is_truncated_without_allocating_them() {
    let mut b = b"RIFF\xff\xff\xff\xffWAVEfmt ".to_vec();
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8_000u32.to_le_bytes());
    b.extend_from_slice(&8_000u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8u16.to_le_bytes()); // 8-bit: one byte a sample
    b.extend_from_slice(b"data");
    b.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    b.extend_from_slice(&[128, 140, 120, 128]);
    let p = std::env::temp_dir().join(format!("unidl-media-huge-{}.wav", std::process::id()));
    std::fs::write(&p, &b).unwrap();
    let before = vm_peak_kb();
    let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
    let grew_mb = vm_peak_kb().saturating_sub(before) / 1024;
    std::fs::remove_file(&p).ok();
    assert!(matches!(err, MediaError::Truncated { .. }), "{err:?}");
    assert!(grew_mb < 1024, "reserved {grew_mb} MiB for a 48-byte file");
}

#[test]
fn wav_sample_formats_are_normalised() {
    use hound::{SampleFormat, WavSpec, WavWriter};
    let dir = std::env::temp_dir().join(format!("unidl-media-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let values = [0.0f64, 0.5, -0.5, 0.25, -1.0];
    for (bits, format) in [
        (8, SampleFormat::Int),
        (16, SampleFormat::Int),
        (24, SampleFormat::Int),
        (32, SampleFormat::Int),
        (32, SampleFormat::Float),
    ] {
        let path = dir.join(format!("{bits}_{format:?}.wav"));
        let spec = WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: bits,
            sample_format: format,
        };
        let mut w = WavWriter::create(&path, spec).unwrap();
        let full = f64::from(1u32 << (bits - 1));
        for &v in &values {
            match (format, bits) {
                (SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                (_, 8) => w.write_sample((v * full) as i8).unwrap(),
                (_, 16) => w.write_sample((v * full) as i16).unwrap(),
                _ => w.write_sample((v * full).max(-full) as i32).unwrap(),
            }
        }
        w.finalize().unwrap();
        let a = load_audio(&path, &AudioOptions::default()).unwrap();
        assert_eq!(
            (a.sample_rate, a.channels, a.frames()),
            (8_000, 1, values.len())
        );
        for (got, want) in a.samples.iter().zip(values) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-6,
                "{bits}-bit {format:?}: {got} vs {want}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(not(feature = "ffmpeg"))]
#[test]
fn mulaw_wav_needs_ffmpeg() {
    let p = fixture("sine_440_mulaw.wav");
    let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::FeatureDisabled {
                feature: "ffmpeg",
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &p);
}

// ---------------------------------------------------------------- MP3 ----

#[test]
fn mp3_speech() {
    let a = load_audio(fixture("speech_hello.mp3"), &AudioOptions::default()).unwrap();
    assert_eq!((a.sample_rate, a.channels), (22_050, 1));
    // espeak-ng's "hello" is 19601 samples (0.889 s); gapless trimming
    // removes the encoder delay and padding, so the MP3 decodes to the same
    // length within a few samples.
    let d = a.duration_secs();
    assert!((d - 0.889).abs() < 0.005, "duration {d}");
    let r = rms(&a.samples);
    assert!(r > 0.02, "speech should not be silent (rms {r})");
    // Loud in the middle, nearly silent at the very start.
    let n = a.samples.len();
    assert!(rms(&a.samples[n / 3..2 * n / 3]) > 5.0 * rms(&a.samples[..200]).max(1e-4));

    let b = load_audio(fixture("speech_hello.mp3"), &AudioOptions::mono(16_000)).unwrap();
    assert_eq!((b.sample_rate, b.channels), (16_000, 1));
    assert!((b.duration_secs() - d).abs() < 1e-3);
}

#[test]
fn random_bytes_named_mp3_is_corrupt() {
    let p = fixture("random.mp3");
    let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
    assert!(matches!(err, MediaError::Corrupt { .. }), "{err:?}");
    assert_names(&err, &p);
}

/// `speech_hello.mp3` with its Info tag's frame count set to 1 (found by
/// the fuzzer, issue 13): symphonia subtracted the LAME delay and padding
/// from the frame count without checking — a panic with overflow checks, a
/// count near 2^64 without. It is a Corrupt error before symphonia runs.
#[test]
fn an_mp3_info_tag_with_fewer_frames_than_its_delay_is_corrupt() {
    let mut b = std::fs::read(fixture("speech_hello.mp3")).unwrap();
    let at = b.windows(4).position(|w| w == b"Info").unwrap();
    b[at + 8..at + 12].copy_from_slice(&1u32.to_be_bytes());
    let p = std::env::temp_dir().join(format!("unidl-media-info-{}.mp3", std::process::id()));
    std::fs::write(&p, &b).unwrap();
    let err = std::panic::catch_unwind(|| load_audio(&p, &AudioOptions::default()))
        .expect("no panic")
        .unwrap_err();
    let probed = std::panic::catch_unwind(|| probe(&p)).expect("no panic");
    std::fs::remove_file(&p).ok();
    assert!(matches!(err, MediaError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("Info tag"), "{err}");
    assert!(probed.is_err());
}

#[test]
fn truncated_mp3_is_an_error() {
    let p = fixture("truncated.mp3");
    let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
    assert!(matches!(err, MediaError::Truncated { .. }), "{err:?}");
    assert_names(&err, &p);
}

// ------------------------------------------------- missing and empty ----

#[test]
fn missing_file_is_not_found() {
    let p = fixture("no_such_file.wav");
    for err in [
        load_audio(&p, &AudioOptions::default()).unwrap_err(),
        load_video(&p, &FrameSelection::All).unwrap_err(),
        probe(&p).unwrap_err(),
    ] {
        assert!(matches!(err, MediaError::NotFound { .. }), "{err:?}");
        assert_names(&err, &p);
    }
}

#[test]
fn empty_file_is_empty() {
    let p = fixture("empty.wav");
    for err in [
        load_audio(&p, &AudioOptions::default()).unwrap_err(),
        load_video(&p, &FrameSelection::Uniform(4)).unwrap_err(),
        probe(&p).unwrap_err(),
    ] {
        assert!(matches!(err, MediaError::Empty { .. }), "{err:?}");
        assert_names(&err, &p);
    }
}

// ------------------------------------------------------------ probe ----

#[test]
fn probe_wav_and_mp3_without_ffmpeg() {
    let info = probe(fixture("stereo_44k.wav")).unwrap();
    assert_eq!(info.container, "wav");
    let s = info.audio().unwrap();
    assert_eq!(s.codec, "pcm_s16le");
    assert_eq!(
        (s.sample_rate, s.channels, s.frames),
        (Some(44_100), Some(2), Some(22_050))
    );
    assert!((info.duration_secs.unwrap() - 0.5).abs() < 1e-9);
    assert!(info.video().is_none());

    let info = probe(fixture("speech_hello.mp3")).unwrap();
    let s = info.audio().unwrap();
    assert_eq!(
        (s.codec.as_str(), s.sample_rate, s.channels),
        ("mp3", Some(22_050), Some(1))
    );
    let d = info.duration_secs.unwrap();
    assert!((d - 0.889).abs() < 0.005, "{d}");

    let err = probe(fixture("random.mp3")).unwrap_err();
    assert!(matches!(err, MediaError::Corrupt { .. }), "{err:?}");
}

// -------------------------------------------------------- validation ----

#[test]
fn option_validation() {
    let bad_audio = [
        AudioOptions {
            sample_rate: Some(0),
            ..Default::default()
        },
        AudioOptions {
            channels: Some(0),
            ..Default::default()
        },
        AudioOptions {
            max_duration_secs: Some(-1.0),
            ..Default::default()
        },
        AudioOptions {
            max_duration_secs: Some(f64::NAN),
            ..Default::default()
        },
    ];
    for opts in bad_audio {
        let err = load_audio(fixture("sine_440_16k_mono.wav"), &opts).unwrap_err();
        assert!(
            matches!(err, MediaError::InvalidOptions(_)),
            "{opts:?}: {err:?}"
        );
    }
    assert!(AudioOptions::mono(16_000).validate().is_ok());

    let bad_sel = [
        FrameSelection::EveryKth(0),
        FrameSelection::Uniform(0),
        FrameSelection::Window {
            start_secs: 1.0,
            end_secs: 1.0,
            every_kth: 1,
        },
        FrameSelection::Window {
            start_secs: -1.0,
            end_secs: 1.0,
            every_kth: 1,
        },
        FrameSelection::Window {
            start_secs: 0.0,
            end_secs: 1.0,
            every_kth: 0,
        },
    ];
    for sel in bad_sel {
        assert!(
            matches!(sel.validate(), Err(MediaError::InvalidOptions(_))),
            "{sel:?}"
        );
        // Options are checked before the file is even looked at.
        let err = load_video(fixture("h264.mp4"), &sel).unwrap_err();
        assert!(matches!(err, MediaError::InvalidOptions(_)), "{err:?}");
    }
    let open_ended = FrameSelection::Window {
        start_secs: 0.5,
        end_secs: f64::INFINITY,
        every_kth: 2,
    };
    assert!(open_ended.validate().is_ok());
    let opts = VideoOptions::from(FrameSelection::All).max_frames(0);
    assert!(matches!(
        opts.validate(),
        Err(MediaError::InvalidOptions(_))
    ));
    let opts = VideoOptions::from(FrameSelection::All).resize(0, 10);
    assert!(matches!(
        opts.validate(),
        Err(MediaError::InvalidOptions(_))
    ));
}

#[test]
fn audio_validation() {
    let a = load_audio(fixture("sine_440_16k_mono.wav"), &AudioOptions::default()).unwrap();
    let ok = AudioLimits {
        min_secs: Some(0.5),
        max_secs: Some(2.0),
        sample_rate: Some(16_000),
    };
    validate_audio(&a, &ok).unwrap();
    validate_audio(&a, &AudioLimits::default()).unwrap();

    let short = AudioLimits {
        min_secs: Some(1.5),
        ..Default::default()
    };
    assert!(matches!(
        validate_audio(&a, &short),
        Err(MediaError::TooShort { min_secs, .. }) if min_secs == 1.5
    ));
    let long = AudioLimits {
        max_secs: Some(0.5),
        ..Default::default()
    };
    assert!(matches!(
        validate_audio(&a, &long),
        Err(MediaError::TooLong { .. })
    ));
    let rate = AudioLimits {
        sample_rate: Some(22_050),
        ..Default::default()
    };
    assert!(matches!(
        validate_audio(&a, &rate),
        Err(MediaError::SampleRateMismatch {
            expected: 22_050,
            actual: 16_000
        })
    ));
    let reversed = AudioLimits {
        min_secs: Some(2.0),
        max_secs: Some(1.0),
        ..Default::default()
    };
    assert!(matches!(
        validate_audio(&a, &reversed),
        Err(MediaError::InvalidOptions(_))
    ));

    let odd = Audio {
        samples: vec![0.0; 3],
        sample_rate: 16_000,
        channels: 2,
    };
    assert!(matches!(
        validate_audio(&odd, &AudioLimits::default()),
        Err(MediaError::MalformedAudio(_))
    ));
    let nan = Audio {
        samples: vec![0.0, f32::NAN],
        sample_rate: 16_000,
        channels: 1,
    };
    assert!(matches!(
        validate_audio(&nan, &AudioLimits::default()),
        Err(MediaError::MalformedAudio(_))
    ));
    let none = Audio {
        samples: vec![],
        sample_rate: 16_000,
        channels: 0,
    };
    assert!(matches!(
        validate_audio(&none, &AudioLimits::default()),
        Err(MediaError::MalformedAudio(_))
    ));
}

// ------------------------------------------------- without FFmpeg ----

#[cfg(not(feature = "ffmpeg"))]
#[test]
fn ffmpeg_formats_report_feature_disabled() {
    for (name, is_video) in [
        ("h264.mp4", true),
        ("hevc.mkv", true),
        ("sine_440.wma", false),
        ("sine_440.m4a", false),
        ("sine_440.flac", false),
    ] {
        let p = fixture(name);
        let err = if is_video {
            load_video(&p, &FrameSelection::Uniform(4)).unwrap_err()
        } else {
            load_audio(&p, &AudioOptions::default()).unwrap_err()
        };
        assert!(
            matches!(
                err,
                MediaError::FeatureDisabled {
                    feature: "ffmpeg",
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        assert_names(&err, &p);
        let err = probe(&p).unwrap_err();
        assert!(matches!(err, MediaError::FeatureDisabled { .. }), "{err:?}");
    }
    const { assert!(!unidl_media::HAS_FFMPEG) };
}

// ------------------------------------------------- FFmpeg: audio ----

#[cfg(feature = "ffmpeg")]
mod ffmpeg_audio {
    use super::*;

    fn check_sine(name: &str, rate: u32, secs: f64, tol_secs: f64) -> Audio {
        let a = load_audio(fixture(name), &AudioOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((a.sample_rate, a.channels), (rate, 1), "{name}");
        let d = a.duration_secs();
        assert!((d - secs).abs() <= tol_secs, "{name}: duration {d}");
        // Skip the codec's onset.
        let n = a.samples.len();
        let f = zero_crossing_hz(&a.samples[n / 10..n * 9 / 10], rate);
        assert!((f - 440.0).abs() < 5.0, "{name}: dominant frequency {f}");
        a
    }

    #[test]
    fn wma() {
        check_sine("sine_440.wma", 22_050, 1.0, 0.05);
    }

    #[test]
    fn aac_m4a() {
        check_sine("sine_440.m4a", 16_000, 1.0, 0.03);
    }

    #[test]
    fn flac_is_lossless() {
        let a = check_sine("sine_440.flac", 8_000, 0.5, 0.0);
        assert_eq!(a.frames(), 4_000);
    }

    #[test]
    fn mulaw_wav_falls_back_to_ffmpeg() {
        let a = check_sine("sine_440_mulaw.wav", 8_000, 0.25, 0.0);
        assert_eq!(a.frames(), 2_000);
        let info = probe(fixture("sine_440_mulaw.wav")).unwrap();
        assert_eq!(info.audio().unwrap().codec, "pcm_mulaw");
    }

    #[test]
    fn audio_track_of_a_video() {
        check_sine("h264_aac.mov", 16_000, 2.0, 0.05);
        let a = load_audio(fixture("h264_aac.mov"), &AudioOptions::mono(8_000)).unwrap();
        assert_eq!(a.sample_rate, 8_000);
        let opts = AudioOptions {
            max_duration_secs: Some(0.5),
            ..Default::default()
        };
        assert_eq!(
            load_audio(fixture("h264_aac.mov"), &opts).unwrap().frames(),
            8_000
        );
    }

    #[test]
    fn wma_resampled_to_16k() {
        let a = load_audio(fixture("sine_440.wma"), &AudioOptions::mono(16_000)).unwrap();
        let src = load_audio(fixture("sine_440.wma"), &AudioOptions::default()).unwrap();
        assert_eq!(a.sample_rate, 16_000);
        let want = (src.frames() as f64 * 16_000.0 / 22_050.0).ceil() as usize;
        assert_eq!(a.frames(), want);
    }

    #[test]
    fn video_without_audio_has_no_audio_stream() {
        let p = fixture("h264.mp4");
        let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
        assert!(
            matches!(err, MediaError::NoStream { kind: "audio", .. }),
            "{err:?}"
        );
        assert_names(&err, &p);
    }

    #[test]
    fn non_media_file_is_corrupt() {
        // make_fixtures.sh is a shell script, not media.
        let p = fixture("make_fixtures.sh");
        let err = load_audio(&p, &AudioOptions::default()).unwrap_err();
        assert!(
            matches!(
                err,
                MediaError::Corrupt { .. } | MediaError::Unsupported { .. }
            ),
            "{err:?}"
        );
        assert_names(&err, &p);
    }
}

// ------------------------------------------------- FFmpeg: video ----

#[cfg(feature = "ffmpeg")]
mod ffmpeg_video {
    use super::*;
    use unidl_media::{Frame, StreamKind, Video, load_video_with, load_video_with_stats};

    const CLIPS: [(&str, &str); 6] = [
        ("h264.mp4", "h264"),
        ("hevc.mkv", "hevc"),
        ("av1.mp4", "av1"),
        ("av1.mkv", "av1"),
        ("h264_aac.mov", "h264"),
        ("mpeg4.avi", "mpeg4"),
    ];

    fn mean_abs_diff(a: &Frame, b: &Frame) -> f64 {
        assert_eq!((a.width, a.height), (b.width, b.height));
        a.rgb
            .iter()
            .zip(&b.rgb)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum::<f64>()
            / a.rgb.len() as f64
    }

    fn all(name: &str) -> Video {
        load_video(fixture(name), &FrameSelection::All).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn assert_times(v: &Video, want: &[f64]) {
        assert_eq!(v.timestamps.len(), want.len(), "{:?}", v.timestamps);
        assert_eq!(v.frames.len(), want.len());
        for (got, want) in v.timestamps.iter().zip(want) {
            assert!(
                (got - want).abs() < 1e-3,
                "timestamps {:?}, want {want:?}",
                v.timestamps
            );
        }
    }

    #[test]
    fn every_codec_and_container_decodes_all_frames() {
        let reference = all("h264.mp4");
        for (name, _) in CLIPS {
            let v = all(name);
            assert_eq!(v.frames.len(), 20, "{name}");
            assert!((v.fps - 10.0).abs() < 1e-6, "{name}: fps {}", v.fps);
            let want: Vec<f64> = (0..20).map(|i| i as f64 * 0.1).collect();
            assert_times(&v, &want);
            for f in &v.frames {
                assert_eq!(
                    (f.width, f.height, f.rgb.len()),
                    (64, 48, 64 * 48 * 3),
                    "{name}"
                );
            }
            // testsrc changes from frame to frame…
            assert!(
                mean_abs_diff(&v.frames[0], &v.frames[10]) > 2.0,
                "{name}: frames do not change"
            );
            // …and every codec decodes the same pictures, up to lossy coding.
            for i in [0, 7, 19] {
                let d = mean_abs_diff(&v.frames[i], &reference.frames[i]);
                assert!(d < 12.0, "{name}: frame {i} differs from h264 by {d}");
            }
            // testsrc is colourful: RGB conversion kept the chroma.
            let f = &v.frames[0];
            let colourful = (0..f.height)
                .flat_map(|y| (0..f.width).map(move |x| (x, y)))
                .map(|(x, y)| {
                    let p = f.pixel(x, y);
                    p.iter().max().unwrap() - p.iter().min().unwrap()
                })
                .max()
                .unwrap();
            assert!(colourful > 100, "{name}: frame looks grey ({colourful})");
        }
    }

    #[test]
    fn probe_reports_streams() {
        for (name, codec) in CLIPS {
            let info = probe(fixture(name)).unwrap();
            let v = info.video().unwrap_or_else(|| panic!("{name}: no video"));
            assert_eq!(v.kind, StreamKind::Video);
            assert_eq!(v.codec, codec, "{name}");
            assert_eq!((v.width, v.height), (Some(64), Some(48)), "{name}");
            assert!((v.fps.unwrap() - 10.0).abs() < 1e-6, "{name}");
            let d = info.duration_secs.unwrap();
            assert!((d - 2.0).abs() < 0.05, "{name}: duration {d}");
        }
        let info = probe(fixture("h264_aac.mov")).unwrap();
        assert!(info.container.contains("mov"));
        let a = info.audio().unwrap();
        assert_eq!(
            (a.codec.as_str(), a.sample_rate, a.channels),
            ("aac", Some(16_000), Some(1))
        );
        assert_eq!(info.video().unwrap().frames, Some(20));

        let info = probe(fixture("sine_440.wma")).unwrap();
        assert_eq!(info.audio().unwrap().codec, "wmav2");
        assert_eq!(info.audio().unwrap().sample_rate, Some(22_050));
    }

    #[test]
    fn every_kth() {
        let v = load_video(fixture("h264.mp4"), &FrameSelection::EveryKth(5)).unwrap();
        assert_times(&v, &[0.0, 0.5, 1.0, 1.5]);
        let reference = all("h264.mp4");
        assert_eq!(v.frames[1], reference.frames[5]);
    }

    #[test]
    fn uniform_picks_evenly_spaced_frames() {
        for (name, _) in CLIPS {
            let v = load_video(fixture(name), &FrameSelection::Uniform(4)).unwrap();
            assert_times(&v, &[0.0, 0.5, 1.0, 1.5]);
            // The same pictures as a front-to-back decode.
            let reference = all(name);
            for (k, i) in [0, 5, 10, 15].into_iter().enumerate() {
                let d = mean_abs_diff(&v.frames[k], &reference.frames[i]);
                assert!(
                    d < 0.5,
                    "{name}: Uniform frame {k} differs from frame {i} by {d}"
                );
            }
        }
    }

    #[test]
    fn uniform_seeks_instead_of_decoding_everything() {
        let p = fixture("h264_long_gop10.mp4");
        let opts = VideoOptions::from(FrameSelection::Uniform(4));
        let (v, stats) = load_video_with_stats(&p, &opts).unwrap();
        assert_times(&v, &[0.0, 2.5, 5.0, 7.5]);
        assert!(stats.seeks >= 2, "{stats:?}");
        // 100 frames, keyframe every 10: each target costs at most a GOP.
        assert!(stats.frames_decoded <= 40, "decoded too much: {stats:?}");
        let reference = all("h264_long_gop10.mp4");
        assert_eq!(reference.frames.len(), 100);
        for (k, i) in [0, 25, 50, 75].into_iter().enumerate() {
            assert!(mean_abs_diff(&v.frames[k], &reference.frames[i]) < 0.5);
        }
    }

    #[test]
    fn uniform_more_frames_than_the_clip_repeats_frames() {
        let v = load_video(fixture("h264.mp4"), &FrameSelection::Uniform(40)).unwrap();
        assert_eq!(v.frames.len(), 40);
        assert!(v.timestamps.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(v.timestamps[0], 0.0);
        assert!((v.timestamps[39] - 1.9).abs() < 1e-3, "{:?}", v.timestamps);
    }

    #[test]
    fn window_decodes_only_around_the_window() {
        let p = fixture("h264_long_gop10.mp4");
        let sel = FrameSelection::Window {
            start_secs: 5.0,
            end_secs: 6.0,
            every_kth: 1,
        };
        let (v, stats) = load_video_with_stats(&p, &VideoOptions::from(sel)).unwrap();
        let want: Vec<f64> = (50..60).map(|i| i as f64 * 0.1).collect();
        assert_times(&v, &want);
        assert!(stats.frames_decoded <= 30, "decoded too much: {stats:?}");

        let sel = FrameSelection::Window {
            start_secs: 5.0,
            end_secs: 6.0,
            every_kth: 3,
        };
        let v = load_video(&p, &sel).unwrap();
        assert_times(&v, &[5.0, 5.3, 5.6, 5.9]);

        // A window running past the end stops at the end.
        let sel = FrameSelection::Window {
            start_secs: 9.5,
            end_secs: f64::INFINITY,
            every_kth: 1,
        };
        let v = load_video(&p, &sel).unwrap();
        assert_times(&v, &[9.5, 9.6, 9.7, 9.8, 9.9]);

        // Matroska (no per-stream duration) works the same way.
        let sel = FrameSelection::Window {
            start_secs: 1.0,
            end_secs: 1.35,
            every_kth: 1,
        };
        let v = load_video(fixture("hevc.mkv"), &sel).unwrap();
        assert_times(&v, &[1.0, 1.1, 1.2, 1.3]);
    }

    #[test]
    fn max_frames_and_resize() {
        let opts = VideoOptions::from(FrameSelection::All)
            .max_frames(3)
            .resize(32, 24);
        let v = load_video_with(fixture("av1.mkv"), &opts).unwrap();
        assert_times(&v, &[0.0, 0.1, 0.2]);
        for f in &v.frames {
            assert_eq!((f.width, f.height, f.rgb.len()), (32, 24, 32 * 24 * 3));
        }
        // Targets 0 and 1.25 s; a target half-way between two frames takes the
        // earlier one.
        let opts = VideoOptions::from(FrameSelection::Uniform(8)).max_frames(2);
        let v = load_video_with(fixture("h264_long_gop10.mp4"), &opts).unwrap();
        assert_times(&v, &[0.0, 1.2]);
    }

    #[test]
    fn truncated_videos_are_errors_naming_the_file() {
        // mp4: moov first, media data cut (the demuxer flags the partial
        // packet); mkv: ends before the track's DURATION tag; avi: ends before
        // the frame count in its header, index lost.
        for name in ["truncated.mp4", "truncated.mkv", "truncated.avi"] {
            let p = fixture(name);
            for sel in [
                FrameSelection::All,
                FrameSelection::EveryKth(2),
                FrameSelection::Uniform(4),
                FrameSelection::Window {
                    start_secs: 1.5,
                    end_secs: 2.0,
                    every_kth: 1,
                },
            ] {
                let err = load_video(&p, &sel).unwrap_err();
                assert!(
                    matches!(err, MediaError::Truncated { .. }),
                    "{name} {sel:?}: {err:?}"
                );
                assert_names(&err, &p);
            }
        }
    }

    #[test]
    fn garbage_and_audio_only_files_are_errors() {
        let p = fixture("random.mp3");
        let err = load_video(&p, &FrameSelection::All).unwrap_err();
        assert!(
            matches!(
                err,
                MediaError::Corrupt { .. }
                    | MediaError::Unsupported { .. }
                    | MediaError::NoStream { .. }
            ),
            "{err:?}"
        );
        assert_names(&err, &p);

        let p = fixture("sine_440.wma");
        let err = load_video(&p, &FrameSelection::All).unwrap_err();
        assert!(
            matches!(err, MediaError::NoStream { kind: "video", .. }),
            "{err:?}"
        );
        assert_names(&err, &p);

        let p = fixture("truncated.wav");
        let err = load_video(&p, &FrameSelection::All).unwrap_err();
        assert!(matches!(err, MediaError::NoStream { .. }), "{err:?}");
    }

    #[test]
    fn has_ffmpeg() {
        const { assert!(unidl_media::HAS_FFMPEG) };
    }
}
