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

/// With a LoRA adapter active, a position's hidden state does not depend on how many
/// positions run with it: the adapter's inference product is computed row by row. (candle's
/// float matmul rounds a row differently at up to 64 rows; quantised activations amplified
/// that to logit differences of ~1 between a prompt prefilled whole and one continuing a
/// short cached prefix.)
#[test]
fn adapter_rows_do_not_depend_on_the_batch_shape() {
    use vigil_model::{LoraConfig, TargetModules};
    let mut model = vigil_model::Model::load(&common::model_path(SMOLLM2)).unwrap();
    let config = LoraConfig::new(8, 16.0, TargetModules::AllLinear);
    model.decoder.add_lora("test", &config, 7).unwrap();
    // PEFT's initialisation leaves B at zero: give it values so the adapter does something.
    for (i, (name, var)) in model.decoder.lora_vars("test").into_iter().enumerate() {
        if name.ends_with("lora_B.weight") {
            let shape = var.shape().clone();
            let noise =
                candle_core::Tensor::randn(0f32, 0.02, shape, &candle_core::Device::Cpu).unwrap();
            var.set(&noise).unwrap();
            assert!(i > 0);
        }
    }
    let decoder = &model.decoder;
    let fx = fixture(SMOLLM2, "logits.json");
    let ids: Vec<u32> = fx["prompts"].as_array().unwrap()[..4]
        .iter()
        .flat_map(|p| ids(&p["ids"]))
        .collect();
    assert!(ids.len() > 80, "{} tokens", ids.len());
    let opts = ForwardOptions {
        logits: LogitsFor::None,
        hidden_layers: vec![decoder.config.num_layers],
        adapter: Some("test".into()),
    };
    let base = ForwardOptions {
        adapter: None,
        ..opts.clone()
    };
    candle_core::Device::Cpu.with_context(|| {
        // The first 8 positions' final hidden states, run as the first `t` tokens.
        let first8 = |t: usize, opts: &ForwardOptions| -> Vec<Vec<f32>> {
            let x = candle_core::Tensor::new(&ids[..t], &candle_core::Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let mut state = decoder.new_state(vec![0]);
            let h = decoder
                .forward(&x, &mut state, opts)
                .unwrap()
                .hidden
                .remove(0)
                .1;
            h.get(0)
                .unwrap()
                .narrow(0, 0, 8)
                .unwrap()
                .to_vec2()
                .unwrap()
        };
        let long = first8(ids.len(), &opts);
        assert_ne!(
            long,
            first8(ids.len(), &base),
            "the adapter changes nothing"
        );
        for t in [8, 20, 64] {
            let short = first8(t, &opts);
            let diff = short
                .iter()
                .flatten()
                .zip(long.iter().flatten())
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                short == long,
                "{t} positions vs {}: differ by {diff}",
                ids.len()
            );
        }
    });
}
