//! The format-neutral finding (`TriageItem`) and the verdict on it (`TriageVerdict`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A findings format vigil reads and writes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// OWASP ZAP "traditional-json" / "traditional-json-plus" report.
    Zap,
    /// Burp Suite issues XML export.
    Burp,
    /// Nuclei JSON Lines output (`-jsonl`).
    Nuclei,
    /// SARIF 2.1.0 (Semgrep, CodeQL, …).
    Sarif,
    /// Raw HTTP exchange files: request, a line `---`, response (a file or a directory).
    Http,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Zap,
        Format::Burp,
        Format::Nuclei,
        Format::Sarif,
        Format::Http,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Zap => "zap",
            Format::Burp => "burp",
            Format::Nuclei => "nuclei",
            Format::Sarif => "sarif",
            Format::Http => "http",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zap" | "zap-json" => Ok(Format::Zap),
            "burp" | "burp-xml" => Ok(Format::Burp),
            "nuclei" | "nuclei-jsonl" | "jsonl" => Ok(Format::Nuclei),
            "sarif" => Ok(Format::Sarif),
            "http" | "raw-http" | "raw" => Ok(Format::Http),
            o => Err(format!(
                "unknown findings format {o:?}: expected zap, burp, nuclei, sarif or http"
            )),
        }
    }
}

/// Where a finding is: an HTTP endpoint (dynamic scanners) or a code region (static ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    Http {
        method: String,
        url: String,
        param: Option<String>,
    },
    Code {
        path: String,
        start_line: Option<u32>,
        end_line: Option<u32>,
    },
}

/// The opaque pointer from an item back to the part of the input it came from; the
/// writers use it to put the verdict in the right place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Origin {
    /// `site[site].alerts[alert].instances[instance]`; no instance when the alert has none.
    Zap {
        site: usize,
        alert: usize,
        instance: Option<usize>,
    },
    /// The `issue`-th `<issue>` (0-based) of the export.
    Burp { issue: usize },
    /// 1-based line number in the JSONL file.
    Nuclei { line: usize },
    /// `runs[run].results[result]`.
    Sarif { run: usize, result: usize },
    /// One exchange file.
    Http { file: PathBuf },
}

/// Longest description `TriageItem::finding_text` includes, in characters; scanner
/// descriptions run to pages of background the model does not need.
pub const MAX_FINDING_DESCRIPTION: usize = 2000;

/// What the model is shown for an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// An HTTP request / response pair with the finding's title and description.
    Http,
    /// A code snippet with the rule.
    Code,
}

/// One finding of another scanner, in the shape the triage model needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriageItem {
    /// Stable within the file: the same input gives the same ids.
    pub id: String,
    pub source: Format,
    /// The scanner's rule / template / plugin id.
    pub rule: String,
    pub title: String,
    pub description: String,
    /// The scanner's severity as it wrote it.
    pub severity: String,
    pub cwe: Option<u32>,
    pub location: Location,
    pub request: Option<String>,
    pub response: Option<String>,
    /// Code snippet (static findings).
    pub code: Option<String>,
    pub evidence: Option<String>,
    /// True when the finding carries neither request, response nor code: the model would
    /// judge it on the title alone, so the caller decides whether to.
    pub no_evidence: bool,
    /// Problems met while building this item (undecodable base64, snippet not found, …).
    pub notes: Vec<String>,
    /// A verdict vigil already wrote into the input (a file annotated before).
    pub prior: Option<TriageVerdict>,
    pub origin: Origin,
}

impl TriageItem {
    /// Code when there is a snippet, else HTTP.
    pub fn subject_kind(&self) -> SubjectKind {
        if self.code.is_some() {
            SubjectKind::Code
        } else {
            SubjectKind::Http
        }
    }

    /// Where the finding is: `GET https://host/path (parameter q)` or `src/a.py:10-12`.
    pub fn location_text(&self) -> String {
        match &self.location {
            Location::Http { method, url, param } => {
                let at: Vec<&str> = [method.as_str(), url.as_str()]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut out = at.join(" ");
                if let Some(p) = param {
                    out.push_str(&format!(" (parameter {p})"));
                }
                out
            }
            Location::Code {
                path,
                start_line,
                end_line,
            } => match (start_line, end_line) {
                (Some(s), Some(e)) if e > s => format!("{path}:{s}-{e}"),
                (Some(s), _) => format!("{path}:{s}"),
                _ => path.clone(),
            },
        }
    }

    /// The finding as text for the model's "finding under review" line (HTTP subjects) or
    /// as the rule context of a code subject: title, scanner, rule, CWE, severity,
    /// location, evidence and the description (cut at `MAX_FINDING_DESCRIPTION` chars).
    pub fn finding_text(&self) -> String {
        let mut facts = vec![format!("{} rule {}", self.source, self.rule)];
        if let Some(cwe) = self.cwe {
            facts.push(format!("CWE-{cwe}"));
        }
        if !self.severity.is_empty() {
            facts.push(format!("severity {}", self.severity));
        }
        let mut out = format!("{} ({})", self.title, facts.join("; "));
        out.push_str(&format!("\nAt: {}", self.location_text()));
        if let Some(e) = &self.evidence {
            out.push_str(&format!("\nEvidence: {e}"));
        }
        if !self.description.is_empty() {
            let cut: String = self
                .description
                .chars()
                .take(MAX_FINDING_DESCRIPTION)
                .collect();
            out.push_str("\n\n");
            out.push_str(&cut);
            if cut.len() < self.description.len() {
                out.push('…');
            }
        }
        out
    }

    /// The language of a code finding, from its file extension, in the names
    /// `vigil analyze` uses.
    pub fn language(&self) -> Option<&'static str> {
        let Location::Code { path, .. } = &self.location else {
            return None;
        };
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "py" => "python",
            "js" | "mjs" | "cjs" | "jsx" => "javascript",
            "ts" | "tsx" => "typescript",
            "java" => "java",
            "php" => "php",
            "go" => "go",
            "rb" => "ruby",
            "cs" => "csharp",
            _ => return None,
        })
    }

    /// Sets `no_evidence` from the evidence fields; readers call it last.
    pub(crate) fn finish(mut self) -> Self {
        self.request = non_blank(self.request);
        self.response = non_blank(self.response);
        self.code = non_blank(self.code);
        self.evidence = non_blank(self.evidence);
        self.no_evidence = self.request.is_none() && self.response.is_none() && self.code.is_none();
        self
    }
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// The triage decision on one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriageVerdict {
    pub item_id: String,
    pub true_positive: bool,
    /// Probability that the finding is a true positive.
    pub probability: f32,
    /// The decision threshold the probability was compared with.
    pub threshold: f32,
    pub reason: String,
    /// What decided: a model / bundle name, "head", "vote", a person.
    pub decided_by: String,
}

impl TriageVerdict {
    /// "true_positive" or "false_positive", the word written into annotated files.
    pub fn verdict_word(&self) -> &'static str {
        if self.true_positive {
            "true_positive"
        } else {
            "false_positive"
        }
    }

    pub(crate) fn validate(&self, path: &std::path::Path) -> Result<(), crate::TriageError> {
        let bad = |what: String| crate::TriageError::InvalidVerdict {
            path: path.to_path_buf(),
            item_id: self.item_id.clone(),
            what,
        };
        for (name, v) in [
            ("probability", self.probability),
            ("threshold", self.threshold),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(bad(format!("{name} {v} is not a number in [0, 1]")));
            }
        }
        Ok(())
    }

    /// The annotation object written into JSON formats (and the SARIF property bag).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "verdict": self.verdict_word(),
            "probability": short_f64(self.probability),
            "threshold": short_f64(self.threshold),
            "reason": self.reason,
            "decided_by": self.decided_by,
        })
    }

    /// Reads back an annotation object written by `to_json`.
    pub(crate) fn from_json(item_id: &str, v: &serde_json::Value) -> Option<TriageVerdict> {
        let true_positive = match v.get("verdict")?.as_str()? {
            "true_positive" => true,
            "false_positive" => false,
            _ => return None,
        };
        Some(TriageVerdict {
            item_id: item_id.to_string(),
            true_positive,
            probability: v.get("probability")?.as_f64()? as f32,
            threshold: v.get("threshold")?.as_f64()? as f32,
            reason: v
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_string(),
            decided_by: v
                .get("decided_by")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// An f32 as the f64 with the same shortest decimal form, so 0.12f32 is written "0.12"
/// rather than "0.11999999731779099".
pub(crate) fn short_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}
