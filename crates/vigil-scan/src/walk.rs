//! The repository walk: which files are read, and why the others are skipped.

use crate::{link, Discovery, DiscoveryOptions, Result, ScanError, SkipReason, Skipped};
use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;
use rayon::prelude::*;
use std::io::Read;
use std::path::Path;

/// `path` relative to `root`, `/`-separated (a root that is a file gives its file name).
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(path.file_name().unwrap_or(path.as_os_str()))
    } else {
        rel
    };
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn scan_tree(root: &Path, opts: &DiscoveryOptions) -> Result<Discovery> {
    let meta = std::fs::metadata(root).map_err(|source| ScanError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(!opts.hidden)
        .follow_links(false)
        .git_ignore(opts.respect_ignore_files)
        .git_global(opts.respect_ignore_files)
        .git_exclude(opts.respect_ignore_files)
        .ignore(opts.respect_ignore_files)
        .parents(opts.respect_ignore_files)
        // .gitignore applies even outside a git checkout (a tarball, a copied tree).
        .require_git(false)
        // Git's own database is never source, even when hidden files are walked.
        .filter_entry(|e| e.file_name() != ".git");
    if !opts.exclude.is_empty() && meta.is_dir() {
        let mut ob = OverrideBuilder::new(root);
        for pat in &opts.exclude {
            // An override glob selects files; a leading `!` turns it into an exclusion.
            ob.add(&format!("!{pat}")).map_err(|e| ScanError::Exclude {
                pattern: pat.clone(),
                message: e.to_string(),
            })?;
        }
        let ov = ob.build().map_err(|e| ScanError::Exclude {
            pattern: opts.exclude.join(", "),
            message: e.to_string(),
        })?;
        builder.overrides(ov);
    }
    let mut to_read = Vec::new();
    let mut skipped = Vec::new();
    for entry in builder.build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = error_path(&e)
                    .map(|p| relative(root, p))
                    .unwrap_or_default();
                skipped.push(Skipped {
                    path,
                    reason: SkipReason::Unreadable {
                        message: e.to_string(),
                    },
                });
                continue;
            }
        };
        let Some(ft) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let rel = relative(root, path);
        if ft.is_symlink() {
            skipped.push(Skipped {
                path: rel,
                reason: SkipReason::Symlink,
            });
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        if crate::Language::from_path(path).is_none() {
            skipped.push(Skipped {
                path: rel,
                reason: SkipReason::NotSource,
            });
            continue;
        }
        to_read.push((rel, path.to_path_buf()));
    }
    // Reading is I/O bound and independent per file.
    let read: Vec<(String, std::result::Result<String, SkipReason>)> = to_read
        .into_par_iter()
        .map(|(rel, path)| {
            let text = read_source(&path, opts.max_file_bytes);
            (rel, text)
        })
        .collect();
    let mut files = Vec::new();
    for (rel, text) in read {
        match text {
            Ok(text) => files.push((rel, text)),
            Err(reason) => skipped.push(Skipped { path: rel, reason }),
        }
    }
    Ok(link::discover_with(files, opts, skipped))
}

fn error_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

/// Read a file as UTF-8 text, or say why not. Reads at most `limit + 1` bytes, so a file
/// that grows during the scan cannot exhaust memory.
pub(crate) fn read_source(path: &Path, limit: u64) -> std::result::Result<String, SkipReason> {
    let unreadable = |e: std::io::Error| SkipReason::Unreadable {
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(unreadable)?.len();
    if len > limit {
        return Err(SkipReason::TooLarge { bytes: len, limit });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(SkipReason::TooLarge {
            bytes: bytes.len() as u64,
            limit,
        });
    }
    if bytes.contains(&0) {
        return Err(SkipReason::Binary);
    }
    String::from_utf8(bytes).map_err(|_| SkipReason::InvalidUtf8)
}
