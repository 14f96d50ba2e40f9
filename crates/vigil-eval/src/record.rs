//! [`SampleRecord`]: one evaluated sample of one variant, one JSONL line on disk.

use crate::error::{EvalError, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

/// The outcome of running one variant (e.g. `FT-PE-CH`) on one held-out sample.
///
/// `label` and `predicted` use the positive class "vulnerable / true positive".
/// `probability` is the model's probability of that positive class when the variant has one
/// (classification head, or a self-consistency vote share); `threshold` is the cut it was
/// compared against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub variant: String,
    pub sample_id: String,
    /// Samples sharing a group (e.g. a vulnerable endpoint and its fixed twin) must never be
    /// split across folds.
    pub group: String,
    pub label: bool,
    pub predicted: bool,
    #[serde(default)]
    pub probability: Option<f32>,
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub true_type: Option<String>,
    #[serde(default)]
    pub predicted_type: Option<String>,
    /// Tokens the model generated for its analysis (test-time compute spent).
    #[serde(default)]
    pub analysis_tokens: usize,
    #[serde(default)]
    pub generated: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub seconds: f64,
}

impl SampleRecord {
    /// A record with the required fields; the optional ones empty and counts zero, to be
    /// filled with struct-update syntax or field assignment.
    pub fn new(variant: &str, sample_id: &str, group: &str, label: bool, predicted: bool) -> Self {
        Self {
            variant: variant.to_string(),
            sample_id: sample_id.to_string(),
            group: group.to_string(),
            label,
            predicted,
            probability: None,
            threshold: None,
            true_type: None,
            predicted_type: None,
            analysis_tokens: 0,
            generated: None,
            reference: None,
            seconds: 0.0,
        }
    }
}

/// Splits a mixed record list by `variant`, keeping the order in which variants first
/// appear (and the record order inside each), so a JSONL file of every variant becomes
/// the per-variant slices [`crate::VariantResult::from_records`] takes.
pub fn group_by_variant(records: &[SampleRecord]) -> Vec<(String, Vec<SampleRecord>)> {
    let mut out: Vec<(String, Vec<SampleRecord>)> = Vec::new();
    for r in records {
        match out.iter_mut().find(|(v, _)| *v == r.variant) {
            Some((_, list)) => list.push(r.clone()),
            None => out.push((r.variant.clone(), vec![r.clone()])),
        }
    }
    out
}

/// Writes one JSON object per line.
pub fn write_jsonl(path: &Path, records: &[SampleRecord]) -> Result<()> {
    let io = |source| EvalError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = BufWriter::new(file);
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| EvalError::Serialise {
            what: "sample record",
            msg: e.to_string(),
        })?;
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Reads records written by [`write_jsonl`]. Blank lines are skipped; the first line that
/// does not parse is reported with its 1-based line number.
pub fn read_jsonl(path: &Path) -> Result<Vec<SampleRecord>> {
    let io = |source| EvalError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| EvalError::BadRecord {
            path: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str(&line).map_err(|e| EvalError::BadRecord {
            path: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        records.push(rec);
    }
    Ok(records)
}
