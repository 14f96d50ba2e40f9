//! read → annotate → read again: the verdicts come back as `prior`, every other field and
//! every other byte (XML, JSONL) or value (JSON, in the same key order) is unchanged.

mod common;

use common::{copy_to_temp, data, read, verdict};
use serde_json::Value;
use vigil_triage::{
    read_bytes, read_path, AnnotateOptions, Format, ReadOptions, SuppressionStatus, TriageItem,
    TriageReport, TriageVerdict,
};

/// Annotates, reads the result back (as the same path, so ids match) and checks that each
/// judged item now carries its verdict and is otherwise the item it was.
fn round_trip(report: &TriageReport, verdicts: &[TriageVerdict]) -> (Vec<u8>, TriageReport) {
    let out = report
        .annotate(verdicts, &AnnotateOptions::default())
        .unwrap();
    let again = read_bytes(&report.path, &out, None, &ReadOptions::default()).unwrap();
    assert_eq!(again.format, report.format);
    assert_eq!(again.items.len(), report.items.len());
    for (before, after) in report.items.iter().zip(&again.items) {
        let expected = verdicts.iter().find(|v| v.item_id == before.id).cloned();
        assert_eq!(
            after.prior,
            expected.or(before.prior.clone()),
            "{}",
            before.id
        );
        let strip = |i: &TriageItem| TriageItem {
            prior: None,
            ..i.clone()
        };
        assert_eq!(strip(after), strip(before));
    }
    (out, again)
}

/// Removes every key named "vigil" (recursively).
fn without_vigil(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "vigil")
                .map(|(k, v)| (k.clone(), without_vigil(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_vigil).collect()),
        o => o.clone(),
    }
}

#[test]
fn zap_round_trip_puts_vigil_on_instances_and_keeps_the_rest() {
    let report = read("zap-plus.json");
    let verdicts = [
        verdict(
            "zap:0:0:0",
            true,
            0.93,
            "The script tag comes back unencoded.",
        ),
        verdict(
            "zap:0:1:0",
            false,
            0.12,
            "A CSP is set by the CDN in front; this origin response is not served.",
        ),
        verdict("zap:0:2", false, 0.05, "No instance; nothing to show."),
    ];
    let (out, _) = round_trip(&report, &verdicts);
    let original: Value =
        serde_json::from_slice(&std::fs::read(data("zap-plus.json")).unwrap()).unwrap();
    let annotated: Value = serde_json::from_slice(&out).unwrap();
    // Same values in the same key order once vigil's objects are taken out.
    assert_eq!(
        serde_json::to_string(&without_vigil(&annotated)).unwrap(),
        serde_json::to_string(&original).unwrap()
    );
    let first = &annotated["site"][0]["alerts"][0]["instances"][0]["vigil"];
    assert_eq!(first["verdict"], "true_positive");
    assert_eq!(first["probability"].to_string(), "0.93");
    assert_eq!(first["threshold"].to_string(), "0.5");
    assert_eq!(first["reason"], "The script tag comes back unencoded.");
    assert_eq!(first["decided_by"], "vigil-test");
    // Not judged: untouched. Alert without instances: on the alert.
    assert!(annotated["site"][0]["alerts"][0]["instances"][1]
        .get("vigil")
        .is_none());
    assert_eq!(
        annotated["site"][0]["alerts"][2]["vigil"]["verdict"],
        "false_positive"
    );
}

#[test]
fn nuclei_round_trip_keeps_unjudged_and_bad_lines_byte_for_byte() {
    let report = read("nuclei.jsonl");
    let verdicts = [verdict(
        "nuclei:1",
        true,
        0.88,
        "The response is a git config file.",
    )];
    let (out, again) = round_trip(&report, &verdicts);
    let original = std::fs::read_to_string(data("nuclei.jsonl")).unwrap();
    let out = String::from_utf8(out).unwrap();
    let (o, a): (Vec<&str>, Vec<&str>) = (original.lines().collect(), out.lines().collect());
    assert_eq!(o.len(), a.len());
    assert_eq!(&o[1..], &a[1..]);
    let line1: Value = serde_json::from_str(a[0]).unwrap();
    let orig1: Value = serde_json::from_str(o[0]).unwrap();
    assert_eq!(without_vigil(&line1), orig1);
    assert_eq!(line1["vigil"]["verdict"], "true_positive");
    assert!(out.ends_with('\n'));
    // The bad lines are still reported on the second read.
    assert_eq!(again.warnings.len(), 2);
}

#[test]
fn burp_round_trip_inserts_one_element_and_changes_nothing_else() {
    let report = read("burp.xml");
    let verdicts = [verdict(
        "burp:0",
        true,
        0.97,
        "The quote breaks the query: \"syntax\" error & <b>500</b>.",
    )];
    let (out, again) = round_trip(&report, &verdicts);
    let original = std::fs::read_to_string(data("burp.xml")).unwrap();
    let out = String::from_utf8(out).unwrap();
    let inserted = "  <vigilTriage verdict=\"true_positive\" probability=\"0.97\" threshold=\"0.5\" decidedBy=\"vigil-test\">The quote breaks the query: \"syntax\" error &amp; &lt;b&gt;500&lt;/b&gt;.</vigilTriage>\n  ";
    let first_end = original.find("</issue>").unwrap();
    let expected = format!(
        "{}{inserted}{}",
        &original[..first_end],
        &original[first_end..]
    );
    assert_eq!(out, expected);
    assert_eq!(
        again.items[0].prior.as_ref().unwrap().reason,
        verdicts[0].reason
    );

    // Judging again replaces the element rather than adding a second one.
    let second = [
        verdict("burp:0", false, 0.2, "Rechecked: a WAF page."),
        verdict("burp:1", false, 0.3, "HSTS is set at the load balancer."),
    ];
    let (out2, third) = round_trip(&again, &second);
    let out2 = String::from_utf8(out2).unwrap();
    assert_eq!(out2.matches("<vigilTriage").count(), 2);
    assert_eq!(
        third.items[0].prior.as_ref().unwrap().reason,
        "Rechecked: a WAF page."
    );
    assert!(!third.items[0].prior.as_ref().unwrap().true_positive);
}

#[test]
fn sarif_round_trip_suppresses_false_positives_for_github() {
    let report = read("semgrep.sarif");
    let verdicts = [
        verdict(
            "sarif:0:0",
            false,
            0.08,
            "order_id is an int from the URL converter.",
        ),
        verdict("sarif:0:1", true, 0.91, "cmd is built from the request."),
    ];
    let (out, again) = round_trip(&report, &verdicts);
    let original: Value =
        serde_json::from_slice(&std::fs::read(data("semgrep.sarif")).unwrap()).unwrap();
    let annotated: Value = serde_json::from_slice(&out).unwrap();
    let fp = &annotated["runs"][0]["results"][0];
    assert_eq!(
        fp["suppressions"],
        serde_json::json!([{
            "kind": "external",
            "status": "accepted",
            "justification": "order_id is an int from the URL converter.",
            "properties": {"generatedBy": "vigil"}
        }])
    );
    assert_eq!(fp["properties"]["vigil"]["verdict"], "false_positive");
    assert_eq!(fp["properties"]["vigil"]["probability"].to_string(), "0.08");
    // A true positive gets the property but no suppression; Semgrep's own stays.
    let tp = &annotated["runs"][0]["results"][1];
    assert_eq!(
        tp["suppressions"],
        serde_json::json!([{"kind": "inSource"}])
    );
    assert_eq!(tp["properties"]["vigil"]["verdict"], "true_positive");

    // Everything but vigil's additions is the input, in its key order.
    let mut stripped = without_vigil(&annotated);
    stripped["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .shift_remove("suppressions");
    assert_eq!(
        serde_json::to_string(&stripped).unwrap(),
        serde_json::to_string(&original).unwrap()
    );

    // Changing the verdict to true positive takes vigil's suppression away again.
    let flip = [verdict(
        "sarif:0:0",
        true,
        0.7,
        "On second look, it is a string.",
    )];
    let out3 = again.annotate(&flip, &AnnotateOptions::default()).unwrap();
    let v3: Value = serde_json::from_slice(&out3).unwrap();
    assert!(v3["runs"][0]["results"][0].get("suppressions").is_none());
    assert_eq!(
        v3["runs"][0]["results"][1]["suppressions"],
        serde_json::json!([{"kind": "inSource"}])
    );
}

#[test]
fn sarif_suppression_can_be_left_under_review() {
    let report = read("semgrep.sarif");
    let out = report
        .annotate(
            &[verdict("sarif:0:0", false, 0.1, "r")],
            &AnnotateOptions {
                sarif_suppression_status: SuppressionStatus::UnderReview,
            },
        )
        .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["runs"][0]["results"][0]["suppressions"][0]["status"],
        "underReview"
    );
}

#[test]
fn raw_http_verdicts_go_to_a_sidecar_the_reader_finds() {
    let (_tmp, file) = copy_to_temp("exchange.http");
    let report = read_path(&file, None, &ReadOptions::default()).unwrap();
    let sidecar = report.default_output_path();
    assert_eq!(sidecar, file.with_file_name("exchange.http.vigil.json"));
    let v = verdict(
        "http:exchange.http",
        true,
        0.81,
        "Session cookie without Secure or HttpOnly.",
    );
    report
        .write_annotated(
            std::slice::from_ref(&v),
            &AnnotateOptions::default(),
            &sidecar,
        )
        .unwrap();
    let side: Value = serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    assert_eq!(side["items"][0]["file"], "exchange.http");
    assert_eq!(side["items"][0]["verdict"]["verdict"], "true_positive");
    let again = read_path(&file, None, &ReadOptions::default()).unwrap();
    assert_eq!(again.items[0].prior.as_ref(), Some(&v));

    // A directory: one sidecar inside it, skipped when the directory is read again.
    let (_tmp2, dir) = copy_to_temp("http");
    let report = read_path(&dir, None, &ReadOptions::default()).unwrap();
    let out = report.default_output_path();
    assert_eq!(out, dir.join("vigil-triage.json"));
    let v = verdict(
        "http:orders-17.http",
        true,
        0.77,
        "Order of another user returned.",
    );
    report
        .write_annotated(std::slice::from_ref(&v), &AnnotateOptions::default(), &out)
        .unwrap();
    let again = read_path(&dir, None, &ReadOptions::default()).unwrap();
    assert_eq!(again.format, Format::Http);
    assert_eq!(again.items.len(), 2);
    assert_eq!(again.items[0].prior, None);
    assert_eq!(again.items[1].prior.as_ref(), Some(&v));
}

#[test]
fn default_output_names_sit_beside_the_input() {
    assert_eq!(
        read("zap-plus.json").default_output_path(),
        data("zap-plus.triaged.json")
    );
    assert_eq!(
        read("burp.xml").default_output_path(),
        data("burp.triaged.xml")
    );
    assert_eq!(
        read("semgrep.sarif").default_output_path(),
        data("semgrep.triaged.sarif")
    );
}

#[test]
fn json_layout_is_kept_byte_for_byte_when_nothing_changes() {
    // Both fixtures use the two-space layout serde_json writes; the four-space ZAP report
    // keeps its indentation unit too.
    for name in ["semgrep.sarif", "zap.json"] {
        let report = read(name);
        let out = report.annotate(&[], &AnnotateOptions::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            std::fs::read_to_string(data(name)).unwrap(),
            "{name}"
        );
    }
    let out = read("zap-plus.json")
        .annotate(&[], &AnnotateOptions::default())
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("{\n    \"@programName\": \"ZAP\",\n    \"@version\": \"2.15.0\","));
}

#[test]
fn crlf_files_keep_their_line_endings() {
    let zap = std::fs::read_to_string(data("zap.json"))
        .unwrap()
        .replace('\n', "\r\n");
    let report = read_bytes(
        std::path::Path::new("zap-crlf.json"),
        zap.as_bytes(),
        None,
        &ReadOptions::default(),
    )
    .unwrap();
    let out = report.annotate(&[], &AnnotateOptions::default()).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), zap);

    let jsonl = std::fs::read_to_string(data("nuclei.jsonl"))
        .unwrap()
        .replace('\n', "\r\n");
    let report = read_bytes(
        std::path::Path::new("n.jsonl"),
        jsonl.as_bytes(),
        None,
        &ReadOptions::default(),
    )
    .unwrap();
    let out = report
        .annotate(
            &[verdict("nuclei:3", false, 0.4, "TLS 1.0 is disabled.")],
            &AnnotateOptions::default(),
        )
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let (o, a): (Vec<&str>, Vec<&str>) = (jsonl.split('\n').collect(), out.split('\n').collect());
    assert_eq!(o.len(), a.len());
    assert!(a.iter().all(|l| l.is_empty() || l.ends_with('\r')));
    assert_eq!((o[0], o[1], o[3]), (a[0], a[1], a[3]));
    assert!(a[2].contains("\"vigil\":{\"verdict\":\"false_positive\""));
}
