//! LoRA adapters (Hu et al., 2021) on the decoder's frozen linear layers, in PEFT's format.
//!
//! A [`LoraConfig`] says which linear layers get an adapter and its rank / scaling. A
//! [`LoraWeights`] is one layer's pair of trainable matrices: `A` `[r, in]` and `B`
//! `[out, r]`, so the layer computes `y = x Wᵀ + scale · (dropout(x) Aᵀ) Bᵀ` where
//! `scale = alpha / r` (or `alpha / √r` with rsLoRA). Several named adapters can sit on one
//! decoder at once; each forward pass names the one to use, or none for the base model.
//!
//! On disk an adapter is PEFT's: `adapter_config.json` + `adapter_model.safetensors` with
//! keys `base_model.model.<module path>.lora_A.weight` / `.lora_B.weight`. Module paths are
//! Hugging Face's (`model.layers.3.self_attn.q_proj`), from `weights::hf_tensor_name`.
//!
//! One subtlety: llama.cpp stores a `llama` model's Q and K projections with their output
//! rows permuted for its interleaved rope. `B`'s rows follow the output rows, so an adapter
//! trained against Hugging Face's layout has its Q/K `B` rows permuted the same way when it
//! is attached to such a GGUF model, and back when saved — the file is always in Hugging
//! Face's layout, whichever base vigil trained on.

use crate::error::{ModelError, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::Path;

/// PEFT's file names.
pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The prefix PEFT puts before every module path in `adapter_model.safetensors`.
pub const KEY_PREFIX: &str = "base_model.model.";

/// The linear layers a decoder block has, by their Hugging Face names.
pub const ALL_LINEAR: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Which modules get an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetModules {
    /// Module names such as `q_proj`; a module matches when its path ends with `.name`.
    Names(Vec<String>),
    /// A regular expression that must match the whole module path (PEFT's string form).
    Regex(String),
    /// Every linear layer of the decoder blocks (not the output head), as PEFT's
    /// `"all-linear"`.
    AllLinear,
}

impl TargetModules {
    /// Parses a CLI-style list: `all-linear`, `q_proj,v_proj`, or `re:<regex>`.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("all-linear") || spec == "all" {
            return Ok(TargetModules::AllLinear);
        }
        if let Some(re) = spec.strip_prefix("re:") {
            regex::Regex::new(re).map_err(|e| ModelError::Adapter(format!("bad regex: {e}")))?;
            return Ok(TargetModules::Regex(re.to_string()));
        }
        let names: Vec<String> = spec
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Err(ModelError::Adapter("no target modules given".into()));
        }
        Ok(TargetModules::Names(names))
    }

    /// Whether the module at `path` (e.g. `model.layers.3.self_attn.q_proj`) is a target.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            TargetModules::AllLinear => {
                path != "lm_head" && ALL_LINEAR.iter().any(|n| ends_with_module(path, n))
            }
            TargetModules::Names(names) => names.iter().any(|n| ends_with_module(path, n)),
            TargetModules::Regex(re) => regex::Regex::new(&format!("^(?:{re})$"))
                .map(|r| r.is_match(path))
                .unwrap_or(false),
        }
    }

    fn to_json(&self) -> Json {
        match self {
            TargetModules::AllLinear => json!("all-linear"),
            TargetModules::Regex(re) => json!(re),
            TargetModules::Names(n) => json!(n),
        }
    }

    fn from_json(v: &Json) -> Result<Self> {
        match v {
            Json::String(s) if s == "all-linear" => Ok(TargetModules::AllLinear),
            Json::String(s) => {
                regex::Regex::new(s).map_err(|e| {
                    ModelError::Adapter(format!("target_modules is not a valid regex: {e}"))
                })?;
                Ok(TargetModules::Regex(s.clone()))
            }
            Json::Array(items) => {
                let names = items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            ModelError::Adapter("target_modules must hold strings".into())
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(TargetModules::Names(names))
            }
            _ => Err(ModelError::Adapter(
                "target_modules must be a list of names, a regex or \"all-linear\"".into(),
            )),
        }
    }
}

/// `path` is `name` or ends with `.name` (PEFT's rule for a list of target names).
fn ends_with_module(path: &str, name: &str) -> bool {
    path == name || path.ends_with(&format!(".{name}"))
}

/// An adapter's hyper-parameters: the core of PEFT's `LoraConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    /// Scale by `alpha / √r` instead of `alpha / r` (rank-stabilised LoRA).
    pub use_rslora: bool,
    pub target_modules: TargetModules,
    /// Per-module rank overrides, keyed by a module-name pattern (PEFT's `rank_pattern`).
    pub rank_pattern: BTreeMap<String, usize>,
    /// Per-module alpha overrides (PEFT's `alpha_pattern`).
    pub alpha_pattern: BTreeMap<String, f64>,
    /// What the adapter was trained on; informational.
    pub base_model: Option<String>,
}

impl LoraConfig {
    /// A config with PEFT's defaults for everything but rank, alpha and targets.
    pub fn new(r: usize, alpha: f64, target_modules: TargetModules) -> Self {
        LoraConfig {
            r,
            alpha,
            dropout: 0.0,
            use_rslora: false,
            target_modules,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            base_model: None,
        }
    }

    /// Rank and alpha for the module at `path`, after the pattern overrides.
    pub fn rank_alpha(&self, path: &str) -> (usize, f64) {
        let r = self
            .rank_pattern
            .iter()
            .find(|(k, _)| pattern_matches(k, path))
            .map_or(self.r, |(_, &r)| r);
        let alpha = self
            .alpha_pattern
            .iter()
            .find(|(k, _)| pattern_matches(k, path))
            .map_or(self.alpha, |(_, &a)| a);
        (r, alpha)
    }

    /// The factor applied to `B·A` for a module of rank `r` and scaling `alpha`.
    pub fn scale(&self, r: usize, alpha: f64) -> f64 {
        if self.use_rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.r == 0 {
            return Err(ModelError::Adapter("rank r must be at least 1".into()));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(ModelError::Adapter(format!(
                "lora_alpha must be positive, got {}",
                self.alpha
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::Adapter(format!(
                "lora_dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        if let Some((k, _)) = self.rank_pattern.iter().find(|(_, &r)| r == 0) {
            return Err(ModelError::Adapter(format!("rank_pattern[{k}] is 0")));
        }
        Ok(())
    }

    /// Reads the core fields of PEFT's `adapter_config.json`; the many others are ignored,
    /// and features vigil does not implement are refused rather than silently dropped.
    pub fn from_peft_json(text: &str) -> Result<Self> {
        let v: Json = serde_json::from_str(text)
            .map_err(|e| ModelError::Adapter(format!("not valid JSON: {e}")))?;
        let get = |k: &str| v.get(k).filter(|x| !x.is_null());
        if let Some(t) = get("peft_type").and_then(Json::as_str) {
            if t != "LORA" {
                return Err(ModelError::Adapter(format!(
                    "peft_type is {t}; only LORA adapters are supported"
                )));
            }
        }
        let flag = |k: &str| get(k).and_then(Json::as_bool).unwrap_or(false);
        for unsupported in ["use_dora", "fan_in_fan_out"] {
            if flag(unsupported) {
                return Err(ModelError::Adapter(format!(
                    "{unsupported} = true is not supported"
                )));
            }
        }
        if let Some(b) = get("bias").and_then(Json::as_str) {
            if b != "none" {
                return Err(ModelError::Adapter(format!(
                    "bias = \"{b}\" (trained biases) is not supported; only \"none\""
                )));
            }
        }
        if get("modules_to_save").is_some_and(|m| m.as_array().is_none_or(|a| !a.is_empty())) {
            return Err(ModelError::Adapter(
                "modules_to_save (fully trained extra modules) is not supported".into(),
            ));
        }
        for unsupported in ["layers_to_transform", "layer_replication"] {
            if get(unsupported).is_some() {
                return Err(ModelError::Adapter(format!(
                    "{unsupported} is not supported"
                )));
            }
        }
        let r = get("r")
            .and_then(Json::as_u64)
            .ok_or_else(|| ModelError::Adapter("missing or invalid field r".into()))?
            as usize;
        let alpha = get("lora_alpha").and_then(Json::as_f64).unwrap_or(8.0);
        let dropout = get("lora_dropout").and_then(Json::as_f64).unwrap_or(0.0) as f32;
        let target_modules = TargetModules::from_json(
            get("target_modules")
                .ok_or_else(|| ModelError::Adapter("missing field target_modules".into()))?,
        )?;
        let map = |k: &str| -> Result<BTreeMap<String, f64>> {
            match get(k) {
                None => Ok(BTreeMap::new()),
                Some(Json::Object(m)) => m
                    .iter()
                    .map(|(key, val)| {
                        val.as_f64().map(|f| (key.clone(), f)).ok_or_else(|| {
                            ModelError::Adapter(format!("{k}[{key}] is not a number"))
                        })
                    })
                    .collect(),
                Some(_) => Err(ModelError::Adapter(format!("{k} must be an object"))),
            }
        };
        let config = LoraConfig {
            r,
            alpha,
            dropout,
            use_rslora: flag("use_rslora"),
            target_modules,
            rank_pattern: map("rank_pattern")?
                .into_iter()
                .map(|(k, v)| (k, v as usize))
                .collect(),
            alpha_pattern: map("alpha_pattern")?,
            base_model: get("base_model_name_or_path")
                .and_then(Json::as_str)
                .map(str::to_string),
        };
        config.validate()?;
        Ok(config)
    }

    /// PEFT's `adapter_config.json` for this config (the fields PEFT needs to load it).
    pub fn to_peft_json(&self) -> Json {
        json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": self.base_model,
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.target_modules.to_json(),
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": self.use_rslora,
            "use_dora": false,
            "init_lora_weights": true,
            "modules_to_save": null,
            "rank_pattern": self.rank_pattern,
            "alpha_pattern": self.alpha_pattern,
            "inference_mode": true,
            "revision": null,
        })
    }
}

/// PEFT's rule for a `rank_pattern` / `alpha_pattern` key: it matches a module whose path
/// ends with it, at a `.` boundary; the key may be a regex.
fn pattern_matches(key: &str, path: &str) -> bool {
    regex::Regex::new(&format!(r"^(?:.*\.)?(?:{key})$"))
        .map(|r| r.is_match(path))
        .unwrap_or(false)
}

/// One layer's adapter: trainable `A` `[r, in]` and `B` `[out, r]`.
#[derive(Debug, Clone)]
pub struct LoraWeights {
    pub a: Var,
    pub b: Var,
    pub scale: f64,
    pub dropout: f32,
}

impl LoraWeights {
    /// PEFT's initialisation: `A` Kaiming-uniform (bound `1/√in`), `B` zero, so a new
    /// adapter leaves the model unchanged until trained.
    pub fn init(
        r: usize,
        in_dim: usize,
        out_dim: usize,
        scale: f64,
        dropout: f32,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let bound = 1.0 / (in_dim as f32).sqrt();
        let a: Vec<f32> = (0..r * in_dim)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        Ok(LoraWeights {
            a: Var::from_tensor(&Tensor::from_vec(a, (r, in_dim), &Device::Cpu)?)?,
            b: Var::zeros((out_dim, r), DType::F32, &Device::Cpu)?,
            scale,
            dropout,
        })
    }

    pub fn rank(&self) -> usize {
        self.a.dims()[0]
    }

    /// `scale · B · A`, the change this adapter makes to the weight, `[out, in]`.
    pub fn delta(&self) -> Result<Tensor> {
        Ok((self.b.as_tensor().matmul(self.a.as_tensor())? * self.scale)?)
    }

    /// `scale · (dropout(x) Aᵀ) Bᵀ` for `x` `[rows, in]`. `dropout_seed` is `Some` only while
    /// training; the mask is drawn from it, so a step is reproducible from its seed.
    ///
    /// Outside training (`differentiable` false) the product is `lora_rows`: each row on
    /// its own, in a fixed order. candle's float matmul rounds a row differently depending
    /// on how many rows come with it (measured: by one ulp at up to 64 rows, which
    /// quantised activations can amplify to a logit in 30 layers), and a prompt's hidden
    /// states must not depend on whether it ran alone, in a batch or after a cached
    /// prefix. It also keeps `A` and `B` out of any autograd graph: a product with a
    /// `Var` records its inputs, so every activation of every layer would stay alive
    /// until the pass's output is dropped (2.9 GB of heap for 16 × 256-token batches).
    pub fn forward(
        &self,
        x: &Tensor,
        dropout_seed: Option<u64>,
        differentiable: bool,
    ) -> Result<Tensor> {
        if !differentiable {
            use crate::ggml_ops::with_f32;
            let (rows, _) = x.dims2()?;
            let (a, b) = (self.a.as_tensor(), self.b.as_tensor());
            let out_dim = b.dims()[0];
            let (rank, scale) = (self.rank(), self.scale as f32);
            // Read in place: a copy of A and B per call cost more than the product itself
            // when decoding one token.
            let y = with_f32(&x.to_dtype(DType::F32)?, |x| {
                with_f32(a, |a| with_f32(b, |b| lora_rows(x, a, rank, b, scale)))
            })???;
            return Ok(Tensor::from_vec(y, (rows, out_dim), x.device())?);
        }
        let x = match dropout_seed {
            Some(seed) if self.dropout > 0.0 => dropout(x, self.dropout, seed)?,
            _ => x.clone(),
        };
        let h = x.matmul(&self.a.as_tensor().t()?)?;
        Ok((h.matmul(&self.b.as_tensor().t()?)? * self.scale)?)
    }
}

/// `y = ((x Aᵀ) Bᵀ) · scale` for row-major `x` `[rows, in]`, `A` `[r, in]`, `B` `[out, r]`,
/// each row on its own in a fixed order, so the result of a row does not depend on the
/// other rows: `x Aᵀ` with [`crate::ggml_ops::dot_vec_f32`], then `· Bᵀ` with
/// [`rank_dots`]. Rows run on the thread pool when there are many.
fn lora_rows(x: &[f32], a: &[f32], rank: usize, b: &[f32], scale: f32) -> Vec<f32> {
    use crate::ggml_ops::dot_vec_f32;
    let in_dim = a.len() / rank;
    let out_dim = b.len() / rank;
    let rows = x.len() / in_dim;
    let mut y = vec![0f32; rows * out_dim];
    let row = |(xr, yr): (&[f32], &mut [f32])| {
        let h: Vec<f32> = a
            .chunks_exact(in_dim)
            .map(|ar| dot_vec_f32(xr, ar))
            .collect();
        rank_dots(&h, b, yr);
        yr.iter_mut().for_each(|v| *v *= scale);
    };
    // A hand-off to the pool costs microseconds: only worth it for prefill-sized inputs.
    if rows * (in_dim + out_dim) * rank >= 1 << 18 {
        vigil_kernels::team::for_each_chunk_mut(&mut y, out_dim, |i, yr| {
            row((&x[i * in_dim..][..in_dim], yr))
        });
    } else {
        x.chunks_exact(in_dim)
            .zip(y.chunks_exact_mut(out_dim))
            .for_each(row);
    }
    y
}

/// `y[o] = h · B[o]` for every row `o` of `B` (`[y.len(), h.len()]`, the rank being small):
/// eight outputs at a time on AVX2 when the rank is a multiple of 8 (a row of `B` is a
/// dot of 8-lane chunks, and the eight sums are reduced side by side), else one by one.
/// [`crate::ggml_ops::dot_vec_f32`] would run a rank-16 dot as a chain of 16 dependent
/// fused adds per output: 7 ms per decoded token on SmolLM2 with every linear adapted.
fn rank_dots(h: &[f32], b: &[f32], y: &mut [f32]) {
    let r = h.len();
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if r.is_multiple_of(8) && crate::ggml_ops::fast_dots() {
        done = y.len() / 8 * 8;
        // SAFETY: fast_dots() checked AVX2 and FMA; `b` holds `y.len()` rows of `r`.
        unsafe { rank_dots8(h, &b[..done * r], &mut y[..done]) };
    }
    for (yo, br) in y[done..].iter_mut().zip(b[done * r..].chunks_exact(r)) {
        *yo = crate::ggml_ops::dot_vec_f32(h, br);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rank_dots8(h: &[f32], b: &[f32], y: &mut [f32]) {
    use std::arch::x86_64::*;
    let r = h.len();
    for (o, yo) in y.chunks_exact_mut(8).enumerate() {
        let rows = b[o * 8 * r..].as_ptr();
        let acc: [__m256; 8] = std::array::from_fn(|k| {
            let mut a = _mm256_setzero_ps();
            for c in (0..r).step_by(8) {
                let bv = _mm256_loadu_ps(rows.add(k * r + c));
                a = _mm256_fmadd_ps(bv, _mm256_loadu_ps(h.as_ptr().add(c)), a);
            }
            a
        });
        // hadd pairs: [k0 k0 k1 k1 | …] → per 128-bit half the sums of outputs 0..4 / 4..8.
        let t0 = _mm256_hadd_ps(acc[0], acc[1]);
        let t1 = _mm256_hadd_ps(acc[2], acc[3]);
        let t2 = _mm256_hadd_ps(acc[4], acc[5]);
        let t3 = _mm256_hadd_ps(acc[6], acc[7]);
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        let sums = _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(u0, u1),
            _mm256_permute2f128_ps::<0x31>(u0, u1),
        );
        _mm256_storeu_ps(yo.as_mut_ptr(), sums);
    }
}

/// Inverted dropout with a mask drawn from `seed`.
fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    Ok(x.mul(&mask)?)
}

/// A stable 64-bit hash of a module path, so each layer draws its own dropout mask from
/// the step's seed.
pub(crate) fn seed_for(seed: u64, path: &str) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike std's RandomState.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The PEFT key of a module's A or B matrix.
pub fn peft_key(module_path: &str, which: char) -> String {
    format!("{KEY_PREFIX}{module_path}.lora_{which}.weight")
}

/// Writes `config` and `tensors` (PEFT key → tensor) as a PEFT adapter directory,
/// atomically: into a temporary sibling first, then renamed.
pub fn write_peft_dir(
    dir: &Path,
    config: &LoraConfig,
    tensors: &BTreeMap<String, Tensor>,
) -> Result<()> {
    let io = |e: std::io::Error| ModelError::file(dir, e);
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io)?;
    let tmp = tempfile::Builder::new()
        .prefix(".adapter-")
        .tempdir_in(parent)
        .map_err(io)?;
    let json = serde_json::to_string_pretty(&config.to_peft_json()).expect("JSON of plain data");
    std::fs::write(tmp.path().join(CONFIG_FILE), json).map_err(io)?;
    let mut data: Vec<(String, Tensor)> = Vec::with_capacity(tensors.len());
    for (k, t) in tensors {
        data.push((k.clone(), t.to_dtype(DType::F32)?.contiguous()?));
    }
    let weights = tmp.path().join(WEIGHTS_FILE);
    candle_core::safetensors::save(
        &data.iter().map(|(k, t)| (k.as_str(), t.clone())).collect(),
        &weights,
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(io)?;
    Ok(())
}

/// Reads a PEFT adapter directory: its config and its tensors by key.
pub fn read_peft_dir(dir: &Path) -> Result<(LoraConfig, BTreeMap<String, Tensor>)> {
    let config_path = dir.join(CONFIG_FILE);
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| ModelError::file(&config_path, e))?;
    let config =
        LoraConfig::from_peft_json(&text).map_err(|e| ModelError::file(&config_path, e))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    if !weights_path.exists() {
        let msg = if dir.join("adapter_model.bin").exists() {
            "only adapter_model.bin (pickle) is present; vigil reads safetensors only — re-save with safe_serialization=True"
        } else {
            "file not found"
        };
        return Err(ModelError::file(&weights_path, msg));
    }
    let bytes = std::fs::read(&weights_path).map_err(|e| ModelError::file(&weights_path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        ModelError::file(&weights_path, format!("not a valid safetensors file: {e}"))
    })?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::file(
                    &weights_path,
                    format!("tensor {name} has dtype {other:?}; expected f32, f16 or bf16"),
                ))
            }
        };
        let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)?
            .to_dtype(DType::F32)?;
        tensors.insert(name, t);
    }
    Ok((config, tensors))
}

/// How much merging changed the model's weights beyond the exact `W + ΔW`: non-zero only
/// for quantised bases, which are re-quantised after the merge.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MergeReport {
    pub layers: usize,
    /// Largest |requantised − exact merged| over all merged weights.
    pub max_requant_error: f32,
    /// Root-mean-square of that difference.
    pub rms_requant_error: f32,
    /// Root-mean-square of the exact `ΔW` merged in, for scale.
    pub rms_delta: f32,
}

// ---------------------------------------------------------------------------------------
// Adapters on a decoder
// ---------------------------------------------------------------------------------------

use crate::config::RopeLayout;
use crate::decoder::Decoder;
use crate::layers::{Linear, LinearWeight};
use candle_core::quantized::QTensor;
use std::sync::Arc;

/// Which rope permutation a module's output rows carry in this decoder, if any: llama.cpp
/// reorders a `llama` model's Q and K rows (per head: first halves and second halves
/// interleaved). Returns the head count to permute with.
fn permuted_heads(decoder: &Decoder, path: &str) -> Option<usize> {
    if decoder.config.rope_layout != RopeLayout::Interleaved {
        return None;
    }
    if path.ends_with(".q_proj") {
        Some(decoder.config.num_heads)
    } else if path.ends_with(".k_proj") {
        Some(decoder.config.num_kv_heads)
    } else {
        None
    }
}

/// Rows of `m` `[out, c]` from Hugging Face's order into llama.cpp's rope order.
fn to_rope_order(m: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, c) = m.dims2()?;
    let half = out / heads / 2;
    Ok(m.reshape((heads, 2, half, c))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, c))?)
}

/// The inverse of [`to_rope_order`].
fn from_rope_order(m: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, c) = m.dims2()?;
    let half = out / heads / 2;
    Ok(m.reshape((heads, half, 2, c))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, c))?)
}

impl Decoder {
    /// Every linear layer: the blocks' projections in order, then the output head.
    pub fn linears(&self) -> Vec<&Linear> {
        let mut all = Vec::with_capacity(self.blocks.len() * 7 + 1);
        for b in &self.blocks {
            let (a, m) = (&b.attn, &b.mlp);
            all.extend([&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj]);
            all.extend([&m.gate_proj, &m.up_proj, &m.down_proj]);
        }
        all.push(&self.lm_head);
        all
    }

    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut all = Vec::with_capacity(self.blocks.len() * 7 + 1);
        for b in &mut self.blocks {
            let (a, m) = (&mut b.attn, &mut b.mlp);
            all.extend([&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj]);
            all.extend([&mut m.gate_proj, &mut m.up_proj, &mut m.down_proj]);
        }
        all.push(&mut self.lm_head);
        all
    }

    pub fn adapter_names(&self) -> Vec<String> {
        self.adapters.keys().cloned().collect()
    }

    pub fn has_adapter(&self, name: &str) -> bool {
        self.adapters.contains_key(name)
    }

    pub fn adapter_config(&self, name: &str) -> Option<&LoraConfig> {
        self.adapters.get(name)
    }

    /// Adds a freshly initialised adapter (PEFT's init, from `seed`) to every targeted
    /// layer. Returns how many layers got one.
    pub fn add_lora(&mut self, name: &str, config: &LoraConfig, seed: u64) -> Result<usize> {
        config.validate()?;
        self.ensure_new(name)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut count = 0;
        for lin in self.linears_mut() {
            if !config.target_modules.matches(&lin.path) {
                continue;
            }
            let (r, alpha) = config.rank_alpha(&lin.path);
            let w = LoraWeights::init(
                r,
                lin.in_dim,
                lin.out_dim,
                config.scale(r, alpha),
                config.dropout,
                &mut rng,
            )?;
            lin.lora.push((name.to_string(), w));
            count += 1;
        }
        if count == 0 {
            return Err(ModelError::Adapter(format!(
                "target modules {:?} match no layer of this model",
                config.target_modules
            )));
        }
        self.adapters.insert(name.to_string(), config.clone());
        Ok(count)
    }

    /// Loads a PEFT adapter directory under `name`.
    pub fn load_lora(&mut self, name: &str, dir: &Path) -> Result<LoraConfig> {
        let (config, tensors) = read_peft_dir(dir)?;
        self.attach_lora(name, &config, &tensors)
            .map_err(|e| ModelError::file(dir.join(WEIGHTS_FILE), e))?;
        Ok(config)
    }

    /// Attaches an adapter from PEFT-keyed tensors (Hugging Face layout). Every tensor
    /// must belong to a layer of this model and every targeted layer must have both
    /// matrices with fitting shapes; anything else is an error naming the key.
    pub fn attach_lora(
        &mut self,
        name: &str,
        config: &LoraConfig,
        tensors: &BTreeMap<String, Tensor>,
    ) -> Result<()> {
        config.validate()?;
        self.ensure_new(name)?;
        let permutations: Vec<Option<usize>> = self
            .linears()
            .iter()
            .map(|l| permuted_heads(self, &l.path))
            .collect();
        let mut used = 0;
        let mut staged = Vec::new();
        for (idx, lin) in self.linears().into_iter().enumerate() {
            let (ka, kb) = (peft_key(&lin.path, 'A'), peft_key(&lin.path, 'B'));
            let (a, b) = match (tensors.get(&ka), tensors.get(&kb)) {
                (Some(a), Some(b)) => (a, b),
                (None, None) => continue,
                (Some(_), None) => return Err(ModelError::Adapter(format!("{kb} is missing"))),
                (None, Some(_)) => return Err(ModelError::Adapter(format!("{ka} is missing"))),
            };
            let (r, alpha) = config.rank_alpha(&lin.path);
            if a.dims() != [r, lin.in_dim] {
                return Err(ModelError::Adapter(format!(
                    "{ka} has shape {:?}; this model needs [{r}, {}]",
                    a.dims(),
                    lin.in_dim
                )));
            }
            if b.dims() != [lin.out_dim, r] {
                return Err(ModelError::Adapter(format!(
                    "{kb} has shape {:?}; this model needs [{}, {r}]",
                    b.dims(),
                    lin.out_dim
                )));
            }
            let b = match permutations[idx] {
                Some(heads) => to_rope_order(b, heads)?,
                None => b.clone(),
            };
            staged.push((
                idx,
                LoraWeights {
                    a: Var::from_tensor(&a.to_dtype(DType::F32)?.contiguous()?)?,
                    b: Var::from_tensor(&b.to_dtype(DType::F32)?.contiguous()?)?,
                    scale: config.scale(r, alpha),
                    dropout: config.dropout,
                },
            ));
            used += 2;
        }
        if used != tensors.len() {
            let known: std::collections::HashSet<String> = self
                .linears()
                .iter()
                .flat_map(|l| [peft_key(&l.path, 'A'), peft_key(&l.path, 'B')])
                .collect();
            let stray = tensors.keys().find(|k| !known.contains(*k));
            return Err(ModelError::Adapter(format!(
                "tensor {} does not belong to any linear layer of this model",
                stray.map_or("?", String::as_str)
            )));
        }
        if staged.is_empty() {
            return Err(ModelError::Adapter(
                "the adapter holds no LoRA tensors".into(),
            ));
        }
        let mut linears = self.linears_mut();
        for (idx, w) in staged {
            linears[idx].lora.push((name.to_string(), w));
        }
        self.adapters.insert(name.to_string(), config.clone());
        Ok(())
    }

    fn ensure_new(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(ModelError::Adapter("an adapter needs a name".into()));
        }
        if self.has_adapter(name) {
            return Err(ModelError::Adapter(format!(
                "an adapter named '{name}' is already loaded"
            )));
        }
        Ok(())
    }

    /// The adapter's trainable parameters, keyed by PEFT key, in this decoder's layout
    /// (for training: the optimiser works on these).
    pub fn lora_vars(&self, name: &str) -> Vec<(String, Var)> {
        let mut vars = Vec::new();
        for lin in self.linears() {
            if let Some(w) = lin.adapter(name) {
                vars.push((peft_key(&lin.path, 'A'), w.a.clone()));
                vars.push((peft_key(&lin.path, 'B'), w.b.clone()));
            }
        }
        vars
    }

    /// The adapter's tensors in Hugging Face's layout, keyed as PEFT stores them.
    pub fn lora_tensors(&self, name: &str) -> Result<BTreeMap<String, Tensor>> {
        self.lora_hf_layout(name, |v| Some(v.as_tensor().detach()))
    }

    /// Any per-matrix tensor of the adapter (the weights, their gradients, optimiser
    /// moments) mapped to Hugging Face's layout and keyed by PEFT key. `f` gives the tensor
    /// for a matrix's `Var`; a `None` is an error naming the key.
    pub fn lora_hf_layout(
        &self,
        name: &str,
        f: impl Fn(&Var) -> Option<Tensor>,
    ) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for lin in self.linears() {
            let Some(w) = lin.adapter(name) else { continue };
            let get = |v: &Var, which: char| {
                f(v).ok_or_else(|| {
                    ModelError::Adapter(format!("no tensor for {}", peft_key(&lin.path, which)))
                })
            };
            let b = get(&w.b, 'B')?;
            let b = match permuted_heads(self, &lin.path) {
                Some(heads) => from_rope_order(&b, heads)?,
                None => b,
            };
            out.insert(peft_key(&lin.path, 'A'), get(&w.a, 'A')?);
            out.insert(peft_key(&lin.path, 'B'), b);
        }
        Ok(out)
    }

    /// Saves the adapter as a PEFT directory that Python PEFT loads.
    pub fn save_lora(&self, name: &str, dir: &Path) -> Result<()> {
        let config = self
            .adapter_config(name)
            .ok_or_else(|| ModelError::Adapter(format!("no adapter named '{name}'")))?;
        write_peft_dir(dir, config, &self.lora_tensors(name)?)
    }

    /// Drops an adapter from every layer.
    pub fn remove_lora(&mut self, name: &str) -> bool {
        for lin in self.linears_mut() {
            lin.lora.retain(|(n, _)| n != name);
        }
        self.adapters.remove(name).is_some()
    }

    /// Folds the adapter into the base weights (`W + scale·B·A`) and removes it. Dense
    /// weights are exact; quantised ones are dequantised, merged and quantised again to
    /// their own type, and the report says how far that lands from the exact merge.
    pub fn merge_lora(&mut self, name: &str) -> Result<MergeReport> {
        if !self.has_adapter(name) {
            return Err(ModelError::Adapter(format!("no adapter named '{name}'")));
        }
        let mut report = MergeReport::default();
        let (mut sq_err, mut sq_delta, mut n) = (0f64, 0f64, 0usize);
        for lin in self.linears_mut() {
            let Some(pos) = lin.lora.iter().position(|(n, _)| n == name) else {
                continue;
            };
            let (_, w) = lin.lora.remove(pos);
            let delta = w.delta()?;
            sq_delta += delta.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            n += delta.elem_count();
            report.layers += 1;
            lin.weight = match &lin.weight {
                LinearWeight::Dense(base) => LinearWeight::Dense((base + &delta)?),
                LinearWeight::Quantized { tensor, .. } => {
                    let exact = (tensor.dequantize(&Device::Cpu)? + &delta)?;
                    let q = Arc::new(QTensor::quantize(&exact, tensor.dtype())?);
                    let diff = (q.dequantize(&Device::Cpu)? - &exact)?;
                    let max = diff.abs()?.max_all()?.to_scalar::<f32>()?;
                    report.max_requant_error = report.max_requant_error.max(max);
                    sq_err += diff.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                    LinearWeight::quantized(q)?
                }
            };
        }
        if n > 0 {
            report.rms_requant_error = (sq_err / n as f64).sqrt() as f32;
            report.rms_delta = (sq_delta / n as f64).sqrt() as f32;
        }
        self.adapters.remove(name);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inference product equals `((x Aᵀ) Bᵀ) · scale` to float rounding, for ranks on and
    /// off the 8-wide path and output counts with a remainder.
    #[test]
    fn lora_rows_compute_the_adapter_product() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (rows, in_dim, rank, out_dim) in [(3, 64, 16, 37), (1, 70, 4, 9), (5, 128, 8, 64)] {
            let mut v =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
            let (x, a, b) = (v(rows * in_dim), v(rank * in_dim), v(out_dim * rank));
            let y = lora_rows(&x, &a, rank, &b, 0.5);
            for i in 0..rows {
                for o in 0..out_dim {
                    let want: f64 = (0..rank)
                        .map(|j| {
                            let h: f64 = (0..in_dim)
                                .map(|k| x[i * in_dim + k] as f64 * a[j * in_dim + k] as f64)
                                .sum();
                            h * b[o * rank + j] as f64
                        })
                        .sum::<f64>()
                        * 0.5;
                    let got = y[i * out_dim + o] as f64;
                    assert!(
                        (got - want).abs() < 1e-4,
                        "row {i} out {o}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn target_modules_follow_peft_rules() {
        let q = "model.layers.3.self_attn.q_proj";
        let down = "model.layers.0.mlp.down_proj";
        let names = TargetModules::parse("q_proj, v_proj").unwrap();
        assert!(names.matches(q));
        assert!(!names.matches(down));
        // A name matches whole path components only.
        assert!(!TargetModules::parse("proj").unwrap().matches(q));
        let all = TargetModules::AllLinear;
        assert!(all.matches(q) && all.matches(down));
        assert!(!all.matches("lm_head"));
        let re = TargetModules::parse(r"re:.*layers\.0\..*_proj").unwrap();
        assert!(re.matches(down) && !re.matches(q));
        assert!(TargetModules::parse("re:(").is_err());
        assert!(TargetModules::parse(" , ").is_err());
    }

    #[test]
    fn peft_config_round_trips_and_refuses_what_vigil_cannot_do() {
        let mut c = LoraConfig::new(16, 32.0, TargetModules::parse("q_proj,k_proj").unwrap());
        c.dropout = 0.05;
        c.use_rslora = true;
        c.rank_pattern.insert("down_proj".into(), 8);
        let back = LoraConfig::from_peft_json(&c.to_peft_json().to_string()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.rank_alpha("model.layers.1.mlp.down_proj"), (8, 32.0));
        assert_eq!(
            back.rank_alpha("model.layers.1.self_attn.q_proj"),
            (16, 32.0)
        );
        assert!(
            (c.scale(16, 32.0) - 8.0).abs() < 1e-12,
            "rsLoRA: alpha / sqrt(r)"
        );
        c.use_rslora = false;
        assert_eq!(c.scale(16, 32.0), 2.0);

        let refuse = |patch: serde_json::Value, what: &str| {
            let mut v = c.to_peft_json();
            for (k, val) in patch.as_object().unwrap() {
                v[k] = val.clone();
            }
            let e = LoraConfig::from_peft_json(&v.to_string())
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{e}");
        };
        refuse(json!({"use_dora": true}), "use_dora");
        refuse(json!({"peft_type": "IA3"}), "IA3");
        refuse(json!({"bias": "all"}), "bias");
        refuse(json!({"modules_to_save": ["lm_head"]}), "modules_to_save");
        refuse(json!({"r": 0}), "rank");
        refuse(json!({"lora_dropout": 1.5}), "lora_dropout");
        refuse(json!({"target_modules": 3}), "target_modules");
        // Fields PEFT added later are ignored.
        let mut v = c.to_peft_json();
        v["some_future_field"] = json!({"x": 1});
        assert!(LoraConfig::from_peft_json(&v.to_string()).is_ok());
    }

    #[test]
    fn rope_row_order_is_llama_cpp_s_and_invertible() {
        // 2 heads of head_dim 4, one column: HF rows per head are [a0 a1 | b0 b1]; llama.cpp
        // interleaves them as [a0 b0 a1 b1].
        let hf =
            Tensor::from_vec((0..8).map(|v| v as f32).collect(), (8, 1), &Device::Cpu).unwrap();
        let gguf = to_rope_order(&hf, 2).unwrap();
        assert_eq!(
            gguf.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0., 2., 1., 3., 4., 6., 5., 7.]
        );
        let back = from_rope_order(&gguf, 2).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), hf.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn dropout_is_seeded_and_keeps_the_expectation() {
        let x = Tensor::ones((64, 64), DType::F32, &Device::Cpu).unwrap();
        let a = dropout(&x, 0.25, 9).unwrap().to_vec2::<f32>().unwrap();
        let b = dropout(&x, 0.25, 9).unwrap().to_vec2::<f32>().unwrap();
        let c = dropout(&x, 0.25, 10).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let flat: Vec<f32> = a.into_iter().flatten().collect();
        let zeros = flat.iter().filter(|&&v| v == 0.0).count() as f32 / flat.len() as f32;
        assert!((zeros - 0.25).abs() < 0.03, "dropped {zeros}");
        let mean = flat.iter().sum::<f32>() / flat.len() as f32;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
        assert_ne!(seed_for(1, "a.q_proj"), seed_for(1, "a.k_proj"));
    }
}
