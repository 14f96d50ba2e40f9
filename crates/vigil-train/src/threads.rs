//! Running training on a chosen number of CPU threads.
//!
//! candle's float matmul (`gemm`) runs on the current rayon pool and sizes its work split
//! from `RAYON_NUM_THREADS`; its quantised matmul uses candle's own pool, sized once from
//! `CANDLE_NUM_THREADS`. [`with_threads`] sets both variables and runs the closure inside a
//! rayon pool of that many threads.

use crate::error::{Result, TrainError};

/// Runs `f` on `threads` CPU threads (`None`: the default pool, all physical cores).
///
/// Call it before the first model forward pass of the process when the count matters for
/// candle's own pool (it is created once).
pub fn with_threads<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let Some(n) = threads.filter(|&n| n > 0) else {
        return Ok(f());
    };
    let value = n.to_string();
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var(var).ok().as_deref() != Some(value.as_str()) {
            // std serialises environment access, and candle reads these through std.
            std::env::set_var(var, &value);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("vigil-train-{i}"))
        .build()
        .map_err(|e| TrainError::Run(format!("cannot start {n} threads: {e}")))?;
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_on_the_requested_pool() {
        let n = super::with_threads(Some(3), rayon::current_num_threads).unwrap();
        assert_eq!(n, 3);
        assert_eq!(std::env::var("CANDLE_NUM_THREADS").unwrap(), "3");
        assert_eq!(super::with_threads(None, || 7).unwrap(), 7);
    }
}
