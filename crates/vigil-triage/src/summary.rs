//! Counts of a triage run, by verdict and by rule, as text and Markdown.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{Format, TriageItem, TriageVerdict};

/// Verdict counts for one scanner rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCounts {
    pub rule: String,
    /// The title of the rule's first item, for readers who do not know the id.
    pub title: String,
    pub items: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub undecided: usize,
}

/// What a triage run decided over one findings file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriageSummary {
    pub format: Format,
    pub items: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    /// Items with no verdict (skipped, e.g. for lack of evidence).
    pub undecided: usize,
    pub no_evidence: usize,
    /// The distinct thresholds the verdicts used, ascending (normally one).
    pub thresholds: Vec<f32>,
    /// Rules ordered by number of items, most first, then by id.
    pub by_rule: Vec<RuleCounts>,
}

impl TriageSummary {
    /// Counts `verdicts` over `items`; verdicts for ids not among the items are ignored.
    pub fn new(format: Format, items: &[TriageItem], verdicts: &[TriageVerdict]) -> Self {
        let by_id: HashMap<&str, &TriageVerdict> =
            verdicts.iter().map(|v| (v.item_id.as_str(), v)).collect();
        let mut rules: BTreeMap<&str, RuleCounts> = BTreeMap::new();
        let mut s = TriageSummary {
            format,
            items: items.len(),
            true_positives: 0,
            false_positives: 0,
            undecided: 0,
            no_evidence: items.iter().filter(|i| i.no_evidence).count(),
            thresholds: Vec::new(),
            by_rule: Vec::new(),
        };
        for item in items {
            let counts = rules
                .entry(item.rule.as_str())
                .or_insert_with(|| RuleCounts {
                    rule: item.rule.clone(),
                    title: item.title.clone(),
                    ..RuleCounts::default()
                });
            counts.items += 1;
            match by_id.get(item.id.as_str()) {
                Some(v) if v.true_positive => {
                    counts.true_positives += 1;
                    s.true_positives += 1;
                }
                Some(_) => {
                    counts.false_positives += 1;
                    s.false_positives += 1;
                }
                None => {
                    counts.undecided += 1;
                    s.undecided += 1;
                }
            }
            if let Some(v) = by_id.get(item.id.as_str()) {
                if !s.thresholds.contains(&v.threshold) {
                    s.thresholds.push(v.threshold);
                }
            }
        }
        s.thresholds.sort_by(f32::total_cmp);
        s.by_rule = rules.into_values().collect();
        s.by_rule
            .sort_by(|a, b| b.items.cmp(&a.items).then_with(|| a.rule.cmp(&b.rule)));
        s
    }

    fn threshold_text(&self) -> String {
        match self.thresholds.as_slice() {
            [] => "none (no verdicts)".to_string(),
            [t] => t.to_string(),
            ts => ts.iter().map(f32::to_string).collect::<Vec<_>>().join(", "),
        }
    }

    /// A few lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} findings ({}): {} true positive, {} false positive, {} undecided; {} without evidence\nthreshold: {}\n",
            self.items,
            self.format,
            self.true_positives,
            self.false_positives,
            self.undecided,
            self.no_evidence,
            self.threshold_text()
        );
        let width = self
            .by_rule
            .iter()
            .map(|r| r.rule.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        if !self.by_rule.is_empty() {
            out.push_str(&format!(
                "{:<width$}  {:>5}  {:>5}  {:>5}  {:>5}  title\n",
                "rule", "items", "TP", "FP", "undec"
            ));
        }
        for r in &self.by_rule {
            out.push_str(&format!(
                "{:<width$}  {:>5}  {:>5}  {:>5}  {:>5}  {}\n",
                r.rule, r.items, r.true_positives, r.false_positives, r.undecided, r.title
            ));
        }
        out
    }

    /// A Markdown section with a table by rule.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "## Triage summary ({})\n\n| | count |\n|---|---:|\n| findings | {} |\n| true positive | {} |\n| false positive | {} |\n| undecided | {} |\n| without evidence | {} |\n\nThreshold: {}\n",
            self.format,
            self.items,
            self.true_positives,
            self.false_positives,
            self.undecided,
            self.no_evidence,
            self.threshold_text()
        );
        if !self.by_rule.is_empty() {
            out.push_str("\n| rule | title | items | true positive | false positive | undecided |\n|---|---|---:|---:|---:|---:|\n");
            for r in &self.by_rule {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    md_cell(&r.rule),
                    md_cell(&r.title),
                    r.items,
                    r.true_positives,
                    r.false_positives,
                    r.undecided
                ));
            }
        }
        out
    }
}

/// A table cell: pipes escaped and newlines flattened so the row stays one row.
fn md_cell(s: &str) -> String {
    let s = s.replace('|', "\\|").replace(['\r', '\n'], " ");
    if s.is_empty() {
        "—".into()
    } else {
        s
    }
}
