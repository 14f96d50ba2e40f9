//! How the layout of a weight matrix bounds decode speed on this machine:
//! `cargo run --release -p vigil-kernels --example decode_layouts`.
//!
//! Decode multiplies each weight row by one activation row. In ggml's order (which vigil
//! keeps, bit for bit) each row's blocks are one chain of dependent FMAs, so one row at a
//! time cannot go faster than one block per FMA latency. This example runs the per-block
//! work of vigil's VNNI decode kernels (Q8_0 and Q4_1 blocks, random codes, one thread)
//! over a 400 MB matrix (from DRAM) and over a 240 KB one (in L2), in four layouts:
//!
//! - `one row`: row-major, one row after another (what vigil and llama.cpp do today);
//! - `two rows apart`: row-major, two neighbouring rows side by side (two chains, but two
//!   address streams);
//! - `interleaved 2` / `interleaved 4`: the blocks of 2 or 4 rows interleaved in memory
//!   (block b of row r at `(b · K + r mod K)` within the group): several chains, one
//!   linear stream. Each row's arithmetic is unchanged, so its result would be too.
//!
//! and prints GB/s of weights for each, next to a plain streaming read of the same buffer
//! (the `membw` ceiling). Not a kernel of the crate: a measurement to decide whether a
//! repacked layout is worth building (see BENCHMARKS.md, session 11).

#[cfg(target_arch = "x86_64")]
mod layouts {
    use std::arch::x86_64::*;
    use std::time::Instant;

    /// Blocks per row: 896 columns, the Qwen2.5-0.5B width.
    const NB: usize = 28;
    /// How far ahead of the block in hand the loops prefetch (as the crate's kernels do).
    const PREFETCH: usize = 3072;

    /// The two block formats: bytes per block, and the work for one block.
    #[derive(Clone, Copy)]
    pub enum Fmt {
        Q8_0,
        Q4_1,
    }

    impl Fmt {
        fn bytes(self) -> usize {
            match self {
                Fmt::Q8_0 => 34,
                Fmt::Q4_1 => 20,
            }
        }
    }

    /// One chain's state: 8 lanes of sums and (Q4_1) the minimum term.
    #[derive(Clone, Copy)]
    struct Acc(__m256, f32);

    /// One block into `acc`, the same instructions as `block32::vnni::dot`.
    #[inline(always)]
    unsafe fn block(f: Fmt, wp: *const u8, y: __m256i, dy: __m256, acc: Acc) -> Acc {
        let codes = match f {
            Fmt::Q8_0 => _mm256_xor_si256(
                _mm256_loadu_si256(wp.add(2) as *const __m256i),
                _mm256_set1_epi8(-128),
            ),
            Fmt::Q4_1 => {
                let b = _mm_loadu_si128(wp.add(4) as *const __m128i);
                let both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
                _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
            }
        };
        let lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes, y);
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128((wp as *const i32).read_unaligned()));
        let d = _mm256_mul_ps(_mm256_broadcastss_ps(dm), dy);
        let sums = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc.0);
        let mins = match f {
            Fmt::Q8_0 => acc.1,
            Fmt::Q4_1 => _mm_cvtss_f32(_mm_movehdup_ps(dm)).mul_add(0.5, acc.1),
        };
        Acc(sums, mins)
    }

    fn zero() -> Acc {
        Acc(unsafe { _mm256_setzero_ps() }, 0.0)
    }

    fn total(a: Acc) -> f32 {
        let mut l = [0f32; 8];
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), a.0) };
        l.iter().sum::<f32>() + a.1
    }

    /// `K` rows at a time; `apart`: row-major rows, else the rows' blocks interleaved.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    unsafe fn decode<const K: usize>(
        f: Fmt,
        apart: bool,
        w: &[u8],
        ys: &[__m256i; NB],
        out: &mut [f32],
    ) {
        let bb = f.bytes();
        let dy = _mm256_set1_ps(0.01);
        for r in (0..out.len()).step_by(K) {
            let group = w.as_ptr().add(r * bb * NB);
            let mut acc = [zero(); K];
            for (b, &y) in ys.iter().enumerate() {
                // Block b of row r + k, and the one stream's (or the last row's) front.
                let at = |k: usize| {
                    if apart {
                        group.add((k * NB + b) * bb)
                    } else {
                        group.add((b * K + k) * bb)
                    }
                };
                _mm_prefetch::<_MM_HINT_T0>(at(K - 1).wrapping_add(PREFETCH) as *const i8);
                for (k, a) in acc.iter_mut().enumerate() {
                    *a = block(f, at(k), y, dy, *a);
                }
            }
            for (k, a) in acc.into_iter().enumerate() {
                out[r + k] = total(a);
            }
        }
    }

    /// Eight rows repacked per block column: the 8 f16 scales, (Q4_1) the 8 f16 minimums,
    /// then the codes of rows (2p, 2p+1) in 32 bytes, row 2p in the low nibbles and row
    /// 2p+1 in the high ones, each in element order (Q8_0: 8 × 32 code bytes, +128).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    unsafe fn decode_repacked8(f: Fmt, w: &[u8], ys: &[__m256i; NB], out: &mut [f32]) {
        let gb = 8 * f.bytes(); // a group's block column: as many bytes as 8 blocks
        let dy = _mm256_set1_ps(0.01);
        let sy = _mm256_set1_ps(0.5);
        let idx: [__m256i; 8] = std::array::from_fn(|k| _mm256_set1_epi32(k as i32));
        for r in (0..out.len()).step_by(8) {
            let group = w.as_ptr().add(r * f.bytes() * NB);
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut mins = _mm256_setzero_ps();
            for (b, &y) in ys.iter().enumerate() {
                let g = group.add(b * gb);
                _mm_prefetch::<_MM_HINT_T0>(g.wrapping_add(PREFETCH) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(g.wrapping_add(PREFETCH + 64) as *const i8);
                let d8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(g as *const __m128i)), dy);
                let codes = match f {
                    Fmt::Q4_1 => {
                        let m8 = _mm256_cvtph_ps(_mm_loadu_si128(g.add(16) as *const __m128i));
                        mins = _mm256_fmadd_ps(m8, sy, mins);
                        g.add(32)
                    }
                    Fmt::Q8_0 => g.add(16),
                };
                for p in 0..4 {
                    let c = match f {
                        Fmt::Q4_1 => {
                            let v = _mm256_loadu_si256(codes.add(32 * p) as *const __m256i);
                            let m = _mm256_set1_epi8(0x0F);
                            [
                                _mm256_and_si256(v, m),
                                _mm256_and_si256(_mm256_srli_epi16(v, 4), m),
                            ]
                        }
                        Fmt::Q8_0 => [
                            _mm256_loadu_si256(codes.add(64 * p) as *const __m256i),
                            _mm256_loadu_si256(codes.add(64 * p + 32) as *const __m256i),
                        ],
                    };
                    for (h, &ck) in c.iter().enumerate() {
                        let k = 2 * p + h;
                        let lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ck, y);
                        let d = _mm256_permutexvar_ps(idx[k], d8);
                        acc[k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc[k]);
                    }
                }
            }
            let mut m = [0f32; 8];
            _mm256_storeu_ps(m.as_mut_ptr(), mins);
            for k in 0..8 {
                out[r + k] = total(Acc(acc[k], m[k]));
            }
        }
    }

    /// The `membw` loop: 8 independent u64 sums over the buffer.
    fn stream(w: &[u8]) -> u64 {
        let mut acc = [0u64; 8];
        for c in w.chunks_exact(64) {
            for (a, v) in acc.iter_mut().zip(c.chunks_exact(8)) {
                *a = a.wrapping_add(u64::from_le_bytes(v.try_into().unwrap()));
            }
        }
        acc.iter().fold(0, |s, &a| s.wrapping_add(a))
    }

    /// Best GB/s of `reps` passes over `bytes`, over 5 tries.
    fn best(bytes: usize, reps: usize, mut f: impl FnMut()) -> f64 {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                (bytes * reps) as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }

    pub fn run() {
        if !is_x86_feature_detected!("avx512vnni") || !is_x86_feature_detected!("avx512vl") {
            println!("decode_layouts needs AVX-512 VNNI; this CPU lacks it");
            return;
        }
        let ys: [__m256i; NB] = std::array::from_fn(|i| unsafe { _mm256_set1_epi8(i as i8) });
        for f in [Fmt::Q8_0, Fmt::Q4_1] {
            let bb = f.bytes();
            let rows = (400 << 20) / (bb * NB) / 8 * 8;
            let mut w: Vec<u8> = (0..rows * bb * NB).map(|i| (i * 7 % 251) as u8).collect();
            // Scales of 0.01 (f16 0x211F) so no block is inf or NaN.
            for blk in w.chunks_exact_mut(bb) {
                blk[..2].copy_from_slice(&0x211Fu16.to_le_bytes());
            }
            let mut out = vec![0f32; rows];
            let l2_rows = 256;
            let name = match f {
                Fmt::Q8_0 => "Q8_0",
                Fmt::Q4_1 => "Q4_1",
            };
            let s = best(w.len(), 1, || {
                std::hint::black_box(stream(&w));
            });
            println!("{name}: streaming read {s:.1} GB/s");
            for (label, k, apart) in [
                ("one row", 1, false),
                ("two rows apart", 2, true),
                ("interleaved 2", 2, false),
                ("interleaved 4", 4, false),
                ("repacked 8", 8, false),
            ] {
                let pass = |w: &[u8], out: &mut [f32]| unsafe {
                    match k {
                        1 => decode::<1>(f, apart, w, &ys, out),
                        2 => decode::<2>(f, apart, w, &ys, out),
                        8 => decode_repacked8(f, w, &ys, out),
                        _ => decode::<4>(f, apart, w, &ys, out),
                    }
                    std::hint::black_box(&out);
                };
                let dram = best(w.len(), 1, || pass(&w, &mut out));
                let small = &w[..l2_rows * bb * NB];
                let l2 = best(small.len(), 2000, || {
                    pass(std::hint::black_box(small), &mut out[..l2_rows])
                });
                println!(
                    "{name}: {label:<15} DRAM {dram:5.1} GB/s ({:3.0} % of the read)   L2 {l2:5.1} GB/s",
                    100.0 * dram / s
                );
            }
        }
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    layouts::run();
    #[cfg(not(target_arch = "x86_64"))]
    println!("decode_layouts measures x86 kernels only");
}
