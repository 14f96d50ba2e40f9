//! Small helpers for reading loosely typed scanner JSON.

use serde_json::Value;

/// A non-blank string field (numbers and booleans are written as text).
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `v[a][b]…` as non-blank text.
pub(crate) fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    let (last, parents) = path.split_last()?;
    let mut cur = v;
    for key in parents {
        cur = cur.get(key)?;
    }
    text(cur, last)
}

/// Element `i` of an array; a lone object stands for a one-element array (older exports
/// write a single site or alert that way).
pub(crate) fn nth(v: &Value, i: usize) -> Option<&Value> {
    match v {
        Value::Array(a) => a.get(i),
        Value::Object(_) if i == 0 => Some(v),
        _ => None,
    }
}

pub(crate) fn nth_mut(v: &mut Value, i: usize) -> Option<&mut Value> {
    match v {
        Value::Array(a) => a.get_mut(i),
        Value::Object(_) if i == 0 => Some(v),
        _ => None,
    }
}

/// How many elements `nth` can reach.
pub(crate) fn len(v: Option<&Value>) -> usize {
    match v {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(_)) => 1,
        _ => 0,
    }
}

/// A CWE number from "79", "CWE-79", "cwe-079", "external/cwe/cwe-079",
/// "CWE-89: Improper Neutralization…" or a number; 0 and negatives (ZAP's "no CWE") are none.
pub(crate) fn cwe_from_text(s: &str) -> Option<u32> {
    let lower = s.to_ascii_lowercase();
    let digits_after = |rest: &str| -> Option<u32> {
        let d: String = rest
            .trim_start_matches([' ', '-', '_', ':', '/'])
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        d.parse().ok().filter(|&n| n > 0)
    };
    // The first "cwe" followed by a number: "https://cwe.mitre.org/…/89.html" and
    // "external/cwe/cwe-079" both hold an earlier "cwe" that is not one.
    let mut found_word = false;
    for (i, _) in lower.match_indices("cwe") {
        found_word = true;
        if let Some(n) = digits_after(&lower[i + 3..]) {
            return Some(n);
        }
    }
    if found_word {
        return None;
    }
    lower.trim().parse::<u32>().ok().filter(|&n| n > 0)
}

pub(crate) fn cwe_from_value(v: &Value) -> Option<u32> {
    match v {
        Value::String(s) => cwe_from_text(s),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0),
        Value::Array(a) => a.iter().find_map(cwe_from_value),
        _ => None,
    }
}

/// Joins an HTTP header block and body the way they travel: headers, a blank line, body.
pub(crate) fn join_message(header: Option<String>, body: Option<String>) -> Option<String> {
    let header = header?;
    let head = header.trim_end_matches(['\r', '\n']);
    let eol = if head.contains("\r\n") { "\r\n" } else { "\n" };
    Some(format!("{head}{eol}{eol}{}", body.unwrap_or_default()))
}

/// Parses JSON text, naming the file, line and column on failure.
pub(crate) fn parse(path: &std::path::Path, text: &str) -> Result<Value, crate::TriageError> {
    serde_json::from_str(text).map_err(|e| crate::TriageError::json(path, &e))
}

/// How a JSON document was laid out, so write-back looks like the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonStyle {
    /// None: one line, no whitespace; else the indentation unit ("  ", "    ", "\t").
    indent: Option<String>,
    crlf: bool,
    final_newline: bool,
}

impl JsonStyle {
    pub(crate) fn of(text: &str) -> JsonStyle {
        // The first indented line holds one indentation unit (it is one level deep).
        let indent = text.lines().skip(1).find_map(|line| {
            let lead: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            (!lead.is_empty() && line.len() > lead.len()).then_some(lead)
        });
        JsonStyle {
            indent,
            crlf: text.contains("\r\n"),
            final_newline: text.ends_with('\n'),
        }
    }

    pub(crate) fn write(&self, v: &Value) -> Vec<u8> {
        use serde::Serialize;
        let mut out = Vec::new();
        let written = match &self.indent {
            Some(indent) => {
                let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
                let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
                v.serialize(&mut ser)
            }
            None => serde_json::to_writer(&mut out, v),
        };
        if written.is_err() {
            // Serialising a Value to memory cannot fail; stay total anyway.
            out = v.to_string().into_bytes();
        }
        if self.final_newline {
            out.push(b'\n');
        }
        if self.crlf {
            let text = String::from_utf8_lossy(&out).replace('\n', "\r\n");
            out = text.into_bytes();
        }
        out
    }
}

/// Scanner descriptions are HTML fragments; the model reads plain text. Tags become
/// nothing (paragraph and line breaks a newline) and the five XML entities their characters.
pub(crate) fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match after.find('>') {
            Some(close) => {
                let tag = after[1..close].trim_start_matches('/').to_ascii_lowercase();
                if tag.starts_with('p') && (tag.len() == 1 || tag.as_bytes()[1] == b' ')
                    || tag.starts_with("br")
                    || tag.starts_with("li")
                {
                    out.push('\n');
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    // Collapse the blank lines tag removal leaves behind.
    let mut lines: Vec<&str> = Vec::new();
    for line in out.lines().map(str::trim_end) {
        if !(line.trim().is_empty() && lines.last().is_some_and(|l| l.trim().is_empty())) {
            lines.push(line);
        }
    }
    lines.join("\n").trim().to_string()
}
