//! Converting a vocabulary between GGUF metadata and Hugging Face tokenizer files, for
//! `vigil export`.
//!
//! * [`hf_files_from_gguf`]: a GGUF byte-level BPE (`tokenizer.ggml.model = gpt2`) as
//!   `tokenizer.json` + `tokenizer_config.json`. The pre-tokenizer is written as the
//!   regexes vigil (and llama.cpp) use for the file's `pre` value, so the Hugging Face
//!   tokenizer splits text exactly as the GGUF one does.
//! * [`gguf_metadata_from_hf`]: the reverse, the `tokenizer.*` keys llama.cpp expects. The
//!   `pre` name is found by behaviour, as llama.cpp's converter does: the same probe texts
//!   are tokenised by the Hugging Face pipeline and by each known `pre` pipeline built from
//!   the same vocabulary, and the first that agrees on every id is chosen.
//!
//! SentencePiece vocabularies (`tokenizer.ggml.model = llama`, or a `tokenizer.json`
//! without a byte-level step) are refused with a message: their scores do not survive a
//! `tokenizer.json` and back.

use std::collections::HashMap;
use std::path::Path;

use ahash::AHashMap;
use candle_core::quantized::gguf_file::Value;
use serde_json::{json, Value as J};
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::AddedToken;

use crate::error::{Error, Result};
use crate::gguf::{build_gpt2, pre_regexes};
use crate::meta::Meta;
use crate::tokenizer::TokenKind;
use crate::Tokenizer;

/// `tokenizer.json` text and the `tokenizer_config.json` object for one vocabulary.
#[derive(Debug, Clone)]
pub struct HfTokenizerFiles {
    pub tokenizer_json: String,
    pub tokenizer_config: J,
}

/// GGUF `token_type` numbers.
fn gguf_type(kind: TokenKind) -> i32 {
    match kind {
        TokenKind::Normal => 1,
        TokenKind::Unknown => 2,
        TokenKind::Control => 3,
        TokenKind::UserDefined => 4,
        TokenKind::Unused => 5,
        TokenKind::Byte(_) => 6,
    }
}

/// The Hugging Face files for a GGUF file's vocabulary (`metadata` is the file's key/value
/// map). Unused tokens are left out of the vocabulary, as the GGUF converter leaves them
/// out of a `tokenizer.json`; control tokens become special added tokens and user-defined
/// ones plain added tokens.
pub fn hf_files_from_gguf(metadata: &HashMap<String, Value>) -> Result<HfTokenizerFiles> {
    let meta = Meta(metadata);
    let model = meta.require("tokenizer.ggml.model", meta.string("tokenizer.ggml.model"))?;
    if model != "gpt2" {
        return Err(Error::UnsupportedModel(format!(
            "{model} (only byte-level BPE `gpt2` vocabularies are written as tokenizer.json)"
        )));
    }
    let tokens = meta.require(
        "tokenizer.ggml.tokens",
        meta.strings("tokenizer.ggml.tokens"),
    )?;
    let n = tokens.len();
    let types = meta.i32s("tokenizer.ggml.token_type")?.unwrap_or_default();
    let kind = |i: usize| TokenKind::from_gguf(types.get(i).copied().unwrap_or(1));
    let merges = meta.require(
        "tokenizer.ggml.merges",
        meta.strings("tokenizer.ggml.merges"),
    )?;
    let pre = meta.string("tokenizer.ggml.pre")?.unwrap_or("default");
    let (regexes, ignore_merges, clean) =
        pre_regexes(pre).ok_or_else(|| Error::UnsupportedPreTokenizer(pre.into()))?;

    let mut ids: AHashMap<String, u32> = AHashMap::with_capacity(n);
    for (i, t) in tokens.iter().enumerate() {
        if kind(i) != TokenKind::Unused && ids.insert(t.to_string(), i as u32).is_some() {
            return Err(Error::InvalidMetadata(format!(
                "duplicate token {t:?} in `tokenizer.ggml.tokens`"
            )));
        }
    }
    let merges: Vec<String> = merges.into_iter().map(str::to_string).collect();
    let mut pipeline = build_gpt2(ids, &merges, regexes, ignore_merges)?;
    pipeline.with_decoder(Some(ByteLevel::new(false, false, false)));
    let added: Vec<AddedToken> = (0..n)
        .filter_map(|i| match kind(i) {
            TokenKind::Control | TokenKind::Unknown => {
                Some(AddedToken::from(tokens[i], true).normalized(false))
            }
            TokenKind::UserDefined => Some(AddedToken::from(tokens[i], false).normalized(false)),
            _ => None,
        })
        .collect();
    pipeline.add_special_tokens(added).map_err(Error::tok)?;

    let id = |key: &str| -> Result<Option<(u32, String)>> {
        Ok(meta
            .u32(key)?
            .filter(|&i| (i as usize) < n)
            .map(|i| (i, tokens[i as usize].to_string())))
    };
    let bos = id("tokenizer.ggml.bos_token_id")?;
    let eos = id("tokenizer.ggml.eos_token_id")?;
    let add_bos = meta.bool("tokenizer.ggml.add_bos_token")?;
    let add_eos = meta.bool("tokenizer.ggml.add_eos_token")?;
    // What a prompt gets around it, as llama.cpp adds it (transformers reads this).
    let mut template: Vec<String> = Vec::new();
    let mut specials: Vec<(String, u32)> = Vec::new();
    if let (Some(true), Some((i, t))) = (add_bos, &bos) {
        template.push(t.clone());
        specials.push((t.clone(), *i));
    }
    template.push("$A".into());
    if let (Some(true), Some((i, t))) = (add_eos, &eos) {
        template.push(t.clone());
        specials.push((t.clone(), *i));
    }
    if !specials.is_empty() {
        let post = TemplateProcessing::builder()
            .try_single(template)
            .map_err(Error::tok)?
            .special_tokens(specials)
            .build()
            .map_err(Error::tok)?;
        pipeline.with_post_processor(Some(post));
    }
    let tokenizer_json = pipeline.to_string(true).map_err(Error::tok)?;

    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": clean,
    });
    for (field, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
    ] {
        if let Some((_, text)) = id(key)? {
            config[field] = json!(text);
        }
    }
    if let Some(b) = add_bos {
        config["add_bos_token"] = json!(b);
    }
    if let Some(b) = add_eos {
        config["add_eos_token"] = json!(b);
    }
    if let Some(t) = meta.string("tokenizer.chat_template")? {
        config["chat_template"] = json!(t);
    }
    Ok(HfTokenizerFiles {
        tokenizer_json,
        tokenizer_config: config,
    })
}

/// The `pre` names tried, one per distinct pipeline, most specific first.
const PRE_CANDIDATES: &[&str] = &[
    "smollm",
    "starcoder",
    "qwen2",
    "stablelm2",
    "llama-bpe",
    "dbrx",
    "gpt-2",
    "default",
];

/// Texts that tell the known pre-tokenizers apart: digit runs, contractions in both
/// cases, whitespace runs and line ends, punctuation runs, several scripts.
const PRE_PROBES: &[&str] = &[
    "Hello world! I'm here, you'll see: 12345 and 3.14159, 1,000,000.",
    "I'LL SAY IT'S 'RE 'VE 'M 'D — don't won't shan't",
    "def f(x):\n    return x ** 2  # square\n\n\n\tindent\r\n  ",
    "SELECT * FROM users WHERE id = '1' OR '1'='1'; --- ===>>> $$$ ^^^ ~~~ |||",
    "日本語のテキスト、中文，한국어 Ünïcödé naïve café 🚀🔥 ١٢٣ ๑๒๓",
    "   leading and trailing   \n\n  a1b2c3 9999999 007 x86_64 <div class=\"a\">",
];

/// The `tokenizer.*` GGUF keys for a Hugging Face tokenizer (`tokenizer.json`, with
/// `tokenizer_config.json` and the model's `config.json` when given), padded to
/// `vocab_size` with unused `[PAD{id}]` tokens as llama.cpp's converter does.
pub fn gguf_metadata_from_hf(
    tokenizer_json: &Path,
    tokenizer_config: Option<&Path>,
    model_config: Option<&J>,
    vocab_size: usize,
) -> Result<Vec<(String, Value)>> {
    let json_err = |message: String| Error::Json {
        path: tokenizer_json.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(tokenizer_json).map_err(|source| Error::Io {
        path: tokenizer_json.to_path_buf(),
        source,
    })?;
    let raw: J = serde_json::from_str(&text).map_err(|e| json_err(e.to_string()))?;
    if raw.pointer("/model/type").and_then(J::as_str) != Some("BPE") {
        return Err(json_err("only BPE tokenizers convert to GGUF".into()));
    }
    if !text.contains("\"ByteLevel\"") {
        return Err(json_err(
            "this is a SentencePiece-style BPE (no ByteLevel step); only byte-level BPE \
             (GPT-2 style) vocabularies convert to GGUF for now"
                .into(),
        ));
    }
    let vocab = raw
        .pointer("/model/vocab")
        .and_then(J::as_object)
        .ok_or_else(|| json_err("no model.vocab object".into()))?;
    let mut ids: AHashMap<String, u32> = AHashMap::with_capacity(vocab.len());
    for (t, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| json_err(format!("vocabulary entry {t:?} has no valid id")))?;
        ids.insert(t.clone(), id);
    }
    let merges: Vec<String> = raw
        .pointer("/model/merges")
        .and_then(J::as_array)
        .ok_or_else(|| json_err("no model.merges list".into()))?
        .iter()
        .map(|m| match m {
            J::String(s) => Ok(s.clone()),
            J::Array(p) if p.len() == 2 => match (p[0].as_str(), p[1].as_str()) {
                (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                _ => Err(json_err(format!("merge {m} is not two strings"))),
            },
            _ => Err(json_err(format!("merge {m} is neither \"a b\" nor [a, b]"))),
        })
        .collect::<Result<_>>()?;

    let tok = Tokenizer::from_files(tokenizer_json, tokenizer_config)?;
    let config: J = match tokenizer_config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|e| Error::Json {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?
        }
        None => json!({}),
    };
    let hf_clean = config
        .get("clean_up_tokenization_spaces")
        .and_then(J::as_bool)
        .unwrap_or(false);
    let pre = detect_pre(&text, &ids, &merges, hf_clean)?;

    let n = vocab_size.max(tok.vocab_size());
    let mut tokens = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for i in 0..n as u32 {
        match (tok.token_str(i), tok.token_kind(i)) {
            (Some(t), Some(k)) if k != TokenKind::Unused => {
                tokens.push(Value::String(t));
                types.push(Value::I32(gguf_type(k)));
            }
            _ => {
                tokens.push(Value::String(format!("[PAD{i}]")));
                types.push(Value::I32(gguf_type(TokenKind::Unused)));
            }
        }
    }
    let mut kv: Vec<(String, Value)> = vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.into_iter().map(Value::String).collect()),
        ),
    ];
    // Special ids: the tokenizer config's texts first, the model config's ids second (the
    // order llama.cpp's converter uses).
    let text_id = |field: &str| -> Option<u32> {
        let t = match config.get(field)? {
            J::String(s) => s.clone(),
            J::Object(o) => o.get("content")?.as_str()?.to_string(),
            _ => return None,
        };
        tok.token_id(&t)
    };
    let config_id = |field: &str| -> Option<u32> {
        model_config?
            .get(field)?
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .filter(|&i| (i as usize) < n)
    };
    for (field, key) in [
        ("bos", "bos_token_id"),
        ("eos", "eos_token_id"),
        ("unk", "unknown_token_id"),
        ("pad", "padding_token_id"),
    ] {
        let id =
            text_id(&format!("{field}_token")).or_else(|| config_id(&format!("{field}_token_id")));
        if let Some(id) = id {
            kv.push((format!("tokenizer.ggml.{key}"), Value::U32(id)));
        }
    }
    if let Some(prefix) = byte_level_prefix_space(raw.get("pre_tokenizer")) {
        kv.push((
            "tokenizer.ggml.add_space_prefix".into(),
            Value::Bool(prefix),
        ));
    }
    for flag in ["add_bos_token", "add_eos_token"] {
        if let Some(b) = config.get(flag).and_then(J::as_bool) {
            kv.push((format!("tokenizer.ggml.{flag}"), Value::Bool(b)));
        }
    }
    if let Some(t) = tok.chat_template() {
        kv.push((
            "tokenizer.chat_template".into(),
            Value::String(t.source().to_string()),
        ));
    }
    Ok(kv)
}

/// `add_prefix_space` of the pre-tokenizer's ByteLevel step (inside a Sequence or not).
fn byte_level_prefix_space(step: Option<&J>) -> Option<bool> {
    let step = step?;
    if step.get("type").and_then(J::as_str) == Some("ByteLevel") {
        return step.get("add_prefix_space").and_then(J::as_bool);
    }
    step.get("pretokenizers")?
        .as_array()?
        .iter()
        .find_map(|s| byte_level_prefix_space(Some(s)))
}

/// The first `pre` whose pipeline, built from this vocabulary, tokenises every probe as
/// the `tokenizer.json` pipeline does; among equals, one whose space clean-up matches the
/// tokenizer config's.
fn detect_pre(
    tokenizer_json: &str,
    ids: &AHashMap<String, u32>,
    merges: &[String],
    hf_clean: bool,
) -> Result<&'static str> {
    let hf: tokenizers::Tokenizer = tokenizer_json.parse().map_err(Error::tok)?;
    let encode = |t: &tokenizers::Tokenizer| -> Result<Vec<Vec<u32>>> {
        PRE_PROBES
            .iter()
            .map(|p| {
                t.encode_fast(*p, false)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(Error::tok)
            })
            .collect()
    };
    let want = encode(&hf)?;
    let mut agreeing = Vec::new();
    for &name in PRE_CANDIDATES {
        let Some((regexes, ignore, clean)) = pre_regexes(name) else {
            continue;
        };
        let candidate = build_gpt2(ids.clone(), merges, regexes, ignore)?;
        if encode(&candidate)? == want {
            agreeing.push((name, clean));
        }
    }
    agreeing
        .iter()
        .find(|(_, clean)| *clean == hf_clean)
        .or(agreeing.first())
        .map(|(name, _)| *name)
        .ok_or_else(|| {
            Error::UnsupportedPreTokenizer(
                "(none of llama.cpp's known pre-tokenizers splits text as this tokenizer.json \
                 does)"
                    .into(),
            )
        })
}
