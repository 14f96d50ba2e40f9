//! Splitting text around special tokens before the BPE model sees it.
//!
//! llama.cpp takes its special tokens one at a time, longest text first, and
//! cuts every occurrence out of the text fragments that are still raw. That
//! order matters when two special texts overlap, so we reproduce it exactly:
//! one Aho-Corasick pass finds every (overlapping) occurrence, and the
//! occurrences are then accepted in llama.cpp's order, each only if it does
//! not touch text already claimed by an earlier one.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A piece of input after splitting: raw text for the model, or a special
/// token id taken verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece<'t> {
    Text(&'t str),
    Token(u32),
}

#[derive(Clone)]
pub(crate) struct SpecialSplitter {
    /// None when the vocabulary has no special tokens at all.
    ac: Option<AhoCorasick>,
    /// Per pattern: token id, byte length, and whether it is cut out even
    /// when the caller did not ask to parse special tokens (llama.cpp's
    /// "user-defined" tokens behave like that; control tokens do not).
    ids: Vec<u32>,
    lens: Vec<usize>,
    always: Vec<bool>,
}

impl SpecialSplitter {
    /// `specials`: (id, text, always). Empty texts are ignored: they would
    /// match everywhere.
    pub(crate) fn new(specials: Vec<(u32, &str, bool)>) -> Self {
        let mut specials: Vec<_> = specials.into_iter().filter(|s| !s.1.is_empty()).collect();
        // Pattern index order is the acceptance order: longest first, and
        // by id among equal lengths (llama.cpp's sort leaves ties unordered;
        // the id is a stable, reproducible choice).
        specials.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let ac = if specials.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(specials.iter().map(|s| s.1))
                .ok()
        };
        SpecialSplitter {
            ac,
            ids: specials.iter().map(|s| s.0).collect(),
            lens: specials.iter().map(|s| s.1.len()).collect(),
            always: specials.iter().map(|s| s.2).collect(),
        }
    }

    pub(crate) fn split<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Piece<'t>> {
        let Some(ac) = &self.ac else {
            return vec![Piece::Text(text)];
        };
        // (pattern, start) of every occurrence that is eligible.
        let mut found: Vec<(usize, usize)> = ac
            .find_overlapping_iter(text)
            .filter(|m| parse_special || self.always[m.pattern().as_usize()])
            .map(|m| (m.pattern().as_usize(), m.start()))
            .collect();
        if found.is_empty() {
            return vec![Piece::Text(text)];
        }
        found.sort_unstable();
        // Accepted spans kept sorted by start; they never overlap.
        let mut taken: Vec<(usize, usize, u32)> = Vec::new();
        for (pat, start) in found {
            let end = start + self.lens[pat];
            let at = taken.partition_point(|t| t.0 < start);
            let clash_left = at > 0 && taken[at - 1].1 > start;
            let clash_right = at < taken.len() && taken[at].0 < end;
            if !clash_left && !clash_right {
                taken.insert(at, (start, end, self.ids[pat]));
            }
        }
        let mut out = Vec::with_capacity(taken.len() * 2 + 1);
        let mut pos = 0;
        for (start, end, id) in taken {
            if start > pos {
                out.push(Piece::Text(&text[pos..start]));
            }
            out.push(Piece::Token(id));
            pos = end;
        }
        if pos < text.len() {
            out.push(Piece::Text(&text[pos..]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_not_leftmost() {
        // "ab" and "bcd" overlap in "abcd": llama.cpp cuts the longer one.
        let s = SpecialSplitter::new(vec![(1, "ab", true), (2, "bcd", true)]);
        assert_eq!(
            s.split("abcd", false),
            vec![Piece::Text("a"), Piece::Token(2)]
        );
    }

    #[test]
    fn control_only_when_parsing() {
        let s = SpecialSplitter::new(vec![(7, "<x>", false), (8, "<u>", true)]);
        assert_eq!(
            s.split("a<x>b<u>", false),
            vec![Piece::Text("a<x>b"), Piece::Token(8)]
        );
        assert_eq!(
            s.split("a<x>b<u>", true),
            vec![
                Piece::Text("a"),
                Piece::Token(7),
                Piece::Text("b"),
                Piece::Token(8)
            ]
        );
    }

    #[test]
    fn repeated_token_does_not_overlap_itself() {
        let s = SpecialSplitter::new(vec![(3, "aa", true)]);
        assert_eq!(
            s.split("aaa", true),
            vec![Piece::Token(3), Piece::Text("a")]
        );
    }
}
