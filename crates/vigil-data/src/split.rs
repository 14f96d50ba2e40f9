//! Deterministic, leak-proof splits.
//!
//! Each row's split comes from hashing its `group_id` (SHA-256 of `salt` + group, first 8
//! bytes as a fraction in [0, 1), compared with the cumulative fractions), so a vulnerable
//! sample, its fixed twin and every mutation of one template instance always land together.
//! Only rows without a split are assigned: adding rows never moves old ones. A new row whose
//! group already has a split joins it, whatever the hash says (so a group never straddles).
//!
//! With `near_dup` set (the CLI default), groups whose inputs are exact or near-duplicates of
//! each other (MinHash, [`crate::dedup`]) are merged into one component first (union-find),
//! and the whole component takes one split: the split of its earliest already-assigned row,
//! else the hash of its smallest group id. Near-duplicates therefore never straddle splits,
//! which is what makes `vigil data check` report zero leakage for generated data.

use crate::error::{DataError, Result};
use crate::sample::Split;
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Split fractions; they must be non-negative and sum to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fractions {
    pub train: f64,
    pub valid: f64,
    pub test: f64,
}

impl Default for Fractions {
    fn default() -> Self {
        Fractions {
            train: 0.8,
            valid: 0.1,
            test: 0.1,
        }
    }
}

impl Fractions {
    pub fn new(train: f64, valid: f64, test: f64) -> Result<Fractions> {
        let f = Fractions { train, valid, test };
        if [train, valid, test]
            .iter()
            .any(|x| !x.is_finite() || *x < 0.0)
            || (train + valid + test - 1.0).abs() > 1e-6
        {
            return Err(DataError::Other(format!(
                "split fractions must be ≥ 0 and sum to 1 (got {train} + {valid} + {test})"
            )));
        }
        Ok(f)
    }
}

/// Position of a group in [0, 1).
pub fn group_position(salt: &str, group_id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(group_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The split a group gets.
pub fn split_for(salt: &str, group_id: &str, f: &Fractions) -> Split {
    let x = group_position(salt, group_id);
    if x < f.train {
        Split::Train
    } else if x < f.train + f.valid {
        Split::Valid
    } else {
        Split::Test
    }
}

/// What [`assign`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitStats {
    pub assigned: usize,
    pub already: usize,
    /// New rows that joined their group's (or near-duplicate component's) existing split.
    pub joined_group: usize,
    pub counts: [usize; 3],
    /// Groups merged with another group because their inputs are near-duplicates.
    pub merged_groups: usize,
    /// Rows in the largest near-duplicate component.
    pub largest_component: usize,
    /// Components whose old rows already sit in different splits (earlier leakage that a
    /// split never repairs by moving rows; `--reset` does).
    pub conflicts: usize,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Assign splits to rows that have none, keeping near-duplicate groups together.
/// `near_dup`: Jaccard threshold (e.g. 0.8); `None` splits by group hash alone.
pub fn assign_with(
    store: &mut Store,
    fractions: &Fractions,
    salt: &str,
    near_dup: Option<f64>,
) -> Result<SplitStats> {
    let Some(threshold) = near_dup else {
        return assign(store, fractions, salt);
    };
    // stream the rows: keep only (id, group, split) and the MinHash index, not the texts
    struct Row {
        id: i64,
        group_id: String,
        split: Option<Split>,
    }
    let mut samples: Vec<Row> = Vec::new();
    let mut idx = crate::dedup::NearDupIndex::new();
    store.for_each(&crate::store::Filter::default(), |s| {
        idx.add(&s.input_text());
        samples.push(Row {
            id: s.id.unwrap_or_default(),
            group_id: s.group_id,
            split: s.split,
        });
        Ok(())
    })?;
    let n = samples.len();
    // union-find over rows; rows of one group and near-duplicate rows are joined
    let mut parent: Vec<usize> = (0..n).collect();
    let mut first_of_group: HashMap<&str, usize> = HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        if let Some(&j) = first_of_group.get(s.group_id.as_str()) {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            parent[a.max(b)] = a.min(b);
        } else {
            first_of_group.insert(s.group_id.as_str(), i);
        }
    }
    let mut stats = SplitStats::default();
    for (i, j, _) in idx.pairs(threshold, |i, j| samples[i].group_id != samples[j].group_id) {
        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
        if a != b {
            parent[a.max(b)] = a.min(b);
            stats.merged_groups += 1;
        }
    }
    // per component: split of the earliest assigned row, else hash of the smallest group id
    let mut comp_split: HashMap<usize, Split> = HashMap::new();
    let mut comp_splits_seen: HashMap<usize, std::collections::BTreeSet<Split>> = HashMap::new();
    let mut comp_min_group: HashMap<usize, &str> = HashMap::new();
    let mut comp_size: HashMap<usize, usize> = HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        let r = find(&mut parent, i);
        *comp_size.entry(r).or_default() += 1;
        let g = comp_min_group.entry(r).or_insert(s.group_id.as_str());
        if s.group_id.as_str() < *g {
            *g = s.group_id.as_str();
        }
        if let Some(sp) = s.split {
            comp_split.entry(r).or_insert(sp); // rows come in id order: earliest wins
            comp_splits_seen.entry(r).or_default().insert(sp);
        }
    }
    stats.largest_component = comp_size.values().copied().max().unwrap_or(0);
    stats.conflicts = comp_splits_seen.values().filter(|v| v.len() > 1).count();
    let mut todo = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let sp = match s.split {
            Some(sp) => {
                stats.already += 1;
                sp
            }
            None => {
                let r = find(&mut parent, i);
                let sp = match comp_split.get(&r) {
                    Some(sp) => {
                        stats.joined_group += 1;
                        *sp
                    }
                    None => split_for(salt, comp_min_group[&r], fractions),
                };
                todo.push((s.id, sp));
                stats.assigned += 1;
                sp
            }
        };
        stats.counts[sp as usize] += 1;
    }
    store.set_splits(&todo)?;
    store.record_run(
        "split",
        &serde_json::json!({"train": fractions.train, "valid": fractions.valid, "test": fractions.test, "salt": salt, "near_dup": threshold}).to_string(),
        todo.len(),
    )?;
    Ok(stats)
}

/// Assign splits to every row that has none.
pub fn assign(store: &mut Store, fractions: &Fractions, salt: &str) -> Result<SplitStats> {
    let keys = store.split_keys()?;
    let mut group_split: HashMap<&str, Split> = HashMap::new();
    for (_, g, s) in &keys {
        if let Some(s) = s {
            group_split.entry(g.as_str()).or_insert(*s);
        }
    }
    let mut stats = SplitStats::default();
    let mut todo = Vec::new();
    for (id, g, s) in &keys {
        let s = match s {
            Some(s) => {
                stats.already += 1;
                *s
            }
            None => {
                let s = match group_split.get(g.as_str()) {
                    Some(s) => {
                        stats.joined_group += 1;
                        *s
                    }
                    None => split_for(salt, g, fractions),
                };
                todo.push((*id, s));
                stats.assigned += 1;
                s
            }
        };
        stats.counts[s as usize] += 1;
    }
    store.set_splits(&todo)?;
    store.record_run(
        "split",
        &serde_json::json!({"train": fractions.train, "valid": fractions.valid, "test": fractions.test, "salt": salt}).to_string(),
        todo.len(),
    )?;
    Ok(stats)
}
