//! The generator's promises, checked on its output: every code sample parses with its
//! tree-sitter grammar without ERROR nodes, every vulnerable sample contains the sink or
//! lacks the check its type names while its fixed twin has the fix (patterns per type, not
//! the label), HTTP twins differ in the right header / body, and `--seed` is deterministic.

use vigil_data::synth::code::{self, Fw};
use vigil_data::synth::{self, http, GenOptions, Rng};
use vigil_data::{Sample, SampleKind};

fn language(lang: &str) -> tree_sitter::Language {
    match lang {
        "python" => tree_sitter_python::LANGUAGE.into(),
        "javascript" => tree_sitter_javascript::LANGUAGE.into(),
        "typescript" => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        "java" => tree_sitter_java::LANGUAGE.into(),
        "php" => tree_sitter_php::LANGUAGE_PHP.into(),
        "go" => tree_sitter_go::LANGUAGE.into(),
        "ruby" => tree_sitter_ruby::LANGUAGE.into(),
        "csharp" => tree_sitter_c_sharp::LANGUAGE.into(),
        other => panic!("no grammar for {other}"),
    }
}

fn first_error(node: tree_sitter::Node, src: &str) -> Option<String> {
    if node.is_error() || node.is_missing() {
        let line = node.start_position().row;
        return Some(format!(
            "{} at line {}: {:?}",
            node.kind(),
            line + 1,
            src.lines().nth(line).unwrap_or("")
        ));
    }
    let mut cur = node.walk();
    for child in node.children(&mut cur) {
        if child.has_error() || child.is_missing() {
            if let Some(e) = first_error(child, src) {
                return Some(e);
            }
        }
    }
    None
}

fn parse_ok(lang: &str, src: &str) -> Result<(), String> {
    let mut p = tree_sitter::Parser::new();
    p.set_language(&language(lang)).map_err(|e| e.to_string())?;
    let tree = p.parse(src, None).ok_or("parser gave no tree")?;
    let root = tree.root_node();
    if root.has_error() {
        return Err(first_error(root, src).unwrap_or_else(|| "has_error".into()));
    }
    Ok(())
}

fn any(code: &str, pats: &[&str]) -> bool {
    pats.iter().any(|p| code.contains(p))
}

/// Check that the vulnerable code shows the flaw and the fixed code the fix, by pattern.
fn flaw_check(t: &str, vuln: &str, fixed: &str) -> Result<(), String> {
    let ok = |cond: bool, what: &str| if cond { Ok(()) } else { Err(what.to_string()) };
    match t {
        "sql_injection" => {
            const INTERP: &[&str] = &[
                "'{",
                "\" + ",
                "\" % ",
                "${",
                "'$",
                "\" . $",
                "#{",
                "Sprintf(",
                "String.format(",
                "$\"",
            ];
            const PLACEHOLDER: &[&str] = &[" ?", "$1", "{0}"];
            let sql = |c: &str| {
                c.lines()
                    .filter(|l| l.contains("SELECT ") || l.contains(".where("))
                    .map(String::from)
                    .collect::<Vec<_>>()
            };
            let v = sql(vuln);
            let f = sql(fixed);
            ok(!v.is_empty() && !f.is_empty(), "no SQL line")?;
            ok(
                v.iter().any(|l| any(l, INTERP)),
                "vulnerable SQL is not built by interpolation",
            )?;
            ok(
                f.iter().all(|l| !any(l, INTERP) && any(l, PLACEHOLDER)),
                "fixed SQL still interpolates or has no placeholder",
            )
        }
        "command_injection" => {
            const SHELL: &[&str] = &[
                "shell=True",
                "os.popen(",
                "execSync(",
                "\"sh\", \"-c\"",
                "shell_exec(",
                "out = `",
                "/bin/sh",
            ];
            ok(any(vuln, SHELL), "vulnerable code runs no shell")?;
            ok(!any(fixed, SHELL), "fixed code still runs a shell")?;
            ok(
                fixed.contains("1,253"),
                "fixed code does not validate the host",
            )
        }
        "path_traversal" => {
            const READ: &[&str] = &[
                "open(",
                "readFileSync(",
                "readAllBytes(",
                "file_get_contents(",
                "ReadFile(",
                "send_file",
                "ReadAllBytes(",
            ];
            const GUARD: &[&str] = &[
                "startswith(",
                "startsWith(",
                "str_starts_with(",
                "HasPrefix(",
                "start_with?(",
                "StartsWith(",
            ];
            ok(any(vuln, READ) && any(fixed, READ), "no file read sink")?;
            ok(!any(vuln, GUARD), "vulnerable code has a containment check")?;
            ok(any(fixed, GUARD), "fixed code has no containment check")
        }
        "ssrf" => {
            const FETCH: &[&str] = &[
                "requests.get(",
                "fetch(",
                "getForObject(",
                "Http::",
                "http.Get(",
                "Net::HTTP.get(",
                "GetStringAsync(",
                ".Get(",
            ];
            const ALLOW: &[&str] = &["ALLOWED_HOSTS", "allowedHosts", "AllowedHosts"];
            ok(any(vuln, FETCH), "vulnerable code fetches nothing")?;
            ok(!any(vuln, ALLOW), "vulnerable code has an allow-list")?;
            ok(any(fixed, ALLOW), "fixed code has no allow-list")
        }
        "bola" => {
            const WHO: &[&str] = &[
                "current_user.id",
                "user.id",
                "req.user.id",
                "principal.getId()",
                "GetInt64(\"userID\")",
                "CurrentUserId()",
                "->user()->id",
            ];
            ok(!any(vuln, WHO), "vulnerable code scopes by the caller")?;
            ok(any(fixed, WHO), "fixed code does not scope by the caller")
        }
        "open_redirect" => {
            const SINK: &[&str] = &[
                "redirect(",
                "Redirect(",
                "redirect_to",
                "RedirectResponse(",
                "HttpResponseRedirect(",
                "location(URI.create(",
                "->away(",
                "{ url:",
            ];
            const GUARD: &[&str] = &["\"//\"", "'//'", "IsLocalUrl("];
            ok(any(vuln, SINK), "no redirect sink")?;
            ok(!any(vuln, GUARD), "vulnerable code checks the target")?;
            ok(any(fixed, GUARD), "fixed code does not check the target")
        }
        "hardcoded_secrets" => {
            const ENV: &[&str] = &[
                "os.environ",
                "process.env",
                "System.getenv",
                "env(",
                "os.Getenv",
                "ENV.fetch",
                "GetEnvironmentVariable",
            ];
            let literal = |c: &str| {
                c.split(['"', '\'']).enumerate().any(|(i, s)| {
                    i % 2 == 1
                        && s.len() >= 24
                        && s.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                })
            };
            ok(literal(vuln), "vulnerable code has no secret literal")?;
            ok(!literal(fixed), "fixed code still has a secret literal")?;
            ok(any(fixed, ENV), "fixed code does not read the environment")
        }
        "weak_cryptography" => {
            const WEAK: &[&str] = &[
                "md5(",
                "sha1(",
                "md5.Sum",
                "sha1.Sum",
                "\"md5\"",
                "\"sha1\"",
                "\"MD5\"",
                "\"SHA-1\"",
                "Digest::MD5",
                "Digest::SHA1",
                "MD5.HashData",
                "SHA1.HashData",
                "hashlib.md5",
                "hashlib.sha1",
            ];
            const STRONG: &[&str] = &["bcrypt", "BCrypt", "ARGON2", "Pbkdf2"];
            ok(any(vuln, WEAK), "vulnerable code uses no weak hash")?;
            ok(!any(fixed, WEAK), "fixed code still uses a weak hash")?;
            ok(any(fixed, STRONG), "fixed code uses no password hash")
        }
        "mass_assignment" => {
            const BULK: &[&str] = &[
                ".items()",
                "Object.assign(",
                "updateValue(obj, payload)",
                "forceFill(",
                "permit!",
                "map[string]interface{}",
                "SetValues(payload)",
            ];
            ok(
                any(vuln, BULK),
                "vulnerable code does not bind the whole body",
            )?;
            ok(!any(fixed, BULK), "fixed code still binds the whole body")
        }
        "broken_function_level_authorization" => {
            const ADMIN: &[&str] = &[
                "is_admin",
                "is_staff",
                "isAdmin",
                "admin?",
                "IsInRole(",
                "\"isAdmin\"",
            ];
            ok(
                vuln.contains("DELETE FROM") || vuln.contains("delete_all"),
                "no delete",
            )?;
            ok(!any(vuln, ADMIN), "vulnerable code checks the role")?;
            ok(any(fixed, ADMIN), "fixed code does not check the role")
        }
        "xss" => {
            const ESC: &[&str] = &[
                "escape(",
                "escapeHtml(",
                "htmlEscape(",
                "e($",
                "EscapeString(",
                "html_escape(",
                "Encode(",
            ];
            ok(
                vuln.contains("<p>") && fixed.contains("<p>"),
                "no HTML sink",
            )?;
            ok(!any(vuln, ESC), "vulnerable code encodes")?;
            ok(any(fixed, ESC), "fixed code does not encode")
        }
        "insecure_deserialization" => {
            const UNSAFE: &[&str] = &[
                "pickle.loads",
                "serialize.unserialize",
                "ObjectInputStream",
                "unserialize(",
                "Marshal.load",
                "BinaryFormatter",
            ];
            const SAFE: &[&str] = &[
                "json.loads",
                "JSON.parse",
                "readValue",
                "json_decode",
                "JsonSerializer",
            ];
            ok(
                any(vuln, UNSAFE),
                "vulnerable code has no unsafe deserializer",
            )?;
            ok(
                !any(fixed, UNSAFE),
                "fixed code still has an unsafe deserializer",
            )?;
            ok(any(fixed, SAFE), "fixed code has no data-only parser")
        }
        other => Err(format!("no pattern check for {other}")),
    }
}

#[test]
fn every_template_parses_and_shows_its_flaw() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for fw in Fw::ALL {
        for &t in code::TYPES {
            for seed in 0..12u64 {
                let mut rng = Rng::new(seed * 7919 + 1);
                let Some((v, f)) = code::instance_in(&mut rng, t, fw) else {
                    continue;
                };
                let lang = v.language.clone().unwrap();
                let vc = v.code.clone().unwrap();
                let fc = f.code.clone().unwrap();
                assert_eq!(v.fixed_code.as_deref(), Some(fc.as_str()));
                for (which, src) in [("vulnerable", &vc), ("fixed", &fc)] {
                    if let Err(e) = parse_ok(&lang, src) {
                        failures.push(format!("{} {t} seed {seed} {which}: {e}\n{src}", fw.name()));
                    }
                }
                if let Err(e) = flaw_check(t, &vc, &fc) {
                    failures.push(format!(
                        "{} {t} seed {seed}: {e}\n--- vulnerable\n{vc}\n--- fixed\n{fc}",
                        fw.name()
                    ));
                }
                checked += 1;
            }
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAIL {}", f.lines().next().unwrap_or(""));
        }
        panic!(
            "{} of {checked} failed; first:\n{}",
            failures.len(),
            failures[0]
        );
    }
    // 10 frameworks × 12 types × 12 seeds, less Go's missing deserialization template
    assert_eq!(checked, (10 * 12 - 1) * 12);
}

#[test]
fn a_planted_flaw_is_caught_by_the_pattern_check() {
    // the check must be able to fail: swap the variants and it must reject them
    let mut rng = Rng::new(5);
    for &t in code::TYPES {
        let (v, f) = code::instance_in(&mut rng, t, Fw::Flask).unwrap();
        assert!(
            flaw_check(t, f.code.as_deref().unwrap(), v.code.as_deref().unwrap()).is_err(),
            "{t}"
        );
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\n\n").next().unwrap_or("");
    head.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

fn body(msg: &str) -> &str {
    msg.split_once("\n\n").map(|x| x.1).unwrap_or("")
}

fn http_check(t: &str, v: &Sample, f: &Sample) -> Result<(), String> {
    let req = v.request.as_deref().unwrap();
    assert_eq!(Some(req), f.request.as_deref(), "twins share the request");
    let (vr, fr) = (
        v.response.as_deref().unwrap(),
        f.response.as_deref().unwrap(),
    );
    let ok = |cond: bool, what: &str| if cond { Ok(()) } else { Err(what.to_string()) };
    match t {
        "missing_security_headers" => {
            let hs = [
                "Strict-Transport-Security",
                "Content-Security-Policy",
                "X-Frame-Options",
                "X-Content-Type-Options",
                "Referrer-Policy",
            ];
            ok(
                hs.iter().any(|h| header(vr, h).is_empty()),
                "vulnerable response has all headers",
            )?;
            ok(
                hs.iter().all(|h| !header(fr, h).is_empty()),
                "secure response misses a header",
            )
        }
        "cors_misconfiguration" => {
            let origin = header(req, "Origin");
            ok(!origin.is_empty(), "no Origin in request")?;
            ok(
                header(vr, "Access-Control-Allow-Origin") == origin
                    && header(vr, "Access-Control-Allow-Credentials") == ["true"],
                "vulnerable response does not reflect origin with credentials",
            )?;
            ok(
                header(fr, "Access-Control-Allow-Origin").is_empty(),
                "secure response grants the origin",
            )
        }
        "insecure_cookie" => {
            let flags = |c: &str| {
                ["Secure", "HttpOnly", "SameSite="]
                    .iter()
                    .all(|f| c.contains(f))
            };
            let vc = header(vr, "Set-Cookie");
            let fc = header(fr, "Set-Cookie");
            ok(
                vc.len() == 1 && !flags(vc[0]),
                "vulnerable cookie has every flag",
            )?;
            ok(fc.len() == 1 && flags(fc[0]), "secure cookie misses a flag")
        }
        "xss" => {
            ok(
                body(vr).contains("<span><")
                    || body(vr).contains("<span>\"><")
                    || body(vr).contains("<span>'><"),
                "vulnerable body does not reflect markup",
            )?;
            ok(
                body(fr).contains("<span>&") || body(fr).contains("<span>&quot;"),
                "secure body is not encoded",
            )?;
            let inner = body(fr)
                .split("<span>")
                .nth(1)
                .unwrap_or("")
                .split("</span>")
                .next()
                .unwrap_or("");
            ok(!inner.contains('<'), "secure reflection contains raw <")
        }
        "open_redirect" => {
            let vl = header(vr, "Location");
            let fl = header(fr, "Location");
            ok(
                vl.len() == 1 && (vl[0].starts_with("http") || vl[0].starts_with("//")),
                "vulnerable Location is not external",
            )?;
            ok(
                fl.len() == 1 && fl[0].starts_with('/') && !fl[0].starts_with("//"),
                "secure Location is not local",
            )
        }
        "information_disclosure" => {
            let leaky = |m: &str| {
                m.contains("Exception")
                    || m.contains("Traceback")
                    || m.contains("Stack trace")
                    || m.contains("Error:")
                    || header(m, "X-Powered-By").len() == 1
            };
            ok(leaky(vr), "vulnerable response leaks nothing")?;
            ok(!leaky(fr), "secure response still leaks")?;
            ok(
                header(fr, "Server").iter().all(|s| !s.contains('/')),
                "secure Server header has a version",
            )
        }
        other => Err(format!("no check for {other}")),
    }
}

#[test]
fn http_pairs_show_the_flaw_and_the_twin_does_not() {
    for &t in http::TYPES {
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let (v, f) = http::instance(&mut rng, t);
            assert_eq!(v.kind, SampleKind::HttpPair);
            if let Err(e) = http_check(t, &v, &f) {
                panic!(
                    "{t} seed {seed}: {e}\n--- request\n{}\n--- vulnerable\n{}\n--- secure\n{}",
                    v.request.as_deref().unwrap(),
                    v.response.as_deref().unwrap(),
                    f.response.as_deref().unwrap()
                );
            }
            let cl: usize = header(v.response.as_deref().unwrap(), "Content-Length")[0]
                .parse()
                .unwrap();
            assert_eq!(
                cl,
                body(v.response.as_deref().unwrap()).len(),
                "Content-Length is exact"
            );
        }
    }
}

#[test]
fn generation_is_deterministic_and_covers_everything() {
    let opts = GenOptions {
        seed: 7,
        num: 3000,
        ..Default::default()
    };
    let a = synth::generate(&opts, |_| {}).unwrap();
    let b = synth::generate(&opts, |_| {}).unwrap();
    assert_eq!(a.len(), 3000);
    assert_eq!(a, b);
    let c = synth::generate(
        &GenOptions {
            seed: 8,
            ..opts.clone()
        },
        |_| {},
    )
    .unwrap();
    assert_ne!(a, c);
    for fw in Fw::ALL {
        assert!(
            a.iter().any(|s| s.framework.as_deref() == Some(fw.name())),
            "{}",
            fw.name()
        );
    }
    for t in synth::supported_types() {
        assert!(
            a.iter()
                .any(|s| s.is_vulnerable && s.vuln_type.as_deref() == Some(t)),
            "{t}"
        );
    }
    // twins share a group; each group has one vulnerable and one clean sample
    let mut groups = std::collections::HashMap::<&str, (usize, usize)>::new();
    for s in &a {
        let e = groups.entry(s.group_id.as_str()).or_default();
        if s.is_vulnerable {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    assert!(groups.values().all(|&(v, c)| v == 1 && c <= 1));
    let nofp = synth::generate(
        &GenOptions {
            nofp: true,
            num: 200,
            ..opts.clone()
        },
        |_| {},
    )
    .unwrap();
    assert!(nofp.iter().all(|s| s.is_vulnerable));
    let only = synth::generate(
        &GenOptions {
            vulns: vec!["xss".into()],
            num: 100,
            ..opts
        },
        |_| {},
    )
    .unwrap();
    assert!(only.iter().all(|s| s.vuln_type.as_deref() == Some("xss")));
    assert!(
        only.iter().any(|s| s.kind == SampleKind::Code)
            && only.iter().any(|s| s.kind == SampleKind::HttpPair)
    );
    assert!(synth::generate(
        &GenOptions {
            vulns: vec!["nope".into()],
            ..Default::default()
        },
        |_| {}
    )
    .is_err());
}
