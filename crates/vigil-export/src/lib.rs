//! `vigil export`: model files for other runtimes.
//!
//! * [`gguf_writer::GgufWriter`] writes a GGUF v3 file as a stream: the header (metadata and
//!   a directory of [`gguf_writer::TensorEntry`]) first, then each tensor's bytes in order.
//! * [`mixture::ExportType`] names the file types (f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m,
//!   q6_k) and [`mixture::tensor_type`] picks each tensor's type by llama.cpp's rules,
//!   including its fallbacks for rows that are not whole blocks.
//! * [`quantize::quantize_rows`] turns f32 rows into a ggml block format on all threads;
//!   the K-quants come from [`kquants`] (vigil's own, byte-identical to ggml's reference
//!   quantisers), the 32-value formats from candle.
//! * [`gguf_export::export_gguf`] ties them together: a GGUF model in, another type out,
//!   one tensor in memory at a time; unchanged tensors are copied byte for byte;
//!   [`gguf_export::export_gguf_merged`] merges a PEFT adapter on the way.
//! * [`hf_source::export_gguf_from_hf`] does the same from a Hugging Face directory
//!   (config.json, safetensors, tokenizer.json): llama.cpp's converter and quantiser in one
//!   pass, Q/K rows put in llama's rope order.
//! * [`lora_gguf::export_lora_gguf`] writes a PEFT adapter as llama.cpp's LoRA GGUF and
//!   [`lora_gguf::lora_gguf_to_peft`] reads one back.
//! * [`merged::export_merged`] writes a Hugging Face directory (f32 safetensors, config,
//!   tokenizer.json and tokenizer_config.json with the chat template).
//! * [`modelfile::modelfile`] writes an Ollama Modelfile from a GGUF's chat template.

pub mod error;
pub mod gguf_export;
pub mod gguf_writer;
pub mod hf_source;
pub mod kquants;
pub mod lora_gguf;
pub mod merged;
pub mod mixture;
pub mod modelfile;
pub mod quantize;

pub use error::{ExportError, Result};
pub use gguf_export::{export_gguf, export_gguf_merged, ExportReport, GgufSource};
pub use gguf_writer::{GgufWriter, TensorEntry};
pub use hf_source::export_gguf_from_hf;
pub use lora_gguf::{export_lora_gguf, LoraExportReport};
pub use merged::{export_merged, MergedReport};
pub use mixture::{tensor_type, ExportType, ModelShape};
pub use quantize::quantize_rows;
