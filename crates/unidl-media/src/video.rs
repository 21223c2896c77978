//! Decoded video frames, which frames to take, and the loading entry points.

use std::path::Path;

use crate::MediaError;

/// One decoded picture as packed 8-bit RGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height` rows of `width * 3` bytes (R, G, B), no padding.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The `(r, g, b)` value at column `x`, row `y`. Panics out of range.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(x < self.width && y < self.height, "pixel out of range");
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// The frames taken from a clip, with their presentation times.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    /// The selected frames, in presentation order (a frame may repeat when
    /// [`FrameSelection::Uniform`] asks for more frames than the clip has).
    pub frames: Vec<Frame>,
    /// The stream's nominal frame rate (frames per second), 0 if unknown.
    pub fps: f64,
    /// Presentation time of each frame in seconds from the stream's start,
    /// parallel to `frames`.
    pub timestamps: Vec<f64>,
}

/// Which frames [`load_video`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameSelection {
    /// Every frame.
    All,
    /// Frames `0, k, 2k, …` (in presentation order); the whole stream is
    /// decoded, only the kept frames are converted to RGB.
    EveryKth(usize),
    /// `N` frames evenly spaced over the clip: for a clip of duration `D`,
    /// frame `i` is the one shown at `t_i = i * D / N` (the first frame whose
    /// timestamp is at least `t_i` minus half a frame interval). For a
    /// 20-frame 10 fps clip, `Uniform(4)` gives the frames at 0.0, 0.5, 1.0
    /// and 1.5 s. Decoded by seeking, see [`load_video`].
    Uniform(usize),
    /// The frames whose timestamps lie in `[start_secs, end_secs)`, keeping
    /// every `every_kth` of them (1 keeps all). `end_secs` may be
    /// `f64::INFINITY` for "to the end". Decoding starts from the keyframe
    /// before `start_secs` and stops at `end_secs`.
    Window {
        /// Start of the window, seconds (inclusive).
        start_secs: f64,
        /// End of the window, seconds (exclusive).
        end_secs: f64,
        /// Keep one frame in this many (at least 1).
        every_kth: usize,
    },
}

impl FrameSelection {
    /// Checks the selection: `k`, `N` and `every_kth` must be at least 1; a
    /// window must have `0 <= start_secs < end_secs` with a finite start.
    pub fn validate(&self) -> Result<(), MediaError> {
        match *self {
            FrameSelection::All => Ok(()),
            FrameSelection::EveryKth(0) => Err(MediaError::InvalidOptions(
                "FrameSelection::EveryKth needs k >= 1".into(),
            )),
            FrameSelection::Uniform(0) => Err(MediaError::InvalidOptions(
                "FrameSelection::Uniform needs N >= 1".into(),
            )),
            FrameSelection::EveryKth(_) | FrameSelection::Uniform(_) => Ok(()),
            FrameSelection::Window {
                start_secs,
                end_secs,
                every_kth,
            } => {
                if every_kth == 0 {
                    return Err(MediaError::InvalidOptions(
                        "FrameSelection::Window needs every_kth >= 1".into(),
                    ));
                }
                if !(start_secs.is_finite() && start_secs >= 0.0) {
                    return Err(MediaError::InvalidOptions(format!(
                        "FrameSelection::Window start_secs must be finite and >= 0, got {start_secs}"
                    )));
                }
                if end_secs.is_nan() || end_secs <= start_secs {
                    return Err(MediaError::InvalidOptions(format!(
                        "FrameSelection::Window end_secs ({end_secs}) must be greater than start_secs ({start_secs})"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// Largest edge accepted for [`VideoOptions::resize`].
pub const MAX_EDGE: u32 = 16_384;

/// Full options for [`load_video_with`]: the selection plus a frame cap and
/// an optional resize.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOptions {
    /// Which frames to take.
    pub selection: FrameSelection,
    /// Return at most this many frames; decoding stops once they are taken.
    pub max_frames: Option<usize>,
    /// Scale every returned frame to `(width, height)` (bilinear, by
    /// swscale, in the same pass as the RGB conversion). `None` keeps the
    /// decoded size.
    pub resize: Option<(u32, u32)>,
}

impl From<FrameSelection> for VideoOptions {
    fn from(selection: FrameSelection) -> Self {
        VideoOptions {
            selection,
            max_frames: None,
            resize: None,
        }
    }
}

impl VideoOptions {
    /// Sets [`VideoOptions::max_frames`].
    pub fn max_frames(mut self, n: usize) -> Self {
        self.max_frames = Some(n);
        self
    }

    /// Sets [`VideoOptions::resize`].
    pub fn resize(mut self, width: u32, height: u32) -> Self {
        self.resize = Some((width, height));
        self
    }

    /// Checks the selection, `max_frames >= 1`, and a resize within
    /// `1..=16384` on each edge.
    pub fn validate(&self) -> Result<(), MediaError> {
        self.selection.validate()?;
        if self.max_frames == Some(0) {
            return Err(MediaError::InvalidOptions(
                "VideoOptions::max_frames must be >= 1".into(),
            ));
        }
        if let Some((w, h)) = self.resize
            && (w == 0 || h == 0 || w > MAX_EDGE || h > MAX_EDGE)
        {
            return Err(MediaError::InvalidOptions(format!(
                "VideoOptions::resize must be within 1..={MAX_EDGE} on each edge, got {w}x{h}"
            )));
        }
        Ok(())
    }
}

/// What decoding cost: returned by [`load_video_with_stats`] to show how much
/// of a clip was actually decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames the decoder produced (selected or not).
    pub frames_decoded: usize,
    /// Seeks performed.
    pub seeks: usize,
}

/// Decodes the frames `sel` picks from the best video stream of a file, as
/// RGB. Same as [`load_video_with`] with no frame cap and no resize.
///
/// Needs the `ffmpeg` feature; without it every call returns
/// [`MediaError::FeatureDisabled`] (after the not-found / empty checks).
pub fn load_video(path: impl AsRef<Path>, sel: &FrameSelection) -> Result<Video, MediaError> {
    load_video_with(path, &VideoOptions::from(sel.clone()))
}

/// Decodes frames from the best video stream of a file with FFmpeg
/// (H.264, H.265, AV1 through libdav1d or libaom, VP9, MPEG-4… in mp4, mov,
/// mkv, webm, avi…), converting each kept frame to packed RGB with swscale.
///
/// # How frames are found without decoding the whole clip
/// `All` and `EveryKth` decode the stream front to back (stopping early once
/// `max_frames` are taken). `Uniform(N)` and `Window` work from target
/// timestamps instead: for each target the demuxer seeks to the last keyframe
/// at or before it (`avformat_seek_file` with `max_ts = target`), the decoder
/// is flushed and then decodes forward, dropping frames until the first one at
/// the target. When the next target lies within one keyframe interval of the
/// current position (learnt from the keyframes seen so far) decoding simply
/// continues instead of seeking back. So taking 16 frames from a 10-minute
/// clip decodes about 16 keyframe intervals, not the clip; a clip with a
/// single keyframe, or a container that cannot seek, falls back to decoding
/// forward. [`load_video_with_stats`] reports the frames decoded and seeks.
///
/// # Errors
/// All name the file: [`MediaError::NotFound`], [`MediaError::Empty`],
/// [`MediaError::Corrupt`] (unreadable container, undecodable packet),
/// [`MediaError::Truncated`] (the file ends before the frames its index or
/// header promise), [`MediaError::NoStream`], [`MediaError::Unsupported`]
/// (no decoder for the codec), [`MediaError::FeatureDisabled`]; bad options
/// give [`MediaError::InvalidOptions`].
pub fn load_video_with(path: impl AsRef<Path>, opts: &VideoOptions) -> Result<Video, MediaError> {
    load_video_with_stats(path, opts).map(|(v, _)| v)
}

/// [`load_video_with`], also returning what the decode cost.
pub fn load_video_with_stats(
    path: impl AsRef<Path>,
    opts: &VideoOptions,
) -> Result<(Video, DecodeStats), MediaError> {
    let path = path.as_ref();
    opts.validate()?;
    crate::source::inspect(path)?;
    decode(path, opts)
}

#[cfg(feature = "ffmpeg")]
fn decode(path: &Path, opts: &VideoOptions) -> Result<(Video, DecodeStats), MediaError> {
    crate::ffmpeg::decode_video(path, opts)
}

#[cfg(not(feature = "ffmpeg"))]
fn decode(path: &Path, _opts: &VideoOptions) -> Result<(Video, DecodeStats), MediaError> {
    Err(MediaError::feature_disabled(path))
}
