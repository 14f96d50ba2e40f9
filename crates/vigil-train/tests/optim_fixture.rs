//! AdamW, gradient clipping and the schedules against a PyTorch run
//! (`tools/make_optim_fixture.py` → `fixtures/optim/*.json`).

use candle_core::{Device, Tensor, Var, D};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use vigil_train::{clip_grad_norm, AdamW, AdamWParams, Gradients, Schedule, ScheduleKind};

#[derive(Deserialize)]
struct Config {
    lr: f64,
    betas: [f64; 2],
    eps: f64,
    weight_decay: f64,
    max_grad_norm: f64,
    warmup_steps: usize,
    total_steps: usize,
    pull: f64,
}

#[derive(Deserialize)]
struct Step {
    step: usize,
    lr: f64,
    loss: f64,
    grad_norm: f64,
    clipped: bool,
    grads: HashMap<String, Vec<f32>>,
    params_after: HashMap<String, Vec<f32>>,
}

#[derive(Deserialize)]
struct Fixture {
    config: Config,
    names: Vec<String>,
    shapes: HashMap<String, Vec<usize>>,
    init: HashMap<String, Vec<f32>>,
    x: Vec<f32>,
    y: Vec<u32>,
    anchor: Vec<f32>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Sched {
    kind: String,
    warmup: usize,
    total: usize,
    factors: Vec<f64>,
}

#[derive(Deserialize)]
struct Schedules {
    schedules: Vec<Sched>,
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/optim")
        .join(name)
}

fn load() -> Fixture {
    let p = fixture_path("adamw_cosine_clip.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

impl Fixture {
    fn vars(&self) -> Vec<(String, Var)> {
        self.names
            .iter()
            .map(|n| {
                let v = Var::from_vec(
                    self.init[n].clone(),
                    self.shapes[n].as_slice(),
                    &Device::Cpu,
                )
                .unwrap();
                (n.clone(), v)
            })
            .collect()
    }
    fn hp(&self) -> AdamWParams {
        AdamWParams {
            beta1: self.config.betas[0],
            beta2: self.config.betas[1],
            eps: self.config.eps,
            weight_decay: self.config.weight_decay,
        }
    }
    fn schedule(&self) -> Schedule {
        Schedule::new(
            ScheduleKind::Cosine,
            self.config.lr,
            self.config.warmup_steps,
            self.config.total_steps,
        )
    }
}

fn values(params: &[(String, Var)]) -> Vec<Vec<f32>> {
    params
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

/// Largest |a − b| relative to the tensor's scale (its largest |b|). Elementwise relative
/// errors are larger where a value passes near zero: the absolute error of a few float32
/// ulps it carries from its larger past is then large relative to the value itself.
fn scale_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn adamw_and_clipping_match_pytorch_given_its_gradients() {
    let fx = load();
    let params = fx.vars();
    let mut opt = AdamW::new(params.clone(), fx.hp()).unwrap();
    let schedule = fx.schedule();
    let (mut clipped, mut worst) = (0, 0.0f32);
    for s in &fx.steps {
        let lr = schedule.lr(s.step);
        assert!(
            (lr - s.lr).abs() <= 1e-15,
            "step {}: lr {lr} vs {}",
            s.step,
            s.lr
        );
        let mut grads = Gradients::from_tensors(
            fx.names
                .iter()
                .map(|n| {
                    Some(
                        Tensor::from_vec(s.grads[n].clone(), fx.shapes[n].as_slice(), &Device::Cpu)
                            .unwrap(),
                    )
                })
                .collect(),
        );
        let norm = clip_grad_norm(&mut grads, fx.config.max_grad_norm).unwrap();
        assert!(
            (norm - s.grad_norm).abs() <= 1e-6 * s.grad_norm,
            "step {}: norm {norm} vs {}",
            s.step,
            s.grad_norm
        );
        clipped += s.clipped as usize;
        opt.step(&grads, lr).unwrap();
        for (name, got) in fx.names.iter().zip(values(&params)) {
            let e = scale_rel(&got, &s.params_after[name]);
            worst = worst.max(e);
            assert!(
                e <= 1e-6,
                "step {}: {name} off by {e:e} of its scale",
                s.step
            );
        }
    }
    assert!(
        clipped > 0 && clipped < fx.steps.len(),
        "both clipping paths exercised"
    );
    eprintln!("AdamW vs PyTorch, same gradients: worst parameter error {worst:e} of scale");
}

#[test]
fn optimizer_state_saved_mid_run_continues_exactly() {
    let fx = load();
    let schedule = fx.schedule();
    let grads_at = |s: &Step| {
        Gradients::from_tensors(
            fx.names
                .iter()
                .map(|n| {
                    Some(
                        Tensor::from_vec(s.grads[n].clone(), fx.shapes[n].as_slice(), &Device::Cpu)
                            .unwrap(),
                    )
                })
                .collect(),
        )
    };
    let a = fx.vars();
    let mut opt_a = AdamW::new(a.clone(), fx.hp()).unwrap();
    let b = fx.vars();
    let mut opt_b = AdamW::new(b.clone(), fx.hp()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for s in &fx.steps {
        if s.step == 10 {
            // Save B's state, then rebuild B from scratch: fresh vars + loaded state.
            let path = tmp.path().join("opt.safetensors");
            opt_b.save(&path).unwrap();
            let vals = values(&b);
            for ((_, v), x) in b.iter().zip(vals) {
                v.set(&Tensor::from_vec(x, v.shape(), &Device::Cpu).unwrap())
                    .unwrap();
            }
            opt_b = AdamW::new(b.clone(), fx.hp()).unwrap();
            opt_b.load(&path).unwrap();
            assert_eq!(opt_b.step_count(), 10);
        }
        let mut g = grads_at(s);
        clip_grad_norm(&mut g, 1.0).unwrap();
        opt_a.step(&g, schedule.lr(s.step)).unwrap();
        opt_b.step(&g, schedule.lr(s.step)).unwrap();
    }
    assert_eq!(values(&a), values(&b));
    // Without the saved moments the run would differ.
    let c = fx.vars();
    let mut opt_c = AdamW::new(c.clone(), fx.hp()).unwrap();
    for s in &fx.steps {
        if s.step == 10 {
            opt_c = AdamW::new(c.clone(), fx.hp()).unwrap();
        }
        let mut g = grads_at(s);
        clip_grad_norm(&mut g, 1.0).unwrap();
        opt_c.step(&g, schedule.lr(s.step)).unwrap();
    }
    assert_ne!(values(&a), values(&c));
}

/// The fixture's problem computed with candle's autograd: the whole loop (forward, backward,
/// clip, AdamW, schedule) against PyTorch's.
#[test]
fn whole_problem_replayed_with_candle_autograd() {
    let fx = load();
    let dev = &Device::Cpu;
    let params = fx.vars();
    let p: HashMap<&str, &Var> = params.iter().map(|(n, v)| (n.as_str(), v)).collect();
    let x = Tensor::from_vec(fx.x.clone(), (fx.y.len(), 3), dev).unwrap();
    let y = Tensor::from_vec(fx.y.clone(), fx.y.len(), dev).unwrap();
    let anchor = Tensor::from_vec(fx.anchor.clone(), (4, 3), dev).unwrap();
    let mut opt = AdamW::new(params.clone(), fx.hp()).unwrap();
    let schedule = fx.schedule();
    let (mut worst_loss, mut worst_param) = (0.0f64, 0.0f32);
    for s in &fx.steps {
        let h = x
            .matmul(&p["w1"].as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(p["b1"].as_tensor())
            .unwrap()
            .tanh()
            .unwrap();
        let logits = h.matmul(&p["w2"].as_tensor().t().unwrap()).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let ce = logp
            .gather(&y.unsqueeze(1).unwrap(), 1)
            .unwrap()
            .mean_all()
            .unwrap()
            .neg()
            .unwrap();
        let pull = (p["w1"].as_tensor() - &anchor)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .affine(fx.config.pull, 0.0)
            .unwrap();
        let loss = (ce + pull).unwrap();
        let l = loss.to_scalar::<f32>().unwrap() as f64;
        worst_loss = worst_loss.max((l - s.loss).abs() / s.loss.abs());
        let store = loss.backward().unwrap();
        let mut g = Gradients::empty(params.len());
        g.accumulate(&store, &params).unwrap();
        let norm = clip_grad_norm(&mut g, fx.config.max_grad_norm).unwrap();
        assert!(
            (norm - s.grad_norm).abs() <= 1e-5 * s.grad_norm,
            "step {}: norm {norm} vs {}, loss {l} vs {}",
            s.step,
            s.grad_norm,
            s.loss
        );
        opt.step(&g, schedule.lr(s.step)).unwrap();
        for (name, got) in fx.names.iter().zip(values(&params)) {
            worst_param = worst_param.max(scale_rel(&got, &s.params_after[name]));
        }
    }
    eprintln!("candle autograd loop vs PyTorch: worst loss {worst_loss:e}, params {worst_param:e}");
    assert!(worst_loss <= 1e-5, "loss off by {worst_loss:e}");
    assert!(
        worst_param <= 1e-6,
        "params off by {worst_param:e} of their scale"
    );
}

#[test]
fn schedules_match_transformers() {
    let p = fixture_path("schedules.json");
    let all: Schedules = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(all.schedules.len(), 12);
    for s in &all.schedules {
        let kind = match s.kind.as_str() {
            "constant" => ScheduleKind::Constant,
            "linear" => ScheduleKind::Linear,
            "cosine" => ScheduleKind::Cosine,
            k => panic!("unknown schedule {k}"),
        };
        let ours = Schedule::new(kind, 1.0, s.warmup, s.total);
        for (step, &want) in s.factors.iter().enumerate() {
            let got = ours.factor(step);
            assert!(
                (got - want).abs() <= 1e-12,
                "{} warmup {} total {} step {step}: {got} vs {want}",
                s.kind,
                s.warmup,
                s.total
            );
        }
    }
}
