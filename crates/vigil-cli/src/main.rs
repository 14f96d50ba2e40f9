//! `vigil`: the command-line front end. Each subcommand lives in `cmd/` and is a thin layer
//! over a library crate; this file only parses arguments and sets up logging.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Local language models as private security analysts"
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Curate the security dataset (SQLite store, import/export, split, check, generate).
    Data(cmd::data::DataArgs),
    /// Fetch, list and inspect models (`vigil model pull` fetches the default model).
    Model(cmd::model::ModelArgs),
    /// Generate text from a prompt (streamed; --stats prints speed).
    Generate(cmd::generate::GenerateArgs),
    /// Chat with a model in the terminal.
    Chat(cmd::chat::ChatArgs),
    /// Print teacher-forced next-token logits for text on stdin, as JSON.
    Score(cmd::score::ScoreArgs),
    /// Export models for llama.cpp / Ollama: GGUF types with llama.cpp's mixtures, Modelfile.
    Export(cmd::export::ExportArgs),
    /// Fine-tune: LoRA / QLoRA supervised fine-tuning on the dataset store.
    Train(cmd::train::TrainArgs),
    /// Analyse one file with a bundle's dual head: verdict, probability, type, reason, fix.
    Analyze(cmd::analyst::AnalyzeArgs),
    /// Evaluate a bundle: the seed's six variants on the test split, metrics, report, charts.
    Eval(cmd::eval::EvalArgs),
    /// Scan a repository: find API endpoints (tree-sitter), analyse each with the dual head,
    /// report findings as text, JSON, SARIF or Markdown.
    Scan(cmd::scan::ScanArgs),
    /// Judge another scanner's findings (ZAP, Burp, Nuclei, SARIF, raw HTTP) true or false
    /// positive and write them back annotated.
    Triage(cmd::triage::TriageArgs),
    /// List and inspect bundles (base model + adapters + heads + thresholds + eval).
    Bundle(cmd::analyst::BundleArgs),
    /// From nothing to findings on the default model: data, LoRA, heads, eval, bundle, analysis.
    Quickstart(cmd::analyst::QuickstartArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    vigil_model::settle_runtime();
    let result = match cli.command {
        Command::Data(args) => cmd::data::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Chat(args) => cmd::chat::run(args),
        Command::Score(args) => cmd::score::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Analyze(args) => cmd::analyst::analyze_cmd(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Triage(args) => cmd::triage::run(args),
        Command::Bundle(args) => cmd::analyst::bundle_cmd(args),
        Command::Quickstart(args) => cmd::analyst::quickstart_cmd(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
