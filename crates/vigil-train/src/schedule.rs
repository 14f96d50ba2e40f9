//! Learning-rate schedules with linear warmup, with the formulas of Hugging Face
//! transformers' `get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup` and
//! `get_cosine_schedule_with_warmup` (one half cosine wave).
//!
//! `step` is the number of optimizer steps already taken, so the first update uses
//! `factor(0)` — 0 when there is any warmup, exactly as a PyTorch `LambdaLR` stepped after
//! each `optimizer.step()`.

use serde::{Deserialize, Serialize};

/// The shape of the decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Stay at the base rate.
    Constant,
    /// Straight down to 0 at the last step.
    Linear,
    /// Half a cosine wave down to 0 at the last step.
    #[default]
    Cosine,
}

impl ScheduleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Constant => "constant",
            ScheduleKind::Linear => "linear",
            ScheduleKind::Cosine => "cosine",
        }
    }
}

/// Warmup length as transformers computes it: `warmup_steps` when it is set and positive,
/// else `ceil(total_steps · warmup_ratio)`.
pub fn warmup_steps(total_steps: usize, warmup_steps: Option<usize>, warmup_ratio: f64) -> usize {
    match warmup_steps {
        Some(w) if w > 0 => w,
        _ => (total_steps as f64 * warmup_ratio).ceil() as usize,
    }
}

/// A learning-rate schedule over a known number of optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl Schedule {
    pub fn new(kind: ScheduleKind, base_lr: f64, warmup_steps: usize, total_steps: usize) -> Self {
        Schedule {
            kind,
            base_lr,
            warmup_steps,
            total_steps,
        }
    }

    /// The multiplier of the base rate after `step` optimizer steps (transformers' `lr_lambda`).
    pub fn factor(&self, step: usize) -> f64 {
        let (s, w, n) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < self.warmup_steps {
            return s / w.max(1.0);
        }
        match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => ((n - s) / (n - w).max(1.0)).max(0.0),
            ScheduleKind::Cosine => {
                let progress = (s - w) / (n - w).max(1.0);
                (0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos())).max(0.0)
            }
        }
    }

    /// The learning rate of the update that follows `step` completed steps.
    pub fn lr(&self, step: usize) -> f64 {
        self.base_lr * self.factor(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay_shapes() {
        let c = Schedule::new(ScheduleKind::Cosine, 1.0, 10, 110);
        assert_eq!(c.factor(0), 0.0);
        assert_eq!(c.factor(5), 0.5);
        assert_eq!(c.factor(10), 1.0);
        assert!((c.factor(60) - 0.5).abs() < 1e-12);
        assert!(c.factor(110).abs() < 1e-12);
        let l = Schedule::new(ScheduleKind::Linear, 1.0, 10, 110);
        assert!((l.factor(60) - 0.5).abs() < 1e-12);
        assert_eq!(l.factor(200), 0.0);
        let k = Schedule::new(ScheduleKind::Constant, 2.0, 4, 100);
        assert_eq!(k.lr(2), 1.0);
        assert_eq!(k.lr(50), 2.0);
        assert_eq!(warmup_steps(100, None, 0.03), 3);
        assert_eq!(warmup_steps(10, None, 0.03), 1);
        assert_eq!(warmup_steps(10, Some(4), 0.5), 4);
        assert_eq!(warmup_steps(10, Some(0), 0.0), 0);
    }
}
