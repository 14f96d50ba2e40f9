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
//! Value = `d · sc[j] · q − dmin · m[j]`. Per super-block the kernels compute the exact
//! integers `S = Σ_j sc[j] Σ q·y` and `M = Σ_j m[j] (bsums[2j] + bsums[2j+1])`, then
//! `acc = acc + (d_y · d) · S; acc = acc − (d_y · dmin) · M` in f32 (same order on every
//! path, so AVX2 and scalar are bit-identical).

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

/// `M = Σ_j m[j] · Σ y over sub-block j` from the activation block's bsums.
fn mins_term(m: &[i32; 8], yb: &[u8]) -> i32 {
    (0..8)
        .map(|j| m[j] * (bsum(yb, 2 * j) + bsum(yb, 2 * j + 1)))
        .sum()
}

/// Weight row · Q8_K activation row (ggml bytes), portable code.
pub fn vec_dot_scalar(w: &[u8], a: &[u8]) -> f32 {
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let mut acc = 0f32;
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        let (sc, m) = scales_mins(&b[4..16]);
        let mut s = 0i32;
        for c in 0..4 {
            let (mut lo, mut hi) = (0i32, 0i32);
            for l in 0..32 {
                let q = b[16 + 32 * c + l];
                lo += (q & 0x0F) as i32 * yb[4 + 64 * c + l] as i8 as i32;
                hi += (q >> 4) as i32 * yb[4 + 64 * c + 32 + l] as i8 as i32;
            }
            s += sc[2 * c] * lo + sc[2 * c + 1] * hi;
        }
        let yd = f32_at(yb, 0);
        acc += (yd * f16_at(b, 0)) * s as f32;
        acc -= (yd * f16_at(b, 2)) * mins_term(&m, yb) as f32;
    }
    acc
}

/// Weight row · Q8_K activation row with AVX2; bit-identical to [`vec_dot_scalar`].
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C ([`crate::Isa::avx2_available`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_avx2(w: &[u8], a: &[u8]) -> f32 {
    use crate::x86::hsum_epi32;
    use std::arch::x86_64::*;
    let nb = w.len() / BYTES;
    assert_eq!(w.len(), nb * BYTES, "weight row length");
    assert_eq!(a.len(), nb * ABYTES, "activation row length");
    let low = _mm256_set1_epi8(0x0F);
    let mut acc = 0f32;
    for (b, yb) in w.chunks_exact(BYTES).zip(a.chunks_exact(ABYTES)) {
        let (sc, m) = scales_mins(&b[4..16]);
        let qp = b.as_ptr().add(16);
        let yp = yb.as_ptr().add(4);
        let mut isum = _mm256_setzero_si256();
        for c in 0..4 {
            let bytes = _mm256_loadu_si256(qp.add(32 * c) as *const __m256i);
            let lo = _mm256_and_si256(bytes, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low);
            let ylo = _mm256_loadu_si256(yp.add(64 * c) as *const __m256i);
            let yhi = _mm256_loadu_si256(yp.add(64 * c + 32) as *const __m256i);
            let plo = _mm256_madd_epi16(
                _mm256_maddubs_epi16(lo, ylo),
                _mm256_set1_epi16(sc[2 * c] as i16),
            );
            let phi = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, yhi),
                _mm256_set1_epi16(sc[2 * c + 1] as i16),
            );
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
        }
        let s = hsum_epi32(isum);
        let yd = f32_at(yb, 0);
        acc += (yd * f16_at(b, 0)) * s as f32;
        acc -= (yd * f16_at(b, 2)) * mins_term(&m, yb) as f32;
    }
    acc
}

/// Weight row · Q8_K activation row, best instruction set available.
pub fn vec_dot(w: &[u8], a: &[u8]) -> f32 {
    crate::vec_dot_with(Isa::detect(), crate::QuantType::Q4K, w, a)
}

/// Eight weight rows × activation rows `a0..a1` (at most 16), bit-identical to
/// [`vec_dot_scalar`]: per super-block and sub-block, each row's 32 codes are unpacked
/// once for all activation rows; the 8 rows' integer sums are reduced into one vector
/// (lane = weight row) and scaled by the rows' sub-block scales there.
///
/// # Safety
/// AVX2, FMA and F16C must be available; the rows must hold `acts.nb` blocks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::needless_range_loop)] // indexed SIMD loops read clearer here
unsafe fn tile8_avx2(
    w: &[&[u8]; 8],
    acts: &QuantizedActs,
    a0: usize,
    a1: usize,
    out: &mut [[f32; 8]],
) {
    use crate::block32::MAX_TILE_ROWS;
    use crate::x86::{load_f16x8, reduce8};
    use std::arch::x86_64::*;
    let na = a1 - a0;
    assert!(na <= MAX_TILE_ROWS && out.len() >= na);
    let nb = acts.nb;
    for wi in w.iter() {
        assert_eq!(wi.len(), nb * BYTES, "weight row length");
    }
    let rb = acts.row_bytes();
    let ptrs: [*const u8; 8] = std::array::from_fn(|i| w[i].as_ptr());
    let abase = acts.bytes.as_ptr();
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); MAX_TILE_ROWS];
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
        let mut sums = [_mm256_setzero_si256(); MAX_TILE_ROWS];
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
                        p[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(q[i], y), ones);
                    }
                    let r = reduce8(&p);
                    sums[ai] = _mm256_add_epi32(sums[ai], _mm256_mullo_epi32(r, scv));
                }
            }
        }
        let dw = load_f16x8(&ptrs, off);
        let dmw = load_f16x8(&ptrs, off + 2);
        for ai in 0..na {
            let yb = std::slice::from_raw_parts(abase.add((a0 + ai) * rb + b * ABYTES), ABYTES);
            let mut m = _mm256_setzero_si256();
            for (j, mj) in mn.iter().enumerate() {
                let ys = bsum(yb, 2 * j) + bsum(yb, 2 * j + 1);
                let mv = _mm256_loadu_si256(mj.as_ptr() as *const __m256i);
                m = _mm256_add_epi32(m, _mm256_mullo_epi32(mv, _mm256_set1_epi32(ys)));
            }
            let yd = _mm256_set1_ps(f32_at(yb, 0));
            let t = _mm256_mul_ps(_mm256_mul_ps(yd, dw), _mm256_cvtepi32_ps(sums[ai]));
            acc[ai] = _mm256_add_ps(acc[ai], t);
            let t = _mm256_mul_ps(_mm256_mul_ps(yd, dmw), _mm256_cvtepi32_ps(m));
            acc[ai] = _mm256_sub_ps(acc[ai], t);
        }
    }
    for ai in 0..na {
        _mm256_storeu_ps(out[ai].as_mut_ptr(), acc[ai]);
    }
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
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx2 is only passed after checking the CPU.
            Isa::Avx2 => unsafe { tile8_avx2(w, acts, a0, a1, out) },
            _ => {
                for (ai, o) in (a0..a1).zip(out.iter_mut()) {
                    let a = acts.row(ai);
                    for (oi, wi) in o.iter_mut().zip(w.iter()) {
                        *oi = vec_dot_scalar(wi, a);
                    }
                }
            }
        }
    }
}
