//! Streaming read bandwidth of this machine, the ceiling for decode speed:
//! `cargo run --release -p vigil-kernels --example membw [threads...]`.
//!
//! Decode reads every weight once per token, so `bandwidth ÷ weight bytes` is the most
//! tokens/s any engine can reach once the weights no longer fit in cache.
//! `tools/bench_runtime.py --membw` runs this and reports each engine's decode as a share
//! of that ceiling. Each thread sums its own 512 MiB slice (far beyond the last-level
//! cache) with 8-lane u64 adds, once as plain loads and once with software prefetch a few
//! KB ahead (as the decode kernels do: on some CPUs, e.g. this project's Xeon host, one
//! core's plain stream leaves DRAM bandwidth unused, and a ceiling from it alone would
//! be too low). Both ways run on 4 KiB pages and again on memory advised to huge pages
//! (`vigil_kernels::advise_huge_pages`, as vigil's packed weights are): there, one core's
//! stream is faster still. The best pass of the four kinds, 5 passes each, is printed as
//! one JSON line `{"threads": N, "gb_s": X}` per thread count.

use std::time::Instant;

const SLICE_BYTES: usize = 512 << 20;

/// How far ahead the prefetching pass asks for lines (the kernels' distance).
const PREFETCH_BYTES: usize = 3072;

/// Sum of `data` in 8 independent lanes: enough loads in flight to saturate memory.
/// With `prefetch`, each 64-byte chunk first asks for the line `PREFETCH_BYTES` ahead.
fn sum_lanes(data: &[u64], prefetch: bool) -> u64 {
    let mut acc = [0u64; 8];
    for chunk in data.chunks_exact(8) {
        #[cfg(target_arch = "x86_64")]
        if prefetch {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let ahead = chunk.as_ptr().cast::<u8>().wrapping_add(PREFETCH_BYTES);
            // SAFETY: a prefetch never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.cast()) };
        }
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = a.wrapping_add(v);
        }
    }
    acc.iter().fold(0, |s, &a| s.wrapping_add(a))
}

/// Each thread's slice, its pages advised to huge pages or not.
fn slices(threads: usize, huge: bool) -> Vec<Vec<u64>> {
    (0..threads)
        .map(|t| {
            let mut v = Vec::with_capacity(SLICE_BYTES / 8);
            if huge {
                vigil_kernels::advise_huge_pages(v.spare_capacity_mut());
            }
            v.extend((0..SLICE_BYTES / 8).map(|i| (i ^ t) as u64));
            v
        })
        .collect()
}

fn measure(threads: usize) -> f64 {
    let mut best = 0f64;
    for huge in [false, true] {
        best = best.max(measure_on(&slices(threads, huge)));
    }
    best
}

fn measure_on(slices: &[Vec<u64>]) -> f64 {
    let threads = slices.len();
    let mut best = 0f64;
    for prefetch in [false, true].into_iter().flat_map(|p| [p; 5]) {
        let t0 = Instant::now();
        let sums: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = slices
                .iter()
                .map(|sl| s.spawn(move || sum_lanes(sl, prefetch)))
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("reader thread"))
                .fold(0, u64::wrapping_add)
        });
        let secs = t0.elapsed().as_secs_f64();
        std::hint::black_box(sums);
        best = best.max((threads * SLICE_BYTES) as f64 / secs / 1e9);
    }
    best
}

fn main() {
    let mut threads: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("thread counts are integers"))
        .collect();
    if threads.is_empty() {
        threads = vec![1, 2];
    }
    for t in threads {
        println!("{{\"threads\": {t}, \"gb_s\": {:.2}}}", measure(t));
    }
}
