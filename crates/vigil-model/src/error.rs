//! Errors of the model runtime. Every error that comes from a file names the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file could not be read or is not what it claims to be.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// The model's configuration is missing a value or holds an impossible one.
    #[error("model config: {0}")]
    Config(String),
    /// A weight is missing or has the wrong shape for the configuration.
    #[error("weight '{name}': {message}")]
    Weight { name: String, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("generation: {0}")]
    Generation(String),
    /// A LoRA adapter is malformed, does not fit the model, or is not loaded.
    #[error("adapter: {0}")]
    Adapter(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        ModelError::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
    pub fn weight(name: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ModelError::Weight {
            name: name.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
