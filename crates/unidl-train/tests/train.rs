//! Optimizers (B.3) and schedules on flex: every method reduces a real loss,
//! the standard's error cases are typed, schedules follow their formulas.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor as BT;
use unidl_backend::Device;
use unidl_tensor::{Axes, Tensor};
use unidl_train::*;

#[derive(Module, Debug)]
struct Reg {
    lin: Linear,
}

fn data(device: &Device) -> (BT<2>, BT<2>) {
    // y = 2 x0 - 3 x1 + 0.5, on a fixed grid of 16 points
    let xs: Vec<f32> = (0..16)
        .flat_map(|i| [((i % 4) as f32 - 1.5) / 2.0, ((i / 4) as f32 - 1.5) / 2.0])
        .collect();
    let ys: Vec<f32> = xs
        .chunks(2)
        .map(|p| 2.0 * p[0] - 3.0 * p[1] + 0.5)
        .collect();
    (
        BT::from_data(burn::tensor::TensorData::new(xs, [16, 2]), device),
        BT::from_data(burn::tensor::TensorData::new(ys, [16, 1]), device),
    )
}

fn mse(m: &Reg, x: &BT<2>, y: &BT<2>) -> Tensor {
    Tensor::from_burn((m.lin.forward(x.clone()) - y.clone()).square().mean()).unwrap()
}

fn fit(method: OptimizerMethod, lr: f64, steps: usize) -> (f64, f64) {
    let dev = Device::flex().autodiff();
    unidl_backend::seed(&dev, 1);
    let mut m = Reg {
        lin: LinearConfig::new(2, 1).init(&dev),
    };
    let (x, y) = data(&dev);
    let mut opt = construct_optimizer(&m, &OptimizerConfig::new(method, lr)).unwrap();
    let first = mse(&m, &x, &y).item().unwrap();
    for _ in 0..steps {
        let loss = mse(&m, &x, &y);
        opt.backward(&loss, &m).unwrap();
        m = update_learnable_parameter(m, &mut opt).unwrap();
    }
    (first, mse(&m, &x, &y).item().unwrap())
}

#[test]
fn every_method_reduces_a_regression_loss() {
    for (method, lr) in [
        (OptimizerMethod::Sgd, 0.1),
        (OptimizerMethod::Momentum, 0.05),
        (OptimizerMethod::Nesterov, 0.05),
        (OptimizerMethod::Adam, 0.05),
        (OptimizerMethod::AdamW, 0.05),
        (OptimizerMethod::RmsProp, 0.01),
        (OptimizerMethod::Adagrad, 0.3),
    ] {
        let (first, last) = fit(method, lr, 150);
        assert!(last < first * 0.05, "{method:?}: loss {first} -> {last}");
    }
}

#[test]
fn config_errors_name_the_key() {
    let m = Reg {
        lin: LinearConfig::new(2, 1).init(&Device::flex()),
    };
    for (cfg, key) in [
        (
            OptimizerConfig {
                base_learningrate: -0.1,
                ..OptimizerConfig::new(OptimizerMethod::Sgd, 0.1)
            },
            "base_learningrate",
        ),
        (
            OptimizerConfig {
                momentum: 1.0,
                ..OptimizerConfig::new(OptimizerMethod::Momentum, 0.1)
            },
            "momentum",
        ),
        (
            OptimizerConfig {
                weight_decay: -1.0,
                ..OptimizerConfig::new(OptimizerMethod::Adam, 0.1)
            },
            "weight_decay",
        ),
        (
            OptimizerConfig {
                betas: [0.9, 1.5],
                ..OptimizerConfig::new(OptimizerMethod::Adam, 0.1)
            },
            "betas[1]",
        ),
    ] {
        let e = construct_optimizer(&m, &cfg).unwrap_err();
        assert!(
            matches!(&e, TrainError::Config { key: k, .. } if k == key),
            "{e}"
        );
    }
    let e = OptimizerConfig::from_toml(
        "optimizer_method = \"adam\"\nbase_learningrate = 0.1\nmomentun = 0.9\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("momentun"), "{e}");
    let e = OptimizerConfig::from_toml("optimizer_method = \"lbfgs2\"\nbase_learningrate = 0.1\n")
        .unwrap_err();
    assert!(e.to_string().contains("lbfgs2"), "{e}");
    assert!(
        OptimizerConfig::from_toml(
            "optimizer_method = \"nesterov\"\nbase_learningrate = 0.1\nmomentum = 0.8\n"
        )
        .is_ok()
    );
    #[derive(Module, Debug)]
    struct Empty {
        n: usize,
    }
    assert!(matches!(
        construct_optimizer(
            &Empty { n: 1 },
            &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1)
        ),
        Err(TrainError::Model(_))
    ));
}

#[test]
fn update_errors_missing_and_non_finite_gradients_name_the_parameter() {
    let dev = Device::flex().autodiff();
    let m = Reg {
        lin: LinearConfig::new(2, 1).init(&dev),
    };
    let mut opt =
        construct_optimizer(&m, &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1)).unwrap();
    // no backward ran
    let m = match update_learnable_parameter(m.clone(), &mut opt) {
        Err(TrainError::NoGradients) => m,
        other => panic!("expected NoGradients, got {other:?}"),
    };
    // NaN gradient: a loss that is NaN
    let (x, _) = data(&dev);
    let out = m.lin.forward(x.clone());
    let nan = Tensor::from_burn((out.clone() * f32::NAN).sum()).unwrap();
    opt.backward(&nan, &m).unwrap();
    let e = update_learnable_parameter(m.clone(), &mut opt).unwrap_err();
    assert!(
        matches!(&e, TrainError::NonFinite { param, .. } if param.starts_with("lin.")),
        "{e}"
    );
    // zero_gradient drops pending gradients
    let loss = Tensor::from_burn(m.lin.forward(x).sum()).unwrap();
    opt.backward(&loss, &m).unwrap();
    assert!(opt.has_gradients());
    let m = zero_gradient(m, &mut opt);
    assert!(matches!(
        update_learnable_parameter(m.clone(), &mut opt),
        Err(TrainError::NoGradients)
    ));
    // A parameter that overflows to infinity after the update.
    let huge = Reg {
        lin: Linear {
            weight: Param::from_tensor(BT::<2>::full([2, 1], 3.0e38, &dev)),
            bias: m.lin.bias.clone(),
        },
    };
    let mut opt =
        construct_optimizer(&huge, &OptimizerConfig::new(OptimizerMethod::Sgd, 1.0)).unwrap();
    let loss = Tensor::from_burn(huge.lin.weight.val().sum().mul_scalar(-1.0e38)).unwrap();
    opt.backward(&loss, &huge).unwrap();
    let e = update_learnable_parameter(huge, &mut opt).unwrap_err();
    assert!(
        matches!(&e, TrainError::NonFinite { param, what, .. } if param == "lin.weight" && what.contains("after")),
        "{e}"
    );
}

#[test]
fn gradient_clipping_bounds_the_update() {
    let dev = Device::flex().autodiff();
    let m = Reg {
        lin: LinearConfig::new(2, 1).init(&dev),
    };
    let (x, y) = data(&dev);
    let step = |cfg: OptimizerConfig| {
        let mut opt = construct_optimizer(&m, &cfg).unwrap();
        // a loss with a large gradient
        let loss = mse(&m, &x, &y).mul_scalar(1000.0).unwrap();
        opt.backward(&loss, &m).unwrap();
        let m2 = update_learnable_parameter(m.clone(), &mut opt).unwrap();
        let d = Tensor::from_burn(m2.lin.weight.val() - m.lin.weight.val())
            .unwrap()
            .to_vec_f64()
            .unwrap();
        (
            d.iter().map(|v| v * v).sum::<f64>().sqrt(),
            d.iter().fold(0.0f64, |a, v| a.max(v.abs())),
        )
    };
    let base = OptimizerConfig::new(OptimizerMethod::Sgd, 1.0);
    let (free_norm, _) = step(base.clone());
    let (norm, _) = step(OptimizerConfig {
        grad_clip_norm: Some(0.5),
        ..base.clone()
    });
    let (_, max) = step(OptimizerConfig {
        grad_clip_value: Some(0.1),
        ..base.clone()
    });
    assert!(free_norm > 1.0, "unclipped step {free_norm}");
    assert!((norm - 0.5).abs() < 1e-4, "norm-clipped step {norm}");
    assert!(max <= 0.1 + 1e-6, "value-clipped step {max}");
    let e = construct_optimizer(
        &m,
        &OptimizerConfig {
            grad_clip_norm: Some(-1.0),
            ..base.clone()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("grad_clip_norm"), "{e}");
}

#[test]
fn learning_rate_updates_change_the_step() {
    let dev = Device::flex().autodiff();
    let m = Reg {
        lin: LinearConfig::new(2, 1).init(&dev),
    };
    let (x, y) = data(&dev);
    let run = |lr: f64| {
        let mut opt =
            construct_optimizer(&m, &OptimizerConfig::new(OptimizerMethod::Sgd, 1.0)).unwrap();
        opt.set_learning_rate(lr).unwrap();
        opt.backward(&mse(&m, &x, &y), &m).unwrap();
        let m2 = update_learnable_parameter(m.clone(), &mut opt).unwrap();
        let w0 = Tensor::from_burn(m.lin.weight.val()).unwrap();
        let w1 = Tensor::from_burn(m2.lin.weight.val()).unwrap();
        w1.sub(&w0)
            .unwrap()
            .abs()
            .unwrap()
            .sum(Axes::All, false)
            .unwrap()
            .item()
            .unwrap()
    };
    let (a, b) = (run(0.1), run(0.2));
    assert!(
        (b / a - 2.0).abs() < 1e-3,
        "SGD step is proportional to the learning rate: {a} vs {b}"
    );
    let mut opt =
        construct_optimizer(&m, &OptimizerConfig::new(OptimizerMethod::Sgd, 1.0)).unwrap();
    assert!(opt.set_learning_rate(f64::NAN).is_err());
}

#[test]
fn schedules_follow_their_formulas() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let s = Schedule::Step {
        step_size: 10,
        gamma: 0.5,
    };
    assert!(close(s.factor(9), 1.0) && close(s.factor(10), 0.5) && close(s.factor(25), 0.25));
    let s = Schedule::MultiStep {
        milestones: vec![3, 7],
        gamma: 0.1,
    };
    assert!(close(s.factor(2), 1.0) && close(s.factor(3), 0.1) && close(s.factor(8), 0.01));
    assert!(close(Schedule::Exponential { gamma: 0.9 }.factor(2), 0.81));
    let s = Schedule::Cosine {
        warmup_steps: 10,
        total_steps: 110,
        min_factor: 0.0,
    };
    assert!(close(s.factor(0), 0.1) && close(s.factor(9), 1.0) && close(s.factor(10), 1.0));
    assert!(close(s.factor(60), 0.5) && s.factor(110).abs() < 1e-9);
    let s = Schedule::LinearWarmup {
        warmup_steps: 4,
        start_factor: 0.2,
    };
    assert!(close(s.factor(0), 0.2) && close(s.factor(2), 0.6) && close(s.factor(4), 1.0));
    let s = Schedule::OneCycle {
        total_steps: 100,
        max_factor: 1.0,
        pct_start: 0.3,
        div_factor: 25.0,
        final_div_factor: 1e4,
    };
    assert!(
        close(s.factor(0), 0.04) && close(s.factor(30), 1.0) && (s.factor(100) - 1e-4).abs() < 1e-9
    );
    assert!(s.factor(15) > 0.04 && s.factor(15) < 1.0 && s.factor(60) < 1.0);
    assert!(
        Schedule::Step {
            step_size: 0,
            gamma: 0.5
        }
        .validate()
        .is_err()
    );
    assert!(Schedule::Exponential { gamma: 1.5 }.validate().is_err());
    let parsed: Schedule =
        toml::from_str("type = \"cosine\"\ntotal_steps = 100\nwarmup_steps = 5\n").unwrap();
    assert_eq!(
        parsed,
        Schedule::Cosine {
            warmup_steps: 5,
            total_steps: 100,
            min_factor: 0.0
        }
    );
    assert!(
        toml::from_str::<Schedule>("type = \"step\"\nstep_size = 3\ngamma = 0.5\nextra = 1\n")
            .is_err()
    );
    let mut p = ReduceOnPlateau::new(1, 0.5, false).unwrap();
    let f: Vec<f64> = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.86]
        .iter()
        .map(|m| p.observe(*m))
        .collect();
    assert_eq!(f, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
}

// ----- trainer (B.4) on the committed real-MNIST slice -----

mod trainer {
    use std::path::{Path, PathBuf};

    use burn::module::Module;
    use burn::nn::{
        Linear, LinearConfig,
        conv::{Conv2d, Conv2dConfig},
        pool::{MaxPool2d, MaxPool2dConfig},
    };
    use burn::tensor::Tensor as BT;
    use unidl_backend::Device;
    use unidl_data::{DatasetParams, construct_dataset};
    use unidl_tensor::module::ModuleApi;
    use unidl_train::*;

    #[derive(Module, Debug)]
    pub struct SmallCnn {
        c1: Conv2d,
        c2: Conv2d,
        pool: MaxPool2d,
        fc: Linear,
    }

    impl SmallCnn {
        pub fn new(device: &Device) -> Self {
            SmallCnn {
                c1: Conv2dConfig::new([1, 8], [3, 3]).init(device),
                c2: Conv2dConfig::new([8, 16], [3, 3]).init(device),
                pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                fc: LinearConfig::new(16 * 5 * 5, 10).init(device),
            }
        }

        /// `[B, 1, 28, 28]` → logits `[B, 10]`.
        pub fn forward(&self, x: BT<4>) -> BT<2> {
            let x = self
                .pool
                .forward(burn::tensor::activation::relu(self.c1.forward(x))); // [B, 8, 13, 13]
            let x = self
                .pool
                .forward(burn::tensor::activation::relu(self.c2.forward(x))); // [B, 16, 5, 5]
            self.fc.forward(x.flatten(1, 3)) // [B, 10]
        }
    }

    impl ImageClassifier for SmallCnn {
        fn classify(&self, images: BT<4>) -> BT<2> {
            self.forward(images)
        }
    }

    fn mnist() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist")
    }

    fn out(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("unidl-train-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn trainer(
        seed_model: u64,
        epochs: usize,
        out_dir: PathBuf,
        range: Option<[usize; 2]>,
    ) -> Trainer<SmallCnn, ImageClassification> {
        let dev = Device::flex();
        unidl_backend::seed(&dev, seed_model);
        trainer_with(SmallCnn::new(&dev), epochs, out_dir, range)
    }

    fn trainer_with(
        model: SmallCnn,
        epochs: usize,
        out_dir: PathBuf,
        range: Option<[usize; 2]>,
    ) -> Trainer<SmallCnn, ImageClassification> {
        trainer_cfg(model, epochs, out_dir, range, |_| {})
    }

    fn trainer_cfg(
        model: SmallCnn,
        epochs: usize,
        out_dir: PathBuf,
        range: Option<[usize; 2]>,
        edit: impl FnOnce(&mut TrainerConfig),
    ) -> Trainer<SmallCnn, ImageClassification> {
        let adam = OptimizerConfig::new(OptimizerMethod::Adam, 3e-3);
        trainer_opt(model, epochs, out_dir, range, &adam, edit)
    }

    fn trainer_opt(
        model: SmallCnn,
        epochs: usize,
        out_dir: PathBuf,
        range: Option<[usize; 2]>,
        optimizer: &OptimizerConfig,
        edit: impl FnOnce(&mut TrainerConfig),
    ) -> Trainer<SmallCnn, ImageClassification> {
        let dev = Device::flex();
        let params = DatasetParams {
            seed: 3,
            ..DatasetParams::default()
        };
        let train = construct_dataset(
            &mnist().join("train"),
            &DatasetParams {
                range,
                ..params.clone()
            },
        )
        .unwrap();
        let val = construct_dataset(&mnist().join("test"), &params).unwrap();
        let mut cfg = TrainerConfig {
            seed: 5,
            progress: Some(false),
            ..TrainerConfig::new(epochs, 16, out_dir)
        };
        edit(&mut cfg);
        construct_trainer(
            model,
            optimizer,
            Schedule::Constant,
            ImageClassification::default(),
            cfg,
            train,
            Some(val),
            &dev,
        )
        .unwrap()
    }

    #[test]
    fn trains_on_real_digits_loss_falls_and_held_out_accuracy_rises() {
        let mut t = trainer(1, 4, out("mnist"), None);
        let before = t
            .evaluate_accuracy(
                &construct_dataset(&mnist().join("test"), &DatasetParams::default()).unwrap(),
            )
            .unwrap()
            .unwrap();
        let records = t.train().unwrap();
        assert_eq!(records.len(), 4);
        assert!(
            records[3].train_loss < records[0].train_loss * 0.6,
            "{records:?}"
        );
        let acc = records[3].val_accuracy.unwrap();
        assert!(
            acc > 0.8 && acc > before + 0.5,
            "held-out accuracy {before} -> {acc}"
        );
    }

    #[test]
    fn resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one() {
        let range = Some([0, 96]);
        // Other tests draw from the global generator concurrently, so both runs
        // start from one explicit set of initial weights.
        let init = SmallCnn::new(&Device::flex());
        let mut a = trainer_with(init.clone(), 2, out("straight"), range);
        a.train().unwrap();
        let dir = out("resumed");
        let mut b = trainer_with(init, 2, dir.clone(), range);
        b.train_one_epoch(0).unwrap();
        b.save_checkpoint().unwrap();
        drop(b);
        // a fresh process would start from different random weights: resume must override them
        let mut c = trainer(99, 2, dir.clone(), range);
        assert!(c.resume().unwrap());
        assert_eq!(c.global_step(), 6);
        c.train().unwrap();
        let (wa, wc) = (a.model().state_dict(), c.model().state_dict());
        for (k, t) in &wa {
            assert_eq!(
                t.to_vec_f32().unwrap(),
                wc[k].to_vec_f32().unwrap(),
                "{k} differs after resume"
            );
        }
        // the resumed run records the true loss of the epoch it resumed at
        // the end of (the checkpoint carries the epoch's loss sum), not 0.0
        let losses = |t: &Trainer<SmallCnn, ImageClassification>| -> Vec<f64> {
            t.records().iter().map(|r| r.train_loss).collect()
        };
        assert_eq!(losses(&a), losses(&c));
        // keep_last = 2: checkpoints of steps 6 and 12 remain, nothing partial
        let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["step-000000006", "step-000000012"]);
    }

    #[test]
    fn trainer_config_errors_are_typed() {
        let dev = Device::flex();
        let ds = construct_dataset(&mnist().join("test"), &DatasetParams::default()).unwrap();
        let mk = |epochs: usize, batch: usize| {
            construct_trainer(
                SmallCnn::new(&dev),
                &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1),
                Schedule::Constant,
                ImageClassification::default(),
                TrainerConfig {
                    keep_last: 1,
                    workers: 1,
                    ..TrainerConfig::new(epochs, batch, out("cfg"))
                },
                ds.clone(),
                None,
                &dev,
            )
        };
        assert!(matches!(mk(0, 4), Err(TrainError::Config { key, .. }) if key == "trainer.epochs"));
        assert!(
            matches!(mk(1, 0), Err(TrainError::Config { key, .. }) if key == "trainer.batch_size")
        );
        let mut c = TrainerConfig::new(1, 4, out("cfg2"));
        c.micro_batches = 5;
        assert!(
            matches!(c.validate(), Err(TrainError::Config { key, .. }) if key == "trainer.micro_batches")
        );
        c.micro_batches = 2;
        c.reduce_lr_on_plateau = Some(PlateauConfig {
            patience: 1,
            factor: 1.5,
            threshold: 0.0,
            min_scale: 0.0,
        });
        assert!(
            matches!(c.validate(), Err(TrainError::Config { key, .. }) if key.contains("reduce_lr_on_plateau.factor"))
        );
        c.reduce_lr_on_plateau = None;
        c.early_stopping = Some(EarlyStoppingConfig {
            patience: 1,
            min_delta: -1.0,
        });
        assert!(
            matches!(c.validate(), Err(TrainError::Config { key, .. }) if key.contains("early_stopping.min_delta"))
        );
        // strict TOML: an unknown trainer key is an error naming it
        let e = toml::from_str::<TrainerConfig>(
            "epochs = 1\nbatch_size = 2\noutput_dir = 'x'\nearly_stoping = { patience = 1 }",
        )
        .unwrap_err();
        assert!(e.to_string().contains("early_stoping"), "{e}");
    }

    #[test]
    fn micro_batches_accumulate_to_the_full_batch_gradient() {
        let init = SmallCnn::new(&Device::flex());
        let range = Some([0, 32]);
        let sgd = |micro: usize| {
            let dev = Device::flex();
            let train = construct_dataset(
                &mnist().join("train"),
                &DatasetParams {
                    range,
                    ..DatasetParams::default()
                },
            )
            .unwrap();
            let mut t = construct_trainer(
                init.clone(),
                &OptimizerConfig::new(OptimizerMethod::Sgd, 0.5),
                Schedule::Constant,
                ImageClassification::default(),
                TrainerConfig {
                    micro_batches: micro,
                    ..TrainerConfig::new(1, 16, out(&format!("micro{micro}")))
                },
                train.clone(),
                None,
                &dev,
            )
            .unwrap();
            let samples: Vec<_> = (0..16)
                .map(|i| unidl_data::get_sample(&train, i).unwrap())
                .collect();
            let loss = t.train_one_batch(&samples).unwrap();
            (loss, t.model().state_dict())
        };
        let (l1, w1) = sgd(1);
        let (l4, w4) = sgd(4);
        let (l3, w3) = sgd(3); // unequal micro-batches (5, 5, 6) are weighted by size
        assert!(
            (l1 - l4).abs() < 1e-5 && (l1 - l3).abs() < 1e-5,
            "{l1} {l4} {l3}"
        );
        let init_sd = init.state_dict();
        for (k, t) in &w1 {
            let a = t.to_vec_f32().unwrap();
            let moved = init_sd[k]
                .to_vec_f32()
                .unwrap()
                .iter()
                .zip(&a)
                .any(|(x, y)| (x - y).abs() > 1e-4);
            assert!(moved, "{k} did not move");
            for other in [&w4, &w3] {
                for (x, y) in a.iter().zip(other[k].to_vec_f32().unwrap()) {
                    assert!((x - y).abs() < 1e-4, "{k}: {x} vs {y}");
                }
            }
        }
    }

    /// Records every hook call.
    #[derive(Default)]
    struct Log(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Callback for Log {
        fn on_train_start(&mut self, b: &TrainBegin<'_>) -> Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {}", b.records.len()));
            Ok(())
        }
        fn on_epoch_start(&mut self, e: usize, _b: u64) -> Result<()> {
            self.0.lock().unwrap().push(format!("epoch {e}"));
            Ok(())
        }
        fn on_batch_start(&mut self, _e: usize, step: u64) -> Result<()> {
            self.0.lock().unwrap().push(format!("batch {step}"));
            Ok(())
        }
        fn on_batch_end(&mut self, b: &BatchEnd) -> Result<()> {
            assert!(b.loss.is_finite() && b.samples == 16 && b.learning_rate > 0.0);
            self.0.lock().unwrap().push(format!("done {}", b.step));
            Ok(())
        }
        fn on_epoch_end(&mut self, e: &mut EpochEnd<'_>) -> Result<()> {
            assert!(e.checkpoint.join("model.safetensors").exists());
            self.0
                .lock()
                .unwrap()
                .push(format!("end {}", e.record.epoch));
            Ok(())
        }
        fn on_train_end(&mut self, r: &[EpochRecord], stopped: Option<&str>) -> Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("finish {} {}", r.len(), stopped.unwrap_or("-")));
            Ok(())
        }
    }

    #[test]
    fn callbacks_run_in_order_and_records_are_written() {
        let dir = out("hooks");
        let mut t = trainer_cfg(
            SmallCnn::new(&Device::flex()),
            2,
            dir.clone(),
            Some([0, 32]),
            |c| c.log_every = 1,
        );
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        t.add_callback(Log(log.clone()));
        t.train().unwrap();
        let got = log.lock().unwrap().join(",");
        assert_eq!(
            got,
            "start 0,epoch 0,batch 0,done 1,batch 1,done 2,end 0,\
             epoch 1,batch 2,done 3,batch 3,done 4,end 1,finish 2 -"
        );
        // run records: steps and epochs as CSV and JSON lines, a summary with output shapes, a PNG
        let steps = std::fs::read_to_string(dir.join("steps.csv")).unwrap();
        assert_eq!(steps.lines().count(), 5, "{steps}");
        assert!(steps.starts_with("step,epoch,loss,learning_rate,samples_per_second"));
        let epochs = std::fs::read_to_string(dir.join("epochs.csv")).unwrap();
        assert_eq!(epochs.lines().count(), 3, "{epochs}");
        let jl = std::fs::read_to_string(dir.join("epochs.jsonl")).unwrap();
        let r: EpochRecord = serde_json::from_str(jl.lines().nth(1).unwrap()).unwrap();
        // serde_json prints the shortest decimal that reads back within an ulp
        assert!((r.train_loss - t.records()[1].train_loss).abs() < 1e-12);
        assert_eq!(r.epoch, 1);
        assert!(r.val_loss.is_some() && r.val_accuracy.is_some());
        let summary = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
        assert!(summary.contains("trainable parameters: 5258"), "{summary}");
        let png = image::open(dir.join("curves.png")).unwrap();
        assert_eq!((png.width(), png.height()), (1000, 420));
    }

    #[test]
    fn early_stopping_stops_and_a_resume_does_not_train_on() {
        let dir = out("early");
        let mk = |dir: PathBuf| {
            trainer_cfg(SmallCnn::new(&Device::flex()), 6, dir, Some([0, 32]), |c| {
                c.monitor = Monitor::TrainLoss;
                // nothing counts as improvement after the first epoch
                c.early_stopping = Some(EarlyStoppingConfig {
                    patience: 1,
                    min_delta: 1e9,
                });
                c.keep_best = true;
            })
        };
        let mut t = mk(dir.clone());
        let records = t.train().unwrap();
        assert_eq!(
            records.len(),
            3,
            "stops after patience + 1 epochs without improvement"
        );
        let reason = t.stopped_reason().unwrap();
        assert!(reason.contains("train_loss did not improve"), "{reason}");
        // the best checkpoint is the first epoch's (nothing beat it by 1e9... but the
        // monitor's plain comparison for keep-best uses min_delta 0)
        let best: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("checkpoints/best/trainer.json")).unwrap(),
        )
        .unwrap();
        let best_epochs = best["records"].as_array().unwrap().len();
        let losses: Vec<f64> = records.iter().map(|r| r.train_loss).collect();
        let argmin = (0..3)
            .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
            .unwrap();
        assert_eq!(best_epochs, argmin + 1, "{losses:?}");
        let mut again = mk(dir);
        assert!(again.resume().unwrap());
        assert_eq!(again.train().unwrap().len(), 3);
    }

    #[test]
    fn reduce_on_plateau_lowers_the_rate_and_the_scale_survives_a_resume() {
        let dir = out("plateau");
        let mk = |dir: PathBuf, epochs| {
            trainer_cfg(
                SmallCnn::new(&Device::flex()),
                epochs,
                dir,
                Some([0, 32]),
                |c| {
                    c.monitor = Monitor::TrainLoss;
                    c.reduce_lr_on_plateau = Some(PlateauConfig {
                        patience: 0,
                        factor: 0.5,
                        threshold: 1e9,
                        min_scale: 0.0,
                    });
                },
            )
        };
        let mut t = mk(dir.clone(), 3);
        let r = t.train().unwrap();
        // epoch 0 sets the best; epochs 1 and 2 fail to improve by 1e9 -> 0.5, then 0.25
        assert_eq!(t.lr_scale(), 0.25);
        assert!((r[1].learning_rate - 3e-3).abs() < 1e-12, "{r:?}");
        assert!((r[2].learning_rate - 1.5e-3).abs() < 1e-12, "{r:?}");
        let mut c = mk(dir, 4);
        assert!(c.resume().unwrap());
        assert_eq!(c.lr_scale(), 0.25);
        let r = c.train().unwrap();
        assert!((r[3].learning_rate - 0.75e-3).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn models_load_from_the_latest_or_best_checkpoint_and_errors_name_the_path() {
        let dir = out("load");
        let mut t = trainer_cfg(
            SmallCnn::new(&Device::flex()),
            2,
            dir.clone(),
            Some([0, 32]),
            |c| {
                c.keep_best = true;
                c.monitor = Monitor::TrainLoss;
            },
        );
        t.train().unwrap();
        let dev = Device::flex();
        let latest =
            load_model_checkpoint(SmallCnn::new(&dev), &dir, CheckpointChoice::Latest, &dev)
                .unwrap();
        let trained = t.model().state_dict();
        for (k, v) in latest.state_dict() {
            assert_eq!(
                v.to_vec_f32().unwrap(),
                trained[&k].to_vec_f32().unwrap(),
                "{k}"
            );
        }
        let best = find_checkpoint(&dir, CheckpointChoice::Best).unwrap();
        assert!(best.ends_with("checkpoints/best"));
        load_model_checkpoint(SmallCnn::new(&dev), &best, CheckpointChoice::Latest, &dev).unwrap();
        let e = load_model_checkpoint(
            SmallCnn::new(&dev),
            &dir.join("nope"),
            CheckpointChoice::Latest,
            &dev,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let empty = out("load-empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = find_checkpoint(&empty, CheckpointChoice::Best).unwrap_err();
        assert!(e.to_string().contains("keep_best"), "{e}");
    }

    /// A loss of 0 whose gradient is infinite: `sum(sqrt(|w - w|))`.
    #[derive(Clone)]
    struct InfiniteGradient;

    impl TaskIo for InfiniteGradient {
        type Batch = ImageBatch;
        type Post = Classification;
        fn name(&self) -> &'static str {
            "infinite_gradient"
        }
        fn loss_name(&self) -> &'static str {
            "cross_entropy"
        }
        fn collate(&self, samples: &[unidl_data::Sample], device: &Device) -> Result<ImageBatch> {
            ImageClassification::default().collate(samples, device)
        }
        fn post(&self) -> Classification {
            Classification::default()
        }
        fn evaluation(&self) -> Box<dyn EvaluationTask<Vec<ClassScore>>> {
            Box::new(ClassificationTask)
        }
        fn default_metrics(&self) -> Vec<Metric> {
            vec![Metric::Accuracy]
        }
    }

    impl Task<SmallCnn> for InfiniteGradient {
        fn forward(&self, model: &SmallCnn, batch: &ImageBatch) -> Result<unidl_tensor::Tensor> {
            ImageClassification::default().forward(model, batch)
        }
        fn loss(&self, model: &SmallCnn, _batch: &ImageBatch) -> Result<unidl_tensor::Tensor> {
            let w = model.fc.weight.val();
            Ok(unidl_tensor::Tensor::from_burn(
                w.clone().sub(w).abs().sqrt().sum(),
            )?)
        }
    }

    #[test]
    fn a_non_finite_gradient_names_step_and_parameter_and_keeps_the_weights() {
        let dev = Device::flex();
        let train = construct_dataset(
            &mnist().join("train"),
            &DatasetParams {
                range: Some([0, 8]),
                ..DatasetParams::default()
            },
        )
        .unwrap();
        let init = SmallCnn::new(&dev);
        let mut t = construct_trainer(
            init.clone(),
            &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1),
            Schedule::Constant,
            InfiniteGradient,
            TrainerConfig::new(1, 4, out("nan")),
            train.clone(),
            None,
            &dev,
        )
        .unwrap();
        let samples: Vec<_> = (0..4)
            .map(|i| unidl_data::get_sample(&train, i).unwrap())
            .collect();
        let e = t.train_one_batch(&samples).unwrap_err();
        match &e {
            TrainError::NonFinite { what, param, step } => {
                assert_eq!(
                    (what.as_str(), param.as_str(), *step),
                    ("gradient", "fc.weight", 0)
                );
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        // The trainer is still usable and holds the weights of before the step.
        assert_eq!(t.global_step(), 0);
        let (a, b) = (t.model().state_dict(), init.state_dict());
        for (k, v) in &a {
            assert_eq!(v.to_vec_f32().unwrap(), b[k].to_vec_f32().unwrap(), "{k}");
        }
    }

    /// `[trainer] metrics` (B.4.1) chooses what validation computes; a metric
    /// the task cannot compute is refused naming the key.
    #[test]
    fn trainer_metrics_choose_the_validation_scores() {
        let dev = Device::flex();
        let mut t = trainer_cfg(SmallCnn::new(&dev), 1, out("metrics"), Some([0, 32]), |c| {
            c.metrics = vec![Metric::F1Macro, Metric::Top5];
        });
        let records = t.train().unwrap();
        let names: Vec<&str> = records[0].val_scores.keys().map(String::as_str).collect();
        assert_eq!(names, ["f1_macro", "top5"]);
        assert_eq!(records[0].val_accuracy, None, "accuracy was not asked for");
        let e = construct_trainer(
            SmallCnn::new(&dev),
            &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1),
            Schedule::Constant,
            ImageClassification::default(),
            TrainerConfig {
                metrics: vec![Metric::Miou],
                ..TrainerConfig::new(1, 4, out("metrics-bad"))
            },
            construct_dataset(&mnist().join("test"), &DatasetParams::default()).unwrap(),
            None,
            &dev,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.contains("trainer.metrics") && e.contains("miou") && e.contains("accuracy"),
            "{e}"
        );
        // `loss` (B.4.1) may name the task's loss and nothing else.
        let with_loss = |loss: &str| {
            construct_trainer(
                SmallCnn::new(&dev),
                &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1),
                Schedule::Constant,
                ImageClassification::default(),
                TrainerConfig {
                    loss: Some(loss.into()),
                    ..TrainerConfig::new(1, 4, out("loss-key"))
                },
                construct_dataset(&mnist().join("test"), &DatasetParams::default()).unwrap(),
                None,
                &dev,
            )
        };
        assert!(with_loss("cross_entropy").is_ok());
        let e = with_loss("ctc").err().unwrap().to_string();
        assert!(
            e.contains("trainer.loss") && e.contains("`ctc`") && e.contains("`cross_entropy`"),
            "{e}"
        );
    }

    /// Asked again for an epoch it has trained, the trainer trains nothing
    /// and reports that epoch's mean loss (it used to report 0.0).
    #[test]
    fn an_epoch_asked_again_reports_its_mean_and_trains_nothing() {
        let dev = Device::flex();
        let mut a = trainer_with(SmallCnn::new(&dev), 1, out("epoch-again"), Some([0, 40]));
        let whole = a.train_one_epoch(0).unwrap(); // 16 + 16 + 8
        assert_eq!(a.global_step(), 3);
        assert!(whole.is_finite() && whole > 0.0);
        assert_eq!(a.train_one_epoch(0).unwrap(), whole);
        assert_eq!(a.global_step(), 3);
    }

    #[test]
    fn a_save_interrupted_mid_write_leaves_the_last_good_checkpoint() {
        let dir = out("crash");
        let mut t = trainer(1, 2, dir.clone(), Some([0, 32]));
        t.train_one_epoch(0).unwrap();
        let good = t.save_checkpoint().unwrap();
        let good_weights = t.model().state_dict();
        // A kill during the next save: a partial directory with a truncated model
        // file, and a half-written temporary file inside the good checkpoint.
        let partial = dir.join("checkpoints/step-000000099.partial");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("model.safetensors"), b"\x10\x00\x00").unwrap();
        std::fs::write(good.join(".model.safetensors.tmp"), b"garbage").unwrap();
        let mut r = trainer(7, 2, dir.clone(), Some([0, 32]));
        assert!(r.resume().unwrap());
        assert_eq!(r.global_step(), 2);
        for (k, v) in &good_weights {
            assert_eq!(
                v.to_vec_f32().unwrap(),
                r.model().state_dict()[k].to_vec_f32().unwrap()
            );
        }
        // and training goes on from there, replacing the partial directory's name space
        r.train().unwrap();
        assert_eq!(r.global_step(), 4);
    }

    /// Flat float values of a model's state dict, in key order.
    fn weights<M: Module>(m: &M) -> Vec<(String, Vec<f32>)> {
        let sd = m.valid().state_dict();
        sd.iter()
            .map(|(k, t)| (k.clone(), t.to_vec_f32().unwrap()))
            .collect()
    }

    /// The largest |a − b| over two [`weights`] lists of the same keys, and
    /// the key where it is.
    fn max_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> (f32, String) {
        assert_eq!(a.len(), b.len());
        let mut worst = (0.0f32, String::new());
        for ((k, x), (k2, y)) in a.iter().zip(b) {
            assert_eq!(k, k2);
            for (p, q) in x.iter().zip(y) {
                if (p - q).abs() > worst.0 {
                    worst = ((p - q).abs(), k.clone());
                }
            }
        }
        worst
    }

    /// G-c (issue 19): two data-parallel ranks with batch 8 each end with
    /// the weights of one process with batch 16 after 50 momentum-SGD steps (the
    /// ranks' strided shards of one permutation make up its batches; the
    /// averaged gradient is its gradient), although rank 1 starts from other
    /// weights (rank 0's are broadcast). Ranks are threads here
    /// (`ThreadGroup`); `tests/dist_mpi.rs` runs the same over `mpirun`.
    #[test]
    fn two_ranks_with_batch_b_equal_one_process_with_batch_2b() {
        let range = Some([0, 160]); // 10 batches of 16, 5 epochs = 50 steps
        let sgd = OptimizerConfig::new(OptimizerMethod::Momentum, 0.02);
        // Parameters are drawn lazily: read each model right after seeding.
        let seeded = |seed| {
            let dev = Device::flex();
            unidl_backend::seed(&dev, seed);
            let m = SmallCnn::new(&dev);
            let w = weights(&m);
            (m, w)
        };
        let ((m0, w0), (m1, w1)) = (seeded(1), seeded(99));
        assert_ne!(w0, w1);
        let mut single = trainer_opt(m0.clone(), 5, out("dp-single"), range, &sgd, |c| {
            c.batch_size = 16
        });
        let losses: Vec<f64> = (0..5).map(|e| single.train_one_epoch(e).unwrap()).collect();
        assert_eq!(single.global_step(), 50);
        assert!(losses[4] < losses[0] * 0.8, "it trains: {losses:?}");
        let expected = weights(single.model());
        assert_ne!(expected, w0);
        let groups = ThreadGroup::new(2, std::time::Duration::from_secs(120));
        let handles: Vec<_> = groups
            .into_iter()
            .zip([m0, m1])
            .map(|(g, m)| {
                let rank = g.rank();
                let dir = out(&format!("dp-rank{rank}"));
                let mut t = trainer_opt(m, 5, dir, range, &sgd, |c| c.batch_size = 8);
                std::thread::spawn(move || {
                    t.set_collective(std::sync::Arc::new(g)).unwrap();
                    for e in 0..5 {
                        t.train_one_epoch(e).unwrap();
                    }
                    (t.global_step(), weights(t.model()))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (rank, (steps, got)) in results.iter().enumerate() {
            assert_eq!(*steps, 50, "rank {rank}");
            let (worst, k) = max_diff(&expected, got);
            assert!(worst <= 1e-5, "rank {rank} `{k}`: max |diff| {worst}");
        }
        // and the ranks agree with each other exactly
        assert_eq!(results[0].1, results[1].1);
    }

    /// A small CNN with a batch norm (PyTorch-exact, `unidl_nn::BatchNorm2d`).
    #[derive(Module, Debug)]
    pub struct BnCnn {
        c1: Conv2d,
        bn: unidl_nn::BatchNorm2d,
        pool: MaxPool2d,
        fc: Linear,
    }

    impl ImageClassifier for BnCnn {
        fn classify(&self, x: BT<4>) -> BT<2> {
            let x = burn::tensor::activation::relu(self.bn.forward(self.c1.forward(x)));
            let x = self.pool.forward(self.pool.forward(x)); // [B, 8, 6, 6]
            self.fc.forward(x.flatten(1, 3))
        }
    }

    fn bn_trainer(
        model: BnCnn,
        dir: PathBuf,
        batch: usize,
        sync: bool,
    ) -> Trainer<BnCnn, ImageClassification> {
        let params = DatasetParams {
            seed: 3,
            range: Some([0, 160]),
            ..DatasetParams::default()
        };
        let train = construct_dataset(&mnist().join("train"), &params).unwrap();
        let cfg = TrainerConfig {
            seed: 5,
            progress: Some(false),
            sync_batch_norm: sync,
            ..TrainerConfig::new(2, batch, dir)
        };
        construct_trainer(
            model,
            &OptimizerConfig::new(OptimizerMethod::Momentum, 0.005),
            Schedule::Constant,
            ImageClassification::default(),
            cfg,
            train,
            None,
            &Device::flex(),
        )
        .unwrap()
    }

    /// Synchronised batch norm (issue 19): two ranks with batch 8 each and
    /// `sync_batch_norm` end with the weights and running statistics of one
    /// process with batch 16 (20 steps, ≤ 1e-5; measured 4.3e-6, the f32
    /// rounding of sums taken in another order); with per-rank statistics
    /// (the default, as DDP) they do not.
    #[test]
    fn sync_batch_norm_equals_one_process_with_the_whole_batch() {
        let dev = Device::flex();
        unidl_backend::seed(&dev, 4);
        let model = BnCnn {
            // no bias before a batch norm (it would cancel; its gradient is
            // rounding noise only)
            c1: Conv2dConfig::new([1, 8], [3, 3])
                .with_bias(false)
                .init(&dev),
            bn: unidl_nn::BatchNorm2dConfig::new(8).init(&dev),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: LinearConfig::new(8 * 6 * 6, 10).init(&dev),
        };
        let init = weights(&model);
        let mut single = bn_trainer(model.clone(), out("sbn-single"), 16, false);
        for e in 0..2 {
            single.train_one_epoch(e).unwrap();
        }
        let expected = weights(single.model());
        assert_ne!(expected, init);
        let ranks = |sync: bool| -> Vec<Vec<(String, Vec<f32>)>> {
            let handles: Vec<_> = ThreadGroup::new(2, std::time::Duration::from_secs(120))
                .into_iter()
                .map(|g| {
                    let dir = out(&format!("sbn-{sync}-{}", g.rank()));
                    let mut t = bn_trainer(model.clone(), dir, 8, sync);
                    std::thread::spawn(move || {
                        t.set_collective(std::sync::Arc::new(g)).unwrap();
                        for e in 0..2 {
                            t.train_one_epoch(e).unwrap();
                        }
                        weights(t.model())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        };
        let synced = ranks(true);
        assert_eq!(synced[0], synced[1]);
        let keys: Vec<&String> = expected.iter().map(|(k, _)| k).collect();
        assert!(keys.iter().any(|k| k.contains("running_var")), "{keys:?}");
        let (d, k) = max_diff(&expected, &synced[0]);
        assert!(d <= 1e-5, "sync batch norm: `{k}` max |diff| {d}");
        let local = ranks(false);
        let (d, _) = max_diff(&expected, &local[0]);
        assert!(d > 1e-4, "per-rank statistics differ: {d}");
    }

    /// Ranks that stand at different steps (one resumed, one not) refuse to
    /// train together: every rank gets an error saying so.
    #[test]
    fn ranks_at_different_steps_are_an_error_on_every_rank() {
        let handles: Vec<_> = ThreadGroup::new(2, std::time::Duration::from_secs(120))
            .into_iter()
            .map(|g| {
                let mut t = trainer(1, 1, out(&format!("dp-steps{}", g.rank())), Some([0, 32]));
                if g.rank() == 0 {
                    // one step ahead (the sampler does not move)
                    let train =
                        construct_dataset(&mnist().join("train"), &DatasetParams::default())
                            .unwrap();
                    let samples: Vec<_> = (0..4)
                        .map(|i| unidl_data::get_sample(&train, i).unwrap())
                        .collect();
                    t.train_one_batch(&samples).unwrap();
                }
                std::thread::spawn(move || {
                    t.set_collective(std::sync::Arc::new(g))
                        .unwrap_err()
                        .to_string()
                })
            })
            .collect();
        for (rank, h) in handles.into_iter().enumerate() {
            let e = h.join().unwrap();
            assert!(
                e.starts_with(&format!("rank {rank}:")) && e.contains("different steps"),
                "{e}"
            );
        }
    }

    /// Only rank 0 writes checkpoints and records; every rank gets the same
    /// epoch records (training loss averaged over ranks, rank 0's validation).
    #[test]
    fn only_rank_0_writes_and_every_rank_sees_the_same_records() {
        let groups = ThreadGroup::new(2, std::time::Duration::from_secs(120));
        let dirs: Vec<PathBuf> = (0..2).map(|r| out(&format!("dp-records{r}"))).collect();
        let handles: Vec<_> = groups
            .into_iter()
            .map(|g| {
                let dir = dirs[g.rank()].clone();
                let mut t = trainer(1, 1, dir, Some([0, 64]));
                std::thread::spawn(move || {
                    t.set_collective(std::sync::Arc::new(g)).unwrap();
                    t.train().unwrap()
                })
            })
            .collect();
        let records: Vec<Vec<EpochRecord>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(records[0].len(), 1);
        let strip = |r: &EpochRecord| EpochRecord {
            seconds: 0.0,
            ..r.clone()
        };
        assert_eq!(strip(&records[0][0]), strip(&records[1][0]));
        assert!(records[0][0].val_loss.is_some());
        assert!(dirs[0].join("checkpoints").is_dir());
        assert!(!dirs[1].exists(), "rank 1 wrote {}", dirs[1].display());
    }

    /// A rank whose partner never comes fails with an error naming the rank
    /// and the timeout (no hang); mismatched sizes are an error too.
    #[test]
    fn a_missing_rank_is_a_timeout_error_naming_the_rank() {
        let mut groups = ThreadGroup::new(2, std::time::Duration::from_millis(200));
        let lonely = groups.remove(0);
        let mut v = [1.0f32, 2.0];
        let e = lonely.all_reduce_sum_f32(&mut v).unwrap_err().to_string();
        assert!(e.starts_with("rank 0:") && e.contains("timed out"), "{e}");
        // the group is broken now: the other rank learns it at once
        let e = groups[0]
            .all_reduce_sum_f32(&mut v)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rank 1:"), "{e}");

        let groups = ThreadGroup::new(2, std::time::Duration::from_secs(5));
        let h: Vec<_> = groups
            .into_iter()
            .map(|g| {
                std::thread::spawn(move || {
                    let mut v = vec![1.0f64; 2 + g.rank()];
                    g.all_reduce_sum_f64(&mut v)
                })
            })
            .collect();
        let errs: Vec<String> = h
            .into_iter()
            .filter_map(|h| h.join().unwrap().err().map(|e| e.to_string()))
            .collect();
        assert!(!errs.is_empty() && errs[0].contains("values"), "{errs:?}");
    }

    /// The collectives sum, broadcast and keep their order over many rounds.
    #[test]
    fn thread_group_collectives_sum_and_broadcast() {
        let groups = ThreadGroup::new(3, std::time::Duration::from_secs(30));
        let h: Vec<_> = groups
            .into_iter()
            .map(|g| {
                std::thread::spawn(move || {
                    let r = g.rank();
                    let mut out = Vec::new();
                    for round in 0..20 {
                        let mut v = [r as f32, (round * 10 + r) as f32];
                        g.all_reduce_sum_f32(&mut v).unwrap();
                        out.push(v.to_vec());
                        let mut b = if r == round % 3 {
                            vec![round as u8; round + 1]
                        } else {
                            vec![]
                        };
                        g.broadcast_bytes(&mut b, round % 3).unwrap();
                        assert_eq!(b, vec![round as u8; round + 1]);
                    }
                    out
                })
            })
            .collect();
        for h in h {
            let out = h.join().unwrap();
            for (round, v) in out.iter().enumerate() {
                assert_eq!(v, &vec![3.0, (round * 30 + 3) as f32]);
            }
        }
    }
}

// ----- metrics against scikit-learn (tests/reference/gen_metrics.py -> metrics.json) -----

#[test]
fn classification_metrics_match_scikit_learn() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/metrics.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let us = |x: &serde_json::Value| -> Vec<usize> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    for case in v["cases"].as_array().unwrap() {
        let classes = case["classes"].as_u64().unwrap() as usize;
        let target = us(&case["target"]);
        let ranking: Vec<Vec<usize>> = case["ranking"].as_array().unwrap().iter().map(us).collect();
        let pred: Vec<usize> = ranking.iter().map(|r| r[0]).collect();
        let close = |a: f64, key: &str| {
            let b = case[key].as_f64().unwrap();
            assert!((a - b).abs() < 1e-12, "{key}: {a} vs scikit-learn {b}");
        };
        close(eval::accuracy(&pred, &target), "accuracy");
        close(eval::top_k_accuracy(&ranking, &target, 3), "top3");
        let (p, r, f) = eval::macro_prf(&pred, &target, classes);
        close(p, "precision_macro");
        close(r, "recall_macro");
        close(f, "f1_macro");
        close(eval::accuracy(&pred, &target), "f1_micro");
        let cm: Vec<Vec<usize>> = case["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(us)
            .collect();
        assert_eq!(eval::confusion_matrix(&pred, &target, classes), cm);
    }
}

// ----- A.2.2.5 a user-defined backward function inside a trained model -----

mod custom_backward {
    use std::path::Path;
    use std::sync::LazyLock;

    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Tensor as BT;
    use unidl_backend::Device;
    use unidl_data::{DatasetParams, construct_dataset, get_sample};
    use unidl_tensor::DType;
    use unidl_tensor::autograd::{BackwardFunction, apply_burn, register_backward_function};
    use unidl_tensor::module::ModuleApi;
    use unidl_train::*;

    /// ReLU whose gradient is written by hand: `dL/dx = dL/dy · [x > 0]`.
    static HAND_RELU: LazyLock<BackwardFunction> = LazyLock::new(|| {
        register_backward_function(
            "hand_relu",
            |x| x.relu(),
            |x, _y, gy| x.gt(&x.zeros_like()?)?.to_dtype(DType::Float32)?.mul(gy),
        )
    });

    /// flatten → Linear → (0.5·h + relu(h)) → Linear; `hand` picks the
    /// user-defined ReLU. `h` reaches the loss both through the function and
    /// around it, so both of Burn's passes cross the first layer.
    #[derive(Module, Debug)]
    struct Mlp {
        a: Linear,
        b: Linear,
    }

    fn hidden(m: &Mlp, images: BT<4>) -> BT<2> {
        m.a.forward(images.flatten(1, 3))
    }

    impl ImageClassifier for Mlp {
        fn classify(&self, images: BT<4>) -> BT<2> {
            let h = hidden(self, images);
            self.b
                .forward(h.clone() * 0.5 + burn::tensor::activation::relu(h))
        }
    }

    impl ImageClassifier for HandMlp {
        fn classify(&self, images: BT<4>) -> BT<2> {
            let h = hidden(&self.m, images);
            let r = apply_burn(&HAND_RELU, h.clone()).expect("hand_relu");
            self.m.b.forward(h * 0.5 + r)
        }
    }

    #[derive(Module, Debug)]
    struct HandMlp {
        m: Mlp,
    }

    fn steps<M: Module + ImageClassifier + Send + Sync + 'static>(model: M, tag: &str) -> M {
        let dev = Device::flex();
        let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist/train");
        let train = construct_dataset(&mnist, &DatasetParams::default()).unwrap();
        let out = std::env::temp_dir().join(format!("unidl-hand-{}-{tag}", std::process::id()));
        let mut t = construct_trainer(
            model,
            &OptimizerConfig::new(OptimizerMethod::Sgd, 0.1),
            Schedule::Constant,
            ImageClassification::default(),
            TrainerConfig {
                progress: Some(false),
                ..TrainerConfig::new(1, 16, out)
            },
            train.clone(),
            None,
            &dev,
        )
        .unwrap();
        for step in 0..3 {
            let samples: Vec<_> = (step * 16..(step + 1) * 16)
                .map(|i| get_sample(&train, i).unwrap())
                .collect();
            t.train_one_batch(&samples).unwrap();
        }
        t.model().clone()
    }

    #[test]
    fn layers_upstream_of_a_user_backward_function_learn_as_with_the_derived_gradient() {
        let dev = Device::flex();
        unidl_backend::seed(&dev, 11);
        let init = Mlp {
            a: LinearConfig::new(28 * 28, 16).init(&dev),
            b: LinearConfig::new(16, 10).init(&dev),
        };
        let before = init.state_dict();
        let native = steps(init.clone(), "native").state_dict();
        let hand = steps(HandMlp { m: init }, "hand").state_dict();
        let moved = |k: &str, sd: &unidl_tensor::module::StateDict, prefix: &str| {
            let x = before[k].to_vec_f32().unwrap();
            let y = sd[&format!("{prefix}{k}")].to_vec_f32().unwrap();
            x.iter()
                .zip(&y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        };
        // The first layer moves at all only if the gradient crossed the function.
        assert!(moved("a.weight", &native, "") > 1e-3);
        for (k, v) in &native {
            let h = hand[&format!("m.{k}")].to_vec_f32().unwrap();
            let worst = v
                .to_vec_f32()
                .unwrap()
                .iter()
                .zip(&h)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{k}: hand-written backward differs by {worst}"
            );
        }
        assert!(moved("a.weight", &hand, "m.") > 1e-3);
        assert_eq!(
            unidl_tensor::autograd::pending(),
            0,
            "applications left pending"
        );
    }
}
