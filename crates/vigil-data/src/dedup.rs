//! Exact and near-duplicate detection.
//!
//! Exact: xxh3 of the normalised input text ([`normalized_hash`]): lower case, whitespace
//! runs collapsed.
//!
//! Near: MinHash over token 5-shingles plus banded LSH ([`NearDupIndex`]). Written by hand
//! because it is ~100 lines, and the crates that offer it either pull in a large dependency
//! tree or fix a tokenisation that does not suit code (we want punctuation as tokens, so
//! `a+b` and `a, b` differ, and identifiers intact). Candidates from LSH are confirmed by the
//! MinHash estimate of Jaccard similarity against a threshold (default 0.8).

use std::collections::HashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Number of MinHash permutations.
pub const NUM_PERM: usize = 128;
/// LSH bands × rows = NUM_PERM. 32 × 4 catches pairs from Jaccard ≈ 0.45 upward with high
/// probability; the confirmation step then applies the real threshold.
pub const BANDS: usize = 32;
const ROWS: usize = NUM_PERM / BANDS;
/// Shingle size in tokens.
pub const SHINGLE: usize = 5;

/// Lower-case tokens: identifier/number runs and single punctuation characters.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            cur.extend(c.to_lowercase());
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Hash of the text with case and whitespace normalised.
pub fn normalized_hash(text: &str) -> u64 {
    let mut norm = String::with_capacity(text.len());
    for w in text.split_whitespace() {
        if !norm.is_empty() {
            norm.push(' ');
        }
        norm.push_str(&w.to_lowercase());
    }
    xxh3_64(norm.as_bytes())
}

/// Hashed shingles of a text (deduplicated).
pub fn shingles(text: &str, k: usize) -> Vec<u64> {
    let toks = tokens(text);
    let mut out: Vec<u64> = if toks.len() < k {
        vec![xxh3_64(toks.join(" ").as_bytes())]
    } else {
        toks.windows(k)
            .map(|w| xxh3_64(w.join(" ").as_bytes()))
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Exact Jaccard similarity of two shingle sets (sorted, deduplicated).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// A MinHash signature.
pub type Signature = [u64; NUM_PERM];

/// MinHash signature of a shingle set: for each permutation i, the minimum of a seeded
/// re-hash of every shingle.
pub fn signature(shingles: &[u64]) -> Signature {
    let mut sig = [u64::MAX; NUM_PERM];
    for &s in shingles {
        let bytes = s.to_le_bytes();
        for (i, slot) in sig.iter_mut().enumerate() {
            let h = xxh3_64_with_seed(&bytes, i as u64);
            if h < *slot {
                *slot = h;
            }
        }
    }
    sig
}

/// Fraction of agreeing slots: an unbiased estimate of Jaccard similarity.
pub fn estimate(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b.iter()).filter(|(x, y)| x == y).count() as f64 / NUM_PERM as f64
}

/// MinHash + LSH index over items identified by `usize`.
#[derive(Default)]
pub struct NearDupIndex {
    sigs: Vec<Signature>,
    buckets: Vec<HashMap<u64, Vec<usize>>>,
}

impl NearDupIndex {
    pub fn new() -> Self {
        NearDupIndex {
            sigs: Vec::new(),
            buckets: (0..BANDS).map(|_| HashMap::new()).collect(),
        }
    }

    /// Add a text; returns its index.
    pub fn add(&mut self, text: &str) -> usize {
        let sig = signature(&shingles(text, SHINGLE));
        let idx = self.sigs.len();
        for (b, bucket) in self.buckets.iter_mut().enumerate() {
            let band = &sig[b * ROWS..(b + 1) * ROWS];
            let mut key = [0u8; ROWS * 8];
            for (i, v) in band.iter().enumerate() {
                key[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            bucket.entry(xxh3_64(&key)).or_default().push(idx);
        }
        self.sigs.push(sig);
        idx
    }

    pub fn len(&self) -> usize {
        self.sigs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sigs.is_empty()
    }

    pub fn signature(&self, i: usize) -> &Signature {
        &self.sigs[i]
    }

    /// All pairs (i < j) whose estimated Jaccard is at least `threshold`, with the estimate.
    /// `keep(i, j)` filters candidate pairs before they are scored (e.g. skip same group).
    pub fn pairs(
        &self,
        threshold: f64,
        mut keep: impl FnMut(usize, usize) -> bool,
    ) -> Vec<(usize, usize, f64)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for bucket in &self.buckets {
            for members in bucket.values() {
                if members.len() < 2 {
                    continue;
                }
                for (a, &i) in members.iter().enumerate() {
                    for &j in &members[a + 1..] {
                        let key = (i.min(j), i.max(j));
                        if !seen.insert(key) || !keep(key.0, key.1) {
                            continue;
                        }
                        let e = estimate(&self.sigs[key.0], &self.sigs[key.1]);
                        if e >= threshold {
                            out.push((key.0, key.1, e));
                        }
                    }
                }
            }
        }
        out.sort_by_key(|a| (a.0, a.1));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates_found_and_distinct_texts_not() {
        let a = "def get_user(user_id):\n    row = db.execute('SELECT * FROM users WHERE id = ?', (user_id,))\n    return jsonify(row)\n# comment about the handler and its behaviour in production systems";
        let b = a.replace("comment", "remark"); // one-token edit
        let c = "func main() { fmt.Println(\"totally different program text here\") ; os.Exit(3) }";
        let mut idx = NearDupIndex::new();
        idx.add(a);
        idx.add(&b);
        idx.add(c);
        let pairs = idx.pairs(0.6, |_, _| true);
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!((pairs[0].0, pairs[0].1), (0, 1));
        let ja = jaccard(&shingles(a, SHINGLE), &shingles(&b, SHINGLE));
        assert!(
            (pairs[0].2 - ja).abs() < 0.2,
            "estimate {} vs exact {ja}",
            pairs[0].2
        );
    }

    #[test]
    fn normalized_hash_ignores_case_and_spacing() {
        assert_eq!(
            normalized_hash("SELECT  *\nFROM t"),
            normalized_hash("select * from t")
        );
        assert_ne!(
            normalized_hash("select * from t"),
            normalized_hash("select * from u")
        );
    }
}
