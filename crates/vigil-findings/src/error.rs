//! Errors of this crate. Every error about a file names the file.

use std::path::PathBuf;

/// What went wrong reading or writing reports and baselines.
#[derive(Debug, thiserror::Error)]
pub enum FindingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
    #[error("{source_name} is not valid {what} JSON: {error}")]
    Corrupt {
        /// The file path, or a description such as `JSON text` for in-memory input.
        source_name: String,
        what: &'static str,
        error: serde_json::Error,
    },
    #[error("{source_name} is not a {expected} file (format {found:?}, version {version})")]
    WrongFormat {
        source_name: String,
        expected: &'static str,
        found: String,
        version: u32,
    },
    #[error(
        "{source_name}: entry {index} has fingerprint {value:?}; expected 64 hexadecimal digits"
    )]
    BadFingerprint {
        source_name: String,
        index: usize,
        value: String,
    },
    #[error("{path} is {size} bytes, more than the {limit} bytes allowed for a {what}")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
        what: &'static str,
    },
    #[error("cannot serialise the report: {0}")]
    Serialize(serde_json::Error),
    #[error("unknown --fail-on value {0:?}; expected none, low, medium, high or critical")]
    UnknownFailOn(String),
    #[error("unknown output format {0:?}; expected text, json, sarif or markdown")]
    UnknownFormat(String),
}
