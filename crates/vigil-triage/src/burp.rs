//! Burp Suite issues XML (`<issues><issue>…`), read with `quick-xml`, which never expands
//! DTD entities: a document type that declares entities is refused before any content is
//! read, and a reference to an undeclared entity is an error, so an XML bomb costs nothing.
//!
//! Write-back edits the original text: a `<vigilTriage …>reason</vigilTriage>` child is
//! inserted before each judged issue's `</issue>` (or replaces the one written before), and
//! every other byte of the file stays as it was.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::jsonutil::{cwe_from_text, strip_html};
use crate::{Format, Location, Origin, ReadWarning, TriageError, TriageItem, TriageVerdict};

/// Name of the element vigil adds to each judged issue.
pub const VERDICT_ELEMENT: &str = "vigilTriage";

/// The original text and, per issue, where write-back edits go.
#[derive(Clone, Debug)]
pub(crate) struct BurpDoc {
    pub(crate) text: String,
    pub(crate) issues: Vec<IssueSpan>,
}

#[derive(Clone, Debug)]
pub(crate) struct IssueSpan {
    /// Byte offset of this issue's `</issue>`.
    end_tag_start: usize,
    /// Byte range of a `<vigilTriage>` element written before.
    existing: Option<(usize, usize)>,
}

struct FinishedIssue {
    item: TriageItem,
    existing: Option<(usize, usize)>,
    warnings: Vec<ReadWarning>,
}

#[derive(Default)]
struct IssueBuilder {
    fields: HashMap<String, String>,
    exchanges_seen: usize,
    request: String,
    request_base64: bool,
    request_method: Option<String>,
    response: String,
    response_base64: bool,
    existing_start: Option<usize>,
    existing: Option<(usize, usize)>,
    prior_attrs: HashMap<String, String>,
    prior_reason: String,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn root_name(path: &Path, e: &BytesStart<'_>) -> Result<String, TriageError> {
    let name = local_name(e);
    if name == "issues" {
        Ok(name)
    } else {
        Err(TriageError::malformed(
            path,
            format!("not a Burp issues export: the root element is <{name}>, not <issues>"),
        ))
    }
}

pub(crate) fn read(
    path: &Path,
    text: &str,
) -> Result<(BurpDoc, Vec<TriageItem>, Vec<ReadWarning>), TriageError> {
    let mut reader = Reader::from_str(text);
    let xml_err = |reader: &Reader<&[u8]>, message: String| TriageError::Xml {
        path: path.to_path_buf(),
        position: reader.error_position(),
        message,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut root_seen = false;
    let mut current: Option<IssueBuilder> = None;
    let mut items = Vec::new();
    let mut spans = Vec::new();
    let mut warnings = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| xml_err(&reader, e.to_string()))?;
        match event {
            Event::DocType(d) => {
                let decl = String::from_utf8_lossy(&d.into_inner()).to_ascii_uppercase();
                if decl.contains("<!ENTITY") {
                    return Err(TriageError::XmlEntities {
                        path: path.to_path_buf(),
                    });
                }
            }
            Event::Start(e) if stack.is_empty() => {
                stack.push(root_name(path, &e)?);
                root_seen = true;
            }
            Event::Empty(e) if stack.is_empty() => {
                root_name(path, &e)?; // <issues/>: an export with no issues
                root_seen = true;
            }
            Event::Start(e) => {
                let name = local_name(&e);
                if stack.len() == 1 && name == "issue" {
                    current = Some(IssueBuilder::default());
                } else if let Some(b) = current.as_mut() {
                    b.on_start(&stack, &name, &e, before);
                }
                stack.push(name);
            }
            Event::Empty(e) => {
                if let Some(b) = current.as_mut() {
                    let name = local_name(&e);
                    b.on_start(&stack, &name, &e, before);
                    if stack.len() == 2 && name == VERDICT_ELEMENT {
                        b.existing = Some((before, reader.buffer_position() as usize));
                    }
                }
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if stack.len() == 1 && name == "issue" {
                    if let Some(b) = current.take() {
                        let index = spans.len();
                        let done = b.finish(path, index);
                        warnings.extend(done.warnings);
                        spans.push(IssueSpan {
                            end_tag_start: before,
                            existing: done.existing,
                        });
                        items.push(done.item);
                    }
                } else if let Some(b) = current.as_mut() {
                    if stack.len() == 2 && name == "requestresponse" {
                        b.exchanges_seen += 1;
                    }
                    if stack.len() == 2 && name == VERDICT_ELEMENT {
                        if let Some(start) = b.existing_start.take() {
                            b.existing = Some((start, reader.buffer_position() as usize));
                        }
                    }
                }
            }
            Event::Text(t) => {
                if let Some(b) = current.as_mut() {
                    let s = t.decode().map_err(|e| xml_err(&reader, e.to_string()))?;
                    b.on_text(&stack, &s);
                }
            }
            Event::CData(c) => {
                if let Some(b) = current.as_mut() {
                    let s = c.decode().map_err(|e| xml_err(&reader, e.to_string()))?;
                    b.on_text(&stack, &s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| xml_err(&reader, e.to_string()))?
                        .map(String::from)
                } else {
                    let name = r.decode().map_err(|e| xml_err(&reader, e.to_string()))?;
                    match name.as_ref() {
                        "lt" => Some("<".into()),
                        "gt" => Some(">".into()),
                        "amp" => Some("&".into()),
                        "apos" => Some("'".into()),
                        "quot" => Some("\"".into()),
                        other => {
                            return Err(xml_err(
                                &reader,
                                format!("reference to undeclared entity &{other}; (vigil expands only the five XML entities)"),
                            ))
                        }
                    }
                };
                if let (Some(b), Some(s)) = (current.as_mut(), resolved) {
                    b.on_text(&stack, &s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err(TriageError::malformed(
            path,
            "not a Burp issues export: no <issues> element",
        ));
    }
    if !stack.is_empty() {
        return Err(TriageError::malformed(
            path,
            format!(
                "the XML ends inside <{}> (truncated file?)",
                stack.join("><")
            ),
        ));
    }
    Ok((
        BurpDoc {
            text: text.to_string(),
            issues: spans,
        },
        items,
        warnings,
    ))
}

impl IssueBuilder {
    /// `stack` holds the open elements before `name` is pushed: [issues, issue, …].
    fn on_start(&mut self, stack: &[String], name: &str, e: &BytesStart<'_>, at: usize) {
        match stack.len() {
            2 if name == VERDICT_ELEMENT => {
                self.existing_start = Some(at);
                for key in ["verdict", "probability", "threshold", "decidedBy"] {
                    if let Some(v) = attr(e, key) {
                        self.prior_attrs.insert(key.into(), v);
                    }
                }
            }
            3 if stack[2] == "requestresponse" && self.exchanges_seen == 0 => {
                let base64 = attr(e, "base64").is_some_and(|v| v == "true");
                match name {
                    "request" => {
                        self.request_base64 = base64;
                        self.request_method = attr(e, "method");
                    }
                    "response" => self.response_base64 = base64,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn on_text(&mut self, stack: &[String], s: &str) {
        let Some(child) = stack.get(2) else { return };
        match child.as_str() {
            "requestresponse" => {
                if self.exchanges_seen == 0 {
                    match stack.get(3).map(String::as_str) {
                        Some("request") => self.request.push_str(s),
                        Some("response") => self.response.push_str(s),
                        _ => {}
                    }
                }
            }
            c if c == VERDICT_ELEMENT => self.prior_reason.push_str(s),
            c => self.fields.entry(c.to_string()).or_default().push_str(s),
        }
    }

    fn finish(mut self, path: &Path, index: usize) -> FinishedIssue {
        let id = format!("burp:{index}");
        let mut notes = Vec::new();
        let mut warnings = Vec::new();
        if self.exchanges_seen > 1 {
            notes.push(format!(
                "the issue holds {} request/response pairs; the first is used",
                self.exchanges_seen
            ));
        }

        let mut decode = |what: &str, body: &str, base64: bool| -> Option<String> {
            if body.trim().is_empty() {
                return None;
            }
            let bytes = if base64 {
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
                    Ok(b) => b,
                    Err(e) => {
                        let message = format!("{what}: base64 does not decode ({e}); left out");
                        warnings.push(ReadWarning {
                            path: path.to_path_buf(),
                            at: format!("issue {}", index + 1),
                            message: message.clone(),
                        });
                        notes.push(message);
                        return None;
                    }
                }
            } else {
                body.as_bytes().to_vec()
            };
            match String::from_utf8(bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    notes.push(format!(
                        "{what} is not UTF-8; invalid bytes shown as U+FFFD"
                    ));
                    Some(String::from_utf8_lossy(e.as_bytes()).into_owned())
                }
            }
        };
        let request = decode("request", &self.request, self.request_base64);
        let response = decode("response", &self.response, self.response_base64);
        let mut field = |k: &str| {
            self.fields
                .remove(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let location_text = field("location");
        let param = location_text.as_deref().and_then(param_of_location);
        let method = self
            .request_method
            .clone()
            .or_else(|| {
                request
                    .as_deref()
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let host = field("host").unwrap_or_default();
        let url_path = field("path").unwrap_or_default();
        let detail = field("issueDetail").map(|d| strip_html(&d));
        let background = field("issueBackground").map(|d| strip_html(&d));
        let description = [detail, background]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n\n");
        let severity = match (field("severity"), field("confidence")) {
            (Some(s), Some(c)) => format!("{s} ({c})"),
            (Some(s), None) => s,
            (None, _) => String::new(),
        };
        let prior = self.prior_attrs.get("verdict").and_then(|v| {
            let number = |k: &str| self.prior_attrs.get(k).and_then(|p| p.parse::<f32>().ok());
            Some(TriageVerdict {
                item_id: id.clone(),
                true_positive: match v.as_str() {
                    "true_positive" => true,
                    "false_positive" => false,
                    _ => return None,
                },
                probability: number("probability")?,
                threshold: number("threshold")?,
                reason: self.prior_reason.trim().to_string(),
                decided_by: self
                    .prior_attrs
                    .get("decidedBy")
                    .cloned()
                    .unwrap_or_default(),
            })
        });
        let item = TriageItem {
            rule: field("type").unwrap_or_default(),
            title: field("name").unwrap_or_default(),
            description,
            severity,
            cwe: field("vulnerabilityClassifications").and_then(|c| cwe_from_text(&c)),
            location: Location::Http {
                method,
                url: format!("{host}{url_path}"),
                param,
            },
            request,
            response,
            code: None,
            evidence: None,
            no_evidence: false,
            notes,
            prior,
            origin: Origin::Burp { issue: index },
            id,
            source: Format::Burp,
        }
        .finish();
        FinishedIssue {
            item,
            existing: self.existing,
            warnings,
        }
    }
}

/// "/search [q parameter]" → "q"; locations without a single-word parameter give none.
fn param_of_location(location: &str) -> Option<String> {
    let open = location.rfind('[')?;
    let inner = location[open + 1..].strip_suffix(']')?;
    let name = inner.strip_suffix(" parameter")?;
    let name = name.split_whitespace().collect::<Vec<_>>();
    (name.len() == 1).then(|| name[0].to_string())
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn element(v: &TriageVerdict) -> String {
    format!(
        "<{VERDICT_ELEMENT} verdict=\"{}\" probability=\"{}\" threshold=\"{}\" decidedBy=\"{}\">{}</{VERDICT_ELEMENT}>",
        v.verdict_word(),
        v.probability,
        v.threshold,
        escape(&v.decided_by, true),
        escape(&v.reason, false)
    )
}

/// The original text with each `(issue index, verdict)` written in.
pub(crate) fn write(doc: &BurpDoc, verdicts: &[(usize, &TriageVerdict)]) -> Vec<u8> {
    let text = &doc.text;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (index, verdict) in verdicts {
        let Some(span) = doc.issues.get(*index) else {
            continue;
        };
        let el = element(verdict);
        match span.existing {
            Some((start, end)) => edits.push((start, end, el)),
            None => {
                let at = span.end_tag_start;
                let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
                let indent = &text[line_start..at];
                let insert = if line_start > 0 && indent.chars().all(|c| c == ' ' || c == '\t') {
                    // `</issue>` on its own line: the new child goes one level deeper.
                    format!("  {el}\n{indent}")
                } else {
                    el
                };
                edits.push((at, at, insert));
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(text.len() + edits.len() * 200);
    let mut pos = 0;
    for (start, end, replacement) in edits {
        out.push_str(&text[pos..start]);
        out.push_str(&replacement);
        pos = end;
    }
    out.push_str(&text[pos..]);
    out.into_bytes()
}
