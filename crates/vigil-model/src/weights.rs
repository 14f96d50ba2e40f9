//! `WeightSource`: named tensors from a GGUF file or from (sharded) safetensors.
//!
//! Tensors are always asked for by their llama.cpp (GGUF) name — `blk.3.attn_q.weight` —
//! and a safetensors source translates that to the Hugging Face module path with
//! [`hf_tensor_name`], so the decoder has one naming scheme whatever the file.

use crate::config::Family;
use crate::error::{ModelError, Result};
use candle_core::quantized::{gguf_file, GgmlDType, GgmlType, QStorage, QTensor, QuantizedType};
use candle_core::{DType, Device, Tensor};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One stored tensor: still quantised, or dense f32.
#[derive(Debug, Clone)]
pub enum Weight {
    Quantized(Arc<QTensor>),
    Dense(Tensor),
}

impl Weight {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Weight::Quantized(q) => q.shape().dims().to_vec(),
            Weight::Dense(t) => t.dims().to_vec(),
        }
    }

    /// A dense f32 copy (dequantising if needed).
    pub fn to_dense(&self) -> Result<Tensor> {
        Ok(match self {
            Weight::Quantized(q) => q.dequantize(&Device::Cpu)?,
            Weight::Dense(t) => t.to_dtype(DType::F32)?,
        })
    }

    /// Float types stored in a GGUF are used densely; block-quantised ones stay quantised.
    fn from_qtensor(q: QTensor) -> Result<Self> {
        Ok(match q.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                Weight::Dense(q.dequantize(&Device::Cpu)?)
            }
            _ => Weight::Quantized(Arc::new(q)),
        })
    }
}

/// Where the decoder's tensors come from.
pub enum WeightSource {
    Gguf {
        path: PathBuf,
        file: File,
        content: gguf_file::Content,
    },
    Safetensors {
        dir: PathBuf,
        family: Family,
        tensors: candle_core::safetensors::MmapedSafetensors,
    },
}

impl WeightSource {
    /// Opens a GGUF file and reads its header (metadata and tensor directory).
    pub fn open_gguf(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| ModelError::file(path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| ModelError::file(path, e))?
            .len();
        let content = gguf_file::Content::read(&mut file).map_err(|e| {
            // candle reports running off the end as an I/O error or a bounds check on the
            // remaining bytes; say what that means.
            let text = e.to_string();
            if text.contains("failed to fill whole buffer") || text.contains("remaining") {
                ModelError::file(
                    path,
                    format!(
                        "truncated or corrupt GGUF file: the header runs past the end of the \
                         file ({file_len} bytes): {text}"
                    ),
                )
            } else {
                ModelError::file(path, format!("not a readable GGUF file: {text}"))
            }
        })?;
        // Check every tensor lies inside the file now, so a truncated download fails here
        // with one clear message rather than on whichever tensor is read first.
        let mut needed = 0u64;
        for (name, info) in &content.tensor_infos {
            let dtype = info.ggml_dtype;
            let bytes = info
                .shape
                .dims()
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .map(|n| (n / dtype.block_size()).saturating_mul(dtype.type_size()))
                .ok_or_else(|| {
                    ModelError::file(
                        path,
                        format!("tensor '{name}' has an impossible shape {:?}", info.shape),
                    )
                })?;
            let end = content
                .tensor_data_offset
                .saturating_add(info.offset)
                .saturating_add(bytes as u64);
            needed = needed.max(end);
        }
        if needed > file_len {
            return Err(ModelError::file(
                path,
                format!(
                    "truncated GGUF file: its tensors need {needed} bytes, the file has {file_len}"
                ),
            ));
        }
        Ok(WeightSource::Gguf {
            path: path.to_path_buf(),
            file,
            content,
        })
    }

    /// Opens the safetensors of a Hugging Face model directory (one file or an index of
    /// shards).
    pub fn open_safetensors(dir: &Path, family: Family) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|e| ModelError::file(&index, e))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::file(&index, format!("invalid JSON: {e}")))?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| ModelError::file(&index, "no 'weight_map' object"))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            shards.sort();
            shards.dedup();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            vec![dir.join("model.safetensors")]
        };
        for f in &files {
            if !f.exists() {
                return Err(ModelError::file(f, "safetensors file not found"));
            }
        }
        // SAFETY: the files are mapped read-only; like every mmap-based loader we rely on
        // them not being truncated while the model is loading (tensors are copied out).
        let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }
            .map_err(|e| {
                ModelError::file(
                    dir,
                    format!("cannot read safetensors ({}): {e}", files.len()),
                )
            })?;
        Ok(WeightSource::Safetensors {
            dir: dir.to_path_buf(),
            family,
            tensors,
        })
    }

    /// Forgets these GGUF metadata keys (large arrays already used, so their memory is
    /// not held while the weights load).
    pub fn drop_metadata(&mut self, keys: &[&str]) {
        if let WeightSource::Gguf { content, .. } = self {
            for k in keys {
                content.metadata.remove(*k);
            }
        }
    }

    pub fn gguf_content(&self) -> Option<&gguf_file::Content> {
        match self {
            WeightSource::Gguf { content, .. } => Some(content),
            WeightSource::Safetensors { .. } => None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            WeightSource::Gguf { path, .. } => path,
            WeightSource::Safetensors { dir, .. } => dir,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        match self {
            WeightSource::Gguf { content, .. } => content.tensor_infos.contains_key(name),
            WeightSource::Safetensors {
                tensors, family, ..
            } => hf_tensor_name(name, *family)
                .map(|n| tensors.get(&n).is_ok())
                .unwrap_or(false),
        }
    }

    /// Loads a tensor by GGUF name and checks it has the expected shape (outermost first).
    pub fn get(&mut self, name: &str, expect: &[usize]) -> Result<Weight> {
        let w = self.get_unchecked(name)?;
        if w.dims() != expect {
            // A safetensors user knows the tensor by its Hugging Face name.
            let whence = match self {
                WeightSource::Safetensors { dir, family, .. } => {
                    match hf_tensor_name(name, *family) {
                        Some(hf) => format!("{} ('{hf}')", dir.display()),
                        None => dir.display().to_string(),
                    }
                }
                WeightSource::Gguf { path, .. } => path.display().to_string(),
            };
            return Err(ModelError::weight(
                name,
                format!(
                    "{whence}: shape {:?} does not match the configuration's {:?}",
                    w.dims(),
                    expect
                ),
            ));
        }
        Ok(w)
    }

    fn get_unchecked(&mut self, name: &str) -> Result<Weight> {
        match self {
            WeightSource::Gguf {
                path,
                file,
                content,
            } => {
                if !content.tensor_infos.contains_key(name) {
                    return Err(ModelError::weight(
                        name,
                        format!("{}: tensor missing", path.display()),
                    ));
                }
                let q = read_qtensor(file, content, name)
                    .map_err(|e| ModelError::weight(name, format!("{}: {e}", path.display())))?;
                Weight::from_qtensor(q)
            }
            WeightSource::Safetensors {
                dir,
                family,
                tensors,
            } => {
                let hf = hf_tensor_name(name, *family).ok_or_else(|| {
                    ModelError::weight(
                        name,
                        format!("{}: no Hugging Face name for this tensor", dir.display()),
                    )
                })?;
                let t = tensors.load(&hf, &Device::Cpu).map_err(|e| {
                    ModelError::weight(name, format!("{} ('{hf}'): {e}", dir.display()))
                })?;
                Ok(Weight::Dense(t.to_dtype(DType::F32)?))
            }
        }
    }
}

/// A GGUF tensor read straight into the storage it keeps. candle's own reader reads the
/// bytes into a buffer and then copies them into typed blocks: that doubles the peak memory
/// of the largest tensor (Gemma 3's 178 MB embedding) and leaves the freed buffers
/// fragmenting the heap (together ~100 MB of Gemma 3's peak RSS).
fn read_qtensor(
    file: &mut File,
    content: &gguf_file::Content,
    name: &str,
) -> candle_core::Result<QTensor> {
    use candle_core::quantized::k_quants::*;
    let info = &content.tensor_infos[name];
    let dtype = info.ggml_dtype;
    let elems = info.shape.elem_count();
    if !elems.is_multiple_of(dtype.block_size()) {
        candle_core::bail!("{elems} values are not whole blocks of {dtype:?}");
    }
    let n = elems / dtype.block_size();
    let start = content.tensor_data_offset.saturating_add(info.offset);
    file.seek(SeekFrom::Start(start))?;
    let storage = match dtype {
        GgmlDType::F32 => read_blocks::<f32>(file, n)?,
        GgmlDType::F16 => read_blocks::<half::f16>(file, n)?,
        GgmlDType::BF16 => read_blocks::<half::bf16>(file, n)?,
        GgmlDType::Q4_0 => read_blocks::<BlockQ4_0>(file, n)?,
        GgmlDType::Q4_1 => read_blocks::<BlockQ4_1>(file, n)?,
        GgmlDType::Q5_0 => read_blocks::<BlockQ5_0>(file, n)?,
        GgmlDType::Q5_1 => read_blocks::<BlockQ5_1>(file, n)?,
        GgmlDType::Q8_0 => read_blocks::<BlockQ8_0>(file, n)?,
        GgmlDType::Q2K => read_blocks::<BlockQ2K>(file, n)?,
        GgmlDType::Q3K => read_blocks::<BlockQ3K>(file, n)?,
        GgmlDType::Q4K => read_blocks::<BlockQ4K>(file, n)?,
        GgmlDType::Q5K => read_blocks::<BlockQ5K>(file, n)?,
        GgmlDType::Q6K => read_blocks::<BlockQ6K>(file, n)?,
        _ => return content.tensor(file, name, &Device::Cpu),
    };
    QTensor::new(QStorage::Cpu(storage), info.shape.dims().to_vec())
}

/// `n` blocks of `T` read from the file's current position.
fn read_blocks<T: GgmlType + 'static>(
    file: &mut File,
    n: usize,
) -> std::io::Result<Box<dyn QuantizedType>> {
    let mut blocks = vec![T::zeros(); n];
    // SAFETY: ggml blocks are plain bytes (f16s and byte arrays, no padding: their size
    // is the format's block size, which candle relies on as well), so any bytes are a
    // valid value, and the slice covers exactly the vector's initialised elements.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(blocks.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>())
    };
    file.read_exact(bytes)?;
    Ok(Box::new(blocks))
}

/// The Hugging Face tensor name for a GGUF tensor name, per family. One table for loading
/// safetensors now and for PEFT module paths later.
pub fn hf_tensor_name(gguf: &str, family: Family) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = rest.split_once('.')?;
    let path = match (module, family) {
        ("attn_q", _) => "self_attn.q_proj",
        ("attn_k", _) => "self_attn.k_proj",
        ("attn_v", _) => "self_attn.v_proj",
        ("attn_output", _) => "self_attn.o_proj",
        ("attn_q_norm", _) => "self_attn.q_norm",
        ("attn_k_norm", _) => "self_attn.k_norm",
        ("ffn_gate", _) => "mlp.gate_proj",
        ("ffn_up", _) => "mlp.up_proj",
        ("ffn_down", _) => "mlp.down_proj",
        ("attn_norm", _) => "input_layernorm",
        // Gemma 3 has four norms per block; Llama's second norm sits where Gemma's
        // pre-feed-forward norm does.
        ("ffn_norm", Family::Gemma3) => "pre_feedforward_layernorm",
        ("ffn_norm", _) => "post_attention_layernorm",
        ("post_attention_norm", Family::Gemma3) => "post_attention_layernorm",
        ("post_ffw_norm", Family::Gemma3) => "post_feedforward_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{path}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names_follow_transformers_module_paths() {
        assert_eq!(
            hf_tensor_name("blk.3.attn_q.weight", Family::Llama).as_deref(),
            Some("model.layers.3.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_tensor_name("blk.0.attn_k.bias", Family::Qwen2).as_deref(),
            Some("model.layers.0.self_attn.k_proj.bias")
        );
        assert_eq!(
            hf_tensor_name("blk.1.ffn_norm.weight", Family::Llama).as_deref(),
            Some("model.layers.1.post_attention_layernorm.weight")
        );
        assert_eq!(
            hf_tensor_name("blk.1.ffn_norm.weight", Family::Gemma3).as_deref(),
            Some("model.layers.1.pre_feedforward_layernorm.weight")
        );
        assert_eq!(
            hf_tensor_name("blk.1.post_attention_norm.weight", Family::Gemma3).as_deref(),
            Some("model.layers.1.post_attention_layernorm.weight")
        );
        assert_eq!(hf_tensor_name("blk.x.attn_q.weight", Family::Llama), None);
    }
}
