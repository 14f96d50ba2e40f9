//! What `vigil scan` produces: the finding model, its output writers, baselines and the
//! `--fail-on` exit code.
//!
//! Principal types and how they connect:
//! - [`Finding`]: one vulnerability in one unit of code — taxonomy rule id
//!   (`vigil_taxonomy`), CWE, OWASP category, [`Severity`](vigil_taxonomy::Severity),
//!   confidence, [`Location`], optional [`Endpoint`], the model's reason and fixed code — and a
//!   stable [`fingerprint`] that ignores line numbers, so a unit that moves keeps its identity.
//!   [`Finding::new`] fills the taxonomy facts from a `VulnType`.
//! - [`ScanReport`]: a whole scan — [`ToolInfo`], [`BundleInfo`], root, start time and
//!   duration, counts, the findings, [`Skipped`] files and how many findings the baseline
//!   suppressed.
//! - [`ReportWriter`]: renders a report; implemented by [`TextWriter`] (terminal, coloured
//!   unless `NO_COLOR`), [`JsonWriter`] (documented JSON, read back by
//!   [`ScanReport::from_json`]), [`SarifWriter`] (SARIF 2.1.0 for GitHub code scanning, rules
//!   from the taxonomy) and [`MarkdownWriter`]. [`OutputFormat`] maps `--format` names to
//!   writers.
//! - [`Baseline`]: accepted fingerprints in a JSON file; [`Baseline::apply`] removes them from
//!   a report before it is written and before [`exit_code`] looks at it.
//! - [`FailOn`] and [`exit_code`]: 0 when no remaining finding reaches the threshold, 1 when
//!   one does; 2 ([`EXIT_ERROR`]) is reserved for scans that failed.
//!
//! The scanner's flow is: build findings → `ScanReport::sort` → `Baseline::apply` → a
//! writer → `exit_code`. Everything in a finding's text fields is untrusted (it comes from a
//! model reading attacker-controlled code); the text and Markdown writers escape it.

mod baseline;
mod error;
pub mod escape;
mod fail_on;
mod json;
mod markdown;
mod model;
mod sarif;
mod text;
mod writer;

pub use baseline::{
    Baseline, BaselineEntry, BASELINE_FORMAT, BASELINE_FORMAT_VERSION, MAX_BASELINE_BYTES,
};
pub use error::FindingsError;
pub use fail_on::{exit_code, FailOn, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
pub use json::{JsonWriter, MAX_REPORT_BYTES, REPORT_FORMAT, REPORT_FORMAT_VERSION};
pub use markdown::MarkdownWriter;
pub use model::{
    fingerprint, normalize_code, normalize_path, rfc3339_utc, BundleInfo, Endpoint, Finding,
    Location, ScanReport, Skipped, ToolInfo,
};
pub use sarif::{
    sarif_level, security_severity, uri_path, SarifWriter, FINGERPRINT_KEY, SARIF_SCHEMA_URI,
    SRCROOT,
};
pub use text::{color_enabled, TextWriter};
pub use writer::{OutputFormat, ReportWriter};
