//! The thread team that runs inference's parallel sections: every index exactly once,
//! really in parallel, panics raised in the caller, and callers that find it busy still
//! get their work done.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vigil_kernels::team::{for_each_chunk_mut, for_each_index, for_each_range, WorkerTeam};

/// Counts how often each index ran.
fn counts(n: usize) -> Vec<AtomicUsize> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

fn assert_each_once(c: &[AtomicUsize], what: &str) {
    for (i, v) in c.iter().enumerate() {
        assert_eq!(v.load(Ordering::Relaxed), 1, "{what}: index {i}");
    }
}

#[test]
fn every_index_runs_once_in_many_short_sections() {
    let team = WorkerTeam::new(3).unwrap();
    for n in [0, 1, 2, 3, 7, 64, 1000] {
        for _ in 0..200 {
            let c = counts(n);
            let ran = team.try_run(n, &|i| {
                c[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(ran, "the team was free");
            assert_each_once(&c, &format!("section of {n}"));
        }
    }
}

#[test]
fn a_section_runs_on_several_threads_at_once() {
    let team = WorkerTeam::new(2).unwrap();
    // Index 0 waits until another index has started on another thread: it can only
    // finish if a helper takes part while the caller is busy.
    let caller = std::thread::current().id();
    let other_started = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ran = team.try_run(2, &|_| {
        if std::thread::current().id() != caller {
            other_started.store(true, Ordering::SeqCst);
            return;
        }
        while !other_started.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "no helper joined the section");
            std::hint::spin_loop();
        }
    });
    assert!(ran);
    assert!(other_started.load(Ordering::SeqCst));
}

#[test]
fn helpers_wake_after_sleeping() {
    let team = WorkerTeam::new(2).unwrap();
    // Longer than the spin window: the helper is asleep when the next section starts.
    std::thread::sleep(vigil_kernels::team::SPIN * 3);
    let on_helper = AtomicBool::new(false);
    let caller = std::thread::current().id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ran = team.try_run(2, &|_| {
        if std::thread::current().id() != caller {
            on_helper.store(true, Ordering::SeqCst);
        } else {
            while !on_helper.load(Ordering::SeqCst) {
                assert!(
                    Instant::now() < deadline,
                    "the sleeping helper was not woken"
                );
                std::thread::yield_now();
            }
        }
    });
    assert!(ran);
}

#[test]
fn a_panicking_task_is_raised_in_the_caller_and_the_team_goes_on() {
    let team = WorkerTeam::new(2).unwrap();
    let c = counts(16);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        team.try_run(16, &|i| {
            c[i].fetch_add(1, Ordering::Relaxed);
            if i == 5 {
                panic!("task 5 fails");
            }
        })
    }));
    let payload = r.expect_err("the panic reached the caller");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("task 5 fails"),
        "the task's own panic message"
    );
    // Every other index still ran.
    assert_each_once(&c, "section with a panic");
    let c = counts(16);
    let ran = team.try_run(16, &|i| {
        c[i].fetch_add(1, Ordering::Relaxed);
    });
    assert!(ran, "the team is free again after a panic");
    assert_each_once(&c, "section after a panic");
}

#[test]
fn a_busy_team_is_reported_and_concurrent_callers_all_finish() {
    let team = WorkerTeam::new(2).unwrap();
    // While one caller holds the team, another's try_run returns at once.
    let inside = AtomicBool::new(false);
    let release = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let ran = team.try_run(1, &|_| {
                inside.store(true, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
            });
            assert!(ran);
        });
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        assert!(!team.try_run(4, &|_| {}), "held by the other caller");
        release.store(true, Ordering::SeqCst);
    });
    // The process-wide entry point from four threads at once: each caller's indices all
    // run once, whether its section got the team or ran on its own thread.
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for round in 0..100 {
                    let n = 10 + (t * 7 + round) % 50;
                    let c = counts(n);
                    for_each_index(n, |i| {
                        c[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert_each_once(&c, "concurrent for_each_index");
                }
            });
        }
    });
}

#[test]
fn ranges_and_chunks_cover_everything_once() {
    for n in [0usize, 1, 5, 63, 64, 1000, 4099] {
        let c = counts(n);
        let ranges = Mutex::new(Vec::new());
        for_each_range(n, 16, |r| {
            for i in r.clone() {
                c[i].fetch_add(1, Ordering::Relaxed);
            }
            ranges.lock().unwrap().push(r);
        });
        assert_each_once(&c, &format!("for_each_range({n})"));
        let ranges = ranges.into_inner().unwrap();
        if n >= 16 {
            assert!(
                ranges.iter().all(|r| r.len() >= 16),
                "ranges of at least min_len: {ranges:?}"
            );
        }
        for len in [1usize, 3, 64] {
            let mut data = vec![usize::MAX; n];
            for_each_chunk_mut(&mut data, len, |i, chunk| {
                assert!(
                    chunk.len() == len || (i + 1) * len >= n,
                    "only the last chunk is short"
                );
                for (k, v) in chunk.iter_mut().enumerate() {
                    assert_eq!(*v, usize::MAX, "written twice");
                    *v = i * len + k;
                }
            });
            assert!(
                data.iter().enumerate().all(|(i, &v)| i == v),
                "chunks of {len} over {n}"
            );
        }
    }
}

/// How many runs of consecutive ascending indices (`i, i + 1, …`) `seq` is made of: one
/// thread's share of a section is its own block front to back, then each half it took
/// from another block, front to back too.
fn runs(seq: &[usize]) -> usize {
    match seq.len() {
        0 => 0,
        _ => 1 + seq.windows(2).filter(|w| w[1] != w[0] + 1).count(),
    }
}
#[test]
fn each_thread_reads_forward_runs_and_takes_halves_of_the_others_blocks() {
    // Neighbouring indices are neighbouring weight rows: each thread should read forward
    // streams. Two members, 64 indices: the caller's block is 0..32, the helper's 32..64.
    // The helper's indices take ten times as long, so the caller finishes first and takes
    // from the helper's block: the back half of what is left, as a forward run, halving
    // again as they go (a handful of takes in all), not one index at a time from
    // the back (one run per index).
    let team = WorkerTeam::new(2).unwrap();
    let caller = std::thread::current().id();
    let mut took = 0;
    for _ in 0..100 {
        let log = Mutex::new(Vec::new());
        team.try_run(64, &|i| {
            let mine = std::thread::current().id() == caller;
            log.lock().unwrap().push((mine, i));
            let t0 = Instant::now();
            let cost = Duration::from_micros(if mine { 2 } else { 20 });
            while t0.elapsed() < cost {
                std::hint::spin_loop();
            }
        });
        let log = log.into_inner().unwrap();
        let of = |mine: bool| -> Vec<usize> {
            log.iter().filter(|e| e.0 == mine).map(|e| e.1).collect()
        };
        let (ours, helper) = (of(true), of(false));
        let mut all: Vec<usize> = ours.iter().chain(&helper).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>(), "every index once");
        assert!(
            runs(&ours) + runs(&helper) <= 2 + 7,
            "caller {ours:?}, helper {helper:?}"
        );
        took += usize::from(ours.len() > 32);
    }
    assert!(took > 0, "the caller never took from the helper's block");
}
