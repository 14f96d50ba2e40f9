//! `Model`: a loaded decoder with its tokenizer, and where it came from.

use crate::config::ModelConfig;
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::weights::WeightSource;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use vigil_tokenizer::Tokenizer;

pub struct Model {
    pub decoder: Decoder,
    pub tokenizer: Tokenizer,
    pub path: PathBuf,
    pub info: ModelInfo,
}

/// What `vigil model info` shows; gathered while loading.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub format: &'static str,
    pub architecture: String,
    pub name: Option<String>,
    pub parameters: u64,
    /// Tensor count per storage type (`Q4_1`, `F32`, …).
    pub tensor_types: BTreeMap<String, usize>,
    pub file_bytes: u64,
    pub context_length: usize,
    pub layers: usize,
    pub hidden_size: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub vocab_size: usize,
    pub rope_theta: f32,
    pub sliding_window: Option<usize>,
    pub tied_embeddings: bool,
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub stop_tokens: Vec<String>,
    pub special_tokens: usize,
    pub chat_template: Option<String>,
}

/// The formats a model path can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    Gguf,
    HfDirectory,
}

/// Tells a GGUF file from a Hugging Face directory, with a clear error for anything else.
pub fn detect_format(path: &Path) -> Result<ModelFormat> {
    if path.is_dir() {
        if path.join("config.json").exists() {
            return Ok(ModelFormat::HfDirectory);
        }
        return Err(ModelError::file(
            path,
            "a directory without config.json is not a Hugging Face model",
        ));
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| ModelError::file(path, e))?;
    f.read_exact(&mut magic)
        .map_err(|_| ModelError::file(path, "file too short to be a model"))?;
    if &magic == b"GGUF" {
        Ok(ModelFormat::Gguf)
    } else {
        Err(ModelError::file(
            path,
            format!(
                "not a GGUF file (magic {:02x?}; expected \"GGUF\"), nor a model directory",
                magic
            ),
        ))
    }
}

impl Model {
    /// Loads a GGUF file or a Hugging Face model directory.
    pub fn load(path: &Path) -> Result<Self> {
        match detect_format(path)? {
            ModelFormat::Gguf => Self::load_gguf(path),
            ModelFormat::HfDirectory => Self::load_hf_dir(path),
        }
    }

    fn load_gguf(path: &Path) -> Result<Self> {
        let (mut src, config) = open_gguf(path)?;
        let content = src.gguf_content().expect("a GGUF source");
        let tokenizer = Tokenizer::from_gguf(content).map_err(|e| ModelError::file(path, e))?;
        let mut tensor_types = BTreeMap::new();
        let mut parameters = 0u64;
        for t in content.tensor_infos.values() {
            *tensor_types
                .entry(format!("{:?}", t.ggml_dtype))
                .or_insert(0) += 1;
            parameters += t.shape.elem_count() as u64;
        }
        let name = content
            .metadata
            .get("general.name")
            .and_then(|v| v.to_string().ok().cloned());
        // The vocabulary arrays (Gemma 3's are 262k strings, ~30 MB as GGUF values) now
        // live in the tokenizer: free them before the weights arrive.
        src.drop_metadata(&[
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.scores",
            "tokenizer.ggml.token_type",
            "tokenizer.ggml.merges",
        ]);
        // The encoder's build (a helper thread) peaks at ~55 MB for Gemma 3's vocabulary:
        // let it finish and hand that back before the weights are packed into memory
        // (`LinearWeight::Quantized`), or the two would add up in the process's peak.
        tokenizer
            .wait_ready()
            .map_err(|e| ModelError::file(path, e))?;
        release_free_heap();
        let decoder = Decoder::load(config, &mut src)?;
        Self::assemble(
            path,
            "gguf",
            name,
            parameters,
            tensor_types,
            decoder,
            tokenizer,
        )
    }

    fn load_hf_dir(dir: &Path) -> Result<Self> {
        let (config, json) = read_hf_config(dir)?;
        let tok_json = dir.join("tokenizer.json");
        let tok_cfg = dir.join("tokenizer_config.json");
        let tokenizer = Tokenizer::from_files(&tok_json, tok_cfg.exists().then_some(&*tok_cfg))
            .map_err(|e| ModelError::file(&tok_json, e))?;
        let mut src = WeightSource::open_safetensors(dir, config.family)?;
        let mut tensor_types = BTreeMap::new();
        let mut parameters = 0u64;
        if let WeightSource::Safetensors { tensors, .. } = &src {
            for (_, view) in tensors.tensors() {
                *tensor_types
                    .entry(format!("{:?}", view.dtype()))
                    .or_insert(0) += 1;
                parameters += view.shape().iter().product::<usize>() as u64;
            }
        }
        let name = json
            .get("_name_or_path")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let decoder = Decoder::load(config, &mut src)?;
        Self::assemble(
            dir,
            "safetensors",
            name,
            parameters,
            tensor_types,
            decoder,
            tokenizer,
        )
    }

    /// The common end of both loaders.
    fn assemble(
        path: &Path,
        format: &'static str,
        name: Option<String>,
        parameters: u64,
        tensor_types: BTreeMap<String, usize>,
        decoder: Decoder,
        tokenizer: Tokenizer,
    ) -> Result<Self> {
        // A GGUF encoder is built on a helper thread while the weights load; surface its
        // errors now rather than at the first encode.
        tokenizer
            .wait_ready()
            .map_err(|e| ModelError::file(path, e))?;
        release_free_heap();
        let info = ModelInfo::new(
            path,
            format,
            name,
            parameters,
            tensor_types,
            &decoder,
            &tokenizer,
        );
        Ok(Model {
            decoder,
            tokenizer,
            path: path.to_path_buf(),
            info,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.decoder.config
    }
}

impl Decoder {
    /// Loads only the decoder from a GGUF file or a Hugging Face directory (no tokenizer
    /// needed): for benchmarks and tools that feed token ids directly.
    pub fn open(path: &Path) -> Result<Self> {
        match detect_format(path)? {
            ModelFormat::Gguf => {
                let (mut src, config) = open_gguf(path)?;
                Decoder::load(config, &mut src)
            }
            ModelFormat::HfDirectory => {
                let (config, _) = read_hf_config(path)?;
                let mut src = WeightSource::open_safetensors(path, config.family)?;
                Decoder::load(config, &mut src)
            }
        }
    }
}

/// A GGUF file's weights and the config read from its metadata.
fn open_gguf(path: &Path) -> Result<(WeightSource, ModelConfig)> {
    let src = WeightSource::open_gguf(path)?;
    let content = src.gguf_content().expect("a GGUF source");
    let config = ModelConfig::from_gguf(content, |n| content.tensor_infos.contains_key(n))
        .map_err(|e| ModelError::file(path, e))?;
    Ok((src, config))
}

/// A Hugging Face directory's `config.json`, parsed and as JSON.
fn read_hf_config(dir: &Path) -> Result<(ModelConfig, serde_json::Value)> {
    let config_path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| ModelError::file(&config_path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::file(&config_path, format!("invalid JSON: {e}")))?;
    let config = ModelConfig::from_hf_json(&json).map_err(|e| ModelError::file(&config_path, e))?;
    Ok((config, json))
}

impl ModelInfo {
    fn new(
        path: &Path,
        format: &'static str,
        name: Option<String>,
        parameters: u64,
        tensor_types: BTreeMap<String, usize>,
        decoder: &Decoder,
        tok: &Tokenizer,
    ) -> Self {
        let c = &decoder.config;
        let file_bytes = dir_or_file_size(path);
        let piece = |id: Option<u32>| id.and_then(|i| tok.token_str(i));
        ModelInfo {
            path: path.to_path_buf(),
            format,
            architecture: c.family.name().to_string(),
            name,
            parameters,
            tensor_types,
            file_bytes,
            context_length: c.max_position,
            layers: c.num_layers,
            hidden_size: c.hidden_size,
            heads: c.num_heads,
            kv_heads: c.num_kv_heads,
            vocab_size: c.vocab_size,
            rope_theta: c.rope_theta,
            sliding_window: c.sliding_window,
            tied_embeddings: c.tie_embeddings,
            bos: piece(tok.bos_id()),
            eos: piece(tok.eos_id()),
            stop_tokens: tok
                .stop_ids()
                .iter()
                .filter_map(|&i| tok.token_str(i))
                .collect(),
            special_tokens: tok.special_tokens().len(),
            chat_template: tok.chat_template().map(|t| t.source().to_string()),
        }
    }
}

fn dir_or_file_size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// Hands the allocator's free pages back to the OS. Loading frees many small buffers in
/// the middle of the heap (GGUF metadata, the tokenizer's build temporaries), which glibc
/// otherwise keeps resident for the life of the process; `malloc_trim` releases them.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
