//! The human report for a terminal.

use crate::escape::visible;
use crate::{Finding, FindingsError, ReportWriter, ScanReport};
use anstyle::{AnsiColor, Style};
use std::ffi::OsStr;
use std::io::Write;
use vigil_taxonomy::Severity;

/// Writes the report for a person at a terminal: a summary, then the findings grouped by
/// severity (most severe first) and, within a severity, by file; each shows file:line, the
/// endpoint, CWE, OWASP category, confidence, the reason and the suggested fix. Every piece
/// of untrusted text passes through [`visible`], so no escape sequence from analysed code
/// or model output reaches the terminal.
#[derive(Debug, Clone, Copy)]
pub struct TextWriter {
    color: bool,
}

/// Whether to colour: asked for, and not vetoed by a non-empty `NO_COLOR` (no-color.org).
pub fn color_enabled(requested: bool, no_color: Option<&OsStr>) -> bool {
    requested && no_color.is_none_or(|v| v.is_empty())
}

impl TextWriter {
    /// A writer that colours when `color` is true and the environment has no `NO_COLOR`.
    pub fn new(color: bool) -> TextWriter {
        TextWriter {
            color: color_enabled(color, std::env::var_os("NO_COLOR").as_deref()),
        }
    }

    /// A writer that colours exactly as told, whatever the environment says.
    pub fn with_color(color: bool) -> TextWriter {
        TextWriter { color }
    }

    /// Whether this writer emits colour.
    pub fn color(&self) -> bool {
        self.color
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

fn severity_style(s: Severity) -> Style {
    let color = match s {
        Severity::Critical => AnsiColor::BrightRed,
        Severity::High => AnsiColor::Red,
        Severity::Medium => AnsiColor::Yellow,
        Severity::Low => AnsiColor::Cyan,
        Severity::Info => AnsiColor::BrightBlack,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

impl ReportWriter for TextWriter {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> Result<(), FindingsError> {
        writeln!(
            out,
            "{} {} scanned {} with {} (model {})",
            self.paint(BOLD, &visible(&report.tool.name, false)),
            visible(&report.tool.version, false),
            visible(&report.root, false),
            visible(&report.bundle.name, false),
            visible(short_hash(&report.bundle.model_fingerprint), false),
        )?;
        let counts: Vec<String> = report
            .counts_by_severity()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| self.paint(severity_style(*s), &format!("{n} {s}")))
            .collect();
        let by_severity = if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        };
        writeln!(
            out,
            "{} units analysed in {:.1} s: {} finding{}{by_severity}, {} clean, {} skipped, {} suppressed by baseline",
            report.units_analyzed,
            report.duration_ms as f64 / 1000.0,
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" },
            report.clean_units,
            report.skipped.len(),
            report.suppressed_by_baseline,
        )?;

        if report.findings.is_empty() {
            writeln!(out, "\nNo findings.")?;
        }
        for severity in Severity::ALL {
            let mut group: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .collect();
            if group.is_empty() {
                continue;
            }
            group.sort_by(|a, b| {
                (&a.location.path, a.location.start_line)
                    .cmp(&(&b.location.path, b.location.start_line))
            });
            writeln!(
                out,
                "\n{}",
                self.paint(
                    severity_style(severity),
                    &format!(
                        "{} ({})",
                        severity.as_str().to_ascii_uppercase(),
                        group.len()
                    )
                )
            )?;
            let mut current_path: Option<&str> = None;
            for f in group {
                if current_path != Some(f.location.path.as_str()) {
                    current_path = Some(&f.location.path);
                    writeln!(
                        out,
                        "  {}",
                        self.paint(BOLD, &visible(&f.location.path, false))
                    )?;
                }
                self.write_finding(f, out)?;
            }
        }

        if !report.skipped.is_empty() {
            writeln!(out, "\n{}", self.paint(BOLD, "Skipped"))?;
            for s in &report.skipped {
                writeln!(
                    out,
                    "  {}: {}",
                    visible(&s.path, false),
                    visible(&s.reason, false)
                )?;
            }
        }
        Ok(())
    }
}

impl TextWriter {
    fn write_finding(&self, f: &Finding, out: &mut dyn Write) -> Result<(), FindingsError> {
        let loc = &f.location;
        let lines = if loc.start_line == loc.end_line {
            format!("{}", loc.start_line)
        } else {
            format!("{}-{}", loc.start_line, loc.end_line)
        };
        writeln!(
            out,
            "    {} {}:{lines} [{}]",
            self.paint(severity_style(f.severity), &visible(&f.title, false)),
            visible(&loc.path, false),
            visible(&f.rule_id, false),
        )?;
        if let Some(e) = &f.endpoint {
            writeln!(
                out,
                "      {} {} {} -> {}",
                self.paint(DIM, "endpoint  "),
                visible(&e.method, false),
                visible(&e.route, false),
                visible(&e.handler, false),
            )?;
        }
        let mut facts = Vec::new();
        if let Some(cwe) = f.cwe {
            facts.push(format!("CWE-{cwe}"));
        }
        if let Some(owasp) = &f.owasp {
            facts.push(visible(owasp, false));
        }
        let mut confidence = format!("confidence {:.2}", f.confidence);
        if let Some(p) = f.probability {
            confidence.push_str(&format!(", probability {p:.2}"));
        }
        facts.push(confidence);
        writeln!(
            out,
            "      {} {}",
            self.paint(DIM, "details   "),
            facts.join(" | ")
        )?;
        if !f.reason.trim().is_empty() {
            writeln!(out, "      {}", self.paint(DIM, "reason"))?;
            write_block(out, &f.reason, "        ")?;
        }
        if let Some(fix) = f.fixed_code.as_deref().filter(|c| !c.trim().is_empty()) {
            writeln!(out, "      {}", self.paint(DIM, "fix"))?;
            write_block(out, fix, "        | ")?;
        }
        Ok(())
    }
}

/// Write multi-line untrusted text, each line indented by `prefix` so that it cannot pass
/// for a heading or another finding.
fn write_block(out: &mut dyn Write, text: &str, prefix: &str) -> Result<(), FindingsError> {
    for line in visible(text.trim_end(), true).lines() {
        writeln!(out, "{prefix}{line}")?;
    }
    Ok(())
}

/// The first 12 characters of a hash, enough to recognise it.
fn short_hash(h: &str) -> &str {
    match h.char_indices().nth(12) {
        Some((i, _)) => &h[..i],
        None => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_vetoes_only_when_non_empty() {
        assert!(color_enabled(true, None));
        assert!(color_enabled(true, Some(OsStr::new(""))));
        assert!(!color_enabled(true, Some(OsStr::new("1"))));
        assert!(!color_enabled(false, None));
    }
}
