//! `vigil eval`: the second seed's six variants (SC … FT-PE-CH) on one held-out split, plus
//! the dual head with generated analyses (control, length, report-text metrics), the
//! temperature sweep, self-consistency scaling, k-fold and the seed's 80/20 estimate of the
//! head. The model runs here (`vigil_analyst::eval`); every metric, the report and the
//! charts come from `vigil_eval`.

use super::analyst::{feature_cache, open_bundle};
use super::common::bar;
use anyhow::{bail, Context};
use clap::Args;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vigil_analyst::eval::{
    at_temperature, score_variant, seed_variants, EvalItem, Scorer, VariantHeads, VariantScores,
};
use vigil_analyst::heads::{kind_of_task, train_heads, HeadJob};
use vigil_analyst::{AnalysisCache, Analyst, AnalyzeOptions, Explain, PromptForm};
use vigil_data::{Filter, Split, Store};
use vigil_eval::{
    holdout_split_by_group, k_fold_by_group, write_jsonl, write_report_files, EvalOptions,
    EvalReport, LeakageCheck, SampleRecord, ScalingMetric, VariantResult, SEED_TEST_FRACTION,
};
use vigil_head::{cross_validate, HeadFile, HeadTrainConfig};

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Dataset store (SQLite) with train, valid and test splits.
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
    pub db: PathBuf,
    /// The bundle to evaluate (its adapter and heads).
    #[arg(long, default_value = vigil_analyst::bundle::DEFAULT_BUNDLE)]
    pub bundle: String,
    /// Task: code or http.
    #[arg(long, default_value = "code")]
    pub task: String,
    /// Evaluate at most this many samples of the test split (the first by id).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Variants to run (comma-separated): SC, PE-SC, FT-SC, FT-PE-SC, FT-CH, FT-PE-CH.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "SC,PE-SC,FT-SC,FT-PE-SC,FT-CH,FT-PE-CH"
    )]
    pub variants: Vec<String>,
    /// Directory for report.md, report.json, samples.jsonl and the charts.
    #[arg(long, default_value = "vigil-eval")]
    pub out: PathBuf,
    /// Generate the dual head's analysis for this many test samples (0: none).
    #[arg(long, default_value_t = 24)]
    pub generate: usize,
    /// Analysis-token budget MIN:MAX for the generated analyses (the Control metric).
    #[arg(long, default_value = "24:160")]
    pub budget: String,
    /// Temperatures at which the verdict word is sampled (verdict-token variants).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1,1.5,2")]
    pub temperatures: Vec<f64>,
    /// Self-consistency vote sizes for the Scaling metric (FT-PE-SC, verdict sampled at T=1).
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,9")]
    pub votes: Vec<usize>,
    /// k of the head's k-fold estimate (0: skip k-fold and the 80/20 estimate).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// At most this many samples per split for training heads (plain-prompt head, k-fold).
    #[arg(long, default_value_t = 150)]
    pub head_samples: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the variants' numbers into the bundle's manifest as its eval summary.
    #[arg(long)]
    pub record_in_bundle: bool,
}

pub fn run(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let report = evaluate(&a)?;
    let md = a.out.join("report.md");
    eprintln!("report: {}", md.display());
    print_table(&report);
    Ok(ExitCode::SUCCESS)
}

pub fn print_table(report: &EvalReport) {
    let f = |v: Option<f64>| v.map_or("  —  ".to_string(), |v| format!("{v:.3}"));
    eprintln!(
        "{:<28} {:>5} {:>9} {:>7} {:>8} {:>6} {:>6}",
        "variant", "n", "precision", "recall", "accuracy", "F1", "FPR"
    );
    for v in &report.variants {
        let s = &v.scores;
        eprintln!(
            "{:<28} {:>5} {:>9} {:>7} {:>8} {:>6} {:>6}",
            v.name,
            v.n,
            f(s.precision),
            f(s.recall),
            f(s.accuracy),
            f(s.f1),
            f(s.fpr)
        );
    }
}

fn parse_budget(s: &str) -> anyhow::Result<(usize, usize)> {
    let (lo, hi) = s
        .split_once(':')
        .with_context(|| format!("--budget {s}: expected MIN:MAX, e.g. 24:160"))?;
    let (lo, hi): (usize, usize) = (lo.trim().parse()?, hi.trim().parse()?);
    if lo > hi || hi == 0 {
        bail!("--budget {s}: MIN must not exceed MAX, and MAX must be positive");
    }
    Ok((lo, hi))
}

/// Runs the evaluation and writes its files under `a.out`; returns the report.
pub fn evaluate(a: &EvalArgs) -> anyhow::Result<EvalReport> {
    let budget = parse_budget(&a.budget)?;
    let known: Vec<_> = seed_variants();
    for v in &a.variants {
        if !known.iter().any(|k| k.name.eq_ignore_ascii_case(v)) {
            bail!("unknown variant `{v}` (SC, PE-SC, FT-SC, FT-PE-SC, FT-CH, FT-PE-CH)");
        }
    }
    let specs: Vec<_> = known
        .into_iter()
        .filter(|k| a.variants.iter().any(|v| k.name.eq_ignore_ascii_case(v)))
        .collect();

    let mut analyst = open_bundle(&a.bundle)?;
    let bundle_name = analyst
        .bundle
        .as_ref()
        .map(|b| b.manifest.name.clone())
        .unwrap_or_default();
    let adapter = analyst.adapter_for(&a.task).map(str::to_string);
    let pe_heads = analyst.head(&a.task, "verdict").cloned();
    let pe_type = analyst.head(&a.task, "vuln_type").cloned();
    let store = Store::open_existing(&a.db)
        .with_context(|| format!("cannot open the dataset {}", a.db.display()))?;
    let test = store.samples(&Filter {
        split: Some(Split::Test),
        kind: Some(kind_of_task(&a.task)?),
        limit: a.limit,
    })?;
    let items: Vec<EvalItem> = test.iter().filter_map(EvalItem::of_sample).collect();
    if items.is_empty() {
        bail!(
            "{}: no {} samples in the test split; run `vigil data split` first",
            a.db.display(),
            a.task
        );
    }
    let synthetic_only = test.iter().all(|s| s.source.starts_with("generate"));
    eprintln!(
        "eval: bundle `{bundle_name}`, {} {} test samples{}",
        items.len(),
        a.task,
        if synthetic_only { " (synthetic)" } else { "" }
    );
    let leakage = leakage_check(&store)?;
    eprintln!("leakage: {}", leakage.detail);

    let cache = feature_cache()?;
    // Control only means something for variants that generate an analysis; the others
    // are scored without a budget.
    let opts = EvalOptions {
        seed: a.seed,
        budget: None,
        // vigil's answers are a verdict line and prose, not the seed's Markdown report;
        // the report-text metrics that need no headings (overlap, Jaccard, step
        // indicators) still apply, and the answer's own structure is checked below.
        expected_sections: vec![],
        ..EvalOptions::default()
    };
    let mut all_records: Vec<SampleRecord> = Vec::new();
    let mut variants = Vec::new();
    let mut notes = Vec::new();
    let mut plain_heads: Option<(HeadFile, Option<HeadFile>)> = None;

    for spec in &specs {
        let heads = match (spec.scorer, spec.form) {
            (Scorer::VerdictToken, _) => None,
            (Scorer::Head, PromptForm::Engineered) => {
                let Some(h) = &pe_heads else {
                    notes.push(format!(
                        "{}: skipped, the bundle has no {} verdict head",
                        spec.name, a.task
                    ));
                    continue;
                };
                Some(VariantHeads {
                    verdict: h,
                    vuln_type: pe_type.as_ref(),
                })
            }
            (Scorer::Head, PromptForm::Plain) => {
                let Some(h) = &pe_heads else {
                    notes.push(format!(
                        "{}: skipped, the bundle has no {} verdict head to copy the feature \
                         spec from",
                        spec.name, a.task
                    ));
                    continue;
                };
                if plain_heads.is_none() {
                    eprintln!("{}: training heads on plain-prompt features", spec.name);
                    plain_heads = Some(train_plain_heads(&analyst, &store, a, h)?);
                }
                let (v, t) = plain_heads.as_ref().expect("just trained");
                Some(VariantHeads {
                    verdict: v,
                    vuln_type: t.as_ref(),
                })
            }
        };
        if spec.adapter && adapter.is_none() {
            notes.push(format!(
                "{}: skipped, the bundle has no {} adapter",
                spec.name, a.task
            ));
            continue;
        }
        let pb = bar(items.len() as u64, spec.name);
        let scores = score_variant(
            &analyst,
            &items,
            spec,
            adapter.as_deref(),
            heads,
            &cache,
            &mut |d| pb.set_position(d as u64),
        )?;
        pb.finish_and_clear();
        let records = records_of(&items, &scores);
        let mut result =
            VariantResult::from_records_with(spec.name, spec.description, &records, &opts)?;
        if spec.scorer == Scorer::VerdictToken {
            let runs = temperature_runs(&items, &scores, &a.temperatures, a.seed);
            let refs: Vec<(f64, &[SampleRecord])> =
                runs.iter().map(|(t, r)| (*t, r.as_slice())).collect();
            result = result.with_temperature_runs(&refs);
            if spec.name == "FT-PE-SC" && a.votes.len() >= 2 {
                let runs = vote_runs(&items, &scores, &a.votes, a.seed);
                let refs: Vec<(usize, &[SampleRecord])> =
                    runs.iter().map(|(n, r)| (*n, r.as_slice())).collect();
                result = result.with_scaling_runs(&refs, ScalingMetric::Accuracy)?;
            }
        }
        eprintln!(
            "{:<9} precision {} recall {} accuracy {} ({:.0}s)",
            spec.name,
            fmt(result.scores.precision),
            fmt(result.scores.recall),
            fmt(result.scores.accuracy),
            scores.seconds
        );
        all_records.extend(records);
        variants.push(result);
    }

    if a.generate > 0 && pe_heads.is_some() {
        let gen_opts = EvalOptions {
            budget: Some(budget),
            ..opts.clone()
        };
        let (result, records, structure) = generated_analyses(
            &analyst,
            &items[..a.generate.min(items.len())],
            budget,
            &gen_opts,
        )?;
        notes.push(structure);
        all_records.extend(records);
        variants.push(result);
    }

    if a.folds > 0 {
        if let Some(h) = &pe_heads {
            match head_estimates(&mut analyst, &store, a, h, &opts) {
                Ok(v) => variants.extend(v),
                Err(e) => notes.push(format!("k-fold / 80-20 estimates skipped: {e:#}")),
            }
        }
    }

    if specs.iter().any(|s| s.name == "FT-PE-SC") && a.votes.len() >= 2 {
        notes.push(
            "Scaling (FT-PE-SC): the budget axis is the number of self-consistency votes \
             (verdict word sampled at T = 1, majority wins), not analysis tokens: vigil's \
             verdict line comes before the analysis, so analysis length cannot change it."
                .into(),
        );
    }
    if a.folds > 0 {
        notes.push(format!(
            "The {}-fold and 80/20 rows pool up to {} samples of each split (train, valid and \
             test) and retrain the head per fold; their n is larger than the test split's.",
            a.folds, a.head_samples
        ));
    }
    let report = EvalReport {
        model: analyst
            .bundle
            .as_ref()
            .map(|b| b.manifest.base_model.spec.clone())
            .unwrap_or_else(|| analyst.model_id.clone()),
        bundle: Some(bundle_name),
        adapter: adapter.clone(),
        head: pe_heads.as_ref().map(|h| h.meta.name.clone()),
        split: format!(
            "test ({} task, group-hash split of {})",
            a.task,
            a.db.display()
        ),
        n_samples: items.len(),
        leakage,
        synthetic_only,
        variants,
        notes,
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    write_report_files(&report, &a.out)?;
    write_jsonl(&a.out.join("samples.jsonl"), &all_records)?;
    if a.record_in_bundle {
        record_in_bundle(&analyst, &report, &a.task, &a.out)?;
    }
    Ok(report)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.3}"))
}

/// Near-duplicates across splits, from vigil-data's check.
fn leakage_check(store: &Store) -> anyhow::Result<LeakageCheck> {
    let r = vigil_data::check::check(
        store,
        &Default::default(),
        &vigil_data::tokens::ApproxTokenCounter,
        |_, _, _| {},
    )?;
    let rate = r.leakage_rate();
    Ok(LeakageCheck {
        passed: rate == 0.0,
        detail: format!(
            "{:.2}% of samples have an exact or near duplicate in another split",
            rate * 100.0
        ),
    })
}

fn records_of(items: &[EvalItem], s: &VariantScores) -> Vec<SampleRecord> {
    let per = s.seconds / items.len().max(1) as f64;
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let p = s.probabilities[i];
            SampleRecord {
                variant: s.name.clone(),
                sample_id: it.id.clone(),
                group: it.group.clone(),
                label: it.label,
                predicted: p >= s.threshold,
                probability: Some(p),
                threshold: Some(s.threshold),
                // Type accuracy is measured on the truly vulnerable samples.
                true_type: it.true_type.clone(),
                predicted_type: s.predicted_types[i]
                    .clone()
                    .filter(|_| it.true_type.is_some()),
                analysis_tokens: 0,
                generated: None,
                reference: None,
                seconds: per,
            }
        })
        .collect()
}

/// The verdict word sampled at each temperature from the variant's own two-way verdict
/// distribution (one seeded draw per sample), as generation at that temperature would.
fn temperature_runs(
    items: &[EvalItem],
    s: &VariantScores,
    temperatures: &[f64],
    seed: u64,
) -> Vec<(f64, Vec<SampleRecord>)> {
    temperatures
        .iter()
        .map(|&t| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ t.to_bits());
            let mut recs = records_of(items, s);
            for (r, &p) in recs.iter_mut().zip(&s.probabilities) {
                let pt = at_temperature(p, t as f32);
                r.predicted = rng.random::<f32>() < pt;
                r.probability = Some(pt);
            }
            (t, recs)
        })
        .collect()
}

/// Self-consistency at T = 1 with `n` votes: the majority of `n` sampled verdict words.
fn vote_runs(
    items: &[EvalItem],
    s: &VariantScores,
    votes: &[usize],
    seed: u64,
) -> Vec<(usize, Vec<SampleRecord>)> {
    votes
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(n as u64));
            let mut recs = records_of(items, s);
            for (r, &p) in recs.iter_mut().zip(&s.probabilities) {
                let yes = (0..n).filter(|_| rng.random::<f32>() < p).count();
                r.predicted = 2 * yes > n;
                r.probability = Some(yes as f32 / n as f32);
            }
            (n, recs)
        })
        .collect()
}

fn train_plain_heads(
    analyst: &Analyst,
    store: &Store,
    a: &EvalArgs,
    pe: &HeadFile,
) -> anyhow::Result<(HeadFile, Option<HeadFile>)> {
    let job = HeadJob {
        task: a.task.clone(),
        form: PromptForm::Plain,
        spec: pe.meta.features.clone(),
        adapter_id: pe.meta.adapter_id.clone(),
        train: HeadTrainConfig {
            seed: a.seed,
            shape: pe.meta.shape.clone(),
            ..Default::default()
        },
        target_precision: pe.meta.thresholds.target_precision,
        limit: Some(a.head_samples),
        name: format!("{}-plain", a.task),
    };
    let pb = bar(0, "plain features");
    let h = train_heads(
        analyst,
        store,
        &job,
        &feature_cache()?,
        &mut |stage, d, n| {
            pb.set_message(stage.to_string());
            pb.set_length(n as u64);
            pb.set_position(d as u64);
        },
    )?;
    pb.finish_and_clear();
    Ok((h.verdict, h.vuln_type))
}

/// The dual head as the scanner runs it: the head's verdict plus a generated analysis
/// inside the token budget. Returns the variant, its records and a note on answer structure.
fn generated_analyses(
    analyst: &Analyst,
    items: &[EvalItem],
    budget: (usize, usize),
    opts: &EvalOptions,
) -> anyhow::Result<(VariantResult, Vec<SampleRecord>, String)> {
    let name = "FT-PE-CH + analysis";
    let subjects: Vec<_> = items.iter().map(|i| i.subject.clone()).collect();
    let aopts = AnalyzeOptions {
        form: PromptForm::Engineered,
        explain: Explain::Always,
        min_tokens: budget.0,
        max_tokens: budget.1,
        ..Default::default()
    };
    let pb = bar(items.len() as u64, "analyses");
    let cache = AnalysisCache::new(AnalysisCache::default_dir()?);
    let results = analyst.analyze_all(&subjects, &aopts, Some(&cache), 1, &|d, _| {
        pb.set_position(d as u64)
    });
    pb.finish_and_clear();
    let mut records = Vec::new();
    let (mut parsed, mut with_reason, mut fixed_when_vulnerable, mut vulnerable) = (0, 0, 0, 0);
    for (it, r) in items.iter().zip(results) {
        let an = r?;
        if vigil_data::prompt::parse_verdict_line(&an.text).is_some() {
            parsed += 1;
        }
        if !an.reason.trim().is_empty() {
            with_reason += 1;
        }
        if an.vulnerable {
            vulnerable += 1;
            if an.fixed_code.is_some() {
                fixed_when_vulnerable += 1;
            }
        }
        records.push(SampleRecord {
            variant: name.into(),
            sample_id: it.id.clone(),
            group: it.group.clone(),
            label: it.label,
            predicted: an.vulnerable,
            probability: an.probability,
            threshold: an.threshold,
            true_type: it.true_type.clone(),
            predicted_type: an.vuln_type.clone().filter(|_| it.true_type.is_some()),
            analysis_tokens: an.answer_tokens,
            generated: Some(an.text.clone()),
            reference: Some(it.reference.clone()),
            seconds: an.seconds,
        });
    }
    let n = items.len();
    let note = format!(
        "{name}: answer structure over {n} generated answers — verdict line parses {parsed}/{n}, \
         reason present {with_reason}/{n}, fixed code in {fixed_when_vulnerable}/{vulnerable} \
         vulnerable answers; budget {}–{} answer tokens",
        budget.0, budget.1
    );
    let result = VariantResult::from_records_with(
        name,
        "dual head: head verdict + generated analysis within the token budget",
        &records,
        opts,
    )?;
    Ok((result, records, note))
}

/// k-fold and the seed's 80/20 estimates of the engineered-prompt head, on cached features
/// of every split (the same feature spec and adapter as the bundle's head).
fn head_estimates(
    analyst: &mut Analyst,
    store: &Store,
    a: &EvalArgs,
    pe: &HeadFile,
    opts: &EvalOptions,
) -> anyhow::Result<Vec<VariantResult>> {
    let mut samples = Vec::new();
    for split in [Split::Train, Split::Valid, Split::Test] {
        samples.extend(store.samples(&Filter {
            split: Some(split),
            kind: Some(kind_of_task(&a.task)?),
            limit: Some(a.head_samples),
        })?);
    }
    let items: Vec<EvalItem> = samples.iter().filter_map(EvalItem::of_sample).collect();
    let prompts: Vec<_> = items
        .iter()
        .map(|i| i.subject.messages(PromptForm::Engineered))
        .collect();
    let pb = bar(prompts.len() as u64, "k-fold features");
    let (x, _) = analyst.features(
        &prompts,
        &pe.meta.features,
        pe.meta.adapter_id.as_deref(),
        &feature_cache()?,
        &mut |d| pb.set_position(d as u64),
    )?;
    pb.finish_and_clear();
    let ids: Vec<String> = (0..items.len()).map(|i| i.to_string()).collect();
    let groups: Vec<String> = items.iter().map(|i| i.group.clone()).collect();
    let labels: Vec<bool> = items.iter().map(|i| i.label).collect();
    let cfg = HeadTrainConfig {
        seed: a.seed,
        shape: pe.meta.shape.clone(),
        ..Default::default()
    };
    let target = pe.meta.thresholds.target_precision;
    let mut out = Vec::new();

    let folds = k_fold_by_group(&ids, &groups, a.folds, a.seed)?;
    let mut fold_of = vec![0usize; items.len()];
    for (f, fold) in folds.iter().enumerate() {
        for id in &fold.test {
            fold_of[id.parse::<usize>()?] = f;
        }
    }
    let preds = cross_validate(&x, &labels, &fold_of, &cfg, target)?;
    let name = format!("FT-PE-CH {}-fold", a.folds);
    let recs = fold_records(&name, &items, &preds);
    let per_fold: Vec<Vec<SampleRecord>> = (0..a.folds)
        .map(|f| {
            recs.iter()
                .zip(&preds)
                .filter(|(_, p)| p.fold == f)
                .map(|(r, _)| r.clone())
                .collect()
        })
        .collect();
    let fold_refs: Vec<&[SampleRecord]> = per_fold.iter().map(|v| v.as_slice()).collect();
    out.push(
        VariantResult::from_records_with(
            &name,
            "verdict head, k-fold by group over train+valid+test features (each fold held \
             out once; the next fold validates)",
            &recs,
            opts,
        )?
        .with_fold_runs(&fold_refs),
    );

    // The seed's 80/20: train on 80 % (an eighth of it, by group, held back for early
    // stopping and the threshold), test on the other 20 %.
    let split = holdout_split_by_group(&ids, &groups, SEED_TEST_FRACTION, a.seed)?;
    let index = |v: &[String]| -> anyhow::Result<Vec<usize>> {
        v.iter().map(|id| Ok(id.parse::<usize>()?)).collect()
    };
    let train_all = index(&split.train)?;
    let train_groups: Vec<String> = train_all.iter().map(|&i| groups[i].clone()).collect();
    let inner = holdout_split_by_group(&split.train, &train_groups, 0.125, a.seed ^ 1)?;
    let (tr, va, te) = (
        index(&inner.train)?,
        index(&inner.test)?,
        index(&split.test)?,
    );
    let rows = |ix: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
        ix.iter()
            .map(|&i| (x[i].clone(), labels[i] as usize))
            .unzip()
    };
    let ((tx, ty), (vx, vy), (hx, _)) = (rows(&tr), rows(&va), rows(&te));
    let (head, _) = vigil_head::train_head(&tx, &ty, &vx, &vy, 2, &cfg)?;
    let vp: Vec<f32> = head.probabilities(&vx)?.iter().map(|p| p[1]).collect();
    let vl: Vec<bool> = vy.iter().map(|&y| y == 1).collect();
    let threshold = vigil_head::Thresholds::calibrate(&vp, &vl, target).chosen;
    let sub_preds: Vec<vigil_head::FoldPrediction> = head
        .probabilities(&hx)?
        .iter()
        .map(|p| vigil_head::FoldPrediction {
            fold: 0,
            probability: p[1],
            threshold,
        })
        .collect();
    let sub_items: Vec<EvalItem> = te.iter().map(|&i| items[i].clone()).collect();
    let name = "FT-PE-CH 80/20".to_string();
    let recs = fold_records(&name, &sub_items, &sub_preds);
    out.push(VariantResult::from_records_with(
        &name,
        "verdict head, the seed's 80/20 split by group",
        &recs,
        opts,
    )?);
    Ok(out)
}

fn fold_records(
    name: &str,
    items: &[EvalItem],
    preds: &[vigil_head::FoldPrediction],
) -> Vec<SampleRecord> {
    items
        .iter()
        .zip(preds)
        .map(|(it, p)| SampleRecord {
            variant: name.to_string(),
            sample_id: it.id.clone(),
            group: it.group.clone(),
            label: it.label,
            predicted: p.probability >= p.threshold,
            probability: Some(p.probability),
            threshold: Some(p.threshold),
            true_type: None,
            predicted_type: None,
            analysis_tokens: 0,
            generated: None,
            reference: None,
            seconds: 0.0,
        })
        .collect()
}

fn record_in_bundle(
    analyst: &Analyst,
    report: &EvalReport,
    task: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let Some(b) = &analyst.bundle else {
        return Ok(());
    };
    let mut b = b.clone();
    // Rows of other tasks (or of the quickstart's own head check) stay; this task's rows
    // are replaced.
    let mut metrics = b
        .manifest
        .eval
        .as_ref()
        .map(|e| e.metrics.clone())
        .unwrap_or_default();
    for v in &report.variants {
        let mut row = std::collections::BTreeMap::new();
        for (k, val) in [
            ("precision", v.scores.precision),
            ("recall", v.scores.recall),
            ("accuracy", v.scores.accuracy),
            ("f1", v.scores.f1),
            ("fpr", v.scores.fpr),
        ] {
            if let Some(val) = val {
                row.insert(k.to_string(), val);
            }
        }
        metrics.insert(format!("{} ({})", v.name, task), row);
    }
    // The report travels with the bundle: copied into `<bundle>/eval/`.
    let dest = b.dir.join("eval");
    std::fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    for e in std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))? {
        let p = e?.path();
        if p.is_file() {
            let to = dest.join(p.file_name().expect("a file has a name"));
            std::fs::copy(&p, &to)
                .with_context(|| format!("cannot copy {} to {}", p.display(), to.display()))?;
        }
    }
    b.manifest.eval = Some(vigil_analyst::bundle::EvalSummary {
        report: Some("eval/report.md".into()),
        split: report.split.clone(),
        samples: report.n_samples,
        leakage: report.leakage.detail.clone(),
        metrics,
    });
    b.save()?;
    Ok(())
}
