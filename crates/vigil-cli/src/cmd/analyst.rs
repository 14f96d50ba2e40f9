//! The dual-head commands: `vigil train head`, `vigil analyze`, `vigil bundle` and
//! `vigil quickstart` — thin layers over `vigil-analyst`.

use super::common::bar;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use vigil_analyst::bundle::{
    adapter_fingerprint, model_fingerprint, prompt_hashes, AdapterRef, BaseModelRef, EvalSummary,
    HeadRef, DEFAULT_BUNDLE, FORMAT,
};
use vigil_analyst::heads::{confusion_json, train_heads, HeadJob, TrainedHeads};
use vigil_analyst::{
    Analyst, AnalyzeOptions, Bundle, BundleManifest, Explain, PromptForm, Subject,
};
use vigil_data::{Filter, Split, Store};
use vigil_head::{Activation, FeatureCache, FeatureSpec, HeadShape, HeadTrainConfig, Pooling};

pub(crate) fn feature_cache() -> anyhow::Result<FeatureCache> {
    Ok(FeatureCache::new(
        vigil_hub::default_home()?.join("features"),
    ))
}

fn parse_form(s: &str) -> anyhow::Result<PromptForm> {
    match s {
        "engineered" | "pe" => Ok(PromptForm::Engineered),
        "plain" => Ok(PromptForm::Plain),
        o => bail!("unknown prompt form `{o}` (engineered | plain)"),
    }
}

// ---------------------------------------------------------------- vigil train head

#[derive(Args, Debug)]
pub struct TrainHeadArgs {
    /// Dataset store (SQLite) with train and valid splits.
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
    pub db: PathBuf,
    /// Base model (known name, GGUF file or Hugging Face directory).
    #[arg(
        long,
        short = 'm',
        env = "VIGIL_MODEL",
        default_value = "smollm2-135m-instruct"
    )]
    pub model: String,
    /// LoRA adapter (PEFT directory) active while features are computed; the same adapter
    /// must generate the analysis at inference (one prefill feeds both).
    #[arg(long, value_name = "DIR")]
    pub adapter: Option<PathBuf>,
    /// Task: code or http.
    #[arg(long, default_value = "code")]
    pub task: String,
    /// Hidden-state layer (Hugging Face numbering; negative counts from the end, -1 =
    /// final output). Repeat to average several.
    #[arg(long, default_value = "-1", allow_hyphen_values = true)]
    pub layer: Vec<i64>,
    /// Pooling over the prompt's tokens: mean or last.
    #[arg(long, default_value = "mean")]
    pub pooling: String,
    /// Prompt form: engineered (with the system prompt) or plain.
    #[arg(long, default_value = "engineered")]
    pub form: String,
    /// Hidden widths of the MLP (comma-separated; empty = logistic regression).
    #[arg(long, default_value = "256", value_delimiter = ',')]
    pub hidden: Vec<usize>,
    #[arg(long, default_value = "relu")]
    pub activation: String,
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f32,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    #[arg(long, default_value_t = 20)]
    pub patience: usize,
    /// Do not weight classes by inverse frequency.
    #[arg(long)]
    pub no_class_weights: bool,
    /// Precision the decision threshold is calibrated for on the valid split.
    #[arg(long, default_value_t = 0.95)]
    pub target_precision: f32,
    /// At most this many samples per split.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory: `<out>/verdict` and `<out>/type` head directories.
    #[arg(long, default_value = "heads")]
    pub out: PathBuf,
}

pub fn train_head_cmd(a: TrainHeadArgs) -> anyhow::Result<ExitCode> {
    let resolved = super::model::resolve_model(&a.model, false)?;
    let mut analyst = open_base(&resolved.path)?;
    let adapter_id = match &a.adapter {
        Some(dir) => {
            analyst.load_adapter(&a.task, "head-features", dir)?;
            Some(adapter_fingerprint(dir)?)
        }
        None => None,
    };
    let n_layers = analyst.model.config().num_layers;
    let layers = a
        .layer
        .iter()
        .map(|&l| FeatureSpec::resolve_layer(l, n_layers))
        .collect::<Result<Vec<_>, _>>()?;
    let job = HeadJob {
        task: a.task.clone(),
        form: parse_form(&a.form)?,
        spec: FeatureSpec {
            layers,
            pooling: a.pooling.parse::<Pooling>().map_err(anyhow::Error::msg)?,
            adapter: a.adapter.as_ref().map(|_| "head-features".to_string()),
        },
        adapter_id,
        train: HeadTrainConfig {
            shape: HeadShape {
                hidden: a.hidden.clone(),
                activation: a
                    .activation
                    .parse::<Activation>()
                    .map_err(anyhow::Error::msg)?,
                dropout: a.dropout,
            },
            lr: a.lr,
            epochs: a.epochs,
            patience: a.patience,
            balanced: !a.no_class_weights,
            seed: a.seed,
            ..Default::default()
        },
        target_precision: a.target_precision,
        limit: a.limit,
        name: a.task.clone(),
    };
    let store = Store::open_existing(&a.db)
        .with_context(|| format!("cannot open dataset store {}", a.db.display()))?;
    let heads = run_head_job(&analyst, &store, &job)?;
    heads.verdict.save(&a.out.join("verdict"))?;
    if let Some(t) = &heads.vuln_type {
        t.save(&a.out.join("type"))?;
    }
    print_heads(&heads);
    println!("{}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

fn open_base(path: &Path) -> anyhow::Result<Analyst> {
    let model = vigil_model::Model::load(path)
        .with_context(|| format!("cannot load model {}", path.display()))?;
    Ok(Analyst::base(model, model_fingerprint(path)?)?)
}

fn run_head_job(analyst: &Analyst, store: &Store, job: &HeadJob) -> anyhow::Result<TrainedHeads> {
    let cache = feature_cache()?;
    let pb = bar(0, "features");
    let heads = train_heads(analyst, store, job, &cache, &mut |stage, done, total| {
        pb.set_message(stage.to_string());
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    Ok(heads)
}

fn print_heads(h: &TrainedHeads) {
    let v = &h.verdict.meta;
    eprintln!(
        "features: {:.1}s ({} computed, the rest cached)",
        h.feature_seconds, h.computed_features
    );
    eprintln!(
        "verdict head: best epoch {} of {} (valid loss {:.4}); threshold {:.3} (target precision {:.2}: {}); valid {}",
        v.training.best_epoch,
        v.training.epochs_run,
        v.training.best_valid_loss,
        v.thresholds.chosen,
        v.thresholds.target_precision,
        if v.thresholds.at_target.is_some() { "reached" } else { "not reached, best-F1 threshold used" },
        v.validation
    );
    if let Some(t) = &h.vuln_type {
        eprintln!(
            "type head: {} classes, valid {}",
            t.meta.classes.len(),
            t.meta.validation
        );
    }
}

// ---------------------------------------------------------------- vigil analyze

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// The file to analyse (`-` = stdin): source code, or an HTTP exchange (request, a
    /// line `---`, response).
    pub file: PathBuf,
    /// What the file holds: code or http.
    #[arg(long, default_value = "code")]
    pub kind: String,
    /// Bundle name or directory.
    #[arg(long, short = 'b', env = "VIGIL_BUNDLE", default_value = DEFAULT_BUNDLE)]
    pub bundle: String,
    /// Source language (default: from the file extension).
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub framework: Option<String>,
    /// Endpoint, e.g. "GET /users/{id}".
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Minimum answer tokens (end-of-sequence is forbidden before).
    #[arg(long, default_value_t = 0)]
    pub min_tokens: usize,
    /// Maximum answer tokens.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Decide by generation with self-consistency over N samples instead of the head.
    #[arg(long)]
    pub samples: Option<usize>,
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Write the analysis for clean verdicts too.
    #[arg(long)]
    pub explain_clean: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, short = 't', env = "VIGIL_THREADS")]
    pub threads: Option<usize>,
}

pub fn open_bundle(spec: &str) -> anyhow::Result<Analyst> {
    let dir = Bundle::locate(spec)?;
    let bundle = Bundle::load(&dir)?;
    let resolved = super::model::resolve_model(&bundle.manifest.base_model.spec, false)?;
    Ok(Analyst::open(bundle, &resolved.path)?)
}

pub(crate) fn language_of(path: &Path) -> Option<String> {
    let ext = path.extension()?.to_str()?;
    Some(
        match ext {
            "py" => "python",
            "js" | "mjs" | "cjs" => "javascript",
            "ts" => "typescript",
            "java" => "java",
            "php" => "php",
            "go" => "go",
            "rb" => "ruby",
            "cs" => "csharp",
            _ => return None,
        }
        .to_string(),
    )
}

/// Reads a text input with a size limit and a clear error naming the file.
fn read_input(path: &Path) -> anyhow::Result<String> {
    const LIMIT: u64 = 1 << 20;
    let bytes = if path == Path::new("-") {
        use std::io::Read;
        let mut b = Vec::new();
        std::io::stdin().take(LIMIT + 1).read_to_end(&mut b)?;
        b
    } else {
        let len = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if len > LIMIT {
            bail!(
                "{}: {len} bytes is over the 1 MiB limit for one analysis; pass one endpoint",
                path.display()
            );
        }
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    if bytes.len() as u64 > LIMIT {
        bail!("{}: over the 1 MiB limit for one analysis", path.display());
    }
    if bytes.contains(&0) {
        bail!(
            "{}: a binary file (NUL bytes), not source code or HTTP text",
            path.display()
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

pub fn analyze_cmd(a: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    super::common::set_threads(a.threads);
    let text = read_input(&a.file)?;
    let subject = match a.kind.as_str() {
        "code" => Subject::Code {
            language: a.language.clone().or_else(|| language_of(&a.file)),
            framework: a.framework.clone(),
            endpoint: a.endpoint.clone(),
            code: text,
        },
        "http" => {
            let (req, resp) = text.split_once("\n---\n").with_context(|| {
                format!(
                    "{}: an HTTP exchange needs the request, a line `---`, then the response",
                    a.file.display()
                )
            })?;
            Subject::Http {
                request: req.to_string(),
                response: resp.to_string(),
                finding: None,
            }
        }
        o => bail!("--kind {o}: expected code or http"),
    };
    let analyst = open_bundle(&a.bundle)?;
    let opts = AnalyzeOptions {
        explain: if a.explain_clean {
            Explain::Always
        } else {
            Explain::Vulnerable
        },
        min_tokens: a.min_tokens,
        max_tokens: a.max_tokens,
        samples: a.samples.unwrap_or(1),
        temperature: a.temperature,
        use_head: a.samples.is_none(),
        ..Default::default()
    };
    let r = analyst.analyze(&subject, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_analysis(&r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_analysis(r: &vigil_analyst::Analysis) {
    if r.vulnerable {
        println!(
            "VULNERABLE  {}  {}  {}  severity {}  (confidence {:.2}, by {})",
            r.vuln_type.as_deref().unwrap_or("?"),
            r.cwe.map(|c| format!("CWE-{c}")).unwrap_or_default(),
            r.owasp.as_deref().unwrap_or(""),
            r.severity.map(|s| s.to_string()).unwrap_or("?".into()),
            r.confidence,
            r.decided_by
        );
    } else {
        println!(
            "not vulnerable  (confidence {:.2}, by {})",
            r.confidence, r.decided_by
        );
    }
    if !r.reason.is_empty() {
        println!("\n{}", r.reason);
    }
    if let Some(c) = &r.fixed_code {
        println!("\nFixed code:\n{c}");
    }
}

// ---------------------------------------------------------------- vigil bundle

#[derive(Args, Debug)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCmd,
}

#[derive(Subcommand, Debug)]
pub enum BundleCmd {
    /// List the bundles in vigil's home.
    List,
    /// Show a bundle's manifest.
    Info {
        #[arg(default_value = DEFAULT_BUNDLE)]
        bundle: String,
    },
}

pub fn bundle_cmd(a: BundleArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        BundleCmd::List => {
            let root = Bundle::root()?;
            let all = Bundle::list(&root);
            if all.is_empty() {
                println!(
                    "no bundles under {}; `vigil quickstart` makes the default one",
                    root.display()
                );
            }
            for b in all {
                match b {
                    Ok(b) => {
                        let m = &b.manifest;
                        println!(
                            "{:<16} base {:<24} adapters {:<2} heads {:<2} {}",
                            m.name,
                            m.base_model.spec,
                            m.adapters.len(),
                            m.heads.len(),
                            m.description
                        );
                    }
                    Err(e) => println!("(unreadable) {e}"),
                }
            }
        }
        BundleCmd::Info { bundle } => {
            let b = Bundle::load(&Bundle::locate(&bundle)?)?;
            println!("{}", b.dir.display());
            println!("{}", serde_json::to_string_pretty(&b.manifest)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- vigil quickstart

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Working directory for the dataset, training runs and reports.
    #[arg(long, default_value = "vigil-quickstart")]
    pub workdir: PathBuf,
    /// Samples to generate.
    #[arg(long, default_value_t = 400)]
    pub samples: usize,
    /// LoRA training steps.
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// At most this many samples per split for the heads (features cost one prefill each).
    #[arg(long, default_value_t = 150)]
    pub head_samples: usize,
    /// Name of the bundle to write.
    #[arg(long, default_value = DEFAULT_BUNDLE)]
    pub bundle: String,
    /// Directory to scan at the end (default: examples/service).
    #[arg(long)]
    pub scan: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// The quickstart trains one adapter for both tasks (the data mixes them) and heads per task.
const QUICKSTART_TASKS: [&str; 2] = ["code", "http"];
const QUICKSTART_ADAPTER: &str = "analyst";

pub fn quickstart_cmd(a: QuickstartArgs) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let mut times: Vec<(&str, f64)> = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |name: &'static str, times: &mut Vec<(&str, f64)>| {
            times.push((name, last.elapsed().as_secs_f64()));
            last = Instant::now();
        }
    };
    std::fs::create_dir_all(&a.workdir)
        .with_context(|| format!("cannot create {}", a.workdir.display()))?;

    eprintln!("[1/8] model: pulling the default model (cached after the first run)");
    let spec = vigil_hub::registry::default_model().name;
    let resolved = super::model::resolve_model(spec, false)?;
    let model_sha = model_fingerprint(&resolved.path)?;
    lap("model", &mut times);

    eprintln!(
        "[2/8] data: generating {} synthetic samples, splitting by group, checking leakage",
        a.samples
    );
    let db = a.workdir.join("quickstart.db");
    if db.exists() {
        std::fs::remove_file(&db).with_context(|| format!("cannot replace {}", db.display()))?;
    }
    let leakage = build_dataset(&db, a.samples, a.seed, &a.workdir)?;
    lap("data", &mut times);

    eprintln!(
        "[3/8] train: a short LoRA on the code and HTTP tasks ({} steps)",
        a.steps
    );
    let run_dir = a.workdir.join("sft");
    // The quickstart owns its workdir: a rerun starts its training over.
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("cannot replace {}", run_dir.display()))?;
    }
    let adapter_dir = train_lora(&resolved.path, &db, &run_dir, a.steps, a.seed)?;
    lap("lora", &mut times);

    eprintln!("[4/8] heads: hidden-state features with the adapter, MLP verdict and type heads");
    let mut analyst = open_base(&resolved.path)?;
    let store = Store::open_existing(&db)?;
    let n_layers = analyst.model.config().num_layers;
    let adapter_id = adapter_fingerprint(&adapter_dir)?;
    let mut trained = Vec::new();
    for task in QUICKSTART_TASKS {
        analyst.load_adapter(task, QUICKSTART_ADAPTER, &adapter_dir)?;
        let job = HeadJob {
            task: task.into(),
            form: PromptForm::Engineered,
            spec: FeatureSpec {
                layers: vec![n_layers],
                pooling: Pooling::Mean,
                adapter: Some(QUICKSTART_ADAPTER.into()),
            },
            adapter_id: Some(adapter_id.clone()),
            train: HeadTrainConfig {
                seed: a.seed,
                ..Default::default()
            },
            target_precision: 0.95,
            limit: Some(a.head_samples),
            name: task.into(),
        };
        eprintln!("      {task} task:");
        // The code task is the quickstart's point; a dataset too small for HTTP heads
        // (`--samples` low) leaves the bundle without them rather than failing.
        let heads = match run_head_job(&analyst, &store, &job) {
            Ok(h) => h,
            Err(e) if task != "code" => {
                eprintln!("      skipping the {task} heads: {e:#}");
                continue;
            }
            Err(e) => return Err(e),
        };
        print_heads(&heads);
        trained.push((task, job, heads));
    }
    lap("heads", &mut times);

    eprintln!("[5/8] eval: the verdict heads on the held-out test split");
    let mut metrics = std::collections::BTreeMap::new();
    let mut test_samples = 0;
    for (task, job, heads) in &trained {
        let test = store.samples(&Filter {
            split: Some(Split::Test),
            kind: Some(vigil_analyst::heads::kind_of_task(task)?),
            limit: None,
        })?;
        let prompts: Vec<_> = test
            .iter()
            .filter_map(Subject::of_sample)
            .map(|s| s.messages(PromptForm::Engineered))
            .collect();
        let pb = bar(prompts.len() as u64, "test features");
        let (tx, _) = analyst.features(
            &prompts,
            &job.spec,
            job.adapter_id.as_deref(),
            &feature_cache()?,
            &mut |d| pb.set_position(d as u64),
        )?;
        pb.finish_and_clear();
        let scores: Vec<f32> = heads
            .verdict
            .head
            .probabilities(&tx)?
            .iter()
            .map(|p| p[1])
            .collect();
        let labels: Vec<bool> = test.iter().map(|s| s.is_vulnerable).collect();
        let m = confusion_json(&scores, &labels, heads.verdict.meta.thresholds.chosen);
        eprintln!(
            "      {task}: test split ({} samples, synthetic): {m}",
            test.len()
        );
        test_samples += test.len();
        let mut row = std::collections::BTreeMap::new();
        for k in ["precision", "recall", "accuracy", "fpr"] {
            if let Some(v) = m[k].as_f64() {
                row.insert(k.to_string(), v);
            }
        }
        metrics.insert(format!("FT-PE-CH ({task})"), row);
    }
    lap("eval", &mut times);

    eprintln!("[6/8] bundle: saving `{}`", a.bundle);
    let bundle_dir = Bundle::root()?.join(&a.bundle);
    if bundle_dir.exists() {
        std::fs::remove_dir_all(&bundle_dir)
            .with_context(|| format!("cannot replace {}", bundle_dir.display()))?;
    }
    let adapter_rel = format!("adapters/{QUICKSTART_ADAPTER}");
    copy_dir(&adapter_dir, &bundle_dir.join(&adapter_rel))?;
    let mut head_refs = Vec::new();
    for (task, _, heads) in &trained {
        let mut save = |head: &vigil_head::HeadFile, target: &str, suffix: &str| {
            let name = format!("{task}-{suffix}");
            head.save(&bundle_dir.join("heads").join(&name))?;
            head_refs.push(HeadRef {
                name: name.clone(),
                task: task.to_string(),
                target: target.into(),
                path: format!("heads/{name}"),
            });
            anyhow::Ok(())
        };
        save(&heads.verdict, "verdict", "verdict")?;
        if let Some(t) = &heads.vuln_type {
            save(t, "vuln_type", "type")?;
        }
    }
    let bundle = Bundle {
        dir: bundle_dir.clone(),
        manifest: BundleManifest {
            format: FORMAT,
            name: a.bundle.clone(),
            description: "quickstart: short LoRA + MLP heads on synthetic data".into(),
            vigil_version: env!("CARGO_PKG_VERSION").into(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            base_model: BaseModelRef {
                spec: spec.to_string(),
                sha256: model_sha,
            },
            adapters: QUICKSTART_TASKS
                .iter()
                .map(|task| AdapterRef {
                    name: QUICKSTART_ADAPTER.into(),
                    task: task.to_string(),
                    path: adapter_rel.clone(),
                })
                .collect(),
            heads: head_refs,
            prompts: prompt_hashes(),
            max_analysis_tokens: 256,
            eval: Some(EvalSummary {
                report: None,
                split: "test (synthetic, group-hash split)".into(),
                samples: test_samples,
                leakage,
                metrics,
            }),
        },
    };
    bundle.save()?;
    lap("bundle", &mut times);

    eprintln!(
        "[7/8] report: `vigil eval` (FT-PE-SC, FT-PE-CH, dual head with analyses, k-fold) on the code test split"
    );
    let eval_dir = a.workdir.join("eval");
    let report = super::eval::evaluate(&super::eval::EvalArgs {
        db: db.clone(),
        bundle: bundle_dir.to_string_lossy().into_owned(),
        task: "code".into(),
        limit: None,
        variants: vec!["FT-PE-SC".into(), "FT-PE-CH".into()],
        out: eval_dir.clone(),
        generate: 8,
        budget: "24:160".into(),
        temperatures: vec![0.5, 1.0, 2.0],
        votes: vec![1, 3, 5],
        folds: 5,
        head_samples: a.head_samples,
        seed: a.seed,
        record_in_bundle: true,
    })?;
    super::eval::print_table(&report);
    eprintln!("      report: {}", eval_dir.join("report.md").display());
    lap("report", &mut times);

    eprintln!("[8/8] scan: the bundle on the example service");
    let analyst = open_bundle(&bundle_dir.to_string_lossy())?;
    let target = a
        .scan
        .clone()
        .unwrap_or_else(|| PathBuf::from("examples/service"));
    // `vigil scan`'s default options and its cache, so that the user's first
    // `vigil scan examples/service` afterwards is answered from the cache.
    let opts = AnalyzeOptions::default();
    let cache = vigil_analyst::AnalysisCache::new(vigil_analyst::AnalysisCache::default_dir()?);
    let (found, analysed) = if target.exists() {
        let (report, failed) = super::scan::scan(
            &analyst,
            &target,
            &vigil_scan::DiscoveryOptions::default(),
            &opts,
            Some(&cache),
            1,
        )?;
        use vigil_findings::ReportWriter;
        let text =
            vigil_findings::TextWriter::new(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .render(&report)?;
        print!("{text}");
        let sarif = a.workdir.join("scan.sarif");
        std::fs::write(
            &sarif,
            vigil_findings::SarifWriter::default().render(&report)?,
        )
        .with_context(|| format!("cannot write {}", sarif.display()))?;
        eprintln!("      SARIF: {}", sarif.display());
        if failed > 0 {
            eprintln!("      {failed} units could not be analysed");
        }
        (report.findings.len(), report.units_analyzed)
    } else {
        eprintln!(
            "      ({} does not exist; nothing scanned)",
            target.display()
        );
        (0, 0)
    };
    lap("scan", &mut times);

    eprintln!("\n== quickstart summary ==");
    for (k, v) in &times {
        eprintln!("{k:>10}: {v:>7.1}s");
    }
    eprintln!("{:>10}: {:>7.1}s", "total", t0.elapsed().as_secs_f64());
    eprintln!(
        "bundle: {} (vigil bundle info {})",
        bundle_dir.display(),
        a.bundle
    );
    eprintln!("scanned {analysed} units, {found} findings");
    Ok(ExitCode::SUCCESS)
}

fn build_dataset(db: &Path, n: usize, seed: u64, workdir: &Path) -> anyhow::Result<String> {
    use vigil_data::synth::{self, GenOptions};
    let opts = GenOptions {
        seed,
        num: n,
        vulns: vec![],
        nofp: false,
        http_share: 0.25,
    };
    let samples = synth::generate(&opts, |_| {}).map_err(anyhow::Error::msg)?;
    let mut store = Store::open(db)?;
    store.insert_all(&samples, "generate", "vigil quickstart", "{}", |_| {})?;
    let f = vigil_data::split::Fractions::new(0.7, 0.15, 0.15)?;
    vigil_data::split::assign_with(&mut store, &f, "vigil", Some(0.8))?;
    let r = vigil_data::check::check(
        &store,
        &Default::default(),
        &vigil_data::tokens::ApproxTokenCounter,
        |_, _, _| {},
    )?;
    let report = vigil_data::report::write_report(&r, &workdir.join("data-check"), 0.01)?;
    let leak = format!(
        "{:.2}% of samples have a near-duplicate in another split ({})",
        r.leakage_rate() * 100.0,
        report.display()
    );
    eprintln!("      {} samples; leakage: {leak}", samples.len());
    Ok(leak)
}

fn train_lora(
    model: &Path,
    db: &Path,
    out: &Path,
    steps: usize,
    seed: u64,
) -> anyhow::Result<PathBuf> {
    use vigil_train::sft::{run_sft, SftConfig, SftRun};
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let mut cfg = SftConfig::default();
    cfg.train.output_dir = out.to_path_buf();
    cfg.train.max_steps = Some(steps);
    cfg.train.batch_size = 2;
    cfg.train.learning_rate = 1e-3;
    cfg.train.eval_every = steps.max(1);
    cfg.train.seed = seed;
    cfg.data.max_seq_len = 384;
    cfg.samples.max_eval_rows = Some(8);
    let mut m = vigil_model::Model::load(model)?;
    let store = Store::open_existing(db)?;
    let s = run_sft(
        &mut m,
        &store,
        &cfg,
        SftRun {
            resume: None,
            progress: true,
            stop: None,
            base_model: Some(vigil_hub::registry::default_model().name.to_string()),
        },
    )?;
    eprintln!(
        "      eval loss {:.3} → {:.3} in {:.0}s ({:.0} tok/s)",
        s.base_eval_loss, s.tuned_eval_loss, s.train_seconds, s.train_tokens_per_second
    );
    Ok(s.adapter_dir)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))
                .with_context(|| format!("cannot copy {}", e.path().display()))?;
        }
    }
    Ok(())
}
