//! [`TriageCall`]: turning an analysis of another scanner's finding into "true" or "false
//! positive", precision first: a finding is dismissed only when the bundle's head is sure
//! enough — at or below the probability where "clean" calls reached the target precision
//! on validation. Everything else is kept, because dismissing a real vulnerability costs
//! more than reviewing a false alarm.

use crate::analyst::Analyst;
use crate::subject::{Analysis, Subject};
use serde::{Deserialize, Serialize};

/// Without a head, a dismissal needs this many sampled answers, all saying "clean".
pub const MIN_UNANIMOUS_VOTES: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageCall {
    pub true_positive: bool,
    /// Probability that the finding is real (the head's, or the share of votes).
    pub probability: f32,
    /// A finding is dismissed when `probability <= threshold`.
    pub threshold: f32,
    pub decided_by: String,
    pub reason: String,
}

impl Analyst {
    /// The triage verdict on `subject`, from its analysis.
    pub fn triage_call(&self, subject: &Subject, a: &Analysis) -> TriageCall {
        let head = self.head(subject.task(), "verdict");
        match (head, a.probability) {
            (Some(h), Some(p)) => {
                let target = h.meta.thresholds.target_precision;
                match h.meta.clean_below() {
                    Some(t) if p <= t => TriageCall {
                        true_positive: false,
                        probability: p,
                        threshold: t,
                        decided_by: format!("head `{}`", h.meta.name),
                        reason: format!(
                            "false positive: the verdict head gives {p:.3}, at or below {t:.3}, \
                             where false-positive calls were {:.0}% precise on validation. {}",
                            target * 100.0,
                            a.reason
                        )
                        .trim_end()
                        .to_string(),
                    },
                    Some(t) => TriageCall {
                        true_positive: true,
                        probability: p,
                        threshold: t,
                        decided_by: format!("head `{}`", h.meta.name),
                        reason: if a.vulnerable {
                            a.reason.clone()
                        } else {
                            format!(
                                "kept: the verdict head gives {p:.3}, above {t:.3}; not sure \
                                 enough to dismiss it"
                            )
                        },
                    },
                    None => TriageCall {
                        true_positive: true,
                        probability: p,
                        threshold: 0.0,
                        decided_by: format!("head `{}`", h.meta.name),
                        reason: format!(
                            "kept: head `{}` has no threshold at which false-positive calls \
                             reached {:.0}% precision, so it dismisses nothing",
                            h.meta.name,
                            target * 100.0
                        ),
                    },
                }
            }
            _ => {
                let total = a.votes_total.max(1);
                let p = a.votes_vulnerable as f32 / total as f32;
                let dismiss = a.votes_vulnerable == 0 && a.votes_total >= MIN_UNANIMOUS_VOTES;
                TriageCall {
                    true_positive: !dismiss,
                    probability: p,
                    threshold: 0.0,
                    decided_by: "generation".into(),
                    reason: if dismiss {
                        format!(
                            "false positive: all {total} sampled answers say clean. {}",
                            a.reason
                        )
                        .trim_end()
                        .to_string()
                    } else if a.vulnerable {
                        a.reason.clone()
                    } else {
                        format!(
                            "kept: {} of {total} sampled answers say clean; dismissing needs \
                             {MIN_UNANIMOUS_VOTES} or more, all clean",
                            total - a.votes_vulnerable
                        )
                    },
                }
            }
        }
    }
}
