//! Seeded percentile-bootstrap confidence intervals for precision, recall and accuracy, so
//! that a metric on a small held-out split is reported with its uncertainty.
//!
//! Method: draw `resamples` samples of size n with replacement from the (label, prediction)
//! pairs, recompute the metric on each, and take the empirical `(1−level)/2` and
//! `(1+level)/2` quantiles (linear interpolation between order statistics). A resample on
//! which the metric is undefined (e.g. no positive prediction for precision) is skipped;
//! `resamples_used` says how many counted.

use crate::binary::BinaryMetrics;
use crate::error::{EvalError, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A two-sided interval at confidence `level`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    pub level: f64,
    pub resamples_used: usize,
}

/// Bootstrap intervals; `None` where the metric was undefined on every resample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCis {
    pub precision: Option<Interval>,
    pub recall: Option<Interval>,
    pub accuracy: Option<Interval>,
}

/// The `q`-quantile of sorted `v` (0 ≤ q ≤ 1) by linear interpolation between the order
/// statistics at positions `q·(n−1)` (Hyndman–Fan type 7).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    Some(sorted[i] + frac * (next - sorted[i]))
}

/// Percentile-bootstrap intervals of precision, recall and accuracy at `level` (e.g. 0.95),
/// reproducible for a given `seed`. Needs `resamples ≥ 1` and `0 < level < 1`; an empty
/// input gives no intervals.
pub fn bootstrap_cis(
    labels: &[bool],
    predictions: &[bool],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Result<BootstrapCis> {
    // Validates the lengths.
    BinaryMetrics::from(labels, predictions)?;
    if resamples == 0 {
        return Err(EvalError::InvalidArgument(
            "bootstrap needs at least one resample".into(),
        ));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(EvalError::InvalidArgument(format!(
            "confidence level must be in (0, 1), got {level}"
        )));
    }
    let n = labels.len();
    let empty = BootstrapCis {
        precision: None,
        recall: None,
        accuracy: None,
    };
    if n == 0 {
        return Ok(empty);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut p, mut r, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..resamples {
        let m = BinaryMetrics::from_pairs((0..n).map(|_| {
            let i = rng.random_range(0..n);
            (labels[i], predictions[i])
        }));
        p.extend(m.precision());
        r.extend(m.recall());
        a.extend(m.accuracy());
    }
    let interval = |mut v: Vec<f64>| -> Option<Interval> {
        v.sort_by(f64::total_cmp);
        Some(Interval {
            lo: quantile(&v, (1.0 - level) / 2.0)?,
            hi: quantile(&v, (1.0 + level) / 2.0)?,
            level,
            resamples_used: v.len(),
        })
    };
    Ok(BootstrapCis {
        precision: interval(p),
        recall: interval(r),
        accuracy: interval(a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_between_order_statistics() {
        // [1, 2, 3, 4]: q 0.5 → position 1.5 → 2 + 0.5·(3−2) = 2.5
        //               q 0.25 → position 0.75 → 1 + 0.75·1 = 1.75
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn perfect_predictions_give_a_degenerate_interval() {
        // Every resample of all-correct pairs has accuracy 1, so the interval is [1, 1].
        // Precision is undefined on resamples that drew no positive and those are skipped.
        let labels = [true, false, true, false, true];
        let cis = bootstrap_cis(&labels, &labels, 200, 0.95, 3).unwrap();
        let acc = cis.accuracy.unwrap();
        assert_eq!((acc.lo, acc.hi, acc.resamples_used), (1.0, 1.0, 200));
        let p = cis.precision.unwrap();
        assert_eq!((p.lo, p.hi), (1.0, 1.0));
        // P(no positive in a resample) = (2/5)^5 ≈ 1 % → close to, but at most, 200 used.
        assert!(p.resamples_used <= 200 && p.resamples_used > 180);
    }

    #[test]
    fn intervals_are_seeded_and_cover_the_estimate() {
        // 20 samples, accuracy 14/20 = 0.7.
        let labels: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        let preds: Vec<bool> = (0..20)
            .map(|i| if i < 6 { i % 2 != 0 } else { i % 2 == 0 })
            .collect();
        assert_eq!(
            BinaryMetrics::from(&labels, &preds).unwrap().accuracy(),
            Some(0.7)
        );
        let a = bootstrap_cis(&labels, &preds, 500, 0.9, 11).unwrap();
        let b = bootstrap_cis(&labels, &preds, 500, 0.9, 11).unwrap();
        assert_eq!(a, b, "same seed, same intervals");
        let acc = a.accuracy.unwrap();
        assert!(acc.lo < 0.7 && 0.7 < acc.hi, "{acc:?}");
        // On 20 samples the 90 % interval must be wide: the binomial standard error is
        // sqrt(0.7·0.3/20) ≈ 0.10, so ±1.645·0.10 ≈ 0.17 on each side.
        assert!(acc.hi - acc.lo > 0.2, "{acc:?}");
        let c = bootstrap_cis(&labels, &preds, 500, 0.9, 12).unwrap();
        assert_ne!(a, c, "another seed draws other resamples");
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(bootstrap_cis(&[true], &[true], 0, 0.95, 0).is_err());
        assert!(bootstrap_cis(&[true], &[true], 10, 1.0, 0).is_err());
        assert!(bootstrap_cis(&[true], &[], 10, 0.95, 0).is_err());
        assert_eq!(bootstrap_cis(&[], &[], 10, 0.95, 0).unwrap().accuracy, None);
    }
}
