//! The finding model: [`Finding`], [`ScanReport`] and their parts.

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_taxonomy::{Severity, VulnType};

/// Which program produced a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    /// Where a reader learns about the tool (SARIF `tool.driver.informationUri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub information_uri: Option<String>,
}

impl ToolInfo {
    /// `vigil` at the given version, with the workspace's repository address.
    pub fn vigil(version: &str) -> ToolInfo {
        ToolInfo {
            name: "vigil".to_string(),
            version: version.to_string(),
            information_uri: Some(env!("CARGO_PKG_REPOSITORY").to_string()),
        }
    }
}

/// The model bundle that analysed the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    pub name: String,
    /// Content hash of the model (and adapter) weights, so a report names exactly what ran.
    pub model_fingerprint: String,
}

/// Where a finding is: a path relative to the scanned root with `/` separators, and an
/// inclusive 1-based line range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
}

impl Location {
    /// Build a location, normalising the path (see [`normalize_path`]) and ordering the lines
    /// so that `start_line <= end_line` and both are at least 1.
    pub fn new(path: &str, start_line: u32, end_line: u32) -> Location {
        let start = start_line.max(1);
        let end = end_line.max(start);
        Location {
            path: normalize_path(path),
            start_line: start,
            end_line: end,
        }
    }
}

impl Location {
    /// A location for `file` found while scanning `root`: the path is made relative to
    /// `root` when `file` lies inside it (else kept as given), then normalised.
    pub fn in_root(root: &Path, file: &Path, start_line: u32, end_line: u32) -> Location {
        let relative = file.strip_prefix(root).unwrap_or(file);
        Location::new(&relative.to_string_lossy(), start_line, end_line)
    }
}

/// An API endpoint a unit of code serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// HTTP method in upper case (`GET`), or `ANY` when the route takes every method.
    pub method: String,
    /// Route pattern as the framework writes it (`/users/{id}`, `/users/:id`).
    pub route: String,
    /// Name of the handler function or method.
    pub handler: String,
}

/// One vulnerability the model reported in one unit of code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identity across runs: see [`fingerprint`]. Baselines match on it.
    pub fingerprint: String,
    /// Taxonomy id (`sql_injection`), see `vigil_taxonomy::Taxonomy::by_id`.
    pub rule_id: String,
    /// Human title, usually the taxonomy name (`SQL Injection`).
    pub title: String,
    pub cwe: Option<u32>,
    /// OWASP category label (`API8:2023 Security Misconfiguration`).
    pub owasp: Option<String>,
    pub severity: Severity,
    /// The model's confidence in `[0, 1]`. A non-finite value is written as JSON `null`
    /// and read back as 0.
    #[serde(deserialize_with = "finite_or_zero")]
    pub confidence: f32,
    /// Probability of "vulnerable" from the classifier head, when one ran.
    #[serde(default)]
    pub probability: Option<f32>,
    pub location: Location,
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Source language (`python`, `javascript`, ...).
    pub language: String,
    #[serde(default)]
    pub framework: Option<String>,
    /// The model's explanation. Untrusted text: writers escape it.
    pub reason: String,
    /// The model's corrected version of the unit. Untrusted text: writers escape it.
    #[serde(default)]
    pub fixed_code: Option<String>,
    /// The analysed code of the unit.
    pub snippet: String,
}

fn finite_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?
        .filter(|v| v.is_finite())
        .unwrap_or(0.0))
}

impl Finding {
    /// A finding of type `vuln` in the unit `snippet` at `location`, with title, CWE, OWASP
    /// category and severity taken from the taxonomy and the fingerprint computed from the
    /// rule, the path and the code. Confidence starts at 0 and the optional parts empty;
    /// set the public fields for the rest.
    pub fn new(vuln: &VulnType, location: Location, snippet: &str, language: &str) -> Finding {
        Finding {
            fingerprint: fingerprint(&vuln.id, &location.path, snippet),
            rule_id: vuln.id.clone(),
            title: vuln.name.clone(),
            cwe: Some(vuln.cwe.id),
            owasp: Some(vuln.owasp.label()),
            severity: vuln.severity,
            confidence: 0.0,
            probability: None,
            location,
            endpoint: None,
            language: language.to_string(),
            framework: None,
            reason: String::new(),
            fixed_code: None,
            snippet: snippet.to_string(),
        }
    }
}

/// Make a path relative-looking and portable: `\` becomes `/`, leading `./` and repeated
/// separators go.
pub fn normalize_path(path: &str) -> String {
    let unified = path.replace('\\', "/");
    let parts: Vec<&str> = unified
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// Code with every run of whitespace made one space and the ends trimmed, so re-indenting
/// a unit or changing its line endings keeps its identity.
pub fn normalize_code(code: &str) -> String {
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The stable fingerprint of a finding: lower-case hex SHA-256 over a version tag, the rule
/// id, the normalised relative path and the normalised code of the unit (or, when the
/// caller prefers, the handler name). Line numbers are deliberately not part of it, so a
/// unit that only moves keeps its fingerprint and stays matched by a baseline.
pub fn fingerprint(rule_id: &str, path: &str, unit_key: &str) -> String {
    let mut h = Sha256::new();
    // Fields are separated by NUL so that ("ab", "c") and ("a", "bc") differ.
    for part in [
        "vigil-finding-v1",
        rule_id.trim(),
        &normalize_path(path),
        &normalize_code(unit_key),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// A file the scanner did not analyse, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Everything one `vigil scan` produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub tool: ToolInfo,
    pub bundle: BundleInfo,
    /// The scanned root as the user gave it (absolute when the scanner resolved it).
    pub root: String,
    /// Start time, RFC 3339 in UTC (`2026-11-22T13:45:00Z`); see [`rfc3339_utc`].
    pub started_at: String,
    pub duration_ms: u64,
    pub units_analyzed: usize,
    pub findings: Vec<Finding>,
    /// Units the model judged safe.
    pub clean_units: usize,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Findings removed because the baseline accepts them (see `Baseline::apply`).
    #[serde(default)]
    pub suppressed_by_baseline: usize,
}

impl ScanReport {
    /// An empty report for a scan of `root` that started at `started`.
    pub fn new(tool: ToolInfo, bundle: BundleInfo, root: &str, started: SystemTime) -> ScanReport {
        ScanReport {
            tool,
            bundle,
            root: root.to_string(),
            started_at: rfc3339_utc(started),
            duration_ms: 0,
            units_analyzed: 0,
            findings: Vec::new(),
            clean_units: 0,
            skipped: Vec::new(),
            suppressed_by_baseline: 0,
        }
    }

    /// Put findings in reading order: most severe first, then by path, line and rule, so
    /// every writer's output is the same for the same findings whatever order the parallel
    /// scan produced them in.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.location.path.cmp(&b.location.path))
                .then_with(|| a.location.start_line.cmp(&b.location.start_line))
                .then_with(|| a.rule_id.cmp(&b.rule_id))
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        self.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// Number of findings of each severity, most severe first (all five, zeros included).
    pub fn counts_by_severity(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|s| (s, self.findings.iter().filter(|f| f.severity == s).count()))
    }

    /// The highest severity among the findings, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Format a time as RFC 3339 in UTC with second precision (`2026-11-22T13:45:00Z`).
/// Times before 1970 are clamped to the epoch.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (the well-known "days to
/// civil" conversion using 400-year eras).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2000-02-29 12:34:56 UTC = 951827696 (leap day in a century leap year).
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696);
        assert_eq!(rfc3339_utc(t), "2000-02-29T12:34:56Z");
        // 2026-11-22 00:00:00 UTC = 1795305600.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_305_600);
        assert_eq!(rfc3339_utc(t), "2026-11-22T00:00:00Z");
    }

    #[test]
    fn paths_normalise() {
        assert_eq!(normalize_path(".\\src\\\\app.py"), "src/app.py");
        assert_eq!(normalize_path("./a/./b//c.js"), "a/b/c.js");
    }

    #[test]
    fn location_in_root_is_relative() {
        let l = Location::in_root(Path::new("/repo"), Path::new("/repo/src/app.py"), 3, 4);
        assert_eq!(l.path, "src/app.py");
        let l = Location::in_root(Path::new("/repo"), Path::new("/elsewhere/x.py"), 3, 4);
        assert_eq!(l.path, "elsewhere/x.py");
    }

    #[test]
    fn location_orders_lines() {
        let l = Location::new("a.py", 0, 0);
        assert_eq!((l.start_line, l.end_line), (1, 1));
        let l = Location::new("a.py", 9, 3);
        assert_eq!((l.start_line, l.end_line), (9, 9));
    }
}
