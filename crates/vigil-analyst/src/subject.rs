//! What is analysed ([`Subject`]), how it is put to the model ([`PromptForm`]), and what
//! comes back ([`Analysis`]).

use serde::{Deserialize, Serialize};
use vigil_data::prompt::{self, Messages};
use vigil_data::{Sample, SampleKind};
use vigil_taxonomy::{Severity, Taxonomy};

/// One unit of analysis: an endpoint's code or an HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Code {
        language: Option<String>,
        framework: Option<String>,
        /// `METHOD /path`, when known.
        endpoint: Option<String>,
        code: String,
    },
    Http {
        request: String,
        response: String,
        /// What another scanner claims, e.g. "Cross-Site Scripting (Reflected)".
        finding: Option<String>,
    },
}

/// How the question is put: with the engineered system prompt (the words vigil trains on)
/// or plain (the user turn alone) — the seed's "PE" distinction.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum PromptForm {
    Plain,
    #[default]
    Engineered,
}

impl Subject {
    /// The task name used by bundles: `code` or `http`.
    pub fn task(&self) -> &'static str {
        match self {
            Subject::Code { .. } => "code",
            Subject::Http { .. } => "http",
        }
    }

    /// The conversation (without an answer) for this subject.
    pub fn messages(&self, form: PromptForm) -> Messages {
        let (system, user) = match self {
            Subject::Code {
                language,
                framework,
                endpoint,
                code,
            } => (
                prompt::SYSTEM_CODE,
                prompt::user_code(
                    language.as_deref(),
                    framework.as_deref(),
                    endpoint.as_deref(),
                    code,
                ),
            ),
            Subject::Http {
                request,
                response,
                finding,
            } => (
                prompt::SYSTEM_HTTP,
                prompt::user_http(request, response, finding.as_deref()),
            ),
        };
        Messages {
            system: match form {
                PromptForm::Engineered => system.to_string(),
                PromptForm::Plain => String::new(),
            },
            user,
            assistant: String::new(),
        }
    }

    /// The subject of a code or HTTP sample; `None` for reports and chats.
    pub fn of_sample(s: &Sample) -> Option<Subject> {
        match s.kind {
            SampleKind::Code => Some(Subject::Code {
                language: s.language.clone(),
                framework: s.framework.clone(),
                endpoint: s.endpoint.clone(),
                code: s.code.clone().unwrap_or_default(),
            }),
            SampleKind::HttpPair => Some(Subject::Http {
                request: s.request.clone().unwrap_or_default(),
                response: s.response.clone().unwrap_or_default(),
                finding: None,
            }),
            _ => None,
        }
    }
}

/// The result of analysing one subject.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Analysis {
    pub vulnerable: bool,
    /// Confidence in `vulnerable` as stated: the head's probability of the verdict given,
    /// or the share of self-consistency votes for it.
    pub confidence: f32,
    /// The head's probability that the subject is vulnerable (`None` without a head).
    pub probability: Option<f32>,
    /// The decision threshold used on `probability`.
    pub threshold: Option<f32>,
    /// Where the verdict came from: `head` or `generation`.
    pub decided_by: String,
    pub vuln_type: Option<String>,
    pub type_probability: Option<f32>,
    pub cwe: Option<u32>,
    pub owasp: Option<String>,
    pub severity: Option<Severity>,
    pub reason: String,
    pub fixed_code: Option<String>,
    /// The whole generated answer.
    pub text: String,
    /// Tokens generated (the verdict line included).
    pub answer_tokens: usize,
    /// Self-consistency votes for "vulnerable", out of `votes_total` (0 when not used).
    pub votes_vulnerable: usize,
    pub votes_total: usize,
    pub seconds: f64,
}

/// Fills type-derived fields from the taxonomy and splits the generated body into reason
/// and fixed code.
pub(crate) fn complete(a: &mut Analysis, body: &str) {
    let t = Taxonomy::builtin();
    if let Some(v) = a.vuln_type.as_deref().and_then(|id| t.resolve(id)) {
        a.vuln_type = Some(v.id.clone());
        a.owasp = Some(v.owasp.label());
        if a.cwe.is_none() {
            a.cwe = Some(v.cwe.id);
        }
        if a.severity.is_none() {
            a.severity = Some(v.severity);
        }
    }
    let (reason, fixed) = split_fixed_code(body);
    a.reason = reason.trim().to_string();
    a.fixed_code = fixed;
}

/// `(text before, code inside)` of the answer's `Fixed code:` fence; a fence the model did
/// not close (token budget) still yields its code.
pub(crate) fn split_fixed_code(body: &str) -> (String, Option<String>) {
    let Some(pos) = body.find("Fixed code:") else {
        return (body.to_string(), None);
    };
    let after = &body[pos + "Fixed code:".len()..];
    let code = after
        .find("```")
        .map(|s| {
            let inner = &after[s + 3..];
            // Skip the language tag line.
            let inner = inner.split_once('\n').map(|(_, r)| r).unwrap_or("");
            inner
                .split("```")
                .next()
                .unwrap_or("")
                .trim_end()
                .to_string()
        })
        .filter(|c| !c.trim().is_empty());
    (body[..pos].to_string(), code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_code_is_split_from_the_reason() {
        let (r, c) = split_fixed_code(
            "Reason: concatenated SQL.\nFix: bind.\n\nFixed code:\n```python\nx = 1\n```",
        );
        assert_eq!(r, "Reason: concatenated SQL.\nFix: bind.\n\n");
        assert_eq!(c.as_deref(), Some("x = 1"));
        let (_, c) = split_fixed_code("Reason: r\nFixed code:\n```go\nfunc f() {");
        assert_eq!(c.as_deref(), Some("func f() {"));
        assert_eq!(split_fixed_code("no code").1, None);
    }

    #[test]
    fn plain_form_drops_only_the_system_prompt() {
        let s = Subject::Code {
            language: Some("python".into()),
            framework: None,
            endpoint: None,
            code: "x".into(),
        };
        let pe = s.messages(PromptForm::Engineered);
        let plain = s.messages(PromptForm::Plain);
        assert_eq!(pe.user, plain.user);
        assert!(plain.system.is_empty() && pe.system == prompt::SYSTEM_CODE);
    }

    #[test]
    fn taxonomy_fills_what_the_model_did_not_say() {
        let mut a = Analysis {
            vulnerable: true,
            confidence: 0.9,
            probability: None,
            threshold: None,
            decided_by: "head".into(),
            vuln_type: Some("sql_injection".into()),
            type_probability: None,
            cwe: None,
            owasp: None,
            severity: None,
            reason: String::new(),
            fixed_code: None,
            text: String::new(),
            answer_tokens: 0,
            votes_vulnerable: 0,
            votes_total: 0,
            seconds: 0.0,
        };
        complete(&mut a, "Reason: x");
        assert_eq!(a.cwe, Some(89));
        assert!(a.owasp.is_some() && a.severity.is_some());
        assert_eq!(a.reason, "Reason: x");
    }
}
