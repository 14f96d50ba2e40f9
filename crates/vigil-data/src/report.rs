//! Writes a [`CheckReport`] as Markdown plus PNG and SVG charts (plotters, bitmap and SVG
//! backends). Fonts come from the `dejavu` crate (DejaVu Sans embedded in the binary), so
//! charts render the same on machines without fontconfig or system fonts.

use crate::check::{CheckReport, DupPair, Issue};
use crate::error::{io_err, DataError, Result};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration fails only for an unparsable font; DejaVu Sans is known good.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn chart_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Chart {
        path: path.to_path_buf(),
        msg: e.to_string(),
    }
}

/// A horizontal bar chart of `(label, count)`.
pub fn bar_chart(path: &Path, title: &str, data: &[(String, usize)]) -> Result<()> {
    register_font();
    let rows = data.len().max(1);
    let h = (80 + rows * 22).min(4000) as u32;
    let is_svg = path.extension().is_some_and(|e| e == "svg");
    macro_rules! draw {
        ($backend:expr) => {{
            let root = $backend.into_drawing_area();
            root.fill(&WHITE).map_err(|e| chart_err(path, e))?;
            let max = data.iter().map(|d| d.1).max().unwrap_or(1).max(1);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(260)
                .build_cartesian_2d(
                    0usize..(max + max / 10 + 1),
                    (0usize..rows).into_segmented(),
                )
                .map_err(|e| chart_err(path, e))?;
            let labels: Vec<String> = data.iter().map(|d| d.0.clone()).collect();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(rows)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .x_desc("samples")
                .draw()
                .map_err(|e| chart_err(path, e))?;
            chart
                .draw_series(data.iter().enumerate().map(|(i, (_, c))| {
                    let mut bar = Rectangle::new(
                        [
                            (0, SegmentValue::Exact(i)),
                            (*c, SegmentValue::Exact(i + 1)),
                        ],
                        BLUE.mix(0.6).filled(),
                    );
                    bar.set_margin(3, 3, 0, 0);
                    bar
                }))
                .map_err(|e| chart_err(path, e))?;
            root.present().map_err(|e| chart_err(path, e))?;
        }};
    }
    if is_svg {
        draw!(SVGBackend::new(path, (900, h)));
    } else {
        draw!(BitMapBackend::new(path, (900, h)));
    }
    Ok(())
}

/// A histogram of token lengths.
pub fn histogram(path: &Path, title: &str, x_desc: &str, values: &[usize]) -> Result<()> {
    register_font();
    let is_svg = path.extension().is_some_and(|e| e == "svg");
    let max = values.iter().copied().max().unwrap_or(1).max(1);
    let bins = 30usize;
    let width = max.div_ceil(bins).max(1);
    let mut counts = vec![0usize; bins + 1];
    for &v in values {
        counts[(v / width).min(bins)] += 1;
    }
    let ymax = counts.iter().copied().max().unwrap_or(1).max(1);
    macro_rules! draw {
        ($backend:expr) => {{
            let root = $backend.into_drawing_area();
            root.fill(&WHITE).map_err(|e| chart_err(path, e))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0usize..(width * (bins + 1)), 0usize..(ymax + ymax / 10 + 1))
                .map_err(|e| chart_err(path, e))?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("samples")
                .draw()
                .map_err(|e| chart_err(path, e))?;
            chart
                .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                    Rectangle::new(
                        [(i * width, 0), ((i + 1) * width, c)],
                        GREEN.mix(0.6).filled(),
                    )
                }))
                .map_err(|e| chart_err(path, e))?;
            root.present().map_err(|e| chart_err(path, e))?;
        }};
    }
    if is_svg {
        draw!(SVGBackend::new(path, (900, 500)));
    } else {
        draw!(BitMapBackend::new(path, (900, 500)));
    }
    Ok(())
}

fn table(md: &mut String, head: &str, rows: &[(String, usize)], total: usize) {
    let _ = writeln!(md, "| {head} | samples | share |\n|---|---:|---:|");
    for (k, v) in rows {
        let _ = writeln!(
            md,
            "| {k} | {v} | {:.1}% |",
            100.0 * *v as f64 / total.max(1) as f64
        );
    }
    md.push('\n');
}

fn pairs(md: &mut String, title: &str, count: usize, list: &[DupPair]) {
    let _ = writeln!(md, "**{title}: {count}**\n");
    if !list.is_empty() {
        let _ = writeln!(
            md,
            "| sample | sample | splits | similarity |\n|---:|---:|---|---:|"
        );
        for p in list {
            let sp = |s: Option<crate::Split>| s.map(|x| x.as_str()).unwrap_or("-");
            let _ = writeln!(
                md,
                "| {} | {} | {} / {} | {:.2} |",
                p.a,
                p.b,
                sp(p.split_a),
                sp(p.split_b),
                p.similarity
            );
        }
        md.push('\n');
    }
}

fn issues(md: &mut String, title: &str, count: usize, list: &[Issue]) {
    let _ = writeln!(md, "**{title}: {count}**\n");
    for i in list {
        let _ = writeln!(md, "- sample {}: {}", i.id, i.what);
    }
    if !list.is_empty() {
        md.push('\n');
    }
}

fn percentile(sorted: &[usize], p: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Write `report.md` and the charts into `dir`; returns the report path.
pub fn write_report(r: &CheckReport, dir: &Path, max_leakage: f64) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut md = String::new();
    let _ = writeln!(md, "# vigil dataset check\n");
    let leak = r.leakage_rate();
    let verdict = if leak > max_leakage { "FAIL" } else { "PASS" };
    let _ = writeln!(
        md,
        "**Leakage: {verdict}** — {} exact and {} near-duplicate pairs across splits ({:.3}% of samples; threshold {:.3}%).\n",
        r.exact_across_count,
        r.near_across_count,
        leak * 100.0,
        max_leakage * 100.0
    );
    let _ = writeln!(
        md,
        "Samples: {} ({} vulnerable, {} clean); unassigned to a split: {}.\n",
        r.total, r.vulnerable, r.clean, r.unassigned
    );
    let splits: Vec<(String, usize)> = r.per_split.iter().map(|(k, v)| (k.clone(), *v)).collect();
    md.push_str("## Splits and label balance\n\n");
    let _ = writeln!(md, "| split | samples | share | vulnerable | clean | vulnerable share |\n|---|---:|---:|---:|---:|---:|");
    for (k, v) in &splits {
        let (vu, cl) = r.per_split_labels.get(k).copied().unwrap_or_default();
        let _ = writeln!(
            md,
            "| {k} | {v} | {:.1}% | {vu} | {cl} | {:.1}% |",
            100.0 * *v as f64 / r.total.max(1) as f64,
            100.0 * vu as f64 / (*v).max(1) as f64
        );
    }
    md.push('\n');
    md.push_str("## Duplicates and leakage\n\n");
    let _ = writeln!(md, "Exact: same input after lower-casing and collapsing whitespace. Near: MinHash (128 permutations, token 5-shingles, LSH 32×4) estimated Jaccard ≥ threshold, between different groups (a vulnerable sample and its fixed twin share a group and are not counted).\n");
    pairs(
        &mut md,
        "Exact duplicates across splits (leakage)",
        r.exact_across_count,
        &r.exact_across,
    );
    pairs(
        &mut md,
        "Near-duplicates across splits (leakage)",
        r.near_across_count,
        &r.near_across,
    );
    pairs(
        &mut md,
        "Exact duplicates inside a split",
        r.exact_within_count,
        &r.exact_within,
    );
    pairs(
        &mut md,
        "Near-duplicates inside a split",
        r.near_within_count,
        &r.near_within,
    );
    let _ = writeln!(
        md,
        "Samples with a near-duplicate in another group: {} ({:.2}%).\n",
        r.samples_with_near_dup,
        r.near_dup_rate() * 100.0
    );
    let worst: Vec<_> = r
        .near_dup_by_category
        .iter()
        .filter(|c| c.1 > 0)
        .take(60)
        .collect();
    if !worst.is_empty() {
        md.push_str("Where near-duplicates concentrate (kind / category / framework):\n\n| group | with near-duplicate | samples | share |\n|---|---:|---:|---:|\n");
        for (k, a, b) in worst {
            let _ = writeln!(
                md,
                "| {k} | {a} | {b} | {:.1}% |",
                100.0 * *a as f64 / (*b).max(1) as f64
            );
        }
        md.push('\n');
    }
    md.push_str("## Quality\n\n");
    issues(
        &mut md,
        "Text repeated across sections of one answer",
        r.repeated_sections_count,
        &r.repeated_sections,
    );
    issues(
        &mut md,
        "Empty or truncated fields",
        r.empty_or_truncated_count,
        &r.empty_or_truncated,
    );
    md.push_str("## Distributions\n\n");
    type Chart<'a> = (&'a str, &'a str, &'a [(String, usize)]);
    let charts: [Chart; 5] = [
        ("kind", "Samples by kind", &r.by_kind),
        (
            "category",
            "Vulnerability category (vulnerable samples; clean as one bar)",
            &r.by_type,
        ),
        ("severity", "Severity (vulnerable samples)", &r.by_severity),
        ("language", "Language", &r.by_language),
        ("framework", "Framework", &r.by_framework),
    ];
    for (name, title, data) in charts {
        let _ = writeln!(md, "### {title}\n\n![{name}]({name}.png)\n");
        table(&mut md, name, data, r.total);
        bar_chart(&dir.join(format!("{name}.png")), title, data)?;
        bar_chart(&dir.join(format!("{name}.svg")), title, data)?;
    }
    let mut sorted = r.token_lengths.clone();
    sorted.sort_unstable();
    let label = if r.token_exact {
        r.token_label.clone()
    } else {
        format!("{} — APPROXIMATE", r.token_label)
    };
    let _ = writeln!(
        md,
        "### Length ({label})\n\nPer sample, system + user + assistant as rendered for training. min {}, median {}, p95 {}, max {}.\n\n![tokens](tokens.png)\n",
        sorted.first().copied().unwrap_or(0),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.95),
        sorted.last().copied().unwrap_or(0)
    );
    histogram(
        &dir.join("tokens.png"),
        "Sample length",
        &label,
        &r.token_lengths,
    )?;
    histogram(
        &dir.join("tokens.svg"),
        "Sample length",
        &label,
        &r.token_lengths,
    )?;
    let path = dir.join("report.md");
    std::fs::write(&path, md).map_err(io_err(&path))?;
    Ok(path)
}
