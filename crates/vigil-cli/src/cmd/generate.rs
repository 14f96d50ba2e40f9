//! `vigil generate`: one completion, streamed to stdout.

use super::common::{print_piece, read_stdin, ModelOpts};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use vigil_model::{GenerateRequest, Generator, SamplingParams};
use vigil_tokenizer::ChatMessage;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelOpts,
    /// The prompt (else --prompt-file, else standard input).
    pub prompt: Option<String>,
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// Use the prompt as it is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// System message (chat template only).
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingOpts,
    /// Print `prefill: N tok, X tok/s; decode: M tok, Y tok/s` on stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Print one JSON object (text, token ids, stop reason, stats) instead of streaming.
    #[arg(long)]
    pub json: bool,
    /// Run the same generation this many times in one process, each from an empty cache
    /// (with --stats, a line after each). For benchmarks, as llama-bench does: the first
    /// run also pays for touching the weights' pages and starting the thread pools.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
}

#[derive(Args, Debug, Clone)]
pub struct SamplingOpts {
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// End-of-sequence is forbidden before this many tokens.
    #[arg(long, default_value_t = 0)]
    pub min_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop before this text (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Keep generating through end-of-sequence tokens (benchmarks).
    #[arg(long)]
    pub ignore_eos: bool,
}

impl SamplingOpts {
    pub fn request(&self, prompt_ids: Vec<u32>) -> GenerateRequest {
        GenerateRequest {
            prompt_ids,
            max_tokens: self.max_tokens,
            min_tokens: self.min_tokens,
            stop_strings: self.stop.clone(),
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repetition_penalty: self.repeat_penalty,
                repeat_last_n: self.repeat_last_n,
                seed: self.seed,
            },
            ignore_eos: self.ignore_eos,
            adapter: None,
            hidden_layers: Vec::new(),
            prefix: None,
        }
    }
}

pub fn run(args: GenerateArgs) -> anyhow::Result<std::process::ExitCode> {
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read prompt file {}", f.display()))?,
        (None, None) => read_stdin()?,
    };
    let model = args.model.load()?;
    let tok = &model.tokenizer;
    let prompt_ids = if args.raw {
        tok.encode(&prompt, true, false)?
    } else {
        let template = tok.chat_template().with_context(|| {
            format!(
                "{} has no chat template; use --raw to send the prompt as it is",
                model.path.display()
            )
        })?;
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(ChatMessage::system(s.clone()));
        }
        messages.push(ChatMessage::user(prompt));
        let text = template.render(&messages, true)?;
        // The rendered template carries its own BOS where the model wants one.
        tok.encode(&text, false, true)?
    };
    let mut req = args.sampling.request(prompt_ids);
    req.adapter = args.model.active_adapter();
    let generator = Generator::new(&model);
    for _ in 0..args.repeat {
        let out = if args.json {
            let g = generator.generate(&req, &mut |_| {})?;
            println!("{}", serde_json::to_string(&g)?);
            g
        } else {
            let g = generator.generate(&req, &mut |piece| print_piece(piece))?;
            println!();
            g
        };
        if args.stats {
            eprintln!("{}", out.stats.summary_line());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
