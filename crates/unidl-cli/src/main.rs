//! `unidl`: train, evaluate and run models from one TOML run config.
//!
//! ```text
//! unidl train   --config configs/quickstart.toml [--backend tch] [--resume]
//! unidl eval    --config configs/quickstart.toml
//! unidl infer   --config configs/quickstart.toml digit.png [more.png …] [--top-k 3]
//! unidl summary --config configs/quickstart.toml
//! unidl backends
//! ```

mod config;
mod models;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use unidl_backend::Device;
use unidl_data::transform::{Compose, Registry};
use unidl_data::{DatasetParams, PreparedDataset, Sample, construct_dataset};
use unidl_train::{
    Classification, EvalConfig, ImageClassification, InferOptions, Metric, TrainerConfig,
    construct_evalvater, construct_inference, construct_trainer,
};

use config::{ModelConfig, RunConfig, resolve};
use models::SimpleCnn;
use unidl_vision::Classifier;

/// A model's forward pass: images `[B, C, H, W]` → logits `[B, classes]`.
type Forward<M> = fn(&M, burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2>;

/// Calls `$f(run, model, forward, args…)` with the model the config names
/// (the one registry of built-in and zoo models), so every subcommand works
/// for every model with one generic implementation.
macro_rules! with_model {
    ($run:expr, $f:ident $(, $arg:expr)*) => {{
        let run: &Run = $run;
        match (&run.cfg.model, run.cfg.model.zoo()) {
            (
                ModelConfig::SimpleCnn {
                    in_channels,
                    num_classes,
                    image_size,
                },
                _,
            ) => $f(
                run,
                SimpleCnn::new(*in_channels, *num_classes, *image_size, &run.device),
                SimpleCnn::forward as Forward<SimpleCnn>
                $(, $arg)*
            ),
            (_, Some(zoo)) => $f(
                run,
                run.zoo_model(&zoo)?,
                Classifier::forward as Forward<Classifier>
                $(, $arg)*
            ),
            (m, None) => bail!("model {m:?} has no builder"),
        }
    }};
}

#[derive(Parser)]
#[command(
    name = "unidl",
    version,
    about = "Train, evaluate and run unidl models (T/AII 008-2023)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the model of a run config (B.4).
    Train {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Back-end; overrides UNIDL_BACKEND and the config.
        #[arg(long)]
        backend: Option<String>,
        /// Continue from the newest checkpoint in the output folder.
        #[arg(long)]
        resume: bool,
    },
    /// Evaluate the newest checkpoint on the validation data (B.6).
    Eval {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Back-end.
        #[arg(long)]
        backend: Option<String>,
    },
    /// Classify image files with the newest checkpoint (B.5).
    Infer {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Back-end.
        #[arg(long)]
        backend: Option<String>,
        /// Classes to print per image.
        #[arg(long)]
        top_k: Option<usize>,
        /// Images.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Print the model's modules and parameter counts.
    Summary {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the capability report of every back-end.
    Backends,
}

/// Everything resolved from a config file.
struct Run {
    cfg: RunConfig,
    text: String,
    base: PathBuf,
    device: Device,
    backend: String,
    /// Whether zoo models start from `[pretrained]` (set by `train` only:
    /// eval and infer load the run's own checkpoint).
    use_pretrained: bool,
}

impl Run {
    fn open(path: &Path, backend: Option<&str>) -> Result<Run> {
        let (cfg, text) = RunConfig::load(path)?;
        let rt = unidl_backend::select(backend, cfg.backend.as_deref())?;
        rt.seed(cfg.seed);
        // Relative paths in configs/ are relative to the repository root (the config folder's parent).
        let dir = path.parent().unwrap_or(Path::new("."));
        let base = if dir.file_name().is_some_and(|n| n == "configs") {
            dir.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            dir.to_path_buf()
        };
        Ok(Run {
            cfg,
            text,
            base,
            backend: rt.spec.to_string(),
            device: rt.device,
            use_pretrained: false,
        })
    }

    /// The zoo model of the config, from `[pretrained]` when training.
    fn zoo_model(&self, zoo: &unidl_vision::ClassifierConfig) -> Result<Classifier> {
        let model = zoo.init(&self.device)?;
        let Some(p) = self.cfg.pretrained.as_ref().filter(|_| self.use_pretrained) else {
            return Ok(model);
        };
        let path = self.base.join(&p.path);
        let (model, report) = if p.strict {
            unidl_vision::torchvision::load_torchvision(model, &path, &self.device)
        } else {
            unidl_vision::torchvision::load_torchvision_lenient(model, &path, &self.device)
        }
        .with_context(|| format!("[pretrained] path = {}", path.display()))?;
        if report.loaded.is_empty() {
            bail!(
                "[pretrained] path = {}: no tensor of it fits the model ({report})",
                path.display()
            );
        }
        println!("pretrained: {}: {report}", path.display());
        Ok(model)
    }

    /// Side of the square input the model sees: the size of a `resize` in
    /// `[data] transforms`, else `image_size` of `simple_cnn`, else 28 (MNIST),
    /// raised to the model's minimum (32 for VGG).
    fn input_side(&self) -> usize {
        let resized = self.cfg.data.transforms.iter().rev().find_map(|t| match t {
            unidl_data::TransformConfig::Resize { size, .. } => Some(size[0]),
            _ => None,
        });
        match (&self.cfg.model, self.cfg.model.zoo()) {
            (_, Some(zoo)) => resized.unwrap_or(28).max(zoo.min_input_size()),
            (ModelConfig::SimpleCnn { image_size, .. }, None) => resized.unwrap_or(*image_size),
            _ => resized.unwrap_or(28),
        }
    }

    fn dataset(&self, spec: &str, train: bool) -> Result<PreparedDataset> {
        let path = resolve(spec, &self.base)?;
        let mut transforms = if train {
            self.cfg.data.train_transforms.clone()
        } else {
            Vec::new()
        };
        transforms.extend(self.cfg.data.transforms.clone());
        let params = DatasetParams {
            channels: self.cfg.data.channels,
            transforms,
            seed: self.cfg.seed,
            ..DatasetParams::default()
        };
        construct_dataset(&path, &params).with_context(|| format!("data set {spec}"))
    }

    fn output_dir(&self) -> PathBuf {
        self.base.join(&self.cfg.trainer.output_dir)
    }

    fn preprocess(&self) -> Result<Compose> {
        let reg = Registry::new();
        Ok(Compose(
            self.cfg
                .data
                .transforms
                .iter()
                .map(|t| t.build(&reg))
                .collect::<unidl_data::Result<_>>()?,
        ))
    }

    fn trained_model<M: burn::module::Module>(&self, model: M) -> Result<M> {
        unidl_train::load_model_checkpoint(
            model,
            &self.output_dir(),
            unidl_train::CheckpointChoice::Latest,
            &self.device,
        )
        .context("run `unidl train` first")
    }

    fn class_names(&self) -> Vec<String> {
        match &self.cfg.data.val {
            Some(v) => self
                .dataset(v, false)
                .map(|d| d.classes())
                .unwrap_or_default(),
            None => self
                .dataset(&self.cfg.data.train, false)
                .map(|d| d.classes())
                .unwrap_or_default(),
        }
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train {
            config,
            backend,
            resume,
        } => train(&config, backend.as_deref(), resume),
        Command::Eval { config, backend } => eval(&config, backend.as_deref()),
        Command::Infer {
            config,
            backend,
            top_k,
            images,
        } => infer(&config, backend.as_deref(), top_k, &images),
        Command::Summary { config } => {
            let run = Run::open(&config, Some("flex"))?;
            with_model!(&run, summary)
        }
        Command::Backends => {
            for r in unidl_backend::capabilities() {
                println!("{r}");
            }
            Ok(())
        }
    }
}

/// Prints modules, output shapes (one traced forward pass on a zero batch of
/// one) and parameter counts.
fn summary<M: burn::module::Module>(run: &Run, model: M, forward: Forward<M>) -> Result<()> {
    let side = run.input_side();
    let x =
        burn::tensor::Tensor::<4>::zeros([1, run.cfg.model.in_channels(), side, side], &run.device);
    let (_, traced) = unidl_tensor::trace::capture(|| forward(&model, x));
    println!("{}", unidl_train::ModelSummary::of(&model, &traced));
    Ok(())
}

fn train(config: &Path, backend: Option<&str>, resume: bool) -> Result<()> {
    let mut run = Run::open(config, backend)?;
    if run.cfg.pretrained.is_some() && run.cfg.model.zoo().is_none() {
        bail!(
            "{}: [pretrained] needs a zoo model with torchvision weights (resnet, vgg, efficientnet)",
            config.display()
        );
    }
    run.use_pretrained = true;
    with_model!(&run, train_model, config, resume)
}

fn train_model<M: burn::module::Module>(
    run: &Run,
    model: M,
    forward: Forward<M>,
    config: &Path,
    resume: bool,
) -> Result<()> {
    let out = run.output_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    std::fs::write(out.join("config.toml"), &run.text)?;
    println!(
        "unidl train: `{}` on back-end `{}`",
        config.display(),
        run.backend
    );
    let train = run.dataset(&run.cfg.data.train, true)?;
    let val = run
        .cfg
        .data
        .val
        .as_deref()
        .map(|v| run.dataset(v, false))
        .transpose()?;
    println!(
        "data: {} training samples, {} held-out",
        train.len(),
        val.as_ref().map_or(0, PreparedDataset::len)
    );
    let tc = TrainerConfig {
        output_dir: out.clone(),
        ..run.cfg.trainer.clone()
    };
    let mut trainer = construct_trainer(
        model,
        &run.cfg.optimizer,
        run.cfg.schedule.clone(),
        ImageClassification { forward },
        tc,
        train,
        val,
        &run.device,
    )?;
    if resume && trainer.resume()? {
        println!("resumed at step {}", trainer.global_step());
    }
    println!("{}", trainer.summary()?);
    trainer.train_with(|r, dir| {
        let acc = r
            .val_accuracy
            .map_or("-".to_string(), |a| format!("{a:.4}"));
        let vloss = r.val_loss.map_or("-".to_string(), |l| format!("{l:.4}"));
        println!(
            "epoch {:>3}  loss {:.4}  val loss {vloss}  val accuracy {acc}  lr {:.2e}  ({:.1} s)",
            r.epoch + 1,
            r.train_loss,
            r.learning_rate,
            r.seconds
        );
        println!("checkpoint: {}", dir.display());
        Ok(())
    })?;
    if let Some(reason) = trainer.stopped_reason() {
        println!("{reason}");
    }
    println!(
        "records: {} (epochs.csv, steps.csv, curves.png, summary.txt)",
        out.display()
    );
    Ok(())
}

fn eval(config: &Path, backend: Option<&str>) -> Result<()> {
    let run = Run::open(config, backend)?;
    with_model!(&run, eval_model, config)
}

fn eval_model<M: burn::module::Module>(
    run: &Run,
    model: M,
    forward: Forward<M>,
    config: &Path,
) -> Result<()> {
    let Some(val) = run.cfg.data.val.clone() else {
        bail!(
            "{}: [data] has no `val` set to evaluate on",
            config.display()
        );
    };
    let ds = run.dataset(&val, false)?;
    let infer = construct_inference(
        run.trained_model(model)?,
        ImageClassification { forward },
        Compose(vec![]),
        Classification {
            class_names: ds.classes(),
        },
        run.cfg.infer.clone(),
        &run.device,
    )?;
    let ev = construct_evalvater(
        &infer,
        EvalConfig {
            default_dataset: Some(ds.clone()),
            eval_metric: vec![
                Metric::Accuracy,
                Metric::Top5,
                Metric::PrecisionMacro,
                Metric::RecallMacro,
                Metric::F1Macro,
            ],
        },
    )?;
    let scores = ev.evalvate(None, None)?;
    println!("evaluated {} samples of {val}", ds.len());
    for (k, v) in scores {
        println!("{k:<16} {v:.4}");
    }
    Ok(())
}

fn infer(
    config: &Path,
    backend: Option<&str>,
    top_k: Option<usize>,
    images: &[PathBuf],
) -> Result<()> {
    let run = Run::open(config, backend)?;
    with_model!(&run, infer_model, top_k, images)
}

fn infer_model<M: burn::module::Module>(
    run: &Run,
    model: M,
    forward: Forward<M>,
    top_k: Option<usize>,
    images: &[PathBuf],
) -> Result<()> {
    let mut options = run.cfg.infer.clone();
    if let Some(k) = top_k {
        options.top_k = k;
    }
    let infer = construct_inference(
        run.trained_model(model)?,
        ImageClassification { forward },
        run.preprocess()?,
        Classification {
            class_names: run.class_names(),
        },
        InferOptions { ..options },
        &run.device,
    )?;
    let samples = images
        .iter()
        .map(|p| {
            unidl_data::parse::load_image(p, run.cfg.data.channels)
                .map(|img| Sample::image(img, None, p.display().to_string()))
        })
        .collect::<unidl_data::Result<Vec<_>>>()?;
    for (path, out) in images.iter().zip(infer.infer_samples(samples, None)?) {
        let ranked: Vec<String> = out
            .iter()
            .map(|c| format!("{} ({:.3})", c.label, c.probability))
            .collect();
        println!("{}: {}", path.display(), ranked.join(", "));
    }
    Ok(())
}
