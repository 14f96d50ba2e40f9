//! [`export_merged`]: a GGUF model (optionally with a PEFT adapter merged in) as a Hugging
//! Face directory — f32 safetensors (sharded above a size), `config.json`,
//! `generation_config.json` and `tokenizer_config.json` with the chat template.
//!
//! Tensors are streamed one at a time into hand-written safetensors files (the header is
//! computed from the shapes first). For `llama` the Q/K rows go back from llama.cpp's rope
//! order to Hugging Face's. Llama and Qwen2 only for now. Byte-level BPE vocabularies are
//! written as `tokenizer.json` ([`vigil_tokenizer::hf_files_from_gguf`]); SentencePiece
//! ones get only `tokenizer_config.json`.

use crate::error::{ExportError, Result};
use crate::gguf_export::GgufSource;
use crate::lora_gguf::{add_update, from_rope_order, peft_updates, rope_heads};
use crate::quantize::dequantize_bytes;
use candle_core::Tensor;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use vigil_model::config::Family;
use vigil_model::weights::hf_tensor_name;
use vigil_model::ModelConfig;

/// Default shard size, as transformers' `save_pretrained` (5 GB).
pub const DEFAULT_SHARD_BYTES: u64 = 5_000_000_000;

#[derive(Debug, Clone)]
pub struct MergedReport {
    pub tensors: usize,
    pub shards: usize,
    pub bytes: u64,
    pub merged_modules: usize,
    /// Whether `tokenizer.json` was written (byte-level BPE vocabularies).
    pub tokenizer_json: bool,
}

fn hf_config(config: &ModelConfig, src: &GgufSource) -> Result<Json> {
    let meta = &src.content.metadata;
    let id = |k: &str| meta.get(k).and_then(|v| v.to_u32().ok());
    let (arch, model_type) = match config.family {
        Family::Llama => ("LlamaForCausalLM", "llama"),
        Family::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        other => {
            return Err(ExportError::Invalid(format!(
                "merged safetensors export supports llama and qwen2, not {}",
                other.name()
            )))
        }
    };
    let mut c = json!({
        "architectures": [arch],
        "model_type": model_type,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "max_position_embeddings": config.max_position,
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    });
    if let Some(b) = id("tokenizer.ggml.bos_token_id") {
        c["bos_token_id"] = json!(b);
    }
    if let Some(e) = id("tokenizer.ggml.eos_token_id") {
        c["eos_token_id"] = json!(e);
    }
    if config.family == Family::Llama {
        c["attention_bias"] = json!(config.qkv_bias);
    }
    Ok(c)
}

/// Writes the Hugging Face directory `out_dir` for the GGUF `source`.
pub fn export_merged(
    source: &Path,
    out_dir: &Path,
    adapter: Option<&Path>,
    shard_bytes: u64,
) -> Result<MergedReport> {
    let mut src = GgufSource::open(source)?;
    let names: Vec<String> = src.tensors.iter().map(|t| t.0.clone()).collect();
    let config = ModelConfig::from_gguf(&src.content, |n| names.iter().any(|m| m == n))
        .map_err(|e| ExportError::file(source, e))?;
    let cfg_json = hf_config(&config, &src)?;
    let arch = src.architecture()?;

    // The adapter's updates by GGUF name, in Hugging Face row order (no permutation needed).
    let mut deltas: BTreeMap<String, Tensor> = match adapter {
        Some(dir) => peft_updates(dir)?,
        None => BTreeMap::new(),
    };
    let merged_modules = deltas.len();

    // Plan: HF name, dims, shard.
    let mut plan = Vec::new();
    let (mut shard, mut in_shard) = (0usize, 0u64);
    for (name, dims, _, _) in &src.tensors {
        let hf = hf_tensor_name(name, config.family).ok_or_else(|| {
            ExportError::file(source, format!("no Hugging Face name for tensor '{name}'"))
        })?;
        let bytes = dims.iter().product::<usize>() as u64 * 4;
        if in_shard > 0 && in_shard + bytes > shard_bytes {
            shard += 1;
            in_shard = 0;
        }
        in_shard += bytes;
        plan.push((hf, dims.clone(), shard, bytes));
    }
    let n_shards = shard + 1;
    let file_name = |s: usize| {
        if n_shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", s + 1, n_shards)
        }
    };
    std::fs::create_dir_all(out_dir).map_err(|e| ExportError::file(out_dir, e))?;
    let mut total = 0u64;
    let mut weight_map = Map::new();
    let mut index = 0usize;
    for s in 0..n_shards {
        let path = out_dir.join(file_name(s));
        let mut header = Map::new();
        header.insert("__metadata__".into(), json!({"format": "pt"}));
        let mut offset = 0u64;
        let members: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].2 == s).collect();
        for &i in &members {
            let (hf, dims, _, bytes) = &plan[i];
            header.insert(
                hf.clone(),
                json!({"dtype": "F32", "shape": dims, "data_offsets": [offset, offset + bytes]}),
            );
            weight_map.insert(hf.clone(), json!(file_name(s)));
            offset += bytes;
        }
        let mut text = serde_json::to_string(&header).map_err(|e| ExportError::file(&path, e))?;
        while text.len() % 8 != 0 {
            text.push(' ');
        }
        let file = std::fs::File::create(&path).map_err(|e| ExportError::file(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let io = |e: std::io::Error| ExportError::file(&path, e);
        w.write_all(&(text.len() as u64).to_le_bytes())
            .map_err(io)?;
        w.write_all(text.as_bytes()).map_err(io)?;
        for &i in &members {
            let (gguf, dims, dtype, _) = src.tensors[i].clone();
            let raw = src.raw(i)?;
            let mut values = dequantize_bytes(&gguf, &raw, &dims, dtype)?;
            drop(raw);
            if let Some(h) = rope_heads(&arch, &gguf, config.num_heads, config.num_kv_heads) {
                let cols = values.len() / dims[0].max(1);
                values = from_rope_order(&values, dims[0], cols, h)?;
            }
            if let Some(d) = deltas.remove(&gguf) {
                add_update(&gguf, &mut values, &d)?;
            }
            for v in &values {
                w.write_all(&v.to_le_bytes()).map_err(io)?;
            }
            index += 1;
        }
        w.flush().map_err(io)?;
        total += 8 + text.len() as u64 + offset;
    }
    if let Some(name) = deltas.keys().next() {
        return Err(ExportError::file(
            source,
            format!("the adapter targets '{name}', which this model does not have"),
        ));
    }
    let write_json = |file: &str, v: &Json| -> Result<()> {
        let path = out_dir.join(file);
        let text = serde_json::to_string_pretty(v).map_err(|e| ExportError::file(&path, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| ExportError::file(&path, e))
    };
    if n_shards > 1 {
        let size: u64 = plan.iter().map(|p| p.3).sum();
        write_json(
            "model.safetensors.index.json",
            &json!({"metadata": {"total_size": size}, "weight_map": weight_map}),
        )?;
    }
    write_json("config.json", &cfg_json)?;
    let mut gen = json!({});
    for k in ["bos_token_id", "eos_token_id"] {
        if let Some(v) = cfg_json.get(k) {
            gen[k] = v.clone();
        }
    }
    write_json("generation_config.json", &gen)?;
    // The vocabulary as tokenizer.json + tokenizer_config.json (byte-level BPE); for other
    // vocabularies only the config with the chat template and special-token texts.
    let meta = &src.content.metadata;
    let tokenizer_json = match vigil_tokenizer::hf_files_from_gguf(meta) {
        Ok(files) => {
            let path = out_dir.join("tokenizer.json");
            std::fs::write(&path, files.tokenizer_json).map_err(|e| ExportError::file(&path, e))?;
            write_json("tokenizer_config.json", &files.tokenizer_config)?;
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "tokenizer.json not written");
            write_json("tokenizer_config.json", &minimal_tokenizer_config(meta))?;
            false
        }
    };
    Ok(MergedReport {
        tensors: index,
        shards: n_shards,
        bytes: total,
        merged_modules,
        tokenizer_json,
    })
}

/// The chat template and special-token texts, for vocabularies not written as
/// tokenizer.json.
fn minimal_tokenizer_config(
    meta: &std::collections::HashMap<String, candle_core::quantized::gguf_file::Value>,
) -> Json {
    let tokens = meta
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok());
    let token_str = |key: &str| {
        let id = meta.get(key).and_then(|v| v.to_u32().ok())? as usize;
        tokens
            .and_then(|t| t.get(id))
            .and_then(|v| v.to_string().ok())
            .cloned()
    };
    let mut tok = json!({});
    if let Some(t) = meta
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
    {
        tok["chat_template"] = json!(t);
    }
    for (field, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
    ] {
        if let Some(s) = token_str(key) {
            tok[field] = json!(s);
        }
    }
    tok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_order_round_trips() {
        let m: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let there = crate::lora_gguf::to_rope_order(&m, 12, 2, 2).unwrap();
        assert_ne!(there, m);
        assert_eq!(from_rope_order(&there, 12, 2, 2).unwrap(), m);
    }
}
