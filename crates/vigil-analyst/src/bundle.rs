//! A bundle: everything an analysis needs, in one directory with a manifest.
//!
//! ```text
//! <bundle>/bundle.json          the manifest (below)
//! <bundle>/adapters/<name>/     PEFT adapter directories
//! <bundle>/heads/<name>/        head.safetensors + head.json
//! <bundle>/eval/                the evaluation report it was shipped with (optional)
//! ```
//! The base model is referenced, not copied: by name (a known model vigil can pull) or
//! path, with its sha256 so a different file is noticed before it gives wrong answers.

use crate::error::{AnalystError, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "bundle.json";
pub const FORMAT: u32 = 1;
pub const DEFAULT_BUNDLE: &str = "default";

/// The base model a bundle was built on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BaseModelRef {
    /// A known model name (`smollm2-135m-instruct`) or a path.
    pub spec: String,
    /// sha256 of the GGUF file (or of a directory's config.json + weight file list).
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterRef {
    pub name: String,
    /// The task it was trained for: `code` or `http`.
    pub task: String,
    /// Relative to the bundle directory.
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeadRef {
    pub name: String,
    pub task: String,
    /// `verdict` (binary) or `vuln_type` (multi-class).
    pub target: String,
    pub path: String,
}

/// The evaluation a bundle shipped with: where it was measured and the headline numbers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct EvalSummary {
    /// Relative path of the report (Markdown).
    pub report: Option<String>,
    pub split: String,
    pub samples: usize,
    pub leakage: String,
    /// Variant name → metric name → value.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleManifest {
    pub format: u32,
    pub name: String,
    pub description: String,
    pub vigil_version: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub base_model: BaseModelRef,
    pub adapters: Vec<AdapterRef>,
    pub heads: Vec<HeadRef>,
    /// sha256 of each task's system prompt: the words the adapters and heads were trained
    /// on. A bundle used with different prompts is flagged.
    pub prompts: BTreeMap<String, String>,
    /// Max new tokens for the analysis text, per task.
    pub max_analysis_tokens: usize,
    pub eval: Option<EvalSummary>,
}

/// A bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: BundleManifest,
}

impl Bundle {
    /// Where named bundles live: `<vigil home>/bundles`.
    pub fn root() -> Result<PathBuf> {
        let home = vigil_hub::default_home()
            .map_err(|e| AnalystError::Invalid(format!("no vigil home directory: {e}")))?;
        Ok(home.join("bundles"))
    }

    /// A bundle given by name (under [`Bundle::root`]) or by directory path.
    pub fn locate(spec: &str) -> Result<PathBuf> {
        let p = Path::new(spec);
        if p.join(MANIFEST).exists() || spec.contains(std::path::MAIN_SEPARATOR) {
            return Ok(p.to_path_buf());
        }
        Ok(Bundle::root()?.join(spec))
    }

    pub fn load(dir: &Path) -> Result<Bundle> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                AnalystError::file(
                    &path,
                    "no bundle here; create one with `vigil quickstart` or `vigil bundle create`",
                )
            } else {
                AnalystError::file(&path, e)
            }
        })?;
        let manifest: BundleManifest = serde_json::from_str(&text)
            .map_err(|e| AnalystError::file(&path, format!("not a vigil bundle manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(AnalystError::file(
                &path,
                format!(
                    "bundle format {} (this vigil reads {FORMAT})",
                    manifest.format
                ),
            ));
        }
        for rel in manifest
            .adapters
            .iter()
            .map(|a| &a.path)
            .chain(manifest.heads.iter().map(|h| &h.path))
        {
            if Path::new(rel).is_absolute() || rel.split(['/', '\\']).any(|c| c == "..") {
                return Err(AnalystError::file(
                    &path,
                    format!("`{rel}` leaves the bundle directory"),
                ));
            }
            if !dir.join(rel).exists() {
                return Err(AnalystError::file(&path, format!("`{rel}` is missing")));
            }
        }
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| AnalystError::file(&self.dir, e))?;
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(format!("{MANIFEST}.tmp"));
        let text = serde_json::to_string_pretty(&self.manifest).expect("manifest serialises");
        std::fs::write(&tmp, text).map_err(|e| AnalystError::file(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| AnalystError::file(&path, e))?;
        Ok(())
    }

    /// Every bundle under `root`, sorted by name; unreadable ones come back as errors so a
    /// listing can show them.
    pub fn list(root: &Path) -> Vec<std::result::Result<Bundle, AnalystError>> {
        let Ok(rd) = std::fs::read_dir(root) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join(MANIFEST).exists())
            .collect();
        dirs.sort();
        dirs.iter().map(|d| Bundle::load(d)).collect()
    }

    pub fn adapter(&self, task: &str) -> Option<&AdapterRef> {
        self.manifest.adapters.iter().find(|a| a.task == task)
    }

    pub fn head(&self, task: &str, target: &str) -> Option<&HeadRef> {
        self.manifest
            .heads
            .iter()
            .find(|h| h.task == task && h.target == target)
    }

    /// Checks the base model file against the manifest's hash.
    pub fn check_model(&self, model_path: &Path) -> Result<()> {
        let got = model_fingerprint(model_path)?;
        if got != self.manifest.base_model.sha256 {
            return Err(AnalystError::file(
                model_path,
                format!(
                    "this model (sha256 {}) is not the base of bundle `{}` ({}, sha256 {})",
                    &got[..12],
                    self.manifest.name,
                    self.manifest.base_model.spec,
                    &self.manifest.base_model.sha256
                        [..12.min(self.manifest.base_model.sha256.len())]
                ),
            ));
        }
        Ok(())
    }
}

/// sha256 of the current system prompts, by task.
pub fn prompt_hashes() -> BTreeMap<String, String> {
    use vigil_data::prompt::{SYSTEM_CODE, SYSTEM_HTTP};
    [("code", SYSTEM_CODE), ("http", SYSTEM_HTTP)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), hex(&Sha256::digest(v.as_bytes()))))
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of a model: the sha256 of a GGUF file (the registry's hash for a known
/// model's cached file, which was verified when it was pulled), or for a Hugging Face
/// directory the hash of its config.json and its weight files' names and sizes.
pub fn model_fingerprint(path: &Path) -> Result<String> {
    if path.is_dir() {
        let mut h = Sha256::new();
        let cfg = path.join("config.json");
        h.update(std::fs::read(&cfg).map_err(|e| AnalystError::file(&cfg, e))?);
        let mut files: Vec<(String, u64)> = std::fs::read_dir(path)
            .map_err(|e| AnalystError::file(path, e))?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
            .map(|e| {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                (e.file_name().to_string_lossy().into_owned(), len)
            })
            .collect();
        files.sort();
        for (n, l) in files {
            h.update(n.as_bytes());
            h.update(l.to_le_bytes());
        }
        return Ok(hex(&h.finalize()));
    }
    file_sha256(path)
}

/// sha256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| AnalystError::file(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| AnalystError::file(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The identity of a PEFT adapter directory: the hash of its weights and config.
pub fn adapter_fingerprint(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        h.update(file_sha256(&dir.join(f))?.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> BundleManifest {
        BundleManifest {
            format: FORMAT,
            name: "t".into(),
            description: String::new(),
            vigil_version: "0".into(),
            created: 0,
            base_model: BaseModelRef {
                spec: "m".into(),
                sha256: "00".into(),
            },
            adapters: vec![AdapterRef {
                name: "code".into(),
                task: "code".into(),
                path: "adapters/code".into(),
            }],
            heads: vec![],
            prompts: prompt_hashes(),
            max_analysis_tokens: 160,
            eval: None,
        }
    }

    #[test]
    fn manifest_round_trips_and_missing_parts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bundle {
            dir: dir.path().to_path_buf(),
            manifest: manifest(),
        };
        b.save().unwrap();
        let err = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("adapters/code") && err.contains("missing"),
            "{err}"
        );
        std::fs::create_dir_all(dir.path().join("adapters/code")).unwrap();
        assert_eq!(Bundle::load(dir.path()).unwrap().manifest, b.manifest);
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest();
        m.adapters[0].path = "../../etc".into();
        Bundle {
            dir: dir.path().to_path_buf(),
            manifest: m,
        }
        .save()
        .unwrap();
        let err = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("leaves the bundle"), "{err}");
        std::fs::write(dir.path().join(MANIFEST), b"\xff\xfe not json").unwrap();
        let err = Bundle::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bundle.json"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = Bundle::load(empty.path()).unwrap_err().to_string();
        assert!(err.contains("vigil quickstart"), "{err}");
    }
}
