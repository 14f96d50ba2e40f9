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

#[path = "common/stream.rs"]
mod stream;

const SLICE_BYTES: usize = 512 << 20;

/// Each thread's slice, its pages advised to huge pages or not.
fn slices(threads: usize, huge: bool) -> Vec<Vec<u8>> {
    (0..threads)
        .map(|t| {
            let mut v = Vec::with_capacity(SLICE_BYTES);
            if huge {
                vigil_kernels::advise_huge_pages(v.spare_capacity_mut());
            }
            v.extend((0..SLICE_BYTES).map(|i| (i ^ t) as u8));
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

fn measure_on(slices: &[Vec<u8>]) -> f64 {
    let threads = slices.len();
    let mut best = 0f64;
    for prefetch in [false, true].into_iter().flat_map(|p| [p; 5]) {
        let t0 = Instant::now();
        let sums: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = slices
                .iter()
                .map(|sl| s.spawn(move || stream::sum_lanes(sl, prefetch)))
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
