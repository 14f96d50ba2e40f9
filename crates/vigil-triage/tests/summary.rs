//! The triage summary: counts by verdict and by rule, as text and Markdown.

mod common;

use std::path::Path;

use common::{read, verdict};
use vigil_triage::{read_bytes, Format, ReadOptions, RuleCounts, TriageSummary};

fn zap_summary() -> TriageSummary {
    let report = read("zap-plus.json");
    report.summary(&[
        verdict("zap:0:0:0", true, 0.93, "a"),
        verdict("zap:0:0:1", false, 0.2, "b"),
        verdict("zap:0:1:0", false, 0.1, "c"),
    ])
}

#[test]
fn counts_by_verdict_and_rule() {
    let s = zap_summary();
    assert_eq!(s.format, Format::Zap);
    assert_eq!(
        (
            s.items,
            s.true_positives,
            s.false_positives,
            s.undecided,
            s.no_evidence
        ),
        (4, 1, 2, 1, 1)
    );
    assert_eq!(s.thresholds, [0.5]);
    let rule = |rule: &str, title: &str, items, tp, fp, un| RuleCounts {
        rule: rule.into(),
        title: title.into(),
        items,
        true_positives: tp,
        false_positives: fp,
        undecided: un,
    };
    assert_eq!(
        s.by_rule,
        [
            rule("40012", "Cross Site Scripting (Reflected)", 2, 1, 1, 0),
            rule(
                "10038",
                "Content Security Policy (CSP) Header Not Set",
                1,
                0,
                1,
                0
            ),
            rule("10096", "Timestamp Disclosure - Unix", 1, 0, 0, 1),
        ]
    );
}

#[test]
fn text_rendering() {
    assert_eq!(
        zap_summary().to_text(),
        "4 findings (zap): 1 true positive, 2 false positive, 1 undecided; 1 without evidence\n\
         threshold: 0.5\n\
         rule   items     TP     FP  undec  title\n\
         40012      2      1      1      0  Cross Site Scripting (Reflected)\n\
         10038      1      0      1      0  Content Security Policy (CSP) Header Not Set\n\
         10096      1      0      0      1  Timestamp Disclosure - Unix\n"
    );
}

#[test]
fn markdown_rendering_escapes_table_cells() {
    let md = zap_summary().to_markdown();
    assert!(md.starts_with("## Triage summary (zap)\n"));
    assert!(md.contains("| false positive | 2 |\n"));
    assert!(md.contains("Threshold: 0.5\n"));
    assert!(md.contains("| 40012 | Cross Site Scripting (Reflected) | 2 | 1 | 1 | 0 |\n"));

    // A pipe in a rule id must not split the row; several thresholds are all listed.
    let line = br#"{"template-id":"a|b","info":{"name":"two\nlines","severity":"low"},"matched-at":"https://x.test/"}"#;
    let report = read_bytes(Path::new("n.jsonl"), line, None, &ReadOptions::default()).unwrap();
    let mut v = verdict("nuclei:1", true, 0.9, "r");
    v.threshold = 0.7;
    let s = report.summary(&[v]);
    assert_eq!(s.thresholds, [0.7]);
    let md = s.to_markdown();
    assert!(
        md.contains("| a\\|b | two lines | 1 | 1 | 0 | 0 |\n"),
        "{md}"
    );
}

#[test]
fn several_thresholds_and_no_verdicts() {
    let report = read("zap-plus.json");
    let mut a = verdict("zap:0:0:0", true, 0.9, "a");
    a.threshold = 0.7;
    let b = verdict("zap:0:0:1", false, 0.2, "b");
    let s = report.summary(&[a, b]);
    assert_eq!(s.thresholds, [0.5, 0.7]);
    assert!(s.to_text().contains("\nthreshold: 0.5, 0.7\n"));
    assert!(report
        .summary(&[])
        .to_text()
        .contains("threshold: none (no verdicts)"));
}
