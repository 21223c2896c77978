//! Building the text transforms from TOML parameters (`type = "custom"`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::perturb::{
    RandomDeletion, RandomInsertion, RandomSwap, SynonymReplacement, Synonyms, Truncate,
};
use super::tokenizer::{TextTokenizer, Tokenize, TokenizeOptions};
use crate::error::{DataError, Result};
use crate::transform::{DynTransform, Registry};

type Map = BTreeMap<String, toml::Value>;

/// The parameters of one transform, checked key by key; errors name
/// `transform.key`.
struct Params<'a> {
    transform: &'static str,
    map: &'a Map,
}

impl<'a> Params<'a> {
    /// Rejects keys outside `allowed`.
    fn new(transform: &'static str, map: &'a Map, allowed: &[&str]) -> Result<Self> {
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(DataError::config(
                &format!("{transform}.{k}"),
                format!(
                    "unknown parameter (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Params { transform, map })
    }

    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.transform)
    }

    fn err(&self, k: &str, reason: impl Into<String>) -> DataError {
        DataError::config(&self.key(k), reason)
    }

    fn usize(&self, k: &str) -> Result<Option<usize>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => usize::try_from(*i)
                .map(Some)
                .map_err(|_| self.err(k, format!("{i} is not a non-negative integer"))),
            Some(v) => Err(self.err(k, format!("{v} is not a non-negative integer"))),
        }
    }

    fn required_usize(&self, k: &str) -> Result<usize> {
        self.usize(k)?
            .ok_or_else(|| self.err(k, "missing required parameter"))
    }

    fn probability(&self, k: &str) -> Result<Option<f64>> {
        let p = match self.map.get(k) {
            None => return Ok(None),
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(v) => return Err(self.err(k, format!("{v} is not a number"))),
        };
        if (0.0..=1.0).contains(&p) {
            Ok(Some(p))
        } else {
            Err(self.err(k, format!("probability {p} is outside [0, 1]")))
        }
    }

    fn bool(&self, k: &str) -> Result<Option<bool>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(k, format!("{v} is not true or false"))),
        }
    }

    fn string(&self, k: &str) -> Result<Option<String>> {
        match self.map.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(v) => Err(self.err(k, format!("{v} is not a non-empty string"))),
        }
    }

    fn input(&self) -> Result<String> {
        Ok(self.string("input")?.unwrap_or_else(|| "text".to_string()))
    }

    /// `synonyms = { word = ["a", "b"] }` or `synonyms_file = "path.json"`.
    fn synonyms(&self) -> Result<Synonyms> {
        let synonyms = match (self.map.get("synonyms"), self.string("synonyms_file")?) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "synonyms_file",
                    "give either `synonyms` or `synonyms_file`, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    "synonyms",
                    "missing required parameter (or `synonyms_file`)",
                ));
            }
            (None, Some(file)) => load_synonyms(file)?,
            (Some(toml::Value::Table(t)), None) => {
                let mut out = Synonyms::new();
                for (word, list) in t {
                    let key = format!("synonyms.{word}");
                    let toml::Value::Array(items) = list else {
                        return Err(self.err(&key, format!("{list} is not a list of words")));
                    };
                    let words = items
                        .iter()
                        .map(|v| match v {
                            toml::Value::String(s) => Ok(s.clone()),
                            other => Err(self.err(&key, format!("{other} is not a word"))),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    out.insert(word.clone(), words);
                }
                out
            }
            (Some(v), None) => {
                return Err(self.err(
                    "synonyms",
                    format!("{v} is not a table of word = [synonyms]"),
                ));
            }
        };
        for (word, list) in &synonyms {
            if word.trim().is_empty() || list.iter().any(|s| s.trim().is_empty()) {
                return Err(self.err(
                    &format!("synonyms.{word}"),
                    "words and synonyms must be non-empty",
                ));
            }
        }
        Ok(synonyms)
    }
}

/// Reads a JSON synonym file `{"word": ["synonym", …], …}`; a missing file is
/// [`DataError::NotFound`], a malformed one [`DataError::Parse`] naming it.
pub fn load_synonyms(path: impl AsRef<Path>) -> Result<Synonyms> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        reason: format!("expected {{\"word\": [\"synonym\", …]}}: {e}"),
    })
}

fn tokenize(map: &Map) -> Result<DynTransform> {
    let p = Params::new(
        "tokenize",
        map,
        &[
            "tokenizer",
            "input",
            "output",
            "max_length",
            "pad",
            "add_special_tokens",
        ],
    )?;
    let path = p.string("tokenizer")?.ok_or_else(|| {
        p.err(
            "tokenizer",
            "missing required parameter (path to tokenizer.json)",
        )
    })?;
    let defaults = TokenizeOptions::default();
    let options = TokenizeOptions {
        input: p.input()?,
        output: p.string("output")?.unwrap_or(defaults.output),
        max_length: p.usize("max_length")?,
        pad: p.bool("pad")?.unwrap_or(false),
        add_special_tokens: p.bool("add_special_tokens")?.unwrap_or(false),
    };
    let tokenizer = TextTokenizer::load(&path)?;
    Ok(Arc::new(Tokenize::new(Arc::new(tokenizer), options)?))
}

fn random_swap(map: &Map) -> Result<DynTransform> {
    let p = Params::new("random_swap", map, &["n", "input"])?;
    Ok(Arc::new(RandomSwap {
        n: p.required_usize("n")?,
        input: p.input()?,
    }))
}

fn random_deletion(map: &Map) -> Result<DynTransform> {
    let p = Params::new("random_deletion", map, &["p", "input"])?;
    Ok(Arc::new(RandomDeletion {
        p: p.probability("p")?
            .ok_or_else(|| p.err("p", "missing required parameter"))?,
        input: p.input()?,
    }))
}

fn random_insertion(map: &Map) -> Result<DynTransform> {
    let p = Params::new(
        "random_insertion",
        map,
        &["n", "synonyms", "synonyms_file", "input"],
    )?;
    Ok(Arc::new(RandomInsertion {
        n: p.required_usize("n")?,
        synonyms: p.synonyms()?,
        input: p.input()?,
    }))
}

fn synonym_replacement(map: &Map) -> Result<DynTransform> {
    let p = Params::new(
        "synonym_replacement",
        map,
        &["n", "synonyms", "synonyms_file", "input"],
    )?;
    Ok(Arc::new(SynonymReplacement {
        n: p.required_usize("n")?,
        synonyms: p.synonyms()?,
        input: p.input()?,
    }))
}

fn truncate(map: &Map) -> Result<DynTransform> {
    let p = Params::new("truncate", map, &["max_words", "input"])?;
    let max_words = p.required_usize("max_words")?;
    if max_words == 0 {
        return Err(p.err("max_words", "must be at least 1"));
    }
    Ok(Arc::new(Truncate {
        max_words,
        input: p.input()?,
    }))
}

/// Registers the text transforms for `type = "custom"` pipeline entries:
///
/// | `name` | `params` |
/// | --- | --- |
/// | `tokenize` | `tokenizer = "path/tokenizer.json"` (required), `input`, `output`, `max_length`, `pad`, `add_special_tokens` |
/// | `random_swap` | `n` (required), `input` |
/// | `random_deletion` | `p` in [0, 1] (required), `input` |
/// | `random_insertion` | `n` (required), `synonyms = { word = ["a", "b"] }` or `synonyms_file = "path.json"`, `input` |
/// | `synonym_replacement` | `n` (required), `synonyms` or `synonyms_file`, `input` |
/// | `truncate` | `max_words` ≥ 1 (required), `input` |
///
/// Unknown keys, missing required keys, wrong types and out-of-range values
/// are [`DataError::Config`] errors naming `name.key`; a `tokenize` file that
/// is missing or malformed is an error naming the file. Relative paths are
/// taken from the working directory.
///
/// ```
/// use unidl_data::transform::{Registry, pipeline_from_toml};
/// let mut registry = Registry::new();
/// unidl_data::text::register_text_transforms(&mut registry);
/// let pipeline = pipeline_from_toml(
///     r#"
///     [[transforms]]
///     type = "custom"
///     name = "random_swap"
///     params = { n = 2 }
///     "#,
///     &registry,
/// )?;
/// assert_eq!(pipeline.0.len(), 1);
/// # Ok::<(), unidl_data::DataError>(())
/// ```
pub fn register_text_transforms(registry: &mut Registry) {
    registry.register("tokenize", tokenize);
    registry.register("random_swap", random_swap);
    registry.register("random_deletion", random_deletion);
    registry.register("random_insertion", random_insertion);
    registry.register("synonym_replacement", synonym_replacement);
    registry.register("truncate", truncate);
}
