//! Training losses: next-token negative log-likelihood on chosen positions.
//!
//! Supervised fine-tuning scores only some tokens (the answer, not the prompt or the
//! padding). [`NextTokenTargets`] lists them for a left-padded batch; [`causal_lm_loss`]
//! runs a training forward pass that computes the output head only at those positions and
//! returns the summed loss with the token count, so callers can average over any number of
//! micro-batches exactly.

use crate::decoder::{Decoder, TrainPass};
use crate::error::{ModelError, Result};
use candle_core::{Device, Tensor, D};

/// Which positions of a `[b, t]` batch are scored, and against which tokens.
#[derive(Debug, Clone)]
pub struct NextTokenTargets {
    /// Flat positions `row * t + i` whose logits predict a target (u32 `[n]`).
    pub rows: Tensor,
    /// The token each of those positions should predict: `ids[row][i + 1]` (u32 `[n]`).
    pub targets: Tensor,
    pub count: usize,
}

impl NextTokenTargets {
    /// `ids` and `scored` are `b` rows of equal length `t`; `scored[r][j]` says whether
    /// token `j` of row `r` is a target (it is then predicted from position `j − 1`). The
    /// first token of a row can never be a target.
    pub fn new(ids: &[Vec<u32>], scored: &[Vec<bool>]) -> Result<Self> {
        let t = ids.first().map_or(0, Vec::len);
        if ids.len() != scored.len()
            || ids
                .iter()
                .zip(scored)
                .any(|(i, s)| i.len() != t || s.len() != t)
        {
            return Err(ModelError::Generation(
                "ids and target mask must be rows of one length".into(),
            ));
        }
        let (mut rows, mut targets) = (Vec::new(), Vec::new());
        for (r, (row, mask)) in ids.iter().zip(scored).enumerate() {
            for j in 1..t {
                if mask[j] {
                    rows.push((r * t + j - 1) as u32);
                    targets.push(row[j]);
                }
            }
        }
        let count = rows.len();
        Ok(NextTokenTargets {
            rows: Tensor::from_vec(rows, count, &Device::Cpu)?,
            targets: Tensor::from_vec(targets, count, &Device::Cpu)?,
            count,
        })
    }
}

/// Summed negative log-likelihood of `targets` (u32 `[n]`) under `logits` (`[n, vocab]`).
pub fn nll_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?;
    Ok(picked.sum_all()?.neg()?)
}

/// The summed next-token loss of a left-padded batch `tokens` `[b, t]` over `targets`, and
/// how many tokens it sums. `adapter` / `dropout_seed` as in [`TrainPass`].
pub fn causal_lm_loss(
    decoder: &Decoder,
    tokens: &Tensor,
    pad: &[usize],
    targets: &NextTokenTargets,
    adapter: Option<&str>,
    dropout_seed: Option<u64>,
) -> Result<(Tensor, usize)> {
    if targets.count == 0 {
        return Err(ModelError::Generation(
            "the batch has no target tokens".into(),
        ));
    }
    let logits = decoder.forward_train(
        tokens,
        pad,
        &TrainPass {
            adapter,
            dropout_seed,
            logit_rows: Some(&targets.rows),
        },
    )?;
    Ok((nll_sum(&logits, &targets.targets)?, targets.count))
}
