use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error(transparent)]
    Model(#[from] vigil_model::ModelError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl HeadError {
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> HeadError {
        HeadError::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, HeadError>;
