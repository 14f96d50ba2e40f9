//! [`BinaryMetrics`]: the confusion counts of a true/false-positive verdict and the ratios
//! derived from them.
//!
//! **0/0 convention.** A ratio whose denominator is zero is *undefined* and is `None`
//! (printed `n/a`), never silently 0 or 1: precision with no positive predictions says
//! nothing about how precise the model is, and reporting 0 or 1 there would make a small
//! split look worse or better than it is.

use crate::error::{EvalError, Result};
use serde::{Deserialize, Serialize};

/// `num / den`, or `None` when `den == 0` (the crate's 0/0 convention).
pub fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Confusion counts with the positive class "vulnerable / true positive finding".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl BinaryMetrics {
    /// Counts `(label, prediction)` pairs; the slices must have the same length.
    pub fn from(labels: &[bool], predictions: &[bool]) -> Result<Self> {
        if labels.len() != predictions.len() {
            return Err(EvalError::LengthMismatch {
                what: "predictions (one per label)",
                expected: labels.len(),
                got: predictions.len(),
            });
        }
        Ok(Self::from_pairs(
            labels.iter().copied().zip(predictions.iter().copied()),
        ))
    }

    /// Counts `(label, prediction)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut m = Self::default();
        for (label, pred) in pairs {
            match (label, pred) {
                (true, true) => m.tp += 1,
                (false, true) => m.fp += 1,
                (false, false) => m.tn += 1,
                (true, false) => m.fn_ += 1,
            }
        }
        m
    }

    /// TP + FP + TN + FN.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Precision = TP / (TP + FP); `None` when nothing was predicted positive.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }

    /// Recall (sensitivity, TPR) = TP / (TP + FN); `None` when there are no positives.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Accuracy = (TP + TN) / (TP + FP + TN + FN); `None` on an empty set.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.tp + self.tn, self.total())
    }

    /// F1 = 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall written so
    /// that it is defined whenever either is; `None` only when there are neither positive
    /// labels nor positive predictions.
    pub fn f1(&self) -> Option<f64> {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// False-positive rate = FP / (FP + TN); `None` when there are no negatives.
    pub fn fpr(&self) -> Option<f64> {
        ratio(self.fp, self.fp + self.tn)
    }

    /// Specificity (TNR) = TN / (TN + FP) = 1 − FPR; `None` when there are no negatives.
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fp)
    }

    /// All ratios at once, for reports and JSON.
    pub fn scores(&self) -> BinaryScores {
        BinaryScores {
            precision: self.precision(),
            recall: self.recall(),
            accuracy: self.accuracy(),
            f1: self.f1(),
            fpr: self.fpr(),
            specificity: self.specificity(),
        }
    }
}

/// The ratios of a [`BinaryMetrics`], each `None` where its denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryScores {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub fpr: Option<f64>,
    pub specificity: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios_match_hand_computation() {
        // labels:      T T T F F F F T
        // predictions: T T F T F F F T
        // → TP = 3 (idx 0,1,7), FN = 1 (idx 2), FP = 1 (idx 3), TN = 3 (idx 4,5,6)
        let labels = [true, true, true, false, false, false, false, true];
        let preds = [true, true, false, true, false, false, false, true];
        let m = BinaryMetrics::from(&labels, &preds).unwrap();
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (3, 1, 3, 1));
        // precision 3/4, recall 3/4, accuracy 6/8, F1 6/(6+1+1) = 0.75, FPR 1/4, TNR 3/4
        assert_eq!(m.precision(), Some(0.75));
        assert_eq!(m.recall(), Some(0.75));
        assert_eq!(m.accuracy(), Some(0.75));
        assert_eq!(m.f1(), Some(0.75));
        assert_eq!(m.fpr(), Some(0.25));
        assert_eq!(m.specificity(), Some(0.75));
    }

    #[test]
    fn asymmetric_counts() {
        // TP 2, FP 3, TN 4, FN 1: precision 2/5 = 0.4, recall 2/3, accuracy 6/10,
        // F1 = 4/(4+3+1) = 0.5, FPR = 3/7
        let m = BinaryMetrics::from_pairs(
            [(true, true); 2]
                .into_iter()
                .chain([(false, true); 3])
                .chain([(false, false); 4])
                .chain([(true, false); 1]),
        );
        assert_eq!(m.precision(), Some(0.4));
        assert!((m.recall().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.accuracy(), Some(0.6));
        assert_eq!(m.f1(), Some(0.5));
        assert!((m.fpr().unwrap() - 3.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn zero_denominators_are_undefined_not_zero() {
        // All negative labels, all negative predictions: TN = 3, nothing else.
        let m = BinaryMetrics::from(&[false; 3], &[false; 3]).unwrap();
        assert_eq!(m.precision(), None); // 0/(0+0)
        assert_eq!(m.recall(), None); // 0/(0+0)
        assert_eq!(m.f1(), None); // 0/(0+0+0)
        assert_eq!(m.accuracy(), Some(1.0)); // 3/3
        assert_eq!(m.fpr(), Some(0.0)); // 0/3
                                        // All positive labels, predicted negative: recall 0/2 defined, precision undefined,
                                        // FPR undefined (no negatives), F1 = 0/(0+0+2) = 0.
        let m = BinaryMetrics::from(&[true; 2], &[false; 2]).unwrap();
        assert_eq!(m.recall(), Some(0.0));
        assert_eq!(m.precision(), None);
        assert_eq!(m.fpr(), None);
        assert_eq!(m.f1(), Some(0.0));
        // Empty input: every ratio undefined.
        let m = BinaryMetrics::from(&[], &[]).unwrap();
        assert_eq!(m.accuracy(), None);
        assert_eq!(m.total(), 0);
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let err = BinaryMetrics::from(&[true, false], &[true]).unwrap_err();
        assert!(err.to_string().contains("expected 2"), "{err}");
    }
}
