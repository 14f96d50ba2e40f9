//! The resolver: known names, local paths and `hf:` specs (the latter against a Hugging
//! Face cache laid out the way `hf-hub` writes it, in offline mode — no network needed).

use std::fs;
use std::path::{Path, PathBuf};

use vigil_hub::{Hub, HubError, HubOptions, ModelKind, ModelRef};

fn hub(tmp: &Path) -> Hub {
    Hub::new(tmp.join("home"), HubOptions::default())
}

fn offline_hub(tmp: &Path, hf_cache: &Path) -> Hub {
    let options = HubOptions {
        hf_offline: true,
        hf_cache: Some(hf_cache.to_path_buf()),
        ..HubOptions::default()
    };
    Hub::new(tmp.join("home"), options)
}

fn write_gguf(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn parse_classifies_specs() {
    assert!(matches!(
        ModelRef::parse("smollm2-135m-instruct").unwrap(),
        ModelRef::Known(m) if m.name == "smollm2-135m-instruct"
    ));
    assert!(matches!(
        ModelRef::parse("Gemma3").unwrap(),
        ModelRef::Known(m) if m.name == "gemma3-270m"
    ));
    assert!(matches!(
        ModelRef::parse("hf:a/b:c.gguf").unwrap(),
        ModelRef::Hf(_)
    ));
    assert!(matches!(
        ModelRef::parse("./gemma3-270m").unwrap(),
        ModelRef::Path(_)
    ));
    assert!(matches!(
        ModelRef::parse("hf:bad").unwrap_err(),
        HubError::BadHfRef { .. }
    ));
    assert!(ModelRef::parse("").is_err());
    assert_eq!(
        ModelRef::parse("hf:a/b@dev").unwrap().to_string(),
        "hf:a/b@dev"
    );
}

#[test]
fn unknown_name_lists_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let err = hub(tmp.path()).resolve("llama-3-70b").unwrap_err();
    assert!(matches!(err, HubError::UnknownModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("'llama-3-70b'"), "{msg}");
    assert!(msg.contains("smollm2-135m-instruct, gemma3-270m"), "{msg}");
    assert!(msg.contains("vigil model list"), "{msg}");
}

#[test]
fn local_gguf_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("m/tiny.Q4.gguf");
    write_gguf(&f);
    let r = hub(tmp.path()).resolve(f.to_str().unwrap()).unwrap();
    assert_eq!(r.kind, ModelKind::Gguf);
    assert_eq!(r.path, f);
    assert_eq!(r.name, "tiny.Q4");
    assert_eq!(r.known(), None);
    // A directory with exactly one GGUF file stands for that file.
    let r = hub(tmp.path())
        .resolve(tmp.path().join("m").to_str().unwrap())
        .unwrap();
    assert_eq!((r.kind, r.path), (ModelKind::Gguf, f));
}

#[test]
fn relative_paths_become_absolute() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("rel.gguf");
    write_gguf(&f);
    let r = vigil_hub::resolve_local(Path::new(&f)).unwrap();
    assert!(r.path.is_absolute());
}

#[test]
fn not_a_gguf_file_is_rejected_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("fake.gguf");
    fs::write(&f, b"PK\x03\x04 not gguf").unwrap();
    let err = hub(tmp.path()).resolve(f.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, HubError::NotAModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("fake.gguf") && msg.contains("not a GGUF file"),
        "{msg}"
    );
    // Too short to hold a magic number.
    fs::write(&f, b"GG").unwrap();
    assert!(hub(tmp.path()).resolve(f.to_str().unwrap()).is_err());
}

#[test]
fn hf_directory_and_files_inside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("SmolLM2-HF");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("config.json"), "{}").unwrap();
    fs::write(d.join("model.safetensors"), b"\x08\0\0\0\0\0\0\0{}      ").unwrap();
    let r = hub(tmp.path()).resolve(d.to_str().unwrap()).unwrap();
    assert_eq!(
        (r.kind, r.path.clone(), r.name.as_str()),
        (ModelKind::HfDir, d.clone(), "SmolLM2-HF")
    );
    let r = hub(tmp.path())
        .resolve(d.join("model.safetensors").to_str().unwrap())
        .unwrap();
    assert_eq!((r.kind, r.path), (ModelKind::HfDir, d));
}

#[test]
fn directory_without_a_model_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("empty");
    fs::create_dir_all(&d).unwrap();
    let err = hub(tmp.path()).resolve(d.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, HubError::NotAModel { .. }), "{err}");
    assert!(err.to_string().contains("config.json"));
}

#[test]
fn missing_path_is_an_unknown_model() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("nope.gguf");
    let err = hub(tmp.path()).resolve(p.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, HubError::UnknownModel { .. }), "{err}");
    assert!(err.to_string().contains("nope.gguf"));
}

/// Lays out `<cache>/models--owner--repo/{refs/main, snapshots/<commit>/…}` like hf-hub.
fn hf_snapshot(cache: &Path, repo: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    fs::create_dir_all(repo_dir.join("refs")).unwrap();
    fs::write(repo_dir.join("refs/main"), commit).unwrap();
    let snap = repo_dir.join("snapshots").join(commit);
    for (name, bytes) in files {
        let p = snap.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    fs::create_dir_all(&snap).unwrap();
    snap
}

#[test]
fn hf_offline_single_gguf() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hf");
    let snap = hf_snapshot(
        &cache,
        "org/Tiny-GGUF",
        &[("tiny-q4_0.gguf", b"GGUF\x03\0\0\0"), ("README.md", b"hi")],
    );
    let hub = offline_hub(tmp.path(), &cache);
    let r = hub.resolve("hf:org/Tiny-GGUF").unwrap();
    assert_eq!(
        (r.kind, r.path, r.name.as_str()),
        (
            ModelKind::Gguf,
            snap.join("tiny-q4_0.gguf"),
            "org/Tiny-GGUF"
        )
    );
    let r = hub.resolve("hf:org/Tiny-GGUF:tiny-q4_0.gguf").unwrap();
    assert_eq!(r.name, "org/Tiny-GGUF:tiny-q4_0.gguf");
    // Pinning the commit works without a ref.
    let r = hub
        .resolve("hf:org/Tiny-GGUF@0123456789abcdef0123456789abcdef01234567")
        .unwrap();
    assert_eq!(r.kind, ModelKind::Gguf);
}

#[test]
fn hf_offline_several_ggufs_need_a_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hf");
    hf_snapshot(
        &cache,
        "org/Multi",
        &[("a-q4.gguf", b"GGUF"), ("a-q8.gguf", b"GGUF")],
    );
    let hub = offline_hub(tmp.path(), &cache);
    let err = hub.resolve("hf:org/Multi").unwrap_err();
    assert!(matches!(err, HubError::HfNoModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("a-q4.gguf, a-q8.gguf") && msg.contains("hf:org/Multi:FILE"),
        "{msg}"
    );
    assert_eq!(
        hub.resolve("hf:org/Multi:a-q8.gguf").unwrap().kind,
        ModelKind::Gguf
    );
}

#[test]
fn hf_offline_safetensors_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hf");
    let index = br#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#;
    let snap = hf_snapshot(
        &cache,
        "org/Sharded",
        &[
            ("config.json", b"{}"),
            ("tokenizer.json", b"{}"),
            ("model.safetensors.index.json", index),
            ("model-00001-of-00002.safetensors", b""),
        ],
    );
    let hub = offline_hub(tmp.path(), &cache);
    // One shard is missing: offline, that is an error naming it.
    let err = hub.resolve("hf:org/Sharded").unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("model-00002-of-00002.safetensors"), "{msg}");
    assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
    fs::write(snap.join("model-00002-of-00002.safetensors"), b"").unwrap();
    let r = hub.resolve("hf:org/Sharded").unwrap();
    assert_eq!((r.kind, r.path), (ModelKind::HfDir, snap));
}

#[test]
fn hf_offline_not_cached_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hf");
    fs::create_dir_all(&cache).unwrap();
    let hub = offline_hub(tmp.path(), &cache);
    let err = hub
        .resolve("hf:HuggingFaceTB/SmolLM2-135M-Instruct")
        .unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("HuggingFaceTB/SmolLM2-135M-Instruct"), "{msg}");
    assert!(
        msg.contains("offline mode is on (HF_HUB_OFFLINE is set)"),
        "{msg}"
    );
    assert!(
        msg.contains("vigil model pull hf:HuggingFaceTB/SmolLM2-135M-Instruct"),
        "{msg}"
    );
    // A named file that is not there.
    hf_snapshot(&cache, "org/Tiny-GGUF", &[("a.gguf", b"GGUF")]);
    let err = hub.resolve("hf:org/Tiny-GGUF:b.gguf").unwrap_err();
    assert!(err.to_string().contains("org/Tiny-GGUF:b.gguf"), "{err}");
    // --offline (all network off) applies to hf: too.
    let options = HubOptions {
        offline: true,
        hf_cache: Some(cache.clone()),
        ..HubOptions::default()
    };
    let err = Hub::new(tmp.path().join("home"), options)
        .resolve("hf:org/Other")
        .unwrap_err();
    assert!(err.to_string().contains("--offline"), "{err}");
}
