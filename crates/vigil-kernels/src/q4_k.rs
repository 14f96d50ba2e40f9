//! Q4_K weights × Q8_K activations.
//!
//! Block layout (144 bytes, 256 weights in 8 sub-blocks of 32, ggml `block_q4_K`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | `d`: f16 super-scale |
//! | 2..4 | `dmin`: f16 super-scale of the minima |
//! | 4..16 | `scales[12]`: 8 six-bit scales `sc[j]` and 8 six-bit minima `m[j]`: for `j < 4` `sc = scales[j] & 63`, `m = scales[j + 4] & 63`; for `j ≥ 4` `sc = (scales[j + 4] & 15) \| (scales[j − 4] >> 6) << 4`, `m = (scales[j + 4] >> 4) \| (scales[j] >> 6) << 4` |
//! | 16..144 | `qs[128]`: four chunks of 32 bytes; chunk `c` holds sub-block `2c` in its low nibbles and `2c + 1` in its high nibbles (weight `64c + l` = low nibble of `qs[32c + l]`, weight `64c + 32 + l` = its high nibble) |
//!
//! Value = `d · sc[j] · q − dmin · m[j]`. The kernels compute exact integer sums
//! `S = Σ_j sc[j] Σ q·y` and `M = Σ_j m[j] (bsums[2j] + bsums[2j+1])` and accumulate
//! `acc = fma(S, d · d_y, acc)`, `mins = fma(M, dmin · d_y, mins)` in f32, returning
//! `acc − mins`. That is the order of llama.cpp's x86 kernels for Q4_K (the repacked
//! `ggml_gemv/gemm_q4_K_8x8_q8_K` it uses on AVX2 machines), which vigil follows so that
//! its logits reproduce llama.cpp's bit for bit — including their one difference:
//! llama.cpp's batched kernel takes activation rows four at a time and applies the
//! scales once per 64 values (per pair of sub-blocks), its single-row kernel (decode,
//! and the last `rows % 4` rows of a batch) once per 256. [`Order`] names the two; every
//! path is bit-identical to the scalar code for the same order.

use crate::act::QuantizedActs;
use crate::format::{f16_at, f32_at};
use crate::Isa;

/// Marker type of the format.
pub struct Q4K;

const BYTES: usize = 144;
const ABYTES: usize = 292;

/// The 8 scales and 8 minima of a block.
fn scales_mins(s: &[u8]) -> ([i32; 8], [i32; 8]) {
    let mut sc = [0i32; 8];
    let mut m = [0i32; 8];
    for j in 0..8 {
        if j < 4 {
            sc[j] = (s[j] & 63) as i32;
            m[j] = (s[j + 4] & 63) as i32;
        } else {
            sc[j] = ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)) as i32;
            m[j] = ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as i32;
        }
    }
    (sc, m)
}

/// Row of weights as f32 (`out.len()` = 256 × blocks).
pub fn dequantize_row(w: &[u8], out: &mut [f32]) {
    assert_eq!(w.len() / BYTES * 256, out.len(), "output length");
    for (b, o) in w.chunks_exact(BYTES).zip(out.chunks_exact_mut(256)) {
        let d = f16_at(b, 0);
        let dmin = f16_at(b, 2);
        let (sc, m) = scales_mins(&b[4..16]);
        for c in 0..4 {
            let (d1, m1) = (d * sc[2 * c] as f32, dmin * m[2 * c] as f32);
            let (d2, m2) = (d * sc[2 * c + 1] as f32, dmin * m[2 * c + 1] as f32);
            for l in 0..32 {
                let q = b[16 + 32 * c + l];
                o[64 * c + l] = d1 * (q & 0x0F) as f32 - m1;
                o[64 * c + 32 + l] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

fn bsum(yb: &[u8], g: usize) -> i32 {
    i16::from_le_bytes([yb[260 + 2 * g], yb[261 + 2 * g]]) as i32
}

/// Where the f32 accumulation happens (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Order {
    /// Once per 256-value block: llama.cpp's single-row kernel.
    PerBlock,
    /// Once per 64 values: llama.cpp's kernel for groups of four rows.
    PerPair,
}

impl Order {
    /// The order llama.cpp uses for activation row `row` of a matmul over `rows` rows.
    pub fn for_row(row: usize, rows: usize) -> Order {
        if row < rows - rows % 4 {
            Order::PerPair
        } else {
            Order::PerBlock
        }
    }
}

/// Weight row · Q8_K activation row (ggml bytes), portable code, single-row order.
pub fn vec_dot_scalar(w: &[u8], a: &[u8]) -> f32 {
    vec_dot_scalar_in(w, a, Order::PerBlock)
}

/// [`vec_dot_scalar`] in a given accumulation order.
pub fn vec_dot_scalar_in(w: &[u8], a: &[u8], order: Order) -> f32 {
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let (mut acc, mut mins) = (0f32, 0f32);
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        let (sc, m) = scales_mins(&b[4..16]);
        let yd = f32_at(yb, 0);
        let (dd, dm) = (f16_at(b, 0) * yd, f16_at(b, 2) * yd);
        let (mut s, mut mm) = (0i32, 0i32);
        for c in 0..4 {
            let (mut lo, mut hi) = (0i32, 0i32);
            for l in 0..32 {
                let q = b[16 + 32 * c + l];
                lo += (q & 0x0F) as i32 * yb[4 + 64 * c + l] as i8 as i32;
                hi += (q >> 4) as i32 * yb[4 + 64 * c + 32 + l] as i8 as i32;
            }
            s += sc[2 * c] * lo + sc[2 * c + 1] * hi;
            mm += pair_mins(&m, yb, c);
            if order == Order::PerPair {
                acc = (s as f32).mul_add(dd, acc);
                mins = (mm as f32).mul_add(dm, mins);
                (s, mm) = (0, 0);
            }
        }
        if order == Order::PerBlock {
            acc = (s as f32).mul_add(dd, acc);
            mins = (mm as f32).mul_add(dm, mins);
        }
    }
    acc - mins
}

/// The minima term of sub-blocks `2c` and `2c + 1`.
fn pair_mins(m: &[i32; 8], yb: &[u8], c: usize) -> i32 {
    (2 * c..2 * c + 2)
        .map(|j| m[j] * (bsum(yb, 2 * j) + bsum(yb, 2 * j + 1)))
        .sum()
}

/// Weight row · Q8_K activation row, best instruction set available.
pub fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
    crate::vec_dot_with(Isa::detect(), crate::QuantType::Q4K, w, a)
}

#[cfg(target_arch = "x86_64")]
crate::tile8_entry_points!();

/// Eight weight rows × activation rows `a0..a1` (at most 16), bit-identical to
/// [`vec_dot_scalar_in`] in each row's [`Order::for_row`]: per super-block and sub-block, each row's 32 codes are unpacked
/// once for all activation rows; the 8 rows' integer sums are reduced into one vector
/// (lane = weight row) and scaled by the rows' sub-block scales there.
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
    use crate::x86::{lane_sums, load_f16x8, reduce8};
    use std::arch::x86_64::*;
    let (na, nb) = crate::block32::check_tile(w, acts, a0, a1, out, BYTES);
    let rb = acts.row_bytes();
    let rows = acts.rows();
    let ptrs: [*const u8; 8] = std::array::from_fn(|i| w[i].as_ptr());
    let abase = acts.bytes.as_ptr();
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); MAX_TILE_ROWS];
    let mut mins = [_mm256_setzero_ps(); MAX_TILE_ROWS];
    for b in 0..nb {
        let off = b * BYTES;
        // sc[j][i], mn[j][i]: sub-block j of weight row i.
        let mut sc = [[0i32; 8]; 8];
        let mut mn = [[0i32; 8]; 8];
        for i in 0..8 {
            let (s, m) = scales_mins(&w[i][off + 4..off + 16]);
            for j in 0..8 {
                sc[j][i] = s[j];
                mn[j][i] = m[j];
            }
        }
        let dw = load_f16x8(&ptrs, off);
        let dmw = load_f16x8(&ptrs, off + 2);
        let mut sums = [_mm256_setzero_si256(); MAX_TILE_ROWS];
        let mut msums = [_mm256_setzero_si256(); MAX_TILE_ROWS];
        for c in 0..4 {
            for h in 0..2 {
                let j = 2 * c + h;
                let mut q = [_mm256_setzero_si256(); 8];
                for i in 0..8 {
                    let bytes =
                        _mm256_loadu_si256(ptrs[i].add(off + 16 + 32 * c) as *const __m256i);
                    q[i] = if h == 0 {
                        _mm256_and_si256(bytes, low)
                    } else {
                        _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low)
                    };
                }
                let scv = _mm256_loadu_si256(sc[j].as_ptr() as *const __m256i);
                for ai in 0..na {
                    let yp = abase.add((a0 + ai) * rb + b * ABYTES + 4 + 64 * c + 32 * h);
                    let y = _mm256_loadu_si256(yp as *const __m256i);
                    let mut p = [_mm256_setzero_si256(); 8];
                    for i in 0..8 {
                        p[i] = lane_sums::<VNNI>(q[i], y);
                    }
                    let r = reduce8(&p);
                    sums[ai] = _mm256_add_epi32(sums[ai], _mm256_mullo_epi32(r, scv));
                }
            }
            for ai in 0..na {
                let yb = std::slice::from_raw_parts(abase.add((a0 + ai) * rb + b * ABYTES), ABYTES);
                for j in 2 * c..2 * c + 2 {
                    let ys = bsum(yb, 2 * j) + bsum(yb, 2 * j + 1);
                    let mv = _mm256_loadu_si256(mn[j].as_ptr() as *const __m256i);
                    msums[ai] =
                        _mm256_add_epi32(msums[ai], _mm256_mullo_epi32(mv, _mm256_set1_epi32(ys)));
                }
                let last = c == 3;
                if last || Order::for_row(a0 + ai, rows) == Order::PerPair {
                    let yd = _mm256_set1_ps(f32_at(yb, 0));
                    let (s, m) = (_mm256_cvtepi32_ps(sums[ai]), _mm256_cvtepi32_ps(msums[ai]));
                    acc[ai] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, yd), acc[ai]);
                    mins[ai] = _mm256_fmadd_ps(m, _mm256_mul_ps(dmw, yd), mins[ai]);
                    sums[ai] = _mm256_setzero_si256();
                    msums[ai] = _mm256_setzero_si256();
                }
            }
        }
    }
    for ai in 0..na {
        _mm256_storeu_ps(out[ai].as_mut_ptr(), _mm256_sub_ps(acc[ai], mins[ai]));
    }
}

/// Weight row · Q8_K activation row with AVX2; bit-identical to [`vec_dot_scalar`].
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C ([`crate::Isa::avx2_available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_avx2(w: &[u8], a: &[u8]) -> f32 {
    vec_dot_body(w, a)
}

/// Weight row · Q8_K activation row with AVX-512 VNNI (and GFNI where the CPU has it):
/// the decode kernel; bit-identical to [`vec_dot_scalar`].
///
/// # Safety
/// AVX2, FMA, F16C, AVX-512 F/VL/BW and VNNI must be available.
#[cfg(target_arch = "x86_64")]
pub unsafe fn vec_dot_vnni(w: &[u8], a: &[u8]) -> f32 {
    if crate::x86::gfni_available() {
        vec_dot_wide_gfni(w, a)
    } else {
        vec_dot_wide(w, a)
    }
}

/// [`vec_dot_vnni`] without GFNI.
///
/// # Safety
/// As [`vec_dot_vnni`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
unsafe fn vec_dot_wide(w: &[u8], a: &[u8]) -> f32 {
    vec_dot_wide_body::<false>(w, a)
}

/// [`vec_dot_vnni`] with GFNI.
///
/// # Safety
/// As [`vec_dot_vnni`], and the CPU must have GFNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni,gfni")]
unsafe fn vec_dot_wide_gfni(w: &[u8], a: &[u8]) -> f32 {
    vec_dot_wide_body::<true>(w, a)
}

/// [`vec_dot_body`] on 512-bit vectors, with fewer operations per block: the integer sums
/// `s = Σⱼ scⱼ · (qⱼ · yⱼ)` and `m = Σⱼ mnⱼ · (bsumⱼ)` are exact whatever the order of
/// their additions, so only the f32 steps (one fused add each per block) must stay
/// ggml's, and they do.
///
/// Per block: the 32 bytes of sub-blocks `2c` and `2c + 1` become their 64 codes in one
/// register (low nibbles, then high: [`crate::x86::nibble_halves`]), which lines up with
/// 64 contiguous activation bytes, so one `vpdpbusd` gives both sub-blocks' lane sums
/// (|sum| ≤ 4 · 15 · 128, an i16). Two pairs packed to i16 and one `vpdpwssd` with each
/// lane's scale then add up the scaled sums (the AVX2 body needs a `vpmaddubsw`, a
/// `vpmaddwd` and a scale shuffle per sub-block for the same).
///
/// # Safety
/// The features of the entry point that inlines it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn vec_dot_wide_body<const GFNI: bool>(w: &[u8], a: &[u8]) -> f32 {
    use std::arch::x86_64::*;
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    // `packs(p[2k], p[2k + 1])` holds, per 128-bit chunk c, four sums of p[2k]'s lanes
    // 4c.. then four of p[2k + 1]'s; lanes 0..8 of p[i] are sub-block 2i, 8..16 sub-block
    // 2i + 1. Word w of the pack then belongs to sub-block `SUB[w] + 4k`.
    let sub: [i16; 32] = std::array::from_fn(|w| {
        let (c, i) = (w / 8, w % 8);
        (if i < 4 { 0 } else { 2 }) + (c / 2) as i16
    });
    let idx01 = _mm512_loadu_si512(sub.as_ptr() as *const __m512i);
    let idx23 = _mm512_add_epi16(idx01, _mm512_set1_epi16(4));
    let (mut acc, mut mins) = (0f32, 0f32);
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        crate::x86::prefetch_ahead::<BYTES>(b.as_ptr());
        let (qp, yp) = (b.as_ptr().add(16), yb.as_ptr().add(4));
        let p: [__m512i; 4] = std::array::from_fn(|c| {
            let codes = crate::x86::nibble_halves::<GFNI>(qp.add(32 * c));
            let y = _mm512_loadu_si512(yp.add(64 * c) as *const __m512i);
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, y)
        });
        let (sc, mn) = scale_words(b.as_ptr().add(4));
        let sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(word_bytes(sc)));
        let t = _mm512_dpwssd_epi32(
            _mm512_setzero_si512(),
            _mm512_packs_epi32(p[0], p[1]),
            _mm512_permutexvar_epi16(idx01, sc16),
        );
        let t = _mm512_dpwssd_epi32(
            t,
            _mm512_packs_epi32(p[2], p[3]),
            _mm512_permutexvar_epi16(idx23, sc16),
        );
        let t8 = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64::<1>(t));
        finish_block(b, yb, t8, mn, &mut acc, &mut mins);
    }
    acc - mins
}

/// Weight row · activation row in [`Order::PerBlock`], bit-identical to
/// [`vec_dot_scalar_in`]. Per block the integer sums `s = Σⱼ scⱼ · (qⱼ · yⱼ)` and `m =
/// Σⱼ mnⱼ · bsumⱼ` are exact whatever the order of their additions, so they are built
/// the cheapest way: each sub-block's byte products (`vpmaddubsw`) are multiplied by its
/// scale and paired in one `vpmaddwd` (the scale broadcast by a byte shuffle of the
/// block's eight scales as i16), the minima against the activation's pair sums in
/// another, and one horizontal reduction gives both; only the two f32 fused adds per
/// block are ggml's order. (Reducing the eight sub-block vectors first and multiplying
/// by the scales in 32 bits took about half again as many operations: 12 GB/s from L2.)
/// A row is one linear read of its weights: rows one after another stream best on this
/// machine (a tile's eight rows side by side made a Q4_K decode step compute-bound at 8
/// GB/s). The AVX2 decode kernel; with AVX-512 VNNI, [`vec_dot_wide_body`] does the same
/// with fewer operations.
///
/// # Safety
/// The features of the entry point that inlines it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn vec_dot_body(w: &[u8], a: &[u8]) -> f32 {
    use std::arch::x86_64::*;
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let low = _mm256_set1_epi8(0x0F);
    // pick[j]: scale j (an i16 of the eight) in every word.
    let mut pick = [_mm256_setzero_si256(); 8];
    for (j, p) in pick.iter_mut().enumerate() {
        *p = _mm256_set1_epi16((2 * j as i16) | (2 * j as i16 + 1) << 8);
    }
    let (mut acc, mut mins) = (0f32, 0f32);
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        crate::x86::prefetch_ahead::<BYTES>(b.as_ptr());
        let (qp, yp) = (b.as_ptr().add(16), yb.as_ptr().add(4));
        let (sc, mn) = scale_words(b.as_ptr().add(4));
        let sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(word_bytes(sc)));
        let mut isum = _mm256_setzero_si256();
        for c in 0..4 {
            let q = _mm256_loadu_si256(qp.add(32 * c) as *const __m256i);
            let lo = _mm256_and_si256(q, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            let ylo = _mm256_loadu_si256(yp.add(64 * c) as *const __m256i);
            let yhi = _mm256_loadu_si256(yp.add(64 * c + 32) as *const __m256i);
            let plo = _mm256_madd_epi16(
                _mm256_maddubs_epi16(lo, ylo),
                _mm256_shuffle_epi8(sc16, pick[2 * c]),
            );
            let phi = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, yhi),
                _mm256_shuffle_epi8(sc16, pick[2 * c + 1]),
            );
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
        }
        finish_block(b, yb, isum, mn, &mut acc, &mut mins);
    }
    acc - mins
}

/// The end of a block in both single-row kernels ([`vec_dot_body`], [`vec_dot_wide_body`]):
/// the minima's term (words 2j and 2j + 1 of the activation's 16 sums both take minimum
/// j, one `vpmaddwd`), reduced together with the lanes of the scaled sums `isum` into
/// the exact `s` and `m`, then ggml's two f32 fused adds into `acc` and `mins`.
///
/// # Safety
/// AVX2, FMA and F16C enabled in the caller; `b` and `yb` are whole blocks.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn finish_block(
    b: &[u8],
    yb: &[u8],
    isum: std::arch::x86_64::__m256i,
    mn: [u32; 2],
    acc: &mut f32,
    mins: &mut f32,
) {
    use std::arch::x86_64::*;
    let mnb = word_bytes(mn);
    let mn16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mnb, mnb));
    let bsums = _mm256_loadu_si256(yb.as_ptr().add(260) as *const __m256i);
    let msum = _mm256_madd_epi16(bsums, mn16);
    // [s, m] from the two vectors' lanes.
    let x = _mm256_hadd_epi32(isum, msum);
    let x = _mm256_hadd_epi32(x, x);
    let x = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x));
    let (s, m) = (_mm_cvtsi128_si32(x), _mm_extract_epi32::<1>(x));
    let yd = f32_at(yb, 0);
    *acc = (s as f32).mul_add(crate::x86::f16c(b.as_ptr()) * yd, *acc);
    *mins = (m as f32).mul_add(crate::x86::f16c(b.as_ptr().add(2)) * yd, *mins);
}

/// A pair of [`scale_words`] words as the low 8 bytes of a vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn word_bytes(v: [u32; 2]) -> std::arch::x86_64::__m128i {
    std::arch::x86_64::_mm_cvtsi64_si128((v[0] as u64 | (v[1] as u64) << 32) as i64)
}

/// The eight 6-bit scales and eight minima of a block as bytes (scale `j` in byte `j` of
/// the pair of words), unpacked a 32-bit word at a time (`s` points at the 12 scale bytes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn scale_words(s: *const u8) -> ([u32; 2], [u32; 2]) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let word = |k: usize| (s.add(4 * k) as *const u32).read_unaligned();
    let (u0, u1, u2) = (word(0), word(1), word(2));
    // Scales 0..4 and minima 0..4 are the low 6 bits of bytes 0..4 and 4..8; scales and
    // minima 4..8 take their low 4 bits from bytes 8..12 and their top 2 bits from the
    // top bits of bytes 0..4 and 4..8.
    let sc = [u0 & LOW6, (u2 & LOW4) | (((u0 >> 6) & LOW2) << 4)];
    let mn = [u1 & LOW6, ((u2 >> 4) & LOW4) | (((u1 >> 6) & LOW2) << 4)];
    (sc, mn)
}

impl crate::matmul::Kernel for Q4K {
    const QTYPE: crate::QuantType = crate::QuantType::Q4K;
    fn tile(
        isa: Isa,
        w: &[&[u8]; 8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        match isa {
            // Decode: rows one after another (see `vec_dot_body`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni if a1 - a0 == 1 => {
                for (o, wi) in out[0].iter_mut().zip(w) {
                    // SAFETY: the caller passes these ISAs only after checking the CPU.
                    *o = unsafe {
                        match isa {
                            Isa::Avx512Vnni => vec_dot_vnni(wi, acts.row(a0)),
                            _ => vec_dot_avx2(wi, acts.row(a0)),
                        }
                    };
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx2 is only passed after checking the CPU.
            Isa::Avx2 => unsafe { tile8_avx2(w, acts, a0, a1, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx512Vnni is only passed after checking the CPU.
            Isa::Avx512Vnni => unsafe { tile8_vnni(w, acts, a0, a1, out) },
            _ => {
                for (ai, o) in (a0..a1).zip(out.iter_mut()) {
                    let a = acts.row(ai);
                    let order = Order::for_row(ai, acts.rows());
                    for (oi, wi) in o.iter_mut().zip(w.iter()) {
                        *oi = vec_dot_scalar_in(wi, a, order);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The 512-bit decode body with and without GFNI gives the scalar dot's bits, over
    /// random blocks whose codes and activations reach their extremes.
    #[test]
    fn the_wide_decode_bodies_give_the_scalar_bits() {
        if !crate::Isa::vnni_available() {
            return;
        }
        let mut s = 5u64;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u32
        };
        for round in 0..40 {
            let nb = 1 + round % 5;
            let mut w: Vec<u8> = (0..nb * BYTES).map(|_| next() as u8).collect();
            for block in w.chunks_mut(BYTES) {
                let d = half::f16::from_f32(0.002 + (next() % 100) as f32 / 10_000.0);
                let dmin = half::f16::from_f32((next() % 100) as f32 / 20_000.0);
                block[..2].copy_from_slice(&d.to_bits().to_le_bytes());
                block[2..4].copy_from_slice(&dmin.to_bits().to_le_bytes());
                if round % 4 == 0 {
                    block[16..].fill(0xFF); // every code 15
                }
            }
            let x: Vec<f32> = (0..nb * 256)
                .map(|i| match (round % 4, i % 7) {
                    (0, _) => {
                        if i % 2 == 0 {
                            -3.0
                        } else {
                            3.0
                        }
                    }
                    (_, 0) => 50.0 - (next() % 100) as f32,
                    _ => (next() % 2000) as f32 / 1000.0 - 1.0,
                })
                .collect();
            let mut a = vec![0u8; nb * ABYTES];
            crate::act::quantize_row(crate::format::ActType::Q8K, &x, &mut a);
            let want = vec_dot_scalar(&w, &a).to_bits();
            // SAFETY: vnni_available() checked the features; GFNI is checked before use.
            unsafe {
                assert_eq!(vec_dot_wide(&w, &a).to_bits(), want, "round {round}");
                if crate::x86::gfni_available() {
                    assert_eq!(vec_dot_wide_gfni(&w, &a).to_bits(), want, "round {round}");
                }
            }
        }
    }
}
