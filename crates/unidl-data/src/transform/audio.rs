//! Audio transforms (§6.2.2.2, §6.2.3.4): speed, pitch shift, background noise
//! at an SNR, gain, time shift, resampling, log-mel spectrograms and
//! SpecAugment.
//!
//! Each works on the input named by its `input` key (default `"audio"`), an
//! [`Input::Audio`] with interleaved samples; `mel_spectrogram` turns it into an
//! [`Input::Tensor`] `[channels, n_mels, frames]` and `spec_augment` masks such
//! a tensor. Every random draw comes from the `rng` argument (D10), so the
//! output is reproducible per (seed, epoch, index).
//!
//! DSP is done in `f64`: FFTs through `realfft`, short-time Fourier transforms
//! with a periodic Hann window and reflect padding (as `torch.stft(center=True)`),
//! arbitrary-ratio resampling with `rubato`'s windowed-sinc resampler and
//! rate-to-rate resampling with its FFT resampler.

use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng as _;
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;
use serde::Deserialize;

use super::{Rng, Transform};
use crate::error::{DataError, Result};
use crate::sample::{Audio, HostTensor, Input, Sample};

fn default_input() -> String {
    "audio".into()
}

/// Deserialisers of sizes that name their key when a config gives a
/// negative or non-integer value (serde's own message names neither).
macro_rules! size_key {
    ($fn_name:ident, $key:literal) => {
        fn $fn_name<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> std::result::Result<usize, D::Error> {
            let v = i64::deserialize(d)?;
            usize::try_from(v).map_err(|_| {
                serde::de::Error::custom(format!("`{}` = {v} must be a non-negative integer", $key))
            })
        }
    };
}

size_key!(mel_n_fft, "mel_spectrogram.n_fft");
size_key!(mel_n_mels, "mel_spectrogram.n_mels");
size_key!(pitch_n_fft, "pitch_shift.n_fft");

fn mel_hop<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<usize>, D::Error> {
    size_key!(hop, "mel_spectrogram.hop_length");
    hop(d).map(Some)
}

/// A short name of an input's kind, for error messages.
pub(crate) fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Image(_) => "an image",
        Input::Video(..) => "a video",
        Input::Audio(_) => "audio",
        Input::Text(_) => "text",
        Input::Tokens(_) => "tokens",
        Input::Tensor(_) => "a tensor",
    }
}

/// The audio input `input` of `s`, or a transform error naming both.
fn audio_mut<'a>(s: &'a mut Sample, input: &str, name: &str) -> Result<&'a mut Audio> {
    let source = s.source.clone();
    match s.inputs.get_mut(input) {
        Some(Input::Audio(a)) => {
            if a.channels == 0 || a.sample_rate == 0 {
                return Err(DataError::transform(
                    name,
                    format!(
                        "input `{input}` of sample `{source}` has {} channels at {} Hz",
                        a.channels, a.sample_rate
                    ),
                ));
            }
            if a.samples.len() % usize::from(a.channels) != 0 {
                return Err(DataError::transform(
                    name,
                    format!(
                        "input `{input}` of sample `{source}` has {} samples, not a multiple of {} channels",
                        a.samples.len(),
                        a.channels
                    ),
                ));
            }
            Ok(a)
        }
        Some(other) => Err(DataError::transform(
            name,
            format!(
                "input `{input}` of sample `{source}` is {}, not audio",
                input_kind(other)
            ),
        )),
        None => Err(DataError::transform(
            name,
            format!("sample `{source}` has no input `{input}`"),
        )),
    }
}

/// A value drawn uniformly from `[r0, r1]` (exactly `r0` when the range is a point).
fn draw(rng: &mut Rng, r: [f32; 2]) -> f64 {
    if r[0] < r[1] {
        rng.random_range(f64::from(r[0])..=f64::from(r[1]))
    } else {
        f64::from(r[0])
    }
}

/// Checks that `r` is a finite `[min, max]` inside `[lo, hi]`.
fn check_range(key: &str, r: [f32; 2], lo: f32, hi: f32) -> Result<()> {
    if r.iter().all(|v| v.is_finite() && (lo..=hi).contains(v)) && r[0] <= r[1] {
        Ok(())
    } else {
        Err(DataError::config(
            key,
            format!("{r:?} must be [min, max] with min <= max, both in [{lo}, {hi}]"),
        ))
    }
}

fn deinterleave(samples: &[f32], channels: usize) -> Vec<Vec<f64>> {
    (0..channels)
        .map(|c| {
            samples
                .iter()
                .skip(c)
                .step_by(channels)
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect()
}

fn interleave(chans: &[Vec<f64>]) -> Vec<f32> {
    let frames = chans.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(frames * chans.len());
    for i in 0..frames {
        for ch in chans {
            out.push(ch[i] as f32);
        }
    }
    out
}

/// Trims or zero-pads interleaved audio to exactly `frames` frames.
fn fix_frames(mut samples: Vec<f32>, channels: usize, frames: usize) -> Vec<f32> {
    samples.resize(frames * channels, 0.0);
    samples
}

/// Resamples interleaved audio by `ratio` (output rate / input rate) with
/// rubato's windowed-sinc resampler; the delay is trimmed off and the result
/// has `round(frames * ratio)` frames.
fn resample_by_ratio(samples: &[f32], channels: usize, ratio: f64) -> Result<Vec<f32>, String> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Async, FixedAsync, Resampler, SincInterpolationParameters, WindowFunction};

    let frames = samples.len() / channels;
    let target = (frames as f64 * ratio).round() as usize;
    if frames == 0 {
        return Ok(Vec::new());
    }
    let input = InterleavedSlice::new(samples, channels, frames).map_err(|e| e.to_string())?;
    let params = SincInterpolationParameters::new(128, WindowFunction::BlackmanHarris2);
    let mut resampler =
        Async::<f32>::new_sinc(ratio, 1.0, &params, 1024, channels, FixedAsync::Input)
            .map_err(|e| e.to_string())?;
    let out = resampler
        .process_all(&input, frames, None)
        .map_err(|e| e.to_string())?;
    Ok(fix_frames(out.take_data(), channels, target))
}

/// Resamples interleaved audio from `from` Hz to `to` Hz with rubato's
/// synchronous FFT resampler: `ceil(frames * to / from)` frames, delay trimmed.
fn resample_rate(samples: &[f32], channels: usize, from: u32, to: u32) -> Result<Vec<f32>, String> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Fft, FixedSync, Resampler};

    let frames = samples.len() / channels;
    if from == to || frames == 0 {
        return Ok(samples.to_vec());
    }
    let input = InterleavedSlice::new(samples, channels, frames).map_err(|e| e.to_string())?;
    let mut resampler =
        Fft::<f32>::new(from as usize, to as usize, 1024, channels, FixedSync::Input)
            .map_err(|e| e.to_string())?;
    let out = resampler
        .process_all(&input, frames, None)
        .map_err(|e| e.to_string())?;
    Ok(out.take_data())
}

// ---------------------------------------------------------------------------
// STFT

/// A periodic Hann window (`torch.hann_window(n)`).
fn hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

/// Pads `pad` values on both sides by reflection (`torch` `reflect` mode);
/// a clip too short to reflect is zero-padded instead.
fn pad_center(x: &[f64], pad: usize) -> Vec<f64> {
    let n = x.len();
    let mut out = Vec::with_capacity(n + 2 * pad);
    if n > pad {
        out.extend((0..pad).map(|i| x[pad - i]));
        out.extend_from_slice(x);
        out.extend((0..pad).map(|i| x[n - 2 - i]));
    } else {
        out.extend(std::iter::repeat_n(0.0, pad));
        out.extend_from_slice(x);
        out.extend(std::iter::repeat_n(0.0, pad));
    }
    out
}

/// Short-time Fourier transform: frames of `n_fft` samples every `hop`,
/// windowed, with `n_fft / 2` samples of padding on each side when `center`.
/// Returns `frames × (n_fft / 2 + 1)` bins.
fn stft(
    x: &[f64],
    n_fft: usize,
    hop: usize,
    window: &[f64],
    center: bool,
) -> Vec<Vec<Complex<f64>>> {
    let padded;
    let x = if center {
        padded = pad_center(x, n_fft / 2);
        &padded[..]
    } else {
        x
    };
    if x.len() < n_fft {
        return Vec::new();
    }
    let frames = 1 + (x.len() - n_fft) / hop;
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n_fft);
    let mut buf = fft.make_input_vec();
    let mut scratch = fft.make_scratch_vec();
    (0..frames)
        .map(|t| {
            let start = t * hop;
            for (b, (v, w)) in buf
                .iter_mut()
                .zip(x[start..start + n_fft].iter().zip(window))
            {
                *b = v * w;
            }
            let mut spec = fft.make_output_vec();
            // lengths come from the plan, so this cannot fail
            let _ = fft.process_with_scratch(&mut buf, &mut spec, &mut scratch);
            spec
        })
        .collect()
}

/// Inverse STFT by weighted overlap-add (divided by the summed squared
/// window), the padding of a centred STFT removed, trimmed or zero-padded to
/// `length` samples.
fn istft(
    spec: &[Vec<Complex<f64>>],
    n_fft: usize,
    hop: usize,
    window: &[f64],
    length: usize,
) -> Vec<f64> {
    let frames = spec.len();
    let full = n_fft + hop * frames.saturating_sub(1);
    let mut out = vec![0.0; full];
    let mut norm = vec![0.0; full];
    let mut planner = RealFftPlanner::<f64>::new();
    let ifft = planner.plan_fft_inverse(n_fft);
    let mut buf = ifft.make_output_vec();
    let mut scratch = ifft.make_scratch_vec();
    let scale = 1.0 / n_fft as f64;
    for (t, frame) in spec.iter().enumerate() {
        let mut input = frame.clone();
        // a real signal's DC and Nyquist bins are real
        input[0].im = 0.0;
        if n_fft.is_multiple_of(2) {
            input[n_fft / 2].im = 0.0;
        }
        let _ = ifft.process_with_scratch(&mut input, &mut buf, &mut scratch);
        let start = t * hop;
        for i in 0..n_fft {
            out[start + i] += buf[i] * scale * window[i];
            norm[start + i] += window[i] * window[i];
        }
    }
    for (o, n) in out.iter_mut().zip(&norm) {
        if *n > 1e-11 {
            *o /= n;
        }
    }
    let pad = n_fft / 2;
    let mut y: Vec<f64> = out.into_iter().skip(pad).take(length).collect();
    y.resize(length, 0.0);
    y
}

/// Phase-vocoder time stretch with identity phase locking (Laroche & Dolson,
/// 1999): `rate > 1` speeds up (shorter), `rate < 1` slows down; pitch is
/// kept. Output frame `j` reads the input at `t = j · rate` frames, with
/// magnitudes interpolated between the two nearest analysis frames. Each bin
/// accumulates its phase with its measured frequency; a bin then takes the
/// accumulated phase of the spectral peak whose region it lies in, plus its
/// phase offset from that peak in the analysis frame, so the bins of one
/// partial stay coherent (without locking, the reflected first frame leaves
/// them out of step and partials partly cancel). The result has
/// `round(len / rate)` samples.
fn time_stretch(x: &[f64], rate: f64, n_fft: usize) -> Vec<f64> {
    use std::f64::consts::PI;
    let hop = (n_fft / 4).max(1);
    let window = hann(n_fft);
    let spec = stft(x, n_fft, hop, &window, true);
    let length = (x.len() as f64 / rate).round() as usize;
    if spec.is_empty() {
        return vec![0.0; length];
    }
    let bins = n_fft / 2 + 1;
    let advance: Vec<f64> = (0..bins)
        .map(|k| 2.0 * PI * hop as f64 * k as f64 / n_fft as f64)
        .collect();
    let zero = vec![Complex::new(0.0, 0.0); bins];
    let column = |i: usize| spec.get(i).unwrap_or(&zero);
    let mut phase: Vec<f64> = spec[0].iter().map(|c| c.arg()).collect();
    let mut out = Vec::new();
    let mut t = 0.0f64;
    while t < spec.len() as f64 {
        let i = t.floor() as usize;
        let alpha = t - i as f64;
        let (c0, c1) = (column(i), column(i + 1));
        let mag: Vec<f64> = (0..bins)
            .map(|k| (1.0 - alpha) * c0[k].norm() + alpha * c1[k].norm())
            .collect();
        // the analysis frame whose inter-bin phase relations are kept
        let reference = if alpha < 0.5 && i < spec.len() {
            c0
        } else {
            c1
        };
        let peaks: Vec<usize> = (0..bins)
            .filter(|&k| (k == 0 || mag[k] > mag[k - 1]) && (k + 1 == bins || mag[k] >= mag[k + 1]))
            .collect();
        let mut frame = vec![Complex::new(0.0, 0.0); bins];
        let mut lo = 0;
        for (n, &p) in peaks.iter().enumerate() {
            // the region of a peak reaches halfway to its neighbours
            let hi = peaks.get(n + 1).map_or(bins, |&q| (p + q).div_ceil(2));
            for k in lo..hi {
                let ph = phase[p] + reference[k].arg() - reference[p].arg();
                frame[k] = Complex::from_polar(mag[k], ph);
            }
            lo = hi;
        }
        out.push(frame);
        for k in 0..bins {
            let mut d = c1[k].arg() - c0[k].arg() - advance[k];
            d -= 2.0 * PI * (d / (2.0 * PI)).round();
            phase[k] += advance[k] + d;
        }
        t += rate;
    }
    istft(&out, n_fft, hop, &window, length)
}

// ---------------------------------------------------------------------------
// Transforms

/// Change speed and pitch together: the clip is resampled by a factor drawn
/// from `factor` and played at the original rate, so a factor of 1.25 makes
/// it 1/1.25 as long and every frequency 1.25 times higher.
///
/// ```toml
/// [[transforms]]
/// type = "speed"
/// factor = [0.9, 1.1]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speed {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Range of the speed factor (> 0).
    pub factor: [f32; 2],
}

impl Speed {
    /// Checks the parameters (`speed.factor` positive `[min, max]`).
    pub fn check(&self) -> Result<()> {
        check_range("speed.factor", self.factor, 1e-3, 1e3)
    }
}

impl Transform for Speed {
    fn name(&self) -> &str {
        "speed"
    }
    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let factor = draw(rng, self.factor);
        let a = audio_mut(&mut s, &self.input, "speed")?;
        let channels = usize::from(a.channels);
        a.samples = resample_by_ratio(&a.samples, channels, 1.0 / factor)
            .map_err(|e| DataError::transform("speed", e))?;
        Ok(s)
    }
}

/// Shift pitch by a number of semitones drawn from `semitones` without
/// changing the duration: a phase-vocoder time stretch by `2^(n/12)` (STFT of
/// `n_fft` samples, hop `n_fft / 4`, Hann window, phases advanced by each
/// bin's measured frequency), then resampling by `2^(-n/12)` back to the
/// original length. Every frequency is multiplied by `2^(n/12)`.
///
/// ```toml
/// [[transforms]]
/// type = "pitch_shift"
/// semitones = [-2.0, 2.0]
/// n_fft = 1024
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PitchShift {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Range of the shift in semitones (within ±48).
    pub semitones: [f32; 2],
    /// STFT size of the phase vocoder (default 1024, at least 16).
    #[serde(default = "default_pitch_fft", deserialize_with = "pitch_n_fft")]
    pub n_fft: usize,
}

fn default_pitch_fft() -> usize {
    1024
}

impl PitchShift {
    /// Checks the parameters (`pitch_shift.semitones`, `pitch_shift.n_fft`).
    pub fn check(&self) -> Result<()> {
        check_range("pitch_shift.semitones", self.semitones, -48.0, 48.0)?;
        if self.n_fft < 16 {
            return Err(DataError::config(
                "pitch_shift.n_fft",
                format!("{} must be at least 16", self.n_fft),
            ));
        }
        Ok(())
    }
}

impl Transform for PitchShift {
    fn name(&self) -> &str {
        "pitch_shift"
    }
    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let steps = draw(rng, self.semitones);
        let a = audio_mut(&mut s, &self.input, "pitch_shift")?;
        if steps == 0.0 {
            return Ok(s);
        }
        let ratio = 2f64.powf(steps / 12.0);
        let channels = usize::from(a.channels);
        let frames = a.samples.len() / channels;
        let stretched: Vec<Vec<f64>> = deinterleave(&a.samples, channels)
            .iter()
            .map(|ch| time_stretch(ch, 1.0 / ratio, self.n_fft))
            .collect();
        let shifted = resample_by_ratio(&interleave(&stretched), channels, 1.0 / ratio)
            .map_err(|e| DataError::transform("pitch_shift", e))?;
        a.samples = fix_frames(shifted, channels, frames);
        Ok(s)
    }
}

/// Add background noise at a signal-to-noise ratio (dB) drawn from `snr_db`:
/// white Gaussian noise, or a random stretch of the clip in `noise_file`
/// (any format unidl-media decodes: WAV, MP3, others with its `ffmpeg`
/// feature; mixed down to mono, looped when shorter than the audio, used at
/// its own sample rate).
/// The noise is scaled so that `10·log10(P_signal / P_noise)` equals the
/// drawn SNR exactly (powers are mean squares over all channels). A silent
/// clip is left unchanged.
///
/// ```toml
/// [[transforms]]
/// type = "add_noise"
/// snr_db = [10.0, 30.0]
/// # noise_file = "noise/cafe.wav"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNoise {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// SNR range in dB.
    pub snr_db: [f32; 2],
    /// An audio file of background noise; white noise when absent.
    #[serde(default)]
    pub noise_file: Option<PathBuf>,
    /// The noise clip, loaded from `noise_file` by [`AddNoise::load`] (or set directly).
    #[serde(skip)]
    pub noise: Option<Arc<Vec<f32>>>,
}

impl AddNoise {
    /// Checks the parameters and reads `noise_file` (errors name the key or the file).
    pub fn load(&self) -> Result<AddNoise> {
        check_range("add_noise.snr_db", self.snr_db, -100.0, 200.0)?;
        let mut out = self.clone();
        if let Some(path) = &self.noise_file {
            out.noise = Some(Arc::new(read_mono(path)?));
        }
        if let Some(n) = &out.noise
            && !n.iter().any(|v| *v != 0.0 && v.is_finite())
        {
            return Err(DataError::config(
                "add_noise.noise_file",
                format!("{:?}: the noise clip is silent or empty", self.noise_file),
            ));
        }
        Ok(out)
    }
}

/// Decodes an audio file with unidl-media, mixed down to mono; errors name
/// the file (missing: [`DataError::NotFound`], else [`DataError::Corrupt`]).
fn read_mono(path: &std::path::Path) -> Result<Vec<f32>> {
    let opts = unidl_media::AudioOptions {
        sample_rate: None,
        channels: Some(1),
        max_duration_secs: None,
    };
    match unidl_media::load_audio(path, &opts) {
        Ok(a) => Ok(a.samples),
        Err(unidl_media::MediaError::NotFound { path }) => Err(DataError::NotFound { path }),
        Err(e) => Err(DataError::Corrupt {
            path: e.path().unwrap_or(path).to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// A standard normal value (Box–Muller).
fn gaussian(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Transform for AddNoise {
    fn name(&self) -> &str {
        "add_noise"
    }
    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let snr = draw(rng, self.snr_db);
        let a = audio_mut(&mut s, &self.input, "add_noise")?;
        let channels = usize::from(a.channels);
        let frames = a.samples.len() / channels;
        let noise: Vec<f64> = match &self.noise {
            Some(clip) => {
                let offset = rng.random_range(0..clip.len());
                (0..frames)
                    .map(|i| f64::from(clip[(offset + i) % clip.len()]))
                    .collect()
            }
            None => (0..frames * channels).map(|_| gaussian(rng)).collect(),
        };
        let noise_at = |i: usize| {
            if self.noise.is_some() {
                noise[i / channels]
            } else {
                noise[i]
            }
        };
        let n = a.samples.len().max(1) as f64;
        let p_signal = a.samples.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / n;
        let p_noise = (0..a.samples.len())
            .map(|i| noise_at(i).powi(2))
            .sum::<f64>()
            / n;
        if p_signal == 0.0 || p_noise == 0.0 {
            return Ok(s);
        }
        let k = (p_signal / (p_noise * 10f64.powf(snr / 10.0))).sqrt();
        for (i, v) in a.samples.iter_mut().enumerate() {
            *v = (f64::from(*v) + k * noise_at(i)) as f32;
        }
        Ok(s)
    }
}

/// Multiply by a gain drawn in dB from `db` (`10^(g/20)`; no clipping).
///
/// ```toml
/// [[transforms]]
/// type = "gain"
/// db = [-6.0, 6.0]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gain {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Gain range in dB.
    pub db: [f32; 2],
}

impl Gain {
    /// Checks the parameters (`gain.db` a `[min, max]` within ±120 dB).
    pub fn check(&self) -> Result<()> {
        check_range("gain.db", self.db, -120.0, 120.0)
    }
}

impl Transform for Gain {
    fn name(&self) -> &str {
        "gain"
    }
    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let g = 10f64.powf(draw(rng, self.db) / 20.0);
        let a = audio_mut(&mut s, &self.input, "gain")?;
        a.samples
            .iter_mut()
            .for_each(|v| *v = (f64::from(*v) * g) as f32);
        Ok(s)
    }
}

/// How [`TimeShift`] fills the frames it moves in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShiftMode {
    /// Circular: frames pushed out one end come back at the other.
    #[default]
    Roll,
    /// Frames pushed out are dropped; the gap is silence.
    Zero,
}

/// Shift the clip in time by a whole number of frames drawn uniformly from
/// `[-m, m]`, `m = floor(max_fraction × frames)`; positive shifts delay.
///
/// ```toml
/// [[transforms]]
/// type = "time_shift"
/// max_fraction = 0.1
/// mode = "zero"   # or "roll"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeShift {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Largest shift as a fraction of the clip, in [0, 1].
    pub max_fraction: f32,
    /// Roll (default) or zero-pad.
    #[serde(default)]
    pub mode: ShiftMode,
}

impl TimeShift {
    /// Checks the parameters (`time_shift.max_fraction` in [0, 1]).
    pub fn check(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.max_fraction) {
            Ok(())
        } else {
            Err(DataError::config(
                "time_shift.max_fraction",
                format!("{} is outside [0, 1]", self.max_fraction),
            ))
        }
    }
}

impl Transform for TimeShift {
    fn name(&self) -> &str {
        "time_shift"
    }
    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let a = audio_mut(&mut s, &self.input, "time_shift")?;
        let channels = usize::from(a.channels);
        let frames = a.samples.len() / channels;
        let m = (f64::from(self.max_fraction) * frames as f64).floor() as i64;
        let shift = if m > 0 { rng.random_range(-m..=m) } else { 0 };
        if shift == 0 || frames == 0 {
            return Ok(s);
        }
        let old = std::mem::take(&mut a.samples);
        let mut new = vec![0.0f32; old.len()];
        for i in 0..frames as i64 {
            let j = i + shift;
            let j = match self.mode {
                ShiftMode::Roll => j.rem_euclid(frames as i64),
                ShiftMode::Zero if (0..frames as i64).contains(&j) => j,
                ShiftMode::Zero => continue,
            } as usize;
            let i = i as usize;
            new[j * channels..(j + 1) * channels]
                .copy_from_slice(&old[i * channels..(i + 1) * channels]);
        }
        a.samples = new;
        Ok(s)
    }
}

/// Resample to `sample_rate` Hz with rubato's FFT resampler; the clip keeps
/// its duration (`ceil(frames × to / from)` frames) and its frequencies.
///
/// ```toml
/// [[transforms]]
/// type = "resample"
/// sample_rate = 16000
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resample {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Target rate in Hz (> 0).
    pub sample_rate: u32,
}

impl Resample {
    /// Checks the parameters (`resample.sample_rate` positive).
    pub fn check(&self) -> Result<()> {
        if self.sample_rate == 0 {
            return Err(DataError::config(
                "resample.sample_rate",
                "must be positive",
            ));
        }
        Ok(())
    }
}

impl Transform for Resample {
    fn name(&self) -> &str {
        "resample"
    }
    fn apply(&self, mut s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let a = audio_mut(&mut s, &self.input, "resample")?;
        a.samples = resample_rate(
            &a.samples,
            usize::from(a.channels),
            a.sample_rate,
            self.sample_rate,
        )
        .map_err(|e| DataError::transform("resample", e))?;
        a.sample_rate = self.sample_rate;
        Ok(s)
    }
}

/// Mel scale of [`MelSpectrogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MelScale {
    /// `2595 · log10(1 + f / 700)` (HTK; torchaudio's default).
    #[default]
    Htk,
    /// Linear below 1 kHz, logarithmic above (Slaney's Auditory Toolbox; librosa's default).
    Slaney,
}

impl MelScale {
    fn to_mel(self, f: f64) -> f64 {
        match self {
            MelScale::Htk => 2595.0 * (1.0 + f / 700.0).log10(),
            MelScale::Slaney => {
                let logstep = 6.4f64.ln() / 27.0;
                if f >= 1000.0 {
                    15.0 + (f / 1000.0).ln() / logstep
                } else {
                    3.0 * f / 200.0
                }
            }
        }
    }

    fn to_hz(self, m: f64) -> f64 {
        match self {
            MelScale::Htk => 700.0 * (10f64.powf(m / 2595.0) - 1.0),
            MelScale::Slaney => {
                let logstep = 6.4f64.ln() / 27.0;
                if m >= 15.0 {
                    1000.0 * (logstep * (m - 15.0)).exp()
                } else {
                    200.0 * m / 3.0
                }
            }
        }
    }
}

/// Filter normalisation of [`MelSpectrogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MelNorm {
    /// Triangles of peak 1.
    #[default]
    None,
    /// Triangles of equal area (each divided by half its band width in Hz).
    Slaney,
}

/// How [`MelSpectrogram`] compresses the mel energies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MelLog {
    /// Decibels: `10·log10(max(x, 1e-10))` for power 2, `20·log10` for power 1
    /// (torchaudio's `AmplitudeToDB`), optionally floored at `max − top_db`.
    #[default]
    Db,
    /// Natural log: `ln(x + eps)`.
    Log,
    /// The mel energies themselves.
    None,
}

/// A log-mel spectrogram, as `torchaudio.transforms.MelSpectrogram` followed
/// by `AmplitudeToDB`: a centred STFT (reflect padding, periodic Hann window
/// of `n_fft`, hop `hop_length`), `|X|^power`, triangular mel filters between
/// `f_min` and `f_max` (HTK or Slaney scale, optional Slaney area
/// normalisation), then dB, `ln(x + eps)` or nothing. The audio input is
/// replaced by an [`Input::Tensor`] of shape `[channels, n_mels, frames]`,
/// `frames = 1 + frames_in / hop_length` — or, with `output`, the tensor is
/// added under that name and the audio kept. A clip shorter than `n_fft / 2`
/// is zero-padded instead of reflected (where torch would fail).
///
/// ```toml
/// [[transforms]]
/// type = "mel_spectrogram"
/// n_fft = 400
/// hop_length = 160
/// n_mels = 64
/// f_min = 0.0
/// f_max = 8000.0
/// mel_scale = "htk"   # or "slaney"
/// norm = "none"       # or "slaney"
/// log = "db"          # or "log", "none"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelSpectrogram {
    /// The audio input (default `"audio"`).
    #[serde(default = "default_input")]
    pub input: String,
    /// Where to put the tensor; replaces the audio input when absent.
    #[serde(default)]
    pub output: Option<String>,
    /// FFT and window size (default 400).
    #[serde(default = "default_n_fft", deserialize_with = "mel_n_fft")]
    pub n_fft: usize,
    /// Hop between frames (default `n_fft / 2`).
    #[serde(default, deserialize_with = "mel_hop")]
    pub hop_length: Option<usize>,
    /// Number of mel bands (default 128).
    #[serde(default = "default_n_mels", deserialize_with = "mel_n_mels")]
    pub n_mels: usize,
    /// Lowest frequency in Hz (default 0).
    #[serde(default)]
    pub f_min: f32,
    /// Highest frequency in Hz (default half the sample rate).
    #[serde(default)]
    pub f_max: Option<f32>,
    /// Mel scale (default HTK).
    #[serde(default)]
    pub mel_scale: MelScale,
    /// Filter normalisation (default none).
    #[serde(default)]
    pub norm: MelNorm,
    /// Exponent of the magnitude: 1 (magnitude) or 2 (power, default).
    #[serde(default = "default_power")]
    pub power: f32,
    /// Compression (default dB).
    #[serde(default)]
    pub log: MelLog,
    /// Added before the natural log (default 1e-6).
    #[serde(default = "default_eps")]
    pub eps: f32,
    /// With dB: floor every value at the maximum minus `top_db`.
    #[serde(default)]
    pub top_db: Option<f32>,
}

fn default_n_fft() -> usize {
    400
}
fn default_n_mels() -> usize {
    128
}
fn default_power() -> f32 {
    2.0
}
fn default_eps() -> f32 {
    1e-6
}

impl MelSpectrogram {
    /// Checks the parameters; errors name the key (`mel_spectrogram.n_fft`, …).
    pub fn check(&self) -> Result<()> {
        let bad =
            |key: &str, why: String| Err(DataError::config(&format!("mel_spectrogram.{key}"), why));
        if self.n_fft < 2 {
            return bad("n_fft", format!("{} must be at least 2", self.n_fft));
        }
        if self.hop() == 0 {
            return bad("hop_length", "must be positive".into());
        }
        if self.n_mels == 0 {
            return bad("n_mels", "must be positive".into());
        }
        if !(self.f_min.is_finite() && self.f_min >= 0.0) {
            return bad("f_min", format!("{} must be >= 0", self.f_min));
        }
        if let Some(f_max) = self.f_max
            && !(f_max.is_finite() && f_max > self.f_min)
        {
            return bad("f_max", format!("{f_max} must be > f_min = {}", self.f_min));
        }
        if self.power != 1.0 && self.power != 2.0 {
            return bad("power", format!("{} must be 1 or 2", self.power));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", format!("{} must be positive", self.eps));
        }
        if let Some(t) = self.top_db
            && !(t.is_finite() && t >= 0.0)
        {
            return bad("top_db", format!("{t} must be >= 0"));
        }
        Ok(())
    }

    fn hop(&self) -> usize {
        self.hop_length.unwrap_or(self.n_fft / 2)
    }

    /// The `n_freqs × n_mels` filter bank (row-major by frequency bin), as
    /// torchaudio's `melscale_fbanks`.
    fn filterbank(&self, sample_rate: u32) -> Vec<f64> {
        let n_freqs = self.n_fft / 2 + 1;
        let nyquist = f64::from(sample_rate / 2);
        let f_min = f64::from(self.f_min);
        let f_max = self.f_max.map_or(f64::from(sample_rate) / 2.0, f64::from);
        let scale = self.mel_scale;
        let (m_min, m_max) = (scale.to_mel(f_min), scale.to_mel(f_max));
        let n = self.n_mels;
        let f_pts: Vec<f64> = (0..n + 2)
            .map(|i| scale.to_hz(m_min + (m_max - m_min) * i as f64 / (n + 1) as f64))
            .collect();
        let mut fb = vec![0.0; n_freqs * n];
        for k in 0..n_freqs {
            let f = if n_freqs > 1 {
                nyquist * k as f64 / (n_freqs - 1) as f64
            } else {
                0.0
            };
            for m in 0..n {
                let down = (f - f_pts[m]) / (f_pts[m + 1] - f_pts[m]);
                let up = (f_pts[m + 2] - f) / (f_pts[m + 2] - f_pts[m + 1]);
                let mut w = down.min(up).max(0.0);
                if self.norm == MelNorm::Slaney {
                    w *= 2.0 / (f_pts[m + 2] - f_pts[m]);
                }
                fb[k * n + m] = w;
            }
        }
        fb
    }

    /// The spectrogram of one clip: `[channels, n_mels, frames]`.
    pub fn compute(&self, audio: &Audio) -> HostTensor {
        let channels = usize::from(audio.channels.max(1));
        let hop = self.hop();
        let window = hann(self.n_fft);
        let fb = self.filterbank(audio.sample_rate);
        let n = self.n_mels;
        let mut data = Vec::new();
        let mut frames = 0;
        for ch in deinterleave(&audio.samples, channels) {
            let spec = stft(&ch, self.n_fft, hop, &window, true);
            frames = spec.len();
            let mut mel = vec![0.0f64; n * frames];
            for (t, col) in spec.iter().enumerate() {
                for (k, c) in col.iter().enumerate() {
                    let p = if self.power == 2.0 {
                        c.norm_sqr()
                    } else {
                        c.norm()
                    };
                    if p == 0.0 {
                        continue;
                    }
                    for m in 0..n {
                        mel[m * frames + t] += fb[k * n + m] * p;
                    }
                }
            }
            data.extend(mel);
        }
        match self.log {
            MelLog::None => {}
            MelLog::Log => {
                let eps = f64::from(self.eps);
                data.iter_mut().for_each(|v| *v = (*v + eps).ln());
            }
            MelLog::Db => {
                let mult = 20.0 / f64::from(self.power);
                data.iter_mut()
                    .for_each(|v| *v = mult * v.max(1e-10).log10());
                if let Some(top) = self.top_db {
                    let floor =
                        data.iter().copied().fold(f64::NEG_INFINITY, f64::max) - f64::from(top);
                    data.iter_mut().for_each(|v| *v = v.max(floor));
                }
            }
        }
        HostTensor {
            shape: vec![channels, n, frames],
            data: data.into_iter().map(|v| v as f32).collect(),
        }
    }
}

impl Transform for MelSpectrogram {
    fn name(&self) -> &str {
        "mel_spectrogram"
    }
    fn apply(&self, mut s: Sample, _rng: &mut Rng) -> Result<Sample> {
        let tensor = self.compute(audio_mut(&mut s, &self.input, "mel_spectrogram")?);
        let name = self.output.clone().unwrap_or_else(|| self.input.clone());
        s.inputs.insert(name, Input::Tensor(tensor));
        Ok(s)
    }
}

/// What [`SpecAugment`] writes into masked cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MaskValue {
    /// Zero.
    #[default]
    Zero,
    /// The mean of the whole tensor before masking.
    Mean,
}

/// SpecAugment (Park et al., 2019) without time warping, on a tensor whose
/// last two axes are `[freq, time]`: `freq_masks` bands of `w ~ U{0..=freq_width}`
/// consecutive frequency rows and `time_masks` bands of `w ~ U{0..=time_width}`
/// consecutive frames, each at a uniform position, set to zero or the mean.
/// The same masks apply to every leading index (channel).
///
/// ```toml
/// [[transforms]]
/// type = "spec_augment"
/// freq_masks = 2
/// freq_width = 8
/// time_masks = 2
/// time_width = 20
/// mask_value = "zero"   # or "mean"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecAugment {
    /// The tensor input (default `"audio"`, where `mel_spectrogram` puts it).
    #[serde(default = "default_input")]
    pub input: String,
    /// Number of frequency masks.
    #[serde(default)]
    pub freq_masks: usize,
    /// Largest frequency-mask width `F`.
    #[serde(default)]
    pub freq_width: usize,
    /// Number of time masks.
    #[serde(default)]
    pub time_masks: usize,
    /// Largest time-mask width `T`.
    #[serde(default)]
    pub time_width: usize,
    /// Fill value.
    #[serde(default)]
    pub mask_value: MaskValue,
}

impl Transform for SpecAugment {
    fn name(&self) -> &str {
        "spec_augment"
    }
    fn apply(&self, mut s: Sample, rng: &mut Rng) -> Result<Sample> {
        let source = s.source.clone();
        let t = match s.inputs.get_mut(&self.input) {
            Some(Input::Tensor(t)) if t.shape.len() >= 2 => t,
            Some(Input::Tensor(t)) => {
                return Err(DataError::transform(
                    "spec_augment",
                    format!(
                        "input `{}` of sample `{source}` has shape {:?}; need [.., freq, time]",
                        self.input, t.shape
                    ),
                ));
            }
            other => {
                return Err(DataError::transform(
                    "spec_augment",
                    format!(
                        "input `{}` of sample `{source}` is {}, not a [.., freq, time] tensor",
                        self.input,
                        other.map_or("missing", |i| input_kind(i))
                    ),
                ));
            }
        };
        let r = t.shape.len();
        let (freq, time) = (t.shape[r - 2], t.shape[r - 1]);
        let fill = match self.mask_value {
            MaskValue::Zero => 0.0,
            MaskValue::Mean => {
                (t.data.iter().map(|v| f64::from(*v)).sum::<f64>() / t.data.len().max(1) as f64)
                    as f32
            }
        };
        let mut band = |count: usize, width: usize, size: usize| -> Vec<(usize, usize)> {
            (0..count)
                .map(|_| {
                    let w = rng.random_range(0..=width.min(size));
                    let start = rng.random_range(0..=size - w);
                    (start, w)
                })
                .collect()
        };
        let f_bands = band(self.freq_masks, self.freq_width, freq);
        let t_bands = band(self.time_masks, self.time_width, time);
        for plane in t.data.chunks_mut((freq * time).max(1)) {
            for &(f0, w) in &f_bands {
                plane[f0 * time..(f0 + w) * time].fill(fill);
            }
            for &(t0, w) in &t_bands {
                for f in 0..freq {
                    plane[f * time + t0..f * time + t0 + w].fill(fill);
                }
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize) -> Vec<f64> {
        (0..n).map(|i| 0.5 * (i as f64 * 0.1).sin()).collect()
    }

    #[test]
    fn istft_inverts_stft() {
        let x = tone(3000);
        let w = hann(256);
        let y = istft(&stft(&x, 256, 64, &w, true), 256, 64, &w, x.len());
        let err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-9, "{err}");
    }

    #[test]
    fn time_stretch_keeps_the_level() {
        let x = tone(8000);
        for rate in [1.0, 0.999, 0.8, 1.25, 0.5, 2.0] {
            let y = time_stretch(&x, rate, 512);
            assert_eq!(y.len(), (8000.0 / rate).round() as usize);
            let mid = &y[1000..y.len() - 1000];
            let rms = (mid.iter().map(|v| v * v).sum::<f64>() / mid.len() as f64).sqrt();
            assert!(
                (rms * 2f64.sqrt() / 0.5 - 1.0).abs() < 0.05,
                "rate {rate}: {rms}"
            );
        }
    }
}
