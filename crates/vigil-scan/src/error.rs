use std::path::PathBuf;

/// Why a scan could not start. Problems with single files never end a scan: they become
/// [`crate::Skipped`] entries instead.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot scan {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid exclude pattern {pattern:?}: {message}")]
    Exclude { pattern: String, message: String },
}

pub type Result<T> = std::result::Result<T, ScanError>;
