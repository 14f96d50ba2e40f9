//! The row-group layout of the 32-value block formats (Q4_0, Q4_1, Q5_0, Q8_0), and the
//! kernels that read it: with AVX2 (one row's 8 lanes to a 256-bit vector) and with
//! AVX-512 VNNI (two rows to a 512-bit vector).
//!
//! Why: a decode step multiplies every weight row by one activation row, and in ggml's
//! order each row's blocks form one chain of dependent FMAs. One row at a time, a Q4_1
//! matrix streams at ~16 GB/s on this machine however fast the memory is; two rows side by
//! side in the GGUF's row-major layout are two address streams, which the hardware
//! prefetcher follows badly (half the speed). With the blocks of 8 rows stored together,
//! one linear stream feeds 8 independent chains, and the 8 rows' scales load and convert
//! as one vector (`examples/decode_layouts.rs` measures the layouts; BENCHMARKS.md,
//! session 11).
//!
//! Layout ([`Layout::RowGroups`](crate::Layout)): rows `8g..8g + 8` keep the bytes they
//! have in the row-major matrix (so a matrix keeps its size, and rows after the last full
//! group stay row-major), rearranged block column by block column. Column `b` of a group
//! (8 × the block size, at `b · 8 · block_bytes` within the group) holds:
//!
//! ```text
//! d × 8        the 8 rows' f16 scales (16 bytes)
//! extra × 8    what lies between d and the codes: Q4_1's f16 minimum m (8 · 2 bytes),
//!              Q5_0's high bits qh transposed (32 bytes: bit k of byte j is bit j of row
//!              k's qh, i.e. bit 4 of its code j); nothing for Q4_0 and Q8_0
//! codes        nibble formats: 4 pairs of rows (2p, 2p + 1), 32 bytes each: byte i < 16
//!              holds element i of row 2p (low nibble) and of row 2p + 1 (high nibble),
//!              byte 16 + i element 16 + i of each; so `v & 0xF` is row 2p's 32 codes in
//!              element order and `(v >> 4) & 0xF` row 2p + 1's.
//!              Q8_0: the 8 rows' 32 code bytes, as stored
//! ```
//!
//! Q5_0's transposed high bits let a kernel take row k's fifth bits from one vector of the
//! column with a shift and an AND (one 16-bit shift by `4 − k` puts bit k of every byte on
//! bit 4; what it moves in from the neighbouring byte lands elsewhere), where the GGUF's
//! order needs a byte shuffle, a compare and two masks per row. For AVX-512 the same
//! bytes give each pair of rows its byte mask with one `vptestmb`.
//!
//! Every row's arithmetic is [`crate::block32`]'s, in the same order, so a product over a
//! packed matrix is bit-identical to one over the row-major matrix. Paths without a
//! grouped kernel (prefill tiles, other instruction sets) unpack a group into row-major
//! bytes first ([`unpack_group`]).

use crate::act::QuantizedActs;
use crate::block32::Fmt32;
use crate::format::QuantType;

/// Rows per group.
pub(crate) const GROUP: usize = 8;

/// Code bytes of a block: 16 bytes of nibbles, or Q8_0's 32 signed bytes.
const fn code_bytes<F: Fmt32>() -> usize {
    if F::SIGNED {
        32
    } else {
        16
    }
}

/// Bytes between the scale and the codes.
const fn extra_bytes<F: Fmt32>() -> usize {
    F::BYTES - 2 - code_bytes::<F>()
}

/// Packs block column `b` of `GROUP` row-major rows (`rows`, `row_bytes` each) into
/// `col`.
fn pack_column<F: Fmt32>(rows: &[u8], row_bytes: usize, b: usize, col: &mut [u8]) {
    let (e, c) = (extra_bytes::<F>(), code_bytes::<F>());
    let codes_at = (2 + e) * GROUP;
    let block = |k: usize| &rows[k * row_bytes + b * F::BYTES..k * row_bytes + (b + 1) * F::BYTES];
    let mut transposed = [0u8; 32];
    for k in 0..GROUP {
        let blk = block(k);
        col[2 * k..2 * k + 2].copy_from_slice(&blk[..2]);
        if F::QTYPE == QuantType::Q5_0 {
            let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
            for (j, t) in transposed.iter_mut().enumerate() {
                *t |= (((qh >> j) & 1) as u8) << k;
            }
        } else {
            col[2 * GROUP + e * k..2 * GROUP + e * (k + 1)].copy_from_slice(&blk[2..2 + e]);
        }
        if F::SIGNED {
            col[codes_at + c * k..codes_at + c * (k + 1)].copy_from_slice(&blk[2 + e..]);
        }
    }
    if F::QTYPE == QuantType::Q5_0 {
        col[2 * GROUP..2 * GROUP + 32].copy_from_slice(&transposed);
    }
    if !F::SIGNED {
        for p in 0..GROUP / 2 {
            let (lo, hi) = (&block(2 * p)[2 + e..], &block(2 * p + 1)[2 + e..]);
            let pair = &mut col[codes_at + 32 * p..codes_at + 32 * (p + 1)];
            for i in 0..16 {
                pair[i] = (lo[i] & 0x0F) | (hi[i] << 4);
                pair[16 + i] = (lo[i] >> 4) | (hi[i] & 0xF0);
            }
        }
    }
}

/// The inverse of [`pack_column`]: column `col` back into block column `b` of the rows.
fn unpack_column<F: Fmt32>(col: &[u8], rows: &mut [u8], row_bytes: usize, b: usize) {
    let (e, c) = (extra_bytes::<F>(), code_bytes::<F>());
    let codes_at = (2 + e) * GROUP;
    let at = |k: usize| k * row_bytes + b * F::BYTES;
    for k in 0..GROUP {
        let blk = &mut rows[at(k)..at(k) + F::BYTES];
        blk[..2].copy_from_slice(&col[2 * k..2 * k + 2]);
        if F::QTYPE == QuantType::Q5_0 {
            let qh = (0..32).fold(0u32, |qh, j| {
                qh | (((col[2 * GROUP + j] >> k) & 1) as u32) << j
            });
            blk[2..6].copy_from_slice(&qh.to_le_bytes());
        } else {
            blk[2..2 + e].copy_from_slice(&col[2 * GROUP + e * k..2 * GROUP + e * (k + 1)]);
        }
        if F::SIGNED {
            blk[2 + e..].copy_from_slice(&col[codes_at + c * k..codes_at + c * (k + 1)]);
        }
    }
    if !F::SIGNED {
        for p in 0..GROUP / 2 {
            let pair = &col[codes_at + 32 * p..codes_at + 32 * (p + 1)];
            let (q0, q1) = (at(2 * p) + 2 + e, at(2 * p + 1) + 2 + e);
            for i in 0..16 {
                let (lo, hi) = (pair[i], pair[16 + i]);
                rows[q0 + i] = (lo & 0x0F) | (hi << 4);
                rows[q1 + i] = (lo >> 4) | (hi & 0xF0);
            }
        }
    }
}

/// `GROUP` row-major rows (`src`) → one packed group (`dst`, the same length).
fn pack_group_of<F: Fmt32>(src: &[u8], dst: &mut [u8]) {
    let row_bytes = src.len() / GROUP;
    for (b, col) in dst.chunks_exact_mut(GROUP * F::BYTES).enumerate() {
        pack_column::<F>(src, row_bytes, b, col);
    }
}

/// One packed group (`src`) → `GROUP` row-major rows (`dst`, the same length).
fn unpack_group_of<F: Fmt32>(src: &[u8], dst: &mut [u8]) {
    let row_bytes = dst.len() / GROUP;
    for (b, col) in src.chunks_exact(GROUP * F::BYTES).enumerate() {
        unpack_column::<F>(col, dst, row_bytes, b);
    }
}

/// Whether `qtype` has the row-group layout.
pub(crate) fn packable(qtype: QuantType) -> bool {
    matches!(
        qtype,
        QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q5_0 | QuantType::Q8_0
    )
}

/// Packs `GROUP` row-major rows of `qtype` (`src`) into `dst` (same length).
pub(crate) fn pack_group(qtype: QuantType, src: &[u8], dst: &mut [u8]) {
    match qtype {
        QuantType::Q4_0 => pack_group_of::<crate::q4_0::Q4_0>(src, dst),
        QuantType::Q4_1 => pack_group_of::<crate::q4_1::Q4_1>(src, dst),
        QuantType::Q5_0 => pack_group_of::<crate::q5_0::Q5_0>(src, dst),
        QuantType::Q8_0 => pack_group_of::<crate::q8_0::Q8_0>(src, dst),
        _ => unreachable!("{qtype:?} has no row-group layout"),
    }
}

/// Unpacks one group of `qtype` (`src`) into `GROUP` row-major rows (`dst`).
pub(crate) fn unpack_group(qtype: QuantType, src: &[u8], dst: &mut [u8]) {
    match qtype {
        QuantType::Q4_0 => unpack_group_of::<crate::q4_0::Q4_0>(src, dst),
        QuantType::Q4_1 => unpack_group_of::<crate::q4_1::Q4_1>(src, dst),
        QuantType::Q5_0 => unpack_group_of::<crate::q5_0::Q5_0>(src, dst),
        QuantType::Q8_0 => unpack_group_of::<crate::q8_0::Q8_0>(src, dst),
        _ => unreachable!("{qtype:?} has no row-group layout"),
    }
}

/// A grouped tile kernel: the 8 rows of a packed group × activation rows `a0..a1` (at
/// most 16) into `out[ai][k]`; one activation row (decode) streams the group once.
pub(crate) type GroupTileFn = fn(&[u8], &QuantizedActs, usize, usize, &mut [[f32; 8]]);

/// A grouped decode kernel over a run of packed groups: the 8 rows of each group in
/// `groups` (consecutive groups of one matrix) · activation row `a`, into `out`, 8 values
/// per group. One call for all the groups a thread takes in a decode step, where a call
/// per group paid its checks, its dispatch and the copy of its outputs every 8 rows.
pub(crate) type GroupRunFn = fn(&[u8], &QuantizedActs, usize, &mut [f32]);

/// The kernels of one format and instruction set over packed groups.
#[derive(Clone, Copy)]
pub(crate) struct GroupKernels {
    /// Any number of activation rows, one group.
    pub(crate) tile: GroupTileFn,
    /// One activation row, a run of groups.
    pub(crate) run: GroupRunFn,
}

/// The grouped kernels of `qtype` for `isa`, if there are: AVX2 ([`avx2`]) and AVX-512
/// VNNI (`vnni`; the nibble formats' decode loop takes GFNI too where the CPU has it: one
/// affine map per pair of rows instead of a shift and an AND, 1.14–1.16× the L2
/// throughput of Q4_1 and Q5_0 on an Intel Xeon).
pub(crate) fn group_kernels(isa: crate::Isa, qtype: QuantType) -> Option<GroupKernels> {
    #[cfg(target_arch = "x86_64")]
    match isa {
        crate::Isa::Avx512Vnni => return vnni::kernels(qtype, crate::x86::gfni_available()),
        crate::Isa::Avx2 => return avx2::kernels(qtype),
        crate::Isa::Scalar => {}
    }
    let _ = (isa, qtype);
    None
}

/// The checks a run kernel makes before it reads `groups` and `acts` unchecked.
#[cfg(target_arch = "x86_64")]
fn check_run_call<F: Fmt32>(groups: &[u8], acts: &QuantizedActs, a: usize, out: &[f32]) {
    use crate::block32::act_of;
    assert_eq!(acts.act, act_of::<F>());
    assert!(out.len().is_multiple_of(GROUP), "whole groups of outputs");
    let span = GROUP * acts.nb * F::BYTES;
    assert_eq!(groups.len(), out.len() / GROUP * span, "groups length");
    assert!(a < acts.rows);
}

/// The checks a grouped tile kernel makes before it reads `group` and `acts` unchecked.
#[cfg(target_arch = "x86_64")]
fn check_group_call<F: Fmt32>(
    group: &[u8],
    acts: &QuantizedActs,
    a0: usize,
    a1: usize,
    out: &[[f32; 8]],
) {
    use crate::block32::{act_of, MAX_TILE_ROWS};
    assert_eq!(acts.act, act_of::<F>());
    assert_eq!(group.len(), GROUP * acts.nb * F::BYTES, "group length");
    assert!(a0 < a1 && a1 <= acts.rows && a1 - a0 <= MAX_TILE_ROWS && out.len() >= a1 - a0);
}

/// A packed group, read column by column by the prefill tiles.
#[cfg(target_arch = "x86_64")]
struct Packed(*const u8);

#[cfg(target_arch = "x86_64")]
impl crate::block32::Columns for Packed {
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
        let col = self.0.add(b * GROUP * F::BYTES);
        if !VNNI {
            avx2::prefetch_column::<F>(col);
        }
        let dw = _mm256_cvtph_ps(_mm_loadu_si128(col as *const __m128i));
        let mw = if F::MIN {
            _mm256_cvtph_ps(_mm_loadu_si128(col.add(2 * GROUP) as *const __m128i))
        } else {
            _mm256_setzero_ps()
        };
        // A loop, not `array::from_fn`: a closure too large to inline would be compiled
        // without the caller's vector features, every intrinsic in it a call.
        let mut codes = [_mm256_setzero_si256(); GROUP];
        for (k, q) in codes.iter_mut().enumerate() {
            *q = avx2::codes::<F>(col, k);
            if VNNI && F::SIGNED {
                // `vpdpbusd` multiplies unsigned bytes: Q8_0's codes shifted by 128.
                *q = _mm256_xor_si256(*q, _mm256_set1_epi8(-128));
            }
        }
        (codes, dw, mw)
    }
}

/// The grouped kernels with AVX2, FMA and F16C (no `vpdpbusd`: the integer lane sums are
/// `vpmaddubsw` + `vpmaddwd`, as in the single-row kernels).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use crate::block32::avx2::{hsum8_ps, tile8_body};
    use crate::block32::{act_qoff, finish};
    use crate::x86::{dot_i8_i8, dot_u8_i8};
    use std::arch::x86_64::*;

    /// How far ahead of the column in hand the kernels prefetch (as the row kernels do).
    const PREFETCH: usize = crate::x86::ROW_PREFETCH;

    /// The codes of row `k` of the packed block column at `col`, as
    /// [`Fmt32::codes_avx2`] gives them for the row-major block.
    #[inline(always)]
    pub(super) unsafe fn codes<F: Fmt32>(col: *const u8, k: usize) -> __m256i {
        let (e, c) = (extra_bytes::<F>(), code_bytes::<F>());
        let codes_at = col.add((2 + e) * GROUP);
        if F::SIGNED {
            return _mm256_loadu_si256(codes_at.add(c * k) as *const __m256i);
        }
        // Rows 2p and 2p + 1 share 32 bytes: low and high nibbles.
        let v = _mm256_loadu_si256(codes_at.add(32 * (k / 2)) as *const __m256i);
        let v = if k & 1 == 1 {
            _mm256_srli_epi16::<4>(v)
        } else {
            v
        };
        let q = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
        if F::QTYPE == QuantType::Q5_0 {
            let t = _mm256_loadu_si256(col.add(2 * GROUP) as *const __m256i);
            _mm256_or_si256(q, fifth_bits_of_row(t, k))
        } else {
            q
        }
    }

    /// Row `k`'s fifth bits from a packed Q5_0 column's transposed `qh` (`t`): byte j is
    /// 0x10 where bit k of `t`'s byte j is set, else 0. A 16-bit shift moves bit k to bit
    /// 4 of the same byte; the bits it carries over from the other byte of the pair land
    /// on other bit positions, which the AND clears.
    #[inline(always)]
    unsafe fn fifth_bits_of_row(t: __m256i, k: usize) -> __m256i {
        let at4 = match k {
            0 => _mm256_slli_epi16::<4>(t),
            1 => _mm256_slli_epi16::<3>(t),
            2 => _mm256_slli_epi16::<2>(t),
            3 => _mm256_slli_epi16::<1>(t),
            4 => t,
            5 => _mm256_srli_epi16::<1>(t),
            6 => _mm256_srli_epi16::<2>(t),
            _ => _mm256_srli_epi16::<3>(t),
        };
        _mm256_and_si256(at4, _mm256_set1_epi8(0x10))
    }

    /// Prefetches the lines of block column `col` + [`PREFETCH`] bytes.
    #[inline(always)]
    pub(super) unsafe fn prefetch_column<F: Fmt32>(col: *const u8) {
        let mut l = 0;
        while l < GROUP * F::BYTES {
            _mm_prefetch::<_MM_HINT_T0>(col.wrapping_add(PREFETCH + l) as *const i8);
            l += 64;
        }
    }

    pub(super) fn kernels(qtype: QuantType) -> Option<GroupKernels> {
        fn of<F: Fmt32>() -> GroupKernels {
            GroupKernels {
                tile: tile_group_checked::<F>,
                run: run_groups_checked::<F>,
            }
        }
        Some(match qtype {
            QuantType::Q4_0 => of::<crate::q4_0::Q4_0>(),
            QuantType::Q4_1 => of::<crate::q4_1::Q4_1>(),
            QuantType::Q5_0 => of::<crate::q5_0::Q5_0>(),
            QuantType::Q8_0 => of::<crate::q8_0::Q8_0>(),
            _ => return None,
        })
    }

    /// [`dot_group`] over a run of groups.
    fn run_groups_checked<F: Fmt32>(
        groups: &[u8],
        acts: &QuantizedActs,
        a: usize,
        out: &mut [f32],
    ) {
        check_run_call::<F>(groups, acts, a, out);
        // SAFETY: as `tile_group_checked`.
        unsafe { run_groups::<F>(groups.as_ptr(), acts, a, out) }
    }

    /// # Safety
    /// As [`tile_group`]; `groups` must point at `out.len() / GROUP` packed groups.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn run_groups<F: Fmt32>(
        groups: *const u8,
        acts: &QuantizedActs,
        a: usize,
        out: &mut [f32],
    ) {
        let span = GROUP * acts.nb * F::BYTES;
        for (g, o) in out.chunks_exact_mut(GROUP).enumerate() {
            o.copy_from_slice(&dot_group::<F>(groups.add(g * span), acts, a));
        }
    }

    /// The 8 rows of a packed group × activation rows `a0..a1`: [`dot_group`] for one
    /// activation row, `block32::avx2::tile8`'s body over the packed columns for more.
    fn tile_group_checked<F: Fmt32>(
        group: &[u8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        check_group_call::<F>(group, acts, a0, a1, out);
        // SAFETY: `group_kernels` hands this out for Isa::Avx2 only, which the caller got
        // from `Isa::checked`; the sizes were checked above.
        unsafe { tile_group::<F>(group.as_ptr(), acts, a0, a1, out) }
    }

    /// # Safety
    /// AVX2, FMA and F16C must be available; `group` must point at a packed group of
    /// `acts.nb` columns; `a0..a1` as [`tile_group_checked`] checks.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile_group<F: Fmt32>(
        group: *const u8,
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        if a1 - a0 == 1 {
            out[0] = dot_group::<F>(group, acts, a0);
        } else {
            tile8_body::<F, _>(Packed(group), acts, a0, a1, out);
        }
    }

    /// The 8 rows of a packed group · activation row `a`, each bit-identical to
    /// `block32::avx2::dot` on the row-major row.
    ///
    /// One linear stream feeds 8 independent accumulator chains (one row at a time is
    /// bound by the latency of its single chain of FMAs). Per block column, once for the
    /// 8 rows: the activation block, the code bias times its lane sums (from
    /// `neg_lanes`), the 8 scales times `d_y` as one vector, Q4_1's minimum terms as one
    /// vector of 8 chains; per row: `lanes = maddubs·madd(codes, y) + bias term`,
    /// `acc = fma(d, lanes, acc)` in the row's own order.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available and enabled in the caller; `group` must point
    /// at `GROUP · acts.nb` blocks; `a < acts.rows`.
    #[inline(always)]
    unsafe fn dot_group<F: Fmt32>(group: *const u8, acts: &QuantizedActs, a: usize) -> [f32; 8] {
        let nb = acts.nb;
        let ab = acts.act.block_bytes();
        let col_bytes = GROUP * F::BYTES;
        let ybase = acts
            .bytes
            .as_ptr()
            .add(a * acts.row_bytes() + act_qoff::<F>());
        let shift = _mm_cvtsi32_si128(F::BIAS.trailing_zeros() as i32);
        let mut acc = [_mm256_setzero_ps(); GROUP];
        let mut mins = _mm256_setzero_ps();
        for b in 0..nb {
            let blk = a * nb + b;
            let col = group.add(b * col_bytes);
            prefetch_column::<F>(col);
            let y = _mm256_loadu_si256(ybase.add(b * ab) as *const __m256i);
            // −BIAS · (the sums of each group of 4 y), for all 8 rows.
            let bias = if !F::SIGNED && F::BIAS != 0 {
                let nl = acts.neg_lanes.get_unchecked(blk).as_ptr() as *const __m256i;
                _mm256_sll_epi32(_mm256_loadu_si256(nl), shift)
            } else {
                _mm256_setzero_si256()
            };
            let d8 = _mm256_mul_ps(
                _mm256_cvtph_ps(_mm_loadu_si128(col as *const __m128i)),
                _mm256_set1_ps(*acts.d.get_unchecked(blk)),
            );
            let mut d = [0f32; GROUP];
            _mm256_storeu_ps(d.as_mut_ptr(), d8);
            if F::MIN {
                let mw = _mm256_cvtph_ps(_mm_loadu_si128(col.add(2 * GROUP) as *const __m128i));
                mins = _mm256_fmadd_ps(mw, _mm256_set1_ps(*acts.s.get_unchecked(blk)), mins);
            }
            for (k, acc) in acc.iter_mut().enumerate() {
                let q = codes::<F>(col, k);
                let lanes = if F::SIGNED {
                    dot_i8_i8(q, y)
                } else {
                    _mm256_add_epi32(dot_u8_i8(q, y), bias)
                };
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(d[k]), _mm256_cvtepi32_ps(lanes), *acc);
            }
        }
        let mut m = [0f32; GROUP];
        _mm256_storeu_ps(m.as_mut_ptr(), mins);
        std::array::from_fn(|k| finish::<F>(hsum8_ps(acc[k]), m[k]))
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::*;
    use crate::block32::vnni::{bias, bias_lanes, tile8_body};
    use crate::block32::{act_qoff, finish, hsum8_ggml};
    use std::arch::x86_64::*;

    /// How far ahead of the column in hand the kernel prefetches (as the row kernels do).
    const PREFETCH: usize = crate::x86::ROW_PREFETCH;

    /// The kernels for `qtype`, with GFNI's nibble extraction or without (Q8_0 has no
    /// nibbles: the same code either way).
    pub(super) fn kernels(qtype: QuantType, gfni: bool) -> Option<GroupKernels> {
        fn pick<F: Fmt32>(gfni: bool) -> GroupKernels {
            if gfni {
                GroupKernels {
                    tile: tile_group_checked::<F, true>,
                    run: run_groups_checked::<F, true>,
                }
            } else {
                GroupKernels {
                    tile: tile_group_checked::<F, false>,
                    run: run_groups_checked::<F, false>,
                }
            }
        }
        Some(match qtype {
            QuantType::Q4_0 => pick::<crate::q4_0::Q4_0>(gfni),
            QuantType::Q4_1 => pick::<crate::q4_1::Q4_1>(gfni),
            QuantType::Q5_0 => pick::<crate::q5_0::Q5_0>(gfni),
            QuantType::Q8_0 => pick::<crate::q8_0::Q8_0>(gfni),
            _ => return None,
        })
    }

    /// [`dot_group`] over a run of groups.
    fn run_groups_checked<F: Fmt32, const GFNI: bool>(
        groups: &[u8],
        acts: &QuantizedActs,
        a: usize,
        out: &mut [f32],
    ) {
        check_run_call::<F>(groups, acts, a, out);
        assert!(
            !GFNI || crate::x86::gfni_available(),
            "GFNI is not available"
        );
        // SAFETY: as `tile_group_checked`.
        unsafe {
            if GFNI {
                run_groups_gfni::<F>(groups.as_ptr(), acts, a, out)
            } else {
                run_groups::<F>(groups.as_ptr(), acts, a, out)
            }
        }
    }

    /// # Safety
    /// As [`tile_group`]; `groups` must point at `out.len() / GROUP` packed groups.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    unsafe fn run_groups<F: Fmt32>(
        groups: *const u8,
        acts: &QuantizedActs,
        a: usize,
        out: &mut [f32],
    ) {
        run_groups_body::<F, false>(groups, acts, a, out)
    }

    /// [`run_groups`] with GFNI as well.
    ///
    /// # Safety
    /// As [`run_groups`], and the CPU must have GFNI.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni,gfni")]
    unsafe fn run_groups_gfni<F: Fmt32>(
        groups: *const u8,
        acts: &QuantizedActs,
        a: usize,
        out: &mut [f32],
    ) {
        run_groups_body::<F, true>(groups, acts, a, out)
    }

    #[inline(always)]
    unsafe fn run_groups_body<F: Fmt32, const GFNI: bool>(
        groups: *const u8,
        acts: &QuantizedActs,
        a: usize,
        out: &mut [f32],
    ) {
        let span = GROUP * acts.nb * F::BYTES;
        for (g, o) in out.chunks_exact_mut(GROUP).enumerate() {
            o.copy_from_slice(&dot_group::<F, GFNI>(groups.add(g * span), acts, a));
        }
    }

    /// The prefill tile over a packed group: `block32::vnni::tile8`'s body, its block
    /// columns read from the packed layout (scales as one load, no gathering).
    pub(super) fn tile_group_checked<F: Fmt32, const GFNI: bool>(
        group: &[u8],
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        check_group_call::<F>(group, acts, a0, a1, out);
        assert!(
            !GFNI || crate::x86::gfni_available(),
            "GFNI is not available"
        );
        // SAFETY: `group_kernels` hands this out for Isa::Avx512Vnni only, which the
        // caller got from `Isa::checked`, and GFNI was checked above; the sizes too.
        unsafe {
            if GFNI {
                tile_group_gfni::<F>(group.as_ptr(), acts, a0, a1, out)
            } else {
                tile_group::<F>(group.as_ptr(), acts, a0, a1, out)
            }
        }
    }

    /// # Safety
    /// As `block32::vnni::tile8`, `group` pointing at a packed group of `acts.nb` columns.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    unsafe fn tile_group<F: Fmt32>(
        group: *const u8,
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        tile_group_body::<F, false>(group, acts, a0, a1, out)
    }

    /// [`tile_group`] with GFNI as well.
    ///
    /// # Safety
    /// As [`tile_group`], and the CPU must have GFNI.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni,gfni")]
    unsafe fn tile_group_gfni<F: Fmt32>(
        group: *const u8,
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        tile_group_body::<F, true>(group, acts, a0, a1, out)
    }

    #[inline(always)]
    unsafe fn tile_group_body<F: Fmt32, const GFNI: bool>(
        group: *const u8,
        acts: &QuantizedActs,
        a0: usize,
        a1: usize,
        out: &mut [[f32; 8]],
    ) {
        if a1 - a0 == 1 {
            out[0] = dot_group::<F, GFNI>(group, acts, a0);
        } else {
            tile8_body::<F, _>(Packed(group), acts, a0, a1, out);
        }
    }

    /// The 8 rows of a packed group · activation row `a`, each bit-identical to
    /// `block32::vnni::dot` on the row-major row.
    ///
    /// Two rows per 512-bit vector (row `2p` in the low half, `2p + 1` in the high half;
    /// the activation block broadcast to both), so a block column costs 4 `vpdpbusd`,
    /// conversions and FMAs instead of 8: the 256-bit form of this loop was bound by
    /// those instructions, not by memory (~12 GB/s from L2 for Q5_0, about what DRAM
    /// delivers). Per block column: the 8 scales times `d_y` in one vector; per pair of
    /// rows `lanes = vpdpbusd(bias · neg_lanes, codes, y)` and `acc = fma(d, lanes, acc)`,
    /// each half its own row's chain in its own order; Q4_1's minimum terms as one vector
    /// of 8 chains.
    ///
    /// The nibble codes of a pair come out of one GFNI affine map per byte (`GFNI`) or a
    /// masked shift and an AND; Q5_0's fifth bits go in by a masked byte add. Every
    /// operation there is on exact integers, so all ways give the same codes.
    ///
    /// # Safety
    /// AVX2, FMA, F16C, AVX-512 F/VL/BW and VNNI (and GFNI with `GFNI`) must be available
    /// and enabled in the caller; `group` must point at `GROUP · acts.nb` blocks;
    /// `a < acts.rows`.
    #[inline(always)]
    unsafe fn dot_group<F: Fmt32, const GFNI: bool>(
        group: *const u8,
        acts: &QuantizedActs,
        a: usize,
    ) -> [f32; 8] {
        const PAIRS: usize = GROUP / 2;
        let nb = acts.nb;
        let ab = acts.act.block_bytes();
        let (e, c) = (extra_bytes::<F>(), code_bytes::<F>());
        let col_bytes = GROUP * F::BYTES;
        let ybase = acts
            .bytes
            .as_ptr()
            .add(a * acts.row_bytes() + act_qoff::<F>());
        let shift = _mm_cvtsi32_si128(bias::<F>().trailing_zeros() as i32);
        // Lanes 0..8 take the scale of row 2p, lanes 8..16 that of row 2p + 1.
        let idx: [__m512i; PAIRS] = std::array::from_fn(|p| {
            _mm512_inserti64x4::<1>(
                _mm512_set1_epi32(2 * p as i32),
                _mm256_set1_epi32(2 * p as i32 + 1),
            )
        });
        let mut acc = [_mm512_setzero_ps(); PAIRS];
        let mut mins = _mm256_setzero_ps();
        for b in 0..nb {
            let blk = a * nb + b;
            let col = group.add(b * col_bytes);
            let mut l = 0;
            while l < col_bytes {
                _mm_prefetch::<_MM_HINT_T0>(col.wrapping_add(PREFETCH + l) as *const i8);
                l += 64;
            }
            let codes_at = col.add((2 + e) * GROUP);
            let y = _mm512_broadcast_i64x4(_mm256_loadu_si256(ybase.add(b * ab) as *const __m256i));
            let src = _mm512_broadcast_i64x4(bias_lanes::<F>(acts, blk, shift));
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(col as *const __m128i));
            let d8 = _mm512_castps256_ps512(_mm256_mul_ps(
                dw,
                _mm256_set1_ps(*acts.d.get_unchecked(blk)),
            ));
            if F::MIN {
                let mw = _mm256_cvtph_ps(_mm_loadu_si128(col.add(2 * GROUP) as *const __m128i));
                mins = _mm256_fmadd_ps(mw, _mm256_set1_ps(*acts.s.get_unchecked(blk)), mins);
            }
            // Q5_0's transposed high bits, in both halves.
            let qt = if F::QTYPE == QuantType::Q5_0 {
                _mm512_broadcast_i64x4(_mm256_loadu_si256(col.add(2 * GROUP) as *const __m256i))
            } else {
                _mm512_setzero_si512()
            };
            for p in 0..PAIRS {
                let q = if F::SIGNED {
                    // Rows 2p and 2p + 1: 64 consecutive code bytes.
                    let v = _mm512_loadu_si512(codes_at.add(2 * c * p) as *const __m512i);
                    _mm512_xor_si512(v, _mm512_set1_epi8(-128))
                } else {
                    // Row 2p's codes in the low half, row 2p + 1's in the high half.
                    crate::x86::nibble_halves::<GFNI>(codes_at.add(32 * p))
                };
                let q = if F::QTYPE == QuantType::Q5_0 {
                    // Bit j (low half) / 32 + j (high half) of the mask: bit 2p / 2p + 1
                    // of byte j of the transposed qh, i.e. bit 4 of code j of row 2p /
                    // 2p + 1.
                    let rows = _mm512_inserti64x4::<1>(
                        _mm512_set1_epi8((1u8 << (2 * p)) as i8),
                        _mm256_set1_epi8((1u8 << (2 * p + 1)) as i8),
                    );
                    let fifth = _mm512_test_epi8_mask(qt, rows);
                    _mm512_mask_add_epi8(q, fifth, q, _mm512_set1_epi8(0x10))
                } else {
                    q
                };
                let lanes = _mm512_dpbusd_epi32(src, q, y);
                let d = _mm512_permutexvar_ps(idx[p], d8);
                acc[p] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(lanes), acc[p]);
            }
        }
        let mut m = [0f32; GROUP];
        _mm256_storeu_ps(m.as_mut_ptr(), mins);
        let mut lanes = [[0f32; 8]; GROUP];
        for (p, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(lanes[2 * p..].as_mut_ptr() as *mut f32, *a);
        }
        std::array::from_fn(|k| finish::<F>(hsum8_ggml(&lanes[k]), m[k]))
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::{matmul_with, Isa, QuantMatrix};

    /// Random blocks with a sane f16 scale (and Q4_1's minimum) in every block.
    fn matrix(t: QuantType, rows: usize, cols: usize, seed: u64) -> QuantMatrix<'static> {
        let mut s = seed;
        let mut data: Vec<u8> = (0..rows * cols / 32 * t.block_bytes())
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) as u8
            })
            .collect();
        let offsets: &[usize] = if t == QuantType::Q4_1 { &[0, 2] } else { &[0] };
        for block in data.chunks_mut(t.block_bytes()) {
            for &o in offsets {
                let scale = half::f16::from_f32(0.01 + (block[4] as f32) / 4096.0);
                block[o..o + 2].copy_from_slice(&scale.to_bits().to_le_bytes());
            }
        }
        QuantMatrix::owned(data, t, rows, cols).unwrap()
    }

    /// The decode loop over packed groups, with and without GFNI, gives each row-major
    /// row's product bit for bit.
    #[test]
    fn both_nibble_extractions_give_the_row_major_products() {
        if Isa::detect() != Isa::Avx512Vnni {
            return; // no grouped kernel on this CPU
        }
        let ways: &[bool] = if crate::x86::gfni_available() {
            &[false, true]
        } else {
            &[false]
        };
        for t in [QuantType::Q4_0, QuantType::Q4_1, QuantType::Q5_0] {
            for cols in [32, 96, 640] {
                let w = matrix(t, 16, cols, cols as u64);
                let packed = w.packed_for(Isa::Avx512Vnni).expect("a packed copy");
                let x: Vec<f32> = (0..cols)
                    .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                    .collect();
                let mut want = vec![0f32; 16];
                matmul_with(Isa::Avx512Vnni, &w, &x, 1, &mut want).unwrap();
                let acts = QuantizedActs::with_isa(Isa::Avx512Vnni, t.act_type(), &x, 1, cols);
                for &gfni in ways {
                    let tile = vnni::kernels(t, gfni).expect("grouped kernels").tile;
                    for g in 0..2 {
                        let mut out = [[0f32; 8]; 1];
                        tile(packed.group(g), &acts, 0, 1, &mut out);
                        let got: Vec<u32> = out[0].iter().map(|v| v.to_bits()).collect();
                        let row: Vec<u32> =
                            want[8 * g..8 * g + 8].iter().map(|v| v.to_bits()).collect();
                        assert_eq!(got, row, "{t:?}, {cols} columns, group {g}, GFNI {gfni}");
                    }
                }
            }
        }
    }
}
