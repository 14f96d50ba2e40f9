//! `vigil scan PATH`: discover the endpoints and other code units of a repository
//! (`vigil_scan`), analyse each with the bundle's dual head (`vigil_analyst`, cached and
//! parallel), and report findings as text, JSON, SARIF or Markdown (`vigil_findings`), with
//! a baseline and `--fail-on` for CI.

use super::analyst::open_bundle;
use super::common::bar;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};
use vigil_analyst::{Analysis, AnalysisCache, Analyst, AnalyzeOptions, Explain, Subject};
use vigil_findings::{
    exit_code, Baseline, BundleInfo, Endpoint, FailOn, Finding, Location, OutputFormat, ScanReport,
    Skipped, ToolInfo,
};
use vigil_scan::{CodeUnit, DiscoveryOptions, UnitKind};
use vigil_taxonomy::Taxonomy;

#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// Repository or directory to scan (a single file works too).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The bundle that analyses (default: the one `vigil quickstart` made).
    #[arg(long, default_value = vigil_analyst::bundle::DEFAULT_BUNDLE)]
    pub bundle: String,
    /// Output format: text, json, sarif, markdown.
    #[arg(long, short, default_value = "text")]
    pub format: String,
    /// Write the report here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Exit with 1 when a finding is at or above this severity: none, low, medium, high,
    /// critical. Errors exit with 2.
    #[arg(long, default_value = "none")]
    pub fail_on: String,
    /// Suppress findings whose fingerprints this baseline file accepts.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Write (or merge into) a baseline accepting every finding of this scan.
    #[arg(long)]
    pub write_baseline: Option<PathBuf>,
    /// Skip paths matching these globs (on top of .gitignore and .ignore).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_file_size: u64,
    /// When to write the reason and fixed code: vulnerable (default), always, never.
    #[arg(long, default_value = "vulnerable")]
    pub explain: String,
    /// Most answer tokens per unit (verdict line, reason and fixed code).
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Worker threads sharing the model.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Do not read or write the analysis cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Colour in text output: auto, always, never.
    #[arg(long, default_value = "auto")]
    pub color: String,
}

fn parse_explain(s: &str) -> anyhow::Result<Explain> {
    Ok(match s {
        "vulnerable" => Explain::Vulnerable,
        "always" => Explain::Always,
        "never" => Explain::Never,
        o => anyhow::bail!("--explain {o}: expected vulnerable, always or never"),
    })
}

/// What the model is asked about a unit: its code (with the imports or class header it
/// needs, when discovery found them) and, for an endpoint, its method and route.
pub fn subject_of(unit: &CodeUnit) -> Subject {
    let code = if unit.context.trim().is_empty() {
        unit.code.clone()
    } else {
        format!("{}\n\n{}", unit.context.trim_end(), unit.code)
    };
    let endpoint = match &unit.kind {
        UnitKind::Endpoint { method, route, .. } => Some(format!("{method} {route}")),
        _ => None,
    };
    Subject::Code {
        language: Some(unit.language.to_string()),
        framework: unit.framework.clone(),
        endpoint,
        code,
    }
}

/// The finding for a unit the model judged vulnerable; `None` for a clean verdict.
pub fn finding_of(unit: &CodeUnit, a: &Analysis, tax: &Taxonomy) -> Option<Finding> {
    if !a.vulnerable {
        return None;
    }
    let vuln = a
        .vuln_type
        .as_deref()
        .and_then(|t| tax.by_id(t).or_else(|| tax.resolve(t)))?;
    let location = Location::new(&unit.path, unit.start_line as u32, unit.end_line as u32);
    let mut f = Finding::new(vuln, location, &unit.code, &unit.language.to_string());
    if let Some(s) = a.severity {
        f.severity = s;
    }
    if let Some(cwe) = a.cwe {
        f.cwe = Some(cwe);
    }
    f.confidence = a.confidence;
    f.probability = a.probability;
    f.framework = unit.framework.clone();
    f.reason = a.reason.trim().to_string();
    f.fixed_code = a.fixed_code.clone();
    if let UnitKind::Endpoint {
        method,
        route,
        handler,
    } = &unit.kind
    {
        f.endpoint = Some(Endpoint {
            method: method.clone(),
            route: route.clone(),
            handler: handler.clone(),
        });
    }
    Some(f)
}

/// Runs a scan and returns the report (before the baseline is applied) and how many
/// units failed to analyse.
pub fn scan(
    analyst: &Analyst,
    root: &Path,
    discovery: &DiscoveryOptions,
    opts: &AnalyzeOptions,
    cache: Option<&AnalysisCache>,
    jobs: usize,
) -> anyhow::Result<(ScanReport, usize)> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let found = vigil_scan::scan_tree(root, discovery)
        .with_context(|| format!("cannot scan {}", root.display()))?;
    let bundle = analyst.bundle.as_ref();
    let mut report = ScanReport::new(
        ToolInfo::vigil(env!("CARGO_PKG_VERSION")),
        BundleInfo {
            name: bundle.map(|b| b.manifest.name.clone()).unwrap_or_default(),
            model_fingerprint: analyst.model_id.clone(),
        },
        &root.display().to_string(),
        started,
    );
    // Files that are not source code (README, images, lock files) are not findings-worthy
    // skips; everything else skipped is reported with its reason.
    report.skipped = found
        .skipped
        .iter()
        .filter(|s| !matches!(s.reason, vigil_scan::SkipReason::NotSource))
        .map(|s| Skipped {
            path: s.path.clone(),
            reason: s.reason.to_string(),
        })
        .collect();
    let subjects: Vec<Subject> = found.units.iter().map(subject_of).collect();
    let pb = bar(subjects.len() as u64, "analysing");
    let results = analyst.analyze_all(&subjects, opts, cache, jobs, &|d, _| {
        pb.set_position(d as u64)
    });
    pb.finish_and_clear();
    let tax = Taxonomy::builtin();
    let mut failed = 0;
    for (unit, r) in found.units.iter().zip(results) {
        match r {
            Ok(a) => {
                report.units_analyzed += 1;
                match finding_of(unit, &a, tax) {
                    Some(f) => report.findings.push(f),
                    None if a.vulnerable => {
                        tracing::warn!(
                            "{}:{}: judged vulnerable without a known type ({:?})",
                            unit.path,
                            unit.start_line,
                            a.vuln_type
                        );
                        report.clean_units += 1;
                    }
                    None => report.clean_units += 1,
                }
            }
            Err(e) => {
                failed += 1;
                report.skipped.push(Skipped {
                    path: unit.path.clone(),
                    reason: format!(
                        "lines {}–{}: analysis failed: {e}",
                        unit.start_line, unit.end_line
                    ),
                });
            }
        }
    }
    report.duration_ms = t0.elapsed().as_millis() as u64;
    report.sort();
    Ok((report, failed))
}

pub fn run(a: ScanArgs) -> anyhow::Result<ExitCode> {
    let format: OutputFormat = a.format.parse()?;
    let fail_on: FailOn = a.fail_on.parse()?;
    let opts = AnalyzeOptions {
        explain: parse_explain(&a.explain)?,
        max_tokens: a.max_tokens,
        ..Default::default()
    };
    let baseline = a.baseline.as_deref().map(Baseline::load).transpose()?;
    if !a.path.exists() {
        anyhow::bail!("{}: no such file or directory", a.path.display());
    }
    let analyst = open_bundle(&a.bundle)?;
    let discovery = DiscoveryOptions {
        exclude: a.exclude.clone(),
        max_file_bytes: a.max_file_size,
        ..DiscoveryOptions::default()
    };
    let cache = if a.no_cache {
        None
    } else {
        Some(AnalysisCache::new(AnalysisCache::default_dir()?))
    };
    let (mut report, failed) = scan(&analyst, &a.path, &discovery, &opts, cache.as_ref(), a.jobs)?;
    if let Some(path) = &a.write_baseline {
        let fresh = Baseline::from_report(&report);
        let merged = match Baseline::load(path) {
            Ok(old) => old.merged(&fresh),
            Err(_) if !path.exists() => fresh,
            Err(e) => return Err(e.into()),
        };
        merged.save(path)?;
        eprintln!(
            "baseline: {} ({} findings accepted)",
            path.display(),
            report.findings.len()
        );
    }
    if let Some(b) = &baseline {
        b.apply(&mut report);
    }
    let color = match a.color.as_str() {
        "always" => true,
        "never" => false,
        _ => a.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    let writer = format.writer(color);
    match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            writer.write(&report, &mut f)?;
            f.flush()?;
            eprintln!("report: {}", p.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            writer.write(&report, &mut out)?;
            out.flush()?;
        }
    }
    eprintln!(
        "{} units analysed, {} findings, {} clean, {} skipped, {} suppressed by the baseline ({:.1}s)",
        report.units_analyzed,
        report.findings.len(),
        report.clean_units,
        report.skipped.len(),
        report.suppressed_by_baseline,
        report.duration_ms as f64 / 1000.0
    );
    if failed > 0 {
        eprintln!("{failed} units could not be analysed (listed as skipped)");
        return Ok(ExitCode::from(vigil_findings::EXIT_ERROR as u8));
    }
    Ok(ExitCode::from(exit_code(&report, fail_on) as u8))
}
