//! `vigil train sft`: LoRA / QLoRA fine-tuning on the dataset store (vigil-train).

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vigil_train::sft::{run_sft, BaseStorage, SftConfig, SftRun};
use vigil_train::Resume;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(subcommand)]
    command: TrainCommand,
}

#[derive(Subcommand, Debug)]
enum TrainCommand {
    /// Supervised fine-tuning of a LoRA adapter on the store's train split, evaluated on its
    /// validation split; writes a PEFT adapter, metrics.jsonl, loss charts and summary.json.
    Sft(Box<SftArgs>),
    /// Time LoRA training steps on random tokens (the vigil side of tools/bench_train.py).
    Bench(BenchArgs),
    /// Train the dual head's MLP classifiers on pooled hidden states (cached features).
    Head(Box<super::analyst::TrainHeadArgs>),
}

#[derive(Args, Debug)]
struct SftArgs {
    /// Dataset store (see `vigil data`).
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
    db: PathBuf,
    /// Model: a known name (pulled on first use), a GGUF file, a Hugging Face directory, or
    /// hf:owner/repo[:file].
    #[arg(
        long,
        short = 'm',
        env = "VIGIL_MODEL",
        default_value = "smollm2-135m-instruct"
    )]
    model: String,
    /// Recipe as TOML with tables [lora], [base], [data], [samples], [train]; flags override it.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Output directory (checkpoints, adapter/, metrics, charts, summary.json).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Continue from the latest checkpoint in the output directory, or from the one given.
    #[arg(long, num_args = 0..=1, default_missing_value = "latest", value_name = "CHECKPOINT")]
    resume: Option<String>,
    /// Base storage: f32 (LoRA), keep (QLoRA on the file's own 4-bit blocks), q4_0, q4_k,
    /// q5_0, q8_0 (QLoRA on a base quantised on load).
    #[arg(long)]
    base: Option<String>,
    /// QLoRA: keep a quantised GGUF as it is, quantise a dense base to q4_k.
    #[arg(long, conflicts_with = "base")]
    qlora: bool,
    #[arg(long)]
    rank: Option<usize>,
    #[arg(long)]
    alpha: Option<f64>,
    #[arg(long)]
    dropout: Option<f32>,
    /// all-linear, a comma list of module names (q_proj,v_proj), or re:<regex>.
    #[arg(long)]
    targets: Option<String>,
    #[arg(long)]
    rslora: bool,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    accum: Option<usize>,
    #[arg(long)]
    max_seq_len: Option<usize>,
    #[arg(long)]
    packing: bool,
    #[arg(long)]
    eval_every: Option<usize>,
    #[arg(long)]
    save_every: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Use at most this many training rows (drawn under the seed).
    #[arg(long)]
    max_train_rows: Option<usize>,
    /// Use at most this many validation rows.
    #[arg(long)]
    max_eval_rows: Option<usize>,
    /// CPU threads (default: all cores).
    #[arg(long, short = 't', env = "VIGIL_THREADS")]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TrainCommand::Sft(a) => sft(*a),
        TrainCommand::Bench(a) => bench(a),
        TrainCommand::Head(a) => super::analyst::train_head_cmd(*a),
    }
}

fn sft(a: SftArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = match &a.config {
        Some(path) => SftConfig::from_file(path)?,
        None => SftConfig::default(),
    };
    apply_flags(&mut cfg, &a)?;
    cfg.validate()?;
    // Training runs elementwise ops on many small tensors; candle's own pool spin-waits
    // between them, which measured 4× slower than one thread on a busy 2-core machine.
    // GEMMs use rayon and still get every thread.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if let Some(n) = cfg.train.threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let resolved = super::model::resolve_model(&a.model, false)?;
    let mut model = vigil_model::Model::load(&resolved.path)
        .with_context(|| format!("cannot load model '{}'", a.model))?;
    if a.qlora {
        let quantised = model.info.tensor_types.keys().any(|t| t.starts_with('Q'));
        cfg.base.storage = if quantised {
            BaseStorage::Keep
        } else {
            BaseStorage::Q4K
        };
    }
    let store = vigil_data::Store::open_existing(&a.db)
        .with_context(|| format!("cannot open dataset store {}", a.db.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C kills the process the usual way.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "\nstopping after this step (a checkpoint will be saved); Ctrl-C again to abort"
            );
        });
    }
    let run = SftRun {
        resume: a.resume.as_deref().map(|r| match r {
            "latest" => Resume::Latest,
            dir => Resume::From(PathBuf::from(dir)),
        }),
        progress: !a.quiet,
        stop: Some(stop),
        base_model: Some(model.info.name.clone().unwrap_or_else(|| a.model.clone())),
    };
    eprintln!(
        "training a LoRA adapter (r {}, alpha {}, targets {}) on {} with a {:?} base",
        cfg.lora.r, cfg.lora.alpha, cfg.lora.target_modules, a.model, cfg.base.storage
    );
    let s = run_sft(&mut model, &store, &cfg, run)?;
    eprintln!("train: {}", s.train_data);
    eprintln!("eval:  {}", s.eval_data);
    eprintln!(
        "eval loss: base {:.4} → tuned {:.4} (step {}); {} steps ({}), {:.0} s, {:.1} tokens/s, peak RSS {}",
        s.base_eval_loss,
        s.tuned_eval_loss,
        s.adapter_step,
        s.steps,
        s.stop,
        s.train_seconds,
        s.train_tokens_per_second,
        s.peak_rss_mb
            .map_or("?".to_string(), |m| format!("{m:.0} MiB"))
    );
    eprintln!(
        "metrics: {}, charts: {}",
        s.output_dir.join("metrics.jsonl").display(),
        s.output_dir.join("loss.png").display()
    );
    println!("{}", s.adapter_dir.display());
    Ok(ExitCode::SUCCESS)
}

fn apply_flags(cfg: &mut SftConfig, a: &SftArgs) -> anyhow::Result<()> {
    if let Some(out) = &a.out {
        cfg.train.output_dir = out.clone();
    }
    if let Some(b) = &a.base {
        cfg.base.storage = BaseStorage::parse(b)
            .with_context(|| format!("--base {b}: expected f32, keep, q4_0, q4_k, q5_0 or q8_0"))?;
    }
    let l = &mut cfg.lora;
    if let Some(v) = a.rank {
        l.r = v;
    }
    if let Some(v) = a.alpha {
        l.alpha = v;
    }
    if let Some(v) = a.dropout {
        l.dropout = v;
    }
    if let Some(v) = &a.targets {
        l.target_modules = v.clone();
    }
    l.use_rslora |= a.rslora;
    let t = &mut cfg.train;
    if let Some(v) = a.lr {
        t.learning_rate = v;
    }
    if let Some(v) = a.epochs {
        t.epochs = v;
    }
    if a.max_steps.is_some() {
        t.max_steps = a.max_steps;
    }
    if let Some(v) = a.batch {
        t.batch_size = v;
    }
    if let Some(v) = a.accum {
        t.grad_accum_steps = v;
    }
    if let Some(v) = a.eval_every {
        t.eval_every = v;
    }
    if let Some(v) = a.save_every {
        t.save_every = v;
    }
    if let Some(v) = a.seed {
        t.seed = v;
    }
    if a.threads.is_some() {
        t.threads = a.threads;
    }
    if let Some(v) = a.max_seq_len {
        cfg.data.max_seq_len = v;
    }
    cfg.data.packing |= a.packing;
    if a.max_train_rows.is_some() {
        cfg.samples.max_train_rows = a.max_train_rows;
    }
    if a.max_eval_rows.is_some() {
        cfg.samples.max_eval_rows = a.max_eval_rows;
    }
    Ok(())
}

/// `vigil train bench`: the training-speed probe that `tools/bench_train.py --vigil` runs
/// beside PyTorch + PEFT on the same shapes.
#[derive(Args, Debug)]
struct BenchArgs {
    /// A known model name, a GGUF file or a Hugging Face directory (no tokenizer needed).
    #[arg(long, short = 'm', default_value = "smollm2-135m-instruct")]
    model: String,
    #[arg(long, default_value_t = 256)]
    seq: usize,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 16)]
    rank: usize,
    #[arg(long, default_value_t = 32.0)]
    alpha: f64,
    #[arg(long, default_value = "q_proj,k_proj,v_proj,o_proj")]
    targets: String,
    /// Timed steps (forward + backward + AdamW).
    #[arg(long, default_value_t = 6)]
    steps: usize,
    #[arg(long, default_value_t = 1)]
    warmup_steps: usize,
    /// f32 (LoRA) or keep (QLoRA on the file's quantised blocks), or q4_0/q4_k/q5_0/q8_0.
    #[arg(long, default_value = "f32")]
    base: String,
    #[arg(long, short = 't')]
    threads: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    use candle_core::{Device, Tensor};
    use vigil_model::loss::{causal_lm_loss, NextTokenTargets};
    use vigil_train::{AdamW, AdamWParams, Gradients};

    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if let Some(n) = a.threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let resolved = super::model::resolve_model(&a.model, false)?;
    let mut decoder = vigil_model::Decoder::open(&resolved.path)
        .with_context(|| format!("cannot load model '{}'", a.model))?;
    let storage =
        BaseStorage::parse(&a.base).context("--base: f32, keep, q4_0, q4_k, q5_0 or q8_0")?;
    storage.apply(&mut decoder)?;
    let cfg = vigil_model::LoraConfig::new(
        a.rank,
        a.alpha,
        vigil_model::TargetModules::parse(&a.targets)?,
    );
    decoder.add_lora("bench", &cfg, a.seed)?;
    let params = decoder.lora_vars("bench");
    let trainable: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
    let mut opt = AdamW::new(params.clone(), AdamWParams::default())?;
    let vocab = decoder.config.vocab_size as u64;
    let rss_before = vigil_train::sft::peak_rss_mb();
    let mut rng = a
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut times = Vec::new();
    vigil_train::with_threads(a.threads, || -> anyhow::Result<()> {
        for step in 0..a.warmup_steps + a.steps {
            // A fresh random batch per step, as the PyTorch side does.
            let rows: Vec<Vec<u32>> = (0..a.batch)
                .map(|_| {
                    (0..a.seq)
                        .map(|_| {
                            rng = rng
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            ((rng >> 33) % vocab) as u32
                        })
                        .collect()
                })
                .collect();
            let scored: Vec<Vec<bool>> = rows.iter().map(|r| vec![true; r.len()]).collect();
            let flat: Vec<u32> = rows.iter().flatten().copied().collect();
            let tokens = Tensor::from_vec(flat, (a.batch, a.seq), &Device::Cpu)?;
            let targets = NextTokenTargets::new(&rows, &scored)?;
            let started = std::time::Instant::now();
            let (sum, count) = causal_lm_loss(
                &decoder,
                &tokens,
                &vec![0; a.batch],
                &targets,
                Some("bench"),
                None,
            )?;
            let loss = (sum / count as f64)?;
            let store = loss.backward()?;
            let mut grads = Gradients::empty(params.len());
            grads.accumulate(&store, &params)?;
            opt.step(&grads, 2e-4)?;
            if step >= a.warmup_steps {
                times.push(started.elapsed().as_secs_f64());
            }
        }
        Ok(())
    })??;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let tokens_per_s = (a.batch * a.seq) as f64 / median;
    let report = serde_json::json!({
        "engine": "vigil",
        "model": resolved.path,
        "base": a.base,
        "threads": a.threads,
        "seq": a.seq,
        "batch": a.batch,
        "rank": a.rank,
        "targets": a.targets,
        "trainable_params": trainable,
        "step_s_median": median,
        "train_tokens_per_s": tokens_per_s,
        "peak_rss_mb": vigil_train::sft::peak_rss_mb(),
        "rss_after_load_mb": rss_before,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "{:.1} training tokens/s (median step {:.2} s, {} trainable parameters), peak RSS {:.0} MiB",
            tokens_per_s,
            median,
            trainable,
            vigil_train::sft::peak_rss_mb().unwrap_or(0.0)
        );
    }
    Ok(ExitCode::SUCCESS)
}
