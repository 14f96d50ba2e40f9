//! A left-padded batch gives every row the logits it gets alone — the decoder's masking,
//! per-row positions and KV cache, on the real models.
//!
//! Weights are dequantised to f32 (candle's `CANDLE_DEQUANTIZE_ALL`) so that the test sees
//! the decoder's logic and not candle's quantised kernels, which pick a different activation
//! rounding by row count (a 40-row and a 120-row matmul of the same row differ by up to ~1
//! logit on SmolLM2 after 30 layers; see conformance.rs).

mod common;

use common::{fixture, ids, GEMMA3, SMOLLM2};
use vigil_model::Model;

fn dense_model(name: &str) -> Model {
    // Read by candle when the quantised weights are wrapped, i.e. during load.
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    Model::load(&common::model_path(name)).expect("load")
}

fn forward_all(model: &Model, rows: &[Vec<u32>]) -> (Vec<Vec<Vec<f32>>>, Vec<usize>) {
    common::forward_logits(&model.decoder, rows)
}

fn check(name: &str) {
    let model = dense_model(name);
    let fx = fixture(name, "logits.json");
    // Three rows of different lengths (40, 33, 26 tokens) → 0, 7 and 14 pad slots.
    let rows: Vec<Vec<u32>> = fx["prompts"].as_array().unwrap()[..3]
        .iter()
        .enumerate()
        .map(|(i, p)| ids(&p["ids"])[..40 - i * 7].to_vec())
        .collect();
    let (batched, pad) = forward_all(&model, &rows);
    assert_eq!(pad, vec![0, 7, 14]);
    for (r, row) in rows.iter().enumerate() {
        let (single, _) = forward_all(&model, std::slice::from_ref(row));
        let mut max = 0f32;
        for (a, b) in single[0].iter().zip(&batched[r][pad[r]..]) {
            for (x, y) in a.iter().zip(b) {
                max = max.max((x - y).abs());
            }
        }
        eprintln!(
            "{name}: row {r} ({} pad slots): max |batched − alone| = {max:.2e}",
            pad[r]
        );
        assert!(
            max < 1e-3,
            "{name}: row {r} batched vs alone differ by {max}"
        );
    }
}

#[test]
fn smollm2_batched_rows_equal_single_rows() {
    check(SMOLLM2);
}

#[test]
fn gemma3_batched_rows_equal_single_rows() {
    check(GEMMA3);
}
