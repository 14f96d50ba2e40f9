//! One module per language, each implementing [`crate::ts::Frontend`].

mod csharp;
mod go;
mod java;
mod javascript;
mod php;
mod python;
mod ruby;

use crate::ts::Frontend;
use crate::Language;

pub(crate) fn frontend_for(language: Language) -> &'static dyn Frontend {
    match language {
        Language::Python => &python::Python,
        Language::JavaScript => &javascript::JavaScript { typescript: false },
        Language::TypeScript => &javascript::JavaScript { typescript: true },
        Language::Java => &java::Java,
        Language::Php => &php::Php,
        Language::Go => &go::Go,
        Language::Ruby => &ruby::Ruby,
        Language::CSharp => &csharp::CSharp,
    }
}

/// Whether any line of `src` contains `needle` after one of the import keywords, so a
/// framework named in a comment or a string does not count.
pub(crate) fn imports(src: &str, needle: &str) -> bool {
    src.lines().any(|l| {
        let l = l.trim_start();
        (l.starts_with("import ")
            || l.starts_with("from ")
            || l.starts_with("use ")
            || l.starts_with("using ")
            || l.starts_with("require")
            || l.contains("require(")
            || l.starts_with('"'))
            && l.contains(needle)
    })
}
