//! Inference ops rounded the way llama.cpp's CPU backend (ggml) rounds them.
//!
//! The model amplifies tiny differences: a last-bit change before an activation is
//! quantised to 8 bits can flip its rounding, and llama.cpp against itself with only the
//! KV cache switched to f16 agrees on the top-1 token at just 96.6 % of positions. So to
//! reproduce llama.cpp's logits, vigil's inference path does each f32 op in ggml's order:
//! the same accumulator widths, the same association of sums and products, the same
//! exp approximation. Each function names the ggml routine it follows (ggml as vendored
//! by llama-cpp-python 0.3.36) and is checked against llama.cpp's own intermediate tensors
//! (`tools/dump_ggml_tensors.py`, `tools/compare_traces.py`).
//!
//! These are forward-only; training uses candle's differentiable ops.

use candle_core::Tensor;
use std::mem::MaybeUninit;
use std::ops::Range;

/// `ggml_compute_forward_rms_norm_f32` followed by `ggml_mul` with the weight: the sum of
/// squares in f64 (each square rounded to f32 first), `scale = 1 / sqrt(mean + eps)` in
/// f32, then `(x · scale) · w`.
pub fn rms_norm_row(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    normalize_row(sum_of_squares(x), x, w, eps, y)
}

/// ggml's sum of squares: each square rounded to f32, added in f64 from left to right.
fn sum_of_squares(x: &[f32]) -> f64 {
    x.iter().fold(0.0, |sum, &v| sum + (v * v) as f64)
}

/// [`rms_norm_row`] given the row's [`sum_of_squares`].
fn normalize_row(sum: f64, x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0f32 / (mean + eps).sqrt();
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
        *y = x * scale * w;
    }
}

/// [`rms_norm_row`] over the last dimension of an f32 tensor.
///
/// The sum of squares is one chain of dependent f64 adds per row (4 cycles each), which
/// made the norms a few percent of a Gemma 3 prefill. Rows are therefore taken four at a
/// time, their four chains side by side in one AVX2 vector: each row still adds its
/// squares in its own left-to-right order, so the sums are ggml's, bit for bit.
pub fn rms_norm(x: &Tensor, weight: &[f32], eps: f32) -> candle_core::Result<Tensor> {
    let n = weight.len();
    let y = with_f32(x, |xs| {
        map_row_groups(xs, n, 4, |_, xs, ys| {
            let mut sums = [0f64; 4];
            #[cfg(target_arch = "x86_64")]
            let grouped = if xs.len() == 4 * n && fast_dots() {
                // SAFETY: fast_dots() checked AVX2; `xs` holds four rows of `n`.
                sums = unsafe { avx2::sums_of_squares4(xs, n) };
                true
            } else {
                false
            };
            #[cfg(not(target_arch = "x86_64"))]
            let grouped = false;
            for (r, (xr, yr)) in xs.chunks_exact(n).zip(ys.chunks_exact_mut(n)).enumerate() {
                let sum = if grouped { sums[r] } else { sum_of_squares(xr) };
                normalize_row(sum, xr, weight, eps, yr);
            }
        })
    })?;
    Tensor::from_vec(y, x.shape(), x.device())
}

/// Below this many values a row-wise op runs on the calling thread (a hand-off to the
/// pool costs microseconds; a decode step's rows are a few hundred values).
const PAR_MIN_VALUES: usize = 1 << 14;

/// A new output the size of `x`, made by `f(row index, x row, y row)` for every row of
/// length `n`; on the pool when the op is big enough (prefill): left serial, these row-wise
/// ops were a third of a two-thread prefill's time. Each output row is zeroed by the task
/// that fills it, while it is in cache, rather than the whole output up front on the
/// calling thread (megabytes in a prefill, and serial).
fn map_rows(x: &[f32], n: usize, f: impl Fn(usize, &[f32], &mut [f32]) + Sync) -> Vec<f32> {
    map_row_groups(x, n, 1, |r, xr, yr| f(r, xr, yr))
}

/// [`map_rows`] with `f(first row index, x rows, y rows)` called on groups of `group`
/// consecutive rows (the last group may be shorter).
fn map_row_groups(
    x: &[f32],
    n: usize,
    group: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    if n == 0 || !x.len().is_multiple_of(n) {
        return vec![0f32; x.len()];
    }
    let mut y = Vec::with_capacity(x.len());
    let rows = |g: usize, xr: &[f32], yr: &mut [MaybeUninit<f32>]| {
        yr.fill(MaybeUninit::new(0.0));
        // SAFETY: every element of `yr` was initialised on the line above.
        let yr = unsafe { &mut *(yr as *mut [MaybeUninit<f32>] as *mut [f32]) };
        f(g * group, xr, yr);
    };
    let out = &mut y.spare_capacity_mut()[..x.len()];
    let len = n * group;
    if x.len() >= PAR_MIN_VALUES {
        vigil_kernels::team::for_each_chunk_mut(out, len, |g, yr| {
            rows(g, &x[g * len..][..yr.len()], yr)
        });
    } else {
        for (g, (xr, yr)) in x.chunks(len).zip(out.chunks_mut(len)).enumerate() {
            rows(g, xr, yr);
        }
    }
    // SAFETY: `x.len()` is a multiple of `n`, so the groups above covered all of it.
    unsafe { y.set_len(x.len()) };
    y
}

/// Rotary embedding in ggml's rounding (`rotate_pairs` as compiled for x86 with FMA):
/// `x0' = fma(cos, x0, −(sin·x1))`, `x1' = fma(sin, x0, cos·x1)`. `x` is
/// `[b, heads, t, head_dim]`; `cos`/`sin` are `[b, t, head_dim/2]`.
/// `interleaved`: pairs are adjacent elements (llama.cpp's "normal" rope); otherwise the
/// pair of element `i` is `i + head_dim/2` (NeoX).
pub fn rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    interleaved: bool,
) -> candle_core::Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    let half = d / 2;
    let (cos, sin) = (f32_data(cos)?, f32_data(sin)?);
    if cos.len() != b * t * half || sin.len() != cos.len() {
        candle_core::bail!("rope tables do not match the input shape");
    }
    let y = with_f32(x, |xs| {
        map_rows(xs, d, |r, xr, yr| {
            let (bi, ti) = (r / (h * t), r % t);
            let base = (bi * t + ti) * half;
            rotate_row(
                xr,
                yr,
                &cos[base..][..half],
                &sin[base..][..half],
                interleaved,
            )
        })
    })?;
    Tensor::from_vec(y, x.shape(), x.device())
}

/// One head's row of [`rope`] (`cos`, `sin`: `head_dim / 2` values), with FMA where
/// available.
pub(crate) fn rotate_row(xr: &[f32], yr: &mut [f32], cos: &[f32], sin: &[f32], interleaved: bool) {
    #[cfg(target_arch = "x86_64")]
    if fast_dots() {
        // SAFETY: fast_dots() checked AVX2 and FMA.
        return unsafe { avx2::rope_row(xr, yr, cos, sin, interleaved) };
    }
    rope_row(xr, yr, cos, sin, interleaved)
}

/// One row of [`rope`]; the fused multiply-adds are library calls unless compiled with
/// FMA (`avx2::rope_row`).
#[inline(always)]
fn rope_row(xr: &[f32], yr: &mut [f32], cos: &[f32], sin: &[f32], interleaved: bool) {
    let half = cos.len();
    for i in 0..half {
        let (c, s) = (cos[i], sin[i]);
        let (i0, i1) = if interleaved {
            (2 * i, 2 * i + 1)
        } else {
            (i, i + half)
        };
        let (x0, x1) = (xr[i0], xr[i1]);
        yr[i0] = c.mul_add(x0, -(s * x1));
        yr[i1] = s.mul_add(x0, c * x1);
    }
}

/// `f` on a tensor's f32 values in row-major order, read in place when the tensor is
/// contiguous (a copy otherwise): each prefill-sized copy was single-threaded time.
pub(crate) fn with_f32<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let x = if x.is_contiguous() {
        x.clone()
    } else {
        x.contiguous()?
    };
    let (storage, layout) = x.storage_and_layout();
    let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)), Some((start, end))) =
        (&*storage, layout.contiguous_offsets())
    else {
        candle_core::bail!("expected contiguous f32 values on the CPU")
    };
    Ok(f(&data[start..end]))
}

/// A tensor's values in row-major order, as f32 (one copy).
fn f32_data(x: &Tensor) -> candle_core::Result<Vec<f32>> {
    x.flatten_all()?.to_vec1::<f32>()
}

/// One AVX-512 register's worth of f32 lanes: ggml's x86 build here keeps its f32 sums in
/// 16 lanes, and the order in which lanes are added is part of the result.
const LANES: usize = 16;

/// GCC's `_mm512_reduce_add_ps`: halves of 8, then of 4, then pairs, then the last two.
#[inline(always)]
fn reduce16(v: &[f32; LANES]) -> f32 {
    let t3: [f32; 8] = std::array::from_fn(|i| v[8 + i] + v[i]);
    let t6: [f32; 4] = std::array::from_fn(|i| t3[4 + i] + t3[i]);
    (t6[0] + t6[2]) + (t6[1] + t6[3])
}

/// `ggml_vec_dot_f32` (AVX-512 build): four 16-lane accumulators over steps of 64, summed
/// as `(s0 + s2) + (s1 + s3)` and reduced; leftovers fused-added one by one.
#[inline(always)]
fn dot_vec_f32_scalar(x: &[f32], y: &[f32]) -> f32 {
    const STEP: usize = 4 * LANES;
    let mut sum = [[0f32; LANES]; 4];
    let full = x.len() / STEP * STEP;
    for (xs, ys) in x[..full]
        .chunks_exact(STEP)
        .zip(y[..full].chunks_exact(STEP))
    {
        for (j, s) in sum.iter_mut().enumerate() {
            for (l, sl) in s.iter_mut().enumerate() {
                let i = j * LANES + l;
                *sl = xs[i].mul_add(ys[i], *sl);
            }
        }
    }
    let s: [f32; LANES] =
        std::array::from_fn(|l| (sum[0][l] + sum[2][l]) + (sum[1][l] + sum[3][l]));
    let mut r = reduce16(&s);
    for (xv, yv) in x[full..].iter().zip(&y[full..]) {
        r = xv.mul_add(*yv, r);
    }
    r
}

/// How llama.cpp sums `v · p`, one output per column of V: key `j` goes to accumulator
/// `j mod slots`, and the accumulators are then reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PvOrder {
    /// `ggml_vec_dot_f32` over the zero-padded row (one new token: llamafile takes only
    /// products of ≥ 2 columns): 4 × 16 accumulators, `(s0 + s2) + (s1 + s3)`, reduced.
    VecDot,
    /// llamafile's tinyBLAS f32 kernel (AVX-512 build): one 16-lane accumulator, reduced.
    /// Its `k` is padded with zeros to a multiple of 16 (llama.cpp pads its KV cache to
    /// 256 cells, whose unused entries contribute exact zeros).
    TinyBlas,
}

impl PvOrder {
    fn slots(self) -> usize {
        match self {
            PvOrder::VecDot => 4 * LANES,
            PvOrder::TinyBlas => LANES,
        }
    }
}

/// `out[e] = Σ_j w[j] · rows(j)[e]` for every column `e`, each column summed in `order`.
///
/// Each column's sums are exactly those of the per-column dot product, but they run a key
/// at a time over whole rows (vectorised over `e`), so V needs no transposing. `acc`
/// holds `order.slots() × out.len()` values.
#[inline(always)]
fn weighted_rows_impl<'r>(
    rows: impl Fn(usize) -> &'r [f32],
    w: &[f32],
    order: PvOrder,
    acc: &mut [f32],
    out: &mut [f32],
) {
    let d = out.len();
    let slots = order.slots();
    let acc = &mut acc[..slots * d];
    acc.fill(0.0);
    for (k, a) in acc.chunks_exact_mut(d).enumerate() {
        for j in (k..w.len()).step_by(slots) {
            for (ae, &ve) in a.iter_mut().zip(rows(j)) {
                *ae = ve.mul_add(w[j], *ae);
            }
        }
    }
    reduce_slots(acc, order, out);
}

/// Adds up [`weighted_rows_impl`]'s accumulators (`order.slots()` rows of `out.len()`)
/// column by column, in llama.cpp's order, into `out`.
#[inline(always)]
fn reduce_slots(acc: &mut [f32], order: PvOrder, out: &mut [f32]) {
    let d = out.len();
    // Accumulator `k`, all columns.
    fn pair(acc: &mut [f32], d: usize, dst: usize, src: usize) {
        let (lo, hi) = acc.split_at_mut(src * d);
        for (x, &y) in lo[dst * d..][..d].iter_mut().zip(&hi[..d]) {
            *x += y;
        }
    }
    if order == PvOrder::VecDot {
        // s[l] = (sum0[l] + sum2[l]) + (sum1[l] + sum3[l]), sum_i[l] = acc[16 i + l].
        for l in 0..LANES {
            pair(acc, d, l, 2 * LANES + l);
            pair(acc, d, LANES + l, 3 * LANES + l);
            pair(acc, d, l, LANES + l);
        }
    }
    // reduce16 over accumulators 0..16, column by column.
    for i in 0..8 {
        pair(acc, d, i, 8 + i);
    }
    for i in 0..4 {
        pair(acc, d, i, 4 + i);
    }
    pair(acc, d, 0, 2);
    pair(acc, d, 1, 3);
    pair(acc, d, 0, 1);
    out.copy_from_slice(&acc[..d]);
}

/// The attention scores of queries that share their keys: `w[q][j] = (k_j · qs[q]) ·
/// scale + mask[j]` with ggml's f32 dot, or −∞ where the mask is −∞ (that key's dot is
/// never needed). `w` holds one row of scores per query.
///
/// Eight keys at a time for every query: the query heads of a grouped-query layer share
/// a K head, and taken one query at a time each re-read the whole head (tens of KB, more
/// than L1 holds) from L2. Each score is still its own dot product, so the order of the
/// keys and queries does not change a bit.
fn key_scores<'r>(
    keys: impl Fn(usize) -> &'r [f32],
    qs: &[&[f32]],
    scale: f32,
    mask: Option<&[f32]>,
    w: &mut [f32],
) {
    let Some(d) = qs.first().map(|q| q.len()) else {
        return;
    };
    let n = w.len() / qs.len();
    let score = |dot: f32, j: usize| {
        let masked = mask.map_or(0.0, |m| m[j]);
        if masked == f32::NEG_INFINITY {
            f32::NEG_INFINITY
        } else {
            dot * scale + masked
        }
    };
    #[cfg(target_arch = "x86_64")]
    if fast_dots() && d.is_multiple_of(4 * LANES) {
        // SAFETY: fast_dots() checked AVX2 and FMA, wide_dots() AVX-512 F; every row is
        // d long, a multiple of 64.
        unsafe {
            if wide_dots() {
                avx512::key_score_blocks(&keys, qs, w, &score)
            } else {
                avx2::key_score_blocks(&keys, qs, w, &score)
            }
        }
        return;
    }
    for jj in 0..n {
        for (q, wq) in qs.iter().zip(w.chunks_exact_mut(n)) {
            wq[jj] = score(dot_vec_f32(keys(jj), q), jj);
        }
    }
}

/// [`key_scores`] by blocks of 8 keys with `dot8`, the 8-key dot of one instruction set:
/// inlined into that set's entry point (`avx2::key_score_blocks`,
/// `avx512::key_score_blocks`), so the dot inlines into the loop too rather than being a
/// call per block and query. A last block of fewer than 8 keys repeats its last key (those
/// dots are dropped) rather than taking a one-key dot per query.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn key_score_blocks_with<'r>(
    dot8: impl Fn([&'r [f32]; 8], &[f32]) -> [f32; 8],
    keys: &impl Fn(usize) -> &'r [f32],
    qs: &[&[f32]],
    w: &mut [f32],
    score: &impl Fn(f32, usize) -> f32,
) {
    let n = w.len() / qs.len();
    let mut j = 0;
    while j < n {
        let k: [&[f32]; 8] = std::array::from_fn(|i| keys((j + i).min(n - 1)));
        let valid = (n - j).min(8);
        for (q, wq) in qs.iter().zip(w.chunks_exact_mut(n)) {
            let dots = dot8(k, q);
            for (i, dot) in dots.into_iter().enumerate().take(valid) {
                wq[j + i] = score(dot, j + i);
            }
        }
        j += valid;
    }
}

/// The entry point of [`key_score_blocks_with`] in an instruction set's module: that
/// module's 8-key dot under its target features (the only difference between them).
#[cfg(target_arch = "x86_64")]
macro_rules! key_score_entry {
    ($features:literal) => {
        /// [`super::key_score_blocks_with`] with this module's 8-key dot.
        ///
        /// # Safety
        /// The module's target features; every key and query row a multiple of 64 long.
        #[target_feature(enable = $features)]
        pub(super) unsafe fn key_score_blocks<'r>(
            keys: &impl Fn(usize) -> &'r [f32],
            qs: &[&[f32]],
            w: &mut [f32],
            score: &impl Fn(f32, usize) -> f32,
        ) {
            // SAFETY: the caller's guarantees are dot8_f32's.
            super::key_score_blocks_with(|k, q| unsafe { dot8_f32(k, q) }, keys, qs, w, score)
        }
    };
}

/// Whether the AVX2 + FMA versions of the dots can run (checked once).
pub(crate) fn fast_dots() -> bool {
    static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FAST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether the 512-bit attention sums can run (checked once; implies [`fast_dots`]).
pub(crate) fn wide_dots() -> bool {
    static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WIDE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            fast_dots() && is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// [`dot_vec_f32_scalar`], with AVX2 where available (bit-identical).
pub(crate) fn dot_vec_f32(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if fast_dots() {
        // SAFETY: fast_dots() checked AVX2 and FMA.
        return unsafe { avx2::dot_vec_f32(x, y) };
    }
    dot_vec_f32_scalar(x, y)
}

/// Columns per step of the 512-bit weighted sum (`avx512::weighted_rows`): four
/// registers.
const WIDE_BLOCK: usize = 4 * LANES;

/// [`weighted_rows_impl`] for queries that share their value rows: `ws` holds one row of
/// `n` weights per query, `outs` one output row per query. Compiled with FMA where
/// available (bit-identical: the same fused operations, which without FMA are library
/// calls). `acc` is grown to the accumulator array where the chosen version needs one;
/// the 512-bit one needs none (for one token, zeroing 64 slots × the row per head was
/// itself a cost), and it takes the queries together (see `avx512::weighted_rows`).
fn weighted_rows<'r>(
    rows: impl Fn(usize) -> &'r [f32],
    ws: &[f32],
    n: usize,
    order: PvOrder,
    acc: &mut Vec<f32>,
    outs: &mut [f32],
) {
    let nq = ws.len() / n.max(1);
    if nq == 0 {
        return;
    }
    let d = outs.len() / nq;
    let wide = wide_dots() && d.is_multiple_of(WIDE_BLOCK);
    if acc.len() < order.slots() * d && !wide {
        acc.resize(order.slots() * d, 0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if wide {
        // SAFETY: wide_dots() checked AVX-512 F, AVX2 and FMA.
        return unsafe { avx512::weighted_rows(rows, ws, n, order, outs) };
    }
    for (w, out) in ws.chunks_exact(n).zip(outs.chunks_exact_mut(d)) {
        #[cfg(target_arch = "x86_64")]
        if fast_dots() {
            // SAFETY: fast_dots() checked AVX2 and FMA.
            unsafe { avx2::weighted_rows(&rows, w, order, acc, out) };
            continue;
        }
        weighted_rows_impl(&rows, w, order, acc, out)
    }
}

/// The dots with 16 lanes kept as two AVX2 halves (lanes 0..8, 8..16): same products, same
/// fused adds, same reduction tree as the scalar versions.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{reduce16, LANES};
    use std::arch::x86_64::*;

    /// The [`super::sum_of_squares`] of four rows of `n` values (`x` is the four rows one
    /// after another), lane `k` of one f64 vector holding row `k`'s running sum: four
    /// squares of each row at a time, transposed so that each row's squares are added in
    /// its own order.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums_of_squares4(x: &[f32], n: usize) -> [f64; 4] {
        assert_eq!(x.len(), 4 * n);
        let p = x.as_ptr();
        let mut acc = _mm256_setzero_pd();
        let mut i = 0;
        while i + 4 <= n {
            let sq = |k: usize| {
                let v = _mm_loadu_ps(p.add(k * n + i));
                _mm_mul_ps(v, v)
            };
            let (a, b, c, d) = (sq(0), sq(1), sq(2), sq(3));
            let (ab_lo, ab_hi) = (_mm_unpacklo_ps(a, b), _mm_unpackhi_ps(a, b));
            let (cd_lo, cd_hi) = (_mm_unpacklo_ps(c, d), _mm_unpackhi_ps(c, d));
            // Column j: the square of value i + j of each of the four rows.
            for col in [
                _mm_movelh_ps(ab_lo, cd_lo),
                _mm_movehl_ps(cd_lo, ab_lo),
                _mm_movelh_ps(ab_hi, cd_hi),
                _mm_movehl_ps(cd_hi, ab_hi),
            ] {
                acc = _mm256_add_pd(acc, _mm256_cvtps_pd(col));
            }
            i += 4;
        }
        let mut sums = [0f64; 4];
        _mm256_storeu_pd(sums.as_mut_ptr(), acc);
        for (k, sum) in sums.iter_mut().enumerate() {
            for &v in &x[k * n + i..(k + 1) * n] {
                *sum += (v * v) as f64;
            }
        }
        sums
    }

    /// [`super::geglu_scalar`] eight values at a time: the f16 rounding with F16C (the
    /// same round-to-nearest-even as `half`), the table read with a gather, the ±10 cases
    /// blended in. Returns how many leading values it wrote (a multiple of 8).
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn geglu(x: &[f32], g: &[f32], y: &mut [f32], table: &[f32]) -> usize {
        assert!(table.len() > u16::MAX as usize);
        let n = x.len().min(g.len()).min(y.len()) & !7;
        let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
        for i in (0..n).step_by(8) {
            let xv = _mm256_loadu_ps(x.as_ptr().add(i));
            let gv = _mm256_loadu_ps(g.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(xv);
            let t = _mm256_i32gather_ps::<4>(table.as_ptr(), _mm256_cvtepu16_epi32(h));
            // x ≥ 10: x itself; x ≤ −10: exactly zero (the mask clears the product).
            let v = _mm256_blendv_ps(t, xv, _mm256_cmp_ps::<_CMP_GE_OQ>(xv, hi));
            let zero = _mm256_cmp_ps::<_CMP_LE_OQ>(xv, lo);
            let out = _mm256_andnot_ps(zero, _mm256_mul_ps(v, gv));
            _mm256_storeu_ps(y.as_mut_ptr().add(i), out);
        }
        n
    }

    /// [`reduce16`] of the two halves.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn reduce(lo: __m256, hi: __m256) -> f32 {
        let mut v = [0f32; LANES];
        _mm256_storeu_ps(v.as_mut_ptr(), lo);
        _mm256_storeu_ps(v.as_mut_ptr().add(8), hi);
        reduce16(&v)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_vec_f32(x: &[f32], y: &[f32]) -> f32 {
        const STEP: usize = 4 * LANES;
        let n = x.len().min(y.len());
        let full = n / STEP * STEP;
        let (xp, yp) = (x.as_ptr(), y.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 8]; // sum[j] = (acc[2j], acc[2j + 1])
        for i in (0..full).step_by(STEP) {
            for (h, a) in acc.iter_mut().enumerate() {
                let o = i + 8 * h;
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(o)), _mm256_loadu_ps(yp.add(o)), *a);
            }
        }
        let lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
        let hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
        let mut r = reduce(lo, hi);
        for i in full..n {
            r = x[i].mul_add(y[i], r);
        }
        r
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rope_row(
        xr: &[f32],
        yr: &mut [f32],
        cos: &[f32],
        sin: &[f32],
        interleaved: bool,
    ) {
        super::rope_row(xr, yr, cos, sin, interleaved)
    }

    /// [`super::weighted_rows_impl`]. When the row length is a multiple of 64, each
    /// accumulator's 64-column block stays in eight registers over all its keys (the
    /// generic loop loads and stores it per key): the same fused adds in the same order.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weighted_rows<'r>(
        rows: impl Fn(usize) -> &'r [f32],
        w: &[f32],
        order: super::PvOrder,
        acc: &mut [f32],
        out: &mut [f32],
    ) {
        let d = out.len();
        if !d.is_multiple_of(64) {
            return super::weighted_rows_impl(rows, w, order, acc, out);
        }
        let slots = order.slots();
        let acc = &mut acc[..slots * d];
        for c in (0..d).step_by(64) {
            for k in 0..slots {
                let mut a = [_mm256_setzero_ps(); 8];
                for j in (k..w.len()).step_by(slots) {
                    let wj = _mm256_set1_ps(w[j]);
                    let r = rows(j)[c..c + 64].as_ptr();
                    for (h, ah) in a.iter_mut().enumerate() {
                        *ah = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(8 * h)), wj, *ah);
                    }
                }
                let dst = acc[k * d + c..][..64].as_mut_ptr();
                for (h, ah) in a.iter().enumerate() {
                    _mm256_storeu_ps(dst.add(8 * h), *ah);
                }
            }
        }
        super::reduce_slots(acc, order, out)
    }

    /// [`super::dot_vec_f32`] of eight rows with one `y` whose length is a multiple of 64:
    /// each row's fused adds as in [`dot_vec_f32`], and the eight [`reduce16`] trees run
    /// side by side in registers (halves of 8, of 4, then `(t0 + t2) + (t1 + t3)`),
    /// instead of through memory one row at a time.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn dot8_f32(x: [&[f32]; 8], y: &[f32]) -> [f32; 8] {
        const STEP: usize = 4 * LANES;
        let n = y.len();
        debug_assert!(n.is_multiple_of(STEP) && x.iter().all(|r| r.len() >= n));
        let yp = y.as_ptr();
        // t3[r] = hi + lo of row r's 16 lanes (reduce16's first halving).
        let mut t3 = [_mm256_setzero_ps(); 8];
        if n == STEP {
            // One step per row (a head of 64, SmolLM2's and Qwen2.5's): `y` stays in
            // registers for the eight rows (half the loads), each accumulator takes one
            // fused add.
            let mut yv = [_mm256_setzero_ps(); 8];
            for (h, v) in yv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(yp.add(8 * h));
            }
            for (r, t) in t3.iter_mut().enumerate() {
                let xp = x[r].as_ptr();
                let mut p = [_mm256_setzero_ps(); 8];
                for (h, ph) in p.iter_mut().enumerate() {
                    *ph = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(8 * h)), yv[h], *ph);
                }
                let lo = _mm256_add_ps(_mm256_add_ps(p[0], p[4]), _mm256_add_ps(p[2], p[6]));
                let hi = _mm256_add_ps(_mm256_add_ps(p[1], p[5]), _mm256_add_ps(p[3], p[7]));
                *t = _mm256_add_ps(hi, lo);
            }
            return reduce_rows8(t3);
        }
        for (r, t) in t3.iter_mut().enumerate() {
            let xp = x[r].as_ptr();
            let mut acc = [_mm256_setzero_ps(); 8];
            for i in (0..n).step_by(STEP) {
                for (h, a) in acc.iter_mut().enumerate() {
                    let o = i + 8 * h;
                    *a =
                        _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(o)), _mm256_loadu_ps(yp.add(o)), *a);
                }
            }
            let lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
            let hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
            *t = _mm256_add_ps(hi, lo);
        }
        reduce_rows8(t3)
    }

    key_score_entry!("avx2,fma");

    /// The rest of eight [`reduce16`] trees, from each row's first halving `t3[r]`
    /// (lanes `8..16` plus lanes `0..8`), side by side in registers.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn reduce_rows8(t3: [__m256; 8]) -> [f32; 8] {
        // t6 of rows (2i, 2i + 1): [t3[4..8] + t3[0..4] of one | of the other].
        let t6: [__m256; 4] = std::array::from_fn(|i| {
            let (a, b) = (t3[2 * i], t3[2 * i + 1]);
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x31>(a, b),
                _mm256_permute2f128_ps::<0x20>(a, b),
            )
        });
        // [t6[0] + t6[2], t6[1] + t6[3]] per row: rows (0, 2 | 1, 3) and (4, 6 | 5, 7).
        let pq: [__m256; 2] = std::array::from_fn(|i| {
            let (a, b) = (t6[2 * i], t6[2 * i + 1]);
            _mm256_add_ps(
                _mm256_shuffle_ps::<0b01_00_01_00>(a, b),
                _mm256_shuffle_ps::<0b11_10_11_10>(a, b),
            )
        });
        // (t6[0] + t6[2]) + (t6[1] + t6[3]): rows [0, 2, 4, 6 | 1, 3, 5, 7].
        let sums = _mm256_add_ps(
            _mm256_shuffle_ps::<0b10_00_10_00>(pq[0], pq[1]),
            _mm256_shuffle_ps::<0b11_01_11_01>(pq[0], pq[1]),
        );
        let mut v = [0f32; 8];
        _mm256_storeu_ps(v.as_mut_ptr(), sums);
        [v[0], v[4], v[1], v[5], v[2], v[6], v[3], v[7]]
    }

    /// [`super::expf`] on 8 lanes: the same fused operations lane by lane. `scalef` is a
    /// multiplication by an exact power of two while the result stays normal; a vector
    /// with a lane outside that range goes through the scalar version.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn expf8(x: __m256) -> __m256 {
        let c = |bits: u32| _mm256_set1_ps(f32::from_bits(bits));
        let r = c(0x4b40_0000);
        let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
        let n = _mm256_sub_ps(z, r);
        // Normal results: −125 ≤ n ≤ 127 (j is within [0.7, 1.5]).
        let ok = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(n, _mm256_set1_ps(-125.0)),
            _mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_set1_ps(127.0)),
        );
        if _mm256_movemask_ps(ok) != 0xFF {
            let mut v = [0f32; 8];
            _mm256_storeu_ps(v.as_mut_ptr(), x);
            return _mm256_loadu_ps(v.map(super::expf).as_ptr());
        }
        let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
        let u = _mm256_mul_ps(b, b);
        let j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(
                _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
                u,
                _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
            ),
            u,
            _mm256_fmadd_ps(c(0x3f7f_fff6), b, _mm256_set1_ps(1.0)),
        );
        let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(j, _mm256_castsi256_ps(e))
    }

    /// `v = expf(v − max)` on 16 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_minus(v: &mut [f32; LANES], max: f32) {
        let m = _mm256_set1_ps(max);
        for h in 0..2 {
            let p = v.as_mut_ptr().add(8 * h);
            _mm256_storeu_ps(p, expf8(_mm256_sub_ps(_mm256_loadu_ps(p), m)));
        }
    }

    /// [`super::swiglu_scalar`], 8 lanes at a time (lengths a multiple of 8).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn swiglu(x: &[f32], g: &[f32], y: &mut [f32]) {
        let one = _mm256_set1_ps(1.0);
        for i in (0..x.len()).step_by(8) {
            let xv = _mm256_loadu_ps(x.as_ptr().add(i));
            let e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), xv));
            let silu = _mm256_div_ps(xv, _mm256_add_ps(one, e));
            let out = _mm256_mul_ps(silu, _mm256_loadu_ps(g.as_ptr().add(i)));
            _mm256_storeu_ps(y.as_mut_ptr().add(i), out);
        }
    }
}

/// Attention's weighted sum of value rows on 512-bit vectors: one register holds the 16
/// lanes that ggml's AVX-512 build keeps and [`avx2`] splits in two.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{LANES, WIDE_BLOCK as BLOCK};
    use std::arch::x86_64::*;

    /// [`super::avx2::dot8_f32`] with each row's four 16-lane sums in one register each
    /// (the AVX2 version keeps them as eight halves): the same fused adds, the same tree.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub(super) unsafe fn dot8_f32(x: [&[f32]; 8], y: &[f32]) -> [f32; 8] {
        const STEP: usize = 4 * LANES;
        let n = y.len();
        debug_assert!(n.is_multiple_of(STEP) && x.iter().all(|r| r.len() >= n));
        let yp = y.as_ptr();
        let t3: [__m256; 8] = std::array::from_fn(|r| {
            let xp = x[r].as_ptr();
            let mut sum = [_mm512_setzero_ps(); 4];
            for i in (0..n).step_by(STEP) {
                for (j, a) in sum.iter_mut().enumerate() {
                    let o = i + LANES * j;
                    *a =
                        _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(o)), _mm512_loadu_ps(yp.add(o)), *a);
                }
            }
            // (s0 + s2) + (s1 + s3), then reduce16's first halving.
            let s = _mm512_add_ps(_mm512_add_ps(sum[0], sum[2]), _mm512_add_ps(sum[1], sum[3]));
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s)));
            _mm256_add_ps(hi, _mm512_castps512_ps256(s))
        });
        super::avx2::reduce_rows8(t3)
    }

    key_score_entry!("avx512f,avx2,fma");

    /// [`super::weighted_rows_impl`] and [`super::reduce_slots`] for queries that share
    /// their value rows (`ws`: one row of `n` weights per query; `outs`: one row of
    /// output per query), without the accumulator array: per 64 columns, the (up to
    /// four) slots of each of reduce16's 16 leaves are summed key by key in registers and
    /// added into the leaf as `reduce_slots` adds them, and leaves are added into
    /// reduce16's tree as soon as both halves of a pair exist, so only its four quarter
    /// sums per query go through memory (not 64 slots × the row).
    ///
    /// The quarters run one after another, each for every query: a quarter reads the
    /// value rows of four of the 16 leaves (`j mod 16`), a quarter of the head, which
    /// stays in L1 while the queries of a grouped-query layer take their turns (one query
    /// at a time, each re-read the whole head from L2). For every query the same fused
    /// adds and the same additions in the same order. `outs`' rows must be a multiple of
    /// [`BLOCK`] long.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn weighted_rows<'r>(
        rows: impl Fn(usize) -> &'r [f32],
        ws: &[f32],
        n: usize,
        order: super::PvOrder,
        outs: &mut [f32],
    ) {
        /// Queries whose quarter sums are held at once (4 KB of registers' worth each).
        const QUERIES: usize = 8;
        let nq = ws.len() / n;
        let d = outs.len() / nq;
        assert!(d.is_multiple_of(BLOCK), "rows of {d} values");
        let slots = order.slots();
        // Slots per leaf: VecDot's leaf l is (l + (32 + l)) + ((16 + l) + (48 + l)).
        let per_leaf = slots / LANES;
        // Leaf `l` of one query's weights `w`, columns c .. c + BLOCK.
        let leaf = |w: &[f32], l: usize, c: usize| -> [__m512; 4] {
            // sums[i][h]: slot LANES · i + l, columns c + 16 h ..
            let mut sums = [[_mm512_setzero_ps(); 4]; 4];
            for (i, sum) in sums.iter_mut().enumerate().take(per_leaf) {
                let mut j = LANES * i + l;
                while j < n {
                    let r = rows(j)[c..c + BLOCK].as_ptr();
                    let wj = _mm512_set1_ps(w[j]);
                    for (h, a) in sum.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(_mm512_loadu_ps(r.add(LANES * h)), wj, *a);
                    }
                    j += slots;
                }
            }
            std::array::from_fn(|h| {
                if per_leaf == 4 {
                    _mm512_add_ps(
                        _mm512_add_ps(sums[0][h], sums[2][h]),
                        _mm512_add_ps(sums[1][h], sums[3][h]),
                    )
                } else {
                    sums[0][h]
                }
            })
        };
        let add = |a: [__m512; 4], b: [__m512; 4]| -> [__m512; 4] {
            std::array::from_fn(|h| _mm512_add_ps(a[h], b[h]))
        };
        for q0 in (0..nq).step_by(QUERIES) {
            let q1 = (q0 + QUERIES).min(nq);
            for c in (0..d).step_by(BLOCK) {
                // reduce16 over the leaves: quarter i = (leaf i + leaf 8+i) + (leaf 4+i +
                // leaf 12+i), then (quarter 0 + quarter 2) + (quarter 1 + quarter 3).
                let mut quarters = [[[_mm512_setzero_ps(); 4]; 4]; QUERIES];
                for i in 0..4 {
                    for (q, quarter) in (q0..q1).zip(quarters.iter_mut()) {
                        let w = &ws[q * n..][..n];
                        let lo = add(leaf(w, i, c), leaf(w, 8 + i, c));
                        let hi = add(leaf(w, 4 + i, c), leaf(w, 12 + i, c));
                        quarter[i] = add(lo, hi);
                    }
                }
                for (q, s) in (q0..q1).zip(&quarters) {
                    let r = add(add(s[0], s[2]), add(s[1], s[3]));
                    for (h, rh) in r.iter().enumerate() {
                        _mm512_storeu_ps(outs[q * d + c + LANES * h..][..LANES].as_mut_ptr(), *rh);
                    }
                }
            }
        }
    }
}

/// `ggml_v_expf` (AVX-512 build): exp by range reduction to `2^n · p(b)` with ggml's
/// polynomial; exact zero below and infinity above the representable range.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    let c = f32::from_bits;
    let r = c(0x4b40_0000); // 0x1.8p23: adding it rounds to an integer
    let z = x.mul_add(c(0x3fb8_aa3b), r);
    let n = z - r;
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    let u = b * b;
    let j = c(0x3c07_2010)
        .mul_add(b, c(0x3d2b_9f17))
        .mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)))
        .mul_add(u, c(0x3f7f_fff6).mul_add(b, 1.0));
    // `_mm512_scalef_ps`: j · 2^n with one rounding (the f64 product is exact).
    (j as f64 * pow2_f64(n as i32)) as f32
}

/// `2^n` for `|n| ≤ 1022`, built from its bits.
#[inline(always)]
fn pow2_f64(n: i32) -> f64 {
    f64::from_bits(((n + 1023) as u64) << 52)
}

/// `ggml_vec_swiglu_f32`: `silu(x) · g` with `silu(x) = x / (1 + expf(0 − x))`, in blocks
/// of 16; a tail shorter than 16 uses the C library's `expf`, as ggml's scalar loop does.
pub(crate) fn swiglu_row(x: &[f32], g: &[f32], y: &mut [f32]) {
    let full = x.len() & !(LANES - 1);
    #[cfg(target_arch = "x86_64")]
    if fast_dots() {
        // SAFETY: fast_dots() checked AVX2 and FMA.
        unsafe { avx2::swiglu(&x[..full], &g[..full], &mut y[..full]) };
    } else {
        swiglu_scalar(&x[..full], &g[..full], &mut y[..full]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    swiglu_scalar(&x[..full], &g[..full], &mut y[..full]);
    for i in full..x.len() {
        y[i] = x[i] / (1.0 + (-x[i]).exp()) * g[i];
    }
}

fn swiglu_scalar(x: &[f32], g: &[f32], y: &mut [f32]) {
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = x / (1.0 + expf(0.0 - x)) * g;
    }
}

/// `ggml_soft_max_ext` on one row already scaled and masked: the max, `expf(x − max)` in
/// blocks of 16 whose [`reduce16`] sums are added in f64, then every value times
/// `(f32)(1 / sum)`.
fn softmax_row(w: &mut [f32]) {
    let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for chunk in w.chunks_mut(LANES) {
        let mut lanes = [0f32; LANES];
        lanes[..chunk.len()].copy_from_slice(chunk);
        #[cfg(target_arch = "x86_64")]
        if fast_dots() {
            // SAFETY: fast_dots() checked AVX2 and FMA.
            unsafe { avx2::exp_minus(&mut lanes, max) };
        } else {
            lanes.iter_mut().for_each(|v| *v = expf(*v - max));
        }
        #[cfg(not(target_arch = "x86_64"))]
        lanes.iter_mut().for_each(|v| *v = expf(*v - max));
        // Lanes past the row's end stand for masked cells: exactly zero.
        lanes[chunk.len()..].fill(0.0);
        chunk.copy_from_slice(&lanes[..chunk.len()]);
        sum += reduce16(&lanes) as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in w.iter_mut() {
        *v *= inv;
    }
}

/// `swiglu_row` over `gate` (`[…, n]`) and `up` of the same shape.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    gated(gate, up, swiglu_row)
}

/// `row(gate_row, up_row, out_row)` over the last dimension.
fn gated(
    gate: &Tensor,
    up: &Tensor,
    row: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> candle_core::Result<Tensor> {
    let n = gate.dim(candle_core::D::Minus1)?;
    if gate.shape() != up.shape() {
        candle_core::bail!("gated activation: gate and up differ in shape");
    }
    let y = with_f32(gate, |g| {
        with_f32(up, |u| {
            map_rows(g, n, |r, x, yy| row(x, &u[r * n..][..n], yy))
        })
    })??;
    Tensor::from_vec(y, gate.shape(), gate.device())
}

/// Where each batch row's real keys start: its left padding, and the slots the KV cache
/// already held before this pass.
pub struct KeySlots<'a> {
    pub pad: &'a [usize],
    pub offset: usize,
}

/// `x` itself if its last dimension is contiguous, else a contiguous copy.
fn innermost_contiguous(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.stride().last() == Some(&1) {
        Ok(x.clone())
    } else {
        x.contiguous()
    }
}

/// The `d`-value rows of a `[b, heads, s, d]` f32 tensor whose last dimension is
/// contiguous, read in place: the KV cache hands out a narrowed view of its buffer, and a
/// contiguous copy of it would cost a copy of the whole cache per layer and token.
struct HeadRows<'a> {
    data: &'a [f32],
    start: usize,
    stride: [usize; 3],
    d: usize,
}

impl<'a> HeadRows<'a> {
    fn new(
        storage: &'a candle_core::Storage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<Self> {
        let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)) = storage else {
            candle_core::bail!("attention expects f32 keys and values on the CPU")
        };
        let (dims, st) = (layout.dims(), layout.stride());
        if dims.len() != 4 || st[3] != 1 {
            candle_core::bail!("attention expects [b, heads, s, d] keys and values");
        }
        Ok(HeadRows {
            data,
            start: layout.start_offset(),
            stride: [st[0], st[1], st[2]],
            d: dims[3],
        })
    }

    fn row(&self, b: usize, h: usize, j: usize) -> &'a [f32] {
        let o = self.start + b * self.stride[0] + h * self.stride[1] + j * self.stride[2];
        &self.data[o..][..self.d]
    }
}

/// Scaled dot-product attention as llama.cpp computes it without flash attention:
/// `kq = k · q` with ggml's f32 dot (q is a permuted view, which rules out tinyBLAS),
/// `softmax(kq · scale + mask)` (`softmax_row`), then `v · p` with tinyBLAS — or, for a
/// single new token, ggml's f32 dot again (llamafile takes only products of ≥ 2 columns).
///
/// `q`: `[b, heads, t, d]`; `k`, `v`: `[b, kv_heads, s, d]`; `mask`: `[b, 1, t, s]`
/// additive, or `None`. Row `r`'s first `slots.pad[r]` key slots are left padding: they
/// are skipped, so that the row's real keys start a block of 16 as they do in llama.cpp's
/// cache and a padded row gets exactly the result it gets alone; queries that are
/// themselves padding (slot `slots.offset + i < pad[r]`) get zeros. Returns `[b, heads, t, d]`;
/// `layer` names the traced probabilities. Query head `h` reads K/V head
/// `h / (heads / kv_heads)`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f32,
    slots: &KeySlots,
    layer: usize,
) -> candle_core::Result<Tensor> {
    let dims = q.dims4()?;
    let (b, h, t, d) = dims;
    let qv = f32_data(q)?;
    let mv = mask.map(f32_data).transpose()?;
    let mut out = vec![0f32; b * h * t * d];
    attention_into(
        &qv,
        dims,
        k,
        v,
        mv.as_deref(),
        scale,
        slots,
        layer,
        &mut out,
    )?;
    Tensor::from_vec(out, (b, h, t, d), q.device())
}

/// [`attention`] on plain values: `q` holds `[b, heads, t, d]` (`dims`), `mask`
/// `[b, 1, t, s]`, and every value of `out` (`[b, heads, t, d]`) is written. A one-token
/// step's `[b, 1, heads · d]` projections are already in this order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_into(
    qv: &[f32],
    dims: (usize, usize, usize, usize),
    k: &Tensor,
    v: &Tensor,
    mv: Option<&[f32]>,
    scale: f32,
    slots: &KeySlots,
    layer: usize,
    out: &mut [f32],
) -> candle_core::Result<()> {
    let (pad, offset) = (slots.pad, slots.offset);
    let (b, h, t, d) = dims;
    let (_, kvh, s, _) = k.dims4()?;
    if qv.len() != b * h * t * d || out.len() != qv.len() || kvh == 0 || h % kvh != 0 {
        candle_core::bail!("attention: queries, outputs and key heads do not match");
    }
    if mv.is_some_and(|m| m.len() != b * t * s) {
        candle_core::bail!("attention: the mask does not match the keys");
    }
    let (k, v) = (innermost_contiguous(k)?, innermost_contiguous(v)?);
    let (k_store, k_layout) = k.storage_and_layout();
    let (v_store, v_layout) = v.storage_and_layout();
    let kr = HeadRows::new(&k_store, k_layout)?;
    let vr = HeadRows::new(&v_store, v_layout)?;
    let order = if t == 1 {
        PvOrder::VecDot
    } else {
        PvOrder::TinyBlas
    };
    // A hand-off to the pool costs microseconds: only worth it for real work.
    let parallel = b * h * t * s * d >= 1 << 16;
    let threads = if parallel {
        vigil_kernels::team::current_threads()
    } else {
        1
    };
    let groups = HeadGroups::new(b, kvh, h / kvh, threads);
    // Batch row `bi`'s query heads `heads`, which read K/V head `kh`; `out` and `probs`
    // hold those heads' rows (`[heads, t, d]`, `[heads, t, s]`).
    let task = |bi: usize,
                kh: usize,
                heads: Range<usize>,
                out: &mut [f32],
                mut probs: Option<&mut [f32]>| {
        let nq = heads.len();
        let p0 = pad.get(bi).copied().unwrap_or(0).min(s);
        let n = s - p0;
        let keys = |j: usize| kr.row(bi, kh, p0 + j);
        let rows = |j: usize| vr.row(bi, kh, p0 + j);
        let mut w = vec![0f32; nq * n];
        let mut acc = Vec::new();
        // Query i's outputs of all the heads, one after another (with t = 1, `out`).
        let mut outs = vec![0f32; if t == 1 { 0 } else { nq * d }];
        for i in 0..t {
            let zero = |out: &mut [f32]| {
                for q in 0..nq {
                    out[(q * t + i) * d..][..d].fill(0.0);
                }
            };
            if offset + i < p0 || n == 0 {
                zero(out); // a padding query: its output is never read
                continue;
            }
            let mrow = mv.map(|m| &m[(bi * t + i) * s + p0..][..n]);
            // Keys after the last visible one (the causal future) would add exact zeros
            // to every sum: leave them out.
            let visible = match mrow {
                Some(m) => m.iter().rposition(|&v| v != f32::NEG_INFINITY),
                None => n.checked_sub(1),
            };
            let Some(last) = visible else {
                zero(out);
                continue;
            };
            let m = last + 1;
            let qs: Vec<&[f32]> = heads
                .clone()
                .map(|hh| &qv[((bi * h + hh) * t + i) * d..][..d])
                .collect();
            let w = &mut w[..nq * m];
            key_scores(keys, &qs, scale, mrow.map(|mr| &mr[..m]), w);
            w.chunks_exact_mut(m).for_each(softmax_row);
            if let Some(p) = probs.as_deref_mut() {
                for (q, wq) in w.chunks_exact(m).enumerate() {
                    p[(q * t + i) * s + p0..][..m].copy_from_slice(wq);
                }
            }
            if t == 1 {
                weighted_rows(rows, w, m, order, &mut acc, out);
            } else {
                weighted_rows(rows, w, m, order, &mut acc, &mut outs);
                for (q, o) in outs.chunks_exact(d).enumerate() {
                    out[(q * t + i) * d..][..d].copy_from_slice(o);
                }
            }
        }
    };
    let mut probs = crate::trace::enabled().then(|| vec![0f32; b * h * t * s]);
    {
        let outs = vigil_kernels::team::SharedSlice::new(out);
        let probs_view = probs
            .as_deref_mut()
            .map(vigil_kernels::team::SharedSlice::new);
        let run = |g: usize| {
            let (bi, kh, heads) = groups.task(g);
            let (r0, r1) = (bi * h + heads.start, bi * h + heads.end);
            // SAFETY: tasks' head ranges are disjoint, and each task runs once.
            let out = unsafe { outs.range(r0 * t * d..r1 * t * d) };
            let probs = probs_view
                .as_ref()
                .map(|p| unsafe { p.range(r0 * t * s..r1 * t * s) });
            task(bi, kh, heads, out, probs)
        };
        if parallel && probs_view.is_none() {
            vigil_kernels::team::for_each_index(groups.tasks(), run);
        } else {
            (0..groups.tasks()).for_each(run);
        }
    }
    if let Some(p) = probs {
        crate::trace::trace(
            &format!("kq_soft_max-{layer}"),
            &Tensor::from_vec(p, (b, h, t, s), &candle_core::Device::Cpu)?,
        );
    }
    Ok(())
}

/// How [`attention_into`] cuts its work into tasks: for each batch row and K/V head, the
/// query heads that read it (`group` of them), in `parts` runs of neighbouring heads.
/// A run takes its keys and values once for all of its heads (`key_scores`,
/// `weighted_rows`), so runs are as long as the threads allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadGroups {
    kvh: usize,
    group: usize,
    parts: usize,
    tasks: usize,
}

impl HeadGroups {
    /// The fewest runs per K/V head whose tasks, dealt out to `threads`, leave the
    /// busiest thread the fewest query heads (a Qwen2.5-0.5B step on two threads: one
    /// run of 7 heads for each of the 2 K/V heads; Gemma 3's single K/V head: two runs).
    fn new(b: usize, kvh: usize, group: usize, threads: usize) -> Self {
        let units = b * kvh;
        let busiest =
            |parts: usize| (units * parts).div_ceil(threads.max(1)) * group.div_ceil(parts);
        let parts = (1..=group.max(1)).min_by_key(|&p| busiest(p)).unwrap_or(1);
        HeadGroups {
            kvh,
            group,
            parts,
            tasks: units * parts,
        }
    }

    fn tasks(&self) -> usize {
        self.tasks
    }

    /// Task `g`'s batch row, K/V head and query heads.
    fn task(&self, g: usize) -> (usize, usize, Range<usize>) {
        let (unit, part) = (g / self.parts, g % self.parts);
        let (bi, kh) = (unit / self.kvh, unit % self.kvh);
        let first = kh * self.group;
        let heads =
            first + part * self.group / self.parts..first + (part + 1) * self.group / self.parts;
        (bi, kh, heads)
    }
}

/// ggml's tanh-approximated GELU as compiled for x86 with FMA:
/// `(0.5·x) · (1 + tanh((√(2/π)·x) · fma(x, 0.044715·x, 1)))`.
fn gelu_f32(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    let inner = (SQRT_2_OVER_PI * x) * x.mul_add(COEF_A * x, 1.0);
    (1.0 + inner.tanh()) * (0.5 * x)
}

/// ggml's GELU table: the f16 result for every f16 input (ggml builds GELU from it,
/// `GGML_GELU_FP16`), as f32.
fn gelu_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| {
                let x = half::f16::from_bits(bits).to_f32();
                half::f16::from_f32(gelu_f32(x)).to_f32()
            })
            .collect()
    })
}

/// `ggml_vec_geglu_f32`: `gelu(x) · g` with GELU looked up at `x` rounded to f16, exact
/// zero below −10 and the identity above 10.
pub(crate) fn geglu_row(x: &[f32], g: &[f32], y: &mut [f32]) {
    let table = gelu_table();
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if fast_dots() && std::is_x86_feature_detected!("f16c") {
        // SAFETY: AVX2 (fast_dots) and F16C checked; `table` has an entry per f16.
        done = unsafe { avx2::geglu(x, g, y, table) };
    }
    geglu_scalar(&x[done..], &g[done..], &mut y[done..], table);
}

/// [`geglu_row`] element by element (the reference of `avx2::geglu`).
fn geglu_scalar(x: &[f32], g: &[f32], y: &mut [f32], table: &[f32]) {
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x * g
        } else {
            table[half::f16::from_f32(x).to_bits() as usize] * g
        };
    }
}

/// `geglu_row` over `gate` (`[…, n]`) and `up` of the same shape.
pub fn geglu(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    gated(gate, up, geglu_row)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Values of mixed sign and magnitude, so that the order of the adds shows in the bits.
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 40) as f32 / (1u64 << 24) as f32;
                (u - 0.5) * if x.is_multiple_of(3) { 40.0 } else { 1.5 }
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn geglu_equals_the_scalar_lookup_bit_for_bit() {
        // Around ±10 (both branches and the table between), f16 rounding ties and
        // overflow, infinities, NaN, zeros of both signs; lengths with a tail.
        let mut x: Vec<f32> = values(1000, 9).iter().map(|v| v * 0.6).collect();
        x.extend([
            -10.0,
            10.0,
            -10.000001,
            9.999999,
            -9.999999,
            65520.0,
            1.0 + 1.0 / 2048.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.0,
            -0.0,
            1e-8,
        ]);
        let g = values(x.len(), 4);
        for len in [x.len(), 7, 8, 17] {
            let mut want = vec![0f32; len];
            geglu_scalar(&x[..len], &g[..len], &mut want, gelu_table());
            let mut got = vec![0f32; len];
            geglu_row(&x[..len], &g[..len], &mut got);
            assert_eq!(bits(&got), bits(&want), "{len} values");
        }
    }

    #[test]
    fn rms_norm_of_rows_in_groups_equals_each_row_alone_bit_for_bit() {
        // Row counts that leave a short last group, and row lengths with a tail past the
        // four-wide steps. The squares span 2^±50, more than an f64 holds exactly, so
        // that any other order of the adds shows in the bits.
        for (rows, n) in [(1, 8), (4, 640), (7, 37), (130, 256), (9, 3)] {
            let x: Vec<f32> = values(rows * n, (rows * n) as u64)
                .iter()
                .enumerate()
                .map(|(i, v)| v * 2f32.powi((i * 7 % 51) as i32 - 25))
                .collect();
            let w: Vec<f32> = values(n, 5).iter().map(|v| 1.0 + v * 0.1).collect();
            let t = Tensor::from_vec(x.clone(), (rows, n), &candle_core::Device::Cpu).unwrap();
            let got = rms_norm(&t, &w, 1e-6).unwrap().flatten_all().unwrap();
            let got = got.to_vec1::<f32>().unwrap();
            let mut want = vec![0f32; rows * n];
            for (xr, yr) in x.chunks(n).zip(want.chunks_mut(n)) {
                rms_norm_row(xr, &w, 1e-6, yr);
            }
            assert_eq!(bits(&got), bits(&want), "{rows} rows of {n}");
            // The f64 sums themselves (rounding to f32 hides most differences of order).
            #[cfg(target_arch = "x86_64")]
            if fast_dots() {
                for (g, xs) in x.chunks_exact(4 * n).enumerate() {
                    // SAFETY: fast_dots() checked AVX2; `xs` holds four rows of `n`.
                    let sums = unsafe { avx2::sums_of_squares4(xs, n) };
                    for (r, xr) in xs.chunks(n).enumerate() {
                        let want = sum_of_squares(xr);
                        assert_eq!(sums[r].to_bits(), want.to_bits(), "group {g} row {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn attention_scores_equal_the_scalar_dot_bit_for_bit() {
        for d in [64, 128, 256, 80] {
            for (n, nq) in [(1, 1), (7, 2), (8, 1), (9, 7), (23, 3), (64, 1)] {
                let keys = values(n * d, d as u64 + n as u64);
                let q = values(nq * d, 7);
                let qs: Vec<&[f32]> = q.chunks_exact(d).collect();
                let mut mask: Vec<f32> = values(n, 3).iter().map(|m| m * 0.01).collect();
                mask[n / 2] = f32::NEG_INFINITY;
                let row = |j: usize| &keys[j * d..][..d];
                let mut w = vec![0f32; nq * n];
                key_scores(row, &qs, 0.125, Some(&mask), &mut w);
                // Each query's scores as if it were alone.
                let want: Vec<f32> = qs
                    .iter()
                    .flat_map(|q| {
                        (0..n).map(|j| match mask[j] {
                            f32::NEG_INFINITY => f32::NEG_INFINITY,
                            m => dot_vec_f32_scalar(row(j), q) * 0.125 + m,
                        })
                    })
                    .collect();
                assert_eq!(bits(&w), bits(&want), "d {d}, {n} keys, {nq} queries");
                // The AVX2 loop too, which `key_scores` skips where AVX-512 is present.
                #[cfg(target_arch = "x86_64")]
                if fast_dots() && d % 64 == 0 {
                    let score = |dot: f32, j: usize| match mask[j] {
                        f32::NEG_INFINITY => f32::NEG_INFINITY,
                        m => dot * 0.125 + m,
                    };
                    let mut w2 = vec![0f32; nq * n];
                    // SAFETY: fast_dots() checked AVX2 and FMA; rows are d long, d % 64 == 0.
                    unsafe { avx2::key_score_blocks(&row, &qs, &mut w2, &score) };
                    assert_eq!(
                        bits(&w2),
                        bits(&want),
                        "AVX2, d {d}, {n} keys, {nq} queries"
                    );
                }
            }
        }
    }

    #[test]
    fn the_avx2_and_avx512_key_dots_give_the_scalar_bits() {
        let widths = [(fast_dots(), "avx2"), (wide_dots(), "avx512")];
        for (_, width) in widths.iter().filter(|w| w.0) {
            for d in [64, 128, 256, 512] {
                let keys = values(8 * d, d as u64);
                let q = values(d, 9);
                let rows: [&[f32]; 8] = std::array::from_fn(|r| &keys[r * d..][..d]);
                // SAFETY: the filter above checked the width's features; rows are d long.
                let got = unsafe {
                    match *width {
                        "avx2" => avx2::dot8_f32(rows, &q),
                        _ => avx512::dot8_f32(rows, &q),
                    }
                };
                let want = rows.map(|r| dot_vec_f32_scalar(r, &q));
                assert_eq!(bits(&got), bits(&want), "{width}, d {d}");
            }
        }
    }

    #[test]
    fn weighted_rows_equal_the_scalar_sums_bit_for_bit() {
        for order in [PvOrder::VecDot, PvOrder::TinyBlas] {
            for d in [64, 256, 80] {
                for (n, nq) in [(1, 1), (5, 2), (16, 1), (17, 7), (70, 9), (130, 3)] {
                    let v = values(n * d, n as u64 * 31 + d as u64);
                    let w: Vec<f32> = values(nq * n, 5).iter().map(|x| x.abs() / 20.0).collect();
                    let rows = |j: usize| &v[j * d..][..d];
                    let mut acc = Vec::new();
                    let (mut got, mut want) = (vec![0f32; nq * d], vec![0f32; nq * d]);
                    weighted_rows(rows, &w, n, order, &mut acc, &mut got);
                    acc.resize(order.slots() * d, 0.0);
                    // Each query's sums as if it were alone.
                    for (wq, out) in w.chunks_exact(n).zip(want.chunks_exact_mut(d)) {
                        weighted_rows_impl(rows, wq, order, &mut acc, out);
                    }
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{order:?}, d {d}, {n} keys, {nq} queries"
                    );
                }
            }
        }
    }

    /// The dispatch above takes the widest version this CPU has; each width on its own.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_and_avx512_weighted_sums_give_the_scalar_bits() {
        let widths = [(fast_dots(), "avx2"), (wide_dots(), "avx512")];
        for (_, width) in widths.iter().filter(|w| w.0) {
            for order in [PvOrder::VecDot, PvOrder::TinyBlas] {
                for d in [64usize, 128, 256, 80] {
                    if *width == "avx512" && !d.is_multiple_of(WIDE_BLOCK) {
                        continue; // the dispatcher takes AVX2 there
                    }
                    for (n, nq) in [(1, 1), (17, 3), (64, 1), (130, 10)] {
                        let v = values(n * d, n as u64 + 3);
                        let w: Vec<f32> =
                            values(nq * n, 4).iter().map(|x| x.abs() / 20.0).collect();
                        let rows = |j: usize| &v[j * d..][..d];
                        let mut acc = vec![0f32; order.slots() * d];
                        let (mut got, mut want) = (vec![0f32; nq * d], vec![0f32; nq * d]);
                        for (q, (wq, out)) in
                            w.chunks_exact(n).zip(want.chunks_exact_mut(d)).enumerate()
                        {
                            weighted_rows_impl(rows, wq, order, &mut acc, out);
                            if *width == "avx2" {
                                let got = &mut got[q * d..][..d];
                                // SAFETY: the filter above checked the width's features.
                                unsafe { avx2::weighted_rows(rows, wq, order, &mut acc, got) };
                            }
                        }
                        if *width == "avx512" {
                            // All the queries at once (more than the eight held together).
                            // SAFETY: the filter above checked the width's features.
                            unsafe { avx512::weighted_rows(rows, &w, n, order, &mut got) };
                        }
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{width} {order:?}, d {d}, {n}, {nq}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn head_groups_cover_every_query_head_once_in_runs_of_one_kv_head() {
        // (batch rows, K/V heads, group, threads, runs per K/V head)
        for (b, kvh, group, threads, parts) in [
            (1, 2, 7, 2, 1), // Qwen2.5-0.5B
            (1, 1, 4, 2, 2), // Gemma 3 270M
            (1, 3, 3, 2, 3), // SmolLM2-135M
            (1, 3, 3, 1, 1),
            (4, 2, 7, 2, 1),
            (1, 2, 7, 16, 7),
        ] {
            let g = HeadGroups::new(b, kvh, group, threads);
            assert_eq!(
                g.parts, parts,
                "{b} rows, {kvh} × {group} heads, {threads} threads"
            );
            let mut seen = vec![0; b * kvh * group];
            for task in 0..g.tasks() {
                let (bi, kh, heads) = g.task(task);
                assert!(!heads.is_empty());
                for hh in heads {
                    assert_eq!(hh / group, kh, "head {hh} reads K/V head {kh}");
                    seen[bi * kvh * group + hh] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
        }
    }

    /// Attention with grouped queries, left padding and a causal mask, on the thread team
    /// (queries sharing a K/V head taken together) equals each head computed alone from
    /// the scalar parts, bit for bit, for one new token and for several.
    #[test]
    fn attention_equals_each_head_alone_bit_for_bit() {
        use candle_core::Device;
        for (h, kvh, d) in [(14, 2, 64), (4, 1, 256), (9, 3, 64), (6, 2, 80)] {
            for (t, offset) in [(1, 40), (3, 20)] {
                let (b, s) = (2, offset + t);
                let pad = [0, 5];
                let q = values(b * h * t * d, 11);
                let k = values(b * kvh * s * d, 12);
                let v = values(b * kvh * s * d, 13);
                let mut mask = vec![0f32; b * t * s];
                for (r, m) in mask.chunks_exact_mut(s).enumerate() {
                    let i = r % t;
                    m[offset + i + 1..].fill(f32::NEG_INFINITY);
                }
                let kt = Tensor::from_vec(k.clone(), (b, kvh, s, d), &Device::Cpu).unwrap();
                let vt = Tensor::from_vec(v.clone(), (b, kvh, s, d), &Device::Cpu).unwrap();
                let slots = KeySlots { pad: &pad, offset };
                let mut got = vec![f32::NAN; q.len()];
                vigil_kernels::team::with_team(|| {
                    let dims = (b, h, t, d);
                    attention_into(&q, dims, &kt, &vt, Some(&mask), 0.125, &slots, 0, &mut got)
                })
                .unwrap();
                let order = if t == 1 {
                    PvOrder::VecDot
                } else {
                    PvOrder::TinyBlas
                };
                let mut want = vec![0f32; q.len()];
                let mut acc = vec![0f32; order.slots() * d];
                for bi in 0..b {
                    for hh in 0..h {
                        let kh = hh / (h / kvh);
                        let row = |x: &'_ [f32], j: usize| {
                            let o = ((bi * kvh + kh) * s + pad[bi] + j) * d;
                            x[o..o + d].to_vec()
                        };
                        for i in 0..t {
                            let o = &mut want[((bi * h + hh) * t + i) * d..][..d];
                            if offset + i < pad[bi] {
                                continue;
                            }
                            let qr = &q[((bi * h + hh) * t + i) * d..][..d];
                            let n = offset + i + 1 - pad[bi];
                            let mut w: Vec<f32> = (0..n)
                                .map(|j| dot_vec_f32_scalar(&row(&k, j), qr) * 0.125)
                                .collect();
                            softmax_row(&mut w);
                            let vs: Vec<Vec<f32>> = (0..n).map(|j| row(&v, j)).collect();
                            weighted_rows_impl(|j| &vs[j], &w, order, &mut acc, o);
                        }
                    }
                }
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{h}/{kvh} heads of {d}, {t} queries"
                );
            }
        }
    }
}
