//! [`export_gguf_from_hf`]: a Hugging Face model directory (`config.json`, safetensors,
//! `tokenizer.json`) as a GGUF file of any [`ExportType`], optionally with a PEFT adapter
//! merged — what llama.cpp's `convert_hf_to_gguf.py` followed by `llama-quantize` does.
//!
//! The architecture keys come from `config.json`, the `tokenizer.*` keys from
//! [`vigil_tokenizer::gguf_metadata_from_hf`], tensor names from the inverse of
//! [`vigil_model::weights::hf_tensor_name`]. For `llama` the Q and K rows are permuted into
//! llama.cpp's interleaved rope order. Tensors are read from the memory-mapped safetensors
//! and written one at a time. Llama-family and Qwen2 models with byte-level BPE
//! vocabularies are supported; anything else is refused by name.

use crate::error::{ExportError, Result};
use crate::gguf_export::{set_file_type, ExportReport};
use crate::gguf_writer::{GgufWriter, TensorEntry};
use crate::lora_gguf::{add_update, peft_updates, rope_heads, to_rope_order};
use crate::mixture::{tensor_type, ExportType, ModelShape};
use crate::quantize::quantize_rows;
use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;
use vigil_model::config::{Family, RopeScaling};
use vigil_model::weights::hf_tensor_name;
use vigil_model::{ModelConfig, WeightSource};

/// Per-block module names of llama.cpp that a Llama or Qwen2 checkpoint can hold.
const BLOCK_MODULES: &[&str] = &[
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Hugging Face tensor name → GGUF name, in llama.cpp's file order.
fn name_map(family: Family, n_layer: usize) -> Vec<(String, String)> {
    let mut gguf = vec!["token_embd.weight".to_string()];
    for l in 0..n_layer {
        for m in BLOCK_MODULES {
            for s in ["weight", "bias"] {
                gguf.push(format!("blk.{l}.{m}.{s}"));
            }
        }
    }
    gguf.push("output_norm.weight".into());
    gguf.push("output.weight".into());
    gguf.into_iter()
        .filter_map(|g| hf_tensor_name(&g, family).map(|h| (h, g)))
        .collect()
}

/// The architecture keys llama.cpp reads for this configuration.
fn arch_metadata(config: &ModelConfig, arch: &str, name: &str) -> Result<Vec<(String, Value)>> {
    let u = |v: usize| Value::U32(v as u32);
    let mut kv = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.type".into(), Value::String("model".into())),
        ("general.name".into(), Value::String(name.into())),
        (format!("{arch}.block_count"), u(config.num_layers)),
        (format!("{arch}.context_length"), u(config.max_position)),
        (format!("{arch}.embedding_length"), u(config.hidden_size)),
        (
            format!("{arch}.feed_forward_length"),
            u(config.intermediate_size),
        ),
        (format!("{arch}.attention.head_count"), u(config.num_heads)),
        (
            format!("{arch}.attention.head_count_kv"),
            u(config.num_kv_heads),
        ),
        (
            format!("{arch}.rope.freq_base"),
            Value::F32(config.rope_theta),
        ),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(config.rms_norm_eps as f32),
        ),
    ];
    if arch == "llama" {
        kv.push((format!("{arch}.vocab_size"), u(config.vocab_size)));
        kv.push((format!("{arch}.rope.dimension_count"), u(config.head_dim)));
    }
    if config.head_dim * config.num_heads != config.hidden_size {
        kv.push((format!("{arch}.attention.key_length"), u(config.head_dim)));
        kv.push((format!("{arch}.attention.value_length"), u(config.head_dim)));
    }
    match config.rope_scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => {
            kv.push((
                format!("{arch}.rope.scaling.type"),
                Value::String("linear".into()),
            ));
            kv.push((format!("{arch}.rope.scaling.factor"), Value::F32(factor)));
        }
        RopeScaling::Llama3 { .. } => {
            return Err(ExportError::Invalid(
                "Llama 3 rope scaling is not exported yet (llama.cpp keeps it as a \
                 `rope_freqs` tensor)"
                    .into(),
            ))
        }
    }
    Ok(kv)
}

fn ggml_type(name: &str, dtype: DType) -> Result<GgmlDType> {
    Ok(match dtype {
        DType::F32 => GgmlDType::F32,
        DType::F16 => GgmlDType::F16,
        DType::BF16 => GgmlDType::BF16,
        other => {
            return Err(ExportError::tensor(
                name,
                format!("{other:?} weights are not exported (expected f32, f16 or bf16)"),
            ))
        }
    })
}

/// Writes the Hugging Face model in `dir` as the GGUF `out` of `export_type`, with the
/// PEFT adapter in `adapter` merged first when given.
pub fn export_gguf_from_hf(
    dir: &Path,
    out: &Path,
    export_type: ExportType,
    adapter: Option<&Path>,
) -> Result<ExportReport> {
    let start = Instant::now();
    let config_path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| ExportError::file(&config_path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ExportError::file(&config_path, format!("invalid JSON: {e}")))?;
    let config =
        ModelConfig::from_hf_json(&json).map_err(|e| ExportError::file(&config_path, e))?;
    let arch = match config.family {
        Family::Llama => "llama",
        Family::Qwen2 => "qwen2",
        other => {
            return Err(ExportError::file(
                &config_path,
                format!(
                    "GGUF export from safetensors supports llama and qwen2, not {} (export \
                     from a GGUF of that model instead)",
                    other.name()
                ),
            ))
        }
    };
    let source = WeightSource::open_safetensors(dir, config.family)
        .map_err(|e| ExportError::file(dir, e))?;
    let WeightSource::Safetensors { tensors, .. } = source else {
        return Err(ExportError::file(dir, "not a safetensors directory"));
    };

    // Every stored tensor must have a llama.cpp name (rope caches excepted).
    let map = name_map(config.family, config.num_layers);
    let stored: HashMap<String, (DType, Vec<usize>)> = tensors
        .tensors()
        .into_iter()
        .map(|(n, view)| {
            let dtype = DType::try_from(view.dtype())
                .map_err(|e| ExportError::tensor(&n, format!("unsupported dtype: {e}")))?;
            Ok((n, (dtype, view.shape().to_vec())))
        })
        .collect::<Result<_>>()?;
    for name in stored.keys() {
        if !name.ends_with("rotary_emb.inv_freq") && !map.iter().any(|(h, _)| h == name) {
            return Err(ExportError::file(
                dir,
                format!("tensor '{name}' has no llama.cpp counterpart"),
            ));
        }
    }
    let present: Vec<&(String, String)> =
        map.iter().filter(|(h, _)| stored.contains_key(h)).collect();
    let shape = ModelShape {
        n_layer: config.num_layers,
        has_output: present.iter().any(|(_, g)| g == "output.weight"),
    };

    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    let mut metadata = arch_metadata(&config, arch, &name)?;
    let tokenizer_config = dir.join("tokenizer_config.json");
    let tokenizer_kv = vigil_tokenizer::gguf_metadata_from_hf(
        &dir.join("tokenizer.json"),
        tokenizer_config
            .is_file()
            .then_some(tokenizer_config.as_path()),
        Some(&json),
        config.vocab_size,
    )
    .map_err(|e| ExportError::file(dir, e))?;
    metadata.extend(tokenizer_kv);
    set_file_type(&mut metadata, export_type);

    let mut updates = match adapter {
        Some(a) => peft_updates(a)?,
        None => BTreeMap::new(),
    };
    if let Some(g) = updates
        .keys()
        .find(|g| !present.iter().any(|(_, p)| p == *g))
    {
        return Err(ExportError::file(
            dir,
            format!("the adapter targets '{g}', which this model does not have"),
        ));
    }
    let mut plan = Vec::with_capacity(present.len());
    let mut sources = Vec::with_capacity(present.len());
    for (hf, gguf) in &present {
        let (dtype, dims) = &stored[hf];
        // llama.cpp's converter keeps vectors (norms, biases) in f32.
        let from = if dims.len() < 2 {
            GgmlDType::F32
        } else {
            ggml_type(hf, *dtype)?
        };
        plan.push(TensorEntry {
            name: gguf.clone(),
            dims: dims.clone(),
            dtype: tensor_type(export_type, gguf, dims, from, shape),
        });
        sources.push((hf.clone(), from));
    }
    let mut writer = GgufWriter::create(out, &metadata, plan.clone())?;
    let mut report = ExportReport::default();
    for (entry, (hf, from)) in plan.iter().zip(&sources) {
        let err = |e: candle_core::Error| ExportError::tensor(hf, e);
        let mut values: Vec<f32> = tensors
            .load(hf, &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        if let Some(d) = updates.remove(&entry.name) {
            add_update(&entry.name, &mut values, &d)?;
        }
        if let Some(h) = rope_heads(arch, &entry.name, config.num_heads, config.num_kv_heads) {
            let cols = values.len() / entry.dims[0].max(1);
            values = to_rope_order(&values, entry.dims[0], cols, h)?;
        }
        let row = *entry.dims.last().unwrap_or(&1);
        let bytes = quantize_rows(&entry.name, &values, row, entry.dtype)?;
        writer.write_tensor(&entry.name, &bytes)?;
        report
            .tensors
            .push((entry.name.clone(), *from, entry.dtype));
    }
    writer.finish()?;
    report.finished(out, start)
}
