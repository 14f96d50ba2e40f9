//! `vigil export`: model files for other runtimes (vigil-export does the work).
//!
//! * `vigil export gguf --type q4_k_m -o model.gguf` writes a GGUF model (from a GGUF or a
//!   Hugging Face directory) as f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m or q6_k with
//!   llama.cpp's per-tensor mixtures.
//! * `vigil export modelfile -o Modelfile` writes an Ollama Modelfile for a GGUF.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vigil_export::modelfile::{modelfile, ModelfileOptions};
use vigil_export::ExportType;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(subcommand)]
    command: ExportCommand,
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// Write a GGUF model of another file type (llama.cpp's per-tensor mixtures), from a GGUF
    /// or from a Hugging Face directory (config.json, safetensors, tokenizer.json).
    Gguf {
        /// Source model: a known name, a GGUF file or a Hugging Face model directory.
        #[arg(
            long,
            short = 'm',
            env = "VIGIL_MODEL",
            default_value = "smollm2-135m-instruct"
        )]
        model: String,
        /// f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m or q6_k (keep: every tensor as it is).
        #[arg(long = "type", value_name = "TYPE", default_value = "q4_k_m")]
        export_type: ExportType,
        /// Output GGUF file.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Threads for quantisation (default: all cores).
        #[arg(long, short = 't', env = "VIGIL_THREADS")]
        threads: Option<usize>,
        /// A PEFT adapter directory to merge into the weights first.
        #[arg(long, value_name = "DIR")]
        adapter: Option<PathBuf>,
    },
    /// Write a Hugging Face directory (f32 safetensors, config.json, tokenizer.json,
    /// tokenizer_config.json with the chat template), optionally with a PEFT adapter merged in (llama and qwen2).
    Merged {
        /// Source model: a known name or a GGUF file.
        #[arg(
            long,
            short = 'm',
            env = "VIGIL_MODEL",
            default_value = "smollm2-135m-instruct"
        )]
        model: String,
        /// Output directory.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// A PEFT adapter directory to merge into the weights.
        #[arg(long, value_name = "DIR")]
        adapter: Option<PathBuf>,
        /// Largest safetensors shard, in bytes.
        #[arg(long, default_value_t = vigil_export::merged::DEFAULT_SHARD_BYTES)]
        shard_bytes: u64,
    },
    /// Write a PEFT adapter as llama.cpp's LoRA GGUF (`llama-cli --lora`), for a GGUF base.
    LoraGguf {
        /// The PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
        #[arg(long, value_name = "DIR")]
        adapter: PathBuf,
        /// The base model the adapter was trained on: a known name or a GGUF file.
        #[arg(
            long,
            short = 'm',
            env = "VIGIL_MODEL",
            default_value = "smollm2-135m-instruct"
        )]
        model: String,
        /// Output GGUF file.
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
    /// Write a llama.cpp LoRA GGUF back as a PEFT adapter directory.
    Peft {
        /// The LoRA GGUF (general.type = adapter).
        #[arg(long, value_name = "FILE")]
        lora: PathBuf,
        /// The base model it applies to (for head counts): a known name or a GGUF file.
        #[arg(
            long,
            short = 'm',
            env = "VIGIL_MODEL",
            default_value = "smollm2-135m-instruct"
        )]
        model: String,
        /// Output directory.
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
    /// Write an Ollama Modelfile (FROM, TEMPLATE, PARAMETER, SYSTEM) for a GGUF model.
    Modelfile {
        /// The GGUF the Modelfile is for (its chat template and context length are read).
        #[arg(
            long,
            short = 'm',
            env = "VIGIL_MODEL",
            default_value = "smollm2-135m-instruct"
        )]
        model: String,
        /// Output file (default: stdout).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// The FROM line (default: the GGUF's path).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value_t = 0.2)]
        temperature: f32,
        /// Context window (default: the model's, at most 8192).
        #[arg(long)]
        num_ctx: Option<u32>,
    },
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ExportCommand::Gguf {
            model,
            export_type,
            output,
            threads,
            adapter,
        } => {
            super::common::set_threads(threads);
            let source = super::model::resolve_model(&model, false)?.path;
            let adapter = adapter.as_deref();
            let report = if source.is_dir() {
                vigil_export::export_gguf_from_hf(&source, &output, export_type, adapter)
            } else {
                vigil_export::export_gguf_merged(&source, &output, export_type, adapter)
            }
            .with_context(|| format!("cannot export {} as {export_type}", source.display()))?;
            eprintln!(
                "wrote {} ({export_type}, {:.1} MiB, {} tensors, {} copied unchanged) in {:.2}s",
                output.display(),
                report.bytes as f64 / (1024.0 * 1024.0),
                report.tensors.len(),
                report.copied,
                report.seconds
            );
        }
        ExportCommand::Merged {
            model,
            output,
            adapter,
            shard_bytes,
        } => {
            let source = super::model::resolve_model(&model, false)?.path;
            let report =
                vigil_export::export_merged(&source, &output, adapter.as_deref(), shard_bytes)
                    .with_context(|| {
                        format!("cannot export {} as safetensors", source.display())
                    })?;
            eprintln!(
                "wrote {} ({} tensors in {} shard(s), {:.1} MiB; {} adapter modules merged{})",
                output.display(),
                report.tensors,
                report.shards,
                report.bytes as f64 / (1024.0 * 1024.0),
                report.merged_modules,
                if report.tokenizer_json {
                    ""
                } else {
                    "; no tokenizer.json: only byte-level BPE vocabularies are written as one"
                }
            );
        }
        ExportCommand::LoraGguf {
            adapter,
            model,
            output,
        } => {
            let base = super::model::resolve_model(&model, false)?.path;
            let report = vigil_export::export_lora_gguf(&adapter, &base, &output)
                .with_context(|| format!("cannot export adapter {}", adapter.display()))?;
            eprintln!(
                "wrote {} ({} tensors, alpha {}, {} Q/K tensors put in llama.cpp's rope order)",
                output.display(),
                report.tensors,
                report.alpha,
                report.permuted
            );
        }
        ExportCommand::Peft {
            lora,
            model,
            output,
        } => {
            let base = super::model::resolve_model(&model, false)?.path;
            let n = vigil_export::lora_gguf::lora_gguf_to_peft(&lora, &base, &output)
                .with_context(|| format!("cannot convert {}", lora.display()))?;
            eprintln!("wrote {} ({n} tensors)", output.display());
        }
        ExportCommand::Modelfile {
            model,
            output,
            from,
            system,
            temperature,
            num_ctx,
        } => {
            let gguf = super::model::resolve_model(&model, false)?.path;
            let options = ModelfileOptions {
                from: from.unwrap_or_else(|| gguf.display().to_string()),
                system,
                temperature,
                num_ctx,
            };
            let text = modelfile(&gguf, &options)?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
