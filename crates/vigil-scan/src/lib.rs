//! Repository walk and endpoint discovery for `vigil scan` (MISSION M11), without a model.
//!
//! [`scan_tree`] walks a directory with the `ignore` crate (honouring `.gitignore`,
//! `.ignore`, hidden-file rules and the extra excludes of [`DiscoveryOptions`]), parses every
//! source file with tree-sitter and returns a [`Discovery`]: the [`CodeUnit`]s a model should
//! analyse and the [`Skipped`] files with their [`SkipReason`]. [`discover_file`] does the
//! same for one file's text.
//!
//! A [`CodeUnit`] is one of three [`UnitKind`]s:
//! - `Endpoint` — a route (method + path) joined to its handler's source, found per
//!   framework by the language frontends (`python`, `javascript`, `java`, `php`, `go`,
//!   `ruby`, `csharp`; each implements the `Frontend` trait of `ts`). Routes declared in
//!   one file and handled in another (Django `urls.py`, Laravel `routes/*.php`, Rails
//!   `config/routes.rb`) are joined across files in `link`, and prefixes one file mounts
//!   another under (Django `include`, Express `app.use("/api", require(...))`) are applied.
//! - `Function` — a top-level function or method no route points to (controllers without
//!   routes, helpers, handler fragments): nothing is skipped silently.
//! - `File` — a whole source file with no functions at all (plain scripts), or one with
//!   syntax errors (besides whatever functions the parser recovered); or a long
//!   module-level statement outside any function (a multi-line middleware).
//!
//! Output order is deterministic: units sorted by path, then start line.

mod error;
mod frontends;
mod link;
pub mod route;
mod ts;
mod walk;

pub use error::{Result, ScanError};
pub use route::{join_route, route_pattern};

use serde::{Deserialize, Serialize};
use std::path::Path;

/// A source language the scanner parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
    Java,
    Php,
    Go,
    Ruby,
    CSharp,
}

impl Language {
    /// The language of a file, by its extension (`None`: not a source file we parse).
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "py" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "tsx" | "mts" | "cts" => Language::TypeScript,
            "java" => Language::Java,
            "php" => Language::Php,
            "go" => Language::Go,
            "rb" => Language::Ruby,
            "cs" => Language::CSharp,
            _ => return None,
        })
    }

    /// The name used across vigil (`vigil_data` samples use the same spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Java => "java",
            Language::Php => "php",
            Language::Go => "go",
            Language::Ruby => "ruby",
            Language::CSharp => "csharp",
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a unit of code is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UnitKind {
    /// An API endpoint. `route` is the full path as the framework spells it (prefixes
    /// joined); `handler` names the handler (`Class.method`, `function`, or `(inline)`).
    /// `method` is upper case, or `ANY` when the framework routes every method to it.
    Endpoint {
        method: String,
        route: String,
        handler: String,
    },
    /// A function or method with no recognised route.
    Function { name: String },
    /// A whole file (no functions, or syntax errors), or module-level code outside any
    /// function (`start_line`..`end_line` say which).
    File,
}

/// One unit of code for a model to analyse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeUnit {
    /// Relative to the scanned root, `/`-separated.
    pub path: String,
    pub language: Language,
    pub framework: Option<String>,
    #[serde(flatten)]
    pub kind: UnitKind,
    /// 1-based, inclusive: the lines of `code` in the file.
    pub start_line: usize,
    pub end_line: usize,
    /// The handler's source (possibly truncated, see `notes`).
    pub code: String,
    /// What the code needs to be understood: imports, module constants, the class header,
    /// where the route is registered. Bounded by [`DiscoveryOptions::max_context_bytes`].
    pub context: String,
    /// SHA-256 (hex) of `code`, a NUL byte, and `context`: the scan cache key.
    pub content_hash: String,
    /// Caveats: syntax errors, truncation, handlers that could not be resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why a file produced no units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Not a language the scanner parses (by extension).
    NotSource,
    /// Larger than [`DiscoveryOptions::max_file_bytes`].
    TooLarge { bytes: u64, limit: u64 },
    /// Contains NUL bytes.
    Binary,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Could not be read (permissions, vanished, walk error).
    Unreadable { message: String },
    /// A symbolic link: never followed, so a scan cannot leave the root or loop.
    Symlink,
    /// Only whitespace.
    Empty,
    /// The file had more units than [`DiscoveryOptions::max_units_per_file`]; this many
    /// were dropped (the first ones in line order were kept).
    UnitCap { dropped: usize, limit: usize },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotSource => write!(f, "not a source file of a supported language"),
            SkipReason::TooLarge { bytes, limit } => {
                write!(f, "{bytes} bytes is over the {limit}-byte limit")
            }
            SkipReason::Binary => write!(f, "binary (contains NUL bytes)"),
            SkipReason::InvalidUtf8 => write!(f, "not valid UTF-8"),
            SkipReason::Unreadable { message } => write!(f, "unreadable: {message}"),
            SkipReason::Symlink => write!(f, "symbolic link (not followed)"),
            SkipReason::Empty => write!(f, "empty"),
            SkipReason::UnitCap { dropped, limit } => write!(
                f,
                "{dropped} units beyond the {limit}-unit limit per file were not analysed"
            ),
        }
    }
}

/// A file (or part of one) the scan did not turn into units, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// The result of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub units: Vec<CodeUnit>,
    pub skipped: Vec<Skipped>,
}

impl Discovery {
    /// The endpoint units only.
    pub fn endpoints(&self) -> impl Iterator<Item = &CodeUnit> {
        self.units
            .iter()
            .filter(|u| matches!(u.kind, UnitKind::Endpoint { .. }))
    }
}

/// How to walk and cut up a repository.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Files larger than this are skipped (default 1 MiB).
    pub max_file_bytes: u64,
    /// Extra gitignore-style globs to exclude (relative to the root), e.g. `tests/**`.
    pub exclude: Vec<String>,
    /// Walk hidden files and directories too (default false).
    pub hidden: bool,
    /// Honour `.gitignore`, `.ignore` and git's exclude files (default true).
    pub respect_ignore_files: bool,
    /// At most this many units per file (default 200); the rest is reported as skipped.
    pub max_units_per_file: usize,
    /// A unit's code is cut at this many bytes, with a note (default 16 KiB).
    pub max_unit_bytes: usize,
    /// A unit's context is cut at this many bytes (default 2 KiB).
    pub max_context_bytes: usize,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            max_file_bytes: 1 << 20,
            exclude: Vec::new(),
            hidden: false,
            respect_ignore_files: true,
            max_units_per_file: 200,
            max_unit_bytes: 16 * 1024,
            max_context_bytes: 2 * 1024,
        }
    }
}

/// Walk `root` (a directory or a single file) and discover every unit of code in it.
pub fn scan_tree(root: &Path, opts: &DiscoveryOptions) -> Result<Discovery> {
    walk::scan_tree(root, opts)
}

/// Discover the units of one file's text. `path` names the file (its extension picks the
/// language; its name matters for routing files such as `urls.py` or `config/routes.rb`).
/// A file of no supported language, or only whitespace, yields an empty discovery with a
/// [`Skipped`] entry.
pub fn discover_file(path: &str, text: &str) -> Discovery {
    link::discover_sources(
        vec![(path.to_string(), text.to_string())],
        &DiscoveryOptions::default(),
    )
}

/// Like [`discover_file`] for several files at once, so that routes declared in one file
/// are joined to handlers in another (e.g. `urls.py` + `views.py`).
pub fn discover_files(files: Vec<(String, String)>, opts: &DiscoveryOptions) -> Discovery {
    link::discover_sources(files, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_by_extension() {
        let cases = [
            ("a/b.py", Some(Language::Python)),
            ("x.mjs", Some(Language::JavaScript)),
            ("x.cjs", Some(Language::JavaScript)),
            ("X.TSX", Some(Language::TypeScript)),
            ("A.java", Some(Language::Java)),
            ("i.php", Some(Language::Php)),
            ("m.go", Some(Language::Go)),
            ("r.rb", Some(Language::Ruby)),
            ("C.cs", Some(Language::CSharp)),
            ("README.md", None),
            ("Makefile", None),
        ];
        for (p, want) in cases {
            assert_eq!(Language::from_path(Path::new(p)), want, "{p}");
        }
    }
}
