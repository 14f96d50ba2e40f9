//! Models on the Hugging Face Hub: `hf:owner/repo[@revision][:file]`, fetched with the
//! `hf-hub` crate into its own cache (the one Python's `huggingface_hub` uses), or looked up
//! in that cache alone in offline mode.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};

use crate::error::{HubError, Result};
use crate::{Events, ModelKind, PullEvent, ResolvedModel};

/// The files fetched with the weights of a Hugging Face model directory; the first is
/// required.
const DIR_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "special_tokens_map.json",
];
const SINGLE_WEIGHTS: &str = "model.safetensors";
const SHARD_INDEX: &str = "model.safetensors.index.json";

/// A parsed `hf:owner/repo[@revision][:file]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfRef {
    /// `owner/repo`.
    pub repo: String,
    /// A branch, tag or commit; `main` when absent.
    pub revision: Option<String>,
    /// A file inside the repository; chosen automatically when absent.
    pub file: Option<String>,
}

impl fmt::Display for HfRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hf:{}", self.repo)?;
        if let Some(r) = &self.revision {
            write!(f, "@{r}")?;
        }
        if let Some(file) = &self.file {
            write!(f, ":{file}")?;
        }
        Ok(())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl HfRef {
    /// Parses `hf:owner/repo[@revision][:file]` (the `hf:` prefix is required).
    pub fn parse(spec: &str) -> Result<HfRef> {
        let bad = |reason: &str| HubError::BadHfRef {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let rest = spec
            .strip_prefix("hf:")
            .ok_or_else(|| bad("it does not start with hf:"))?;
        let (repo_part, file) = match rest.split_once(':') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let (repo, revision) = match repo_part.split_once('@') {
            Some((r, rev)) => (r, Some(rev)),
            None => (repo_part, None),
        };
        let Some((owner, name)) = repo.split_once('/') else {
            return Err(bad("the repository must be owner/name"));
        };
        if !valid_name(owner) || !valid_name(name) {
            return Err(bad(
                "owner and name may hold only letters, digits, '-', '_' and '.'",
            ));
        }
        if let Some(rev) = revision {
            if rev.is_empty() || rev.contains("..") || rev.starts_with('/') {
                return Err(bad(
                    "the revision is empty or not a valid branch, tag or commit",
                ));
            }
        }
        if let Some(f) = file {
            if f.is_empty() {
                return Err(bad("the file name after ':' is empty"));
            }
            if f.starts_with('/')
                || f.contains('\\')
                || f.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad(
                    "the file must be a relative path inside the repository",
                ));
            }
        }
        Ok(HfRef {
            repo: repo.to_string(),
            revision: revision.map(str::to_string),
            file: file.map(str::to_string),
        })
    }

    fn hub_repo(&self) -> Repo {
        match &self.revision {
            Some(rev) => Repo::with_revision(self.repo.clone(), RepoType::Model, rev.clone()),
            None => Repo::new(self.repo.clone(), RepoType::Model),
        }
    }

    fn revision_str(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }

    fn name(&self) -> String {
        match &self.file {
            Some(f) => format!("{}:{f}", self.repo),
            None => self.repo.clone(),
        }
    }
}

/// The Hugging Face cache directory: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn default_hf_cache() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p).join("hub"));
    }
    dirs::home_dir()
        .map(|h| h.join(".cache").join("huggingface").join("hub"))
        .ok_or(HubError::NoCacheDir)
}

/// How [`fetch`] may reach the Hub.
pub(crate) struct HfSettings<'a> {
    pub cache_dir: PathBuf,
    pub offline: Option<&'a str>,
    pub progress: bool,
}

pub(crate) fn fetch(
    r: &HfRef,
    settings: &HfSettings<'_>,
    events: &Events,
) -> Result<ResolvedModel> {
    match settings.offline {
        Some(why) => fetch_offline(r, &settings.cache_dir, why),
        None => fetch_online(r, settings, events),
    }
}

fn is_gguf(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gguf")
}

fn resolved(r: &HfRef, path: PathBuf, kind: ModelKind) -> ResolvedModel {
    ResolvedModel {
        path,
        kind,
        name: r.name(),
    }
}

/// The weight files of a sharded checkpoint, from its index.
fn shard_names(index_path: &Path) -> Result<Vec<String>> {
    let text =
        fs::read_to_string(index_path).map_err(|e| HubError::io("reading", index_path, e))?;
    let not_index = |reason: String| HubError::NotAModel {
        path: index_path.to_path_buf(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not_index(format!("not valid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| not_index("no \"weight_map\" object".into()))?;
    let mut names: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    for n in &names {
        if n.starts_with('/') || n.split('/').any(|c| c == "..") {
            return Err(not_index(format!(
                "shard name {n:?} points outside the repository"
            )));
        }
    }
    Ok(names)
}

fn fetch_online(r: &HfRef, settings: &HfSettings<'_>, events: &Events) -> Result<ResolvedModel> {
    let cache = Cache::new(settings.cache_dir.clone());
    let mut builder = ApiBuilder::from_cache(cache)
        .with_progress(settings.progress)
        .with_retries(2);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        if !endpoint.is_empty() {
            builder = builder.with_endpoint(endpoint);
        }
    }
    if let Ok(token) = std::env::var("HF_TOKEN") {
        if !token.is_empty() {
            builder = builder.with_token(Some(token));
        }
    }
    let hf_err = |file: &str, e: hf_hub::api::sync::ApiError| HubError::Hf {
        repo: r.repo.clone(),
        file: file.to_string(),
        cache: settings.cache_dir.clone(),
        source: Box::new(e),
    };
    let api = builder
        .build()
        .map_err(|e| hf_err("setting up the client", e))?;
    let repo = api.repo(r.hub_repo());
    let get = |repo: &ApiRepo, file: &str| -> Result<PathBuf> {
        events.emit(PullEvent::HfDownload {
            repo: r.repo.clone(),
            file: file.to_string(),
        });
        repo.get(file).map_err(|e| hf_err(file, e))
    };

    if let Some(file) = &r.file {
        let path = get(&repo, file)?;
        if is_gguf(file) {
            return Ok(resolved(r, path, ModelKind::Gguf));
        }
        // A named non-GGUF file: fetch the directory files with it.
        let config = get(&repo, "config.json")?;
        for extra in &DIR_FILES[1..] {
            let _ = repo.get(extra);
        }
        let dir = config
            .parent()
            .expect("cache path has a parent")
            .to_path_buf();
        return Ok(resolved(r, dir, ModelKind::HfDir));
    }

    let info = repo.info().map_err(|e| hf_err("repository listing", e))?;
    let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let ggufs: Vec<&String> = files.iter().filter(|f| is_gguf(f)).collect();
    match ggufs.len() {
        1 => {
            let path = get(&repo, ggufs[0])?;
            return Ok(resolved(r, path, ModelKind::Gguf));
        }
        n if n > 1 => {
            return Err(HubError::HfNoModel {
                repo: r.repo.clone(),
                reason: format!(
                    "the repository holds {n} GGUF files ({}); name one: hf:{}:FILE",
                    ggufs
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.repo
                ),
            })
        }
        _ => {}
    }
    let has = |name: &str| files.iter().any(|f| f == name);
    if !has("config.json") || !(has(SINGLE_WEIGHTS) || has(SHARD_INDEX)) {
        return Err(HubError::HfNoModel {
            repo: r.repo.clone(),
            reason: format!(
                "no GGUF file and no config.json with {SINGLE_WEIGHTS} or {SHARD_INDEX} \
                 (files: {}); name a file with hf:{}:FILE",
                files.join(", "),
                r.repo
            ),
        });
    }
    if has(SINGLE_WEIGHTS) {
        get(&repo, SINGLE_WEIGHTS)?;
    } else {
        let index = get(&repo, SHARD_INDEX)?;
        for shard in shard_names(&index)? {
            get(&repo, &shard)?;
        }
    }
    let config = get(&repo, "config.json")?;
    for extra in &DIR_FILES[1..] {
        if has(extra) {
            get(&repo, extra)?;
        }
    }
    let dir = config
        .parent()
        .expect("cache path has a parent")
        .to_path_buf();
    Ok(resolved(r, dir, ModelKind::HfDir))
}

/// The snapshot directory of `r` in the cache, if the revision was ever fetched.
fn snapshot_dir(r: &HfRef, cache_dir: &Path) -> Option<PathBuf> {
    let repo_dir = cache_dir.join(r.hub_repo().folder_name());
    let rev = r.revision_str();
    let commit = match fs::read_to_string(repo_dir.join("refs").join(rev)) {
        Ok(c) => c.trim().to_string(),
        // A commit hash names its snapshot directly.
        Err(_) if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) => rev.to_string(),
        Err(_) => return None,
    };
    let dir = repo_dir.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

fn fetch_offline(r: &HfRef, cache_dir: &Path, why: &str) -> Result<ResolvedModel> {
    let missing = |what: String| {
        HubError::Offline {
        what,
        why: why.to_string(),
        hint: format!(
            "run `vigil model pull {r}` once with network access (without --offline and \
             HF_HUB_OFFLINE), or point HF_HOME / HF_HUB_CACHE at a cache that has it (looked in {})",
            cache_dir.display()
        ),
    }
    };
    let snap = snapshot_dir(r, cache_dir)
        .ok_or_else(|| missing(format!("{} (revision {})", r.repo, r.revision_str())))?;
    if let Some(file) = &r.file {
        let path = snap.join(file);
        if !path.exists() {
            return Err(missing(format!("{}:{file}", r.repo)));
        }
        if is_gguf(file) {
            return Ok(resolved(r, path, ModelKind::Gguf));
        }
        if !snap.join("config.json").exists() {
            return Err(missing(format!("{}:config.json", r.repo)));
        }
        return Ok(resolved(r, snap, ModelKind::HfDir));
    }
    let mut ggufs: Vec<PathBuf> = fs::read_dir(&snap)
        .map_err(|e| HubError::io("listing", &snap, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| is_gguf(&n.to_string_lossy())) && p.exists())
        .collect();
    ggufs.sort();
    match ggufs.len() {
        1 => return Ok(resolved(r, ggufs.pop().unwrap(), ModelKind::Gguf)),
        n if n > 1 => {
            return Err(HubError::HfNoModel {
                repo: r.repo.clone(),
                reason: format!(
                    "the cached repository holds {n} GGUF files ({}); name one: hf:{}:FILE",
                    ggufs
                        .iter()
                        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.repo
                ),
            })
        }
        _ => {}
    }
    if !snap.join("config.json").exists() {
        return Err(missing(format!("{}:config.json", r.repo)));
    }
    if !snap.join(SINGLE_WEIGHTS).exists() {
        let index = snap.join(SHARD_INDEX);
        if !index.exists() {
            return Err(missing(format!(
                "{}: {SINGLE_WEIGHTS} or {SHARD_INDEX}",
                r.repo
            )));
        }
        for shard in shard_names(&index)? {
            if !snap.join(&shard).exists() {
                return Err(missing(format!("{}:{shard}", r.repo)));
            }
        }
    }
    Ok(resolved(r, snap, ModelKind::HfDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let r = HfRef::parse("hf:HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
        assert_eq!(r.repo, "HuggingFaceTB/SmolLM2-135M-Instruct");
        assert_eq!((r.revision.as_deref(), r.file.as_deref()), (None, None));
        let r = HfRef::parse("hf:bartowski/Qwen2.5-Coder-0.5B-GGUF:Qwen2.5-Coder-0.5B-Q4_K_M.gguf")
            .unwrap();
        assert_eq!(r.file.as_deref(), Some("Qwen2.5-Coder-0.5B-Q4_K_M.gguf"));
        let r = HfRef::parse("hf:a/b@v1.0:sub/dir/w.gguf").unwrap();
        assert_eq!(r.revision.as_deref(), Some("v1.0"));
        assert_eq!(r.file.as_deref(), Some("sub/dir/w.gguf"));
        assert_eq!(r.to_string(), "hf:a/b@v1.0:sub/dir/w.gguf");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "hf:",
            "hf:noslash",
            "hf:a/b/c",
            "hf:/b",
            "hf:a/",
            "hf:a b/c",
            "hf:a/b:",
            "hf:a/b:../x.gguf",
            "hf:a/b:/etc/passwd",
            "hf:a/b@:x.gguf",
            "a/b",
        ] {
            let err = HfRef::parse(bad).unwrap_err();
            assert!(matches!(err, HubError::BadHfRef { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("hf:owner/repo"), "{err}");
        }
    }
}
