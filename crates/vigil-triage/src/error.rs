//! Errors (fatal: the file cannot be read as findings) and warnings (one finding or line
//! was skipped or degraded; the rest of the file is still read).

use std::fmt;
use std::path::PathBuf;

/// Why a findings file could not be read or annotated. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: {size} bytes is over the limit of {limit} bytes for a findings file (raise ReadOptions::max_bytes if the file is trusted)")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("{path}: UTF-16 text (it opens with a UTF-16 byte-order mark); save it as UTF-8, e.g. `Out-File -Encoding utf8` in PowerShell")]
    Utf16 { path: PathBuf },
    #[error("{path}: not a findings file vigil recognises ({why}); name the format explicitly: zap, burp, nuclei, sarif or http")]
    UnknownFormat { path: PathBuf, why: String },
    #[error("{path}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: invalid XML at byte {position}: {message}")]
    Xml {
        path: PathBuf,
        position: u64,
        message: String,
    },
    #[error("{path}: the document type declares entities; vigil never expands them (entity expansion is how XML bombs and XXE attacks work)")]
    XmlEntities { path: PathBuf },
    #[error("{path}: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("{path}: a verdict names item {item_id:?}, which the file does not hold")]
    UnknownItem { path: PathBuf, item_id: String },
    #[error("{path}: verdict for item {item_id:?}: {what}")]
    InvalidVerdict {
        path: PathBuf,
        item_id: String,
        what: String,
    },
}

impl TriageError {
    pub(crate) fn json(path: &std::path::Path, e: &serde_json::Error) -> Self {
        TriageError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }

    pub(crate) fn malformed(path: &std::path::Path, what: impl Into<String>) -> Self {
        TriageError::Malformed {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

/// A problem with one part of the file (a line, an issue, a result) that did not stop the
/// rest from being read: the part was skipped, or its item lost some evidence.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadWarning {
    pub path: PathBuf,
    /// Where in the file: "line 3", "issue 2", "run 0 result 4", a file name.
    pub at: String,
    pub message: String,
}

impl fmt::Display for ReadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.path.display(), self.at, self.message)
    }
}
