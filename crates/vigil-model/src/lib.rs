//! The vigil model runtime.
//!
//! A [`WeightSource`] (a GGUF file or Hugging Face safetensors) and a [`ModelConfig`] (read
//! from the same file's metadata or `config.json`) build one [`Decoder`] — the same code for
//! Llama, Qwen2 and Gemma 3. Its layers are [`layers::Linear`] (dense or quantised storage),
//! [`layers::RmsNorm`] and [`layers::RotaryEmbedding`]. A forward pass runs a left-padded
//! batch against a [`KvState`] (the KV cache of that batch) and returns the logits and any
//! hidden states asked for. [`Model`] bundles the decoder with its tokenizer and chat
//! template; [`sampling::Sampler`] picks tokens and [`generate::Generator`] runs the
//! prefill / decode loop with stop strings and streaming. A [`PromptPrefix`] is the
//! start many prompts share (a system prompt), run once: a request continues a copy of its
//! cache, and a batch of prompts continues [`KvState::fork_rows`] with right-padded rows.
//!
//! Inference computes llama.cpp's logits bit for bit: [`ggml_ops`] does the f32 ops
//! (norms, rope, attention, gated activations) in ggml's order and `vigil-kernels` the
//! quantised products; [`trace`] dumps intermediate tensors to find where two
//! computations part.
//!
//! For fine-tuning, every `Linear` can carry named LoRA adapters ([`lora`], PEFT's file
//! format); [`Decoder::forward_train`] runs whole sequences through differentiable ops
//! only, and [`loss::causal_lm_loss`] turns that into the summed next-token loss whose
//! gradient reaches exactly the adapters' `A` and `B` matrices.

pub mod config;
pub mod decoder;
pub mod error;
pub mod ggml_ops;
pub mod layers;
pub mod lora;
pub mod loss;
pub mod storage;
pub mod trace;
pub mod weights;

/// Bumped whenever a change to the runtime alters any value it computes (not just its
/// speed): caches of model outputs (head features, analyses) include it in their keys, so
/// that results of the old arithmetic are recomputed rather than mixed with the new.
/// 2: LoRA products row by row in inference (candle's matmul rounded by batch shape).
pub const ARITHMETIC_REVISION: u32 = 2;

pub use config::{Family, ModelConfig};
pub use decoder::{Decoder, ForwardOptions, ForwardOutput, KvState, LogitsFor, TrainPass};
pub use error::{ModelError, Result};
pub use lora::{LoraConfig, LoraWeights, MergeReport, TargetModules};
pub use weights::{Weight, WeightSource};
pub mod generate;
pub mod model;
pub mod sampling;

pub use generate::{
    GenerateRequest, Generation, GenerationStats, Generator, PromptPrefix, StopReason,
    TokenConstraint, MIN_SHARED_PREFIX,
};
pub use model::{Model, ModelInfo};
pub use sampling::{Sampler, SamplingParams};
