//! Single-kernel timings: `cargo run --release -p vigil-kernels --example bench [threads]`.
//!
//! For each format and a few shapes of the default models, times `matmul` for one
//! activation row (decode) and 128 rows (prefill) with AVX2 and scalar kernels, and
//! prints µs per call, GOP/s (2 · out · in · rows) and weight GB/s.
//!
//! `VIGIL_BENCH_SWEEPS_ONLY=1` stops after the decode sweeps; `VIGIL_BENCH_SECTIONS=1`
//! runs only the comparison of one parallel section per layer against one for all, and
//! against a plain sum of the same bytes.

#[path = "common/stream.rs"]
mod stream;

use std::time::Instant;
use vigil_kernels::{matmul_with, Isa, QuantMatrix, QuantType};

fn rng_bytes(n: usize, seed: &mut u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (*seed >> 33) as u8
        })
        .collect()
}

fn matrix(t: QuantType, out: usize, cols: usize, seed: &mut u64) -> QuantMatrix<'static> {
    let mut data = rng_bytes(out * cols / t.block_elems() * t.block_bytes(), seed);
    // Sane f16 scales (0.01) so no block is inf/NaN.
    let offs: &[usize] = match t {
        QuantType::Q4_1 | QuantType::Q4K => &[0, 2],
        QuantType::Q6K => &[208],
        _ => &[0],
    };
    for blk in data.chunks_mut(t.block_bytes()) {
        for &o in offs {
            blk[o..o + 2].copy_from_slice(&half::f16::from_f32(0.01).to_bits().to_le_bytes());
        }
    }
    QuantMatrix::owned(data, t, out, cols).unwrap()
}

fn time<F: FnMut()>(mut f: F, min_s: f64) -> f64 {
    f();
    let mut n = 0;
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < min_s || n < 3 {
        f();
        n += 1;
    }
    t0.elapsed().as_secs_f64() / n as f64
}

/// `n` layers of random matrices of format `t`, each layer's `(out, in)` shapes as given.
fn decoder_layers(
    t: QuantType,
    n: usize,
    shapes: [(usize, usize); 7],
    seed: &mut u64,
) -> Vec<[QuantMatrix<'static>; 7]> {
    (0..n)
        .map(|_| shapes.map(|(o, i)| matrix(t, o, i, seed)))
        .collect()
}

/// The layers in the row-group layout, where this CPU has its decode kernel.
fn packed_layers(layers: &[[QuantMatrix; 7]]) -> Option<Vec<[QuantMatrix<'static>; 7]>> {
    layers
        .iter()
        .map(|l| {
            let packed: Vec<_> = l
                .iter()
                .map(|m| m.packed_for(Isa::detect()))
                .collect::<Option<_>>()?;
            packed.try_into().ok()
        })
        .collect()
}

/// One activation row through every matrix, as a decode step streams them.
fn decode_step(isa: Isa, layers: &[[QuantMatrix; 7]]) {
    for m in layers.iter().flatten() {
        let x = vec![0.5f32; m.cols()];
        let mut y = vec![0f32; m.rows()];
        matmul_with(isa, m, &x, 1, &mut y).unwrap();
    }
}

/// Times decode steps through `layers` (for at least `min_s` seconds) and prints the time
/// per step and the weight bytes streamed per second.
fn print_sweep(
    pool: &rayon::ThreadPool,
    isa: Isa,
    label: &str,
    layers: &[[QuantMatrix; 7]],
    min_s: f64,
) {
    let bytes: usize = layers.iter().flatten().map(|m| m.data().len()).sum();
    let s = pool.install(|| time(|| decode_step(isa, layers), min_s));
    println!(
        "decode sweep {label}: {:.2} ms/token, {:.2} GB/s",
        s * 1e3,
        bytes as f64 / s / 1e9
    );
}

/// The Qwen2.5-0.5B shape's seven matrices per layer (q, k, v, o, gate, up, down).
const QWEN: [(usize, usize); 7] = [
    (896, 896),
    (128, 896),
    (128, 896),
    (896, 896),
    (4864, 896),
    (4864, 896),
    (896, 4864),
];

/// A decode step's hand-offs: the Qwen shape's Q5_0 row groups, with `gap_us` of serial
/// work after each layer (a real step's norms, rope and attention), started three ways:
/// from a rayon worker, from outside rayon's pool, and on the thread team.
fn handoff_sweeps(pool: &rayon::ThreadPool, seed: &mut u64) {
    let layers = decoder_layers(QuantType::Q5_0, 24, QWEN, seed);
    let layers = packed_layers(&layers).unwrap_or(layers);
    let bytes: usize = layers.iter().flatten().map(|m| m.data().len()).sum();
    let step = |gap_us: u64| {
        for layer in &layers {
            decode_step(Isa::detect(), std::slice::from_ref(layer));
            let t0 = Instant::now();
            while t0.elapsed().as_micros() < gap_us as u128 {
                std::hint::spin_loop();
            }
        }
    };
    for gap_us in [0, 40] {
        for round in 0..3 {
            let inside = pool.install(|| time(|| step(gap_us), 1.0));
            vigil_kernels::team::set_team_enabled(false);
            let outside = time(|| step(gap_us), 1.0);
            vigil_kernels::team::set_team_enabled(true);
            let team = time(|| step(gap_us), 1.0);
            let gb = |s: f64| bytes as f64 / s / 1e9;
            println!(
                "hand-offs, Q5_0 Qwen shape row groups, {gap_us} µs serial per layer, round {round}: \
                 rayon from a worker {:.2} ms ({:.1} GB/s), rayon from outside {:.2} ms ({:.1}), \
                 team {:.2} ms ({:.1})",
                inside * 1e3,
                gb(inside),
                outside * 1e3,
                gb(outside),
                team * 1e3,
                gb(team)
            );
        }
    }
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // The global pool and the thread team (sections started outside any pool) get the
    // same count as `pool`.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    println!(
        "threads {threads}, avx2 available: {}",
        Isa::avx2_available()
    );
    println!(
        "{:<6} {:>6} {:>6} {:>5} {:>7} {:>10} {:>8} {:>8}",
        "type", "out", "in", "rows", "isa", "µs", "GOP/s", "GB/s"
    );
    let mut seed = 42u64;
    let shapes: &[(QuantType, usize, usize)] = &[
        (QuantType::Q4_1, 1536, 576),
        (QuantType::Q4_1, 576, 1536),
        (QuantType::Q4_0, 1536, 576),
        (QuantType::Q5_0, 2048, 640),
        (QuantType::Q8_0, 2048, 640),
        (QuantType::Q4K, 640, 2048),
        (QuantType::Q6K, 640, 2048),
        (QuantType::Q8_0, 49152, 576),
        (QuantType::Q8_0, 151936, 896),
    ];
    // A decode-like sweep: one activation row through 30 layers of SmolLM2-shaped Q4_1
    // matrices (~66 MB, more than the caches), as a generation step streams them.
    const SMOLLM2: [(usize, usize); 7] = [
        (576, 576),
        (192, 576),
        (192, 576),
        (576, 576),
        (1536, 576),
        (1536, 576),
        (576, 1536),
    ];
    let layers = decoder_layers(QuantType::Q4_1, 30, SMOLLM2, &mut seed);
    let hot = pool.install(|| {
        time(
            || {
                for _ in 0..30 {
                    decode_step(Isa::detect(), &layers[..1]);
                }
            },
            1.0,
        )
    });
    println!(
        "decode sweep, one layer 30 times (cache-resident): {:.2} ms/token",
        hot * 1e3
    );
    for isa in Isa::available().into_iter().rev() {
        let label = format!("Q4_1 30 layers {isa:?}");
        print_sweep(&pool, isa, &label, &layers, 1.0);
    }
    if let Some(packed) = packed_layers(&layers) {
        print_sweep(
            &pool,
            Isa::detect(),
            "Q4_1 30 layers, row groups",
            &packed,
            1.0,
        );
    }
    // The same for the Qwen2.5-0.5B shape (24 layers, ~390 MB in Q8_0, ~230 in Q5_0).
    for t in [QuantType::Q8_0, QuantType::Q5_0] {
        let layers = decoder_layers(t, 24, QWEN, &mut seed);
        let label = format!("{t:?} Qwen2.5-0.5B shape, 24 layers");
        print_sweep(&pool, Isa::detect(), &label, &layers, 2.0);
        if let Some(packed) = packed_layers(&layers) {
            print_sweep(
                &pool,
                Isa::detect(),
                &format!("{label}, row groups"),
                &packed,
                2.0,
            );
        }
    }
    if std::env::var_os("VIGIL_BENCH_SECTIONS").is_some() {
        section_sweeps(&mut seed);
        return;
    }
    handoff_sweeps(&pool, &mut seed);
    // K-quants need rows of 256-value blocks, which only the Qwen shape's `ffn_down` has:
    // 56 matrices of that shape (~140 MB in Q4_K, ~190 in Q6_K).
    for t in [QuantType::Q4K, QuantType::Q6K] {
        let layers = decoder_layers(t, 8, [(896, 4864); 7], &mut seed);
        let label = format!("{t:?} 56 × ffn_down of the Qwen shape");
        print_sweep(&pool, Isa::detect(), &label, &layers, 2.0);
    }
    // The same kernels on one matrix that stays in L2: what they reach when memory is not
    // the limit (each row's blocks are one chain of FMAs in ggml's order, so ~4 cycles a
    // block is the floor).
    for t in [
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q8_0,
        QuantType::Q4K,
        QuantType::Q6K,
    ] {
        let m = matrix(t, 256, 1536, &mut seed);
        let packed = m.packed_for(Isa::detect());
        let variants =
            std::iter::once(("", &m)).chain(packed.as_ref().map(|p| (", row groups", p)));
        for (layout, m) in variants {
            let x = vec![0.5f32; m.cols()];
            let mut y = vec![0f32; m.rows()];
            let s = pool.install(|| {
                time(
                    || matmul_with(Isa::detect(), m, &x, 1, &mut y).unwrap(),
                    0.5,
                )
            });
            println!(
                "decode in L2 {t:?} (256, 1536){layout}: {:.2} µs, {:.2} GB/s",
                s * 1e6,
                m.data().len() as f64 / s / 1e9
            );
        }
    }
    if std::env::var_os("VIGIL_BENCH_SWEEPS_ONLY").is_some() {
        return;
    }
    for &(t, out, cols) in shapes {
        let w = matrix(t, out, cols, &mut seed);
        for rows in [1usize, 128] {
            if out > 10000 && rows > 1 {
                continue;
            }
            let x: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut y = vec![0f32; rows * out];
            for isa in Isa::available().into_iter().rev() {
                if isa == Isa::Scalar && rows > 1 {
                    continue; // slow and not interesting
                }
                let s =
                    pool.install(|| time(|| matmul_with(isa, &w, &x, rows, &mut y).unwrap(), 0.3));
                let ops = 2.0 * (out * cols * rows) as f64;
                println!(
                    "{:<6} {:>6} {:>6} {:>5} {:>7} {:>10.1} {:>8.1} {:>8.2}",
                    format!("{t:?}"),
                    out,
                    cols,
                    rows,
                    format!("{isa:?}"),
                    s * 1e6,
                    ops / s / 1e9,
                    w.data().len() as f64 / s / 1e9
                );
            }
        }
    }
}

/// Sections against streams: the Qwen shape's gate and up (4864 × 896 each) for 80
/// layers (more than the host's 260 MB L3 in both formats), as one section per layer (a
/// decode step's) and as one section over all of them, on the thread team; the
/// difference is what starting and ending a section costs. Then the same bytes read by
/// a plain sum (`membw`'s loop): how far the kernels fall short of the memory itself.
fn section_sweeps(seed: &mut u64) {
    for t in [QuantType::Q8_0, QuantType::Q5_0] {
        let mats: Vec<QuantMatrix> = (0..160)
            .map(|_| {
                let m = matrix(t, 4864, 896, seed);
                m.packed_for(Isa::detect()).unwrap_or(m)
            })
            .collect();
        let bytes: usize = mats.iter().map(|m| m.data().len()).sum();
        let x = vec![0.5f32; 896];
        let mut ys: Vec<Vec<f32>> = (0..160).map(|_| vec![0f32; 4864]).collect();
        for round in 0..3 {
            let per_layer = time(
                || {
                    for (pair, y) in mats.chunks(2).zip(ys.chunks_mut(2)) {
                        let ws: Vec<&QuantMatrix> = pair.iter().collect();
                        let mut outs: Vec<&mut [f32]> = y.iter_mut().map(|v| &mut v[..]).collect();
                        vigil_kernels::matmul_group_into(&ws, &x, 1, &mut outs).unwrap();
                    }
                },
                1.0,
            );
            let one = time(
                || {
                    let ws: Vec<&QuantMatrix> = mats.iter().collect();
                    let mut outs: Vec<&mut [f32]> = ys.iter_mut().map(|v| &mut v[..]).collect();
                    vigil_kernels::matmul_group_into(&ws, &x, 1, &mut outs).unwrap();
                },
                1.0,
            );
            // The same bytes read as `membw` reads its own, each thread its part of every
            // matrix, in one section: what this memory gives a plain stream just now.
            let threads = vigil_kernels::team::current_threads();
            let plain = time(
                || {
                    vigil_kernels::team::for_each_index(threads, |k| {
                        for m in &mats {
                            let d = m.data();
                            let part = d.len() / threads / 64 * 64;
                            std::hint::black_box(stream::sum_lanes(
                                &d[k * part..(k + 1) * part],
                                true,
                            ));
                        }
                    })
                },
                1.0,
            );
            let gb = |s: f64| bytes as f64 / s / 1e9;
            println!(
                "sections, {t:?} gate+up × 80 ({} MB), round {round}: one per layer {:.2} ms ({:.1} GB/s), one in all {:.2} ms ({:.1} GB/s), plain sum {:.1} GB/s",
                bytes / 1_000_000,
                per_layer * 1e3,
                gb(per_layer),
                one * 1e3,
                gb(one),
                gb(plain)
            );
        }
    }
}
