//! The decoder against llama.cpp on the real default models: teacher-forced next-token
//! logits at every fixture position and greedy continuations.
//!
//! Fixtures come from `tools/make_fixtures.py` (llama-cpp-python 0.3.36 on the same GGUF
//! files, f32 KV cache, no flash attention, a cleared cache per prompt); see
//! `tools/README.md`.
//!
//! vigil's inference path follows ggml's arithmetic op by op (`vigil_model::ggml_ops`,
//! and the accumulation orders in `vigil-kernels`), so its logits are llama.cpp's bit for
//! bit: the bar is issue 2's target (top-1 identical at ≥ 99.5 % of positions, most
//! greedy continuations identical) and, beyond it, what bit-identical arithmetic implies —
//! every top-1 equal, every logit within the fixture's 4-decimal rounding, every greedy
//! continuation identical. The stricter checks are what catch a kernel that drifts from
//! ggml's order: this model amplifies last-bit differences (llama.cpp against itself with
//! only the KV cache switched f32 → f16 agrees on top-1 at 96.6 % of these positions), so
//! "close" would already show up as a few percent of misses.

mod common;

use common::{fixture, ids, model, GEMMA3, SMOLLM2};
use vigil_model::{GenerateRequest, Generator, Model};

fn logits_all(model: &Model, ids: &[u32]) -> Vec<Vec<f32>> {
    common::logits_one(&model.decoder, ids)
}

fn argmax(row: &[f32]) -> u32 {
    vigil_model::sampling::argmax(row)
}

/// The fixture stores logits rounded to 4 decimals: identical arithmetic differs from
/// them by at most half a unit of the last place (plus f32's own spacing near 10–20).
const MAX_ABS_DIFF: f32 = 0.0002;

/// Issue 2's bar for top-1 agreement; [`check_logits`] then also requires every position
/// to agree (see the module doc).
const MIN_TOP1: f64 = 0.995;

/// Compares vigil's logits with llama.cpp's at every fixture position.
fn check_logits(name: &str) {
    let model = model(name);
    let fx = fixture(name, "logits.json");
    let (mut positions, mut top1_same, mut near_tie_misses) = (0usize, 0usize, 0usize);
    let mut widest_miss_margin = 0f32;
    let (mut max_diff, mut sum_diff, mut n_diff) = (0f32, 0f64, 0usize);
    let mut per_prompt = Vec::new();
    for (pi, prompt) in fx["prompts"].as_array().unwrap().iter().enumerate() {
        let ids = ids(&prompt["ids"]);
        let ours = logits_all(model, &ids);
        assert_eq!(ours.len(), ids.len());
        let mut prompt_diffs = Vec::new();
        for (row, reference) in ours.iter().zip(prompt["positions"].as_array().unwrap()) {
            let top: Vec<(u32, f32)> = reference["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
                .collect();
            positions += 1;
            if argmax(row) == top[0].0 {
                top1_same += 1;
            } else {
                let margin = top[0].1 - top[1].1;
                widest_miss_margin = widest_miss_margin.max(margin);
                if margin < 0.1 {
                    near_tie_misses += 1;
                }
            }
            let mut pos_diff = 0f32;
            for &(id, logit) in &top {
                let d = (row[id as usize] - logit).abs();
                max_diff = max_diff.max(d);
                pos_diff = pos_diff.max(d);
                sum_diff += d as f64;
                n_diff += 1;
            }
            prompt_diffs.push(pos_diff);
        }
        per_prompt.push((
            pi,
            prompt["kind"].as_str().unwrap_or("").to_string(),
            prompt_diffs,
        ));
    }
    // The worst prompts, with the error at their first, middle and last positions: tells a
    // position-independent fault (weights, norms) from a position-dependent one (rope, cache).
    per_prompt.sort_by(|a, b| {
        let m = |d: &Vec<f32>| d.iter().sum::<f32>() / d.len() as f32;
        m(&b.2).total_cmp(&m(&a.2))
    });
    for (pi, kind, d) in per_prompt.iter().take(4) {
        eprintln!(
            "{name}: prompt {pi} ({kind}, {} tokens): max|diff| first {:.3}, middle {:.3}, last {:.3}, mean {:.3}",
            d.len(),
            d[0],
            d[d.len() / 2],
            d[d.len() - 1],
            d.iter().sum::<f32>() / d.len() as f32
        );
    }
    let agreement = top1_same as f64 / positions as f64;
    let mean = (sum_diff / n_diff as f64) as f32;
    eprintln!(
        "{name}: {positions} positions, top-1 agreement {:.2}% ({} misses, {near_tie_misses} at near-ties < 0.1), \
         widest llama.cpp margin at a miss {widest_miss_margin:.3}; \
         |logit diff| on llama.cpp's top-k: max {max_diff:.4}, mean {mean:.5}",
        agreement * 100.0,
        positions - top1_same
    );
    assert!(positions >= 2000, "fixture has only {positions} positions");
    assert!(
        agreement >= MIN_TOP1,
        "{name}: top-1 agreement with llama.cpp {:.2}% < {:.1}%",
        agreement * 100.0,
        MIN_TOP1 * 100.0
    );
    assert_eq!(
        top1_same, positions,
        "{name}: top-1 differs at {} positions (widest llama.cpp margin there {widest_miss_margin})",
        positions - top1_same
    );
    assert!(
        max_diff <= MAX_ABS_DIFF,
        "{name}: max |logit diff| {max_diff} > {MAX_ABS_DIFF}: vigil's arithmetic has left ggml's"
    );
}

/// Greedy decoding with the KV cache (one batched prefill, then one token per step, as
/// llama.cpp ran it) must reproduce llama.cpp's 64-token continuations exactly.
fn check_greedy(name: &str) {
    let model = model(name);
    let fx = fixture(name, "greedy.json");
    let prompts = fx["prompts"].as_array().unwrap();
    let mut identical = 0;
    for (i, p) in prompts.iter().enumerate() {
        let prompt_ids = ids(&p["prompt_ids"]);
        let expected = ids(&p["continuation_ids"]);
        let mut req = GenerateRequest::new(prompt_ids, expected.len());
        req.ignore_eos = true;
        let got = Generator::new(model).generate(&req, &mut |_| {}).unwrap();
        match got
            .token_ids
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
        {
            None => identical += 1,
            Some(at) => {
                let margin = p["top1_top2_margin"][at].as_f64().unwrap_or(f64::NAN);
                eprintln!(
                    "{name}: greedy prompt {i} diverges at token {at} of {} (llama.cpp top-1/top-2 margin there: {margin:.4})",
                    expected.len()
                );
            }
        }
    }
    eprintln!(
        "{name}: {identical}/{} greedy continuations identical to llama.cpp",
        prompts.len()
    );
    assert_eq!(
        identical,
        prompts.len(),
        "{name}: only {identical}/{} greedy continuations identical",
        prompts.len()
    );
}

#[test]
fn smollm2_logits_match_llama_cpp() {
    check_logits(SMOLLM2);
}

#[test]
fn gemma3_logits_match_llama_cpp() {
    check_logits(GEMMA3);
}

#[test]
fn smollm2_greedy_continuations_match_llama_cpp() {
    check_greedy(SMOLLM2);
}

#[test]
fn gemma3_greedy_continuations_match_llama_cpp() {
    check_greedy(GEMMA3);
}
