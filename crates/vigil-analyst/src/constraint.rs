//! Decoding constrained to a JSON schema, for the verdict line.
//!
//! Written by hand because the schemas vigil constrains are small and fixed (a flat object
//! of consts, enums and bounded strings, or a choice between such objects) and the engine
//! must run inside the sampling loop on every token: a general JSON-schema library
//! validates finished documents, it does not say which *next token* keeps a document
//! valid. The schema is compiled into a sequence of byte-level segments; a token is
//! allowed when all its bytes can be consumed from the current position.
//!
//! Output is compact JSON (no optional whitespace), properties in the schema's order, all
//! required — the exact shape `vigil_data::prompt::verdict_block` trains on.

use crate::error::{AnalystError, Result};
use serde_json::Value;
use std::sync::Arc;
use vigil_tokenizer::Tokenizer;

/// Each token's bytes; `None` for tokens that render as nothing (control tokens), which a
/// constrained document never contains.
#[derive(Debug)]
pub struct TokenVocab {
    bytes: Vec<Option<Vec<u8>>>,
}

impl TokenVocab {
    /// The vocabulary of `tok`, padded with `None` up to the model's `vocab_size` rows.
    pub fn of(tok: &Tokenizer, vocab_size: usize) -> TokenVocab {
        let bytes = (0..vocab_size as u32)
            .map(|id| {
                if (id as usize) >= tok.vocab_size() {
                    return None;
                }
                tok.token_bytes(id, false).filter(|b| !b.is_empty())
            })
            .collect();
        TokenVocab { bytes }
    }

    pub fn from_bytes(bytes: Vec<Option<Vec<u8>>>) -> TokenVocab {
        TokenVocab { bytes }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    /// Exactly these bytes.
    Lit(Vec<u8>),
    /// One of these (each a complete JSON string, so none is a prefix of another).
    Choice(Vec<Vec<u8>>),
    /// A JSON string with between `min` and `max` characters of content.
    Str { min: usize, max: usize },
}

/// Position inside one alternative.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    alt: usize,
    seg: usize,
    /// Bytes consumed in the current segment (Lit, Choice) or phase (Str: 0 before the
    /// opening quote, 1 inside, 2 after a backslash).
    pos: usize,
    /// Str: characters of content so far.
    len: usize,
    /// Choice: candidates still matching.
    live: Vec<usize>,
    /// Str: continuation bytes still owed by a multi-byte UTF-8 character, and the range
    /// the next one must fall in (so the output is always valid UTF-8).
    cont: u8,
    next_range: (u8, u8),
}

/// The engine: which tokens may come next so the output stays a valid document.
#[derive(Debug, Clone)]
pub struct JsonSchemaConstraint {
    alts: Arc<Vec<Vec<Seg>>>,
    cursors: Vec<Cursor>,
    vocab: Arc<TokenVocab>,
    text: Vec<u8>,
}

impl JsonSchemaConstraint {
    /// Compiles `schema`: an object schema, or `anyOf` of object schemas. Unsupported
    /// keywords are refused rather than ignored.
    pub fn new(schema: &Value, vocab: Arc<TokenVocab>) -> Result<JsonSchemaConstraint> {
        let alts = match schema.get("anyOf") {
            Some(Value::Array(a)) => a.iter().map(compile_object).collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(bad("`anyOf` must be an array")),
            None => vec![compile_object(schema)?],
        };
        let cursors = (0..alts.len())
            .map(|alt| start(&alts[alt], alt, 0))
            .collect();
        Ok(JsonSchemaConstraint {
            alts: Arc::new(alts),
            cursors,
            vocab,
            text: Vec::new(),
        })
    }

    /// Sets the logits of disallowed tokens to `-inf`.
    pub fn mask(&self, logits: &mut [f32]) {
        for (id, l) in logits.iter_mut().enumerate() {
            let ok = match self.vocab.bytes.get(id) {
                Some(Some(b)) => self.accepts(b),
                _ => false,
            };
            if !ok {
                *l = f32::NEG_INFINITY;
            }
        }
    }

    fn accepts(&self, bytes: &[u8]) -> bool {
        let mut cur: Vec<Cursor> = self.cursors.clone();
        for &b in bytes {
            cur = cur.iter().filter_map(|c| self.step(c, b)).collect();
            if cur.is_empty() {
                return false;
            }
        }
        true
    }

    /// Consumes a chosen token.
    pub fn accept(&mut self, token: u32) -> std::result::Result<(), String> {
        let bytes = match self.vocab.bytes.get(token as usize) {
            Some(Some(b)) => b.clone(),
            _ => return Err(format!("token {token} is not allowed in a JSON answer")),
        };
        self.advance_bytes(&bytes)
    }

    /// Consumes bytes already decided (a forced prefix).
    pub fn advance_bytes(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        let mut cur = self.cursors.clone();
        for &b in bytes {
            cur = cur.iter().filter_map(|c| self.step(c, b)).collect();
            if cur.is_empty() {
                return Err(format!(
                    "`{}` does not fit the schema after `{}`",
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(&self.text)
                ));
            }
        }
        self.cursors = cur;
        self.text.extend_from_slice(bytes);
        Ok(())
    }

    /// True when the document is finished (every live alternative is at its end).
    pub fn is_complete(&self) -> bool {
        !self.cursors.is_empty() && self.cursors.iter().all(|c| c.seg == self.alts[c.alt].len())
    }

    /// The bytes accepted so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// The cursor after consuming `b`, or `None` when `b` cannot come next.
    fn step(&self, c: &Cursor, b: u8) -> Option<Cursor> {
        let segs = &self.alts[c.alt];
        let seg = segs.get(c.seg)?;
        let mut n = c.clone();
        let done = match seg {
            Seg::Lit(lit) => {
                if lit[c.pos] != b {
                    return None;
                }
                n.pos += 1;
                n.pos == lit.len()
            }
            Seg::Choice(opts) => {
                n.live.retain(|&i| opts[i].get(c.pos) == Some(&b));
                if n.live.is_empty() {
                    return None;
                }
                n.pos += 1;
                n.live.iter().any(|&i| opts[i].len() == n.pos)
            }
            Seg::Str { .. } if c.cont > 0 => {
                if b < c.next_range.0 || b > c.next_range.1 {
                    return None;
                }
                n.cont -= 1;
                n.next_range = (0x80, 0xBF);
                false
            }
            Seg::Str { min, max } => match (c.pos, b) {
                (0, b'"') => {
                    n.pos = 1;
                    false
                }
                (0, _) => return None,
                (1, b'"') if c.len >= *min => true,
                (1, b'"') => return None,
                (1, _) if c.len >= *max => return None,
                (1, b'\\') => {
                    n.pos = 2;
                    false
                }
                (1, b) if b < 0x20 => return None,
                (1, b) => {
                    // A character starts here; multi-byte ones owe continuation bytes.
                    let (cont, range) = match b {
                        0x20..=0x7F => (0, (0x80, 0xBF)),
                        0xC2..=0xDF => (1, (0x80, 0xBF)),
                        0xE0 => (2, (0xA0, 0xBF)),
                        0xED => (2, (0x80, 0x9F)),
                        0xE1..=0xEF => (2, (0x80, 0xBF)),
                        0xF0 => (3, (0x90, 0xBF)),
                        0xF1..=0xF3 => (3, (0x80, 0xBF)),
                        0xF4 => (3, (0x80, 0x8F)),
                        _ => return None,
                    };
                    n.len += 1;
                    n.cont = cont;
                    n.next_range = range;
                    false
                }
                (2, b'"' | b'\\' | b'/' | b'n' | b't' | b'r') => {
                    n.pos = 1;
                    n.len += 1;
                    false
                }
                _ => return None,
            },
        };
        if done {
            return Some(start(segs, c.alt, c.seg + 1));
        }
        Some(n)
    }
}

fn start(segs: &[Seg], alt: usize, seg: usize) -> Cursor {
    let live = match segs.get(seg) {
        Some(Seg::Choice(o)) => (0..o.len()).collect(),
        _ => Vec::new(),
    };
    Cursor {
        alt,
        seg,
        pos: 0,
        len: 0,
        live,
        cont: 0,
        next_range: (0x80, 0xBF),
    }
}

fn bad(m: &str) -> AnalystError {
    AnalystError::Invalid(format!("unsupported output schema: {m}"))
}

fn compile_object(schema: &Value) -> Result<Vec<Seg>> {
    let o = schema
        .as_object()
        .ok_or_else(|| bad("not an object schema"))?;
    for k in o.keys() {
        if !["type", "properties", "required", "additionalProperties"].contains(&k.as_str()) {
            return Err(bad(&format!("keyword `{k}` on an object")));
        }
    }
    if o.get("type").is_some_and(|t| t != "object") {
        return Err(bad("the top level must be an object"));
    }
    if o.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Err(bad("objects need `additionalProperties: false`"));
    }
    let props = o
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or_else(|| bad("an object needs `properties`"))?;
    let required: Vec<&str> = o
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut segs = vec![Seg::Lit(b"{".to_vec())];
    // serde_json keeps insertion order only with `preserve_order`; without it keys are
    // sorted, so the order is taken from `required`, which lists every property.
    if required.len() != props.len() || required.iter().any(|r| !props.contains_key(*r)) {
        return Err(bad(
            "every property must be listed in `required`, in output order",
        ));
    }
    for (i, name) in required.iter().enumerate() {
        let key = format!(
            "{}{}:",
            if i > 0 { "," } else { "" },
            Value::String(name.to_string())
        );
        segs.push(Seg::Lit(key.into_bytes()));
        segs.push(compile_value(&props[*name])?);
    }
    segs.push(Seg::Lit(b"}".to_vec()));
    Ok(segs)
}

fn compile_value(s: &Value) -> Result<Seg> {
    let o = s
        .as_object()
        .ok_or_else(|| bad("a property schema is not an object"))?;
    for k in o.keys() {
        if ![
            "type",
            "const",
            "enum",
            "minLength",
            "maxLength",
            "description",
        ]
        .contains(&k.as_str())
        {
            return Err(bad(&format!("keyword `{k}` on a property")));
        }
    }
    if o.get("type").is_some_and(|t| t != "string") {
        return Err(bad("properties must be strings"));
    }
    let quoted = |v: &Value| -> Result<Vec<u8>> {
        v.as_str()
            .map(|s| Value::String(s.to_string()).to_string().into_bytes())
            .ok_or_else(|| bad("const and enum values must be strings"))
    };
    if let Some(c) = o.get("const") {
        return Ok(Seg::Lit(quoted(c)?));
    }
    if let Some(e) = o.get("enum") {
        let opts = e
            .as_array()
            .ok_or_else(|| bad("`enum` must be an array"))?
            .iter()
            .map(quoted)
            .collect::<Result<Vec<_>>>()?;
        if opts.is_empty() {
            return Err(bad("an empty `enum`"));
        }
        return Ok(Seg::Choice(opts));
    }
    let num = |k: &str, d: usize| {
        o.get(k)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(d)
    };
    let (min, max) = (num("minLength", 0), num("maxLength", 2000));
    if min > max {
        return Err(bad("minLength above maxLength"));
    }
    Ok(Seg::Str { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: every single byte, plus some multi-byte pieces.
    fn vocab() -> Arc<TokenVocab> {
        let mut v: Vec<Option<Vec<u8>>> = (0u8..=255).map(|b| Some(vec![b])).collect();
        for s in [
            "{\"",
            "verdict",
            "\":\"",
            "vulnerable",
            "not",
            " vulnerable",
            "\"}",
            "\",\"",
            "hi\"gh",
        ] {
            v.push(Some(s.as_bytes().to_vec()));
        }
        v.push(None); // a control token
        Arc::new(TokenVocab::from_bytes(v))
    }

    fn allowed(c: &JsonSchemaConstraint, n: usize) -> Vec<usize> {
        let mut l = vec![0.0; n];
        c.mask(&mut l);
        (0..n).filter(|&i| l[i] == 0.0).collect()
    }

    /// Random walks over allowed tokens always end in a document serde parses and that
    /// satisfies the schema.
    #[test]
    fn random_walks_produce_valid_documents() {
        let schema = vigil_data::prompt::verdict_schema();
        let v = vocab();
        let n = v.bytes.len();
        let mut seed = 7u64;
        for _ in 0..40 {
            let mut c = JsonSchemaConstraint::new(&schema, v.clone()).unwrap();
            let mut steps = 0;
            while !c.is_complete() {
                let ok = allowed(&c, n);
                assert!(!ok.is_empty(), "stuck after {}", c.text());
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Prefer closing quotes now and then so strings end.
                let pick = ok[(seed >> 33) as usize % ok.len()];
                c.accept(pick as u32).unwrap();
                steps += 1;
                assert!(steps < 5000);
            }
            let doc: Value = serde_json::from_str(&c.text()).unwrap();
            assert_eq!(doc["verdict"], "vulnerable");
            let t = doc["vulnerability"].as_str().unwrap();
            assert!(vigil_taxonomy::Taxonomy::builtin().by_id(t).is_some());
            let cwe = doc["cwe"].as_str().unwrap();
            assert!((5..=9).contains(&cwe.chars().count()), "{cwe}");
            assert!(vigil_taxonomy::Severity::parse(doc["severity"].as_str().unwrap()).is_some());
            assert_eq!(doc.as_object().unwrap().len(), 4);
        }
    }

    #[test]
    fn choice_between_objects_and_control_tokens() {
        let schema = serde_json::json!({"anyOf": [
            {"type": "object", "properties": {"verdict": {"const": "vulnerable"}, "x": {"enum": ["a"]}},
             "required": ["verdict", "x"], "additionalProperties": false},
            {"type": "object", "properties": {"verdict": {"const": "not vulnerable"}},
             "required": ["verdict"], "additionalProperties": false},
        ]});
        let v = vocab();
        let n = v.bytes.len();
        let mut c = JsonSchemaConstraint::new(&schema, v.clone()).unwrap();
        assert!(
            !allowed(&c, n).contains(&(n - 1)),
            "a control token is never allowed"
        );
        c.advance_bytes(b"{\"verdict\":\"not").unwrap();
        c.advance_bytes(b" vulnerable\"").unwrap();
        assert!(!c.is_complete());
        // Only the closing brace can follow now.
        assert_eq!(allowed(&c, n), vec![b'}' as usize]);
        c.advance_bytes(b"}").unwrap();
        assert!(c.is_complete());
        assert_eq!(allowed(&c, n), Vec::<usize>::new());
        let mut c = JsonSchemaConstraint::new(&schema, v).unwrap();
        assert!(c.advance_bytes(b"{\"verdict\":\"maybe").is_err());
    }

    #[test]
    fn string_bounds_and_escapes() {
        let schema = serde_json::json!({"type": "object",
            "properties": {"r": {"type": "string", "minLength": 2, "maxLength": 3}},
            "required": ["r"], "additionalProperties": false});
        let v = vocab();
        let mut c = JsonSchemaConstraint::new(&schema, v.clone()).unwrap();
        c.advance_bytes(b"{\"r\":\"a").unwrap();
        assert!(c.clone().advance_bytes(b"\"").is_err(), "below minLength");
        c.advance_bytes(b"\\n\xc3\xa9").unwrap(); // an escape and a 2-byte char: 3 chars
        assert!(c.clone().advance_bytes(b"x").is_err(), "above maxLength");
        assert!(c.clone().advance_bytes(b"\n").is_err());
        c.advance_bytes(b"\"}").unwrap();
        assert!(c.is_complete());
        let doc: Value = serde_json::from_str(&c.text()).unwrap();
        assert_eq!(doc["r"], "a\né");
    }

    #[test]
    fn unsupported_schemas_are_refused() {
        let v = vocab();
        for s in [
            serde_json::json!({"type": "array"}),
            serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}),
            serde_json::json!({"type": "object", "properties": {"a": {"pattern": "x"}}, "required": ["a"], "additionalProperties": false}),
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
        ] {
            assert!(JsonSchemaConstraint::new(&s, v.clone()).is_err(), "{s}");
        }
    }
}
