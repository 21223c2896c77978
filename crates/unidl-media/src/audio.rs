//! Decoded audio, the options for loading it, and its validation.

use std::path::Path;

use crate::MediaError;
use crate::source::{self, Container};

/// Decoded audio: interleaved `f32` samples in `[-1, 1]` with their rate and
/// channel count.
///
/// Frame `i` is `samples[i * channels .. (i + 1) * channels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Interleaved samples (`frames * channels` values).
    pub samples: Vec<f32>,
    /// Frames per second.
    pub sample_rate: u32,
    /// Number of interleaved channels (at least 1).
    pub channels: u16,
}

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        if self.channels == 0 {
            0
        } else {
            self.samples.len() / usize::from(self.channels)
        }
    }

    /// Length in seconds (`frames / sample_rate`; 0 for a zero rate).
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.frames() as f64 / f64::from(self.sample_rate)
        }
    }

    /// A mono copy: each frame is the mean of its channels. Mono audio is
    /// returned as a plain copy.
    pub fn to_mono(&self) -> Audio {
        Audio {
            samples: downmix(&self.samples, usize::from(self.channels.max(1))),
            sample_rate: self.sample_rate,
            channels: 1,
        }
    }

    /// A copy resampled to `sample_rate` Hz with the same resampler
    /// [`load_audio`] uses (rubato's FFT resampler): `ceil(frames * to / from)`
    /// frames, no leading delay. Errors are [`MediaError::Conversion`] with an
    /// empty path.
    pub fn resampled(&self, sample_rate: u32) -> Result<Audio, MediaError> {
        resample(self, sample_rate).map_err(|detail| MediaError::Conversion {
            path: std::path::PathBuf::new(),
            detail,
        })
    }

    /// The samples of one channel (de-interleaved). Panics if `channel` is out
    /// of range.
    pub fn channel(&self, channel: u16) -> Vec<f32> {
        assert!(
            channel < self.channels,
            "channel {channel} out of range (audio has {})",
            self.channels
        );
        self.samples
            .iter()
            .skip(usize::from(channel))
            .step_by(usize::from(self.channels))
            .copied()
            .collect()
    }
}

/// How [`load_audio`] should deliver the audio.
///
/// The default keeps the file's own rate and channels and reads it whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioOptions {
    /// Resample to this rate (Hz). `None` keeps the file's rate.
    pub sample_rate: Option<u32>,
    /// Deliver this many channels. `None` keeps the file's channels; `1`
    /// downmixes to mono (mean of the channels); a mono file can be widened
    /// to any count by copying. Other conversions are rejected with
    /// [`MediaError::Conversion`].
    pub channels: Option<u16>,
    /// Read at most this many seconds from the start; decoding stops there, so
    /// a long file is not decoded whole. `None` reads everything.
    pub max_duration_secs: Option<f64>,
}

/// Highest sample rate accepted in options and limits (Hz).
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Highest channel count accepted in options.
pub const MAX_CHANNELS: u16 = 64;

impl AudioOptions {
    /// Options that resample to `sample_rate` and downmix to mono: the usual
    /// input of a speech model.
    pub fn mono(sample_rate: u32) -> Self {
        AudioOptions {
            sample_rate: Some(sample_rate),
            channels: Some(1),
            max_duration_secs: None,
        }
    }

    /// Checks that every option is usable (rate in `1..=768000`, channels in
    /// `1..=64`, a finite positive duration cap).
    pub fn validate(&self) -> Result<(), MediaError> {
        if let Some(rate) = self.sample_rate
            && (rate == 0 || rate > MAX_SAMPLE_RATE)
        {
            return Err(MediaError::InvalidOptions(format!(
                "AudioOptions::sample_rate must be in 1..={MAX_SAMPLE_RATE} Hz, got {rate}"
            )));
        }
        if let Some(ch) = self.channels
            && (ch == 0 || ch > MAX_CHANNELS)
        {
            return Err(MediaError::InvalidOptions(format!(
                "AudioOptions::channels must be in 1..={MAX_CHANNELS}, got {ch}"
            )));
        }
        if let Some(d) = self.max_duration_secs
            && !(d.is_finite() && d > 0.0)
        {
            return Err(MediaError::InvalidOptions(format!(
                "AudioOptions::max_duration_secs must be finite and > 0, got {d}"
            )));
        }
        Ok(())
    }

    /// The frame count `max_duration_secs` allows at `rate`, if capped.
    pub(crate) fn max_frames_at(&self, rate: u32) -> Option<usize> {
        self.max_duration_secs
            .map(|d| (d * f64::from(rate)).ceil() as usize)
    }
}

/// Bounds that decoded audio must respect; see [`validate_audio`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioLimits {
    /// Shortest accepted duration, seconds.
    pub min_secs: Option<f64>,
    /// Longest accepted duration, seconds.
    pub max_secs: Option<f64>,
    /// The one accepted sample rate, Hz.
    pub sample_rate: Option<u32>,
}

/// Checks decoded audio against `limits` and for internal consistency.
///
/// Errors, in the order checked:
/// - [`MediaError::InvalidOptions`] if the limits themselves are nonsense
///   (negative or non-finite bounds, `min_secs > max_secs`, zero rate);
/// - [`MediaError::MalformedAudio`] for zero channels, a sample count that is
///   not a multiple of the channel count, a zero sample rate, or a NaN /
///   infinite sample;
/// - [`MediaError::SampleRateMismatch`], [`MediaError::TooShort`],
///   [`MediaError::TooLong`].
pub fn validate_audio(audio: &Audio, limits: &AudioLimits) -> Result<(), MediaError> {
    for (name, v) in [("min_secs", limits.min_secs), ("max_secs", limits.max_secs)] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(MediaError::InvalidOptions(format!(
                "AudioLimits::{name} must be finite and >= 0, got {v}"
            )));
        }
    }
    if let (Some(lo), Some(hi)) = (limits.min_secs, limits.max_secs)
        && lo > hi
    {
        return Err(MediaError::InvalidOptions(format!(
            "AudioLimits::min_secs ({lo}) is greater than max_secs ({hi})"
        )));
    }
    if limits.sample_rate == Some(0) {
        return Err(MediaError::InvalidOptions(
            "AudioLimits::sample_rate must be > 0".into(),
        ));
    }

    if audio.channels == 0 {
        return Err(MediaError::MalformedAudio("zero channels".into()));
    }
    if audio.sample_rate == 0 {
        return Err(MediaError::MalformedAudio("zero sample rate".into()));
    }
    if !audio
        .samples
        .len()
        .is_multiple_of(usize::from(audio.channels))
    {
        return Err(MediaError::MalformedAudio(format!(
            "{} samples is not a multiple of {} channels",
            audio.samples.len(),
            audio.channels
        )));
    }
    if let Some(i) = audio.samples.iter().position(|s| !s.is_finite()) {
        return Err(MediaError::MalformedAudio(format!(
            "sample {i} is {}",
            audio.samples[i]
        )));
    }

    if let Some(expected) = limits.sample_rate
        && audio.sample_rate != expected
    {
        return Err(MediaError::SampleRateMismatch {
            expected,
            actual: audio.sample_rate,
        });
    }
    let duration_secs = audio.duration_secs();
    if let Some(min_secs) = limits.min_secs
        && duration_secs < min_secs
    {
        return Err(MediaError::TooShort {
            duration_secs,
            min_secs,
        });
    }
    if let Some(max_secs) = limits.max_secs
        && duration_secs > max_secs
    {
        return Err(MediaError::TooLong {
            duration_secs,
            max_secs,
        });
    }
    Ok(())
}

/// Decodes an audio file (or the best audio stream of a video file) into
/// interleaved `f32`.
///
/// Decoder choice, by the file's header and then its extension:
/// - WAV (RIFF/WAVE header, or a `.wav` / `.wave` name): `hound`, always
///   available, for integer PCM (8–32 bit) and 32-bit float. Other WAV
///   encodings (ADPCM, A-law, µ-law…) go to FFmpeg, so without the `ffmpeg`
///   feature they give [`MediaError::FeatureDisabled`].
/// - `.mp3`: `symphonia`, always available.
/// - anything else (wma, aac/m4a, ogg, flac, opus, video containers…): FFmpeg,
///   behind the `ffmpeg` feature; without it the result is
///   [`MediaError::FeatureDisabled`].
///
/// Then, in this order: the duration cap is applied while decoding, channels
/// are converted (`channels: Some(1)` downmixes by averaging), and the audio is
/// resampled with `rubato`'s FFT resampler (all back-ends use the same one, so
/// results do not depend on the file's format).
///
/// Errors name the file: [`MediaError::NotFound`], [`MediaError::Empty`],
/// [`MediaError::Truncated`] (the file ends before its header says it should),
/// [`MediaError::Corrupt`], [`MediaError::Unsupported`],
/// [`MediaError::NoStream`], [`MediaError::FeatureDisabled`],
/// [`MediaError::Conversion`]; bad options give
/// [`MediaError::InvalidOptions`].
pub fn load_audio(path: impl AsRef<Path>, opts: &AudioOptions) -> Result<Audio, MediaError> {
    let path = path.as_ref();
    opts.validate()?;
    let container = source::inspect(path)?;
    let max_frames = |rate: u32| opts.max_frames_at(rate);
    let decoded = match container {
        // WAV encodings hound does not read (ADPCM, A-law, µ-law, GSM…) go
        // to FFmpeg, or report the feature it needs.
        Container::Wav => match crate::wav::decode(path, &max_frames) {
            Err(MediaError::Unsupported { .. }) => decode_with_ffmpeg(path, &max_frames)?,
            other => other?,
        },
        Container::Mp3 => crate::mp3::decode(path, &max_frames)?,
        Container::Other => decode_with_ffmpeg(path, &max_frames)?,
    };
    convert(path, decoded, opts)
}

#[cfg(feature = "ffmpeg")]
fn decode_with_ffmpeg(
    path: &Path,
    max_frames: &dyn Fn(u32) -> Option<usize>,
) -> Result<Audio, MediaError> {
    crate::ffmpeg::decode_audio(path, max_frames)
}

#[cfg(not(feature = "ffmpeg"))]
fn decode_with_ffmpeg(
    path: &Path,
    _max_frames: &dyn Fn(u32) -> Option<usize>,
) -> Result<Audio, MediaError> {
    Err(MediaError::feature_disabled(path))
}

/// Channel conversion then resampling, as `opts` asks.
fn convert(path: &Path, mut audio: Audio, opts: &AudioOptions) -> Result<Audio, MediaError> {
    if let Some(want) = opts.channels
        && want != audio.channels
    {
        audio = if want == 1 {
            audio.to_mono()
        } else if audio.channels == 1 {
            let w = usize::from(want);
            Audio {
                samples: audio
                    .samples
                    .iter()
                    .flat_map(|&s| std::iter::repeat_n(s, w))
                    .collect(),
                sample_rate: audio.sample_rate,
                channels: want,
            }
        } else {
            return Err(MediaError::Conversion {
                path: path.to_path_buf(),
                detail: format!(
                    "cannot map {} channels to {want} (only downmix to 1 or widening mono is supported)",
                    audio.channels
                ),
            });
        };
    }
    if let Some(rate) = opts.sample_rate
        && rate != audio.sample_rate
    {
        audio = resample(&audio, rate).map_err(|detail| MediaError::Conversion {
            path: path.to_path_buf(),
            detail,
        })?;
    }
    Ok(audio)
}

/// Mean of each frame's channels.
fn downmix(samples: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return samples.to_vec();
    }
    let scale = 1.0 / channels as f32;
    samples
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() * scale)
        .collect()
}

/// Resamples interleaved audio with rubato's synchronous FFT resampler. The
/// output has exactly `ceil(frames * to / from)` frames, with the resampler's
/// delay trimmed off.
pub(crate) fn resample(audio: &Audio, to: u32) -> Result<Audio, String> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Fft, FixedSync, Resampler};

    if audio.channels == 0 || audio.sample_rate == 0 || to == 0 {
        return Err(format!(
            "cannot resample {} Hz x {} channels to {to} Hz",
            audio.sample_rate, audio.channels
        ));
    }
    if to == audio.sample_rate {
        return Ok(audio.clone());
    }
    let channels = usize::from(audio.channels);
    let frames = audio.frames();
    if frames == 0 {
        return Ok(Audio {
            samples: Vec::new(),
            sample_rate: to,
            channels: audio.channels,
        });
    }
    let input = InterleavedSlice::new(&audio.samples[..frames * channels], channels, frames)
        .map_err(|e| e.to_string())?;
    let mut resampler = Fft::<f32>::new(
        audio.sample_rate as usize,
        to as usize,
        1024,
        channels,
        FixedSync::Input,
    )
    .map_err(|e| e.to_string())?;
    let out = resampler
        .process_all(&input, frames, None)
        .map_err(|e| e.to_string())?;
    Ok(Audio {
        samples: out.take_data(),
        sample_rate: to,
        channels: audio.channels,
    })
}
