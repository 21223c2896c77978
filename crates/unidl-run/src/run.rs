//! The task-generic commands behind `unidl train | eval | infer | summary`:
//! one implementation for every registered model, monomorphised per model by
//! the registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use unidl_backend::Device;
use unidl_data::dataset::construct_dataset_with;
use unidl_data::text::{BpeKind, Corpus, SPECIAL_TOKENS, TextTokenizer, register_text_transforms};
use unidl_data::transform::{Compose, Registry};
use unidl_data::{Input, PreparedDataset, TransformConfig};
use unidl_tensor::module::write_atomic;
use unidl_train::{
    CheckpointChoice, EvalConfig, ModelSummary, Task, TaskIo, TaskPredictor, TrainerConfig,
    construct_evalvater_for, construct_inference, construct_trainer, load_model_checkpoint,
};

use crate::config::{RunConfig, TokenizerKind, resolve};
use crate::error::{Result, RunError};
use crate::registry::{BuildTask, DataFacts, ModelRegistry, ZooModel, model_config};

/// A run config opened for one command: the parsed config, its text (for
/// error lines and the copy saved with the run), the folder relative paths
/// start from, and the chosen back-end.
#[derive(Debug)]
pub struct Run {
    /// The parsed config.
    pub cfg: RunConfig,
    /// Its text.
    pub text: String,
    /// The config file.
    pub path: PathBuf,
    /// Relative paths in the config start here: the repository root for a
    /// config inside `configs/`, else the config's folder.
    pub base: PathBuf,
    /// The device of the chosen back-end.
    pub device: Device,
    /// The chosen back-end, as text.
    pub backend: String,
}

/// Options of `unidl infer`.
#[derive(Debug, Clone, Default)]
pub struct InferArgs {
    /// Input files (images, text files, … as the task reads them).
    pub files: Vec<PathBuf>,
    /// Texts given on the command line (`--text`), after the files.
    pub texts: Vec<String>,
    /// Classes to print per input (overrides `[infer] top_k`).
    pub top_k: Option<usize>,
    /// Weights: a unidl checkpoint (directory or `model.safetensors`) or a
    /// foreign checkpoint the model's zoo maps (torchvision `.pth`, …).
    /// Default: the run's best checkpoint with `keep_best`, else its newest.
    pub weights: Option<PathBuf>,
    /// Print the post-processed outputs as JSON.
    pub json: bool,
    /// Draw each prediction on its input: a PNG file (one input) or a
    /// folder receiving `<input stem>.png` per input.
    pub draw: Option<PathBuf>,
}

impl Run {
    /// Opens `path`; the back-end is `backend` > `UNIDL_BACKEND` > the config's > `flex`.
    pub fn open(path: &Path, backend: Option<&str>) -> Result<Run> {
        let (cfg, text) = RunConfig::load(path)?;
        let rt = unidl_backend::select(backend, cfg.backend.as_deref())?;
        rt.seed(cfg.seed);
        let dir = path.parent().unwrap_or(Path::new("."));
        let base = if dir.file_name().is_some_and(|n| n == "configs") {
            dir.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            dir.to_path_buf()
        };
        Ok(Run {
            cfg,
            text,
            path: path.to_path_buf(),
            base,
            backend: rt.spec.to_string(),
            device: rt.device,
        })
    }

    /// Where checkpoints and records go.
    pub fn output_dir(&self) -> PathBuf {
        self.base.join(&self.cfg.trainer.output_dir)
    }

    fn tokenizer_path(&self) -> PathBuf {
        self.output_dir().join("tokenizer.json")
    }

    /// The run's tokenizer, when `[data.tokenizer]` asks for one: trained on
    /// the training texts (`train` and no saved one, or not resuming), else
    /// loaded from the output folder.
    pub fn tokenizer(&self, train: bool, resume: bool) -> Result<Option<Arc<TextTokenizer>>> {
        if self.cfg.data.tokenizer.is_none() {
            return Ok(None);
        }
        let path = self.tokenizer_path();
        if !train && !path.exists() {
            // a pretrained tokenizer serves a run that has not trained yet
            // (inference with foreign `--weights`)
            if let Some(file) = self
                .cfg
                .data
                .tokenizer
                .as_ref()
                .and_then(|t| t.file.as_ref())
            {
                return Ok(Some(Arc::new(TextTokenizer::load(resolve(
                    file, &self.base,
                )?)?)));
            }
        }
        if !train || (resume && path.exists()) {
            if !path.exists() {
                return Err(RunError::NotFound {
                    path,
                    hint: "; run `unidl train` first (it trains the tokenizer)".into(),
                });
            }
            return Ok(Some(Arc::new(TextTokenizer::load(&path)?)));
        }
        let tok = self.train_tokenizer()?;
        std::fs::create_dir_all(self.output_dir()).map_err(|source| RunError::Io {
            path: self.output_dir(),
            source,
        })?;
        // Saved under a temporary name and renamed: never half a tokenizer.
        let tmp = path.with_extension("json.partial");
        tok.save(&tmp)?;
        std::fs::rename(&tmp, &path).map_err(|source| RunError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Some(Arc::new(tok)))
    }

    /// Trains the `[data.tokenizer]` on the training texts (inputs and target
    /// texts: one vocabulary for both sides of a translation), or reads its
    /// pretrained `file` (not saved).
    fn train_tokenizer(&self) -> Result<TextTokenizer> {
        let Some(tc) = &self.cfg.data.tokenizer else {
            return Err(RunError::Config {
                file: self.path.display().to_string(),
                line: 0,
                message: "[data.tokenizer] is not set".into(),
            });
        };
        if let Some(file) = &tc.file {
            return Ok(TextTokenizer::load(resolve(file, &self.base)?)?);
        }
        let Some(vocab_size) = tc.vocab_size else {
            return Err(RunError::Config {
                file: self.path.display().to_string(),
                line: crate::config::line_of_key(&self.text, "data", "tokenizer"),
                message: "[data.tokenizer] needs `vocab_size` to train a tokenizer, or a pretrained `file`".into(),
            });
        };
        let raw = self.raw_dataset(&self.cfg.data.train)?;
        let mut texts = Vec::with_capacity(raw.len());
        for i in 0..raw.len() {
            let s = unidl_data::get_sample(&raw, i)?;
            if let Some(Input::Text(t)) = s.inputs.get("text") {
                texts.push(t.clone());
            }
            // a translation's target side shares the vocabulary
            if let Some(t) = &s.targets.text {
                texts.push(t.clone());
            }
        }
        if texts.is_empty() {
            return Err(RunError::Config {
                file: self.path.display().to_string(),
                line: crate::config::line_of_key(&self.text, "data.tokenizer", "vocab_size"),
                message: format!(
                    "[data.tokenizer]: the training set {} has no `text` inputs to train on",
                    self.cfg.data.train
                ),
            });
        }
        let corpus = Corpus::texts(texts);
        Ok(match tc.kind {
            TokenizerKind::Wordpiece => TextTokenizer::train_wordpiece(
                &corpus,
                vocab_size,
                tc.min_frequency,
                &SPECIAL_TOKENS,
            )?,
            TokenizerKind::BpeBytes | TokenizerKind::BpeWords => TextTokenizer::train_bpe(
                &corpus,
                vocab_size,
                tc.min_frequency,
                &SPECIAL_TOKENS,
                if tc.kind == TokenizerKind::BpeBytes {
                    BpeKind::ByteLevel
                } else {
                    BpeKind::Whitespace
                },
            )?,
            TokenizerKind::Unigram => TextTokenizer::train_unigram(
                &corpus,
                vocab_size,
                tc.min_frequency,
                &SPECIAL_TOKENS,
            )?,
        })
    }

    fn registry(&self) -> Registry {
        let mut r = Registry::new();
        register_text_transforms(&mut r);
        r
    }

    /// Preprocessing: training augmentation (when `train`), `[data]
    /// transforms`, feature augmentation (when `train`), then the tokenizer
    /// when the run has one.
    pub fn transforms(&self, train: bool) -> Vec<TransformConfig> {
        let mut t = if train {
            self.cfg.data.train_transforms.clone()
        } else {
            Vec::new()
        };
        t.extend(self.cfg.data.transforms.iter().cloned());
        if train {
            t.extend(self.cfg.data.train_feature_transforms.iter().cloned());
        }
        // Inputs are tokenized where the data has text inputs; OCR lines and
        // transcripts only have text targets, which the task encodes.
        let text_inputs = self
            .cfg
            .data
            .format
            .map(Ok)
            .unwrap_or_else(|| {
                resolve(&self.cfg.data.train, &self.base)
                    .map_err(|e| e.to_string())
                    .and_then(|p| unidl_data::dataset::guess_format(&p).map_err(|e| e.to_string()))
            })
            .map_or(true, unidl_data::dataset::DatasetFormat::has_text_inputs);
        if let Some(tc) = self.cfg.data.tokenizer.as_ref().filter(|_| text_inputs) {
            let mut params = std::collections::BTreeMap::new();
            // the run's saved tokenizer; before the first training, a
            // pretrained `file` itself (inference with foreign weights)
            let saved = self.tokenizer_path();
            let path = match &tc.file {
                Some(f) if !saved.exists() => resolve(f, &self.base).unwrap_or(saved),
                _ => saved,
            };
            params.insert(
                "tokenizer".to_string(),
                toml::Value::String(path.display().to_string()),
            );
            if let Some(n) = tc.max_length {
                params.insert("max_length".to_string(), toml::Value::Integer(n as i64));
            }
            if tc.add_special_tokens.unwrap_or(tc.file.is_some()) {
                params.insert("add_special_tokens".to_string(), toml::Value::Boolean(true));
            }
            t.push(TransformConfig::Custom {
                name: "tokenize".into(),
                params,
            });
        }
        t
    }

    /// The preprocessing of inference as a pipeline.
    pub fn preprocess(&self) -> Result<Compose> {
        let reg = self.registry();
        Ok(Compose(
            self.transforms(false)
                .iter()
                .map(|t| t.build(&reg))
                .collect::<unidl_data::Result<_>>()?,
        ))
    }

    /// Data set `spec` with its preprocessing (augmentation too when `train`).
    pub fn dataset(&self, spec: &str, train: bool) -> Result<PreparedDataset> {
        let path = resolve(spec, &self.base)?;
        let params = self.cfg.data.params(self.transforms(train), self.cfg.seed);
        Ok(construct_dataset_with(&path, &params, &self.registry())?)
    }

    fn raw_dataset(&self, spec: &str) -> Result<PreparedDataset> {
        let path = resolve(spec, &self.base)?;
        let params = self.cfg.data.params(Vec::new(), self.cfg.seed);
        Ok(construct_dataset_with(&path, &params, &self.registry())?)
    }

    fn classes_file(&self) -> PathBuf {
        self.output_dir().join("classes.json")
    }

    /// Facts for building the model and task: class names (saved with the
    /// run by `train`, else read from the data), vocabulary and padding id.
    pub fn facts(&self, tokenizer: Option<&Arc<TextTokenizer>>) -> Result<DataFacts> {
        let class_names = match std::fs::read_to_string(self.classes_file()) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| RunError::Config {
                file: self.classes_file().display().to_string(),
                line: e.line(),
                message: e.to_string(),
            })?,
            Err(_) => {
                let spec = self.cfg.data.val.as_ref().unwrap_or(&self.cfg.data.train);
                self.raw_dataset(spec)
                    .map(|d| d.classes())
                    .unwrap_or_default()
            }
        };
        Ok(DataFacts::new(class_names, tokenizer))
    }

    fn model_error(&self, source: crate::error::BoxError) -> RunError {
        RunError::Model {
            model: self.cfg.model_name().to_string(),
            source,
        }
    }

    /// The model of the config with its task, checked against `[task] name`.
    fn build<C: ZooModel>(&self, facts: &DataFacts) -> Result<(C, C::Model, C::Task)> {
        let cfg: C = model_config(self)?;
        let kind = <C::Task as BuildTask>::KIND;
        if let Some(name) = &self.cfg.task.name
            && name != kind.name()
        {
            return Err(RunError::Config {
                file: self.path.display().to_string(),
                line: crate::config::line_of_key(&self.text, "task", "name"),
                message: format!(
                    "[task] name = \"{name}\": model `{}` serves `{}`",
                    self.cfg.model_name(),
                    kind.name()
                ),
            });
        }
        // keypoint tasks: the joint count of the data
        let mut facts = facts.clone();
        if kind.needs_joints() && facts.joints.is_none() {
            let spec = self.cfg.data.val.as_ref().unwrap_or(&self.cfg.data.train);
            facts.joints = joints_of(&self.raw_dataset(spec)?);
        }
        let facts = &facts;
        let model = cfg
            .init(facts, &self.device)
            .map_err(|e| self.model_error(e))?;
        let task = C::Task::build(&self.cfg.task, facts)?;
        let task = cfg.adapt_task(task);
        Ok((cfg, model, task))
    }

    /// Weights for eval/infer: `weights` (a unidl checkpoint, else a foreign
    /// one the zoo maps), or the run's `checkpoints/best` when it trained
    /// with `keep_best`, else its newest checkpoint.
    fn trained<C: ZooModel>(
        &self,
        cfg: &C,
        model: C::Model,
        weights: Option<&Path>,
    ) -> Result<C::Model> {
        let Some(w) = weights else {
            let choice = if self.cfg.trainer.keep_best
                && unidl_train::find_checkpoint(&self.output_dir(), CheckpointChoice::Best).is_ok()
            {
                CheckpointChoice::Best
            } else {
                CheckpointChoice::Latest
            };
            return load_model_checkpoint(model, &self.output_dir(), choice, &self.device).map_err(
                |e| {
                    RunError::Train(unidl_train::TrainError::Checkpoint(format!(
                        "{e} (run `unidl train` first, or pass --weights)"
                    )))
                },
            );
        };
        // `data:<name>/…` names weights a data target prepared
        let resolved = match w.to_str().and_then(|s| s.strip_prefix("data:")) {
            Some(rest) => crate::config::data_dir().join(rest),
            None => w.to_path_buf(),
        };
        let w = resolved.as_path();
        if !w.exists() {
            return Err(RunError::NotFound {
                path: w.to_path_buf(),
                hint: String::new(),
            });
        }
        let own = load_model_checkpoint(model.clone(), w, CheckpointChoice::Latest, &self.device);
        match own {
            Ok(m) => Ok(m),
            Err(e) if w.is_file() => match cfg.load_weights(model, w, true, &self.device) {
                Ok((m, report)) => {
                    eprintln!("weights: {}: {report}", w.display());
                    Ok(m)
                }
                Err(f) => Err(self.model_error(
                    format!(
                        "{}: neither a unidl checkpoint ({e}) nor foreign weights this model maps ({f})",
                        w.display()
                    )
                    .into(),
                )),
            },
            Err(e) => Err(e.into()),
        }
    }
}

/// `unidl train`.
pub(crate) fn train<C: ZooModel>(run: &Run, resume: bool) -> Result<()> {
    // A mistake in [model] is reported before any data is read.
    model_config::<C>(run)?;
    let out = run.output_dir();
    let io = |source| RunError::Io {
        path: out.clone(),
        source,
    };
    // Data-parallel ranks other than 0 train silently (rank 0 prints and
    // writes the records; every rank writes the same config and class files).
    let group = unidl_train::dist::global();
    let leader = group.as_ref().is_none_or(|g| g.is_leader());
    macro_rules! say {
        ($($t:tt)*) => { if leader { println!($($t)*); } };
    }
    std::fs::create_dir_all(&out).map_err(io)?;
    write_atomic(&out.join("config.toml"), run.text.as_bytes()).map_err(io)?;
    say!(
        "unidl train: `{}` on back-end `{}`",
        run.path.display(),
        run.backend
    );
    if let Some(g) = &group {
        say!(
            "data-parallel: {} ranks, batch {} per rank ({} per step)",
            g.world_size(),
            run.cfg.trainer.batch_size,
            g.world_size() * run.cfg.trainer.batch_size
        );
    }
    let tokenizer = run.tokenizer(true, resume)?;
    let train = run.dataset(&run.cfg.data.train, true)?;
    let val = run
        .cfg
        .data
        .val
        .as_deref()
        .map(|v| run.dataset(v, false))
        .transpose()?;
    say!(
        "data: {} training samples, {} held-out",
        train.len(),
        val.as_ref().map_or(0, PreparedDataset::len)
    );
    // Training defines the class names (saved for eval and infer below).
    let facts = DataFacts::new(train.classes(), tokenizer.as_ref());
    let classes = serde_json::to_string(&facts.class_names).unwrap_or_default();
    write_atomic(&run.classes_file(), classes.as_bytes()).map_err(io)?;
    let (cfg, mut model, task) = run.build::<C>(&facts)?;
    if let Some(p) = &run.cfg.pretrained {
        // `data:<name>/…` (pretrained weights a data target prepared) or a path
        let path = resolve(&p.path.to_string_lossy(), &run.base).map_err(|e| {
            run.model_error(format!("[pretrained] path = {}: {e}", p.path.display()).into())
        })?;
        let (m, report) = cfg
            .load_weights(model, &path, p.strict, &run.device)
            .map_err(|e| {
                run.model_error(format!("[pretrained] path = {}: {e}", path.display()).into())
            })?;
        say!("pretrained: {}: {report}", path.display());
        model = m;
    }
    let shown = run
        .cfg
        .trainer
        .metrics
        .first()
        .copied()
        .or_else(|| task.default_metrics().first().copied());
    let metric = shown.map_or("-", |m| m.name());
    let tc = TrainerConfig {
        output_dir: out.clone(),
        ..run.cfg.trainer.clone()
    };
    let mut trainer = construct_trainer(
        model,
        &run.cfg.optimizer,
        run.cfg.schedule.clone(),
        task,
        tc,
        train,
        val,
        &run.device,
    )?;
    trainer.set_batch_transforms(
        run.cfg
            .data
            .batch_transforms
            .iter()
            .map(|b| b.build().map(Arc::from))
            .collect::<unidl_data::Result<_>>()?,
    );
    if resume && trainer.resume()? {
        say!("resumed at step {}", trainer.global_step());
    }
    let summary = trainer.summary()?;
    say!("{summary}");
    trainer.train_with(|r, dir| {
        let score = r
            .val_scores
            .get(metric)
            .map_or("-".to_string(), |a| format!("{a:.4}"));
        let vloss = r.val_loss.map_or("-".to_string(), |l| format!("{l:.4}"));
        println!(
            "epoch {:>3}  loss {:.4}  val loss {vloss}  val {metric} {score}  lr {:.2e}  ({:.1} s)",
            r.epoch + 1,
            r.train_loss,
            r.learning_rate,
            r.seconds
        );
        println!("checkpoint: {}", dir.display());
        Ok(())
    })?;
    if let Some(reason) = trainer.stopped_reason() {
        say!("{reason}");
    }
    say!(
        "records: {} (epochs.csv, steps.csv, curves.png, summary.txt)",
        out.display()
    );
    Ok(())
}

/// `unidl eval`.
pub(crate) fn eval<C: ZooModel>(run: &Run, weights: Option<&Path>) -> Result<()> {
    let Some(val) = run.cfg.data.val.clone() else {
        return Err(RunError::Config {
            file: run.path.display().to_string(),
            line: crate::config::line_of_key(&run.text, "data", "train"),
            message: "[data] has no `val` set to evaluate on".into(),
        });
    };
    let tokenizer = run.tokenizer(false, false)?;
    let ds = run.dataset(&val, false)?;
    let facts = run.facts(tokenizer.as_ref())?;
    let (cfg, model, task) = run.build::<C>(&facts)?;
    let model = run.trained(&cfg, model, weights)?;
    let metrics = if run.cfg.eval.metrics.is_empty() {
        task.default_metrics()
    } else {
        run.cfg.eval.metrics.clone()
    };
    let infer = construct_inference(
        model,
        TaskPredictor(task.clone()),
        Compose(vec![]),
        task.post(),
        run.cfg.infer.clone(),
        &run.device,
    )?;
    let ev = construct_evalvater_for(
        &infer,
        EvalConfig {
            default_dataset: Some(ds.clone()),
            eval_metric: metrics,
            output_dir: Some(run.output_dir().join("eval")),
        },
        task.evaluation(),
    )?;
    let scores = ev.evalvate(None, None)?;
    println!("evaluated {} samples of {val}", ds.len());
    for (k, v) in scores {
        println!("{k:<16} {v:.4}");
    }
    println!(
        "records: {} (predictions.jsonl, scores.json)",
        run.output_dir().join("eval").display()
    );
    Ok(())
}

/// `unidl infer`; returns the outputs as JSON (what `--json` prints).
pub(crate) fn infer<C: ZooModel>(run: &Run, args: &InferArgs) -> Result<Vec<serde_json::Value>> {
    let tokenizer = run.tokenizer(false, false)?;
    let facts = run.facts(tokenizer.as_ref())?;
    let (cfg, model, task) = run.build::<C>(&facts)?;
    let model = run.trained(&cfg, model, args.weights.as_deref())?;
    let mut options = run.cfg.infer.clone();
    if let Some(k) = args.top_k {
        options.top_k = k;
    }
    let infer = construct_inference(
        model,
        TaskPredictor(task.clone()),
        run.preprocess()?,
        task.post(),
        options,
        &run.device,
    )?;
    let mut samples = args
        .files
        .iter()
        .map(|p| C::Task::read_input(p, &run.cfg.data))
        .collect::<Result<Vec<_>>>()?;
    // paths in `[task]` are relative to the config's base, as `[data]`'s
    let mut task_cfg = run.cfg.task.clone();
    if let Some(bank) = &task_cfg.voice_bank
        && !args.texts.is_empty()
    {
        task_cfg.voice_bank = Some(resolve(bank, &run.base)?.display().to_string());
    }
    for t in &args.texts {
        samples.push(C::Task::text_input(t, &run.cfg.data, &task_cfg)?);
    }
    // what each output is printed against
    let names: Vec<String> = args
        .files
        .iter()
        .map(|p| p.display().to_string())
        .chain(args.texts.iter().map(|t| format!("{t:?}")))
        .collect();
    let originals = args.draw.as_ref().map(|_| samples.clone());
    let outputs = infer.infer_samples(samples, None)?;
    if let (Some(target), Some(originals)) = (&args.draw, originals) {
        let single = args.files.len() + args.texts.len() == 1 && target.extension().is_some();
        if !single {
            std::fs::create_dir_all(target).map_err(|source| RunError::Io {
                path: target.clone(),
                source,
            })?;
        }
        // files by stem, texts by their words joined with `_`
        let stems = args
            .files
            .iter()
            .map(|f| {
                f.file_stem()
                    .map_or("input".into(), |s| s.to_string_lossy().into_owned())
            })
            .chain(args.texts.iter().map(|t| text_stem(t)));
        for ((stem, sample), output) in stems.zip(&originals).zip(&outputs) {
            let path = if single {
                target.clone()
            } else {
                target.join(format!("{stem}.{}", C::Task::output_extension()))
            };
            C::Task::draw(sample, output, &facts.class_names, &path)?;
            eprintln!("written: {}", path.display());
        }
    }
    let v: Vec<serde_json::Value> = names
        .iter()
        .zip(&outputs)
        .map(|(p, o)| serde_json::json!({ "input": p, "output": C::Task::to_json(o) }))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (p, o) in names.iter().zip(&outputs) {
            println!("{p}: {}", C::Task::describe(o, &facts.class_names));
        }
    }
    Ok(v)
}

/// A file stem for a text input: its letters and digits, words joined by
/// `_` (at most 60 characters; `text` when nothing is left).
fn text_stem(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let stem: String = words.join("_").chars().take(60).collect();
    if stem.is_empty() { "text".into() } else { stem }
}

/// `unidl summary`: modules, output shapes of one traced forward pass on the
/// first sample of the data, parameter counts.
pub(crate) fn summary<C: ZooModel>(run: &Run) -> Result<()> {
    let tokenizer = run
        .tokenizer(false, false)
        .or_else(|_| run.tokenizer(true, false))?;
    let facts = run.facts(tokenizer.as_ref())?;
    let (_, model, task) = run.build::<C>(&facts)?;
    let spec = run.cfg.data.val.as_ref().unwrap_or(&run.cfg.data.train);
    let ds = run.dataset(spec, false)?;
    let sample = unidl_data::get_sample(&ds, 0)?;
    let batch = task.collate(std::slice::from_ref(&sample), &run.device)?;
    let (r, traced) = unidl_tensor::trace::capture(|| task.forward(&model, &batch));
    r?;
    println!("{}", ModelSummary::of(&model, &traced));
    Ok(())
}

/// Opens `config` and runs `unidl train` for the model it names.
pub fn train_config(
    registry: &ModelRegistry,
    config: &Path,
    backend: Option<&str>,
    resume: bool,
) -> Result<()> {
    let run = Run::open(config, backend)?;
    registry
        .get(run.cfg.model_name(), &config.display().to_string())?
        .commands
        .train(&run, resume)
}

/// Opens `config` and runs `unidl eval`.
pub fn eval_config(registry: &ModelRegistry, config: &Path, backend: Option<&str>) -> Result<()> {
    eval_config_with(registry, config, backend, None)
}

/// [`eval_config`] of given `weights` instead of the run's newest
/// checkpoint: a unidl checkpoint or foreign weights the model maps
/// (`data:<name>/…` for a prepared download), as `unidl infer --weights`.
pub fn eval_config_with(
    registry: &ModelRegistry,
    config: &Path,
    backend: Option<&str>,
    weights: Option<&Path>,
) -> Result<()> {
    let run = Run::open(config, backend)?;
    registry
        .get(run.cfg.model_name(), &config.display().to_string())?
        .commands
        .eval(&run, weights)
}

/// Opens `config` and runs `unidl infer`; returns the outputs as JSON
/// (`[{"input": …, "output": …}]`, what `--json` prints).
pub fn infer_config(
    registry: &ModelRegistry,
    config: &Path,
    backend: Option<&str>,
    args: &InferArgs,
) -> Result<Vec<serde_json::Value>> {
    let run = Run::open(config, backend)?;
    registry
        .get(run.cfg.model_name(), &config.display().to_string())?
        .commands
        .infer(&run, args)
}

/// Opens `config` and runs `unidl summary` (on flex).
pub fn summary_config(registry: &ModelRegistry, config: &Path) -> Result<()> {
    let run = Run::open(config, Some("flex"))?;
    registry
        .get(run.cfg.model_name(), &config.display().to_string())?
        .commands
        .summary(&run)
}

/// Keypoints per instance of a keypoint data set: the count of the first
/// of its first 16 samples that has keypoints; `None` for other data.
fn joints_of(dataset: &PreparedDataset) -> Option<usize> {
    (0..dataset.len().min(16)).find_map(|i| {
        let s = unidl_data::get_sample(dataset, i).ok()?;
        let n = s.targets.keypoints.len();
        (n > 0).then_some(n)
    })
}
