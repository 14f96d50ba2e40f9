//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::Content;
use vigil_tokenizer::Tokenizer;

/// The one place that says where test models live: an environment variable,
/// else the path they were downloaded to on the build machine. Returns None
/// (and the caller skips) when the file is absent.
pub fn model_path(env: &str, fallback: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback));
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: model not found at {} (set {env})", p.display());
        None
    }
}

pub fn smollm2() -> Option<PathBuf> {
    model_path(
        "VIGIL_TEST_SMOLLM2",
        "/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf",
    )
}

pub fn gemma3() -> Option<PathBuf> {
    model_path("VIGIL_TEST_GEMMA3", "/tmp/models/gemma-3-270m-q4_k_m.gguf")
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
