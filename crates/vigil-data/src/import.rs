//! Importers. Each reads a whole file into samples first (so a bad line aborts before anything
//! is written) and reports problems as `file:line: what`. [`Format::detect`] guesses the
//! format from the extension and the first record.
//!
//! Formats: our JSONL ([`Sample`] per line), ShareGPT (JSONL or a JSON array of
//! `{"conversations":[{"from","value"}]}`), OpenAI messages JSONL (`{"messages":[{"role",
//! "content"}]}`), Alpaca JSON, the second seed's template file (raw request and response
//! separated by `<<<<>>>>` lines), vulnerability-report JSON (array or JSONL of objects with
//! title, severity, weakness / cwe, report text, impact, summary), and the second seed's
//! SQLite `training_data` table.

use crate::error::{io_err, DataError, Result};
use crate::prompt::{self, Messages};
use crate::sample::{Sample, SampleKind};
use serde_json::Value;
use std::path::{Path, PathBuf};
use vigil_taxonomy::{Severity, Taxonomy};

/// Longest field accepted (characters); longer ones are an error, not a silent truncation.
pub const MAX_FIELD: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    ShareGpt,
    OpenAi,
    Alpaca,
    Templates,
    Reports,
    SeedSqlite,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "jsonl" | "vigil" => Format::Jsonl,
            "sharegpt" => Format::ShareGpt,
            "openai" | "messages" => Format::OpenAi,
            "alpaca" => Format::Alpaca,
            "templates" | "template" | "seed-templates" => Format::Templates,
            "reports" | "report" | "report-json" => Format::Reports,
            "seed-sqlite" | "sqlite" | "training_data" => Format::SeedSqlite,
            _ => return None,
        })
    }

    /// Guess from the file: SQLite magic, then the first JSON record's keys, then `<<<<>>>>`.
    pub fn detect(path: &Path) -> Result<Format> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        if bytes.starts_with(b"SQLite format 3\0") {
            return Ok(Format::SeedSqlite);
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 16)]);
        let trimmed = text.trim_start();
        if trimmed.contains("<<<<>>>>") && !trimmed.starts_with('{') && !trimmed.starts_with('[') {
            return Ok(Format::Templates);
        }
        let keys = |v: &Value| -> Option<Format> {
            let o = v.as_object()?;
            Some(if o.contains_key("conversations") {
                Format::ShareGpt
            } else if o.contains_key("messages") {
                Format::OpenAi
            } else if o.contains_key("kind") {
                Format::Jsonl
            } else if o.contains_key("instruction") && o.contains_key("output") {
                Format::Alpaca
            } else if o.contains_key("title") {
                Format::Reports
            } else {
                return None;
            })
        };
        if trimmed.starts_with('[') {
            if let Ok(Value::Array(a)) = serde_json::from_slice::<Value>(&bytes) {
                if let Some(f) = a.first().and_then(keys) {
                    return Ok(f);
                }
            }
        } else if let Some(first) = trimmed.lines().next() {
            if let Ok(v) = serde_json::from_str::<Value>(first) {
                if let Some(f) = keys(&v) {
                    return Ok(f);
                }
            }
        }
        Err(DataError::Parse {
            path: path.into(),
            line: 1,
            msg: "cannot tell the format; pass --format (jsonl, sharegpt, openai, alpaca, templates, reports, seed-sqlite)".into(),
        })
    }
}

/// Options that only some formats use.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Source label stored on every row (default: the file name).
    pub source: Option<String>,
    /// Seed `vuln_category` integer → taxonomy id. Default: 0 → missing_security_headers,
    /// 1 → xss (the order of the seed generator's `--vuln {HTTP_HEADERS,XSS}` choices).
    pub seed_categories: Vec<(i64, String)>,
    /// Label for template-file pairs (they carry none): is_vulnerable and vuln_type.
    pub template_vulnerable: bool,
    pub template_vuln_type: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            source: None,
            seed_categories: vec![(0, "missing_security_headers".into()), (1, "xss".into())],
            template_vulnerable: false,
            template_vuln_type: None,
        }
    }
}

fn perr(path: &Path, line: usize, msg: impl Into<String>) -> DataError {
    DataError::Parse {
        path: path.to_path_buf(),
        line,
        msg: msg.into(),
    }
}

/// Read a file in the given format.
pub fn read_file(path: &Path, format: Format, opts: &ImportOptions) -> Result<Vec<Sample>> {
    let source = opts.source.clone().unwrap_or_else(|| {
        format!(
            "import:{}",
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    });
    let mut out = match format {
        Format::SeedSqlite => read_seed_sqlite(path, opts)?,
        _ => {
            let bytes = std::fs::read(path).map_err(io_err(path))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
                perr(path, line, "not valid UTF-8")
            })?;
            match format {
                Format::Jsonl => records(path, &text)?
                    .into_iter()
                    .map(|(line, v)| {
                        serde_json::from_value::<Sample>(v)
                            .map_err(|e| perr(path, line, e.to_string()))
                    })
                    .collect::<Result<Vec<_>>>()?,
                Format::ShareGpt => records(path, &text)?
                    .into_iter()
                    .map(|(line, v)| sharegpt(&v).map_err(|m| perr(path, line, m)))
                    .collect::<Result<Vec<_>>>()?,
                Format::OpenAi => records(path, &text)?
                    .into_iter()
                    .map(|(line, v)| openai(&v).map_err(|m| perr(path, line, m)))
                    .collect::<Result<Vec<_>>>()?,
                Format::Alpaca => records(path, &text)?
                    .into_iter()
                    .map(|(line, v)| alpaca(&v).map_err(|m| perr(path, line, m)))
                    .collect::<Result<Vec<_>>>()?,
                Format::Reports => records(path, &text)?
                    .into_iter()
                    .map(|(line, v)| report(&v).map_err(|m| perr(path, line, m)))
                    .collect::<Result<Vec<_>>>()?,
                Format::Templates => templates(path, &text, opts)?,
                Format::SeedSqlite => unreachable!(),
            }
        }
    };
    for (i, s) in out.iter_mut().enumerate() {
        if s.source.is_empty() {
            s.source = source.clone();
        }
        validate(s).map_err(|m| perr(path, i + 1, format!("record {}: {m}", i + 1)))?;
        s.id = None;
        s.ensure_group();
    }
    Ok(out)
}

fn validate(s: &Sample) -> std::result::Result<(), String> {
    for (name, f) in [
        ("request", &s.request),
        ("response", &s.response),
        ("code", &s.code),
        ("fixed_code", &s.fixed_code),
    ] {
        if f.as_ref().is_some_and(|x| x.len() > MAX_FIELD) {
            return Err(format!("field {name} is longer than {MAX_FIELD} bytes"));
        }
    }
    if s.analysis.len() > MAX_FIELD {
        return Err(format!("field analysis is longer than {MAX_FIELD} bytes"));
    }
    Ok(())
}

/// JSON records: a JSON array (line = 1-based element index + 1 is not meaningful, so we
/// report the element number) or JSONL (1-based line numbers; blank lines skipped).
fn records(path: &Path, text: &str) -> Result<Vec<(usize, Value)>> {
    let t = text.trim_start_matches('\u{feff}');
    if t.trim_start().starts_with('[') {
        let v: Value = serde_json::from_str(t).map_err(|e| perr(path, e.line(), e.to_string()))?;
        let Value::Array(a) = v else { unreachable!() };
        return Ok(a.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect());
    }
    let mut out = Vec::new();
    for (i, line) in t.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| perr(path, i + 1, format!("bad JSON: {e}")))?;
        out.push((i + 1, v));
    }
    Ok(out)
}

fn get_str<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(|x| x.as_str()))
}

fn from_turns(turns: &[(String, String)]) -> std::result::Result<Sample, String> {
    let mut m = Messages {
        system: String::new(),
        user: String::new(),
        assistant: String::new(),
    };
    let mut seen_user = false;
    for (role, text) in turns {
        match role.as_str() {
            "system" => m.system = text.clone(),
            "human" | "user" if !seen_user => {
                m.user = text.clone();
                seen_user = true;
            }
            "gpt" | "assistant" | "model" if seen_user && m.assistant.is_empty() => {
                m.assistant = text.clone()
            }
            "human" | "user" | "gpt" | "assistant" | "model" => {
                return Err("multi-turn conversations are not supported yet (one user and one assistant turn expected)".into())
            }
            other => return Err(format!("unknown role {other:?}")),
        }
    }
    if !seen_user {
        return Err("conversation has no user turn".into());
    }
    Ok(prompt::parse(&m))
}

fn sharegpt(v: &Value) -> std::result::Result<Sample, String> {
    let conv = v
        .get("conversations")
        .and_then(|c| c.as_array())
        .ok_or("missing \"conversations\" array")?;
    let mut turns = Vec::new();
    for t in conv {
        let role = get_str(t, &["from", "role"]).ok_or("turn without \"from\"")?;
        let text = get_str(t, &["value", "content"]).ok_or("turn without \"value\"")?;
        turns.push((role.to_string(), text.to_string()));
    }
    from_turns(&turns)
}

fn openai(v: &Value) -> std::result::Result<Sample, String> {
    let msgs = v
        .get("messages")
        .and_then(|c| c.as_array())
        .ok_or("missing \"messages\" array")?;
    let mut turns = Vec::new();
    for t in msgs {
        let role = get_str(t, &["role"]).ok_or("message without \"role\"")?;
        let text = get_str(t, &["content"]).ok_or("message without string \"content\"")?;
        turns.push((role.to_string(), text.to_string()));
    }
    from_turns(&turns)
}

fn alpaca(v: &Value) -> std::result::Result<Sample, String> {
    let instruction = get_str(v, &["instruction"]).ok_or("missing \"instruction\"")?;
    let input = get_str(v, &["input"]).unwrap_or("");
    let output = get_str(v, &["output"]).ok_or("missing \"output\"")?;
    let mut turns = vec![("system".to_string(), instruction.to_string())];
    turns.push(("user".into(), input.to_string()));
    turns.push(("assistant".into(), output.to_string()));
    from_turns(&turns)
}

/// Vulnerability-report JSON: `title` required; `severity`, `weakness` / `cwe`, and the text
/// fields `report` / `vulnerability_info` / `content`, `impact`, `summary`; other string
/// fields (program, url, …) become inputs.
fn report(v: &Value) -> std::result::Result<Sample, String> {
    let o = v.as_object().ok_or("record is not a JSON object")?;
    let title = get_str(v, &["title"]).ok_or("missing \"title\"")?;
    let mut s = Sample::new(SampleKind::Report);
    s.title = Some(title.to_string());
    s.is_vulnerable = true;
    if let Some(sev) = get_str(v, &["severity", "severity_rating"]) {
        s.severity = Some(Severity::parse(sev).ok_or_else(|| format!("unknown severity {sev:?}"))?);
    }
    let t = Taxonomy::builtin();
    let weakness = get_str(v, &["weakness", "cwe", "weakness_name"]);
    if let Some(w) = weakness {
        if let Some(vt) = t.resolve(w) {
            s.vuln_type = Some(vt.id.clone());
            s.cwe = vigil_taxonomy::parse_cwe(w).or(Some(vt.cwe.id));
        } else {
            s.cwe = vigil_taxonomy::parse_cwe(w);
        }
    }
    if s.vuln_type.is_none() {
        s.vuln_type = t.resolve(title).map(|x| x.id.clone());
    }
    let details = get_str(
        v,
        &["report", "vulnerability_info", "content", "details", "text"],
    )
    .unwrap_or("");
    let impact = get_str(v, &["impact"]).unwrap_or("");
    let summary = get_str(v, &["summary"]).unwrap_or("");
    if details.trim().is_empty() && impact.trim().is_empty() && summary.trim().is_empty() {
        return Err("report has no text (report / impact / summary all empty)".into());
    }
    s.analysis = format!(
        "## {title}\n\n### Vulnerability Details\n{}\n\n### Impact\n{}\n\n### Summary\n{}",
        details.trim(),
        impact.trim(),
        summary.trim()
    );
    let mut meta = serde_json::Map::new();
    for (k, val) in o {
        if matches!(
            k.as_str(),
            "title"
                | "severity"
                | "severity_rating"
                | "weakness"
                | "cwe"
                | "weakness_name"
                | "report"
                | "vulnerability_info"
                | "content"
                | "details"
                | "text"
                | "impact"
                | "summary"
        ) {
            continue;
        }
        if let Some(sv) = val.as_str() {
            if !sv.is_empty() && !sv.contains('\n') && sv.len() < 500 {
                meta.insert(k.clone(), Value::String(sv.to_string()));
            }
        }
    }
    if !meta.is_empty() {
        s.meta = Some(Value::Object(meta));
    }
    Ok(s)
}

/// The seed's template file: blocks separated by lines that are exactly `<<<<>>>>`,
/// alternating raw request and raw response.
fn templates(path: &Path, text: &str, opts: &ImportOptions) -> Result<Vec<Sample>> {
    let mut blocks: Vec<(usize, String)> = Vec::new();
    let mut cur = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        if line.trim() == "<<<<>>>>" {
            blocks.push((start, std::mem::take(&mut cur)));
            start = i + 2;
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        blocks.push((start, cur));
    }
    if !blocks.len().is_multiple_of(2) {
        let (line, _) = blocks.last().cloned().unwrap_or((1, String::new()));
        return Err(perr(
            path,
            line,
            "odd number of blocks: every request needs a response after a <<<<>>>> line",
        ));
    }
    let t = Taxonomy::builtin();
    let mut out = Vec::new();
    for pair in blocks.chunks(2) {
        let (l1, req) = (&pair[0].0, pair[0].1.trim_matches('\n'));
        let (l2, resp) = (&pair[1].0, pair[1].1.trim_matches('\n'));
        if !looks_like_request(req) {
            return Err(perr(
                path,
                *l1,
                "block is not an HTTP request (expected `METHOD /path HTTP/x`)",
            ));
        }
        if !resp.starts_with("HTTP/") {
            return Err(perr(
                path,
                *l2,
                "block is not an HTTP response (expected `HTTP/x CODE`)",
            ));
        }
        let mut s = Sample::new(SampleKind::HttpPair);
        s.request = Some(req.to_string());
        s.response = Some(resp.to_string());
        s.is_vulnerable = opts.template_vulnerable;
        if let Some(v) = &opts.template_vuln_type {
            let vt = t
                .resolve(v)
                .ok_or_else(|| DataError::Other(format!("unknown vulnerability type {v:?}")))?;
            s.vuln_type = Some(vt.id.clone());
            if s.is_vulnerable {
                s.cwe = Some(vt.cwe.id);
                s.severity = Some(vt.severity);
            }
        }
        s.endpoint = req.lines().next().map(|l| l.trim().to_string());
        out.push(s);
    }
    Ok(out)
}

fn looks_like_request(s: &str) -> bool {
    let first = s.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let m = parts.next().unwrap_or("");
    let _p = parts.next();
    let v = parts.next().unwrap_or("");
    !m.is_empty() && m.chars().all(|c| c.is_ascii_uppercase()) && v.starts_with("HTTP/")
}

/// The seed's `training_data` table (request, response, analysis, is_vulnerable,
/// vuln_category), read from a foreign SQLite file without modifying it.
fn read_seed_sqlite(path: &Path, opts: &ImportOptions) -> Result<Vec<Sample>> {
    let sq = |source| DataError::Sqlite {
        path: PathBuf::from(path),
        source,
    };
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sq)?;
    if !crate::store::Store::has_table(&conn, "training_data") {
        return Err(DataError::Foreign {
            path: path.into(),
            reason: "no `training_data` table (is this the seed's database?)".into(),
        });
    }
    let mut st = conn
        .prepare("SELECT id, request, response, analysis, is_vulnerable, vuln_category FROM training_data ORDER BY id")
        .map_err(sq)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .map_err(sq)?;
    let t = Taxonomy::builtin();
    let mut out = Vec::new();
    for row in rows {
        let (id, req, resp, analysis, vuln, cat) = row.map_err(sq)?;
        let mut s = Sample::new(SampleKind::HttpPair);
        s.request = req;
        s.response = resp;
        s.analysis = analysis.unwrap_or_default();
        s.is_vulnerable = vuln.unwrap_or(0) != 0;
        if let Some(c) = cat {
            if let Some((_, name)) = opts.seed_categories.iter().find(|(k, _)| *k == c) {
                if let Some(vt) = t.resolve(name) {
                    s.vuln_type = Some(vt.id.clone());
                    if s.is_vulnerable {
                        s.cwe = Some(vt.cwe.id);
                        s.severity = Some(vt.severity);
                    }
                }
            }
            s.meta = Some(serde_json::json!({ "seed_vuln_category": c, "seed_id": id }));
        }
        out.push(s);
    }
    Ok(out)
}
