//! Activation quantisation: f32 rows → Q8_0, Q8_1 or Q8_K blocks, bit-identical to what
//! ggml computes on x86-64 (the path llama.cpp runs on this machine).
//!
//! Layouts (little-endian, packed, exactly ggml's `block_q8_0` / `block_q8_1` /
//! `block_q8_K`):
//!
//! | format | bytes | layout |
//! |---|---|---|
//! | Q8_0 | 34 | `d: f16`, `qs: [i8; 32]` — value ≈ `d · qs[j]` |
//! | Q8_1 | 36 | `d: f16`, `s: f16`, `qs: [i8; 32]` — `s = f16(d · Σ qs)` with the f32 `d` |
//! | Q8_K | 292 | `d: f32`, `qs: [i8; 256]`, `bsums: [i16; 16]` (sums of 16 consecutive `qs`) |
//!
//! Rounding rules (ggml's `quantize_row_q8_0` / `quantize_row_q8_1` on AVX/AVX2 and
//! `quantize_row_q8_K_ref`, which x86 uses for Q8_K):
//!
//! * Q8_0 / Q8_1: `amax = max |x|`, `d = amax / 127` (f32), stored as `f16(d)`;
//!   `id = 127 / amax` (0 when `amax == 0`; note: not `1 / d`); `q = round_half_even(x · id)`
//!   converted like `cvtps2dq` (out-of-range → `i32::MIN`) then saturated to i8.
//!   Q8_1 additionally stores `s = f16(d · (Σ q as f32))` where `d` is the unrounded f32
//!   scale and the sum is of the i32 values before saturation. (ggml's portable
//!   `_ref` functions round half away from zero and use `1 / d`; on x86 those are not
//!   what runs, so they are not what we match.)
//! * Q8_K: the element of largest magnitude `max` (first one on ties) gives
//!   `iscale = -127 / max`; `q = min(127, round_half_even(iscale · x))`; `d = 1 / iscale`
//!   stored as f32; an all-zero block stores `d = 0`, `q = 0`, `bsums = 0`.
//!
//! The scalar and AVX2 quantisers give identical bytes (tested).

use crate::cpu::Isa;
use crate::format::ActType;
use crate::team::SharedSlice;

/// Activation rows quantised once, plus per-block values decoded for the kernels:
/// `d` (the stored scale as f32), `s` (Q8_1's stored `s` as f32), the exact integer
/// sum of each block's `qs`, and for the 32-value formats the negated sums of its 8 groups
/// of 4 `qs` (`neg_lanes`: what a weight code bias multiplies, lane by lane).
#[derive(Debug, Clone)]
pub struct QuantizedActs {
    pub(crate) act: ActType,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) nb: usize,
    pub(crate) bytes: Vec<u8>,
    pub(crate) d: Vec<f32>,
    pub(crate) s: Vec<f32>,
    pub(crate) sum: Vec<i32>,
    pub(crate) neg_lanes: Vec<[i32; 8]>,
}

/// Below this many values activations are quantised on the calling thread.
const PAR_MIN_VALUES: usize = 1 << 14;

impl QuantizedActs {
    /// Quantises `x` (`rows × cols`, row-major) with the best available instruction set.
    pub fn new(act: ActType, x: &[f32], rows: usize, cols: usize) -> Self {
        Self::with_isa(Isa::detect(), act, x, rows, cols)
    }

    /// Quantises with a given instruction set (falls back to scalar if unavailable).
    pub fn with_isa(isa: Isa, act: ActType, x: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(x.len(), rows * cols, "activation length");
        assert_eq!(
            cols % act.block_elems(),
            0,
            "row length not a block multiple"
        );
        let isa = isa.checked();
        let nb = cols / act.block_elems();
        let bb = act.block_bytes();
        let blocks = rows * nb;
        // Every per-block vector has one entry per block while quantising, so that they
        // all run in lockstep below; the ones a format lacks are emptied at the end.
        let mut q = QuantizedActs {
            act,
            rows,
            cols,
            nb,
            bytes: vec![0u8; blocks * bb],
            d: vec![0f32; blocks],
            s: vec![0f32; blocks],
            sum: vec![0i32; blocks],
            neg_lanes: vec![[0i32; 8]; blocks],
        };
        let be = act.block_elems();
        // One block: its bytes, then the values the kernels read, decoded beside them.
        let block =
            |xs: &[f32], out: &mut [u8], v: (&mut f32, &mut f32, &mut i32, &mut [i32; 8])| {
                let (d, s, sum, neg) = v;
                (*d, *s, *sum) = match act {
                    ActType::Q8_0 | ActType::Q8_1 => quantize_block32(isa, act, xs, out),
                    ActType::Q8K => quantize_q8k(isa, xs, out),
                };
                if act != ActType::Q8K {
                    let qs = &out[bb - 32..];
                    *neg = std::array::from_fn(|l| {
                        -qs[4 * l..4 * l + 4]
                            .iter()
                            .map(|&v| v as i8 as i32)
                            .sum::<i32>()
                    });
                }
            };
        let QuantizedActs {
            bytes,
            d,
            s,
            sum,
            neg_lanes,
            ..
        } = &mut q;
        // The blocks in `r`, one after another.
        let run = |r: std::ops::Range<usize>,
                   bytes: &mut [u8],
                   d: &mut [f32],
                   s: &mut [f32],
                   sum: &mut [i32],
                   neg: &mut [[i32; 8]]| {
            for (((xs, out), (d, s)), (sum, neg)) in x[r.start * be..r.end * be]
                .chunks_exact(be)
                .zip(bytes.chunks_exact_mut(bb))
                .zip(d.iter_mut().zip(s.iter_mut()))
                .zip(sum.iter_mut().zip(neg.iter_mut()))
            {
                block(xs, out, (d, s, sum, neg));
            }
        };
        if x.len() >= PAR_MIN_VALUES {
            // Prefill: a serial quantiser held back the other threads at every matmul.
            let (bytes, d) = (SharedSlice::new(bytes), SharedSlice::new(d));
            let (s, sum, neg) = (
                SharedSlice::new(s),
                SharedSlice::new(sum),
                SharedSlice::new(neg_lanes),
            );
            crate::team::for_each_range(blocks, 64, |r| {
                // SAFETY: the ranges of one section are disjoint, and so are the parts
                // of each per-block vector taken for them.
                unsafe {
                    run(
                        r.clone(),
                        bytes.range(r.start * bb..r.end * bb),
                        d.range(r.clone()),
                        s.range(r.clone()),
                        sum.range(r.clone()),
                        neg.range(r),
                    )
                }
            });
        } else {
            run(0..blocks, bytes, d, s, sum, neg_lanes);
        }
        if act != ActType::Q8_1 {
            q.s = Vec::new();
        }
        if act == ActType::Q8K {
            q.neg_lanes = Vec::new();
        }
        q
    }

    pub fn act_type(&self) -> ActType {
        self.act
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All blocks, row after row, in ggml's byte layout.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.nb * self.act.block_bytes()
    }

    /// The ggml bytes of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let n = self.row_bytes();
        &self.bytes[r * n..(r + 1) * n]
    }
}

/// Quantises one row into ggml blocks of `act` (`out.len()` = blocks × block bytes).
pub fn quantize_row(act: ActType, x: &[f32], out: &mut [u8]) {
    quantize_row_with(Isa::detect(), act, x, out)
}

/// [`quantize_row`] with a given instruction set.
pub fn quantize_row_with(isa: Isa, act: ActType, x: &[f32], out: &mut [u8]) {
    let be = act.block_elems();
    let bb = act.block_bytes();
    assert_eq!(x.len() % be, 0, "row length not a block multiple");
    assert_eq!(out.len(), x.len() / be * bb, "output length");
    let isa = isa.checked();
    for (xs, o) in x.chunks_exact(be).zip(out.chunks_exact_mut(bb)) {
        match act {
            ActType::Q8_0 | ActType::Q8_1 => {
                quantize_block32(isa, act, xs, o);
            }
            ActType::Q8K => {
                quantize_q8k(isa, xs, o);
            }
        }
    }
}

/// Returns (stored d as f32, stored s as f32, Σq).
fn quantize_block32(isa: Isa, act: ActType, x: &[f32], out: &mut [u8]) -> (f32, f32, i32) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only produced when the CPU has AVX2/FMA/F16C; `x` has
        // 32 values and `out` 34 or 36 bytes (checked by the callers' chunking).
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2::quantize_block32(act, x, out) },
        _ => quantize_block32_scalar(act, x, out),
    }
}

/// `cvtps2dq` on an already rounded value: out-of-range and NaN give `i32::MIN`.
#[inline]
fn cvt_i32(r: f32) -> i32 {
    if (-2147483648.0..2147483648.0).contains(&r) {
        r as i32
    } else {
        i32::MIN
    }
}

fn quantize_block32_scalar(act: ActType, x: &[f32], out: &mut [u8]) -> (f32, f32, i32) {
    debug_assert_eq!(x.len(), 32);
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let dh = half::f16::from_f32(d);
    out[0..2].copy_from_slice(&dh.to_bits().to_le_bytes());
    let qoff = if act == ActType::Q8_1 { 4 } else { 2 };
    let mut sum_i32 = 0i32;
    let mut sum_q = 0i32;
    for (j, &v) in x.iter().enumerate() {
        let i = cvt_i32((v * id).round_ties_even());
        sum_i32 = sum_i32.wrapping_add(i);
        let q = i.clamp(-128, 127);
        sum_q += q;
        out[qoff + j] = q as i8 as u8;
    }
    let mut s_stored = 0f32;
    if act == ActType::Q8_1 {
        let sh = half::f16::from_f32(d * sum_i32 as f32);
        out[2..4].copy_from_slice(&sh.to_bits().to_le_bytes());
        s_stored = sh.to_f32();
    }
    (dh.to_f32(), s_stored, sum_q)
}

/// ggml's `nearest_int`: round half to even (valid for |v| < 2^22).
#[inline]
fn nearest_int(v: f32) -> i32 {
    // ggml's own trick: adding 1.5 · 2^23 rounds to an integer in the mantissa's low bits
    // (and needs no SSE4.1 `roundss`, which a baseline x86-64 build lacks: `round_ties_even`
    // would call `rintf` per value).
    let val = v + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// One Q8_K block with the given instruction set; returns (d, 0, Σq).
fn quantize_q8k(isa: Isa, x: &[f32], out: &mut [u8]) -> (f32, f32, i32) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only produced when the CPU has AVX2; the callers' chunking
        // gives 256 values and 292 bytes.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2::quantize_block_q8k(x, out) },
        _ => quantize_block_q8k(x, out),
    }
}

fn quantize_block_q8k(x: &[f32], out: &mut [u8]) -> (f32, f32, i32) {
    debug_assert_eq!(x.len(), 256);
    debug_assert_eq!(out.len(), 292);
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        let a = v.abs();
        if a > amax {
            amax = a;
            max = v;
        }
    }
    if amax == 0.0 {
        out.fill(0);
        return (0.0, 0.0, 0);
    }
    let iscale = -127.0 / max;
    let mut total = 0i32;
    for (j, &v) in x.iter().enumerate() {
        let q = nearest_int(iscale * v).min(127);
        // |iscale · v| ≤ 127 (+ rounding), so q fits in i8 after the min.
        out[4 + j] = q as i8 as u8;
        total += q;
    }
    for g in 0..16 {
        let s: i32 = (0..16).map(|k| out[4 + g * 16 + k] as i8 as i32).sum();
        out[260 + 2 * g..262 + 2 * g].copy_from_slice(&(s as i16).to_le_bytes());
    }
    let d = 1.0 / iscale;
    out[0..4].copy_from_slice(&d.to_le_bytes());
    (d, 0.0, total)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::ActType;
    use std::arch::x86_64::*;

    /// AVX2 quantiser for one Q8_0 / Q8_1 block; same results as the scalar one.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn quantize_block32(
        act: ActType,
        x: &[f32],
        out: &mut [u8],
    ) -> (f32, f32, i32) {
        debug_assert!(x.len() >= 32);
        let p = x.as_ptr();
        let v0 = _mm256_loadu_ps(p);
        let v1 = _mm256_loadu_ps(p.add(8));
        let v2 = _mm256_loadu_ps(p.add(16));
        let v3 = _mm256_loadu_ps(p.add(24));
        let sign = _mm256_set1_ps(-0.0);
        let m = _mm256_max_ps(
            _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
            _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)),
        );
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let m1 = _mm_max_ss(m2, _mm_movehdup_ps(m2));
        let amax = _mm_cvtss_f32(m1);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mul = _mm256_set1_ps(id);
        const RN: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let i0 = _mm256_cvtps_epi32(_mm256_round_ps::<RN>(_mm256_mul_ps(v0, mul)));
        let i1 = _mm256_cvtps_epi32(_mm256_round_ps::<RN>(_mm256_mul_ps(v1, mul)));
        let i2 = _mm256_cvtps_epi32(_mm256_round_ps::<RN>(_mm256_mul_ps(v2, mul)));
        let i3 = _mm256_cvtps_epi32(_mm256_round_ps::<RN>(_mm256_mul_ps(v3, mul)));
        let sum_i32 = hsum_epi32(_mm256_add_epi32(
            _mm256_add_epi32(i0, i1),
            _mm256_add_epi32(i2, i3),
        ));
        // i32 → i16 → i8 with saturation; the packs work per 128-bit half, the permute
        // puts the 32-bit groups back in element order.
        let w01 = _mm256_packs_epi32(i0, i1);
        let w23 = _mm256_packs_epi32(i2, i3);
        let b = _mm256_packs_epi16(w01, w23);
        let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        let qoff = if act == ActType::Q8_1 { 4 } else { 2 };
        _mm256_storeu_si256(out.as_mut_ptr().add(qoff) as *mut __m256i, b);
        // Σ of the saturated bytes (equals sum_i32 unless a value saturated).
        let ones = _mm256_set1_epi8(1);
        let sum_q = hsum_epi32(_mm256_madd_epi16(
            _mm256_maddubs_epi16(ones, b),
            _mm256_set1_epi16(1),
        ));
        let dh = half::f16::from_f32(d);
        out[0..2].copy_from_slice(&dh.to_bits().to_le_bytes());
        let mut s_stored = 0f32;
        if act == ActType::Q8_1 {
            let sh = half::f16::from_f32(d * sum_i32 as f32);
            out[2..4].copy_from_slice(&sh.to_bits().to_le_bytes());
            s_stored = sh.to_f32();
        }
        (dh.to_f32(), s_stored, sum_q)
    }

    /// AVX2 quantiser for one Q8_K block; same bytes as the scalar one. The largest
    /// magnitude is found with vector maxima, then its first occurrence (whose sign sets
    /// the scale's, as in the scalar loop) with a compare per 8 values; the rounding is
    /// the same round-half-even. A block holding an infinity goes to the scalar code.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn quantize_block_q8k(x: &[f32], out: &mut [u8]) -> (f32, f32, i32) {
        assert!(x.len() == 256 && out.len() == 292);
        let p = x.as_ptr();
        let abs = |v: __m256| _mm256_andnot_ps(_mm256_set1_ps(-0.0), v);
        // `max(|v|, m)` keeps `m` where `|v|` is NaN, as the scalar `>` ignores NaN.
        let mut m = _mm256_setzero_ps();
        for c in 0..32 {
            m = _mm256_max_ps(abs(_mm256_loadu_ps(p.add(8 * c))), m);
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        if amax == 0.0 || !amax.is_finite() {
            return super::quantize_block_q8k(x, out);
        }
        let target = _mm256_set1_ps(amax);
        let first = (0..32)
            .find_map(|c| {
                let hit = _mm256_cmp_ps::<_CMP_EQ_OQ>(abs(_mm256_loadu_ps(p.add(8 * c))), target);
                let mask = _mm256_movemask_ps(hit);
                (mask != 0).then(|| 8 * c + mask.trailing_zeros() as usize)
            })
            .expect("the maximum is one of the values");
        let iscale = -127.0 / x[first];
        let mul = _mm256_set1_ps(iscale);
        let top = _mm256_set1_epi32(127);
        const RN: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let mut total = _mm256_setzero_si256();
        for g in 0..8 {
            // 32 values: four vectors of i32 codes, packed to 32 bytes.
            let q: [__m256i; 4] = std::array::from_fn(|k| {
                let v = _mm256_loadu_ps(p.add(32 * g + 8 * k));
                let r = _mm256_round_ps::<RN>(_mm256_mul_ps(v, mul));
                _mm256_min_epi32(_mm256_cvtps_epi32(r), top)
            });
            for h in 0..2 {
                let sum16 = hsum_epi32(_mm256_add_epi32(q[2 * h], q[2 * h + 1]));
                let at = 260 + 2 * (2 * g + h);
                out[at..at + 2].copy_from_slice(&(sum16 as i16).to_le_bytes());
            }
            total = _mm256_add_epi32(total, _mm256_add_epi32(q[0], q[1]));
            total = _mm256_add_epi32(total, _mm256_add_epi32(q[2], q[3]));
            let b = _mm256_packs_epi16(
                _mm256_packs_epi32(q[0], q[1]),
                _mm256_packs_epi32(q[2], q[3]),
            );
            let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256(out.as_mut_ptr().add(4 + 32 * g) as *mut __m256i, b);
        }
        let d = 1.0 / iscale;
        out[0..4].copy_from_slice(&d.to_le_bytes());
        (d, 0.0, hsum_epi32(total))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn hsum_epi32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }
}
