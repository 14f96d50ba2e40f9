//! SARIF 2.1.0 (Semgrep, CodeQL, and DAST tools that write `webRequest` / `webResponse`):
//! one item per `runs[].results[]`. Rule metadata comes from `tool.driver.rules` (or a
//! `tool.extensions[]` component, as CodeQL writes), the snippet from `region.snippet`
//! or, failing that, from the source tree under `ReadOptions::source_root`.
//!
//! Write-back: every judged result gets `properties.vigil`; a false positive also gets a
//! `suppressions` entry of kind "external" whose justification is the reason (see
//! [`SuppressionStatus`] for the status and how GitHub treats it).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::input::{read_limited, ReadOptions};
use crate::jsonutil::{cwe_from_value, text, text_at};
use crate::{Format, Location, Origin, ReadWarning, TriageError, TriageItem, TriageVerdict};

/// The `status` of the suppression written for a false positive.
///
/// Why `kind: "external"` with `status: "accepted"` (the default): SARIF 2.1.0 (§3.34)
/// counts a result as suppressed when one of its suppressions is `accepted` or has no
/// status, and `external` says the decision was made outside the source (no comment in
/// the code). GitHub code scanning's own upload does not reliably act on `suppressions`
/// (public reports say it honours one at most when it first creates an alert, or only
/// with a repository setting); what GitHub users run to act on them is the
/// `advanced-security/dismiss-alerts` action, which dismisses the alert of every result
/// that carries a suppression and reopens it when the suppression goes away. So
/// `accepted` is the value that every consumer reads as suppressed. `UnderReview` keeps
/// the result visible to SARIF-status-aware viewers for a person to confirm — but note
/// that dismiss-alerts looks only at whether `suppressions` is non-empty, so it dismisses
/// those too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SuppressionStatus {
    #[default]
    Accepted,
    UnderReview,
}

impl SuppressionStatus {
    fn word(self) -> &'static str {
        match self {
            SuppressionStatus::Accepted => "accepted",
            SuppressionStatus::UnderReview => "underReview",
        }
    }
}

/// Marks the suppressions vigil wrote, so a second annotation replaces them.
const GENERATED_BY: &str = "vigil";

pub(crate) fn read(
    path: &Path,
    doc: &Value,
    opts: &ReadOptions,
) -> Result<(Vec<TriageItem>, Vec<ReadWarning>), TriageError> {
    let Some(runs) = doc.get("runs").and_then(Value::as_array) else {
        return Err(TriageError::malformed(
            path,
            "not SARIF: no `runs` array at the top level",
        ));
    };
    let mut warnings = Vec::new();
    if let Some(v) = text(doc, "version").filter(|v| v != "2.1.0") {
        warnings.push(ReadWarning {
            path: path.to_path_buf(),
            at: "version".into(),
            message: format!("SARIF version {v}; vigil reads 2.1.0 and may miss fields"),
        });
    }
    let mut items = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        let Some(results) = run.get("results").and_then(Value::as_array) else {
            continue;
        };
        for (xi, result) in results.iter().enumerate() {
            if !result.is_object() {
                warnings.push(ReadWarning {
                    path: path.to_path_buf(),
                    at: format!("run {ri} result {xi}"),
                    message: "skipped: the result is not a JSON object".into(),
                });
                continue;
            }
            items.push(item(ri, xi, run, result, opts));
        }
    }
    Ok((items, warnings))
}

/// The rule object a result refers to, by index (driver or extension) or else by id.
fn find_rule<'a>(run: &'a Value, result: &Value, rule_id: Option<&str>) -> Option<&'a Value> {
    let tool = run.get("tool")?;
    let driver_rules = tool.get("driver").and_then(|d| d.get("rules"));
    let extension_rules = |i: u64| {
        tool.get("extensions")
            .and_then(|e| e.get(i as usize))
            .and_then(|e| e.get("rules"))
    };
    let rule_ref = result.get("rule");
    let index = result
        .get("ruleIndex")
        .or_else(|| rule_ref.and_then(|r| r.get("index")))
        .and_then(Value::as_u64);
    let component = rule_ref
        .and_then(|r| r.get("toolComponent"))
        .and_then(|c| c.get("index"))
        .and_then(Value::as_u64);
    let rules = match component {
        Some(c) => extension_rules(c),
        None => driver_rules,
    };
    if let Some(rule) = index.and_then(|i| rules?.get(i as usize)) {
        return Some(rule);
    }
    let id = rule_id?;
    let by_id = |rules: Option<&'a Value>| {
        rules?
            .as_array()?
            .iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
    };
    by_id(driver_rules).or_else(|| {
        tool.get("extensions")?
            .as_array()?
            .iter()
            .find_map(|e| by_id(e.get("rules")))
    })
}

/// `message.text` (or the rule's message string it names), with `{n}` placeholders filled.
fn message_text(result: &Value, rule: Option<&Value>) -> String {
    let message = result.get("message");
    let template = message.and_then(|m| text(m, "text")).or_else(|| {
        let id = message.and_then(|m| text(m, "id"))?;
        text_at(rule?, &["messageStrings", &id, "text"])
    });
    let mut out = template.unwrap_or_default();
    if let Some(args) = message
        .and_then(|m| m.get("arguments"))
        .and_then(Value::as_array)
    {
        for (i, arg) in args.iter().enumerate() {
            let arg = arg
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| arg.to_string());
            out = out.replace(&format!("{{{i}}}"), &arg);
        }
    }
    without_location_links(&out)
}

/// SARIF messages link to related locations as `[text](1)`; the model gets the text.
fn without_location_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let link = after.find("](").and_then(|mid| {
            let close = mid + 2 + after[mid + 2..].find(')')?;
            let target = &after[mid + 2..close];
            (!target.is_empty() && target.chars().all(|c| c.is_ascii_digit()))
                .then(|| (&after[1..mid], close + 1))
        });
        match link {
            Some((text, len)) if !text.contains('[') => {
                out.push_str(text);
                rest = &after[len..];
            }
            _ => {
                out.push('[');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// GitHub's mapping of `security-severity` scores to severity names.
fn security_severity_label(score: f64) -> &'static str {
    match score {
        s if s >= 9.0 => "critical",
        s if s >= 7.0 => "high",
        s if s >= 4.0 => "medium",
        s if s > 0.0 => "low",
        _ => "none",
    }
}

fn rule_cwe(rule: Option<&Value>, result: &Value) -> Option<u32> {
    let from_props = |v: &Value| {
        let props = v.get("properties")?;
        props
            .get("cwe")
            .and_then(cwe_from_value)
            .or_else(|| props.get("tags").and_then(cwe_from_value))
    };
    let from_relationships = |r: &Value| {
        r.get("relationships")?.as_array()?.iter().find_map(|rel| {
            let target = rel.get("target")?;
            let component = text_at(target, &["toolComponent", "name"])?;
            if component.eq_ignore_ascii_case("cwe") {
                target.get("id").and_then(cwe_from_value)
            } else {
                None
            }
        })
    };
    rule.and_then(from_props)
        .or_else(|| rule.and_then(from_relationships))
        .or_else(|| from_props(result))
}

fn item(ri: usize, xi: usize, run: &Value, result: &Value, opts: &ReadOptions) -> TriageItem {
    let id = format!("sarif:{ri}:{xi}");
    let result_rule_id = text(result, "ruleId").or_else(|| text_at(result, &["rule", "id"]));
    let rule = find_rule(run, result, result_rule_id.as_deref());
    let rule_id = result_rule_id
        .or_else(|| rule.and_then(|r| text(r, "id")))
        .unwrap_or_default();
    let title = rule
        .and_then(|r| text_at(r, &["shortDescription", "text"]).or_else(|| text(r, "name")))
        .unwrap_or_else(|| rule_id.clone());
    let message = message_text(result, rule);
    let mut description = message.trim().to_string();
    if let Some(full) = rule.and_then(|r| text_at(r, &["fullDescription", "text"])) {
        if full.trim() != description && full.trim() != title {
            description = format!("{description}\n\n{}", full.trim())
                .trim()
                .to_string();
        }
    }
    let score = rule
        .and_then(|r| text_at(r, &["properties", "security-severity"]))
        .and_then(|s| s.parse::<f64>().ok());
    let severity = match score {
        Some(s) => security_severity_label(s).to_string(),
        None => text(result, "level")
            .or_else(|| rule.and_then(|r| text_at(r, &["defaultConfiguration", "level"])))
            .unwrap_or_else(|| "warning".into()),
    };

    let mut notes = Vec::new();
    let physical = result
        .get("locations")
        .and_then(|l| l.get(0))
        .and_then(|l| l.get("physicalLocation"));
    // The uri may live only in `run.artifacts[index]`.
    let uri = physical
        .and_then(|p| text_at(p, &["artifactLocation", "uri"]))
        .or_else(|| {
            let index = physical?.get("artifactLocation")?.get("index")?.as_u64()?;
            text_at(
                run.get("artifacts")?.get(index as usize)?,
                &["location", "uri"],
            )
        });
    let region = physical.and_then(|p| p.get("region"));
    let line = |key: &str| {
        region
            .and_then(|r| r.get(key))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let start_line = line("startLine");
    let end_line = line("endLine").or(start_line);

    let request = result.get("webRequest").and_then(web_request);
    let response = result.get("webResponse").and_then(web_response);
    let is_url = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let location = match (&uri, result.get("webRequest")) {
        (Some(u), _) if is_url(u) => Location::Http {
            method: result
                .get("webRequest")
                .and_then(|w| text(w, "method"))
                .unwrap_or_default(),
            url: u.clone(),
            param: None,
        },
        (None, Some(w)) => Location::Http {
            method: text(w, "method").unwrap_or_default(),
            url: text(w, "target").unwrap_or_default(),
            param: None,
        },
        _ => Location::Code {
            path: uri.clone().unwrap_or_default(),
            start_line,
            end_line,
        },
    };

    let embedded = region
        .and_then(|r| text_at(r, &["snippet", "text"]))
        .or_else(|| physical.and_then(|p| text_at(p, &["contextRegion", "snippet", "text"])));
    let code = match (embedded, &location) {
        (Some(s), _) => Some(s),
        (None, Location::Code { path, .. }) if !path.is_empty() => match &opts.source_root {
            Some(root) => match snippet_from_root(root, path, start_line, end_line, opts) {
                Ok(s) => Some(s),
                Err(why) => {
                    notes.push(format!("no code snippet: {path}: {why}"));
                    None
                }
            },
            None => {
                notes.push(
                    "no code snippet: the SARIF embeds none and no source root was given".into(),
                );
                None
            }
        },
        _ => None,
    };

    TriageItem {
        rule: rule_id,
        title,
        description,
        severity,
        cwe: rule_cwe(rule, result),
        location,
        request,
        response,
        code,
        evidence: code_flow(result),
        no_evidence: false,
        notes,
        prior: result
            .get("properties")
            .and_then(|p| p.get("vigil"))
            .and_then(|v| TriageVerdict::from_json(&id, v)),
        origin: Origin::Sarif {
            run: ri,
            result: xi,
        },
        id,
        source: Format::Sarif,
    }
    .finish()
}

/// Most steps of a code flow shown as evidence.
const MAX_FLOW_STEPS: usize = 20;

/// The first code flow (source → sink, as CodeQL path problems give it) as lines of
/// `path:line: message` or `path:line: snippet`.
fn code_flow(result: &Value) -> Option<String> {
    let steps = result
        .get("codeFlows")?
        .get(0)?
        .get("threadFlows")?
        .get(0)?
        .get("locations")?
        .as_array()?;
    let lines: Vec<String> = steps
        .iter()
        .take(MAX_FLOW_STEPS)
        .filter_map(|step| {
            let location = step.get("location")?;
            let physical = location.get("physicalLocation");
            let uri = physical
                .and_then(|p| text_at(p, &["artifactLocation", "uri"]))
                .unwrap_or_default();
            let line = physical
                .and_then(|p| p.get("region"))
                .and_then(|r| r.get("startLine"))
                .and_then(Value::as_u64);
            let what = text_at(location, &["message", "text"])
                .or_else(|| physical.and_then(|p| text_at(p, &["region", "snippet", "text"])))
                .unwrap_or_default();
            let at = match line {
                Some(l) => format!("{uri}:{l}"),
                None => uri,
            };
            Some(format!("{at}: {}", without_location_links(what.trim())))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut text = format!("data flow:\n{}", lines.join("\n"));
    if steps.len() > MAX_FLOW_STEPS {
        text.push_str(&format!("\n… {} more steps", steps.len() - MAX_FLOW_STEPS));
    }
    Some(text)
}

fn headers_text(v: &Value) -> String {
    let Some(headers) = v.get("headers").and_then(Value::as_object) else {
        return String::new();
    };
    headers
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}: {}\r\n",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            )
        })
        .collect()
}

fn web_request(w: &Value) -> Option<String> {
    let method = text(w, "method")?;
    let target = text(w, "target").unwrap_or_else(|| "/".into());
    let protocol = text(w, "protocol").unwrap_or_else(|| "HTTP".into());
    let version = text(w, "version").unwrap_or_else(|| "1.1".into());
    let body = text_at(w, &["body", "text"]).unwrap_or_default();
    Some(format!(
        "{method} {target} {protocol}/{version}\r\n{}\r\n{body}",
        headers_text(w)
    ))
}

fn web_response(w: &Value) -> Option<String> {
    let status = text(w, "statusCode")?;
    let reason = text(w, "reasonPhrase").unwrap_or_default();
    let protocol = text(w, "protocol").unwrap_or_else(|| "HTTP".into());
    let version = text(w, "version").unwrap_or_else(|| "1.1".into());
    let body = text_at(w, &["body", "text"]).unwrap_or_default();
    Some(format!(
        "{protocol}/{version} {status} {reason}\r\n{}\r\n{body}",
        headers_text(w)
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lines `start - context ..= end + context` of `uri` under `root`, at most
/// `max_snippet_lines`. The file must resolve (symlinks followed) to a path inside `root`.
pub(crate) fn snippet_from_root(
    root: &Path,
    uri: &str,
    start: Option<u32>,
    end: Option<u32>,
    opts: &ReadOptions,
) -> Result<String, String> {
    let local = if let Some(rest) = uri.strip_prefix("file://") {
        // file:///abs/path or file://localhost/abs/path
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        PathBuf::from(percent_decode(rest))
    } else if uri.contains("://") {
        return Err("not a file URI".into());
    } else {
        PathBuf::from(percent_decode(uri))
    };
    let root = root
        .canonicalize()
        .map_err(|e| format!("source root {}: {e}", root.display()))?;
    let candidate = if local.is_absolute() {
        local
    } else {
        root.join(local)
    };
    let resolved = candidate
        .canonicalize()
        .map_err(|_| "not found under the source root".to_string())?;
    if !resolved.starts_with(&root) {
        return Err("outside the source root; not read".into());
    }
    if !resolved.is_file() {
        return Err("not a regular file".into());
    }
    let bytes = read_limited(&resolved, opts.max_source_bytes).map_err(|e| match e {
        TriageError::TooLarge { size, limit, .. } => {
            format!("{size} bytes is over the {limit}-byte limit for a source file")
        }
        other => other.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    let start = start.unwrap_or(1).max(1) as usize;
    let end = (end.unwrap_or(start as u32) as usize).max(start);
    if start > lines.len() {
        return Err(format!(
            "line {start} is past the end of the file ({} lines)",
            lines.len()
        ));
    }
    let from = start.saturating_sub(opts.snippet_context_lines).max(1);
    let to = end
        .saturating_add(opts.snippet_context_lines)
        .min(lines.len())
        .min(from.saturating_add(opts.max_snippet_lines.max(1) - 1));
    Ok(lines[from - 1..to].join("\n"))
}

pub(crate) fn annotate(
    doc: &mut Value,
    origin: &Origin,
    verdict: &TriageVerdict,
    status: SuppressionStatus,
) -> bool {
    let Origin::Sarif { run, result } = origin else {
        return false;
    };
    let Some(result) = doc
        .get_mut("runs")
        .and_then(|r| r.get_mut(*run))
        .and_then(|r| r.get_mut("results"))
        .and_then(|r| r.get_mut(*result))
        .and_then(Value::as_object_mut)
    else {
        return false;
    };
    let annotation = verdict.to_json();
    let properties = result
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    if let Some(p) = properties.as_object_mut() {
        p.insert("vigil".into(), annotation);
    }

    let had_key = result.contains_key("suppressions");
    let mut suppressions = match result.get("suppressions") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let before = suppressions.len();
    suppressions.retain(|s| {
        s.get("properties")
            .and_then(|p| p.get("generatedBy"))
            .and_then(Value::as_str)
            != Some(GENERATED_BY)
    });
    let removed_ours = suppressions.len() < before;
    if !verdict.true_positive {
        suppressions.push(json!({
            "kind": "external",
            "status": status.word(),
            "justification": verdict.reason,
            "properties": { "generatedBy": GENERATED_BY },
        }));
    }
    if suppressions.is_empty() && (removed_ours || !had_key) {
        result.shift_remove("suppressions");
    } else {
        result.insert("suppressions".into(), Value::Array(suppressions));
    }
    true
}
