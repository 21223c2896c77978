//! WAV through `hound` (pure Rust, always compiled in).

use std::io::{BufReader, Read};
use std::path::Path;

use crate::{Audio, MediaError};

/// WAVE format tags hound decodes: integer PCM, IEEE float, and the
/// extensible header (whose sub-format hound checks itself).
const HOUND_TAGS: [u16; 3] = [0x0001, 0x0003, 0xFFFE];

/// The format tag of the `fmt ` chunk, found by walking the RIFF chunks at
/// the start of the file (`None` if there is no readable `fmt ` chunk; hound
/// then reports what is wrong).
fn format_tag(path: &Path) -> Result<Option<u16>, MediaError> {
    let mut file = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
    let mut head = Vec::with_capacity(4096);
    file.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| MediaError::io(path, e))?;
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Ok(None);
    }
    let mut pos = 12usize;
    while pos + 8 <= head.len() {
        let id = &head[pos..pos + 4];
        let len = u32::from_le_bytes([head[pos + 4], head[pos + 5], head[pos + 6], head[pos + 7]])
            as usize;
        if id == b"fmt " {
            return Ok(head
                .get(pos + 8..pos + 10)
                .map(|b| u16::from_le_bytes([b[0], b[1]])));
        }
        if id == b"data" {
            return Ok(None);
        }
        // Chunks are padded to an even length.
        pos = pos
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    Ok(None)
}

fn open(path: &Path) -> Result<hound::WavReader<BufReader<std::fs::File>>, MediaError> {
    if let Some(tag) = format_tag(path)?
        && !HOUND_TAGS.contains(&tag)
    {
        return Err(MediaError::unsupported(
            path,
            format!(
                "WAV format tag {tag:#06x} (only PCM and float WAV decode without the `ffmpeg` feature)"
            ),
        ));
    }
    hound::WavReader::open(path).map_err(|e| map_err(path, e))
}

fn map_err(path: &Path, e: hound::Error) -> MediaError {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::truncated(path, "WAV header ends before its data chunk")
        }
        hound::Error::IoError(io) => MediaError::io(path, io),
        hound::Error::Unsupported => MediaError::unsupported(
            path,
            "WAV encoding not supported by hound (only integer and float PCM); enable the `ffmpeg` feature",
        ),
        other => MediaError::corrupt(path, format!("invalid WAV: {other}")),
    }
}

/// Whether a read error means the data ran out: hound reports a short read
/// as `Other("Failed to read enough bytes.")`, the standard library as
/// `UnexpectedEof`.
fn is_short_read(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string().contains("enough bytes")
}

/// What a WAV header declares.
pub(crate) struct WavHeader {
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    /// Frames the data chunk's length accounts for.
    pub(crate) frames: u64,
    pub(crate) bits_per_sample: u16,
    pub(crate) float: bool,
}

pub(crate) fn header(path: &Path) -> Result<WavHeader, MediaError> {
    let reader = open(path)?;
    let spec = reader.spec();
    Ok(WavHeader {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        frames: u64::from(reader.duration()),
        bits_per_sample: spec.bits_per_sample,
        float: spec.sample_format == hound::SampleFormat::Float,
    })
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
    let want_frames =
        max_frames(spec.sample_rate).map_or(declared_frames, |m| m.min(declared_frames));
    let want = want_frames * channels;

    // The header's data length is only a claim: reserve no more samples than
    // the file has bytes (every sample takes at least one), so a 44-byte
    // file declaring 4 GiB of audio is a Truncated error, not a 16 GiB
    // allocation that aborts the process.
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut samples = Vec::with_capacity(want.min(usize::try_from(file_len).unwrap_or(usize::MAX)));
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
                    Err(hound::Error::IoError(e)) if is_short_read(&e) => {
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
                    Err(hound::Error::IoError(e)) if is_short_read(&e) => {
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
