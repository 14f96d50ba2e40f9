#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vigil_triage::{read_path, Format, ReadOptions, TriageReport, TriageVerdict};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read(name: &str) -> TriageReport {
    read_path(&data(name), None, &ReadOptions::default())
        .unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

pub fn verdict(
    item_id: &str,
    true_positive: bool,
    probability: f32,
    reason: &str,
) -> TriageVerdict {
    TriageVerdict {
        item_id: item_id.to_string(),
        true_positive,
        probability,
        threshold: 0.5,
        reason: reason.to_string(),
        decided_by: "vigil-test".to_string(),
    }
}

/// Copies a fixture into a fresh temporary directory (write-back tests never touch
/// tests/data).
pub fn copy_to_temp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = data(name);
    let dst = dir.path().join(src.file_name().unwrap());
    if src.is_dir() {
        std::fs::create_dir(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    } else {
        std::fs::copy(&src, &dst).unwrap();
    }
    (dir, dst)
}

pub fn format_of(name: &str) -> Format {
    let path = data(name);
    let bytes = std::fs::read(&path).unwrap();
    vigil_triage::detect(&path, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}
