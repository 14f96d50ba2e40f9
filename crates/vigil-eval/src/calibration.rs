//! Metrics on the probability of the positive class: calibration ([`Calibration`]: ECE,
//! MCE, Brier, reliability bins), [`threshold_sweep`] and [`roc_auc`].
//!
//! Calibration is measured on the probability of the positive class `p` (not on
//! `max(p, 1 − p)`): a bin's `mean_confidence` is the mean `p` of its samples and its
//! `accuracy` is the observed fraction of positive labels in it. A calibrated model has
//! `accuracy ≈ mean_confidence` in every bin, whatever threshold is later applied to `p`.

use crate::binary::BinaryMetrics;
use crate::error::{EvalError, Result};
use serde::{Deserialize, Serialize};

/// How far below a bin edge a probability may be and still count in the upper bin.
const BIN_EDGE_TOLERANCE: f64 = 1e-6;

/// One equal-width bin of the reliability diagram, covering `[lo, hi)` (the last bin also
/// holds `p = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// Mean predicted probability of the positive class; `None` in an empty bin.
    pub mean_confidence: Option<f64>,
    /// Fraction of samples in the bin whose label is positive; `None` in an empty bin.
    pub accuracy: Option<f64>,
}

/// Calibration of a probability against binary labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Expected calibration error = Σ_b (n_b / N) · |accuracy_b − mean_confidence_b|.
    pub ece: f64,
    /// Maximum calibration error = max over non-empty bins of |accuracy_b − mean_confidence_b|.
    pub mce: f64,
    /// Brier score = (1/N) Σ_i (p_i − y_i)², y_i ∈ {0, 1}.
    pub brier: f64,
    pub bins: Vec<ReliabilityBin>,
    pub n: usize,
}

fn check_probabilities(probs: &[f32], labels: &[bool]) -> Result<()> {
    if probs.len() != labels.len() {
        return Err(EvalError::LengthMismatch {
            what: "probabilities (one per label)",
            expected: labels.len(),
            got: probs.len(),
        });
    }
    for (index, &p) in probs.iter().enumerate() {
        if !(0.0..=1.0).contains(&p) {
            return Err(EvalError::BadProbability {
                index,
                value: p as f64,
            });
        }
    }
    Ok(())
}

impl Calibration {
    /// Bins `probs` into `n_bins` equal-width bins over [0, 1]. Needs at least one sample
    /// and one bin; probabilities must lie in [0, 1] (NaN is rejected).
    pub fn from(probs: &[f32], labels: &[bool], n_bins: usize) -> Result<Self> {
        check_probabilities(probs, labels)?;
        if n_bins == 0 {
            return Err(EvalError::InvalidArgument(
                "calibration needs at least one bin".into(),
            ));
        }
        if probs.is_empty() {
            return Err(EvalError::NotEnoughData(
                "calibration needs at least one probability".into(),
            ));
        }
        let mut count = vec![0usize; n_bins];
        let mut sum_p = vec![0f64; n_bins];
        let mut positives = vec![0usize; n_bins];
        let mut brier = 0f64;
        for (&p, &y) in probs.iter().zip(labels) {
            let p = p as f64;
            // The nudge puts an f32 just below an edge (0.7 is stored as 0.69999999) in the
            // bin its decimal form names.
            let b = ((p * n_bins as f64 + BIN_EDGE_TOLERANCE) as usize).min(n_bins - 1);
            count[b] += 1;
            sum_p[b] += p;
            positives[b] += y as usize;
            let y = if y { 1.0 } else { 0.0 };
            brier += (p - y) * (p - y);
        }
        let n = probs.len();
        let mut ece = 0f64;
        let mut mce = 0f64;
        let mut bins = Vec::with_capacity(n_bins);
        for b in 0..n_bins {
            let (mean_confidence, accuracy) = if count[b] > 0 {
                let conf = sum_p[b] / count[b] as f64;
                let acc = positives[b] as f64 / count[b] as f64;
                let gap = (acc - conf).abs();
                ece += count[b] as f64 / n as f64 * gap;
                mce = mce.max(gap);
                (Some(conf), Some(acc))
            } else {
                (None, None)
            };
            bins.push(ReliabilityBin {
                lo: b as f64 / n_bins as f64,
                hi: (b + 1) as f64 / n_bins as f64,
                count: count[b],
                mean_confidence,
                accuracy,
            });
        }
        Ok(Self {
            ece,
            mce,
            brier: brier / n as f64,
            bins,
            n,
        })
    }
}

/// The binary metrics at one decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdPoint {
    pub threshold: f64,
    pub metrics: BinaryMetrics,
}

/// Binary metrics for each threshold `t`, predicting positive when `p ≥ t`. The comparison
/// is made in `f32`, the precision of the probabilities, so `p = 0.7` meets `t = 0.7`.
pub fn threshold_sweep(
    probs: &[f32],
    labels: &[bool],
    thresholds: &[f64],
) -> Result<Vec<ThresholdPoint>> {
    check_probabilities(probs, labels)?;
    Ok(thresholds
        .iter()
        .map(|&t| ThresholdPoint {
            threshold: t,
            metrics: BinaryMetrics::from_pairs(
                labels.iter().zip(probs).map(|(&y, &p)| (y, p >= t as f32)),
            ),
        })
        .collect())
}

/// Area under the ROC curve, computed as the probability that a random positive scores
/// above a random negative (ties count one half):
/// AUC = (Σ over positive/negative pairs of [p⁺ > p⁻] + ½[p⁺ = p⁻]) / (n⁺ · n⁻).
/// `None` when either class is absent.
pub fn roc_auc(probs: &[f32], labels: &[bool]) -> Result<Option<f64>> {
    check_probabilities(probs, labels)?;
    // Rank-sum form of the same quantity: O(n log n) instead of O(n⁺·n⁻).
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let mut rank_sum_pos = 0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && probs[order[j + 1]] == probs[order[i]] {
            j += 1;
        }
        // Tied block i..=j shares the average of 1-based ranks i+1..=j+1.
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if labels[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    let n_pos = labels.iter().filter(|&&y| y).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Ok(None);
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Ok(Some(u / (n_pos * n_neg) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_mce_brier_on_two_bins() {
        // Two bins: [0, 0.5) and [0.5, 1].
        // bin 0: p = 0.2 (y 0), 0.4 (y 1) → mean conf 0.3, accuracy 1/2 = 0.5, gap 0.2
        // bin 1: p = 0.6 (y 1), 0.8 (y 1), 1.0 (y 0), 0.5 (y 1)
        //        → mean conf (0.6+0.8+1.0+0.5)/4 = 0.725, accuracy 3/4, gap 0.025
        // ECE = 2/6·0.2 + 4/6·0.025 = 0.0666… + 0.0166… = 0.0833…
        // MCE = 0.2
        // Brier = (0.04 + 0.36 + 0.16 + 0.04 + 1.0 + 0.25)/6 = 1.85/6
        let probs = [0.2, 0.4, 0.6, 0.8, 1.0, 0.5];
        let labels = [false, true, true, true, false, true];
        let c = Calibration::from(&probs, &labels, 2).unwrap();
        assert_eq!(c.bins.len(), 2);
        assert_eq!((c.bins[0].count, c.bins[1].count), (2, 4));
        assert!((c.bins[0].mean_confidence.unwrap() - 0.3).abs() < 1e-6);
        assert_eq!(c.bins[0].accuracy, Some(0.5));
        assert!((c.bins[1].mean_confidence.unwrap() - 0.725).abs() < 1e-6);
        assert_eq!(c.bins[1].accuracy, Some(0.75));
        assert!((c.ece - (2.0 / 6.0 * 0.2 + 4.0 / 6.0 * 0.025)).abs() < 1e-6);
        assert!((c.mce - 0.2).abs() < 1e-6);
        assert!((c.brier - 1.85 / 6.0).abs() < 1e-6);
    }

    #[test]
    fn empty_bins_have_no_values_and_do_not_count() {
        // 4 bins; p = 0.9 (y 1) and 0.95 (y 1) both in bin 3: conf 0.925, acc 1, gap 0.075.
        let c = Calibration::from(&[0.9, 0.95], &[true, true], 4).unwrap();
        assert_eq!(c.bins[0].mean_confidence, None);
        assert_eq!(c.bins[0].count, 0);
        assert!((c.ece - 0.075).abs() < 1e-6);
        assert!((c.mce - 0.075).abs() < 1e-6);
    }

    #[test]
    fn f32_probabilities_on_a_bin_edge_go_to_the_upper_bin() {
        // 0.7f32 = 0.699999988…; with 10 bins it belongs to [0.7, 0.8), bin 7.
        let c = Calibration::from(&[0.7, 0.3], &[true, false], 10).unwrap();
        assert_eq!(c.bins[7].count, 1);
        assert_eq!(c.bins[3].count, 1);
    }

    #[test]
    fn bad_probabilities_and_empty_input_are_errors() {
        assert!(matches!(
            Calibration::from(&[1.5], &[true], 10),
            Err(EvalError::BadProbability { index: 0, .. })
        ));
        assert!(Calibration::from(&[f32::NAN], &[true], 10).is_err());
        assert!(Calibration::from(&[], &[], 10).is_err());
        assert!(Calibration::from(&[0.5], &[true], 0).is_err());
    }

    #[test]
    fn threshold_sweep_by_hand() {
        // p: 0.1(F) 0.4(T) 0.6(F) 0.9(T)
        // t = 0.5 → predicted F F T T: TP 1 (0.9), FP 1 (0.6), TN 1, FN 1
        // t = 0.95 → nothing positive: TP 0, FP 0, TN 2, FN 2
        let probs = [0.1, 0.4, 0.6, 0.9];
        let labels = [false, true, false, true];
        let pts = threshold_sweep(&probs, &labels, &[0.5, 0.95]).unwrap();
        let m = pts[0].metrics;
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (1, 1, 1, 1));
        let m = pts[1].metrics;
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (0, 0, 2, 2));
        assert_eq!(m.precision(), None);
        // p = 0.7 meets t = 0.7, although 0.7f32 (0.69999999) < 0.7f64.
        let m = threshold_sweep(&[0.7], &[true], &[0.7]).unwrap()[0].metrics;
        assert_eq!(m.tp, 1);
    }

    #[test]
    fn roc_auc_by_hand() {
        // positives 0.4, 0.9; negatives 0.1, 0.6.
        // pairs (pos > neg): 0.4>0.1 yes, 0.4>0.6 no, 0.9>0.1 yes, 0.9>0.6 yes → 3/4
        let auc = roc_auc(&[0.1, 0.4, 0.6, 0.9], &[false, true, false, true]).unwrap();
        assert_eq!(auc, Some(0.75));
        // A tie counts one half: pos 0.5, neg 0.5 → 0.5/1
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]).unwrap(), Some(0.5));
        // positives 0.7, 0.7; negatives 0.7, 0.2: pairs (0.7,0.7) ½ ×2, (0.7,0.2) 1 ×2 → 3/4
        assert_eq!(
            roc_auc(&[0.7, 0.7, 0.7, 0.2], &[true, true, false, false]).unwrap(),
            Some(0.75)
        );
        // One class only: undefined.
        assert_eq!(roc_auc(&[0.3, 0.8], &[true, true]).unwrap(), None);
    }
}
