//! `Sampler`: turns a row of logits into the next token.
//!
//! The chain is llama.cpp's order: repetition penalty → top-k → top-p → min-p →
//! temperature → draw. Temperature 0 is greedy (argmax after the penalty). A seeded RNG
//! makes sampled runs repeatable.

use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p (1.0 = off).
    pub top_p: f32,
    /// Drop tokens less likely than min_p × the most likely one (0 = off).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recently seen tokens (1.0 = off).
    pub repetition_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

pub struct Sampler {
    pub params: SamplingParams,
    rng: StdRng,
    /// The adjusted logits (penalties, bans), kept between calls rather than allocated
    /// anew for every token: a vocabulary is 50–250 thousand values.
    scratch: Vec<f32>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Self {
        let rng = StdRng::seed_from_u64(params.seed);
        Sampler {
            params,
            rng,
            scratch: Vec::new(),
        }
    }

    /// Picks a token. `history` feeds the repetition penalty; `banned` tokens are never
    /// picked (used to forbid end-of-sequence below a minimum length).
    pub fn sample(&mut self, logits: &[f32], history: &[u32], banned: &[u32]) -> u32 {
        let p = &self.params;
        if p.temperature <= 0.0 && p.repetition_penalty == 1.0 && banned.is_empty() {
            return argmax(logits); // greedy with nothing to adjust: no copy
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend_from_slice(logits);
        let token = self.pick(&mut scratch, history, banned);
        self.scratch = scratch;
        token
    }

    /// [`Sampler::sample`] for a caller whose logits are its own scratch: they are
    /// adjusted in place (penalties, bans) rather than copied first.
    pub fn sample_in_place(&mut self, logits: &mut [f32], history: &[u32], banned: &[u32]) -> u32 {
        self.pick(logits, history, banned)
    }

    /// [`Sampler::sample`] on `logits`, which it may change.
    fn pick(&mut self, logits: &mut [f32], history: &[u32], banned: &[u32]) -> u32 {
        let p = &self.params;
        for &b in banned {
            if let Some(l) = logits.get_mut(b as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        if p.repetition_penalty != 1.0 {
            let start = history.len().saturating_sub(p.repeat_last_n);
            let mut seen = history[start..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 {
                        *l / p.repetition_penalty
                    } else {
                        *l * p.repetition_penalty
                    };
                }
            }
        }
        if p.temperature <= 0.0 {
            return argmax(logits);
        }
        // Candidates sorted by logit, most likely first.
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if cand.is_empty() {
            return argmax(logits);
        }
        cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if p.top_k > 0 && p.top_k < cand.len() {
            cand.truncate(p.top_k);
        }
        if p.top_p < 1.0 {
            let probs = softmax(&cand, 1.0);
            let mut acc = 0.0;
            let keep = probs
                .iter()
                .position(|&q| {
                    acc += q;
                    acc >= p.top_p
                })
                .map_or(cand.len(), |i| i + 1);
            cand.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            let max = cand[0].1;
            // p_i / p_max = exp(l_i - l_max) ≥ min_p
            let floor = max + p.min_p.ln();
            let keep = cand.iter().take_while(|c| c.1 >= floor).count();
            cand.truncate(keep.max(1));
        }
        let probs = softmax(&cand, p.temperature);
        match WeightedIndex::new(&probs) {
            Ok(dist) => cand[dist.sample(&mut self.rng)].0,
            Err(_) => cand[0].0,
        }
    }
}

/// Index of the largest value (the first one on ties, like llama.cpp's greedy sampler);
/// NaN is never the largest, and 0 is the answer when nothing is larger than −∞.
pub fn argmax(values: &[f32]) -> u32 {
    // Two passes the compiler vectorises, the maximum in 16 independent lanes, then the
    // first chunk holding it (a vocabulary is 50–250 thousand logits, scanned once per
    // generated token; one scalar compare-and-branch chain took ~1 ns a logit).
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            // `>` is false for NaN, which therefore never becomes a lane's maximum.
            *m = if v > *m { v } else { *m };
        }
    }
    let max = lanes
        .into_iter()
        .chain(tail.iter().copied())
        .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m });
    if max == f32::NEG_INFINITY {
        return 0;
    }
    let chunk = values
        .chunks(LANES)
        .position(|c| c.iter().fold(false, |hit, &v| hit | (v == max)))
        .expect("the maximum is one of the values");
    let within = values[chunk * LANES..]
        .iter()
        .position(|&v| v == max)
        .expect("found in this chunk");
    (chunk * LANES + within) as u32
}

fn softmax(cand: &[(u32, f32)], temperature: f32) -> Vec<f32> {
    let max = cand[0].1;
    let exps: Vec<f32> = cand
        .iter()
        .map(|c| ((c.1 - max) / temperature).exp())
        .collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(f: impl FnOnce(&mut SamplingParams)) -> Sampler {
        let mut p = SamplingParams::default();
        f(&mut p);
        Sampler::new(p)
    }

    #[test]
    fn argmax_finds_the_first_largest_anywhere_and_never_nan() {
        // Lengths around the 16-lane chunks, the maximum in every position, ties after it.
        for n in [1, 15, 16, 17, 33, 100] {
            for at in 0..n {
                let mut v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
                v[at] = 10.0;
                for tie in at + 1..n {
                    let mut t = v.clone();
                    t[tie] = 10.0;
                    assert_eq!(argmax(&t), at as u32, "n {n}, max at {at}, tie at {tie}");
                }
                assert_eq!(argmax(&v), at as u32, "n {n}, max at {at}");
            }
        }
        assert_eq!(argmax(&[f32::NAN, 1.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 40]), 0);
        assert_eq!(argmax(&[]), 0);
        let mut v = vec![f32::NEG_INFINITY; 40];
        v[39] = -1e30;
        assert_eq!(argmax(&v), 39);
    }

    #[test]
    fn greedy_takes_the_argmax_and_respects_bans() {
        let mut s = sampler(|_| {});
        assert_eq!(s.sample(&[0.1, 3.0, 2.0], &[], &[]), 1);
        assert_eq!(s.sample(&[0.1, 3.0, 2.0], &[], &[1]), 2);
    }

    #[test]
    fn repetition_penalty_demotes_seen_tokens() {
        let mut s = sampler(|p| p.repetition_penalty = 2.0);
        // 3.0 / 2 = 1.5 < 2.0
        assert_eq!(s.sample(&[0.0, 3.0, 2.0], &[1], &[]), 2);
        // A negative logit is pushed further down, not up.
        assert_eq!(s.sample(&[-1.0, -0.5, -3.0], &[1], &[]), 0);
    }

    #[test]
    fn top_k_one_is_greedy_even_when_hot() {
        let mut s = sampler(|p| {
            p.temperature = 5.0;
            p.top_k = 1;
        });
        for _ in 0..50 {
            assert_eq!(s.sample(&[1.0, 1.1, 0.9], &[], &[]), 1);
        }
    }

    #[test]
    fn min_p_and_top_p_cut_the_tail() {
        let logits = [5.0, 4.9, -5.0, -6.0];
        let mut s = sampler(|p| {
            p.temperature = 1.0;
            p.min_p = 0.1;
            p.seed = 3;
        });
        let mut t = sampler(|p| {
            p.temperature = 1.0;
            p.top_p = 0.9;
            p.seed = 4;
        });
        for _ in 0..200 {
            assert!(s.sample(&logits, &[], &[]) < 2);
            assert!(t.sample(&logits, &[], &[]) < 2);
        }
    }

    #[test]
    fn seeded_sampling_repeats_and_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()]; // probabilities 0.25 / 0.75
        let draw = |seed| {
            let mut s = sampler(|p| {
                p.temperature = 1.0;
                p.seed = seed;
            });
            (0..4000)
                .map(|_| s.sample(&logits, &[], &[]))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        let ones = a.iter().filter(|&&x| x == 1).count() as f64 / a.len() as f64;
        assert!((ones - 0.75).abs() < 0.03, "share of token 1: {ones}");
    }
}
