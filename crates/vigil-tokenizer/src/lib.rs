//! Tokenizers and chat templates for the models vigil runs.
//!
//! # Principal types
//!
//! * [`Tokenizer`] — text ↔ token ids for one model. Built either from a
//!   GGUF file's metadata ([`Tokenizer::from_gguf`], which takes the
//!   [`gguf_file::Content`](candle_core::quantized::gguf_file::Content) the
//!   model loader already read) or from a Hugging Face directory's
//!   `tokenizer.json` + `tokenizer_config.json` ([`Tokenizer::from_files`]).
//!   It knows the model's BOS / EOS / end-of-turn ids, which ids stop
//!   generation ([`Tokenizer::stop_ids`]), whether a prompt gets a BOS
//!   ([`Tokenizer::adds_bos_by_default`]), and owns the model's
//!   [`ChatTemplate`] ([`Tokenizer::chat_template`]). Cloning is cheap and it
//!   is `Send + Sync`.
//! * [`DecodeStream`] — made by [`Tokenizer::decode_stream`]; turns ids
//!   generated one by one into text deltas without ever splitting a UTF-8
//!   character.
//! * [`ChatTemplate`] — the model's Jinja chat template compiled with
//!   minijinja and configured like transformers' `apply_chat_template`;
//!   [`ChatTemplate::render`] turns [`ChatMessage`]s into the prompt text,
//!   which then goes through [`Tokenizer::encode`] with `parse_special`
//!   on (the template writes the control tokens as text).
//! * [`TokenKind`] — what a vocabulary entry is (normal, control,
//!   user-defined, byte, ...), as in GGUF's `token_type`.
//! * [`hf_files_from_gguf`] / [`gguf_metadata_from_hf`] — a byte-level BPE vocabulary
//!   converted between GGUF metadata and `tokenizer.json` + `tokenizer_config.json`
//!   (for `vigil export`); the reverse direction finds llama.cpp's `pre` name by
//!   tokenising probe texts both ways.
//! * [`Error`] — every failure, naming the metadata key, file or template
//!   line at fault. Bad metadata is an error, never a panic.
//!
//! # Typical use
//!
//! ```no_run
//! # fn demo(content: candle_core::quantized::gguf_file::Content) -> vigil_tokenizer::Result<()> {
//! use vigil_tokenizer::{ChatMessage, Tokenizer};
//! let tok = Tokenizer::from_gguf(&content)?;
//! let prompt = tok
//!     .chat_template()
//!     .expect("model has a chat template")
//!     .render(&[ChatMessage::user("Is this handler injectable?")], true)?;
//! let ids = tok.encode(&prompt, tok.adds_bos_by_default(), true)?;
//! let mut stream = tok.decode_stream(true);
//! # let generated: Vec<u32> = vec![];
//! for id in generated {
//!     if tok.is_stop(id) { break; }
//!     if let Some(delta) = stream.push(id)? { print!("{delta}"); }
//! }
//! # let _ = ids; Ok(()) }
//! ```
//!
//! # Fidelity
//!
//! For GGUF vocabularies the ids are llama.cpp's: special tokens are cut out
//! of the text in llama.cpp's order (longest first; control tokens only when
//! `parse_special`, user-defined ones always), `gpt2` vocabularies use the
//! pre-tokenizer regexes llama.cpp picks for `tokenizer.ggml.pre`, and
//! SentencePiece (`llama`) vocabularies are encoded by a BPE whose merges are
//! derived from the scores, with `<0xAB>` byte fallback and llama.cpp's
//! `add_space_prefix` rule. The BPE itself is the `tokenizers` crate's.

mod chat;
mod convert;
mod error;
mod gguf;
mod hf;
mod meta;
mod pieces;
mod special;
mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate};
pub use convert::{gguf_metadata_from_hf, hf_files_from_gguf, HfTokenizerFiles};
pub use error::{Error, Result};
pub use tokenizer::{DecodeStream, TokenKind, Tokenizer};
