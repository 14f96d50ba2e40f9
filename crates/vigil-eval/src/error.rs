//! The one error type of the crate: every variant names the input that was wrong.

use std::path::PathBuf;

/// What went wrong while reading records, computing a metric or writing the report.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not a valid sample record: {msg}")]
    BadRecord {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("cannot serialise {what}: {msg}")]
    Serialise { what: &'static str, msg: String },
    #[error("{what}: expected {expected} values, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("probability {value} at index {index} is outside [0, 1]")]
    BadProbability { index: usize, value: f64 },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotEnoughData(String),
    #[error("cannot draw chart {path}: {msg}")]
    Chart { path: PathBuf, msg: String },
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, EvalError>;
