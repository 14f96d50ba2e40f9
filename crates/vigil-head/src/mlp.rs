//! The MLP head: standardised features → hidden layers → class logits; its training loop,
//! and its file format.

use crate::error::{HeadError, Result};
use crate::features::FeatureSpec;
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Gelu,
    Tanh,
    Silu,
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "relu" => Ok(Activation::Relu),
            "gelu" => Ok(Activation::Gelu),
            "tanh" => Ok(Activation::Tanh),
            "silu" => Ok(Activation::Silu),
            o => Err(format!(
                "unknown activation `{o}` (relu | gelu | tanh | silu)"
            )),
        }
    }
}

/// The shape of a head: hidden widths (empty = logistic regression), activation, dropout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadShape {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f32,
}

impl Default for HeadShape {
    fn default() -> Self {
        HeadShape {
            hidden: vec![256],
            activation: Activation::Relu,
            dropout: 0.1,
        }
    }
}

/// A trained classifier on pooled hidden states.
#[derive(Debug, Clone)]
pub struct MlpHead {
    /// `(weight [out, in], bias [out])` per layer; the last one gives the class logits.
    layers: Vec<(Tensor, Tensor)>,
    /// Per-feature mean and standard deviation of the training set: hidden states have a
    /// few huge dimensions that would otherwise dominate the first layer.
    mean: Tensor,
    std: Tensor,
    activation: Activation,
    dropout: f32,
}

impl MlpHead {
    pub fn input_dim(&self) -> usize {
        self.mean.dims()[0]
    }

    pub fn num_classes(&self) -> usize {
        self.layers.last().map(|(w, _)| w.dims()[0]).unwrap_or(0)
    }

    /// Logits `[n, classes]`; `dropout_rng` turns dropout on (training only).
    fn forward(&self, x: &Tensor, dropout_rng: Option<&mut StdRng>) -> Result<Tensor> {
        forward_layers(
            &self.layers,
            &self.mean,
            &self.std,
            self.activation,
            self.dropout,
            x,
            dropout_rng,
        )
    }

    /// Class probabilities for each feature vector.
    pub fn probabilities(&self, features: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let x = matrix(features, self.input_dim())?;
        let p = candle_nn::ops::softmax(&self.forward(&x, None)?, D::Minus1)?;
        Ok(p.to_vec2()?)
    }
}

fn forward_layers(
    layers: &[(Tensor, Tensor)],
    mean: &Tensor,
    std: &Tensor,
    act: Activation,
    dropout: f32,
    x: &Tensor,
    mut rng: Option<&mut StdRng>,
) -> Result<Tensor> {
    let mut h = x.broadcast_sub(mean)?.broadcast_div(std)?;
    for (i, (w, b)) in layers.iter().enumerate() {
        if let Some(r) = rng.as_deref_mut() {
            if dropout > 0.0 {
                h = dropout_mask(&h, dropout, r)?;
            }
        }
        h = h.matmul(&w.t()?)?.broadcast_add(b)?;
        if i + 1 < layers.len() {
            h = match act {
                Activation::Relu => h.relu()?,
                Activation::Gelu => h.gelu_erf()?,
                Activation::Tanh => h.tanh()?,
                Activation::Silu => h.silu()?,
            };
        }
    }
    Ok(h)
}

/// Inverted dropout with a seeded generator, so training is reproducible.
fn dropout_mask(h: &Tensor, p: f32, rng: &mut StdRng) -> Result<Tensor> {
    let n = h.elem_count();
    let keep = 1.0 / (1.0 - p);
    let m: Vec<f32> = (0..n)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    Ok((h * Tensor::from_vec(m, h.shape(), h.device())?)?)
}

fn matrix(rows: &[Vec<f32>], dim: usize) -> Result<Tensor> {
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != dim) {
        return Err(HeadError::Invalid(format!(
            "feature vector {i} has {} values; the head reads {dim}",
            r.len()
        )));
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (rows.len(), dim), &Device::Cpu)?)
}

/// How a head is trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadTrainConfig {
    pub shape: HeadShape,
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Weight classes by inverse frequency, so a rare class is not ignored.
    pub balanced: bool,
    pub seed: u64,
}

impl Default for HeadTrainConfig {
    fn default() -> Self {
        HeadTrainConfig {
            shape: HeadShape::default(),
            lr: 1e-3,
            weight_decay: 1e-2,
            epochs: 200,
            batch_size: 32,
            patience: 20,
            balanced: true,
            seed: 0,
        }
    }
}

/// What a training run did.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct HeadTrainReport {
    pub train_samples: usize,
    pub valid_samples: usize,
    pub class_weights: Vec<f32>,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_valid_loss: f32,
    pub train_loss: Vec<f32>,
    pub valid_loss: Vec<f32>,
    pub early_stopped: bool,
}

/// Fits an MLP head on `train` (features, class index) and keeps the weights of the epoch
/// with the lowest validation loss (early stopping after `patience` epochs without one).
pub fn train_head(
    train_x: &[Vec<f32>],
    train_y: &[usize],
    valid_x: &[Vec<f32>],
    valid_y: &[usize],
    num_classes: usize,
    cfg: &HeadTrainConfig,
) -> Result<(MlpHead, HeadTrainReport)> {
    if train_x.is_empty() || valid_x.is_empty() {
        return Err(HeadError::Invalid(format!(
            "a head needs training and validation samples (got {} and {})",
            train_x.len(),
            valid_x.len()
        )));
    }
    if train_x.len() != train_y.len() || valid_x.len() != valid_y.len() {
        return Err(HeadError::Invalid(
            "features and labels differ in count".into(),
        ));
    }
    if num_classes < 2 {
        return Err(HeadError::Invalid(
            "a head needs two classes at least".into(),
        ));
    }
    if let Some(y) = train_y.iter().chain(valid_y).find(|&&y| y >= num_classes) {
        return Err(HeadError::Invalid(format!(
            "label {y} is outside the {num_classes} classes"
        )));
    }
    if !(0.0..1.0).contains(&cfg.shape.dropout) {
        return Err(HeadError::Invalid("dropout must be in [0, 1)".into()));
    }
    let dim = train_x[0].len();
    let dev = Device::Cpu;
    let x = matrix(train_x, dim)?;
    let vx = matrix(valid_x, dim)?;
    let mean = x.mean(0)?;
    let std = (x.broadcast_sub(&mean)?.sqr()?.mean(0)?.sqrt()? + 1e-6)?;

    // Class weights: n / (k · count), the usual "balanced" rule; absent classes get 0.
    let mut counts = vec![0usize; num_classes];
    for &y in train_y {
        counts[y] += 1;
    }
    let weights: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if !cfg.balanced {
                1.0
            } else if c == 0 {
                0.0
            } else {
                train_y.len() as f32 / (num_classes as f32 * c as f32)
            }
        })
        .collect();
    let w_t = Tensor::new(weights.as_slice(), &dev)?;

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut dims = vec![dim];
    dims.extend(&cfg.shape.hidden);
    dims.push(num_classes);
    let mut vars = Vec::new();
    for pair in dims.windows(2) {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        // Kaiming-uniform, as torch.nn.Linear initialises.
        let bound = 1.0 / (fan_in as f32).sqrt();
        let w: Vec<f32> = (0..fan_in * fan_out)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let b: Vec<f32> = (0..fan_out)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        vars.push((
            Var::from_tensor(&Tensor::from_vec(w, (fan_out, fan_in), &dev)?)?,
            Var::from_tensor(&Tensor::from_vec(b, fan_out, &dev)?)?,
        ));
    }
    let all: Vec<Var> = vars
        .iter()
        .flat_map(|(w, b)| [w.clone(), b.clone()])
        .collect();
    let mut opt = AdamW::new(
        all,
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        },
    )?;
    let snapshot = |vars: &[(Var, Var)]| -> Result<Vec<(Tensor, Tensor)>> {
        Ok(vars
            .iter()
            .map(|(w, b)| Ok((w.as_tensor().copy()?, b.as_tensor().copy()?)))
            .collect::<candle_core::Result<_>>()?)
    };
    let loss_of = |layers: &[(Tensor, Tensor)],
                   x: &Tensor,
                   y: &[usize],
                   rng: Option<&mut StdRng>|
     -> Result<Tensor> {
        let logits = forward_layers(
            layers,
            &mean,
            &std,
            cfg.shape.activation,
            cfg.shape.dropout,
            x,
            rng,
        )?;
        weighted_cross_entropy(&logits, y, &w_t)
    };

    let mut report = HeadTrainReport {
        train_samples: train_x.len(),
        valid_samples: valid_x.len(),
        class_weights: weights.clone(),
        best_valid_loss: f32::INFINITY,
        ..Default::default()
    };
    let mut best = snapshot(&vars)?;
    let mut order: Vec<usize> = (0..train_x.len()).collect();
    let bs = cfg.batch_size.max(1);
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut total = 0.0f32;
        for chunk in order.chunks(bs) {
            let idx = Tensor::new(
                chunk
                    .iter()
                    .map(|&i| i as u32)
                    .collect::<Vec<_>>()
                    .as_slice(),
                &dev,
            )?;
            let bx = x.index_select(&idx, 0)?;
            let by: Vec<usize> = chunk.iter().map(|&i| train_y[i]).collect();
            let layers: Vec<(Tensor, Tensor)> = vars
                .iter()
                .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
                .collect();
            let loss = loss_of(&layers, &bx, &by, Some(&mut rng))?;
            total += loss.to_scalar::<f32>()? * chunk.len() as f32;
            opt.backward_step(&loss)?;
        }
        let layers = snapshot(&vars)?;
        let v = loss_of(&layers, &vx, valid_y, None)?.to_scalar::<f32>()?;
        report.train_loss.push(total / train_x.len() as f32);
        report.valid_loss.push(v);
        report.epochs_run = epoch + 1;
        if v < report.best_valid_loss - 1e-6 {
            report.best_valid_loss = v;
            report.best_epoch = epoch + 1;
            best = layers;
        } else if epoch + 1 - report.best_epoch >= cfg.patience {
            report.early_stopped = true;
            break;
        }
    }
    Ok((
        MlpHead {
            layers: best,
            mean,
            std,
            activation: cfg.shape.activation,
            dropout: cfg.shape.dropout,
        },
        report,
    ))
}

/// Σ w_y · (−log p_y) / Σ w_y over the batch.
fn weighted_cross_entropy(logits: &Tensor, y: &[usize], w: &Tensor) -> Result<Tensor> {
    let (n, c) = logits.dims2()?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let mut onehot = vec![0f32; n * c];
    for (i, &t) in y.iter().enumerate() {
        onehot[i * c + t] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, (n, c), logits.device())?;
    let wy = onehot.broadcast_mul(w)?; // [n, c], the row's class weight at its label
    let num = (logp * &wy)?.sum_all()?.neg()?;
    let den = wy.sum_all()?.to_scalar::<f32>()?.max(1e-12);
    Ok((num / den as f64)?)
}

/// Decision thresholds on the positive-class probability of a binary head, chosen on the
/// validation split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    /// The precision the head is calibrated for (precision first: 0.95 by default).
    pub target_precision: f32,
    /// The lowest threshold reaching the target on validation; `None` when unreachable.
    pub at_target: Option<f32>,
    /// The threshold of best validation F1.
    pub best_f1: Option<f32>,
    /// What inference uses: `at_target`, else `best_f1`, else 0.5.
    pub chosen: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            target_precision: 0.95,
            at_target: None,
            best_f1: None,
            chosen: 0.5,
        }
    }
}

impl Thresholds {
    /// Chooses thresholds from validation probabilities of the positive class and the true
    /// labels. Candidate thresholds are the observed scores; a sample is called positive
    /// when its score is `>=` the threshold. `at_target` is the lowest threshold whose
    /// precision reaches `target` (the most recall subject to precision ≥ target), with at
    /// least one predicted positive; `best_f1` maximises F1 (ties: the higher threshold).
    pub fn calibrate(scores: &[f32], labels: &[bool], target: f32) -> Thresholds {
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let positives = labels.iter().filter(|&&l| l).count();
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut at_target = None;
        let mut best: Option<(f32, f32)> = None;
        let mut i = 0;
        while i < idx.len() {
            let t = scores[idx[i]];
            // Take every sample with this score at once: a threshold cannot split ties.
            while i < idx.len() && scores[idx[i]] == t {
                if labels[idx[i]] {
                    tp += 1;
                } else {
                    fp += 1;
                }
                i += 1;
            }
            let precision = tp as f32 / (tp + fp) as f32;
            if precision >= target {
                at_target = Some(t);
            }
            if positives > 0 {
                let recall = tp as f32 / positives as f32;
                let f1 = if tp == 0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                if best.is_none_or(|(b, _)| f1 > b) {
                    best = Some((f1, t));
                }
            }
        }
        let best_f1 = best.filter(|(f, _)| *f > 0.0).map(|(_, t)| t);
        Thresholds {
            target_precision: target,
            at_target,
            best_f1,
            chosen: at_target.or(best_f1).unwrap_or(0.5),
        }
    }
}

/// Everything about a head besides its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadMeta {
    pub name: String,
    /// What it classifies, e.g. `verdict` (binary) or `vuln_type` (multi-class).
    pub target: String,
    /// Class names; for a binary head index 1 is the positive class.
    pub classes: Vec<String>,
    pub input_dim: usize,
    pub shape: HeadShape,
    pub features: FeatureSpec,
    /// Identity of the base model the features came from (file hash).
    pub model_id: String,
    /// Identity of the adapter active during feature extraction.
    pub adapter_id: Option<String>,
    /// The prompt task the features were computed on (`code`, `http`).
    pub task: String,
    pub thresholds: Thresholds,
    /// Thresholds for the opposite call, on `1 − p`: saying "clean" (for triage: "false
    /// positive") with the target precision. Absent in heads written before it existed.
    #[serde(default)]
    pub clean_thresholds: Option<Thresholds>,
    pub training: HeadTrainReport,
    /// Validation metrics at the chosen threshold, as computed by the caller.
    #[serde(default)]
    pub validation: serde_json::Value,
}

impl HeadMeta {
    /// The positive-class probability at or below which a "clean" call reaches the target
    /// precision on validation; `None` when no threshold did (then never call it clean
    /// with confidence — precision first).
    pub fn clean_below(&self) -> Option<f32> {
        self.clean_thresholds
            .as_ref()
            .and_then(|t| t.at_target)
            .map(|t| 1.0 - t)
    }
}

/// A head with its metadata: `head.safetensors` + `head.json` in a directory.
#[derive(Debug, Clone)]
pub struct HeadFile {
    pub meta: HeadMeta,
    pub head: MlpHead,
}

impl HeadFile {
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| HeadError::file(dir, e))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (i, (w, b)) in self.head.layers.iter().enumerate() {
            tensors.insert(format!("layers.{i}.weight"), w.clone());
            tensors.insert(format!("layers.{i}.bias"), b.clone());
        }
        tensors.insert("input.mean".into(), self.head.mean.clone());
        tensors.insert("input.std".into(), self.head.std.clone());
        let st = dir.join("head.safetensors");
        candle_core::safetensors::save(&tensors, &st).map_err(|e| HeadError::file(&st, e))?;
        let js = dir.join("head.json");
        let text = serde_json::to_string_pretty(&self.meta).expect("meta serialises");
        std::fs::write(&js, text).map_err(|e| HeadError::file(&js, e))?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<HeadFile> {
        let js = dir.join("head.json");
        let text = std::fs::read_to_string(&js).map_err(|e| HeadError::file(&js, e))?;
        let meta: HeadMeta = serde_json::from_str(&text)
            .map_err(|e| HeadError::file(&js, format!("not a vigil head description: {e}")))?;
        let st = dir.join("head.safetensors");
        let mut t = candle_core::safetensors::load(&st, &Device::Cpu)
            .map_err(|e| HeadError::file(&st, e))?;
        let mut take = |k: &str| {
            t.remove(k)
                .ok_or_else(|| HeadError::file(&st, format!("missing tensor `{k}`")))
                .and_then(|x| Ok(x.to_dtype(DType::F32)?))
        };
        let mean = take("input.mean")?;
        let std = take("input.std")?;
        let n_layers = meta.shape.hidden.len() + 1;
        let mut layers = Vec::with_capacity(n_layers);
        let mut fan_in = meta.input_dim;
        for i in 0..n_layers {
            let w = take(&format!("layers.{i}.weight"))?;
            let b = take(&format!("layers.{i}.bias"))?;
            let out = if i + 1 < n_layers {
                meta.shape.hidden[i]
            } else {
                meta.classes.len()
            };
            if w.dims() != [out, fan_in] || b.dims() != [out] {
                return Err(HeadError::file(
                    &st,
                    format!(
                        "layer {i} has shape {:?}/{:?}; head.json says [{out}, {fan_in}]",
                        w.dims(),
                        b.dims()
                    ),
                ));
            }
            layers.push((w, b));
            fan_in = out;
        }
        if mean.dims() != [meta.input_dim] || std.dims() != [meta.input_dim] {
            return Err(HeadError::file(
                &st,
                "input statistics have the wrong length",
            ));
        }
        Ok(HeadFile {
            head: MlpHead {
                layers,
                mean,
                std,
                activation: meta.shape.activation,
                dropout: meta.shape.dropout,
            },
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian blobs in 16 dimensions, separated along a random direction.
    fn blobs(n: usize, seed: u64, shuffle_labels: bool) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir: Vec<f32> = (0..16)
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 2;
            let sign = if c == 1 { 1.5 } else { -1.5 };
            x.push(
                dir.iter()
                    .map(|d| d * sign + rng.random_range(-1.0f32..1.0) * 1.2 + 40.0)
                    .collect(),
            );
            y.push(c);
        }
        if shuffle_labels {
            y.shuffle(&mut rng);
        }
        (x, y)
    }

    fn accuracy(head: &MlpHead, x: &[Vec<f32>], y: &[usize]) -> f32 {
        let p = head.probabilities(x).unwrap();
        let ok = p
            .iter()
            .zip(y)
            .filter(|(p, &y)| (p[1] > 0.5) == (y == 1))
            .count();
        ok as f32 / y.len() as f32
    }

    #[test]
    fn learns_a_separable_problem() {
        let (x, y) = blobs(400, 1, false);
        let (vx, vy) = blobs(200, 2, false);
        let (tx, ty) = blobs(200, 3, false);
        let (head, rep) = train_head(&x, &y, &vx, &vy, 2, &HeadTrainConfig::default()).unwrap();
        assert!(rep.best_valid_loss < 0.3, "{rep:?}");
        assert!(accuracy(&head, &tx, &ty) > 0.95);
    }

    #[test]
    fn fails_honestly_on_shuffled_labels() {
        let (x, y) = blobs(400, 1, true);
        let (vx, vy) = blobs(200, 2, true);
        let (tx, ty) = blobs(400, 3, true);
        let (head, rep) = train_head(&x, &y, &vx, &vy, 2, &HeadTrainConfig::default()).unwrap();
        let acc = accuracy(&head, &tx, &ty);
        assert!((0.4..0.6).contains(&acc), "accuracy {acc} on noise");
        // Early stopping catches the memorising: validation loss stops improving quickly.
        assert!(rep.early_stopped && rep.best_epoch < 50, "{rep:?}");
    }

    #[test]
    fn class_weights_follow_the_balanced_rule() {
        let x: Vec<Vec<f32>> = (0..8).map(|i| vec![i as f32, 1.0]).collect();
        let y = vec![0, 0, 0, 0, 0, 0, 1, 1];
        let cfg = HeadTrainConfig {
            epochs: 1,
            ..Default::default()
        };
        let (_, rep) = train_head(&x, &y, &x, &y, 2, &cfg).unwrap();
        // n / (k · count): 8 / (2·6) and 8 / (2·2).
        assert!((rep.class_weights[0] - 8.0 / 12.0).abs() < 1e-6);
        assert!((rep.class_weights[1] - 2.0).abs() < 1e-6);
    }

    #[test]
    fn saved_head_loads_and_predicts_the_same() {
        let (x, y) = blobs(100, 4, false);
        let cfg = HeadTrainConfig {
            epochs: 5,
            ..Default::default()
        };
        let (head, training) = train_head(&x, &y, &x, &y, 2, &cfg).unwrap();
        let file = HeadFile {
            meta: HeadMeta {
                name: "t".into(),
                target: "verdict".into(),
                classes: vec!["clean".into(), "vulnerable".into()],
                input_dim: 16,
                shape: cfg.shape.clone(),
                features: FeatureSpec::final_layer(30),
                model_id: "m".into(),
                adapter_id: None,
                task: "code".into(),
                thresholds: Thresholds::default(),
                clean_thresholds: None,
                training,
                validation: serde_json::Value::Null,
            },
            head,
        };
        let dir = tempfile::tempdir().unwrap();
        file.save(dir.path()).unwrap();
        let back = HeadFile::load(dir.path()).unwrap();
        assert_eq!(
            back.head.probabilities(&x).unwrap(),
            file.head.probabilities(&x).unwrap()
        );
        // A corrupt description names the file.
        std::fs::write(dir.path().join("head.json"), "{").unwrap();
        let err = HeadFile::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("head.json"), "{err}");
    }

    #[test]
    fn a_clean_call_has_its_own_precision_first_threshold() {
        // p(vulnerable) = [0.9, 0.8, 0.3, 0.2, 0.1] with labels [T, T, F, T, F]. On 1 − p
        // the clean samples rank 0.9 (clean: precision 1/1), 0.8 (vulnerable: 1/2), 0.7
        // (clean: 2/3), …; only the first reaches 0.95, so "clean" only at p ≤ 0.1.
        let p = [0.9f32, 0.8, 0.3, 0.2, 0.1];
        let labels = [true, true, false, true, false];
        let clean: Vec<f32> = p.iter().map(|p| 1.0 - p).collect();
        let not: Vec<bool> = labels.iter().map(|l| !l).collect();
        let mut meta = HeadMeta {
            name: "t".into(),
            target: "verdict".into(),
            classes: vec!["clean".into(), "vulnerable".into()],
            input_dim: 1,
            shape: HeadShape::default(),
            features: FeatureSpec::final_layer(30),
            model_id: "m".into(),
            adapter_id: None,
            task: "http".into(),
            thresholds: Thresholds::default(),
            clean_thresholds: None,
            training: Default::default(),
            validation: serde_json::Value::Null,
        };
        assert_eq!(meta.clean_below(), None);
        meta.clean_thresholds = Some(Thresholds::calibrate(&clean, &not, 0.95));
        assert!((meta.clean_below().unwrap() - 0.1).abs() < 1e-6);
        // Nothing reaches the target: no confident clean call at all.
        let never = Thresholds::calibrate(&[0.5, 0.5], &[true, false], 0.95);
        meta.clean_thresholds = Some(never);
        assert_eq!(meta.clean_below(), None);
    }

    #[test]
    fn thresholds_follow_precision_first() {
        // Scores high→low with labels: .9 T, .8 T, .7 F, .6 T, .5 F, .4 T, .2 F
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.2];
        let l = [true, true, false, true, false, true, false];
        // Precision at each cut: 1, 1, 2/3, 3/4, 3/5, 4/6, 4/7.
        let t = Thresholds::calibrate(&s, &l, 0.95);
        assert_eq!(t.at_target, Some(0.8));
        assert_eq!(t.chosen, 0.8);
        let t = Thresholds::calibrate(&s, &l, 0.7);
        assert_eq!(t.at_target, Some(0.6));
        // F1 at each cut (4 positives): .4, .667, .571, .75, .667, .8, .727 → best at .4.
        assert_eq!(t.best_f1, Some(0.4));
        // Unreachable target: falls back to best F1.
        let t = Thresholds::calibrate(&[0.9, 0.1], &[false, true], 0.95);
        assert_eq!(t.at_target, None);
        assert_eq!(t.chosen, 0.1);
    }

    #[test]
    fn rejects_bad_labels_and_dims() {
        let x = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        assert!(train_head(&x, &[0, 2], &x, &[0, 1], 2, &HeadTrainConfig::default()).is_err());
        assert!(train_head(&[], &[], &x, &[0, 1], 2, &HeadTrainConfig::default()).is_err());
        let ragged = vec![vec![0.0, 1.0], vec![1.0]];
        assert!(train_head(
            &ragged,
            &[0, 1],
            &x,
            &[0, 1],
            2,
            &HeadTrainConfig::default()
        )
        .is_err());
    }
}
