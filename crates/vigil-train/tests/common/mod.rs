//! A toy language model implementing `TrainTask`, and synthetic token rows for it.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor, Var, D};
use std::path::Path;
use vigil_train::{Batch, Dataset, Result, Row, TrainConfig, TrainRng, TrainTask};

pub const VOCAB: usize = 16;
const HIDDEN: usize = 8;

/// A bigram language model: embedding → tanh → dropout → linear → softmax. The prediction
/// at a position depends only on the token there, so it is independent of padding (as the
/// real decoder is), and dropout draws from the trainer's RNG.
pub struct Bigram {
    emb: Var,
    w: Var,
    b: Var,
    pub dropout: f32,
}

impl Bigram {
    pub fn new(seed: u64, dropout: f32) -> Self {
        let mut r = TrainRng::new(seed);
        let mut init = |n: usize, scale: f32| -> Vec<f32> {
            (0..n).map(|_| (r.next_f32() * 2.0 - 1.0) * scale).collect()
        };
        let dev = &Device::Cpu;
        Bigram {
            emb: Var::from_vec(init(VOCAB * HIDDEN, 1.0), (VOCAB, HIDDEN), dev).unwrap(),
            w: Var::from_vec(init(HIDDEN * VOCAB, 0.5), (HIDDEN, VOCAB), dev).unwrap(),
            b: Var::from_vec(init(VOCAB, 0.1), VOCAB, dev).unwrap(),
            dropout,
        }
    }

    /// The parameter values, flattened, in order.
    pub fn values(&self) -> Vec<Vec<f32>> {
        self.parameters()
            .iter()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    }
}

impl TrainTask for Bigram {
    fn parameters(&self) -> Vec<(String, Var)> {
        vec![
            ("embed.weight".into(), self.emb.clone()),
            ("head.weight".into(), self.w.clone()),
            ("head.bias".into(), self.b.clone()),
        ]
    }

    fn loss(&self, batch: &Batch, train: bool, rng: &mut TrainRng) -> Result<(Tensor, usize)> {
        let (pos, tgt) = batch.next_token_pairs();
        let flat: Vec<u32> = batch.ids.iter().flatten().copied().collect();
        let ctx: Vec<u32> = pos.iter().map(|&p| flat[p as usize]).collect();
        let n = ctx.len();
        let dev = &Device::Cpu;
        let ctx = Tensor::from_vec(ctx, n, dev)?;
        let tgt = Tensor::from_vec(tgt, n, dev)?;
        let mut h = self.emb.as_tensor().index_select(&ctx, 0)?.tanh()?;
        if train && self.dropout > 0.0 {
            let keep = 1.0 / (1.0 - self.dropout);
            let mask: Vec<f32> = (0..n * HIDDEN)
                .map(|_| {
                    if rng.next_f32() < self.dropout {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect();
            h = h.mul(&Tensor::from_vec(mask, (n, HIDDEN), dev)?)?;
        }
        let logits = h
            .matmul(self.w.as_tensor())?
            .broadcast_add(self.b.as_tensor())?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = logp.gather(&tgt.unsqueeze(1)?, 1)?;
        Ok((picked.sum_all()?.neg()?.to_dtype(DType::F32)?, n))
    }
}

/// `n` rows from a noisy Markov chain over the toy vocabulary, 5 to 20 tokens long; the
/// first third of each row is "prompt" (not scored).
pub fn rows(n: usize, seed: u64) -> Dataset {
    let mut r = TrainRng::new(seed);
    let rows = (0..n)
        .map(|_| {
            let len = 5 + r.below(16);
            let mut ids = vec![r.below(VOCAB) as u32];
            while ids.len() < len {
                let prev = *ids.last().unwrap() as usize;
                let next = if r.next_f32() < 0.7 {
                    (prev * 3 + 1) % VOCAB
                } else {
                    r.below(VOCAB)
                };
                ids.push(next as u32);
            }
            let mask = (0..len).map(|i| i >= len / 3).collect();
            Row::new(ids, mask).unwrap()
        })
        .collect();
    Dataset::from_rows(rows, 0)
}

/// A small, fast recipe: 3 epochs of 40 rows, batch 2 × accumulation 2.
pub fn config(out: &Path) -> TrainConfig {
    TrainConfig {
        learning_rate: 0.05,
        epochs: 3,
        batch_size: 2,
        grad_accum_steps: 2,
        warmup_ratio: 0.1,
        weight_decay: 0.01,
        eval_every: 4,
        early_stopping_patience: 0,
        save_every: 0,
        keep_checkpoints: 2,
        seed: 7,
        threads: Some(1),
        output_dir: out.to_path_buf(),
        ..TrainConfig::default()
    }
}

pub type Curve = Vec<(usize, f64, f64, f64, f64, usize, Option<f64>)>;

/// Asserts two curves are identical, naming the first step where they differ.
pub fn assert_same_curve(a: &Curve, b: &Curve, what: &str) {
    if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
        panic!(
            "{what}: first difference at line {}: {:?} vs {:?}",
            i + 1,
            a[i],
            b[i]
        );
    }
    assert_eq!(a.len(), b.len(), "{what}: different number of steps");
}

/// Every field of every line of `metrics.jsonl` except the wall-clock ones.
pub fn curve(dir: &Path) -> Curve {
    vigil_train::metrics::read_metrics(&dir.join(vigil_train::metrics::METRICS_FILE))
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.step,
                m.epoch,
                m.lr,
                m.loss,
                m.grad_norm,
                m.target_tokens,
                m.eval_loss,
            )
        })
        .collect()
}
