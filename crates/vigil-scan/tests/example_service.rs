//! `examples/service` against its hand-written `expected.json`: every endpoint found with
//! the right method, route, handler and lines; nothing missing, nothing extra; the file its
//! `.ignore` excludes never appears; and a git-ignored file in a copy is not scanned.

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use vigil_scan::{scan_tree, DiscoveryOptions, UnitKind};

fn service() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/service")
}

fn expected() -> Value {
    let text = fs::read_to_string(service().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

/// (file, method, route, handler, start, end) of the discovered endpoints, sorted.
fn found(root: &Path) -> Vec<(String, String, String, String, u64, u64)> {
    let d = scan_tree(root, &DiscoveryOptions::default()).expect("scan");
    let mut v: Vec<_> = d
        .units
        .iter()
        .filter_map(|u| match &u.kind {
            UnitKind::Endpoint {
                method,
                route,
                handler,
            } => Some((
                u.path.clone(),
                method.clone(),
                route.clone(),
                handler.clone(),
                u.start_line as u64,
                u.end_line as u64,
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn discovery_matches_expected_json_exactly() {
    let exp = expected();
    let mut want: Vec<_> = exp["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_string(),
                e["method"].as_str().unwrap().to_string(),
                e["route"].as_str().unwrap().to_string(),
                e["handler"].as_str().unwrap().to_string(),
                e["start_line"].as_u64().unwrap(),
                e["end_line"].as_u64().unwrap(),
            )
        })
        .collect();
    want.sort();
    let got = found(&service());
    let mut dedup = got.clone();
    dedup.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 == b.2);
    assert_eq!(dedup.len(), got.len(), "duplicate endpoints");
    assert_eq!(got, want);

    let d = scan_tree(&service(), &DiscoveryOptions::default()).unwrap();
    for excluded in exp["excluded"].as_array().unwrap() {
        let p = excluded.as_str().unwrap();
        assert!(service().join(p).is_file(), "{p} is committed");
        assert!(d.units.iter().all(|u| u.path != p) && d.skipped.iter().all(|s| s.path != p));
    }
    // Without ignore files the excluded endpoint is found: the exclusion is real.
    let all = scan_tree(
        &service(),
        &DiscoveryOptions {
            respect_ignore_files: false,
            ..DiscoveryOptions::default()
        },
    )
    .unwrap();
    assert!(all.endpoints().any(|u| u.path == "legacy/debug_console.py"));
}

#[test]
fn expected_json_is_consistent_with_the_sources_and_the_taxonomy() {
    let exp = expected();
    let taxonomy = vigil_taxonomy::Taxonomy::builtin();
    let mut injected = 0;
    let (mut vulnerable, mut safe) = (0, 0);
    for e in exp["endpoints"].as_array().unwrap() {
        let src = fs::read_to_string(service().join(e["file"].as_str().unwrap())).unwrap();
        let (s, end) = (
            e["start_line"].as_u64().unwrap() as usize,
            e["end_line"].as_u64().unwrap() as usize,
        );
        assert!(end - s < 25, "{e}: handlers stay short");
        let code: Vec<&str> = src.lines().skip(s - 1).take(end - s + 1).collect();
        let code = code.join("\n").to_lowercase();
        match e["vulnerability"].as_str() {
            Some(id) => {
                assert!(taxonomy.by_id(id).is_some(), "{id} is a taxonomy id");
                vulnerable += 1;
                if code.contains("ignore") && code.contains("previous instructions") {
                    injected += 1;
                }
            }
            None => safe += 1,
        }
    }
    assert!(
        injected >= 2,
        "at least two vulnerable handlers carry a prompt injection"
    );
    assert!(
        vulnerable >= 10 && safe >= 8,
        "{vulnerable} vulnerable, {safe} safe"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_git_ignored_file_in_a_copy_is_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&service(), dir.path());
    let extra = "from flask import Flask\napp = Flask(__name__)\n\n@app.route(\"/secret\")\ndef secret():\n    return open(\"/etc/shadow\").read()\n";
    fs::create_dir_all(dir.path().join("generated")).unwrap();
    fs::write(dir.path().join("generated/secret.py"), extra).unwrap();
    let before = found(&service());
    let with_extra = found(dir.path());
    assert_eq!(
        with_extra.len(),
        before.len() + 1,
        "the new file is found while not ignored"
    );
    fs::write(dir.path().join(".gitignore"), "generated/\n").unwrap();
    assert_eq!(found(dir.path()), before);
}
