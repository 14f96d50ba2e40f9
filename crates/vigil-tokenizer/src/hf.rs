//! Building a [`Tokenizer`] from a Hugging Face model directory:
//! `tokenizer.json` (the `tokenizers` pipeline, used as is) plus, when
//! given, `tokenizer_config.json` for BOS/EOS, their add flags and the chat
//! template.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde_json::Value as J;

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::gguf::STOP_TEXTS;
use crate::pieces::{self, PieceStyle};
use crate::tokenizer::{Cleanup, Engine, Inner, TokenKind, Tokenizer};

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_json(path: &Path, text: &str) -> Result<J> {
    serde_json::from_str(text).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `"<s>"` or `{"content": "<s>", ...}` (both appear in the wild).
fn token_text(v: Option<&J>) -> Option<String> {
    match v? {
        J::String(s) => Some(s.clone()),
        J::Object(o) => o
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// Does the decoder (possibly a Sequence) contain a step matching `pred`?
fn decoder_has(decoder: &J, pred: &dyn Fn(&J) -> bool) -> bool {
    if pred(decoder) {
        return true;
    }
    decoder
        .get("decoders")
        .and_then(|d| d.as_array())
        .is_some_and(|steps| steps.iter().any(|s| decoder_has(s, pred)))
}

fn type_is(v: &J, t: &str) -> bool {
    v.get("type").and_then(|x| x.as_str()) == Some(t)
}

/// The chat template from tokenizer_config.json: a string, or a list of
/// named templates of which we take "default" (else the first).
fn config_template(config: &J) -> Option<String> {
    match config.get("chat_template")? {
        J::String(s) => Some(s.clone()),
        J::Array(list) => {
            let pick = list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or_else(|| list.first())?;
            pick.get("template")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        }
        _ => None,
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json`, and `tokenizer_config.json` when given (BOS /
    /// EOS texts, `add_bos_token`, `add_eos_token`,
    /// `clean_up_tokenization_spaces`, `chat_template`; a `chat_template.jinja`
    /// beside either file is used when the config has no template).
    pub fn from_files(tokenizer_json: &Path, tokenizer_config_json: Option<&Path>) -> Result<Self> {
        let text = read(tokenizer_json)?;
        let raw = parse_json(tokenizer_json, &text)?;
        let parse: tokenizers::Tokenizer = text.parse().map_err(|e| Error::Json {
            path: tokenizer_json.to_path_buf(),
            message: format!("not a tokenizers file: {e}"),
        })?;
        let config = match tokenizer_config_json {
            Some(p) => parse_json(p, &read(p)?)?,
            None => J::Object(Default::default()),
        };

        // id → text over the model vocabulary and the added tokens.
        let vocab = parse.get_vocab(true);
        let n = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut tokens = vec![String::new(); n];
        let mut present = vec![false; n];
        for (t, id) in vocab {
            present[id as usize] = true;
            tokens[id as usize] = t;
        }

        let decoder = raw.get("decoder").cloned().unwrap_or(J::Null);
        let style = if decoder_has(&decoder, &|d| type_is(d, "ByteLevel")) {
            PieceStyle::ByteLevel
        } else {
            PieceStyle::Metaspace
        };
        let byte_fallback = raw
            .pointer("/model/byte_fallback")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        // A Strip of one leading space (Llama/Mistral) or a Metaspace that
        // prepends one means the first decoded space is not the user's.
        let strip_first_space = decoder_has(&decoder, &|d| {
            (type_is(d, "Strip")
                && d.get("content").and_then(|c| c.as_str()) == Some(" ")
                && d.get("start").and_then(|s| s.as_u64()) == Some(1))
                || (type_is(d, "Metaspace")
                    && (d.get("add_prefix_space").and_then(|a| a.as_bool()) == Some(true)
                        || matches!(
                            d.get("prepend_scheme").and_then(|p| p.as_str()),
                            Some("always") | Some("first")
                        )))
        });

        let mut kinds: Vec<TokenKind> = (0..n)
            .map(|i| {
                if !present[i] {
                    TokenKind::Unused
                } else if byte_fallback {
                    pieces::parse_byte_token(&tokens[i])
                        .map(TokenKind::Byte)
                        .unwrap_or(TokenKind::Normal)
                } else {
                    TokenKind::Normal
                }
            })
            .collect();
        for (id, added) in parse.get_added_tokens_decoder() {
            if let Some(k) = kinds.get_mut(id as usize) {
                *k = if added.special {
                    TokenKind::Control
                } else {
                    TokenKind::UserDefined
                };
            }
        }

        let id_of = |t: &str| parse.token_to_id(t);
        let bos = token_text(config.get("bos_token")).and_then(|t| id_of(&t));
        let eos = token_text(config.get("eos_token")).and_then(|t| id_of(&t));
        // What the post-processor adds tells us the defaults when the config
        // is silent (transformers rebuilds the post-processor from the
        // config flags, so those win).
        let probe = parse.encode_fast("a", true).map_err(Error::tok)?;
        let probe = probe.get_ids();
        let add_bos = config
            .get("add_bos_token")
            .and_then(|b| b.as_bool())
            .unwrap_or_else(|| bos.is_some() && probe.first() == bos.as_ref() && probe.len() > 1);
        let add_eos = config
            .get("add_eos_token")
            .and_then(|b| b.as_bool())
            .unwrap_or_else(|| eos.is_some() && probe.last() == eos.as_ref() && probe.len() > 1);
        let cleanup = if config
            .get("clean_up_tokenization_spaces")
            .and_then(|c| c.as_bool())
            .unwrap_or(false)
        {
            Cleanup::Transformers
        } else {
            Cleanup::None
        };

        let mut stop_ids: Vec<u32> = STOP_TEXTS.iter().filter_map(|t| id_of(t)).collect();
        stop_ids.extend(eos);
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let eot = ["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"]
            .iter()
            .find_map(|t| id_of(t));

        let template_src = match config_template(&config) {
            Some(s) => Some(s),
            None => [Some(tokenizer_json), tokenizer_config_json]
                .into_iter()
                .flatten()
                .filter_map(|p| p.parent())
                .map(|d| d.join("chat_template.jinja"))
                .find(|p| p.is_file())
                .map(|p| read(&p))
                .transpose()?,
        };
        let (chat_template, chat_template_error) = match template_src {
            None => (None, None),
            Some(src) => {
                let bos_text = bos.map(|b| tokens[b as usize].clone()).unwrap_or_default();
                let eos_text = eos.map(|e| tokens[e as usize].clone()).unwrap_or_default();
                match ChatTemplate::new(&src, &bos_text, &eos_text) {
                    Ok(t) => (Some(t), None),
                    Err(e) => {
                        tracing::warn!(error = %e, "the model's chat template is not usable");
                        (None, Some(e.to_string()))
                    }
                }
            }
        };

        let inner = Inner {
            engine: Engine::Json {
                parse: Box::new(parse),
                literal: OnceLock::new(),
            },
            tokens: Arc::new(tokens),
            kinds,
            style,
            bos,
            eos,
            eot,
            add_bos,
            add_eos,
            add_space_prefix: strip_first_space,
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
