//! A hand-built report shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, UNIX_EPOCH};
use vigil_findings::{BundleInfo, Endpoint, Finding, Location, ScanReport, Skipped, ToolInfo};
use vigil_taxonomy::{Severity, Taxonomy};

pub const SQLI_CODE: &str =
    "def get_user(id):\n    return db.execute(\"SELECT * FROM users WHERE id=\" + id)\n";
pub const SQLI_FIX: &str =
    "def get_user(id):\n    return db.execute(\"SELECT * FROM users WHERE id=?\", (id,))\n";

pub fn finding(rule: &str, path: &str, lines: (u32, u32), code: &str, lang: &str) -> Finding {
    let vuln = Taxonomy::builtin().by_id(rule).expect("rule in taxonomy");
    Finding::new(vuln, Location::new(path, lines.0, lines.1), code, lang)
}

/// Five findings across four severities and two files, one skipped file, one suppressed.
pub fn sample_report() -> ScanReport {
    let started = UNIX_EPOCH + Duration::from_secs(1_795_305_600); // 2026-11-22T00:00:00Z
    let mut r = ScanReport::new(
        ToolInfo::vigil("0.1.0"),
        BundleInfo {
            name: "vigil-qwen-0.5b".into(),
            model_fingerprint: "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"
                .into(),
        },
        "/home/dev/shop",
        started,
    );
    r.duration_ms = 12_345;
    r.units_analyzed = 10;
    r.clean_units = 6;
    r.suppressed_by_baseline = 0;

    let mut sqli = finding(
        "sql_injection",
        "src/db/users.py",
        (10, 11),
        SQLI_CODE,
        "python",
    );
    sqli.confidence = 0.91;
    sqli.probability = Some(0.87);
    sqli.endpoint = Some(Endpoint {
        method: "GET".into(),
        route: "/users/{id}".into(),
        handler: "get_user".into(),
    });
    sqli.framework = Some("flask".into());
    sqli.reason = "The id path parameter is concatenated into SQL.".into();
    sqli.fixed_code = Some(SQLI_FIX.into());

    let mut bola = finding(
        "bola",
        "src/api/orders.py",
        (20, 31),
        "def get_order(order_id):\n    return Order.get(order_id)\n",
        "python",
    );
    bola.confidence = 0.7;
    bola.reason = "No check that the order belongs to the caller.".into();

    let mut xss = finding(
        "xss",
        "web/app.js",
        (5, 9),
        "app.get('/hi', (req, res) => res.send('<b>' + req.query.name))",
        "javascript",
    );
    xss.confidence = 0.66;
    xss.framework = Some("express".into());
    xss.reason = "Query parameter echoed into HTML.".into();

    let mut headers = finding(
        "missing_security_headers",
        "web/app.js",
        (1, 3),
        "const app = express()",
        "javascript",
    );
    headers.confidence = 0.5;
    headers.severity = Severity::Low;
    headers.reason = "No helmet() or equivalent headers.".into();

    let mut secret = finding(
        "hardcoded_secrets",
        "src/config.py",
        (3, 3),
        "API_KEY = \"sk-live-123\"",
        "python",
    );
    secret.confidence = 0.8;
    secret.reason = "A live API key is committed.".into();

    r.findings = vec![headers, xss, secret, sqli, bola];
    r.skipped = vec![Skipped {
        path: "assets/vendor.min.js".into(),
        reason: "larger than 1 MiB".into(),
    }];
    r.sort();
    r
}
