//! From the dataset store to training batches.
//!
//! 1. **Render** ([`ChatEncoder`]): a [`Sample`] becomes (system, user, assistant) through
//!    `vigil_data::prompt::render` — the one place prompts are worded — and then the model's
//!    own chat template renders the whole conversation. The text is tokenized with
//!    `parse_special` on and no added BOS (the template writes its control tokens and BOS
//!    itself), exactly as `vigil generate` encodes a prompt.
//! 2. **Mask**: the prompt alone is rendered with `add_generation_prompt` and must be a token
//!    prefix of the full conversation (an error names the sample otherwise). The tokens after
//!    that prefix up to and including the last end-of-turn / stop token are the answer: only
//!    they carry loss (`Example::mask`). What a template writes after the end-of-turn token
//!    (ChatML's trailing newline) is not scored, since generation stops at that token.
//! 3. **Truncate / pack** ([`Dataset::build`]): an example longer than `max_seq_len` is cut at
//!    the end (counted in [`DataReport::truncated`]; one left with no answer token is dropped
//!    and counted too). With `packing`, examples are laid first-fit, in store order, into rows
//!    of at most `max_seq_len` tokens. **Packed examples can attend to the earlier examples of
//!    their row**: the decoder's mask is causal over the whole row and positions run on (TRL's
//!    classic packing). The loss still scores only answer tokens, and [`Row::starts`] keeps
//!    the boundaries for a block-diagonal mask later.
//! 4. **Order** ([`epoch_order`]): each epoch's row order is a pure function of (seed, epoch),
//!    so a resumed run knows it from the epoch number and the position in it.
//! 5. **Batch** ([`Batch::from_rows`]): rows are left-padded to the longest row of the batch
//!    (the decoder's convention: `vigil_model::decoder::left_padded_batch`), with the pad
//!    count per row and the loss mask padded alongside.

use crate::error::{Result, TrainError};
use crate::rng::TrainRng;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_data::prompt::Messages;
use vigil_data::{Filter, Sample, Split, Store};
use vigil_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

/// How samples become token rows (the `[data]` table of a training config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Longest row, in tokens. Longer examples are cut at the end (and reported).
    pub max_seq_len: usize,
    /// Pack several examples into one row of up to `max_seq_len` tokens (fewer pad tokens,
    /// faster epochs; packed examples see each other, see the module docs).
    pub packing: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            max_seq_len: 1024,
            packing: false,
        }
    }
}

impl DataConfig {
    /// Refuses nonsense values, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.max_seq_len < 2 {
            return Err(TrainError::config(
                "data.max_seq_len",
                format!(
                    "is {}; a row needs at least 2 tokens to predict one",
                    self.max_seq_len
                ),
            ));
        }
        Ok(())
    }
}

/// One rendered and tokenized conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub ids: Vec<u32>,
    /// `mask[i]`: token `i` is an answer token (it is scored, predicted from position `i − 1`).
    pub mask: Vec<bool>,
    /// The store id of the sample it came from, when it came from the store.
    pub sample_id: Option<i64>,
}

impl Example {
    /// Number of scored tokens.
    pub fn targets(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }
}

/// Renders conversations with a model's chat template and finds the answer tokens.
pub struct ChatEncoder<'a> {
    tok: &'a Tokenizer,
    template: &'a ChatTemplate,
}

impl<'a> ChatEncoder<'a> {
    /// With an explicit template (for a base model without one, e.g.
    /// `ChatTemplate::builtin("gemma", …)`).
    pub fn new(tok: &'a Tokenizer, template: &'a ChatTemplate) -> Self {
        ChatEncoder { tok, template }
    }

    /// With the model's own template; an error when the model has none.
    pub fn for_model(tok: &'a Tokenizer) -> Result<Self> {
        let template = tok.chat_template().ok_or_else(|| {
            TrainError::Data(format!(
                "the model has no chat template{}; pass one explicitly \
                 (ChatTemplate::builtin(\"chatml\" | \"gemma\", …))",
                tok.chat_template_error()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ))
        })?;
        Ok(ChatEncoder { tok, template })
    }

    /// Message content is data, never markup: the rendered conversation is tokenized with
    /// control tokens parsed (the template's own markers must become control tokens), so
    /// a sample whose code contains e.g. `<|im_end|>` would forge a turn boundary. Such
    /// text is defused by a zero-width space after its first character: it still reads
    /// the same, and tokenizes as ordinary text. Content without control-token text (the
    /// usual case) is returned unchanged.
    pub fn defuse(&self, content: &str) -> std::result::Result<String, vigil_tokenizer::Error> {
        let plain = self.tok.encode(content, false, false)?;
        if self.tok.encode(content, false, true)? == plain {
            return Ok(content.to_string());
        }
        let mut out = content.to_string();
        for (_, text) in self.tok.special_tokens() {
            let mut chars = text.chars();
            let Some(first) = chars.next() else { continue };
            if text.chars().count() < 2 || !out.contains(&text) {
                continue;
            }
            let defused = format!("{first}\u{200B}{}", chars.as_str());
            out = out.replace(&text, &defused);
        }
        Ok(out)
    }

    /// Renders, tokenizes and masks one sample (worded by `vigil_data::prompt::render`).
    pub fn encode_sample(&self, sample: &Sample) -> Result<Example> {
        let mut ex = self
            .encode_messages(&vigil_data::prompt::render(sample))
            .map_err(|e| match (e, sample.id) {
                (TrainError::Data(m), Some(id)) => TrainError::Data(format!("sample {id}: {m}")),
                (e, _) => e,
            })?;
        ex.sample_id = sample.id;
        Ok(ex)
    }

    /// The tokens of a prompt as the model sees it at inference: system and user turns, the
    /// generation prompt, then `answer_prefix` (text the caller has already decided the
    /// answer starts with, e.g. a verdict chosen by a classifier head). Worded and defused
    /// exactly as in training, so the model is asked in the words it learned.
    pub fn encode_prompt(&self, m: &Messages, answer_prefix: &str) -> Result<Vec<u32>> {
        let data = |e: vigil_tokenizer::Error| TrainError::Data(e.to_string());
        let mut msgs = Vec::with_capacity(2);
        if !m.system.is_empty() {
            msgs.push(ChatMessage::system(self.defuse(&m.system).map_err(data)?));
        }
        msgs.push(ChatMessage::user(self.defuse(&m.user).map_err(data)?));
        let mut text = self.template.render(&msgs, true).map_err(data)?;
        text.push_str(&self.defuse(answer_prefix).map_err(data)?);
        self.tok.encode(&text, false, true).map_err(data)
    }

    /// Renders, tokenizes and masks one conversation. An empty system prompt is left out
    /// (the template may then insert its own default, as it would at inference).
    pub fn encode_messages(&self, m: &Messages) -> Result<Example> {
        let data = |e: vigil_tokenizer::Error| TrainError::Data(e.to_string());
        let mut msgs = Vec::with_capacity(3);
        if !m.system.is_empty() {
            msgs.push(ChatMessage::system(self.defuse(&m.system).map_err(data)?));
        }
        msgs.push(ChatMessage::user(self.defuse(&m.user).map_err(data)?));
        let prompt_text = self.template.render(&msgs, true).map_err(data)?;
        msgs.push(ChatMessage::assistant(
            self.defuse(&m.assistant).map_err(data)?,
        ));
        let full_text = self.template.render(&msgs, false).map_err(data)?;
        let prompt = self.tok.encode(&prompt_text, false, true).map_err(data)?;
        let ids = self.tok.encode(&full_text, false, true).map_err(data)?;
        if !ids.starts_with(&prompt) {
            let at = prompt
                .iter()
                .zip(&ids)
                .position(|(a, b)| a != b)
                .unwrap_or(prompt.len().min(ids.len()));
            return Err(TrainError::Data(format!(
                "the chat template's prompt (rendered with add_generation_prompt) is not a token \
                 prefix of the full conversation: they differ at token {at} of {}; \
                 the answer tokens cannot be found",
                prompt.len()
            )));
        }
        // Answer = after the prompt, through the last end-of-turn token.
        let answer_end = ids[prompt.len()..]
            .iter()
            .rposition(|&id| self.tok.is_stop(id))
            .map(|i| prompt.len() + i + 1)
            .unwrap_or(ids.len());
        let mask = (0..ids.len())
            .map(|i| i >= prompt.len() && i < answer_end && i > 0)
            .collect();
        Ok(Example {
            ids,
            mask,
            sample_id: None,
        })
    }
}

/// One row of a batch: one example, or several packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub ids: Vec<u32>,
    /// Scored tokens (see [`Example::mask`]).
    pub mask: Vec<bool>,
    /// Where each example of the row starts (`[0]` when not packed).
    pub starts: Vec<usize>,
}

impl Row {
    /// A row of one example; `mask[0]` is ignored (nothing predicts the first token).
    pub fn new(ids: Vec<u32>, mut mask: Vec<bool>) -> Result<Row> {
        if ids.len() != mask.len() || ids.is_empty() {
            return Err(TrainError::Data(format!(
                "a row needs as many mask entries as tokens (and at least one): {} ids, {} mask",
                ids.len(),
                mask.len()
            )));
        }
        mask[0] = false;
        Ok(Row {
            ids,
            mask,
            starts: vec![0],
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn targets(&self) -> usize {
        self.mask.iter().filter(|&&m| m).count()
    }
}

/// What building a dataset did (print it: truncation is never silent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DataReport {
    /// Examples given.
    pub examples: usize,
    /// Examples longer than `max_seq_len`, cut at the end.
    pub truncated: usize,
    /// Examples left with no answer token after the cut, or with none at all, left out.
    pub dropped: usize,
    /// Rows made (fewer than examples when packing).
    pub rows: usize,
    /// Tokens in all rows, and of those the scored (answer) tokens.
    pub tokens: usize,
    pub target_tokens: usize,
    /// Longest example before truncation.
    pub longest: usize,
}

impl std::fmt::Display for DataReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} examples → {} rows, {} tokens ({} scored); {} truncated, {} dropped; longest {}",
            self.examples,
            self.rows,
            self.tokens,
            self.target_tokens,
            self.truncated,
            self.dropped,
            self.longest
        )
    }
}

/// Token rows ready to batch, with the pad id and what building them did.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub rows: Vec<Row>,
    pub pad_id: u32,
    pub report: DataReport,
}

impl Dataset {
    /// Truncates and (optionally) packs examples into rows.
    pub fn build(examples: Vec<Example>, cfg: &DataConfig, pad_id: u32) -> Result<Dataset> {
        cfg.validate()?;
        let max = cfg.max_seq_len;
        let mut report = DataReport {
            examples: examples.len(),
            ..Default::default()
        };
        let mut kept: Vec<Example> = Vec::with_capacity(examples.len());
        for mut ex in examples {
            report.longest = report.longest.max(ex.ids.len());
            if ex.ids.len() > max {
                ex.ids.truncate(max);
                ex.mask.truncate(max);
                report.truncated += 1;
            }
            if let Some(m) = ex.mask.first_mut() {
                *m = false;
            }
            if ex.targets() == 0 {
                report.dropped += 1;
                continue;
            }
            kept.push(ex);
        }
        let rows = if cfg.packing {
            pack(kept, max)
        } else {
            kept.into_iter()
                .map(|ex| Row {
                    ids: ex.ids,
                    mask: ex.mask,
                    starts: vec![0],
                })
                .collect()
        };
        report.rows = rows.len();
        report.tokens = rows.iter().map(Row::len).sum();
        report.target_tokens = rows.iter().map(Row::targets).sum();
        Ok(Dataset {
            rows,
            pad_id,
            report,
        })
    }

    /// Rows made by hand (tests, or a task with its own rendering).
    pub fn from_rows(rows: Vec<Row>, pad_id: u32) -> Dataset {
        let report = DataReport {
            examples: rows.iter().map(|r| r.starts.len()).sum(),
            rows: rows.len(),
            tokens: rows.iter().map(Row::len).sum(),
            target_tokens: rows.iter().map(Row::targets).sum(),
            longest: rows.iter().map(Row::len).max().unwrap_or(0),
            ..Default::default()
        };
        Dataset {
            rows,
            pad_id,
            report,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch of the rows at `indices`.
    pub fn batch(&self, indices: &[usize]) -> Result<Batch> {
        let rows: Vec<&Row> = indices
            .iter()
            .map(|&i| {
                self.rows
                    .get(i)
                    .ok_or_else(|| TrainError::Run(format!("row {i} of {}", self.rows.len())))
            })
            .collect::<Result<_>>()?;
        Batch::from_rows(&rows, self.pad_id)
    }

    /// The micro-batches of an epoch: `order` cut into chunks of `batch_size` (the last one
    /// may be smaller).
    pub fn batches<'s>(
        &'s self,
        order: &'s [usize],
        batch_size: usize,
    ) -> impl Iterator<Item = Result<Batch>> + 's {
        order.chunks(batch_size.max(1)).map(|c| self.batch(c))
    }

    /// A SHA-256 of the rows (ids, masks, boundaries): a resumed run refuses other data.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update((self.rows.len() as u64).to_le_bytes());
        for r in &self.rows {
            h.update((r.ids.len() as u64).to_le_bytes());
            for &id in &r.ids {
                h.update(id.to_le_bytes());
            }
            h.update(r.mask.iter().map(|&m| m as u8).collect::<Vec<u8>>());
            for &s in &r.starts {
                h.update((s as u64).to_le_bytes());
            }
        }
        h.update(self.pad_id.to_le_bytes());
        format!("{:x}", h.finalize())
    }
}

/// First-fit packing in the examples' order.
fn pack(examples: Vec<Example>, max: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    // Rows still open: a full row (free space 0) is never looked at again.
    let mut open: Vec<usize> = Vec::new();
    for ex in examples {
        let need = ex.ids.len();
        let slot = open.iter().position(|&r| max - rows[r].ids.len() >= need);
        let r = match slot {
            Some(k) => open[k],
            None => {
                rows.push(Row {
                    ids: Vec::new(),
                    mask: Vec::new(),
                    starts: Vec::new(),
                });
                open.push(rows.len() - 1);
                rows.len() - 1
            }
        };
        let row = &mut rows[r];
        row.starts.push(row.ids.len());
        row.ids.extend_from_slice(&ex.ids);
        row.mask.extend_from_slice(&ex.mask);
        if row.ids.len() == max {
            open.retain(|&o| o != r);
        }
    }
    rows
}

/// The row order of one epoch: a shuffle that depends only on `seed` and `epoch`
/// (identity when `shuffle` is off).
pub fn epoch_order(n: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = TrainRng::new(seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        rng.shuffle(&mut order);
    }
    order
}

/// A left-padded micro-batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `b` rows of `t` token ids, left-padded with the dataset's pad id.
    pub ids: Vec<Vec<u32>>,
    /// Padding at the start of each row.
    pub pad: Vec<usize>,
    /// `mask[r][j]`: token `j` of row `r` is scored (predicted from position `j − 1`); false
    /// on padding, prompts and position 0. This is `vigil_model::loss::NextTokenTargets::new`'s
    /// `scored` argument.
    pub mask: Vec<Vec<bool>>,
    /// Where each example of each row starts (after the padding).
    pub starts: Vec<Vec<usize>>,
}

impl Batch {
    /// Left-pads `rows` to the longest of them.
    pub fn from_rows(rows: &[&Row], pad_id: u32) -> Result<Batch> {
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        if t == 0 {
            return Err(TrainError::Run("an empty batch".into()));
        }
        let mut b = Batch {
            ids: Vec::with_capacity(rows.len()),
            pad: Vec::with_capacity(rows.len()),
            mask: Vec::with_capacity(rows.len()),
            starts: Vec::with_capacity(rows.len()),
        };
        for r in rows {
            let p = t - r.len();
            let mut ids = vec![pad_id; p];
            ids.extend_from_slice(&r.ids);
            let mut mask = vec![false; p];
            mask.extend_from_slice(&r.mask);
            b.ids.push(ids);
            b.mask.push(mask);
            b.pad.push(p);
            b.starts.push(r.starts.iter().map(|s| s + p).collect());
        }
        Ok(b)
    }

    /// Rows in the batch.
    pub fn size(&self) -> usize {
        self.ids.len()
    }

    /// Row length `t` (padding included).
    pub fn seq_len(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }

    /// Token ids as a u32 `[b, t]` tensor.
    pub fn ids_tensor(&self, device: &Device) -> Result<Tensor> {
        let flat: Vec<u32> = self.ids.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(
            flat,
            (self.size(), self.seq_len()),
            device,
        )?)
    }

    /// Scored tokens in the batch.
    pub fn target_count(&self) -> usize {
        self.mask.iter().flatten().filter(|&&m| m).count()
    }

    /// Real (non-pad) tokens in the batch.
    pub fn tokens(&self) -> usize {
        self.size() * self.seq_len() - self.pad.iter().sum::<usize>()
    }

    /// Next-token pairs, flattened: for every scored token `j` of row `r`, the position
    /// `r·t + j − 1` whose output predicts it and the token `ids[r][j]` itself.
    pub fn next_token_pairs(&self) -> (Vec<u32>, Vec<u32>) {
        let t = self.seq_len();
        let (mut pos, mut tgt) = (Vec::new(), Vec::new());
        for (r, (ids, mask)) in self.ids.iter().zip(&self.mask).enumerate() {
            for j in 1..t {
                if mask[j] {
                    pos.push((r * t + j - 1) as u32);
                    tgt.push(ids[j]);
                }
            }
        }
        (pos, tgt)
    }

    /// Hugging Face style labels aligned with the inputs: `labels[r][i]` is the token
    /// position `i` must predict (`ids[r][i + 1]`) when that token is scored, else `None`.
    pub fn labels(&self) -> Vec<Vec<Option<u32>>> {
        self.ids
            .iter()
            .zip(&self.mask)
            .map(|(ids, mask)| {
                (0..ids.len())
                    .map(|i| (i + 1 < ids.len() && mask[i + 1]).then(|| ids[i + 1]))
                    .collect()
            })
            .collect()
    }
}

/// Encodes every sample of `split` in the store (store order), then builds the rows.
pub fn load_split(
    store: &Store,
    split: Split,
    encoder: &ChatEncoder<'_>,
    cfg: &DataConfig,
    pad_id: u32,
) -> Result<Dataset> {
    let mut examples = Vec::new();
    let mut failed = None;
    let read = store.for_each(
        &Filter {
            split: Some(split),
            ..Default::default()
        },
        |s| match encoder.encode_sample(&s) {
            Ok(ex) => {
                examples.push(ex);
                Ok(())
            }
            Err(e) => {
                failed = Some(e);
                Err(vigil_data::DataError::Other("stopped".into()))
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    read.map_err(|e| TrainError::Data(e.to_string()))?;
    if examples.is_empty() {
        return Err(TrainError::Data(format!(
            "the {} split of {} is empty (run `vigil data split`?)",
            split.as_str(),
            store.path().display()
        )));
    }
    Dataset::build(examples, cfg, pad_id)
}

/// The pad id a model's batches use: its EOS (any id works: padding is never attended to or
/// scored), else 0.
pub fn pad_id(tok: &Tokenizer) -> u32 {
    tok.eos_id().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(n: usize, answer_from: usize) -> Example {
        Example {
            ids: (0..n as u32).map(|i| 100 + i).collect(),
            mask: (0..n).map(|i| i >= answer_from).collect(),
            sample_id: None,
        }
    }

    #[test]
    fn packing_keeps_every_example_and_respects_the_limit() {
        let lens = [5usize, 9, 3, 7, 2, 8, 4, 6, 10, 11];
        let exs: Vec<Example> = lens.iter().map(|&n| ex(n, n / 2)).collect();
        let all: Vec<Vec<u32>> = exs.iter().map(|e| e.ids.clone()).collect();
        let cfg = DataConfig {
            max_seq_len: 12,
            packing: true,
        };
        let d = Dataset::build(exs.clone(), &cfg, 0).unwrap();
        assert!(d.rows.len() < lens.len());
        let mut seen = Vec::new();
        for r in &d.rows {
            assert!(r.len() <= 12);
            for (k, &s) in r.starts.iter().enumerate() {
                let e = r.starts.get(k + 1).copied().unwrap_or(r.len());
                seen.push(r.ids[s..e].to_vec());
            }
        }
        seen.sort();
        let mut want = all;
        want.sort();
        assert_eq!(seen, want, "every example exactly once");
        let unpacked = Dataset::build(
            exs,
            &DataConfig {
                packing: false,
                ..cfg
            },
            0,
        )
        .unwrap();
        assert_eq!(d.report.target_tokens, unpacked.report.target_tokens);
    }

    #[test]
    fn truncation_is_counted_and_empty_answers_dropped() {
        let cfg = DataConfig {
            max_seq_len: 6,
            packing: false,
        };
        let d = Dataset::build(vec![ex(4, 2), ex(8, 3), ex(9, 7)], &cfg, 0).unwrap();
        assert_eq!(d.report.truncated, 2);
        assert_eq!(d.report.dropped, 1, "the third lost all its answer tokens");
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.rows[1].len(), 6);
        assert_eq!(d.report.longest, 9);
    }

    #[test]
    fn batches_are_left_padded_and_targets_aligned() {
        let r1 = Row::new(vec![1, 2, 3, 4], vec![false, false, true, true]).unwrap();
        let r2 = Row::new(vec![7, 8], vec![false, true]).unwrap();
        let b = Batch::from_rows(&[&r1, &r2], 0).unwrap();
        assert_eq!(b.ids, vec![vec![1, 2, 3, 4], vec![0, 0, 7, 8]]);
        assert_eq!(b.pad, vec![0, 2]);
        assert_eq!(b.target_count(), 3);
        assert_eq!(b.tokens(), 6);
        let (pos, tgt) = b.next_token_pairs();
        assert_eq!(pos, vec![1, 2, 6]);
        assert_eq!(tgt, vec![3, 4, 8]);
        assert_eq!(
            b.labels(),
            vec![
                vec![None, Some(3), Some(4), None],
                vec![None, None, Some(8), None]
            ]
        );
        assert_eq!(
            b.ids_tensor(&Device::Cpu)
                .unwrap()
                .to_vec2::<u32>()
                .unwrap(),
            b.ids
        );
    }

    #[test]
    fn shuffling_is_deterministic_per_seed_and_epoch() {
        let a = epoch_order(50, 7, 0, true);
        assert_eq!(a, epoch_order(50, 7, 0, true));
        assert_ne!(a, epoch_order(50, 7, 1, true));
        assert_ne!(a, epoch_order(50, 8, 0, true));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_eq!(epoch_order(5, 7, 0, false), vec![0, 1, 2, 3, 4]);
    }
}
