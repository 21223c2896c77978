//! Reading `transformers` checkpoints, shared by the text models' loaders.

use std::path::Path;

use unidl_interop::{Checkpoint, Framework, MappingRules, Report};
use unidl_tensor::module::ModuleApi;

use crate::TextError;

/// Reads a `transformers` checkpoint: `model.safetensors` or a
/// `pytorch_model.bin` (any `torch.save` format `unidl-interop` reads).
pub(crate) fn read_checkpoint(path: &Path) -> Result<Checkpoint, TextError> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        unidl_interop::read_safetensors(path, Framework::PyTorch)
    } else {
        unidl_interop::read_pytorch(path)
    }
    .map_err(|e| TextError::Weights(e.to_string()))
}

/// Loads `ckpt` (read from `path`) into `model` through `rules`.
pub(crate) fn load_checkpoint<M: ModuleApi>(
    model: M,
    ckpt: &Checkpoint,
    rules: unidl_interop::Result<MappingRules>,
    strict: bool,
    path: &Path,
) -> Result<(M, Report), TextError> {
    let rules = rules.map_err(|e| TextError::Weights(e.to_string()))?;
    unidl_interop::load_into(model, ckpt, &rules, strict)
        .map_err(|e| TextError::Weights(format!("{}: {e}", path.display())))
}

/// Reads `path` and loads it through `rules` into a model whose output
/// head may be tied to its embedding: when `model` has no `own_head`
/// parameter, the checkpoint's copy of the head (keys matching
/// `checkpoint_head`) is ignored.
pub(crate) fn load_with_tied_head<M: ModuleApi>(
    model: M,
    path: &Path,
    strict: bool,
    own_head: &str,
    checkpoint_head: &str,
    rules: unidl_interop::Result<MappingRules>,
) -> Result<(M, Report), TextError> {
    let ckpt = read_checkpoint(path)?;
    let tied = !model.state_dict().contains_key(own_head);
    let rules = rules.and_then(|r| {
        Ok(if tied {
            MappingRules::new().ignore(checkpoint_head)?.then(r)
        } else {
            r
        })
    });
    load_checkpoint(model, &ckpt, rules, strict, path)
}

/// A loader's result as `ZooModel::load_weights` returns it: a file none of
/// whose keys matched the model (`what`) is refused.
pub(crate) fn zoo_loaded<M>(
    loaded: Result<(M, Report), TextError>,
    path: &Path,
    what: &str,
) -> Result<(M, String), unidl_run::BoxError> {
    let (model, report) = loaded?;
    if report.load.loaded.is_empty() {
        return Err(format!(
            "{}: no key matched the {what} model ({report})",
            path.display()
        )
        .into());
    }
    Ok((model, report.to_string()))
}

/// A `transformers` `config.json` as a JSON object; `path` names it in errors.
pub(crate) fn read_json_object(
    path: &Path,
) -> Result<serde_json::Map<String, serde_json::Value>, TextError> {
    let file_error = |reason: String| TextError::File {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    match serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(file_error("not a JSON object".into())),
    }
}

/// The run tokenizer's vocabulary must be the model's: a mismatch is
/// [`TextError::Config`] naming `key` (e.g. `model.architecture.vocab_size`).
pub(crate) fn check_vocab(
    facts: &unidl_run::DataFacts,
    vocab_size: usize,
    key: &str,
) -> Result<(), TextError> {
    match facts.vocab_size {
        Some(v) if v != vocab_size => Err(TextError::Config {
            key: key.into(),
            reason: format!(
                "{vocab_size} does not match the run's tokenizer ({v} tokens): use the \
                 tokenizer the weights were trained with ([data.tokenizer] file) or a \
                 vocabulary of this size"
            ),
        }),
        _ => Ok(()),
    }
}
