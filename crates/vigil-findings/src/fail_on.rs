//! `--fail-on SEVERITY` and the scanner's exit codes.

use crate::{FindingsError, ScanReport};
use std::fmt;
use std::str::FromStr;
use vigil_taxonomy::Severity;

/// Exit code: no finding at or above the `--fail-on` threshold.
pub const EXIT_OK: i32 = 0;
/// Exit code: at least one finding at or above the threshold.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code reserved for errors (bad arguments, unreadable files, a failed model): a CI
/// job can tell "the code has problems" (1) from "the scan did not work" (2).
pub const EXIT_ERROR: i32 = 2;

/// The lowest severity that fails a scan, or `None` to never fail on findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailOn {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl FailOn {
    /// The severity at and above which findings fail the scan (`None` for `FailOn::None`).
    /// `info` findings never fail a scan: the lowest threshold is `low`.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::None => None,
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::None => "none",
            FailOn::Low => "low",
            FailOn::Medium => "medium",
            FailOn::High => "high",
            FailOn::Critical => "critical",
        }
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailOn {
    type Err = FindingsError;

    /// Case-insensitive `none`, `low`, `medium`, `high` or `critical`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(FailOn::None),
            "low" => Ok(FailOn::Low),
            "medium" => Ok(FailOn::Medium),
            "high" => Ok(FailOn::High),
            "critical" => Ok(FailOn::Critical),
            _ => Err(FindingsError::UnknownFailOn(s.to_string())),
        }
    }
}

/// The process exit code for a finished scan: [`EXIT_FINDINGS`] when a finding still in the
/// report (baseline-suppressed ones are gone) is at or above the threshold, else
/// [`EXIT_OK`]. [`EXIT_ERROR`] is never returned here; it is for scans that failed.
pub fn exit_code(report: &ScanReport, fail_on: FailOn) -> i32 {
    match fail_on.threshold() {
        Some(t) if report.findings.iter().any(|f| f.severity >= t) => EXIT_FINDINGS,
        _ => EXIT_OK,
    }
}
