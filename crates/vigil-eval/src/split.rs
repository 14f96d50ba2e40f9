//! Group-aware, seeded, deterministic splits: [`k_fold_by_group`] for k-fold cross
//! validation and [`holdout_split_by_group`] for the seed's 80/20 train/validation split.
//!
//! A group (for example a vulnerable endpoint and its fixed twin, or every sample scraped
//! from one report) always lands wholly on one side, so near-identical samples cannot leak
//! from training into validation. Group order comes from a seeded 64-bit hash of the group
//! name (FNV-1a then the SplitMix64 finaliser), not from a random-number generator, so a
//! split is the same on every platform and every version of `rand`.

use crate::error::{EvalError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One fold: sample ids used for training and for testing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub train: Vec<String>,
    pub test: Vec<String>,
}

/// The seed's split: ~80 % of samples for training, ~20 % held out.
pub const SEED_TEST_FRACTION: f64 = 0.2;

fn seeded_hash(seed: u64, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // SplitMix64 finaliser: spreads FNV's weak low bits.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Groups with their member ids (in input order), sorted by the seeded hash of the group.
fn grouped(ids: &[String], groups: &[String], seed: u64) -> Result<Vec<(String, Vec<String>)>> {
    if ids.len() != groups.len() {
        return Err(EvalError::LengthMismatch {
            what: "groups (one per sample id)",
            expected: ids.len(),
            got: groups.len(),
        });
    }
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(EvalError::InvalidArgument(format!(
                "sample id {id:?} appears more than once"
            )));
        }
    }
    let mut by_group: BTreeMap<&String, Vec<String>> = BTreeMap::new();
    for (id, g) in ids.iter().zip(groups) {
        by_group.entry(g).or_default().push(id.clone());
    }
    let mut out: Vec<(String, Vec<String>)> = by_group
        .into_iter()
        .map(|(g, members)| (g.clone(), members))
        .collect();
    // Name breaks the (astronomically unlikely) hash tie so the order is total.
    out.sort_by(|a, b| {
        seeded_hash(seed, &a.0)
            .cmp(&seeded_hash(seed, &b.0))
            .then_with(|| a.0.cmp(&b.0))
    });
    Ok(out)
}

/// Splits samples into `k` folds so that no group crosses folds. Fold `i`'s `test` holds the
/// samples assigned to it and its `train` everything else.
///
/// Assignment: groups are taken largest first (ties in the seeded-hash order) and each goes
/// to the fold holding the fewest samples so far (lowest index on a tie), which balances the
/// folds. Needs `k ≥ 2` and at least `k` groups.
pub fn k_fold_by_group(
    ids: &[String],
    groups: &[String],
    k: usize,
    seed: u64,
) -> Result<Vec<Fold>> {
    if k < 2 {
        return Err(EvalError::InvalidArgument(format!(
            "k-fold needs k >= 2, got {k}"
        )));
    }
    let mut gs = grouped(ids, groups, seed)?;
    if gs.len() < k {
        return Err(EvalError::NotEnoughData(format!(
            "{k}-fold split needs at least {k} groups, got {}",
            gs.len()
        )));
    }
    // Stable sort keeps the seeded order among groups of equal size.
    gs.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    let mut fold_of_group: Vec<Vec<&String>> = vec![Vec::new(); k];
    let mut sizes = vec![0usize; k];
    let mut assignment: BTreeMap<&str, usize> = BTreeMap::new();
    for (g, members) in &gs {
        let f = (0..k).min_by_key(|&f| (sizes[f], f)).expect("k >= 2");
        sizes[f] += members.len();
        fold_of_group[f].push(g);
        assignment.insert(g.as_str(), f);
    }
    let mut folds: Vec<Fold> = (0..k)
        .map(|_| Fold {
            train: Vec::new(),
            test: Vec::new(),
        })
        .collect();
    // Walk the input so ids keep their input order inside each fold.
    for (id, g) in ids.iter().zip(groups) {
        let home = assignment[g.as_str()];
        for (f, fold) in folds.iter_mut().enumerate() {
            if f == home {
                fold.test.push(id.clone());
            } else {
                fold.train.push(id.clone());
            }
        }
    }
    Ok(folds)
}

/// A train/test split by group with about `test_fraction` of the samples held out (the
/// seed's 80/20 with [`SEED_TEST_FRACTION`]).
///
/// Groups are visited in seeded-hash order and go to test until the test side holds at
/// least `round(test_fraction · n)` samples; both sides get at least one group when there
/// are two or more. Needs `0 < test_fraction < 1` and at least two groups.
pub fn holdout_split_by_group(
    ids: &[String],
    groups: &[String],
    test_fraction: f64,
    seed: u64,
) -> Result<Fold> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(EvalError::InvalidArgument(format!(
            "test fraction must be in (0, 1), got {test_fraction}"
        )));
    }
    let gs = grouped(ids, groups, seed)?;
    if gs.len() < 2 {
        return Err(EvalError::NotEnoughData(format!(
            "a train/test split needs at least 2 groups, got {}",
            gs.len()
        )));
    }
    let target = ((test_fraction * ids.len() as f64).round() as usize).max(1);
    let mut test_groups = HashSet::new();
    let mut taken = 0;
    for (g, members) in &gs[..gs.len() - 1] {
        if taken >= target {
            break;
        }
        taken += members.len();
        test_groups.insert(g.as_str());
    }
    let mut fold = Fold {
        train: Vec::new(),
        test: Vec::new(),
    };
    for (id, g) in ids.iter().zip(groups) {
        if test_groups.contains(g.as_str()) {
            fold.test.push(id.clone());
        } else {
            fold.train.push(id.clone());
        }
    }
    Ok(fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: impl IntoIterator<Item = impl ToString>) -> Vec<String> {
        v.into_iter().map(|x| x.to_string()).collect()
    }

    /// 20 samples in 8 groups of uneven size (g0 has 5 members, g1 4, …).
    fn sample_set() -> (Vec<String>, Vec<String>) {
        let sizes = [5, 4, 3, 2, 2, 2, 1, 1];
        let mut ids = Vec::new();
        let mut groups = Vec::new();
        for (g, &n) in sizes.iter().enumerate() {
            for j in 0..n {
                ids.push(format!("s{g}_{j}"));
                groups.push(format!("g{g}"));
            }
        }
        (ids, groups)
    }

    fn group_of(ids: &[String], groups: &[String], id: &str) -> String {
        groups[ids.iter().position(|x| x == id).unwrap()].clone()
    }

    #[test]
    fn k_fold_keeps_groups_whole_and_covers_every_sample_once() {
        let (ids, groups) = sample_set();
        let folds = k_fold_by_group(&ids, &groups, 3, 7).unwrap();
        assert_eq!(folds.len(), 3);
        let mut all_test: Vec<String> = folds.iter().flat_map(|f| f.test.clone()).collect();
        all_test.sort();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(all_test, sorted, "each sample is tested exactly once");
        for f in &folds {
            assert_eq!(f.train.len() + f.test.len(), ids.len());
            let test_groups: HashSet<String> = f
                .test
                .iter()
                .map(|id| group_of(&ids, &groups, id))
                .collect();
            for id in &f.train {
                assert!(
                    !test_groups.contains(&group_of(&ids, &groups, id)),
                    "{id} leaks"
                );
            }
        }
        // Greedy largest-first over sizes 5,4,3,2,2,2,1,1 (20 samples) into 3 folds:
        // 5→A(5), 4→B(4), 3→C(3), 2→C(5), 2→B(6), 2→A(7), 1→C(6), 1→B(7): sizes 7, 7, 6.
        let mut sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
        sizes.sort();
        assert_eq!(sizes, [6, 7, 7]);
    }

    #[test]
    fn k_fold_is_deterministic_and_seed_dependent() {
        let (ids, groups) = sample_set();
        let a = k_fold_by_group(&ids, &groups, 4, 1).unwrap();
        let b = k_fold_by_group(&ids, &groups, 4, 1).unwrap();
        assert_eq!(a, b);
        let differs = (2..20).any(|s| k_fold_by_group(&ids, &groups, 4, s).unwrap() != a);
        assert!(differs, "some other seed must give another assignment");
    }

    #[test]
    fn k_fold_rejects_bad_input() {
        let (ids, groups) = sample_set();
        assert!(k_fold_by_group(&ids, &groups, 1, 0).is_err());
        assert!(k_fold_by_group(&ids, &groups, 9, 0).is_err()); // only 8 groups
        assert!(k_fold_by_group(&ids, &groups[1..], 2, 0).is_err());
        let dup = strings(["a", "a"]);
        assert!(k_fold_by_group(&dup, &strings(["x", "y"]), 2, 0).is_err());
    }

    #[test]
    fn holdout_is_about_twenty_percent_and_group_safe() {
        // 100 samples in 50 pairs: target round(0.2·100) = 20, groups are size 2, so the
        // test side gets exactly 20 samples (10 pairs).
        let ids = strings((0..100).map(|i| format!("id{i}")));
        let groups = strings((0..100).map(|i| format!("pair{}", i / 2)));
        let f = holdout_split_by_group(&ids, &groups, SEED_TEST_FRACTION, 42).unwrap();
        assert_eq!(f.test.len(), 20);
        assert_eq!(f.train.len(), 80);
        let test_groups: HashSet<String> = f
            .test
            .iter()
            .map(|id| group_of(&ids, &groups, id))
            .collect();
        assert!(f
            .train
            .iter()
            .all(|id| !test_groups.contains(&group_of(&ids, &groups, id))));
        assert_eq!(f, holdout_split_by_group(&ids, &groups, 0.2, 42).unwrap());
    }

    #[test]
    fn holdout_keeps_a_train_side_with_two_groups() {
        // Two groups of 1: target round(0.9·2) = 2, but the last group stays in train.
        let f = holdout_split_by_group(&strings(["a", "b"]), &strings(["x", "y"]), 0.9, 0).unwrap();
        assert_eq!((f.train.len(), f.test.len()), (1, 1));
        assert!(holdout_split_by_group(&strings(["a"]), &strings(["x"]), 0.2, 0).is_err());
        assert!(
            holdout_split_by_group(&strings(["a", "b"]), &strings(["x", "y"]), 1.0, 0).is_err()
        );
    }
}
