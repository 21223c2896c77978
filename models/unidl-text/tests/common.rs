//! Helpers shared by the test modules.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use unidl_backend::Device;
use unidl_tensor::module::StateDict;
use unidl_testkit::floats;

/// A saved `[rows, cols]` float tensor of ids as an int tensor.
pub fn int_input(io: &StateDict, key: &str, dev: &Device) -> Tensor<2, Int> {
    let t = &io[key];
    let shape = [t.shape()[0], t.shape()[1]];
    let v: Vec<i64> = floats(io, key).iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, shape), dev)
}

/// A saved `[rows, cols]` float tensor of 0/1 as a mask (true where 1).
pub fn mask_input(io: &StateDict, key: &str, dev: &Device) -> Tensor<2, Bool> {
    let t = &io[key];
    let shape = [t.shape()[0], t.shape()[1]];
    let v: Vec<bool> = floats(io, key).iter().map(|&x| x > 0.5).collect();
    Tensor::from_data(TensorData::new(v, shape), dev)
}

/// The saved `labels` (`[rows, cols]`, -100 where ignored) as decoder
/// label ids with -100 replaced by `pad` (as `shift_tokens_right` does),
/// and where they are real (what the loss counts).
pub fn padded_labels(io: &StateDict, pad: i64, dev: &Device) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let s = io["labels"].shape();
    let f = floats(io, "labels");
    let ids: Vec<i64> = f
        .iter()
        .map(|&x| if x < 0.0 { pad } else { x as i64 })
        .collect();
    let keep: Vec<bool> = f.iter().map(|&x| x >= 0.0).collect();
    (
        Tensor::from_data(TensorData::new(ids, [s[0], s[1]]), dev),
        Tensor::from_data(TensorData::new(keep, [s[0], s[1]]), dev),
    )
}

/// The texts (`text` field) of a JSON-lines data set.
pub fn jsonl_texts(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A run through the registry in a fresh temporary folder (removed at the
/// end): its tokenizer, config, training records and scores.
pub struct Route {
    /// The folder (the config's base; the run writes `run/`).
    pub dir: std::path::PathBuf,
    /// The text zoo's registry.
    pub reg: unidl_run::ModelRegistry,
}

impl Route {
    /// A fresh folder `unidl-<name>-<pid>` in the temp dir.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("unidl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut reg = unidl_run::ModelRegistry::new();
        unidl_text::register(&mut reg).unwrap();
        Route { dir, reg }
    }

    /// A WordPiece vocabulary of `size` trained on `texts`, saved as
    /// `tokenizer.json` in the folder.
    pub fn wordpiece(&self, texts: Vec<String>, size: usize) -> unidl_data::text::TextTokenizer {
        use unidl_data::text::{Corpus, SPECIAL_TOKENS, TextTokenizer};
        let tok = TextTokenizer::train_wordpiece(&Corpus::texts(texts), size, 2, &SPECIAL_TOKENS)
            .unwrap();
        tok.save(self.dir.join("tokenizer.json")).unwrap();
        tok
    }

    /// A synthetic 3-class task (`animal`, `food`, `weather`, each marked by
    /// its keywords among shared filler words): 192 training rows in
    /// `train.jsonl`, 60 held out in `val.jsonl`; returns the training texts.
    pub fn synthetic_classes(&self) -> Vec<String> {
        let train = synthetic_split(192, 1);
        write_jsonl(&self.dir.join("train.jsonl"), &train);
        write_jsonl(&self.dir.join("val.jsonl"), &synthetic_split(60, 2));
        train.into_iter().map(|(t, _)| t).collect()
    }

    /// Writes the run config; returns its path.
    pub fn config(&self, text: &str) -> std::path::PathBuf {
        let path = self.dir.join("run.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `unidl train` on flex.
    pub fn train(&self, cfg: &std::path::Path) {
        unidl_run::train_config(&self.reg, cfg, Some("flex"), false).unwrap();
    }

    /// `unidl eval` on flex; the scores it recorded.
    pub fn eval(&self, cfg: &std::path::Path) -> serde_json::Value {
        unidl_run::eval_config(&self.reg, cfg, Some("flex")).unwrap();
        let path = self.dir.join("run/eval/scores.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// `unidl infer --text …` on flex.
    pub fn infer(&self, cfg: &std::path::Path, texts: &[&str]) -> Vec<serde_json::Value> {
        unidl_run::infer_config(
            &self.reg,
            cfg,
            Some("flex"),
            &unidl_run::InferArgs {
                texts: texts.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// The training losses `steps.csv` logged (every 10 steps and the last).
    pub fn losses(&self) -> Vec<f64> {
        let steps = std::fs::read_to_string(self.dir.join("run/steps.csv")).unwrap();
        let header: Vec<&str> = steps.lines().next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "loss").unwrap();
        steps
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
            .collect()
    }

    /// Asserts that the logged loss fell by more than `by` (first against last).
    pub fn assert_loss_fell(&self, by: f64) {
        let l = self.losses();
        let (first, last) = (l[0], l[l.len() - 1]);
        assert!(last < first - by, "loss {first} → {last}: {l:?}");
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three classes of short synthetic texts, each marked by its keywords
/// among shared filler words (a fixed pseudo-random draw).
fn synthetic_split(n: usize, seed: u64) -> Vec<(String, &'static str)> {
    const CLASSES: [(&str, [&str; 5]); 3] = [
        ("animal", ["cat", "dog", "horse", "bird", "fish"]),
        ("food", ["bread", "apple", "cheese", "soup", "rice"]),
        ("weather", ["rain", "snow", "wind", "storm", "sunshine"]),
    ];
    const FILLER: [&str; 24] = [
        "the",
        "a",
        "today",
        "we",
        "saw",
        "some",
        "very",
        "big",
        "small",
        "near",
        "house",
        "river",
        "city",
        "old",
        "new",
        "it",
        "was",
        "and",
        "then",
        "again",
        "morning",
        "quiet",
        "garden",
        "yesterday",
    ];
    let mut state = seed;
    let mut next = |m: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % m as u64) as usize
    };
    (0..n)
        .map(|i| {
            let (label, keys) = CLASSES[i % 3];
            let mut words: Vec<&str> = (0..5 + next(5)).map(|_| FILLER[next(24)]).collect();
            for _ in 0..1 + next(2) {
                let at = next(words.len() + 1);
                words.insert(at, keys[next(5)]);
            }
            (words.join(" "), label)
        })
        .collect()
}

fn write_jsonl(path: &std::path::Path, rows: &[(String, &str)]) {
    let text: String = rows
        .iter()
        .map(|(t, l)| format!("{}\n", serde_json::json!({"text": t, "label": l})))
        .collect();
    std::fs::write(path, text).unwrap();
}
