//! MP3 through `symphonia` 0.5 (pure Rust, always compiled in).

use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CodecParameters, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::{Audio, MediaError};

/// MPEG audio frames are at most 1152 samples long; a stream that ends more
/// than one frame short of its Xing/Info frame count is called truncated.
const FRAME_TOLERANCE: u64 = 1152;

fn map_err(path: &Path, what: &str, e: SymError) -> MediaError {
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::corrupt(path, format!("{what}: unexpected end of file"))
        }
        SymError::IoError(io) => MediaError::io(path, io),
        SymError::Unsupported(s) => MediaError::unsupported(path, format!("{what}: {s}")),
        other => MediaError::corrupt(path, format!("{what}: {other}")),
    }
}

fn open(path: &Path) -> Result<(Box<dyn FormatReader>, u32, CodecParameters), MediaError> {
    let file = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions {
                enable_gapless: true,
                ..Default::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(_) => MediaError::corrupt(path, "not an MP3 stream"),
            SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                MediaError::corrupt(path, "no MP3 frame found")
            }
            other => map_err(path, "probing MP3", other),
        })?;
    let format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| MediaError::NoStream {
            path: path.to_path_buf(),
            kind: "audio",
        })?;
    let id = track.id;
    let params = track.codec_params.clone();
    Ok((format, id, params))
}

/// What the first MPEG frame and the Xing/Info header say.
pub(crate) struct Mp3Header {
    pub(crate) sample_rate: Option<u32>,
    pub(crate) channels: Option<u16>,
    /// Frames after gapless trimming; exact with a Xing/Info header,
    /// estimated from the bitrate otherwise.
    pub(crate) frames: Option<u64>,
}

pub(crate) fn header(path: &Path) -> Result<Mp3Header, MediaError> {
    let (_, _, params) = open(path)?;
    Ok(Mp3Header {
        sample_rate: params.sample_rate,
        channels: params.channels.map(|c| c.count() as u16),
        frames: params.n_frames,
    })
}

/// Decodes the file (or its first `max_frames(rate)` frames).
///
/// Any packet that fails to decode is [`MediaError::Corrupt`]; a stream that
/// stops well short of the frame count in its Xing/Info header is
/// [`MediaError::Truncated`].
pub(crate) fn decode(
    path: &Path,
    max_frames: &dyn Fn(u32) -> Option<usize>,
) -> Result<Audio, MediaError> {
    let (mut format, track_id, params) = open(path)?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| map_err(path, "opening MP3 decoder", e))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate;
    let mut channels = params.channels.map(|c| c.count() as u16);
    let mut cap: Option<usize> = None;
    let mut packets = 0usize;
    let mut hit_cap = false;
    let mut buf: Option<SampleBuffer<f32>> = None;

    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => {
                return Err(MediaError::unsupported(
                    path,
                    "stream parameters change mid-stream",
                ));
            }
            Err(e) => return Err(map_err(path, "reading MP3 frame", e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        packets += 1;
        let decoded = decoder.decode(&packet).map_err(|e| {
            map_err(
                path,
                &format!("decoding MP3 frame {packets} (at {} samples)", packet.ts()),
                e,
            )
        })?;
        let spec = *decoded.spec();
        let ch = spec.channels.count() as u16;
        match (rate, channels) {
            (Some(r), Some(c)) if r != spec.rate || c != ch => {
                return Err(MediaError::unsupported(
                    path,
                    format!(
                        "stream changes from {r} Hz x {c} to {} Hz x {ch} mid-stream",
                        spec.rate
                    ),
                ));
            }
            _ => {
                rate = Some(spec.rate);
                channels = Some(ch);
            }
        }
        if cap.is_none() {
            cap = max_frames(spec.rate).map(|f| f * usize::from(ch));
        }
        if decoded.frames() == 0 {
            continue;
        }
        let needed = decoded.capacity() as u64;
        if buf
            .as_ref()
            .is_none_or(|b| (b.capacity() as u64) < needed * spec.channels.count() as u64)
        {
            buf = Some(SampleBuffer::new(needed, spec));
        }
        let b = buf.as_mut().expect("buffer allocated above");
        b.copy_interleaved_ref(decoded);
        samples.extend_from_slice(b.samples());
        if let Some(c) = cap
            && samples.len() >= c
        {
            samples.truncate(c);
            hit_cap = true;
            break;
        }
    }

    let (Some(rate), Some(channels)) = (rate, channels) else {
        return Err(MediaError::corrupt(path, "no decodable MP3 frame"));
    };
    if packets == 0 || samples.is_empty() {
        return Err(MediaError::corrupt(path, "no decodable MP3 frame"));
    }
    let frames = (samples.len() / usize::from(channels)) as u64;
    // Only a Xing/Info/VBRI header gives an exact frame count; symphonia
    // estimates it from the bitrate otherwise, which is not good enough to
    // call a file truncated. The LAME delay field marks an Info header.
    if !hit_cap
        && params.delay.is_some()
        && let Some(n) = params.n_frames
        && frames + FRAME_TOLERANCE < n
    {
        return Err(MediaError::truncated(
            path,
            format!(
                "MP3 header declares {n} frames ({:.3} s), stream ends after {frames} ({:.3} s)",
                n as f64 / f64::from(rate),
                frames as f64 / f64::from(rate)
            ),
        ));
    }
    Ok(Audio {
        samples,
        sample_rate: rate,
        channels,
    })
}
