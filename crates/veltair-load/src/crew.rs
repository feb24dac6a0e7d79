//! A crew of worker threads, one pinned to each core, that run a kernel's thread indices on
//! exactly the cores a scheduler assigned (`Team::Crew`), and one-off tasks on a chosen core.
//! Idle workers spin briefly before sleeping, so consecutive layers of a block hand over in
//! microseconds; a crew may also poll longer, keeping its cores from halting (on a VM, a vCPU
//! that halted costs the next layers 20-30%), while giving way to any other thread there.
//! `Crew::run` returns only after every thread index has finished, which is what makes lending
//! it a borrowed closure sound (see `mapped::lend`).

use crate::mapped::{lend, Lent};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker (or a waiting caller) spins before it sleeps or, polling longer,
/// starts yielding its core between looks.
const SPIN: Duration = Duration::from_micros(50);

/// Work for one worker.
enum Job {
    /// Thread index `index` of a call whose closure is lent until `done` counts it.
    Index { f: Lent, index: usize, done: Arc<Done> },
    /// A task that owns everything it uses.
    Task(Box<dyn FnOnce() + Send>),
}

/// Completion of one `run`: how many lent indices are still running.
struct Done {
    remaining: AtomicUsize,
    panicked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// One worker's mailbox.
#[derive(Default)]
struct Slot {
    queue: Mutex<Vec<Job>>,
    posted: AtomicBool,
    wake: Condvar,
    stop: AtomicBool,
}

/// The crew.
pub struct Crew {
    slots: Vec<Arc<Slot>>,
    handles: Vec<JoinHandle<()>>,
}

impl Crew {
    /// One worker per core `0..cores`, each pinned to its core when the OS allows it. An idle
    /// worker looks for work for `idle_poll` (at least 50 µs) before it sleeps; past the first
    /// 50 µs it yields its core to any other runnable thread between looks.
    pub fn new(cores: usize, idle_poll: Duration) -> std::io::Result<Crew> {
        let poll = idle_poll.max(SPIN);
        let mut slots = Vec::with_capacity(cores);
        let mut handles = Vec::with_capacity(cores);
        for core in 0..cores.max(1) {
            let slot = Arc::new(Slot::default());
            let mine = Arc::clone(&slot);
            let handle = std::thread::Builder::new().name(format!("veltair-core-{core}")).spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
                work(&mine, poll);
            })?;
            slots.push(slot);
            handles.push(handle);
        }
        Ok(Crew { slots, handles })
    }

    /// Workers (cores) in the crew.
    pub fn cores(&self) -> usize {
        self.slots.len()
    }

    /// Runs `task` on the worker of `core` (queued behind what that worker is doing).
    pub fn spawn_on(&self, core: usize, task: Box<dyn FnOnce() + Send>) {
        post(&self.slots[core % self.slots.len()], Job::Task(task));
    }

    /// Calls `f(t)` for `t` in `0..cores.len()`: index 0 on the calling thread, index `t` on the
    /// worker of `cores[t]`; returns when every call has returned. A panic in any call is
    /// re-raised here after all have finished.
    pub fn run(&self, cores: &[usize], f: &(dyn Fn(usize) + Sync)) {
        if cores.len() <= 1 {
            f(0);
            return;
        }
        let done = Arc::new(Done {
            remaining: AtomicUsize::new(cores.len() - 1),
            panicked: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        // The lent closure is used only by the jobs posted here, and this function returns only
        // after `done` has counted every one of them (below), so `f` outlives every use.
        let lent = lend(f);
        for (index, &core) in cores.iter().enumerate().skip(1) {
            post(&self.slots[core % self.slots.len()], Job::Index { f: lent, index, done: Arc::clone(&done) });
        }
        let own = catch_unwind(AssertUnwindSafe(|| f(0)));
        wait(&done);
        if own.is_err() || done.panicked.load(Ordering::Acquire) {
            panic!("a kernel call panicked on one of the crew's threads");
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        for slot in &self.slots {
            slot.stop.store(true, Ordering::Release);
            let _guard = slot.queue.lock();
            slot.wake.notify_all();
        }
        let me = std::thread::current().id();
        for handle in self.handles.drain(..) {
            // The last owner may be one of the workers (a task holding it): that one just ends.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

fn post(slot: &Slot, job: Job) {
    let mut queue = slot.queue.lock().unwrap_or_else(|e| e.into_inner());
    queue.push(job);
    slot.posted.store(true, Ordering::Release);
    slot.wake.notify_one();
}

/// Waits until every lent index of a `run` has finished: spinning first, then sleeping.
fn wait(done: &Done) {
    let start = Instant::now();
    while done.remaining.load(Ordering::Acquire) > 0 {
        if start.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        let guard = done.lock.lock().unwrap_or_else(|e| e.into_inner());
        if done.remaining.load(Ordering::Acquire) > 0 {
            let _ = done.wake.wait_timeout(guard, Duration::from_millis(1));
        }
    }
}

/// A worker's loop: take jobs in order; when idle, spin, then poll yielding the core until
/// `poll` has passed, then sleep.
fn work(slot: &Slot, poll: Duration) {
    loop {
        let jobs = {
            let start = Instant::now();
            while !slot.posted.load(Ordering::Acquire) && !slot.stop.load(Ordering::Acquire) {
                match start.elapsed() {
                    idle if idle < SPIN => std::hint::spin_loop(),
                    idle if idle < poll => std::thread::yield_now(),
                    _ => break,
                }
            }
            let mut queue = slot.queue.lock().unwrap_or_else(|e| e.into_inner());
            while queue.is_empty() && !slot.stop.load(Ordering::Acquire) {
                queue = slot.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            if queue.is_empty() {
                return;
            }
            slot.posted.store(false, Ordering::Release);
            std::mem::take(&mut *queue)
        };
        for job in jobs {
            match job {
                Job::Index { f, index, done } => {
                    let ok = catch_unwind(AssertUnwindSafe(|| f.call(index))).is_ok();
                    if !ok {
                        done.panicked.store(true, Ordering::Release);
                    }
                    if done.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        let _guard = done.lock.lock();
                        done.wake.notify_all();
                    }
                }
                Job::Task(task) => {
                    let _ = catch_unwind(AssertUnwindSafe(task));
                }
            }
        }
    }
}
