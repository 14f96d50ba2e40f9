//! A team of spinning threads for the runtime's many short parallel sections.
//!
//! Why not rayon alone: a decode step is a hundred or so products of tens to hundreds of
//! microseconds each, with serial work (norms, rope, one token's attention) between them.
//! rayon parks an idle worker within microseconds, and waking it again costs tens of
//! microseconds on a virtual machine (a futex wake-up, then the vCPU leaving its halt), so
//! on the project's 2-core host the second thread joined each product late: two threads
//! decoded at ~62 % of the memory bandwidth where one reached ~74 % (BENCHMARKS.md,
//! session 14).
//!
//! The [`WorkerTeam`] keeps `threads − 1` helper threads that spin (with the CPU's pause
//! hint, yielding the core now and then) for [`SPIN`] after each section and then sleep,
//! so the next section starts on every core at once; the caller works as a member of the
//! team rather than waiting. Each member runs a contiguous block of a section's indices
//! and then helps with the others' (see `Job`), so a late helper only takes fewer.
//!
//! [`for_each_index`] (and [`for_each_range`], [`for_each_chunk_mut`] on top of it) is the
//! entry point. It uses the team outside any rayon pool, and inside one under
//! [`with_team`] (inference: candle runs a forward pass on a worker of its own pool);
//! otherwise the current rayon pool (training sizes its own pools); and the calling thread
//! alone when a section has one index or another caller holds the team (parallel scan
//! workers already fill the cores).

use std::any::Any;
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps: long enough to bridge the serial work
/// between two products and between two decode steps, short enough that a finished
/// generation leaves no core busy.
pub const SPIN: Duration = Duration::from_millis(2);

/// One parallel section: `f(i)` for every `i < n`.
///
/// The indices are cut into one contiguous block per member of the team, and each member
/// runs its own block front to back. Products hand out neighbouring weight rows as
/// neighbouring indices, so each thread then reads one forward stream, which its
/// prefetches (the kernels' and the hardware's) follow from one index into the next;
/// handing indices out one shared counter at a time interleaved the threads, and every
/// index was a cold start. A member whose block is used up takes the back half of what is
/// left of another's and runs it front to back as its own block (so it too is one
/// stream, and it can be halved again): the members end within about one index of each
/// other, where taking the others' indices one at a time from their back ends started a
/// new stream at every index. A member that comes late or not at all leaves its block to
/// the others.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    /// Per member: the unclaimed indices of its block, `front` in the low and `back` (one
    /// past the last) in the high 32 bits; the member claims them one at a time from the
    /// front, others take the back half, both by compare-and-swap.
    blocks: Vec<Block>,
    /// The first panic of a task, raised in the caller once the section is over.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl<'a> Job<'a> {
    fn new(n: usize, members: usize, f: &'a (dyn Fn(usize) + Sync)) -> Self {
        let n = u32::try_from(n).expect("a parallel section of more than 2^32 indices");
        // One block per member, even an empty one: a member keeps what it takes from
        // the others in its own.
        let members = members.max(1) as u64;
        let blocks = (0..members)
            .map(|b| {
                let (front, back) = (b * n as u64 / members, (b + 1) * n as u64 / members);
                Block(AtomicU64::new(front | back << 32))
            })
            .collect();
        Job {
            f,
            blocks,
            panic: Mutex::new(None),
        }
    }

    /// The front index of block `b`, claimed; `None` once the block is used up.
    fn claim(&self, b: usize) -> Option<usize> {
        let taken = self.blocks[b].take(|front, back| ((front + 1, back), (front, front + 1)));
        taken.map(|(i, _)| i as usize)
    }

    /// The back half of block `b`'s unclaimed indices (at least one), taken from it;
    /// `None` once the block is used up.
    fn take_half(&self, b: usize) -> Option<(u64, u64)> {
        self.blocks[b].take(|front, back| {
            let mid = back - ((back - front) / 2).max(1);
            ((front, mid), (mid, back))
        })
    }

    /// Runs indices for team member `member` (the caller is 0) until none are left: its
    /// own block, then halves of the others' taken as its own. A panic is recorded, not
    /// raised, so that the section always completes its hand-back protocol.
    fn work(&self, member: usize) {
        let blocks = self.blocks.len();
        loop {
            while let Some(i) = self.claim(member) {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (self.f)(i))) {
                    let mut first = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert(payload);
                }
            }
            // This member's block is used up: nobody else changes it now (an empty block
            // is never taken from), so it can hold what is taken from another.
            let taken = (1..blocks).find_map(|k| self.take_half((member + k) % blocks));
            match taken {
                Some((front, back)) => self.blocks[member]
                    .0
                    .store(front | back << 32, Ordering::Relaxed),
                None => return,
            }
        }
    }
}

/// One member's block of a [`Job`], on a cache line (two, for the adjacent-line
/// prefetcher) of its own: each claim writes it, and the members' claims would
/// otherwise take the line from each other at every index.
#[repr(align(128))]
struct Block(AtomicU64);

impl Block {
    /// Takes a run of the block's unclaimed indices `front..back` by compare-and-swap:
    /// `cut(front, back)` (never called on an empty block) gives the run the block keeps
    /// and the run taken, as `(front, back)` pairs; `None` once the block is used up.
    fn take(&self, cut: impl Fn(u64, u64) -> ((u64, u64), (u64, u64))) -> Option<(u64, u64)> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (front, back) = (cur & 0xFFFF_FFFF, cur >> 32);
            if front >= back {
                return None;
            }
            let ((kept_front, kept_back), taken) = cut(front, back);
            let kept = kept_front | kept_back << 32;
            match self
                .0
                .compare_exchange_weak(cur, kept, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(taken),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// What the caller and the helpers share.
struct Shared {
    /// The current section, or null between sections. Points into the caller's stack:
    /// a helper announces itself in `active` before reading it, and the caller clears it
    /// and waits for `active` to drain before returning (see [`WorkerTeam::run`]).
    job: AtomicPtr<()>,
    /// Bumped once per section; helpers wait for it to change.
    epoch: AtomicU64,
    /// Helpers between announcing themselves and leaving a section.
    active: AtomicUsize,
    /// Helpers asleep (or about to be) on `wake`.
    sleepers: AtomicUsize,
    /// Set when the team is dropped: helpers leave at the next epoch.
    quit: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// A fixed team of helper threads that, together with the calling thread, runs parallel
/// sections. One section at a time: [`WorkerTeam::try_run`] declines when another
/// thread holds the team.
pub struct WorkerTeam {
    shared: Arc<Shared>,
    /// Held by the thread running a section.
    owner: Mutex<()>,
    threads: usize,
}

impl WorkerTeam {
    /// A team of `threads`: the caller plus `threads − 1` helpers, started now and
    /// stopped when the team is dropped. The runtime uses one, [`WorkerTeam::global`].
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let team = WorkerTeam {
            shared: Arc::clone(&shared),
            owner: Mutex::new(()),
            threads: threads.max(1),
        };
        for i in 1..threads {
            let shared = Arc::clone(&shared);
            // On failure `team` is dropped, which stops the helpers already started.
            std::thread::Builder::new()
                .name(format!("vigil-team-{i}"))
                .spawn(move || helper(&shared, i))?;
        }
        Ok(team)
    }

    /// The process's team: as many threads as rayon's global pool (`RAYON_NUM_THREADS`,
    /// else the cores) but never more than the cores (a spinning helper without a core
    /// of its own only delays the sections it joined), or `None` for one thread or where
    /// threads cannot be started.
    pub fn global() -> Option<&'static WorkerTeam> {
        static TEAM: OnceLock<Option<WorkerTeam>> = OnceLock::new();
        TEAM.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = std::env::var("RAYON_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n: &usize| n > 0)
                .map_or(cores, |n: usize| n.min(cores));
            (threads > 1)
                .then(|| WorkerTeam::new(threads).ok())
                .flatten()
        })
        .as_ref()
    }

    /// Threads in the team, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for every `i < n` on the team and returns true, or returns false at
    /// once, having run nothing, when another thread holds the team. The first panic in
    /// `f` is raised here, with its own payload, after every index has run.
    pub fn try_run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) -> bool {
        // A panic raised by an earlier section poisoned the lock; the team is still sound.
        let _owner = match self.owner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let job = Job::new(n, self.threads, f);
        self.run(&job);
        if let Some(payload) = job.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
            resume_unwind(payload);
        }
        true
    }

    fn run(&self, job: &Job) {
        let s = &*self.shared;
        s.job.store(job as *const Job as *mut (), Ordering::SeqCst);
        s.start_epoch();
        job.work(0);
        // Every index is claimed; helpers still inside finish theirs. Once `job` is
        // cleared no helper can newly reach it, and `active` counts those that did (the
        // SeqCst order of "announce, then read job" against "clear job, then read
        // active" leaves no gap), so `job` may go out of scope when `active` is 0.
        s.job.store(std::ptr::null_mut(), Ordering::SeqCst);
        let mut spins = 0u32;
        while s.active.load(Ordering::SeqCst) != 0 {
            spins = spins.saturating_add(1);
            if spins < 1024 {
                std::hint::spin_loop();
            } else {
                // A helper still inside was preempted (more runnable threads than
                // cores): give it this core rather than spin against it.
                std::thread::yield_now();
            }
        }
    }
}

impl Shared {
    /// Tells the helpers something changed (a section, or quitting), waking sleepers.
    fn start_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_all();
        }
    }
}

impl Drop for WorkerTeam {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        self.shared.start_epoch();
    }
}

/// A helper's life (team member `member`): wait for a section (spinning, then asleep),
/// join it, repeat.
fn helper(s: &Shared, member: usize) {
    // The epoch the team was created with, not the one at this thread's start: a section
    // may begin before the helper first runs, and it must still join that one.
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let epoch = s.epoch.load(Ordering::SeqCst);
            if epoch != seen {
                seen = epoch;
                break;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) {
                std::hint::spin_loop();
                continue;
            }
            // Every ~10 µs: let a thread that shares this core run (a rayon worker woken
            // by candle between two sections), and check the time.
            std::thread::yield_now();
            if start.elapsed() > SPIN {
                let mut guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, Ordering::SeqCst);
                while s.epoch.load(Ordering::SeqCst) == seen {
                    guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                s.sleepers.fetch_sub(1, Ordering::SeqCst);
                seen = s.epoch.load(Ordering::SeqCst);
                break;
            }
        }
        if s.quit.load(Ordering::SeqCst) {
            return;
        }
        s.active.fetch_add(1, Ordering::SeqCst);
        let job = s.job.load(Ordering::SeqCst) as *const Job;
        if !job.is_null() {
            // SAFETY: the caller keeps the job alive until `active` drops to 0 (see
            // `WorkerTeam::run`), and this helper is counted in it.
            unsafe { (*job).work(member) };
        }
        s.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether sections may use the team at all (else rayon, as before the team existed):
/// for A/B measurements. On unless `VIGIL_THREAD_TEAM=off`.
static TEAM_ENABLED: OnceLock<AtomicBool> = OnceLock::new();

fn team_enabled() -> bool {
    TEAM_ENABLED
        .get_or_init(|| {
            AtomicBool::new(std::env::var("VIGIL_THREAD_TEAM").map_or(true, |v| v != "off"))
        })
        .load(Ordering::Relaxed)
}

/// Turns the team on or off for later sections (off: rayon).
pub fn set_team_enabled(on: bool) {
    TEAM_ENABLED.get_or_init(|| AtomicBool::new(on));
    TEAM_ENABLED
        .get()
        .expect("set above")
        .store(on, Ordering::Relaxed);
}

thread_local! {
    /// Set by [`with_team`] for the thread running inference.
    static PREFER_TEAM: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's sections on the team even inside a rayon pool (candle
/// runs a forward pass on a worker of its own pool): for inference, whose many small
/// sections pay for every rayon hand-off. Training keeps rayon (its own pool size, large
/// products, and float matmuls that need that pool's workers awake).
pub fn with_team<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PREFER_TEAM.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PREFER_TEAM.with(|p| p.replace(true)));
    f()
}

/// The team, where a section started on this thread should run on it.
fn team_here() -> Option<&'static WorkerTeam> {
    let wanted = rayon::current_thread_index().is_none() || PREFER_TEAM.with(Cell::get);
    if wanted && team_enabled() {
        WorkerTeam::global()
    } else {
        None
    }
}

/// Runs `f(i)` for every `i < n`, in parallel where that pays: on the [`WorkerTeam`]
/// outside any rayon pool or under [`with_team`], on the current rayon pool otherwise,
/// and on the calling thread when `n < 2`, there is one thread, or the team is busy with
/// another caller's section (whose threads already fill the cores). Every index runs
/// exactly once, on some thread.
pub fn for_each_index(n: usize, f: impl Fn(usize) + Sync) {
    if n < 2 {
        (0..n).for_each(f);
        return;
    }
    match team_here() {
        Some(team) => {
            if !team.try_run(n, &f) {
                (0..n).for_each(f);
            }
        }
        None if rayon::current_num_threads() > 1 => {
            use rayon::prelude::*;
            (0..n).into_par_iter().for_each(&f);
        }
        None => (0..n).for_each(f),
    }
}

/// The number of threads a section started here would run on.
pub fn current_threads() -> usize {
    match team_here() {
        Some(team) => team.threads(),
        None if rayon::current_thread_index().is_none() && team_enabled() => 1,
        None => rayon::current_num_threads(),
    }
}

/// Runs `f(range)` over `0..n` cut into contiguous ranges, about four per thread (fewer
/// where a range would hold fewer than `min_len` items), as [`for_each_index`] runs
/// indices. For work whose items are too small to hand out one at a time.
pub fn for_each_range(n: usize, min_len: usize, f: impl Fn(Range<usize>) + Sync) {
    let parts = (current_threads() * 4).min(n / min_len.max(1)).max(1);
    for_each_index(parts, |p| f(p * n / parts..(p + 1) * n / parts));
}

/// Runs `f(i, chunk)` for the `i`-th chunk of `len` elements of `data` (the last may be
/// shorter), chunks in parallel as [`for_each_index`] runs indices.
pub fn for_each_chunk_mut<T: Send>(data: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    assert!(len > 0, "chunk length 0");
    let n = data.len().div_ceil(len);
    let total = data.len();
    let shared = SharedSlice::new(data);
    for_each_index(n, |i| {
        // SAFETY: chunk `i` is the range [i·len, min((i+1)·len, total)), disjoint from every
        // other index's, and each index runs once.
        let chunk = unsafe { shared.range(i * len..((i + 1) * len).min(total)) };
        f(i, chunk)
    });
}

/// A mutable slice that the tasks of one parallel section write in disjoint ranges.
pub struct SharedSlice<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: sending the view to other threads hands out `&mut T` there, sound for `T: Send`
// as long as the ranges taken are disjoint (the contract of `range`).
unsafe impl<T: Send> Send for SharedSlice<'_, T> {}
unsafe impl<T: Send> Sync for SharedSlice<'_, T> {}

impl<'a, T> SharedSlice<'a, T> {
    pub fn new(data: &'a mut [T]) -> Self {
        SharedSlice {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// The elements in `r`.
    ///
    /// # Safety
    /// No two slices taken at the same time may overlap.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, r: Range<usize>) -> &mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "range {r:?} of {}",
            self.len
        );
        // SAFETY: in bounds (asserted); exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}
