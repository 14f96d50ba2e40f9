//! [`AnalysisCache`]: analyses on disk, keyed by what decides them — the analyst's identity
//! (model hash, bundle manifest, vigil version), the options and the subject itself — so a
//! re-scan of an unchanged repository runs no model at all, and any change to the code, the
//! bundle or the options is a miss.

use crate::analyst::{Analyst, AnalyzeOptions};
use crate::error::{AnalystError, Result};
use crate::subject::{Analysis, Subject};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub struct AnalysisCache {
    dir: PathBuf,
}

impl AnalysisCache {
    pub fn new(dir: impl Into<PathBuf>) -> AnalysisCache {
        AnalysisCache { dir: dir.into() }
    }

    /// `<vigil home>/analyses`.
    pub fn default_dir() -> Result<PathBuf> {
        Ok(vigil_hub::default_home()
            .map_err(|e| AnalystError::Invalid(e.to_string()))?
            .join("analyses"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of one analysis.
    pub fn key(analyst: &Analyst, opts: &AnalyzeOptions, subject: &Subject) -> String {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(vigil_model::ARITHMETIC_REVISION.to_le_bytes());
        h.update([0]);
        h.update(analyst.identity().as_bytes());
        h.update([0]);
        h.update(format!("{opts:?}").as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(subject).unwrap_or_default());
        format!("{:x}", h.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// A stored analysis, or `None` (an unreadable or corrupt entry is a miss, and is
    /// overwritten by the next `put`).
    pub fn get(&self, key: &str) -> Option<Analysis> {
        let text = std::fs::read(self.path(key)).ok()?;
        match serde_json::from_slice(&text) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(
                    "ignoring corrupt cache entry {}: {e}",
                    self.path(key).display()
                );
                None
            }
        }
    }

    /// Stores an analysis; written to a temporary file and renamed, so a reader never sees
    /// half an entry.
    pub fn put(&self, key: &str, analysis: &Analysis) -> Result<()> {
        let path = self.path(key);
        let dir = path.parent().expect("cache paths have a parent");
        std::fs::create_dir_all(dir).map_err(|e| AnalystError::file(dir, e))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let bytes = serde_json::to_vec(analysis)
            .map_err(|e| AnalystError::Invalid(format!("cannot encode an analysis: {e}")))?;
        std::fs::write(&tmp, bytes).map_err(|e| AnalystError::file(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| AnalystError::file(&path, e))?;
        Ok(())
    }
}
