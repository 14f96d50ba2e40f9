//! The kernels shared by the 32-value block formats (Q4_0, Q4_1, Q5_0, Q8_0) against
//! 8-bit activations (Q8_0, or Q8_1 for Q4_1).
//!
//! Every path computes, per block, the exact integer dot product `isum = Σ q·y` of the
//! weight values and activation bytes, then accumulates in f32 in one fixed order:
//!
//! ```text
//! acc  = acc  + (d_w · d_y) · isum        (per block, in row order)
//! accm = accm + m_w · s_y                 (Q4_1 only: the block minimum × Q8_1's s)
//! result = acc + accm                     (Q4_1) or acc
//! ```
//!
//! so the scalar, the AVX2 single-row and the AVX2 tiled kernels give bit-identical
//! results (no FMA contraction: every product is rounded before it is added).
//!
//! Q4_1 (the default model's format) instead follows ggml's x86 `ggml_vec_dot_q4_1_q8_1`
//! exactly, so that vigil's logits reproduce llama.cpp's bit for bit (see
//! `vigil_model::ggml_ops`): eight f32 lanes, lane `l` holding the integer sum over the
//! block's elements `4l..4l+4`, each accumulated with a fused multiply-add by
//! `d_w · d_y`; the minimum term `m_w · s_y` is fused-added into a scalar; the result is
//! the lanes summed as `((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))` plus that scalar.

use crate::act::QuantizedActs;
use crate::format::{f16_at, ActType, QuantType};

/// A 32-value weight block format.
pub(crate) trait Fmt32 {
    const QTYPE: QuantType;
    /// Bytes per block.
    const BYTES: usize = Self::QTYPE.block_bytes();
    /// The block stores an f16 minimum at byte 2 (Q4_1).
    const MIN: bool;
    /// The codes are stored unsigned as `q + BIAS` (0: no bias).
    const BIAS: i32;
    /// The codes are signed bytes (Q8_0).
    const SIGNED: bool;
    /// The 32 codes in element order (unsigned codes, bias not removed).
    fn codes(block: &[u8]) -> [i32; 32];
    /// The 32 codes as bytes in element order.
    ///
    /// # Safety
    /// AVX2 must be available and `block` must point at `BYTES` readable bytes.
    #[cfg(target_arch = "x86_64")]
    unsafe fn codes_avx2(block: *const u8) -> std::arch::x86_64::__m256i;
    /// Unsigned formats: the codes of two blocks `b0`, `b1` (two weight rows) as
    /// `([b0 codes 0..16 | b1 codes 0..16], [b0 codes 16..32 | b1 codes 16..32])`.
    ///
    /// # Safety
    /// AVX2 must be available and both pointers must point at `BYTES` readable bytes.
    #[cfg(target_arch = "x86_64")]
    unsafe fn codes2_avx2(
        b0: *const u8,
        b1: *const u8,
    ) -> (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i) {
        let _ = (b0, b1);
        unreachable!("only unsigned formats are read in pairs")
    }
}

const fn act_of<F: Fmt32>() -> ActType {
    if F::MIN {
        ActType::Q8_1
    } else {
        ActType::Q8_0
    }
}

const fn act_qoff<F: Fmt32>() -> usize {
    if F::MIN {
        4
    } else {
        2
    }
}

/// Weight values of one block as f32 (`out.len() == 32`).
pub(crate) fn dequantize_block<F: Fmt32>(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let codes = F::codes(block);
    if F::MIN {
        let m = f16_at(block, 2);
        for (o, &c) in out.iter_mut().zip(codes.iter()) {
            *o = d * c as f32 + m;
        }
    } else {
        for (o, &c) in out.iter_mut().zip(codes.iter()) {
            *o = d * (c - F::BIAS) as f32;
        }
    }
}

/// Row `w` (blocks of `F`) · activation row `a` (ggml Q8_0 / Q8_1 bytes), portable Rust.
pub(crate) fn dot_scalar<F: Fmt32>(w: &[u8], a: &[u8]) -> f32 {
    let ab = act_of::<F>().block_bytes();
    let nb = w.len() / F::BYTES;
    assert_eq!(w.len(), nb * F::BYTES, "weight row length");
    assert_eq!(a.len(), nb * ab, "activation row length");
    let qoff = act_qoff::<F>();
    if F::MIN {
        return dot_scalar_lanes::<F>(w, a, nb, ab, qoff);
    }
    let mut acc = 0f32;
    let mut accm = 0f32;
    for b in 0..nb {
        let wb = &w[b * F::BYTES..(b + 1) * F::BYTES];
        let yb = &a[b * ab..(b + 1) * ab];
        let codes = F::codes(wb);
        let mut isum = 0i32;
        let mut ysum = 0i32;
        for (j, &c) in codes.iter().enumerate() {
            let y = yb[qoff + j] as i8 as i32;
            isum += c * y;
            ysum += y;
        }
        isum -= F::BIAS * ysum;
        acc += (f16_at(wb, 0) * f16_at(yb, 0)) * isum as f32;
        if F::MIN {
            accm += f16_at(wb, 2) * f16_at(yb, 2);
        }
    }
    if F::MIN {
        acc + accm
    } else {
        acc
    }
}

/// ggml's lane order for the formats with a minimum (see the module doc).
fn dot_scalar_lanes<F: Fmt32>(w: &[u8], a: &[u8], nb: usize, ab: usize, qoff: usize) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for b in 0..nb {
        let wb = &w[b * F::BYTES..(b + 1) * F::BYTES];
        let yb = &a[b * ab..(b + 1) * ab];
        let codes = F::codes(wb);
        let d = f16_at(wb, 0) * f16_at(yb, 0);
        summs = f16_at(wb, 2).mul_add(f16_at(yb, 2), summs);
        for (l, lane) in acc.iter_mut().enumerate() {
            let isum: i32 = (4 * l..4 * l + 4)
                .map(|j| codes[j] * yb[qoff + j] as i8 as i32)
                .sum();
            *lane = d.mul_add(isum as f32, *lane);
        }
    }
    hsum8_ggml(&acc) + summs
}

/// ggml's `hsum_float_8`: high half + low half, then pairs, then the last two.
pub(crate) fn hsum8_ggml(a: &[f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// Scalar tile: `out[ai][i] = w[i] · acts.row(a0 + ai)`.
pub(crate) fn tile_scalar<F: Fmt32>(
    w: &[&[u8]; 8],
    acts: &QuantizedActs,
    a0: usize,
    a1: usize,
    out: &mut [[f32; 8]],
) {
    for (ai, o) in (a0..a1).zip(out.iter_mut()) {
        let a = acts.row(ai);
        for (oi, wi) in o.iter_mut().zip(w.iter()) {
            *oi = dot_scalar::<F>(wi, a);
        }
    }
}

/// How far ahead of the current block the AVX2 tile prefetches each weight row.
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 384;

/// Most activation rows one AVX2 tile call handles.
pub(crate) const MAX_TILE_ROWS: usize = 16;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use super::*;
    use crate::x86::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn pair<F: Fmt32>(q: __m256i, y: __m256i) -> __m256i {
        if F::SIGNED {
            dot_i8_i8(q, y)
        } else {
            dot_u8_i8(q, y)
        }
    }

    /// AVX2 single-row dot product; bit-identical to [`dot_scalar`].
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot<F: Fmt32>(w: &[u8], a: &[u8]) -> f32 {
        let ab = act_of::<F>().block_bytes();
        let nb = w.len() / F::BYTES;
        assert_eq!(w.len(), nb * F::BYTES, "weight row length");
        assert_eq!(a.len(), nb * ab, "activation row length");
        let qoff = act_qoff::<F>();
        if F::MIN {
            return dot_lanes::<F>(w, a, nb, ab, qoff);
        }
        let ones = _mm256_set1_epi8(1);
        let mut acc = 0f32;
        let mut accm = 0f32;
        for b in 0..nb {
            let wp = w.as_ptr().add(b * F::BYTES);
            let yp = a.as_ptr().add(b * ab);
            let q = F::codes_avx2(wp);
            let y = _mm256_loadu_si256(yp.add(qoff) as *const __m256i);
            let mut isum = hsum_epi32(pair::<F>(q, y));
            if F::BIAS != 0 {
                isum -= F::BIAS * hsum_epi32(dot_u8_i8(ones, y));
            }
            let wb = std::slice::from_raw_parts(wp, F::BYTES);
            let yb = std::slice::from_raw_parts(yp, ab);
            acc += (f16_at(wb, 0) * f16_at(yb, 0)) * isum as f32;
            if F::MIN {
                accm += f16_at(wb, 2) * f16_at(yb, 2);
            }
        }
        if F::MIN {
            acc + accm
        } else {
            acc
        }
    }

    /// [`dot_scalar_lanes`] with AVX2; bit-identical to it.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot_lanes<F: Fmt32>(w: &[u8], a: &[u8], nb: usize, ab: usize, qoff: usize) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0f32;
        for b in 0..nb {
            let wp = w.as_ptr().add(b * F::BYTES);
            let yp = a.as_ptr().add(b * ab);
            let q = F::codes_avx2(wp);
            let y = _mm256_loadu_si256(yp.add(qoff) as *const __m256i);
            let wb = std::slice::from_raw_parts(wp, F::BYTES);
            let yb = std::slice::from_raw_parts(yp, ab);
            let d = f16_at(wb, 0) * f16_at(yb, 0);
            summs = f16_at(wb, 2).mul_add(f16_at(yb, 2), summs);
            let xy = _mm256_cvtepi32_ps(dot_u8_i8(q, y));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), xy, acc);
        }
        hsum8_ps(acc) + summs
    }

    /// [`hsum8_ggml`] of a vector.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn hsum8_ps(v: __m256) -> f32 {
        let mut a = [0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        hsum8_ggml(&a)
    }

    /// [`tile8`] in ggml's lane order (formats with a minimum): one 8-lane accumulator
    /// per output, kept in memory, and one scalar minimum term per output.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile8_lanes<F: Fmt32>(
        ptrs: &[*const u8; 8],
        acts: &QuantizedActs,
        a0: usize,
        na: usize,
        out: &mut [[f32; 8]],
    ) {
        let nb = acts.nb;
        let ab = acts.act.block_bytes();
        let row_bytes = acts.row_bytes();
        let qoff = act_qoff::<F>();
        let abase = acts.bytes.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); 8]; MAX_TILE_ROWS];
        let mut summs = [_mm256_setzero_ps(); MAX_TILE_ROWS];
        for b in 0..nb {
            let off = b * F::BYTES;
            let mut q = [_mm256_setzero_si256(); 8];
            for i in 0..8 {
                _mm_prefetch::<_MM_HINT_T0>(ptrs[i].wrapping_add(off + PREFETCH) as *const i8);
                q[i] = F::codes_avx2(ptrs[i].add(off));
            }
            let (dw, mw) = load_dm8(ptrs, off);
            let mut dws = [0f32; 8];
            _mm256_storeu_ps(dws.as_mut_ptr(), dw);
            for ai in 0..na {
                let blk = (a0 + ai) * nb + b;
                let y = _mm256_loadu_si256(
                    abase.add((a0 + ai) * row_bytes + b * ab + qoff) as *const __m256i
                );
                let dy = *acts.d.get_unchecked(blk);
                summs[ai] =
                    _mm256_fmadd_ps(mw, _mm256_set1_ps(*acts.s.get_unchecked(blk)), summs[ai]);
                let row = &mut acc[ai];
                for i in 0..8 {
                    let xy = _mm256_cvtepi32_ps(dot_u8_i8(q[i], y));
                    row[i] = _mm256_fmadd_ps(_mm256_set1_ps(dws[i] * dy), xy, row[i]);
                }
            }
        }
        for ai in 0..na {
            let mut m = [0f32; 8];
            _mm256_storeu_ps(m.as_mut_ptr(), summs[ai]);
            for i in 0..8 {
                out[ai][i] = hsum8_ps(acc[ai][i]) + m[i];
            }
        }
    }

    /// Eight weight rows × activation rows `a0..a1` (at most [`MAX_TILE_ROWS`]):
    /// `out[ai][i] = w[i] · acts.row(a0 + ai)`, bit-identical to [`dot_scalar`].
    ///
    /// Block-outer loop: each weight block of the 8 rows is unpacked once and used for
    /// every activation row; one f32 vector per activation row holds the 8 outputs.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; the rows must hold `acts.nb` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn tile8<F: Fmt32>(
        w: &[&[u8]; 8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        let na = a1 - a0;
        assert!(na <= MAX_TILE_ROWS && out.len() >= na);
        assert_eq!(acts.act, act_of::<F>());
        let nb = acts.nb;
        for wi in w.iter() {
            assert_eq!(wi.len(), nb * F::BYTES, "weight row length");
        }
        let ab = acts.act.block_bytes();
        let row_bytes = acts.row_bytes();
        let qoff = act_qoff::<F>();
        let mut ptrs = [std::ptr::null::<u8>(); 8];
        for i in 0..8 {
            ptrs[i] = w[i].as_ptr();
        }
        let mut acc = [_mm256_setzero_ps(); MAX_TILE_ROWS];
        let mut accm = [_mm256_setzero_ps(); MAX_TILE_ROWS];
        let abase = acts.bytes.as_ptr();
        if F::MIN {
            tile8_lanes::<F>(&ptrs, acts, a0, na, out);
            return;
        }
        if !F::SIGNED {
            // Nibble formats: two rows share a register (see `tile8_pairs`).
            tile8_pairs::<F>(&ptrs, acts, a0, na, &mut acc, &mut accm);
        }
        for b in 0..if F::SIGNED { nb } else { 0 } {
            let off = b * F::BYTES;
            let mut q = [_mm256_setzero_si256(); 8];
            for i in 0..8 {
                // Eight row streams: prefetch a few cache lines ahead of each.
                _mm_prefetch::<_MM_HINT_T0>(ptrs[i].wrapping_add(off + PREFETCH) as *const i8);
                q[i] = F::codes_avx2(ptrs[i].add(off));
            }
            let dw = load_f16x8(&ptrs, off);
            let mw = if F::MIN {
                load_f16x8(&ptrs, off + 2)
            } else {
                _mm256_setzero_ps()
            };
            for ai in 0..na {
                let a = a0 + ai;
                let blk = a * nb + b;
                let y =
                    _mm256_loadu_si256(abase.add(a * row_bytes + b * ab + qoff) as *const __m256i);
                let mut p = [_mm256_setzero_si256(); 8];
                for i in 0..8 {
                    p[i] = pair::<F>(q[i], y);
                }
                let mut r = reduce8(&p);
                if F::BIAS != 0 {
                    r = _mm256_sub_epi32(
                        r,
                        _mm256_set1_epi32(F::BIAS * *acts.sum.get_unchecked(blk)),
                    );
                }
                let scale = _mm256_mul_ps(dw, _mm256_set1_ps(*acts.d.get_unchecked(blk)));
                acc[ai] = _mm256_add_ps(acc[ai], _mm256_mul_ps(scale, _mm256_cvtepi32_ps(r)));
                if F::MIN {
                    accm[ai] = _mm256_add_ps(
                        accm[ai],
                        _mm256_mul_ps(mw, _mm256_set1_ps(*acts.s.get_unchecked(blk))),
                    );
                }
            }
        }
        for ai in 0..na {
            let v = if F::MIN {
                _mm256_add_ps(acc[ai], accm[ai])
            } else {
                acc[ai]
            };
            _mm256_storeu_ps(out[ai].as_mut_ptr(), v);
        }
    }

    /// The d (and, for Q4_1, m) of 8 blocks: one u32 load per row, split with a shuffle.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    unsafe fn load_dm8(ptrs: &[*const u8; 8], off: usize) -> (__m256, __m256) {
        let g = |i: usize| (ptrs[i].add(off) as *const u32).read_unaligned() as i32;
        let v = _mm256_setr_epi32(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7));
        // Per 128-bit half: the four low u16 (d) then the four high u16 (m).
        let split = _mm256_setr_epi8(
            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3,
            6, 7, 10, 11, 14, 15,
        );
        let s = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(v, split));
        (
            _mm256_cvtph_ps(_mm256_castsi256_si128(s)),
            _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(s)),
        )
    }

    /// The nibble formats' tile body: rows 2k and 2k+1 are unpacked into the two halves of
    /// one register pair, so one `maddubs` serves two rows and the 8 row sums come out of
    /// three horizontal adds. Same integer sums, same f32 order as [`dot_scalar`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn tile8_pairs<F: Fmt32>(
        ptrs: &[*const u8; 8],
        acts: &QuantizedActs,
        a0: usize,
        na: usize,
        acc: &mut [__m256; MAX_TILE_ROWS],
        accm: &mut [__m256; MAX_TILE_ROWS],
    ) {
        let nb = acts.nb;
        let ab = acts.act.block_bytes();
        let row_bytes = acts.row_bytes();
        let qoff = act_qoff::<F>();
        let abase = acts.bytes.as_ptr();
        let ones = _mm256_set1_epi16(1);
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for b in 0..nb {
            let off = b * F::BYTES;
            let mut lo = [_mm256_setzero_si256(); 4];
            let mut hi = [_mm256_setzero_si256(); 4];
            for k in 0..4 {
                _mm_prefetch::<_MM_HINT_T0>(ptrs[2 * k].wrapping_add(off + PREFETCH) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(
                    ptrs[2 * k + 1].wrapping_add(off + PREFETCH) as *const i8
                );
                (lo[k], hi[k]) = F::codes2_avx2(ptrs[2 * k].add(off), ptrs[2 * k + 1].add(off));
            }
            let (dw, mw) = if F::MIN {
                load_dm8(ptrs, off)
            } else {
                (load_f16x8(ptrs, off), _mm256_setzero_ps())
            };
            for ai in 0..na {
                let a = a0 + ai;
                let blk = a * nb + b;
                let yp = abase.add(a * row_bytes + b * ab + qoff);
                let ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128(yp as *const __m128i));
                let yhi =
                    _mm256_broadcastsi128_si256(_mm_loadu_si128(yp.add(16) as *const __m128i));
                let mut p = [_mm256_setzero_si256(); 4];
                for k in 0..4 {
                    // ≤ 2 · 2 · 31 · 127 per i16 lane: no saturation.
                    let s = _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo[k], ylo),
                        _mm256_maddubs_epi16(hi[k], yhi),
                    );
                    p[k] = _mm256_madd_epi16(s, ones);
                }
                // p[k] = [row 2k: 4 partial sums | row 2k+1: 4 partial sums].
                let h01 = _mm256_hadd_epi32(p[0], p[1]);
                let h23 = _mm256_hadd_epi32(p[2], p[3]);
                let h = _mm256_hadd_epi32(h01, h23); // [r0 r2 r4 r6 | r1 r3 r5 r7]
                let mut r = _mm256_permutevar8x32_epi32(h, order);
                if F::BIAS != 0 {
                    r = _mm256_sub_epi32(
                        r,
                        _mm256_set1_epi32(F::BIAS * *acts.sum.get_unchecked(blk)),
                    );
                }
                let scale = _mm256_mul_ps(dw, _mm256_set1_ps(*acts.d.get_unchecked(blk)));
                acc[ai] = _mm256_add_ps(acc[ai], _mm256_mul_ps(scale, _mm256_cvtepi32_ps(r)));
                if F::MIN {
                    accm[ai] = _mm256_add_ps(
                        accm[ai],
                        _mm256_mul_ps(mw, _mm256_set1_ps(*acts.s.get_unchecked(blk))),
                    );
                }
            }
        }
    }
}
