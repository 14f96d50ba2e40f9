//! Making untrusted text (model output, analysed code, file names) safe to show.
//!
//! Reasons, fixes and snippets come from a model reading attacker-controlled code, so they
//! may carry terminal escape sequences, bidi overrides ("Trojan Source"), Markdown or HTML.
//! Shown raw, they could recolour or rewrite a terminal, hide text, or inject links and
//! markup into a rendered report.

/// Whether `c` must not reach a terminal or a document raw: C0 and C1 controls, DEL, and
/// the Unicode bidi embedding / override / isolate characters.
fn is_dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Replace dangerous characters with a visible `\u{..}` form. With `multiline`, `\n` and
/// `\t` stay and `\r\n` becomes `\n`; without it every line break is shown as `\n` too, so a
/// value can never start a new line of its own.
pub fn visible(s: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if multiline && chars.peek() == Some(&'\n') => {}
            '\n' | '\t' if multiline => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown paragraph, heading or table cell: dangerous characters made visible,
/// HTML special characters as entities, and every ASCII punctuation character that could
/// start Markdown syntax backslash-escaped. Line breaks become spaces unless `multiline`,
/// where they become hard line breaks inside one paragraph.
pub fn markdown_text(s: &str, multiline: bool) -> String {
    let cleaned = visible(&s.replace("\r\n", "\n"), true);
    let mut out = String::with_capacity(cleaned.len() + 16);
    for c in cleaned.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A backslash before the line end is CommonMark's hard line break.
            '\n' if multiline => out.push_str("\\\n"),
            '\n' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' | '=' | '$' | '@' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced Markdown code block holding `code` verbatim (dangerous characters made visible).
/// The fence is one backtick longer than the longest backtick run in the code, so nothing
/// in the code can close it early; the language tag keeps only characters that cannot end
/// or break the info string.
pub fn markdown_code_block(code: &str, language: &str) -> String {
    let body = visible(code, true);
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let lang: String = language
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-' | '_'))
        .take(32)
        .collect();
    let mut out = format!("{fence}{lang}\n{body}");
    if !body.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&fence);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_bidi_become_visible() {
        assert_eq!(visible("a\u{1b}[31mb", false), "a\\u{1b}[31mb");
        assert_eq!(visible("x\u{202e}y", true), "x\\u{202e}y");
        assert_eq!(visible("l1\r\nl2\rl3", true), "l1\nl2\\rl3");
        assert_eq!(visible("l1\nl2", false), "l1\\nl2");
        assert_eq!(visible("\u{9b}2J", true), "\\u{9b}2J");
    }

    #[test]
    fn markdown_text_neutralises_markup() {
        assert_eq!(
            markdown_text("<img src=x onerror=alert(1)>", false),
            "&lt;img src\\=x onerror\\=alert\\(1\\)&gt;"
        );
        assert_eq!(markdown_text("# h\n[l](u)", false), "\\# h \\[l\\]\\(u\\)");
        assert_eq!(markdown_text("a|b", false), "a\\|b");
        assert_eq!(markdown_text("a\nb", true), "a\\\nb");
    }

    #[test]
    fn code_block_fence_outlasts_backticks_in_code() {
        let code = "x = 1\n```\n# not a heading\n````\n";
        let block = markdown_code_block(code, "python`evil");
        assert!(block.starts_with("`````pythonevil\n"), "{block}");
        assert!(block.ends_with("\n`````\n"), "{block}");
        assert_eq!(markdown_code_block("a", "js"), "```js\na\n```\n");
    }
}
