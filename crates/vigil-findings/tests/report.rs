//! Fingerprints, the text / JSON / Markdown writers, baselines and --fail-on.

mod common;

use common::{finding, sample_report, SQLI_CODE, SQLI_FIX};
use serde_json::Value;
use vigil_findings::*;
use vigil_taxonomy::Severity;

// ---------------------------------------------------------------- fingerprints

#[test]
fn fingerprint_matches_its_documented_definition() {
    // sha256("vigil-finding-v1\0sql_injection\0src/a.py\0x = 1\0"), computed with Python's
    // hashlib. Changing it would orphan every saved baseline.
    let want = "2a50b1e0b7b19b49052b29e3eeed79bd318d838f251924135b996faf84ecc38c";
    assert_eq!(fingerprint("sql_injection", "src/a.py", "x = 1"), want);
    // Path spelling and whitespace in the code do not matter.
    assert_eq!(
        fingerprint("sql_injection", ".\\src\\a.py", "  x   =\r\n 1\n"),
        want
    );
}

#[test]
fn fingerprint_survives_a_move_but_not_a_code_change() {
    let at_10 = finding("sql_injection", "src/db.py", (10, 11), SQLI_CODE, "python");
    // The same function 30 lines lower and re-indented inside a class.
    let moved_code: String = SQLI_CODE.lines().map(|l| format!("    {l}\n")).collect();
    let at_40 = finding(
        "sql_injection",
        "src/db.py",
        (40, 41),
        &moved_code,
        "python",
    );
    assert_eq!(at_10.fingerprint, at_40.fingerprint);

    let changed = finding("sql_injection", "src/db.py", (10, 11), SQLI_FIX, "python");
    assert_ne!(at_10.fingerprint, changed.fingerprint);
    let other_file = finding("sql_injection", "src/db2.py", (10, 11), SQLI_CODE, "python");
    assert_ne!(at_10.fingerprint, other_file.fingerprint);
    let other_rule = finding(
        "nosql_injection",
        "src/db.py",
        (10, 11),
        SQLI_CODE,
        "python",
    );
    assert_ne!(at_10.fingerprint, other_rule.fingerprint);
    assert_eq!(at_10.fingerprint.len(), 64);
}

#[test]
fn finding_new_takes_facts_from_the_taxonomy() {
    let f = finding("sql_injection", "a.py", (1, 2), "x", "python");
    assert_eq!(f.title, "SQL Injection");
    assert_eq!(f.cwe, Some(89));
    assert_eq!(f.owasp.as_deref(), Some("A03:2021 Injection"));
    assert_eq!(f.severity, Severity::Critical);
}

#[test]
fn sort_puts_most_severe_first_then_path_and_line() {
    let r = sample_report();
    let order: Vec<(&str, &str)> = r
        .findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.location.path.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("sql_injection", "src/db/users.py"),
            ("bola", "src/api/orders.py"),
            ("hardcoded_secrets", "src/config.py"),
            ("xss", "web/app.js"),
            ("missing_security_headers", "web/app.js"),
        ]
    );
    assert_eq!(r.max_severity(), Some(Severity::Critical));
    assert_eq!(
        r.counts_by_severity(),
        [
            (Severity::Critical, 1),
            (Severity::High, 2),
            (Severity::Medium, 1),
            (Severity::Low, 1),
            (Severity::Info, 0)
        ]
    );
}

// ---------------------------------------------------------------- text

#[test]
fn text_groups_by_severity_then_file_and_shows_every_fact() {
    let out = TextWriter::with_color(false)
        .render(&sample_report())
        .unwrap();
    assert!(!out.contains('\u{1b}'), "colour off but escapes present");
    assert!(out.contains("10 units analysed in 12.3 s: 5 findings (1 critical, 2 high, 1 medium, 1 low), 6 clean, 1 skipped, 0 suppressed by baseline"), "{out}");

    let pos = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing in\n{out}"))
    };
    // Severity groups in order, files inside them in order.
    assert!(pos("CRITICAL (1)") < pos("HIGH (2)"));
    assert!(pos("HIGH (2)") < pos("  src/api/orders.py\n"));
    assert!(pos("  src/api/orders.py\n") < pos("  src/config.py\n"));
    assert!(pos("  src/config.py\n") < pos("MEDIUM (1)"));
    assert!(pos("MEDIUM (1)") < pos("LOW (1)"));
    assert!(!out.contains("INFO ("));

    assert!(out.contains("SQL Injection src/db/users.py:10-11 [sql_injection]"));
    assert!(out.contains("GET /users/{id} -> get_user"));
    assert!(out.contains("CWE-89 | A03:2021 Injection | confidence 0.91, probability 0.87"));
    assert!(out.contains("The id path parameter is concatenated into SQL."));
    // The fix, line by line, behind a gutter.
    for line in SQLI_FIX.lines() {
        assert!(out.contains(&format!("        | {line}\n")), "{line}");
    }
    assert!(out.contains("assets/vendor.min.js: larger than 1 MiB"));
}

#[test]
fn text_colours_only_when_asked() {
    let r = sample_report();
    let coloured = TextWriter::with_color(true).render(&r).unwrap();
    assert!(coloured.contains("\u{1b}["));
    let plain = TextWriter::with_color(false).render(&r).unwrap();
    // Stripping SGR sequences from the coloured output gives the plain output.
    let mut stripped = String::new();
    let mut chars = coloured.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            stripped.push(c);
        }
    }
    assert_eq!(stripped, plain);
}

#[test]
fn text_with_no_findings_says_so() {
    let mut r = sample_report();
    r.findings.clear();
    r.skipped.clear();
    let out = TextWriter::with_color(false).render(&r).unwrap();
    assert!(out.contains(": 0 findings, 6 clean"), "{out}");
    assert!(out.contains("No findings."));
}

// ---------------------------------------------------------------- hostile text

fn hostile_report() -> ScanReport {
    let mut r = sample_report();
    let f = &mut r.findings[0];
    f.title = "SQL Injection\nCRITICAL (99)".into();
    f.reason = "bad\u{1b}[2J\u{1b}]8;;https://evil.example\u{7}click\u{1b}]8;;\u{7}\n\
                CRITICAL (99)\n<script>alert(1)</script> **bold** [x](javascript:alert(1))\n\
                # Injected heading\n| fake | table |\r\u{202e}txt.exe"
        .into();
    f.fixed_code =
        Some("x = 1\n```\n# Injected heading\n````\n<img src=x onerror=alert(1)>\n".into());
    f.location.path = "src/\u{1b}[31mdb.py".into();
    f.endpoint.as_mut().unwrap().route = "/a`b`\n# route".into();
    r
}

#[test]
fn text_never_passes_control_characters_through() {
    let out = TextWriter::with_color(false)
        .render(&hostile_report())
        .unwrap();
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} reached the terminal:\n{out}");
    }
    assert!(out.contains("bad\\u{1b}[2J"));
    // Injected "lines" stay inside the indented finding; none starts a line of its own.
    for line in out.lines() {
        assert!(!line.starts_with("CRITICAL (99)"), "{out}");
        assert!(!line.starts_with('#'), "{out}");
    }
    assert!(out.contains("SQL Injection\\nCRITICAL (99)"));
}

/// Lines of a Markdown document outside fenced code blocks, and the contents of each
/// block, following CommonMark's rules for backtick fences.
fn split_markdown(doc: &str) -> (Vec<String>, Vec<String>) {
    let mut prose = Vec::new();
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for line in doc.lines() {
        let ticks = line.chars().take_while(|&c| c == '`').count();
        match &mut open {
            None if ticks >= 3 => open = Some((ticks, String::new())),
            None => prose.push(line.to_string()),
            Some((n, body)) => {
                if ticks >= *n && line.trim_end().chars().all(|c| c == '`') {
                    blocks.push(std::mem::take(body));
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "unclosed code block");
    (prose, blocks)
}

#[test]
fn markdown_escapes_prose_and_fences_code_safely() {
    let r = hostile_report();
    let out = MarkdownWriter.render(&r).unwrap();
    let (prose, blocks) = split_markdown(&out);
    let prose = prose.join("\n");
    assert!(!prose.contains("<script"), "{prose}");
    assert!(!prose.contains("<img"), "{prose}");
    assert!(!prose.contains("](javascript"), "{prose}");
    assert!(!prose.contains("**bold**"), "{prose}");
    assert!(!prose.contains('\u{1b}') && !prose.contains('\u{202e}'));
    for line in prose.lines() {
        assert!(!line.starts_with("# Injected"), "{line}");
        assert!(!line.starts_with("| fake"), "{line}");
        assert!(!line.starts_with("# route"), "{line}");
    }
    // The fix comes back verbatim as one block: its backticks did not close the fence.
    assert!(
        blocks
            .iter()
            .any(|b| b == r.findings[0].fixed_code.as_ref().unwrap()),
        "{blocks:#?}"
    );
}

#[test]
fn markdown_has_summary_tables_and_a_section_per_finding() {
    let r = sample_report();
    let out = MarkdownWriter.render(&r).unwrap();
    assert!(out.starts_with("# vigil scan report\n"));
    for row in [
        "| Critical | 1 |",
        "| High | 2 |",
        "| Medium | 1 |",
        "| Low | 1 |",
        "| Info | 0 |",
    ] {
        assert!(out.contains(row), "{row}");
    }
    let table_rows = out.lines().filter(|l| l.starts_with("| [")).count();
    assert_eq!(table_rows, 5);
    assert!(
        out.contains(
            "| [1](#finding-1) | Critical | SQL Injection \\(CWE\\-89\\) | src/db/users\\.py:10–11 | GET /users/\\{id\\} | 0.91 |"
        ),
        "{out}"
    );
    let sections = out.lines().filter(|l| l.starts_with("## ")).count();
    assert_eq!(sections, 5 + 1, "five findings and the skipped list");
    assert!(out.contains("## 1\\. SQL Injection in src/db/users\\.py:10–11"));
    assert!(out.contains("[CWE\\-89](https://cwe.mitre.org/data/definitions/89.html)"));
    let (_, blocks) = split_markdown(&out);
    assert!(blocks.iter().any(|b| b == SQLI_FIX));
    assert!(blocks.iter().any(|b| b == SQLI_CODE));
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_round_trips_and_is_documented_shape() {
    let r = sample_report();
    let text = JsonWriter.render(&r).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "vigil-scan-report");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["tool"]["name"], "vigil");
    assert_eq!(v["started_at"], "2026-11-22T00:00:00Z");
    assert_eq!(v["findings"][0]["severity"], "critical");
    assert_eq!(v["findings"][0]["cwe"], 89);
    assert_eq!(v["findings"][0]["location"]["start_line"], 10);
    assert_eq!(v["findings"][0]["endpoint"]["route"], "/users/{id}");
    assert_eq!(v["findings"][1]["endpoint"], Value::Null);
    assert_eq!(v["skipped"][0]["path"], "assets/vendor.min.js");

    assert_eq!(ScanReport::from_json(&text).unwrap(), r);
}

#[test]
fn json_reader_rejects_other_documents_by_name() {
    let baseline = Baseline::from_report(&sample_report()).to_json();
    let err = ScanReport::from_json_named(&baseline, "old.json").unwrap_err();
    assert!(matches!(err, FindingsError::WrongFormat { .. }));
    assert!(err.to_string().contains("old.json"), "{err}");

    let err = ScanReport::from_json_named("{\"format\": ", "cut.json").unwrap_err();
    assert!(matches!(err, FindingsError::Corrupt { .. }));
    assert!(
        err.to_string().starts_with("cut.json is not valid"),
        "{err}"
    );

    let future = r#"{"format": "vigil-scan-report", "format_version": 99}"#;
    assert!(matches!(
        ScanReport::from_json(future),
        Err(FindingsError::WrongFormat { version: 99, .. })
    ));
}

#[test]
fn non_finite_confidence_survives_a_round_trip() {
    let mut r = sample_report();
    r.findings[0].confidence = f32::NAN;
    r.findings[0].probability = Some(f32::INFINITY);
    let back = ScanReport::from_json(&JsonWriter.render(&r).unwrap()).unwrap();
    assert_eq!(back.findings[0].confidence, 0.0);
    assert_eq!(back.findings[0].probability, None);
}

#[test]
fn json_file_reader_names_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.json");
    let err = ScanReport::read_json_file(&path).unwrap_err();
    assert!(err.to_string().contains("nope.json"), "{err}");
}

// ---------------------------------------------------------------- baseline

#[test]
fn baseline_round_trip_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil-baseline.json");
    let r = sample_report();
    let mut b = Baseline::from_report(&r);
    assert_eq!(b.len(), 5);
    b.save(&path).unwrap();
    let loaded = Baseline::load(&path).unwrap();
    assert_eq!(loaded, b);
    // Rule and path are kept for the people reading the file.
    let sqli_entry = loaded
        .entries()
        .iter()
        .find(|e| e.fingerprint == r.findings[0].fingerprint)
        .unwrap();
    assert_eq!(sqli_entry.rule_id.as_deref(), Some("sql_injection"));
    assert_eq!(sqli_entry.path.as_deref(), Some("src/db/users.py"));

    // A later scan where every unit moved down 100 lines: all still accepted.
    let mut later = sample_report();
    for f in &mut later.findings {
        let l = &f.location;
        *f = finding(
            &f.rule_id,
            &l.path,
            (l.start_line + 100, l.end_line + 100),
            &f.snippet,
            &f.language,
        );
    }
    assert_eq!(loaded.apply(&mut later), 5);
    assert!(later.findings.is_empty());
    assert_eq!(later.suppressed_by_baseline, 5);
    assert_eq!(exit_code(&later, FailOn::Low), EXIT_OK);

    // Accept only the SQL injection, with a justification: the rest stays.
    let sqli = r.findings[0].fingerprint.clone();
    b = Baseline::from_entries([BaselineEntry {
        fingerprint: sqli.to_ascii_uppercase(),
        rule_id: None,
        path: None,
        justification: Some("ids are integers by the route converter".into()),
    }]);
    b.save(&path).unwrap();
    let loaded = Baseline::load(&path).unwrap();
    assert!(loaded.contains(&sqli));
    assert_eq!(
        loaded.entries()[0].justification.as_deref(),
        Some("ids are integers by the route converter")
    );
    let mut again = sample_report();
    assert_eq!(loaded.apply(&mut again), 1);
    assert_eq!(again.findings.len(), 4);
    assert!(again.findings.iter().all(|f| f.fingerprint != sqli));
    assert_eq!(again.suppressed_by_baseline, 1);
}

#[test]
fn corrupt_baselines_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("team-baseline.json");
    type IsExpected = fn(&FindingsError) -> bool;
    let cases: [(&str, IsExpected); 4] = [
        ("{\"format\": \"vigil-baseline\", \"entries\": [", |e| {
            matches!(e, FindingsError::Corrupt { .. })
        }),
        ("\u{0}\u{ff}garbage", |e| {
            matches!(e, FindingsError::Corrupt { .. })
        }),
        (
            r#"{"format": "vigil-scan-report", "format_version": 1}"#,
            |e| matches!(e, FindingsError::WrongFormat { .. }),
        ),
        (
            r#"{"format": "vigil-baseline", "format_version": 1, "entries": [{"fingerprint": "abc"}]}"#,
            |e| matches!(e, FindingsError::BadFingerprint { index: 0, .. }),
        ),
    ];
    for (text, is_expected) in cases {
        std::fs::write(&path, text).unwrap();
        let err = Baseline::load(&path).unwrap_err();
        assert!(is_expected(&err), "{text:?}: {err:?}");
        assert!(err.to_string().contains("team-baseline.json"), "{err}");
    }
    let err = Baseline::load(&dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(err, FindingsError::Read { .. }));
    assert!(err.to_string().contains("missing.json"));
}

#[test]
fn merging_keeps_justifications_and_adds_new_findings() {
    let r = sample_report();
    let sqli = r.findings[0].fingerprint.clone();
    let reviewed = Baseline::from_entries([BaselineEntry {
        fingerprint: sqli.clone(),
        rule_id: Some("sql_injection".into()),
        path: None,
        justification: Some("reviewed".into()),
    }]);
    let merged = reviewed.merged(&Baseline::from_report(&r));
    assert_eq!(merged.len(), 5);
    let entry = merged
        .entries()
        .iter()
        .find(|e| e.fingerprint == sqli)
        .unwrap();
    assert_eq!(entry.justification.as_deref(), Some("reviewed"));
}

#[test]
fn hostile_baseline_files_are_refused_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    // Larger than the limit: refused from its size alone (a sparse file, nothing read).
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_BASELINE_BYTES + 1)
        .unwrap();
    let err = Baseline::load(&huge).unwrap_err();
    assert!(matches!(err, FindingsError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("huge.json"));
    // Nesting far past serde_json's recursion limit.
    let deep = dir.path().join("deep.json");
    std::fs::write(&deep, "[".repeat(100_000)).unwrap();
    let err = Baseline::load(&deep).unwrap_err();
    assert!(matches!(err, FindingsError::Corrupt { .. }), "{err:?}");
    // Not UTF-8.
    let binary = dir.path().join("binary.json");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x7b]).unwrap();
    let err = Baseline::load(&binary).unwrap_err();
    assert!(err.to_string().contains("binary.json"), "{err}");
}

// ---------------------------------------------------------------- --fail-on

#[test]
fn fail_on_parses_case_insensitively() {
    assert_eq!("HIGH".parse::<FailOn>().unwrap(), FailOn::High);
    assert_eq!(" none ".parse::<FailOn>().unwrap(), FailOn::None);
    assert_eq!(
        "critical".parse::<FailOn>().unwrap().to_string(),
        "critical"
    );
    let err = "severe".parse::<FailOn>().unwrap_err();
    assert!(err.to_string().contains("severe"));
}

#[test]
fn exit_code_follows_the_threshold() {
    let mut r = sample_report(); // worst finding: critical
    for t in [FailOn::Low, FailOn::Medium, FailOn::High, FailOn::Critical] {
        assert_eq!(exit_code(&r, t), EXIT_FINDINGS, "{t}");
    }
    assert_eq!(exit_code(&r, FailOn::None), EXIT_OK);

    r.findings.retain(|f| f.severity <= Severity::Medium); // medium + low left
    assert_eq!(exit_code(&r, FailOn::Medium), EXIT_FINDINGS);
    assert_eq!(exit_code(&r, FailOn::High), EXIT_OK);

    r.findings.retain(|f| f.severity == Severity::Low);
    assert_eq!(exit_code(&r, FailOn::Low), EXIT_FINDINGS);
    assert_eq!(exit_code(&r, FailOn::Medium), EXIT_OK);

    // Info findings never fail a scan.
    r.findings[0].severity = Severity::Info;
    assert_eq!(exit_code(&r, FailOn::Low), EXIT_OK);
    r.findings.clear();
    assert_eq!(exit_code(&r, FailOn::Low), EXIT_OK);
    assert_eq!(EXIT_ERROR, 2);
}

#[test]
fn output_formats_parse_and_pick_writers() {
    assert_eq!(
        "SARIF".parse::<OutputFormat>().unwrap(),
        OutputFormat::Sarif
    );
    assert_eq!(
        "md".parse::<OutputFormat>().unwrap(),
        OutputFormat::Markdown
    );
    assert!("html".parse::<OutputFormat>().is_err());
    let r = sample_report();
    let json = OutputFormat::Json.writer(false).render(&r).unwrap();
    assert_eq!(ScanReport::from_json(&json).unwrap(), r);
    let sarif = OutputFormat::Sarif.writer(false).render(&r).unwrap();
    assert!(sarif.contains("\"version\": \"2.1.0\""));
}
