//! The repository walk and bad inputs: what is skipped and why, what is never skipped, and
//! that nothing panics.

use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;
use vigil_scan::{discover_file, scan_tree, DiscoveryOptions, ScanError, SkipReason, UnitKind};

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn reason_of(d: &vigil_scan::Discovery, path: &str) -> Option<SkipReason> {
    d.skipped
        .iter()
        .find(|s| s.path == path)
        .map(|s| s.reason.clone())
}

fn unit_paths(d: &vigil_scan::Discovery) -> Vec<String> {
    let mut v: Vec<String> = d.units.iter().map(|u| u.path.clone()).collect();
    v.dedup();
    v
}

#[test]
fn empty_directory_gives_an_empty_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let d = scan_tree(dir.path(), &DiscoveryOptions::default()).unwrap();
    assert!(d.units.is_empty() && d.skipped.is_empty());
}

#[test]
fn missing_root_is_an_error_naming_the_path() {
    let err = scan_tree(
        Path::new("/nonexistent/vigil-scan-root"),
        &DiscoveryOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ScanError::Root { .. }));
    assert!(
        err.to_string().contains("/nonexistent/vigil-scan-root"),
        "{err}"
    );
}

#[test]
fn binary_invalid_utf8_huge_empty_and_foreign_files_are_skipped_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "bin.py", b"def f():\n    return 1\n\x00\x01\x02");
    write(r, "latin1.js", b"// caf\xe9\nfunction f() {}\n");
    write(r, "big.go", &vec![b'/'; 3000]);
    write(r, "blank.rb", b"  \n\n");
    write(r, "README.md", b"# hello\n");
    write(r, "ok.py", b"def f():\n    return 1\n");
    let opts = DiscoveryOptions {
        max_file_bytes: 2000,
        ..DiscoveryOptions::default()
    };
    let d = scan_tree(r, &opts).unwrap();
    assert_eq!(reason_of(&d, "bin.py"), Some(SkipReason::Binary));
    assert_eq!(reason_of(&d, "latin1.js"), Some(SkipReason::InvalidUtf8));
    assert_eq!(
        reason_of(&d, "big.go"),
        Some(SkipReason::TooLarge {
            bytes: 3000,
            limit: 2000
        })
    );
    assert_eq!(reason_of(&d, "blank.rb"), Some(SkipReason::Empty));
    assert_eq!(reason_of(&d, "README.md"), Some(SkipReason::NotSource));
    assert_eq!(unit_paths(&d), vec!["ok.py"]);
    assert_eq!(d.skipped.len(), 5);
}

#[test]
fn ignore_files_hidden_files_and_excludes_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, ".gitignore", b"build/\n*.gen.py\n");
    write(r, ".ignore", b"vendor/\n");
    write(r, "build/out.py", b"def a(): pass\n");
    write(r, "x.gen.py", b"def b(): pass\n");
    write(r, "vendor/lib.py", b"def c(): pass\n");
    write(r, ".hidden/secret.py", b"def d(): pass\n");
    write(r, "tests/test_app.py", b"def e(): pass\n");
    write(r, "app.py", b"def f(): pass\n");
    write(r, ".git/hooks/pre-commit.py", b"def g(): pass\n");
    let d = scan_tree(r, &DiscoveryOptions::default()).unwrap();
    assert_eq!(unit_paths(&d), vec!["app.py", "tests/test_app.py"]);
    assert!(d.skipped.is_empty(), "{:?}", d.skipped);

    let opts = DiscoveryOptions {
        exclude: vec!["tests/**".into()],
        hidden: true,
        ..DiscoveryOptions::default()
    };
    let d = scan_tree(r, &opts).unwrap();
    assert_eq!(unit_paths(&d), vec![".hidden/secret.py", "app.py"]);
    // hidden files are walked, but never git's database
    assert!(
        d.skipped.iter().all(|s| !s.path.starts_with(".git/")),
        "{:?}",
        d.skipped
    );

    let opts = DiscoveryOptions {
        respect_ignore_files: false,
        ..DiscoveryOptions::default()
    };
    let d = scan_tree(r, &opts).unwrap();
    assert_eq!(
        unit_paths(&d),
        vec![
            "app.py",
            "build/out.py",
            "tests/test_app.py",
            "vendor/lib.py",
            "x.gen.py"
        ]
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_reported_not_followed_so_loops_end() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "src/app.py", b"def f(): pass\n");
    std::os::unix::fs::symlink(r, r.join("src/loop")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", r.join("outside.py")).unwrap();
    let d = scan_tree(r, &DiscoveryOptions::default()).unwrap();
    assert_eq!(unit_paths(&d), vec!["src/app.py"]);
    assert_eq!(reason_of(&d, "src/loop"), Some(SkipReason::Symlink));
    assert_eq!(reason_of(&d, "outside.py"), Some(SkipReason::Symlink));
}

#[test]
fn a_single_file_root_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "one.py", b"def f(): pass\n");
    let d = scan_tree(&dir.path().join("one.py"), &DiscoveryOptions::default()).unwrap();
    assert_eq!(unit_paths(&d), vec!["one.py"]);
}

#[test]
fn broken_syntax_still_yields_the_recoverable_functions_with_a_note() {
    let src = "def good(a):\n    return a + 1\n\ndef broken(:\n    x = = 2\n\ndef also_good():\n    return 3\n";
    let d = discover_file("m.py", src);
    let names: Vec<String> = d
        .units
        .iter()
        .filter_map(|u| match &u.kind {
            UnitKind::Function { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("good"), "{names:?}");
    // Whatever the parser recovered, every non-blank line lands in some unit.
    for (i, line) in src.lines().enumerate() {
        let n = i + 1;
        assert!(
            line.trim().is_empty() || d.units.iter().any(|u| u.start_line <= n && n <= u.end_line),
            "line {n} {line:?} is in no unit: {:?}",
            d.units
                .iter()
                .map(|u| (u.start_line, u.end_line))
                .collect::<Vec<_>>()
        );
    }
    assert!(d
        .units
        .iter()
        .all(|u| u.notes.iter().any(|n| n.contains("syntax errors"))));
}

#[test]
fn scripts_without_functions_become_file_units() {
    let src = "<?php\n$id = $_GET['id'];\n$r = mysqli_query($db, \"SELECT * FROM users WHERE id = $id\");\necho json_encode($r);\n";
    let d = discover_file("legacy/user.php", src);
    assert_eq!(d.units.len(), 1);
    let u = &d.units[0];
    assert_eq!(u.kind, UnitKind::File);
    assert_eq!((u.start_line, u.end_line), (1, 4));
    assert_eq!(u.code, src);
}

#[test]
fn controllers_without_routes_are_analysed_per_method() {
    let src = "public class LegacyServlet extends HttpServlet {\n  protected void doGet(HttpServletRequest req, HttpServletResponse res) {\n    res.getWriter().write(req.getParameter(\"q\"));\n  }\n  protected void doPost(HttpServletRequest req, HttpServletResponse res) {}\n}\n";
    let d = discover_file("LegacyServlet.java", src);
    let names: Vec<_> = d
        .units
        .iter()
        .map(|u| (u.kind.clone(), u.start_line, u.end_line))
        .collect();
    assert_eq!(
        names,
        vec![
            (
                UnitKind::Function {
                    name: "LegacyServlet.doGet".into()
                },
                2,
                4
            ),
            (
                UnitKind::Function {
                    name: "LegacyServlet.doPost".into()
                },
                5,
                5
            ),
        ]
    );
    assert!(d.units[0]
        .context
        .contains("class LegacyServlet extends HttpServlet"));
    assert_eq!(d.units[0].framework.as_deref(), Some("servlet"));
}

#[test]
fn generated_giant_files_are_capped_per_file_and_per_unit() {
    let mut src = String::new();
    for i in 0..500 {
        src.push_str(&format!("def f{i}():\n    return {i}\n\n"));
    }
    src.push_str("def huge():\n");
    for i in 0..3000 {
        src.push_str(&format!("    x{i} = {i}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gen.py", src.as_bytes());
    let opts = DiscoveryOptions {
        max_units_per_file: 200,
        ..DiscoveryOptions::default()
    };
    let d = scan_tree(dir.path(), &opts).unwrap();
    assert_eq!(d.units.len(), 200);
    assert_eq!(
        reason_of(&d, "gen.py"),
        Some(SkipReason::UnitCap {
            dropped: 301,
            limit: 200
        })
    );
    assert_eq!(d.units[0].start_line, 1);

    let opts = DiscoveryOptions {
        max_units_per_file: 1000,
        ..DiscoveryOptions::default()
    };
    let d = vigil_scan::discover_files(vec![("gen.py".into(), src.clone())], &opts);
    let huge = d
        .units
        .iter()
        .find(|u| {
            u.kind
                == UnitKind::Function {
                    name: "huge".into(),
                }
        })
        .unwrap();
    assert_eq!(huge.code.len(), DiscoveryOptions::default().max_unit_bytes);
    assert!(
        huge.notes.iter().any(|n| n.contains("truncated")),
        "{:?}",
        huge.notes
    );
}

#[test]
fn deeply_nested_hostile_input_does_not_crash() {
    let src = format!("x = {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let d = discover_file("deep.py", &src);
    assert_eq!(d.units.len(), 1);
    let src = format!(
        "function f() {{ return {}1{}; }}\n",
        "(".repeat(50_000),
        ")".repeat(50_000)
    );
    let d = discover_file("deep.js", &src);
    assert_eq!(d.units.len(), 1);
}

#[test]
fn content_hash_is_sha256_of_code_and_context_and_order_is_stable() {
    let src = "import os\n\ndef b():\n    return os.getcwd()\n\ndef a():\n    pass\n";
    let d = discover_file("m.py", src);
    assert_eq!(
        d.units.iter().map(|u| u.start_line).collect::<Vec<_>>(),
        vec![3, 6]
    );
    for u in &d.units {
        let mut h = Sha256::new();
        h.update(u.code.as_bytes());
        h.update([0u8]);
        h.update(u.context.as_bytes());
        let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(u.content_hash, want);
        assert_eq!(u.context, "import os\n");
    }
    assert_eq!(d, discover_file("m.py", src));
}

#[test]
fn long_module_level_code_and_function_fields_are_units_too() {
    let src = r#"const express = require("express");
const app = express();

app.use((req, res, next) => {
  if (req.headers["x-admin"] === "1") req.isAdmin = true;
  next();
});

class Handlers {
  list = async (req, res) => {
    res.json([]);
  };
}
"#;
    let d = discover_file("app.js", src);
    let kinds: Vec<(UnitKind, usize, usize)> = d
        .units
        .iter()
        .map(|u| (u.kind.clone(), u.start_line, u.end_line))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (UnitKind::File, 4, 7),
            (
                UnitKind::Function {
                    name: "Handlers.list".into()
                },
                10,
                12
            ),
        ]
    );
    assert!(d.units[0].code.contains("x-admin"));
    assert!(d.units[0].notes.iter().any(|n| n.contains("module-level")));
}
