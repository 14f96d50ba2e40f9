use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AnalystError {
    #[error(transparent)]
    Model(#[from] vigil_model::ModelError),
    #[error(transparent)]
    Head(#[from] vigil_head::HeadError),
    #[error(transparent)]
    Train(#[from] vigil_train::TrainError),
    #[error(transparent)]
    Data(#[from] vigil_data::DataError),
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl AnalystError {
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> AnalystError {
        AnalystError::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, AnalystError>;
