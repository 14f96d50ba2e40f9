//! Raw HTTP exchanges: a request, a line `---`, then the response (the input of
//! `vigil analyze --kind http`), one file or a directory of them. Verdicts go into a JSON
//! sidecar, since the exchange files have no place for them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::input::{read_limited, ReadOptions};
use crate::{Format, Location, Origin, ReadWarning, TriageError, TriageItem, TriageVerdict};

/// Name of the sidecar written into a directory of exchanges.
pub const DIR_SIDECAR: &str = "vigil-triage.json";
/// Suffix of the sidecar written beside a single exchange file.
pub const FILE_SIDECAR_SUFFIX: &str = ".vigil.json";

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
];

/// Whether the text opens with an HTTP request line (`METHOD target HTTP/x`).
pub(crate) fn looks_like_request(text: &str) -> bool {
    let line = text.lines().next().unwrap_or("").trim_end();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    parts.next().is_none()
        && METHODS.contains(&method)
        && !target.is_empty()
        && version.starts_with("HTTP/")
}

/// Splits at the first line that is exactly `---` (a CR before the newline allowed).
pub(crate) fn split_exchange(text: &str) -> Option<(&str, &str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" && offset > 0 {
            return Some((&text[..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

/// The sidecar file: one entry per annotated exchange.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    format: String,
    version: u32,
    items: Vec<SidecarEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SidecarEntry {
    id: String,
    file: String,
    verdict: serde_json::Value,
}

const SIDECAR_FORMAT: &str = "vigil-triage-sidecar";

/// Where verdicts for `input` (an exchange file or a directory) are written.
pub(crate) fn sidecar_path(input: &Path, is_dir: bool) -> PathBuf {
    if is_dir {
        input.join(DIR_SIDECAR)
    } else {
        let mut name = input.as_os_str().to_owned();
        name.push(FILE_SIDECAR_SUFFIX);
        PathBuf::from(name)
    }
}

fn item_id(file: &Path) -> String {
    format!(
        "http:{}",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

/// One exchange as an item, or why it is not one.
pub(crate) fn parse_exchange(file: &Path, text: &str) -> Result<TriageItem, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (request, response) = split_exchange(text)
        .ok_or("an HTTP exchange needs the request, a line `---`, then the response")?;
    if !looks_like_request(request.trim_start()) {
        return Err(
            "the text before `---` does not open with a request line (METHOD target HTTP/x)".into(),
        );
    }
    let request_line = request.trim_start().lines().next().unwrap_or("").trim_end();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let host = request
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("host")
                .then(|| value.trim().to_string())
        });
    // The file does not say http or https, so a relative target is shown as host + path.
    let url = match host {
        Some(h) if target.starts_with('/') => format!("{h}{target}"),
        _ => target,
    };
    Ok(TriageItem {
        id: item_id(file),
        source: Format::Http,
        rule: "http".into(),
        title: request_line.to_string(),
        description: String::new(),
        severity: String::new(),
        cwe: None,
        location: Location::Http {
            method,
            url,
            param: None,
        },
        request: Some(request.to_string()),
        response: Some(response.to_string()),
        code: None,
        evidence: None,
        no_evidence: false,
        notes: Vec::new(),
        prior: None,
        origin: Origin::Http {
            file: file.to_path_buf(),
        },
    }
    .finish())
}

/// Reads one exchange file's text.
pub(crate) fn read_file(path: &Path, text: &str) -> Result<Vec<TriageItem>, TriageError> {
    let mut item = parse_exchange(path, text).map_err(|what| TriageError::malformed(path, what))?;
    let sidecar = sidecar_path(path, false);
    if let Some(priors) = read_sidecar(&sidecar) {
        item.prior = priors.into_iter().find(|v| v.item_id == item.id);
    }
    Ok(vec![item])
}

/// Reads every exchange file directly inside `dir` (not sub-directories; hidden files and
/// sidecars skipped), in name order. Files that are not exchanges become warnings.
pub(crate) fn read_dir(
    dir: &Path,
    opts: &ReadOptions,
) -> Result<(Vec<TriageItem>, Vec<ReadWarning>), TriageError> {
    let io = |source| TriageError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == DIR_SIDECAR || name.ends_with(FILE_SIDECAR_SUFFIX) {
            continue;
        }
        if entry.file_type().map_err(io)?.is_file() {
            files.push(entry.path());
        }
        if files.len() > opts.max_files {
            return Err(TriageError::malformed(
                dir,
                format!(
                    "more than {} files; triage a smaller directory",
                    opts.max_files
                ),
            ));
        }
    }
    files.sort();
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    let warn = |file: &Path, message: String| ReadWarning {
        path: dir.to_path_buf(),
        at: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        message,
    };
    for file in files {
        let parsed = read_limited(&file, opts.max_bytes).and_then(|bytes| {
            String::from_utf8(bytes).map_err(|e| TriageError::NotUtf8 {
                path: file.clone(),
                offset: e.utf8_error().valid_up_to(),
            })
        });
        match parsed {
            Ok(text) => match parse_exchange(&file, &text) {
                Ok(item) => items.push(item),
                Err(why) => warnings.push(warn(&file, format!("skipped: {why}"))),
            },
            Err(e) => warnings.push(warn(&file, format!("skipped: {e}"))),
        }
    }
    if items.is_empty() {
        let why = match warnings.first() {
            Some(w) => format!("no file in the directory is an HTTP exchange (first: {w})"),
            None => "the directory holds no files".to_string(),
        };
        return Err(TriageError::malformed(dir, why));
    }
    if let Some(priors) = read_sidecar(&sidecar_path(dir, true)) {
        for item in &mut items {
            item.prior = priors.iter().find(|v| v.item_id == item.id).cloned();
        }
    }
    Ok((items, warnings))
}

/// Verdicts from an existing sidecar; a missing or unreadable one means none.
fn read_sidecar(path: &Path) -> Option<Vec<TriageVerdict>> {
    let bytes = read_limited(path, 64 * 1024 * 1024).ok()?;
    let sidecar: Sidecar = serde_json::from_slice(&bytes).ok()?;
    (sidecar.format == SIDECAR_FORMAT).then(|| {
        sidecar
            .items
            .iter()
            .filter_map(|e| TriageVerdict::from_json(&e.id, &e.verdict))
            .collect()
    })
}

/// The sidecar JSON for these verdicts (items without one are left out).
pub(crate) fn sidecar_bytes(
    items: &[TriageItem],
    verdict_of: &dyn Fn(&str) -> Option<TriageVerdict>,
) -> Vec<u8> {
    let entries = items
        .iter()
        .filter_map(|item| {
            let verdict = verdict_of(&item.id)?;
            let file = match &item.origin {
                Origin::Http { file } => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            Some(SidecarEntry {
                id: item.id.clone(),
                file,
                verdict: verdict.to_json(),
            })
        })
        .collect();
    let sidecar = Sidecar {
        format: SIDECAR_FORMAT.into(),
        version: 1,
        items: entries,
    };
    let mut out = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
    out.push(b'\n');
    out
}
