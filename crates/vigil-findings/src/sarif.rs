//! SARIF 2.1.0 output, shaped for GitHub code scanning.

use crate::{Finding, FindingsError, ReportWriter, ScanReport};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use vigil_taxonomy::{Severity, Taxonomy, VulnType};

/// The `$schema` written into every log: the OASIS 2.1.0 (errata 01) schema.
pub const SARIF_SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The base id that result locations are relative to.
pub const SRCROOT: &str = "%SRCROOT%";
/// The key of vigil's fingerprint in `result.partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "vigilFingerprint/v1";

/// Writes one SARIF 2.1.0 log with one run. Rules come from the taxonomy (every rule a
/// finding uses, in first-use order); a rule id the taxonomy does not know gets a rule built
/// from the finding itself.
#[derive(Debug, Clone, Copy)]
pub struct SarifWriter {
    taxonomy: &'static Taxonomy,
}

impl Default for SarifWriter {
    fn default() -> Self {
        SarifWriter {
            taxonomy: Taxonomy::builtin(),
        }
    }
}

impl SarifWriter {
    /// A writer that takes rule texts from `taxonomy`.
    pub fn with_taxonomy(taxonomy: &'static Taxonomy) -> SarifWriter {
        SarifWriter { taxonomy }
    }

    /// The whole log as a JSON value.
    pub fn to_value(&self, report: &ScanReport) -> Value {
        let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut rules = Vec::new();
        for f in &report.findings {
            if !rule_index.contains_key(f.rule_id.as_str()) {
                rule_index.insert(&f.rule_id, rules.len());
                rules.push(match self.taxonomy.by_id(&f.rule_id) {
                    Some(v) => rule_from_taxonomy(v),
                    None => rule_from_finding(f),
                });
            }
        }
        let results: Vec<Value> = report
            .findings
            .iter()
            .map(|f| result(f, rule_index[f.rule_id.as_str()]))
            .collect();

        let notifications: Vec<Value> = report
            .skipped
            .iter()
            .map(|s| {
                json!({
                    "level": "warning",
                    "message": {"text": non_empty(&format!("Skipped: {}", s.reason))},
                    "descriptor": {"id": "skipped-file"},
                    "locations": [{
                        "physicalLocation": {"artifactLocation": artifact(&s.path)}
                    }],
                })
            })
            .collect();

        let mut driver = Map::new();
        driver.insert("name".into(), json!(non_empty(&report.tool.name)));
        driver.insert("version".into(), json!(report.tool.version));
        if is_semver(&report.tool.version) {
            driver.insert("semanticVersion".into(), json!(report.tool.version));
        }
        if let Some(uri) = &report.tool.information_uri {
            driver.insert("informationUri".into(), json!(uri));
        }
        driver.insert("rules".into(), Value::Array(rules));

        let mut srcroot = Map::new();
        if let Some(uri) = directory_file_uri(&report.root) {
            srcroot.insert("uri".into(), json!(uri));
        }
        srcroot.insert(
            "description".into(),
            json!({"text": "The directory vigil scanned; result paths are relative to it."}),
        );

        json!({
            "$schema": SARIF_SCHEMA_URI,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": Value::Object(driver)},
                "invocations": [{
                    "executionSuccessful": true,
                    "startTimeUtc": report.started_at,
                    "toolExecutionNotifications": notifications,
                    "properties": {"durationMs": report.duration_ms},
                }],
                "originalUriBaseIds": {SRCROOT: Value::Object(srcroot)},
                "results": results,
                "properties": {
                    "bundle": report.bundle.name,
                    "modelFingerprint": report.bundle.model_fingerprint,
                    "unitsAnalyzed": report.units_analyzed,
                    "cleanUnits": report.clean_units,
                    "suppressedByBaseline": report.suppressed_by_baseline,
                },
            }],
        })
    }
}

impl ReportWriter for SarifWriter {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> Result<(), FindingsError> {
        serde_json::to_writer_pretty(&mut *out, &self.to_value(report)).map_err(|e| {
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

/// SARIF `level` for a severity: what GitHub shows as error / warning / note.
pub fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score for a severity: GitHub maps 9.0 and above to
/// critical, 7.0–8.9 to high, 4.0–6.9 to medium and 0.1–3.9 to low.
pub fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Info => "0.0",
    }
}

/// `sql_injection` -> `SqlInjection`: SARIF's `name` is an identifier, not a sentence.
fn pascal_case(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + &cs.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

fn cwe_uri(cwe: u32) -> String {
    format!("https://cwe.mitre.org/data/definitions/{cwe}.html")
}

fn tags(cwe: Option<u32>, owasp: Option<&str>) -> Vec<String> {
    let mut tags = vec!["security".to_string()];
    if let Some(c) = cwe {
        tags.push(format!("external/cwe/cwe-{c}"));
    }
    if let Some(o) = owasp {
        tags.push(format!("OWASP {o}"));
    }
    tags
}

fn rule_from_taxonomy(v: &VulnType) -> Value {
    let owasp = v.owasp.label();
    let markdown = format!(
        "**{}** ([CWE-{}]({}): {}; OWASP {})\n\n{}\n\n**Remediation.** {}",
        v.name,
        v.cwe.id,
        cwe_uri(v.cwe.id),
        v.cwe.name,
        owasp,
        v.description,
        v.remediation
    );
    json!({
        "id": v.id,
        "name": pascal_case(&v.id),
        "shortDescription": {"text": v.name},
        "fullDescription": {"text": v.description},
        "help": {"text": v.remediation, "markdown": markdown},
        "helpUri": cwe_uri(v.cwe.id),
        "defaultConfiguration": {"level": sarif_level(v.severity)},
        "properties": {
            "tags": tags(Some(v.cwe.id), Some(&owasp)),
            "security-severity": security_severity(v.severity),
            "precision": "medium",
        },
    })
}

/// A rule for an id outside the taxonomy (a model may invent one): described by the finding.
fn rule_from_finding(f: &Finding) -> Value {
    let title = non_empty(&f.title);
    let mut rule = json!({
        "id": f.rule_id,
        "name": pascal_case(&f.rule_id),
        "shortDescription": {"text": title},
        "fullDescription": {"text": title},
        "help": {
            "text": "No remediation text: this rule is not in vigil's taxonomy.",
            "markdown": "No remediation text: this rule is not in vigil's taxonomy.",
        },
        "defaultConfiguration": {"level": sarif_level(f.severity)},
        "properties": {
            "tags": tags(f.cwe, f.owasp.as_deref()),
            "security-severity": security_severity(f.severity),
            "precision": "low",
        },
    });
    if let Some(c) = f.cwe {
        rule["helpUri"] = json!(cwe_uri(c));
    }
    rule
}

fn artifact(path: &str) -> Value {
    json!({"uri": uri_path(path), "uriBaseId": SRCROOT})
}

fn result(f: &Finding, rule_index: usize) -> Value {
    let loc = &f.location;
    let message = if f.reason.trim().is_empty() {
        non_empty(&f.title)
    } else {
        format!("{}: {}", non_empty(&f.title), f.reason.trim())
    };
    let mut region = json!({"startLine": loc.start_line.max(1), "endLine": loc.end_line.max(loc.start_line).max(1)});
    if !f.snippet.is_empty() {
        region["snippet"] = json!({"text": f.snippet});
    }
    let mut props = Map::new();
    props.insert("severity".into(), json!(f.severity.as_str()));
    props.insert("confidence".into(), f32_value(f.confidence));
    if let Some(p) = f.probability {
        props.insert("probability".into(), f32_value(p));
    }
    if let Some(c) = f.cwe {
        props.insert("cwe".into(), json!(format!("CWE-{c}")));
    }
    if let Some(o) = &f.owasp {
        props.insert("owasp".into(), json!(o));
    }
    props.insert("language".into(), json!(f.language));
    if let Some(fw) = &f.framework {
        props.insert("framework".into(), json!(fw));
    }
    if let Some(e) = &f.endpoint {
        props.insert(
            "endpoint".into(),
            json!({"method": e.method, "route": e.route, "handler": e.handler}),
        );
    }
    if let Some(code) = &f.fixed_code {
        props.insert("fixedCode".into(), json!(code));
    }

    let mut location = json!({
        "physicalLocation": {"artifactLocation": artifact(&loc.path), "region": region},
    });
    if let Some(e) = &f.endpoint {
        location["logicalLocations"] = json!([{
            "name": non_empty(&e.handler),
            "fullyQualifiedName": format!("{} {} {}", e.method, e.route, e.handler),
            "kind": "function",
        }]);
    }

    let mut r = json!({
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": sarif_level(f.severity),
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": Value::Object(props),
    });
    if let Some(code) = f.fixed_code.as_deref().filter(|c| !c.trim().is_empty()) {
        // The fix replaces the unit's lines; consumers that apply SARIF fixes can use it.
        r["fixes"] = json!([{
            "description": {"text": "Fixed code suggested by the model; review before applying."},
            "artifactChanges": [{
                "artifactLocation": artifact(&loc.path),
                "replacements": [{
                    "deletedRegion": {"startLine": loc.start_line.max(1), "endLine": loc.end_line.max(loc.start_line).max(1)},
                    "insertedContent": {"text": code},
                }],
            }],
        }]);
    }
    r
}

/// An `f32` as the JSON number it prints as (`0.91`, not `0.9100000262260437`); non-finite
/// values become `null`.
fn f32_value(v: f32) -> Value {
    format!("{v}")
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map_or(Value::Null, |x| json!(x))
}

/// SARIF requires message texts to be non-empty.
fn non_empty(s: &str) -> String {
    if s.trim().is_empty() {
        "(none)".to_string()
    } else {
        s.to_string()
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Percent-encode a relative path for a URI reference: `/` stays, unreserved characters
/// stay, everything else (spaces, `#`, `?`, `%`, non-ASCII bytes) is encoded, so a file
/// named `a b#1.py` is still one valid relative URI.
pub fn uri_path(path: &str) -> String {
    let path = crate::normalize_path(path);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    // A first segment with ':' would read as a scheme; it is encoded above, so only a
    // leading '/' (an absolute path that slipped through) needs care: keep it relative.
    out.trim_start_matches('/').to_string()
}

/// `file:///abs/dir/` for an absolute directory (Unix `/x` or Windows `C:\x`), else `None`.
fn directory_file_uri(root: &str) -> Option<String> {
    let unified = root.replace('\\', "/");
    let bytes = unified.as_bytes();
    let is_windows_abs =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && bytes[2] == b'/';
    if !unified.starts_with('/') && !is_windows_abs {
        return None;
    }
    let (drive, rest) = if is_windows_abs {
        (format!("/{}:", &unified[..1]), &unified[2..])
    } else {
        (String::new(), unified.as_str())
    };
    let encoded = uri_path(rest);
    let mut uri = format!("file://{drive}/{encoded}");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    Some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris() {
        assert_eq!(pascal_case("sql_injection"), "SqlInjection");
        assert_eq!(pascal_case("xss"), "Xss");
        assert_eq!(uri_path("src/a b#1.py"), "src/a%20b%231.py");
        assert_eq!(uri_path("ü.py"), "%C3%BC.py");
        assert_eq!(
            directory_file_uri("/home/me/my repo").as_deref(),
            Some("file:///home/me/my%20repo/")
        );
        assert_eq!(
            directory_file_uri("C:\\src\\app").as_deref(),
            Some("file:///C:/src/app/")
        );
        assert_eq!(directory_file_uri("."), None);
        assert!(is_semver("0.1.0") && is_semver("1.2.3-rc.1") && !is_semver("1.2"));
    }

    #[test]
    fn severity_scores_fall_in_githubs_bands() {
        let band = |s: Severity| -> f32 { security_severity(s).parse().unwrap() };
        assert!(band(Severity::Critical) >= 9.0);
        assert!((7.0..9.0).contains(&band(Severity::High)));
        assert!((4.0..7.0).contains(&band(Severity::Medium)));
        assert!((0.1..4.0).contains(&band(Severity::Low)));
    }
}
