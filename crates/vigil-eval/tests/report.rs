mod common;

use common::record;
use vigil_eval::{
    write_charts, write_report_files, EvalOptions, EvalReport, LeakageCheck, SampleRecord,
    ScalingMetric, VariantResult,
};

/// FT-CH: 6 samples, TP 2, FP 1, TN 2, FN 1, with probabilities, types, text and lengths.
fn head_records() -> Vec<SampleRecord> {
    let rows = [
        // (label, predicted, probability, tokens)
        (true, true, 0.9, 40),
        (true, true, 0.8, 80),
        (true, false, 0.3, 100),
        (false, true, 0.7, 200),
        (false, false, 0.2, 30),
        (false, false, 0.1, 300),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(label, predicted, p, tokens))| {
            let mut r = record("FT-CH", i, label, predicted);
            r.probability = Some(p);
            r.analysis_tokens = tokens;
            r.true_type = Some(if i % 2 == 0 { "sqli" } else { "xss" }.into());
            r.predicted_type = Some("sqli".into());
            r.generated = Some(
                "## Finding\n### Vulnerability Details\nx\n### Impact\ny\n### Summary\nz".into(),
            );
            r.reference = Some("vulnerability details impact summary".into());
            r.seconds = 0.5;
            r
        })
        .collect()
}

fn report(variants: Vec<VariantResult>, synthetic: bool) -> EvalReport {
    EvalReport {
        model: "SmolLM2-135M-Instruct".into(),
        bundle: Some("bundle-1".into()),
        adapter: Some("lora-http".into()),
        head: Some("head-1".into()),
        split: "test (held out, hash split seed 0)".into(),
        n_samples: 6,
        leakage: LeakageCheck {
            passed: true,
            detail: "0 exact, 0 near duplicates across train/test".into(),
        },
        synthetic_only: synthetic,
        variants,
        notes: vec!["smoke".into()],
    }
}

#[test]
fn variant_result_from_records_matches_hand_counts() {
    let opts = EvalOptions {
        length_edges: vec![64, 128],
        budget: Some((50, 150)),
        bootstrap_resamples: 200,
        ..EvalOptions::default()
    };
    let v = VariantResult::from_records_with("FT-CH", "head", &head_records(), &opts).unwrap();
    // TP 2, FP 1, TN 2, FN 1 → precision 2/3, recall 2/3, accuracy 4/6, FPR 1/3
    assert_eq!(
        (v.counts.tp, v.counts.fp, v.counts.tn, v.counts.fn_),
        (2, 1, 2, 1)
    );
    assert!((v.scores.accuracy.unwrap() - 4.0 / 6.0).abs() < 1e-12);
    assert!((v.scores.fpr.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    // Control [50, 150]: tokens 40, 80, 100, 200, 30, 300 → 80 and 100 inside → 2/6
    assert!((v.control.unwrap().value - 2.0 / 6.0).abs() < 1e-12);
    // Buckets [0,64): 40 (TP), 30 (TN) → acc 1; [64,128): 80 (TP), 100 (FN) → acc 0.5;
    // [128,∞): 200 (FP), 300 (TN) → acc 0.5, FPR 1/2
    let accs: Vec<_> = v.by_length.iter().map(|b| b.accuracy).collect();
    assert_eq!(accs, [Some(1.0), Some(0.5), Some(0.5)]);
    assert_eq!(v.by_length[2].fpr, Some(0.5));
    // ROC-AUC: positives 0.9, 0.8, 0.3 vs negatives 0.7, 0.2, 0.1: 0.9 and 0.8 beat all 3,
    // 0.3 beats 2 → 8/9
    assert!((v.roc_auc.unwrap() - 8.0 / 9.0).abs() < 1e-6);
    // Types: sqli at i = 0, 2, 4, xss at 1, 3, 5, all predicted sqli → accuracy 3/6
    assert_eq!(v.per_class.as_ref().unwrap().accuracy, Some(0.5));
    // Every output has the four sections; text metrics exist for all six.
    let t = v.text.unwrap();
    assert_eq!((t.n_generated, t.all_sections_rate), (6, 1.0));
    assert_eq!(t.step_indicator_rate, 0.0);
    assert!((v.seconds_total - 3.0).abs() < 1e-12);
    // Sweep at t = 0.5: positive are 0.9, 0.8 (labels T, T) and 0.7 (F) → TP 2, FP 1;
    // at t = 0.9 only 0.9 → TP 1, FP 0, precision 1.
    let at = |t: f64| {
        v.threshold_sweep
            .iter()
            .find(|p| p.threshold == t)
            .unwrap()
            .metrics
    };
    assert_eq!((at(0.5).tp, at(0.5).fp), (2, 1));
    assert_eq!(
        (at(0.9).tp, at(0.9).fp, at(0.9).precision()),
        (1, 0, Some(1.0))
    );
}

#[test]
fn a_repeated_sample_id_is_an_error() {
    let recs = [record("SC", 1, true, true), record("SC", 1, true, true)];
    let err = VariantResult::from_records("SC", "", &recs).unwrap_err();
    assert!(
        err.to_string().contains("\"s1\" occurs more than once"),
        "{err}"
    );
}

#[test]
fn temperature_and_scaling_runs() {
    // Budget 64: 1 of 2 correct (0.5); budget 128: 2 of 2 (1.0) → slope 0.5/64.
    let half = [record("SC", 0, true, true), record("SC", 1, true, false)];
    let full = [record("SC", 0, true, true), record("SC", 1, false, false)];
    let v = VariantResult::from_records("SC", "", &half)
        .unwrap()
        .with_temperature_runs(&[(0.7, &full), (0.2, &half)])
        .with_scaling_runs(&[(128, &full), (64, &half)], ScalingMetric::Accuracy)
        .unwrap();
    let temps: Vec<f64> = v.temperature_points.iter().map(|t| t.temperature).collect();
    assert_eq!(temps, [0.2, 0.7], "sorted by temperature");
    assert_eq!(v.temperature_points[1].scores.accuracy, Some(1.0));
    let s = v.scaling.clone().unwrap();
    assert_eq!(s.points, [(64.0, 0.5), (128.0, 1.0)]);
    assert!((s.value.unwrap() - 0.5 / 64.0).abs() < 1e-12);
    // Two folds with accuracy 0.5 and 1.0 → 0.750 ± sd √((0.25² + 0.25²)/1) = 0.354
    let v = v.with_fold_runs(&[&half, &full]);
    let r = report(vec![v], true);
    assert!(r.to_markdown().contains("2-fold cross-validation (mean ± sd over folds): precision 1.000 ± 0.000, recall 0.750 ± 0.354, accuracy 0.750 ± 0.354"), "{}", r.to_markdown());
}

#[test]
fn markdown_states_provenance_first_and_one_row_per_variant() {
    let names = ["SC", "PE-SC", "FT-SC", "FT-PE-SC", "FT-CH", "FT-PE-CH"];
    let variants: Vec<VariantResult> = names
        .iter()
        .map(|n| VariantResult::from_records(n, "desc", &head_records()).unwrap())
        .collect();
    let md = report(variants, true).to_markdown();
    let table_at = md
        .find("| Variant | Precision | Recall | Accuracy | F1 | FPR | ECE | n |")
        .unwrap();
    for line in [
        "- Split: test (held out, hash split seed 0)",
        "- Samples: 6",
        "- Leakage check: passed",
    ] {
        let at = md
            .find(line)
            .unwrap_or_else(|| panic!("missing {line:?}\n{md}"));
        assert!(at < table_at, "{line:?} must come before the table");
    }
    assert!(md.contains("**synthetic only**"));
    for n in names {
        let rows = md
            .lines()
            .filter(|l| l.starts_with(&format!("| {n} | ")))
            .count();
        assert_eq!(rows, 1, "one table row for {n}");
    }
    // FT-CH accuracy 4/6 = 0.667 shown with its bootstrap interval.
    assert!(md.contains("| 0.667 ["), "{md}");
    assert!(md.contains("(1000 resamples, seed 0)"), "{md}");
}

#[test]
fn failed_leakage_and_undefined_values_are_visible() {
    // All-negative predictions on all-negative labels: precision 0/0 → n/a.
    let recs = [record("SC", 0, false, false), record("SC", 1, false, false)];
    let mut r = report(
        vec![VariantResult::from_records("SC", "", &recs).unwrap()],
        false,
    );
    r.leakage = LeakageCheck {
        passed: false,
        detail: "3 test samples duplicate training samples".into(),
    };
    let md = r.to_markdown();
    assert!(
        md.contains("Leakage check: **FAILED** (3 test samples"),
        "{md}"
    );
    assert!(md.contains("| SC | n/a |"), "{md}");
    assert!(!md.contains("synthetic only"));
    assert!(md.contains("SC was scored on 2 of the 6 samples"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert_eq!(json["leakage"]["passed"], false);
    assert!(json["variants"][0]["scores"]["precision"].is_null());
}

fn assert_chart_files(paths: &[std::path::PathBuf]) {
    assert_eq!(paths.len(), 10, "five charts, PNG and SVG");
    for p in paths {
        let bytes = std::fs::read(p).unwrap();
        assert!(bytes.len() > 100, "{} is too small", p.display());
        match p.extension().and_then(|e| e.to_str()) {
            Some("png") => assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", p.display()),
            Some("svg") => {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains("<svg"), "{}", p.display());
            }
            _ => panic!("unexpected chart {}", p.display()),
        }
    }
}

#[test]
fn charts_are_written_as_png_and_svg() {
    let half = [record("SC", 0, true, true), record("SC", 1, true, false)];
    let v = VariantResult::from_records("FT-CH", "", &head_records())
        .unwrap()
        .with_temperature_runs(&[(0.2, &half), (0.8, &half)])
        .with_scaling_runs(&[(64, &half), (256, &half)], ScalingMetric::Accuracy)
        .unwrap();
    let other = VariantResult::from_records("SC", "", &half).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = write_charts(&report(vec![v, other], true), dir.path()).unwrap();
    assert_chart_files(&paths);
}

#[test]
fn empty_data_draws_placeholder_charts_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let empty_variant = VariantResult::from_records("SC", "", &[]).unwrap();
    assert_eq!(empty_variant.scores.accuracy, None);
    for variants in [vec![], vec![empty_variant]] {
        let paths = write_charts(&report(variants, true), dir.path()).unwrap();
        assert_chart_files(&paths);
    }
}

#[test]
fn report_files_include_markdown_json_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval");
    let v = VariantResult::from_records("FT-CH", "", &head_records()).unwrap();
    let paths = write_report_files(&report(vec![v], true), &out).unwrap();
    assert_eq!(paths.len(), 12);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# vigil eval: SmolLM2-135M-Instruct"));
    assert!(md.contains("![variants](variants.png)"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["n_samples"], 6);
    assert_eq!(json["variants"][0]["counts"]["tp"], 2);
}
