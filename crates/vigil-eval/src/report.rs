//! [`VariantResult`] (every metric of one variant, built from its records) and
//! [`EvalReport`] (all variants of one `vigil eval` run, with split, sample count, leakage
//! check and data provenance), rendered as Markdown and JSON.

use crate::binary::{BinaryMetrics, BinaryScores};
use crate::bootstrap::{bootstrap_cis, BootstrapCis, Interval};
use crate::calibration::{roc_auc, threshold_sweep, Calibration, ThresholdPoint};
use crate::compute::{by_length_buckets, control, scaling, LengthBucket, ScalingMetric};
use crate::crossval::{CrossValidation, MeanSd};
use crate::error::{EvalError, Result};
use crate::multiclass::MultiClassReport;
use crate::record::SampleRecord;
use crate::text::{jaccard, section_adherence, step_indicator_rate, token_overlap, SectionSpec};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Settings for [`VariantResult::from_records_with`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Analysis-length bucket edges in tokens (see [`by_length_buckets`]).
    pub length_edges: Vec<usize>,
    /// Equal-width bins of the reliability diagram.
    pub calibration_bins: usize,
    pub bootstrap_resamples: usize,
    /// Confidence level of the bootstrap intervals, e.g. 0.95.
    pub confidence_level: f64,
    /// Seed of the bootstrap resampling.
    pub seed: u64,
    /// The analysis-token budget `[a_min, a_max]` for the Control metric, if one was set.
    pub budget: Option<(usize, usize)>,
    /// Markdown sections a generated report must contain.
    pub expected_sections: Vec<SectionSpec>,
    /// Thresholds of the sweep over the positive-class probability.
    pub sweep_thresholds: Vec<f64>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            length_edges: vec![64, 128, 256, 512],
            calibration_bins: 10,
            bootstrap_resamples: 1000,
            confidence_level: 0.95,
            seed: 0,
            budget: None,
            expected_sections: SectionSpec::seed_report_layout(),
            sweep_thresholds: (1..10).map(|i| i as f64 / 10.0).collect(),
        }
    }
}

/// The leakage check between the evaluated split and the training data; the caller runs it
/// (vigil-data's duplicate detection) and records the outcome here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakageCheck {
    pub passed: bool,
    pub detail: String,
}

/// The variant's metrics when sampled at one temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemperaturePoint {
    pub temperature: f64,
    pub n: usize,
    pub counts: BinaryMetrics,
    pub scores: BinaryScores,
}

/// The seed's Control metric for one budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ControlResult {
    pub a_min: usize,
    pub a_max: usize,
    /// Fraction of analyses whose length was inside `[a_min, a_max]`.
    pub value: f64,
    pub n: usize,
}

/// The seed's Scaling metric over runs at several token budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingResult {
    pub metric: ScalingMetric,
    /// `(budget, metric)` sorted by budget; budgets where the metric was undefined are left
    /// out.
    pub points: Vec<(f64, f64)>,
    /// Mean pairwise slope (metric per token); `None` with fewer than two points.
    pub value: Option<f64>,
}

/// Means of the report-text metrics over the samples that have the needed text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TextMetrics {
    /// Samples with generated text.
    pub n_generated: usize,
    /// Mean fraction of expected sections present.
    pub section_adherence: f64,
    /// Fraction of outputs with every expected section.
    pub all_sections_rate: f64,
    pub step_indicator_rate: f64,
    /// Samples with both generated and reference text.
    pub n_with_reference: usize,
    pub token_precision: Option<f64>,
    pub token_recall: Option<f64>,
    pub token_f1: Option<f64>,
    pub jaccard: Option<f64>,
}

/// Every metric of one variant (SC, PE-SC, FT-SC, FT-PE-SC, FT-CH, FT-PE-CH, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub description: String,
    pub n: usize,
    pub counts: BinaryMetrics,
    pub scores: BinaryScores,
    pub cis: BootstrapCis,
    /// Resamples and seed behind `cis`, so the intervals can be reproduced.
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    /// Records that carried a probability (calibration and ROC-AUC use only those).
    pub n_with_probability: usize,
    pub calibration: Option<Calibration>,
    pub roc_auc: Option<f64>,
    /// Metrics if the probability were cut at each of `EvalOptions::sweep_thresholds`.
    pub threshold_sweep: Vec<ThresholdPoint>,
    /// The distinct thresholds the records say were applied, ascending.
    pub thresholds_used: Vec<f32>,
    /// Vulnerability-type metrics over records with both a true and a predicted type.
    pub per_class: Option<MultiClassReport>,
    pub by_length: Vec<LengthBucket>,
    pub temperature_points: Vec<TemperaturePoint>,
    pub control: Option<ControlResult>,
    pub scaling: Option<ScalingResult>,
    /// k-fold results of this variant, when it was cross-validated.
    pub cross_validation: Option<CrossValidation>,
    pub text: Option<TextMetrics>,
    pub seconds_total: f64,
    pub mean_analysis_tokens: Option<f64>,
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0f64, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

fn text_metrics(records: &[SampleRecord], expected: &[SectionSpec]) -> Option<TextMetrics> {
    let generated: Vec<&str> = records
        .iter()
        .filter_map(|r| r.generated.as_deref())
        .collect();
    if generated.is_empty() {
        return None;
    }
    let adherence: Vec<_> = generated
        .iter()
        .map(|t| section_adherence(t, expected))
        .collect();
    let pairs: Vec<(&str, &str)> = records
        .iter()
        .filter_map(|r| Some((r.generated.as_deref()?, r.reference.as_deref()?)))
        .collect();
    let overlaps: Vec<_> = pairs.iter().map(|(g, r)| token_overlap(g, r)).collect();
    let n = generated.len() as f64;
    Some(TextMetrics {
        n_generated: generated.len(),
        section_adherence: adherence.iter().map(|a| a.fraction).sum::<f64>() / n,
        all_sections_rate: adherence.iter().filter(|a| a.all_present).count() as f64 / n,
        step_indicator_rate: step_indicator_rate(&generated).unwrap_or(0.0),
        n_with_reference: pairs.len(),
        token_precision: mean(overlaps.iter().map(|o| o.precision)),
        token_recall: mean(overlaps.iter().map(|o| o.recall)),
        token_f1: mean(overlaps.iter().map(|o| o.f1)),
        jaccard: mean(pairs.iter().map(|(g, r)| jaccard(g, r))),
    })
}

impl VariantResult {
    /// [`Self::from_records_with`] with [`EvalOptions::default`].
    pub fn from_records(name: &str, description: &str, records: &[SampleRecord]) -> Result<Self> {
        Self::from_records_with(name, description, records, &EvalOptions::default())
    }

    /// Computes every metric the records support: binary metrics and bootstrap intervals
    /// always; calibration and ROC-AUC from records with a probability; per-class metrics
    /// from records with both types; length buckets; Control when `opts.budget` is set;
    /// text metrics from records with generated text. An empty slice gives a result with
    /// n = 0 and undefined ratios rather than an error, so a variant that produced nothing
    /// still shows up in the report. A sample id that occurs twice is an error: it would be
    /// counted twice.
    pub fn from_records_with(
        name: &str,
        description: &str,
        records: &[SampleRecord],
        opts: &EvalOptions,
    ) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = records.iter().find(|r| !seen.insert(r.sample_id.as_str())) {
            return Err(EvalError::InvalidArgument(format!(
                "variant {name}: sample id {:?} occurs more than once",
                dup.sample_id
            )));
        }
        let labels: Vec<bool> = records.iter().map(|r| r.label).collect();
        let preds: Vec<bool> = records.iter().map(|r| r.predicted).collect();
        let counts = BinaryMetrics::from(&labels, &preds)?;
        let cis = bootstrap_cis(
            &labels,
            &preds,
            opts.bootstrap_resamples,
            opts.confidence_level,
            opts.seed,
        )?;
        let (probs, prob_labels): (Vec<f32>, Vec<bool>) = records
            .iter()
            .filter_map(|r| Some((r.probability?, r.label)))
            .unzip();
        let (calibration, auc, sweep) = if probs.is_empty() {
            (None, None, Vec::new())
        } else {
            (
                Some(Calibration::from(
                    &probs,
                    &prob_labels,
                    opts.calibration_bins,
                )?),
                roc_auc(&probs, &prob_labels)?,
                threshold_sweep(&probs, &prob_labels, &opts.sweep_thresholds)?,
            )
        };
        let mut thresholds_used: Vec<f32> = records.iter().filter_map(|r| r.threshold).collect();
        thresholds_used.sort_by(f32::total_cmp);
        thresholds_used.dedup();
        let (truth, predicted): (Vec<String>, Vec<String>) = records
            .iter()
            .filter_map(|r| Some((r.true_type.clone()?, r.predicted_type.clone()?)))
            .unzip();
        let per_class = if truth.is_empty() {
            None
        } else {
            Some(MultiClassReport::from(&truth, &predicted)?)
        };
        let lengths: Vec<usize> = records.iter().map(|r| r.analysis_tokens).collect();
        let control = match opts.budget {
            Some((a_min, a_max)) if !lengths.is_empty() => Some(ControlResult {
                a_min,
                a_max,
                value: control(&lengths, a_min, a_max)?,
                n: lengths.len(),
            }),
            _ => None,
        };
        Ok(Self {
            name: name.to_string(),
            description: description.to_string(),
            n: records.len(),
            counts,
            scores: counts.scores(),
            cis,
            bootstrap_resamples: opts.bootstrap_resamples,
            bootstrap_seed: opts.seed,
            n_with_probability: probs.len(),
            calibration,
            roc_auc: auc,
            threshold_sweep: sweep,
            thresholds_used,
            per_class,
            by_length: by_length_buckets(records, &opts.length_edges)?,
            temperature_points: Vec::new(),
            control,
            scaling: None,
            cross_validation: None,
            text: text_metrics(records, &opts.expected_sections),
            seconds_total: records.iter().map(|r| r.seconds).sum(),
            mean_analysis_tokens: mean(lengths.iter().map(|&l| l as f64)),
        })
    }

    /// Adds the metrics of runs of this variant at several temperatures
    /// (`(temperature, records)`), sorted by temperature.
    pub fn with_temperature_runs(mut self, runs: &[(f64, &[SampleRecord])]) -> Self {
        let mut points: Vec<TemperaturePoint> = runs
            .iter()
            .map(|(t, recs)| {
                let counts = BinaryMetrics::from_pairs(recs.iter().map(|r| (r.label, r.predicted)));
                TemperaturePoint {
                    temperature: *t,
                    n: recs.len(),
                    counts,
                    scores: counts.scores(),
                }
            })
            .collect();
        points.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
        self.temperature_points = points;
        self
    }

    /// Adds k-fold results: one record slice per fold (each fold's held-out part).
    pub fn with_fold_runs(mut self, folds: &[&[SampleRecord]]) -> Self {
        self.cross_validation = Some(CrossValidation::from_folds(folds));
        self
    }

    /// Adds the seed's Scaling metric from runs of this variant at several analysis-token
    /// budgets (`(budget, records)`). Budgets where `metric` is undefined are dropped;
    /// a repeated budget is an error.
    pub fn with_scaling_runs(
        mut self,
        runs: &[(usize, &[SampleRecord])],
        metric: ScalingMetric,
    ) -> Result<Self> {
        let mut points: Vec<(f64, f64)> = runs
            .iter()
            .filter_map(|(budget, recs)| {
                let m = BinaryMetrics::from_pairs(recs.iter().map(|r| (r.label, r.predicted)));
                Some((*budget as f64, metric.of(&m)?))
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let value = match points.len() {
            0 | 1 => None,
            _ => Some(scaling(&points)?),
        };
        self.scaling = Some(ScalingResult {
            metric,
            points,
            value,
        });
        Ok(self)
    }
}

/// One `vigil eval` run: the variants compared on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub model: String,
    pub bundle: Option<String>,
    pub adapter: Option<String>,
    pub head: Option<String>,
    /// The split evaluated, e.g. "test (held out, hash split seed 0)".
    pub split: String,
    /// Samples in the split.
    pub n_samples: usize,
    pub leakage: LeakageCheck,
    /// Every sample was generated (no real findings): numbers are labelled as such.
    pub synthetic_only: bool,
    pub variants: Vec<VariantResult>,
    pub notes: Vec<String>,
}

fn f3(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.3}"))
}

fn with_ci(v: Option<f64>, ci: Option<Interval>) -> String {
    match (v, ci) {
        (Some(x), Some(ci)) => format!("{x:.3} [{:.3}, {:.3}]", ci.lo, ci.hi),
        _ => f3(v),
    }
}

/// Makes a string safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

impl EvalReport {
    /// The report as Markdown: provenance (split, sample count, leakage, synthetic label)
    /// first, then one table of all variants, then a section per variant.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = self.write_markdown(&mut md);
        md
    }

    fn write_markdown(&self, md: &mut String) -> std::fmt::Result {
        writeln!(md, "# vigil eval: {}\n", self.model)?;
        writeln!(md, "- Split: {}", self.split)?;
        writeln!(md, "- Samples: {}", self.n_samples)?;
        if self.leakage.passed {
            writeln!(md, "- Leakage check: passed ({})", self.leakage.detail)?;
        } else {
            writeln!(
                md,
                "- Leakage check: **FAILED** ({}). Held-out numbers below are not trustworthy.",
                self.leakage.detail
            )?;
        }
        if self.synthetic_only {
            writeln!(
                md,
                "- Data: **synthetic only**. These numbers measure the model on generated \
                 samples, not on real findings."
            )?;
        } else {
            writeln!(md, "- Data: includes real (non-synthetic) samples")?;
        }
        for (what, id) in [
            ("Bundle", &self.bundle),
            ("Adapter", &self.adapter),
            ("Head", &self.head),
        ] {
            if let Some(id) = id {
                writeln!(md, "- {what}: {id}")?;
            }
        }
        writeln!(md, "\n## Variants\n")?;
        writeln!(
            md,
            "| Variant | Precision | Recall | Accuracy | F1 | FPR | ECE | n |"
        )?;
        writeln!(md, "|---|---|---|---|---|---|---|---|")?;
        for v in &self.variants {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&v.name),
                with_ci(v.scores.precision, v.cis.precision),
                with_ci(v.scores.recall, v.cis.recall),
                with_ci(v.scores.accuracy, v.cis.accuracy),
                f3(v.scores.f1),
                f3(v.scores.fpr),
                f3(v.calibration.as_ref().map(|c| c.ece)),
                v.n
            )?;
        }
        if let Some((v, ci)) = self.variants.iter().find_map(|v| {
            let ci = v.cis.accuracy.or(v.cis.precision).or(v.cis.recall)?;
            Some((v, ci))
        }) {
            writeln!(
                md,
                "\nBrackets: {:.0} % percentile-bootstrap interval ({} resamples, seed {}). \
                 n/a: undefined (0/0, e.g. precision with no positive prediction). \
                 ECE: over records with a probability.",
                ci.level * 100.0,
                v.bootstrap_resamples,
                v.bootstrap_seed
            )?;
        }
        for v in self.variants.iter().filter(|v| v.n != self.n_samples) {
            writeln!(
                md,
                "\nNote: {} was scored on {} of the {} samples.",
                cell(&v.name),
                v.n,
                self.n_samples
            )?;
        }
        for v in &self.variants {
            self.write_variant(md, v)?;
        }
        if !self.notes.is_empty() {
            writeln!(md, "\n## Notes\n")?;
            for n in &self.notes {
                writeln!(md, "- {n}")?;
            }
        }
        Ok(())
    }

    fn write_variant(&self, md: &mut String, v: &VariantResult) -> std::fmt::Result {
        writeln!(md, "\n## {}\n", v.name)?;
        if !v.description.is_empty() {
            writeln!(md, "{}\n", v.description)?;
        }
        let c = v.counts;
        writeln!(
            md,
            "- Confusion: TP {} · FP {} · TN {} · FN {}",
            c.tp, c.fp, c.tn, c.fn_
        )?;
        writeln!(md, "- Specificity: {}", f3(v.scores.specificity))?;
        writeln!(
            md,
            "- Time: {:.1} s total; mean analysis length {} tokens",
            v.seconds_total,
            v.mean_analysis_tokens
                .map_or_else(|| "n/a".to_string(), |x| format!("{x:.1}"))
        )?;
        if let Some(cal) = &v.calibration {
            writeln!(
                md,
                "- Calibration ({} with a probability): ECE {:.3}, MCE {:.3}, Brier {:.3}, ROC-AUC {}",
                v.n_with_probability,
                cal.ece,
                cal.mce,
                cal.brier,
                f3(v.roc_auc)
            )?;
            writeln!(md, "\n| Bin | n | Mean p | Observed positive rate |")?;
            writeln!(md, "|---|---|---|---|")?;
            for b in cal.bins.iter().filter(|b| b.count > 0) {
                writeln!(
                    md,
                    "| {:.2}–{:.2} | {} | {} | {} |",
                    b.lo,
                    b.hi,
                    b.count,
                    f3(b.mean_confidence),
                    f3(b.accuracy)
                )?;
            }
        }
        if !v.threshold_sweep.is_empty() {
            let used: Vec<String> = v.thresholds_used.iter().map(|t| t.to_string()).collect();
            writeln!(
                md,
                "\nThreshold sweep (positive when p ≥ t; threshold applied: {}):\n",
                if used.is_empty() {
                    "not recorded".to_string()
                } else {
                    used.join(", ")
                }
            )?;
            writeln!(md, "| t | Precision | Recall | FPR | Predicted positive |")?;
            writeln!(md, "|---|---|---|---|---|")?;
            for p in &v.threshold_sweep {
                let m = p.metrics;
                writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    p.threshold,
                    f3(m.precision()),
                    f3(m.recall()),
                    f3(m.fpr()),
                    m.tp + m.fp
                )?;
            }
        }
        if v.by_length.iter().any(|b| b.n > 0) {
            writeln!(md, "\nBy analysis length (tokens):\n")?;
            writeln!(md, "| Length | n | Accuracy | FPR |")?;
            writeln!(md, "|---|---|---|---|")?;
            for b in &v.by_length {
                writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    b.label(),
                    b.n,
                    f3(b.accuracy),
                    f3(b.fpr)
                )?;
            }
        }
        if !v.temperature_points.is_empty() {
            writeln!(md, "\nBy temperature:\n")?;
            writeln!(
                md,
                "| Temperature | n | Precision | Recall | Accuracy | FPR |"
            )?;
            writeln!(md, "|---|---|---|---|---|---|")?;
            for t in &v.temperature_points {
                writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    t.temperature,
                    t.n,
                    f3(t.scores.precision),
                    f3(t.scores.recall),
                    f3(t.scores.accuracy),
                    f3(t.scores.fpr)
                )?;
            }
        }
        if let Some(cv) = &v.cross_validation {
            let ms = |m: Option<MeanSd>| match m {
                Some(MeanSd {
                    mean, sd: Some(sd), ..
                }) => format!("{mean:.3} ± {sd:.3}"),
                Some(MeanSd { mean, sd: None, .. }) => format!("{mean:.3}"),
                None => "n/a".to_string(),
            };
            writeln!(
                md,
                "\n- {}-fold cross-validation (mean ± sd over folds): precision {}, recall {}, \
                 accuracy {}, F1 {}, FPR {}",
                cv.k,
                ms(cv.precision),
                ms(cv.recall),
                ms(cv.accuracy),
                ms(cv.f1),
                ms(cv.fpr)
            )?;
        }
        if let Some(ctl) = &v.control {
            writeln!(
                md,
                "\n- Control (budget {}–{} tokens): {:.3} of {} analyses inside the budget",
                ctl.a_min, ctl.a_max, ctl.value, ctl.n
            )?;
        }
        if let Some(s) = &v.scaling {
            let pts: Vec<String> = s
                .points
                .iter()
                .map(|(b, m)| format!("{b} → {m:.3}"))
                .collect();
            writeln!(
                md,
                "- Scaling ({} per token): {} over budgets {}",
                s.metric.name(),
                s.value.map_or_else(
                    || "n/a (needs 2 budgets)".to_string(),
                    |x| format!("{x:.6}")
                ),
                pts.join(", ")
            )?;
        }
        if let Some(pc) = &v.per_class {
            writeln!(md, "\nVulnerability type (accuracy {}):\n", f3(pc.accuracy))?;
            writeln!(md, "| Class | Precision | Recall | F1 | Support |")?;
            writeln!(md, "|---|---|---|---|---|")?;
            for c in &pc.classes {
                writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    cell(&c.class),
                    f3(c.precision),
                    f3(c.recall),
                    f3(c.f1),
                    c.support
                )?;
            }
            for (label, a) in [
                ("macro avg", pc.macro_avg),
                ("weighted avg", pc.weighted_avg),
            ] {
                writeln!(
                    md,
                    "| *{label}* | {:.3} | {:.3} | {:.3} | |",
                    a.precision, a.recall, a.f1
                )?;
            }
            writeln!(md, "\nConfusion matrix (rows: true, columns: predicted):\n")?;
            let names = pc.class_names();
            writeln!(
                md,
                "| | {} |",
                names
                    .iter()
                    .map(|n| cell(n))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )?;
            writeln!(md, "|---|{}", "---|".repeat(names.len()))?;
            for (name, row) in names.iter().zip(&pc.confusion) {
                let cells: Vec<String> = row.iter().map(usize::to_string).collect();
                writeln!(md, "| {} | {} |", cell(name), cells.join(" | "))?;
            }
        }
        if let Some(t) = &v.text {
            writeln!(
                md,
                "\nGenerated reports ({} with text, {} with a reference):\n",
                t.n_generated, t.n_with_reference
            )?;
            writeln!(
                md,
                "- Section adherence: {:.3} mean, {:.3} with every section",
                t.section_adherence, t.all_sections_rate
            )?;
            writeln!(
                md,
                "- Token overlap: precision {}, recall {}, F1 {}; Jaccard {}",
                f3(t.token_precision),
                f3(t.token_recall),
                f3(t.token_f1),
                f3(t.jaccard)
            )?;
            writeln!(md, "- Step-indicator rate: {:.3}", t.step_indicator_rate)?;
        }
        Ok(())
    }

    /// The report as pretty-printed JSON (every field, including per-bin and per-class data).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| EvalError::Serialise {
            what: "eval report",
            msg: e.to_string(),
        })
    }
}

/// Writes the charts of [`crate::write_charts`], `report.md` (the Markdown with a closing
/// "Charts" section linking the PNGs) and `report.json` into `dir` (created if missing) and
/// returns every path written.
pub fn write_report_files(report: &EvalReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let charts = crate::charts::write_charts(report, dir)?;
    let mut md = report.to_markdown();
    md.push_str("\n## Charts\n\n");
    for png in charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        if let Some(name) = png.file_name().and_then(|n| n.to_str()) {
            let stem = name.trim_end_matches(".png");
            let _ = writeln!(md, "![{stem}]({name})\n");
        }
    }
    let mut written = Vec::new();
    for (name, body) in [("report.md", md), ("report.json", report.to_json()?)] {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|source| EvalError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    written.extend(charts);
    Ok(written)
}
