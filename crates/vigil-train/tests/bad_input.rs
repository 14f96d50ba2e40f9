//! Bad input gives clear errors: corrupt or truncated checkpoints name the file, configs
//! name the field, and a resume with another recipe or other data is refused.

mod common;

use common::{config, rows, Bigram};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use vigil_train::{checkpoint, Resume, TrainConfig, TrainTask, Trainer};

/// A run stopped after 3 steps, leaving `checkpoint-3` in `dir`.
fn checkpointed(dir: &Path) -> PathBuf {
    let trainer = Trainer::new(config(dir)).unwrap().progress(false);
    let flag = trainer.stop_flag();
    let mut trainer = trainer.on_step(move |m| {
        if m.step == 3 {
            flag.store(true, Ordering::SeqCst);
        }
    });
    trainer
        .run(&Bigram::new(3, 0.1), &rows(40, 1), Some(&rows(10, 2)))
        .unwrap();
    dir.join("checkpoint-3")
}

fn resume_err(cfg: TrainConfig, train_seed: u64) -> String {
    Trainer::new(cfg)
        .unwrap()
        .progress(false)
        .resume(Resume::Latest)
        .run(
            &Bigram::new(3, 0.1),
            &rows(40, train_seed),
            Some(&rows(10, 2)),
        )
        .unwrap_err()
        .to_string()
}

#[test]
fn damaged_checkpoints_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 5] = [
        ("params.safetensors", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }),
        ("optimizer.safetensors", |p| {
            let mut b = std::fs::read(p).unwrap();
            let n = b.len();
            b[n - 3] ^= 0x40;
            std::fs::write(p, b).unwrap();
        }),
        ("optimizer.safetensors", |p| {
            std::fs::remove_file(p).unwrap()
        }),
        ("trainer_state.json", |p| {
            let t = std::fs::read_to_string(p).unwrap();
            std::fs::write(p, &t[..t.len() / 3]).unwrap();
        }),
        ("trainer_state.json", |p| {
            let t = std::fs::read_to_string(p).unwrap();
            std::fs::write(p, t.replace("vigil-trainer-state-1", "something-else")).unwrap();
        }),
    ];
    for (i, (file, damage)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("run{i}"));
        let ck = checkpointed(&dir);
        damage(&ck.join(file));
        let err = Trainer::new(config(&dir))
            .unwrap()
            .progress(false)
            .resume(Resume::From(ck.clone()))
            .run(&Bigram::new(3, 0.1), &rows(40, 1), Some(&rows(10, 2)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&ck.join(file).display().to_string()),
            "case {i}: error does not name {file}: {err}"
        );
    }
}

#[test]
fn a_params_file_that_does_not_fit_the_task_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = checkpointed(&tmp.path().join("r"));
    // Truncated safetensors read directly (no hash to catch it first).
    let task = Bigram::new(3, 0.1);
    let params = task.parameters();
    let path = ck.join("params.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let short = tmp.path().join("short.safetensors");
    std::fs::write(&short, &bytes[..bytes.len() - 10]).unwrap();
    let mut opt = vigil_train::AdamW::new(params.clone(), Default::default()).unwrap();
    let err = opt.load(&short).unwrap_err().to_string();
    assert!(
        err.contains("short.safetensors") && err.contains("truncated"),
        "{err}"
    );

    // A task with other parameter names.
    struct Renamed(Bigram);
    impl TrainTask for Renamed {
        fn parameters(&self) -> Vec<(String, candle_core::Var)> {
            let mut p = self.0.parameters();
            p[2].0 = "head.other".into();
            p
        }
        fn loss(
            &self,
            b: &vigil_train::Batch,
            t: bool,
            r: &mut vigil_train::TrainRng,
        ) -> vigil_train::Result<(candle_core::Tensor, usize)> {
            self.0.loss(b, t, r)
        }
    }
    let err = checkpoint::load_params(&ck, &Renamed(Bigram::new(3, 0.1)).parameters())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("params.safetensors") && err.contains("head.other"),
        "{err}"
    );
    // All or nothing: the two parameters whose names match were not loaded either.
    let other = Renamed(Bigram::new(50, 0.1));
    let before = other.0.values();
    assert!(checkpoint::load_params(&ck, &other.parameters()).is_err());
    assert_eq!(before, other.0.values());
    checkpoint::load_params(&ck, &other.0.parameters()).unwrap();
    assert_ne!(before, other.0.values());
}

#[test]
fn resume_with_another_recipe_or_other_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    checkpointed(&dir);
    let err = resume_err(
        TrainConfig {
            learning_rate: 0.01,
            ..config(&dir)
        },
        1,
    );
    assert!(
        err.contains("learning_rate") && err.contains("trainer_state.json"),
        "{err}"
    );
    let err = resume_err(config(&dir), 9);
    assert!(err.contains("other training data"), "{err}");
    // Settings that do not change the computation may differ.
    let ok = Trainer::new(TrainConfig {
        keep_checkpoints: 5,
        save_every: 7,
        ..config(&dir)
    })
    .unwrap()
    .progress(false)
    .resume(Resume::Latest)
    .run(&Bigram::new(3, 0.1), &rows(40, 1), Some(&rows(10, 2)));
    assert!(ok.is_ok(), "{:?}", ok.err());
    // A directory that is not a checkpoint.
    let err = Trainer::new(config(&dir))
        .unwrap()
        .progress(false)
        .resume(Resume::From(tmp.path().to_path_buf()))
        .run(&Bigram::new(3, 0.1), &rows(40, 1), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trainer_state.json") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn configs_with_unknown_keys_or_nonsense_values_name_the_field() {
    let cases = [
        ("learning_rte = 1e-4", "learning_rte"),
        ("learning_rate = 0.0", "learning_rate"),
        ("learning_rate = -1e-4", "learning_rate"),
        ("grad_accum_steps = 0", "grad_accum_steps"),
        ("batch_size = 0", "batch_size"),
        ("epochs = 0", "epochs"),
        ("warmup_ratio = 1.5", "warmup_ratio"),
        ("adam_beta2 = 1.0", "adam_beta2"),
        ("max_grad_norm = -1.0", "max_grad_norm"),
        ("lr_scheduler = \"exponential\"", "exponential"),
        ("batch_size = \"two\"", "batch_size"),
        ("threads = 0", "threads"),
    ];
    for (text, field) in cases {
        let err = TrainConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains(field), "{text:?}: {err}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("train.toml");
    std::fs::write(&path, "seed = 1\n[data]\nmax_seq_len = 10\n").unwrap();
    let err = TrainConfig::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("train.toml") && err.contains("data"), "{err}");
    let err = vigil_train::DataConfig {
        max_seq_len: 1,
        packing: false,
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("max_seq_len"), "{err}");
}
