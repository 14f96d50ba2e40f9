//! [`MultiClassReport`]: per-class precision / recall / F1 for the vulnerability type, with
//! macro and support-weighted averages and a confusion matrix over class names.

use crate::binary::ratio;
use crate::error::{EvalError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One class treated one-vs-rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    /// TP_c / (TP_c + FP_c); `None` when the class was never predicted.
    pub precision: Option<f64>,
    /// TP_c / (TP_c + FN_c); `None` when the class never occurs in the truth.
    pub recall: Option<f64>,
    /// 2·TP_c / (2·TP_c + FP_c + FN_c).
    pub f1: Option<f64>,
    /// Number of samples whose true class is this one.
    pub support: usize,
}

/// An average over classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Per-class metrics over the classes seen in either the truth or the predictions (sorted by
/// name).
///
/// Averages: **macro** = unweighted mean over classes; **weighted** = mean weighted by
/// support. In both an undefined per-class value counts as 0, because a class the model
/// never predicts (or predicts although it never occurs) is a failure on that class, not a
/// missing value (the same convention as scikit-learn's `zero_division=0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiClassReport {
    pub classes: Vec<ClassMetrics>,
    pub macro_avg: Averages,
    pub weighted_avg: Averages,
    /// Fraction of samples whose predicted class equals the true class.
    pub accuracy: Option<f64>,
    /// `confusion[i][j]` = samples of true class `classes[i]` predicted as `classes[j]`.
    pub confusion: Vec<Vec<usize>>,
}

impl MultiClassReport {
    /// Builds the report from parallel slices of true and predicted class names.
    pub fn from(truth: &[String], predicted: &[String]) -> Result<Self> {
        if truth.len() != predicted.len() {
            return Err(EvalError::LengthMismatch {
                what: "predicted classes (one per true class)",
                expected: truth.len(),
                got: predicted.len(),
            });
        }
        let names: Vec<String> = truth
            .iter()
            .chain(predicted)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let index = |c: &String| names.binary_search(c).expect("class collected above");
        let k = names.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for (t, p) in truth.iter().zip(predicted) {
            confusion[index(t)][index(p)] += 1;
        }
        let mut classes = Vec::with_capacity(k);
        for (i, name) in names.iter().enumerate() {
            let tp = confusion[i][i];
            let support: usize = confusion[i].iter().sum();
            let predicted_as: usize = confusion.iter().map(|row| row[i]).sum();
            let fp = predicted_as - tp;
            let fn_ = support - tp;
            classes.push(ClassMetrics {
                class: name.clone(),
                precision: ratio(tp, tp + fp),
                recall: ratio(tp, tp + fn_),
                f1: ratio(2 * tp, 2 * tp + fp + fn_),
                support,
            });
        }
        let n = truth.len();
        let avg = |weight: &dyn Fn(&ClassMetrics) -> f64, denom: f64| {
            let sum = |f: fn(&ClassMetrics) -> Option<f64>| {
                classes
                    .iter()
                    .map(|c| weight(c) * f(c).unwrap_or(0.0))
                    .sum::<f64>()
            };
            if denom == 0.0 {
                return Averages {
                    precision: 0.0,
                    recall: 0.0,
                    f1: 0.0,
                };
            }
            Averages {
                precision: sum(|c| c.precision) / denom,
                recall: sum(|c| c.recall) / denom,
                f1: sum(|c| c.f1) / denom,
            }
        };
        let macro_avg = avg(&|_| 1.0, k as f64);
        let weighted_avg = avg(&|c| c.support as f64, n as f64);
        let correct = (0..k).map(|i| confusion[i][i]).sum();
        Ok(Self {
            accuracy: ratio(correct, n),
            classes,
            macro_avg,
            weighted_avg,
            confusion,
        })
    }

    /// The class names in matrix order.
    pub fn class_names(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.class.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn three_class_example_by_hand() {
        // truth: sqli sqli sqli xss xss idor
        // pred:  sqli sqli xss  xss sqli xss
        // confusion (rows truth, cols pred; order idor, sqli, xss):
        //   idor: [0, 0, 1]
        //   sqli: [0, 2, 1]
        //   xss:  [0, 1, 1]
        let truth = s(&["sqli", "sqli", "sqli", "xss", "xss", "idor"]);
        let pred = s(&["sqli", "sqli", "xss", "xss", "sqli", "xss"]);
        let r = MultiClassReport::from(&truth, &pred).unwrap();
        assert_eq!(r.class_names(), ["idor", "sqli", "xss"]);
        assert_eq!(
            r.confusion,
            vec![vec![0, 0, 1], vec![0, 2, 1], vec![0, 1, 1]]
        );
        // idor: never predicted → precision None; recall 0/1 = 0; F1 0/(0+0+1) = 0
        let idor = &r.classes[0];
        assert_eq!(
            (idor.precision, idor.recall, idor.f1, idor.support),
            (None, Some(0.0), Some(0.0), 1)
        );
        // sqli: TP 2, FP 1 (xss→sqli), FN 1 → P 2/3, R 2/3, F1 4/6
        let sqli = &r.classes[1];
        assert!((sqli.precision.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((sqli.recall.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((sqli.f1.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // xss: TP 1, FP 2 (sqli→xss, idor→xss), FN 1 → P 1/3, R 1/2, F1 2/(2+2+1) = 0.4
        let xss = &r.classes[2];
        assert!((xss.precision.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(xss.recall, Some(0.5));
        assert!((xss.f1.unwrap() - 0.4).abs() < 1e-12);
        // macro P = (0 + 2/3 + 1/3)/3 = 1/3; macro R = (0 + 2/3 + 1/2)/3 = 7/18
        assert!((r.macro_avg.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_avg.recall - 7.0 / 18.0).abs() < 1e-12);
        // weighted F1 = (1·0 + 3·2/3 + 2·0.4)/6 = (2 + 0.8)/6 = 0.4666…
        assert!((r.weighted_avg.f1 - 2.8 / 6.0).abs() < 1e-12);
        // accuracy = 3 correct of 6
        assert_eq!(r.accuracy, Some(0.5));
    }

    #[test]
    fn empty_input_gives_empty_report() {
        let r = MultiClassReport::from(&[], &[]).unwrap();
        assert!(r.classes.is_empty());
        assert_eq!(r.accuracy, None);
        assert_eq!(r.macro_avg.f1, 0.0);
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        assert!(MultiClassReport::from(&s(&["a"]), &[]).is_err());
    }
}
