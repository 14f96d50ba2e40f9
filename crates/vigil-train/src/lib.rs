//! The model-independent half of vigil's fine-tuning (MISSION M3): everything the trainer
//! does except running the model, generic over a [`TrainTask`] so it is tested on toy tasks.
//!
//! Principal types and how they connect:
//! - [`TrainTask`] (`task`): what is optimised — named trainable [`candle_core::Var`]s and a
//!   summed loss with its token count for a [`Batch`]. The LoRA SFT task implements it for a
//!   decoder with adapters.
//! - [`data`]: a store split → [`ChatEncoder`] (the model's chat template over
//!   `vigil_data::prompt::render`, loss mask on the answer tokens only) → [`Example`]s →
//!   [`Dataset`] of [`Row`]s (truncated, optionally packed; [`DataConfig`]) →
//!   [`epoch_order`] (deterministic shuffle) → left-padded [`Batch`]es.
//! - [`Trainer`] (`trainer`), configured by [`TrainConfig`] (`config`, TOML): micro-batches
//!   → accumulated [`Gradients`] → [`clip_grad_norm`] → [`AdamW`] (`optim`) at the rate of a
//!   [`Schedule`] (`schedule`) → eval loss, early stopping → [`metrics`] (`metrics.jsonl`,
//!   `loss.png` / `loss.svg`) and [`checkpoint`]s (`checkpoint-<step>/`: params, optimizer
//!   state, [`TrainerState`]) from which [`Resume`] continues bit for bit.
//! - [`TrainRng`] (`rng`): the trainer-owned, checkpointed random stream the task draws
//!   dropout from. [`with_threads`] (`threads`) runs work on N CPU threads.
//! - [`sft`]: the LoRA / QLoRA task over a `vigil_model::Decoder` ([`sft::LoraSft`]), its
//!   TOML recipe ([`sft::SftConfig`]) and [`sft::run_sft`], store → PEFT adapter directory.
//! - [`TrainError`] (`error`): every failure, naming the file or config field at fault.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod metrics;
pub mod optim;
pub mod rng;
pub mod schedule;
pub mod sft;
mod st;
pub mod task;
pub mod threads;
pub mod trainer;

pub use checkpoint::TrainerState;
pub use config::TrainConfig;
pub use data::{epoch_order, Batch, ChatEncoder, DataConfig, DataReport, Dataset, Example, Row};
pub use error::{Result, TrainError};
pub use metrics::StepMetrics;
pub use optim::{clip_grad_norm, AdamW, AdamWParams, Gradients};
pub use rng::TrainRng;
pub use schedule::{Schedule, ScheduleKind};
pub use task::TrainTask;
pub use threads::with_threads;
pub use trainer::{evaluate, Resume, RunSummary, StopReason, Trainer};
