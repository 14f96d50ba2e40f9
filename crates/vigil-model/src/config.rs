//! `ModelConfig`: every architectural difference between the supported families, as data.
//!
//! The decoder has one code path; Llama, Mistral, Qwen2 and Gemma 3 differ only in the values
//! below. A config is read either from GGUF metadata (`{arch}.block_count`, …) or from a
//! Hugging Face `config.json`.

use crate::error::{ModelError, Result};
use candle_core::quantized::gguf_file;
use serde_json::Value as Json;

/// The model families vigil knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 2/3, CodeLlama, SmolLM2, Mistral (same block layout).
    Llama,
    /// Qwen2 / Qwen2.5: Llama layout plus biases on q, k and v.
    Qwen2,
    /// Gemma 3: q/k norms, sandwich norms, GeGLU, scaled embeddings, local/global attention.
    Gemma3,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Gemma3 => "gemma3",
        }
    }
}

/// How the two halves of each rotated pair are laid out in a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Pairs are adjacent (x0,x1), (x2,x3)… — llama.cpp's layout for the `llama` GGUF
    /// architecture, whose converter permutes the Q/K rows into this order.
    Interleaved,
    /// Pairs are (x_i, x_{i+d/2}) — the Hugging Face layout ("NEOX" in llama.cpp).
    HalfSplit,
}

/// Frequency scaling for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f32,
    },
    /// Llama 3.1's wavelength-dependent scaling.
    Llama3 {
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_max_position: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: silu(gate) * up.
    Silu,
    /// GeGLU with the tanh approximation of GELU: gelu(gate) * up.
    GeluTanh,
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub family: Family,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub max_position: usize,
    pub rms_norm_eps: f64,
    /// Added to every RMSNorm weight at load time (Gemma stores `w - 1` in safetensors;
    /// llama.cpp's converter has already added the one in GGUF files).
    pub norm_weight_offset: f32,
    pub rope_theta: f32,
    /// Rope base of sliding-window layers, where it differs (Gemma 3: 10 000).
    pub rope_theta_local: f32,
    pub rope_layout: RopeLayout,
    pub rope_scaling: RopeScaling,
    pub activation: Activation,
    /// Biases on q, k, v (Qwen2).
    pub qkv_bias: bool,
    /// RMSNorm over each head of q and k before rope (Gemma 3).
    pub qk_norm: bool,
    /// Extra norms after attention and after the MLP, before the residual add (Gemma 3).
    pub sandwich_norms: bool,
    /// Multiply token embeddings by this (Gemma: sqrt(hidden_size)).
    pub embed_scale: Option<f32>,
    /// Scale applied to q·k (usually 1/sqrt(head_dim)).
    pub attn_scale: f32,
    /// Sliding-window length for local layers, if any.
    pub sliding_window: Option<usize>,
    /// Per layer: does it use the sliding window (and the local rope base)?
    pub layer_is_local: Vec<bool>,
    pub tie_embeddings: bool,
    pub final_logit_softcap: Option<f32>,
}

impl ModelConfig {
    pub fn is_gqa(&self) -> bool {
        self.num_kv_heads != self.num_heads
    }

    fn validate(self) -> Result<Self> {
        let fail = |m: String| Err(ModelError::Config(m));
        check_layer_count(self.num_layers)?;
        for (what, v) in [
            ("hidden size", self.hidden_size),
            ("intermediate size", self.intermediate_size),
            ("attention heads", self.num_heads),
            ("key/value heads", self.num_kv_heads),
            ("head dimension", self.head_dim),
            ("vocabulary size", self.vocab_size),
        ] {
            if v > MAX_DIM {
                return fail(format!("{v} {what} is implausible (corrupt config?)"));
            }
        }
        if self.num_layers == 0 || self.hidden_size == 0 || self.num_heads == 0 {
            return fail(format!(
                "layers ({}), hidden size ({}) and heads ({}) must be positive",
                self.num_layers, self.hidden_size, self.num_heads
            ));
        }
        if self.num_kv_heads == 0 || !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return fail(format!(
                "{} attention heads cannot be shared by {} key/value heads",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return fail(format!("head dimension {} must be even", self.head_dim));
        }
        if self.layer_is_local.len() != self.num_layers {
            return fail("sliding-window pattern does not cover every layer".into());
        }
        Ok(self)
    }

    /// Reads the configuration from GGUF metadata. `has_tensor` tells which optional tensors
    /// exist (q/k/v biases, a separate output matrix).
    pub fn from_gguf(
        content: &gguf_file::Content,
        has_tensor: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        let md = GgufMeta(content);
        let arch = md.string("general.architecture")?;
        let family = match arch.as_str() {
            "llama" | "mistral" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "gemma3" => Family::Gemma3,
            other => {
                return Err(ModelError::Config(format!(
                "unsupported architecture '{other}' (vigil runs llama, mistral, qwen2 and gemma3)"
            )))
            }
        };
        let key = |k: &str| format!("{arch}.{k}");
        let hidden_size = md.usize(&key("embedding_length"))?;
        let num_heads = md.usize(&key("attention.head_count"))?;
        let num_kv_heads = md
            .opt_usize(&key("attention.head_count_kv"))?
            .unwrap_or(num_heads);
        let head_dim = match md.opt_usize(&key("attention.key_length"))? {
            Some(d) => d,
            None => hidden_size / num_heads.max(1),
        };
        let num_layers = md.usize(&key("block_count"))?;
        check_layer_count(num_layers)?;
        let vocab_size = match md.opt_usize(&key("vocab_size"))? {
            Some(v) => v,
            None => match content.metadata.get("tokenizer.ggml.tokens") {
                Some(gguf_file::Value::Array(a)) => a.len(),
                _ => {
                    return Err(ModelError::Config(
                        "neither a vocab_size nor a token list in the GGUF metadata".into(),
                    ))
                }
            },
        };
        let rope_theta = md.opt_f32(&key("rope.freq_base"))?.unwrap_or(10_000.0);
        let rope_scaling = match md.opt_string(&key("rope.scaling.type"))?.as_deref() {
            None | Some("none") => RopeScaling::None,
            Some("linear") => RopeScaling::Linear {
                factor: md.opt_f32(&key("rope.scaling.factor"))?.unwrap_or(1.0),
            },
            // Llama 3.1 GGUFs carry their scaling as a `rope_freqs` tensor, handled by the
            // rope table; other kinds (yarn, longrope) are not implemented.
            Some(other) => {
                return Err(ModelError::Config(format!(
                    "rope scaling '{other}' is not supported yet"
                )))
            }
        };
        let sliding_window = md.opt_usize(&key("attention.sliding_window"))?;
        let gemma = family == Family::Gemma3;
        // Gemma 3 alternates five sliding-window layers with one global layer.
        let layer_is_local = (0..num_layers)
            .map(|i| gemma && sliding_window.is_some() && (i + 1) % 6 != 0)
            .collect();
        let cfg = ModelConfig {
            family,
            hidden_size,
            intermediate_size: md.usize(&key("feed_forward_length"))?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size,
            max_position: md.opt_usize(&key("context_length"))?.unwrap_or(4096),
            rms_norm_eps: md
                .opt_f32(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-6) as f64,
            norm_weight_offset: 0.0,
            rope_theta,
            rope_theta_local: if gemma { 10_000.0 } else { rope_theta },
            // The llama converter permutes Q/K rows for interleaved rope; the others keep
            // the Hugging Face order.
            rope_layout: if family == Family::Llama {
                RopeLayout::Interleaved
            } else {
                RopeLayout::HalfSplit
            },
            rope_scaling,
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            qkv_bias: has_tensor("blk.0.attn_q.bias"),
            qk_norm: has_tensor("blk.0.attn_q_norm.weight"),
            sandwich_norms: has_tensor("blk.0.post_attention_norm.weight"),
            embed_scale: gemma.then(|| (hidden_size as f32).sqrt()),
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            sliding_window: if gemma { sliding_window } else { None },
            layer_is_local,
            tie_embeddings: !has_tensor("output.weight"),
            final_logit_softcap: md.opt_f32(&key("final_logit_softcapping"))?,
        };
        cfg.validate()
    }

    /// Reads a Hugging Face `config.json` (transformers 4 and 5 spellings).
    pub fn from_hf_json(json: &Json) -> Result<Self> {
        let get = |k: &str| json.get(k).filter(|v| !v.is_null());
        let usize_of = |k: &str| -> Result<usize> {
            match get(k) {
                None => Err(ModelError::Config(format!(
                    "config.json: missing integer '{k}'"
                ))),
                Some(v) => v.as_u64().map(|v| v as usize).ok_or_else(|| {
                    ModelError::Config(format!(
                        "config.json: '{k}' must be a non-negative integer, found {v}"
                    ))
                }),
            }
        };
        let opt_usize = |k: &str| get(k).and_then(Json::as_u64).map(|v| v as usize);
        let opt_f32 = |k: &str| get(k).and_then(Json::as_f64).map(|v| v as f32);
        let model_type = get("model_type")
            .and_then(Json::as_str)
            .ok_or_else(|| ModelError::Config("config.json: missing 'model_type'".into()))?;
        let family = match model_type {
            "llama" | "mistral" => Family::Llama,
            "qwen2" => Family::Qwen2,
            "gemma3_text" | "gemma3" => Family::Gemma3,
            other => {
                return Err(ModelError::Config(format!(
                    "unsupported model_type '{other}' (vigil runs llama, mistral, qwen2 and gemma3)"
                )))
            }
        };
        // Gemma 3 multimodal checkpoints nest the decoder under text_config.
        if model_type == "gemma3" {
            if let Some(text) = get("text_config") {
                let mut text = text.clone();
                text["model_type"] = Json::from("gemma3_text");
                return Self::from_hf_json(&text);
            }
        }
        let gemma = family == Family::Gemma3;
        let hidden_size = usize_of("hidden_size")?;
        let num_heads = usize_of("num_attention_heads")?;
        let head_dim = opt_usize("head_dim").unwrap_or(hidden_size / num_heads.max(1));
        let num_layers = usize_of("num_hidden_layers")?;
        check_layer_count(num_layers)?;
        // transformers 5 writes `rope_parameters` flat ({rope_theta, rope_type, …}) for
        // most models, but per layer type for Gemma 3 ({full_attention: {…},
        // sliding_attention: {…}}): the global layers' entry then plays the flat role.
        let (rope_params, rope_params_local) = match get("rope_parameters") {
            Some(p) if p.get("full_attention").is_some() => {
                (p.get("full_attention"), p.get("sliding_attention"))
            }
            p => (p, None),
        };
        let rope_theta = opt_f32("rope_theta")
            .or_else(|| {
                rope_params
                    .and_then(|p| p.get("rope_theta"))
                    .and_then(Json::as_f64)
                    .map(|v| v as f32)
            })
            .unwrap_or(10_000.0);
        let scaling_json = get("rope_scaling").or(rope_params);
        let rope_scaling = match scaling_json {
            None => RopeScaling::None,
            Some(s) => {
                let kind = s
                    .get("rope_type")
                    .or_else(|| s.get("type"))
                    .and_then(Json::as_str)
                    .unwrap_or("default");
                let f = |k: &str, d: f64| s.get(k).and_then(Json::as_f64).unwrap_or(d) as f32;
                match kind {
                    "default" => RopeScaling::None,
                    "linear" => RopeScaling::Linear {
                        factor: f("factor", 1.0),
                    },
                    "llama3" => RopeScaling::Llama3 {
                        factor: f("factor", 8.0),
                        low_freq_factor: f("low_freq_factor", 1.0),
                        high_freq_factor: f("high_freq_factor", 4.0),
                        original_max_position: s
                            .get("original_max_position_embeddings")
                            .and_then(Json::as_u64)
                            .unwrap_or(8192)
                            as usize,
                    },
                    other => {
                        return Err(ModelError::Config(format!(
                            "rope scaling '{other}' is not supported yet"
                        )))
                    }
                }
            }
        };
        let sliding_window = if gemma {
            opt_usize("sliding_window")
        } else {
            None
        };
        let layer_is_local: Vec<bool> = match get("layer_types").and_then(Json::as_array) {
            Some(types) if gemma => types
                .iter()
                .map(|t| t.as_str() == Some("sliding_attention"))
                .collect(),
            _ => {
                let pattern = opt_usize("sliding_window_pattern").unwrap_or(6).max(1);
                (0..num_layers)
                    .map(|i| gemma && sliding_window.is_some() && (i + 1) % pattern != 0)
                    .collect()
            }
        };
        let cfg = ModelConfig {
            family,
            hidden_size,
            intermediate_size: usize_of("intermediate_size")?,
            num_layers,
            num_heads,
            num_kv_heads: opt_usize("num_key_value_heads").unwrap_or(num_heads),
            head_dim,
            vocab_size: usize_of("vocab_size")?,
            max_position: opt_usize("max_position_embeddings").unwrap_or(4096),
            rms_norm_eps: get("rms_norm_eps").and_then(Json::as_f64).unwrap_or(1e-6),
            norm_weight_offset: if gemma { 1.0 } else { 0.0 },
            rope_theta,
            rope_theta_local: if gemma {
                opt_f32("rope_local_base_freq")
                    .or_else(|| {
                        rope_params_local
                            .and_then(|p| p.get("rope_theta"))
                            .and_then(Json::as_f64)
                            .map(|v| v as f32)
                    })
                    .unwrap_or(10_000.0)
            } else {
                rope_theta
            },
            rope_layout: RopeLayout::HalfSplit,
            rope_scaling,
            activation: if gemma {
                Activation::GeluTanh
            } else {
                Activation::Silu
            },
            qkv_bias: family == Family::Qwen2
                || get("attention_bias")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            qk_norm: gemma,
            sandwich_norms: gemma,
            embed_scale: gemma.then(|| (hidden_size as f32).sqrt()),
            attn_scale: 1.0
                / opt_f32("query_pre_attn_scalar")
                    .unwrap_or(head_dim as f32)
                    .sqrt(),
            sliding_window,
            layer_is_local,
            tie_embeddings: get("tie_word_embeddings")
                .and_then(Json::as_bool)
                .unwrap_or(gemma),
            final_logit_softcap: opt_f32("final_logit_softcapping"),
        };
        cfg.validate()
    }
}

/// Bounds no real model comes near. Larger values mean a corrupt file; left unchecked they
/// would overflow shape arithmetic or allocate per-layer state for billions of layers.
const MAX_LAYERS: usize = 1 << 12;
const MAX_DIM: usize = 1 << 24;

/// Checked before anything is allocated per layer.
fn check_layer_count(n: usize) -> Result<()> {
    if n > MAX_LAYERS {
        return Err(ModelError::Config(format!(
            "{n} layers is implausible (corrupt config?)"
        )));
    }
    Ok(())
}

/// Typed access to GGUF metadata with errors that name the key.
pub(crate) struct GgufMeta<'a>(pub &'a gguf_file::Content);

impl GgufMeta<'_> {
    fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.0.metadata.get(key)
    }
    fn bad(key: &str, e: impl std::fmt::Display) -> ModelError {
        ModelError::Config(format!("GGUF metadata '{key}': {e}"))
    }
    pub fn string(&self, key: &str) -> Result<String> {
        self.opt_string(key)?
            .ok_or_else(|| Self::bad(key, "missing"))
    }
    pub fn opt_string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| v.to_string().cloned().map_err(|e| Self::bad(key, e)))
            .transpose()
    }
    pub fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| Self::bad(key, "missing"))
    }
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        use gguf_file::Value as V;
        self.get(key)
            .map(|v| match v {
                V::U8(x) => Ok(*x as usize),
                V::U16(x) => Ok(*x as usize),
                V::U32(x) => Ok(*x as usize),
                V::U64(x) => Ok(*x as usize),
                V::I8(x) if *x >= 0 => Ok(*x as usize),
                V::I16(x) if *x >= 0 => Ok(*x as usize),
                V::I32(x) if *x >= 0 => Ok(*x as usize),
                V::I64(x) if *x >= 0 => Ok(*x as usize),
                other => Err(Self::bad(key, format!("expected a count, found {other:?}"))),
            })
            .transpose()
    }
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        use gguf_file::Value as V;
        self.get(key)
            .map(|v| match v {
                V::F32(x) => Ok(*x),
                V::F64(x) => Ok(*x as f32),
                V::U32(x) => Ok(*x as f32),
                V::I32(x) => Ok(*x as f32),
                other => Err(Self::bad(
                    key,
                    format!("expected a number, found {other:?}"),
                )),
            })
            .transpose()
    }
}
