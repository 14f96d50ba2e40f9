//! `Generator`: prefill, then decode token by token until a stop condition.
//!
//! Stop conditions: an end-of-sequence / end-of-turn token, a stop string (the text is cut
//! before it and never streamed), or the token budget. Streaming hands out text deltas as
//! soon as they cannot be the start of a stop string.

use crate::decoder::{
    left_padded_batch, shared_prefix_len, Decoder, ForwardOptions, KvState, LogitsFor,
};
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::sampling::{Sampler, SamplingParams};
use candle_core::{Device, Tensor};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt_ids: Vec<u32>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// End-of-sequence tokens are forbidden before this many tokens.
    pub min_tokens: usize,
    pub stop_strings: Vec<String>,
    pub sampling: SamplingParams,
    /// Keep going through end-of-sequence tokens (benchmarks).
    pub ignore_eos: bool,
    /// The LoRA adapter to generate with; `None` = the base model.
    pub adapter: Option<String>,
    /// Hidden states of the prompt to return (see [`ForwardOptions::hidden_layers`]), so a
    /// classifier head and the generation share one prefill.
    pub hidden_layers: Vec<usize>,
    /// A prefix already run (a system prompt). When the prompt continues it (see
    /// [`PromptPrefix::serves`]) only the rest of the prompt is prefilled; otherwise the
    /// whole prompt is, so a prefix that does not fit never changes the answer.
    pub prefix: Option<Arc<PromptPrefix>>,
}

impl GenerateRequest {
    pub fn new(prompt_ids: Vec<u32>, max_tokens: usize) -> Self {
        GenerateRequest {
            prompt_ids,
            max_tokens,
            min_tokens: 0,
            stop_strings: Vec::new(),
            sampling: SamplingParams::default(),
            ignore_eos: false,
            adapter: None,
            hidden_layers: Vec::new(),
            prefix: None,
        }
    }
}

/// Prompts that share fewer leading tokens than this run them with each prompt: a shorter
/// common start is not worth a cache copy.
pub const MIN_SHARED_PREFIX: usize = 16;

/// The start of many prompts run once: its KV cache and its hidden states. A prompt that
/// begins with these tokens continues a [`KvState::fork`] of the cache and prefills only
/// its own tokens; its hidden states are the prefix's followed by its own, exactly what a
/// prefill of the whole prompt gives, since no prefix position attends past itself.
#[derive(Debug)]
pub struct PromptPrefix {
    tokens: Vec<u32>,
    adapter: Option<String>,
    state: KvState,
    /// `(index, [1, prefix len, hidden])` for every index in `hidden_layers`.
    hidden: Vec<(usize, Tensor)>,
}

impl PromptPrefix {
    /// Runs `tokens` once with `adapter`, keeping the KV cache and the hidden states in
    /// `hidden_layers`.
    pub fn new(
        decoder: &Decoder,
        tokens: Vec<u32>,
        adapter: Option<String>,
        hidden_layers: Vec<usize>,
    ) -> Result<PromptPrefix> {
        if tokens.is_empty() {
            return Err(ModelError::Generation("the prefix has no tokens".into()));
        }
        Device::Cpu.with_context(|| {
            let mut state = decoder.new_state(vec![0]);
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
            let opts = ForwardOptions {
                logits: LogitsFor::None,
                hidden_layers,
                adapter: adapter.clone(),
            };
            let out = decoder.forward(&input, &mut state, &opts)?;
            Ok(PromptPrefix {
                tokens,
                adapter,
                state,
                hidden: out.hidden,
            })
        })
    }

    /// The leading tokens all of several `prompts` share, run once, when there are at least
    /// [`MIN_SHARED_PREFIX`] of them (each prompt keeps a token of its own); `None` for a
    /// single prompt or a shorter common start.
    pub fn common(
        decoder: &Decoder,
        prompts: &[Vec<u32>],
        adapter: Option<String>,
        hidden_layers: Vec<usize>,
    ) -> Result<Option<PromptPrefix>> {
        let shared = shared_prefix_len(prompts);
        if prompts.len() < 2 || shared < MIN_SHARED_PREFIX {
            return Ok(None);
        }
        let tokens = prompts[0][..shared].to_vec();
        PromptPrefix::new(decoder, tokens, adapter, hidden_layers).map(Some)
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Whether `req` can continue this prefix: same adapter, the prompt starts with the
    /// prefix and has a token of its own after it (the logits come from that token), and
    /// every hidden state the request wants was kept for the prefix.
    pub fn serves(&self, req: &GenerateRequest) -> bool {
        req.adapter == self.adapter
            && req.prompt_ids.len() > self.tokens.len()
            && req.prompt_ids.starts_with(&self.tokens)
            && req
                .hidden_layers
                .iter()
                .all(|l| self.hidden.iter().any(|(i, _)| i == l))
    }

    /// The cache after the prefix, copied for `rows` prompts that continue it (see
    /// [`KvState::fork_rows`]).
    pub fn fork_rows(&self, rows: usize) -> Result<KvState> {
        self.state.fork_rows(rows)
    }

    /// The prefix's states `(index, [1, len, hidden])` joined in front of one prompt's own
    /// `[1, t, hidden]`, in `rest`'s order: what a prefill of the whole prompt returns.
    pub fn join_hidden(&self, rest: Vec<(usize, Tensor)>) -> Result<Vec<(usize, Tensor)>> {
        rest.into_iter()
            .map(|(i, h)| {
                let Some((_, p)) = self.hidden.iter().find(|(j, _)| *j == i) else {
                    return Err(ModelError::Generation(format!(
                        "hidden state {i} was not kept for the prefix"
                    )));
                };
                Ok((i, Tensor::cat(&[p, &h], 1)?))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfSequence,
    StopString,
    MaxTokens,
    /// The [`TokenConstraint`] said the output is complete.
    Constraint,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Prompt tokens taken from a [`PromptPrefix`] instead of being prefilled.
    pub prefix_tokens: usize,
    pub prefill_seconds: f64,
    pub generated_tokens: usize,
    pub decode_seconds: f64,
}

impl GenerationStats {
    /// Prefill speed counts the tokens prefilled, not those a prefix supplied.
    pub fn prefill_tokens_per_second(&self) -> f64 {
        (self.prompt_tokens - self.prefix_tokens) as f64 / self.prefill_seconds.max(1e-9)
    }
    /// Decode speed counts the tokens after the first, which comes from the prefill.
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode_seconds.max(1e-9)
    }
    /// The `--stats` line: `prefill: N tok, X tok/s; decode: M tok, Y tok/s`.
    pub fn summary_line(&self) -> String {
        format!(
            "prefill: {} tok, {:.1} tok/s; decode: {} tok, {:.1} tok/s",
            self.prompt_tokens,
            self.prefill_tokens_per_second(),
            self.generated_tokens,
            self.decode_tokens_per_second()
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub stop_reason: StopReason,
    pub stats: GenerationStats,
    /// The prompt's hidden states asked for by [`GenerateRequest::hidden_layers`],
    /// `(index, [1, t, hidden])`.
    #[serde(skip)]
    pub prompt_hidden: Vec<(usize, Tensor)>,
}

/// Restricts which tokens may come next (e.g. a JSON-schema automaton). The generator
/// calls [`TokenConstraint::mask`] before each sampling step and
/// [`TokenConstraint::accept`] with the token chosen.
pub trait TokenConstraint: Send {
    /// Called once after the prefill with the prompt's hidden states (those asked for by
    /// [`GenerateRequest::hidden_layers`]), before the first token is chosen: a dual head
    /// decides its verdict here and constrains the answer to it.
    fn on_prompt(&mut self, _hidden: &[(usize, Tensor)]) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Sets the logits of every token that may not come next to `-inf`.
    fn mask(&mut self, logits: &mut [f32]);
    /// Records the chosen token; an error ends generation.
    fn accept(&mut self, token: u32) -> std::result::Result<(), String>;
    /// When true the output is finished and generation stops (reason `StopString`-like
    /// [`StopReason::Constraint`]).
    fn is_complete(&self) -> bool;
}

pub struct Generator<'m> {
    model: &'m Model,
}

impl<'m> Generator<'m> {
    pub fn new(model: &'m Model) -> Self {
        Generator { model }
    }

    /// Generates a continuation of `req.prompt_ids`, calling `on_text` with each new piece
    /// of text as it becomes final.
    pub fn generate(
        &self,
        req: &GenerateRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generation> {
        on_candle_pool(|| self.generate_inner(req, None, on_text))
    }

    /// As [`Generator::generate`], with every token chosen under `constraint`.
    pub fn generate_constrained(
        &self,
        req: &GenerateRequest,
        constraint: &mut dyn TokenConstraint,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generation> {
        on_candle_pool(|| self.generate_inner(req, Some(constraint), on_text))
    }

    fn generate_inner(
        &self,
        req: &GenerateRequest,
        mut constraint: Option<&mut dyn TokenConstraint>,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Generation> {
        if req.prompt_ids.is_empty() {
            return Err(ModelError::Generation("the prompt has no tokens".into()));
        }
        let model = self.model;
        let tok = &model.tokenizer;
        let vocab = model.config().vocab_size;
        if let Some(bad) = req.prompt_ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::Generation(format!(
                "prompt token {bad} is outside the vocabulary ({vocab})"
            )));
        }
        let ctx = model.config().max_position;
        if req.prompt_ids.len() + req.max_tokens > ctx {
            return Err(ModelError::Generation(format!(
                "prompt ({} tokens) plus max tokens ({}) exceeds the context length {ctx}",
                req.prompt_ids.len(),
                req.max_tokens
            )));
        }
        let mut sampler = Sampler::new(req.sampling.clone());
        let opts = ForwardOptions {
            logits: LogitsFor::Last,
            hidden_layers: req.hidden_layers.clone(),
            adapter: req.adapter.clone(),
        };
        let mut stats = GenerationStats {
            prompt_tokens: req.prompt_ids.len(),
            ..Default::default()
        };
        let mut history = req.prompt_ids.clone();
        let mut out_ids = Vec::new();
        let mut text = StopStringFilter::new(&req.stop_strings);
        let mut stream = tok.decode_stream(true);
        let stop_ids: Vec<u32> = tok.stop_ids().to_vec();

        let start = Instant::now();
        let prefix = req.prefix.as_deref().filter(|p| p.serves(req));
        let (mut state, input) = match prefix {
            Some(p) => {
                stats.prefix_tokens = p.tokens.len();
                let rest = &req.prompt_ids[p.tokens.len()..];
                (
                    p.fork_rows(1)?,
                    Tensor::new(rest, &Device::Cpu)?.unsqueeze(0)?,
                )
            }
            None => (
                model.decoder.new_state(vec![0]),
                left_padded_batch(std::slice::from_ref(&req.prompt_ids), 0)?.0,
            ),
        };
        let mut logits = model.decoder.forward(&input, &mut state, &opts)?;
        let prompt_hidden = match prefix {
            Some(p) => p.join_hidden(std::mem::take(&mut logits.hidden))?,
            None => std::mem::take(&mut logits.hidden),
        };
        if let Some(c) = constraint.as_deref_mut() {
            c.on_prompt(&prompt_hidden)
                .map_err(ModelError::Generation)?;
        }
        let opts = ForwardOptions {
            hidden_layers: vec![],
            ..opts
        };
        stats.prefill_seconds = start.elapsed().as_secs_f64();
        let decode_start = Instant::now();
        let mut reason = StopReason::MaxTokens;
        // A constraint masks a copy of the logits (one vocabulary-sized buffer, refilled
        // each step); without one the sampler reads them where they are.
        let mut row: Vec<f32> = Vec::new();
        while out_ids.len() < req.max_tokens {
            if constraint.as_ref().is_some_and(|c| c.is_complete()) {
                reason = StopReason::Constraint;
                break;
            }
            let last = logits.logits.as_ref().expect("asked for logits");
            let banned: &[u32] = if out_ids.len() < req.min_tokens {
                &stop_ids
            } else {
                &[]
            };
            let next = match constraint.as_deref_mut() {
                Some(c) => {
                    row.clear();
                    crate::ggml_ops::with_f32(last, |v| row.extend_from_slice(v))?;
                    c.mask(&mut row);
                    if row.iter().all(|l| *l == f32::NEG_INFINITY) {
                        return Err(ModelError::Generation(
                            "the output constraint allows no next token".into(),
                        ));
                    }
                    sampler.sample_in_place(&mut row, &history, banned)
                }
                None => crate::ggml_ops::with_f32(last, |v| sampler.sample(v, &history, banned))?,
            };
            if let Some(c) = constraint.as_deref_mut() {
                c.accept(next).map_err(ModelError::Generation)?;
            }
            if !req.ignore_eos && stop_ids.contains(&next) {
                reason = StopReason::EndOfSequence;
                break;
            }
            out_ids.push(next);
            history.push(next);
            if let Some(delta) = stream
                .push(next)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?
            {
                if text.push(&delta, on_text) {
                    reason = StopReason::StopString;
                    break;
                }
            }
            if out_ids.len() >= req.max_tokens {
                break;
            }
            let input = Tensor::new(&[[next]], &Device::Cpu)?;
            logits = model.decoder.forward(&input, &mut state, &opts)?;
        }
        if reason != StopReason::StopString {
            if let Some(rest) = stream.finish() {
                if text.push(&rest, on_text) {
                    reason = StopReason::StopString;
                }
            }
            if reason != StopReason::StopString {
                text.flush(on_text);
            }
        }
        stats.decode_seconds = decode_start.elapsed().as_secs_f64();
        stats.generated_tokens = out_ids.len();
        Ok(Generation {
            text: text.into_text(),
            token_ids: out_ids,
            stop_reason: reason,
            stats,
            prompt_hidden,
        })
    }
}

/// Accumulates generated text, holding back any tail that could still become a stop
/// string so that a stop string is never streamed.
pub struct StopStringFilter<'a> {
    stops: &'a [String],
    text: String,
    emitted: usize,
    stopped: bool,
}

impl<'a> StopStringFilter<'a> {
    pub fn new(stops: &'a [String]) -> Self {
        StopStringFilter {
            stops,
            text: String::new(),
            emitted: 0,
            stopped: false,
        }
    }

    /// Adds text; returns true when a stop string has been reached (the text is cut there).
    pub fn push(&mut self, delta: &str, on_text: &mut (dyn FnMut(&str) + Send)) -> bool {
        if self.stopped {
            return true;
        }
        let search_from = self
            .emitted
            .saturating_sub(self.stops.iter().map(String::len).max().unwrap_or(0));
        self.text.push_str(delta);
        let hit = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                let from = floor_char_boundary(&self.text, search_from);
                self.text[from..].find(s.as_str()).map(|i| from + i)
            })
            .min();
        if let Some(cut) = hit {
            self.text.truncate(cut);
            self.stopped = true;
            self.flush(on_text);
            return true;
        }
        // Hold back the longest tail that is a prefix of some stop string.
        let hold = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.text, s))
            .max()
            .unwrap_or(0);
        let upto = floor_char_boundary(&self.text, self.text.len() - hold);
        if upto > self.emitted {
            on_text(&self.text[self.emitted..upto]);
            self.emitted = upto;
        }
        false
    }

    pub fn flush(&mut self, on_text: &mut (dyn FnMut(&str) + Send)) {
        if self.text.len() > self.emitted {
            on_text(&self.text[self.emitted..]);
            self.emitted = self.text.len();
        }
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = stop.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && stop
                    .as_bytes()
                    .starts_with(&text.as_bytes()[text.len() - n..])
        })
        .unwrap_or(0)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Runs `f` on candle's CPU thread pool (its ops' parallel parts then need no hand-off),
/// then hands the heap memory freed meanwhile back to the OS.
///
/// Why: [`crate::settle_runtime`]'s heap settings keep freed memory for the next pass
/// (no page faults on every activation), but glibc keeps it per thread heap, and the pool
/// runs `f` on whichever of its workers is free. Two generations on two workers each kept
/// a prefill's temporaries: ~25 MB more peak RSS in about one run in four (Gemma 3 270M,
/// two threads; none with `MALLOC_ARENA_MAX=1`, which confirmed the cause). Trimming once
/// per generation costs the next prefill a few page faults; measured, no slower.
pub(crate) fn on_candle_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let result = Device::Cpu.with_context(f);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], deltas: &[&str]) -> (String, Vec<String>, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut f = StopStringFilter::new(&stops);
        let mut out = Vec::new();
        let mut stopped = false;
        for d in deltas {
            let mut sink = |s: &str| out.push(s.to_string());
            if f.push(d, &mut sink) {
                stopped = true;
                break;
            }
        }
        if !stopped {
            let mut sink = |s: &str| out.push(s.to_string());
            f.flush(&mut sink);
        }
        (f.into_text(), out, stopped)
    }

    #[test]
    fn stop_string_split_across_deltas_is_never_streamed() {
        let (text, out, stopped) = run(&["</answer>"], &["The fix ", "is here</an", "swer> more"]);
        assert!(stopped);
        assert_eq!(text, "The fix is here");
        assert_eq!(out.concat(), "The fix is here");
        assert!(out.iter().all(|s| !s.contains('<')));
    }

    #[test]
    fn near_misses_are_released() {
        let (text, out, stopped) = run(&["STOP"], &["ST", "OP", "S"]);
        assert!(stopped);
        assert_eq!(text, "");
        assert!(out.is_empty());
        let (text, out, stopped) = run(&["STOP"], &["ST", "AR", "T ok é"]);
        assert!(!stopped);
        assert_eq!(text, "START ok é");
        assert_eq!(out.concat(), text);
    }
}
