//! Small AVX2 helpers shared by the kernels.

use std::arch::x86_64::*;

/// How far ahead the single-row kernels prefetch the weights they stream (the rows of a
/// matrix are contiguous, so this runs into the next rows): one row at a time leaves the
/// hardware prefetcher too few lines in flight for a matrix from DRAM (the 145 MB output
/// head of a Qwen2.5-0.5B-shaped model streamed at 12 GB/s without it, 18–20 with it).
pub(crate) const ROW_PREFETCH: usize = 3072;

/// Prefetches the lines of the `BYTES`-byte block [`ROW_PREFETCH`] bytes past `block`, for
/// the single-row kernels of formats whose blocks span several lines (Q4_K, Q6_K).
#[inline(always)]
pub(crate) unsafe fn prefetch_ahead<const BYTES: usize>(block: *const u8) {
    let ahead = block.wrapping_add(ROW_PREFETCH);
    let mut l = 0;
    while l < BYTES {
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(l) as *const i8);
        l += 64;
    }
    // The block's last line when it starts part-way into its first.
    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(BYTES - 1) as *const i8);
}

/// Eight vectors of 8 i32 lanes → one vector whose lane `i` is the sum of `p[i]`'s lanes.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn reduce8(p: &[__m256i; 8]) -> __m256i {
    let s01 = _mm256_hadd_epi32(p[0], p[1]);
    let s23 = _mm256_hadd_epi32(p[2], p[3]);
    let s45 = _mm256_hadd_epi32(p[4], p[5]);
    let s67 = _mm256_hadd_epi32(p[6], p[7]);
    // Per 128-bit half: [p0, p1, p2, p3] partial sums of that half.
    let s0123 = _mm256_hadd_epi32(s01, s23);
    let s4567 = _mm256_hadd_epi32(s45, s67);
    let lo = _mm256_permute2x128_si256::<0x20>(s0123, s4567);
    let hi = _mm256_permute2x128_si256::<0x31>(s0123, s4567);
    _mm256_add_epi32(lo, hi)
}

/// The little-endian f16 at `ptrs[i] + off` for i in 0..8, as 8 f32 lanes.
#[target_feature(enable = "avx2,f16c")]
#[inline]
pub(crate) unsafe fn load_f16x8(ptrs: &[*const u8; 8], off: usize) -> __m256 {
    let h = |i: usize| (ptrs[i].add(off) as *const u16).read_unaligned() as i16;
    _mm256_cvtph_ps(_mm_setr_epi16(
        h(0),
        h(1),
        h(2),
        h(3),
        h(4),
        h(5),
        h(6),
        h(7),
    ))
}

/// 16 bytes of packed nibbles → 32 bytes: low nibbles (elements 0..16) then high
/// nibbles (elements 16..32), each in 0..16.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn nibbles32(p: *const u8) -> __m256i {
    let b = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Q5_0's high bits `qh` as code bytes: byte j is 0x10 where bit j of `qh` is set, else 0.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn fifth_bits(qh: u32) -> __m256i {
    // Byte j of `spread` is byte j / 8 of qh; keep bit j % 8 of it.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(qh as i32),
        _mm256_setr_epi64x(
            0,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Signed i8 × i8 products of 32 pairs, summed in groups of 4 → 8 i32 lanes.
/// `w` may hold -128; `y` must not (activations are in -127..=127).
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn dot_i8_i8(w: __m256i, y: __m256i) -> __m256i {
    let aw = _mm256_abs_epi8(w); // |-128| = 128 read as u8: still right
    let sy = _mm256_sign_epi8(y, w);
    _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sy), _mm256_set1_epi16(1))
}

/// [`dot_u8_i8`], or with `VNNI` one `vpdpbusd` (same exact sums). Inlined into a caller
/// compiled with the features the choice needs (AVX2, plus AVX-512 VL and VNNI).
#[inline(always)]
pub(crate) unsafe fn lane_sums<const VNNI: bool>(w: __m256i, y: __m256i) -> __m256i {
    if VNNI {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, y)
    } else {
        dot_u8_i8(w, y)
    }
}

/// Unsigned (0..=63) × signed i8 products of 32 pairs, summed in groups of 4 → 8 i32.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn dot_u8_i8(w: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(w, y), _mm256_set1_epi16(1))
}

/// Like [`reduce8`] but keeps the two 128-bit halves apart: lane `i` of the first result
/// is the sum of `p[i]`'s lanes 0..4, of the second the sum of its lanes 4..8.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn reduce8_halves(p: &[__m256i; 8]) -> (__m256i, __m256i) {
    let s01 = _mm256_hadd_epi32(p[0], p[1]);
    let s23 = _mm256_hadd_epi32(p[2], p[3]);
    let s45 = _mm256_hadd_epi32(p[4], p[5]);
    let s67 = _mm256_hadd_epi32(p[6], p[7]);
    let s0123 = _mm256_hadd_epi32(s01, s23);
    let s4567 = _mm256_hadd_epi32(s45, s67);
    (
        _mm256_permute2x128_si256::<0x20>(s0123, s4567),
        _mm256_permute2x128_si256::<0x31>(s0123, s4567),
    )
}

/// The little-endian f16 at `p` as f32 with F16C's own conversion: exact, like
/// `format::f16_at`, but inline, where the `half` crate's conversion is a call (it was a
/// quarter of decode time in the single-row kernels).
#[target_feature(enable = "avx2,f16c")]
#[inline]
pub(crate) unsafe fn f16c(p: *const u8) -> f32 {
    let h = (p as *const u16).read_unaligned() as i32;
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)))
}

/// Whether the CPU has GFNI (Ice Lake and later; Cascade Lake has VNNI without it).
pub(crate) fn gfni_available() -> bool {
    std::is_x86_feature_detected!("gfni")
}

/// The 64 codes in the 32 nibble bytes at `p`: the low nibbles in the low 256 bits, the
/// high nibbles (moved down) in the high 256 bits. With `GFNI`, one affine map per byte
/// (a GF(2) bit matrix per 64-bit lane; byte 7 − i of the matrix picks the input bits
/// of output bit i) instead of a masked shift and an AND: the same bytes. Inlined into a
/// caller with AVX-512 F/BW (and GFNI with `GFNI`).
#[inline(always)]
pub(crate) unsafe fn nibble_halves<const GFNI: bool>(p: *const u8) -> __m512i {
    let v = _mm512_broadcast_i64x4(_mm256_loadu_si256(p as *const __m256i));
    if GFNI {
        const LOW: i64 = 0x0102_0408_0000_0000;
        const HIGH: i64 = 0x1020_4080_0000_0000;
        let maps = _mm512_set_epi64(HIGH, HIGH, HIGH, HIGH, LOW, LOW, LOW, LOW);
        _mm512_gf2p8affine_epi64_epi8::<0>(v, maps)
    } else {
        let v = _mm512_mask_srli_epi16::<4>(v, 0xFFFF_0000, v);
        _mm512_and_si512(v, _mm512_set1_epi8(0x0F))
    }
}
