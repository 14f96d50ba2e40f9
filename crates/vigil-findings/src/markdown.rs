//! The report as Markdown, for a pull-request comment or a CI summary.

use crate::escape::{markdown_code_block, markdown_text};
use crate::{Finding, FindingsError, ReportWriter, ScanReport};
use std::io::Write;

/// Writes a summary (counts per severity and a table of all findings), then one section per
/// finding with its facts, the reason, the analysed code and the fix in fenced blocks.
/// Untrusted text is escaped ([`markdown_text`]) and code is fenced so that it cannot close
/// its block ([`markdown_code_block`]): nothing in a finding can inject markup or HTML.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownWriter;

fn t(s: &str) -> String {
    markdown_text(s, false)
}

fn lines(f: &Finding) -> String {
    let l = &f.location;
    if l.start_line == l.end_line {
        format!("{}", l.start_line)
    } else {
        format!("{}–{}", l.start_line, l.end_line)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl ReportWriter for MarkdownWriter {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> Result<(), FindingsError> {
        writeln!(out, "# {} scan report\n", t(&report.tool.name))?;
        writeln!(
            out,
            "Scanned {} with {} {} and bundle {} (model {}) at {}: {} units analysed in {:.1} s, \
             {} findings, {} clean, {} skipped, {} suppressed by baseline\\.\n",
            t(&report.root),
            t(&report.tool.name),
            t(&report.tool.version),
            t(&report.bundle.name),
            t(&report.bundle.model_fingerprint),
            t(&report.started_at),
            report.units_analyzed,
            report.duration_ms as f64 / 1000.0,
            report.findings.len(),
            report.clean_units,
            report.skipped.len(),
            report.suppressed_by_baseline,
        )?;

        writeln!(out, "| Severity | Findings |\n|---|---:|")?;
        for (s, n) in report.counts_by_severity() {
            writeln!(out, "| {} | {n} |", capitalised(s.as_str()))?;
        }
        writeln!(out)?;

        if report.findings.is_empty() {
            writeln!(out, "No findings\\.")?;
        } else {
            writeln!(
                out,
                "| # | Severity | Vulnerability | Location | Endpoint | Confidence |\n\
                 |---:|---|---|---|---|---:|"
            )?;
            for (i, f) in report.findings.iter().enumerate() {
                let vuln = match f.cwe {
                    Some(c) => format!("{} \\(CWE\\-{c}\\)", t(&f.title)),
                    None => t(&f.title),
                };
                let endpoint = f
                    .endpoint
                    .as_ref()
                    .map(|e| format!("{} {}", t(&e.method), t(&e.route)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "| [{n}](#finding-{n}) | {} | {vuln} | {}:{} | {endpoint} | {:.2} |",
                    capitalised(f.severity.as_str()),
                    t(&f.location.path),
                    lines(f),
                    f.confidence,
                    n = i + 1,
                )?;
            }
        }

        for (i, f) in report.findings.iter().enumerate() {
            write_finding(out, i + 1, f)?;
        }

        if !report.skipped.is_empty() {
            writeln!(out, "\n## Skipped files\n")?;
            for s in &report.skipped {
                writeln!(out, "- {}: {}", t(&s.path), t(&s.reason))?;
            }
        }
        Ok(())
    }
}

fn write_finding(out: &mut dyn Write, n: usize, f: &Finding) -> Result<(), FindingsError> {
    // An explicit anchor keeps the summary table's links stable whatever the title says.
    writeln!(
        out,
        "\n<a id=\"finding-{n}\"></a>\n\n## {n}\\. {} in {}:{}\n",
        t(&f.title),
        t(&f.location.path),
        lines(f)
    )?;
    writeln!(out, "- **Severity:** {}", capitalised(f.severity.as_str()))?;
    writeln!(out, "- **Rule:** {}", t(&f.rule_id))?;
    if let Some(c) = f.cwe {
        writeln!(
            out,
            "- **CWE:** [CWE\\-{c}](https://cwe.mitre.org/data/definitions/{c}.html)"
        )?;
    }
    if let Some(o) = &f.owasp {
        writeln!(out, "- **OWASP:** {}", t(o))?;
    }
    if let Some(e) = &f.endpoint {
        writeln!(
            out,
            "- **Endpoint:** {} {} \\(handler {}\\)",
            t(&e.method),
            t(&e.route),
            t(&e.handler)
        )?;
    }
    let framework = f
        .framework
        .as_deref()
        .map(|fw| format!(", {}", t(fw)))
        .unwrap_or_default();
    writeln!(out, "- **Language:** {}{framework}", t(&f.language))?;
    let mut confidence = format!("{:.2}", f.confidence);
    if let Some(p) = f.probability {
        confidence.push_str(&format!(" \\(probability {p:.2}\\)"));
    }
    writeln!(out, "- **Confidence:** {confidence}")?;
    writeln!(out, "- **Fingerprint:** {}\n", t(&f.fingerprint))?;
    if !f.reason.trim().is_empty() {
        writeln!(
            out,
            "**Reason\\.** {}\n",
            markdown_text(f.reason.trim(), true)
        )?;
    }
    if !f.snippet.trim().is_empty() {
        writeln!(out, "**Code**\n")?;
        write!(out, "{}", markdown_code_block(&f.snippet, &f.language))?;
    }
    if let Some(fix) = f.fixed_code.as_deref().filter(|c| !c.trim().is_empty()) {
        writeln!(out, "\n**Suggested fix**\n")?;
        write!(out, "{}", markdown_code_block(fix, &f.language))?;
    }
    Ok(())
}
