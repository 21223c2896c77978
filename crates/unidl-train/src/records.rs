//! Run records in the output folder (Tr-f): a model summary at the start,
//! metrics per step and per epoch in CSV and JSON lines, and a PNG of the loss
//! and metric curves at the end.
//!
//! | file | written | content |
//! |---|---|---|
//! | `summary.txt` | start | modules, output shapes, parameter counts |
//! | `steps.csv`, `steps.jsonl` | every `log_every` steps | step, epoch, loss, learning rate, samples/s |
//! | `epochs.csv`, `epochs.jsonl` | each epoch | the [`EpochRecord`] |
//! | `curves.png` | end (and each epoch) | training loss per step, epoch losses, validation accuracy |
//!
//! A resumed run first drops the rows past its checkpoint, then appends, so
//! the files read as if the run had never stopped.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use unidl_tensor::module::ModuleApi;
use unidl_tensor::trace::Traced;

use crate::callback::{BatchEnd, Callback, EpochEnd, TrainBegin};
use crate::error::{Result, TrainError};
use crate::trainer::config::EpochRecord;

/// One row of a model summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Module path (`(model)` for the root).
    pub path: String,
    /// Burn type name.
    pub type_name: String,
    /// Output shape reported by the model's forward pass (see [`unidl_tensor::trace`]).
    pub output_shape: Option<Vec<usize>>,
    /// Parameter and buffer elements inside.
    pub elements: usize,
}

/// Layers, output shapes and parameter counts of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// One row per module, depth-first.
    pub rows: Vec<SummaryRow>,
    /// Trainable parameter elements.
    pub trainable: usize,
    /// All parameter and buffer elements.
    pub total: usize,
}

impl ModelSummary {
    /// Summarises `model`, attaching the output shapes of a traced forward pass.
    pub fn of<M: Module>(model: &M, traced: &[Traced]) -> Self {
        let modules = model.get_modules();
        let total = modules.first().map_or(0, |m| m.num_elements);
        let trainable = model
            .get_parameters()
            .iter()
            .map(|(_, t)| t.shape().iter().product::<usize>())
            .sum();
        let rows = modules
            .into_iter()
            .map(|m| SummaryRow {
                output_shape: traced
                    .iter()
                    .rev()
                    .find(|t| t.path == m.path || (m.path.is_empty() && t.path == "(model)"))
                    .map(|t| t.shape.clone()),
                path: if m.path.is_empty() {
                    "(model)".into()
                } else {
                    m.path
                },
                type_name: m.type_name,
                elements: m.num_elements,
            })
            .collect();
        ModelSummary {
            rows,
            trainable,
            total,
        }
    }
}

impl std::fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self
            .rows
            .iter()
            .map(|r| r.path.len())
            .max()
            .unwrap_or(8)
            .max(8);
        writeln!(
            f,
            "{:<w$}  {:<16} {:<20} {:>12}",
            "module", "type", "output shape", "elements"
        )?;
        for r in &self.rows {
            let shape = r
                .output_shape
                .as_ref()
                .map_or(String::from("-"), |s| format!("{s:?}"));
            writeln!(
                f,
                "{:<w$}  {:<16} {:<20} {:>12}",
                r.path, r.type_name, shape, r.elements
            )?;
        }
        writeln!(f, "trainable parameters: {}", self.trainable)?;
        write!(f, "all parameters and buffers: {}", self.total)
    }
}

/// Writes the run records (see the module docs).
#[derive(Debug)]
pub struct RunRecorder {
    dir: PathBuf,
    log_every: u64,
    steps: Vec<(u64, f64)>,
    steps_csv: Option<std::fs::File>,
    steps_jsonl: Option<std::fs::File>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Checkpoint(format!("run records {}: {e}", path.display()))
}

/// Keeps the header and the rows whose first CSV field passes `keep`.
fn trim_csv(path: &Path, keep: impl Fn(u64) -> bool) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let first = line.split(',').next().and_then(|v| v.parse::<u64>().ok());
        if i == 0 || first.is_some_and(&keep) {
            out.push_str(line);
            out.push('\n');
        }
    }
    unidl_tensor::module::write_atomic(path, out.as_bytes()).map_err(io(path))
}

/// Keeps the JSON lines whose `key` passes `keep`.
fn trim_jsonl(path: &Path, key: &str, keep: impl Fn(u64) -> bool) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut out = String::new();
    for line in text.lines() {
        let v: Option<u64> = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get(key).and_then(serde_json::Value::as_u64));
        if v.is_some_and(&keep) {
            out.push_str(line);
            out.push('\n');
        }
    }
    unidl_tensor::module::write_atomic(path, out.as_bytes()).map_err(io(path))
}

fn append(path: &Path, header: Option<&str>) -> Result<std::fs::File> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    if let Some(h) = header
        && f.metadata().map_err(io(path))?.len() == 0
    {
        writeln!(f, "{h}").map_err(io(path))?;
    }
    Ok(f)
}

const STEPS_HEADER: &str = "step,epoch,loss,learning_rate,samples_per_second";
const EPOCHS_HEADER: &str = "epoch,train_loss,val_loss,val_accuracy,learning_rate,seconds";

impl RunRecorder {
    /// Records into `dir`, one step row every `log_every` (≥ 1) updates.
    pub fn new(dir: impl Into<PathBuf>, log_every: u64) -> Self {
        RunRecorder {
            dir: dir.into(),
            log_every: log_every.max(1),
            steps: Vec::new(),
            steps_csv: None,
            steps_jsonl: None,
        }
    }

    fn write_epoch(&self, r: &EpochRecord) -> Result<()> {
        let csv = self.dir.join("epochs.csv");
        let mut f = append(&csv, Some(EPOCHS_HEADER))?;
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
        writeln!(
            f,
            "{},{},{},{},{},{:.3}",
            r.epoch,
            r.train_loss,
            opt(r.val_loss),
            opt(r.val_accuracy),
            r.learning_rate,
            r.seconds
        )
        .map_err(io(&csv))?;
        let jl = self.dir.join("epochs.jsonl");
        let mut f = append(&jl, None)?;
        let line = serde_json::to_string(r).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        writeln!(f, "{line}").map_err(io(&jl))
    }

    fn plot(&self, records: &[EpochRecord]) -> Result<()> {
        plot_curves(&self.dir.join("curves.png"), &self.steps, records)
    }
}

impl Callback for RunRecorder {
    fn on_train_start(&mut self, begin: &TrainBegin<'_>) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let summary = self.dir.join("summary.txt");
        unidl_tensor::module::write_atomic(&summary, format!("{}\n", begin.summary).as_bytes())
            .map_err(io(&summary))?;
        let step = begin.global_step;
        let epochs = begin.records.len() as u64;
        trim_csv(&self.dir.join("steps.csv"), |s| s <= step)?;
        trim_jsonl(&self.dir.join("steps.jsonl"), "step", |s| s <= step)?;
        trim_csv(&self.dir.join("epochs.csv"), |e| e < epochs)?;
        trim_jsonl(&self.dir.join("epochs.jsonl"), "epoch", |e| e < epochs)?;
        self.steps.clear();
        if let Ok(text) = std::fs::read_to_string(self.dir.join("steps.csv")) {
            for line in text.lines().skip(1) {
                let mut it = line.split(',');
                if let (Some(Ok(s)), Some(_), Some(Ok(l))) = (
                    it.next().map(str::parse::<u64>),
                    it.next(),
                    it.next().map(str::parse::<f64>),
                ) {
                    self.steps.push((s, l));
                }
            }
        }
        self.steps_csv = Some(append(&self.dir.join("steps.csv"), Some(STEPS_HEADER))?);
        self.steps_jsonl = Some(append(&self.dir.join("steps.jsonl"), None)?);
        Ok(())
    }

    fn on_batch_end(&mut self, b: &BatchEnd) -> Result<()> {
        if !b.step.is_multiple_of(self.log_every) && b.batch + 1 != b.batches {
            return Ok(());
        }
        self.steps.push((b.step, b.loss));
        let path = self.dir.join("steps.csv");
        if let Some(f) = self.steps_csv.as_mut() {
            writeln!(
                f,
                "{},{},{},{},{:.1}",
                b.step, b.epoch, b.loss, b.learning_rate, b.samples_per_second
            )
            .map_err(io(&path))?;
        }
        if let Some(f) = self.steps_jsonl.as_mut() {
            let line =
                serde_json::to_string(b).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
            writeln!(f, "{line}").map_err(io(&path))?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, end: &mut EpochEnd<'_>) -> Result<()> {
        self.write_epoch(end.record)?;
        self.plot(end.records)
    }

    fn on_train_end(&mut self, records: &[EpochRecord], _stopped: Option<&str>) -> Result<()> {
        for f in [self.steps_csv.as_mut(), self.steps_jsonl.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = f.flush();
        }
        self.plot(records)
    }
}

/// A TrueType font for chart labels: `UNIDL_FONT`, else DejaVu Sans or
/// Liberation Sans from the usual Debian paths. Without one, charts are drawn
/// without text.
pub(crate) fn chart_font() -> Option<&'static [u8]> {
    static FONT: std::sync::OnceLock<Option<&'static [u8]>> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = std::env::var("UNIDL_FONT").into_iter().chain(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
            ]
            .map(String::from),
        );
        for c in candidates {
            if let Ok(bytes) = std::fs::read(&c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(
                    "sans-serif",
                    plotters::style::FontStyle::Normal,
                    bytes,
                )
                .is_ok()
                {
                    return Some(bytes);
                }
            }
        }
        None
    })
}

/// A line to draw: points, colour, legend label.
type Series<'a> = (&'a [(f64, f64)], plotters::style::RGBColor, &'a str);

/// Draws training loss per step and per-epoch losses (left) and validation
/// accuracy (right) into a PNG, written atomically.
pub fn plot_curves(path: &Path, steps: &[(u64, f64)], records: &[EpochRecord]) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: String| TrainError::Checkpoint(format!("{}: {e}", path.display()));
    let text = chart_font().is_some();
    let (w, h) = (1000u32, 420u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let (left, right) = root.split_horizontally(w / 2);
        // Losses against optimizer steps; epoch values are placed at the epoch's last step.
        let per_epoch = |f: fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            let steps_per_epoch =
                steps.last().map_or(1.0, |s| s.0 as f64) / records.len().max(1) as f64;
            records
                .iter()
                .filter_map(|r| f(r).map(|v| ((r.epoch + 1) as f64 * steps_per_epoch, v)))
                .collect()
        };
        let train_ep = per_epoch(|r| Some(r.train_loss));
        let val_ep = per_epoch(|r| r.val_loss);
        let step_pts: Vec<(f64, f64)> = steps.iter().map(|&(s, l)| (s as f64, l)).collect();
        let all = step_pts.iter().chain(&train_ep).chain(&val_ep);
        let (mut xmax, mut ymax) = (1.0f64, 1e-6f64);
        for &(x, y) in all {
            if y.is_finite() {
                xmax = xmax.max(x);
                ymax = ymax.max(y);
            }
        }
        let mut b = ChartBuilder::on(&left);
        b.margin(10);
        if text {
            b.caption("loss", ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(45);
        }
        let mut chart = b
            .build_cartesian_2d(0f64..xmax, 0f64..ymax * 1.05)
            .map_err(|e| err(e.to_string()))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("step");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| err(e.to_string()))?;
        let series: [Series<'_>; 3] = [
            (&step_pts, RGBColor(150, 150, 220), "train (step)"),
            (&train_ep, BLUE, "train (epoch)"),
            (&val_ep, RED, "validation"),
        ];
        for (pts, color, name) in series {
            if pts.is_empty() {
                continue;
            }
            let s = chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?;
            if text {
                s.label(name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        let acc: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| r.val_accuracy.map(|a| ((r.epoch + 1) as f64, a)))
            .collect();
        let mut b = ChartBuilder::on(&right);
        b.margin(10);
        if text {
            b.caption("validation accuracy", ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(45);
        }
        let lo = acc.iter().map(|a| a.1).fold(1.0f64, f64::min).min(0.9);
        let mut chart = b
            .build_cartesian_2d(
                0f64..(records.len().max(1) as f64),
                (lo - 0.02).max(0.0)..1.0,
            )
            .map_err(|e| err(e.to_string()))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("epoch");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| err(e.to_string()))?;
        if !acc.is_empty() {
            chart
                .draw_series(LineSeries::new(acc.iter().copied(), GREEN.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(acc.iter().map(|&p| Circle::new(p, 3, GREEN.filled())))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| err("chart buffer has the wrong size".into()))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| err(e.to_string()))?;
    unidl_tensor::module::write_atomic(path, &png).map_err(io(path))
}
