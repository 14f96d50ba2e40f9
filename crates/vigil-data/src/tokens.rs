//! Token counting for length statistics. The real model tokenizer plugs in through
//! [`TokenCounter`]; until one is given, [`ApproxTokenCounter`] estimates
//! `ceil(chars / 4)` and every report that uses it says "approximate".

/// Counts tokens of a text.
pub trait TokenCounter {
    /// Number of tokens in `text`.
    fn count(&self, text: &str) -> usize;
    /// How to label the numbers in reports ("approx. tokens (chars/4)", "SmolLM2 tokens").
    fn label(&self) -> String;
    /// Whether the numbers come from a real tokenizer.
    fn is_exact(&self) -> bool;
}

/// `ceil(chars / 4)`: the usual rule of thumb for English and code with BPE tokenizers.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApproxTokenCounter;

impl TokenCounter for ApproxTokenCounter {
    fn count(&self, text: &str) -> usize {
        text.chars().count().div_ceil(4)
    }
    fn label(&self) -> String {
        "approximate tokens (characters / 4)".into()
    }
    fn is_exact(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn approx_counts() {
        assert_eq!(ApproxTokenCounter.count(""), 0);
        assert_eq!(ApproxTokenCounter.count("abcd"), 1);
        assert_eq!(ApproxTokenCounter.count("abcde"), 2);
        assert!(!ApproxTokenCounter.is_exact());
    }
}
