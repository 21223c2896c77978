//! WAV through `hound` (pure Rust, always compiled in).

use std::io::BufReader;
use std::path::Path;

use crate::{Audio, MediaError};

fn open(path: &Path) -> Result<hound::WavReader<BufReader<std::fs::File>>, MediaError> {
    hound::WavReader::open(path).map_err(|e| map_err(path, e))
}

fn map_err(path: &Path, e: hound::Error) -> MediaError {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::truncated(path, "WAV header ends before its data chunk")
        }
        hound::Error::IoError(io) => MediaError::io(path, io),
        hound::Error::Unsupported => {
            MediaError::unsupported(path, "WAV encoding not supported by hound (only integer and float PCM); enable the `ffmpeg` feature")
        }
        other => MediaError::corrupt(path, format!("invalid WAV: {other}")),
    }
}

/// The stream parameters in the header: (sample rate, channels, frames,
/// bits per sample, is float).
pub(crate) fn header(path: &Path) -> Result<(u32, u16, u64, u16, bool), MediaError> {
    let reader = open(path)?;
    let spec = reader.spec();
    Ok((
        spec.sample_rate,
        spec.channels,
        u64::from(reader.duration()),
        spec.bits_per_sample,
        spec.sample_format == hound::SampleFormat::Float,
    ))
}

/// Decodes the whole file (or its first `max_frames(rate)` frames).
///
/// A data chunk shorter than the header declares is
/// [`MediaError::Truncated`], never a shorter buffer.
pub(crate) fn decode(
    path: &Path,
    max_frames: &dyn Fn(u32) -> Option<usize>,
) -> Result<Audio, MediaError> {
    let mut reader = open(path)?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(MediaError::corrupt(
            path,
            format!(
                "WAV header declares {} channels at {} Hz",
                spec.channels, spec.sample_rate
            ),
        ));
    }
    let channels = usize::from(spec.channels);
    let declared_frames = reader.duration() as usize;
    let want_frames = max_frames(spec.sample_rate)
        .map_or(declared_frames, |m| m.min(declared_frames));
    let want = want_frames * channels;

    let mut samples = Vec::with_capacity(want);
    let truncated = |got: usize| {
        MediaError::truncated(
            path,
            format!(
                "header declares {declared_frames} frames ({:.3} s), file holds only {} ({:.3} s)",
                declared_frames as f64 / f64::from(spec.sample_rate),
                got / channels,
                (got / channels) as f64 / f64::from(spec.sample_rate),
            ),
        )
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(MediaError::unsupported(
                    path,
                    format!("{}-bit float WAV", spec.bits_per_sample),
                ));
            }
            for s in reader.samples::<f32>().take(want) {
                match s {
                    Ok(v) => samples.push(v),
                    Err(hound::Error::IoError(e))
                        if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        return Err(truncated(samples.len()));
                    }
                    Err(e) => return Err(map_err(path, e)),
                }
            }
        }
        hound::SampleFormat::Int => {
            if !(1..=32).contains(&spec.bits_per_sample) {
                return Err(MediaError::unsupported(
                    path,
                    format!("{}-bit integer WAV", spec.bits_per_sample),
                ));
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64;
            for s in reader.samples::<i32>().take(want) {
                match s {
                    Ok(v) => samples.push((f64::from(v) * scale) as f32),
                    Err(hound::Error::IoError(e))
                        if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        return Err(truncated(samples.len()));
                    }
                    Err(e) => return Err(map_err(path, e)),
                }
            }
        }
    }
    if samples.len() != want {
        return Err(truncated(samples.len()));
    }
    Ok(Audio {
        samples,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    })
}
