//! [`export_lora_gguf`]: a PEFT LoRA adapter directory → llama.cpp's adapter GGUF
//! (`general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, tensors
//! `<gguf name>.lora_a` `[r, in]` and `.lora_b` `[out, r]` in f32).
//!
//! The base GGUF supplies the architecture and head counts: for `llama` the converter
//! stored Q and K rows in llama.cpp's interleaved rope order, so the adapter's Q/K `B` rows
//! (which follow the output rows) are permuted the same way.

use crate::error::{ExportError, Result};
use crate::gguf_export::GgufSource;
use crate::gguf_writer::{GgufWriter, TensorEntry};
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// The GGUF name of a decoder-block module, from its PEFT / Hugging Face path
/// (`…layers.3.self_attn.q_proj` → `blk.3.attn_q.weight`).
pub fn gguf_module_name(hf_path: &str) -> Option<String> {
    let rest = &hf_path[hf_path.find("layers.")? + "layers.".len()..];
    let (layer, module) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let gguf = match module.rsplit('.').next()? {
        "q_proj" => "attn_q",
        "k_proj" => "attn_k",
        "v_proj" => "attn_v",
        "o_proj" => "attn_output",
        "gate_proj" => "ffn_gate",
        "up_proj" => "ffn_up",
        "down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{gguf}.weight"))
}

/// Each adapted module's update `scale·B·A` from a PEFT adapter directory, keyed by the
/// module's GGUF tensor name, rows in Hugging Face order.
pub fn peft_updates(adapter_dir: &Path) -> Result<BTreeMap<String, Tensor>> {
    let (config, tensors) = vigil_model::lora::read_peft_dir(adapter_dir)
        .map_err(|e| ExportError::file(adapter_dir, e))?;
    let mut updates = BTreeMap::new();
    for (key, a) in &tensors {
        let Some(module) = key.strip_suffix(".lora_A.weight") else {
            continue;
        };
        let b = tensors
            .get(&format!("{module}.lora_B.weight"))
            .ok_or_else(|| ExportError::file(adapter_dir, format!("'{key}' has no lora_B")))?;
        let gguf = gguf_module_name(module).ok_or_else(|| {
            ExportError::file(
                adapter_dir,
                format!("no model tensor for module '{module}'"),
            )
        })?;
        let path = module.strip_prefix("base_model.model.").unwrap_or(module);
        let (r, alpha) = config.rank_alpha(path);
        let d = b
            .matmul(a)
            .and_then(|d| d * config.scale(r, alpha))
            .map_err(|e| ExportError::tensor(key, e))?;
        updates.insert(gguf, d);
    }
    Ok(updates)
}

/// `values += update` for one weight (both row-major, same shape), or an error naming it.
pub fn add_update(name: &str, values: &mut [f32], update: &Tensor) -> Result<()> {
    let d: Vec<f32> = update
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(|e| ExportError::tensor(name, e))?;
    if d.len() != values.len() {
        return Err(ExportError::tensor(
            name,
            format!(
                "adapter update {:?} does not match the weight's {} values",
                update.dims(),
                values.len()
            ),
        ));
    }
    values.iter_mut().zip(&d).for_each(|(v, x)| *v += x);
    Ok(())
}

/// The head count whose rope order a GGUF tensor's rows follow: llama.cpp's converter
/// interleaves the rows of Q (`heads`) and K (`kv_heads`), weights and biases, for the
/// `llama` architecture only.
pub fn rope_heads(arch: &str, gguf_name: &str, heads: usize, kv_heads: usize) -> Option<usize> {
    match () {
        _ if arch != "llama" => None,
        _ if gguf_name.contains(".attn_q.") => Some(heads),
        _ if gguf_name.contains(".attn_k.") => Some(kv_heads),
        _ => None,
    }
}

/// Rows of `m` (`rows × cols`, row-major) from Hugging Face's order into llama.cpp's
/// interleaved rope order: within each head, row `t·half + j` moves to `2j + t`.
pub fn to_rope_order(m: &[f32], rows: usize, cols: usize, heads: usize) -> Result<Vec<f32>> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) || m.len() != rows * cols {
        return Err(ExportError::Invalid(format!(
            "cannot split {rows} rows into {heads} rope heads"
        )));
    }
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut out = vec![0f32; m.len()];
    for h in 0..heads {
        for t in 0..2 {
            for j in 0..half {
                let from = h * head_dim + t * half + j;
                let to = h * head_dim + 2 * j + t;
                out[to * cols..(to + 1) * cols].copy_from_slice(&m[from * cols..(from + 1) * cols]);
            }
        }
    }
    Ok(out)
}

/// What was written.
#[derive(Debug, Clone)]
pub struct LoraExportReport {
    pub tensors: usize,
    pub alpha: f32,
    pub permuted: usize,
}

/// Writes the PEFT adapter in `adapter_dir` as a llama.cpp LoRA GGUF for the base `base_gguf`.
pub fn export_lora_gguf(
    adapter_dir: &Path,
    base_gguf: &Path,
    out: &Path,
) -> Result<LoraExportReport> {
    let (config, tensors) = vigil_model::lora::read_peft_dir(adapter_dir)
        .map_err(|e| ExportError::file(adapter_dir, e))?;
    if config.alpha_pattern.values().any(|&a| a != config.alpha) {
        return Err(ExportError::file(
            adapter_dir,
            "alpha_pattern gives modules different alphas; llama.cpp's adapter GGUF has one alpha",
        ));
    }
    // llama.cpp scales by alpha / r (r from each tensor's shape); rank-stabilised LoRA
    // scales by alpha / √r, the same as alpha·√r / r — exact only with one rank throughout.
    let alpha = if config.use_rslora {
        if !config.rank_pattern.is_empty() {
            return Err(ExportError::file(
                adapter_dir,
                "use_rslora with rank_pattern cannot be expressed with one alpha",
            ));
        }
        config.alpha * (config.r as f64).sqrt()
    } else {
        config.alpha
    } as f32;

    let base = GgufSource::open(base_gguf)?;
    let arch = base.architecture()?;
    let meta = &base.content.metadata;
    let count = |key: &str| -> Option<usize> {
        meta.get(&format!("{arch}.{key}"))
            .and_then(|v| v.to_u32().ok().map(|n| n as usize))
    };
    let heads = count("attention.head_count");
    let kv_heads = count("attention.head_count_kv").or(heads);
    let interleaved = arch == "llama";

    let mut entries = Vec::new();
    let mut data: Vec<Vec<u8>> = Vec::new();
    let mut permuted = 0;
    for (key, t) in &tensors {
        let (module, part) = if let Some(m) = key.strip_suffix(".lora_A.weight") {
            (m, "lora_a")
        } else if let Some(m) = key.strip_suffix(".lora_B.weight") {
            (m, "lora_b")
        } else {
            return Err(ExportError::file(
                adapter_dir,
                format!("unexpected adapter tensor '{key}'"),
            ));
        };
        let gguf = gguf_module_name(module).ok_or_else(|| {
            ExportError::file(
                adapter_dir,
                format!("no llama.cpp tensor for module '{module}'"),
            )
        })?;
        if !base.tensors.iter().any(|b| b.0 == gguf) {
            return Err(ExportError::file(
                base_gguf,
                format!("adapter targets '{gguf}', which the base does not have"),
            ));
        }
        let (rows, cols) = t.dims2().map_err(|e| ExportError::tensor(key, e))?;
        let mut values: Vec<f32> = t
            .flatten_all()
            .and_then(|f| f.to_vec1())
            .map_err(|e| ExportError::tensor(key, e))?;
        // Q and K B-rows follow the output rows, which llama's converter permuted.
        let rope_heads = match () {
            _ if module.ends_with(".q_proj") => Some(heads),
            _ if module.ends_with(".k_proj") => Some(kv_heads),
            _ => None,
        };
        if let (true, "lora_b", Some(h)) = (interleaved, part, rope_heads) {
            let h = h.ok_or_else(|| {
                ExportError::file(base_gguf, format!("no {arch}.attention.head_count"))
            })?;
            values = to_rope_order(&values, rows, cols, h)?;
            permuted += 1;
        }
        entries.push(TensorEntry {
            name: format!("{gguf}.{part}"),
            dims: vec![rows, cols],
            dtype: GgmlDType::F32,
        });
        data.push(values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    let metadata = vec![
        (
            "general.architecture".to_string(),
            Value::String(arch.clone()),
        ),
        ("general.type".to_string(), Value::String("adapter".into())),
        ("adapter.type".to_string(), Value::String("lora".into())),
        ("adapter.lora.alpha".to_string(), Value::F32(alpha)),
    ];
    let n = entries.len();
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let mut w = GgufWriter::create(out, &metadata, entries)?;
    for (name, bytes) in names.iter().zip(&data) {
        w.write_tensor(name, bytes)?;
    }
    w.finish()?;
    Ok(LoraExportReport {
        tensors: n,
        alpha,
        permuted,
    })
}

/// The Hugging Face module path of a GGUF block tensor (`blk.3.attn_q.weight` →
/// `model.layers.3.self_attn.q_proj`), the inverse of [`gguf_module_name`].
pub fn hf_module_path(gguf: &str) -> Option<String> {
    let rest = gguf.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (layer, name) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (group, module) = match name {
        "attn_q" => ("self_attn", "q_proj"),
        "attn_k" => ("self_attn", "k_proj"),
        "attn_v" => ("self_attn", "v_proj"),
        "attn_output" => ("self_attn", "o_proj"),
        "ffn_gate" => ("mlp", "gate_proj"),
        "ffn_up" => ("mlp", "up_proj"),
        "ffn_down" => ("mlp", "down_proj"),
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{group}.{module}"))
}

/// Rows from llama.cpp's rope order back to Hugging Face's (inverse of [`to_rope_order`]).
pub fn from_rope_order(m: &[f32], rows: usize, cols: usize, heads: usize) -> Result<Vec<f32>> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) || m.len() != rows * cols {
        return Err(ExportError::Invalid(format!(
            "cannot split {rows} rows into {heads} rope heads"
        )));
    }
    let (head_dim, half) = (rows / heads, rows / heads / 2);
    let mut out = vec![0f32; m.len()];
    for h in 0..heads {
        for t in 0..2 {
            for j in 0..half {
                let hf = h * head_dim + t * half + j;
                let gg = h * head_dim + 2 * j + t;
                out[hf * cols..(hf + 1) * cols].copy_from_slice(&m[gg * cols..(gg + 1) * cols]);
            }
        }
    }
    Ok(out)
}

/// `vigil export peft` from a llama.cpp LoRA GGUF: writes the PEFT directory `out_dir`
/// (one rank and alpha from the file; Q/K `B` rows back in Hugging Face order for llama,
/// with head counts from the base GGUF).
pub fn lora_gguf_to_peft(lora_gguf: &Path, base_gguf: &Path, out_dir: &Path) -> Result<usize> {
    use candle_core::{Device, Tensor};
    use vigil_model::lora::{peft_key, write_peft_dir, LoraConfig, TargetModules};
    let mut lora = GgufSource::open(lora_gguf)?;
    let meta = &lora.content.metadata;
    let text = |k: &str| meta.get(k).and_then(|v| v.to_string().ok()).cloned();
    if text("general.type").as_deref() != Some("adapter")
        || text("adapter.type").as_deref() != Some("lora")
    {
        return Err(ExportError::file(
            lora_gguf,
            "not a LoRA adapter GGUF (general.type / adapter.type)",
        ));
    }
    let alpha =
        meta.get("adapter.lora.alpha")
            .and_then(|v| v.to_f32().ok())
            .ok_or_else(|| ExportError::file(lora_gguf, "no adapter.lora.alpha"))? as f64;
    let base = GgufSource::open(base_gguf)?;
    let arch = base.architecture()?;
    let count = |key: &str| {
        base.content
            .metadata
            .get(&format!("{arch}.{key}"))
            .and_then(|v| v.to_u32().ok().map(|n| n as usize))
    };
    let heads = count("attention.head_count");
    let kv_heads = count("attention.head_count_kv").or(heads);
    let mut tensors = std::collections::BTreeMap::new();
    let mut modules = std::collections::BTreeSet::new();
    let mut rank = None;
    for i in 0..lora.tensors.len() {
        let (name, dims, dtype, _) = lora.tensors[i].clone();
        let (weight, which) = if let Some(w) = name.strip_suffix(".lora_a") {
            (w, 'A')
        } else if let Some(w) = name.strip_suffix(".lora_b") {
            (w, 'B')
        } else {
            return Err(ExportError::file(
                lora_gguf,
                format!("unexpected tensor '{name}'"),
            ));
        };
        let path = hf_module_path(weight).ok_or_else(|| {
            ExportError::file(lora_gguf, format!("no Hugging Face module for '{weight}'"))
        })?;
        if dims.len() != 2 {
            return Err(ExportError::tensor(
                &name,
                format!("expected a matrix, got {dims:?}"),
            ));
        }
        let r = if which == 'A' { dims[0] } else { dims[1] };
        if *rank.get_or_insert(r) != r {
            return Err(ExportError::file(
                lora_gguf,
                "tensors of different ranks (PEFT would need rank_pattern)",
            ));
        }
        let mut values = crate::quantize::dequantize_bytes(&name, &lora.raw(i)?, &dims, dtype)?;
        let rope = match () {
            _ if arch != "llama" || which != 'B' => None,
            _ if path.ends_with("q_proj") => Some(heads),
            _ if path.ends_with("k_proj") => Some(kv_heads),
            _ => None,
        };
        if let Some(h) = rope {
            let h = h.ok_or_else(|| {
                ExportError::file(base_gguf, format!("no {arch}.attention.head_count"))
            })?;
            values = from_rope_order(&values, dims[0], dims[1], h)?;
        }
        let t = Tensor::from_vec(values, (dims[0], dims[1]), &Device::Cpu)
            .map_err(|e| ExportError::tensor(&name, e))?;
        modules.insert(path.rsplit('.').next().unwrap_or_default().to_string());
        tensors.insert(peft_key(&path, which), t);
    }
    let r = rank.ok_or_else(|| ExportError::file(lora_gguf, "no adapter tensors"))?;
    let config = LoraConfig::new(
        r,
        alpha,
        TargetModules::Names(modules.into_iter().collect()),
    );
    write_peft_dir(out_dir, &config, &tensors).map_err(|e| ExportError::file(out_dir, e))?;
    Ok(tensors.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_map_to_llama_cpp() {
        assert_eq!(
            gguf_module_name("base_model.model.model.layers.12.self_attn.k_proj").as_deref(),
            Some("blk.12.attn_k.weight")
        );
        assert_eq!(
            gguf_module_name("base_model.model.model.layers.0.mlp.down_proj").as_deref(),
            Some("blk.0.ffn_down.weight")
        );
        assert_eq!(gguf_module_name("base_model.model.lm_head"), None);
    }

    #[test]
    fn rope_order_interleaves_half_heads() {
        // One head of 4 rows (halves [0,1] and [2,3]) → rows 0,2,1,3; two columns each.
        let m: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let p = to_rope_order(&m, 4, 2, 1).unwrap();
        assert_eq!(p, vec![0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0]);
        assert!(to_rope_order(&m, 4, 2, 3).is_err());
    }
}
