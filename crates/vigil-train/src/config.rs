//! [`TrainConfig`]: the training recipe, loadable from TOML (unknown keys are refused) and
//! checked by [`TrainConfig::validate`], whose errors name the field.
//!
//! The defaults are the first seed's recipe: learning rate 2e-4, 1 epoch, batch 2 ×
//! accumulation 4, warmup ratio 0.03, cosine decay, no weight decay, gradient norm clipped at
//! 1.0.

use crate::error::{Result, TrainError};
use crate::optim::AdamWParams;
use crate::schedule::ScheduleKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// How to train. Every field has a default; a TOML file sets any subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Peak learning rate, reached at the end of warmup.
    pub learning_rate: f64,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Stop after this many optimizer steps; also the schedule's length when set
    /// (otherwise the schedule spans `epochs`).
    pub max_steps: Option<usize>,
    /// Rows per micro-batch (one forward / backward pass).
    pub batch_size: usize,
    /// Micro-batches per optimizer step; the effective batch is `batch_size ×
    /// grad_accum_steps` rows.
    pub grad_accum_steps: usize,
    /// Rows per evaluation batch (default: `batch_size`).
    pub eval_batch_size: Option<usize>,
    /// Warmup as a share of all optimizer steps (rounded up), used when `warmup_steps` is
    /// not set.
    pub warmup_ratio: f64,
    /// Warmup in optimizer steps; overrides `warmup_ratio` when set and positive.
    pub warmup_steps: Option<usize>,
    /// Decay after warmup: "cosine", "linear" or "constant".
    pub lr_scheduler: ScheduleKind,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW's β₁.
    pub adam_beta1: f64,
    /// AdamW's β₂.
    pub adam_beta2: f64,
    /// AdamW's ε.
    pub adam_epsilon: f64,
    /// Clip the global gradient L2 norm to this; 0 turns clipping off.
    pub max_grad_norm: f64,
    /// Evaluate on the validation rows every this many optimizer steps (and always at the
    /// end); 0: only at the end.
    pub eval_every: usize,
    /// Stop when the eval loss has not improved for this many evaluations in a row; 0 turns
    /// early stopping off.
    pub early_stopping_patience: usize,
    /// An eval loss must be lower than the best by more than this to count as improved.
    pub early_stopping_min_delta: f64,
    /// Write a checkpoint every this many optimizer steps (and always at the end, on early
    /// stopping and when interrupted); 0: only then.
    pub save_every: usize,
    /// Keep this many of the latest checkpoints (the best one by eval loss is kept in
    /// addition); 0 keeps all.
    pub keep_checkpoints: usize,
    /// Also write a checkpoint whenever the eval loss improves; the rotation keeps it.
    pub save_best: bool,
    /// Shuffle the training rows every epoch (from `seed` and the epoch number).
    pub shuffle: bool,
    /// Seeds the data order and the dropout stream (and, by convention, the adapter's
    /// initial weights on the task side).
    pub seed: u64,
    /// CPU threads (default: all physical cores). Exact resume assumes the same count.
    pub threads: Option<usize>,
    /// Where checkpoints, `metrics.jsonl` and the loss charts go.
    pub output_dir: PathBuf,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            learning_rate: 2e-4,
            epochs: 1,
            max_steps: None,
            batch_size: 2,
            grad_accum_steps: 4,
            eval_batch_size: None,
            warmup_ratio: 0.03,
            warmup_steps: None,
            lr_scheduler: ScheduleKind::Cosine,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            eval_every: 50,
            early_stopping_patience: 3,
            early_stopping_min_delta: 0.0,
            save_every: 100,
            keep_checkpoints: 2,
            save_best: true,
            shuffle: true,
            seed: 42,
            threads: None,
            output_dir: PathBuf::from("runs/sft"),
        }
    }
}

/// Fields that do not change what is computed: a run may be resumed with other values.
const NOT_IN_HASH: [&str; 6] = [
    "threads",
    "output_dir",
    "save_every",
    "keep_checkpoints",
    "save_best",
    "eval_batch_size",
];

impl TrainConfig {
    /// Parses TOML text (unknown keys and wrong types are errors naming the key) and
    /// validates it.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let cfg: TrainConfig =
            toml::from_str(text).map_err(|e| TrainError::ConfigToml(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
        let cfg: TrainConfig = toml::from_str(&text).map_err(|e| TrainError::ConfigFile {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses values that make no sense, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, m: String| Err(TrainError::config(f, m));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                format!("is {}; it must be a positive number", self.learning_rate),
            );
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad(
                "epochs",
                "is 0; train for at least 1 epoch (or set max_steps)".into(),
            );
        }
        if self.max_steps == Some(0) {
            return bad(
                "max_steps",
                "is 0; leave it out to train for `epochs`".into(),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "is 0; it must be at least 1".into());
        }
        if self.grad_accum_steps == 0 {
            return bad("grad_accum_steps", "is 0; it must be at least 1".into());
        }
        if self.eval_batch_size == Some(0) {
            return bad("eval_batch_size", "is 0; it must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(
                "warmup_ratio",
                format!("is {}; it must be in [0, 1)", self.warmup_ratio),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                format!("is {}; it must be 0 or more", self.weight_decay),
            );
        }
        for (f, v) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&v) {
                return bad(f, format!("is {v}; it must be in [0, 1)"));
            }
        }
        if !(self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0) {
            return bad(
                "adam_epsilon",
                format!("is {}; it must be positive", self.adam_epsilon),
            );
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return bad(
                "max_grad_norm",
                format!("is {}; it must be 0 (off) or positive", self.max_grad_norm),
            );
        }
        if !(self.early_stopping_min_delta.is_finite() && self.early_stopping_min_delta >= 0.0) {
            return bad(
                "early_stopping_min_delta",
                format!("is {}; it must be 0 or more", self.early_stopping_min_delta),
            );
        }
        if self.threads == Some(0) {
            return bad("threads", "is 0; leave it out to use every core".into());
        }
        if self.output_dir.as_os_str().is_empty() {
            return bad("output_dir", "is empty".into());
        }
        Ok(())
    }

    /// AdamW's hyper-parameters.
    pub fn adamw(&self) -> AdamWParams {
        AdamWParams {
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            eps: self.adam_epsilon,
            weight_decay: self.weight_decay,
        }
    }

    /// Micro-batch size for evaluation.
    pub fn eval_batch(&self) -> usize {
        self.eval_batch_size.unwrap_or(self.batch_size)
    }

    /// The fields that decide what a run computes, as JSON (everything but threads, output
    /// directory, checkpoint cadence and eval batch size).
    pub fn trajectory_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for k in NOT_IN_HASH {
            m.remove(k);
        }
        m
    }

    /// SHA-256 of [`TrainConfig::trajectory_fields`]: a checkpoint records it, and resuming
    /// with a different recipe is refused.
    pub fn hash(&self) -> String {
        let text = serde_json::Value::Object(self.trajectory_fields()).to_string();
        format!("{:x}", Sha256::digest(text.as_bytes()))
    }

    /// The trajectory fields whose values differ between `self` and `other`.
    pub fn differing_fields(&self, other: &TrainConfig) -> Vec<String> {
        let (a, b) = (self.trajectory_fields(), other.trajectory_fields());
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| {
                format!(
                    "{k} ({} → {})",
                    b.get(k).map(|x| x.to_string()).unwrap_or_default(),
                    v
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_recipe_and_valid() {
        let c = TrainConfig::default();
        c.validate().unwrap();
        assert_eq!(
            (c.learning_rate, c.epochs, c.batch_size, c.grad_accum_steps),
            (2e-4, 1, 2, 4)
        );
        assert_eq!(c.lr_scheduler, ScheduleKind::Cosine);
        assert_eq!(TrainConfig::from_toml_str("").unwrap(), c);
    }

    #[test]
    fn toml_round_trip_and_hash_ignores_threads() {
        let c = TrainConfig::from_toml_str(
            "learning_rate = 1e-3\nlr_scheduler = \"linear\"\nthreads = 2\nmax_steps = 10\n",
        )
        .unwrap();
        assert_eq!(c.lr_scheduler, ScheduleKind::Linear);
        let text = toml::to_string(&c).unwrap();
        assert_eq!(TrainConfig::from_toml_str(&text).unwrap(), c);
        let d = TrainConfig {
            threads: Some(1),
            ..c.clone()
        };
        assert_eq!(c.hash(), d.hash());
        let e = TrainConfig {
            seed: 1,
            ..c.clone()
        };
        assert_ne!(c.hash(), e.hash());
        assert_eq!(e.differing_fields(&c), vec!["seed (42 → 1)".to_string()]);
    }
}
