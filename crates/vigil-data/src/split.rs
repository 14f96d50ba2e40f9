//! Deterministic, leak-proof splits.
//!
//! Each row's split comes from hashing its `group_id` (SHA-256 of `salt` + group, first 8
//! bytes as a fraction in [0, 1), compared with the cumulative fractions), so a vulnerable
//! sample, its fixed twin and every mutation of one template instance always land together.
//! Only rows without a split are assigned: adding rows never moves old ones. A new row whose
//! group already has a split joins it, whatever the hash says (so a group never straddles).

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
    /// New rows that joined their group's existing split.
    pub joined_group: usize,
    pub counts: [usize; 3],
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
