//! Errors of the dataset layer. Every variant says which file (and line, where there is one)
//! and what was wrong, so the CLI can print it as is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{path}: not a vigil dataset: {reason}")]
    Foreign { path: PathBuf, reason: String },
    #[error("{path}: dataset was written by a newer vigil (schema {found}, this build knows up to {known})")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("invalid sample: {0}")]
    Invalid(String),
    #[error("chart {path}: {msg}")]
    Chart { path: PathBuf, msg: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.into();
    move |source| DataError::Io { path, source }
}
