//! [`cross_validate`]: k-fold estimates of a binary head on cached features. Each fold is
//! held out once; the next fold (cyclically) validates — early stopping and the
//! precision-first threshold — and the rest trains, so no held-out sample ever chooses a
//! threshold or an epoch.

use crate::error::{HeadError, Result};
use crate::mlp::{train_head, HeadTrainConfig, Thresholds};

/// The held-out answer for one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldPrediction {
    pub fold: usize,
    /// Probability of the positive class from the head that did not see this sample.
    pub probability: f32,
    /// That head's calibrated threshold.
    pub threshold: f32,
}

/// Runs k-fold cross-validation of a binary head. `folds[i]` is sample i's fold in
/// `0..k` (assign whole groups to one fold so twins never straddle train and test).
pub fn cross_validate(
    features: &[Vec<f32>],
    labels: &[bool],
    folds: &[usize],
    cfg: &HeadTrainConfig,
    target_precision: f32,
) -> Result<Vec<FoldPrediction>> {
    let k = folds.iter().max().map_or(0, |m| m + 1);
    if k < 3 {
        return Err(HeadError::Invalid(format!(
            "cross-validation needs 3 folds at least (one to test, one to validate, one to \
             train); got {k}"
        )));
    }
    if features.len() != labels.len() || labels.len() != folds.len() {
        return Err(HeadError::Invalid(
            "features, labels and folds differ in count".into(),
        ));
    }
    let mut out = vec![None; features.len()];
    for test in 0..k {
        let valid = (test + 1) % k;
        let pick = |f: &dyn Fn(usize) -> bool| -> (Vec<Vec<f32>>, Vec<usize>, Vec<usize>) {
            let idx: Vec<usize> = (0..folds.len()).filter(|&i| f(folds[i])).collect();
            let x = idx.iter().map(|&i| features[i].clone()).collect();
            let y = idx.iter().map(|&i| labels[i] as usize).collect();
            (x, y, idx)
        };
        let (tx, ty, _) = pick(&|f| f != test && f != valid);
        let (vx, vy, _) = pick(&|f| f == valid);
        let (hx, _, hidx) = pick(&|f| f == test);
        if hx.is_empty() {
            continue;
        }
        let (head, _) = train_head(&tx, &ty, &vx, &vy, 2, cfg)?;
        let vp: Vec<f32> = head.probabilities(&vx)?.iter().map(|p| p[1]).collect();
        let vl: Vec<bool> = vy.iter().map(|&y| y == 1).collect();
        let threshold = Thresholds::calibrate(&vp, &vl, target_precision).chosen;
        for (row, &i) in head.probabilities(&hx)?.iter().zip(&hidx) {
            out[i] = Some(FoldPrediction {
                fold: test,
                probability: row[1],
                threshold,
            });
        }
    }
    Ok(out
        .into_iter()
        .map(|p| p.expect("every fold is held out once"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize, shuffle: bool) -> (Vec<Vec<f32>>, Vec<bool>) {
        // Two Gaussian-ish clouds on a deterministic LCG; labels follow the cloud, or a
        // fixed pseudo-random pattern unrelated to the features when `shuffle`.
        let mut s = 12345u64;
        let mut r = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 2 == 0;
            let base = if c { 1.0 } else { -1.0 };
            x.push((0..8).map(|_| base + r()).collect());
            y.push(if shuffle { r() > 0.0 } else { c });
        }
        (x, y)
    }

    #[test]
    fn every_sample_is_predicted_by_a_head_that_never_saw_it() {
        let (x, y) = blobs(120, false);
        let folds: Vec<usize> = (0..120).map(|i| (i / 2) % 5).collect();
        let cfg = HeadTrainConfig {
            epochs: 40,
            ..Default::default()
        };
        let p = cross_validate(&x, &y, &folds, &cfg, 0.95).unwrap();
        assert_eq!(p.len(), 120);
        assert!(p.iter().zip(&folds).all(|(p, &f)| p.fold == f));
        let correct = p
            .iter()
            .zip(&y)
            .filter(|(p, &l)| (p.probability >= p.threshold) == l)
            .count();
        assert!(correct >= 110, "separable data: {correct}/120");
    }

    #[test]
    fn shuffled_labels_stay_near_chance() {
        let (x, y) = blobs(200, true);
        let folds: Vec<usize> = (0..200).map(|i| i % 5).collect();
        let cfg = HeadTrainConfig {
            epochs: 40,
            ..Default::default()
        };
        let p = cross_validate(&x, &y, &folds, &cfg, 0.95).unwrap();
        let correct = p
            .iter()
            .zip(&y)
            .filter(|(p, &l)| (p.probability >= 0.5) == l)
            .count();
        assert!((60..=140).contains(&correct), "{correct}/200");
    }

    #[test]
    fn too_few_folds_is_an_error() {
        let (x, y) = blobs(10, false);
        let folds = vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        let cfg = HeadTrainConfig::default();
        assert!(cross_validate(&x, &y, &folds, &cfg, 0.95).is_err());
    }
}
