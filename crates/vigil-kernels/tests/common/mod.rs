#![allow(dead_code)]
//! Random blocks and activations for the kernel tests (no external crates).

use vigil_kernels::QuantType;

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn byte(&mut self) -> u8 {
        self.u64() as u8
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.u64() % n
    }
}

fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
}

/// What a generated block looks like.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Random,
    Zero,
    /// Largest codes and scales the format can hold.
    Max,
    /// Smallest codes (most negative) with large scales.
    Min,
}

/// One weight block of `t`.
pub fn weight_block(t: QuantType, rng: &mut Rng, kind: Kind) -> Vec<u8> {
    let n = t.block_bytes();
    let mut b: Vec<u8> = match kind {
        Kind::Random => (0..n).map(|_| rng.byte()).collect(),
        Kind::Zero => vec![0; n],
        Kind::Max => vec![0xFF; n],
        Kind::Min => vec![0x00; n],
    };
    let scale = |rng: &mut Rng| match kind {
        Kind::Random => rng.f32() * 0.05,
        Kind::Zero => 0.0,
        Kind::Max => 65504.0,
        Kind::Min => -65504.0,
    };
    match t {
        QuantType::Q4_0 | QuantType::Q5_0 | QuantType::Q8_0 => put_f16(&mut b, 0, scale(rng)),
        QuantType::Q4_1 => {
            put_f16(&mut b, 0, scale(rng));
            put_f16(&mut b, 2, scale(rng));
        }
        QuantType::Q4K => {
            put_f16(&mut b, 0, scale(rng));
            put_f16(&mut b, 2, scale(rng));
        }
        QuantType::Q6K => {
            put_f16(&mut b, 208, scale(rng));
            if kind == Kind::Min {
                // scales −128, codes 0 (value −32 each)
                for s in &mut b[192..208] {
                    *s = 0x80;
                }
            }
        }
    }
    if t == QuantType::Q8_0 && kind == Kind::Min {
        for q in &mut b[2..34] {
            *q = 0x80; // −128: not produced by ggml's quantiser, but legal bytes
        }
    }
    b
}

/// A weight row of `blocks` blocks; `kinds` cycles through edge cases when `mixed`.
pub fn weight_row(t: QuantType, blocks: usize, rng: &mut Rng, mixed: bool) -> Vec<u8> {
    let mut row = Vec::new();
    for i in 0..blocks {
        let kind = if mixed {
            [
                Kind::Random,
                Kind::Zero,
                Kind::Random,
                Kind::Max,
                Kind::Random,
                Kind::Min,
            ][i % 6]
        } else {
            Kind::Random
        };
        row.extend(weight_block(t, rng, kind));
    }
    row
}

/// Activations: random, with edge values mixed in when `mixed` (zero blocks, huge values,
/// exact ties of the rounding).
pub fn activations(n: usize, rng: &mut Rng, mixed: bool) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n).map(|_| rng.f32() * 3.0).collect();
    if mixed {
        for (blk, chunk) in x.chunks_mut(32).enumerate() {
            match blk % 5 {
                1 => chunk.fill(0.0),
                2 => {
                    // amax 127 → id = 1: every value is a rounding tie.
                    for (j, v) in chunk.iter_mut().enumerate() {
                        *v = (j as f32 - 16.0) + 0.5;
                    }
                    chunk[0] = 127.0;
                }
                3 => {
                    for v in chunk.iter_mut() {
                        *v *= 1e4;
                    }
                    chunk[5] = -3.0e4;
                }
                _ => {}
            }
        }
    }
    x
}
