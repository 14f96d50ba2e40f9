//! Agreement with llama.cpp (token ids, detokenisation) and with Python
//! jinja2 as transformers configures it (chat templates), on the fixtures in
//! `fixtures/llama.cpp/<model>/`. Every string must match; mismatches are
//! listed in full before the test fails.

mod common;

use std::path::{Path, PathBuf};

use common::TokenizeFixture;
use serde::Deserialize;
use vigil_tokenizer::ChatTemplate;

#[derive(Deserialize)]
struct TemplateFixture {
    /// None when the model ships no template (Gemma 3 base).
    chat_template: Option<String>,
    /// llama.cpp's built-in formatter used for such models.
    llama_cpp_builtin_template: Option<String>,
    bos_token: String,
    eos_token: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    messages: serde_json::Value,
    add_generation_prompt: bool,
    rendered: Option<String>,
    error: Option<String>,
    llama_cpp_builtin: Option<String>,
}

fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    if !path.is_file() {
        eprintln!("SKIP: fixture {} not present", path.display());
        return None;
    }
    let text = std::fs::read_to_string(path).expect("read fixture");
    Some(serde_json::from_str(&text).expect("parse fixture"))
}

fn check_tokenize(model: &str, model_path: Option<PathBuf>) {
    let Some(path) = model_path else { return };
    let Some(fx) = load_json::<TokenizeFixture>(&common::fixture(model, "tokenize.json")) else {
        return;
    };
    let (tok, took) = common::load(&path);
    eprintln!("{model}: tokenizer built in {took:?}");
    assert_eq!(tok.vocab_size(), fx.n_vocab);
    assert_eq!(tok.bos_id(), fx.bos_id);
    assert_eq!(tok.eos_id(), fx.eos_id);
    assert_eq!(tok.adds_bos_by_default(), fx.add_bos_default);
    assert_eq!(tok.adds_eos_by_default(), fx.add_eos_default);

    let mut id_mismatch = Vec::new();
    let mut detok_mismatch = Vec::new();
    for (i, e) in fx.entries.iter().enumerate() {
        let ids = tok.encode(&e.text, e.add_bos, e.special).unwrap();
        if ids != e.ids {
            let first = ids
                .iter()
                .zip(&e.ids)
                .position(|(a, b)| a != b)
                .unwrap_or(ids.len().min(e.ids.len()));
            id_mismatch.push(format!(
                "#{i} text={:?} add_bos={} special={}\n   first difference at {first}\n   ours:     {:?}\n   llama.cpp: {:?}",
                e.text, e.add_bos, e.special, ids, e.ids
            ));
        }
        // Detokenise llama.cpp's own ids (remove_special=false,
        // unparse_special=true ⇔ skip_special=false).
        let text = tok.decode(&e.ids, false).unwrap();
        let expected_ok = if e.detokenized_valid_utf8 {
            text == e.detokenized
        } else {
            // The fixture holds lossy text; compare the same way.
            text == e.detokenized
                || text.replace('\u{FFFD}', "") == e.detokenized.replace('\u{FFFD}', "")
        };
        if !expected_ok {
            detok_mismatch.push(format!(
                "#{i} ids={:?}\n   ours:      {text:?}\n   llama.cpp: {:?}",
                e.ids, e.detokenized
            ));
        }
    }
    let n = fx.entries.len();
    eprintln!(
        "{model}: ids match on {}/{n} strings, detokenisation on {}/{n}",
        n - id_mismatch.len(),
        n - detok_mismatch.len()
    );
    for m in id_mismatch.iter().chain(&detok_mismatch) {
        eprintln!("{m}");
    }
    assert!(id_mismatch.is_empty() && detok_mismatch.is_empty());
}

fn check_template(model: &str, model_path: Option<PathBuf>) {
    let Some(fx) = load_json::<TemplateFixture>(&common::fixture(model, "chat_template.json"))
    else {
        return;
    };
    // The GGUF's own template must be the one the fixture rendered (or
    // absent when the fixture has none).
    if let Some(path) = model_path {
        let (tok, _) = common::load(&path);
        assert_eq!(
            tok.chat_template().map(|t| t.source()),
            fx.chat_template.as_deref()
        );
    }
    let Some(src) = &fx.chat_template else {
        // No template of its own: compare our built-in with llama.cpp's.
        let name = fx
            .llama_cpp_builtin_template
            .as_deref()
            .expect("builtin name");
        let t = ChatTemplate::builtin(name, &fx.bos_token, &fx.eos_token).unwrap();
        let mut bad = Vec::new();
        for (i, c) in fx.cases.iter().enumerate() {
            let Some(expected) = &c.llama_cpp_builtin else {
                continue;
            };
            let ours = t.render_with(&c.messages, c.add_generation_prompt, &Default::default());
            if ours.as_ref().ok() != Some(expected) {
                bad.push(format!(
                    "#{i} messages={}\n   ours:      {ours:?}\n   llama.cpp: {expected:?}",
                    c.messages
                ));
            }
        }
        let n = fx
            .cases
            .iter()
            .filter(|c| c.llama_cpp_builtin.is_some())
            .count();
        eprintln!(
            "{model}: built-in `{name}` template matches llama.cpp on {}/{n} cases",
            n - bad.len()
        );
        for b in &bad {
            eprintln!("{b}");
        }
        assert!(bad.is_empty());
        return;
    };
    let t = ChatTemplate::new(src, &fx.bos_token, &fx.eos_token).unwrap();
    let mut bad = Vec::new();
    for (i, c) in fx.cases.iter().enumerate() {
        let ours = t.render_with(&c.messages, c.add_generation_prompt, &Default::default());
        match (&ours, &c.rendered, &c.error) {
            (Ok(a), Some(b), _) if a == b => {}
            (Err(_), _, Some(_)) => {}
            _ => bad.push(format!(
                "#{i} messages={} agp={}\n   ours:   {ours:?}\n   jinja2: {:?} error={:?}",
                c.messages, c.add_generation_prompt, c.rendered, c.error
            )),
        }
    }
    let n = fx.cases.len();
    eprintln!(
        "{model}: chat template matches on {}/{n} cases",
        n - bad.len()
    );
    for b in &bad {
        eprintln!("{b}");
    }
    assert!(bad.is_empty());
}

#[test]
fn smollm2_tokenize_matches_llama_cpp() {
    check_tokenize("smollm2-135m-instruct", common::smollm2());
}

#[test]
fn gemma3_tokenize_matches_llama_cpp() {
    check_tokenize("gemma3-270m", common::gemma3());
}

#[test]
fn smollm2_chat_template_matches_jinja2() {
    check_template("smollm2-135m-instruct", common::smollm2());
}

#[test]
fn gemma3_chat_template_matches_jinja2() {
    check_template("gemma3-270m", common::gemma3());
}
