//! The kernels shared by the 32-value block formats (Q4_0, Q4_1, Q5_0, Q8_0) against
//! 8-bit activations (Q8_0, or Q8_1 for Q4_1).
//!
//! Every path follows the order in which llama.cpp's x86 build accumulates these dot
//! products (`ggml_vec_dot_q4_1_q8_1`, and llamafile's `tinyBLAS_Q0_AVX` for the others),
//! so that vigil's logits reproduce llama.cpp's bit for bit (see `vigil_model::ggml_ops`):
//!
//! ```text
//! for each block:  d = d_w · d_y                              (f32)
//!                  lane[l] = fma(d, Σ_{j in 4l..4l+4} q_j y_j, lane[l])   l = 0..8
//!                  mins = fma(m_w, s_y, mins)                 (Q4_1 only)
//! result = ((lane0+lane4) + (lane2+lane6)) + ((lane1+lane5) + (lane3+lane7)) [+ mins]
//! ```
//!
//! The integer sums are exact, so the scalar, AVX2 (single-row and tiled) and VNNI
//! (single-row and tiled) kernels give bit-identical results.

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
}

pub(crate) const fn act_of<F: Fmt32>() -> ActType {
    if F::MIN {
        ActType::Q8_1
    } else {
        ActType::Q8_0
    }
}

pub(crate) const fn act_qoff<F: Fmt32>() -> usize {
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
    let mut acc = [0f32; 8];
    let mut mins = 0f32;
    for b in 0..nb {
        let wb = &w[b * F::BYTES..(b + 1) * F::BYTES];
        let yb = &a[b * ab..(b + 1) * ab];
        let codes = F::codes(wb);
        let d = f16_at(wb, 0) * f16_at(yb, 0);
        if F::MIN {
            mins = f16_at(wb, 2).mul_add(f16_at(yb, 2), mins);
        }
        for (l, lane) in acc.iter_mut().enumerate() {
            let isum: i32 = (4 * l..4 * l + 4)
                .map(|j| (codes[j] - F::BIAS) * yb[qoff + j] as i8 as i32)
                .sum();
            *lane = d.mul_add(isum as f32, *lane);
        }
    }
    finish::<F>(hsum8_ggml(&acc), mins)
}

/// The lanes' sum plus, for formats with a minimum, the minimum term.
#[inline(always)]
pub(crate) fn finish<F: Fmt32>(lanes: f32, mins: f32) -> f32 {
    if F::MIN {
        lanes + mins
    } else {
        lanes
    }
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

/// The shape contract of every tile kernel (8 weight rows of `acts.nb` blocks of
/// `block_bytes`, at most [`MAX_TILE_ROWS`] activation rows, room for their outputs);
/// returns (activation rows, blocks per row). The kernels read through raw pointers, so
/// these checks are what keeps them in bounds.
pub(crate) fn check_tile(
    w: &[&[u8]; 8],
    acts: &QuantizedActs,
    a0: usize,
    a1: usize,
    out: &[[f32; 8]],
    block_bytes: usize,
) -> (usize, usize) {
    let na = a1 - a0;
    assert!(na <= MAX_TILE_ROWS && out.len() >= na && a1 <= acts.rows);
    for wi in w {
        assert_eq!(wi.len(), acts.nb * block_bytes, "weight row length");
    }
    (na, acts.nb)
}

/// Where a tile's 8 weight rows come from, block column by block column: the rows of a
/// row-major matrix ([`RowMajor`]) or a packed group (`groups::Packed`).
#[cfg(target_arch = "x86_64")]
pub(crate) trait Columns {
    /// Block column `b` of the 8 rows: their codes as the kernel multiplies them (with
    /// `VNNI` as `vpdpbusd` takes them, [`vnni::vnni_codes`]; otherwise as
    /// [`Fmt32::codes_avx2`] gives them), their scales and (Q4_1) their minimums as f32.
    ///
    /// # Safety
    /// Called from a function with AVX2, FMA and F16C enabled (and AVX-512 VNNI with
    /// `VNNI`); `b` within the rows.
    unsafe fn column<F: Fmt32, const VNNI: bool>(
        &self,
        b: usize,
    ) -> (
        [std::arch::x86_64::__m256i; 8],
        std::arch::x86_64::__m256,
        std::arch::x86_64::__m256,
    );
}

/// Eight rows of a row-major matrix.
#[cfg(target_arch = "x86_64")]
pub(crate) struct RowMajor(pub(crate) [*const u8; 8]);

#[cfg(target_arch = "x86_64")]
impl Columns for RowMajor {
    #[inline(always)]
    unsafe fn column<F: Fmt32, const VNNI: bool>(
        &self,
        b: usize,
    ) -> (
        [std::arch::x86_64::__m256i; 8],
        std::arch::x86_64::__m256,
        std::arch::x86_64::__m256,
    ) {
        use std::arch::x86_64::*;
        let off = b * F::BYTES;
        let codes = std::array::from_fn(|i| {
            if VNNI {
                vnni::vnni_codes::<F>(self.0[i].add(off))
            } else {
                // Eight row streams: prefetch a few cache lines ahead of each.
                _mm_prefetch::<_MM_HINT_T0>(self.0[i].wrapping_add(off + PREFETCH) as *const i8);
                F::codes_avx2(self.0[i].add(off))
            }
        });
        let (dw, mw) = if F::MIN {
            avx2::load_dm8(&self.0, off)
        } else {
            (crate::x86::load_f16x8(&self.0, off), _mm256_setzero_ps())
        };
        (codes, dw, mw)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use super::*;
    use crate::x86::*;
    use std::arch::x86_64::*;

    /// The 8 lane sums `Σ_{j in 4l..4l+4} (q_j − BIAS) · y_j` of one block.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lanes<F: Fmt32>(q: __m256i, y: __m256i, ysum: __m256i) -> __m256i {
        if F::SIGNED {
            dot_i8_i8(q, y)
        } else if F::BIAS != 0 {
            _mm256_sub_epi32(
                dot_u8_i8(q, y),
                _mm256_mullo_epi32(_mm256_set1_epi32(F::BIAS), ysum),
            )
        } else {
            dot_u8_i8(q, y)
        }
    }

    /// The lane sums of the activation bytes (what a code bias multiplies).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn act_lane_sums<F: Fmt32>(y: __m256i) -> __m256i {
        if F::BIAS != 0 {
            dot_u8_i8(_mm256_set1_epi8(1), y)
        } else {
            _mm256_setzero_si256()
        }
    }

    /// [`hsum8_ggml`] of a vector.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn hsum8_ps(v: __m256) -> f32 {
        let mut a = [0f32; 8];
        _mm256_storeu_ps(a.as_mut_ptr(), v);
        hsum8_ggml(&a)
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
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        for b in 0..nb {
            let wp = w.as_ptr().add(b * F::BYTES);
            let yp = a.as_ptr().add(b * ab);
            _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(crate::x86::ROW_PREFETCH) as *const i8);
            let q = F::codes_avx2(wp);
            let y = _mm256_loadu_si256(yp.add(qoff) as *const __m256i);
            let d = f16c(wp) * f16c(yp);
            if F::MIN {
                mins = f16c(wp.add(2)).mul_add(f16c(yp.add(2)), mins);
            }
            let xy = _mm256_cvtepi32_ps(lanes::<F>(q, y, act_lane_sums::<F>(y)));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), xy, acc);
        }
        finish::<F>(hsum8_ps(acc), mins)
    }

    /// Eight weight rows × activation rows `a0..a1` (at most [`MAX_TILE_ROWS`]):
    /// `out[ai][i] = w[i] · acts.row(a0 + ai)`, bit-identical to [`dot_scalar`].
    ///
    /// A single activation row (decode) goes row by row through [`dot`]: nothing is
    /// reused across activation rows, and one weight row at a time streams memory in
    /// order, which the hardware prefetcher follows better than eight interleaved rows.
    /// More rows go through [`tile8_body`].
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
        assert_eq!(acts.act, act_of::<F>());
        let (na, _) = check_tile(w, acts, a0, a1, out, F::BYTES);
        if na == 1 {
            let a = acts.row(a0);
            for (o, wi) in out[0].iter_mut().zip(w.iter()) {
                *o = dot::<F>(wi, a);
            }
            return;
        }
        let ptrs: [*const u8; 8] = std::array::from_fn(|i| w[i].as_ptr());
        tile8_body::<F, _>(RowMajor(ptrs), acts, a0, a1, out)
    }

    /// The body of [`tile8`] for any [`Columns`]; at least two activation rows.
    ///
    /// Block-outer loop: each weight block of the 8 rows is unpacked once and used for
    /// every activation row. Each output keeps its own 8-lane accumulator (in memory: 128
    /// of them do not fit in registers) and, for Q4_1, a minimum term (8 outputs per
    /// vector).
    ///
    /// # Safety
    /// As [`tile8`]; inlined into a caller with its instruction sets.
    #[inline(always)]
    pub(crate) unsafe fn tile8_body<F: Fmt32, C: Columns>(
        cols: C,
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        let (na, nb) = (a1 - a0, acts.nb);
        let ab = acts.act.block_bytes();
        let row_bytes = acts.row_bytes();
        let qoff = act_qoff::<F>();
        let abase = acts.bytes.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); 8]; MAX_TILE_ROWS];
        let mut mins = [_mm256_setzero_ps(); MAX_TILE_ROWS];
        for b in 0..nb {
            let (q, dw, mw) = cols.column::<F, false>(b);
            for ai in 0..na {
                let blk = (a0 + ai) * nb + b;
                let y = _mm256_loadu_si256(
                    abase.add((a0 + ai) * row_bytes + b * ab + qoff) as *const __m256i
                );
                let ysum = act_lane_sums::<F>(y);
                let dy = *acts.d.get_unchecked(blk);
                if F::MIN {
                    let s = _mm256_set1_ps(*acts.s.get_unchecked(blk));
                    mins[ai] = _mm256_fmadd_ps(mw, s, mins[ai]);
                }
                // The 8 products d_w · d_y at once, each then broadcast from memory (a
                // load, where a scalar product and a broadcast per weight row were two
                // vector-unit operations).
                let mut dd = [0f32; 8];
                _mm256_storeu_ps(dd.as_mut_ptr(), _mm256_mul_ps(dw, _mm256_set1_ps(dy)));
                let row = &mut acc[ai];
                for i in 0..8 {
                    let xy = _mm256_cvtepi32_ps(lanes::<F>(q[i], y, ysum));
                    row[i] = _mm256_fmadd_ps(broadcast_from_memory(&dd[i]), xy, row[i]);
                }
            }
        }
        for ai in 0..na {
            let mut m = [0f32; 8];
            _mm256_storeu_ps(m.as_mut_ptr(), mins[ai]);
            for i in 0..8 {
                out[ai][i] = finish::<F>(hsum8_ps(acc[ai][i]), m[i]);
            }
        }
    }

    /// `*x` in all 8 lanes by `vbroadcastss` from memory: the load unit alone does it.
    /// (Written out because the compiler turns a broadcast of a value it has just stored
    /// back into shuffles of the register, which take the vector units.)
    #[target_feature(enable = "avx")]
    #[inline]
    unsafe fn broadcast_from_memory(x: &f32) -> __m256 {
        let v: __m256;
        std::arch::asm!(
            "vbroadcastss {v}, dword ptr [{p}]",
            v = out(ymm_reg) v,
            p = in(reg) x as *const f32,
            options(pure, readonly, nostack, preserves_flags),
        );
        v
    }

    /// The d and m of 8 Q4_1 blocks: one u32 load per row, split with a shuffle.
    #[target_feature(enable = "avx2,f16c")]
    #[inline]
    pub(super) unsafe fn load_dm8(ptrs: &[*const u8; 8], off: usize) -> (__m256, __m256) {
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
}

/// Weight blocks one VNNI tile unpacks at a time (8 rows × 32 blocks × 32 bytes = 8 KiB of
/// codes on the stack, in L1).
#[cfg(target_arch = "x86_64")]
const VNNI_CHUNK: usize = 32;

/// The tile kernel with AVX-512 VNNI (`vpdpbusd` on 256-bit vectors): the integer lane sums
/// in one instruction, accumulators in registers. Same f32 operations, in the same order,
/// as [`dot_scalar`], so bit-identical to it.
#[cfg(target_arch = "x86_64")]
pub(crate) mod vnni {
    use super::*;
    use crate::x86::*;
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// The code offset the kernel removes: `vpdpbusd` multiplies unsigned bytes, so Q8_0's
    /// signed codes are stored shifted by 128 (`w ^ 0x80`), the others keep their bias.
    pub(crate) const fn bias<F: Fmt32>() -> i32 {
        if F::SIGNED {
            128
        } else {
            F::BIAS
        }
    }

    /// The accumulator `vpdpbusd` starts from for activation block `blk`: `bias ·
    /// neg_lanes`, which cancels the code bias lane by lane (zero for a format without
    /// one). `shift` holds `log2 bias`, hoisted by the caller out of its block loop.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) unsafe fn bias_lanes<F: Fmt32>(
        acts: &QuantizedActs,
        blk: usize,
        shift: __m128i,
    ) -> __m256i {
        if bias::<F>() != 0 {
            let nl = acts.neg_lanes.get_unchecked(blk).as_ptr() as *const __m256i;
            _mm256_sll_epi32(_mm256_loadu_si256(nl), shift)
        } else {
            _mm256_setzero_si256()
        }
    }

    /// The unsigned codes `vpdpbusd` multiplies: the stored codes, `q + bias::<F>()`.
    #[target_feature(enable = "avx2,avx512f,avx512vl,avx512bw")]
    #[inline]
    pub(crate) unsafe fn vnni_codes<F: Fmt32>(block: *const u8) -> __m256i {
        if F::QTYPE == crate::QuantType::Q5_0 {
            // Bit j of qh is bit 4 of code j: a byte mask does in one step what AVX2
            // spreads with a shuffle, an and and a compare.
            let qh = (block.add(2) as *const u32).read_unaligned();
            _mm256_or_si256(
                nibbles32(block.add(6)),
                _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(0x10)),
            )
        } else if F::SIGNED {
            _mm256_xor_si256(F::codes_avx2(block), _mm256_set1_epi8(-128))
        } else {
            F::codes_avx2(block)
        }
    }

    /// Weight row `w` · activation row `a`, bit-identical to [`dot_scalar`]: per block
    /// `lanes = vpdpbusd(bias · neg_lanes, codes, y)`, and the scale `d_w · d_y` made a
    /// vector by converting the f16 broadcast.
    ///
    /// # Safety
    /// As [`tile8`]; `w` must point at `acts.nb` blocks.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    unsafe fn dot<F: Fmt32>(w: *const u8, acts: &QuantizedActs, a: usize) -> f32 {
        let nb = acts.nb;
        let ab = acts.act.block_bytes();
        let ybase = acts
            .bytes
            .as_ptr()
            .add(a * acts.row_bytes() + act_qoff::<F>());
        let shift = _mm_cvtsi32_si128(bias::<F>().trailing_zeros() as i32);
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        for b in 0..nb {
            let blk = a * nb + b;
            let wp = w.add(b * F::BYTES);
            _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(crate::x86::ROW_PREFETCH) as *const i8);
            let y = _mm256_loadu_si256(ybase.add(b * ab) as *const __m256i);
            let src = bias_lanes::<F>(acts, blk, shift);
            let lanes = _mm256_dpbusd_epi32(src, vnni_codes::<F>(wp), y);
            let dw = _mm256_cvtph_ps(_mm_set1_epi16((wp as *const i16).read_unaligned()));
            let d = _mm256_mul_ps(dw, _mm256_set1_ps(*acts.d.get_unchecked(blk)));
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc);
            if F::MIN {
                mins = f16c(wp.add(2)).mul_add(*acts.s.get_unchecked(blk), mins);
            }
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        finish::<F>(hsum8_ggml(&lanes), mins)
    }

    /// Eight weight rows × activation rows `a0..a1` (at most [`MAX_TILE_ROWS`]):
    /// `out[ai][i] = w[i] · acts.row(a0 + ai)`, bit-identical to [`dot_scalar`].
    ///
    /// 1. A chunk of blocks of the 8 rows is unpacked once into unsigned codes (32 bytes a
    ///    block) and the 8 rows' scales into one vector per block.
    /// 2. Activation rows are taken two at a time; their 16 accumulators (8 lanes each)
    ///    stay in registers over the chunk (in memory between chunks). Per weight block
    ///    and activation row: `lanes = vpdpbusd(−bias · Σy, codes, y)` (the sums of the
    ///    groups of 4 `y` come with the activations), `acc = fma(d_w · d_y, lanes, acc)`.
    ///
    /// A single activation row goes row by row through [`dot`].
    ///
    /// # Safety
    /// AVX2, FMA, F16C, AVX-512 F/VL/BW and VNNI must be available; the rows must hold
    /// `acts.nb` blocks.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    pub(crate) unsafe fn tile8<F: Fmt32>(
        w: &[&[u8]; 8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        assert_eq!(acts.act, act_of::<F>());
        let (na, _) = check_tile(w, acts, a0, a1, out, F::BYTES);
        if na == 1 {
            // Decode: nothing to reuse across activation rows; weight rows stream in order.
            for (o, wi) in out[0].iter_mut().zip(w) {
                *o = dot::<F>(wi.as_ptr(), acts, a0);
            }
            return;
        }
        let ptrs: [*const u8; 8] = std::array::from_fn(|i| w[i].as_ptr());
        tile8_body::<F, _>(RowMajor(ptrs), acts, a0, a1, out)
    }

    /// The body of [`tile8`] for any [`Columns`] (the rows' layout only changes how a
    /// chunk of block columns is unpacked); at least two activation rows.
    ///
    /// # Safety
    /// As [`tile8`]; inlined into a caller with its instruction sets.
    #[inline(always)]
    pub(crate) unsafe fn tile8_body<F: Fmt32, C: Columns>(
        cols: C,
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        let (na, nb) = (a1 - a0, acts.nb);
        let ab = acts.act.block_bytes();
        let row_bytes = acts.row_bytes();
        let qoff = act_qoff::<F>();
        let abase = acts.bytes.as_ptr();
        let shift = _mm_cvtsi32_si128(bias::<F>().trailing_zeros() as i32);
        // Scratch written before it is read (a chunk's blocks; the accumulators of rows
        // whose earlier chunks ran): zeroing 14 KiB per call would cost a fifth of it.
        let mut acc = MaybeUninit::<[[[__m256; 8]; 2]; MAX_TILE_ROWS / 2]>::uninit();
        let mut mins = MaybeUninit::<[[__m256; 2]; MAX_TILE_ROWS / 2]>::uninit();
        let mut codes = MaybeUninit::<[[__m256i; 8]; VNNI_CHUNK]>::uninit();
        let mut dw = MaybeUninit::<[__m256; VNNI_CHUNK]>::uninit();
        let mut mw = MaybeUninit::<[__m256; VNNI_CHUNK]>::uninit();
        let (acc, mins) = (acc.as_mut_ptr(), mins.as_mut_ptr());
        let (codes, dw, mw) = (codes.as_mut_ptr(), dw.as_mut_ptr(), mw.as_mut_ptr());
        for c0 in (0..nb).step_by(VNNI_CHUNK) {
            let c1 = (c0 + VNNI_CHUNK).min(nb);
            for b in c0..c1 {
                ((*codes)[b - c0], (*dw)[b - c0], (*mw)[b - c0]) = cols.column::<F, true>(b);
            }
            for p in 0..na.div_ceil(2) {
                // Two activation rows; an odd last row is computed twice.
                let rows = [a0 + 2 * p, a0 + (2 * p + 1).min(na - 1)];
                let (mut r_acc, mut r_mins) = if c0 == 0 {
                    ([[_mm256_setzero_ps(); 8]; 2], [_mm256_setzero_ps(); 2])
                } else {
                    ((*acc)[p], (*mins)[p])
                };
                for b in c0..c1 {
                    let mut y = [_mm256_setzero_si256(); 2];
                    let mut src = [_mm256_setzero_si256(); 2];
                    let mut dwy = [[0f32; 8]; 2];
                    for r in 0..2 {
                        let blk = rows[r] * nb + b;
                        y[r] = _mm256_loadu_si256(
                            abase.add(rows[r] * row_bytes + b * ab + qoff) as *const __m256i
                        );
                        src[r] = bias_lanes::<F>(acts, blk, shift);
                        let dy = _mm256_set1_ps(*acts.d.get_unchecked(blk));
                        _mm256_storeu_ps(dwy[r].as_mut_ptr(), _mm256_mul_ps((*dw)[b - c0], dy));
                        if F::MIN {
                            let sy = _mm256_set1_ps(*acts.s.get_unchecked(blk));
                            r_mins[r] = _mm256_fmadd_ps((*mw)[b - c0], sy, r_mins[r]);
                        }
                    }
                    for i in 0..8 {
                        let q = (*codes)[b - c0][i];
                        for r in 0..2 {
                            let lanes = _mm256_dpbusd_epi32(src[r], q, y[r]);
                            r_acc[r][i] = _mm256_fmadd_ps(
                                _mm256_set1_ps(dwy[r][i]),
                                _mm256_cvtepi32_ps(lanes),
                                r_acc[r][i],
                            );
                        }
                    }
                }
                if c1 < nb {
                    (*acc)[p] = r_acc;
                    (*mins)[p] = r_mins;
                    continue;
                }
                for r in 0..2 {
                    let mut m = [0f32; 8];
                    _mm256_storeu_ps(m.as_mut_ptr(), r_mins[r]);
                    for i in 0..8 {
                        let mut lanes = [0f32; 8];
                        _mm256_storeu_ps(lanes.as_mut_ptr(), r_acc[r][i]);
                        out[rows[r] - a0][i] = finish::<F>(hsum8_ggml(&lanes), m[i]);
                    }
                }
            }
        }
    }
}
