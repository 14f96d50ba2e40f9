//! The [`Tokenizer`]: one type whatever the source (GGUF metadata or
//! `tokenizer.json`), with llama.cpp's encoding rules for GGUF vocabularies.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::pieces::{self, PieceStyle};
use crate::special::{Piece, SpecialSplitter};

/// What a vocabulary entry is, following GGUF's `tokenizer.ggml.token_type`
/// (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Ordinary text piece.
    Normal,
    /// The unknown token (`<unk>`); rendered only when specials are shown.
    Unknown,
    /// Control token (`<bos>`, `<|im_end|>`, ...): parsed from text only on
    /// request, rendered only when specials are shown.
    Control,
    /// User-defined token: always cut out of the text before BPE and always
    /// rendered verbatim (Gemma's runs of newlines, `<td>`, ...).
    UserDefined,
    /// Reserved and never produced; renders as nothing.
    Unused,
    /// SentencePiece byte-fallback token `<0xAB>` for the byte it names.
    Byte(u8),
}

impl TokenKind {
    pub(crate) fn from_gguf(t: i32) -> TokenKind {
        match t {
            1 => TokenKind::Normal,
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            6 => TokenKind::Byte(0), // byte filled in from the text by the caller
            // 5 = unused, 0 / anything else = undefined: llama.cpp renders
            // neither and never produces them.
            _ => TokenKind::Unused,
        }
    }

    /// Control and unknown tokens: hidden by `decode(.., skip_special=true)`.
    pub fn is_special(self) -> bool {
        matches!(self, TokenKind::Control | TokenKind::Unknown)
    }
}

/// Which post-decoding space clean-up applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    None,
    /// llama.cpp's `clean_spaces` (BPE vocabularies with most `pre` values).
    LlamaCpp,
    /// transformers' `clean_up_tokenization_spaces`.
    Transformers,
}

type Built = std::result::Result<tokenizers::Tokenizer, String>;

/// A `tokenizers` pipeline that may still be under construction on a helper
/// thread. Building the BPE of a 262k SentencePiece vocabulary (half a
/// million merges) takes longer than everything else in `from_gguf`; doing
/// it beside the weight loading hides that cost. Only `encode` waits for it.
pub(crate) struct Pipeline {
    built: OnceLock<Built>,
    job: Mutex<Option<JoinHandle<Built>>>,
}

impl Pipeline {
    pub(crate) fn in_background<F>(build: F) -> Result<Self>
    where
        F: FnOnce() -> Result<tokenizers::Tokenizer> + Send + 'static,
    {
        let handle = std::thread::Builder::new()
            .name("vigil-tokenizer-build".into())
            .spawn(move || build().map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::Tokenizers(format!("cannot start the tokenizer build thread: {e}"))
            })?;
        Ok(Pipeline {
            built: OnceLock::new(),
            job: Mutex::new(Some(handle)),
        })
    }

    pub(crate) fn get(&self) -> Result<&tokenizers::Tokenizer> {
        self.built
            .get_or_init(|| {
                let job = self.job.lock().unwrap_or_else(|p| p.into_inner()).take();
                match job {
                    Some(handle) => handle
                        .join()
                        .unwrap_or_else(|_| Err("the tokenizer build thread panicked".into())),
                    None => Err("the tokenizer build never ran".into()),
                }
            })
            .as_ref()
            .map_err(|e| Error::Tokenizers(e.clone()))
    }
}

/// How raw text becomes ids.
pub(crate) enum Engine {
    /// GGUF vocabularies: special tokens are cut out llama.cpp's way, each
    /// remaining fragment goes through a `tokenizers` pipeline that has no
    /// added tokens of its own.
    Gguf {
        pipeline: Pipeline,
        splitter: SpecialSplitter,
        /// SentencePiece rules: prefix a space after BOS/specials when
        /// `add_space_prefix` is set.
        spm: bool,
    },
    /// `tokenizer.json`: the `tokenizers` pipeline does everything,
    /// including its added tokens. A second copy that leaves special tokens
    /// as literal text is built the first time it is needed.
    Json {
        parse: Box<tokenizers::Tokenizer>,
        literal: OnceLock<tokenizers::Tokenizer>,
    },
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    /// id → the vocabulary entry's own text (`Ġthe`, `▁the`, `<0x0A>`).
    pub(crate) tokens: Arc<Vec<String>>,
    pub(crate) kinds: Vec<TokenKind>,
    pub(crate) style: PieceStyle,
    pub(crate) bos: Option<u32>,
    pub(crate) eos: Option<u32>,
    pub(crate) eot: Option<u32>,
    pub(crate) add_bos: bool,
    pub(crate) add_eos: bool,
    /// SentencePiece `add_space_prefix`: a space is prepended before
    /// encoding, and one leading space is dropped when decoding.
    pub(crate) add_space_prefix: bool,
    pub(crate) cleanup: Cleanup,
    pub(crate) chat_template: Option<ChatTemplate>,
    pub(crate) chat_template_error: Option<String>,
}

/// A tokenizer for one model. Cheap to clone (the vocabulary is shared);
/// `Send + Sync`, so one instance serves many threads.
///
/// Build it with [`Tokenizer::from_gguf`] or [`Tokenizer::from_files`].
#[derive(Clone)]
pub struct Tokenizer {
    pub(crate) inner: Arc<Inner>,
    /// Kept outside the shared part so callers can add stop ids (e.g. from a
    /// `generation_config.json`) without rebuilding the vocabulary.
    pub(crate) stop_ids: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.inner.bos)
            .field("eos", &self.inner.eos)
            .field("stop_ids", &self.stop_ids)
            .field("add_bos", &self.inner.add_bos)
            .field("has_chat_template", &self.inner.chat_template.is_some())
            .finish()
    }
}

impl Tokenizer {
    /// Text → ids.
    ///
    /// * `add_special`: add what the model adds around a prompt by default,
    ///   i.e. BOS when [`adds_bos_by_default`](Self::adds_bos_by_default) and
    ///   EOS when the model asks for it (llama.cpp's `add_special`,
    ///   transformers' `add_special_tokens`). To force a BOS on a model that
    ///   does not add one, push [`bos_id`](Self::bos_id) yourself.
    /// * `parse_special`: turn the text of control tokens (`<|im_start|>`)
    ///   into their ids. Off for untrusted text, so that a user cannot forge
    ///   turn boundaries. User-defined tokens are always recognised, as in
    ///   llama.cpp and transformers.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let inner = &*self.inner;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && inner.add_bos {
            if let Some(bos) = inner.bos {
                out.push(bos);
            }
        }
        match &inner.engine {
            Engine::Gguf {
                pipeline,
                splitter,
                spm,
            } => {
                let pipeline = pipeline.get()?;
                let mut prev_special = true;
                let mut buf = String::new();
                for piece in splitter.split(text, parse_special) {
                    match piece {
                        Piece::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Piece::Text(t) => {
                            let fragment = if *spm && inner.add_space_prefix && prev_special {
                                buf.clear();
                                buf.push(' ');
                                buf.push_str(t);
                                buf.as_str()
                            } else {
                                t
                            };
                            let enc = pipeline.encode_fast(fragment, false).map_err(Error::tok)?;
                            out.extend_from_slice(enc.get_ids());
                            prev_special = false;
                        }
                    }
                }
            }
            Engine::Json { parse, literal } => {
                let tok = if parse_special {
                    parse
                } else {
                    literal.get_or_init(|| {
                        let mut t = (**parse).clone();
                        t.set_encode_special_tokens(true);
                        t
                    })
                };
                let enc = tok.encode_fast(text, false).map_err(Error::tok)?;
                out.extend_from_slice(enc.get_ids());
            }
        }
        if add_special && inner.add_eos {
            if let Some(eos) = inner.eos {
                out.push(eos);
            }
        }
        Ok(out)
    }

    /// Ids → text. With `skip_special`, control and unknown tokens render as
    /// nothing (and a leading BOS / trailing EOS the model adds are dropped);
    /// without it they render as their text. Bytes that do not form valid
    /// UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let inner = &*self.inner;
        let mut ids = ids;
        // llama.cpp drops one leading space of the first piece for
        // add_space_prefix vocabularies, unless a BOS came first.
        let mut strip_space = inner.add_space_prefix;
        if skip_special && inner.add_bos && inner.bos.is_some() && ids.first() == inner.bos.as_ref()
        {
            strip_space = false;
            ids = &ids[1..];
        }
        if skip_special && inner.add_eos && inner.eos.is_some() && ids.last() == inner.eos.as_ref()
        {
            ids = &ids[..ids.len() - 1];
        }
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let start = bytes.len();
            self.push_piece(id, !skip_special, &mut bytes)?;
            if strip_space {
                if bytes.get(start) == Some(&b' ') {
                    bytes.remove(start);
                }
                strip_space = false;
            }
        }
        Ok(match inner.cleanup {
            Cleanup::None => String::from_utf8_lossy(&bytes).into_owned(),
            Cleanup::LlamaCpp => {
                String::from_utf8_lossy(&pieces::llama_clean_spaces(&bytes)).into_owned()
            }
            Cleanup::Transformers => pieces::hf_clean_spaces(&String::from_utf8_lossy(&bytes)),
        })
    }

    /// Waits until the encoder is fully built (GGUF vocabularies build it on
    /// a helper thread) and reports any error from that build. Call it after
    /// loading the weights to fail at load time rather than at the first
    /// `encode`; decoding never waits.
    pub fn wait_ready(&self) -> Result<()> {
        match &self.inner.engine {
            Engine::Gguf { pipeline, .. } => pipeline.get().map(|_| ()),
            Engine::Json { .. } => Ok(()),
        }
    }

    /// An incremental detokeniser for streaming generated ids.
    pub fn decode_stream(&self, skip_special: bool) -> DecodeStream<'_> {
        DecodeStream {
            tokenizer: self,
            skip_special,
            pending: Vec::new(),
            strip_space: self.inner.add_space_prefix,
            first: true,
        }
    }

    /// Appends the bytes `id` renders as.
    fn push_piece(&self, id: u32, show_special: bool, out: &mut Vec<u8>) -> Result<()> {
        let inner = &*self.inner;
        let (Some(text), Some(kind)) =
            (inner.tokens.get(id as usize), inner.kinds.get(id as usize))
        else {
            return Err(Error::UnknownTokenId {
                id,
                vocab_size: inner.tokens.len(),
            });
        };
        match *kind {
            TokenKind::Control | TokenKind::Unknown => {
                if show_special {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            TokenKind::UserDefined => out.extend_from_slice(text.as_bytes()),
            TokenKind::Normal => match inner.style {
                PieceStyle::ByteLevel => pieces::byte_level_decode(text, out),
                PieceStyle::Metaspace => pieces::metaspace_decode(text, out),
            },
            TokenKind::Byte(b) => out.push(b),
            TokenKind::Unused => {}
        }
        Ok(())
    }

    /// The bytes one token renders as (`show_special` as in `decode`'s
    /// negation). For constrained decoding and byte-level inspection.
    pub fn token_bytes(&self, id: u32, show_special: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.push_piece(id, show_special, &mut out).ok()?;
        Some(out)
    }

    /// Number of ids (the embedding matrix may have more rows).
    pub fn vocab_size(&self) -> usize {
        self.inner.tokens.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.inner.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.inner.eos
    }

    /// End-of-turn token (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`), from
    /// `tokenizer.ggml.eot_token_id` or recognised by its text.
    pub fn eot_id(&self) -> Option<u32> {
        self.inner.eot
    }

    /// Ids that end generation: EOS, end-of-turn and end-of-message tokens.
    /// Sorted, without duplicates.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.binary_search(&id).is_ok()
    }

    /// Adds a stop id (for example from `generation_config.json`).
    pub fn add_stop_id(&mut self, id: u32) {
        if let Err(at) = self.stop_ids.binary_search(&id) {
            self.stop_ids.insert(at, id);
        }
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn adds_bos_by_default(&self) -> bool {
        self.inner.add_bos && self.inner.bos.is_some()
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn adds_eos_by_default(&self) -> bool {
        self.inner.add_eos && self.inner.eos.is_some()
    }

    /// The vocabulary entry's own text (`Ġthe`, `▁the`, `<0x0A>`,
    /// `<|im_end|>`).
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.inner.tokens.get(id as usize).cloned()
    }

    /// Id of an exact vocabulary entry text (linear scan; for set-up code,
    /// not hot loops).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner
            .tokens
            .iter()
            .position(|t| t == text)
            .map(|i| i as u32)
    }

    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.inner.kinds.get(id as usize).copied()
    }

    /// Control, unknown and user-defined tokens with their text, by id.
    pub fn special_tokens(&self) -> Vec<(u32, String)> {
        self.inner
            .kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| {
                matches!(
                    k,
                    TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined
                )
            })
            .map(|(i, _)| (i as u32, self.inner.tokens[i].clone()))
            .collect()
    }

    /// The model's own chat template, if it has one that parses.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.inner.chat_template.as_ref()
    }

    /// Why the model's chat template was not usable, if it has one that is
    /// not (the model still loads; only chat rendering is unavailable).
    pub fn chat_template_error(&self) -> Option<&str> {
        self.inner.chat_template_error.as_deref()
    }
}

/// Incremental detokeniser: feed generated ids one at a time and get the new
/// text. Never splits a UTF-8 character: bytes of an incomplete character are
/// held back until the rest arrives (or [`finish`](Self::finish) is called).
///
/// The concatenation of all deltas equals `decode(all_ids, skip_special)`
/// for vocabularies without space clean-up (all GGUF models except
/// gpt2-style ones whose `pre` asks llama.cpp for `clean_spaces`).
pub struct DecodeStream<'a> {
    tokenizer: &'a Tokenizer,
    skip_special: bool,
    pending: Vec<u8>,
    strip_space: bool,
    first: bool,
}

impl DecodeStream<'_> {
    /// Adds one id; returns the text it completes, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        let inner = &*self.tokenizer.inner;
        if self.first {
            self.first = false;
            if self.skip_special && inner.add_bos && Some(id) == inner.bos {
                self.strip_space = false;
                return Ok(None);
            }
        }
        let start = self.pending.len();
        self.tokenizer
            .push_piece(id, !self.skip_special, &mut self.pending)?;
        if self.strip_space && self.pending.len() > start {
            if self.pending[start] == b' ' {
                self.pending.remove(start);
            }
            self.strip_space = false;
        } else if self.pending.len() > start {
            self.strip_space = false;
        }
        Ok(self.take_complete())
    }

    /// Flushes whatever is held back (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        Some(s)
    }

    fn take_complete(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // SAFETY-free: `good` was just validated.
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // Invalid bytes in the middle: they can never become
                        // valid, so emit the replacement character now.
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = &bad[n..];
                        }
                        // An unfinished character at the end: wait for more.
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.to_vec();
        self.pending = keep;
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }
}
