//! The report as JSON, and reading it back.
//!
//! The document is the [`ScanReport`] serialised field by field (the field docs are the
//! reference), preceded by two marker fields:
//!
//! ```json
//! {
//!   "format": "vigil-scan-report",
//!   "format_version": 1,
//!   "tool": {"name": "vigil", "version": "0.1.0", "information_uri": "..."},
//!   "bundle": {"name": "...", "model_fingerprint": "..."},
//!   "root": "/path/scanned",
//!   "started_at": "2026-11-22T13:45:00Z",
//!   "duration_ms": 1234,
//!   "units_analyzed": 10,
//!   "findings": [{"fingerprint": "<64 hex>", "rule_id": "sql_injection", "title": "...",
//!                 "cwe": 89, "owasp": "...", "severity": "high", "confidence": 0.9,
//!                 "probability": 0.8, "location": {"path": "src/a.py", "start_line": 3,
//!                 "end_line": 9}, "endpoint": {"method": "GET", "route": "/u/{id}",
//!                 "handler": "get_user"}, "language": "python", "framework": "flask",
//!                 "reason": "...", "fixed_code": "...", "snippet": "..."}],
//!   "clean_units": 9,
//!   "skipped": [{"path": "big.min.js", "reason": "larger than 1 MiB"}],
//!   "suppressed_by_baseline": 0
//! }
//! ```
//!
//! Severities are lower case (`critical`, `high`, `medium`, `low`, `info`); absent optional
//! values are `null`. A reader must accept unknown fields: later versions only add fields
//! within one `format_version`.

use crate::{FindingsError, ReportWriter, ScanReport};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The `format` marker of a JSON report.
pub const REPORT_FORMAT: &str = "vigil-scan-report";
/// The newest `format_version` this crate writes and reads.
pub const REPORT_FORMAT_VERSION: u32 = 1;
/// Reports larger than this are refused when read from a file.
pub const MAX_REPORT_BYTES: u64 = 512 << 20;

#[derive(Serialize)]
struct Envelope<'a> {
    format: &'static str,
    format_version: u32,
    #[serde(flatten)]
    report: &'a ScanReport,
}

#[derive(Deserialize)]
struct Marker {
    format: Option<String>,
    format_version: Option<u32>,
}

/// Writes the report as pretty-printed JSON (see the module docs for the layout).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonWriter;

impl ReportWriter for JsonWriter {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> Result<(), FindingsError> {
        let envelope = Envelope {
            format: REPORT_FORMAT,
            format_version: REPORT_FORMAT_VERSION,
            report,
        };
        serde_json::to_writer_pretty(&mut *out, &envelope).map_err(|e| {
            if e.is_io() {
                FindingsError::Write(e.into())
            } else {
                FindingsError::Serialize(e)
            }
        })?;
        out.write_all(b"\n")?;
        Ok(())
    }
}

impl ScanReport {
    /// Read a report written by [`JsonWriter`]. `source_name` names the input in errors.
    pub fn from_json_named(text: &str, source_name: &str) -> Result<ScanReport, FindingsError> {
        let corrupt = |error| FindingsError::Corrupt {
            source_name: source_name.to_string(),
            what: "vigil scan report",
            error,
        };
        // The marker is checked first so that a SARIF file or a baseline given by mistake
        // gets "not a vigil-scan-report file" rather than a missing-field message.
        let marker: Marker = serde_json::from_str(text).map_err(corrupt)?;
        let version = marker.format_version.unwrap_or(0);
        if marker.format.as_deref() != Some(REPORT_FORMAT)
            || !(1..=REPORT_FORMAT_VERSION).contains(&version)
        {
            return Err(FindingsError::WrongFormat {
                source_name: source_name.to_string(),
                expected: REPORT_FORMAT,
                found: marker.format.unwrap_or_default(),
                version,
            });
        }
        serde_json::from_str(text).map_err(corrupt)
    }

    /// [`from_json_named`](Self::from_json_named) for text without a file name.
    pub fn from_json(text: &str) -> Result<ScanReport, FindingsError> {
        Self::from_json_named(text, "JSON text")
    }

    /// Read a JSON report file.
    pub fn read_json_file(path: &Path) -> Result<ScanReport, FindingsError> {
        let text = read_limited(path, MAX_REPORT_BYTES, "scan report")?;
        Self::from_json_named(&text, &path.display().to_string())
    }
}

/// Read a UTF-8 file no larger than `limit` bytes.
pub(crate) fn read_limited(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<String, FindingsError> {
    let read_err = |source| FindingsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > limit {
        return Err(FindingsError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit,
            what,
        });
    }
    std::fs::read_to_string(path).map_err(read_err)
}
