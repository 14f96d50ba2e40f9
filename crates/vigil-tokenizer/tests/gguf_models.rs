//! Checks on the real models that need no reference data: special ids,
//! round trips, streaming, templates, and load time.

mod common;

use vigil_tokenizer::{ChatMessage, TokenKind, Tokenizer};

const SAMPLES: &[&str] = &[
    "Hello world",
    " leading space and trailing space ",
    "SELECT * FROM users WHERE id = '1' OR '1'='1'; --",
    "fn main() {\n    println!(\"{}\", 42);\n}\n",
    "Ünïcödé — “quotes” 日本語のテキスト 🦀🔒 ñ",
    "tabs\tand\n\n\nnewlines\r\n",
    "1234567890 3.14159 1e-9",
    "<script>alert(document.cookie)</script>",
    "",
    " ",
    "    ",
];

fn roundtrip(tok: &Tokenizer) {
    for s in SAMPLES {
        let ids = tok.encode(s, false, false).unwrap();
        assert_eq!(
            &tok.decode(&ids, false).unwrap(),
            s,
            "round trip of {s:?} via {ids:?}"
        );
        // Streaming gives the same text, one complete character at a time.
        let mut stream = tok.decode_stream(false);
        let mut text = String::new();
        for &id in &ids {
            if let Some(delta) = stream.push(id).unwrap() {
                text.push_str(&delta);
            }
        }
        assert!(stream.finish().is_none());
        assert_eq!(&text, s);
    }
}

#[test]
fn smollm2_basics() {
    let Some(path) = common::smollm2() else {
        return;
    };
    let (tok, took) = common::load(&path);
    eprintln!("SmolLM2 tokenizer built in {took:?}");
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos_id(), Some(1));
    assert_eq!(tok.eos_id(), Some(2));
    assert!(!tok.adds_bos_by_default());
    assert_eq!(tok.eot_id(), Some(2));
    assert_eq!(tok.stop_ids(), &[0, 2]);
    assert_eq!(tok.token_kind(1), Some(TokenKind::Control));
    assert_eq!(tok.token_str(2).as_deref(), Some("<|im_end|>"));
    roundtrip(&tok);

    // Special tokens are parsed only on request.
    let with = tok
        .encode("<|im_start|>user\nhi<|im_end|>", true, true)
        .unwrap();
    assert_eq!(with[0], 1);
    assert_eq!(*with.last().unwrap(), 2);
    let without = tok.encode("<|im_start|>user", true, false).unwrap();
    assert!(!without.contains(&1));
    assert_eq!(tok.decode(&with, true).unwrap(), "user\nhi");
    assert_eq!(
        tok.decode(&with, false).unwrap(),
        "<|im_start|>user\nhi<|im_end|>"
    );

    // Digits are split one by one (smollm pre-tokenizer).
    let ids = tok.encode("2024", false, false).unwrap();
    assert_eq!(ids.len(), 4);

    let t = tok.chat_template().expect("SmolLM2 has a chat template");
    let out = t.render(&[ChatMessage::user("Hi")], true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn gemma3_basics() {
    let Some(path) = common::gemma3() else { return };
    let (tok, took) = common::load(&path);
    eprintln!("Gemma 3 tokenizer built in {took:?}");
    assert_eq!(tok.vocab_size(), 262144);
    assert_eq!(tok.bos_id(), Some(2));
    assert_eq!(tok.eos_id(), Some(1));
    assert!(tok.adds_bos_by_default());
    assert_eq!(tok.eot_id(), Some(106));
    assert_eq!(tok.stop_ids(), &[1, 106]);
    assert_eq!(tok.token_kind(238), Some(TokenKind::Byte(0)));
    assert_eq!(tok.token_kind(107), Some(TokenKind::UserDefined));
    roundtrip(&tok);

    let ids = tok
        .encode("<start_of_turn>user\nHi<end_of_turn>", true, true)
        .unwrap();
    assert_eq!(&ids[..2], &[2, 105]);
    assert_eq!(*ids.last().unwrap(), 106);
    // "\n" is a user-defined token: cut out even without parse_special.
    let ids = tok.encode("a\nb", false, false).unwrap();
    assert!(ids.contains(&107), "{ids:?}");
    // Streaming never splits a multi-byte character across byte tokens.
    let ids = tok.encode("\u{10FFFF}🦀", false, false).unwrap();
    let mut stream = tok.decode_stream(true);
    let deltas: Vec<String> = ids
        .iter()
        .filter_map(|&i| stream.push(i).unwrap())
        .collect();
    assert!(deltas.iter().all(|d| !d.contains('\u{FFFD}')), "{deltas:?}");
    assert_eq!(deltas.concat(), "\u{10FFFF}🦀");
    // The base model ships no chat template.
    assert!(tok.chat_template().is_none());
}

#[test]
fn tokenizer_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Tokenizer>();
    check::<vigil_tokenizer::ChatTemplate>();
}
