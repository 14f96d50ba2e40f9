//! [`TrainError`]: every failure of the crate, naming the file, field or parameter at fault.

use std::path::{Path, PathBuf};

/// Every failure of `vigil-train`.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value that makes no sense; `field` is its TOML key.
    #[error("invalid training config: `{field}` {msg}")]
    Config { field: String, msg: String },
    /// TOML config text that does not parse (unknown key, wrong type, …).
    #[error("invalid training config: {0}")]
    ConfigToml(String),
    /// A TOML config file that does not parse (unknown key, wrong type, …).
    #[error("cannot read training config {}: {msg}", path.display())]
    ConfigFile { path: PathBuf, msg: String },
    /// Reading or writing a file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint file that is missing, truncated, corrupt or does not fit the task.
    #[error("checkpoint file {}: {msg}", path.display())]
    Checkpoint { path: PathBuf, msg: String },
    /// Turning samples into token rows (template, tokenizer, prefix check).
    #[error("dataset: {0}")]
    Data(String),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Candle(#[from] candle_core::Error),
    /// The task (the model side) failed.
    #[error("task: {0}")]
    Task(Box<dyn std::error::Error + Send + Sync>),
    /// Writing a chart.
    #[error("chart {}: {msg}", path.display())]
    Chart { path: PathBuf, msg: String },
    /// Anything else the training loop refuses (no batches, a loss that is not finite, …).
    #[error("{0}")]
    Run(String),
}

impl TrainError {
    /// Wraps an error of the task's own crate (e.g. `vigil_model::ModelError`).
    pub fn task(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        TrainError::Task(Box::new(e))
    }

    pub(crate) fn config(field: &str, msg: impl Into<String>) -> Self {
        TrainError::Config {
            field: field.to_string(),
            msg: msg.into(),
        }
    }

    pub(crate) fn checkpoint(path: &Path, msg: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

/// `Io` error builder for `map_err`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
