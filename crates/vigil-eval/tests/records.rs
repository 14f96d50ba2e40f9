mod common;

use common::record;
use vigil_eval::{group_by_variant, read_jsonl, write_jsonl, EvalError};

#[test]
fn jsonl_round_trips_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.jsonl");
    let mut a = record("FT-CH", 1, true, true);
    a.probability = Some(0.875);
    a.threshold = Some(0.5);
    a.true_type = Some("sqli".into());
    a.predicted_type = Some("xss".into());
    a.analysis_tokens = 143;
    a.generated = Some("## Title\nline \"quoted\"".into());
    a.reference = Some("ref".into());
    a.seconds = 1.25;
    let b = record("SC", 2, false, true);
    write_jsonl(&path, &[a.clone(), b.clone()]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "one JSON object per line");
    assert_eq!(read_jsonl(&path).unwrap(), vec![a, b]);
}

#[test]
fn optional_fields_may_be_omitted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("min.jsonl");
    std::fs::write(
        &path,
        "{\"variant\":\"SC\",\"sample_id\":\"x\",\"group\":\"g\",\"label\":true,\"predicted\":false}\n\n",
    )
    .unwrap();
    let recs = read_jsonl(&path).unwrap();
    assert_eq!(recs.len(), 1, "blank line skipped");
    assert_eq!((recs[0].probability, recs[0].analysis_tokens), (None, 0));
}

#[test]
fn a_bad_line_is_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    write_jsonl(&path, &[record("SC", 1, true, true)]).unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"variant\":\"SC\",\"sample_id\":\"y\"}\n"); // line 2: fields missing
    std::fs::write(&path, text).unwrap();
    match read_jsonl(&path) {
        Err(EvalError::BadRecord { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a bad-record error, got {other:?}"),
    }
    let err = read_jsonl(&dir.path().join("missing.jsonl")).unwrap_err();
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}

#[test]
fn records_group_by_variant_in_first_seen_order() {
    let recs = [
        record("FT-CH", 1, true, true),
        record("SC", 1, true, false),
        record("FT-CH", 2, false, false),
    ];
    let groups = group_by_variant(&recs);
    let summary: Vec<(&str, Vec<&str>)> = groups
        .iter()
        .map(|(v, rs)| {
            (
                v.as_str(),
                rs.iter().map(|r| r.sample_id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(summary, [("FT-CH", vec!["s1", "s2"]), ("SC", vec!["s1"])]);
}
