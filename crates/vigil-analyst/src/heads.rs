//! Training a task's heads from the dataset store: features of the train and valid splits
//! (cached), a binary verdict head with its precision-first threshold, and a multi-class
//! vulnerability-type head on the vulnerable samples.

use crate::analyst::Analyst;
use crate::error::{AnalystError, Result};
use crate::subject::{PromptForm, Subject};
use std::collections::BTreeMap;
use vigil_data::{Filter, Sample, SampleKind, Split, Store};
use vigil_head::{
    train_head, FeatureCache, FeatureSpec, HeadFile, HeadMeta, HeadTrainConfig, Thresholds,
};

/// What to train.
#[derive(Debug, Clone)]
pub struct HeadJob {
    /// `code` or `http`.
    pub task: String,
    pub form: PromptForm,
    pub spec: FeatureSpec,
    /// Identity of the adapter named in `spec` (for cache keys and the head's record).
    pub adapter_id: Option<String>,
    pub train: HeadTrainConfig,
    pub target_precision: f32,
    /// Use at most this many samples per split (the first by id), for quick runs.
    pub limit: Option<usize>,
    pub name: String,
}

/// The result: the heads and their validation numbers.
pub struct TrainedHeads {
    pub verdict: HeadFile,
    pub vuln_type: Option<HeadFile>,
    pub feature_seconds: f64,
    pub computed_features: usize,
}

pub fn kind_of_task(task: &str) -> Result<SampleKind> {
    match task {
        "code" => Ok(SampleKind::Code),
        "http" => Ok(SampleKind::HttpPair),
        o => Err(AnalystError::Invalid(format!(
            "unknown task `{o}` (code | http)"
        ))),
    }
}

fn split_samples(
    store: &Store,
    task: &str,
    split: Split,
    limit: Option<usize>,
) -> Result<Vec<Sample>> {
    let s = store.samples(&Filter {
        split: Some(split),
        kind: Some(kind_of_task(task)?),
        limit,
    })?;
    Ok(s)
}

pub fn train_heads(
    analyst: &Analyst,
    store: &Store,
    job: &HeadJob,
    cache: &FeatureCache,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<TrainedHeads> {
    let train = split_samples(store, &job.task, Split::Train, job.limit)?;
    let valid = split_samples(store, &job.task, Split::Valid, job.limit)?;
    if train.is_empty() || valid.is_empty() {
        return Err(AnalystError::Invalid(format!(
            "{}: the {} task needs samples in the train and valid splits (found {} and {}); \
             run `vigil data generate` and `vigil data split`",
            store.path().display(),
            job.task,
            train.len(),
            valid.len()
        )));
    }
    let start = std::time::Instant::now();
    let mut computed = 0;
    let mut feats = |samples: &[Sample], label: &str| -> Result<Vec<Vec<f32>>> {
        let prompts: Vec<_> = samples
            .iter()
            .filter_map(Subject::of_sample)
            .map(|s| s.messages(job.form))
            .collect();
        let n = prompts.len();
        let (f, c) = analyst.features(
            &prompts,
            &job.spec,
            job.adapter_id.as_deref(),
            cache,
            &mut |d| progress(label, d, n),
        )?;
        computed += c;
        Ok(f)
    };
    let tx = feats(&train, "train features")?;
    let vx = feats(&valid, "valid features")?;
    let feature_seconds = start.elapsed().as_secs_f64();

    let ty: Vec<usize> = train.iter().map(|s| s.is_vulnerable as usize).collect();
    let vy: Vec<usize> = valid.iter().map(|s| s.is_vulnerable as usize).collect();
    let (head, report) = train_head(&tx, &ty, &vx, &vy, 2, &job.train)?;
    let vp: Vec<f32> = head.probabilities(&vx)?.iter().map(|p| p[1]).collect();
    let labels: Vec<bool> = vy.iter().map(|&y| y == 1).collect();
    let thresholds = Thresholds::calibrate(&vp, &labels, job.target_precision);
    let clean_scores: Vec<f32> = vp.iter().map(|p| 1.0 - p).collect();
    let clean_labels: Vec<bool> = labels.iter().map(|l| !l).collect();
    let clean_thresholds =
        Thresholds::calibrate(&clean_scores, &clean_labels, job.target_precision);
    let validation = confusion_json(&vp, &labels, thresholds.chosen);
    let meta = |name: String, target: &str, classes: Vec<String>| HeadMeta {
        name,
        target: target.into(),
        classes,
        input_dim: tx[0].len(),
        shape: job.train.shape.clone(),
        features: job.spec.clone(),
        model_id: analyst.model_id.clone(),
        adapter_id: job.adapter_id.clone(),
        task: job.task.clone(),
        thresholds: Thresholds::default(),
        clean_thresholds: None,
        training: Default::default(),
        validation: serde_json::Value::Null,
    };
    let mut vm = meta(
        format!("{}-verdict", job.name),
        "verdict",
        vec!["clean".into(), "vulnerable".into()],
    );
    vm.thresholds = thresholds;
    vm.clean_thresholds = Some(clean_thresholds);
    vm.training = report;
    vm.validation = validation;
    let verdict = HeadFile { meta: vm, head };

    // The type head: vulnerable samples of types seen at least twice in training.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in train.iter().filter(|s| s.is_vulnerable) {
        if let Some(t) = &s.vuln_type {
            *counts.entry(t.clone()).or_default() += 1;
        }
    }
    let classes: Vec<String> = counts
        .into_iter()
        .filter(|(_, c)| *c >= 2)
        .map(|(t, _)| t)
        .collect();
    let pick = |samples: &[Sample], x: &[Vec<f32>]| -> (Vec<Vec<f32>>, Vec<usize>) {
        samples
            .iter()
            .zip(x)
            .filter(|(s, _)| s.is_vulnerable)
            .filter_map(|(s, f)| {
                let t = s.vuln_type.as_ref()?;
                classes.iter().position(|c| c == t).map(|i| (f.clone(), i))
            })
            .unzip()
    };
    let (ttx, tty) = pick(&train, &tx);
    let (tvx, tvy) = pick(&valid, &vx);
    let vuln_type = if classes.len() >= 2 && !tvx.is_empty() {
        let (head, report) = train_head(&ttx, &tty, &tvx, &tvy, classes.len(), &job.train)?;
        let p = head.probabilities(&tvx)?;
        let correct = p
            .iter()
            .zip(&tvy)
            .filter(|(p, &y)| {
                p.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
                    == Some(y)
            })
            .count();
        let mut m = meta(format!("{}-type", job.name), "vuln_type", classes);
        m.training = report;
        m.validation = serde_json::json!({
            "samples": tvy.len(),
            "accuracy": correct as f64 / tvy.len() as f64,
        });
        Some(HeadFile { meta: m, head })
    } else {
        None
    };
    Ok(TrainedHeads {
        verdict,
        vuln_type,
        feature_seconds,
        computed_features: computed,
    })
}

/// Confusion counts and the usual rates at a threshold, for a head's record.
pub fn confusion_json(scores: &[f32], labels: &[bool], threshold: f32) -> serde_json::Value {
    let (mut tp, mut fp, mut tn, mut fn_) = (0usize, 0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    let div = |a: usize, b: usize| {
        if b == 0 {
            None
        } else {
            Some(a as f64 / b as f64)
        }
    };
    serde_json::json!({
        "samples": scores.len(),
        "threshold": threshold,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn_,
        "precision": div(tp, tp + fp),
        "recall": div(tp, tp + fn_),
        "accuracy": div(tp + tn, scores.len()),
        "fpr": div(fp, fp + tn),
    })
}
