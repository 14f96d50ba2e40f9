//! The vigil model runtime.
//!
//! A [`WeightSource`] (a GGUF file, whose block-quantised tensors are used in place from a
//! mapping of it, [`weights::MappedBlocks`]; or Hugging Face safetensors) and a
//! [`ModelConfig`] (read from the same file's metadata or `config.json`) build one
//! [`Decoder`] — the same code for Llama, Qwen2 and Gemma 3. Its layers are
//! [`layers::Linear`] (dense or quantised storage), [`layers::RmsNorm`] and
//! [`layers::RotaryEmbedding`]. A forward pass runs a left-padded
//! batch against a [`KvState`] (the KV cache of that batch) and returns the logits and any
//! hidden states asked for; a decode step (one new token per row) runs the same ops on
//! plain f32 buffers instead of candle tensors (`decoder::token_step`). [`Model`] bundles the decoder with its tokenizer and chat
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

/// Settles the process-wide settings the runtime's speed depends on, once, before any
/// thread starts (call it first thing in `main`; later calls change nothing a pool
/// already read):
///
/// * `RAYON_NUM_THREADS` gets the count rayon would choose. Without it candle recomputes
///   its count on every float matmul, reading `/proc/cpuinfo` each time (5 % of a scan,
///   more in LoRA training, where every adapter product is a float matmul).
/// * `CANDLE_BARRIER_POOL_SPIN_LIMIT` drops to 100 spins. candle runs large elementwise
///   ops (the residual adds) on its own pool, whose workers otherwise spin ~25,000 times
///   after every op, taking a core from the matmul threads that run next: 5 % of a
///   2-thread prefill's CPU time on Gemma 3, and ~6 % of its wall time.
/// * glibc's heap keeps freed memory for reuse. A forward pass allocates and frees every
///   op's output (up to megabytes in a prefill); glibc handed the freed top of the heap
///   back to the kernel each time, so the next op's output faulted in again, page by
///   page, zeroed by the kernel: 129,000 page faults in 21 Gemma 3 prefills, 18,000 with
///   these settings, and ~5 % less time. Setting only the top pad (`M_TOP_PAD`) turns
///   off glibc's adaptive mmap threshold, and training, whose temporaries are larger,
///   then mapped every one afresh (LoRA steps 50 % slower), so the threshold and the trim
///   threshold are set with it (`HEAP_SETTINGS`).
///
/// A value the user set is kept (for the heap, any of `MALLOC_TOP_PAD_`,
/// `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` leaves all three to glibc).
pub fn settle_runtime() {
    let keep = |name: &str| std::env::var_os(name).is_some();
    if !keep("RAYON_NUM_THREADS") {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if !keep("CANDLE_BARRIER_POOL_SPIN_LIMIT") {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "100");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if ![
        "MALLOC_TOP_PAD_",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
    ]
    .iter()
    .any(|name| keep(name))
    {
        for (param, value) in HEAP_SETTINGS {
            // SAFETY: mallopt only changes a tuning parameter of glibc's allocator; it is
            // thread-safe and these values are in range.
            unsafe { libc::mallopt(param, value) };
        }
    }
}

/// glibc heap settings (see [`settle_runtime`]): blocks below 32 MiB (glibc's largest
/// mmap threshold; every activation of the benchmarked models) come from the heap, whose
/// top keeps up to 512 MiB of freed memory and grows 64 MiB at a time. Pages of it that
/// are never written cost no memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_SETTINGS: [(i32, i32); 3] = [
    (libc::M_MMAP_THRESHOLD, 32 << 20),
    (libc::M_TRIM_THRESHOLD, 512 << 20),
    (libc::M_TOP_PAD, 64 << 20),
];

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
