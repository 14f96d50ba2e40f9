//! [`CrossValidation`]: per-fold metrics of a k-fold run and their mean and spread.

use crate::binary::{BinaryMetrics, BinaryScores};
use crate::record::SampleRecord;
use serde::{Deserialize, Serialize};

/// Mean and sample standard deviation of one metric over the folds where it is defined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    /// √(Σ (x − mean)² / (m − 1)) over the m defined folds; `None` when m < 2.
    pub sd: Option<f64>,
    /// Folds on which the metric was defined (not 0/0).
    pub folds: usize,
}

impl MeanSd {
    /// `None` when no value is defined.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<Self> {
        let xs: Vec<f64> = values.into_iter().flatten().collect();
        if xs.is_empty() {
            return None;
        }
        let m = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / m;
        let sd = (xs.len() >= 2)
            .then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt());
        Some(Self {
            mean,
            sd,
            folds: xs.len(),
        })
    }
}

/// A k-fold cross-validation: the metrics of each fold's held-out records, and their mean
/// and spread. Folds come from [`crate::k_fold_by_group`]; the caller evaluates each fold's
/// test part with the model trained on the rest and passes the records here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    pub k: usize,
    pub per_fold: Vec<BinaryMetrics>,
    pub precision: Option<MeanSd>,
    pub recall: Option<MeanSd>,
    pub accuracy: Option<MeanSd>,
    pub f1: Option<MeanSd>,
    pub fpr: Option<MeanSd>,
}

impl CrossValidation {
    /// Summarises one record slice per fold.
    pub fn from_folds(folds: &[&[SampleRecord]]) -> Self {
        let per_fold: Vec<BinaryMetrics> = folds
            .iter()
            .map(|f| BinaryMetrics::from_pairs(f.iter().map(|r| (r.label, r.predicted))))
            .collect();
        let scores: Vec<BinaryScores> = per_fold.iter().map(BinaryMetrics::scores).collect();
        let stat = |pick: fn(&BinaryScores) -> Option<f64>| MeanSd::of(scores.iter().map(pick));
        Self {
            k: folds.len(),
            precision: stat(|s| s.precision),
            recall: stat(|s| s.recall),
            accuracy: stat(|s| s.accuracy),
            f1: stat(|s| s.f1),
            fpr: stat(|s| s.fpr),
            per_fold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd_by_hand() {
        // 0.5, 0.7, 0.9: mean 0.7; deviations −0.2, 0, 0.2 → Σ² = 0.08 / (3−1) = 0.04 → sd 0.2
        let m = MeanSd::of([Some(0.5), None, Some(0.7), Some(0.9)]).unwrap();
        assert!((m.mean - 0.7).abs() < 1e-12);
        assert!((m.sd.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(m.folds, 3, "the undefined fold is left out");
        assert_eq!(MeanSd::of([Some(0.4)]).unwrap().sd, None);
        assert_eq!(MeanSd::of([None, None]), None);
    }

    fn rec(id: usize, label: bool, predicted: bool) -> SampleRecord {
        SampleRecord::new("FT-CH", &id.to_string(), &id.to_string(), label, predicted)
    }

    #[test]
    fn folds_are_summarised() {
        // fold 1: TP, TN → accuracy 1, precision 1; fold 2: FP, TN → accuracy 0.5,
        // precision 0/1 = 0 → mean accuracy 0.75, sd √((0.25²·2)/1) = 0.3536
        let f1 = [rec(0, true, true), rec(1, false, false)];
        let f2 = [rec(2, false, true), rec(3, false, false)];
        let cv = CrossValidation::from_folds(&[&f1, &f2]);
        assert_eq!(cv.k, 2);
        let acc = cv.accuracy.unwrap();
        assert!((acc.mean - 0.75).abs() < 1e-12);
        assert!((acc.sd.unwrap() - (0.125f64).sqrt()).abs() < 1e-12);
        assert_eq!(cv.precision.unwrap().mean, 0.5);
        // recall: fold 1 1/1, fold 2 has no positives (undefined) → one fold counts
        assert_eq!(cv.recall.unwrap().folds, 1);
    }
}
