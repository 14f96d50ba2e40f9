//! The plain streaming read that `membw` measures the ceiling with and that `bench` sets
//! beside the decode kernels (included by both with `#[path]`).

/// How far ahead the prefetching read asks for lines (the kernels' distance).
pub const PREFETCH_BYTES: usize = 3072;

/// Sum of `data` as u64 in 8 independent lanes: enough loads in flight to saturate
/// memory. With `prefetch`, each 64-byte chunk first asks for the line
/// [`PREFETCH_BYTES`] ahead. A trailing partial chunk is not read.
pub fn sum_lanes(data: &[u8], prefetch: bool) -> u64 {
    let mut acc = [0u64; 8];
    for chunk in data.chunks_exact(64) {
        #[cfg(target_arch = "x86_64")]
        if prefetch {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let ahead = chunk.as_ptr().wrapping_add(PREFETCH_BYTES);
            // SAFETY: a prefetch never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.cast()) };
        }
        for (a, w) in acc.iter_mut().zip(chunk.chunks_exact(8)) {
            *a = a.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
    }
    acc.iter().fold(0, |s, &a| s.wrapping_add(a))
}
