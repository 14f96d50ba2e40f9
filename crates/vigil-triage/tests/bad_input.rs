//! Corrupt, hostile, huge and mislabelled input: an error that names the file (and the
//! line or part), never a panic.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{data, read, verdict};
use vigil_triage::{read_bytes, read_path, AnnotateOptions, Format, ReadOptions, TriageError};

fn read_text(
    name: &str,
    text: &[u8],
    format: Option<Format>,
) -> Result<vigil_triage::TriageReport, TriageError> {
    read_bytes(Path::new(name), text, format, &ReadOptions::default())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

#[test]
fn empty_and_blank_files_are_refused_by_name() {
    for (name, bytes) in [("empty.json", &b""[..]), ("blank.jsonl", b" \n\n\t\n")] {
        for format in [None, Some(Format::Zap), Some(Format::Nuclei)] {
            let e = read_text(name, bytes, format).unwrap_err();
            assert!(matches!(e, TriageError::Empty { .. }), "{e}");
            assert_eq!(e.to_string(), format!("{name}: the file is empty"));
        }
    }
}

#[test]
fn truncated_json_reports_where_it_stops() {
    let full = fixture("zap-plus.json");
    let cut = &full[..full.len() / 2];
    let e = read_text("zap-cut.json", cut, None).unwrap_err();
    match &e {
        TriageError::Json { line, .. } => assert!(*line > 1),
        other => panic!("expected a JSON error, got {other}"),
    }
    assert!(
        e.to_string()
            .starts_with("zap-cut.json: invalid JSON at line"),
        "{e}"
    );

    let full = fixture("codeql.sarif");
    let e = read_text("cut.sarif", &full[..full.len() - 20], None).unwrap_err();
    assert!(matches!(e, TriageError::Json { .. }), "{e}");
}

#[test]
fn truncated_xml_is_an_error() {
    let full = fixture("burp.xml");
    let text = String::from_utf8(full).unwrap();
    let cut = &text[..text.find("<issueDetail>").unwrap()];
    let e = read_text("burp-cut.xml", cut.as_bytes(), None).unwrap_err();
    assert!(e.to_string().starts_with("burp-cut.xml: "), "{e}");
    assert!(
        matches!(e, TriageError::Malformed { .. } | TriageError::Xml { .. }),
        "{e}"
    );
}

#[test]
fn every_nuclei_line_bad_is_an_error_naming_the_first() {
    let e = read_text(
        "n.jsonl",
        b"{\"template-id\": \"x\"\n{oops}\n",
        Some(Format::Nuclei),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string().split(" (").next().unwrap(),
        "n.jsonl: no line is a Nuclei finding"
    );
    assert!(e.to_string().contains("line 1: skipped: not JSON"), "{e}");
}

#[test]
fn the_wrong_explicit_format_is_refused_not_misread() {
    // SARIF named as ZAP and ZAP named as SARIF.
    let e = read_text("x.sarif", &fixture("semgrep.sarif"), Some(Format::Zap)).unwrap_err();
    assert!(e.to_string().contains("not a ZAP JSON report"), "{e}");
    let e = read_text("z.json", &fixture("zap.json"), Some(Format::Sarif)).unwrap_err();
    assert!(e.to_string().contains("not SARIF"), "{e}");
    // Nuclei lines are not one JSON document.
    let e = read_text("n.jsonl", &fixture("nuclei.jsonl"), Some(Format::Zap)).unwrap_err();
    assert!(matches!(e, TriageError::Json { .. }), "{e}");
    // Burp XML read as Nuclei: no line is a finding.
    let e = read_text("b.xml", &fixture("burp.xml"), Some(Format::Nuclei)).unwrap_err();
    assert!(e.to_string().contains("no line is a Nuclei finding"), "{e}");
    // Another XML document named as Burp.
    let e = read_text(
        "pom.xml",
        b"<?xml version=\"1.0\"?><project><a/></project>",
        Some(Format::Burp),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("the root element is <project>"),
        "{e}"
    );
    // A raw exchange without its separator.
    let e = read_text(
        "r.http",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Some(Format::Http),
    )
    .unwrap_err();
    assert!(e.to_string().contains("a line `---`"), "{e}");
}

#[test]
fn unrecognised_content_asks_for_an_explicit_format() {
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "notes.txt",
            b"just some notes\n",
            "neither JSON, XML nor an HTTP exchange",
        ),
        (
            "pom.xml",
            b"<?xml version=\"1.0\"?>\n<project/>",
            "not a Burp issues export",
        ),
        ("data.json", b"{\"a\": 1}", "neither a ZAP report"),
        (
            "r.http",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "no line `---`",
        ),
    ];
    for (name, bytes, why) in cases {
        let e = read_text(name, bytes, None).unwrap_err();
        assert!(
            matches!(e, TriageError::UnknownFormat { .. }),
            "{name}: {e}"
        );
        let s = e.to_string();
        assert!(
            s.starts_with(&format!("{name}: ")) && s.contains(why),
            "{s}"
        );
        assert!(s.contains("zap, burp, nuclei, sarif or http"), "{s}");
    }
}

#[test]
fn files_over_the_size_limit_are_refused_before_parsing() {
    let opts = ReadOptions {
        max_bytes: 1000,
        ..ReadOptions::default()
    };
    let path = data("zap-plus.json");
    let size = std::fs::metadata(&path).unwrap().len();
    let e = read_path(&path, None, &opts).unwrap_err();
    match &e {
        TriageError::TooLarge { size: s, limit, .. } => {
            assert_eq!(*s, size);
            assert_eq!(*limit, 1000);
        }
        other => panic!("expected TooLarge, got {other}"),
    }
    assert!(e.to_string().contains("zap-plus.json"), "{e}");
    let e = read_bytes(Path::new("big.jsonl"), &vec![b' '; 1001], None, &opts).unwrap_err();
    assert!(matches!(e, TriageError::TooLarge { size: 1001, .. }), "{e}");
}

#[test]
fn non_utf8_input_names_the_offset() {
    let mut bytes = b"{\"site\": [], \"x\": \"caf".to_vec();
    bytes.push(0xE9); // Latin-1 é
    bytes.extend_from_slice(b"\"}");
    let e = read_text("latin1.json", &bytes, None).unwrap_err();
    assert!(matches!(e, TriageError::NotUtf8 { offset: 22, .. }), "{e}");
    let e = read_text("latin1.json", &bytes, Some(Format::Zap)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "latin1.json: not UTF-8 text (invalid byte at offset 22)"
    );
}

#[test]
fn a_billion_laughs_file_fails_fast_without_expanding() {
    let start = Instant::now();
    let e = read_path(&data("billion-laughs.xml"), None, &ReadOptions::default()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(matches!(e, TriageError::XmlEntities { .. }), "{e}");
    assert!(e.to_string().contains("billion-laughs.xml"), "{e}");
    // Named explicitly as Burp, the same.
    let e = read_path(
        &data("billion-laughs.xml"),
        Some(Format::Burp),
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, TriageError::XmlEntities { .. }), "{e}");
}

#[test]
fn an_undeclared_entity_reference_is_an_error_not_an_expansion() {
    let xml = b"<issues><issue><type>1</type><name>&xxe;</name></issue></issues>";
    let e = read_text("xxe.xml", xml, None).unwrap_err();
    assert!(matches!(e, TriageError::Xml { .. }), "{e}");
    assert!(e.to_string().contains("&xxe;"), "{e}");
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let mut doc = String::from("{\"site\": ");
    doc.push_str(&"[".repeat(100_000));
    let e = read_text("deep.json", doc.as_bytes(), Some(Format::Zap)).unwrap_err();
    assert!(matches!(e, TriageError::Json { .. }), "{e}");
}

#[test]
fn a_directory_without_exchanges_is_an_error_and_bad_files_are_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.txt"), "hello").unwrap();
    std::fs::write(tmp.path().join("b.bin"), [0xffu8, 0xfe, 0x00]).unwrap();
    let e = read_path(tmp.path(), None, &ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("no file in the directory is an HTTP exchange"),
        "{e}"
    );

    std::fs::write(
        tmp.path().join("c.http"),
        "GET / HTTP/1.1\nHost: a\n\n---\nHTTP/1.1 200 OK\n\n",
    )
    .unwrap();
    let r = read_path(tmp.path(), None, &ReadOptions::default()).unwrap();
    assert_eq!(r.items.len(), 1);
    let at: Vec<&str> = r.warnings.iter().map(|w| w.at.as_str()).collect();
    assert_eq!(at, ["a.txt", "b.bin"]);
    assert!(
        r.warnings[1].message.contains("not UTF-8"),
        "{}",
        r.warnings[1]
    );

    let e = read_path(tmp.path(), Some(Format::Zap), &ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let e = read_path(&data("no-such-report.json"), None, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, TriageError::Io { .. }));
    assert!(
        e.to_string().contains("no-such-report.json: cannot read"),
        "{e}"
    );
}

#[test]
fn bad_verdicts_are_refused() {
    let report = read("zap.json");
    let opts = AnnotateOptions::default();
    let e = report
        .annotate(&[verdict("zap:9:9:9", true, 0.9, "r")], &opts)
        .unwrap_err();
    assert!(matches!(e, TriageError::UnknownItem { .. }), "{e}");
    for p in [f32::NAN, -0.1, 1.5] {
        let e = report
            .annotate(&[verdict("zap:0:0:0", true, p, "r")], &opts)
            .unwrap_err();
        assert!(e.to_string().contains("probability"), "{e}");
    }
    let v = verdict("zap:0:0:0", true, 0.9, "r");
    let e = report.annotate(&[v.clone(), v], &opts).unwrap_err();
    assert!(e.to_string().contains("two verdicts"), "{e}");
}

#[test]
fn a_result_that_is_not_an_object_is_skipped_with_a_warning() {
    let sarif = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},"results":[42,{"ruleId":"r1","message":{"text":"m"}}]}]}"#;
    let r = read_text("odd.sarif", sarif, None).unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].id, "sarif:0:1");
    assert!(r.items[0].no_evidence);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(
        r.warnings[0].to_string(),
        "odd.sarif: run 0 result 0: skipped: the result is not a JSON object"
    );
}

#[test]
fn utf16_input_is_named_as_such() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "{\"site\": []}".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    for format in [None, Some(Format::Zap)] {
        let e = read_text("ps.json", &bytes, format).unwrap_err();
        assert!(matches!(e, TriageError::Utf16 { .. }), "{e}");
        assert!(e.to_string().starts_with("ps.json: UTF-16 text"), "{e}");
    }
}
