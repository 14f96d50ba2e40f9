//! Reading input files under a size limit, and the options every reader shares.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::TriageError;

/// How findings files are read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Largest findings file accepted (each file, for a directory of HTTP exchanges).
    pub max_bytes: u64,
    /// Where SARIF paths are resolved to read code snippets the SARIF does not embed.
    /// Nothing outside this directory is ever read.
    pub source_root: Option<PathBuf>,
    /// Lines shown before and after a SARIF region read from the source tree.
    pub snippet_context_lines: usize,
    /// Longest snippet read from the source tree, in lines.
    pub max_snippet_lines: usize,
    /// Largest source file a snippet is read from.
    pub max_source_bytes: u64,
    /// Most files read from a directory of HTTP exchanges.
    pub max_files: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_bytes: 256 * 1024 * 1024,
            source_root: None,
            snippet_context_lines: 3,
            max_snippet_lines: 80,
            max_source_bytes: 8 * 1024 * 1024,
            max_files: 100_000,
        }
    }
}

/// Reads a whole file, refusing it before reading when it is over `limit` (and, for files
/// whose size the metadata does not tell, after `limit + 1` bytes).
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, TriageError> {
    let io = |source| TriageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_file() && meta.len() > limit {
        return Err(TriageError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(TriageError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// The bytes as UTF-8 text without a byte-order mark; empty (or blank) input is an error.
pub(crate) fn text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, TriageError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    utf16_check(path, bytes)?;
    let s = std::str::from_utf8(bytes).map_err(|e| TriageError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.valid_up_to(),
    })?;
    if s.trim().is_empty() {
        return Err(TriageError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(s)
}

/// Windows shells redirect output as UTF-16; say so rather than "invalid byte at 0".
pub(crate) fn utf16_check(path: &Path, bytes: &[u8]) -> Result<(), TriageError> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(TriageError::Utf16 {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a reader
/// never sees a half-written report.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TriageError> {
    let io = |source| TriageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
