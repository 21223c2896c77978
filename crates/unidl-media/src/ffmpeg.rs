//! Everything that goes through FFmpeg (`ffmpeg-next`): audio in formats the
//! pure-Rust decoders do not read, all video, and probing.

use std::path::Path;
use std::sync::Once;

use ff::codec::packet::Packet;
use ff::format::context::Input;
use ff::media::Type as MediaType;
use ff::util::frame;
use ffmpeg_next as ff;

use crate::probe::{MediaInfo, StreamInfo, StreamKind};
use crate::video::{DecodeStats, FrameSelection, VideoOptions};
use crate::{Audio, Frame, MediaError, Video};

/// FFmpeg's time unit for container-level timestamps (`AV_TIME_BASE`).
const AV_TIME_BASE: f64 = 1_000_000.0;

/// Initialises FFmpeg once and silences its logging: every problem it reports
/// also comes back as an error code, which this crate turns into a
/// [`MediaError`] naming the file.
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Only fails on builds without any (de)muxer registered; a later open
        // then fails with a typed error anyway.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// Maps a POSIX error code from FFmpeg: the file-system ones to
/// `NotFound` / `Io`, anything else (typically `EINVAL` from a demuxer that
/// gave up on the data) to `Corrupt`.
fn errno_error(path: &Path, errno: i32, what: &str) -> MediaError {
    use ff::util::error::{EACCES, EIO, ENOENT, EPERM};
    if errno == ENOENT {
        MediaError::NotFound {
            path: path.to_path_buf(),
        }
    } else if [EACCES, EIO, EPERM].contains(&errno) {
        MediaError::io(path, std::io::Error::from_raw_os_error(errno))
    } else {
        MediaError::corrupt(
            path,
            format!("{what}: {}", std::io::Error::from_raw_os_error(errno)),
        )
    }
}

fn open_input(path: &Path) -> Result<Input, MediaError> {
    init();
    ff::format::input(path).map_err(|e| match e {
        ff::Error::Other { errno } => errno_error(path, errno, "cannot open container"),
        ff::Error::DemuxerNotFound => {
            MediaError::unsupported(path, "no FFmpeg demuxer recognises this file")
        }
        ff::Error::Eof => MediaError::truncated(path, "file ends inside the container header"),
        other => MediaError::corrupt(path, format!("cannot open container: {other}")),
    })
}

fn codec_name(id: ff::codec::Id) -> String {
    id.name().to_string()
}

fn decoder_error(path: &Path, codec: &str, e: ff::Error) -> MediaError {
    match e {
        ff::Error::DecoderNotFound => {
            MediaError::unsupported(path, format!("no FFmpeg decoder for codec `{codec}`"))
        }
        other => MediaError::corrupt(path, format!("cannot open `{codec}` decoder: {other}")),
    }
}

fn secs(ts: i64, tb: ff::Rational) -> f64 {
    ts as f64 * f64::from(tb)
}

/// Stream start in seconds (0 when unset).
fn stream_start(stream: &ff::format::stream::Stream) -> f64 {
    let st = stream.start_time();
    if st == ff::ffi::AV_NOPTS_VALUE {
        0.0
    } else {
        secs(st, stream.time_base())
    }
}

/// Frame rate as stated by the container: average, else "real base" rate.
fn stream_fps(stream: &ff::format::stream::Stream) -> Option<f64> {
    [stream.avg_frame_rate(), stream.rate()]
        .into_iter()
        .find(|r| r.numerator() > 0 && r.denominator() > 0)
        .map(f64::from)
}

/// The stream's own duration: the stream header's, else the `DURATION` tag
/// that Matroska muxers (FFmpeg, mkvmerge) write per track. The container's
/// duration is not used here: it spans all streams, so it says nothing
/// reliable about one of them.
fn stream_duration(stream: &ff::format::stream::Stream) -> Option<f64> {
    let d = stream.duration();
    if d > 0 && d != ff::ffi::AV_NOPTS_VALUE {
        return Some(secs(d, stream.time_base()));
    }
    let meta = stream.metadata();
    let tag = meta.get("DURATION").or_else(|| meta.get("duration"))?;
    parse_hms(tag).filter(|d| *d > 0.0)
}

/// Parses `HH:MM:SS.fraction` (Matroska's `DURATION` tag).
fn parse_hms(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(h.is_finite() && m.is_finite() && sec.is_finite()) {
        return None;
    }
    Some(h * 3600.0 + m * 60.0 + sec)
}

/// How long the video stream says it is. AVI is constant-frame-rate by
/// construction and its header counts the frames, which stays right when the
/// index at the end of the file is cut off (FFmpeg then estimates the
/// duration from the file size instead).
fn declared_video_duration(ictx: &Input, stream: &ff::format::stream::Stream) -> Option<f64> {
    let own = stream_duration(stream);
    let n = stream.frames();
    let is_avi = ictx.format().name().split(',').any(|n| n == "avi");
    match stream_fps(stream) {
        Some(fps) if is_avi && n > 0 => {
            let from_count = n as f64 / fps;
            Some(own.map_or(from_count, |d| d.max(from_count)))
        }
        _ => own,
    }
}

fn container_duration(ictx: &Input) -> Option<f64> {
    let d = ictx.duration();
    (d > 0 && d != ff::ffi::AV_NOPTS_VALUE).then(|| d as f64 / AV_TIME_BASE)
}

/// An error from `av_read_frame` other than end of file. By then the demuxer
/// has an index (or header) that promised more data, so a read failure means
/// the file is cut short or damaged.
fn read_error(path: &Path, e: ff::Error, packets: usize, last_secs: Option<f64>) -> MediaError {
    let at = match last_secs {
        Some(t) => format!("after {packets} packets (last at {t:.3} s)"),
        None => format!("after {packets} packets"),
    };
    match e {
        ff::Error::InvalidData | ff::Error::Eof => {
            MediaError::truncated(path, format!("container data ends or breaks off {at}: {e}"))
        }
        ff::Error::Other { errno } => errno_error(path, errno, &format!("reading packet {at}")),
        other => MediaError::corrupt(path, format!("reading packet {at}: {other}")),
    }
}

/// The demuxer flags a packet it could only read in part (the file ends
/// inside it) as corrupt; decoding it would silently lose data.
fn incomplete_packet(path: &Path, n: usize, secs: Option<f64>) -> MediaError {
    MediaError::truncated(
        path,
        match secs {
            Some(t) => format!(
                "packet {n} (at {t:.3} s) is incomplete: the file is cut short or damaged there"
            ),
            None => format!("packet {n} is incomplete: the file is cut short or damaged there"),
        },
    )
}

fn is_eagain(e: &ff::Error) -> bool {
    matches!(e, ff::Error::Other { errno } if *errno == ff::util::error::EAGAIN)
}

// ---------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------

/// Collects decoded audio as packed `f32` at the stream's own rate. The
/// converter (swresample, format only) is built from the first decoded frame,
/// not from the codec parameters, whose layout or format can differ from what
/// the decoder actually outputs.
struct AudioSink<'a> {
    path: &'a Path,
    max_frames: &'a dyn Fn(u32) -> Option<usize>,
    swr: Option<(
        (ff::format::Sample, ff::ChannelLayout, u32),
        ff::software::resampling::Context,
    )>,
    rate: Option<u32>,
    channels: Option<u16>,
    cap: Option<usize>,
    samples: Vec<f32>,
}

impl AudioSink<'_> {
    fn full(&self) -> bool {
        self.cap.is_some_and(|c| self.samples.len() >= c)
    }

    fn push(&mut self, frame: &mut frame::Audio) -> Result<(), MediaError> {
        let rate = frame.rate();
        let ch = frame.channels();
        if rate == 0 || ch == 0 {
            return Err(MediaError::corrupt(
                self.path,
                format!("decoder produced a frame with {ch} channels at {rate} Hz"),
            ));
        }
        if frame.samples() == 0 {
            return Ok(());
        }
        // Some decoders leave the layout unset; swresample needs one, and it
        // must be the same on the frame as in the converter.
        if frame.channel_layout().bits() == 0 {
            frame.set_channel_layout(ff::ChannelLayout::default(i32::from(ch)));
        }
        let layout = frame.channel_layout();
        let key = (frame.format(), layout, rate);
        if let (Some(r), Some(c)) = (self.rate, self.channels)
            && (r != rate || c != ch)
        {
            return Err(MediaError::unsupported(
                self.path,
                format!("audio changes from {r} Hz x {c} to {rate} Hz x {ch} mid-stream"),
            ));
        }
        if self.swr.as_ref().is_none_or(|(k, _)| *k != key) {
            let swr = ff::software::resampling::Context::get(
                frame.format(),
                layout,
                rate,
                ff::format::Sample::F32(ff::format::sample::Type::Packed),
                layout,
                rate,
            )
            .map_err(|e| MediaError::Conversion {
                path: self.path.to_path_buf(),
                detail: format!("swresample setup: {e}"),
            })?;
            self.swr = Some((key, swr));
            self.rate = Some(rate);
            self.channels = Some(ch);
            self.cap = (self.max_frames)(rate).map(|f| f * usize::from(ch));
        }
        let (_, swr) = self.swr.as_mut().expect("converter built above");
        let mut out = frame::Audio::empty();
        swr.run(frame, &mut out)
            .map_err(|e| MediaError::Conversion {
                path: self.path.to_path_buf(),
                detail: format!("swresample: {e}"),
            })?;
        let n = out.samples() * usize::from(ch);
        if n == 0 {
            return Ok(());
        }
        let bytes = &out.data(0)[..n * 4];
        self.samples.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        );
        if let Some(c) = self.cap {
            self.samples.truncate(c);
        }
        Ok(())
    }
}

/// Decodes the best audio stream of any file FFmpeg reads, at its own rate
/// and channel count.
pub(crate) fn decode_audio(
    path: &Path,
    max_frames: &dyn Fn(u32) -> Option<usize>,
) -> Result<Audio, MediaError> {
    let mut ictx = open_input(path)?;
    let (index, params, declared_duration) = {
        let stream = ictx
            .streams()
            .best(MediaType::Audio)
            .ok_or_else(|| MediaError::NoStream {
                path: path.to_path_buf(),
                kind: "audio",
            })?;
        (
            stream.index(),
            stream.parameters(),
            stream_duration(&stream),
        )
    };
    let codec = codec_name(params.id());
    let mut decoder = ff::codec::Context::from_parameters(params)
        .and_then(|c| c.decoder().audio())
        .map_err(|e| decoder_error(path, &codec, e))?;

    let mut sink = AudioSink {
        path,
        max_frames,
        swr: None,
        rate: None,
        channels: None,
        cap: None,
        samples: Vec::new(),
    };
    let mut frame = frame::Audio::empty();
    let mut packets = 0usize;
    let mut last_pts: Option<f64> = None;
    let tb = ictx
        .stream(index)
        .map(|s| s.time_base())
        .unwrap_or(ff::Rational(1, 1));

    let drain = |decoder: &mut ff::decoder::Audio,
                 sink: &mut AudioSink,
                 frame: &mut frame::Audio|
     -> Result<(), MediaError> {
        loop {
            match decoder.receive_frame(frame) {
                Ok(()) => {
                    sink.push(frame)?;
                    if sink.full() {
                        return Ok(());
                    }
                }
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) if is_eagain(&e) => return Ok(()),
                Err(e) => {
                    return Err(MediaError::corrupt(
                        sink.path,
                        format!("decoding `{codec}` audio: {e}"),
                    ));
                }
            }
        }
    };

    let mut packet = Packet::empty();
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => return Err(read_error(path, e, packets, last_pts)),
        }
        if packet.stream() != index {
            continue;
        }
        packets += 1;
        if let Some(p) = packet.pts() {
            last_pts = Some(secs(p, tb));
        }
        if packet.is_corrupt() {
            return Err(incomplete_packet(path, packets, last_pts));
        }
        decoder.send_packet(&packet).map_err(|e| {
            MediaError::corrupt(path, format!("decoding audio packet {packets}: {e}"))
        })?;
        drain(&mut decoder, &mut sink, &mut frame)?;
        if sink.full() {
            break;
        }
    }
    if !sink.full() {
        // End of input: flush the decoder's delayed frames.
        decoder
            .send_eof()
            .map_err(|e| MediaError::corrupt(path, format!("flushing audio decoder: {e}")))?;
        drain(&mut decoder, &mut sink, &mut frame)?;
    }

    let (Some(rate), Some(channels)) = (sink.rate, sink.channels) else {
        return Err(MediaError::corrupt(path, "no decodable audio frame"));
    };
    let capped = sink.full();
    let got = sink.samples.len() / usize::from(channels);
    // The stream's declared duration is the one promise we can hold the data
    // to: ending well short of it (more than 100 ms and 5 %) is truncation.
    if !capped && let Some(d) = declared_duration {
        let got_secs = got as f64 / f64::from(rate);
        if d - got_secs > 0.1_f64.max(0.05 * d) {
            return Err(MediaError::truncated(
                path,
                format!("audio stream declares {d:.3} s, decoding ends after {got_secs:.3} s"),
            ));
        }
    }
    Ok(Audio {
        samples: sink.samples,
        sample_rate: rate,
        channels,
    })
}

// ---------------------------------------------------------------------------
// Video
// ---------------------------------------------------------------------------

/// A video decoder that yields frames in presentation order and can seek.
struct VideoReader<'a> {
    path: &'a Path,
    ictx: Input,
    index: usize,
    codec: String,
    decoder: ff::decoder::Video,
    tb: ff::Rational,
    start: f64,
    fps: f64,
    input_done: bool,
    eof_sent: bool,
    packets: usize,
    last_packet_secs: Option<f64>,
    /// End (pts + duration) of the latest packet of the stream read so far.
    packets_end: Option<f64>,
    /// The stream's own declared duration, checked against `packets_end`
    /// when the demuxer reports end of file.
    declared_duration: Option<f64>,
    /// Timestamp of the previous decoded frame (for streams without one).
    prev_ts: Option<f64>,
    /// Keyframe tracking for the seek heuristic: the last keyframe seen while
    /// decoding continuously, and the largest distance between two keyframes
    /// seen in one continuous run.
    last_key: Option<f64>,
    max_key_gap: Option<f64>,
    stats: DecodeStats,
    resize: Option<(u32, u32)>,
    scaler: Option<(
        (ff::format::Pixel, u32, u32),
        ff::software::scaling::Context,
    )>,
}

/// A decoded frame and its presentation time (seconds from stream start).
struct Decoded {
    ts: f64,
    frame: frame::Video,
}

impl<'a> VideoReader<'a> {
    fn open(path: &'a Path, resize: Option<(u32, u32)>) -> Result<Self, MediaError> {
        let ictx = open_input(path)?;
        let (index, params, tb, start, fps, declared_duration) = {
            let stream =
                ictx.streams()
                    .best(MediaType::Video)
                    .ok_or_else(|| MediaError::NoStream {
                        path: path.to_path_buf(),
                        kind: "video",
                    })?;
            (
                stream.index(),
                stream.parameters(),
                stream.time_base(),
                stream_start(&stream),
                stream_fps(&stream).unwrap_or(0.0),
                declared_video_duration(&ictx, &stream),
            )
        };
        let codec = codec_name(params.id());
        let mut ctx = ff::codec::Context::from_parameters(params)
            .map_err(|e| decoder_error(path, &codec, e))?;
        // Let FFmpeg pick the thread count (frame + slice threading).
        ctx.set_threading(ff::codec::threading::Config {
            kind: ff::codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| decoder_error(path, &codec, e))?;
        Ok(VideoReader {
            path,
            ictx,
            index,
            codec,
            decoder,
            tb,
            start,
            fps,
            input_done: false,
            eof_sent: false,
            packets: 0,
            last_packet_secs: None,
            packets_end: None,
            declared_duration,
            prev_ts: None,
            last_key: None,
            max_key_gap: None,
            stats: DecodeStats::default(),
            resize,
            scaler: None,
        })
    }

    fn frame_interval(&self) -> f64 {
        if self.fps > 0.0 { 1.0 / self.fps } else { 0.04 }
    }

    /// The next frame in presentation order, or `None` at end of stream.
    fn next(&mut self) -> Result<Option<Decoded>, MediaError> {
        loop {
            let mut frame = frame::Video::empty();
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    self.stats.frames_decoded += 1;
                    let ts = match frame.timestamp().or(frame.pts()) {
                        Some(t) => secs(t, self.tb) - self.start,
                        None => self.prev_ts.map_or(0.0, |p| p + self.frame_interval()),
                    };
                    self.prev_ts = Some(ts);
                    if frame.is_key() {
                        if let Some(prev) = self.last_key
                            && ts > prev
                        {
                            let gap = ts - prev;
                            self.max_key_gap = Some(self.max_key_gap.map_or(gap, |g| g.max(gap)));
                        }
                        self.last_key = Some(ts);
                    } else if self.last_key.is_none() {
                        // First frame after a seek or start: treat as the
                        // landing point even if the decoder did not flag it.
                        self.last_key = Some(ts);
                    }
                    return Ok(Some(Decoded { ts, frame }));
                }
                Err(ff::Error::Eof) => return Ok(None),
                Err(e) if is_eagain(&e) => {}
                Err(e) => {
                    return Err(MediaError::corrupt(
                        self.path,
                        format!("decoding `{}` video: {e}", self.codec),
                    ));
                }
            }
            // The decoder wants input.
            if self.input_done {
                if self.eof_sent {
                    return Ok(None);
                }
                self.decoder.send_eof().map_err(|e| {
                    MediaError::corrupt(self.path, format!("flushing video decoder: {e}"))
                })?;
                self.eof_sent = true;
                continue;
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {}
                Err(ff::Error::Eof) => {
                    self.input_done = true;
                    self.check_complete()?;
                    continue;
                }
                Err(e) => {
                    return Err(read_error(
                        self.path,
                        e,
                        self.packets,
                        self.last_packet_secs,
                    ));
                }
            }
            if packet.stream() != self.index {
                continue;
            }
            self.packets += 1;
            if let Some(p) = packet.pts() {
                let t = secs(p, self.tb) - self.start;
                let dur = if packet.duration() > 0 {
                    secs(packet.duration(), self.tb)
                } else {
                    self.frame_interval()
                };
                self.last_packet_secs = Some(t);
                self.packets_end = Some(self.packets_end.map_or(t + dur, |e| e.max(t + dur)));
            }
            if packet.is_corrupt() {
                return Err(incomplete_packet(
                    self.path,
                    self.packets,
                    self.last_packet_secs,
                ));
            }
            self.decoder.send_packet(&packet).map_err(|e| {
                MediaError::corrupt(
                    self.path,
                    format!(
                        "decoding `{}` video packet {}: {e}",
                        self.codec, self.packets
                    ),
                )
            })?;
        }
    }

    /// At end of file: the stream's packets must reach its declared
    /// duration (within a frame and a half), else the file was cut short.
    fn check_complete(&self) -> Result<(), MediaError> {
        let Some(d) = self.declared_duration else {
            return Ok(());
        };
        let end = self.packets_end.unwrap_or(0.0);
        if end + 1.5 * self.frame_interval() < d {
            let read = match self.packets_end {
                Some(_) => format!("the last packet read ends at {end:.3} s"),
                None => "no packet of it could be read".to_string(),
            };
            return Err(MediaError::truncated(
                self.path,
                format!("video stream declares {d:.3} s, but the file ends early: {read}"),
            ));
        }
        Ok(())
    }

    /// Seeks to the last keyframe at or before `t` (seconds from stream
    /// start). Returns false (and changes nothing) if the container cannot.
    fn seek(&mut self, t: f64) -> bool {
        let ts = ((self.start + t.max(0.0)) * AV_TIME_BASE) as i64;
        if self.ictx.seek(ts, ..ts).is_err() {
            return false;
        }
        self.decoder.flush();
        self.input_done = false;
        self.eof_sent = false;
        self.prev_ts = None;
        self.last_key = None;
        self.stats.seeks += 1;
        true
    }

    /// Whether to seek to reach `target` from the frame at `pos` rather than
    /// decode forward (see `load_video_with` for the reasoning).
    fn should_seek(&self, pos: Option<f64>, target: f64) -> bool {
        let Some(pos) = pos else {
            // Nothing decoded yet: the keyframe before the target is never
            // before the start, so seeking cannot cost more.
            return target > self.frame_interval();
        };
        let ahead = target - pos;
        if ahead <= self.frame_interval() {
            return false;
        }
        let last_key = self.last_key.unwrap_or(pos);
        match self.max_key_gap {
            // Known keyframe spacing: a keyframe is expected at or before
            // the target only if the target is a full gap past the last one.
            Some(gap) => target >= last_key + gap,
            // Unknown spacing: gamble on a seek only when the distance still
            // to decode exceeds what a fruitless seek (landing back on the
            // last keyframe) would waste.
            None => ahead > pos - last_key,
        }
    }

    fn convert_rgb(&mut self, f: &frame::Video) -> Result<Frame, MediaError> {
        let (sw, sh) = (f.width(), f.height());
        if sw == 0 || sh == 0 {
            return Err(MediaError::corrupt(
                self.path,
                "decoder produced an empty picture",
            ));
        }
        let (w, h) = self.resize.unwrap_or((sw, sh));
        let key = (f.format(), sw, sh);
        if self.scaler.as_ref().is_none_or(|(k, _)| *k != key) {
            let ctx = ff::software::scaling::Context::get(
                f.format(),
                sw,
                sh,
                ff::format::Pixel::RGB24,
                w,
                h,
                ff::software::scaling::Flags::BILINEAR,
            )
            .map_err(|e| {
                MediaError::unsupported(
                    self.path,
                    format!("cannot convert {:?} {sw}x{sh} to RGB: {e}", f.format()),
                )
            })?;
            self.scaler = Some((key, ctx));
        }
        let (_, scaler) = self.scaler.as_mut().expect("scaler built above");
        let mut out = frame::Video::empty();
        scaler
            .run(f, &mut out)
            .map_err(|e| MediaError::Conversion {
                path: self.path.to_path_buf(),
                detail: format!("swscale: {e}"),
            })?;
        let row = w as usize * 3;
        let stride = out.stride(0);
        let data = out.data(0);
        let mut rgb = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            rgb.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Ok(Frame {
            width: w,
            height: h,
            rgb,
        })
    }
}

/// Collects selected frames, honouring `max_frames`.
struct Picked {
    video: Video,
    cap: usize,
}

impl Picked {
    fn full(&self) -> bool {
        self.video.frames.len() >= self.cap
    }
}

pub(crate) fn decode_video(
    path: &Path,
    opts: &VideoOptions,
) -> Result<(Video, DecodeStats), MediaError> {
    let mut r = VideoReader::open(path, opts.resize)?;
    let mut picked = Picked {
        video: Video {
            frames: Vec::new(),
            fps: r.fps,
            timestamps: Vec::new(),
        },
        cap: opts.max_frames.unwrap_or(usize::MAX),
    };
    match opts.selection {
        FrameSelection::All => sequential(&mut r, &mut picked, 1)?,
        FrameSelection::EveryKth(k) => sequential(&mut r, &mut picked, k)?,
        FrameSelection::Uniform(n) => {
            // The stream's own duration, else the container's, else the end
            // of the stream's packets found by demuxing (no decoding).
            let duration = match r.declared_duration.or_else(|| container_duration(&r.ictx)) {
                Some(d) => d,
                None => scan_duration(path)?,
            };
            let targets: Vec<f64> = (0..n).map(|i| i as f64 * duration / n as f64).collect();
            by_targets(&mut r, &mut picked, &targets)?
        }
        FrameSelection::Window {
            start_secs,
            end_secs,
            every_kth,
        } => window(&mut r, &mut picked, start_secs, end_secs, every_kth)?,
    }
    Ok((picked.video, r.stats))
}

/// `All` / `EveryKth(k)`: decode front to back, keep frames `0, k, 2k, …`.
fn sequential(r: &mut VideoReader, picked: &mut Picked, k: usize) -> Result<(), MediaError> {
    let mut i = 0u64;
    while !picked.full() {
        let Some(d) = r.next()? else {
            if i == 0 {
                return Err(MediaError::corrupt(r.path, "no decodable video frame"));
            }
            return Ok(());
        };
        if i.is_multiple_of(k as u64) {
            let f = r.convert_rgb(&d.frame)?;
            picked.video.frames.push(f);
            picked.video.timestamps.push(d.ts);
        }
        i += 1;
    }
    Ok(())
}

/// When the container states no duration: demux (without decoding) to find
/// the end of the video stream.
fn scan_duration(path: &Path) -> Result<f64, MediaError> {
    let mut ictx = open_input(path)?;
    let (index, tb, start) = {
        let s = ictx
            .streams()
            .best(MediaType::Video)
            .ok_or_else(|| MediaError::NoStream {
                path: path.to_path_buf(),
                kind: "video",
            })?;
        (s.index(), s.time_base(), stream_start(&s))
    };
    let mut end: f64 = 0.0;
    let mut packets = 0;
    let mut packet = Packet::empty();
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => return Err(read_error(path, e, packets, Some(end))),
        }
        if packet.stream() != index {
            continue;
        }
        packets += 1;
        if let Some(p) = packet.pts() {
            end = end.max(secs(p + packet.duration().max(0), tb) - start);
        }
    }
    if packets == 0 {
        return Err(MediaError::corrupt(path, "video stream has no packets"));
    }
    Ok(end)
}

/// `Uniform`: for each target time take the first frame at or after it (less
/// half a frame), seeking when that is cheaper than decoding forward.
///
/// A target past the last frame takes the last frame: a stream that ends
/// before its own declared duration has already failed as truncated in
/// `VideoReader::next`, so this only happens when the duration came from the
/// container (which spans all streams) or is rounded up.
fn by_targets(r: &mut VideoReader, picked: &mut Picked, targets: &[f64]) -> Result<(), MediaError> {
    let tol = 0.5 * r.frame_interval() + 1e-6;
    // The most recent decoded frame, with its RGB once converted.
    let mut current: Option<(Decoded, Option<Frame>)> = None;
    let mut at_end = false;
    for &t in targets {
        if picked.full() {
            break;
        }
        let satisfied = at_end || current.as_ref().is_some_and(|(d, _)| d.ts >= t - tol);
        if !satisfied {
            let pos = current.as_ref().map(|(d, _)| d.ts);
            if r.should_seek(pos, t) {
                // If the container cannot seek, decoding simply goes on.
                r.seek(t);
            }
            loop {
                match r.next()? {
                    Some(d) => {
                        let done = d.ts >= t - tol;
                        current = Some((d, None));
                        if done {
                            break;
                        }
                    }
                    None => {
                        at_end = true;
                        break;
                    }
                }
            }
        }
        let Some((d, rgb)) = current.as_mut() else {
            return Err(MediaError::corrupt(r.path, "no decodable video frame"));
        };
        if rgb.is_none() {
            *rgb = Some(r.convert_rgb(&d.frame)?);
        }
        picked
            .video
            .frames
            .push(rgb.clone().expect("converted above"));
        picked.video.timestamps.push(d.ts);
    }
    Ok(())
}

/// `Window`: seek to the start, then decode forward to the end.
fn window(
    r: &mut VideoReader,
    picked: &mut Picked,
    start: f64,
    end: f64,
    every_kth: usize,
) -> Result<(), MediaError> {
    let eps = 1e-6;
    if r.should_seek(None, start) {
        r.seek(start);
    }
    let mut i = 0usize;
    while !picked.full() {
        // End of stream inside the window is the clip's real end: a stream
        // cut short of its declared duration fails in `VideoReader::next`.
        let Some(d) = r.next()? else {
            return Ok(());
        };
        if d.ts >= end - eps {
            break;
        }
        if d.ts < start - eps {
            continue;
        }
        if i.is_multiple_of(every_kth) {
            let f = r.convert_rgb(&d.frame)?;
            picked.video.frames.push(f);
            picked.video.timestamps.push(d.ts);
        }
        i += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Probe
// ---------------------------------------------------------------------------

pub(crate) fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    let ictx = open_input(path)?;
    let mut streams = Vec::new();
    for s in ictx.streams() {
        let params = s.parameters();
        let kind = match params.medium() {
            MediaType::Audio => StreamKind::Audio,
            MediaType::Video => StreamKind::Video,
            MediaType::Subtitle => StreamKind::Subtitle,
            _ => StreamKind::Other,
        };
        let mut info = StreamInfo::new(s.index(), kind, codec_name(params.id()));
        info.duration_secs = stream_duration(&s);
        let n = s.frames();
        info.frames = (n > 0).then_some(n as u64);
        match kind {
            StreamKind::Audio => {
                if let Ok(dec) =
                    ff::codec::Context::from_parameters(params).and_then(|c| c.decoder().audio())
                {
                    info.sample_rate = (dec.rate() > 0).then_some(dec.rate());
                    info.channels = (dec.channels() > 0).then_some(dec.channels());
                }
            }
            StreamKind::Video => {
                if let Ok(dec) =
                    ff::codec::Context::from_parameters(params).and_then(|c| c.decoder().video())
                {
                    info.width = (dec.width() > 0).then_some(dec.width());
                    info.height = (dec.height() > 0).then_some(dec.height());
                }
                info.fps = stream_fps(&s);
            }
            _ => {}
        }
        streams.push(info);
    }
    Ok(MediaInfo {
        container: ictx.format().name().to_string(),
        duration_secs: container_duration(&ictx),
        streams,
    })
}
