//! Options and helpers shared by every subcommand that runs a model.

use anyhow::Context;
use clap::Args;
use vigil_model::Model;

#[derive(Args, Debug, Clone)]
pub struct ModelOpts {
    /// Model: a known name (pulled on first use), a GGUF file, a Hugging Face model
    /// directory, or hf:owner/repo[:file].
    #[arg(
        long,
        short = 'm',
        env = "VIGIL_MODEL",
        default_value = "smollm2-135m-instruct"
    )]
    pub model: String,
    /// CPU threads for the model (default: all physical cores).
    #[arg(long, short = 't', env = "VIGIL_THREADS")]
    pub threads: Option<usize>,
    /// A LoRA adapter directory in PEFT's format (adapter_config.json +
    /// adapter_model.safetensors) to run the model with.
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<std::path::PathBuf>,
}

/// The name a `--adapter` directory is loaded under.
pub const CLI_ADAPTER: &str = "cli";

impl ModelOpts {
    /// Resolves (pulling if needed) and loads the model.
    pub fn load(&self) -> anyhow::Result<Model> {
        set_threads(self.threads);
        let resolved = super::model::resolve_model(&self.model, false)?;
        let started = std::time::Instant::now();
        let mut model = Model::load(&resolved.path)
            .with_context(|| format!("cannot load model '{}'", self.model))?;
        if let Some(dir) = &self.adapter {
            let config = model
                .decoder
                .load_lora(CLI_ADAPTER, dir)
                .with_context(|| format!("cannot load adapter {}", dir.display()))?;
            tracing::info!(
                "adapter {}: r {}, alpha {}, {} layers",
                dir.display(),
                config.r,
                config.alpha,
                model.decoder.lora_vars(CLI_ADAPTER).len() / 2
            );
        }
        tracing::info!(
            "loaded {} ({}) in {:.2}s",
            resolved.path.display(),
            model.info.architecture,
            started.elapsed().as_secs_f64()
        );
        Ok(model)
    }
}

impl ModelOpts {
    /// The adapter name forward passes should use, if `--adapter` was given.
    pub fn active_adapter(&self) -> Option<String> {
        self.adapter.as_ref().map(|_| CLI_ADAPTER.to_string())
    }
}

/// Thread counts must be set before the first parallel section creates the pools.
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads.filter(|&n| n > 0) {
        // Safe in edition 2021; called before any other thread is spawned.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    }
}

/// Reads all of stdin as UTF-8, with a clear error otherwise.
pub fn read_stdin() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    String::from_utf8(bytes).context("standard input is not valid UTF-8")
}

/// A progress bar in vigil's style: `msg [=====>   ] pos/len (elapsed)`.
pub fn bar(len: u64, msg: &str) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_message(msg.to_string());
    b
}

/// Writes a generated piece of text to stdout as it arrives (a streaming callback).
pub fn print_piece(piece: &str) {
    use std::io::Write;
    let mut lock = std::io::stdout().lock();
    // A closed stdout (a pipe to `head`) ends the output, not the generation.
    let _ = lock.write_all(piece.as_bytes());
    let _ = lock.flush();
}
