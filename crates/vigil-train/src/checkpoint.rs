//! Checkpoints: `<output>/checkpoint-<step>/` with
//! - `params.safetensors` — the task's trainable [`Var`]s by name;
//! - `optimizer.safetensors` — AdamW's step and moments ([`AdamW::save`]);
//! - `trainer_state.json` — [`TrainerState`]: where the run is (step, epoch, position in the
//!   epoch's order), the RNG state, early-stopping state, the config and its hash, the data
//!   fingerprints, and the SHA-256 of both tensor files.
//!
//! A checkpoint is written into a temporary directory and renamed into place, so a kill
//! while saving leaves the previous checkpoints intact and no half-written one. Loading
//! checks the hashes first, so a truncated or altered file is an error naming it.

use crate::config::TrainConfig;
use crate::error::{io_err, Result, TrainError};
use crate::optim::AdamW;
use crate::st;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const PARAMS_FILE: &str = "params.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "trainer_state.json";
const STATE_FORMAT: &str = "vigil-trainer-state-1";

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub format: String,
    /// Optimizer steps completed.
    pub step: usize,
    /// The epoch (0-based) of the next micro-batch.
    pub epoch: usize,
    /// The index of the next micro-batch in that epoch's order.
    pub batch_in_epoch: usize,
    /// [`crate::TrainRng::state`] after the last completed step.
    pub rng_state: u64,
    pub best_eval_loss: Option<f64>,
    pub best_step: Option<usize>,
    /// Evaluations in a row without improvement (early stopping's counter).
    pub evals_without_improvement: usize,
    /// Non-pad tokens trained on so far.
    pub total_tokens: u64,
    /// Training seconds so far (across resumes).
    pub elapsed_s: f64,
    /// [`TrainConfig::hash`] of the run.
    pub config_hash: String,
    /// [`crate::Dataset::fingerprint`] of the training and eval rows.
    pub train_fingerprint: String,
    pub eval_fingerprint: Option<String>,
    /// The run's config, for the message when a resume is refused.
    pub config: TrainConfig,
    /// SHA-256 of each tensor file of the checkpoint.
    pub files: BTreeMap<String, String>,
    /// The run had ended (completed or stopped early) when this was written; resuming it
    /// does nothing.
    #[serde(default)]
    pub finished: bool,
}

impl TrainerState {
    pub(crate) fn format() -> String {
        STATE_FORMAT.to_string()
    }
}

/// The directory name of the checkpoint at `step`.
pub fn checkpoint_name(step: usize) -> String {
    format!("checkpoint-{step}")
}

/// Checkpoints in `output_dir`, by step (directories named `checkpoint-<n>` that hold a
/// state file).
pub fn list_checkpoints(output_dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(output_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(output_dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_err(output_dir))?;
        let name = entry.file_name();
        let Some(step) = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if entry.path().join(STATE_FILE).is_file() {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The checkpoint with the highest step in `output_dir`, if any.
pub fn latest_checkpoint(output_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list_checkpoints(output_dir)?.pop().map(|(_, p)| p))
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path))
}

/// Writes a checkpoint atomically and returns its directory. `state.files` is filled in here.
pub fn save(
    output_dir: &Path,
    state: &TrainerState,
    params: &[(String, Var)],
    optimizer: &AdamW,
) -> Result<PathBuf> {
    std::fs::create_dir_all(output_dir).map_err(io_err(output_dir))?;
    let name = checkpoint_name(state.step);
    let tmp = output_dir.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;

    let tensors: BTreeMap<String, Tensor> = params
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "vigil-params-1".to_string());
    meta.insert("step".to_string(), state.step.to_string());
    st::write(&tmp.join(PARAMS_FILE), &tensors, meta)?;
    optimizer.save(&tmp.join(OPTIMIZER_FILE))?;

    let mut state = state.clone();
    state.files.clear();
    for f in [PARAMS_FILE, OPTIMIZER_FILE] {
        let p = tmp.join(f);
        sync_file(&p)?;
        state.files.insert(f.to_string(), sha256_file(&p)?);
    }
    let json = serde_json::to_string_pretty(&state)
        .map_err(|e| TrainError::Run(format!("cannot serialise the trainer state: {e}")))?;
    let sp = tmp.join(STATE_FILE);
    std::fs::write(&sp, json).map_err(io_err(&sp))?;
    sync_file(&sp)?;

    let dest = output_dir.join(&name);
    if dest.exists() {
        // Same step saved again (e.g. the final save right after a periodic one).
        let old = output_dir.join(format!(".old-{name}"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&dest, &old).map_err(io_err(&dest))?;
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    } else {
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    }
    if let Ok(d) = std::fs::File::open(output_dir) {
        let _ = d.sync_all();
    }
    Ok(dest)
}

/// Reads and checks `trainer_state.json` of a checkpoint directory.
pub fn read_state(dir: &Path) -> Result<TrainerState> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        TrainError::checkpoint(
            &path,
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("missing ({} is not a checkpoint directory)", dir.display())
            } else {
                format!("cannot read: {e}")
            },
        )
    })?;
    let state: TrainerState = serde_json::from_str(&text)
        .map_err(|e| TrainError::checkpoint(&path, format!("corrupt or truncated JSON: {e}")))?;
    if state.format != STATE_FORMAT {
        return Err(TrainError::checkpoint(
            &path,
            format!(
                "format {:?}, this build reads {STATE_FORMAT:?}",
                state.format
            ),
        ));
    }
    Ok(state)
}

/// Checks a tensor file of a checkpoint against the hash its state recorded.
fn verify(dir: &Path, state: &TrainerState, file: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    let want = state.files.get(file).ok_or_else(|| {
        TrainError::checkpoint(&dir.join(STATE_FILE), format!("records no hash for {file}"))
    })?;
    if !path.is_file() {
        return Err(TrainError::checkpoint(&path, "missing"));
    }
    let got = sha256_file(&path)?;
    if &got != want {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        return Err(TrainError::checkpoint(
            &path,
            format!(
                "its contents changed since the checkpoint was written (SHA-256 mismatch, \
                 {len} bytes): truncated or corrupt; resume from an older checkpoint"
            ),
        ));
    }
    Ok(path)
}

/// Loads `params.safetensors` of a checkpoint into `params` (all or nothing: every name must
/// be present with its shape, and nothing else may be in the file).
pub fn load_params(dir: &Path, params: &[(String, Var)]) -> Result<()> {
    let state = read_state(dir)?;
    let path = verify(dir, &state, PARAMS_FILE)?;
    load_params_file(&path, params)
}

fn load_params_file(path: &Path, params: &[(String, Var)]) -> Result<()> {
    let device = params
        .first()
        .map(|(_, v)| v.device().clone())
        .unwrap_or(candle_core::Device::Cpu);
    let (mut tensors, _) = st::read(path, &device)?;
    let mut values = Vec::with_capacity(params.len());
    for (name, var) in params {
        let t = tensors.remove(name).ok_or_else(|| {
            TrainError::checkpoint(path, format!("has no tensor for parameter `{name}`"))
        })?;
        if t.dims() != var.dims() {
            return Err(TrainError::checkpoint(
                path,
                format!(
                    "`{name}` has shape {:?}, the parameter {:?}",
                    t.dims(),
                    var.dims()
                ),
            ));
        }
        values.push(t.to_dtype(var.dtype())?);
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(TrainError::checkpoint(
            path,
            format!("holds `{extra}`, which is no trainable parameter of this run"),
        ));
    }
    for ((_, var), t) in params.iter().zip(values) {
        var.set(&t)?;
    }
    Ok(())
}

/// Loads a whole checkpoint: parameters, optimizer state, and the trainer state (returned).
pub fn load(dir: &Path, params: &[(String, Var)], optimizer: &mut AdamW) -> Result<TrainerState> {
    let state = read_state(dir)?;
    let pp = verify(dir, &state, PARAMS_FILE)?;
    let op = verify(dir, &state, OPTIMIZER_FILE)?;
    optimizer.load(&op)?;
    if optimizer.step_count() != state.step as u64 {
        return Err(TrainError::checkpoint(
            &op,
            format!(
                "is at step {}, the trainer state at step {}",
                optimizer.step_count(),
                state.step
            ),
        ));
    }
    load_params_file(&pp, params)?;
    Ok(state)
}

/// Deletes old checkpoints, keeping the `keep` latest and `protect` (the best one);
/// `keep == 0` keeps everything. Also removes leftovers of interrupted saves.
pub fn rotate(output_dir: &Path, keep: usize, protect: Option<usize>) -> Result<()> {
    if let Ok(rd) = std::fs::read_dir(output_dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(".tmp-checkpoint-") || n.starts_with(".old-checkpoint-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    if keep == 0 {
        return Ok(());
    }
    let all = list_checkpoints(output_dir)?;
    let n = all.len();
    for (i, (step, path)) in all.into_iter().enumerate() {
        if i + keep < n && Some(step) != protect {
            std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}
