//! Store, import / export, split, leakage and report behaviour, end to end on real files.

use std::path::Path;
use vigil_data::check::{self, CheckOptions};
use vigil_data::export::{self, ExportFormat};
use vigil_data::import::{self, Format, ImportOptions};
use vigil_data::split::{self, Fractions};
use vigil_data::synth::{self, GenOptions};
use vigil_data::tokens::ApproxTokenCounter;
use vigil_data::{DataError, Filter, Sample, SampleKind, Split, Store};

fn generated(seed: u64, num: usize) -> Vec<Sample> {
    synth::generate(
        &GenOptions {
            seed,
            num,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap()
}

fn store_with(dir: &Path, name: &str, samples: &[Sample]) -> Store {
    let mut s = Store::open(dir.join(name)).unwrap();
    s.insert_all(samples, "test", "test", "{}", |_| {}).unwrap();
    s
}

#[test]
fn export_import_export_is_a_fixed_point_and_reimport_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut samples = generated(3, 300);
    // add a report and a foreign chat so every kind takes the trip
    let mut r = Sample::new(SampleKind::Report);
    r.title = Some("Stored XSS in profile bio".into());
    r.severity = Some(vigil_taxonomy::Severity::High);
    r.cwe = Some(79);
    r.vuln_type = Some("xss".into());
    r.is_vulnerable = true;
    r.meta = Some(serde_json::json!({"program": "Example Corp"}));
    r.source = "test".into();
    r.analysis = "## Stored XSS\n\n### Vulnerability Details\nThe bio field is rendered unescaped.\n\n### Impact\nSession theft.\n\n### Summary\nEscape output.".into();
    samples.push(r);
    let a = store_with(dir.path(), "a.db", &samples);
    assert_eq!(a.count().unwrap(), samples.len());
    for (fmt, import_fmt) in [
        (ExportFormat::ShareGpt, Format::ShareGpt),
        (ExportFormat::OpenAi, Format::OpenAi),
        (ExportFormat::Alpaca, Format::Alpaca),
        (ExportFormat::Jsonl, Format::Jsonl),
    ] {
        let f1 = dir.path().join(format!("{fmt:?}.1"));
        let f2 = dir.path().join(format!("{fmt:?}.2"));
        let n = export::export(&a, &Filter::default(), fmt, &f1, |_| {}).unwrap();
        assert_eq!(n, samples.len());
        assert_eq!(Format::detect(&f1).unwrap(), import_fmt, "{fmt:?}");
        let back = import::read_file(&f1, import_fmt, &ImportOptions::default()).unwrap();
        let mut b = store_with(dir.path(), &format!("{fmt:?}.db"), &back);
        export::export(&b, &Filter::default(), fmt, &f2, |_| {}).unwrap();
        assert_eq!(
            std::fs::read_to_string(&f1).unwrap(),
            std::fs::read_to_string(&f2).unwrap(),
            "{fmt:?}"
        );
        // labels survive the chat formats, not just the text
        let restored = b.samples(&Filter::default()).unwrap();
        let vuln = restored.iter().filter(|s| s.is_vulnerable).count();
        assert_eq!(
            vuln,
            samples.iter().filter(|s| s.is_vulnerable).count(),
            "{fmt:?}"
        );
        assert!(restored
            .iter()
            .any(|s| s.kind == SampleKind::Code && s.fixed_code.is_some()));
        // the same file again adds nothing
        let again = b
            .insert_all(&back, "import", "again", "{}", |_| {})
            .unwrap();
        assert_eq!((again.added, again.skipped), (0, back.len()), "{fmt:?}");
    }
}

#[test]
fn malformed_line_is_reported_with_file_and_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.jsonl");
    let good = serde_json::to_string(&generated(1, 1)[0]).unwrap();
    std::fs::write(
        &f,
        format!("{good}\n\n{{\"kind\": \"code\", \"analysis\": \n{good}\n"),
    )
    .unwrap();
    let err = import::read_file(&f, Format::Jsonl, &ImportOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Parse { line: 3, .. }), "{msg}");
    assert!(msg.contains("bad.jsonl:3:"), "{msg}");
    // an unknown kind is a clear error too, not a panic
    std::fs::write(&f, "{\"kind\": \"poem\"}\n").unwrap();
    assert!(import::read_file(&f, Format::Jsonl, &ImportOptions::default()).is_err());
    // a huge field is refused, naming the record
    let mut s = Sample::new(SampleKind::Code);
    s.code = Some("x".repeat(import::MAX_FIELD + 1));
    std::fs::write(&f, serde_json::to_string(&s).unwrap()).unwrap();
    let msg = import::read_file(&f, Format::Jsonl, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("longer than"), "{msg}");
    // invalid UTF-8
    std::fs::write(&f, b"{\"kind\": \"code\"}\n\xff\xfe\n").unwrap();
    let msg = import::read_file(&f, Format::Jsonl, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains(":2:") && msg.contains("UTF-8"), "{msg}");
}

#[test]
fn insert_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("t.db")).unwrap();
    // make the third insert fail inside SQLite
    store
        .conn()
        .execute_batch("CREATE TRIGGER boom BEFORE INSERT ON samples WHEN NEW.endpoint = 'BOOM' BEGIN SELECT RAISE(ABORT, 'planted failure'); END;")
        .unwrap();
    let mut samples = generated(9, 4);
    samples[2].endpoint = Some("BOOM".into());
    let err = store
        .insert_all(&samples, "import", "t", "{}", |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("planted failure"), "{err}");
    assert_eq!(store.count().unwrap(), 0);
    assert!(
        store.runs(10).unwrap().is_empty(),
        "the run row rolled back too"
    );
}

#[test]
fn foreign_and_corrupt_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // the seed's own database
    let seed = dir.path().join("seed.db");
    {
        let c = rusqlite::Connection::open(&seed).unwrap();
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS training_data (
                id INTEGER PRIMARY KEY AUTOINCREMENT, request TEXT NOT NULL, response TEXT NOT NULL,
                analysis TEXT NOT NULL, is_vulnerable BOOL NOT NULL, vuln_category INTEGER NOT NULL);
             INSERT INTO training_data (request, response, analysis, is_vulnerable, vuln_category) VALUES
               ('GET / HTTP/1.1\nHost: a.example', 'HTTP/1.1 200 OK\nContent-Type: text/html\n\n<p>hi</p>', 'No HSTS header.', 1, 0),
               ('GET /s?q=x HTTP/1.1\nHost: a.example', 'HTTP/1.1 200 OK\n\n<p>x</p>', 'Encoded reflection.', 0, 1);",
        )
        .unwrap();
    }
    let err = Store::open(&seed)
        .err()
        .expect("foreign file must be refused")
        .to_string();
    assert!(
        err.contains("not a vigil dataset")
            && err.contains("training_data")
            && err.contains("seed-sqlite"),
        "{err}"
    );
    assert_eq!(Format::detect(&seed).unwrap(), Format::SeedSqlite);
    let rows = import::read_file(&seed, Format::SeedSqlite, &ImportOptions::default()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].vuln_type.as_deref(),
        Some("missing_security_headers")
    );
    assert!(rows[0].is_vulnerable && rows[0].cwe == Some(693));
    assert_eq!(rows[1].vuln_type.as_deref(), Some("xss"));
    assert!(!rows[1].is_vulnerable && rows[1].cwe.is_none());
    // the seed file was not modified
    let c = rusqlite::Connection::open(&seed).unwrap();
    let app: i64 = c
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app, 0);
    // garbage bytes
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&junk)
        .err()
        .expect("junk must be refused")
        .to_string();
    assert!(
        err.contains("not an SQLite database") || err.contains("not a vigil dataset"),
        "{err}"
    );
    // a vigil store reopens fine
    let ours = dir.path().join("ours.db");
    drop(Store::open(&ours).unwrap());
    assert_eq!(Store::open(&ours).unwrap().count().unwrap(), 0);
}

#[test]
fn template_file_and_report_json_import() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("req_res_templates.txt");
    std::fs::write(
        &t,
        "GET /a HTTP/1.1\nHost: x.example\n<<<<>>>>\nHTTP/1.1 200 OK\nContent-Type: text/html\n\n<p>a</p>\n<<<<>>>>\nPOST /b HTTP/1.1\nHost: x.example\n\nq=1\n<<<<>>>>\nHTTP/1.1 302 Found\nLocation: /\n",
    )
    .unwrap();
    assert_eq!(Format::detect(&t).unwrap(), Format::Templates);
    let opts = ImportOptions {
        template_vuln_type: Some("HTTP_HEADERS".into()),
        ..Default::default()
    };
    let rows = import::read_file(&t, Format::Templates, &opts).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[1].request.as_deref(),
        Some("POST /b HTTP/1.1\nHost: x.example\n\nq=1")
    );
    assert_eq!(
        rows[0].vuln_type.as_deref(),
        Some("missing_security_headers")
    );
    std::fs::write(
        &t,
        "GET /a HTTP/1.1\n<<<<>>>>\nHTTP/1.1 200 OK\n<<<<>>>>\nGET /b HTTP/1.1\n",
    )
    .unwrap();
    let msg = import::read_file(&t, Format::Templates, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("req_res_templates.txt:5:") && msg.contains("odd number"),
        "{msg}"
    );

    // reports: the third seed's failure (one text reused as details and summary) is flagged
    let para = "The search endpoint reflects the q parameter into the results page without any encoding, which allows script execution in the browser of any user who follows a link.";
    let r = dir.path().join("reports.jsonl");
    std::fs::write(
        &r,
        format!(
            "{}\n{}\n",
            serde_json::json!({"title": "Reflected XSS on search", "severity": "medium", "weakness": "Cross-site Scripting (XSS) - Reflected", "report": para, "impact": "Session theft and actions as the victim.", "summary": para, "program": "Example"}),
            serde_json::json!({"title": "SQL injection in export", "severity": "critical", "cwe": "CWE-89", "report": "The export endpoint concatenates the sort parameter into SQL.", "impact": "Full database read.", "summary": "Bind parameters and allow-list sort columns."})
        ),
    )
    .unwrap();
    assert_eq!(Format::detect(&r).unwrap(), Format::Reports);
    let rows = import::read_file(&r, Format::Reports, &ImportOptions::default()).unwrap();
    assert_eq!(rows[0].vuln_type.as_deref(), Some("xss"));
    assert_eq!(rows[1].vuln_type.as_deref(), Some("sql_injection"));
    assert_eq!(rows[1].cwe, Some(89));
    let store = store_with(dir.path(), "r.db", &rows);
    let rep = check::check(
        &store,
        &CheckOptions::default(),
        &ApproxTokenCounter,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(
        rep.repeated_sections_count, 1,
        "{:?}",
        rep.repeated_sections
    );
    assert_eq!(rep.repeated_sections[0].id, 1);
}

#[test]
fn splits_follow_groups_and_adding_rows_never_moves_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), "s.db", &generated(11, 1200));
    let f = Fractions::default();
    split::assign_with(&mut store, &f, "vigil", Some(0.8)).unwrap();
    let before: Vec<(i64, Split)> = store
        .samples(&Filter::default())
        .unwrap()
        .iter()
        .map(|s| (s.id.unwrap(), s.split.unwrap()))
        .collect();
    let counts = |st: &Store, sp| {
        st.samples(&Filter {
            split: Some(sp),
            ..Default::default()
        })
        .unwrap()
        .len()
    };
    let (tr, va, te) = (
        counts(&store, Split::Train),
        counts(&store, Split::Valid),
        counts(&store, Split::Test),
    );
    assert!(tr > 850 && va > 60 && te > 60, "{tr} {va} {te}");
    store
        .insert_all(&generated(12, 800), "test", "more", "{}", |_| {})
        .unwrap();
    let st = split::assign_with(&mut store, &f, "vigil", Some(0.8)).unwrap();
    assert_eq!(st.already, before.len());
    assert_eq!(st.conflicts, 0);
    let after = store.samples(&Filter::default()).unwrap();
    for (id, sp) in &before {
        assert_eq!(
            after.iter().find(|s| s.id == Some(*id)).unwrap().split,
            Some(*sp),
            "row {id} moved"
        );
    }
    let mut group_split = std::collections::HashMap::new();
    for s in &after {
        let prev = group_split.insert(s.group_id.clone(), s.split.unwrap());
        assert!(
            prev.is_none() || prev == s.split,
            "group {} straddles splits",
            s.group_id
        );
    }
    // hash split alone is a pure function of the group id
    assert_eq!(
        split::split_for("vigil", "gen:11:5", &f),
        split::split_for("vigil", "gen:11:5", &f)
    );
    assert!(Fractions::new(0.9, 0.2, 0.1).is_err());
    // and the check agrees: no leakage across splits
    let rep = check::check(
        &store,
        &CheckOptions::default(),
        &ApproxTokenCounter,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(
        rep.exact_across_count + rep.near_across_count,
        0,
        "{:?}",
        rep.near_across
    );
}

#[test]
fn leakage_check_finds_a_planted_near_duplicate_across_splits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), "l.db", &generated(21, 400));
    split::assign_with(&mut store, &Fractions::default(), "vigil", Some(0.8)).unwrap();
    let clean = check::check(
        &store,
        &CheckOptions::default(),
        &ApproxTokenCounter,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(clean.leakage_rate(), 0.0);
    // copy a training code sample, change one identifier, put it in test under a new group
    let victim = store
        .samples(&Filter {
            split: Some(Split::Train),
            kind: Some(SampleKind::Code),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .find(|s| s.code.as_deref().unwrap().len() > 400)
        .unwrap();
    let mut planted = victim.clone();
    planted.id = None;
    planted.group_id = "planted".into();
    planted.split = Some(Split::Test);
    planted.code = Some(
        victim
            .code
            .as_deref()
            .unwrap()
            .replacen("return", "return  ", 1)
            + "\n# copied\n",
    );
    store
        .insert_all(&[planted], "test", "planted", "{}", |_| {})
        .unwrap();
    let rep = check::check(
        &store,
        &CheckOptions::default(),
        &ApproxTokenCounter,
        |_, _, _| {},
    )
    .unwrap();
    assert!(
        rep.near_across_count >= 1,
        "planted near-duplicate not found"
    );
    assert!(rep
        .near_across
        .iter()
        .any(|p| p.a == victim.id.unwrap() || p.b == victim.id.unwrap()));
    assert!(rep.leakage_rate() > 0.0);
    // the report says FAIL and the charts exist
    let out = dir.path().join("report");
    let path = vigil_data::report::write_report(&rep, &out, 0.0).unwrap();
    let md = std::fs::read_to_string(path).unwrap();
    assert!(md.contains("**Leakage: FAIL**"), "{}", &md[..300]);
    for chart in [
        "kind",
        "category",
        "severity",
        "language",
        "framework",
        "tokens",
    ] {
        let png = std::fs::read(out.join(format!("{chart}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 2000,
            "{chart}.png"
        );
        let svg = std::fs::read_to_string(out.join(format!("{chart}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{chart}.svg has no text"
        );
    }
    assert!(
        md.contains("APPROXIMATE"),
        "token lengths must be labelled approximate"
    );
}
