//! Checks shared by every entry point: the file exists, is not empty, and what
//! kind of container it looks like.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::MediaError;

/// Which decoder family a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// RIFF/WAVE (by header, or by a `.wav`/`.wave` name): hound.
    Wav,
    /// `.mp3`: symphonia.
    Mp3,
    /// Everything else: FFmpeg.
    Other,
}

/// Checks that `path` is a non-empty regular file and guesses its container
/// from its first bytes and its extension.
pub(crate) fn inspect(path: &Path) -> Result<Container, MediaError> {
    let meta = std::fs::metadata(path).map_err(|e| MediaError::io(path, e))?;
    if meta.is_dir() {
        return Err(MediaError::unsupported(path, "is a directory"));
    }
    if meta.len() == 0 {
        return Err(MediaError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut head = [0u8; 12];
    let mut file = File::open(path).map_err(|e| MediaError::io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(MediaError::io(path, e)),
        }
    }
    let head = &head[..n];
    let riff_wave = head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE";
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    Ok(if riff_wave || ext == "wav" || ext == "wave" {
        Container::Wav
    } else if ext == "mp3" {
        Container::Mp3
    } else {
        Container::Other
    })
}
