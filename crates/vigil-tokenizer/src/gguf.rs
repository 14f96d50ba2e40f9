//! Building a [`Tokenizer`] from GGUF metadata, following llama.cpp's
//! `llama_vocab::load` so that ids match llama.cpp's exactly.
//!
//! * `gpt2` vocabularies: byte-level BPE from `tokens` + `merges`, split
//!   first by the regexes llama.cpp uses for the `pre` value.
//! * `llama` (SentencePiece) vocabularies: llama.cpp merges adjacent pieces,
//!   highest-scoring result first. A BPE whose merge list holds every
//!   (left, right) split of every token, ranked by the score of the token
//!   they form, makes the same choices; unknown characters fall back to
//!   `<0xAB>` byte tokens.

use std::sync::Arc;

use ahash::AHashMap;
use candle_core::quantized::gguf_file::Content;
use tokenizers::models::bpe::BpeBuilder;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::pieces::{self, PieceStyle};
use crate::special::SpecialSplitter;
use crate::tokenizer::{Cleanup, Engine, Inner, Pipeline, TokenKind, Tokenizer};

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// Token texts llama.cpp treats as end-of-turn when no `eot_token_id` is given.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<end_of_utterance>",
];

/// Token texts that end generation in llama.cpp (its EOG set, without the
/// fill-in-the-middle markers, which only matter for code infilling).
pub(crate) const STOP_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

/// Pre-tokenizer regexes per llama.cpp `pre` name. Each regex splits every
/// piece left by the previous one, matches and gaps both kept. llama.cpp's
/// GPT-2 style patterns omit the final `|\s+` because its hand-written
/// matcher implies it; a general regex engine needs it spelled out.
pub(crate) fn pre_regexes(pre: &str) -> Option<(&'static [&'static str], bool, bool)> {
    // (regexes, ignore_merges, clean_spaces)
    const GPT2: &str =
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    static DEFAULT: [&str; 4] = [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];
    static DIGITS_THEN_GPT2: [&str; 2] = [r"\p{N}", GPT2];
    static ONLY_GPT2: [&str; 1] = [GPT2];
    static ONLY_LLAMA3: [&str; 1] = [LLAMA3];
    static ONLY_QWEN2: [&str; 1] = [QWEN2];
    Some(match pre {
        "default" | "" => (&DEFAULT[..], false, true),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" => (&ONLY_LLAMA3[..], true, true),
        "dbrx" | "smaug-bpe" => (&ONLY_LLAMA3[..], false, true),
        "smollm" | "command-r" => (&DIGITS_THEN_GPT2[..], false, false),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" => {
            (&DIGITS_THEN_GPT2[..], false, true)
        }
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "mpt" | "olmo" | "jais" | "mellum" | "exaone4" => (&ONLY_GPT2[..], false, true),
        "qwen2" | "deepseek-r1-qwen" | "kormo" => (&ONLY_QWEN2[..], false, false),
        "megrez" | "stablelm2" => (&ONLY_QWEN2[..], false, true),
        _ => return None,
    })
}

/// The tokens texts, checked and with llama.cpp's placeholder for empty ones.
fn token_texts(tokens: Vec<&str>) -> Result<(Vec<String>, AHashMap<String, u32>)> {
    if tokens.is_empty() {
        return Err(Error::InvalidMetadata(format!("`{KEY_TOKENS}` is empty")));
    }
    if tokens.len() > u32::MAX as usize {
        return Err(Error::InvalidMetadata(format!(
            "`{KEY_TOKENS}` has too many entries"
        )));
    }
    let mut texts = Vec::with_capacity(tokens.len());
    let mut ids: AHashMap<String, u32> = AHashMap::with_capacity(tokens.len());
    for (i, t) in tokens.into_iter().enumerate() {
        let text = if t.is_empty() {
            format!("[EMPTY_{i}]")
        } else {
            t.to_string()
        };
        if let Some(prev) = ids.insert(text.clone(), i as u32) {
            return Err(Error::InvalidMetadata(format!(
                "duplicate token {text:?} in `{KEY_TOKENS}` (ids {prev} and {i})"
            )));
        }
        texts.push(text);
    }
    Ok((texts, ids))
}

/// Every way to write each token as two shorter tokens, ranked by the score
/// of the token they make (best first). This is the SentencePiece merge
/// order llama.cpp applies at run time, written as a BPE merge list.
fn merges_from_scores(
    texts: &[String],
    ids: &AHashMap<String, u32>,
    scores: &[f32],
) -> Vec<(String, String)> {
    let mut found: Vec<(f32, u32, u32)> = Vec::with_capacity(texts.len() * 2);
    for (id, text) in texts.iter().enumerate() {
        for cut in text.char_indices().map(|(i, _)| i).skip(1) {
            if ids.contains_key(&text[..cut]) && ids.contains_key(&text[cut..]) {
                found.push((scores[id], id as u32, cut as u32));
            }
        }
    }
    // Higher score first; ties (different tokens with equal score) by id so
    // the order is reproducible.
    found.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    found
        .into_iter()
        .map(|(_, id, cut)| {
            let t = &texts[id as usize];
            (t[..cut as usize].to_string(), t[cut as usize..].to_string())
        })
        .collect()
}

/// `tokenizer.ggml.merges` entries ("a b") → pairs, dropping (with a count
/// in the log) any whose parts or result are missing from the vocabulary:
/// llama.cpp would merge them and then fall back to bytes; the `tokenizers`
/// BPE refuses such a list outright.
fn parse_merges(merges: Vec<&str>, ids: &AHashMap<String, u32>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(merges.len());
    let mut dropped = 0usize;
    for m in merges {
        // As llama.cpp: split at the first space after the first byte (a
        // byte search: the first byte may start a multi-byte char).
        let Some(pos) = m
            .as_bytes()
            .iter()
            .skip(1)
            .position(|&b| b == b' ')
            .map(|p| p + 1)
        else {
            dropped += 1;
            continue;
        };
        let (a, b) = (&m[..pos], &m[pos + 1..]);
        let joined = format!("{a}{b}");
        if ids.contains_key(a) && ids.contains_key(b) && ids.contains_key(&joined) {
            out.push((a.to_string(), b.to_string()));
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "GGUF merges referring to tokens outside the vocabulary were skipped"
        );
    }
    out
}

/// SentencePiece vocabulary → BPE with score-ranked merges and byte
/// fallback; spaces become ▁ first, as llama.cpp's escape step.
fn build_spm(
    texts: &[String],
    ids: AHashMap<String, u32>,
    scores: &[f32],
    unk: Option<String>,
) -> Result<tokenizers::Tokenizer> {
    let merges = merges_from_scores(texts, &ids, scores);
    let mut builder = BpeBuilder::new()
        .vocab_and_merges(ids, merges)
        .byte_fallback(true);
    if let Some(u) = unk {
        builder = builder.unk_token(u);
    }
    let bpe = builder.build().map_err(Error::tok)?;
    let mut pipeline = tokenizers::Tokenizer::new(bpe);
    let normalizer = Replace::new(" ", "\u{2581}").map_err(Error::tok)?;
    pipeline
        .with_normalizer(Some(normalizer))
        .map_err(Error::tok)?;
    Ok(pipeline)
}

/// Byte-level BPE: llama.cpp's regex splits for `pre`, then bytes → GPT-2
/// chars, then the file's merges.
pub(crate) fn build_gpt2(
    ids: AHashMap<String, u32>,
    merges: &[String],
    regexes: &[&str],
    ignore_merges: bool,
) -> Result<tokenizers::Tokenizer> {
    let merges = parse_merges(merges.iter().map(String::as_str).collect(), &ids);
    let bpe = BpeBuilder::new()
        .vocab_and_merges(ids, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(Error::tok)?;
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(regexes.len() + 1);
    for r in regexes {
        let split = Split::new(
            SplitPattern::Regex((*r).to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(Error::tok)?;
        steps.push(split.into());
    }
    // Bytes → GPT-2 chars only; the splitting was done above.
    steps.push(ByteLevel::new(false, false, false).into());
    let mut pipeline = tokenizers::Tokenizer::new(bpe);
    pipeline.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(pipeline)
}

fn checked_id(meta: &Meta<'_>, key: &str, default: Option<u32>, n: usize) -> Result<Option<u32>> {
    let default = default.filter(|&d| (d as usize) < n);
    match meta.u32(key)? {
        Some(id) if (id as usize) < n => Ok(Some(id)),
        Some(id) => {
            tracing::warn!(key, id, vocab = n, "special token id out of range; ignored");
            Ok(default)
        }
        None => Ok(default),
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*`
    /// metadata (and its `tokenizer.chat_template`).
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let meta = Meta(&content.metadata);
        let model = meta.require(KEY_MODEL, meta.string(KEY_MODEL))?;
        let spm = match model {
            "llama" => true,
            "gpt2" => false,
            other => return Err(Error::UnsupportedModel(other.to_string())),
        };
        let raw_tokens = meta.require(KEY_TOKENS, meta.strings(KEY_TOKENS))?;
        let n = raw_tokens.len();
        let (texts, ids) = token_texts(raw_tokens)?;

        let types = meta.i32s(KEY_TYPES)?;
        if let Some(t) = &types {
            if t.len() < n {
                return Err(Error::InvalidMetadata(format!(
                    "`{KEY_TYPES}` has {} entries for {n} tokens",
                    t.len()
                )));
            }
        }
        let mut kinds: Vec<TokenKind> = match &types {
            Some(t) => t[..n].iter().map(|&t| TokenKind::from_gguf(t)).collect(),
            None => vec![TokenKind::Normal; n],
        };
        for (i, kind) in kinds.iter_mut().enumerate() {
            if let TokenKind::Byte(_) = kind {
                let b = pieces::parse_byte_token(&texts[i]).ok_or_else(|| {
                    Error::InvalidMetadata(format!(
                        "byte token {i} has text {:?}, expected <0xAB>",
                        texts[i]
                    ))
                })?;
                *kind = TokenKind::Byte(b);
            }
        }

        // Defaults per family, then the file's own settings (llama.cpp order).
        let pre = meta.string(KEY_PRE)?.unwrap_or("default");
        let (mut add_bos, mut add_eos, mut add_space_prefix, cleanup);
        let (bos_default, eos_default, unk_default);
        if spm {
            (add_bos, add_eos, add_space_prefix) = (true, false, true);
            cleanup = Cleanup::None;
            (bos_default, eos_default, unk_default) = (Some(1), Some(2), Some(0));
        } else {
            let (_, _, clean) =
                pre_regexes(pre).ok_or_else(|| Error::UnsupportedPreTokenizer(pre.into()))?;
            add_bos = matches!(
                pre,
                "llama3"
                    | "llama-v3"
                    | "llama-bpe"
                    | "falcon3"
                    | "falcon-h1"
                    | "pixtral"
                    | "midm-2.0"
                    | "lfm2"
            );
            (add_eos, add_space_prefix) = (false, false);
            cleanup = if clean {
                Cleanup::LlamaCpp
            } else {
                Cleanup::None
            };
            (bos_default, eos_default, unk_default) = (Some(11), Some(11), None);
        }
        if let Some(v) = meta.bool("tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }
        if let Some(v) = meta.bool("tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = meta.bool("tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }
        if meta.bool("tokenizer.ggml.remove_extra_whitespaces")? == Some(true) {
            tracing::warn!("tokenizer.ggml.remove_extra_whitespaces is not supported; ignored");
        }
        let bos = checked_id(&meta, "tokenizer.ggml.bos_token_id", bos_default, n)?;
        let eos = checked_id(&meta, "tokenizer.ggml.eos_token_id", eos_default, n)?;
        let unk = checked_id(&meta, "tokenizer.ggml.unknown_token_id", unk_default, n)?;
        let eom = checked_id(&meta, "tokenizer.ggml.eom_token_id", None, n)?;
        let mut eot = checked_id(&meta, "tokenizer.ggml.eot_token_id", None, n)?;
        if add_bos && bos.is_none() {
            return Err(Error::InvalidMetadata(
                "tokenizer.ggml.add_bos_token is true but there is no valid BOS id".into(),
            ));
        }
        if add_eos && eos.is_none() {
            return Err(Error::InvalidMetadata(
                "tokenizer.ggml.add_eos_token is true but there is no valid EOS id".into(),
            ));
        }
        if eot.is_none() {
            // First in list order, so ChatML's <|im_end|> wins over <|endoftext|>.
            eot = EOT_TEXTS.iter().find_map(|t| ids.get(*t).copied());
        }
        // Like llama.cpp: end-of-turn-looking tokens are control tokens even
        // when a converter forgot to mark them.
        let mut stop_ids: Vec<u32> = STOP_TEXTS
            .iter()
            .filter_map(|t| ids.get(*t).copied())
            .collect();
        stop_ids.extend(eos.into_iter().chain(eot).chain(eom));
        stop_ids.sort_unstable();
        stop_ids.dedup();
        for &id in &stop_ids {
            let k = &mut kinds[id as usize];
            if !k.is_special() && *k != TokenKind::UserDefined {
                *k = TokenKind::Control;
            }
        }

        let texts = Arc::new(texts);
        let pipeline = if spm {
            let scores = meta.require(KEY_SCORES, meta.scores(KEY_SCORES))?;
            if scores.len() < n {
                return Err(Error::InvalidMetadata(format!(
                    "`{KEY_SCORES}` has {} entries for {n} tokens",
                    scores.len()
                )));
            }
            let unk_text = unk.map(|u| texts[u as usize].clone());
            let texts = Arc::clone(&texts);
            Pipeline::in_background(move || build_spm(&texts, ids, &scores, unk_text))?
        } else {
            let merges: Vec<String> = meta
                .require(KEY_MERGES, meta.strings(KEY_MERGES))?
                .into_iter()
                .map(str::to_string)
                .collect();
            let (regexes, ignore_merges, _) =
                pre_regexes(pre).ok_or_else(|| Error::UnsupportedPreTokenizer(pre.into()))?;
            Pipeline::in_background(move || build_gpt2(ids, &merges, regexes, ignore_merges))?
        };

        let specials: Vec<(u32, &str, bool)> = kinds
            .iter()
            .enumerate()
            .filter_map(|(i, k)| match k {
                TokenKind::Control | TokenKind::Unknown => {
                    Some((i as u32, texts[i].as_str(), false))
                }
                TokenKind::UserDefined => Some((i as u32, texts[i].as_str(), true)),
                _ => None,
            })
            .collect();
        let splitter = SpecialSplitter::new(specials);

        let (chat_template, chat_template_error) = match meta.string("tokenizer.chat_template")? {
            None => (None, None),
            Some(src) => {
                let bos_text = bos.map(|b| texts[b as usize].as_str()).unwrap_or("");
                let eos_text = eos.map(|e| texts[e as usize].as_str()).unwrap_or("");
                match ChatTemplate::new(src, bos_text, eos_text) {
                    Ok(t) => (Some(t), None),
                    Err(e) => {
                        tracing::warn!(error = %e, "the model's chat template is not usable");
                        (None, Some(e.to_string()))
                    }
                }
            }
        };

        let inner = Inner {
            engine: Engine::Gguf {
                pipeline,
                splitter,
                spm,
            },
            tokens: texts,
            kinds,
            style: if spm {
                PieceStyle::Metaspace
            } else {
                PieceStyle::ByteLevel
            },
            bos,
            eos,
            eot,
            add_bos,
            add_eos,
            add_space_prefix,
            cleanup,
            chat_template,
            chat_template_error,
        };
        Ok(Tokenizer {
            inner: Arc::new(inner),
            stop_ids,
        })
    }
}
