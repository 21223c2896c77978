//! Video classification folders (`format = "video_folder"`):
//! `root/<class>/<clip>.{mp4,mkv,avi,mov,webm}`, decoded with `unidl-media`.

use std::path::{Path, PathBuf};

use unidl_media::{FrameSelection, VideoOptions, load_video_with};

use super::Dataset;
use super::audio::media_error;
use super::rows::class_folders;
use crate::error::{DataError, Result};
use crate::sample::{Image, Input, Sample};

/// Extensions of the clips a video folder lists.
pub const VIDEO_EXT: [&str; 5] = ["mp4", "mkv", "avi", "mov", "webm"];

/// Labelled clips, decoded lazily. Per sample: input `video` =
/// [`Input::Video`]`(frames, fps)` with `frames` RGB frames evenly spaced over
/// the clip ([`FrameSelection::Uniform`]; a short clip repeats frames), each
/// optionally resized to `[height, width]`, and `targets.label` = the class
/// folder's index (sorted names). `fps` is the rate of the returned frames,
/// from their timestamps (the stream's nominal rate when they share one).
///
/// Decoding needs the `ffmpeg` feature; without it a sample is
/// [`DataError::Corrupt`] naming the clip and the missing feature.
#[derive(Debug, Clone)]
pub struct VideoFolder {
    items: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
    opts: VideoOptions,
}

/// The decoding options for `frames` clips of `size` (checked).
fn clip_options(frames: usize, size: Option<[usize; 2]>) -> Result<VideoOptions> {
    if frames == 0 {
        return Err(DataError::config("frames", "must be at least 1"));
    }
    let mut opts = VideoOptions::from(FrameSelection::Uniform(frames));
    if let Some([h, w]) = size {
        let edge = unidl_media::MAX_EDGE as usize;
        if h == 0 || w == 0 || h > edge || w > edge {
            return Err(DataError::config(
                "frame_size",
                format!("[{h}, {w}] must be within 1..={edge} on each edge"),
            ));
        }
        opts = opts.resize(w as u32, h as u32);
    }
    Ok(opts)
}

/// One clip as an unlabelled sample, decoded as [`VideoFolder`] decodes
/// its clips (`unidl infer clip.mp4`): input `video` = `frames` RGB frames
/// evenly spaced over the clip, each resized to `size` = `[height, width]`
/// when given.
pub fn load_clip(path: &Path, frames: usize, size: Option<[usize; 2]>) -> Result<Sample> {
    decode_clip(path, &clip_options(frames, size)?)
}

fn decode_clip(path: &Path, opts: &VideoOptions) -> Result<Sample> {
    let v = load_video_with(path, opts).map_err(|e| media_error(path, e))?;
    let frames: Vec<Image> = v
        .frames
        .iter()
        .map(|f| Image {
            width: f.width as usize,
            height: f.height as usize,
            channels: 3,
            data: f.rgb.iter().map(|&b| f32::from(b) / 255.0).collect(),
        })
        .collect();
    let fps = match (v.timestamps.first(), v.timestamps.last()) {
        (Some(a), Some(b)) if b > a => (v.timestamps.len() - 1) as f64 / (b - a),
        _ => v.fps,
    };
    let mut s = Sample {
        source: path.display().to_string(),
        ..Sample::default()
    };
    s.inputs.insert("video".into(), Input::Video(frames, fps));
    Ok(s)
}

impl VideoFolder {
    /// Lists `root/<class>/<clip>`; `frames` (>= 1) per clip, `size` =
    /// `[height, width]` of every frame (each in `1..=16384`).
    pub fn open(root: &Path, frames: usize, size: Option<[usize; 2]>) -> Result<Self> {
        let opts = clip_options(frames, size)?;
        let (classes, items) = class_folders(root, &VIDEO_EXT)?;
        Ok(VideoFolder {
            items,
            classes,
            opts,
        })
    }
}

impl Dataset for VideoFolder {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (path, label) = self.items.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.items.len(),
        })?;
        let mut s = decode_clip(path, &self.opts)?;
        s.targets.label = Some(*label);
        Ok(s)
    }

    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn source(&self, index: usize) -> Option<String> {
        self.items.get(index).map(|(p, _)| p.display().to_string())
    }
}
