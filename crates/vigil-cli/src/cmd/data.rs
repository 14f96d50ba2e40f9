//! `vigil data init|import|export|generate|split|stats|check|show`: a thin layer over
//! `vigil_data` (store, importers, exporters, splitter, checker, generator). Everything that
//! could be reused lives in the library; this file parses flags, draws progress bars and
//! prints results.
use super::common::bar;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use vigil_data::check::{self, CheckOptions};
use vigil_data::export::{self, ExportFormat};
use vigil_data::import::{self, Format, ImportOptions};
use vigil_data::split::{self, Fractions};
use vigil_data::synth::{self, GenOptions};
use vigil_data::tokens::ApproxTokenCounter;
use vigil_data::{prompt, report, Filter, SampleKind, Split, Store};

#[derive(Args)]
pub struct DataArgs {
    /// Dataset file (SQLite); created on first use.
    #[arg(long, global = true, env = "VIGIL_DB", default_value = "vigil.db")]
    db: PathBuf,
    #[command(subcommand)]
    cmd: DataCmd,
}

#[derive(Subcommand)]
enum DataCmd {
    /// Create an empty dataset (or check an existing one).
    Init,
    /// Import a file: jsonl, sharegpt, openai, alpaca, templates (the `<<<<>>>>` file),
    /// reports (vulnerability-report JSON) or seed-sqlite (a `training_data` table).
    Import {
        file: PathBuf,
        /// Format; guessed from the content when omitted.
        #[arg(long)]
        format: Option<String>,
        /// Source label stored on each row (default: import:<file name>).
        #[arg(long)]
        source: Option<String>,
        /// Template files carry no label: mark their pairs vulnerable.
        #[arg(long)]
        vulnerable: bool,
        /// Template files: the vulnerability type (taxonomy id or alias) the pairs are about.
        #[arg(long)]
        vuln_type: Option<String>,
        /// seed-sqlite: map a `vuln_category` integer to a type, e.g. `0=missing_security_headers`.
        #[arg(long = "seed-category", value_name = "N=TYPE")]
        seed_category: Vec<String>,
    },
    /// Export samples: sharegpt, openai, alpaca or jsonl.
    Export {
        out: PathBuf,
        #[arg(long, default_value = "sharegpt")]
        format: String,
        /// Only this split (train, valid, test).
        #[arg(long)]
        split: Option<String>,
        /// Only this kind (code, http_pair, report, chat).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Generate synthetic samples (deterministic under --seed) and store them.
    Generate {
        /// Number of samples (a vulnerable sample and its fixed twin count as two).
        #[arg(long, default_value_t = 1000)]
        num: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Only these vulnerability types (repeatable); see `--list`.
        #[arg(long)]
        vuln: Vec<String>,
        /// Store only the vulnerable variant, no secure twin.
        #[arg(long)]
        nofp: bool,
        /// Share of HTTP request/response pairs (the rest is code).
        #[arg(long, default_value_t = 0.25)]
        http_share: f64,
        /// Generate nothing; print the statistics of the stored data.
        #[arg(long)]
        analyze: bool,
        /// List the types the generator knows and exit.
        #[arg(long)]
        list: bool,
    },
    /// Assign deterministic splits (by group hash) to rows without one.
    Split {
        #[arg(long, default_value_t = 0.8)]
        train: f64,
        #[arg(long, default_value_t = 0.1)]
        valid: f64,
        #[arg(long, default_value_t = 0.1)]
        test: f64,
        /// Salt of the split hash; change it to draw a different split.
        #[arg(long, default_value = "vigil")]
        salt: String,
        /// Clear every split first (moves rows: invalidates earlier evaluations).
        #[arg(long)]
        reset: bool,
        /// Keep near-duplicates (estimated Jaccard ≥ this) in one split; 0 disables and
        /// splits by group hash alone.
        #[arg(long, default_value_t = 0.8)]
        near_dup: f64,
    },
    /// Counts by split, kind, type, severity, language and framework.
    Stats,
    /// Quality and leakage report (Markdown + charts); exits 2 when leakage is above --max-leakage.
    Check {
        /// Output directory for report.md and the charts.
        #[arg(long, default_value = "data-check")]
        out: PathBuf,
        /// Highest tolerated share of samples in cross-split duplicate pairs (0 = none).
        #[arg(long, default_value_t = 0.0)]
        max_leakage: f64,
        /// Estimated Jaccard similarity from which inputs count as near-duplicates.
        #[arg(long, default_value_t = 0.8)]
        near_threshold: f64,
    },
    /// Print samples (fields and the rendered prompt).
    Show {
        /// Sample id; without it, the first --limit samples.
        id: Option<i64>,
        #[arg(long)]
        split: Option<String>,
        #[arg(long, default_value_t = 3)]
        limit: usize,
        /// text, json or prompt (the rendered system / user / assistant turns).
        #[arg(long, default_value = "text")]
        format: String,
    },
}

fn parse_split(s: &Option<String>) -> anyhow::Result<Option<Split>> {
    s.as_deref()
        .map(|x| {
            Split::parse(x).with_context(|| format!("unknown split {x:?} (train, valid, test)"))
        })
        .transpose()
}

fn parse_kind(s: &Option<String>) -> anyhow::Result<Option<SampleKind>> {
    s.as_deref()
        .map(|x| {
            SampleKind::parse(x)
                .with_context(|| format!("unknown kind {x:?} (code, http_pair, report, chat)"))
        })
        .transpose()
}

pub fn run(args: DataArgs) -> anyhow::Result<ExitCode> {
    let db = args.db;
    match args.cmd {
        DataCmd::Init => {
            let store = Store::open(&db)?;
            println!("{}: {} samples", db.display(), store.count()?);
        }
        DataCmd::Import {
            file,
            format,
            source,
            vulnerable,
            vuln_type,
            seed_category,
        } => {
            let fmt = match format {
                Some(f) => {
                    Format::parse(&f).with_context(|| format!("unknown import format {f:?}"))?
                }
                None => Format::detect(&file)?,
            };
            let mut opts = ImportOptions {
                source,
                template_vulnerable: vulnerable,
                template_vuln_type: vuln_type,
                ..Default::default()
            };
            if !seed_category.is_empty() {
                opts.seed_categories.clear();
                for m in &seed_category {
                    let (n, t) = m
                        .split_once('=')
                        .with_context(|| format!("--seed-category wants N=TYPE, got {m:?}"))?;
                    let n: i64 = n
                        .trim()
                        .parse()
                        .with_context(|| format!("bad category number in {m:?}"))?;
                    opts.seed_categories.push((n, t.trim().to_string()));
                }
            }
            let t0 = Instant::now();
            let samples = import::read_file(&file, fmt, &opts)?;
            let mut store = Store::open(&db)?;
            let pb = bar(samples.len() as u64, "import");
            let params = serde_json::json!({ "format": format!("{fmt:?}") }).to_string();
            let stats = store.insert_all(
                &samples,
                "import",
                &file.display().to_string(),
                &params,
                |n| pb.set_position(n as u64),
            )?;
            pb.finish_and_clear();
            println!(
                "imported {}: {} added, {} already present ({:.2}s)",
                file.display(),
                stats.added,
                stats.skipped,
                t0.elapsed().as_secs_f64()
            );
        }
        DataCmd::Export {
            out,
            format,
            split,
            kind,
        } => {
            let fmt = ExportFormat::parse(&format).with_context(|| {
                format!("unknown export format {format:?} (sharegpt, openai, alpaca, jsonl)")
            })?;
            let store = Store::open_existing(&db)?;
            let filter = Filter {
                split: parse_split(&split)?,
                kind: parse_kind(&kind)?,
                limit: None,
            };
            let t0 = Instant::now();
            let pb = bar(store.count()? as u64, "export");
            let n = export::export(&store, &filter, fmt, &out, |n| pb.set_position(n as u64))?;
            pb.finish_and_clear();
            println!(
                "wrote {n} samples to {} ({format}, {:.2}s)",
                out.display(),
                t0.elapsed().as_secs_f64()
            );
        }
        DataCmd::Generate {
            num,
            seed,
            vuln,
            nofp,
            http_share,
            analyze,
            list,
        } => {
            if list {
                for t in synth::supported_types() {
                    println!("{t}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            if analyze {
                return print_stats(&Store::open_existing(&db)?);
            }
            if !(0.0..=1.0).contains(&http_share) {
                bail!("--http-share must be between 0 and 1");
            }
            let opts = GenOptions {
                seed,
                num,
                vulns: vuln,
                nofp,
                http_share,
            };
            let t0 = Instant::now();
            let pb = bar(num as u64, "generate");
            let samples = synth::generate(&opts, |n| pb.set_position(n as u64))
                .map_err(anyhow::Error::msg)?;
            pb.finish_and_clear();
            let gen_s = t0.elapsed().as_secs_f64();
            let mut store = Store::open(&db)?;
            let pb = bar(samples.len() as u64, "store");
            let params = serde_json::json!({"seed": seed, "num": num, "vuln": opts.vulns, "nofp": nofp, "http_share": http_share}).to_string();
            let stats =
                store.insert_all(&samples, "generate", "vigil data generate", &params, |n| {
                    pb.set_position(n as u64)
                })?;
            pb.finish_and_clear();
            println!(
                "generated {} samples in {gen_s:.2}s; stored {} new ({} already present) in {}",
                samples.len(),
                stats.added,
                stats.skipped,
                db.display()
            );
        }
        DataCmd::Split {
            train,
            valid,
            test,
            salt,
            reset,
            near_dup,
        } => {
            let f = Fractions::new(train, valid, test)?;
            let mut store = Store::open_existing(&db)?;
            if reset {
                let n = store.clear_splits()?;
                eprintln!("cleared the split of {n} rows");
            }
            let pb = ProgressBar::new_spinner();
            pb.set_message("splitting (near-duplicate clustering)");
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            let nd = (near_dup > 0.0).then_some(near_dup);
            let s = split::assign_with(&mut store, &f, &salt, nd)?;
            pb.finish_and_clear();
            println!(
                "assigned {} rows ({} joined an existing split), {} already had one; train {} / valid {} / test {}",
                s.assigned, s.joined_group, s.already, s.counts[0], s.counts[1], s.counts[2]
            );
            if nd.is_some() {
                println!(
                    "near-duplicate groups merged: {}; largest component: {} rows",
                    s.merged_groups, s.largest_component
                );
            }
            if s.conflicts > 0 {
                eprintln!(
                    "warning: {} near-duplicate components already straddle splits; run `vigil data split --reset` to repair (moves rows)",
                    s.conflicts
                );
            }
        }
        DataCmd::Stats => return print_stats(&Store::open_existing(&db)?),
        DataCmd::Check {
            out,
            max_leakage,
            near_threshold,
        } => {
            let store = Store::open_existing(&db)?;
            let opts = CheckOptions {
                near_threshold,
                ..Default::default()
            };
            let total = store.count()? as u64;
            let pb = bar(total, "check");
            let t0 = Instant::now();
            let r = check::check(&store, &opts, &ApproxTokenCounter, |stage, i, _| {
                pb.set_message(stage.to_string());
                pb.set_position(i as u64);
            })?;
            pb.finish_and_clear();
            let path = report::write_report(&r, &out, max_leakage)?;
            println!(
                "{} samples checked in {:.1}s; report: {}",
                r.total,
                t0.elapsed().as_secs_f64(),
                path.display()
            );
            println!(
                "exact duplicates: {} inside splits, {} across splits; near-duplicates: {} inside, {} across; samples with a near-duplicate in another group: {:.2}%",
                r.exact_within_count,
                r.exact_across_count,
                r.near_within_count,
                r.near_across_count,
                r.near_dup_rate() * 100.0
            );
            println!(
                "repeated sections: {}; empty or truncated: {}; unassigned to a split: {}",
                r.repeated_sections_count, r.empty_or_truncated_count, r.unassigned
            );
            if r.leakage_rate() > max_leakage {
                eprintln!(
                    "error: leakage {:.3}% is above the threshold {:.3}% (see {})",
                    r.leakage_rate() * 100.0,
                    max_leakage * 100.0,
                    path.display()
                );
                return Ok(ExitCode::from(2));
            }
        }
        DataCmd::Show {
            id,
            split,
            limit,
            format,
        } => {
            let store = Store::open_existing(&db)?;
            let samples = match id {
                Some(id) => vec![store
                    .get(id)?
                    .with_context(|| format!("no sample with id {id}"))?],
                None => store.samples(&Filter {
                    split: parse_split(&split)?,
                    kind: None,
                    limit: Some(limit),
                })?,
            };
            for s in samples {
                match format.as_str() {
                    "json" => println!("{}", serde_json::to_string_pretty(&s)?),
                    "prompt" => {
                        let m = prompt::render(&s);
                        println!(
                            "=== sample {} — system\n{}\n=== user\n{}\n=== assistant\n{}\n",
                            s.id.unwrap_or(0),
                            m.system,
                            m.user,
                            m.assistant
                        );
                    }
                    "text" => {
                        println!(
                            "=== sample {} [{}] split={} group={} source={}",
                            s.id.unwrap_or(0),
                            s.kind.as_str(),
                            s.split.map(|x| x.as_str()).unwrap_or("-"),
                            s.group_id,
                            s.source
                        );
                        println!(
                            "vulnerable={} type={} cwe={} severity={} language={} framework={} endpoint={}",
                            s.is_vulnerable,
                            s.vuln_type.as_deref().unwrap_or("-"),
                            s.cwe.map(|c| format!("CWE-{c}")).unwrap_or_else(|| "-".into()),
                            s.severity.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
                            s.language.as_deref().unwrap_or("-"),
                            s.framework.as_deref().unwrap_or("-"),
                            s.endpoint.as_deref().unwrap_or("-")
                        );
                        println!(
                            "--- input\n{}\n--- analysis\n{}\n",
                            s.input_text(),
                            s.analysis
                        );
                    }
                    other => bail!("unknown --format {other:?} (text, json, prompt)"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(store: &Store) -> anyhow::Result<ExitCode> {
    let all = Filter::default();
    let total = store.count()?;
    println!("{}: {total} samples", store.path().display());
    for col in [
        "split",
        "kind",
        "is_vulnerable",
        "vuln_type",
        "severity",
        "language",
        "framework",
        "source",
    ] {
        println!("\n{col}:");
        for (k, n) in store.distribution(col, &all)? {
            println!(
                "  {k:<40} {n:>8}  {:>5.1}%",
                100.0 * n as f64 / total.max(1) as f64
            );
        }
    }
    let runs = store.runs(5)?;
    if !runs.is_empty() {
        println!("\nlatest runs:");
        for r in runs {
            println!(
                "  #{} {} {} {} (+{} / ={}) {}",
                r.id, r.started_at, r.action, r.source, r.added, r.skipped, r.params
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: DataArgs,
    }

    fn run_args(db: &std::path::Path, rest: &[&str]) -> anyhow::Result<ExitCode> {
        let mut argv = vec!["vigil-data", "--db", db.to_str().unwrap()];
        argv.extend_from_slice(rest);
        run(T::try_parse_from(argv)?.args)
    }

    fn code(c: ExitCode) -> String {
        format!("{c:?}")
    }

    #[test]
    fn generate_split_check_passes_then_planted_leak_fails_with_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let ok = code(ExitCode::SUCCESS);
        assert_eq!(code(run_args(&db, &["init"]).unwrap()), ok);
        assert_eq!(
            code(run_args(&db, &["generate", "--num", "400", "--seed", "3"]).unwrap()),
            ok
        );
        assert_eq!(code(run_args(&db, &["split"]).unwrap()), ok);
        let out = dir.path().join("report");
        let out_s = out.to_str().unwrap();
        assert_eq!(code(run_args(&db, &["check", "--out", out_s]).unwrap()), ok);
        assert!(out.join("report.md").exists() && out.join("category.png").exists());
        // plant a near-duplicate of a train sample into test, as an import would (an exact
        // copy would be dropped by the content hash at import)
        let store = Store::open(&db).unwrap();
        let mut s = store
            .samples(&Filter {
                split: Some(Split::Train),
                kind: Some(SampleKind::Code),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .find(|s| s.code.as_deref().unwrap_or("").len() > 500)
            .unwrap();
        s.code = Some(format!(
            "{}\n// copied from another service\n",
            s.code.unwrap()
        ));
        s.id = None;
        s.group_id = "planted".into();
        s.split = Some(Split::Test);
        s.source = "planted".into();
        let jsonl = dir.path().join("leak.jsonl");
        std::fs::write(&jsonl, serde_json::to_string(&s).unwrap()).unwrap();
        drop(store);
        assert_eq!(
            code(run_args(&db, &["import", jsonl.to_str().unwrap()]).unwrap()),
            ok
        );
        assert_eq!(
            code(run_args(&db, &["check", "--out", out_s]).unwrap()),
            code(ExitCode::from(2))
        );
        assert!(std::fs::read_to_string(out.join("report.md"))
            .unwrap()
            .contains("Leakage: FAIL"));
        // exports work and bad flags are errors, not panics
        let exp = dir.path().join("train.jsonl");
        assert_eq!(
            code(run_args(&db, &["export", exp.to_str().unwrap(), "--split", "train"]).unwrap()),
            ok
        );
        assert!(std::fs::read_to_string(&exp).unwrap().lines().count() > 200);
        assert!(run_args(&db, &["export", "x", "--format", "csv"]).is_err());
        assert!(run_args(
            &db,
            &["split", "--train", "0.9", "--valid", "0.3", "--test", "0.1"]
        )
        .is_err());
        assert!(run_args(&db, &["generate", "--vuln", "nope"]).is_err());
        assert!(run_args(&dir.path().join("missing.db"), &["stats"]).is_err());
    }
}
