//! A shared prefix computed once and forked gives each continuation the logits of the
//! whole prompt run at once, on the real default model.
//!
//! SmolLM2's Q4_1 / Q8_0 kernels accumulate in an order that does not depend on how many
//! rows a matmul has, and a continuation of two or more tokens sums attention in the
//! prefill order, so the logits must be bit-identical (Q4_K / Q6_K models pick their order
//! by row count, as llama.cpp does, and are not covered here).

mod common;

use common::{fixture, ids, SMOLLM2};
use vigil_model::{ForwardOptions, LogitsFor};

#[test]
fn forked_prefix_continuations_equal_whole_prompts() {
    let model = common::model(SMOLLM2);
    let decoder = &model.decoder;
    let fx = fixture(SMOLLM2, "logits.json");
    let prompts: Vec<Vec<u32>> = fx["prompts"].as_array().unwrap()[..3]
        .iter()
        .map(|p| ids(&p["ids"]))
        .collect();
    // A common prefix: the first prompt's first 12 tokens, then each prompt's own tail.
    let prefix = &prompts[0][..12];
    let all = ForwardOptions {
        logits: LogitsFor::All,
        ..Default::default()
    };
    candle_core::Device::Cpu.with_context(|| {
        let mut base = decoder.new_state(vec![0]);
        let input = candle_core::Tensor::new(prefix, &candle_core::Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let none = ForwardOptions {
            logits: LogitsFor::None,
            ..Default::default()
        };
        decoder.forward(&input, &mut base, &none).unwrap();
        let tensor = |ids: &[u32]| {
            candle_core::Tensor::new(ids, &candle_core::Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap()
        };
        // The logits of every position of `ids` run after `state`.
        let run = |state: &mut vigil_model::KvState, ids: &[u32]| -> Vec<Vec<f32>> {
            let out = decoder.forward(&tensor(ids), state, &all).unwrap();
            out.logits.unwrap().get(0).unwrap().to_vec2().unwrap()
        };
        // Every fork runs 7 tokens of its tail first, then (after all the others) the 8th:
        // forks that shared cache buffers would have overwritten each other's slots.
        let tails: Vec<&[u32]> = prompts.iter().map(|p| &p[12..20]).collect();
        let mut states = Vec::new();
        let mut got = Vec::new();
        for tail in &tails {
            let mut state = base.fork().unwrap();
            got.push(run(&mut state, &tail[..7]));
            states.push(state);
        }
        for ((tail, state), rows) in tails.iter().zip(&mut states).zip(&mut got) {
            rows.extend(run(state, &tail[7..]));
        }
        for (i, (tail, rows)) in tails.iter().zip(&got).enumerate() {
            let whole: Vec<u32> = prefix.iter().chain(tail.iter()).copied().collect();
            let want = common::logits_one(decoder, &whole);
            assert_eq!(rows.len(), tail.len());
            for (k, (g, w)) in rows.iter().zip(&want[prefix.len()..]).enumerate() {
                let same = g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "prompt {i}, tail position {k}: forked prefix differs");
            }
            assert_eq!(states[i].len(), whole.len());
        }
        // The forks wrote their own caches: the prefix state still holds the prefix only.
        assert_eq!(base.len(), prefix.len());
    });
}
