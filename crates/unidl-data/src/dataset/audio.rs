//! Speech and sound manifests (`format = "audio_manifest"`): JSON lines
//! `{"path", "transcript", "label"?, "speaker"?}` or CSV `path,transcript[,label][,speaker]`.

use std::path::{Path, PathBuf};

use unidl_media::{AudioOptions, MediaError, load_audio};

use super::Dataset;
use super::rows::{base_dir, index_labels, read_rows, resolve};
use crate::error::{DataError, Result};
use crate::sample::{Audio, Input, Sample};

#[derive(Debug, Clone)]
struct Utterance {
    path: PathBuf,
    transcript: String,
    label: Option<usize>,
    speaker: Option<String>,
}

/// How an [`AudioManifest`] decodes its files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioLoad {
    /// Resample to this rate (Hz) at load; `None` keeps each file's rate.
    pub sample_rate: Option<u32>,
    /// Downmix (1) or widen a mono file to this many channels; `None` keeps them.
    pub channels: Option<u16>,
    /// Longest accepted clip in seconds: a longer one is [`DataError::Invalid`]
    /// naming the file.
    pub max_duration: Option<f64>,
}

/// Audio files listed in a manifest (paths relative to it), decoded lazily
/// with `unidl-media` (WAV and MP3 always; other formats with the `ffmpeg`
/// feature).
///
/// Per sample: input `audio` ([`Input::Audio`]), `targets.text` = the
/// transcript, `targets.label` when the manifest has labels (class indices as
/// in image manifests: integers as given, names numbered in sorted order),
/// `targets.speaker` when given.
#[derive(Debug, Clone)]
pub struct AudioManifest {
    items: Vec<Utterance>,
    classes: Vec<String>,
    load: AudioLoad,
}

impl AudioManifest {
    /// Reads the manifest (a row without `path` or `transcript` is
    /// [`DataError::Parse`] with its line; labels must be on every row or none).
    pub fn open(manifest: &Path, load: AudioLoad) -> Result<Self> {
        if let Some(r) = load.sample_rate
            && r == 0
        {
            return Err(DataError::config("sample_rate", "must be at least 1 Hz"));
        }
        if let Some(c) = load.channels
            && c == 0
        {
            return Err(DataError::config("audio_channels", "must be at least 1"));
        }
        if let Some(d) = load.max_duration
            && !(d.is_finite() && d > 0.0)
        {
            return Err(DataError::config(
                "max_duration",
                format!("{d} must be a positive number of seconds"),
            ));
        }
        let base = base_dir(manifest);
        let rows = read_rows(manifest)?;
        let labelled = rows.iter().filter(|r| r.opt("label").is_some()).count();
        if labelled != 0 && labelled != rows.len() {
            let r = rows.iter().find(|r| r.opt("label").is_none());
            return Err(DataError::Parse {
                path: manifest.to_path_buf(),
                line: r.map(|r| r.line),
                reason: "`label` is missing here but given on other rows".into(),
            });
        }
        let mut items = Vec::with_capacity(rows.len());
        let mut labels = Vec::new();
        for r in &rows {
            items.push(Utterance {
                path: resolve(&base, &r.get("path", manifest)?),
                transcript: r.get("transcript", manifest)?,
                label: None,
                speaker: r.opt("speaker"),
            });
            if let Some(l) = r.opt("label") {
                labels.push(l);
            }
        }
        let mut classes = Vec::new();
        if labelled != 0 {
            let (c, ids) = index_labels(&labels, manifest)?;
            classes = c;
            for (item, id) in items.iter_mut().zip(ids) {
                item.label = Some(id);
            }
        }
        Ok(AudioManifest {
            items,
            classes,
            load,
        })
    }
}

/// A media error as a data error that names the file: a missing file is
/// [`DataError::NotFound`], everything else (corrupt, unsupported, a feature
/// not compiled in) [`DataError::Corrupt`] with unidl-media's message.
pub(crate) fn media_error(path: &Path, e: MediaError) -> DataError {
    match e {
        MediaError::NotFound { path } => DataError::NotFound { path },
        other => DataError::Corrupt {
            path: other.path().unwrap_or(path).to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// One recording as an unlabelled sample, loaded as [`AudioManifest`]
/// loads its recordings (`unidl infer speech.wav`): input `audio`,
/// resampled and down-mixed as `load` says; a clip longer than
/// `load.max_duration` is [`DataError::Invalid`] naming it.
pub fn load_audio_sample(path: &Path, load: &AudioLoad) -> Result<Sample> {
    let opts = AudioOptions {
        sample_rate: load.sample_rate,
        channels: load.channels,
        max_duration_secs: None,
    };
    let a = load_audio(path, &opts).map_err(|e| media_error(path, e))?;
    if let Some(max) = load.max_duration
        && a.duration_secs() > max
    {
        return Err(DataError::Invalid {
            what: path.display().to_string(),
            reason: format!(
                "clip is {:.3} s long, longer than max_duration = {max} s",
                a.duration_secs()
            ),
        });
    }
    let mut s = Sample {
        source: path.display().to_string(),
        ..Sample::default()
    };
    s.inputs.insert(
        "audio".into(),
        Input::Audio(Audio {
            samples: a.samples,
            sample_rate: a.sample_rate,
            channels: a.channels,
        }),
    );
    Ok(s)
}

impl Dataset for AudioManifest {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let u = self.items.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.items.len(),
        })?;
        let mut s = load_audio_sample(&u.path, &self.load)?;
        s.targets.text = Some(u.transcript.clone());
        s.targets.label = u.label;
        s.targets.speaker = u.speaker.clone();
        Ok(s)
    }

    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn source(&self, index: usize) -> Option<String> {
        self.items.get(index).map(|u| u.path.display().to_string())
    }
}
