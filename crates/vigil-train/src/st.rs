//! Reading and writing named tensors as safetensors with string metadata; every error names
//! the file.

use crate::error::{Result, TrainError};
use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Writes `tensors` (name → tensor) and `metadata` to `path`.
pub(crate) fn write(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: HashMap<String, String>,
) -> Result<()> {
    // Contiguous copies: a transposed view has no single byte buffer to write.
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        owned.push((name.clone(), t.contiguous()?));
    }
    safetensors::serialize_to_file(owned, Some(metadata), path)
        .map_err(|e| TrainError::checkpoint(path, format!("cannot write: {e}")))
}

/// Reads every tensor of `path` (onto `device`) and its metadata.
pub(crate) fn read(
    path: &Path,
    device: &Device,
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| {
        TrainError::checkpoint(
            path,
            if e.kind() == std::io::ErrorKind::NotFound {
                "missing".to_string()
            } else {
                format!("cannot read: {e}")
            },
        )
    })?;
    let bad = |e: &dyn std::fmt::Display| {
        TrainError::checkpoint(
            path,
            format!(
                "not a valid safetensors file ({} bytes; truncated or corrupt?): {e}",
                bytes.len()
            ),
        )
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(&e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(&e))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = view
            .load(device)
            .map_err(|e| TrainError::checkpoint(path, format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok((out, metadata))
}
