//! Baselines: findings a team has accepted, matched by fingerprint and left out of reports.
//!
//! The file is JSON:
//!
//! ```json
//! {
//!   "format": "vigil-baseline",
//!   "format_version": 1,
//!   "entries": [
//!     {"fingerprint": "<64 hex digits>", "rule_id": "sql_injection",
//!      "path": "src/db.py", "justification": "input is a constant"}
//!   ]
//! }
//! ```
//!
//! Only `fingerprint` is used for matching; `rule_id`, `path` and `justification` are for
//! the people who review the file.

use crate::json::read_limited;
use crate::{FindingsError, ScanReport};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

/// The `format` marker of a baseline file.
pub const BASELINE_FORMAT: &str = "vigil-baseline";
/// The newest `format_version` this crate writes and reads.
pub const BASELINE_FORMAT_VERSION: u32 = 1;
/// Baselines larger than this are refused.
pub const MAX_BASELINE_BYTES: u64 = 64 << 20;

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why the finding is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// A set of accepted findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    entries: Vec<BaselineEntry>,
}

#[derive(Serialize, Deserialize)]
struct BaselineFile {
    format: Option<String>,
    format_version: Option<u32>,
    #[serde(default)]
    entries: Vec<BaselineEntry>,
}

fn valid_fingerprint(fp: &str) -> bool {
    fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Baseline {
    /// A baseline from entries; duplicates (same fingerprint) keep the first.
    pub fn from_entries(entries: impl IntoIterator<Item = BaselineEntry>) -> Baseline {
        let mut by_fp: BTreeMap<String, BaselineEntry> = BTreeMap::new();
        for mut e in entries {
            e.fingerprint = e.fingerprint.trim().to_ascii_lowercase();
            by_fp.entry(e.fingerprint.clone()).or_insert(e);
        }
        // Sorted by fingerprint so that a saved file diffs cleanly between runs.
        Baseline {
            entries: by_fp.into_values().collect(),
        }
    }

    /// Accept every finding of `report`, with its rule and path for the reader.
    pub fn from_report(report: &ScanReport) -> Baseline {
        Baseline::from_entries(report.findings.iter().map(|f| BaselineEntry {
            fingerprint: f.fingerprint.clone(),
            rule_id: Some(f.rule_id.clone()),
            path: Some(f.location.path.clone()),
            justification: None,
        }))
    }

    /// This baseline plus the entries of `newer` it lacks. Entries already here keep their
    /// justification, so regenerating a baseline from a new scan loses no reviewer's note.
    pub fn merged(&self, newer: &Baseline) -> Baseline {
        Baseline::from_entries(self.entries.iter().chain(&newer.entries).cloned())
    }

    pub fn entries(&self) -> &[BaselineEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the baseline accepts this fingerprint (case-insensitive).
    pub fn contains(&self, fingerprint: &str) -> bool {
        let fp = fingerprint.trim().to_ascii_lowercase();
        self.entries
            .binary_search_by(|e| e.fingerprint.as_str().cmp(fp.as_str()))
            .is_ok()
    }

    /// Parse baseline JSON; `source_name` names the input in errors.
    pub fn from_json_named(text: &str, source_name: &str) -> Result<Baseline, FindingsError> {
        let file: BaselineFile =
            serde_json::from_str(text).map_err(|error| FindingsError::Corrupt {
                source_name: source_name.to_string(),
                what: "vigil baseline",
                error,
            })?;
        let version = file.format_version.unwrap_or(0);
        if file.format.as_deref() != Some(BASELINE_FORMAT)
            || !(1..=BASELINE_FORMAT_VERSION).contains(&version)
        {
            return Err(FindingsError::WrongFormat {
                source_name: source_name.to_string(),
                expected: BASELINE_FORMAT,
                found: file.format.unwrap_or_default(),
                version,
            });
        }
        for (index, e) in file.entries.iter().enumerate() {
            if !valid_fingerprint(e.fingerprint.trim()) {
                return Err(FindingsError::BadFingerprint {
                    source_name: source_name.to_string(),
                    index,
                    value: e.fingerprint.chars().take(80).collect(),
                });
            }
        }
        Ok(Baseline::from_entries(file.entries))
    }

    /// Read a baseline file. A missing, unreadable, oversized or corrupt file is an error
    /// that names the file.
    pub fn load(path: &Path) -> Result<Baseline, FindingsError> {
        let text = read_limited(path, MAX_BASELINE_BYTES, "baseline")?;
        Baseline::from_json_named(&text, &path.display().to_string())
    }

    /// The baseline as pretty JSON text.
    pub fn to_json(&self) -> String {
        let file = BaselineFile {
            format: Some(BASELINE_FORMAT.to_string()),
            format_version: Some(BASELINE_FORMAT_VERSION),
            entries: self.entries.clone(),
        };
        // Plain strings and options only: serialising cannot fail.
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Write the baseline to `path`, through a temporary file renamed into place so that a
    /// crash never leaves half a baseline.
    pub fn save(&self, path: &Path) -> Result<(), FindingsError> {
        let write_err = |source| FindingsError::WriteFile {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }

    /// Move the findings this baseline accepts out of `report`, adding their number to
    /// `report.suppressed_by_baseline`; returns how many were removed.
    pub fn apply(&self, report: &mut ScanReport) -> usize {
        let accepted: HashSet<&str> = self
            .entries
            .iter()
            .map(|e| e.fingerprint.as_str())
            .collect();
        let before = report.findings.len();
        report
            .findings
            .retain(|f| !accepted.contains(f.fingerprint.to_ascii_lowercase().as_str()));
        let removed = before - report.findings.len();
        report.suppressed_by_baseline += removed;
        removed
    }
}
