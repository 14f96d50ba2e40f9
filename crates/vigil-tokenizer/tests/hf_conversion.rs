//! GGUF vocabulary → tokenizer.json → GGUF metadata, on the real default model: the
//! written tokenizer.json, loaded by the `tokenizers` library as transformers loads it,
//! must give llama.cpp's ids on the committed fixture strings, and converting it back
//! must reproduce the GGUF's `tokenizer.*` keys.

mod common;

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use vigil_tokenizer::{gguf_metadata_from_hf, hf_files_from_gguf, Error, Tokenizer};

fn write_files(
    metadata: &HashMap<String, Value>,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let files = hf_files_from_gguf(metadata).expect("convert the vocabulary");
    let json = dir.join("tokenizer.json");
    let config = dir.join("tokenizer_config.json");
    std::fs::write(&json, files.tokenizer_json).unwrap();
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&files.tokenizer_config).unwrap(),
    )
    .unwrap();
    (json, config)
}

#[test]
fn written_tokenizer_json_gives_llama_cpp_ids() {
    let path = common::smollm2().unwrap();
    let content = common::read_content(&path);
    let dir = tempfile::tempdir().unwrap();
    let (json, config) = write_files(&content.metadata, dir.path());

    let fixture: common::TokenizeFixture = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("smollm2-135m-instruct", "tokenize.json"))
            .unwrap(),
    )
    .unwrap();
    let gguf = Tokenizer::from_gguf(&content).unwrap();
    let specials: Vec<String> = gguf.special_tokens().into_iter().map(|s| s.1).collect();

    // The bare `tokenizers` pipeline (what transformers' fast tokenizer runs) always cuts
    // out added tokens, so it is compared where llama.cpp parsed specials too, or the text
    // has none.
    let hf = tokenizers::Tokenizer::from_file(&json).unwrap();
    let mut compared = 0;
    for e in &fixture.entries {
        if !e.special && specials.iter().any(|s| e.text.contains(s.as_str())) {
            continue;
        }
        let ids = hf.encode(e.text.as_str(), e.add_bos).unwrap();
        assert_eq!(ids.get_ids(), &e.ids[..], "tokenizers on {:?}", e.text);
        compared += 1;
    }
    assert!(compared >= 290, "only {compared} strings compared");

    // vigil's own Hugging Face loader on the written pair: every string, specials or not.
    let reloaded = Tokenizer::from_files(&json, Some(&config)).unwrap();
    for e in &fixture.entries {
        let ids = reloaded.encode(&e.text, e.add_bos, e.special).unwrap();
        assert_eq!(ids, e.ids, "vigil from tokenizer.json on {:?}", e.text);
    }
    assert_eq!(reloaded.bos_id(), gguf.bos_id());
    assert_eq!(reloaded.eos_id(), gguf.eos_id());
    assert_eq!(
        reloaded.chat_template().map(|t| t.source()),
        gguf.chat_template().map(|t| t.source())
    );
}

#[test]
fn tokenizer_json_converts_back_to_the_same_gguf_keys() {
    let path = common::smollm2().unwrap();
    let content = common::read_content(&path);
    let dir = tempfile::tempdir().unwrap();
    let (json, config) = write_files(&content.metadata, dir.path());
    let n = match &content.metadata["tokenizer.ggml.tokens"] {
        Value::Array(a) => a.len(),
        other => panic!("tokens: {other:?}"),
    };
    let back: HashMap<String, Value> = gguf_metadata_from_hf(&json, Some(&config), None, n)
        .unwrap()
        .into_iter()
        .collect();
    let mut checked = Vec::new();
    for (key, value) in &content.metadata {
        if !key.starts_with("tokenizer.") {
            continue;
        }
        let ours = back
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not reproduced"));
        assert_eq!(format!("{ours:?}"), format!("{value:?}"), "{key}");
        checked.push(key.as_str());
    }
    for key in back.keys() {
        assert!(
            content.metadata.contains_key(key),
            "{key} was added by the conversion"
        );
    }
    checked.sort();
    eprintln!("identical after the round trip: {checked:?}");
    assert!(checked.contains(&"tokenizer.ggml.pre"));
    assert!(checked.contains(&"tokenizer.ggml.merges"));
}

#[test]
fn sentencepiece_vocabularies_are_refused_by_name() {
    let path = common::gemma3().unwrap();
    let content = common::read_content(&path);
    match hf_files_from_gguf(&content.metadata) {
        Err(Error::UnsupportedModel(m)) => assert!(m.contains("llama"), "{m}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn unknown_pre_tokenizers_and_broken_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("tokenizer.json");
    std::fs::write(&json, "{\"model\": {\"type\": \"BPE\"").unwrap();
    let e = gguf_metadata_from_hf(&json, None, None, 10).unwrap_err();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");

    // A word-level vocabulary is not a BPE.
    std::fs::write(
        &json,
        r#"{"version":"1.0","model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}"#,
    )
    .unwrap();
    let e = gguf_metadata_from_hf(&json, None, None, 10).unwrap_err();
    assert!(e.to_string().contains("only BPE"), "{e}");

    // The default model's vocabulary with a pre-tokenizer that splits nothing (bytes only):
    // no llama.cpp `pre` tokenises like it, so the conversion must refuse, not guess.
    let content = common::read_content(&common::smollm2().unwrap());
    let (written, config) = write_files(&content.metadata, dir.path());
    let mut raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    raw["pre_tokenizer"] = serde_json::json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false
    });
    std::fs::write(&written, raw.to_string()).unwrap();
    match gguf_metadata_from_hf(&written, Some(&config), None, 49152) {
        Err(Error::UnsupportedPreTokenizer(m)) => assert!(m.contains("none of"), "{m}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}
