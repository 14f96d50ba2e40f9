//! The main job end to end on the real default model, at a tiny scale: `vigil quickstart`
//! (data → LoRA → heads → eval → bundle → scan), then `vigil scan` with the bundle it made
//! (formats, cache, baseline, --fail-on), `vigil triage` on a Nuclei file and `vigil eval`'s
//! report files. The model is tiny-trained here, so the test checks what a user relies on
//! regardless of how good the verdicts are: every documented endpoint is analysed, reports
//! are well-formed and consistent, reruns are served from the cache, the baseline and exit
//! codes work, and annotated findings read back. Verdict quality is measured by `vigil eval`
//! (BENCHMARKS.md), not asserted here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Env {
    /// A fresh vigil home whose model cache is the real one (fetched once by vigil-hub).
    fn new() -> Env {
        let model =
            vigil_hub::pull("smollm2-135m-instruct").expect("cannot fetch the default model");
        let models = model
            .path
            .parent()
            .and_then(Path::parent)
            .expect("the cache keeps models under <home>/models/<name>/")
            .to_path_buf();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::symlink(&models, home.join("models")).unwrap();
        Env {
            _dir: dir,
            root,
            home,
        }
    }

    fn vigil(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .current_dir(repo())
            .env("VIGIL_HOME", &self.home)
            .env("VIGIL_OFFLINE", "1")
            .env("NO_COLOR", "1")
            .output()
            .expect("vigil runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }
}

fn expected_endpoints(dir: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(repo().join("examples/service/expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["file"].as_str().unwrap().starts_with(&format!("{dir}/")))
        .cloned()
        .collect()
}

#[test]
fn quickstart_then_scan_triage_and_eval_with_its_bundle() {
    let env = Env::new();
    let work = env.root.join("qs");
    let node = repo().join("examples/service/node");
    let (code, _, err) = env.vigil(&[
        "quickstart",
        "--workdir",
        work.to_str().unwrap(),
        "--samples",
        "160",
        "--steps",
        "2",
        "--head-samples",
        "40",
        "--scan",
        node.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for stage in ["[1/8]", "[4/8]", "[7/8]", "[8/8]", "quickstart summary"] {
        assert!(err.contains(stage), "missing {stage}: {err}");
    }

    // The bundle: both tasks' heads, the eval it shipped with, and its report inside it.
    let bundle = env.home.join("bundles/default");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("bundle.json")).unwrap())
            .unwrap();
    let heads: Vec<(&str, &str)> = manifest["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["task"].as_str().unwrap(), h["target"].as_str().unwrap()))
        .collect();
    assert!(heads.contains(&("code", "verdict")) && heads.contains(&("http", "verdict")));
    let eval = &manifest["eval"];
    assert_eq!(eval["report"], "eval/report.md");
    assert!(
        eval["metrics"]["FT-PE-CH (code)"]["accuracy"].is_number(),
        "{eval}"
    );
    let report = std::fs::read_to_string(bundle.join("eval/report.md")).unwrap();
    for row in ["FT-PE-SC", "FT-PE-CH", "5-fold", "Leakage", "synthetic"] {
        assert!(report.contains(row), "report lacks {row}:\n{report}");
    }
    for chart in [
        "variants.png",
        "reliability.svg",
        "temperature.png",
        "scaling.svg",
    ] {
        assert!(bundle.join("eval").join(chart).is_file(), "{chart}");
    }
    let samples = std::fs::read_to_string(work.join("eval/samples.jsonl")).unwrap();
    assert!(samples.lines().count() > 0);
    for line in samples.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(r["variant"].is_string() && r["label"].is_boolean());
    }
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("scan.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // `vigil scan` on the Node part of the example service: every documented endpoint is
    // analysed, findings sit inside documented handlers, and the three formats agree.
    let expected = expected_endpoints("node");
    let json_out = env.root.join("scan.json");
    let (code, _, err) = env.vigil(&[
        "scan",
        node.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        json_out.to_str().unwrap(),
        "--max-tokens",
        "96",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    let findings = r["findings"].as_array().unwrap().clone();
    // Discovery's exact endpoint list is vigil-scan's test; here: the documented endpoints
    // plus the other functions (constructors, helpers) were all analysed, and every unit is
    // either a finding or clean.
    let analysed = r["units_analyzed"].as_u64().unwrap() as usize;
    assert!(analysed >= expected.len(), "{r}");
    assert_eq!(
        findings.len() + r["clean_units"].as_u64().unwrap() as usize,
        analysed
    );
    assert_eq!(r["skipped"].as_array().unwrap().len(), 0, "{r}");
    for f in &findings {
        let path = f["location"]["path"].as_str().unwrap();
        let line = f["location"]["start_line"].as_u64().unwrap();
        if let Some(ep) = f["endpoint"].as_object() {
            assert!(
                expected
                    .iter()
                    .any(|e| e["file"].as_str().unwrap() == format!("node/{path}")
                        && e["start_line"].as_u64().unwrap() == line
                        && e["route"] == ep["route"]
                        && e["method"] == ep["method"]),
                "an endpoint finding at an undocumented place: {f}"
            );
        }
        let rule = f["rule_id"].as_str().unwrap();
        assert!(
            vigil_taxonomy::Taxonomy::builtin().by_id(rule).is_some(),
            "{rule}"
        );
        assert_eq!(f["fingerprint"].as_str().unwrap().len(), 64);
    }

    // A rerun is served from the analysis cache and says the same.
    let again = env.root.join("again.json");
    let t0 = std::time::Instant::now();
    let (code, _, err) = env.vigil(&[
        "scan",
        node.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        again.to_str().unwrap(),
        "--max-tokens",
        "96",
    ]);
    assert_eq!(code, 0, "{err}");
    let r2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(r2["findings"], r["findings"]);
    assert!(
        t0.elapsed().as_secs() < 60,
        "cached rerun took {:?}",
        t0.elapsed()
    );

    // --fail-on: exit 1 exactly when a finding reaches the threshold; SARIF agrees.
    let sarif_out = env.root.join("scan.sarif");
    let (code, _, err) = env.vigil(&[
        "scan",
        node.to_str().unwrap(),
        "--format",
        "sarif",
        "-o",
        sarif_out.to_str().unwrap(),
        "--max-tokens",
        "96",
        "--fail-on",
        "low",
    ]);
    assert_eq!(code, if findings.is_empty() { 0 } else { 1 }, "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif_out).unwrap()).unwrap();
    assert_eq!(
        s["runs"][0]["results"].as_array().unwrap().len(),
        findings.len()
    );

    // A baseline accepting this scan silences it.
    let baseline = env.root.join("baseline.json");
    let (code, _, err) = env.vigil(&[
        "scan",
        node.to_str().unwrap(),
        "--max-tokens",
        "96",
        "--write-baseline",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let quiet = env.root.join("quiet.json");
    let (code, _, err) = env.vigil(&[
        "scan",
        node.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        quiet.to_str().unwrap(),
        "--max-tokens",
        "96",
        "--baseline",
        baseline.to_str().unwrap(),
        "--fail-on",
        "low",
    ]);
    assert_eq!(code, 0, "{err}");
    let q: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&quiet).unwrap()).unwrap();
    assert_eq!(q["findings"].as_array().unwrap().len(), 0);
    assert_eq!(
        q["suppressed_by_baseline"].as_u64().unwrap() as usize,
        findings.len()
    );

    // Triage: a Nuclei file with one finding with an exchange and one without evidence.
    let nuclei = env.root.join("nuclei.jsonl");
    let with = serde_json::json!({
        "template-id": "xss-reflected", "info": {"name": "Reflected XSS", "severity": "medium",
        "classification": {"cwe-id": ["cwe-79"]}}, "matched-at": "http://shop.test/search?q=x",
        "host": "shop.test",
        "request": "GET /search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1\r\nHost: shop.test\r\n\r\n",
        "response": "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>Results for <script>alert(1)</script></p>"
    });
    let without = serde_json::json!({
        "template-id": "tech-detect", "info": {"name": "Tech", "severity": "info"},
        "matched-at": "http://shop.test/", "host": "shop.test"
    });
    std::fs::write(&nuclei, format!("{with}\n{without}\n")).unwrap();
    let (code, out, err) = env.vigil(&["triage", nuclei.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let verdicts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), 2);
    // Precision first: a finding with nothing to judge is never dismissed.
    assert_eq!(verdicts[1]["true_positive"], true);
    let annotated = std::fs::read_to_string(env.root.join("nuclei.triaged.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = annotated
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, v) in lines.iter().zip(&verdicts) {
        let p = line["vigil"]["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(
            line["vigil"]["verdict"].as_str().unwrap(),
            if v["true_positive"].as_bool().unwrap() {
                "true_positive"
            } else {
                "false_positive"
            }
        );
        // Everything the scanner wrote is still there.
        assert!(line["template-id"].is_string() && line["info"].is_object());
    }
    // The text report: a line per finding with its verdict, probability, rule, title and
    // place (the same verdicts, now from the cache), then the summary.
    let (code, out, err) = env.vigil(&["triage", nuclei.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let line_of = |rule: &str| {
        out.lines()
            .find(|l| l.contains(&format!("[{rule}]")))
            .unwrap_or_else(|| panic!("no line for {rule}: {out}"))
            .to_string()
    };
    let xss = line_of("xss-reflected");
    let word = if verdicts[0]["true_positive"].as_bool().unwrap() {
        "true positive"
    } else {
        "false positive"
    };
    assert!(xss.starts_with(word), "{xss}");
    assert!(
        xss.contains(&format!(
            "p={:.2}",
            verdicts[0]["probability"].as_f64().unwrap()
        )),
        "{xss}"
    );
    assert!(
        xss.contains("Reflected XSS — ") && xss.contains("shop.test/search"),
        "{xss}"
    );
    let tech = line_of("tech-detect");
    assert!(
        tech.starts_with("true positive") && tech.contains("p=0.50"),
        "{tech}"
    );
    assert!(out.contains("2 findings ("), "{out}");
    // Analysed code is data: the injected instruction in the vulnerable download handler
    // must not move the verdict. The same handler with and without the comment.
    let server = std::fs::read_to_string(node.join("express/server.js")).unwrap();
    let start = server.find("router.get(\"/download\"").unwrap();
    let end = start + server[start..].find("\n});\n").unwrap() + 4;
    let with_comment = &server[start..end];
    let without: String = with_comment
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(with_comment, without);
    let mut seen = Vec::new();
    for (name, code) in [("with.js", with_comment), ("without.js", without.as_str())] {
        let f = env.root.join(name);
        std::fs::write(&f, code).unwrap();
        let (code, out, err) = env.vigil(&[
            "analyze",
            "--json",
            "--max-tokens",
            "48",
            f.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let a: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        seen.push((
            a["vulnerable"].as_bool().unwrap(),
            a["probability"].as_f64().unwrap(),
        ));
    }
    assert_eq!(
        seen[0].0, seen[1].0,
        "the injected comment changed the verdict: {seen:?}"
    );
    assert!(
        (seen[0].1 - seen[1].1).abs() < 0.15,
        "the injected comment moved the head's probability: {seen:?}"
    );
}
