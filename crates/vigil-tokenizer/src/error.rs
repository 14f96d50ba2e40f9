//! Errors of this crate. Every failure names what was wrong and where, so a
//! bad model file or template is reported, never a panic.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong while building a tokenizer, encoding, decoding or
/// rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A metadata key the tokenizer needs is absent from the GGUF file.
    #[error("GGUF metadata key `{0}` is missing")]
    MissingKey(String),

    /// A metadata key exists but holds a value of another type.
    #[error("GGUF metadata key `{key}` has the wrong type: expected {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },

    /// The metadata is present and typed correctly but inconsistent.
    #[error("invalid tokenizer metadata: {0}")]
    InvalidMetadata(String),

    /// `tokenizer.ggml.model` names a tokenizer family we do not build.
    #[error("unsupported tokenizer model `{0}` (supported: gpt2, llama)")]
    UnsupportedModel(String),

    /// `tokenizer.ggml.pre` names a pre-tokenizer we have no regex for.
    #[error("unsupported pre-tokenizer `{0}` for a gpt2-style vocabulary")]
    UnsupportedPreTokenizer(String),

    /// A token id outside the vocabulary was given to `decode`.
    #[error("token id {id} is outside the vocabulary (size {vocab_size})")]
    UnknownTokenId { id: u32, vocab_size: usize },

    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (tokenizer.json, tokenizer_config.json) is malformed.
    #[error("invalid JSON in {path}: {message}")]
    Json { path: PathBuf, message: String },

    /// The Hugging Face `tokenizers` library refused the vocabulary or input.
    #[error("tokenizer error: {0}")]
    Tokenizers(String),

    /// The chat template does not parse.
    #[error("chat template syntax error{}: {message}", line_suffix(*.line))]
    TemplateSyntax {
        line: Option<usize>,
        message: String,
    },

    /// No built-in chat template has this name.
    #[error("no built-in chat template named `{0}` (known: gemma, chatml)")]
    UnknownTemplate(String),

    /// The chat template parsed but failed while rendering (this includes
    /// the template's own `raise_exception(...)`).
    #[error("chat template render error{}: {message}", line_suffix(*.line))]
    TemplateRender {
        line: Option<usize>,
        message: String,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    match line {
        Some(l) => format!(" at line {l}"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn tok(e: impl std::fmt::Display) -> Self {
        Error::Tokenizers(e.to_string())
    }
}
