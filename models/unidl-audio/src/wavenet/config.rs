//! [`WaveNetConfig`]: the keys, their checks and the initialisation.

use serde::{Deserialize, Serialize};
use unidl_backend::Device;
use unidl_nn::{
    Conv1d, Conv1dConfig, ConvTranspose2dConfig, DropoutConfig, EmbeddingConfig, Initializer,
    PaddingConfig1d,
};

use super::{ResidualLayer, WaveNet};
use crate::{AudioError, Result};

/// WaveNet configuration; the defaults are `wavenet_vocoder.WaveNet()`'s.
///
/// ```toml
/// out_channels = 256          # μ-law classes
/// layers = 24
/// stacks = 4                  # dilations 1, 2, …, 32, four times
/// residual_channels = 512
/// gate_channels = 512         # both halves (tanh and sigmoid)
/// skip_out_channels = 256
/// kernel_size = 3
/// cin_channels = 80           # log-mel frames
/// upsample_scales = [4, 4, 4, 4]   # hop length 256
/// gin_channels = 16           # speaker embedding
/// n_speakers = 4
///
/// [output]                    # default: { type = "mu_law" }
/// type = "mixture_of_logistics"   # scalar input, out_channels = 3·mixtures
/// num_classes = 65536         # levels of the samples
/// log_scale_min = -7.0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveNetConfig {
    /// Output channels: the μ-law classes (the input's one-hot width and
    /// the output's softmax), or with a mixture of logistics `3·K` for `K`
    /// logistics (their logits, means and log scales).
    #[serde(default = "out_channels")]
    pub out_channels: usize,
    /// Residual layers in all.
    #[serde(default = "layers")]
    pub layers: usize,
    /// Dilation cycles: layer `i` has dilation `2^(i mod layers/stacks)`.
    #[serde(default = "stacks")]
    pub stacks: usize,
    /// Channels of the residual path.
    #[serde(default = "channels")]
    pub residual_channels: usize,
    /// Channels of the dilated convolution's output (both gate halves; even).
    #[serde(default = "channels")]
    pub gate_channels: usize,
    /// Channels of the skip path.
    #[serde(default = "channels")]
    pub skip_out_channels: usize,
    /// Kernel of the dilated convolutions.
    #[serde(default = "kernel_size")]
    pub kernel_size: usize,
    /// Dropout on each residual layer's input (train mode).
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Local conditioning features per frame (`None`: none).
    #[serde(default)]
    pub cin_channels: Option<usize>,
    /// Global conditioning embedding width (`None`: none).
    #[serde(default)]
    pub gin_channels: Option<usize>,
    /// Classes of the global condition (speakers); needs `gin_channels`.
    #[serde(default)]
    pub n_speakers: Option<usize>,
    /// Upsampling of the local conditioning by transposed convolutions;
    /// the product is the hop length. Empty: it comes at the sample rate.
    #[serde(default)]
    pub upsample_scales: Vec<usize>,
    /// Mel-axis kernel of the upsampling convolutions (odd).
    #[serde(default = "freq_axis_kernel_size")]
    pub freq_axis_kernel_size: usize,
    /// Scale the running skip sum by √½ after each addition (the package's
    /// default, `legacy=True`).
    #[serde(default = "yes")]
    pub legacy: bool,
    /// What the model predicts: a softmax over μ-law classes (the default)
    /// or a discretised mixture of logistics over scalar samples.
    #[serde(default)]
    pub output: WaveNetOutput,
}

/// The output (and input) of a [`WaveNet`]: the `output` table of
/// [`WaveNetConfig`] (`[model.output]` in a run config), tagged by `type`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WaveNetOutput {
    /// A softmax over `out_channels` μ-law classes, one-hot class inputs
    /// (`wavenet_vocoder`'s `input_type = "mulaw-quantize"`).
    #[default]
    MuLaw,
    /// A discretised mixture of `out_channels / 3` logistics over scalar
    /// inputs in `[-1, 1]` (`wavenet_vocoder`'s `scalar_input=True` with
    /// `discretized_mix_logistic_loss`); the model's classes are the
    /// `num_classes` levels of a linear quantisation, level `q` the sample
    /// `2q/(num_classes − 1) − 1`.
    MixtureOfLogistics {
        /// Quantisation levels of the samples (the loss's bin width is
        /// `2/(num_classes − 1)`; 65536 for 16-bit audio).
        #[serde(default = "num_classes")]
        num_classes: usize,
        /// The smallest log scale of a logistic (smaller ones are clamped).
        #[serde(default = "log_scale_min")]
        log_scale_min: f32,
    },
}

impl WaveNetOutput {
    /// A mixture of logistics with the package's defaults (65536 levels,
    /// log scales from −7).
    pub fn mixture_of_logistics() -> Self {
        WaveNetOutput::MixtureOfLogistics {
            num_classes: num_classes(),
            log_scale_min: log_scale_min(),
        }
    }
}

fn num_classes() -> usize {
    65_536
}
fn log_scale_min() -> f32 {
    -7.0
}

fn out_channels() -> usize {
    256
}
fn layers() -> usize {
    20
}
fn stacks() -> usize {
    2
}
fn channels() -> usize {
    512
}
fn kernel_size() -> usize {
    3
}
fn dropout() -> f64 {
    0.05
}
fn freq_axis_kernel_size() -> usize {
    3
}
fn yes() -> bool {
    true
}

impl Default for WaveNetConfig {
    fn default() -> Self {
        WaveNetConfig {
            out_channels: out_channels(),
            layers: layers(),
            stacks: stacks(),
            residual_channels: channels(),
            gate_channels: channels(),
            skip_out_channels: channels(),
            kernel_size: kernel_size(),
            dropout: dropout(),
            cin_channels: None,
            gin_channels: None,
            n_speakers: None,
            upsample_scales: Vec::new(),
            freq_axis_kernel_size: freq_axis_kernel_size(),
            legacy: true,
            output: WaveNetOutput::MuLaw,
        }
    }
}

impl WaveNetConfig {
    /// The μ-law mel vocoder of r9y9's recipes: 24 layers in 4 stacks,
    /// 512 residual and gate channels, 256 skip channels, kernel 3, 80 mel
    /// bins upsampled by `[4, 4, 4, 4]` (hop 256); 24,882,228 parameters.
    pub fn mel_vocoder() -> Self {
        WaveNetConfig {
            layers: 24,
            stacks: 4,
            skip_out_channels: 256,
            cin_channels: Some(80),
            upsample_scales: vec![4, 4, 4, 4],
            ..WaveNetConfig::default()
        }
    }

    /// Samples per conditioning frame: the product of `upsample_scales` (1
    /// without).
    pub fn hop_length(&self) -> usize {
        self.upsample_scales.iter().product()
    }

    /// The dilation of every layer.
    pub fn dilations(&self) -> Vec<usize> {
        let per = (self.layers / self.stacks.max(1)).max(1);
        (0..self.layers).map(|i| 1 << (i % per)).collect()
    }

    /// Past samples a prediction sees: `(k − 1)·Σ dilations + 1`.
    pub fn receptive_field(&self) -> usize {
        (self.kernel_size - 1) * self.dilations().iter().sum::<usize>() + 1
    }

    fn check(&self) -> Result<()> {
        let bad = |key: &str, reason: String| AudioError::Config {
            key: key.into(),
            reason,
        };
        for (key, v) in [
            ("layers", self.layers),
            ("stacks", self.stacks),
            ("residual_channels", self.residual_channels),
            ("skip_out_channels", self.skip_out_channels),
            ("kernel_size", self.kernel_size),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        match self.output {
            WaveNetOutput::MuLaw => {
                if self.out_channels < 2 {
                    return Err(bad("out_channels", "must be at least 2 classes".into()));
                }
            }
            WaveNetOutput::MixtureOfLogistics {
                num_classes,
                log_scale_min,
            } => {
                if self.out_channels == 0 || !self.out_channels.is_multiple_of(3) {
                    return Err(bad(
                        "out_channels",
                        format!(
                            "{}: a mixture of logistics needs 3 channels per logistic (logit, \
                             mean, log scale), a positive multiple of 3",
                            self.out_channels
                        ),
                    ));
                }
                if num_classes < 2 {
                    return Err(bad(
                        "output.num_classes",
                        format!("{num_classes}: needs at least 2 levels"),
                    ));
                }
                if !log_scale_min.is_finite() {
                    return Err(bad(
                        "output.log_scale_min",
                        format!("{log_scale_min} must be finite"),
                    ));
                }
            }
        }
        if !self.layers.is_multiple_of(self.stacks) {
            return Err(bad(
                "stacks",
                format!(
                    "{} layers do not split into {} stacks",
                    self.layers, self.stacks
                ),
            ));
        }
        if self.layers / self.stacks > 30 {
            return Err(bad(
                "layers",
                format!(
                    "{} layers per stack: dilation 2^{} is too large",
                    self.layers / self.stacks,
                    self.layers / self.stacks - 1
                ),
            ));
        }
        if self.gate_channels < 2 || !self.gate_channels.is_multiple_of(2) {
            return Err(bad(
                "gate_channels",
                format!(
                    "{} must be even and at least 2 (tanh and sigmoid halves)",
                    self.gate_channels
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad(
                "dropout",
                format!("{} is outside [0, 1)", self.dropout),
            ));
        }
        if self.cin_channels == Some(0) {
            return Err(bad("cin_channels", "must be at least 1 (or absent)".into()));
        }
        match (self.gin_channels, self.n_speakers) {
            (Some(0), _) => {
                return Err(bad("gin_channels", "must be at least 1 (or absent)".into()));
            }
            (Some(_), None) | (Some(_), Some(0)) => {
                return Err(bad(
                    "n_speakers",
                    "global conditioning (gin_channels) needs at least 1 class".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad("n_speakers", "needs gin_channels".into()));
            }
            _ => {}
        }
        if !self.upsample_scales.is_empty() && self.cin_channels.is_none() {
            return Err(bad(
                "upsample_scales",
                "upsamples local conditioning: needs cin_channels".into(),
            ));
        }
        if self.upsample_scales.contains(&0) {
            return Err(bad(
                "upsample_scales",
                format!("{:?}: every scale must be at least 1", self.upsample_scales),
            ));
        }
        if self.freq_axis_kernel_size.is_multiple_of(2) {
            return Err(bad(
                "freq_axis_kernel_size",
                format!(
                    "{} must be odd (the mel axis keeps its size)",
                    self.freq_axis_kernel_size
                ),
            ));
        }
        Ok(())
    }

    /// Builds the model, initialised as the package does (convolutions
    /// `N(0, √((1 − dropout)/(k·in)))` for the dilated ones and `N(0, √(1/in))`
    /// for the 1×1 ones, zero biases, speaker embedding `N(0, 0.1)`,
    /// upsampling kernels `1/freq_axis_kernel_size`). A zero size, an odd
    /// gate width, layers that do not split into the stacks, conditioning
    /// keys that do not go together are [`AudioError::Config`] naming the key.
    pub fn init(&self, device: &Device) -> Result<WaveNet> {
        self.check()?;
        // the first convolution's input: one-hot classes or one scalar
        let input = match self.output {
            WaveNetOutput::MuLaw => self.out_channels,
            WaveNetOutput::MixtureOfLogistics { .. } => 1,
        };
        let (q, r, g, s) = (
            self.out_channels,
            self.residual_channels,
            self.gate_channels,
            self.skip_out_channels,
        );
        let k = self.kernel_size;
        let conv_layers = self
            .dilations()
            .into_iter()
            .map(|d| ResidualLayer {
                conv: conv1d(r, g, k, d, (1.0 - self.dropout) / (k * r) as f64, device),
                conv1x1c: self
                    .cin_channels
                    .map(|c| conv1d(c, g, 1, 1, 1.0 / c as f64, device)),
                conv1x1g: self
                    .gin_channels
                    .map(|c| conv1d(c, g, 1, 1, 1.0 / c as f64, device)),
                conv1x1_out: conv1d(g / 2, r, 1, 1, 2.0 / g as f64, device),
                conv1x1_skip: conv1d(g / 2, s, 1, 1, 2.0 / g as f64, device),
                dropout: DropoutConfig::new(self.dropout).init(),
            })
            .collect();
        let fk = self.freq_axis_kernel_size;
        let upsample = self
            .upsample_scales
            .iter()
            .map(|&scale| {
                let mut t = ConvTranspose2dConfig::new([1, 1], [fk, scale])
                    .with_stride([1, scale])
                    .with_padding([(fk - 1) / 2, 0])
                    .with_initializer(Initializer::Constant {
                        value: 1.0 / fk as f64,
                    })
                    .init(device);
                t.bias = Some(Initializer::Zeros.init([1], device));
                t
            })
            .collect();
        Ok(WaveNet {
            first_conv: conv1d(input, r, 1, 1, 1.0 / input as f64, device),
            conv_layers,
            last_conv1: conv1d(s, s, 1, 1, 1.0 / s as f64, device),
            last_conv2: conv1d(s, q, 1, 1, 1.0 / s as f64, device),
            embed_speakers: self.gin_channels.zip(self.n_speakers).map(|(gin, n)| {
                EmbeddingConfig::new(n, gin)
                    .with_initializer(Initializer::Normal {
                        mean: 0.0,
                        std: 0.1,
                    })
                    .init(device)
            }),
            upsample,
            out_channels: q,
            cin_channels: self.cin_channels.unwrap_or(0),
            n_speakers: self.n_speakers.unwrap_or(0),
            hop_length: self.hop_length(),
            legacy: self.legacy,
            output: self.output,
        })
    }
}

/// A causal dilated convolution (left padding `(k − 1)·d`) with weights
/// `N(0, √variance)` and a zero bias.
fn conv1d(cin: usize, cout: usize, k: usize, d: usize, variance: f64, device: &Device) -> Conv1d {
    let mut conv = Conv1dConfig::new(cin, cout, k)
        .with_dilation(d)
        .with_padding(PaddingConfig1d::Explicit((k - 1) * d, 0))
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: variance.sqrt(),
        })
        .init(device);
    conv.bias = Some(Initializer::Zeros.init([cout], device));
    conv
}
