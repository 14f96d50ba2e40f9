//! Telling the formats apart from a file's first bytes.

use std::path::Path;

use crate::{Format, TriageError};

/// How much of a file detection looks at.
const SNIFF_BYTES: usize = 64 * 1024;

/// Says which format `bytes` (the content of `path`) is in, from the content first and the
/// file extension only to break a tie. A directory is always `Format::Http` (see
/// [`crate::read_path`]); this function only sees files.
pub fn detect(path: &Path, bytes: &[u8]) -> Result<Format, TriageError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    crate::input::utf16_check(path, bytes)?;
    let prefix = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let head = match std::str::from_utf8(prefix) {
        Ok(s) => s,
        // A multi-byte character cut by the prefix's end is not an error.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) => {
            return Err(TriageError::NotUtf8 {
                path: path.to_path_buf(),
                offset: e.valid_up_to(),
            })
        }
    };
    let trimmed = head.trim_start();
    if trimmed.is_empty() {
        return Err(TriageError::Empty {
            path: path.to_path_buf(),
        });
    }
    let unknown = |why: &str| TriageError::UnknownFormat {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();

    if trimmed.starts_with('<') {
        return if has_issues_root(trimmed) {
            Ok(Format::Burp)
        } else {
            Err(unknown(
                "XML, but not a Burp issues export: no <issues> element",
            ))
        };
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // Nuclei writes one complete object per line; ZAP and SARIF are one document.
        let first_line = trimmed.lines().next().unwrap_or("");
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(first_line) {
            if o.contains_key("template-id") || o.contains_key("templateID") {
                return Ok(Format::Nuclei);
            }
        }
        // A first line longer than the sniffed prefix (a big response) does not parse;
        // the key near its start still tells.
        if first_line.contains("\"template-id\"") {
            return Ok(Format::Nuclei);
        }
        let has = |s: &str| head.contains(s);
        if has("\"runs\"") && (head.to_ascii_lowercase().contains("sarif") || has("\"2.1.0\"")) {
            return Ok(Format::Sarif);
        }
        if has("\"@programName\"")
            || (has("\"site\"") && (has("\"@version\"") || has("\"alerts\"")))
        {
            return Ok(Format::Zap);
        }
        if has("\"runs\"") || ext == "sarif" {
            return Ok(Format::Sarif);
        }
        if ext == "jsonl" {
            return Ok(Format::Nuclei);
        }
        return Err(unknown(
            "JSON, but neither a ZAP report (site[].alerts[]), SARIF (runs[]) nor Nuclei lines (template-id)",
        ));
    }
    if crate::rawhttp::looks_like_request(trimmed) {
        return if crate::rawhttp::split_exchange(trimmed).is_some() {
            Ok(Format::Http)
        } else {
            Err(unknown(
                "an HTTP request, but no line `---` followed by the response",
            ))
        };
    }
    Err(unknown(
        "neither JSON, XML nor an HTTP exchange (request, a line `---`, response)",
    ))
}

/// Whether the root element (after any declaration, comments and DOCTYPE) is `<issues>`.
fn has_issues_root(xml: &str) -> bool {
    let mut rest = xml;
    loop {
        rest = rest.trim_start();
        if rest.starts_with("<?") || rest.starts_with("<!--") || rest.starts_with("<!") {
            let close = if rest.starts_with("<!--") {
                "-->"
            } else if rest.starts_with("<!DOCTYPE")
                && rest[..rest.find('>').unwrap_or(0)].contains('[')
            {
                "]>"
            } else {
                ">"
            };
            match rest.find(close) {
                Some(i) => rest = &rest[i + close.len()..],
                None => return false,
            }
        } else {
            return rest.starts_with("<issues")
                && rest[7..].starts_with(|c: char| c == '>' || c == '/' || c.is_whitespace());
        }
    }
}
