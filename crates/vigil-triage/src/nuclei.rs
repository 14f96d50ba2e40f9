//! Nuclei JSON Lines: one finding object per line. A line that is not a finding is
//! reported with its number and kept as it was; the verdict goes into a `vigil` object on
//! the line's finding.

use std::path::Path;

use serde_json::Value;

use crate::jsonutil::{cwe_from_value, text, text_at};
use crate::{Format, Location, Origin, ReadWarning, TriageError, TriageItem, TriageVerdict};

/// The file split into lines, each parsed when it is a finding, so that write-back can
/// leave every other line byte for byte as it was.
#[derive(Clone, Debug)]
pub(crate) struct NucleiLines {
    pub(crate) lines: Vec<(String, Option<Value>)>,
    pub(crate) final_newline: bool,
}

pub(crate) fn read(
    path: &Path,
    text_in: &str,
) -> Result<(NucleiLines, Vec<TriageItem>, Vec<ReadWarning>), TriageError> {
    let mut lines = Vec::new();
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    let mut first_error = None;
    // Split on '\n' only, so a CRLF line keeps its '\r' and is written back unchanged.
    let body = text_in.strip_suffix('\n').unwrap_or(text_in);
    for (i, raw) in body.split('\n').enumerate() {
        let number = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            lines.push((raw.to_string(), None));
            continue;
        }
        let problem = match serde_json::from_str::<Value>(trimmed) {
            Ok(v) if v.get("template-id").is_some() || v.get("templateID").is_some() => {
                items.push(item(number, &v));
                lines.push((raw.to_string(), Some(v)));
                continue;
            }
            Ok(_) => "skipped: not a Nuclei finding (no template-id)".to_string(),
            Err(e) => format!("skipped: not JSON ({e})"),
        };
        first_error.get_or_insert_with(|| format!("line {number}: {problem}"));
        warnings.push(ReadWarning {
            path: path.to_path_buf(),
            at: format!("line {number}"),
            message: problem,
        });
        lines.push((raw.to_string(), None));
    }
    if items.is_empty() {
        if let Some(first) = first_error {
            return Err(TriageError::malformed(
                path,
                format!("no line is a Nuclei finding ({first})"),
            ));
        }
    }
    let doc = NucleiLines {
        lines,
        final_newline: text_in.ends_with('\n'),
    };
    Ok((doc, items, warnings))
}

fn item(line: usize, v: &Value) -> TriageItem {
    let id = format!("nuclei:{line}");
    let request = text(v, "request");
    let method = request
        .as_deref()
        .and_then(|r| r.split_whitespace().next())
        .filter(|m| m.chars().all(|c| c.is_ascii_uppercase()))
        .unwrap_or("")
        .to_string();
    let evidence = match v.get("extracted-results") {
        Some(Value::Array(a)) if !a.is_empty() => Some(
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => text(v, "matcher-name").map(|m| format!("matcher: {m}")),
    };
    TriageItem {
        rule: text(v, "template-id")
            .or_else(|| text(v, "templateID"))
            .unwrap_or_default(),
        title: text_at(v, &["info", "name"]).unwrap_or_default(),
        description: text_at(v, &["info", "description"])
            .unwrap_or_default()
            .trim()
            .to_string(),
        severity: text_at(v, &["info", "severity"]).unwrap_or_default(),
        cwe: v
            .get("info")
            .and_then(|i| i.get("classification"))
            .and_then(|c| c.get("cwe-id"))
            .and_then(cwe_from_value),
        location: Location::Http {
            method,
            url: text(v, "matched-at")
                .or_else(|| text(v, "url"))
                .or_else(|| text(v, "host"))
                .unwrap_or_default(),
            param: None,
        },
        request,
        response: text(v, "response"),
        code: None,
        evidence,
        no_evidence: false,
        notes: Vec::new(),
        prior: v
            .get("vigil")
            .and_then(|a| TriageVerdict::from_json(&id, a)),
        origin: Origin::Nuclei { line },
        id,
        source: Format::Nuclei,
    }
    .finish()
}

pub(crate) fn annotate(doc: &mut NucleiLines, origin: &Origin, verdict: &TriageVerdict) -> bool {
    let Origin::Nuclei { line } = origin else {
        return false;
    };
    let Some((raw, Some(value))) = line.checked_sub(1).and_then(|i| doc.lines.get_mut(i)) else {
        return false;
    };
    let Some(obj) = value.as_object_mut() else {
        return false;
    };
    obj.insert("vigil".into(), verdict.to_json());
    let cr = if raw.ends_with('\r') { "\r" } else { "" };
    *raw = serde_json::to_string(value).unwrap_or_default() + cr;
    true
}

pub(crate) fn to_bytes(doc: &NucleiLines) -> Vec<u8> {
    let mut out = doc
        .lines
        .iter()
        .map(|(raw, _)| raw.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if doc.final_newline {
        out.push('\n');
    }
    out.into_bytes()
}
