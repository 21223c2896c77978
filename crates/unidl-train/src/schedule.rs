//! Learning-rate schedules (O-a "learning-rate update"): pure functions of the
//! step (and, for reduce-on-plateau, of the metric history).

use serde::Deserialize;

use crate::error::{Result, TrainError};

/// A schedule as written in a config (`type = "…"`). The learning rate at step
/// `t` (0-based, counted in optimizer updates) is `base_lr * factor(t)`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Always `base_lr`.
    Constant,
    /// Multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between decays.
        step_size: u64,
        /// Factor.
        gamma: f64,
    },
    /// Multiply by `gamma` at each milestone.
    MultiStep {
        /// Steps at which to decay.
        milestones: Vec<u64>,
        /// Factor.
        gamma: f64,
    },
    /// `gamma^t`.
    Exponential {
        /// Per-step factor.
        gamma: f64,
    },
    /// Linear warm-up over `warmup_steps`, then cosine decay to `min_factor` at `total_steps`.
    Cosine {
        /// Warm-up length.
        #[serde(default)]
        warmup_steps: u64,
        /// Total length.
        total_steps: u64,
        /// Final factor.
        #[serde(default)]
        min_factor: f64,
    },
    /// Linear warm-up from `start_factor` to 1 over `warmup_steps`, then constant.
    LinearWarmup {
        /// Warm-up length.
        warmup_steps: u64,
        /// Starting factor.
        #[serde(default)]
        start_factor: f64,
    },
    /// One-cycle: up from `max_factor / div_factor` to `max_factor` for `pct_start`
    /// of `total_steps`, then cosine down to `max_factor / final_div_factor`.
    OneCycle {
        /// Total length.
        total_steps: u64,
        /// Peak factor.
        #[serde(default = "one")]
        max_factor: f64,
        /// Fraction of the cycle spent increasing.
        #[serde(default = "pct")]
        pct_start: f64,
        /// Start = peak / div_factor.
        #[serde(default = "twenty_five")]
        div_factor: f64,
        /// End = peak / final_div_factor.
        #[serde(default = "ten_thousand")]
        final_div_factor: f64,
    },
}

fn one() -> f64 {
    1.0
}
fn pct() -> f64 {
    0.3
}
fn twenty_five() -> f64 {
    25.0
}
fn ten_thousand() -> f64 {
    1e4
}

fn cosine(from: f64, to: f64, frac: f64) -> f64 {
    to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * frac.clamp(0.0, 1.0)).cos())
}

impl Schedule {
    /// Checks the parameters; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |k: &str, r: &str| {
            Err(TrainError::Config {
                key: format!("schedule.{k}"),
                reason: r.into(),
            })
        };
        match self {
            Schedule::Step { step_size: 0, .. } => bad("step_size", "must be at least 1"),
            Schedule::Step { gamma, .. }
            | Schedule::MultiStep { gamma, .. }
            | Schedule::Exponential { gamma }
                if !(*gamma > 0.0 && *gamma <= 1.0) =>
            {
                bad("gamma", "must be in (0, 1]")
            }
            Schedule::Cosine {
                total_steps,
                warmup_steps,
                ..
            } if *total_steps == 0 || warmup_steps > total_steps => {
                bad("total_steps", "must be positive and at least warmup_steps")
            }
            Schedule::LinearWarmup { start_factor, .. } if !(0.0..=1.0).contains(start_factor) => {
                bad("start_factor", "must be in [0, 1]")
            }
            Schedule::OneCycle { total_steps: 0, .. } => bad("total_steps", "must be positive"),
            Schedule::OneCycle { pct_start, .. } if !(0.0..1.0).contains(pct_start) => {
                bad("pct_start", "must be in [0, 1)")
            }
            _ => Ok(()),
        }
    }

    /// The learning-rate factor at step `t`.
    pub fn factor(&self, t: u64) -> f64 {
        match self {
            Schedule::Constant => 1.0,
            Schedule::Step { step_size, gamma } => gamma.powi((t / step_size) as i32),
            Schedule::MultiStep { milestones, gamma } => {
                gamma.powi(milestones.iter().filter(|&&m| t >= m).count() as i32)
            }
            Schedule::Exponential { gamma } => gamma.powf(t as f64),
            Schedule::Cosine {
                warmup_steps,
                total_steps,
                min_factor,
            } => {
                if t < *warmup_steps {
                    (t + 1) as f64 / *warmup_steps as f64
                } else {
                    let span = (total_steps - warmup_steps).max(1) as f64;
                    cosine(1.0, *min_factor, (t - warmup_steps) as f64 / span)
                }
            }
            Schedule::LinearWarmup {
                warmup_steps,
                start_factor,
            } => {
                if t >= *warmup_steps {
                    1.0
                } else {
                    start_factor + (1.0 - start_factor) * t as f64 / *warmup_steps as f64
                }
            }
            Schedule::OneCycle {
                total_steps,
                max_factor,
                pct_start,
                div_factor,
                final_div_factor,
            } => {
                let up = ((*total_steps as f64) * pct_start).max(1.0);
                let start = max_factor / div_factor;
                let end = max_factor / final_div_factor;
                let t = t as f64;
                if t < up {
                    cosine(start, *max_factor, t / up)
                } else {
                    cosine(
                        *max_factor,
                        end,
                        (t - up) / (*total_steps as f64 - up).max(1.0),
                    )
                }
            }
        }
    }
}

/// Reduce-on-plateau: multiplies the factor by `gamma` when the monitored
/// metric has not improved by more than `threshold` for `patience` evaluations.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReduceOnPlateau {
    /// Evaluations without improvement before reducing.
    pub patience: usize,
    /// Reduction factor in (0, 1).
    pub gamma: f64,
    /// `true` when larger is better (accuracy), `false` for losses.
    #[serde(default)]
    pub maximize: bool,
    /// Minimum change that counts as improvement.
    #[serde(default)]
    pub threshold: f64,
    /// Lowest factor.
    #[serde(default)]
    pub min_factor: f64,
    #[serde(skip)]
    best: Option<f64>,
    #[serde(skip)]
    bad: usize,
    #[serde(skip, default = "one")]
    factor: f64,
}

impl ReduceOnPlateau {
    /// A plateau reducer.
    pub fn new(patience: usize, gamma: f64, maximize: bool) -> Result<Self> {
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err(TrainError::Config {
                key: "reduce_on_plateau.gamma".into(),
                reason: format!("{gamma} must be in (0, 1)"),
            });
        }
        Ok(ReduceOnPlateau {
            patience,
            gamma,
            maximize,
            threshold: 0.0,
            min_factor: 0.0,
            best: None,
            bad: 0,
            factor: 1.0,
        })
    }

    /// Records one evaluation of the metric and returns the current factor.
    pub fn observe(&mut self, metric: f64) -> f64 {
        let improved = match self.best {
            None => true,
            Some(b) if self.maximize => metric > b + self.threshold,
            Some(b) => metric < b - self.threshold,
        };
        if improved {
            self.best = Some(metric);
            self.bad = 0;
        } else {
            self.bad += 1;
            if self.bad > self.patience {
                self.factor = (self.factor * self.gamma).max(self.min_factor);
                self.bad = 0;
            }
        }
        self.factor
    }

    /// The current factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }
}
