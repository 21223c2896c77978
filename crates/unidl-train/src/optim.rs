//! Optimizers (§6.2.3.1, B.3): `construct_optimizer`, `update_learnable_parameter`,
//! `zero_gradient`, on top of burn-optim's implementations.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdaGradConfig, AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, RmsPropConfig,
    SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::tensor::Tensor as BT;
use serde::Deserialize;
use unidl_tensor::Tensor;

use crate::error::{Result, TrainError};

/// The algorithm (`optimizer_method` in the standard's config).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerMethod {
    /// Plain stochastic gradient descent.
    Sgd,
    /// SGD with (heavy-ball) momentum.
    Momentum,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adam.
    Adam,
    /// Adam with decoupled weight decay.
    AdamW,
    /// RMSprop.
    RmsProp,
    /// Adagrad.
    Adagrad,
}

fn default_momentum() -> f64 {
    0.9
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}

/// The standard's optimizer config (B.3.1): `optimizer_method`,
/// `base_learningrate`, `momentum`, `weight_decay`, plus Adam's `betas` and `eps`.
/// Unknown keys are errors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Algorithm.
    pub optimizer_method: OptimizerMethod,
    /// Learning rate before any schedule (> 0).
    pub base_learningrate: f64,
    /// Momentum in [0, 1) (momentum, nesterov; RMSprop's momentum).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// L2 weight decay (≥ 0); decoupled for AdamW.
    #[serde(default)]
    pub weight_decay: f64,
    /// Adam/AdamW betas, each in [0, 1).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Numerical-stability epsilon (> 0).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Clip each parameter's gradient to this L2 norm (> 0).
    #[serde(default)]
    pub grad_clip_norm: Option<f64>,
    /// Clip every gradient element to `[-v, v]` (> 0).
    #[serde(default)]
    pub grad_clip_value: Option<f64>,
}

impl OptimizerConfig {
    /// A config with the method and learning rate and the defaults for the rest.
    pub fn new(method: OptimizerMethod, lr: f64) -> Self {
        OptimizerConfig {
            optimizer_method: method,
            base_learningrate: lr,
            momentum: default_momentum(),
            weight_decay: 0.0,
            betas: default_betas(),
            eps: default_eps(),
            grad_clip_norm: None,
            grad_clip_value: None,
        }
    }

    /// Parses a TOML table; errors name the key.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| TrainError::Config {
            key: "optimizer".into(),
            reason: e.message().to_string(),
        })
    }

    /// Checks every range (B.3.1 "config cannot be parsed or is out of range").
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, reason: String| {
            Err(TrainError::Config {
                key: key.into(),
                reason,
            })
        };
        if !(self.base_learningrate > 0.0 && self.base_learningrate.is_finite()) {
            return bad(
                "base_learningrate",
                format!("{} must be a positive number", self.base_learningrate),
            );
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("{} is outside [0, 1)", self.momentum));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(
                "weight_decay",
                format!("{} must be >= 0", self.weight_decay),
            );
        }
        for (i, b) in self.betas.iter().enumerate() {
            if !(0.0..1.0).contains(b) {
                return bad(&format!("betas[{i}]"), format!("{b} is outside [0, 1)"));
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return bad("eps", format!("{} must be positive", self.eps));
        }
        for (key, v) in [
            ("grad_clip_norm", self.grad_clip_norm),
            ("grad_clip_value", self.grad_clip_value),
        ] {
            if let Some(v) = v
                && !(v > 0.0 && v.is_finite())
            {
                return bad(key, format!("{v} must be a positive number"));
            }
        }
        if self.grad_clip_norm.is_some() && self.grad_clip_value.is_some() {
            return bad(
                "grad_clip_norm",
                "set grad_clip_norm or grad_clip_value, not both".into(),
            );
        }
        Ok(())
    }
}

/// An optimizer bound to a model: the algorithm's state, the learning rate and
/// the gradients of the last backward pass.
pub struct Optimizer {
    inner: ModuleOptimizer,
    config: OptimizerConfig,
    lr: f64,
    grads: Option<GradientsParams>,
    steps: u64,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Optimizer({:?}, lr={}, steps={})",
            self.config.optimizer_method, self.lr, self.steps
        )
    }
}

/// Finiteness of every float parameter (or, with `grads`, of every gradient
/// that reached a parameter), gathered as lazy one-element flags and read
/// back in one transfer, so the NaN guard costs one device sync per check
/// instead of one per parameter.
struct Finite<'a> {
    stack: Vec<String>,
    grads: Option<&'a GradientsParams>,
    names: Vec<String>,
    flags: Vec<BT<1, burn::tensor::Bool>>,
}

impl<'a> Finite<'a> {
    fn new(grads: Option<&'a GradientsParams>) -> Self {
        Finite {
            stack: Vec::new(),
            grads,
            names: Vec::new(),
            flags: Vec::new(),
        }
    }

    /// Number of tensors checked and the path of the first non-finite one.
    fn first_bad(self) -> Result<(usize, Option<String>)> {
        let n = self.names.len();
        if n == 0 {
            return Ok((0, None));
        }
        // As floats: every back-end reads f32 back, whatever it stores bools as.
        let flags: Vec<BT<1>> = self.flags.into_iter().map(|f| f.float()).collect();
        let all = BT::cat(flags, 0)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Model(format!("reading finiteness flags: {e:?}")))?;
        let bad = all.iter().position(|&f| f < 0.5);
        Ok((n, bad.map(|i| self.names[i].clone())))
    }
}

impl ModuleVisitor for Finite<'_> {
    fn enter_module(&mut self, name: &str, _c: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _c: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<BT<D>>) {
        let flag = match self.grads {
            Some(g) => match g.get::<D>(param.id) {
                Some(g) => g.is_finite().all(),
                None => return,
            },
            None => param.val().is_finite().all(),
        };
        self.names.push(self.stack.join("."));
        self.flags.push(flag);
    }
}

/// Counts float parameters.
#[derive(Default)]
struct CountParams(usize);

impl ModuleVisitor for CountParams {
    fn visit_float<const D: usize>(&mut self, _param: &Param<BT<D>>) {
        self.0 += 1;
    }
}

/// `construct_optimizer(model, optimizer_config)` (B.3.1). Config errors name
/// the key; a model without trainable parameters is [`TrainError::Model`].
pub fn construct_optimizer<M: Module>(model: &M, config: &OptimizerConfig) -> Result<Optimizer> {
    config.validate()?;
    let mut p = CountParams::default();
    model.visit(&mut p);
    if p.0 == 0 {
        return Err(TrainError::Model(
            "the model has no float parameters to optimize".into(),
        ));
    }
    let wd = (config.weight_decay > 0.0).then_some(WeightDecayConfig {
        penalty: config.weight_decay as f32,
    });
    let momentum = |nesterov: bool| MomentumConfig {
        momentum: config.momentum,
        dampening: 0.0,
        nesterov,
    };
    let inner = match config.optimizer_method {
        OptimizerMethod::Sgd => SgdConfig::new().with_weight_decay(wd).init(),
        OptimizerMethod::Momentum => SgdConfig::new()
            .with_weight_decay(wd)
            .with_momentum(Some(momentum(false)))
            .init(),
        OptimizerMethod::Nesterov => SgdConfig::new()
            .with_weight_decay(wd)
            .with_momentum(Some(momentum(true)))
            .init(),
        OptimizerMethod::Adam => AdamConfig::new()
            .with_beta_1(config.betas[0] as f32)
            .with_beta_2(config.betas[1] as f32)
            .with_epsilon(config.eps as f32)
            .with_weight_decay(wd)
            .init(),
        OptimizerMethod::AdamW => AdamWConfig::new()
            .with_beta_1(config.betas[0] as f32)
            .with_beta_2(config.betas[1] as f32)
            .with_epsilon(config.eps as f32)
            .with_weight_decay(config.weight_decay as f32)
            .init(),
        OptimizerMethod::RmsProp => RmsPropConfig::new()
            .with_momentum(config.momentum as f32)
            .with_epsilon(config.eps as f32)
            .with_weight_decay(wd)
            .init(),
        OptimizerMethod::Adagrad => AdaGradConfig::new()
            .with_epsilon(config.eps as f32)
            .with_weight_decay(wd)
            .init(),
    };
    let inner = match (config.grad_clip_norm, config.grad_clip_value) {
        (Some(n), _) => {
            inner.with_grad_clipping(burn::grad_clipping::GradientClipping::Norm(n as f32))
        }
        (_, Some(v)) => {
            inner.with_grad_clipping(burn::grad_clipping::GradientClipping::Value(v as f32))
        }
        _ => inner,
    };
    Ok(Optimizer {
        inner,
        config: config.clone(),
        lr: config.base_learningrate,
        grads: None,
        steps: 0,
    })
}

/// Gradients of `model`'s parameters from `loss` (through any user-defined
/// backward function; an error one raised is returned).
fn param_gradients<M: Module>(loss: &Tensor, model: &M) -> Result<GradientsParams> {
    let grads = unidl_tensor::autograd::backward(loss)?.into_inner();
    Ok(GradientsParams::from_grads(grads, model))
}

impl Optimizer {
    /// The config it was built from.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (schedules call this; O-a "learning-rate update").
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(TrainError::Config {
                key: "learning_rate".into(),
                reason: format!("{lr} is not a finite non-negative number"),
            });
        }
        self.lr = lr;
        Ok(())
    }

    /// Number of updates applied.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Runs backward from `loss` and keeps the gradients of `model`'s parameters
    /// for the next [`update_learnable_parameter`] (gradient computation, O-a).
    /// The backward runs through Burn's graph and through every user-defined
    /// backward function the forward applied (`unidl_tensor::autograd::apply`),
    /// so parameters upstream of one get their gradients too (A.2.2.5).
    pub fn backward<M: Module>(&mut self, loss: &Tensor, model: &M) -> Result<()> {
        self.grads = Some(param_gradients(loss, model)?);
        Ok(())
    }

    /// Runs backward from `loss` and adds the gradients to those already held
    /// (gradient accumulation over micro-batches).
    pub fn backward_accumulate<M: Module>(&mut self, loss: &Tensor, model: &M) -> Result<()> {
        let new = param_gradients(loss, model)?;
        let mut acc = burn::optim::GradientsAccumulator::<M>::new();
        if let Some(old) = self.grads.take() {
            acc.accumulate(model, old);
        }
        acc.accumulate(model, new);
        self.grads = Some(acc.grads());
        Ok(())
    }

    /// Averages the pending gradients over the ranks of `group` (the
    /// data-parallel step between backward and update); no-op with one rank.
    pub fn average_gradients<M: Module>(
        &mut self,
        model: &M,
        group: &dyn crate::dist::Collective,
    ) -> Result<()> {
        if let Some(grads) = self.grads.as_mut() {
            crate::dist::average_gradients(model, grads, group, crate::dist::BUCKET_BYTES)?;
        }
        Ok(())
    }

    /// Drops held gradients (after a failed step).
    pub fn clear_gradients(&mut self) {
        self.grads = None;
    }

    /// Whether gradients are waiting.
    pub fn has_gradients(&self) -> bool {
        self.grads.as_ref().is_some_and(|g| !g.is_empty())
    }

    /// Serialised optimizer state (moments etc.) for checkpoints.
    pub fn state_bytes(&self) -> Result<Vec<u8>> {
        self.inner
            .into_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| TrainError::Checkpoint(e.to_string()))
    }

    /// Restores state written by [`Optimizer::state_bytes`].
    pub fn load_state_bytes(self, bytes: Vec<u8>, steps: u64, lr: f64) -> Result<Self> {
        let inner = self
            .inner
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        Ok(Optimizer {
            inner,
            steps,
            lr,
            ..self
        })
    }
}

/// `update_learnable_parameter(model, optimizer) -> model` (B.3.2, O-b): one
/// step with the gradients of the last [`Optimizer::backward`]. Errors: no
/// gradients (no backward ran, or none reached the model); a non-finite
/// gradient, or a parameter that became non-finite — each naming the parameter.
pub fn update_learnable_parameter<M: Module>(model: M, optimizer: &mut Optimizer) -> Result<M> {
    let grads = optimizer.grads.take().ok_or(TrainError::NoGradients)?;
    let mut check = Finite::new(Some(&grads));
    model.visit(&mut check);
    let (found, bad) = check.first_bad()?;
    if found == 0 {
        return Err(TrainError::NoGradients);
    }
    if let Some(param) = bad {
        return Err(TrainError::NonFinite {
            what: "gradient".into(),
            param,
            step: optimizer.steps,
        });
    }
    let model = optimizer.inner.step(optimizer.lr, model, grads);
    optimizer.steps += 1;
    if let Some(param) = first_non_finite_parameter(&model)? {
        return Err(TrainError::NonFinite {
            what: "parameter after the update".into(),
            param,
            step: optimizer.steps,
        });
    }
    Ok(model)
}

/// The path of the first float parameter of `model` holding a NaN or an
/// infinity (one device read for all of them).
pub(crate) fn first_non_finite_parameter<M: Module>(model: &M) -> Result<Option<String>> {
    let mut p = Finite::new(None);
    model.visit(&mut p);
    Ok(p.first_bad()?.1)
}

/// `zero_gradient(model, optimizer) -> model` (B.3.3): drops the gradients
/// held for the next update. Burn keeps no gradient inside the model, so the
/// model is returned as it is.
pub fn zero_gradient<M: Module>(model: M, optimizer: &mut Optimizer) -> M {
    optimizer.grads = None;
    model
}
