//! Errors of the export crate: each names the file (or tensor) and the problem.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tensor '{name}': {message}")]
    Tensor { name: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ExportError {
    pub fn file(path: &Path, message: impl std::fmt::Display) -> Self {
        ExportError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    pub fn tensor(name: &str, message: impl std::fmt::Display) -> Self {
        ExportError::Tensor {
            name: name.to_string(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ExportError>;
