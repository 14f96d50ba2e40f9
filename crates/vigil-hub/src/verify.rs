//! sha256 of files, and the sidecar (`<file>.sha256`) that remembers a verified hash
//! together with the size and modification time it was computed for, so that a lookup of
//! an unchanged 100 MB file does not hash it again.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io_err, Result};

/// Lower-case hex of a sha256 digest.
pub fn hex(digest: &[u8]) -> String {
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The sha256 (lower-case hex) and length of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// The sha256 (lower-case hex) of a file, always read in full.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(io_err("opening", path))?;
    let (digest, _) = sha256_reader(file).map_err(io_err("reading", path))?;
    Ok(digest)
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the hex digest and the byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Gives a file made by `tempfile` (mode 0600) the usual mode of a data file (0644).
pub(crate) fn make_readable(file: &File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// What the sidecar file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sidecar {
    sha256: String,
    size: u64,
    mtime_ns: u128,
}

/// The sidecar path of a model file: `<file>.sha256`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

fn stamp(meta: &fs::Metadata) -> (u64, u128) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (meta.len(), mtime)
}

/// Outcome of [`check_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The file has the expected hash (from the sidecar, or hashed just now).
    Ok,
    /// There is no file at the path.
    Missing,
    /// The file exists but its bytes are not the expected ones.
    Mismatch { actual: String, size: u64 },
}

/// Checks that `path` has sha256 `expected`. A sidecar written for the file's current size
/// and modification time is trusted; otherwise the file is hashed and, if it matches, a fresh
/// sidecar is written (failure to write it is only logged). A size different from
/// `expected_size` (when given) is a mismatch without hashing.
pub fn check_file(path: &Path, expected: &str, expected_size: Option<u64>) -> Result<Verified> {
    let meta = match fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            return Ok(Verified::Mismatch {
                actual: "(not a regular file)".into(),
                size: 0,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Verified::Missing),
        Err(e) => return Err(crate::HubError::io("reading metadata of", path, e)),
    };
    let (size, mtime_ns) = stamp(&meta);
    if let Some(want) = expected_size {
        if size != want {
            return Ok(Verified::Mismatch {
                actual: "(not computed: wrong size)".into(),
                size,
            });
        }
    }
    let side = sidecar_path(path);
    if let Ok(text) = fs::read_to_string(&side) {
        if let Ok(rec) = serde_json::from_str::<Sidecar>(&text) {
            if rec.size == size && rec.mtime_ns == mtime_ns && rec.sha256 == expected {
                tracing::debug!(path = %path.display(), "sha256 taken from sidecar");
                return Ok(Verified::Ok);
            }
        }
    }
    tracing::info!(path = %path.display(), "verifying sha256");
    let actual = sha256_file(path)?;
    if actual != expected {
        return Ok(Verified::Mismatch { actual, size });
    }
    // Stamp with the metadata read before hashing: if the file changed meanwhile, the next
    // check sees a different stamp and hashes again.
    write_sidecar_stamp(path, &actual, size, mtime_ns);
    Ok(Verified::Ok)
}

/// Records that `path` (as it is now) has sha256 `digest`.
pub(crate) fn write_sidecar(path: &Path, digest: &str) {
    match fs::metadata(path) {
        Ok(meta) => {
            let (size, mtime_ns) = stamp(&meta);
            write_sidecar_stamp(path, digest, size, mtime_ns);
        }
        Err(e) => tracing::warn!(path = %path.display(), "cannot stat for sidecar: {e}"),
    }
}

fn write_sidecar_stamp(path: &Path, digest: &str, size: u64, mtime_ns: u128) {
    let side = sidecar_path(path);
    let rec = Sidecar {
        sha256: digest.to_string(),
        size,
        mtime_ns,
    };
    let text = serde_json::to_string(&rec).expect("sidecar serialises");
    let result = (|| -> io::Result<()> {
        let dir = side.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".vigil-sidecar-")
            .tempfile_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        make_readable(tmp.as_file());
        tmp.persist(&side).map_err(|e| e.error)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(path = %side.display(), "cannot write sha256 sidecar: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_known_vector() {
        let (d, n) = sha256_reader(&b"abc"[..]).unwrap();
        assert_eq!(d, ABC);
        assert_eq!(n, 3);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!((buf.as_slice(), d.as_str(), n), (&b"abc"[..], ABC, 3));
    }

    #[test]
    fn sidecar_is_written_trusted_and_invalidated() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.gguf");
        assert_eq!(check_file(&f, ABC, None).unwrap(), Verified::Missing);
        fs::write(&f, b"abc").unwrap();
        assert_eq!(check_file(&f, ABC, Some(3)).unwrap(), Verified::Ok);
        let side = sidecar_path(&f);
        assert!(side.ends_with("m.gguf.sha256"));
        let rec: Sidecar = serde_json::from_str(&fs::read_to_string(&side).unwrap()).unwrap();
        assert_eq!(rec.sha256, ABC);
        assert_eq!(rec.size, 3);

        // A sidecar that matches size and mtime is believed without reading the file: prove
        // it by recording a made-up digest for the current stamp.
        let fake = "0".repeat(64);
        write_sidecar(&f, &fake);
        assert_eq!(check_file(&f, &fake, None).unwrap(), Verified::Ok);

        // Changing the file (same size) changes the mtime and forces a re-hash.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&f, b"abd").unwrap();
        match check_file(&f, ABC, Some(3)).unwrap() {
            Verified::Mismatch { actual, size } => {
                assert_ne!(actual, ABC);
                assert_eq!(size, 3);
            }
            other => panic!("expected mismatch, got {other:?}"),
        }
        // Wrong size is a mismatch without hashing.
        assert!(matches!(
            check_file(&f, ABC, Some(4)).unwrap(),
            Verified::Mismatch { .. }
        ));
    }
}
