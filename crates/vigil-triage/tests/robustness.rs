//! Every prefix and many corrupted copies of every fixture, read with detection and with
//! each explicit format: the reader returns (items or an error) and never panics, and
//! whatever it reads can be annotated and read back with the verdicts.

mod common;

use std::path::Path;

use common::data;
use vigil_triage::{read_bytes, AnnotateOptions, Format, ReadOptions, TriageVerdict};

const FIXTURES: [&str; 9] = [
    "zap-plus.json",
    "zap.json",
    "burp.xml",
    "burp-bad-base64.xml",
    "billion-laughs.xml",
    "nuclei.jsonl",
    "semgrep.sarif",
    "codeql.sarif",
    "exchange.http",
];

fn exercise(name: &str, bytes: &[u8]) {
    let opts = ReadOptions {
        source_root: Some(data("src")),
        ..ReadOptions::default()
    };
    let formats = [None].into_iter().chain(Format::ALL.into_iter().map(Some));
    for format in formats {
        if let Ok(report) = read_bytes(Path::new(name), bytes, format, &opts) {
            let verdicts: Vec<TriageVerdict> = report
                .items
                .iter()
                .enumerate()
                .map(|(i, item)| TriageVerdict {
                    item_id: item.id.clone(),
                    true_positive: i % 2 == 0,
                    probability: 0.5,
                    threshold: 0.5,
                    reason: "<&\"reason\"]]>".into(),
                    decided_by: "robustness".into(),
                })
                .collect();
            let out = match report.annotate(&verdicts, &AnnotateOptions::default()) {
                Ok(out) => out,
                Err(e) => panic!("{name} ({format:?}): read but could not annotate: {e}"),
            };
            // What was read and annotated reads again, with every verdict on it (raw HTTP
            // writes a sidecar, not the exchange).
            if report.format != Format::Http {
                let again = read_bytes(Path::new(name), &out, Some(report.format), &opts)
                    .unwrap_or_else(|e| {
                        panic!("{name} ({format:?}): annotated output unreadable: {e}")
                    });
                assert_eq!(again.items.len(), report.items.len(), "{name} ({format:?})");
                assert!(
                    again.items.iter().all(|i| i.prior.is_some()),
                    "{name} ({format:?})"
                );
            }
        }
    }
}

#[test]
fn truncated_fixtures_never_panic() {
    for name in FIXTURES {
        let bytes = std::fs::read(data(name)).unwrap();
        for cut in (0..bytes.len()).step_by(3) {
            exercise(name, &bytes[..cut]);
        }
    }
}

#[test]
fn corrupted_fixtures_never_panic() {
    // Deterministic corruption: overwrite one byte in every 97 with a structural character.
    let noise = [b'<', b'>', b'"', b'{', b']', b'&', 0xff, b'\n', b'-'];
    for name in FIXTURES {
        let bytes = std::fs::read(data(name)).unwrap();
        for (k, &n) in noise.iter().enumerate() {
            let mut copy = bytes.clone();
            for i in (k * 13..copy.len()).step_by(97) {
                copy[i] = n;
            }
            exercise(name, &copy);
        }
    }
}
