//! The vulnerability taxonomy shared by every vigil crate.
//!
//! Principal types:
//! - [`Taxonomy`]: the whole table, parsed once from `data/taxonomy.json` (compiled in with
//!   `include_str!`) and reached through [`Taxonomy::builtin`]. It answers lookups
//!   [`by_id`](Taxonomy::by_id), [`by_cwe`](Taxonomy::by_cwe), [`by_alias`](Taxonomy::by_alias)
//!   and the catch-all [`resolve`](Taxonomy::resolve) used by importers to map a foreign label
//!   (a ZAP alert name, a Semgrep / CodeQL rule id, `CWE-89`, `sqli`) to one of our types.
//! - [`VulnType`]: one vulnerability type with its [`Cwe`], [`OwaspCategory`] (OWASP API
//!   Security Top 10 2023 where one fits, else OWASP Top 10 2021), default [`Severity`],
//!   description, remediation and aliases.
//! - [`Severity`]: `critical > high > medium > low > info`, parsed case-insensitively.
//!
//! Lookups normalise their input ([`normalize`]): lower case, every run of characters other
//! than letters and digits becomes one space, so `"SQL_Injection"`, `"sql-injection"` and
//! `"SQL Injection"` are the same key. Aliases are unique across the table (a test checks it),
//! so a label never maps to two types.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parse a severity name case-insensitively; also accepts `informational`, `moderate`
    /// and `none` (as info), as other tools write them.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" => Some(Severity::Critical),
            "high" => Some(Severity::High),
            "medium" | "moderate" | "med" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            "info" | "informational" | "none" | "note" => Some(Severity::Info),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CWE entry: numeric id and official name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cwe {
    pub id: u32,
    pub name: String,
}

impl Cwe {
    /// `CWE-89`.
    pub fn label(&self) -> String {
        format!("CWE-{}", self.id)
    }
}

/// Which OWASP list a category comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OwaspEdition {
    /// OWASP API Security Top 10, 2023.
    #[serde(rename = "api-2023")]
    Api2023,
    /// OWASP Top 10 (web applications), 2021.
    #[serde(rename = "top10-2021")]
    Top10_2021,
}

/// An OWASP category such as `API1:2023 Broken Object Level Authorization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwaspCategory {
    pub edition: OwaspEdition,
    pub id: String,
    pub name: String,
}

impl OwaspCategory {
    /// `API1:2023 Broken Object Level Authorization`.
    pub fn label(&self) -> String {
        format!("{} {}", self.id, self.name)
    }
}

/// One vulnerability type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VulnType {
    /// Stable snake_case identifier stored in datasets (`sql_injection`).
    pub id: String,
    /// Human name (`SQL Injection`).
    pub name: String,
    pub cwe: Cwe,
    /// Other CWEs that mean this type (children or siblings); unique across the table.
    #[serde(default)]
    pub related_cwes: Vec<u32>,
    /// CWE parents; a parent is used for lookup only when exactly one type names it.
    #[serde(default)]
    pub parents: Vec<u32>,
    pub owasp: OwaspCategory,
    pub severity: Severity,
    pub description: String,
    pub remediation: String,
    /// Names other tools use (ZAP alerts, Semgrep / CodeQL rule ids, common short names).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Errors from building a taxonomy.
#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    #[error("taxonomy JSON is invalid: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("taxonomy key {key:?} names both {first} and {second}")]
    Ambiguous {
        key: String,
        first: String,
        second: String,
    },
}

#[derive(Deserialize)]
struct File {
    types: Vec<VulnType>,
}

/// The taxonomy with its lookup indexes.
#[derive(Debug)]
pub struct Taxonomy {
    types: Vec<VulnType>,
    by_id: HashMap<String, usize>,
    by_alias: HashMap<String, usize>,
    by_cwe: HashMap<u32, usize>,
    by_parent: HashMap<u32, usize>,
}

/// The compiled-in taxonomy file.
pub const TAXONOMY_JSON: &str = include_str!("../data/taxonomy.json");

/// Lower-case, and turn every run of non-alphanumeric characters into one space.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

/// Parse `CWE-89`, `cwe_89`, `CWE 89` or `89` to 89.
pub fn parse_cwe(s: &str) -> Option<u32> {
    let n = normalize(s);
    let digits = n.strip_prefix("cwe").map(str::trim).unwrap_or(&n);
    digits.parse().ok()
}

impl Taxonomy {
    /// The built-in taxonomy (parsed once; the file is checked by tests, so this never fails
    /// at run time for a released build).
    pub fn builtin() -> &'static Taxonomy {
        static T: OnceLock<Taxonomy> = OnceLock::new();
        T.get_or_init(|| {
            Taxonomy::from_json(TAXONOMY_JSON).expect("built-in taxonomy.json is valid (tested)")
        })
    }

    /// Build a taxonomy from JSON text, checking that ids, aliases and CWEs are unique.
    pub fn from_json(text: &str) -> Result<Taxonomy, TaxonomyError> {
        let file: File = serde_json::from_str(text)?;
        let mut t = Taxonomy {
            types: file.types,
            by_id: HashMap::new(),
            by_alias: HashMap::new(),
            by_cwe: HashMap::new(),
            by_parent: HashMap::new(),
        };
        let mut parent_count: HashMap<u32, (usize, u32)> = HashMap::new();
        for (i, v) in t.types.iter().enumerate() {
            let name = |j: usize| t.types[j].id.clone();
            let add = |map: &mut HashMap<String, usize>, key: String| {
                if let Some(&j) = map.get(&key) {
                    if j != i {
                        return Err(TaxonomyError::Ambiguous {
                            key,
                            first: name(j),
                            second: v.id.clone(),
                        });
                    }
                }
                map.insert(key, i);
                Ok(())
            };
            add(&mut t.by_id, v.id.clone())?;
            for key in std::iter::once(&v.id)
                .chain(std::iter::once(&v.name))
                .chain(v.aliases.iter())
            {
                add(&mut t.by_alias, normalize(key))?;
            }
            for cwe in std::iter::once(v.cwe.id).chain(v.related_cwes.iter().copied()) {
                if let Some(&j) = t.by_cwe.get(&cwe) {
                    if j != i {
                        return Err(TaxonomyError::Ambiguous {
                            key: format!("CWE-{cwe}"),
                            first: name(j),
                            second: v.id.clone(),
                        });
                    }
                }
                t.by_cwe.insert(cwe, i);
            }
            for &p in &v.parents {
                let e = parent_count.entry(p).or_insert((i, 0));
                e.1 += 1;
            }
        }
        for (p, (i, n)) in parent_count {
            if n == 1 && !t.by_cwe.contains_key(&p) {
                t.by_parent.insert(p, i);
            }
        }
        Ok(t)
    }

    /// All types, in file order.
    pub fn types(&self) -> &[VulnType] {
        &self.types
    }

    /// Exact id (`sql_injection`); case-insensitive.
    pub fn by_id(&self, id: &str) -> Option<&VulnType> {
        self.by_id
            .get(id)
            .or_else(|| self.by_id.get(&id.trim().to_ascii_lowercase()))
            .map(|&i| &self.types[i])
    }

    /// By CWE number: the type's own CWE, a related CWE, or a parent named by one type only.
    pub fn by_cwe(&self, cwe: u32) -> Option<&VulnType> {
        self.by_cwe
            .get(&cwe)
            .or_else(|| self.by_parent.get(&cwe))
            .map(|&i| &self.types[i])
    }

    /// By id, name or alias, normalised (`"Cross Site Scripting (Reflected)"`, `"py/sql-injection"`).
    pub fn by_alias(&self, alias: &str) -> Option<&VulnType> {
        self.by_alias
            .get(&normalize(alias))
            .map(|&i| &self.types[i])
    }

    /// Map any foreign label: id, alias, or CWE text (`CWE-89`, `89`).
    pub fn resolve(&self, label: &str) -> Option<&VulnType> {
        self.by_id(label)
            .or_else(|| self.by_alias(label))
            .or_else(|| parse_cwe(label).and_then(|c| self.by_cwe(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_is_large_enough() {
        let t = Taxonomy::from_json(TAXONOMY_JSON).unwrap();
        assert!(t.types().len() >= 19, "{}", t.types().len());
        for v in t.types() {
            assert!(v.description.len() > 80, "{} description too short", v.id);
            assert!(v.remediation.len() > 60, "{} remediation too short", v.id);
            assert!(!v.aliases.is_empty(), "{} has no aliases", v.id);
            assert!(v.owasp.id.contains(":20"), "{}", v.owasp.id);
        }
    }

    #[test]
    fn required_types_present_with_expected_cwes() {
        let t = Taxonomy::builtin();
        for (id, cwe) in [
            ("sql_injection", 89),
            ("command_injection", 78),
            ("xss", 79),
            ("ssrf", 918),
            ("path_traversal", 22),
            ("bola", 639),
            ("broken_authentication", 287),
            ("excessive_data_exposure", 213),
            ("mass_assignment", 915),
            ("unrestricted_resource_consumption", 770),
            ("broken_function_level_authorization", 285),
            ("security_misconfiguration", 16),
            ("insecure_deserialization", 502),
            ("xxe", 611),
            ("open_redirect", 601),
            ("hardcoded_secrets", 798),
            ("weak_cryptography", 327),
            ("insecure_cookie", 614),
            ("missing_security_headers", 693),
            ("cors_misconfiguration", 942),
            ("information_disclosure", 209),
            ("nosql_injection", 943),
            ("ldap_injection", 90),
            ("template_injection", 1336),
            ("unsafe_api_consumption", 20),
            ("improper_inventory", 1059),
        ] {
            let v = t.by_id(id).unwrap_or_else(|| panic!("missing {id}"));
            assert_eq!(v.cwe.id, cwe, "{id}");
            assert_eq!(t.by_cwe(cwe).unwrap().id, id);
        }
    }

    #[test]
    fn every_api_2023_category_is_covered() {
        let t = Taxonomy::builtin();
        for n in 1..=10 {
            let cat = format!("API{n}:2023");
            assert!(
                t.types()
                    .iter()
                    .any(|v| v.owasp.id == cat && v.owasp.edition == OwaspEdition::Api2023),
                "{cat} not covered"
            );
        }
    }

    #[test]
    fn lookups_normalise() {
        let t = Taxonomy::builtin();
        assert_eq!(t.by_alias("SQL_Injection").unwrap().id, "sql_injection");
        assert_eq!(t.by_alias("  sql-injection ").unwrap().id, "sql_injection");
        assert_eq!(
            t.by_alias("Cross Site Scripting (Reflected)").unwrap().id,
            "xss"
        );
        assert_eq!(t.by_alias("IDOR").unwrap().id, "bola");
        assert_eq!(
            t.by_alias("py/path-injection").unwrap().id,
            "path_traversal"
        );
        assert_eq!(t.resolve("CWE-89").unwrap().id, "sql_injection");
        assert_eq!(t.resolve("cwe_1004").unwrap().id, "insecure_cookie");
        assert_eq!(t.resolve("SQL_INJECTION").unwrap().id, "sql_injection");
        assert!(t.resolve("definitely not a vuln").is_none());
        assert!(t.resolve("").is_none());
        // CWE-74 (Injection) is the parent of several types: ambiguous, so no answer.
        assert!(t.by_cwe(74).is_none());
    }

    #[test]
    fn duplicate_alias_is_rejected() {
        let json = r#"{"types":[
          {"id":"a","name":"A","cwe":{"id":1,"name":"x"},"owasp":{"edition":"api-2023","id":"API1:2023","name":"n"},"severity":"low","description":"d","remediation":"r","aliases":["same"]},
          {"id":"b","name":"B","cwe":{"id":2,"name":"y"},"owasp":{"edition":"api-2023","id":"API1:2023","name":"n"},"severity":"low","description":"d","remediation":"r","aliases":["SAME"]}
        ]}"#;
        assert!(matches!(
            Taxonomy::from_json(json),
            Err(TaxonomyError::Ambiguous { .. })
        ));
        assert!(matches!(
            Taxonomy::from_json("{"),
            Err(TaxonomyError::Parse(_))
        ));
    }

    #[test]
    fn severity_parse_and_order() {
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("informational"), Some(Severity::Info));
        assert_eq!(Severity::parse("bogus"), None);
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }
}
