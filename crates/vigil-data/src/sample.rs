//! One training sample ([`Sample`]) — the row of the `samples` table — with its kind,
//! split and content hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_taxonomy::Severity;

/// What a sample teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// An HTTP request / response pair to triage (the second seed's `training_data`).
    HttpPair,
    /// Source code of an API endpoint to analyse (the first seed).
    Code,
    /// A vulnerability report to write from its metadata (the third seed).
    Report,
    /// A conversation of unknown task imported verbatim (foreign ShareGPT / OpenAI files).
    Chat,
}

impl SampleKind {
    pub const ALL: [SampleKind; 4] = [
        SampleKind::HttpPair,
        SampleKind::Code,
        SampleKind::Report,
        SampleKind::Chat,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SampleKind::HttpPair => "http_pair",
            SampleKind::Code => "code",
            SampleKind::Report => "report",
            SampleKind::Chat => "chat",
        }
    }
    pub fn parse(s: &str) -> Option<SampleKind> {
        SampleKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which split a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "valid" | "validation" | "eval" | "dev" => Some(Split::Valid),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// One sample. Which text fields are set depends on [`SampleKind`]:
/// `HttpPair` uses `request` + `response`; `Code` uses `code` (+ `fixed_code` for a
/// vulnerable one); `Report` uses `title` + `meta` (program, weakness, …) as input;
/// `Chat` stores `request` (user turn) and `meta.system`. `analysis` is always the answer body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub kind: SampleKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub analysis: String,
    #[serde(default)]
    pub is_vulnerable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vuln_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwe: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_code: Option<String>,
    #[serde(default)]
    pub source: String,
    /// Twins and mutations of one template instance share a group; splits follow groups.
    #[serde(default)]
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Extra structured fields (report program, chat system prompt, seed category, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

impl Sample {
    /// An empty sample of a kind; fill the fields you need.
    pub fn new(kind: SampleKind) -> Sample {
        Sample {
            id: None,
            kind,
            request: None,
            response: None,
            code: None,
            language: None,
            framework: None,
            endpoint: None,
            title: None,
            analysis: String::new(),
            is_vulnerable: false,
            vuln_type: None,
            cwe: None,
            severity: None,
            fixed_code: None,
            source: String::new(),
            group_id: String::new(),
            split: None,
            meta: None,
        }
    }

    /// The text a model reads for this sample (code, request + response, report inputs).
    /// Exact and near-duplicate detection runs over this.
    pub fn input_text(&self) -> String {
        match self.kind {
            SampleKind::Code => self.code.clone().unwrap_or_default(),
            SampleKind::HttpPair | SampleKind::Chat => {
                let mut s = self.request.clone().unwrap_or_default();
                if let Some(r) = &self.response {
                    s.push('\n');
                    s.push_str(r);
                }
                s
            }
            SampleKind::Report => {
                let mut s = self.title.clone().unwrap_or_default();
                if let Some(m) = &self.meta {
                    s.push('\n');
                    s.push_str(&m.to_string());
                }
                s
            }
        }
    }

    /// SHA-256 (hex) over the kind, the input, the answer and the labels, with whitespace
    /// runs collapsed, so cosmetic re-formatting of a file does not create new rows.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, v: &str| {
            h.update(name.as_bytes());
            h.update([0u8]);
            for w in v.split_whitespace() {
                h.update(w.as_bytes());
                h.update([b' ']);
            }
            h.update([0xffu8]);
        };
        field("kind", self.kind.as_str());
        field("request", self.request.as_deref().unwrap_or(""));
        field("response", self.response.as_deref().unwrap_or(""));
        field("code", self.code.as_deref().unwrap_or(""));
        field("language", self.language.as_deref().unwrap_or(""));
        field("framework", self.framework.as_deref().unwrap_or(""));
        field("endpoint", self.endpoint.as_deref().unwrap_or(""));
        field("title", self.title.as_deref().unwrap_or(""));
        field("analysis", &self.analysis);
        field("vuln", if self.is_vulnerable { "1" } else { "0" });
        field("vuln_type", self.vuln_type.as_deref().unwrap_or(""));
        field("cwe", &self.cwe.map(|c| c.to_string()).unwrap_or_default());
        field("severity", self.severity.map(|s| s.as_str()).unwrap_or(""));
        field("fixed", self.fixed_code.as_deref().unwrap_or(""));
        field(
            "meta",
            &self
                .meta
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        );
        let d = h.finalize();
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Fill `group_id` from the content hash when the source gave none.
    pub fn ensure_group(&mut self) {
        if self.group_id.is_empty() {
            self.group_id = format!("h:{}", &self.content_hash()[..16]);
        }
    }
}
