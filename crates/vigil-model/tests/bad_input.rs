//! Bad model files must give an error that names the file and says what is wrong — never
//! a panic, never a silent load.
//!
//! Broken GGUFs are cut or patched from the real SmolLM2 file; shape, missing-tensor and
//! architecture cases use a tiny valid model (hidden 64, one layer) written here as GGUF
//! and as a Hugging Face directory, which is first shown to load, so every failure below
//! is caused by the one thing each case breaks.

mod common;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use common::{model_path, SMOLLM2};
use serde_json::json;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use vigil_model::weights::hf_tensor_name;
use vigil_model::{Family, Model, ModelConfig, WeightSource};

/// Runs `load`, turning a panic into a test failure with the panic's message, and checks
/// the error names `file` and contains at least one of `words` (case-insensitive).
/// Returns the message.
fn expect_error<T>(
    case: &str,
    file: &Path,
    words: &[&str],
    load: impl FnOnce() -> vigil_model::Result<T>,
) -> String {
    let msg = match std::panic::catch_unwind(AssertUnwindSafe(load)) {
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{case}: the loader panicked instead of returning an error: {what}")
        }
        Ok(Ok(_)) => panic!("{case}: loaded without an error"),
        Ok(Err(e)) => e.to_string(),
    };
    eprintln!("{case}: {msg}");
    let shown = file.display().to_string();
    assert!(
        msg.contains(&shown),
        "{case}: the error does not name {shown}: {msg}"
    );
    let lower = msg.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(&w.to_lowercase())),
        "{case}: the error says none of {words:?}: {msg}"
    );
    msg
}

fn load_model(path: &Path) -> impl FnOnce() -> vigil_model::Result<Model> + '_ {
    move || Model::load(path)
}

// ---------------------------------------------------------------------------------------
// GGUF files derived from the real SmolLM2 file
// ---------------------------------------------------------------------------------------

fn smollm2_bytes() -> Vec<u8> {
    std::fs::read(model_path(SMOLLM2)).unwrap()
}

/// Where the real file's tensor data starts (end of header + alignment).
fn smollm2_data_offset() -> usize {
    let mut f = std::fs::File::open(model_path(SMOLLM2)).unwrap();
    gguf_file::Content::read(&mut f).unwrap().tensor_data_offset as usize
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn truncated_gguf_header() {
    let bytes = smollm2_bytes();
    let data = smollm2_data_offset();
    let dir = tempfile::tempdir().unwrap();
    // Inside the magic, inside the version, inside the counts, early in the metadata, in
    // the middle of the tokenizer arrays, and one byte short of the tensor directory's
    // end.
    for cut in [2, 6, 20, 200, data / 2, data - 1] {
        let p = write(dir.path(), &format!("cut-{cut}.gguf"), &bytes[..cut]);
        expect_error(
            &format!("GGUF cut at byte {cut} (header)"),
            &p,
            &["truncated", "too short"],
            load_model(&p),
        );
    }
}

#[test]
fn truncated_gguf_tensor_data() {
    let bytes = smollm2_bytes();
    let data = smollm2_data_offset();
    let dir = tempfile::tempdir().unwrap();
    // No tensor data at all, the middle of it, and the last byte missing (the last
    // tensor is then one byte short).
    for cut in [data, data + (bytes.len() - data) / 2, bytes.len() - 1] {
        let p = write(dir.path(), &format!("cut-{cut}.gguf"), &bytes[..cut]);
        expect_error(
            &format!("GGUF cut at byte {cut} of {} (tensor data)", bytes.len()),
            &p,
            &["truncated"],
            load_model(&p),
        );
    }
}

#[test]
fn wrong_magic_and_version() {
    let bytes = smollm2_bytes();
    let dir = tempfile::tempdir().unwrap();

    let mut b = bytes.clone();
    b[..4].copy_from_slice(b"GGML");
    let p = write(dir.path(), "ggml-magic.gguf", &b);
    expect_error("wrong magic", &p, &["not a GGUF"], load_model(&p));
    // The lower-level reader, which does not go through format detection, too.
    expect_error("wrong magic (open_gguf)", &p, &["magic"], || {
        WeightSource::open_gguf(&p)
    });

    for version in [0u32, 4, 0xffff_ffff] {
        let mut b = bytes.clone();
        b[4..8].copy_from_slice(&version.to_le_bytes());
        let p = write(dir.path(), &format!("v{version}.gguf"), &b);
        expect_error(
            &format!("GGUF version {version}"),
            &p,
            &["version"],
            load_model(&p),
        );
    }
    // Version 1 exists but has 32-bit counts: the v3 header then reads as nonsense and
    // must fail somewhere in the header, without a panic.
    let mut b = bytes.clone();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    let p = write(dir.path(), "v1.gguf", &b);
    expect_error("GGUF v3 file marked v1", &p, &["gguf"], load_model(&p));
}

#[test]
fn empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.gguf", b"");
    expect_error("empty file", &p, &["too short", "empty"], load_model(&p));
    expect_error(
        "empty file (open_gguf)",
        &p,
        &["truncated", "empty"],
        || WeightSource::open_gguf(&p),
    );
    let p = dir.path().join("no-such-model.gguf");
    expect_error(
        "missing file",
        &p,
        &["no such file", "not found"],
        load_model(&p),
    );
}

// ---------------------------------------------------------------------------------------
// A tiny valid model, and one defect at a time
// ---------------------------------------------------------------------------------------

const HIDDEN: usize = 64;
const FFN: usize = 128;
const HEADS: usize = 4;
const TOKENS: [&str; 6] = ["<unk>", "<s>", "</s>", "\u{2581}a", "a", "\u{2581}"];

/// Deterministic small weights (a fixed LCG), so the valid model computes finite logits.
fn weights(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// The tiny Llama's tensors by GGUF name, `[out, in]` shapes.
fn tiny_tensors() -> Vec<(String, Tensor)> {
    let v = TOKENS.len();
    let shapes: Vec<(&str, Vec<usize>)> = vec![
        ("token_embd.weight", vec![v, HIDDEN]),
        ("blk.0.attn_norm.weight", vec![HIDDEN]),
        ("blk.0.attn_q.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.attn_k.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.attn_v.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.attn_output.weight", vec![HIDDEN, HIDDEN]),
        ("blk.0.ffn_norm.weight", vec![HIDDEN]),
        ("blk.0.ffn_gate.weight", vec![FFN, HIDDEN]),
        ("blk.0.ffn_up.weight", vec![FFN, HIDDEN]),
        ("blk.0.ffn_down.weight", vec![HIDDEN, FFN]),
        ("output_norm.weight", vec![HIDDEN]),
    ];
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, (n, d))| (n.to_string(), weights(&d, i as u64)))
        .collect()
}

fn tiny_metadata() -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value as V;
    vec![
        ("general.architecture".into(), V::String("llama".into())),
        ("llama.block_count".into(), V::U32(1)),
        ("llama.embedding_length".into(), V::U32(HIDDEN as u32)),
        ("llama.feed_forward_length".into(), V::U32(FFN as u32)),
        ("llama.attention.head_count".into(), V::U32(HEADS as u32)),
        ("llama.attention.head_count_kv".into(), V::U32(HEADS as u32)),
        ("llama.context_length".into(), V::U32(128)),
        ("llama.rope.freq_base".into(), V::F32(10_000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            V::F32(1e-5),
        ),
        ("tokenizer.ggml.model".into(), V::String("llama".into())),
        (
            "tokenizer.ggml.tokens".into(),
            V::Array(TOKENS.iter().map(|t| V::String(t.to_string())).collect()),
        ),
        (
            "tokenizer.ggml.scores".into(),
            V::Array(TOKENS.iter().map(|_| V::F32(0.0)).collect()),
        ),
    ]
}

fn write_gguf(path: &Path, metadata: &[(String, gguf_file::Value)], tensors: &[(String, Tensor)]) {
    let q: Vec<(String, QTensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), QTensor::quantize(t, GgmlDType::F32).unwrap()))
        .collect();
    let md: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &ts).unwrap();
}

fn set_meta(md: &mut Vec<(String, gguf_file::Value)>, key: &str, value: gguf_file::Value) {
    md.retain(|(k, _)| k != key);
    md.push((key.to_string(), value));
}

fn replace_tensor(ts: &mut [(String, Tensor)], name: &str, t: Tensor) {
    ts.iter_mut().find(|(n, _)| n == name).unwrap().1 = t;
}

/// Control for every tiny-GGUF case: unchanged, it loads and runs.
#[test]
fn tiny_gguf_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    write_gguf(&p, &tiny_metadata(), &tiny_tensors());
    let m = Model::load(&p).unwrap_or_else(|e| panic!("the valid tiny GGUF: {e}"));
    assert_eq!(m.config().hidden_size, HIDDEN);
    let logits = last_logits(&m, &[1, 3, 4]);
    assert_eq!(logits.len(), TOKENS.len());
    assert!(logits.iter().all(|x| x.is_finite()));
}

fn last_logits(m: &Model, ids: &[u32]) -> Vec<f32> {
    let mut state = m.decoder.new_state(vec![0]);
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let out = m
        .decoder
        .forward(&input, &mut state, &Default::default())
        .unwrap();
    out.logits
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn gguf_tensor_shape_disagrees_with_config() {
    let dir = tempfile::tempdir().unwrap();
    // Metadata says hidden 64; attn_q is 64 × 32.
    let mut ts = tiny_tensors();
    replace_tensor(&mut ts, "blk.0.attn_q.weight", weights(&[HIDDEN, 32], 99));
    let p = dir.path().join("q-64x32.gguf");
    write_gguf(&p, &tiny_metadata(), &ts);
    let msg = expect_error("attn_q 64×32", &p, &["shape"], load_model(&p));
    assert!(msg.contains("blk.0.attn_q.weight"), "{msg}");

    // A norm vector of the wrong length.
    let mut ts = tiny_tensors();
    replace_tensor(&mut ts, "output_norm.weight", weights(&[HIDDEN + 1], 98));
    let p = dir.path().join("norm-65.gguf");
    write_gguf(&p, &tiny_metadata(), &ts);
    expect_error("output_norm of 65", &p, &["shape"], load_model(&p));

    // Metadata that cannot describe these tensors: 5 heads do not divide 64 evenly
    // (head_dim 12 → q is 60 × 64, not 64 × 64).
    let mut md = tiny_metadata();
    set_meta(
        &mut md,
        "llama.attention.head_count",
        gguf_file::Value::U32(5),
    );
    set_meta(
        &mut md,
        "llama.attention.head_count_kv",
        gguf_file::Value::U32(5),
    );
    let p = dir.path().join("heads-5.gguf");
    write_gguf(&p, &md, &tiny_tensors());
    expect_error("5 heads of hidden 64", &p, &["shape"], load_model(&p));
}

#[test]
fn gguf_missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut ts = tiny_tensors();
    ts.retain(|(n, _)| n != "blk.0.ffn_up.weight");
    let p = dir.path().join("no-ffn-up.gguf");
    write_gguf(&p, &tiny_metadata(), &ts);
    let msg = expect_error("ffn_up missing", &p, &["missing"], load_model(&p));
    assert!(msg.contains("blk.0.ffn_up.weight"), "{msg}");

    // The metadata claims a second layer the file does not have.
    let mut md = tiny_metadata();
    set_meta(&mut md, "llama.block_count", gguf_file::Value::U32(2));
    let p = dir.path().join("two-layers.gguf");
    write_gguf(&p, &md, &tiny_tensors());
    let msg = expect_error("block_count 2, one layer", &p, &["missing"], load_model(&p));
    assert!(msg.contains("blk.1."), "{msg}");
}

#[test]
fn gguf_bad_metadata() {
    use gguf_file::Value as V;
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &str, Option<V>, &[&str])> = vec![
        (
            "unsupported architecture",
            "general.architecture",
            Some(V::String("mamba".into())),
            &["unsupported architecture"],
        ),
        (
            "no architecture",
            "general.architecture",
            None,
            &["general.architecture"],
        ),
        (
            "block_count is a string",
            "llama.block_count",
            Some(V::String("thirty".into())),
            &["llama.block_count"],
        ),
        (
            "no embedding_length",
            "llama.embedding_length",
            None,
            &["llama.embedding_length"],
        ),
        (
            "zero heads",
            "llama.attention.head_count",
            Some(V::U32(0)),
            &["heads"],
        ),
        (
            "kv heads do not divide heads",
            "llama.attention.head_count_kv",
            Some(V::U32(3)),
            &["key/value heads"],
        ),
        // A corrupt count must not make the loader allocate per-layer state for 2^40
        // layers (an abort, which no test could catch) or overflow shape arithmetic.
        (
            "absurd block_count",
            "llama.block_count",
            Some(V::U64(1 << 40)),
            &["layers", "block_count"],
        ),
        (
            "absurd head_count",
            "llama.attention.head_count",
            Some(V::U64(1 << 40)),
            &["heads", "head_count"],
        ),
        ("no tokenizer", "tokenizer.ggml.model", None, &["tokenizer"]),
    ];
    for (i, (case, key, value, words)) in cases.into_iter().enumerate() {
        let mut md = tiny_metadata();
        match value {
            Some(v) => set_meta(&mut md, key, v),
            None => md.retain(|(k, _)| k != key),
        }
        let p = dir.path().join(format!("meta-{i}.gguf"));
        write_gguf(&p, &md, &tiny_tensors());
        expect_error(case, &p, words, load_model(&p));
    }
}

// ---------------------------------------------------------------------------------------
// Hugging Face directories
// ---------------------------------------------------------------------------------------

fn tiny_config_json() -> serde_json::Value {
    json!({
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": 1,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "vocab_size": TOKENS.len(),
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": true
    })
}

/// A minimal `tokenizers` file over the same six tokens, so `Model::load` gets past the
/// tokenizer to the weights.
fn tiny_tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
}

/// Writes a tiny Hugging Face directory with the given tensors (GGUF names, renamed).
fn write_hf_dir(dir: &Path, tensors: &[(String, Tensor)], config: &serde_json::Value) {
    let map: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(n, t)| (hf_tensor_name(n, Family::Llama).unwrap(), t.clone()))
        .collect();
    candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        tiny_tokenizer_json().to_string(),
    )
    .unwrap();
}

fn tiny_hf_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), &tiny_tensors(), &tiny_config_json());
    dir
}

/// Control for the Hugging Face cases: the unchanged directory loads and runs.
#[test]
fn tiny_hf_dir_is_valid() {
    let dir = tiny_hf_dir();
    let m = Model::load(dir.path()).unwrap_or_else(|e| panic!("the valid tiny directory: {e}"));
    assert_eq!(m.config().hidden_size, HIDDEN);
    assert!(last_logits(&m, &[1, 3, 4]).iter().all(|x| x.is_finite()));
}

#[test]
fn directory_without_config() {
    let dir = tiny_hf_dir();
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    expect_error(
        "no config.json",
        dir.path(),
        &["config.json"],
        load_model(dir.path()),
    );
}

#[test]
fn bad_config_json() {
    let dir = tiny_hf_dir();
    let cfg_path = dir.path().join("config.json");

    std::fs::write(
        &cfg_path,
        "{\"model_type\": \"llama\", \"hidden_size\": 64,",
    )
    .unwrap();
    expect_error(
        "truncated JSON",
        &cfg_path,
        &["invalid JSON"],
        load_model(dir.path()),
    );

    std::fs::write(&cfg_path, "").unwrap();
    expect_error(
        "empty config.json",
        &cfg_path,
        &["invalid JSON"],
        load_model(dir.path()),
    );

    for key in [
        "model_type",
        "hidden_size",
        "num_attention_heads",
        "num_hidden_layers",
        "intermediate_size",
        "vocab_size",
    ] {
        let mut cfg = tiny_config_json();
        cfg.as_object_mut().unwrap().remove(key);
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let msg = expect_error(
            &format!("config.json without {key}"),
            &cfg_path,
            &["missing"],
            load_model(dir.path()),
        );
        assert!(msg.contains(key), "{msg}");
    }

    let mut cfg = tiny_config_json();
    cfg["hidden_size"] = json!("sixty-four");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let msg = expect_error(
        "hidden_size is a string",
        &cfg_path,
        &["must be a non-negative integer"],
        load_model(dir.path()),
    );
    assert!(msg.contains("hidden_size"), "{msg}");

    let mut cfg = tiny_config_json();
    cfg["model_type"] = json!("mamba");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    expect_error(
        "unsupported model_type",
        &cfg_path,
        &["unsupported model_type"],
        load_model(dir.path()),
    );

    let mut cfg = tiny_config_json();
    cfg["num_hidden_layers"] = json!(1u64 << 40);
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    expect_error(
        "absurd num_hidden_layers",
        &cfg_path,
        &["layers"],
        load_model(dir.path()),
    );
}

#[test]
fn corrupt_safetensors() {
    let dir = tiny_hf_dir();
    let st = dir.path().join("model.safetensors");
    let good = std::fs::read(&st).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("empty safetensors", vec![]));
    cases.push(("header length only", good[..8].to_vec()));
    let mut b = good.clone();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("header length u64::MAX", b));
    let mut b = good.clone();
    b[8] = b'[';
    cases.push(("header not a JSON object", b));
    let mut b = good.clone();
    b[8..8 + header_len].fill(b'x');
    cases.push(("header garbage", b));
    cases.push(("cut inside the header", good[..8 + header_len / 2].to_vec()));
    cases.push((
        "cut inside the tensor data",
        good[..8 + header_len + (good.len() - 8 - header_len) / 2].to_vec(),
    ));
    for (case, bytes) in cases {
        std::fs::write(&st, &bytes).unwrap();
        expect_error(
            case,
            &st,
            &["safetensors", "header", "buffer"],
            load_model(dir.path()),
        );
    }
}

#[test]
fn safetensors_shape_disagrees_with_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut ts = tiny_tensors();
    replace_tensor(&mut ts, "blk.0.attn_q.weight", weights(&[HIDDEN, 32], 99));
    write_hf_dir(dir.path(), &ts, &tiny_config_json());
    let msg = expect_error(
        "q_proj 64×32",
        dir.path(),
        &["shape"],
        load_model(dir.path()),
    );
    // A Hugging Face user knows the tensor by its Hugging Face name.
    assert!(
        msg.contains("model.layers.0.self_attn.q_proj.weight"),
        "{msg}"
    );

    // The config says hidden 96; every tensor is 64 wide.
    let mut cfg = tiny_config_json();
    cfg["hidden_size"] = json!(96);
    write_hf_dir(dir.path(), &tiny_tensors(), &cfg);
    expect_error(
        "config hidden 96, tensors 64",
        dir.path(),
        &["shape"],
        load_model(dir.path()),
    );
}

#[test]
fn safetensors_missing_tensor_and_shard() {
    let dir = tempfile::tempdir().unwrap();
    let mut ts = tiny_tensors();
    ts.retain(|(n, _)| n != "blk.0.ffn_up.weight");
    write_hf_dir(dir.path(), &ts, &tiny_config_json());
    let msg = expect_error(
        "up_proj missing",
        dir.path(),
        &["missing", "cannot find"],
        load_model(dir.path()),
    );
    assert!(msg.contains("model.layers.0.mlp.up_proj.weight"), "{msg}");

    // An index that names a shard which is not there.
    let dir = tiny_hf_dir();
    std::fs::rename(
        dir.path().join("model.safetensors"),
        dir.path().join("model-00001-of-00002.safetensors"),
    )
    .unwrap();
    let index = json!({"weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "model.norm.weight": "model-00002-of-00002.safetensors"
    }});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let missing = dir.path().join("model-00002-of-00002.safetensors");
    expect_error(
        "missing shard",
        &missing,
        &["not found"],
        load_model(dir.path()),
    );

    // An index that is not JSON.
    let index_path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&index_path, "{").unwrap();
    expect_error(
        "index not JSON",
        &index_path,
        &["invalid JSON"],
        load_model(dir.path()),
    );

    // No weights at all.
    let dir = tiny_hf_dir();
    let st = dir.path().join("model.safetensors");
    std::fs::remove_file(&st).unwrap();
    expect_error(
        "no model.safetensors",
        &st,
        &["not found"],
        load_model(dir.path()),
    );
}

/// The lower-level path (`open_safetensors` + `from_hf_json` + `Decoder::load`) used by
/// callers that bring their own tokenizer reports the same problems.
#[test]
fn lower_level_safetensors_loader() {
    let dir = tempfile::tempdir().unwrap();
    let mut ts = tiny_tensors();
    replace_tensor(&mut ts, "blk.0.ffn_down.weight", weights(&[FFN, HIDDEN], 7));
    write_hf_dir(dir.path(), &ts, &tiny_config_json());
    let cfg = ModelConfig::from_hf_json(&tiny_config_json()).unwrap();
    expect_error("ffn_down transposed", dir.path(), &["shape"], || {
        let mut src = WeightSource::open_safetensors(dir.path(), Family::Llama)?;
        vigil_model::Decoder::load(cfg, &mut src)
    });
}
