//! `cargo xtask bench wavenet` (or `cargo bench -p unidl-audio --bench
//! wavenet_generation`): samples per second of WaveNet generation, fast
//! incremental ([`WaveNet::generate`]: per-layer queues, one step through
//! every layer on the host) against naive ([`WaveNet::generate_naive`]: the
//! whole forward over the growing signal at every step, on the selected
//! back-end, `UNIDL_BACKEND`, default flex), with the ratio from this one
//! run. Not a test: nothing asserts.
//!
//! Models (random weights, seed 0, eval mode, batch 1, 256 μ-law classes,
//! kernel 3, sampling at temperature 1): a small WaveNet (20 layers in 2
//! stacks, 64 residual, 128 gate and 64 skip channels) without
//! conditioning and with 80-bin mel conditioning upsampled by
//! `[4, 4, 4, 4]` (hop 256), and `WaveNetConfig::mel_vocoder()` (24 layers
//! in 4 stacks, 512/512/256 channels, 24.9 M parameters). With mel
//! conditioning the length is frames × 256. Naive generation is `O(T²)`,
//! so it runs on fewer samples and its rate falls with the length.
//!
//! Each figure is the median of the timed runs (3, `--quick`: 1); the fast
//! path runs once untimed first. `--quick` also generates fewer samples.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use unidl_audio::{GenerationConfig, WaveNet, WaveNetConfig};
use unidl_backend::Device;

type Error = Box<dyn std::error::Error>;

/// Sample rate the real-time factor refers to.
const SAMPLE_RATE: f64 = 16_000.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One benchmarked model and the lengths it generates.
struct Case {
    name: &'static str,
    config: WaveNetConfig,
    /// Samples of fast generation (a multiple of the hop with conditioning).
    fast: usize,
    /// Samples of naive generation; `None` skips it.
    naive: Option<usize>,
}

/// The small model of the former timing test.
fn small() -> WaveNetConfig {
    WaveNetConfig {
        layers: 20,
        stacks: 2,
        residual_channels: 64,
        gate_channels: 128,
        skip_out_channels: 64,
        dropout: 0.0,
        ..WaveNetConfig::default()
    }
}

fn cases(quick: bool) -> Vec<Case> {
    let small_mel = WaveNetConfig {
        cin_channels: Some(80),
        upsample_scales: vec![4, 4, 4, 4],
        ..small()
    };
    let vocoder = WaveNetConfig {
        dropout: 0.0,
        ..WaveNetConfig::mel_vocoder()
    };
    let pick = |full: usize, short: usize| if quick { short } else { full };
    vec![
        Case {
            name: "small, no conditioning",
            config: small(),
            fast: pick(8000, 1000),
            naive: Some(pick(400, 100)),
        },
        Case {
            name: "small, mel conditioning",
            config: small_mel,
            fast: pick(8192, 1024),
            naive: Some(256),
        },
        Case {
            name: "mel_vocoder()",
            config: vocoder,
            fast: pick(1024, 256),
            naive: (!quick).then_some(256),
        },
    ]
}

/// Deterministic mel-like features in [0, 1) for `samples` (whole frames).
fn mel(cin: usize, samples: usize, hop: usize, device: &Device) -> Tensor<3> {
    let frames = samples / hop;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let v: Vec<f32> = (0..cin * frames)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(v, [1, cin, frames]), device)
}

/// Samples per second of `samples` samples: the median of `rounds` runs.
fn rate(
    m: &WaveNet,
    config: &WaveNetConfig,
    samples: usize,
    naive: bool,
    rounds: usize,
    device: &Device,
) -> Result<f64, Error> {
    let cfg = GenerationConfig {
        samples,
        seed: 1,
        ..GenerationConfig::default()
    };
    let c = config
        .cin_channels
        .map(|cin| mel(cin, samples, config.hop_length(), device));
    let run = || -> Result<f64, Error> {
        let t = Instant::now();
        let out = if naive {
            m.generate_naive(c.clone(), None, &cfg)?
        } else {
            m.generate(c.clone(), None, &cfg)?
        };
        let s = t.elapsed().as_secs_f64();
        if out.dims() != [1, samples] {
            return Err(format!("generated {:?}, wanted [1, {samples}]", out.dims()).into());
        }
        Ok(samples as f64 / s)
    };
    if !naive {
        run()?;
    }
    Ok(median(
        (0..rounds).map(|_| run()).collect::<Result<_, _>>()?,
    ))
}

fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 3 };
    let rt = unidl_backend::select(None, None)?;
    let device = rt.device.clone();
    println!(
        "bench wavenet: batch 1, 256 mu-law classes, kernel 3, temperature 1, back-end {}, \
         {} threads available, median of {rounds} run(s) (fast after 1 warm-up)",
        rt.spec,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "\n{:<24} {:>7} {:>6} {:>6} {:>10} {:>8} {:>7} {:>10} {:>8} {:>10}",
        "model",
        "params",
        "field",
        "fast n",
        "samples/s",
        "x RT",
        "naive n",
        "samples/s",
        "x RT",
        "fast/naive"
    );
    for case in cases(quick) {
        unidl_backend::seed(&device, 0);
        let m = case.config.init(&device)?;
        let fast = rate(&m, &case.config, case.fast, false, rounds, &device)?;
        let naive = match case.naive {
            Some(n) => Some((n, rate(&m, &case.config, n, true, rounds, &device)?)),
            None => None,
        };
        let (naive_n, naive_rate, naive_rt, ratio) = match naive {
            Some((n, r)) => (
                n.to_string(),
                format!("{r:.1}"),
                format!("{:.4}", r / SAMPLE_RATE),
                format!("{:.0}x", fast / r),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<24} {:>6.2}M {:>6} {:>6} {:>10.1} {:>8.4} {:>7} {:>10} {:>8} {:>10}",
            case.name,
            m.num_params() as f64 / 1e6,
            m.receptive_field(),
            case.fast,
            fast,
            fast / SAMPLE_RATE,
            naive_n,
            naive_rate,
            naive_rt,
            ratio
        );
    }
    println!(
        "\nx RT: samples/s / 16,000 (1 = real time for 16 kHz audio); naive's rate falls with \
         its length (O(T^2)){}",
        if quick {
            "; --quick skips the mel vocoder's naive run"
        } else {
            ""
        }
    );
    Ok(())
}
