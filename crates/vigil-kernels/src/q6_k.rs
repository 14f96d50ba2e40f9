//! Q6_K weights × Q8_K activations.
//!
//! Block layout (210 bytes, 256 weights in 16 sub-blocks of 16, ggml `block_q6_K`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..128 | `ql[128]`: low 4 bits |
//! | 128..192 | `qh[64]`: high 2 bits, four weights per byte |
//! | 192..208 | `scales[16]`: i8 scale of each sub-block of 16 (sub-block = weight / 16) |
//! | 208..210 | `d`: f16 super-scale |
//!
//! Two halves of 128 weights; half `n` uses `ql[64n..64n+64]`, `qh[32n..32n+32]`. For
//! `l` in 0..32 (`h = qh[32n + l]`): weight `128n + l` = `(ql[64n+l] & 15) | (h & 3) << 4`,
//! `+32` = `(ql[64n+32+l] & 15) | (h >> 2 & 3) << 4`, `+64` = `(ql[64n+l] >> 4) | (h >> 4 & 3) << 4`,
//! `+96` = `(ql[64n+32+l] >> 4) | (h >> 6 & 3) << 4`. Value = `d · scale · (code − 32)`.
//!
//! The kernels multiply the unsigned codes and subtract `32 · Σ_j scale_j · bsums[j]`, so
//! the integer sums are exact; the f32 accumulation follows llama.cpp's x86 kernels, so
//! that vigil's logits reproduce llama.cpp's bit for bit. llama.cpp has two ([`Order`]):
//! for a product of 8 or more activation rows its tiled kernel fused-adds
//! `(S · d) · d_y` per block (the compiler contracts its multiply and add) (`S = Σ_j scale_j Σ (code − 32)·y`); for fewer rows
//! `ggml_vec_dot_q6_K_q8_K` keeps eight lanes — lane `l` holding the products of elements
//! `4l..4l+4` of each 32-value vector, scaled, minus `32 · (scale·bsum)` of sub-blocks
//! `2l` and `2l + 1` — fused-adds each block's lanes times `d_y · d`, and sums the lanes
//! at the end.

use crate::act::QuantizedActs;
use crate::format::{f16_at, f32_at};
use crate::Isa;

/// Marker type of the format.
pub struct Q6K;

const BYTES: usize = 210;
const ABYTES: usize = 292;

/// The 256 codes (0..64) of a block in weight order.
fn codes(b: &[u8]) -> [u8; 256] {
    let mut c = [0u8; 256];
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        for l in 0..32 {
            let h = qh[l];
            c[128 * n + l] = (ql[l] & 0x0F) | (h & 3) << 4;
            c[128 * n + l + 32] = (ql[l + 32] & 0x0F) | ((h >> 2) & 3) << 4;
            c[128 * n + l + 64] = (ql[l] >> 4) | ((h >> 4) & 3) << 4;
            c[128 * n + l + 96] = (ql[l + 32] >> 4) | ((h >> 6) & 3) << 4;
        }
    }
    c
}

/// Row of weights as f32 (`out.len()` = 256 × blocks).
pub fn dequantize_row(w: &[u8], out: &mut [f32]) {
    assert_eq!(w.len() / BYTES * 256, out.len(), "output length");
    for (b, o) in w.chunks_exact(BYTES).zip(out.chunks_exact_mut(256)) {
        let d = f16_at(b, 208);
        let c = codes(b);
        for (i, v) in o.iter_mut().enumerate() {
            let sc = b[192 + i / 16] as i8 as f32;
            *v = d * sc * (c[i] as i32 - 32) as f32;
        }
    }
}

/// `Σ_j scale_j · bsums[j]`.
fn scaled_bsums(b: &[u8], yb: &[u8]) -> i32 {
    (0..16)
        .map(|j| {
            b[192 + j] as i8 as i32 * i16::from_le_bytes([yb[260 + 2 * j], yb[261 + 2 * j]]) as i32
        })
        .sum()
}

/// llama.cpp's two accumulation orders (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Order {
    /// `ggml_vec_dot_q6_K_q8_K`: eight lanes per block.
    Lanes,
    /// The tiled kernel: one product per block.
    PerBlock,
}

impl Order {
    /// The order llama.cpp uses for a product of `rows` activation rows.
    pub fn for_rows(rows: usize) -> Order {
        if rows >= 8 {
            Order::PerBlock
        } else {
            Order::Lanes
        }
    }
}

fn bsum(yb: &[u8], j: usize) -> i32 {
    i16::from_le_bytes([yb[260 + 2 * j], yb[261 + 2 * j]]) as i32
}

/// Weight row · Q8_K activation row (ggml bytes), portable code, single-row order.
pub fn vec_dot_scalar(w: &[u8], a: &[u8]) -> f32 {
    vec_dot_scalar_in(w, a, Order::Lanes)
}

/// [`vec_dot_scalar`] in a given accumulation order.
pub fn vec_dot_scalar_in(w: &[u8], a: &[u8], order: Order) -> f32 {
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let mut acc = 0f32;
    let mut lanes = [0f32; 8];
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        let c = codes(b);
        let sc = |j: usize| b[192 + j] as i8 as i32;
        let (dw, dy) = (f16_at(b, 208), f32_at(yb, 0));
        let prod = |e: usize| c[e] as i32 * yb[4 + e] as i8 as i32;
        match order {
            Order::PerBlock => {
                let mut s = 0i32;
                for j in 0..16 {
                    s += sc(j) * (16 * j..16 * j + 16).map(prod).sum::<i32>();
                }
                s -= 32 * scaled_bsums(b, yb);
                acc = (s as f32 * dw).mul_add(dy, acc);
            }
            Order::Lanes => {
                let d = dy * dw;
                for (l, lane) in lanes.iter_mut().enumerate() {
                    let mut s = 0i32;
                    for v in 0..8 {
                        // Vector v holds elements 32v..32v+32; lane l its elements 4l..4l+4.
                        let e0 = 32 * v + 4 * l;
                        s += sc(2 * v + l / 4) * (e0..e0 + 4).map(prod).sum::<i32>();
                    }
                    s -= 32 * (sc(2 * l) * bsum(yb, 2 * l) + sc(2 * l + 1) * bsum(yb, 2 * l + 1));
                    *lane = d.mul_add(s as f32, *lane);
                }
            }
        }
    }
    match order {
        Order::PerBlock => acc,
        Order::Lanes => crate::block32::hsum8_ggml(&lanes),
    }
}

/// The f32 step of one block in [`Order::Lanes`], shared by the single-row kernels:
/// lane `l` of the integer sums `isum` less `32 · (scale · bsum)` of sub-blocks `2l` and
/// `2l + 1` (the codes are stored +32), times `d_y · d`, fused-added to `acc`. `scales`:
/// the block's 16 scales as i16; `bp` points at the weight block, `yb` is the activation
/// block.
///
/// # Safety
/// AVX2, FMA and F16C must be available; `bp` must point at a whole block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn lanes_step(
    isum: std::arch::x86_64::__m256i,
    scales: std::arch::x86_64::__m256i,
    bp: *const u8,
    yb: &[u8],
    acc: std::arch::x86_64::__m256,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let bsums = _mm256_loadu_si256(yb.as_ptr().add(260) as *const __m256i);
    let corr = _mm256_slli_epi32(_mm256_madd_epi16(bsums, scales), 5);
    let d = f32_at(yb, 0) * crate::x86::f16c(bp.add(208));
    let lanes = _mm256_cvtepi32_ps(_mm256_sub_epi32(isum, corr));
    _mm256_fmadd_ps(_mm256_set1_ps(d), lanes, acc)
}

/// Byte shuffles for [`vec_dot_avx2`]: vector k of a half (32 values) takes scale 2k of
/// that half's eight in its low 128 bits and 2k + 1 in its high 128 bits, picked as i16
/// words from the half's scales held in both 128-bit lanes (a broadcast of each scale
/// from a scalar load was ~5 operations per vector).
#[cfg(target_arch = "x86_64")]
const SCALE_PICK: [[u8; 32]; 4] = {
    let mut t = [[0u8; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut e = 0;
        while e < 32 {
            let word = if e < 16 { 2 * k } else { 2 * k + 1 };
            t[k][e] = (2 * word + e % 2) as u8;
            e += 1;
        }
        k += 1;
    }
    t
};

/// Weight row · Q8_K activation row with AVX2; bit-identical to [`vec_dot_scalar`].
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C ([`crate::Isa::avx2_available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_avx2(w: &[u8], a: &[u8]) -> f32 {
    use std::arch::x86_64::*;
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let low = _mm256_set1_epi8(0x0F);
    let high = _mm256_set1_epi8(0x30);
    let mut pick = [_mm256_setzero_si256(); 4];
    for (p, t) in pick.iter_mut().zip(&SCALE_PICK) {
        *p = _mm256_loadu_si256(t.as_ptr() as *const __m256i);
    }
    let mut acc = _mm256_setzero_ps();
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        let bp = b.as_ptr();
        crate::x86::prefetch_ahead::<BYTES>(bp);
        let yp = yb.as_ptr().add(4);
        let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(bp.add(192) as *const __m128i));
        let mut isum = _mm256_setzero_si256();
        for n in 0..2 {
            // Half n's eight scales (i16) in both 128-bit lanes.
            let half = if n == 0 {
                _mm256_permute2x128_si256::<0x00>(scales, scales)
            } else {
                _mm256_permute2x128_si256::<0x11>(scales, scales)
            };
            let ql0 = _mm256_loadu_si256(bp.add(64 * n) as *const __m256i);
            let ql1 = _mm256_loadu_si256(bp.add(64 * n + 32) as *const __m256i);
            let qh = _mm256_loadu_si256(bp.add(128 + 32 * n) as *const __m256i);
            let v = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, low),
                    _mm256_and_si256(_mm256_slli_epi16(qh, 4), high),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, low),
                    _mm256_and_si256(_mm256_slli_epi16(qh, 2), high),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low),
                    _mm256_and_si256(qh, high),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), high),
                ),
            ];
            for (k, vk) in v.iter().enumerate() {
                let y = _mm256_loadu_si256(yp.add(128 * n + 32 * k) as *const __m256i);
                let sc = _mm256_shuffle_epi8(half, pick[k]);
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(*vk, y), sc);
                isum = _mm256_add_epi32(isum, p);
            }
        }
        acc = lanes_step(isum, scales, bp, yb, acc);
    }
    let mut l = [0f32; 8];
    _mm256_storeu_ps(l.as_mut_ptr(), acc);
    crate::block32::hsum8_ggml(&l)
}

/// Weight row · Q8_K activation row with AVX-512 VNNI, 512 bits at a time: the decode
/// kernel; bit-identical to [`vec_dot_scalar`].
///
/// [`vec_dot_avx2`] spends most of its instructions building codes and broadcasting a
/// scale per 32 values, and ran a decode step at ~10 GB/s from L2, below what DRAM
/// delivers. Here a 512-bit vector holds two of its 32-value vectors: the low-bit bytes
/// of both are one load, the shared high bits are shifted by a per-half count, the
/// masks merge in one ternary-logic instruction, and `vpdpwssd` applies four sub-blocks'
/// scales (one `vpermw` of the block's 16) and accumulates in one step. Lane `l` of each
/// half sums the same elements as lane `l` of [`vec_dot_avx2`]'s vectors, and the halves
/// are added before the f32 step, so the integer sums and every f32 operation are the same.
///
/// # Safety
/// AVX2, FMA, F16C, AVX-512 F/VL/BW and VNNI must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
pub unsafe fn vec_dot_vnni(w: &[u8], a: &[u8]) -> f32 {
    use std::arch::x86_64::*;
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let low = _mm512_set1_epi8(0x0F);
    let high = _mm512_set1_epi8(0x30);
    // Per 16-bit element of a half: vectors 0 and 1 take the high bits from `qh << 4` and
    // `qh << 2`, vectors 2 and 3 from `qh` and `qh >> 2`.
    let shl01 = _mm512_inserti64x4::<1>(_mm512_set1_epi16(4), _mm256_set1_epi16(2));
    let shr23 = _mm512_inserti64x4::<1>(_mm512_setzero_si512(), _mm256_set1_epi16(2));
    // Quarter q (8 i16 lanes) of pair m (vectors 2m, 2m + 1 of the block) is sub-block
    // 4m + q: the index of its scale among the block's 16.
    let scale_idx: [__m512i; 4] = std::array::from_fn(|m| {
        let mut idx = [0i16; 32];
        for (e, v) in idx.iter_mut().enumerate() {
            *v = (4 * m + e / 8) as i16;
        }
        _mm512_loadu_si512(idx.as_ptr() as *const __m512i)
    });
    let mut acc = _mm256_setzero_ps();
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        let bp = b.as_ptr();
        crate::x86::prefetch_ahead::<BYTES>(bp);
        let yp = yb.as_ptr().add(4);
        let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(bp.add(192) as *const __m128i));
        let scales512 = _mm512_castsi256_si512(scales);
        let mut isum = _mm512_setzero_si512();
        for n in 0..2 {
            let ql = _mm512_loadu_si512(bp.add(64 * n) as *const __m512i);
            let qh =
                _mm512_broadcast_i64x4(_mm256_loadu_si256(bp.add(128 + 32 * n) as *const __m256i));
            let h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, shl01), high);
            let h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, shr23), high);
            // (a & low) | h: 0xEC is `(A & C) | B` with A = a, B = h, C = low.
            let v01 = _mm512_ternarylogic_epi32::<0xEC>(ql, h01, low);
            let v23 = _mm512_ternarylogic_epi32::<0xEC>(_mm512_srli_epi16::<4>(ql), h23, low);
            for (k, v) in [v01, v23].into_iter().enumerate() {
                let y = _mm512_loadu_si512(yp.add(128 * n + 64 * k) as *const __m512i);
                let sc = _mm512_permutexvar_epi16(scale_idx[2 * n + k], scales512);
                isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(v, y), sc);
            }
        }
        let isum = _mm256_add_epi32(
            _mm512_castsi512_si256(isum),
            _mm512_extracti64x4_epi64::<1>(isum),
        );
        acc = lanes_step(isum, scales, bp, yb, acc);
    }
    let mut l = [0f32; 8];
    _mm256_storeu_ps(l.as_mut_ptr(), acc);
    crate::block32::hsum8_ggml(&l)
}

/// Weight row · Q8_K activation row, best instruction set available.
pub fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
    crate::vec_dot_with(Isa::detect(), crate::QuantType::Q6K, w, a)
}

#[cfg(target_arch = "x86_64")]
crate::tile8_entry_points!();

/// Eight weight rows × activation rows `a0..a1` (at most 16) in [`Order::PerBlock`],
/// bit-identical to [`vec_dot_scalar_in`]: each 32-code vector of the 8 rows is unpacked once for all
/// activation rows; the row sums of its two 16-value sub-blocks are reduced into two
/// vectors (lane = weight row) and scaled there.
///
/// # Safety
/// The features of the entry point that inlines it (`tile8_avx2` / `tile8_vnni`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed SIMD loops read clearer here
unsafe fn tile8_body<const VNNI: bool>(
    w: &[&[u8]; 8],
    acts: &QuantizedActs,
    a0: usize,
    a1: usize,
    out: &mut [[f32; 8]],
) {
    use crate::block32::MAX_TILE_ROWS;
    use crate::x86::{lane_sums, load_f16x8, reduce8_halves};
    use std::arch::x86_64::*;
    let (na, nb) = crate::block32::check_tile(w, acts, a0, a1, out, BYTES);
    let rb = acts.row_bytes();
    let ptrs: [*const u8; 8] = std::array::from_fn(|i| w[i].as_ptr());
    let abase = acts.bytes.as_ptr();
    let low = _mm256_set1_epi8(0x0F);
    let high = _mm256_set1_epi8(0x30);
    let mut acc = [_mm256_setzero_ps(); MAX_TILE_ROWS];
    for b in 0..nb {
        let off = b * BYTES;
        // sc[j][i]: scale of sub-block j of weight row i.
        let mut sc = [[0i32; 8]; 16];
        for i in 0..8 {
            for (j, s) in sc.iter_mut().enumerate() {
                s[i] = w[i][off + 192 + j] as i8 as i32;
            }
        }
        let mut sums = [_mm256_setzero_si256(); MAX_TILE_ROWS];
        for n in 0..2 {
            for k in 0..4 {
                let mut q = [_mm256_setzero_si256(); 8];
                for i in 0..8 {
                    let p = ptrs[i].add(off);
                    let ql = _mm256_loadu_si256(p.add(64 * n + 32 * (k & 1)) as *const __m256i);
                    let qh = _mm256_loadu_si256(p.add(128 + 32 * n) as *const __m256i);
                    let (l, h) = match k {
                        0 => (ql, _mm256_slli_epi16(qh, 4)),
                        1 => (ql, _mm256_slli_epi16(qh, 2)),
                        2 => (_mm256_srli_epi16(ql, 4), qh),
                        _ => (_mm256_srli_epi16(ql, 4), _mm256_srli_epi16(qh, 2)),
                    };
                    q[i] = _mm256_or_si256(_mm256_and_si256(l, low), _mm256_and_si256(h, high));
                }
                let j = 8 * n + 2 * k;
                let sc0 = _mm256_loadu_si256(sc[j].as_ptr() as *const __m256i);
                let sc1 = _mm256_loadu_si256(sc[j + 1].as_ptr() as *const __m256i);
                for ai in 0..na {
                    let yp = abase.add((a0 + ai) * rb + b * ABYTES + 4 + 128 * n + 32 * k);
                    let y = _mm256_loadu_si256(yp as *const __m256i);
                    let mut p = [_mm256_setzero_si256(); 8];
                    for i in 0..8 {
                        p[i] = lane_sums::<VNNI>(q[i], y);
                    }
                    let (r0, r1) = reduce8_halves(&p);
                    let t =
                        _mm256_add_epi32(_mm256_mullo_epi32(r0, sc0), _mm256_mullo_epi32(r1, sc1));
                    sums[ai] = _mm256_add_epi32(sums[ai], t);
                }
            }
        }
        let dw = load_f16x8(&ptrs, off + 208);
        for ai in 0..na {
            let yb = std::slice::from_raw_parts(abase.add((a0 + ai) * rb + b * ABYTES), ABYTES);
            // The codes are stored +32: subtract 32 · Σ_j scale_j · bsums_j.
            let mut c = _mm256_setzero_si256();
            for (j, sj) in sc.iter().enumerate() {
                let bs = i16::from_le_bytes([yb[260 + 2 * j], yb[261 + 2 * j]]) as i32;
                let sv = _mm256_loadu_si256(sj.as_ptr() as *const __m256i);
                c = _mm256_add_epi32(c, _mm256_mullo_epi32(sv, _mm256_set1_epi32(bs)));
            }
            let s = _mm256_sub_epi32(sums[ai], _mm256_slli_epi32(c, 5));
            let yd = _mm256_set1_ps(f32_at(yb, 0));
            let t = _mm256_mul_ps(_mm256_cvtepi32_ps(s), dw);
            acc[ai] = _mm256_fmadd_ps(t, yd, acc[ai]);
        }
    }
    for ai in 0..na {
        _mm256_storeu_ps(out[ai].as_mut_ptr(), acc[ai]);
    }
}

impl crate::matmul::Kernel for Q6K {
    const QTYPE: crate::QuantType = crate::QuantType::Q6K;
    fn tile(
        isa: Isa,
        w: &[&[u8]; 8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx2 is only passed after checking the CPU.
            Isa::Avx2 if Order::for_rows(acts.rows()) == Order::PerBlock => unsafe {
                tile8_avx2(w, acts, a0, a1, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx512Vnni is only passed after checking the CPU.
            Isa::Avx512Vnni if Order::for_rows(acts.rows()) == Order::PerBlock => unsafe {
                tile8_vnni(w, acts, a0, a1, out)
            },
            _ => {
                let order = Order::for_rows(acts.rows());
                for (ai, o) in (a0..a1).zip(out.iter_mut()) {
                    let a = acts.row(ai);
                    for (oi, wi) in o.iter_mut().zip(w.iter()) {
                        *oi = match order {
                            Order::Lanes => crate::vec_dot_with(isa, crate::QuantType::Q6K, wi, a),
                            Order::PerBlock => vec_dot_scalar_in(wi, a, order),
                        };
                    }
                }
            }
        }
    }
}
