//! Reading a file's container and stream facts without decoding it.

use std::path::Path;

use crate::MediaError;
use crate::source::{self, Container};

/// What kind of data a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Sound.
    Audio,
    /// Pictures.
    Video,
    /// Subtitles.
    Subtitle,
    /// Anything else (data, attachments, unknown).
    Other,
}

/// Facts about one stream of a file. Fields that do not apply to the stream's
/// kind, or that the container does not state, are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Index of the stream in the container.
    pub index: usize,
    /// Audio, video, …
    pub kind: StreamKind,
    /// Codec name as FFmpeg spells it (`"h264"`, `"hevc"`, `"av1"`, `"aac"`,
    /// `"mp3"`, `"pcm_s16le"`, `"pcm_f32le"`…).
    pub codec: String,
    /// Stream duration, seconds.
    pub duration_secs: Option<f64>,
    /// Frame count (video) or sample-frame count (audio), if stated.
    pub frames: Option<u64>,
    /// Audio sample rate, Hz.
    pub sample_rate: Option<u32>,
    /// Audio channel count.
    pub channels: Option<u16>,
    /// Video width, pixels.
    pub width: Option<u32>,
    /// Video height, pixels.
    pub height: Option<u32>,
    /// Video frame rate, frames per second.
    pub fps: Option<f64>,
}

impl StreamInfo {
    pub(crate) fn new(index: usize, kind: StreamKind, codec: impl Into<String>) -> Self {
        StreamInfo {
            index,
            kind,
            codec: codec.into(),
            duration_secs: None,
            frames: None,
            sample_rate: None,
            channels: None,
            width: None,
            height: None,
            fps: None,
        }
    }
}

/// Facts about a media file: its container, duration and streams.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// Container name (`"wav"`, `"mp3"`, or FFmpeg's demuxer name such as
    /// `"mov,mp4,m4a,3gp,3g2,mj2"`, `"matroska,webm"`, `"avi"`).
    pub container: String,
    /// Duration of the whole file, seconds.
    pub duration_secs: Option<f64>,
    /// The streams, in container order.
    pub streams: Vec<StreamInfo>,
}

impl MediaInfo {
    /// The first audio stream.
    pub fn audio(&self) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == StreamKind::Audio)
    }

    /// The first video stream.
    pub fn video(&self) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == StreamKind::Video)
    }
}

/// Reads container and stream facts (duration, codecs, sample rate and
/// channels, width, height and frame rate) without decoding.
///
/// With the `ffmpeg` feature any format FFmpeg reads is probed by FFmpeg,
/// except WAV and MP3, which are read by the same pure-Rust code as
/// [`load_audio`](crate::load_audio) (hound's header; symphonia's, whose
/// frame count is exact only when the file has a Xing/Info header). Without
/// the feature, other formats give [`MediaError::FeatureDisabled`]. A WAV
/// header that promises more data than the file holds is reported by
/// [`load_audio`](crate::load_audio), not here.
pub fn probe(path: impl AsRef<Path>) -> Result<MediaInfo, MediaError> {
    let path = path.as_ref();
    match source::inspect(path)? {
        Container::Wav => match probe_wav(path) {
            Err(MediaError::Unsupported { .. }) => probe_with_ffmpeg(path),
            other => other,
        },
        Container::Mp3 => probe_mp3(path),
        Container::Other => probe_with_ffmpeg(path),
    }
}

fn probe_wav(path: &Path) -> Result<MediaInfo, MediaError> {
    let h = crate::wav::header(path)?;
    let bits = h.bits_per_sample;
    let codec = if h.float {
        format!("pcm_f{bits}le")
    } else if bits == 8 {
        "pcm_u8".to_string()
    } else {
        format!("pcm_s{bits}le")
    };
    let duration = (h.sample_rate > 0).then(|| h.frames as f64 / f64::from(h.sample_rate));
    let mut s = StreamInfo::new(0, StreamKind::Audio, codec);
    s.duration_secs = duration;
    s.frames = Some(h.frames);
    s.sample_rate = Some(h.sample_rate);
    s.channels = Some(h.channels);
    Ok(MediaInfo {
        container: "wav".into(),
        duration_secs: duration,
        streams: vec![s],
    })
}

fn probe_mp3(path: &Path) -> Result<MediaInfo, MediaError> {
    let h = crate::mp3::header(path)?;
    let duration = match (h.frames, h.sample_rate) {
        (Some(f), Some(r)) if r > 0 => Some(f as f64 / f64::from(r)),
        _ => None,
    };
    let mut s = StreamInfo::new(0, StreamKind::Audio, "mp3");
    s.duration_secs = duration;
    s.frames = h.frames;
    s.sample_rate = h.sample_rate;
    s.channels = h.channels;
    Ok(MediaInfo {
        container: "mp3".into(),
        duration_secs: duration,
        streams: vec![s],
    })
}

#[cfg(feature = "ffmpeg")]
fn probe_with_ffmpeg(path: &Path) -> Result<MediaInfo, MediaError> {
    crate::ffmpeg::probe(path)
}

#[cfg(not(feature = "ffmpeg"))]
fn probe_with_ffmpeg(path: &Path) -> Result<MediaInfo, MediaError> {
    Err(MediaError::feature_disabled(path))
}
