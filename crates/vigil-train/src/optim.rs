//! The optimizer half of a training step: [`Gradients`] (accumulated over micro-batches),
//! [`clip_grad_norm`] and [`AdamW`].
//!
//! Semantics are PyTorch's (`torch.optim.AdamW`, single-tensor CPU path, and
//! `torch.nn.utils.clip_grad_norm_`), checked against a PyTorch run in
//! `tests/optim_fixture.rs`. Unlike `candle_nn::AdamW`, the moments are ours, so they are saved
//! in checkpoints ([`AdamW::save`] / [`AdamW::load`]) and a resumed run continues exactly.

use crate::error::{Result, TrainError};
use crate::st;
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Gradients of the trainable parameters, in the order of the parameter list they were made
/// for. `None`: the parameter got no gradient (it is then left alone by [`AdamW::step`], as
/// PyTorch skips parameters whose `.grad` is `None`).
#[derive(Debug, Clone)]
pub struct Gradients {
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    /// No gradient yet for `n` parameters.
    pub fn empty(n: usize) -> Self {
        Gradients {
            grads: vec![None; n],
        }
    }

    /// Builds from explicit tensors (tests, or a task that computes its own gradients).
    pub fn from_tensors(grads: Vec<Option<Tensor>>) -> Self {
        Gradients { grads }
    }

    /// Adds the gradients of `params` found in `store` (the result of `loss.backward()`).
    pub fn accumulate(&mut self, store: &GradStore, params: &[(String, Var)]) -> Result<()> {
        if params.len() != self.grads.len() {
            return Err(TrainError::Run(format!(
                "{} parameters but gradients for {}",
                params.len(),
                self.grads.len()
            )));
        }
        for (slot, (_, var)) in self.grads.iter_mut().zip(params) {
            if let Some(g) = store.get(var.as_tensor()) {
                // Detached: a gradient computed from a `Var` carries its autograd graph
                // (the whole forward pass), and the moments built from it would chain every
                // step's graph together — memory grew by ~1 GB per step before this.
                let g = g.detach();
                *slot = Some(match slot.take() {
                    Some(acc) => (acc + g)?,
                    None => g,
                });
            }
        }
        Ok(())
    }

    /// Multiplies every gradient by `s`.
    pub fn scale(&mut self, s: f64) -> Result<()> {
        for g in self.grads.iter_mut().flatten() {
            *g = g.affine(s, 0.0)?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.grads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The gradient of parameter `i`.
    pub fn get(&self, i: usize) -> Option<&Tensor> {
        self.grads.get(i).and_then(Option::as_ref)
    }

    /// The global L2 norm over all gradients (accumulated in f64).
    pub fn global_norm(&self) -> Result<f64> {
        let mut sq = 0.0f64;
        for g in self.grads.iter().flatten() {
            sq += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }
}

/// Clips the gradients to a global L2 norm of at most `max_norm`, like PyTorch's
/// `clip_grad_norm_`: when the norm exceeds `max_norm`, every gradient is multiplied by
/// `max_norm / (norm + 1e-6)`. Returns the norm before clipping (what `grad_norm` logs show).
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f64) -> Result<f64> {
    let norm = grads.global_norm()?;
    if !norm.is_finite() {
        return Err(TrainError::Run(format!(
            "the gradient norm is {norm}: the loss diverged (lower the learning rate?)"
        )));
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        grads.scale(coef)?;
    }
    Ok(norm)
}

/// AdamW's hyper-parameters other than the learning rate (which the schedule gives per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay: each step first does `p -= lr · weight_decay · p`.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    /// PyTorch's defaults except the weight decay (0 here; PyTorch's is 0.01).
    fn default() -> Self {
        AdamWParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

struct Moments {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// AdamW over named [`Var`]s, with its state (step count, first and second moments per
/// parameter) saved and loaded as safetensors.
///
/// Per parameter with gradient `g` at step `t` (1-based), learning rate `lr`:
/// `p ← p·(1 − lr·wd)`; `m ← m + (1 − β₁)(g − m)`; `v ← β₂v + (1 − β₂)g²`;
/// `p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)`.
pub struct AdamW {
    params: Vec<(String, Var)>,
    moments: Vec<Option<Moments>>,
    step: u64,
    hp: AdamWParams,
}

const FORMAT: &str = "vigil-adamw-1";

impl AdamW {
    /// An optimizer for `params` (names must be unique: they key the saved state).
    pub fn new(params: Vec<(String, Var)>, hp: AdamWParams) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in &params {
            if !seen.insert(name.as_str()) {
                return Err(TrainError::Run(format!(
                    "two trainable parameters are named `{name}`"
                )));
            }
        }
        let n = params.len();
        Ok(AdamW {
            params,
            moments: (0..n).map(|_| None).collect(),
            step: 0,
            hp,
        })
    }

    /// Optimizer steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    pub fn hyper_params(&self) -> AdamWParams {
        self.hp
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, grads: &Gradients, lr: f64) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(TrainError::Run(format!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            )));
        }
        self.step += 1;
        let t = self.step as i32;
        let AdamWParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.hp;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        let step_size = lr / bias1;
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(i) else { continue };
            let g = g.detach().to_dtype(var.dtype())?;
            let mut p = var.as_tensor().detach();
            if weight_decay != 0.0 {
                p = p.affine(1.0 - lr * weight_decay, 0.0)?;
            }
            if self.moments[i].is_none() {
                self.moments[i] = Some(Moments {
                    exp_avg: g.zeros_like()?,
                    exp_avg_sq: g.zeros_like()?,
                });
            }
            let Some(st) = self.moments[i].as_mut() else {
                continue;
            };
            // torch.lerp(m, g, w) for w < 0.5 computes m + w·(g − m).
            st.exp_avg = (&st.exp_avg + (&g - &st.exp_avg)?.affine(1.0 - beta1, 0.0)?)?;
            st.exp_avg_sq =
                (st.exp_avg_sq.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
            // A true division, as PyTorch does (not a multiplication by the reciprocal).
            let b2 = Tensor::new(bias2_sqrt, var.device())?.to_dtype(var.dtype())?;
            let denom = st.exp_avg_sq.sqrt()?.broadcast_div(&b2)?.affine(1.0, eps)?;
            let update = (&st.exp_avg / denom)?.affine(step_size, 0.0)?;
            var.set(&(p - update)?)?;
        }
        Ok(())
    }

    /// Writes the state: tensors `<name>.exp_avg` and `<name>.exp_avg_sq` for every
    /// parameter that has been updated, the step count and hyper-parameters as metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = BTreeMap::new();
        for ((name, _), m) in self.params.iter().zip(&self.moments) {
            if let Some(m) = m {
                tensors.insert(format!("{name}.exp_avg"), m.exp_avg.clone());
                tensors.insert(format!("{name}.exp_avg_sq"), m.exp_avg_sq.clone());
            }
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("beta1".into(), self.hp.beta1.to_string());
        meta.insert("beta2".into(), self.hp.beta2.to_string());
        meta.insert("eps".into(), self.hp.eps.to_string());
        meta.insert("weight_decay".into(), self.hp.weight_decay.to_string());
        st::write(path, &tensors, meta)
    }

    /// Restores the state written by [`AdamW::save`]. The file must hold moments for exactly
    /// this optimizer's parameters (by name, with their shapes); anything else is an error
    /// naming the file and the tensor. The hyper-parameters stay those of `self` (the config
    /// check on resume catches a changed recipe).
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let device = match self.params.first() {
            Some((_, v)) => v.device().clone(),
            None => candle_core::Device::Cpu,
        };
        let (mut tensors, meta) = st::read(path, &device)?;
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(TrainError::checkpoint(
                path,
                format!("not an optimizer state of this version (format {FORMAT} expected)"),
            ));
        }
        let step: u64 = meta
            .get("step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| TrainError::checkpoint(path, "no valid `step` in the metadata"))?;
        let mut moments = Vec::with_capacity(self.params.len());
        for (name, var) in &self.params {
            let a = tensors.remove(&format!("{name}.exp_avg"));
            let b = tensors.remove(&format!("{name}.exp_avg_sq"));
            match (a, b) {
                (Some(a), Some(b)) => {
                    for (which, t) in [("exp_avg", &a), ("exp_avg_sq", &b)] {
                        if t.dims() != var.dims() {
                            return Err(TrainError::checkpoint(
                                path,
                                format!(
                                    "`{name}.{which}` has shape {:?}, the parameter {:?}",
                                    t.dims(),
                                    var.dims()
                                ),
                            ));
                        }
                    }
                    moments.push(Some(Moments {
                        exp_avg: a.to_dtype(var.dtype())?,
                        exp_avg_sq: b.to_dtype(var.dtype())?,
                    }));
                }
                // Never updated (it has had no gradient yet).
                (None, None) => moments.push(None),
                _ => {
                    return Err(TrainError::checkpoint(
                        path,
                        format!("parameter `{name}` has only one of its two moments"),
                    ))
                }
            }
        }
        if let Some(extra) = tensors.keys().next() {
            return Err(TrainError::checkpoint(
                path,
                format!(
                    "holds `{extra}`, which belongs to no trainable parameter of this run \
                     (a checkpoint of another model or adapter layout?)"
                ),
            ));
        }
        self.moments = moments;
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn first_step_moves_by_lr_times_sign() {
        // With bias correction the first Adam step is lr · g / (|g| + eps') ≈ lr · sign(g).
        let v = Var::from_vec(vec![1.0f32, -2.0, 3.0], 3, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), v.clone())], AdamWParams::default()).unwrap();
        let g = Tensor::new(&[0.5f32, -4.0, 0.0], &Device::Cpu).unwrap();
        opt.step(&Gradients::from_tensors(vec![Some(g)]), 0.1)
            .unwrap();
        let p = v.as_tensor().to_vec1::<f32>().unwrap();
        assert!((p[0] - 0.9).abs() < 1e-6, "{p:?}");
        assert!((p[1] + 1.9).abs() < 1e-6, "{p:?}");
        assert_eq!(p[2], 3.0);
    }

    #[test]
    fn optimizer_state_holds_no_autograd_graph() {
        // Gradients of a Var-dependent loss are themselves graph nodes; if the moments kept
        // them, every step's forward pass would stay alive (a leak of ~1 GB per step on the
        // default model).
        let v = Var::from_vec(vec![1.0f32, -2.0, 3.0], 3, &Device::Cpu).unwrap();
        let params = vec![("w".to_string(), v.clone())];
        let mut opt = AdamW::new(params.clone(), AdamWParams::default()).unwrap();
        for _ in 0..2 {
            let loss = v
                .as_tensor()
                .sqr()
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let store = loss.backward().unwrap();
            assert!(
                store.get(v.as_tensor()).unwrap().track_op(),
                "premise: tracked grads"
            );
            let mut grads = Gradients::empty(1);
            grads.accumulate(&store, &params).unwrap();
            assert!(!grads.get(0).unwrap().track_op());
            opt.step(&grads, 0.1).unwrap();
        }
        let m = opt.moments[0].as_ref().unwrap();
        assert!(!m.exp_avg.track_op() && !m.exp_avg_sq.track_op());
        assert!(!v.as_tensor().detach().track_op());
    }

    #[test]
    fn clipping_scales_only_above_the_limit() {
        let g = Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let mut gs = Gradients::from_tensors(vec![Some(g.clone()), None]);
        let n = clip_grad_norm(&mut gs, 10.0).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        assert_eq!(gs.get(0).unwrap().to_vec1::<f32>().unwrap(), vec![3.0, 4.0]);
        let n = clip_grad_norm(&mut gs, 1.0).unwrap();
        assert!((n - 5.0).abs() < 1e-9);
        let c = gs.get(0).unwrap().to_vec1::<f32>().unwrap();
        assert!((c[0] - 0.6).abs() < 1e-6 && (c[1] - 0.8).abs() < 1e-6);
    }
}
