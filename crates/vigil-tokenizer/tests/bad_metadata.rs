//! Bad GGUF metadata must give a clear error, never a panic.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use vigil_tokenizer::{Error, Tokenizer};

fn content(entries: Vec<(&str, Value)>) -> Content {
    Content {
        magic: VersionedMagic::GgufV3,
        metadata: entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    }
}

fn strs(xs: &[&str]) -> Value {
    Value::Array(xs.iter().map(|s| Value::String(s.to_string())).collect())
}

fn spm_tokens() -> Value {
    strs(&["<unk>", "<s>", "</s>", "\u{2581}a", "a", "\u{2581}"])
}

#[test]
fn missing_model_key() {
    let err = Tokenizer::from_gguf(&content(vec![])).unwrap_err();
    assert!(
        matches!(err, Error::MissingKey(ref k) if k == "tokenizer.ggml.model"),
        "{err}"
    );
}

#[test]
fn missing_tokens() {
    let c = content(vec![(
        "tokenizer.ggml.model",
        Value::String("llama".into()),
    )]);
    let err = Tokenizer::from_gguf(&c).unwrap_err();
    assert!(
        matches!(err, Error::MissingKey(ref k) if k == "tokenizer.ggml.tokens"),
        "{err}"
    );
    assert!(err.to_string().contains("tokenizer.ggml.tokens"));
}

#[test]
fn scores_shorter_than_tokens() {
    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", spm_tokens()),
        (
            "tokenizer.ggml.scores",
            Value::Array(vec![Value::F32(0.0); 3]),
        ),
    ]);
    let err = Tokenizer::from_gguf(&c).unwrap_err();
    assert!(matches!(err, Error::InvalidMetadata(_)), "{err}");
    assert!(err.to_string().contains("3 entries for 6 tokens"), "{err}");
}

#[test]
fn wrong_types() {
    let c = content(vec![("tokenizer.ggml.model", Value::U32(3))]);
    let err = Tokenizer::from_gguf(&c).unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");

    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", Value::Array(vec![Value::U8(1)])),
    ]);
    let err = Tokenizer::from_gguf(&c).unwrap_err();
    assert!(err.to_string().contains("array of string"), "{err}");
}

#[test]
fn unsupported_model_and_pre() {
    let c = content(vec![("tokenizer.ggml.model", Value::String("t5".into()))]);
    assert!(matches!(
        Tokenizer::from_gguf(&c).unwrap_err(),
        Error::UnsupportedModel(_)
    ));
    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("no-such-pre".into())),
        ("tokenizer.ggml.tokens", strs(&["a", "b", "ab"])),
        ("tokenizer.ggml.merges", strs(&["a b"])),
    ]);
    assert!(matches!(
        Tokenizer::from_gguf(&c).unwrap_err(),
        Error::UnsupportedPreTokenizer(_)
    ));
}

#[test]
fn gpt2_without_merges() {
    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", strs(&["a", "b", "ab"])),
    ]);
    let err = Tokenizer::from_gguf(&c).unwrap_err();
    assert!(
        matches!(err, Error::MissingKey(ref k) if k == "tokenizer.ggml.merges"),
        "{err}"
    );
}

#[test]
fn duplicate_tokens_and_bad_byte_token() {
    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", strs(&["a", "a"])),
        (
            "tokenizer.ggml.scores",
            Value::Array(vec![Value::F32(0.0); 2]),
        ),
    ]);
    assert!(Tokenizer::from_gguf(&c)
        .unwrap_err()
        .to_string()
        .contains("duplicate token"));
    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        (
            "tokenizer.ggml.tokens",
            strs(&["<unk>", "<s>", "</s>", "<0xZZ>"]),
        ),
        (
            "tokenizer.ggml.scores",
            Value::Array(vec![Value::F32(0.0); 4]),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vec![
                Value::I32(2),
                Value::I32(3),
                Value::I32(3),
                Value::I32(6),
            ]),
        ),
    ]);
    assert!(Tokenizer::from_gguf(&c)
        .unwrap_err()
        .to_string()
        .contains("<0xZZ>"));
}

#[test]
fn tiny_spm_vocab_works() {
    let c = content(vec![
        ("tokenizer.ggml.model", Value::String("llama".into())),
        ("tokenizer.ggml.tokens", spm_tokens()),
        (
            "tokenizer.ggml.scores",
            Value::Array(
                [0.0, 0.0, 0.0, -1.0, -2.0, -3.0]
                    .into_iter()
                    .map(Value::F32)
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array([2, 3, 3, 1, 1, 1].into_iter().map(Value::I32).collect()),
        ),
    ]);
    let tok = Tokenizer::from_gguf(&c).unwrap();
    // add_space_prefix defaults to true for SentencePiece: "a a" → "▁a▁a".
    assert_eq!(tok.encode("a a", true, false).unwrap(), vec![1, 3, 3]);
    // The prefix space is dropped again on decode; after a BOS llama.cpp
    // keeps it, and so do we.
    assert_eq!(tok.decode(&[3, 3], true).unwrap(), "a a");
    assert_eq!(tok.decode(&[1, 3, 3], true).unwrap(), " a a");
    // A character with no token and no byte fallback becomes <unk>.
    assert_eq!(tok.encode("b", false, false).unwrap(), vec![5, 0]);
    assert!(tok.decode(&[99], false).is_err());
}
