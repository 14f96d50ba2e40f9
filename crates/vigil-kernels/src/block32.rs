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
