//! # unidl-media
//!
//! Decodes audio and video files into plain host buffers for unidl's data
//! pipeline (T/AII 008-2023 §6.2.2.1 P-c audio, P-d video, P-e validation):
//! interleaved `f32` samples ([`Audio`]) and packed RGB frames with their
//! timestamps ([`Video`]).
//!
//! | input | decoder | availability |
//! | --- | --- | --- |
//! | WAV (PCM int 8–32 bit, float 32 bit) | `hound` | always |
//! | MP3 | `symphonia` 0.5 | always |
//! | other audio (WMA, AAC/M4A, FLAC, Ogg, Opus…), audio tracks of videos | FFmpeg | feature `ffmpeg` |
//! | video (H.264, H.265, AV1, MPEG-4… in mp4, mov, mkv, avi…) | FFmpeg | feature `ffmpeg` |
//!
//! Resampling uses `rubato`'s FFT resampler for every format; frame
//! resizing and RGB conversion use swscale.
//!
//! Every entry point exists with or without the `ffmpeg` feature; without it,
//! inputs that need FFmpeg give [`MediaError::FeatureDisabled`], so callers
//! need no `#[cfg]`. The feature needs FFmpeg's development files (Debian:
//! `libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
//! libswresample-dev`, plus `libclang-dev clang pkg-config` for the bindings);
//! the FFmpeg code path sets FFmpeg's own log level to "fatal", since every
//! problem is reported as a [`MediaError`] instead.
//!
//! Errors are typed and name the file: a missing, empty, truncated, corrupt or
//! unsupported file is an error, never a panic and never silently fewer
//! samples or frames.
//!
//! ## Dependencies
//! This crate must never depend on Burn or on any other unidl crate: it only
//! turns files into `Vec`s, and the data crate depends on it, not the other
//! way round.
//!
//! Depends on: none.
//!
//! ```no_run
//! use unidl_media::{AudioOptions, FrameSelection, load_audio, load_video};
//!
//! let speech = load_audio("clip.wav", &AudioOptions::mono(16_000))?;
//! assert_eq!(speech.sample_rate, 16_000);
//! let clip = load_video("clip.mp4", &FrameSelection::Uniform(16))?;
//! println!("{} frames at {:?} s", clip.frames.len(), clip.timestamps);
//! # Ok::<(), unidl_media::MediaError>(())
//! ```

mod audio;
mod error;
#[cfg(feature = "ffmpeg")]
mod ffmpeg;
mod mp3;
mod probe;
mod source;
mod video;
mod wav;

pub use audio::{
    Audio, AudioLimits, AudioOptions, MAX_CHANNELS, MAX_SAMPLE_RATE, load_audio, validate_audio,
};
pub use error::MediaError;
pub use probe::{MediaInfo, StreamInfo, StreamKind, probe};
pub use video::{
    DecodeStats, Frame, FrameSelection, MAX_EDGE, Video, VideoOptions, load_video, load_video_with,
    load_video_with_stats,
};

/// Whether this build decodes through FFmpeg (the `ffmpeg` cargo feature).
pub const HAS_FFMPEG: bool = cfg!(feature = "ffmpeg");
