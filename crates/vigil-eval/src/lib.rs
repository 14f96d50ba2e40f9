//! vigil-eval: evaluation built from per-sample records (M9, and the M6 metrics).
//!
//! The model runs elsewhere and writes one [`SampleRecord`] per (variant, sample) — see
//! [`write_jsonl`] / [`read_jsonl`]. Everything here is model-free:
//!
//! * [`BinaryMetrics`] (precision, recall, accuracy, F1, FPR, specificity; 0/0 is `None`),
//!   [`MultiClassReport`] (per class, macro / weighted, confusion matrix), [`Calibration`]
//!   (ECE, MCE, Brier, [`ReliabilityBin`]s), [`threshold_sweep`], [`roc_auc`] and
//!   [`bootstrap_cis`] for honest intervals on small splits;
//! * [`k_fold_by_group`] and [`holdout_split_by_group`] (the seed's 80/20) that never put a
//!   group on both sides, and [`CrossValidation`] to summarise per-fold results;
//! * test-time compute: [`control`], [`scaling`] and [`by_length_buckets`];
//! * report-text metrics: [`section_adherence`], [`token_overlap`], [`jaccard`],
//!   [`step_indicator_rate`].
//!
//! [`VariantResult::from_records`] computes all of these for one variant (SC, PE-SC, FT-SC,
//! …); an [`EvalReport`] holds the variants with the split, sample count and leakage check
//! and renders [`EvalReport::to_markdown`] / [`EvalReport::to_json`]; [`write_charts`] draws
//! PNG and SVG charts from it, and [`write_report_files`] writes all of them.
//!
//! ```
//! use vigil_eval::{EvalReport, LeakageCheck, SampleRecord, VariantResult};
//!
//! let record = |id: &str, label: bool, predicted: bool, p: f32| SampleRecord {
//!     probability: Some(p),
//!     threshold: Some(0.5),
//!     analysis_tokens: 120,
//!     ..SampleRecord::new("FT-CH", id, id, label, predicted)
//! };
//! let records = [record("a", true, true, 0.9), record("b", false, true, 0.6), record("c", false, false, 0.1)];
//! let ft_ch = VariantResult::from_records("FT-CH", "fine-tuned, classification head", &records)?;
//! assert_eq!(ft_ch.scores.precision, Some(0.5)); // TP 1, FP 1
//! let report = EvalReport {
//!     model: "SmolLM2-135M-Instruct".into(),
//!     bundle: None,
//!     adapter: Some("http-headers".into()),
//!     head: Some("binary-head".into()),
//!     split: "test".into(),
//!     n_samples: 3,
//!     leakage: LeakageCheck { passed: true, detail: "no train/test duplicates".into() },
//!     synthetic_only: true,
//!     variants: vec![ft_ch],
//!     notes: vec![],
//! };
//! assert!(report.to_markdown().contains("| FT-CH | 0.500 ["));
//! # Ok::<(), vigil_eval::EvalError>(())
//! ```

mod binary;
mod bootstrap;
mod calibration;
mod charts;
mod compute;
mod crossval;
mod error;
mod multiclass;
mod record;
mod report;
mod split;
mod text;

pub use binary::{ratio, BinaryMetrics, BinaryScores};
pub use bootstrap::{bootstrap_cis, quantile, BootstrapCis, Interval};
pub use calibration::{roc_auc, threshold_sweep, Calibration, ReliabilityBin, ThresholdPoint};
pub use charts::write_charts;
pub use compute::{by_length_buckets, control, scaling, LengthBucket, ScalingMetric};
pub use crossval::{CrossValidation, MeanSd};
pub use error::{EvalError, Result};
pub use multiclass::{Averages, ClassMetrics, MultiClassReport};
pub use record::{group_by_variant, read_jsonl, write_jsonl, SampleRecord};
pub use report::{
    write_report_files, ControlResult, EvalOptions, EvalReport, LeakageCheck, ScalingResult,
    TemperaturePoint, TextMetrics, VariantResult,
};
pub use split::{holdout_split_by_group, k_fold_by_group, Fold, SEED_TEST_FRACTION};
pub use text::{
    has_step_indicator, jaccard, section_adherence, step_indicator_rate, step_indicators,
    token_overlap, tokens, SectionAdherence, SectionSpec, TokenOverlap, STEP_INDICATOR_PHRASES,
};
