//! The training loop on a toy task: exact resume, determinism under a seed, gradient
//! accumulation, early stopping, checkpoint rotation, metrics and charts.

mod common;

use common::{assert_same_curve, config, curve, rows, Bigram};
use std::sync::atomic::Ordering;
use vigil_train::checkpoint::{self, list_checkpoints};
use vigil_train::trainer::accumulate_gradients;
use vigil_train::{Batch, Resume, StopReason, TrainConfig, TrainRng, Trainer};

fn run(cfg: &TrainConfig, task: &Bigram) -> vigil_train::RunSummary {
    let (train, eval) = (rows(40, 1), rows(10, 2));
    Trainer::new(cfg.clone())
        .unwrap()
        .progress(false)
        .run(task, &train, Some(&eval))
        .unwrap()
}

/// Runs until step `k`, stopping through the flag (as Ctrl-C would).
fn run_interrupted(cfg: &TrainConfig, task: &Bigram, k: usize) -> vigil_train::RunSummary {
    let (train, eval) = (rows(40, 1), rows(10, 2));
    let trainer = Trainer::new(cfg.clone()).unwrap().progress(false);
    let flag = trainer.stop_flag();
    let mut trainer = trainer.on_step(move |m| {
        if m.step == k {
            flag.store(true, Ordering::SeqCst);
        }
    });
    trainer.run(task, &train, Some(&eval)).unwrap()
}

fn resume(cfg: &TrainConfig, task: &Bigram) -> vigil_train::RunSummary {
    let (train, eval) = (rows(40, 1), rows(10, 2));
    Trainer::new(cfg.clone())
        .unwrap()
        .progress(false)
        .resume(Resume::Latest)
        .run(task, &train, Some(&eval))
        .unwrap()
}

#[test]
fn killed_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );

    let full_task = Bigram::new(3, 0.2);
    let full = run(&config(&a), &full_task);
    assert_eq!(full.stop, StopReason::Completed);
    assert_eq!(full.steps, 30, "40 rows / batch 2 / accum 2 × 3 epochs");

    // Stop at step 13: mid-epoch (10 steps per epoch), between evaluations (every 4).
    let task = Bigram::new(3, 0.2);
    let part = run_interrupted(&config(&b), &task, 13);
    assert_eq!(part.stop, StopReason::Interrupted);
    assert_eq!(part.steps, 13);
    assert!(b.join("checkpoint-13").join("trainer_state.json").is_file());

    // A kill while steps 14–15 were logged (the last line torn) leaves lines past the
    // checkpoint; the resume drops them.
    let log = b.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap().to_string();
    text.push_str(&last.replace("\"step\":13", "\"step\":14"));
    text.push('\n');
    text.push_str(&last.replace("\"step\":13", "\"step\":15")[..40]);
    std::fs::write(&log, text).unwrap();
    // A new process would start from freshly initialised weights; so do we.
    let fresh = Bigram::new(3, 0.2);
    let resumed = resume(&config(&b), &fresh);
    assert_eq!(resumed.resumed_from, Some(13));
    assert_eq!(resumed.stop, StopReason::Completed);
    assert_same_curve(&curve(&a), &curve(&b), "metrics after resume");
    assert_eq!(full_task.values(), fresh.values(), "final weights differ");
    assert_eq!(full.best_eval_loss, resumed.best_eval_loss);
    assert_eq!(full.best_step, resumed.best_step);

    // The comparison is sensitive: resuming with another dropout stream changes the curve.
    let task = Bigram::new(3, 0.2);
    run_interrupted(&config(&c), &task, 13);
    let sp = c.join("checkpoint-13").join("trainer_state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
    state["rng_state"] = serde_json::json!(12345u64);
    std::fs::write(&sp, state.to_string()).unwrap();
    resume(&config(&c), &Bigram::new(3, 0.2));
    let (ca, cc) = (curve(&a), curve(&c));
    assert_eq!(ca[..13], cc[..13]);
    assert_ne!(
        ca[13..],
        cc[13..],
        "the RNG state in the checkpoint is not used"
    );
}

#[test]
fn a_hard_kill_resumes_from_the_last_periodic_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, d) = (tmp.path().join("a"), tmp.path().join("d"));
    let cfg = |dir: &std::path::Path| TrainConfig {
        save_every: 4,
        keep_checkpoints: 3,
        ..config(dir)
    };
    run(&cfg(&a), &Bigram::new(3, 0.2));
    // Steps 13 and 14 done and logged, checkpoint-12 on disk, then SIGKILL: simulated by
    // stopping at 14 and removing the checkpoint the stop wrote.
    run_interrupted(&cfg(&d), &Bigram::new(3, 0.2), 14);
    std::fs::remove_dir_all(d.join("checkpoint-14")).unwrap();
    assert_eq!(curve(&d).len(), 14);
    let fresh = Bigram::new(3, 0.2);
    let r = resume(&cfg(&d), &fresh);
    assert_eq!(r.resumed_from, Some(12));
    assert_same_curve(&curve(&a), &curve(&d), "metrics after a hard kill");
    let kept: Vec<usize> = list_checkpoints(&d)
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert!(kept.ends_with(&[24, 28, 30]), "{kept:?}");
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let tmp = tempfile::tempdir().unwrap();
    let short = |dir: &str, seed: u64| TrainConfig {
        epochs: 1,
        seed,
        ..config(&tmp.path().join(dir))
    };
    let (t1, t2, t3) = (
        Bigram::new(3, 0.2),
        Bigram::new(3, 0.2),
        Bigram::new(3, 0.2),
    );
    run(&short("x", 7), &t1);
    run(&short("y", 7), &t2);
    run(&short("z", 8), &t3);
    let (x, y, z) = (
        curve(&tmp.path().join("x")),
        curve(&tmp.path().join("y")),
        curve(&tmp.path().join("z")),
    );
    assert_same_curve(&x, &y, "same seed");
    assert_eq!(t1.values(), t2.values());
    assert_ne!(x, z, "the seed changes the data order and dropout");
}

fn batches(sizes: &[usize]) -> Vec<Batch> {
    let d = rows(40, 1);
    let mut at = 0;
    sizes
        .iter()
        .map(|&n| {
            let idx: Vec<usize> = (at..at + n).collect();
            at += n;
            d.batch(&idx).unwrap()
        })
        .collect()
}

#[test]
fn accumulation_gives_the_gradient_of_the_whole_batch() {
    let task = Bigram::new(5, 0.0);
    let mut rng = TrainRng::new(1);
    let (g4, l4, n4) = accumulate_gradients(&task, &batches(&[4]), &mut rng).unwrap();
    for split in [&[2usize, 2][..], &[1, 1, 1, 1], &[1, 3]] {
        let (g, l, n) = accumulate_gradients(&task, &batches(split), &mut rng).unwrap();
        assert_eq!(n, n4);
        assert!(
            (l - l4).abs() < 1e-6 * l4.abs(),
            "{split:?}: loss {l} vs {l4}"
        );
        for i in 0..g4.len() {
            let a = g4
                .get(i)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let b = g
                .get(i)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6, "{split:?}: param {i}: {x} vs {y}");
            }
        }
    }
    // Not the mean of per-micro-batch means: the rows have different token counts.
    let b = batches(&[1, 3]);
    let (_, l1, _) = accumulate_gradients(&task, &b[..1], &mut rng).unwrap();
    let (_, l3, _) = accumulate_gradients(&task, &b[1..], &mut rng).unwrap();
    assert!(((l1 + l3) / 2.0 - l4).abs() > 1e-4);

    // And through the trainer: 4×1, 2×2 and 1×4 take the same steps.
    let tmp = tempfile::tempdir().unwrap();
    let mut curves = Vec::new();
    for (bs, acc) in [(4, 1), (2, 2), (1, 4)] {
        let dir = tmp.path().join(format!("b{bs}"));
        let cfg = TrainConfig {
            batch_size: bs,
            grad_accum_steps: acc,
            epochs: 1,
            ..config(&dir)
        };
        run(&cfg, &Bigram::new(5, 0.0));
        curves.push(curve(&dir));
    }
    for c in &curves[1..] {
        assert_eq!(c.len(), curves[0].len());
        for (x, y) in c.iter().zip(&curves[0]) {
            assert_eq!((x.0, x.5), (y.0, y.5));
            assert!((x.3 - y.3).abs() < 1e-5, "loss {} vs {}", x.3, y.3);
            assert!(
                (x.4 - y.4).abs() < 1e-5 * y.4,
                "grad norm {} vs {}",
                x.4,
                y.4
            );
        }
    }
}

#[test]
fn early_stopping_keeps_the_best_checkpoint_and_rotates_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("es");
    // No later evaluation can beat the first by 1e9: patience 2 stops at the third.
    let cfg = TrainConfig {
        eval_every: 3,
        early_stopping_patience: 2,
        early_stopping_min_delta: 1e9,
        save_every: 2,
        keep_checkpoints: 1,
        ..config(&dir)
    };
    let s = run(&cfg, &Bigram::new(3, 0.1));
    assert_eq!(s.stop, StopReason::EarlyStopped);
    assert_eq!(s.steps, 9);
    assert_eq!(s.best_step, Some(3));
    assert_eq!(s.best_checkpoint, Some(dir.join("checkpoint-3")));
    let kept: Vec<usize> = list_checkpoints(&dir)
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(kept, vec![3, 9], "the best and the last");
    let evals: Vec<usize> = curve(&dir)
        .into_iter()
        .filter(|c| c.6.is_some())
        .map(|c| c.0)
        .collect();
    assert_eq!(evals, vec![3, 6, 9]);

    // The best checkpoint's parameters load back into a task.
    let task = Bigram::new(99, 0.1);
    checkpoint::load_params(
        &dir.join("checkpoint-3"),
        &vigil_train::TrainTask::parameters(&task),
    )
    .unwrap();

    // Resuming a finished run does nothing.
    let again = resume(&cfg, &Bigram::new(3, 0.1));
    assert_eq!(again.stop, StopReason::EarlyStopped);
    assert_eq!(again.steps, 9);
}

#[test]
fn metrics_charts_and_schedule_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let cfg = TrainConfig {
        epochs: 1,
        ..config(&dir)
    };
    let s = run(&cfg, &Bigram::new(3, 0.1));
    let log = vigil_train::metrics::read_metrics(&dir.join("metrics.jsonl")).unwrap();
    assert_eq!(log.len(), s.steps);
    assert_eq!(log[0].lr, 0.0, "warmup ceil(0.1 × 10) = 1 step starts at 0");
    assert_eq!(log[1].lr, 0.05);
    assert!(log.last().unwrap().eval_loss.is_some(), "eval at the end");
    assert!(log
        .iter()
        .all(|m| m.tokens_per_s > 0.0 && m.grad_norm > 0.0));
    assert!((log.last().unwrap().epoch - 1.0).abs() < 1e-12);
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("eval"));
    let png = std::fs::read(dir.join("loss.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // A fresh run refuses a directory that already holds checkpoints.
    let err = Trainer::new(cfg)
        .unwrap()
        .progress(false)
        .run(&Bigram::new(3, 0.1), &rows(40, 1), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds checkpoints"), "{err}");
}
