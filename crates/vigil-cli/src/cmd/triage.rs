//! `vigil triage FILE`: another scanner's findings judged true or false positive by the
//! bundle's dual head, written back into the same format. Reading and writing the formats
//! is `vigil_triage`; the verdict is `vigil_analyst::TriageCall` (precision first).

use super::analyst::open_bundle;
use super::common::bar;
use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use vigil_analyst::{AnalysisCache, AnalyzeOptions, Explain, Subject};
use vigil_triage::{
    read_path, AnnotateOptions, Format, ReadOptions, SubjectKind, TriageItem, TriageVerdict,
};

#[derive(Args, Debug)]
pub struct TriageArgs {
    /// Findings file (ZAP JSON, Burp XML, Nuclei JSONL, SARIF) or raw HTTP exchange(s):
    /// a file, or a directory of them (request, a line `---`, response).
    pub input: PathBuf,
    /// Input format (default: detected): zap, burp, nuclei, sarif, http.
    #[arg(long)]
    pub format: Option<String>,
    /// Source tree for SARIF findings whose snippet is not embedded.
    #[arg(long)]
    pub source_root: Option<PathBuf>,
    /// The bundle that judges (its http and code heads).
    #[arg(long, default_value = vigil_analyst::bundle::DEFAULT_BUNDLE)]
    pub bundle: String,
    /// Where to write the annotated findings (default: beside the input, `*.triaged.*`).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also write the summary as Markdown here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Print the verdicts as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Show the model the other scanner's finding title with the exchange (the default
    /// bundle is trained on exchanges alone, so this is off by default).
    #[arg(long)]
    pub show_finding: bool,
    /// Most answer tokens per finding (the verdict line and the reason).
    #[arg(long, default_value_t = 160)]
    pub max_tokens: usize,
    /// Worker threads sharing the model.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Do not read or write the analysis cache.
    #[arg(long)]
    pub no_cache: bool,
}

fn parse_format(s: &str) -> anyhow::Result<Format> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "zap" => Format::Zap,
        "burp" => Format::Burp,
        "nuclei" => Format::Nuclei,
        "sarif" => Format::Sarif,
        "http" | "raw" => Format::Http,
        o => bail!("--format {o}: expected zap, burp, nuclei, sarif or http"),
    })
}

/// What the model is shown for a finding; `None` when it carries no evidence at all.
pub fn subject_of(item: &TriageItem, show_finding: bool) -> Option<Subject> {
    if item.no_evidence {
        return None;
    }
    Some(match item.subject_kind() {
        SubjectKind::Code => Subject::Code {
            language: item.language().map(str::to_string),
            framework: None,
            endpoint: None,
            code: item.code.clone().unwrap_or_default(),
        },
        SubjectKind::Http => Subject::Http {
            request: item.request.clone().unwrap_or_default(),
            response: item.response.clone().unwrap_or_default(),
            finding: show_finding.then(|| item.finding_text()),
        },
    })
}

pub fn run(a: TriageArgs) -> anyhow::Result<ExitCode> {
    let format = a.format.as_deref().map(parse_format).transpose()?;
    let opts = ReadOptions {
        source_root: a.source_root.clone(),
        ..ReadOptions::default()
    };
    let report = read_path(&a.input, format, &opts)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "{}: {} findings ({})",
        a.input.display(),
        report.items.len(),
        report.format.name()
    );
    if report.items.is_empty() {
        eprintln!("nothing to triage");
    }
    let analyst = open_bundle(&a.bundle)?;
    let bundle_name = analyst
        .bundle
        .as_ref()
        .map(|b| b.manifest.name.clone())
        .unwrap_or_default();

    let subjects: Vec<Option<Subject>> = report
        .items
        .iter()
        .map(|i| subject_of(i, a.show_finding))
        .collect();
    let to_run: Vec<Subject> = subjects.iter().flatten().cloned().collect();
    let aopts = AnalyzeOptions {
        explain: Explain::Always,
        max_tokens: a.max_tokens,
        ..Default::default()
    };
    let cache = if a.no_cache {
        None
    } else {
        Some(AnalysisCache::new(AnalysisCache::default_dir()?))
    };
    let pb = bar(to_run.len() as u64, "triage");
    let mut results = analyst
        .analyze_all(&to_run, &aopts, cache.as_ref(), a.jobs, &|d, _| {
            pb.set_position(d as u64)
        })
        .into_iter();
    pb.finish_and_clear();

    let mut verdicts = Vec::new();
    let mut failed = 0;
    for (item, subject) in report.items.iter().zip(&subjects) {
        let v = match subject {
            None => TriageVerdict {
                item_id: item.id.clone(),
                true_positive: true,
                probability: 0.5,
                threshold: 0.0,
                reason: "kept: the finding carries no request, response or code to judge".into(),
                decided_by: "vigil (no evidence)".into(),
            },
            Some(subject) => match results.next().expect("one result per subject") {
                Ok(analysis) => {
                    let call = analyst.triage_call(subject, &analysis);
                    TriageVerdict {
                        item_id: item.id.clone(),
                        true_positive: call.true_positive,
                        probability: call.probability,
                        threshold: call.threshold,
                        reason: call.reason,
                        decided_by: format!("vigil bundle `{bundle_name}`: {}", call.decided_by),
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{}: finding {}: {e}", a.input.display(), item.id);
                    continue;
                }
            },
        };
        if a.json {
            println!("{}", serde_json::to_string(&v)?);
        }
        verdicts.push(v);
    }

    let out = a
        .output
        .clone()
        .unwrap_or_else(|| report.default_output_path());
    report
        .write_annotated(&verdicts, &AnnotateOptions::default(), &out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let summary = report.summary(&verdicts);
    if !a.json {
        // One line per finding (false positives first, the most certain first), then the
        // summary by rule.
        let by_id: std::collections::HashMap<&str, &TriageItem> =
            report.items.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut order: Vec<&TriageVerdict> = verdicts.iter().collect();
        let certainty = |v: &TriageVerdict| {
            if v.true_positive {
                -v.probability
            } else {
                v.probability
            }
        };
        order.sort_by(|x, y| {
            x.true_positive
                .cmp(&y.true_positive)
                .then(certainty(x).total_cmp(&certainty(y)))
        });
        for v in order {
            let Some(item) = by_id.get(v.item_id.as_str()) else {
                continue;
            };
            let word = if v.true_positive {
                "true positive "
            } else {
                "false positive"
            };
            println!(
                "{word}  p={:.2}  [{}] {} — {}",
                v.probability,
                item.rule,
                item.title,
                item.location_text()
            );
            if let Some(line) = v.reason.lines().map(str::trim).find(|l| !l.is_empty()) {
                let short: String = line.chars().take(160).collect();
                println!("    {short}");
            }
        }
        println!();
        print!("{}", summary.to_text());
    }
    if let Some(p) = &a.summary {
        std::fs::write(p, summary.to_markdown())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    eprintln!("annotated: {}", out.display());
    if failed > 0 {
        eprintln!("{failed} findings could not be analysed (left without a verdict)");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
