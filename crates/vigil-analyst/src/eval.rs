//! The model side of `vigil eval`: the second seed's six variants scored on one split.
//!
//! | variant  | adapter | prompt     | verdict from                                    |
//! |----------|---------|------------|-------------------------------------------------|
//! | SC       | no      | plain      | next-token probability of the verdict word      |
//! | PE-SC    | no      | engineered | next-token probability of the verdict word      |
//! | FT-SC    | LoRA    | plain      | next-token probability of the verdict word      |
//! | FT-PE-SC | LoRA    | engineered | next-token probability of the verdict word      |
//! | FT-CH    | LoRA    | plain      | MLP head on the pooled hidden state             |
//! | FT-PE-CH | LoRA    | engineered | MLP head on the pooled hidden state             |
//!
//! The verdict-token variants decide at 0.5 (the greedy answer); the head variants at the
//! head's calibrated threshold. Metrics are computed elsewhere (`vigil-eval`) from the
//! [`VariantScores`] this module returns.

use crate::analyst::Analyst;
use crate::error::{AnalystError, Result};
use crate::subject::{PromptForm, Subject};
use std::time::Instant;
use vigil_data::Sample;
use vigil_head::{FeatureCache, HeadFile};

/// One sample of the evaluated split, as the variants see it.
#[derive(Debug, Clone)]
pub struct EvalItem {
    pub id: String,
    pub group: String,
    pub subject: Subject,
    pub label: bool,
    pub true_type: Option<String>,
    /// The dataset's answer (for the report-similarity metrics).
    pub reference: String,
}

impl EvalItem {
    /// `None` for samples the analyst cannot ask about (reports, chat rows).
    pub fn of_sample(s: &Sample) -> Option<EvalItem> {
        let subject = Subject::of_sample(s)?;
        let reference = vigil_data::prompt::render(s).assistant;
        Some(EvalItem {
            id: s.id.map(|i| i.to_string()).unwrap_or_default(),
            group: s.group_id.clone(),
            subject,
            label: s.is_vulnerable,
            true_type: s.vuln_type.clone().filter(|_| s.is_vulnerable),
            reference,
        })
    }
}

/// How a variant reaches its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scorer {
    /// The probability of "vulnerable" against "not vulnerable" as the verdict's first word.
    VerdictToken,
    /// The verdict head on pooled hidden states.
    Head,
}

/// One of the seed's variants.
#[derive(Debug, Clone)]
pub struct VariantSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub scorer: Scorer,
    pub adapter: bool,
    pub form: PromptForm,
}

/// The six variants, in the seed's order.
pub fn seed_variants() -> Vec<VariantSpec> {
    use PromptForm::{Engineered, Plain};
    use Scorer::{Head, VerdictToken};
    let v = |name, description, scorer, adapter, form| VariantSpec {
        name,
        description,
        scorer,
        adapter,
        form,
    };
    vec![
        v(
            "SC",
            "base model, plain prompt, verdict token",
            VerdictToken,
            false,
            Plain,
        ),
        v(
            "PE-SC",
            "base model, engineered prompt, verdict token",
            VerdictToken,
            false,
            Engineered,
        ),
        v(
            "FT-SC",
            "LoRA, plain prompt, verdict token",
            VerdictToken,
            true,
            Plain,
        ),
        v(
            "FT-PE-SC",
            "LoRA, engineered prompt, verdict token",
            VerdictToken,
            true,
            Engineered,
        ),
        v(
            "FT-CH",
            "LoRA, plain prompt, classification head",
            Head,
            true,
            Plain,
        ),
        v(
            "FT-PE-CH",
            "LoRA, engineered prompt, classification head",
            Head,
            true,
            Engineered,
        ),
    ]
}

/// What a variant said about every item, in the items' order.
#[derive(Debug, Clone)]
pub struct VariantScores {
    pub name: String,
    pub description: String,
    /// Probability of "vulnerable" per item.
    pub probabilities: Vec<f32>,
    /// The decision threshold on `probabilities`.
    pub threshold: f32,
    /// The type head's answer on items it judged (head variants with a type head).
    pub predicted_types: Vec<Option<String>>,
    pub seconds: f64,
}

impl VariantScores {
    pub fn predictions(&self) -> Vec<bool> {
        self.probabilities
            .iter()
            .map(|&p| p >= self.threshold)
            .collect()
    }
}

/// The heads a head variant uses (trained on that variant's prompt form).
pub struct VariantHeads<'a> {
    pub verdict: &'a HeadFile,
    pub vuln_type: Option<&'a HeadFile>,
}

/// Scores `items` with one variant. `adapter` names the loaded LoRA (needed when the
/// variant uses one); `heads` are needed by head variants.
pub fn score_variant(
    analyst: &Analyst,
    items: &[EvalItem],
    spec: &VariantSpec,
    adapter: Option<&str>,
    heads: Option<VariantHeads<'_>>,
    cache: &FeatureCache,
    progress: &mut dyn FnMut(usize),
) -> Result<VariantScores> {
    let start = Instant::now();
    let prompts: Vec<_> = items
        .iter()
        .map(|i| i.subject.messages(spec.form))
        .collect();
    let adapter = if spec.adapter {
        Some(adapter.ok_or_else(|| {
            AnalystError::Invalid(format!("variant {} needs an adapter", spec.name))
        })?)
    } else {
        None
    };
    let (probabilities, threshold, predicted_types) = match spec.scorer {
        Scorer::VerdictToken => {
            let p = analyst.verdict_token_probabilities(&prompts, adapter, progress)?;
            (p, 0.5, vec![None; items.len()])
        }
        Scorer::Head => {
            let heads = heads.ok_or_else(|| {
                AnalystError::Invalid(format!("variant {} needs a verdict head", spec.name))
            })?;
            let meta = &heads.verdict.meta;
            let (x, _) = analyst.features(
                &prompts,
                &meta.features,
                meta.adapter_id.as_deref(),
                cache,
                progress,
            )?;
            let p: Vec<f32> = heads
                .verdict
                .head
                .probabilities(&x)?
                .iter()
                .map(|p| p[1])
                .collect();
            let types = match heads.vuln_type {
                // The type head reads the same features (same spec) in every bundle vigil
                // writes; a different spec would need its own prefill.
                Some(t) if t.meta.features == meta.features => t
                    .head
                    .probabilities(&x)?
                    .iter()
                    .map(|row| {
                        row.iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .and_then(|(i, _)| t.meta.classes.get(i).cloned())
                    })
                    .collect(),
                _ => vec![None; items.len()],
            };
            (p, meta.thresholds.chosen, types)
        }
    };
    Ok(VariantScores {
        name: spec.name.to_string(),
        description: spec.description.to_string(),
        probabilities,
        threshold,
        predicted_types,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The probability of "vulnerable" when the verdict word is sampled at `temperature`
/// instead of read greedily: the two-way softmax of the verdict logits divided by T.
/// `p` is the T = 1 probability, so its logit difference is `ln(p / (1 - p))`.
pub fn at_temperature(p: f32, temperature: f32) -> f32 {
    let p = p.clamp(1e-7, 1.0 - 1e-7) as f64;
    let d = (p / (1.0 - p)).ln() / temperature.max(1e-4) as f64;
    (1.0 / (1.0 + (-d).exp())) as f32
}

/// The chance that a majority vote over `n` (odd) independent samples says "vulnerable"
/// when each says so with probability `p` — self-consistency without running it `n` times,
/// exact because the samples differ only in that one sampled verdict word.
pub fn majority_probability(p: f32, n: usize) -> f32 {
    let p = p as f64;
    let need = n / 2 + 1;
    let mut total = 0.0;
    for k in need..=n {
        total += binomial(n, k) * p.powi(k as i32) * (1.0 - p).powi((n - k) as i32);
    }
    total as f32
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_variants_in_the_seeds_order() {
        let names: Vec<_> = seed_variants().iter().map(|v| v.name).collect();
        assert_eq!(
            names,
            ["SC", "PE-SC", "FT-SC", "FT-PE-SC", "FT-CH", "FT-PE-CH"]
        );
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        // p = 0.8 → logit ln 4 ≈ 1.386; at T = 2 → sigmoid(0.693) = 2/3; at T = 0.5 →
        // sigmoid(2.773) = 16/17.
        assert!((at_temperature(0.8, 1.0) - 0.8).abs() < 1e-5);
        assert!((at_temperature(0.8, 2.0) - 2.0 / 3.0).abs() < 1e-5);
        assert!((at_temperature(0.8, 0.5) - 16.0 / 17.0).abs() < 1e-5);
        assert!((at_temperature(0.5, 0.1) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn majority_of_three_by_hand() {
        // P(at least 2 of 3) = 3 p² (1 − p) + p³; p = 0.6 → 0.432 + 0.216 = 0.648.
        assert!((majority_probability(0.6, 3) - 0.648).abs() < 1e-6);
        assert!((majority_probability(0.6, 1) - 0.6).abs() < 1e-6);
        // Voting pushes a better-than-chance verdict towards certainty.
        assert!(majority_probability(0.6, 15) > majority_probability(0.6, 5));
    }
}
