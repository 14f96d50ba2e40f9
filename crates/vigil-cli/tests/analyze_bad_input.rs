//! `vigil analyze` and `vigil bundle` on bad input: clear errors naming the file, no panic.
//! None of these needs a model: the input and the bundle are checked before one is loaded.

use std::process::Command;

fn vigil(home: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env("VIGIL_HOME", home)
        .env("VIGIL_OFFLINE", "1")
        .output()
        .expect("vigil runs");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

#[test]
fn analyze_refuses_binary_huge_and_non_utf8_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let bin = dir.path().join("blob.py");
    std::fs::write(&bin, b"print(1)\0\x01\x02").unwrap();
    let (ok, err) = vigil(&home, &["analyze", bin.to_str().unwrap()]);
    assert!(
        !ok && err.contains("blob.py") && err.contains("binary"),
        "{err}"
    );

    let latin = dir.path().join("latin1.php");
    std::fs::write(&latin, b"<?php echo 'caf\xe9';").unwrap();
    let (ok, err) = vigil(&home, &["analyze", latin.to_str().unwrap()]);
    assert!(
        !ok && err.contains("latin1.php") && err.contains("UTF-8"),
        "{err}"
    );

    let huge = dir.path().join("huge.js");
    std::fs::write(&huge, vec![b'x'; (1 << 20) + 1]).unwrap();
    let (ok, err) = vigil(&home, &["analyze", huge.to_str().unwrap()]);
    assert!(
        !ok && err.contains("huge.js") && err.contains("limit"),
        "{err}"
    );

    let http = dir.path().join("pair.txt");
    std::fs::write(&http, "GET / HTTP/1.1\n\nno separator").unwrap();
    let (ok, err) = vigil(
        &home,
        &["analyze", "--kind", "http", http.to_str().unwrap()],
    );
    assert!(
        !ok && err.contains("pair.txt") && err.contains("---"),
        "{err}"
    );
}

#[test]
fn a_missing_or_corrupt_bundle_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let code = dir.path().join("h.py");
    std::fs::write(&code, "def f():\n    return 1\n").unwrap();
    let (ok, err) = vigil(&home, &["analyze", code.to_str().unwrap()]);
    assert!(
        !ok && err.contains("bundle.json") && err.contains("vigil quickstart"),
        "{err}"
    );

    let bundle = home.join("bundles").join("broken");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(bundle.join("bundle.json"), "{\"format\": 1").unwrap();
    let (ok, err) = vigil(
        &home,
        &["analyze", "--bundle", "broken", code.to_str().unwrap()],
    );
    assert!(!ok && err.contains("not a vigil bundle manifest"), "{err}");
    let (ok, out) = vigil(&home, &["bundle", "list"]);
    assert!(ok && out.contains("unreadable"), "{out}");
}

#[test]
fn triage_refuses_malformed_findings_files_by_name_before_loading_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty.json", b"", "empty.json"),
        ("cut.json", b"{\"site\": [{\"alerts\": [", "cut.json"),
        ("blob.sarif", b"\x00\x01\x02\xff\xfe", "blob.sarif"),
        (
            "laughs.xml",
            b"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><issues><issue><name>&lol2;</name></issue></issues>",
            "laughs.xml",
        ),
    ];
    for (name, bytes, expect) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let (ok, err) = vigil(&home, &["triage", p.to_str().unwrap()]);
        assert!(!ok && err.contains(expect), "{name}: {err}");
        // Refused before any bundle is looked for.
        assert!(!err.contains("bundle.json"), "{name}: {err}");
    }
    // An unknown --format is an argument error, not a crash.
    let p = dir.path().join("x.json");
    std::fs::write(&p, "{}").unwrap();
    let (ok, err) = vigil(
        &home,
        &["triage", "--format", "qualys", p.to_str().unwrap()],
    );
    assert!(!ok && err.contains("qualys"), "{err}");
}
