//! Helpers shared by unidl-audio's test binaries: the reference folders
//! written by `tests/reference/gen_*.py` (their json, their `.io`
//! safetensors, the tensors in them, gradient parity against their
//! `grad.*` tensors) and the tone-word data sets of the registry tests.
//! Each binary uses a subset, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod conformer;

use std::path::{Path, PathBuf};

use burn::tensor::{Float, Int, Tensor as BT};
use serde::de::DeserializeOwned;
use unidl_backend::Device;
use unidl_interop::{Checkpoint, Framework, MappingRules, Report};
use unidl_tensor::module::{Gradients, ModuleApi, StateDict, load_state_dict_file};

/// A reference folder whose json is `<name>.json`: committed under
/// `tests/reference/<name>`, or generated outside the repository (the
/// full-size models, `.ci/run`'s cache) and named by an environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Reference {
    name: &'static str,
    env: Option<&'static str>,
}

impl Reference {
    /// `tests/reference/<name>`.
    pub const fn committed(name: &'static str) -> Self {
        Self { name, env: None }
    }

    /// The folder named by `env` when it holds `<name>.json`; `None` (the
    /// test skips, or fails under `UNIDL_REQUIRE_ZOO_REF=1`) when it does
    /// not, the message saying `how` to generate it.
    pub fn cached(env: &'static str, name: &'static str, how: &str) -> Option<Self> {
        unidl_testkit::cached_reference(env, &format!("{name}.json"), how).map(|_| Self {
            name,
            env: Some(env),
        })
    }

    /// The folder.
    pub fn dir(&self) -> PathBuf {
        match self.env {
            Some(env) => PathBuf::from(std::env::var_os(env).expect("checked by `cached`")),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/reference")
                .join(self.name),
        }
    }

    /// A file in the folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir().join(file)
    }

    /// `<folder>.json`: configs, parameter counts and other facts.
    pub fn meta(&self) -> serde_json::Value {
        let path = self.path(&format!("{}.json", self.name));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The config of model `name` (`models.<name>.config` in the json).
    pub fn config<C: DeserializeOwned>(&self, name: &str) -> C {
        serde_json::from_value(self.meta()["models"][name]["config"].clone()).unwrap()
    }

    /// `<name>.io.safetensors`: inputs, outputs and `grad.*` gradients.
    pub fn io_file(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.io.safetensors"))
    }

    /// `<name>.io.safetensors` read onto `dev`.
    pub fn io(&self, name: &str, dev: &Device) -> StateDict {
        load_state_dict_file(&self.io_file(name), dev).unwrap()
    }

    /// `<name>.safetensors` loaded into `model` by `loader`, strictly: every
    /// parameter must be found.
    pub fn load<M>(
        &self,
        name: &str,
        model: M,
        loader: impl FnOnce(M, &Path, bool) -> unidl_audio::Result<(M, Report)>,
    ) -> M {
        let path = self.path(&format!("{name}.safetensors"));
        let (m, report) = loader(model, &path, true).unwrap();
        assert!(report.load.missing.is_empty(), "{report}");
        m
    }
}

/// A saved 1-D (or else 2-D, flattened) int tensor's values.
pub fn ints(io: &StateDict, key: &str) -> Vec<i64> {
    io[key]
        .clone()
        .into_burn::<1, Int>()
        .map(|t| t.into_data())
        .or_else(|_| io[key].clone().into_burn::<2, Int>().map(|t| t.into_data()))
        .unwrap()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap()
}

/// A saved int tensor of lengths (or other counts).
pub fn lengths(io: &StateDict, key: &str) -> Vec<usize> {
    ints(io, key).into_iter().map(|v| v as usize).collect()
}

/// A saved float tensor of rank `D` on `dev`.
pub fn float_tensor<const D: usize>(io: &StateDict, key: &str, dev: &Device) -> BT<D> {
    BT::from_data(
        io[key].clone().into_burn::<D, Float>().unwrap().into_data(),
        dev,
    )
}

/// Targets from the padded `targets_flat` and `target_lengths`.
pub fn targets(io: &StateDict) -> Vec<Vec<u32>> {
    let tl = lengths(io, "target_lengths");
    let flat = ints(io, "targets_flat");
    let w = flat.len() / tl.len();
    tl.iter()
        .enumerate()
        .map(|(i, &n)| flat[i * w..i * w + n].iter().map(|&v| v as u32).collect())
        .collect()
}

/// A WaveNet reference's inputs: classes `[B, T]`, `c` `[B, cin, F]`, `g` (when saved).
pub fn wavenet_inputs(io: &StateDict, dev: &Device) -> (BT<2, Int>, BT<3>, Option<BT<1, Int>>) {
    let classes = BT::from_data(
        io["classes"]
            .clone()
            .into_burn::<2, Int>()
            .unwrap()
            .into_data(),
        dev,
    );
    let c = BT::from_data(
        io["c"].clone().into_burn::<3, Float>().unwrap().into_data(),
        dev,
    );
    let g = io
        .get("g")
        .map(|g| BT::from_data(g.clone().into_burn::<1, Int>().unwrap().into_data(), dev));
    (classes, c, g)
}

/// The number of trainable values.
pub fn params<M: ModuleApi>(m: &M) -> usize {
    m.get_parameters().iter().map(|(_, t)| t.numel()).sum()
}

/// How [`check_reference_grads`] compares: [`unidl_testkit::check_grads_l2`]'s
/// `floor` and `tol`, and whether a parameter that `backward` gave no
/// gradient (it feeds nothing) counts as a zero gradient or is an error.
#[derive(Debug, Clone, Copy)]
pub struct GradTolerance {
    /// Relative to the largest reference gradient's norm.
    pub floor: f32,
    /// The largest relative L2 difference of each gradient.
    pub tol: f32,
    /// A missing gradient is zero (else: a panic).
    pub absent_is_zero: bool,
}

impl GradTolerance {
    /// `floor` and `tol`; every parameter must have a gradient.
    pub fn l2(floor: f32, tol: f32) -> Self {
        Self {
            floor,
            tol,
            absent_is_zero: false,
        }
    }

    /// A parameter without a gradient compares as a zero gradient.
    pub fn absent_is_zero(self) -> Self {
        Self {
            absent_is_zero: true,
            ..self
        }
    }
}

/// Gradient parity with a reference: the `grad.*` tensors of `io_file` as a
/// checkpoint, mapped onto `module` by `rules` (every parameter must get
/// one), each paired with `grads.parameters["<prefix><name>"]` (`backward`
/// of a wrapper holding `module` under `prefix`) and compared by
/// [`unidl_testkit::check_grads_l2`]. Returns the mapped names.
pub fn check_reference_grads<M: ModuleApi>(
    what: &str,
    io_file: &Path,
    rules: &MappingRules,
    module: &M,
    grads: &Gradients,
    prefix: &str,
    tol: GradTolerance,
) -> Vec<String> {
    let src = unidl_interop::read_safetensors(io_file, Framework::PyTorch).unwrap();
    let ckpt = Checkpoint {
        source: src.source.clone(),
        framework: Framework::PyTorch,
        tensors: src
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix("grad.").map(|k| (k.to_string(), t.clone())))
            .collect(),
    };
    let types = unidl_interop::mapping::module_types(module);
    let (mapped, _) = unidl_interop::mapping::map_checkpoint(&ckpt, rules, &types).unwrap();
    assert_eq!(mapped.len(), module.get_parameters().len(), "{what}");
    let dev = Device::flex();
    let pairs: Vec<(String, Vec<f32>, Vec<f32>)> = mapped
        .iter()
        .map(|(k, t)| {
            let want = t.to_tensor(&dev).unwrap().to_vec_f32().unwrap();
            let name = format!("{prefix}{k}");
            let got = match grads.parameters.get(&name) {
                Some(g) => g.to_vec_f32().unwrap(),
                None if tol.absent_is_zero => vec![0.0; want.len()],
                None => panic!("{what}: no gradient of {name}"),
            };
            (k.clone(), got, want)
        })
        .collect();
    unidl_testkit::check_grads_l2(what, &pairs, tol.floor, tol.tol);
    mapped.into_keys().collect()
}

/// Writes a 16 kHz WAV of two 0.25 s tones, the "a" tone (300 Hz) and the
/// "b" tone (1,200 Hz), in the order of `word` (each ± 10 % by `jitter`).
pub fn tone_word(path: &Path, word: &str, jitter: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for c in word.chars() {
        let f = if c == 'a' { 300.0 } else { 1200.0 } * (1.0 + 0.1 * jitter);
        for i in 0..4000 {
            let t = i as f32 / 16_000.0;
            let v = 0.5 * (std::f32::consts::TAU * f * t).sin();
            w.write_sample((v * 32_000.0) as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// A fresh scratch folder `<temp>/<name>-<pid>` with an empty `wav/`.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("wav")).unwrap();
    dir
}

/// Writes split `split` of a tone-word audio manifest: `n` WAVs
/// `dir/wav/<split><i>.wav` cycling through `words` (jittered by `i`), and
/// `dir/<split>.jsonl` naming them with their word as the transcript;
/// `extra` is appended to each line's fields (`, "speaker": "tones"`).
pub fn write_tone_split(dir: &Path, split: &str, n: usize, words: &[&str], extra: &str) {
    let mut lines = String::new();
    for i in 0..n {
        let word = words[i % words.len()];
        let name = format!("wav/{split}{i}.wav");
        let jitter = ((i * 7919) % 21) as f32 / 10.0 - 1.0;
        tone_word(&dir.join(&name), word, jitter);
        lines.push_str(&format!(
            "{{\"path\": \"{name}\", \"transcript\": \"{word}\"{extra}}}\n"
        ));
    }
    std::fs::write(dir.join(format!("{split}.jsonl")), lines).unwrap();
}

/// The `[data]` section of the recognition runs: the tone-word manifests
/// `train.jsonl` and `val.jsonl` in `dir`, 16 kHz, 20 log-mel bands.
pub fn tone_recognition_data(dir: &Path) -> String {
    format!(
        r#"[data]
format = "audio_manifest"
train = "{train}"
val = "{val}"
sample_rate = 16000
transforms = [{{ type = "mel_spectrogram", n_fft = 400, hop_length = 160, n_mels = 20, log = "log" }}]"#,
        train = dir.join("train.jsonl").display(),
        val = dir.join("val.jsonl").display(),
    )
}

/// A registry with unidl-audio's models.
pub fn registry() -> unidl_run::ModelRegistry {
    let mut reg = unidl_run::ModelRegistry::new();
    unidl_audio::register(&mut reg).unwrap();
    reg
}

/// Writes `config` to `path` and returns the error of training it.
pub fn train_error(reg: &unidl_run::ModelRegistry, path: &Path, config: &str) -> String {
    std::fs::write(path, config).unwrap();
    unidl_run::train_config(reg, path, Some("flex"), false)
        .unwrap_err()
        .to_string()
}

/// Evaluates run `cfg` and reads its `run/eval/scores.json` under `dir`.
pub fn eval_scores(reg: &unidl_run::ModelRegistry, cfg: &Path, dir: &Path) -> serde_json::Value {
    unidl_run::eval_config(reg, cfg, Some("flex")).unwrap();
    let scores = std::fs::read_to_string(dir.join("run/eval/scores.json")).unwrap();
    serde_json::from_str(&scores).unwrap()
}

/// The loss column (the third) of a run's `steps.csv`, one value a step.
pub fn step_losses(steps_csv: &Path) -> Vec<f64> {
    std::fs::read_to_string(steps_csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}
