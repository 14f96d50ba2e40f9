//! `metrics.jsonl` (one [`StepMetrics`] per optimizer step) and the loss chart (`loss.png`
//! and `loss.svg`: the train curve and the eval points).
//!
//! On resume the log is cut back to the checkpoint's step, so the file of a killed and
//! resumed run has the same steps as that of an uninterrupted one.

use crate::error::{io_err, Result, TrainError};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const METRICS_FILE: &str = "metrics.jsonl";

/// One optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Optimizer steps completed, this one included (1-based).
    pub step: usize,
    /// Epochs completed, fractional.
    pub epoch: f64,
    /// The learning rate this step used.
    pub lr: f64,
    /// Mean loss per scored token over the step's micro-batches.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Non-pad tokens in the step, and the scored ones among them.
    pub tokens: usize,
    pub target_tokens: usize,
    /// `tokens` per second of this step's wall time.
    pub tokens_per_s: f64,
    /// Training seconds since the run started (across resumes).
    pub elapsed_s: f64,
    /// Mean eval loss per scored token, when the run evaluated after this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
}

/// Reads a metrics file; a line that does not parse is an error naming file and line.
pub fn read_metrics(path: &Path) -> Result<Vec<StepMetrics>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let m: StepMetrics = serde_json::from_str(line).map_err(|e| {
            TrainError::Run(format!(
                "{}:{}: bad metrics line: {e}",
                path.display(),
                i + 1
            ))
        })?;
        out.push(m);
    }
    Ok(out)
}

/// The open `metrics.jsonl` of a run, with every record written so far (for the chart).
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
    records: Vec<StepMetrics>,
}

impl MetricsLog {
    /// Starts a fresh log in `dir` (an old one is replaced).
    pub fn create(dir: &Path) -> Result<Self> {
        Self::open(dir, Vec::new())
    }

    /// Continues the log in `dir` after `step`: records past it (written after the
    /// checkpoint, before the run was killed) are dropped. A missing or torn last line (a
    /// kill while writing) is tolerated.
    pub fn resume(dir: &Path, step: usize) -> Result<Self> {
        let path = dir.join(METRICS_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut kept = Vec::new();
        for line in text.lines() {
            match serde_json::from_str::<StepMetrics>(line) {
                Ok(m) if m.step <= step => kept.push(m),
                _ => {}
            }
        }
        Self::open(dir, kept)
    }

    fn open(dir: &Path, records: Vec<StepMetrics>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(METRICS_FILE);
        let mut text = String::new();
        for r in &records {
            text.push_str(&line(r)?);
        }
        // Write the kept lines to a temp file and rename, so a crash here loses nothing.
        let tmp = dir.join(".metrics.jsonl.tmp");
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(MetricsLog {
            path,
            file,
            records,
        })
    }

    /// Appends one record (flushed at once).
    pub fn append(&mut self, m: StepMetrics) -> Result<()> {
        let l = line(&m)?;
        self.file
            .write_all(l.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(io_err(&self.path))?;
        self.records.push(m);
        Ok(())
    }

    pub fn records(&self) -> &[StepMetrics] {
        &self.records
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn line(m: &StepMetrics) -> Result<String> {
    let mut s = serde_json::to_string(m)
        .map_err(|e| TrainError::Run(format!("cannot serialise metrics: {e}")))?;
    s.push('\n');
    Ok(s)
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans is embedded and known good; registration cannot fail for it.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draws the train loss curve and the eval loss points against the step into `path` (PNG,
/// or SVG when the extension is `svg`).
pub fn loss_chart(path: &Path, records: &[StepMetrics]) -> Result<()> {
    register_font();
    let err = |e: &dyn std::fmt::Display| TrainError::Chart {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    let train: Vec<(f64, f64)> = records
        .iter()
        .filter(|m| m.loss.is_finite())
        .map(|m| (m.step as f64, m.loss))
        .collect();
    let eval: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|m| {
            m.eval_loss
                .filter(|l| l.is_finite())
                .map(|l| (m.step as f64, l))
        })
        .collect();
    let ys = train.iter().chain(&eval).map(|p| p.1);
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (lo, hi) = if lo.is_finite() {
        let pad = ((hi - lo) * 0.05).max(1e-3);
        ((lo - pad).max(0.0), hi + pad)
    } else {
        (0.0, 1.0)
    };
    let x_max = records.iter().map(|m| m.step).max().unwrap_or(1).max(1) as f64;
    let is_svg = path.extension().is_some_and(|e| e == "svg");
    macro_rules! draw {
        ($backend:expr) => {{
            let root = $backend.into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            let mut chart = ChartBuilder::on(&root)
                .caption("loss", ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, lo..hi)
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("optimizer step")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_desc("loss per answer token")
                .draw()
                .map_err(|e| err(&e))?;
            chart
                .draw_series(LineSeries::new(train.iter().copied(), BLUE.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label("train")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            if !eval.is_empty() {
                chart
                    .draw_series(LineSeries::new(eval.iter().copied(), RED.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label("eval")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2))
                    });
                chart
                    .draw_series(eval.iter().map(|&p| Circle::new(p, 4, RED.filled())))
                    .map_err(|e| err(&e))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| err(&e))?;
            root.present().map_err(|e| err(&e))?;
        }};
    }
    if is_svg {
        draw!(SVGBackend::new(path, (900, 500)));
    } else {
        draw!(BitMapBackend::new(path, (900, 500)));
    }
    Ok(())
}

/// Writes `loss.png` and `loss.svg` into `dir`.
pub fn write_loss_charts(dir: &Path, records: &[StepMetrics]) -> Result<()> {
    loss_chart(&dir.join("loss.png"), records)?;
    loss_chart(&dir.join("loss.svg"), records)
}
