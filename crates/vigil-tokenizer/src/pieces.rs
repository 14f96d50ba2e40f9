//! Token → bytes, the inverse of each tokenizer family's text encoding.
//!
//! Decoding is done here rather than through the `tokenizers` decoders so
//! that every token has a well-defined byte string of its own: streaming
//! needs that (a multi-byte character may be split across byte tokens), and
//! it is what llama.cpp's `token_to_piece` does.

use std::sync::OnceLock;

/// How the text of an ordinary vocabulary entry maps back to bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceStyle {
    /// GPT-2 byte-level: each char stands for one byte.
    ByteLevel,
    /// SentencePiece: `▁` stands for a space, everything else is literal.
    Metaspace,
}

/// GPT-2's byte ↔ char table: printable Latin-1 bytes map to themselves, the
/// other 68 bytes to U+0100.. in byte order. Indexed by char code (< 324).
fn byte_level_table() -> &'static [Option<u8>; 324] {
    static TABLE: OnceLock<[Option<u8>; 324]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [None; 324];
        let mut next = 256usize;
        for b in 0u16..=255 {
            let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
            if printable {
                table[b as usize] = Some(b as u8);
            } else {
                table[next] = Some(b as u8);
                next += 1;
            }
        }
        table
    })
}

/// Bytes of a byte-level token text. Chars outside the table (which a sane
/// vocabulary never has) are kept as their own UTF-8.
pub(crate) fn byte_level_decode(text: &str, out: &mut Vec<u8>) {
    let table = byte_level_table();
    for c in text.chars() {
        match table.get(c as usize).copied().flatten() {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

pub(crate) fn metaspace_decode(text: &str, out: &mut Vec<u8>) {
    for (i, part) in text.split('\u{2581}').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// `<0xAB>` → 0xAB.
pub(crate) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// llama.cpp's `clean_spaces` post-pass (its three passes, in order).
pub(crate) fn llama_clean_spaces(text: &[u8]) -> Vec<u8> {
    // pass 1: " ?", " !", " .", " ," lose the space
    let mut a: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            a.pop();
        }
        a.push(x);
    }
    // pass 2: a lone apostrophe between spaces loses both spaces
    let mut b: Vec<u8> = Vec::with_capacity(a.len());
    let mut i = 0;
    while i < a.len() {
        let x = a[i];
        if i > 0 && x == b'\'' && i + 1 < a.len() && a[i - 1] == b' ' && a[i + 1] == b' ' {
            b.pop();
            b.push(x);
            i += 2;
            continue;
        }
        b.push(x);
        i += 1;
    }
    // pass 3: " 's", " 'm", " 're", " 've" lose the space
    let mut c: Vec<u8> = Vec::with_capacity(b.len());
    for i in 0..b.len() {
        let x = b[i];
        if i > 0 && b[i - 1] == b' ' && x == b'\'' && i + 1 < b.len() {
            let x1 = b[i + 1];
            let x2 = b.get(i + 2).copied();
            let drop = matches!(x1, b's' | b'm')
                || (i + 2 < b.len() && matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))));
            if drop {
                c.pop();
            }
        }
        c.push(x);
    }
    c
}

/// transformers' `clean_up_tokenization` (used by `tokenizer.json` models
/// whose config asks for it).
pub(crate) fn hf_clean_spaces(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_roundtrip_of_known_chars() {
        let mut out = Vec::new();
        byte_level_decode("ĠhelloĊ", &mut out);
        assert_eq!(out, b" hello\n");
    }

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xFF>"), Some(255));
        assert_eq!(parse_byte_token("<0x1>"), None);
        assert_eq!(parse_byte_token("0x10"), None);
    }

    #[test]
    fn llama_cleanup() {
        assert_eq!(
            llama_clean_spaces(b"Hi , there ' s it 's fine !"),
            b"Hi, there's it's fine!".to_vec()
        );
    }
}
