//! Triage input and output for `vigil triage` (MISSION M12): other scanners' findings in,
//! the same files back out with vigil's verdicts written in.
//!
//! - [`read_path`] / [`read_bytes`] read a findings file (format given or found by
//!   [`detect`]) into a [`TriageReport`]: the [`TriageItem`]s plus what write-back needs.
//!   Formats ([`Format`]): ZAP traditional JSON (`zap`), Burp Suite XML (`burp`), Nuclei
//!   JSONL (`nuclei`), SARIF 2.1.0 (`sarif`) and raw HTTP exchanges (`http`, a file or a
//!   directory).
//! - A [`TriageItem`] is one finding in the shape the model reads: an HTTP request /
//!   response pair with title and description, or a code snippet with the rule
//!   ([`TriageItem::subject_kind`]); `no_evidence` marks items that carry neither. Its
//!   [`Origin`] points back into the input.
//! - The caller decides a [`TriageVerdict`] per item id; [`TriageReport::annotate`] renders
//!   the input again with them (a `vigil` object in ZAP / Nuclei JSON, `properties.vigil`
//!   and a suppression in SARIF, a `<vigilTriage>` element in Burp XML, a JSON sidecar for
//!   raw HTTP) leaving everything else as it was; reading the output again gives each item
//!   its verdict back as [`TriageItem::prior`].
//! - [`TriageSummary`] counts verdicts by kind and rule, as text or Markdown.
//!
//! ```no_run
//! use vigil_triage::{read_path, AnnotateOptions, ReadOptions, SubjectKind, TriageVerdict};
//!
//! let report = read_path("zap-report.json".as_ref(), None, &ReadOptions::default())?;
//! for w in &report.warnings {
//!     eprintln!("warning: {w}");
//! }
//! let verdicts: Vec<TriageVerdict> = report
//!     .items
//!     .iter()
//!     .filter(|item| !item.no_evidence)
//!     .map(|item| {
//!         // The model sees item.request / item.response (SubjectKind::Http) or item.code
//!         // (SubjectKind::Code), with item.finding_text().
//!         let _ = (item.subject_kind() == SubjectKind::Http, item.finding_text());
//!         TriageVerdict {
//!             item_id: item.id.clone(),
//!             true_positive: false,
//!             probability: 0.1,
//!             threshold: 0.5,
//!             reason: "…".into(),
//!             decided_by: "vigil-http".into(),
//!         }
//!     })
//!     .collect();
//! report.write_annotated(&verdicts, &AnnotateOptions::default(), &report.default_output_path())?;
//! print!("{}", report.summary(&verdicts).to_text());
//! # Ok::<(), vigil_triage::TriageError>(())
//! ```
//!
//! Bad input (empty, truncated, wrong format, too large, not UTF-8, hostile XML) is a
//! [`TriageError`] naming the file; a bad part of a good file (one Nuclei line, one
//! undecodable base64 body) is a [`ReadWarning`] and the rest is still read.

mod burp;
mod detect;
mod error;
mod input;
mod item;
mod jsonutil;
mod nuclei;
mod rawhttp;
mod sarif;
mod summary;
mod zap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use burp::VERDICT_ELEMENT as BURP_VERDICT_ELEMENT;
pub use detect::detect;
pub use error::{ReadWarning, TriageError};
pub use input::ReadOptions;
pub use item::{
    Format, Location, Origin, SubjectKind, TriageItem, TriageVerdict, MAX_FINDING_DESCRIPTION,
};
pub use rawhttp::{DIR_SIDECAR, FILE_SIDECAR_SUFFIX};
pub use sarif::SuppressionStatus;
pub use summary::{RuleCounts, TriageSummary};

/// How verdicts are written back.
#[derive(Clone, Debug, Default)]
pub struct AnnotateOptions {
    /// Status of the SARIF suppression written for a false positive.
    pub sarif_suppression_status: SuppressionStatus,
}

/// The parsed input, kept so write-back changes only what it must.
#[derive(Clone, Debug)]
enum Document {
    Json(serde_json::Value, jsonutil::JsonStyle),
    Lines(nuclei::NucleiLines),
    Xml(burp::BurpDoc),
    Http { is_dir: bool },
}

/// A findings file read for triage.
#[derive(Clone, Debug)]
pub struct TriageReport {
    pub path: PathBuf,
    pub format: Format,
    pub items: Vec<TriageItem>,
    /// Parts of the file that were skipped or degraded.
    pub warnings: Vec<ReadWarning>,
    document: Document,
}

/// Reads a findings file, or a directory of raw HTTP exchanges. `format: None` detects it.
pub fn read_path(
    path: &Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<TriageReport, TriageError> {
    let meta = std::fs::metadata(path).map_err(|source| TriageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        if let Some(f) = format.filter(|f| *f != Format::Http) {
            return Err(TriageError::malformed(
                path,
                format!("is a directory; only raw HTTP exchanges (http) are read from a directory, not {f}"),
            ));
        }
        let (items, warnings) = rawhttp::read_dir(path, opts)?;
        return Ok(TriageReport {
            path: path.to_path_buf(),
            format: Format::Http,
            items,
            warnings,
            document: Document::Http { is_dir: true },
        });
    }
    let bytes = input::read_limited(path, opts.max_bytes)?;
    read_bytes(path, &bytes, format, opts)
}

/// Reads findings from `bytes`, the content of `path` (named in errors; raw HTTP looks for
/// an earlier sidecar beside it). `format: None` detects it.
pub fn read_bytes(
    path: &Path,
    bytes: &[u8],
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<TriageReport, TriageError> {
    if bytes.len() as u64 > opts.max_bytes {
        return Err(TriageError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: opts.max_bytes,
        });
    }
    let text = input::text(path, bytes)?;
    let format = match format {
        Some(f) => f,
        None => detect(path, bytes)?,
    };
    let (document, items, warnings) = match format {
        Format::Zap => {
            let doc = jsonutil::parse(path, text)?;
            let (items, warnings) = zap::read(path, &doc)?;
            (
                Document::Json(doc, jsonutil::JsonStyle::of(text)),
                items,
                warnings,
            )
        }
        Format::Sarif => {
            let doc = jsonutil::parse(path, text)?;
            let (items, warnings) = sarif::read(path, &doc, opts)?;
            (
                Document::Json(doc, jsonutil::JsonStyle::of(text)),
                items,
                warnings,
            )
        }
        Format::Nuclei => {
            let (doc, items, warnings) = nuclei::read(path, text)?;
            (Document::Lines(doc), items, warnings)
        }
        Format::Burp => {
            let (doc, items, warnings) = burp::read(path, text)?;
            (Document::Xml(doc), items, warnings)
        }
        Format::Http => (
            Document::Http { is_dir: false },
            rawhttp::read_file(path, text)?,
            Vec::new(),
        ),
    };
    Ok(TriageReport {
        path: path.to_path_buf(),
        format,
        items,
        warnings,
        document,
    })
}

impl TriageReport {
    pub fn item(&self, id: &str) -> Option<&TriageItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Where [`write_annotated`](Self::write_annotated) writes by default: beside the
    /// input, `name.triaged.ext` (`zap.json` → `zap.triaged.json`); for raw HTTP the
    /// sidecar the reader looks for (`x.http.vigil.json`, or `vigil-triage.json` inside a
    /// directory).
    pub fn default_output_path(&self) -> PathBuf {
        match self.document {
            Document::Http { is_dir } => rawhttp::sidecar_path(&self.path, is_dir),
            _ => {
                let stem = self
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "findings".into());
                let name = match self.path.extension() {
                    Some(ext) => format!("{stem}.triaged.{}", ext.to_string_lossy()),
                    None => format!("{stem}.triaged"),
                };
                self.path.with_file_name(name)
            }
        }
    }

    /// The input rendered again with `verdicts` written in. Items without a verdict keep
    /// whatever the input said (a verdict written before included). A verdict for an id
    /// the report does not hold, two verdicts for one id, or a probability or threshold
    /// outside [0, 1] is an error.
    pub fn annotate(
        &self,
        verdicts: &[TriageVerdict],
        opts: &AnnotateOptions,
    ) -> Result<Vec<u8>, TriageError> {
        let items: HashMap<&str, &TriageItem> =
            self.items.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut chosen: HashMap<&str, &TriageVerdict> = HashMap::new();
        for v in verdicts {
            if !items.contains_key(v.item_id.as_str()) {
                return Err(TriageError::UnknownItem {
                    path: self.path.clone(),
                    item_id: v.item_id.clone(),
                });
            }
            v.validate(&self.path)?;
            if chosen.insert(v.item_id.as_str(), v).is_some() {
                return Err(TriageError::InvalidVerdict {
                    path: self.path.clone(),
                    item_id: v.item_id.clone(),
                    what: "two verdicts for the same item".into(),
                });
            }
        }
        // Verdicts in item order, so output does not depend on the caller's order.
        let ordered: Vec<(&TriageItem, &TriageVerdict)> = self
            .items
            .iter()
            .filter_map(|i| chosen.get(i.id.as_str()).map(|v| (i, *v)))
            .collect();
        let lost = |item: &TriageItem| {
            TriageError::malformed(
                &self.path,
                format!("item {} no longer points into the document", item.id),
            )
        };
        Ok(match &self.document {
            Document::Json(doc, style) => {
                let mut doc = doc.clone();
                for (item, verdict) in &ordered {
                    let done = match self.format {
                        Format::Sarif => sarif::annotate(
                            &mut doc,
                            &item.origin,
                            verdict,
                            opts.sarif_suppression_status,
                        ),
                        _ => zap::annotate(&mut doc, &item.origin, verdict),
                    };
                    if !done {
                        return Err(lost(item));
                    }
                }
                style.write(&doc)
            }
            Document::Lines(lines) => {
                let mut lines = lines.clone();
                for (item, verdict) in &ordered {
                    if !nuclei::annotate(&mut lines, &item.origin, verdict) {
                        return Err(lost(item));
                    }
                }
                nuclei::to_bytes(&lines)
            }
            Document::Xml(doc) => {
                let mut edits = Vec::new();
                for (item, verdict) in &ordered {
                    match item.origin {
                        Origin::Burp { issue } => edits.push((issue, *verdict)),
                        _ => return Err(lost(item)),
                    }
                }
                burp::write(doc, &edits)
            }
            Document::Http { .. } => {
                let verdict_of = |id: &str| -> Option<TriageVerdict> {
                    chosen
                        .get(id)
                        .map(|v| (*v).clone())
                        .or_else(|| items.get(id).and_then(|i| i.prior.clone()))
                };
                rawhttp::sidecar_bytes(&self.items, &verdict_of)
            }
        })
    }

    /// [`annotate`](Self::annotate) and write the result to `out` atomically.
    pub fn write_annotated(
        &self,
        verdicts: &[TriageVerdict],
        opts: &AnnotateOptions,
        out: &Path,
    ) -> Result<(), TriageError> {
        let bytes = self.annotate(verdicts, opts)?;
        input::write_atomically(out, &bytes)
    }

    /// Counts of `verdicts` over this report's items.
    pub fn summary(&self, verdicts: &[TriageVerdict]) -> TriageSummary {
        TriageSummary::new(self.format, &self.items, verdicts)
    }
}
