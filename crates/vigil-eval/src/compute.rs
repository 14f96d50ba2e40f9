//! Test-time compute (M6): the seed's **Control** and **Scaling** metrics, and accuracy /
//! false-positive rate per analysis-length bucket.
//!
//! Reading of the seed's notation (001, "Metrics"):
//!
//! * Control = (1/|A|) Σ_{a ⊂ A} 𝟙(a_min ≤ a ≤ a_max). `A` is the multiset of analysis
//!   lengths (generated tokens), one per sample; the `⊂` is read as "each element a of A"
//!   and the parenthesised comparison as an indicator (1 if true, else 0). Control is
//!   therefore the fraction of analyses whose length fell inside the budget `[a_min, a_max]`,
//!   both ends inclusive.
//! * Scaling = (1 / C(|A|, 2)) Σ_{a, b ⊂ A, b > a} (f(b) − f(a)) / (b − a). Here `A` is the
//!   set of token budgets the model was run at and `f(a)` the performance metric (accuracy or
//!   precision) measured at budget `a`. The sum runs over every unordered pair of distinct
//!   budgets (taking the larger as `b`), and C(|A|, 2) = |A|(|A|−1)/2 is the number of such
//!   pairs, so Scaling is the mean slope of the metric over all pairs of budgets — the
//!   metric gained per extra token. Because `A` is a set and `f` a function of it, repeated
//!   budgets are rejected rather than silently averaged.

use crate::binary::BinaryMetrics;
use crate::error::{EvalError, Result};
use crate::record::SampleRecord;
use serde::{Deserialize, Serialize};

/// Control: the fraction of `lengths` inside `[a_min, a_max]` (inclusive). Errors on an
/// empty `lengths` (|A| = 0 leaves the mean undefined) or on `a_min > a_max`.
pub fn control(lengths: &[usize], a_min: usize, a_max: usize) -> Result<f64> {
    if a_min > a_max {
        return Err(EvalError::InvalidArgument(format!(
            "control budget has a_min {a_min} > a_max {a_max}"
        )));
    }
    if lengths.is_empty() {
        return Err(EvalError::NotEnoughData(
            "control needs at least one analysis length".into(),
        ));
    }
    let inside = lengths
        .iter()
        .filter(|&&a| a_min <= a && a <= a_max)
        .count();
    Ok(inside as f64 / lengths.len() as f64)
}

/// Scaling: the mean over all pairs of budgets `a < b` of `(f(b) − f(a)) / (b − a)`, from
/// `points = [(budget, metric), …]` in any order. Needs at least two points, distinct
/// finite budgets and finite metrics.
pub fn scaling(points: &[(f64, f64)]) -> Result<f64> {
    if points.len() < 2 {
        return Err(EvalError::NotEnoughData(format!(
            "scaling needs at least 2 budgets, got {}",
            points.len()
        )));
    }
    if let Some(p) = points.iter().find(|p| !p.0.is_finite() || !p.1.is_finite()) {
        return Err(EvalError::InvalidArgument(format!(
            "scaling point ({}, {}) is not finite",
            p.0, p.1
        )));
    }
    let mut sum = 0f64;
    for (i, &(x, fx)) in points.iter().enumerate() {
        for &(y, fy) in &points[i + 1..] {
            if x == y {
                return Err(EvalError::InvalidArgument(format!(
                    "scaling budget {x} appears twice; give one metric per budget"
                )));
            }
            let ((a, fa), (b, fb)) = if x < y {
                ((x, fx), (y, fy))
            } else {
                ((y, fy), (x, fx))
            };
            sum += (fb - fa) / (b - a);
        }
    }
    let n = points.len() as f64;
    Ok(sum / (n * (n - 1.0) / 2.0))
}

/// Accuracy and FPR of the samples whose analysis length is in `[lo, hi)` (`hi = None`:
/// no upper bound).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthBucket {
    pub lo: usize,
    pub hi: Option<usize>,
    pub n: usize,
    pub metrics: BinaryMetrics,
    pub accuracy: Option<f64>,
    pub fpr: Option<f64>,
}

impl LengthBucket {
    /// `"64–127"` / `"256+"`, for tables and chart axes.
    pub fn label(&self) -> String {
        match self.hi {
            Some(hi) => format!("{}-{}", self.lo, hi.saturating_sub(1)),
            None => format!("{}+", self.lo),
        }
    }
}

/// Buckets records by `analysis_tokens` at the strictly increasing `edges`: edges
/// `[64, 128]` give `[0, 64)`, `[64, 128)` and `[128, ∞)`. Empty buckets are kept (n = 0)
/// so that every variant has the same buckets.
pub fn by_length_buckets(records: &[SampleRecord], edges: &[usize]) -> Result<Vec<LengthBucket>> {
    if edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(EvalError::InvalidArgument(format!(
            "length bucket edges must be strictly increasing, got {edges:?}"
        )));
    }
    let mut bounds: Vec<(usize, Option<usize>)> = Vec::with_capacity(edges.len() + 1);
    let mut lo = 0;
    for &e in edges {
        if e > 0 {
            bounds.push((lo, Some(e)));
        }
        lo = e;
    }
    bounds.push((lo, None));
    Ok(bounds
        .into_iter()
        .map(|(lo, hi)| {
            let metrics = BinaryMetrics::from_pairs(
                records
                    .iter()
                    .filter(|r| r.analysis_tokens >= lo && hi.is_none_or(|h| r.analysis_tokens < h))
                    .map(|r| (r.label, r.predicted)),
            );
            LengthBucket {
                lo,
                hi,
                n: metrics.total(),
                accuracy: metrics.accuracy(),
                fpr: metrics.fpr(),
                metrics,
            }
        })
        .collect())
}

/// Which metric a scaling curve tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingMetric {
    Accuracy,
    Precision,
}

impl ScalingMetric {
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::Precision => "precision",
        }
    }

    pub fn of(self, m: &BinaryMetrics) -> Option<f64> {
        match self {
            Self::Accuracy => m.accuracy(),
            Self::Precision => m.precision(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_counts_lengths_inside_the_inclusive_budget() {
        // budget [100, 200]; lengths 50 (out), 100 (in, edge), 150 (in), 200 (in, edge),
        // 201 (out) → 3/5 = 0.6
        assert_eq!(control(&[50, 100, 150, 200, 201], 100, 200).unwrap(), 0.6);
        assert_eq!(control(&[10, 20], 30, 40).unwrap(), 0.0);
        assert!(control(&[], 0, 10).is_err());
        assert!(control(&[5], 10, 1).is_err());
    }

    #[test]
    fn scaling_is_the_mean_pairwise_slope() {
        // f(100) = 0.5, f(200) = 0.7, f(400) = 0.8
        // pairs: (100,200): 0.2/100 = 0.002; (100,400): 0.3/300 = 0.001;
        //        (200,400): 0.1/200 = 0.0005 → sum 0.0035 / C(3,2)=3 → 0.0011666…
        let s = scaling(&[(200.0, 0.7), (100.0, 0.5), (400.0, 0.8)]).unwrap();
        assert!((s - 0.0035 / 3.0).abs() < 1e-12, "{s}");
        // Two points: a plain slope, negative when more compute hurts: (0.6−0.9)/(20−10)
        let s = scaling(&[(10.0, 0.9), (20.0, 0.6)]).unwrap();
        assert!((s + 0.03).abs() < 1e-12);
    }

    #[test]
    fn scaling_rejects_degenerate_input() {
        assert!(scaling(&[(10.0, 0.5)]).is_err());
        assert!(scaling(&[(10.0, 0.5), (10.0, 0.6)]).is_err());
        assert!(scaling(&[(10.0, f64::NAN), (20.0, 0.6)]).is_err());
    }

    fn rec(tokens: usize, label: bool, predicted: bool) -> SampleRecord {
        SampleRecord {
            analysis_tokens: tokens,
            ..SampleRecord::new(
                "v",
                &format!("{tokens}{label}{predicted}"),
                "g",
                label,
                predicted,
            )
        }
    }

    #[test]
    fn length_buckets_by_hand() {
        // edges [64, 128] → [0,64), [64,128), [128,∞)
        // [0,64):   (10, F→F) TN, (63, F→T) FP → acc 1/2, FPR = FP/(FP+TN) = 1/2
        // [64,128): (64, T→T) correct → acc 1, FPR undefined (no negatives)
        // [128,∞):  nothing → n 0, acc undefined
        let records = [
            rec(10, false, false),
            rec(63, false, true),
            rec(64, true, true),
        ];
        let b = by_length_buckets(&records, &[64, 128]).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].n, b[0].accuracy, b[0].fpr), (2, Some(0.5), Some(0.5)));
        assert_eq!((b[1].n, b[1].accuracy, b[1].fpr), (1, Some(1.0), None));
        assert_eq!((b[2].n, b[2].accuracy), (0, None));
        assert_eq!(b[0].label(), "0-63");
        assert_eq!(b[2].label(), "128+");
        assert!(by_length_buckets(&records, &[128, 64]).is_err());
    }
}
