//! Per-kernel tests: AVX2 = scalar (bit-exact), scalar = exact integer math × scales,
//! activation quantisation rules, matmul against dequantise-then-multiply and against
//! the per-row dot products, odd shapes, thread-count independence.

mod common;

use common::{activations, weight_row, Rng};
use vigil_kernels::act::quantize_row_with;
use vigil_kernels::{
    matmul_with, vec_dot_with, ActType, Isa, Layout, QuantMatrix, QuantType, QuantizedActs,
    StreamArena,
};

fn f16_at(b: &[u8], at: usize) -> f64 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f64()
}

fn quantize(act: ActType, x: &[f32], isa: Isa) -> Vec<u8> {
    let mut out = vec![0u8; x.len() / act.block_elems() * act.block_bytes()];
    quantize_row_with(isa, act, x, &mut out);
    out
}

/// ggml's rules written out plainly, f64 where exact: the reference for the quantisers.
fn reference_q8(act: ActType, x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    match act {
        ActType::Q8_0 | ActType::Q8_1 => {
            for blk in x.chunks(32) {
                let amax = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
                let q: Vec<i32> = blk
                    .iter()
                    .map(|v| (v * id).round_ties_even() as i32)
                    .collect();
                out.extend(half::f16::from_f32(d).to_bits().to_le_bytes());
                if act == ActType::Q8_1 {
                    let s: i32 = q.iter().sum();
                    out.extend(half::f16::from_f32(d * s as f32).to_bits().to_le_bytes());
                }
                out.extend(q.iter().map(|&v| v as i8 as u8));
            }
        }
        ActType::Q8K => {
            for blk in x.chunks(256) {
                let (mut max, mut amax) = (0f32, 0f32);
                for &v in blk {
                    if v.abs() > amax {
                        amax = v.abs();
                        max = v;
                    }
                }
                if amax == 0.0 {
                    out.extend([0u8; 292]);
                    continue;
                }
                let iscale = -127.0 / max;
                let q: Vec<i32> = blk
                    .iter()
                    .map(|v| ((iscale * v).round_ties_even() as i32).min(127))
                    .collect();
                out.extend((1.0 / iscale).to_le_bytes());
                out.extend(q.iter().map(|&v| v as i8 as u8));
                for g in q.chunks(16) {
                    out.extend((g.iter().sum::<i32>() as i16).to_le_bytes());
                }
            }
        }
    }
    out
}

#[test]
fn q8_rules_on_a_hand_made_block() {
    // amax = 127 → d = 1, id = 1: ties round to even, s = f16(d · Σq).
    let mut x = [0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 3.5;
    x[4] = 0.5;
    x[5] = -1.5;
    let b = quantize(ActType::Q8_1, &x, Isa::Scalar);
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 0x3C00, "d = 1.0");
    let q: Vec<i8> = b[4..10].iter().map(|&v| v as i8).collect();
    assert_eq!(q, vec![127, 2, -2, 4, 0, -2]);
    assert_eq!(f16_at(&b, 2), 129.0, "s = d · Σq");
    // Q8_K: the largest magnitude is negative, so iscale > 0 and it maps to −127.
    let mut x = [0f32; 256];
    x[0] = -4.0;
    x[1] = 2.0; // 2 · 31.75 = 63.5 → 64 (half to even)
    x[17] = 1.0;
    let b = quantize(ActType::Q8K, &x, Isa::Scalar);
    assert_eq!(f32::from_le_bytes([b[0], b[1], b[2], b[3]]), 1.0 / 31.75);
    assert_eq!(b[4] as i8, -127);
    assert_eq!(b[5] as i8, 64);
    assert_eq!(i16::from_le_bytes([b[260], b[261]]), -63);
    assert_eq!(i16::from_le_bytes([b[262], b[263]]), 32);
    // Q8_K: the largest magnitude twice, with opposite signs: the first one's sign sets
    // the scale's, with every instruction set.
    for (first, second) in [(-4.0, 4.0), (4.0, -4.0)] {
        let mut x = [0.25f32; 256];
        x[40] = first;
        x[200] = second;
        let s = quantize(ActType::Q8K, &x, Isa::Scalar);
        assert_eq!(s[4 + 40] as i8, -127, "first {first}");
        assert_eq!(s[4 + 200] as i8, 127, "first {first}");
        for isa in Isa::available() {
            assert_eq!(quantize(ActType::Q8K, &x, isa), s, "{isa:?}, first {first}");
        }
    }
}

#[test]
fn activation_quantisers_match_reference_and_each_other() {
    let mut rng = Rng::new(1);
    for act in [ActType::Q8_0, ActType::Q8_1, ActType::Q8K] {
        for round in 0..40 {
            let x = activations(512 * 3, &mut rng, round % 2 == 0);
            let s = quantize(act, &x, Isa::Scalar);
            assert_eq!(s, reference_q8(act, &x), "{act:?} scalar vs reference");
            if Isa::avx2_available() {
                assert_eq!(quantize(act, &x, Isa::Avx2), s, "{act:?} avx2 vs scalar");
            }
        }
    }
}

/// Exact value of a weight row · activation row in f64 from the stored integers and
/// scales (what the kernels approximate only by f32 rounding of the per-block terms),
/// and Σ|per-block term| for the error bound.
fn exact_dot(t: QuantType, w: &[u8], a: &[u8]) -> (f64, f64) {
    let (mut sum, mut mag) = (0f64, 0f64);
    let be = t.block_elems();
    let nb = w.len() / t.block_bytes();
    let ab = t.act_type().block_bytes();
    let mut wf = vec![0f32; be];
    for b in 0..nb {
        let wb = &w[b * t.block_bytes()..(b + 1) * t.block_bytes()];
        let yb = &a[b * ab..(b + 1) * ab];
        let mut terms: Vec<f64> = Vec::new();
        match t {
            QuantType::Q4K | QuantType::Q6K => {
                let yd = f32::from_le_bytes([yb[0], yb[1], yb[2], yb[3]]) as f64;
                // Dequantised weights are d·sc·q − dmin·m: recover the integer parts from
                // a dequantisation with d = 1, dmin = 0 and d = 0, dmin = 1.
                let mut w1 = wb.to_vec();
                let mut w2 = wb.to_vec();
                let (dpos, mpos) = if t == QuantType::Q4K {
                    (0, Some(2))
                } else {
                    (208, None)
                };
                w1[dpos..dpos + 2].copy_from_slice(&half::f16::ONE.to_bits().to_le_bytes());
                w2[dpos..dpos + 2].copy_from_slice(&half::f16::ZERO.to_bits().to_le_bytes());
                if let Some(m) = mpos {
                    w1[m..m + 2].copy_from_slice(&half::f16::ZERO.to_bits().to_le_bytes());
                    w2[m..m + 2].copy_from_slice(&half::f16::ONE.to_bits().to_le_bytes());
                }
                vigil_kernels::dequantize_row(t, &w1, &mut wf);
                let y = |j: usize| (yb[4 + j] as i8) as f64;
                if t == QuantType::Q6K {
                    // ggml's single-row order keeps lanes of the unsigned codes' products
                    // (4 elements each) and subtracts 32 · scale · Σy per sub-block: each
                    // of those is a term of its own for the bound (their sum is the same).
                    let sc = |j: usize| wb[192 + j / 16] as i8 as f64;
                    for g in (0..be).step_by(4) {
                        let s: f64 = (g..g + 4)
                            .map(|j| (wf[j] as f64 + 32.0 * sc(j)) * y(j))
                            .sum();
                        terms.push(yd * f16_at(wb, dpos) * s);
                    }
                    for g in (0..be).step_by(16) {
                        let ys: f64 = (g..g + 16).map(y).sum();
                        terms.push(-yd * f16_at(wb, dpos) * 32.0 * sc(g) * ys);
                    }
                } else {
                    let s: f64 = (0..be).map(|j| wf[j] as f64 * y(j)).sum();
                    terms.push(yd * f16_at(wb, dpos) * s);
                }
                if let Some(m) = mpos {
                    vigil_kernels::dequantize_row(t, &w2, &mut wf);
                    let mm: f64 = (0..be)
                        .map(|j| wf[j] as f64 * (yb[4 + j] as i8) as f64)
                        .sum();
                    terms.push(yd * f16_at(wb, m) * mm);
                }
            }
            _ => {
                // Integer codes: dequantise with d = 1 (and m = 0), exact in f32.
                let mut w1 = wb.to_vec();
                w1[0..2].copy_from_slice(&half::f16::ONE.to_bits().to_le_bytes());
                if t == QuantType::Q4_1 {
                    w1[2..4].copy_from_slice(&half::f16::ZERO.to_bits().to_le_bytes());
                }
                vigil_kernels::dequantize_row(t, &w1, &mut wf);
                let qoff = if t == QuantType::Q4_1 { 4 } else { 2 };
                // ggml's order: eight lanes of four products each, which may cancel
                // within a block, so each lane counts as a term of its own.
                let group = 4;
                for g in (0..be).step_by(group) {
                    let s: f64 = (g..g + group)
                        .map(|j| wf[j] as f64 * (yb[qoff + j] as i8) as f64)
                        .sum();
                    terms.push(f16_at(wb, 0) * f16_at(yb, 0) * s);
                }
                if t == QuantType::Q4_1 {
                    terms.push(f16_at(wb, 2) * f16_at(yb, 2));
                }
            }
        }
        for t in terms {
            sum += t;
            mag += t.abs();
        }
    }
    (sum, mag)
}

#[test]
fn dot_products_avx2_equal_scalar_and_scalar_equals_exact() {
    let mut rng = Rng::new(7);
    for t in QuantType::ALL {
        for round in 0..60 {
            let blocks = 1 + rng.below(12) as usize;
            let mixed = round % 3 != 0;
            let w = weight_row(t, blocks, &mut rng, mixed);
            let x = activations(blocks * t.block_elems(), &mut rng, mixed);
            let a = quantize(t.act_type(), &x, Isa::detect());
            let s = vec_dot_with(Isa::Scalar, t, &w, &a);
            for isa in Isa::available() {
                let v = vec_dot_with(isa, t, &w, &a);
                assert_eq!(
                    v.to_bits(),
                    s.to_bits(),
                    "{t:?} round {round}: {isa:?} {v} vs scalar {s}"
                );
            }
            let (exact, mag) = exact_dot(t, &w, &a);
            if !s.is_finite() || !exact.is_finite() || mag > 1e30 {
                // f16 extremes × 1e4 activations overflow f32 by design; only the
                // bit-equality above is meaningful there.
                continue;
            }
            // f32 rounding: each per-block term is rounded about 3 times and each of the
            // (≤ 2 · blocks) additions once, each by at most 2^-24 relative to values
            // bounded by Σ|terms| (plus the 2^24 rounding of a large integer sum).
            let bound = mag * (2.0 * blocks as f64 + 6.0) * f64::from(f32::EPSILON) + 1e-30;
            assert!(
                (s as f64 - exact).abs() <= bound,
                "{t:?} round {round}: scalar {s} vs exact {exact} (bound {bound})"
            );
        }
    }
}

/// Per-row dot products: what every matmul output must equal bit for bit.
fn reference_rows(isa: Isa, w: &QuantMatrix, x: &[f32], rows: usize) -> Vec<f32> {
    let acts = QuantizedActs::with_isa(isa, w.qtype().act_type(), x, rows, w.cols());
    let mut y = vec![0f32; rows * w.rows()];
    for r in 0..rows {
        for o in 0..w.rows() {
            y[r * w.rows() + o] = if w.qtype() == QuantType::Q4K {
                // llama.cpp's (and so vigil's) Q4_K batch order depends on the row's
                // place in the batch.
                let order = vigil_kernels::q4_k::Order::for_row(r, rows);
                vigil_kernels::q4_k::vec_dot_scalar_in(w.row(o), acts.row(r), order)
            } else if w.qtype() == QuantType::Q6K {
                // Q6_K's order depends on the batch size.
                let order = vigil_kernels::q6_k::Order::for_rows(rows);
                vigil_kernels::q6_k::vec_dot_scalar_in(w.row(o), acts.row(r), order)
            } else {
                vec_dot_with(Isa::Scalar, w.qtype(), w.row(o), acts.row(r))
            };
        }
    }
    y
}

fn random_matrix(t: QuantType, out: usize, cols: usize, rng: &mut Rng) -> QuantMatrix<'static> {
    let mut data = Vec::new();
    for i in 0..out {
        data.extend(weight_row(t, cols / t.block_elems(), rng, i % 5 == 4));
    }
    QuantMatrix::owned(data, t, out, cols).unwrap()
}

/// Thread pools for checking that results do not depend on the thread count.
fn pools_of_one_and_three_threads() -> Vec<rayon::ThreadPool> {
    [1, 3]
        .iter()
        .map(|&n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        })
        .collect()
}

#[test]
fn matmul_equals_row_dots_for_odd_shapes_and_any_thread_count() {
    let mut rng = Rng::new(11);
    let pools = pools_of_one_and_three_threads();
    for t in QuantType::ALL {
        let be = t.block_elems();
        for &(out, k_blocks, rows) in &[
            (1, 1, 1),
            (13, 2, 7),
            (8, 3, 16),
            (37, 2, 17),
            (64, 3, 33),
            (200, 4, 3),
            (7, 1, 1),
            // Decode over several blocks (K-quants: 1,536 values).
            (37, 6, 1),
            // Past the VNNI tile's chunk of 32 blocks, with an odd row count.
            (9, 70, 5),
        ] {
            let cols = k_blocks * be;
            let w = random_matrix(t, out, cols, &mut rng);
            let x = activations(rows * cols, &mut rng, true);
            let want = reference_rows(Isa::detect(), &w, &x, rows);
            for isa in Isa::available() {
                let check = |how: &str, run: &dyn Fn(&mut [f32])| {
                    let mut y = vec![f32::NAN; rows * out];
                    run(&mut y);
                    let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{t:?} [{out}x{cols}] rows {rows} {isa:?} {how}: matmul differs \
                         from row dots"
                    );
                };
                let product = |y: &mut [f32]| matmul_with(isa, &w, &x, rows, y).unwrap();
                for pool in &pools {
                    let n = pool.current_num_threads();
                    check(&format!("rayon, {n} threads"), &|y| {
                        pool.install(|| product(y))
                    });
                }
                // Outside any pool, and in a pool under `with_team`: the thread team.
                check("thread team", &product);
                check("thread team from a pool", &|y| {
                    pools[1].install(|| vigil_kernels::team::with_team(|| product(y)))
                });
            }
        }
    }
}

#[test]
fn matmul_is_within_activation_quantisation_error_of_f32_matmul() {
    let mut rng = Rng::new(5);
    for t in QuantType::ALL {
        let (out, rows) = (24, 5);
        let cols = 2 * 256;
        let mut data = Vec::new();
        for _ in 0..out {
            data.extend(weight_row(t, cols / t.block_elems(), &mut rng, false));
        }
        let w = QuantMatrix::owned(data, t, out, cols).unwrap();
        let wf = w.dequantize();
        let x = activations(rows * cols, &mut rng, false);
        let mut y = vec![0f32; rows * out];
        vigil_kernels::matmul(&w, &x, rows, &mut y).unwrap();
        // Dequantised activations x̂ and the bound Σ|w|·|x − x̂| (+ Q8_1's f16 s error).
        let act = t.act_type();
        let acts = QuantizedActs::new(act, &x, rows, cols);
        for r in 0..rows {
            let ab = acts.row(r);
            let mut xh = vec![0f64; cols];
            let mut s_err = vec![0f64; cols / 32];
            for (b, blk) in ab.chunks(act.block_bytes()).enumerate() {
                let be = act.block_elems();
                let (d, qoff) = match act {
                    ActType::Q8_0 => (f16_at(blk, 0), 2),
                    ActType::Q8_1 => (f16_at(blk, 0), 4),
                    ActType::Q8K => (
                        f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]) as f64,
                        4,
                    ),
                };
                let mut qsum = 0f64;
                for j in 0..be {
                    xh[b * be + j] = d * (blk[qoff + j] as i8) as f64;
                    qsum += xh[b * be + j];
                }
                if act == ActType::Q8_1 {
                    s_err[b] = (f16_at(blk, 2) - qsum).abs();
                }
            }
            for o in 0..out {
                let wr = &wf[o * cols..(o + 1) * cols];
                let xr = &x[r * cols..(r + 1) * cols];
                let exact: f64 = wr.iter().zip(xr).map(|(&a, &b)| a as f64 * b as f64).sum();
                let mut bound: f64 = (0..cols)
                    .map(|j| (wr[j] as f64).abs() * (xr[j] as f64 - xh[j]).abs())
                    .sum();
                if t == QuantType::Q4_1 {
                    for (b, e) in s_err.iter().enumerate() {
                        bound += f16_at(w.row(o), b * 20 + 2).abs() * e;
                    }
                }
                let mag: f64 = (0..cols).map(|j| (wr[j] as f64 * xr[j] as f64).abs()).sum();
                bound += mag * 1e-5 + 1e-6;
                let got = y[r * out + o] as f64;
                assert!(
                    (got - exact).abs() <= bound,
                    "{t:?} r{r} o{o}: {got} vs f32 matmul {exact} (bound {bound})"
                );
            }
        }
    }
}

/// A group of matrices sharing an input (mixed formats, so sometimes two activation
/// formats and always tiles of several matrices in one task) gives each matrix exactly
/// its own product, whatever the thread count.
#[test]
fn matmul_group_equals_each_matrix_alone() {
    use std::mem::MaybeUninit;
    let mut rng = Rng::new(23);
    let pools = pools_of_one_and_three_threads();
    let groups: [&[(QuantType, usize)]; 3] = [
        // A Q4_K_M layer's q, k and v: one Q8_K input for both formats.
        &[
            (QuantType::Q4K, 37),
            (QuantType::Q4K, 5),
            (QuantType::Q6K, 19),
        ],
        // Three activation formats (Q8_0, Q8_1, Q8_K), one of them for two matrices.
        &[
            (QuantType::Q8_0, 29),
            (QuantType::Q4_1, 8),
            (QuantType::Q5_0, 3),
            (QuantType::Q4_0, 1),
            (QuantType::Q6K, 0),
        ],
        &[(QuantType::Q8_0, 300)],
    ];
    // 1280 columns: 40 blocks of 32 (past the VNNI tile's chunk) and 5 of 256.
    let cols = 1280;
    for group in groups {
        let ws: Vec<QuantMatrix> = group
            .iter()
            .map(|&(t, out)| random_matrix(t, out, cols, &mut rng))
            .collect();
        let refs: Vec<&QuantMatrix> = ws.iter().collect();
        for rows in [1, 7, 17] {
            let x = activations(rows * cols, &mut rng, true);
            for isa in Isa::available() {
                for pool in &pools {
                    let mut ys: Vec<Vec<MaybeUninit<f32>>> = ws
                        .iter()
                        .map(|w| vec![MaybeUninit::new(f32::NAN); rows * w.rows()])
                        .collect();
                    let mut outs: Vec<&mut [MaybeUninit<f32>]> =
                        ys.iter_mut().map(|y| y.as_mut_slice()).collect();
                    pool.install(|| {
                        vigil_kernels::matmul_group_with(isa, &refs, &x, rows, &mut outs)
                    })
                    .unwrap();
                    for (w, y) in ws.iter().zip(&ys) {
                        let alone = reference_rows(Isa::detect(), w, &x, rows);
                        // SAFETY: filled with NaN above, then overwritten with f32 values.
                        let same = y
                            .iter()
                            .zip(&alone)
                            .all(|(a, b)| unsafe { a.assume_init() }.to_bits() == b.to_bits());
                        assert!(
                            same,
                            "{:?} [{}x{cols}] in {group:?}, rows {rows} {isa:?}",
                            w.qtype(),
                            w.rows()
                        );
                    }
                }
            }
        }
    }
    // A group shares one input: mismatched widths and a missing output are errors.
    let a = random_matrix(QuantType::Q8_0, 2, 64, &mut rng);
    let b = random_matrix(QuantType::Q8_0, 2, 32, &mut rng);
    let x = vec![0.5f32; 64];
    let mut y1 = vec![MaybeUninit::new(0f32); 2];
    let mut y2 = vec![MaybeUninit::new(0f32); 2];
    let mut outs = vec![y1.as_mut_slice(), y2.as_mut_slice()];
    assert!(vigil_kernels::matmul_group(&[&a, &b], &x, 1, &mut outs).is_err());
    assert!(vigil_kernels::matmul_group(&[&a], &x, 1, &mut outs).is_err());
    assert!(vigil_kernels::matmul_group(&[&a, &a], &x[..32], 1, &mut outs).is_err());
    vigil_kernels::matmul_group(&[&a, &a], &x, 1, &mut outs).unwrap();
}

#[test]
fn packed_row_groups_multiply_like_row_major_rows() {
    use std::mem::MaybeUninit;
    let mut rng = Rng::new(31);
    let pools = pools_of_one_and_three_threads();
    for t in [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q8_0,
    ] {
        // Whole groups only, a tail of row-major rows, and rows past the VNNI tile's chunk
        // of 32 blocks.
        for &(out, k_blocks) in &[(8, 1), (21, 3), (37, 6), (64, 40)] {
            let cols = k_blocks * 32;
            let w = random_matrix(t, out, cols, &mut rng);
            let packed = w.with_row_groups().expect("a 32-value block format packs");
            assert_eq!(packed.layout(), Layout::RowGroups);
            assert_eq!(packed.grouped_rows(), out / 8 * 8);
            assert_ne!(
                packed.data(),
                w.data(),
                "{t:?}: packing rearranges the bytes"
            );
            assert_eq!(packed.data().len(), w.data().len());
            let (a, b) = (packed.dequantize(), w.dequantize());
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{t:?} [{out}x{cols}]: unpacking does not give the rows back"
            );
            for rows in [1, 2, 17] {
                let x = activations(rows * cols, &mut rng, true);
                let want = reference_rows(Isa::detect(), &w, &x, rows);
                for isa in Isa::available() {
                    for pool in &pools {
                        let mut y = vec![f32::NAN; rows * out];
                        pool.install(|| matmul_with(isa, &packed, &x, rows, &mut y))
                            .unwrap();
                        let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(
                            same,
                            "{t:?} [{out}x{cols}] rows {rows} {isa:?}: packed differs"
                        );
                        // In a group beside the row-major matrix.
                        let mut ys = [
                            vec![MaybeUninit::new(f32::NAN); rows * out],
                            vec![MaybeUninit::new(f32::NAN); rows * out],
                        ];
                        let [y0, y1] = &mut ys;
                        pool.install(|| {
                            vigil_kernels::matmul_group_with(
                                isa,
                                &[&packed, &w],
                                &x,
                                rows,
                                &mut [y0.as_mut_slice(), y1.as_mut_slice()],
                            )
                        })
                        .unwrap();
                        for y in &ys {
                            // SAFETY: filled with NaN above, then overwritten with f32 values.
                            let same = y
                                .iter()
                                .zip(&want)
                                .all(|(a, b)| unsafe { a.assume_init() }.to_bits() == b.to_bits());
                            assert!(same, "{t:?} [{out}x{cols}] rows {rows} {isa:?}: group");
                        }
                    }
                }
            }
            // Packed where the instruction set has the grouped decode kernel: AVX2 and up
            // (an instruction set the CPU lacks falls back to the best it has).
            assert!(w.packed_for(Isa::Scalar).is_none());
            for isa in [Isa::Avx2, Isa::Avx512Vnni] {
                let packs = w.packed_for(isa).is_some();
                assert_eq!(packs, Isa::avx2_available(), "{t:?} {isa:?}");
            }
        }
    }
    // Formats without the layout, and matrices without a full group.
    let k = random_matrix(QuantType::Q4K, 16, 256, &mut rng);
    assert!(k.with_row_groups().is_none());
    let small = random_matrix(QuantType::Q8_0, 7, 64, &mut rng);
    assert!(small.with_row_groups().is_none());
}

#[test]
fn bad_shapes_are_errors() {
    assert!(QuantMatrix::borrowed(&[0u8; 18], QuantType::Q4_0, 1, 16).is_err());
    assert!(QuantMatrix::borrowed(&[0u8; 17], QuantType::Q4_0, 1, 32).is_err());
    let w = QuantMatrix::borrowed(&[0u8; 36], QuantType::Q4_0, 2, 32).unwrap();
    let mut y = vec![0f32; 2];
    assert!(vigil_kernels::matmul(&w, &[0f32; 31], 1, &mut y).is_err());
    assert!(vigil_kernels::matmul(&w, &[0f32; 32], 1, &mut [0f32; 3]).is_err());
    vigil_kernels::matmul(&w, &[1f32; 32], 1, &mut y).unwrap();
    assert_eq!(y, vec![0.0, 0.0]);
}

/// The `VmFlags` of the mapping of this process that holds `addr` (`/proc/self/smaps`).
#[cfg(target_os = "linux")]
fn vm_flags_at(addr: usize) -> Option<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let (lo, hi) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16));
            inside = matches!((lo, hi), (Ok(lo), Ok(hi)) if lo <= addr && addr < hi);
        } else if inside && first == "VmFlags:" {
            return Some(line.to_string());
        }
    }
    None
}

/// `copy` times a random activation row equals `w`'s reference product, bit for bit.
fn assert_multiplies_like(w: &QuantMatrix, copy: &QuantMatrix, rng: &mut Rng, what: &str) {
    let x = activations(w.cols(), rng, true);
    let want = reference_rows(Isa::detect(), w, &x, 1);
    let mut y = vec![f32::NAN; w.rows()];
    matmul_with(Isa::detect(), copy, &x, 1, &mut y).unwrap();
    assert!(
        y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
        "{what}: the copy multiplies differently"
    );
}

/// The memory at `addr` is advised to huge pages, where the kernel has them (THP compiled
/// in).
fn assert_advised_huge(addr: usize, what: &str) {
    #[cfg(target_os = "linux")]
    if std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
        let flags = vm_flags_at(addr).expect("the copy lies in a mapping");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "{what}: not advised to huge pages ({flags})"
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (addr, what);
}

#[test]
fn decode_copies_are_the_same_matrix_copied_in_reported_slices() {
    let mut rng = Rng::new(47);
    // 8 MiB and more: several of the copy's 4 MiB slices, and whole huge pages inside it.
    for (t, out, cols) in [(QuantType::Q8_0, 2056, 4096), (QuantType::Q6K, 4104, 4096)] {
        let w = random_matrix(t, out, cols, &mut rng);
        for isa in [Isa::Scalar, Isa::detect()] {
            let mut reports = Vec::new();
            let mut arena = StreamArena::default();
            let copy = w.decode_copy_in(isa, &mut arena, &mut |prefix| reports.push(prefix.len()));
            drop(arena); // the copy keeps its memory
            let grouped = isa != Isa::Scalar && t == QuantType::Q8_0;
            let layout = if grouped {
                Layout::RowGroups
            } else {
                Layout::RowMajor
            };
            assert_eq!(copy.layout(), layout, "{t:?} {isa:?}");
            if !grouped {
                assert_eq!(copy.data(), w.data(), "{t:?} {isa:?}: a plain copy");
            }
            // Progress only grows, in several steps, and ends with the whole matrix (a
            // mapped file hands its pages back by these reports).
            assert!(reports.len() >= 2, "{t:?} {isa:?}: {reports:?}");
            assert!(reports.windows(2).all(|p| p[0] <= p[1]), "{reports:?}");
            assert_eq!(reports.last(), Some(&w.data().len()));
            assert_multiplies_like(&w, &copy, &mut rng, &format!("{t:?} {isa:?}"));
            let mid = copy.data().as_ptr() as usize + copy.data().len() / 2;
            assert_advised_huge(mid, &format!("{t:?} {isa:?}"));
        }
    }
}

#[test]
fn an_arena_places_small_copies_one_after_another_on_aligned_huge_pages() {
    let mut rng = Rng::new(53);
    // A layer's worth of small matrices (the Qwen shape's q, k and v, scaled down): one
    // allocation each would put none of them on a huge page.
    let ws: Vec<_> = [
        (QuantType::Q5_0, 256, 896),
        (QuantType::Q5_0, 40, 896),
        (QuantType::Q6K, 24, 1024),
    ]
    .into_iter()
    .cycle()
    .take(12)
    .map(|(t, out, cols)| random_matrix(t, out, cols, &mut rng))
    .collect();
    let mut arena = StreamArena::with_region_size(8 << 20);
    let copies: Vec<_> = ws
        .iter()
        .map(|w| w.decode_copy_in(Isa::detect(), &mut arena, &mut |_| {}))
        .collect();
    drop(arena);
    let starts: Vec<usize> = copies.iter().map(|c| c.data().as_ptr() as usize).collect();
    // In order, cache-line aligned, each right after the previous one (padding < 64 B).
    assert!(starts.iter().all(|s| s % 64 == 0), "not cache-line aligned");
    for (i, pair) in copies.windows(2).enumerate() {
        let prev_end = starts[i] + pair[0].data().len();
        assert!(
            starts[i + 1] >= prev_end && starts[i + 1] - prev_end < 64,
            "copy {} is not right after copy {i}",
            i + 1
        );
    }
    // The region starts on a huge-page boundary.
    assert_eq!(starts[0] % (2 << 20), 0, "the region is not 2 MiB-aligned");
    // Every copy multiplies as its source (bit for bit) and holds its bytes after the arena
    // is gone.
    for (w, c) in ws.iter().zip(&copies) {
        if c.layout() == Layout::RowMajor {
            assert_eq!(c.data(), w.data());
        }
        assert_multiplies_like(w, c, &mut rng, "an arena copy");
    }
    assert_advised_huge(starts[0], "the arena's region");
}

#[test]
fn an_arena_gives_a_copy_larger_than_its_regions_a_region_of_its_own() {
    let mut rng = Rng::new(59);
    let small = random_matrix(QuantType::Q8_0, 64, 1024, &mut rng);
    let large = random_matrix(QuantType::Q8_0, 4096, 1024, &mut rng); // 4.4 MB
    let mut arena = StreamArena::with_region_size(2 << 20);
    let a = small.decode_copy_in(Isa::Scalar, &mut arena, &mut |_| {});
    let b = large.decode_copy_in(Isa::Scalar, &mut arena, &mut |_| {});
    let c = small.decode_copy_in(Isa::Scalar, &mut arena, &mut |_| {});
    let (pa, pb, pc) = (
        a.data().as_ptr() as usize,
        b.data().as_ptr() as usize,
        c.data().as_ptr() as usize,
    );
    // The small copies share the first region; the large one lies elsewhere.
    assert!(
        pc > pa && pc - pa < 2 << 20,
        "the third copy left the first region"
    );
    assert!(pb + b.data().len() <= pa || pb >= pa + (2 << 20), "overlap");
    assert_eq!(
        (a.data(), b.data(), c.data()),
        (small.data(), large.data(), small.data())
    );
}
