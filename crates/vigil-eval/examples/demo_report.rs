//! Writes a report and its charts from made-up records, to look at the layout:
//! `cargo run -p vigil-eval --example demo_report -- OUT_DIR`.

use vigil_eval::{
    write_report_files, EvalOptions, EvalReport, LeakageCheck, SampleRecord, ScalingMetric,
    VariantResult,
};

/// Deterministic made-up records: variant `skill` in 0..=10 sets how often it is right.
fn records(variant: &str, skill: u64, n: u64, budget: usize) -> Vec<SampleRecord> {
    (0..n)
        .map(|i| {
            let h = (i * 2654435761 + skill * 40503) % 100;
            let label = i % 3 != 0;
            let correct = h < 50 + skill * 4;
            let p = if label == correct {
                0.55 + (h % 45) as f32 / 100.0
            } else {
                0.45 - (h % 45) as f32 / 100.0
            };
            SampleRecord {
                variant: variant.into(),
                sample_id: format!("s{i}"),
                group: format!("g{}", i / 2),
                label,
                predicted: if correct { label } else { !label },
                probability: Some(p.clamp(0.0, 1.0)),
                threshold: Some(0.5),
                true_type: Some(["xss", "sqli", "cors"][(i % 3) as usize].into()),
                predicted_type: Some(
                    ["xss", "sqli", "cors"][((i + u64::from(!correct)) % 3) as usize].into(),
                ),
                analysis_tokens: (h as usize * budget) / 60,
                generated: Some("## T\n### Vulnerability Details\n### Impact\nstep by step".into()),
                reference: Some("### Impact\nsummary".into()),
                seconds: 0.1,
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: demo_report OUT_DIR")?;
    let opts = EvalOptions {
        budget: Some((32, 256)),
        ..EvalOptions::default()
    };
    let mut variants = Vec::new();
    for (k, name) in ["SC", "PE-SC", "FT-SC", "FT-PE-SC", "FT-CH", "FT-PE-CH"]
        .iter()
        .enumerate()
    {
        let skill = k as u64 + 2;
        let recs = records(name, skill, 120, 256);
        let t: Vec<(f64, Vec<SampleRecord>)> = [0.0, 0.4, 0.8, 1.2]
            .iter()
            .enumerate()
            .map(|(j, &t)| (t, records(name, skill + 3 - j as u64, 60, 256)))
            .collect();
        let t: Vec<(f64, &[SampleRecord])> = t.iter().map(|(t, r)| (*t, r.as_slice())).collect();
        let b: Vec<(usize, Vec<SampleRecord>)> = [64, 128, 256, 512]
            .iter()
            .enumerate()
            .map(|(j, &b)| (b, records(name, skill + j as u64, 60, b)))
            .collect();
        let b: Vec<(usize, &[SampleRecord])> = b.iter().map(|(b, r)| (*b, r.as_slice())).collect();
        variants.push(
            VariantResult::from_records_with(name, "made-up records", &recs, &opts)?
                .with_temperature_runs(&t)
                .with_scaling_runs(&b, ScalingMetric::Accuracy)?,
        );
    }
    let report = EvalReport {
        model: "demo".into(),
        bundle: None,
        adapter: None,
        head: None,
        split: "demo (made-up records)".into(),
        n_samples: 120,
        leakage: LeakageCheck {
            passed: true,
            detail: "not run (demo)".into(),
        },
        synthetic_only: true,
        variants,
        notes: vec![],
    };
    for p in write_report_files(&report, std::path::Path::new(&dir))? {
        println!("{}", p.display());
    }
    Ok(())
}
