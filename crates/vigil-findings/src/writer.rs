//! The [`ReportWriter`] trait and the [`OutputFormat`] names the CLI accepts.

use crate::{FindingsError, JsonWriter, MarkdownWriter, SarifWriter, ScanReport, TextWriter};
use std::io::Write;
use std::str::FromStr;

/// Something that renders a [`ScanReport`] in one output format.
pub trait ReportWriter {
    /// Write the whole report to `out`.
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> Result<(), FindingsError>;

    /// The report as a string.
    fn render(&self, report: &ScanReport) -> Result<String, FindingsError> {
        let mut buf = Vec::new();
        self.write(report, &mut buf)?;
        // Every writer emits UTF-8 built from Rust strings.
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The output formats of `vigil scan --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    Sarif,
    Markdown,
}

impl OutputFormat {
    /// The usual file extension (`sarif` for SARIF, as GitHub's upload action expects).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Text => "txt",
            OutputFormat::Json => "json",
            OutputFormat::Sarif => "sarif",
            OutputFormat::Markdown => "md",
        }
    }

    /// The writer for this format; `color` only matters for text (see [`TextWriter::new`]).
    pub fn writer(self, color: bool) -> Box<dyn ReportWriter> {
        match self {
            OutputFormat::Text => Box::new(TextWriter::new(color)),
            OutputFormat::Json => Box::new(JsonWriter),
            OutputFormat::Sarif => Box::new(SarifWriter::default()),
            OutputFormat::Markdown => Box::new(MarkdownWriter),
        }
    }
}

impl FromStr for OutputFormat {
    type Err = FindingsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "txt" => Ok(OutputFormat::Text),
            "json" => Ok(OutputFormat::Json),
            "sarif" => Ok(OutputFormat::Sarif),
            "markdown" | "md" => Ok(OutputFormat::Markdown),
            _ => Err(FindingsError::UnknownFormat(s.to_string())),
        }
    }
}
