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

/// Bytes after the ID3v2 tag in which the first frame's Xing/Info tag is
/// looked for.
const INFO_TAG_SCAN: usize = 64 * 1024;

/// Refuses a Xing/Info tag whose frame count is smaller than the encoder
/// delay and padding of its LAME tag.
///
/// symphonia 0.5 computes `frames x duration - delay - padding` for such a
/// tag without checking, which panics (attempt to subtract with overflow)
/// in builds with overflow checks and gives a frame count near 2^64 in
/// others (found by the fuzzer, issue 13; DECISIONS D34). The check runs
/// before symphonia sees the file and reads every "Xing"/"Info" near the
/// start the way symphonia does, taking the shortest frame duration (576
/// samples), so it catches every tag symphonia would trip on.
fn check_info_tag(path: &Path) -> Result<(), MediaError> {
    use std::io::Read;
    let mut head = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
    file.take((INFO_TAG_SCAN + 64 * 1024) as u64)
        .read_to_end(&mut head)
        .map_err(|e| MediaError::io(path, e))?;
    // Skip an ID3v2 tag (its size is a 28-bit syncsafe integer); a larger
    // tag than the head holds is read past.
    let mut start = 0usize;
    if head.len() >= 10 && &head[..3] == b"ID3" {
        let size = head[6..10]
            .iter()
            .fold(0usize, |a, &b| (a << 7) | usize::from(b & 0x7f));
        let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
        start = 10 + size + footer;
        if start > head.len() {
            let mut f = std::fs::File::open(path).map_err(|e| MediaError::io(path, e))?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start as u64))
                .map_err(|e| MediaError::io(path, e))?;
            head.clear();
            f.take(INFO_TAG_SCAN as u64)
                .read_to_end(&mut head)
                .map_err(|e| MediaError::io(path, e))?;
            start = 0;
        }
    }
    let end = head.len().min(start + INFO_TAG_SCAN);
    let be32 = |b: &[u8], at: usize| -> Option<u32> {
        b.get(at..at + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    };
    for at in start..end.saturating_sub(4) {
        let id = &head[at..at + 4];
        if id != b"Xing" && id != b"Info" {
            continue;
        }
        let Some(flags) = be32(&head, at + 4) else {
            continue;
        };
        let mut p = at + 8;
        let frames = if flags & 1 != 0 {
            let f = be32(&head, p);
            p += 4;
            f
        } else {
            None
        };
        p += if flags & 2 != 0 { 4 } else { 0 } + if flags & 4 != 0 { 100 } else { 0 };
        p += if flags & 8 != 0 { 4 } else { 0 };
        // LAME extension: encoder string (9), revision, lowpass, peak (4),
        // two replay gains (2 + 2), flags, ABR, then delay/padding (24 bits).
        let (Some(frames), Some(lame)) = (frames, head.get(p..p + 24)) else {
            continue;
        };
        if !matches!(&lame[..4], b"LAME" | b"Lavf" | b"Lavc") {
            continue;
        }
        let trim = u32::from_be_bytes([0, lame[21], lame[22], lame[23]]);
        let delay = 528 + 1 + u64::from(trim >> 12);
        let padding = u64::from(trim & 0xfff).saturating_sub(528 + 1);
        if u64::from(frames) * 576 < delay + padding {
            return Err(MediaError::corrupt(
                path,
                format!(
                    "Xing/Info tag declares {frames} MPEG frames, fewer samples than its encoder delay ({delay}) and padding ({padding})"
                ),
            ));
        }
    }
    Ok(())
}

fn open(path: &Path) -> Result<(Box<dyn FormatReader>, u32, CodecParameters), MediaError> {
    check_info_tag(path)?;
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
