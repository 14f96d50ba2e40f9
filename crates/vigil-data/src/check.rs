//! `vigil data check`: quality and leakage report ([`CheckReport`]).
//!
//! - exact duplicates of the normalised input text, inside a split and across splits;
//! - near-duplicates (MinHash + LSH, [`crate::dedup`]) between different groups, inside a
//!   split and across splits (leakage);
//! - text repeated across a sample's sections (the third seed's failure: the same paragraph
//!   as details, impact and summary);
//! - empty and truncated fields;
//! - label balance, class balance, distributions of kind, category, severity, language,
//!   framework, and token lengths (through a [`TokenCounter`]).

use crate::dedup::{self, NearDupIndex};
use crate::error::Result;
use crate::prompt;
use crate::sample::{Sample, SampleKind, Split};
use crate::store::{Filter, Store};
use crate::tokens::TokenCounter;
use std::collections::{BTreeMap, HashMap};

/// Settings of a check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Estimated Jaccard similarity from which two inputs count as near-duplicates.
    pub near_threshold: f64,
    /// Containment above which two sections of one sample count as repeated text.
    pub repeat_threshold: f64,
    /// How many examples to keep per finding list.
    pub max_examples: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            near_threshold: 0.8,
            repeat_threshold: 0.8,
            max_examples: 10,
        }
    }
}

/// A pair of samples that look alike.
#[derive(Debug, Clone, PartialEq)]
pub struct DupPair {
    pub a: i64,
    pub b: i64,
    pub split_a: Option<Split>,
    pub split_b: Option<Split>,
    pub similarity: f64,
}

/// One problem in one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub id: i64,
    pub what: String,
}

/// The result of a check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub total: usize,
    pub per_split: BTreeMap<String, usize>,
    /// Per split: (vulnerable, clean) — label balance where it matters, per split.
    pub per_split_labels: BTreeMap<String, (usize, usize)>,
    /// Exact duplicates (same normalised input) in the same split, different rows.
    pub exact_within: Vec<DupPair>,
    /// Exact duplicates across splits — leakage.
    pub exact_across: Vec<DupPair>,
    pub exact_within_count: usize,
    pub exact_across_count: usize,
    /// Near-duplicates between different groups in one split.
    pub near_within: Vec<DupPair>,
    pub near_within_count: usize,
    /// Near-duplicates across splits — leakage.
    pub near_across: Vec<DupPair>,
    pub near_across_count: usize,
    /// Samples that have at least one near-duplicate in another group (any split).
    pub samples_with_near_dup: usize,
    /// Per kind/category/framework: (label, samples with a near-duplicate in another group,
    /// samples) — shows where a generator or a source lacks variety.
    pub near_dup_by_category: Vec<(String, usize, usize)>,
    pub repeated_sections: Vec<Issue>,
    pub repeated_sections_count: usize,
    pub empty_or_truncated: Vec<Issue>,
    pub empty_or_truncated_count: usize,
    pub vulnerable: usize,
    pub clean: usize,
    pub by_kind: Vec<(String, usize)>,
    pub by_type: Vec<(String, usize)>,
    pub by_severity: Vec<(String, usize)>,
    pub by_language: Vec<(String, usize)>,
    pub by_framework: Vec<(String, usize)>,
    /// Per-sample token count of system + user + assistant.
    pub token_lengths: Vec<usize>,
    pub token_label: String,
    pub token_exact: bool,
    pub unassigned: usize,
}

impl CheckReport {
    /// Samples involved in cross-split duplicates (exact or near), as a fraction of all.
    pub fn leakage_rate(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.exact_across_count + self.near_across_count) as f64 / self.total as f64
    }

    /// Near-duplicate rate: samples with a near-duplicate in another group / all samples.
    pub fn near_dup_rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.samples_with_near_dup as f64 / self.total as f64
        }
    }
}

fn count_by<F: Fn(&Sample) -> String>(samples: &[Sample], f: F) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for s in samples {
        *m.entry(f(s)).or_default() += 1;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Check every sample of a store.
pub fn check(
    store: &Store,
    opts: &CheckOptions,
    counter: &dyn TokenCounter,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<CheckReport> {
    let samples = store.samples(&Filter::default())?;
    Ok(check_samples(&samples, opts, counter, &mut progress))
}

/// Check a list of samples (ids must be set for meaningful examples).
pub fn check_samples(
    samples: &[Sample],
    opts: &CheckOptions,
    counter: &dyn TokenCounter,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> CheckReport {
    let n = samples.len();
    let mut r = CheckReport {
        total: n,
        token_label: counter.label(),
        token_exact: counter.is_exact(),
        ..Default::default()
    };
    let id = |i: usize| samples[i].id.unwrap_or(i as i64 + 1);
    let pair = |i: usize, j: usize, sim: f64| DupPair {
        a: id(i),
        b: id(j),
        split_a: samples[i].split,
        split_b: samples[j].split,
        similarity: sim,
    };
    for s in samples {
        let k = s.split.map(|x| x.as_str()).unwrap_or("(unassigned)");
        *r.per_split.entry(k.to_string()).or_default() += 1;
        let e = r.per_split_labels.entry(k.to_string()).or_default();
        if s.is_vulnerable {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        if s.split.is_none() {
            r.unassigned += 1;
        }
    }

    // Exact duplicates of the normalised input.
    let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_hash
            .entry(dedup::normalized_hash(&s.input_text()))
            .or_default()
            .push(i);
    }
    let mut hashes: Vec<_> = by_hash.values().filter(|v| v.len() > 1).collect();
    hashes.sort();
    for members in hashes {
        for (a, &i) in members.iter().enumerate() {
            for &j in &members[a + 1..] {
                if samples[i].split != samples[j].split {
                    r.exact_across_count += 1;
                    if r.exact_across.len() < opts.max_examples {
                        r.exact_across.push(pair(i, j, 1.0));
                    }
                } else {
                    r.exact_within_count += 1;
                    if r.exact_within.len() < opts.max_examples {
                        r.exact_within.push(pair(i, j, 1.0));
                    }
                }
            }
        }
    }

    // Near duplicates between different groups.
    let mut idx = NearDupIndex::new();
    for (i, s) in samples.iter().enumerate() {
        idx.add(&s.input_text());
        if i % 500 == 0 {
            progress("minhash", i, n);
        }
    }
    progress("minhash", n, n);
    let pairs = idx.pairs(opts.near_threshold, |i, j| {
        samples[i].group_id != samples[j].group_id
    });
    let mut has_dup = vec![false; n];
    for (i, j, sim) in pairs {
        // exact duplicates are already counted above
        if dedup::normalized_hash(&samples[i].input_text())
            == dedup::normalized_hash(&samples[j].input_text())
        {
            continue;
        }
        has_dup[i] = true;
        has_dup[j] = true;
        if samples[i].split != samples[j].split {
            r.near_across_count += 1;
            if r.near_across.len() < opts.max_examples {
                r.near_across.push(pair(i, j, sim));
            }
        } else {
            r.near_within_count += 1;
            if r.near_within.len() < opts.max_examples {
                r.near_within.push(pair(i, j, sim));
            }
        }
    }
    r.samples_with_near_dup = has_dup.iter().filter(|x| **x).count();
    let mut cat: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        let key = format!(
            "{} / {} / {}",
            s.kind.as_str(),
            s.vuln_type.as_deref().unwrap_or("-"),
            s.framework.as_deref().unwrap_or("-")
        );
        let e = cat.entry(key).or_default();
        e.1 += 1;
        if has_dup[i] {
            e.0 += 1;
        }
    }
    let mut cat: Vec<(String, usize, usize)> =
        cat.into_iter().map(|(k, (a, b))| (k, a, b)).collect();
    cat.sort_by(|a, b| {
        (b.1 * 1000 / b.2.max(1))
            .cmp(&(a.1 * 1000 / a.2.max(1)))
            .then(a.0.cmp(&b.0))
    });
    r.near_dup_by_category = cat;

    // Per-sample checks.
    for (i, s) in samples.iter().enumerate() {
        for what in repeated_sections(s, opts.repeat_threshold) {
            r.repeated_sections_count += 1;
            if r.repeated_sections.len() < opts.max_examples {
                r.repeated_sections.push(Issue { id: id(i), what });
            }
        }
        for what in empty_or_truncated(s) {
            r.empty_or_truncated_count += 1;
            if r.empty_or_truncated.len() < opts.max_examples {
                r.empty_or_truncated.push(Issue { id: id(i), what });
            }
        }
        let m = prompt::render(s);
        r.token_lengths
            .push(counter.count(&m.system) + counter.count(&m.user) + counter.count(&m.assistant));
        if s.is_vulnerable {
            r.vulnerable += 1;
        } else {
            r.clean += 1;
        }
        if i % 1000 == 0 {
            progress("quality", i, n);
        }
    }
    progress("quality", n, n);
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".into());
    r.by_kind = count_by(samples, |s| s.kind.as_str().to_string());
    r.by_type = count_by(samples, |s| {
        if s.is_vulnerable {
            opt(&s.vuln_type)
        } else {
            "(clean)".into()
        }
    });
    r.by_severity = count_by(samples, |s| {
        s.severity
            .filter(|_| s.is_vulnerable)
            .map(|x| x.to_string())
            .unwrap_or_else(|| "(none)".into())
    });
    r.by_language = count_by(samples, |s| opt(&s.language));
    r.by_framework = count_by(samples, |s| opt(&s.framework));
    r
}

/// Split an answer into sections: Markdown headings (`#…`) and `Label:` lines start one.
pub fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut name = String::from("(start)");
    let mut body = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        let label = if t.starts_with('#') {
            Some((t.trim_start_matches('#').trim().to_string(), String::new()))
        } else if let Some((k, v)) = t.split_once(": ") {
            if !k.is_empty()
                && k.len() <= 24
                && k.chars().next().is_some_and(|c| c.is_uppercase())
                && k.chars().all(|c| c.is_alphanumeric() || c == ' ')
            {
                Some((k.to_string(), v.to_string()))
            } else {
                None
            }
        } else {
            None
        };
        match label {
            Some((k, v)) => {
                if !body.trim().is_empty() {
                    out.push((std::mem::take(&mut name), std::mem::take(&mut body)));
                }
                body.clear();
                name = k;
                body.push_str(&v);
                body.push('\n');
            }
            None => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    if !body.trim().is_empty() {
        out.push((name, body));
    }
    out
}

/// Pairs of sections of one answer where one repeats the other (shingle containment), e.g.
/// the same paragraph as "Vulnerability Details" and "Summary". Short sections are ignored.
pub fn repeated_sections(s: &Sample, threshold: f64) -> Vec<String> {
    const MIN_TOKENS: usize = 12;
    let secs: Vec<(String, Vec<u64>)> = sections(&s.analysis)
        .into_iter()
        .filter(|(_, b)| dedup::tokens(b).len() >= MIN_TOKENS)
        .map(|(n, b)| (n, dedup::shingles(&b, 3)))
        .collect();
    let mut out = Vec::new();
    for a in 0..secs.len() {
        for b in a + 1..secs.len() {
            let (x, y) = (&secs[a].1, &secs[b].1);
            let inter = x.iter().filter(|h| y.binary_search(h).is_ok()).count();
            let containment = inter as f64 / x.len().min(y.len()).max(1) as f64;
            if containment >= threshold {
                out.push(format!(
                    "sections \"{}\" and \"{}\" repeat each other ({:.0}% of shingles shared)",
                    secs[a].0,
                    secs[b].0,
                    containment * 100.0
                ));
            }
        }
    }
    out
}

fn unbalanced(code: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut in_str: Option<char> = None;
    let mut prev = ' ';
    for c in code.chars() {
        if let Some(q) = in_str {
            if c == q && prev != '\\' {
                in_str = None;
            }
            if c == '\n' && q != '`' {
                in_str = None; // unterminated single-line string: do not cascade
            }
        } else {
            match c {
                '"' | '\'' | '`' => in_str = Some(c),
                '(' | '[' | '{' => stack.push(c),
                ')' | ']' | '}' => {
                    let want = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if stack.pop() != Some(want) {
                        return Some(format!("unbalanced `{c}`"));
                    }
                }
                _ => {}
            }
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    stack.last().map(|c| format!("unclosed `{c}` (truncated?)"))
}

/// Empty required fields and signs of truncation.
pub fn empty_or_truncated(s: &Sample) -> Vec<String> {
    let mut out = Vec::new();
    let empty = |f: &Option<String>| f.as_deref().is_none_or(|x| x.trim().is_empty());
    if s.analysis.trim().is_empty() {
        out.push("analysis is empty".into());
    }
    if s.analysis.matches("```").count() % 2 == 1 {
        out.push("analysis has an unterminated code fence (truncated?)".into());
    }
    match s.kind {
        SampleKind::Code => {
            if empty(&s.code) {
                out.push("code is empty".into());
            } else if let Some(p) = unbalanced(s.code.as_deref().unwrap_or("")) {
                out.push(format!("code: {p}"));
            }
            if s.is_vulnerable && empty(&s.fixed_code) {
                out.push("vulnerable code sample has no fixed_code".into());
            }
        }
        SampleKind::HttpPair => {
            if empty(&s.request) {
                out.push("request is empty".into());
            }
            if empty(&s.response) {
                out.push("response is empty".into());
            } else if let Some(r) = &s.response {
                if let Some(w) = content_length_short(r) {
                    out.push(w);
                }
            }
        }
        SampleKind::Report => {
            if empty(&s.title) {
                out.push("title is empty".into());
            }
        }
        SampleKind::Chat => {
            if empty(&s.request) {
                out.push("user turn is empty".into());
            }
        }
    }
    if s.is_vulnerable && s.kind != SampleKind::Chat && s.vuln_type.is_none() {
        out.push("vulnerable sample has no vuln_type".into());
    }
    out
}

fn content_length_short(resp: &str) -> Option<String> {
    let (head, body) = resp
        .split_once("\n\n")
        .or_else(|| resp.split_once("\r\n\r\n"))?;
    let cl = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    })?;
    (body.len() + 16 < cl).then(|| {
        format!(
            "response body has {} bytes but Content-Length says {cl} (truncated?)",
            body.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_failure_repeated_sections_is_flagged() {
        let para = "The application reflects the search parameter into the page without encoding it, which lets an attacker run script in the victim's browser session.";
        let mut s = Sample::new(SampleKind::Report);
        s.title = Some("XSS".into());
        s.analysis = format!("## XSS\n\n### Vulnerability Details\n{para}\n\n### Impact\nAccount takeover through stolen session tokens and actions performed as the victim user.\n\n### Summary\n{para}");
        let found = repeated_sections(&s, 0.8);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("Vulnerability Details") && found[0].contains("Summary"));
        s.analysis = s.analysis.replace(&format!("### Summary\n{para}"), "### Summary\nEncode output by context and add a strict Content-Security-Policy header to the responses of the site.");
        assert!(repeated_sections(&s, 0.8).is_empty());
    }

    #[test]
    fn truncated_code_and_response_flagged() {
        let mut s = Sample::new(SampleKind::Code);
        s.code = Some("def f(x):\n    return g(x, [1, 2".into());
        s.analysis = "ok".into();
        assert!(empty_or_truncated(&s)
            .iter()
            .any(|w| w.contains("unclosed")));
        s.code = Some("def f(x):\n    return g(x, [1, 2])  # it's fine".into());
        assert!(
            empty_or_truncated(&s).is_empty(),
            "{:?}",
            empty_or_truncated(&s)
        );
        let mut h = Sample::new(SampleKind::HttpPair);
        h.request = Some("GET / HTTP/1.1".into());
        h.response = Some("HTTP/1.1 200 OK\nContent-Length: 500\n\nshort".into());
        h.analysis = "a".into();
        assert!(empty_or_truncated(&h)
            .iter()
            .any(|w| w.contains("Content-Length")));
    }
}
