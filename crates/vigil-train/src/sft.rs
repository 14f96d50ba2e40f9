//! Supervised fine-tuning of a LoRA adapter: [`LoraSft`] (the [`TrainTask`] for a decoder
//! with one trainable adapter), [`SftConfig`] (the TOML recipe: `[lora]`, `[base]`, `[data]`,
//! `[train]`) and [`run_sft`], which goes from a loaded model and a dataset store to a PEFT
//! adapter directory, metrics, a loss chart and a summary.
//!
//! LoRA trains against a dense f32 base; QLoRA keeps the base in 4 bits — the GGUF's own
//! blocks (`storage = "keep"`) or a dense base quantised on load (`"q4_0"`, `"q4_k"`, …) —
//! and dequantises one layer at a time inside each product (see `vigil_model::layers`).

use crate::config::TrainConfig;
use crate::data::{self, Batch, ChatEncoder, DataConfig, DataReport, Dataset};
use crate::error::{Result, TrainError};
use crate::rng::TrainRng;
use crate::task::TrainTask;
use crate::trainer::{evaluate, Resume, RunSummary, Trainer};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use vigil_data::{Split, Store};
use vigil_model::loss::{causal_lm_loss, NextTokenTargets};
use vigil_model::{Decoder, LoraConfig, Model, TargetModules};

/// The adapter name the trainer works on.
pub const ADAPTER: &str = "sft";

/// The task: a decoder and the adapter to train (`None`: the base model, for a baseline).
pub struct LoraSft<'a> {
    pub decoder: &'a Decoder,
    pub adapter: Option<&'a str>,
}

impl TrainTask for LoraSft<'_> {
    fn parameters(&self) -> Vec<(String, Var)> {
        self.adapter
            .map(|a| self.decoder.lora_vars(a))
            .unwrap_or_default()
    }

    fn loss(&self, batch: &Batch, train: bool, rng: &mut TrainRng) -> Result<(Tensor, usize)> {
        let targets = NextTokenTargets::new(&batch.ids, &batch.mask).map_err(TrainError::task)?;
        // Drawn even without dropout so the random stream does not depend on the config.
        let seed = rng.next_u64();
        causal_lm_loss(
            self.decoder,
            &batch.ids_tensor(&Device::Cpu)?,
            &batch.pad,
            &targets,
            self.adapter,
            train.then_some(seed),
        )
        .map_err(TrainError::task)
    }
}

/// The adapter's shape (`[lora]`); defaults are the first seed's: r 16, alpha 32, dropout
/// 0.05 on q, k, v, o.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSection {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    /// `"all-linear"`, a list of module names, or `"re:<regex>"`.
    pub target_modules: String,
    pub use_rslora: bool,
}

impl Default for LoraSection {
    fn default() -> Self {
        LoraSection {
            r: 16,
            alpha: 32.0,
            dropout: 0.05,
            target_modules: "q_proj,k_proj,v_proj,o_proj".into(),
            use_rslora: false,
        }
    }
}

impl LoraSection {
    pub fn to_lora_config(&self) -> Result<LoraConfig> {
        let targets =
            TargetModules::parse(&self.target_modules).map_err(|e| TrainError::Config {
                field: "lora.target_modules".into(),
                msg: e.to_string(),
            })?;
        let mut c = LoraConfig::new(self.r, self.alpha, targets);
        c.dropout = self.dropout;
        c.use_rslora = self.use_rslora;
        c.validate().map_err(|e| TrainError::Config {
            field: "lora".into(),
            msg: e.to_string(),
        })?;
        Ok(c)
    }
}

/// How the frozen base is stored while training (`[base] storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BaseStorage {
    /// Dense f32 (plain LoRA): every quantised weight is dequantised once at load.
    #[default]
    F32,
    /// Whatever the model file holds (QLoRA on a 4-bit GGUF).
    Keep,
    /// Quantise a dense base on load (QLoRA on safetensors); k-quants fall back to Q5_0 /
    /// Q8_0 for rows that are not a multiple of 256, as llama.cpp does.
    Q4_0,
    Q4K,
    Q5_0,
    Q8_0,
}

impl BaseStorage {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "f32" | "dense" => BaseStorage::F32,
            "keep" => BaseStorage::Keep,
            "q4_0" => BaseStorage::Q4_0,
            "q4_k" | "q4k" => BaseStorage::Q4K,
            "q5_0" => BaseStorage::Q5_0,
            "q8_0" => BaseStorage::Q8_0,
            _ => return None,
        })
    }

    /// Puts the decoder's linear layers into this storage.
    pub fn apply(self, decoder: &mut Decoder) -> Result<()> {
        match self {
            BaseStorage::F32 => {
                let bytes = decoder.dequantize_linears().map_err(TrainError::task)?;
                tracing::info!(
                    "base dequantised to f32: {} MiB of linear weights",
                    bytes >> 20
                );
            }
            BaseStorage::Keep => {}
            other => {
                let report = decoder
                    .quantize_linears(other.ggml().expect("a block type"), true)
                    .map_err(TrainError::task)?;
                tracing::info!(
                    "base quantised: {:?}, {} → {} MiB",
                    report.types,
                    report.bytes_before >> 20,
                    report.bytes_after >> 20
                );
            }
        }
        Ok(())
    }

    fn ggml(self) -> Option<GgmlDType> {
        match self {
            BaseStorage::Q4_0 => Some(GgmlDType::Q4_0),
            BaseStorage::Q4K => Some(GgmlDType::Q4K),
            BaseStorage::Q5_0 => Some(GgmlDType::Q5_0),
            BaseStorage::Q8_0 => Some(GgmlDType::Q8_0),
            BaseStorage::F32 | BaseStorage::Keep => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BaseSection {
    pub storage: BaseStorage,
}

/// Which samples to use (`[samples]`): caps for quick runs. Rows are drawn at random under
/// the training seed, the same ones every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SamplesSection {
    pub max_train_rows: Option<usize>,
    pub max_eval_rows: Option<usize>,
}

/// A whole SFT recipe, as one TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    pub lora: LoraSection,
    pub base: BaseSection,
    pub data: DataConfig,
    pub samples: SamplesSection,
    pub train: TrainConfig,
}

impl SftConfig {
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let c: SftConfig =
            toml::from_str(text).map_err(|e| TrainError::ConfigToml(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_toml_str(&text).map_err(|e| TrainError::ConfigFile {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    }

    pub fn validate(&self) -> Result<()> {
        self.lora.to_lora_config()?;
        self.data.validate()?;
        self.train.validate()
    }
}

/// How to run (not part of the recipe).
#[derive(Debug, Clone, Default)]
pub struct SftRun {
    pub resume: Option<Resume>,
    pub progress: bool,
    pub stop: Option<Arc<AtomicBool>>,
    /// What the model is called, for the adapter's `base_model_name_or_path`.
    pub base_model: Option<String>,
}

/// What a run did, also written to `summary.json` in the output directory.
#[derive(Debug, Clone, Serialize)]
pub struct SftSummary {
    pub base_model: Option<String>,
    pub base_storage: BaseStorage,
    pub adapter_dir: PathBuf,
    /// The step whose weights `adapter_dir` holds (the best eval loss, else the last step).
    pub adapter_step: usize,
    pub trainable_parameters: usize,
    pub adapted_layers: usize,
    pub train_data: DataReport,
    pub eval_data: DataReport,
    /// Eval loss of the base model (no adapter) and of the saved adapter.
    pub base_eval_loss: f64,
    pub tuned_eval_loss: f64,
    pub steps: usize,
    pub stop: String,
    pub train_seconds: f64,
    pub train_tokens_per_second: f64,
    /// Peak resident memory of the process (Linux `VmHWM`), if known.
    pub peak_rss_mb: Option<f64>,
    pub output_dir: PathBuf,
}

/// The process's peak resident set size in MiB (Linux only).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn subsample(mut ds: Dataset, max: Option<usize>, seed: u64) -> Dataset {
    if let Some(max) = max.filter(|&m| m < ds.len()) {
        let mut order = data::epoch_order(ds.len(), seed, usize::MAX, true);
        order.truncate(max);
        order.sort_unstable();
        let rows = order.into_iter().map(|i| ds.rows[i].clone()).collect();
        let pad = ds.pad_id;
        let mut report = ds.report.clone();
        ds = Dataset::from_rows(rows, pad);
        report.rows = ds.rows.len();
        report.tokens = ds.rows.iter().map(|r| r.len()).sum();
        report.target_tokens = ds.rows.iter().map(|r| r.targets()).sum();
        ds.report = report;
    }
    ds
}

/// Trains an adapter on `store`'s train split, evaluates on its validation split, and saves
/// the best adapter as a PEFT directory `<output_dir>/adapter`.
pub fn run_sft(
    model: &mut Model,
    store: &Store,
    cfg: &SftConfig,
    run: SftRun,
) -> Result<SftSummary> {
    cfg.validate()?;
    let decoder = &mut model.decoder;
    cfg.base.storage.apply(decoder)?;
    let mut lora = cfg.lora.to_lora_config()?;
    lora.base_model = run.base_model.clone();
    if decoder.has_adapter(ADAPTER) {
        decoder.remove_lora(ADAPTER);
    }
    let adapted = decoder
        .add_lora(ADAPTER, &lora, cfg.train.seed)
        .map_err(TrainError::task)?;

    let encoder = ChatEncoder::for_model(&model.tokenizer)?;
    let pad_id = data::pad_id(&model.tokenizer);
    let train = data::load_split(store, Split::Train, &encoder, &cfg.data, pad_id)?;
    let eval = data::load_split(store, Split::Valid, &encoder, &cfg.data, pad_id)?;
    let train = subsample(train, cfg.samples.max_train_rows, cfg.train.seed);
    let eval = subsample(eval, cfg.samples.max_eval_rows, cfg.train.seed ^ 1);
    tracing::info!("train: {}", train.report);
    tracing::info!("eval: {}", eval.report);

    let decoder = &model.decoder;
    let eval_batch = cfg.train.eval_batch_size.unwrap_or(cfg.train.batch_size);
    let eval_rng = TrainRng::new(cfg.train.seed);
    let base_task = LoraSft {
        decoder,
        adapter: None,
    };
    let base_eval_loss = crate::threads::with_threads(cfg.train.threads, || {
        evaluate(&base_task, &eval, eval_batch, &eval_rng)
    })??;
    tracing::info!("base model eval loss: {base_eval_loss:.4}");

    let task = LoraSft {
        decoder,
        adapter: Some(ADAPTER),
    };
    let trainable_parameters = task.parameters().iter().map(|(_, v)| v.elem_count()).sum();
    let mut trainer = Trainer::new(cfg.train.clone())?.progress(run.progress);
    if let Some(r) = run.resume.clone() {
        trainer = trainer.resume(r);
    }
    if let Some(flag) = run.stop.clone() {
        trainer = trainer.with_stop_flag(flag);
    }
    let started = Instant::now();
    let summary: RunSummary = trainer.run(&task, &train, Some(&eval))?;
    let train_seconds = started.elapsed().as_secs_f64();

    // Keep the best weights by eval loss (as `load_best_model_at_end`), else the last.
    let (adapter_step, tuned_eval_loss) = match (&summary.best_checkpoint, summary.best_step) {
        (Some(dir), Some(step)) => {
            crate::checkpoint::load_params(dir, &task.parameters())?;
            (step, summary.best_eval_loss.unwrap_or(f64::NAN))
        }
        _ => (
            summary.steps,
            crate::threads::with_threads(cfg.train.threads, || {
                evaluate(&task, &eval, eval_batch, &eval_rng)
            })??,
        ),
    };
    let adapter_dir = cfg.train.output_dir.join("adapter");
    decoder
        .save_lora(ADAPTER, &adapter_dir)
        .map_err(TrainError::task)?;
    let trained_tokens: usize =
        crate::metrics::read_metrics(&cfg.train.output_dir.join("metrics.jsonl"))
            .map(|m| m.iter().map(|s| s.tokens).sum())
            .unwrap_or(0);
    let out = SftSummary {
        base_model: run.base_model,
        base_storage: cfg.base.storage,
        adapter_dir,
        adapter_step,
        trainable_parameters,
        adapted_layers: adapted,
        train_data: train.report.clone(),
        eval_data: eval.report.clone(),
        base_eval_loss,
        tuned_eval_loss,
        steps: summary.steps,
        stop: format!("{:?}", summary.stop),
        train_seconds,
        train_tokens_per_second: trained_tokens as f64 / train_seconds.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        output_dir: cfg.train.output_dir.clone(),
    };
    let path = cfg.train.output_dir.join("summary.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&out).expect("plain data serialises"),
    )
    .map_err(|e| TrainError::Io { path, source: e })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_toml_has_four_tables_and_refuses_unknown_keys() {
        let c = SftConfig::from_toml_str(
            r#"
            [lora]
            r = 8
            target_modules = "all-linear"
            [base]
            storage = "q4_k"
            [data]
            max_seq_len = 256
            [train]
            max_steps = 3
            "#,
        )
        .unwrap();
        assert_eq!(c.lora.r, 8);
        assert_eq!(c.base.storage, BaseStorage::Q4K);
        assert_eq!(c.data.max_seq_len, 256);
        assert_eq!(c.train.max_steps, Some(3));
        let e = SftConfig::from_toml_str("[lora]\nrank = 8\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rank"), "{e}");
        let e = SftConfig::from_toml_str("[lora]\nr = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lora"), "{e}");
        let e = SftConfig::from_toml_str("[lora]\ntarget_modules = \"re:(\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("target_modules"), "{e}");
    }
}
