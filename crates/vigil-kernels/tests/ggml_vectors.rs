//! vigil-kernels against ggml itself: vectors written by `tools/ggml_vectors.py` from the
//! libggml that llama-cpp-python 0.3.36 built on this project's x86-64 AVX2 machine.
//!
//! * Activation quantisation (ggml-cpu's `quantize_row_q8_0`, `_q8_1`, `_q8_K`): the bytes
//!   must be identical, on the scalar and the AVX2 path.
//! * Dequantised weights (`dequantize_row_*`): identical f32 values.
//! * Dot products (`ggml_vec_dot_*`): ggml sums the per-block terms in a different order
//!   (8-lane FMA accumulators), so equality is up to f32 summation error: within
//!   `blocks · 2⁻²² · Σ|w·x|`.

use std::collections::HashMap;
use vigil_kernels::act::quantize_row_with;
use vigil_kernels::{vec_dot_with, ActType, Isa, QuantType};

const COLS: usize = 512;
const ACT_ROWS: usize = 4;
const W_ROWS: usize = 6;

fn records() -> HashMap<String, Vec<u8>> {
    let data = include_bytes!("data/ggml_vectors.bin");
    let mut out = HashMap::new();
    let mut at = 0;
    while at < data.len() {
        let n = u16::from_le_bytes([data[at], data[at + 1]]) as usize;
        let name = String::from_utf8(data[at + 2..at + 2 + n].to_vec()).unwrap();
        at += 2 + n;
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        out.insert(name, data[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    out
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn isas() -> Vec<Isa> {
    Isa::available()
}

fn act_name(a: ActType) -> &'static str {
    match a {
        ActType::Q8_0 => "q8_0",
        ActType::Q8_1 => "q8_1",
        ActType::Q8K => "q8_K",
    }
}

#[test]
fn activation_bytes_identical_to_ggml() {
    let r = records();
    for act in [ActType::Q8_0, ActType::Q8_1, ActType::Q8K] {
        let name = act_name(act);
        let x = f32s(&r[&format!("act.{name}.x")]);
        let want = &r[&format!("act.{name}.q")];
        for isa in isas() {
            let mut got = vec![0u8; want.len()];
            let rb = want.len() / ACT_ROWS;
            for row in 0..ACT_ROWS {
                quantize_row_with(
                    isa,
                    act,
                    &x[row * COLS..(row + 1) * COLS],
                    &mut got[row * rb..(row + 1) * rb],
                );
            }
            let first_diff = got.iter().zip(want.iter()).position(|(a, b)| a != b);
            assert_eq!(first_diff, None, "{name} {isa:?}: first differing byte");
        }
    }
}

#[test]
fn dequantised_weights_and_dots_match_ggml() {
    let r = records();
    for (t, name) in [
        (QuantType::Q4_0, "q4_0"),
        (QuantType::Q4_1, "q4_1"),
        (QuantType::Q5_0, "q5_0"),
        (QuantType::Q8_0, "q8_0"),
        (QuantType::Q4K, "q4_K"),
        (QuantType::Q6K, "q6_K"),
    ] {
        let w = &r[&format!("w.{name}.bytes")];
        let want_deq = f32s(&r[&format!("w.{name}.deq")]);
        let want_dot = f32s(&r[&format!("w.{name}.dot")]);
        let mut deq = vec![0f32; W_ROWS * COLS];
        vigil_kernels::dequantize_row(t, w, &mut deq);
        let same = deq
            .iter()
            .zip(&want_deq)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name}: dequantised weights differ from ggml");

        let act = act_name(t.act_type());
        let a = &r[&format!("act.{act}.q")];
        let x = f32s(&r[&format!("act.{act}.x")]);
        let wb = w.len() / W_ROWS;
        let ab = a.len() / ACT_ROWS;
        let blocks = COLS / t.block_elems();
        for o in 0..W_ROWS {
            for row in 0..ACT_ROWS {
                let want = want_dot[o * ACT_ROWS + row];
                let mag: f64 = (0..COLS)
                    .map(|j| (want_deq[o * COLS + j] as f64 * x[row * COLS + j] as f64).abs())
                    .sum::<f64>()
                    + 1e-3;
                for isa in isas() {
                    let got = vec_dot_with(
                        isa,
                        t,
                        &w[o * wb..(o + 1) * wb],
                        &a[row * ab..(row + 1) * ab],
                    );
                    let tol = mag * blocks as f64 * 2f64.powi(-22);
                    // Q8_1 stores s in f16: activations of ~1e4 overflow it to ±inf in ggml too.
                    assert!(
                        got == want || ((got - want) as f64).abs() <= tol,
                        "{name} {isa:?} w{o} x{row}: {got} vs ggml {want} (tol {tol:e})"
                    );
                }
            }
        }
    }
}
