//! Optional dump of intermediate tensors, for comparing vigil's forward pass op by op with
//! llama.cpp's (`tools/dump_ggml_tensors.py` writes the other side).
//!
//! Off unless the environment variable `VIGIL_TRACE_DIR` names a directory; then every
//! [`trace`] call writes `NNNN-<name>.npy` there (f32, the tensor's own shape). The names
//! follow llama.cpp's graph (`attn_norm-3`, `kq_soft_max-3`, `l_out-3`, …).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use candle_core::{DType, Tensor};

fn dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("VIGIL_TRACE_DIR").map(PathBuf::from))
        .as_ref()
}

/// Whether tracing is on (lets callers skip building a name).
pub fn enabled() -> bool {
    dir().is_some()
}

/// [`trace`] under `<name>-<layer>`, the name built only when tracing is on (a forward
/// pass makes a dozen of these calls per layer).
pub fn trace_layer(name: &str, layer: usize, t: &Tensor) {
    if enabled() {
        trace(&format!("{name}-{layer}"), t);
    }
}

/// Writes `t` as `NNNN-<name>.npy` when tracing is on. Failures are logged, never fatal:
/// tracing must not change what the forward pass returns.
pub fn trace(name: &str, t: &Tensor) {
    let Some(dir) = dir() else { return };
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let write = || -> Result<(), Box<dyn std::error::Error>> {
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let shape = t.dims().iter().map(|d| format!("{d},")).collect::<String>();
        let mut header =
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}");
        // magic (6) + version (2) + length (2) + header + '\n', padded to 64 bytes.
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for v in data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(format!("{n:04}-{name}.npy")), bytes)?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::warn!("trace {name}: {e}");
    }
}
