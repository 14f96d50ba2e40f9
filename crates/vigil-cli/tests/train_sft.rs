//! `vigil train sft` end to end on the default model: a few LoRA steps on generated data
//! lower the held-out loss, the adapter is a PEFT directory that `vigil generate --adapter`
//! runs with, and a bad recipe is refused naming the field.

use std::path::Path;
use std::process::{Command, Output};

fn vigil(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("vigil runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "vigil failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sft_lowers_eval_loss_and_writes_a_usable_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(&vigil(
        d,
        &[
            "data", "generate", "--num", "200", "--seed", "3", "--db", "d.db",
        ],
    ));
    ok(&vigil(d, &["data", "split", "--db", "d.db"]));
    std::fs::write(
        d.join("sft.toml"),
        r#"
[lora]
r = 8
alpha = 16
dropout = 0.0
target_modules = "all-linear"
[data]
max_seq_len = 320
[samples]
max_train_rows = 24
max_eval_rows = 6
[train]
learning_rate = 2e-3
warmup_ratio = 0.0
lr_scheduler = "constant"
max_steps = 4
batch_size = 2
grad_accum_steps = 1
eval_every = 2
seed = 5
"#,
    )
    .unwrap();
    let out = ok(&vigil(
        d,
        &[
            "train",
            "sft",
            "--db",
            "d.db",
            "--config",
            "sft.toml",
            "--out",
            "run",
            "--quiet",
            "--threads",
            "2",
        ],
    ));
    let adapter = out.lines().last().unwrap().trim();
    let adapter = d.join(adapter);
    assert!(adapter.join("adapter_config.json").exists());
    assert!(adapter.join("adapter_model.safetensors").exists());
    for f in ["metrics.jsonl", "loss.png", "loss.svg", "summary.json"] {
        assert!(d.join("run").join(f).exists(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/summary.json")).unwrap())
            .unwrap();
    let base = summary["base_eval_loss"].as_f64().unwrap();
    let tuned = summary["tuned_eval_loss"].as_f64().unwrap();
    assert!(base.is_finite() && tuned.is_finite());
    assert!(
        tuned < base - 0.05,
        "4 steps at lr 2e-3 should lower the held-out loss: base {base}, tuned {tuned}"
    );
    assert_eq!(summary["adapted_layers"], 30 * 7);

    // The adapter runs with `vigil generate`.
    let out = ok(&vigil(
        d,
        &[
            "generate",
            "--adapter",
            adapter.to_str().unwrap(),
            "--max-tokens",
            "4",
            "--temperature",
            "0",
            "Say hi.",
        ],
    ));
    assert!(!out.trim().is_empty());

    // `--repeat` (the benchmark's warm runs) runs the same request again from an empty
    // cache: the same greedy tokens each time, and one stats line per run.
    let run = vigil(
        d,
        &[
            "generate",
            "--adapter",
            adapter.to_str().unwrap(),
            "--max-tokens",
            "6",
            "--ignore-eos",
            "--temperature",
            "0",
            "--json",
            "--stats",
            "--repeat",
            "3",
            "Say hi.",
        ],
    );
    let runs: Vec<serde_json::Value> = ok(&run)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r["token_ids"].as_array().unwrap().len(), 6);
        assert_eq!(r["token_ids"], runs[0]["token_ids"]);
        assert_eq!(r["text"], runs[0]["text"]);
    }
    let stats = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        stats.lines().filter(|l| l.starts_with("prefill:")).count(),
        3
    );

    // A fresh run into a directory with checkpoints is refused; a bad recipe names the field.
    let again = vigil(
        d,
        &[
            "train", "sft", "--db", "d.db", "--config", "sft.toml", "--out", "run", "--quiet",
        ],
    );
    assert!(!again.status.success());
    std::fs::write(d.join("bad.toml"), "[lora]\nrank = 8\n").unwrap();
    let bad = vigil(d, &["train", "sft", "--db", "d.db", "--config", "bad.toml"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bad.toml") && err.contains("rank"), "{err}");
}
