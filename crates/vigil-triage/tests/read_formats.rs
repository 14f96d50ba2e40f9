//! Each reader against a hand-written fixture: the fields a triage model is given.

mod common;

use common::{data, format_of, read};
use vigil_triage::{read_path, Format, Location, Origin, ReadOptions, SubjectKind};

#[test]
fn detection_names_each_fixture_format() {
    assert_eq!(format_of("zap-plus.json"), Format::Zap);
    assert_eq!(format_of("zap.json"), Format::Zap);
    assert_eq!(format_of("burp.xml"), Format::Burp);
    assert_eq!(format_of("burp-bad-base64.xml"), Format::Burp);
    assert_eq!(format_of("nuclei.jsonl"), Format::Nuclei);
    assert_eq!(format_of("semgrep.sarif"), Format::Sarif);
    assert_eq!(format_of("codeql.sarif"), Format::Sarif);
    assert_eq!(format_of("exchange.http"), Format::Http);
    // Content decides, not the name.
    let bytes = std::fs::read(data("codeql.sarif")).unwrap();
    assert_eq!(
        vigil_triage::detect(std::path::Path::new("report.json"), &bytes).unwrap(),
        Format::Sarif
    );
}

#[test]
fn zap_plus_gives_one_item_per_instance_with_the_exchange() {
    let r = read("zap-plus.json");
    assert_eq!(r.format, Format::Zap);
    let ids: Vec<&str> = r.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["zap:0:0:0", "zap:0:0:1", "zap:0:1:0", "zap:0:2"]);
    assert!(r.warnings.is_empty());

    let xss = &r.items[1];
    assert_eq!(xss.rule, "40012");
    assert_eq!(xss.title, "Cross Site Scripting (Reflected)");
    assert_eq!(xss.severity, "High (Medium)");
    assert_eq!(xss.cwe, Some(79));
    assert_eq!(
        xss.location,
        Location::Http {
            method: "POST".into(),
            url: "https://shop.example.test/contact".into(),
            param: Some("message".into()),
        }
    );
    assert_eq!(
        xss.request.as_deref(),
        Some("POST https://shop.example.test/contact HTTP/1.1\r\nhost: shop.example.test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 75\r\n\r\nmessage=%3C%2Ftextarea%3E%3CscrIpt%3Ealert%281%29%3B%3C%2FscRipt%3E%3Ctextarea%3E")
    );
    assert_eq!(
        xss.response.as_deref(),
        Some("HTTP/1.1 200 OK\r\nContent-Type: text/html;charset=utf-8\r\n\r\n<form><textarea></textarea><scrIpt>alert(1);</scRipt><textarea></textarea></form>")
    );
    assert_eq!(
        xss.evidence.as_deref(),
        Some("</textarea><scrIpt>alert(1);</scRipt><textarea>")
    );
    // HTML paragraphs become lines; the instance's attack and other info are appended.
    assert_eq!(
        xss.description,
        "Cross-site Scripting (XSS) is an attack technique that involves echoing attacker-supplied code into a user's browser instance.\n\nThe injected code runs with the site's privileges.\n\nAttack: </textarea><scrIpt>alert(1);</scRipt><textarea>\n\nOther information: Reflected inside a textarea element."
    );
    assert!(!xss.no_evidence);
    assert_eq!(xss.subject_kind(), SubjectKind::Http);
    assert_eq!(
        xss.origin,
        Origin::Zap {
            site: 0,
            alert: 0,
            instance: Some(1)
        }
    );

    // An empty param is no param; "-1" is no CWE; an alert without instances is one item.
    assert_eq!(
        r.items[2].location,
        Location::Http {
            method: "GET".into(),
            url: "https://shop.example.test/".into(),
            param: None
        }
    );
    let ts = &r.items[3];
    assert_eq!(ts.cwe, None);
    assert!(ts.no_evidence);
    assert_eq!(
        ts.origin,
        Origin::Zap {
            site: 0,
            alert: 2,
            instance: None
        }
    );
}

#[test]
fn zap_without_messages_is_flagged_no_evidence() {
    let r = read("zap.json");
    assert_eq!(r.items.len(), 1);
    let item = &r.items[0];
    assert_eq!(item.id, "zap:0:0:0");
    assert_eq!(item.request, None);
    assert_eq!(item.response, None);
    assert!(item.no_evidence);
    assert_eq!(item.severity, "Low (Medium)");
    assert_eq!(item.cwe, Some(693));
}

#[test]
fn burp_issue_decodes_base64_exchange_and_reads_fields() {
    let r = read("burp.xml");
    assert_eq!(r.items.len(), 2);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let sqli = &r.items[0];
    assert_eq!(sqli.id, "burp:0");
    assert_eq!(sqli.rule, "1049088");
    assert_eq!(sqli.title, "SQL injection");
    assert_eq!(sqli.severity, "High (Firm)");
    assert_eq!(sqli.cwe, Some(89));
    assert_eq!(
        sqli.location,
        Location::Http {
            method: "GET".into(),
            url: "https://shop.example.test/shop/item".into(),
            param: Some("id".into()),
        }
    );
    // The base64 was split over two lines in the fixture.
    assert_eq!(
        sqli.request.as_deref(),
        Some("GET /shop/item?id=7%27 HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n")
    );
    assert!(sqli
        .response
        .as_deref()
        .unwrap()
        .ends_with("You have an error in your SQL syntax near ''7''' at line 1</body></html>"));
    assert!(sqli
        .description
        .starts_with("The id URL parameter appears to be vulnerable to SQL injection attacks."));
    assert!(sqli
        .description
        .ends_with("incorporated into database SQL queries in an unsafe manner."));

    // No requestresponse: still an item, flagged; the five XML entities are resolved.
    let hsts = &r.items[1];
    assert!(hsts.no_evidence);
    assert_eq!(hsts.severity, "Low (Certain)");
    assert_eq!(
        hsts.description,
        "This issue was found in multiple locations & on every page <checked>."
    );
}

#[test]
fn burp_base64_that_does_not_decode_is_a_warning_and_a_note() {
    let r = read("burp-bad-base64.xml");
    assert_eq!(r.items.len(), 1);
    let item = &r.items[0];
    assert_eq!(item.request, None);
    assert_eq!(
        item.response.as_deref(),
        Some("HTTP/1.1 200 OK\r\n\r\n<p>x</p>")
    );
    assert!(!item.no_evidence);
    assert_eq!(item.notes.len(), 1);
    assert!(item.notes[0].starts_with("request: base64 does not decode"));
    assert_eq!(r.warnings.len(), 1);
    let w = r.warnings[0].to_string();
    assert!(
        w.contains("burp-bad-base64.xml: issue 1: request: base64 does not decode"),
        "{w}"
    );
    assert_eq!(
        item.location,
        Location::Http {
            method: "GET".into(),
            url: "https://shop.example.test/search".into(),
            param: Some("q".into())
        }
    );
}

#[test]
fn nuclei_reads_good_lines_and_names_the_bad_ones() {
    let r = read("nuclei.jsonl");
    let ids: Vec<&str> = r.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["nuclei:1", "nuclei:3"]);
    let at: Vec<&str> = r.warnings.iter().map(|w| w.at.as_str()).collect();
    assert_eq!(at, ["line 2", "line 4"]);
    assert!(r.warnings[0].message.contains("not JSON"));
    assert!(r.warnings[1].message.contains("no template-id"));

    let git = &r.items[0];
    assert_eq!(git.rule, "git-config");
    assert_eq!(git.title, "Git Configuration - Detect");
    assert_eq!(git.severity, "medium");
    assert_eq!(git.cwe, Some(200));
    assert_eq!(
        git.location,
        Location::Http {
            method: "GET".into(),
            url: "https://shop.example.test/.git/config".into(),
            param: None
        }
    );
    assert!(git
        .request
        .as_deref()
        .unwrap()
        .starts_with("GET /.git/config HTTP/1.1\r\n"));
    assert!(git
        .response
        .as_deref()
        .unwrap()
        .contains("repositoryformatversion = 0"));
    assert_eq!(git.evidence.as_deref(), Some("[core]"));

    // cwe-id as a plain string; no request / response → flagged.
    let ssl = &r.items[1];
    assert_eq!(ssl.cwe, Some(326));
    assert!(ssl.no_evidence);
    assert_eq!(ssl.evidence.as_deref(), Some("matcher: tls-1.0"));
}

#[test]
fn semgrep_sarif_uses_the_embedded_snippet_and_cwe_tag() {
    let r = read("semgrep.sarif");
    assert_eq!(r.items.len(), 2);
    let sql = &r.items[0];
    assert_eq!(sql.id, "sarif:0:0");
    assert_eq!(
        sql.rule,
        "python.lang.security.audit.formatted-sql-query.formatted-sql-query"
    );
    assert_eq!(sql.cwe, Some(89));
    assert_eq!(sql.severity, "error");
    assert_eq!(
        sql.code.as_deref(),
        Some("    cur.execute(\"SELECT * FROM orders WHERE id = '%s'\" % order_id)")
    );
    assert_eq!(
        sql.location,
        Location::Code {
            path: "app/orders.py".into(),
            start_line: Some(18),
            end_line: Some(18)
        }
    );
    assert_eq!(sql.subject_kind(), SubjectKind::Code);
    assert_eq!(
        sql.description,
        "Detected string formatting in a SQL query; use parameterized queries instead.\n\nDetected possible formatted SQL query. Use parameterized queries instead."
    );
    assert_eq!(r.items[1].cwe, Some(78));
    assert_eq!(r.items[1].severity, "warning");
}

#[test]
fn codeql_sarif_reads_snippets_from_the_source_root_and_never_outside_it() {
    let opts = ReadOptions {
        source_root: Some(data("src")),
        snippet_context_lines: 1,
        ..ReadOptions::default()
    };
    let r = read_path(&data("codeql.sarif"), None, &opts).unwrap();
    assert_eq!(r.items.len(), 2);
    let xss = &r.items[0];
    assert_eq!(xss.rule, "js/reflected-xss");
    assert_eq!(xss.title, "Reflected cross-site scripting");
    assert_eq!(xss.cwe, Some(79));
    // security-severity 6.1 → GitHub's "medium".
    assert_eq!(xss.severity, "medium");
    // Line 6 with one line of context either side (lines 5..=7 of search.js).
    assert_eq!(
        xss.code.as_deref(),
        Some("  const q = req.query.q;\n  res.send(\"<h1>Results for \" + q + \"</h1>\");\n});")
    );
    assert!(xss.notes.is_empty());
    // The path problem's flow, source to sink.
    assert_eq!(
        xss.evidence.as_deref(),
        Some("data flow:\nroutes/search.js:5: req.query.q\nroutes/search.js:6: \"<h1>Res ... </h1>\"")
    );

    // The rule lives in tool.extensions[0]; the file is outside the root and not read.
    let path = &r.items[1];
    assert_eq!(path.title, "Uncontrolled data used in path expression");
    assert_eq!(path.cwe, Some(22));
    assert_eq!(path.severity, "high");
    assert_eq!(path.code, None);
    assert!(path.no_evidence);
    assert_eq!(path.notes.len(), 1);
    assert!(
        path.notes[0].contains("outside the source root"),
        "{:?}",
        path.notes
    );
}

#[test]
fn codeql_sarif_without_source_root_says_why_there_is_no_code() {
    let r = read("codeql.sarif");
    assert_eq!(r.items[0].code, None);
    assert!(r.items[0].no_evidence);
    assert!(r.items[0].notes[0].contains("no source root"));
}

#[test]
fn snippets_are_bounded_in_lines() {
    let opts = ReadOptions {
        source_root: Some(data("src")),
        snippet_context_lines: 50,
        max_snippet_lines: 2,
        ..ReadOptions::default()
    };
    let r = read_path(&data("codeql.sarif"), None, &opts).unwrap();
    // Context would start at line 1; the cap keeps lines 1 and 2.
    assert_eq!(
        r.items[0].code.as_deref(),
        Some("const express = require(\"express\");\nconst router = express.Router();")
    );
}

#[test]
fn raw_http_file_and_directory() {
    let r = read("exchange.http");
    assert_eq!(r.format, Format::Http);
    assert_eq!(r.items.len(), 1);
    let item = &r.items[0];
    assert_eq!(item.id, "http:exchange.http");
    assert_eq!(
        item.location,
        Location::Http {
            method: "POST".into(),
            url: "portal.example.test/login".into(),
            param: None
        }
    );
    assert_eq!(
        item.request.as_deref(),
        Some("POST /login HTTP/1.1\r\nHost: portal.example.test\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nuser=admin&pass=x\r\n")
    );
    assert!(item
        .response
        .as_deref()
        .unwrap()
        .starts_with("HTTP/1.1 200 OK\r\nSet-Cookie"));

    let d = read("http");
    let ids: Vec<&str> = d.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["http:login.http", "http:orders-17.http"]);
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(d.warnings[0].at, "README.txt");
}

#[test]
fn finding_text_and_language_for_the_model() {
    let r = read("burp.xml");
    assert_eq!(
        r.items[0]
            .finding_text()
            .lines()
            .take(2)
            .collect::<Vec<_>>(),
        [
            "SQL injection (burp rule 1049088; CWE-89; severity High (Firm))",
            "At: GET https://shop.example.test/shop/item (parameter id)",
        ]
    );
    assert_eq!(r.items[0].language(), None);

    let s = read("semgrep.sarif");
    let text = s.items[0].finding_text();
    assert!(text.contains("\nAt: app/orders.py:18\n"), "{text}");
    assert_eq!(s.items[0].language(), Some("python"));

    // Long descriptions are cut, on a character boundary, with a mark.
    let mut long = s.items[0].clone();
    long.description = "é".repeat(vigil_triage::MAX_FINDING_DESCRIPTION + 5);
    let text = long.finding_text();
    assert!(text.ends_with(&format!(
        "\n\n{}…",
        "é".repeat(vigil_triage::MAX_FINDING_DESCRIPTION)
    )));
}

#[test]
fn sarif_uri_can_come_from_the_run_artifacts() {
    let sarif = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t"}},
        "artifacts":[{"location":{"uri":"routes/search.js"}}],
        "results":[{"ruleId":"r","message":{"text":"m"},
          "locations":[{"physicalLocation":{"artifactLocation":{"index":0},"region":{"startLine":13}}}]}]}]}"#;
    let opts = ReadOptions {
        source_root: Some(data("src")),
        snippet_context_lines: 0,
        ..ReadOptions::default()
    };
    let r = vigil_triage::read_bytes(std::path::Path::new("a.sarif"), sarif, None, &opts).unwrap();
    assert_eq!(r.items[0].code.as_deref(), Some("module.exports = router;"));
    assert_eq!(r.items[0].language(), Some("javascript"));
}

#[test]
fn sarif_location_links_become_plain_text() {
    let r = read("codeql.sarif");
    assert!(r.items[0]
        .description
        .starts_with("Cross-site scripting vulnerability due to a user-provided value.\n\n"));
    assert_eq!(
        r.items[1].description,
        "This path depends on a user-provided value."
    );
}

#[test]
fn source_root_escapes_by_absolute_uri_or_symlink_are_not_read() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("ok.py"), "a = 1\nb = 2\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(data("secrets.txt"), root.path().join("link.py")).unwrap();
    let secrets = data("secrets.txt");
    let sarif = serde_json::json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "t"}},
            "results": [
                {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": "ok.py"}, "region": {"startLine": 2}}}]},
                {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": format!("file://{}", secrets.display())}, "region": {"startLine": 1}}}]},
                {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": "link.py"}, "region": {"startLine": 1}}}]},
                {"ruleId": "r", "message": {"text": "m"}, "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": "sub/../../escape.py"}, "region": {"startLine": 1}}}]}
            ]
        }]
    });
    let opts = ReadOptions {
        source_root: Some(root.path().to_path_buf()),
        snippet_context_lines: 0,
        ..ReadOptions::default()
    };
    let bytes = serde_json::to_vec(&sarif).unwrap();
    let r = vigil_triage::read_bytes(std::path::Path::new("s.sarif"), &bytes, None, &opts).unwrap();
    assert_eq!(r.items[0].code.as_deref(), Some("b = 2"));
    for item in &r.items[1..] {
        assert_eq!(item.code, None, "{}", item.id);
        assert!(
            item.notes[0].contains("outside the source root")
                || item.notes[0].contains("not found under the source root"),
            "{:?}",
            item.notes
        );
    }
    assert!(r.items[1].notes[0].contains("outside the source root"));
    #[cfg(unix)]
    assert!(r.items[2].notes[0].contains("outside the source root"));
}

#[test]
fn a_nuclei_line_longer_than_the_sniffed_prefix_is_still_detected() {
    let body = "x".repeat(200_000);
    let line = format!(
        "{{\"template-id\":\"big\",\"info\":{{\"name\":\"Big\",\"severity\":\"info\"}},\"matched-at\":\"https://a.test/\",\"response\":\"HTTP/1.1 200 OK\\r\\n\\r\\n{body}\"}}\n"
    );
    let path = std::path::Path::new("big.json");
    assert_eq!(
        vigil_triage::detect(path, line.as_bytes()).unwrap(),
        Format::Nuclei
    );
    let r = vigil_triage::read_bytes(path, line.as_bytes(), None, &ReadOptions::default()).unwrap();
    assert_eq!(r.items[0].response.as_ref().unwrap().len(), 19 + 200_000);
}

#[test]
fn items_and_verdicts_travel_as_json_unchanged() {
    for name in [
        "zap-plus.json",
        "burp.xml",
        "nuclei.jsonl",
        "codeql.sarif",
        "http",
    ] {
        let r = read(name);
        let json = serde_json::to_string(&r.items).unwrap();
        let back: Vec<vigil_triage::TriageItem> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r.items, "{name}");
    }
    let item = serde_json::to_value(&read("burp.xml").items[0]).unwrap();
    assert_eq!(item["source"], "burp");
    assert_eq!(item["location"]["kind"], "http");
    assert_eq!(
        item["origin"],
        serde_json::json!({"format": "burp", "issue": 0})
    );
    let v: vigil_triage::TriageVerdict = serde_json::from_value(serde_json::json!({
        "item_id": "burp:0", "true_positive": false, "probability": 0.25,
        "threshold": 0.5, "reason": "r", "decided_by": "d"
    }))
    .unwrap();
    assert_eq!(v.probability, 0.25);
}

#[test]
fn older_zap_reports_with_a_single_site_object_are_read_and_annotated() {
    let zap = br#"{"@version":"2.10.0","@generated":"Mon, 1 Feb 2021","site":{"@name":"http://a.test","alerts":[
        {"pluginid":"10020","alert":"X-Frame-Options Header Not Set","riskdesc":"Medium (Medium)","cweid":"1021",
         "instances":[{"uri":"http://a.test/","method":"GET","param":"X-Frame-Options"}]}]}}"#;
    let path = std::path::Path::new("old-zap.json");
    let r = vigil_triage::read_bytes(path, zap, None, &ReadOptions::default()).unwrap();
    assert_eq!(r.format, Format::Zap);
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].id, "zap:0:0:0");
    assert_eq!(r.items[0].cwe, Some(1021));
    let out = r
        .annotate(
            &[common::verdict(
                "zap:0:0:0",
                true,
                0.6,
                "No XFO and no CSP frame-ancestors.",
            )],
            &vigil_triage::AnnotateOptions::default(),
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["site"]["alerts"][0]["instances"][0]["vigil"]["verdict"],
        "true_positive"
    );
}

#[test]
fn burp_issue_with_several_exchanges_uses_the_first_and_says_so() {
    let xml = br#"<issues><issue><type>5245344</type><name>Cookie without HttpOnly flag set</name>
        <host>https://a.test</host><path>/</path><location>/</location><severity>Low</severity><confidence>Firm</confidence>
        <requestresponse><request base64="false"><![CDATA[GET / HTTP/1.1
Host: a.test

]]></request><response base64="false"><![CDATA[HTTP/1.1 200 OK
Set-Cookie: sid=1

]]></response></requestresponse>
        <requestresponse><request base64="false">GET /second HTTP/1.1</request></requestresponse>
        </issue></issues>"#;
    let r = vigil_triage::read_bytes(
        std::path::Path::new("b.xml"),
        xml,
        None,
        &ReadOptions::default(),
    )
    .unwrap();
    let item = &r.items[0];
    assert_eq!(
        item.request.as_deref(),
        Some("GET / HTTP/1.1\nHost: a.test\n\n")
    );
    assert_eq!(
        item.response.as_deref(),
        Some("HTTP/1.1 200 OK\nSet-Cookie: sid=1\n\n")
    );
    assert_eq!(
        item.notes,
        ["the issue holds 2 request/response pairs; the first is used"]
    );
    // `</issue>` on its own line: the element gets its own line, one level deeper.
    let out = r
        .annotate(
            &[common::verdict(
                "burp:0",
                false,
                0.3,
                "Session cookie is HttpOnly in production.",
            )],
            &vigil_triage::AnnotateOptions::default(),
        )
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with("</requestresponse>\n          <vigilTriage verdict=\"false_positive\" probability=\"0.3\" threshold=\"0.5\" decidedBy=\"vigil-test\">Session cookie is HttpOnly in production.</vigilTriage>\n        </issue></issues>"), "{out}");

    // Compact XML: straight before `</issue>`.
    let compact = b"<issues><issue><type>1</type></issue></issues>";
    let r = vigil_triage::read_bytes(
        std::path::Path::new("c.xml"),
        compact,
        None,
        &ReadOptions::default(),
    )
    .unwrap();
    let out = r
        .annotate(
            &[common::verdict("burp:0", true, 0.9, "r")],
            &vigil_triage::AnnotateOptions::default(),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "<issues><issue><type>1</type><vigilTriage verdict=\"true_positive\" probability=\"0.9\" threshold=\"0.5\" decidedBy=\"vigil-test\">r</vigilTriage></issue></issues>"
    );
}
