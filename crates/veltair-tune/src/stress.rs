//! Calibrated interference stressor: background threads, pinned to cores the measured kernel does
//! not use, that compete with it for the shared last-level cache and memory bandwidth.
//!
//! Two kinds of work exist. *Stream* work walks a buffer much larger than the LLC sequentially,
//! one read-modify-write per 64-byte line: it consumes memory bandwidth, and every line it pulls
//! in also passes through the LLC. *Thrash* work read-modify-writes every line of randomly
//! chosen (xorshift) 4 KiB pages of a buffer about twice the LLC, which evicts the co-runner's
//! lines from the LLC. Whole pages rather than single random lines: with 4 KiB pages a random
//! line costs a TLB miss, which held single-line thrashing to about 4 GB/s on the development
//! VM against 10-14 GB/s for whole pages. Each thread runs a duty cycle: it busy-works for
//! `intensity * period` and sleeps for the rest of the period ([`DUTY_PERIOD`]).
//!
//! Roles (stream and thrash) are folded onto at most one thread per given core: with one core
//! and one role of each kind, that single thread alternates stream and thrash chunks within its
//! work slice. Buffers are allocated and first-touched by their (already pinned) threads before
//! [`Stressor::start`] returns, so timings taken afterwards are not polluted by page faults. A
//! stressor can be paused and resumed without releasing its buffers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Length of one duty cycle: a stress thread works `intensity` of it and sleeps the rest.
pub const DUTY_PERIOD: Duration = Duration::from_millis(1);

/// Bytes per cache line; every touch of a buffer hits one line.
const LINE_BYTES: usize = 64;
/// `u64` words per cache line.
const LINE_WORDS: usize = LINE_BYTES / std::mem::size_of::<u64>();
/// Lines touched per role between two checks of the clock and of the stop flag.
const CHUNK_LINES: usize = 512;
/// Lines of one 4 KiB page: thrash work touches whole random pages (see [`thrash_chunk`]).
const PAGE_LINES: usize = 4096 / LINE_BYTES;
/// How often a paused stress thread checks whether it may resume.
const PAUSE_POLL: Duration = Duration::from_micros(100);
/// Largest core id plus one that can be pinned (Linux `CPU_SETSIZE`).
const MAX_CORES: usize = 1024;
/// Default per-thread stream buffer: four times this machine's 32 MiB L3.
const DEFAULT_STREAM_BYTES: usize = 128 << 20;
/// Default per-thread thrash buffer: twice this machine's 32 MiB L3.
const DEFAULT_THRASH_BYTES: usize = 64 << 20;

/// Errors of the stressor and of contention calibration.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    /// The configuration has stress threads but no core was given to run them on.
    #[error("no core given to run the stressor on")]
    NoCore,
    /// The duty-cycle intensity is outside (0, 1].
    #[error("stress intensity must be in (0, 1], got {0}")]
    InvalidIntensity(f64),
    /// A buffer of a role that has threads is smaller than one cache line.
    #[error("{role} buffer of {bytes} bytes is smaller than one {LINE_BYTES}-byte cache line")]
    BufferTooSmall {
        /// `"stream"` or `"thrash"`.
        role: &'static str,
        /// The configured size.
        bytes: usize,
    },
    /// The total buffer size of the configuration does not fit in `usize`.
    #[error("total stress buffer size overflows")]
    Oversized,
    /// A core id is beyond what the affinity API can express.
    #[error("core {0} is out of range (ids must be below {MAX_CORES})")]
    CoreOutOfRange(usize),
    /// The operating system refused to pin a thread to this core (offline or outside the cpuset).
    #[error("could not pin a thread to core {0}")]
    PinFailed(usize),
    /// A stress buffer could not be allocated.
    #[error("could not allocate a {bytes}-byte stress buffer")]
    Alloc {
        /// The requested size.
        bytes: usize,
    },
    /// A stress thread could not be spawned.
    #[error("could not spawn a stress thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A stress thread ended before reporting that its buffers were ready.
    #[error("a stress thread ended before its buffers were ready")]
    ThreadLost,
    /// Calibration was asked for zero contention levels.
    #[error("calibration needs at least one contention level")]
    NoLevels,
    /// Calibration was asked for zero timed repeats.
    #[error("calibration needs at least one timed repeat")]
    NoRepeats,
    /// No core was given for the measured kernel.
    #[error("no kernel core given")]
    NoKernelCore,
    /// No core is free for the stressor: contention levels above 0 cannot be measured at this
    /// kernel width (record them as not measured).
    #[error("no free core for the stressor: contention levels above 0 cannot be measured at this width")]
    NoFreeCore,
    /// A core is listed both for the kernel and for the stressor.
    #[error("core {0} is listed both as a kernel core and as a free core")]
    CoreOverlap(usize),
}

/// What a [`Stressor`] runs: how many stream and thrash roles, their duty cycle, their buffers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StressConfig {
    /// Roles walking `stream_bytes` sequentially (memory bandwidth).
    pub stream_threads: usize,
    /// Roles touching random pages of `thrash_bytes` (LLC eviction).
    pub thrash_threads: usize,
    /// Fraction of each [`DUTY_PERIOD`] spent working, in (0, 1]; ignored when idle.
    pub intensity: f64,
    /// Buffer size of each stream role.
    pub stream_bytes: usize,
    /// Buffer size of each thrash role.
    pub thrash_bytes: usize,
}

impl Default for StressConfig {
    /// One stream and one thrash role at full intensity with buffers sized for a 32 MiB LLC.
    fn default() -> Self {
        Self {
            stream_threads: 1,
            thrash_threads: 1,
            intensity: 1.0,
            stream_bytes: DEFAULT_STREAM_BYTES,
            thrash_bytes: DEFAULT_THRASH_BYTES,
        }
    }
}

impl StressConfig {
    /// No stress at all (contention level 0).
    pub fn idle() -> Self {
        Self { stream_threads: 0, thrash_threads: 0, intensity: 0.0, ..Self::default() }
    }

    fn roles(&self) -> usize {
        self.stream_threads.saturating_add(self.thrash_threads)
    }

    fn validate(&self) -> Result<(), StressError> {
        if !(self.intensity > 0.0 && self.intensity <= 1.0) {
            return Err(StressError::InvalidIntensity(self.intensity));
        }
        for (role, count, bytes) in
            [("stream", self.stream_threads, self.stream_bytes), ("thrash", self.thrash_threads, self.thrash_bytes)]
        {
            if count > 0 && bytes < LINE_BYTES {
                return Err(StressError::BufferTooSmall { role, bytes });
            }
        }
        let stream_total = self.stream_threads.checked_mul(self.stream_bytes);
        let thrash_total = self.thrash_threads.checked_mul(self.thrash_bytes);
        match (stream_total, thrash_total) {
            (Some(s), Some(t)) if s.checked_add(t).is_some() => Ok(()),
            _ => Err(StressError::Oversized),
        }
    }
}

/// The stress configuration of contention level `level` on a scale `0..=levels`, for a stressor
/// that may use `free_cores` cores.
///
/// The ramp: level 0 (and any level when `levels` or `free_cores` is 0) is [`StressConfig::idle`].
/// Every level `l >= 1` uses all free cores: half of them (rounded up) stream and the rest
/// thrash, so a single free core only streams. The duty-cycle intensity grows linearly:
/// `l / levels`. Levels above `levels` are clamped to `levels`. Thread counts and intensity are
/// therefore monotone in `l`.
///
/// Streaming gets the first core because it hurt LLC-resident co-runners most on the
/// development VM: at full intensity on the one free core, a stream thread slowed an 8 MiB
/// pointer chase 2.2x and a 24 MiB sum 1.4x, while the same thread alternating stream and
/// thrash chunks reached only 1.8x and 1.04x (the slower random-page work takes most of its time).
pub fn level_config(level: usize, levels: usize, free_cores: usize) -> StressConfig {
    if level == 0 || levels == 0 || free_cores == 0 {
        return StressConfig::idle();
    }
    let level = level.min(levels);
    let (stream_threads, thrash_threads) = (free_cores.div_ceil(2), free_cores / 2);
    StressConfig { stream_threads, thrash_threads, intensity: level as f64 / levels as f64, ..StressConfig::default() }
}

/// Pins the calling thread to `core`.
pub(crate) fn pin_current(core: usize) -> Result<(), StressError> {
    if core >= MAX_CORES {
        return Err(StressError::CoreOutOfRange(core));
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(StressError::PinFailed(core))
    }
}

/// Running interference: stress threads that stop and are joined when this is dropped.
#[derive(Debug)]
pub struct Stressor {
    control: Arc<Control>,
    handles: Vec<JoinHandle<()>>,
}

/// State shared between a [`Stressor`] and its threads.
#[derive(Debug, Default)]
struct Control {
    stop: AtomicBool,
    paused: AtomicBool,
    work: AtomicU64,
}

impl Stressor {
    /// Starts the stress threads of `config` on `cores` (one thread per core at most, roles
    /// distributed round-robin) and returns once every thread is pinned and its buffers are
    /// allocated and touched. An idle configuration starts no thread and needs no core.
    pub fn start(config: &StressConfig, cores: &[usize]) -> Result<Stressor, StressError> {
        let mut stressor = Stressor { control: Arc::new(Control::default()), handles: Vec::new() };
        let roles = config.roles();
        if roles == 0 {
            return Ok(stressor);
        }
        if cores.is_empty() {
            return Err(StressError::NoCore);
        }
        config.validate()?;
        if let Some(&core) = cores.iter().find(|&&c| c >= MAX_CORES) {
            return Err(StressError::CoreOutOfRange(core));
        }
        let threads = roles.min(cores.len());
        let (ready_tx, ready_rx) = mpsc::channel();
        for (t, &core) in cores.iter().take(threads).enumerate() {
            let streams = count_assigned(config.stream_threads, threads, t);
            let spec = WorkerSpec {
                core,
                streams,
                thrashes: count_assigned(roles, threads, t) - streams,
                stream_bytes: config.stream_bytes,
                thrash_bytes: config.thrash_bytes,
                work_slice: DUTY_PERIOD.mul_f64(config.intensity),
            };
            let (control, ready) = (Arc::clone(&stressor.control), ready_tx.clone());
            let handle = thread::Builder::new()
                .name(format!("veltair-stress-{core}"))
                .spawn(move || run_worker(&spec, &ready, &control))
                .map_err(StressError::Spawn)?;
            stressor.handles.push(handle);
        }
        drop(ready_tx);
        for _ in 0..threads {
            ready_rx.recv().map_err(|_| StressError::ThreadLost)??;
        }
        Ok(stressor)
    }

    /// Cache lines touched by all stress threads so far.
    pub fn work_done(&self) -> u64 {
        self.control.work.load(Ordering::Relaxed)
    }

    /// Pauses (`true`) or resumes (`false`) the stress threads without releasing their buffers,
    /// so solo and contended timings can be interleaved. A paused thread finishes its current
    /// chunk of work (microseconds) and then polls every 100 µs.
    pub fn set_paused(&self, paused: bool) {
        self.control.paused.store(paused, Ordering::Relaxed);
    }

    /// Number of stress threads running.
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Stops and joins the stress threads and returns the final [`Stressor::work_done`].
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.work_done()
    }

    fn halt(&mut self) {
        self.control.stop.store(true, Ordering::Relaxed);
        for handle in self.handles.drain(..) {
            // A worker that panicked has nothing left to clean up; stopping must not panic.
            let _ = handle.join();
        }
    }
}

impl Drop for Stressor {
    fn drop(&mut self) {
        self.halt();
    }
}

/// How many of `count` roles, dealt round-robin from role 0 over `threads` threads, land on
/// thread `t`.
fn count_assigned(count: usize, threads: usize, t: usize) -> usize {
    count / threads + usize::from(t < count % threads)
}

struct WorkerSpec {
    core: usize,
    streams: usize,
    thrashes: usize,
    stream_bytes: usize,
    thrash_bytes: usize,
    work_slice: Duration,
}

fn run_worker(spec: &WorkerSpec, ready: &mpsc::Sender<Result<(), StressError>>, control: &Control) {
    let setup = pin_current(spec.core).and_then(|()| {
        let streams = alloc_buffers(spec.streams, spec.stream_bytes)?;
        let thrashes = alloc_buffers(spec.thrashes, spec.thrash_bytes)?;
        Ok((streams, thrashes))
    });
    let (mut streams, mut thrashes) = match setup {
        Ok(buffers) => buffers,
        Err(e) => {
            // The receiver only disappears if `start` is gone, in which case nobody listens.
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let idle = DUTY_PERIOD.saturating_sub(spec.work_slice);
    let mut positions = vec![0usize; streams.len()];
    let mut rng = (0x9E37_79B9_7F4A_7C15u64 ^ (spec.core as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)) | 1;
    while !control.stop.load(Ordering::Relaxed) {
        if control.paused.load(Ordering::Relaxed) {
            thread::sleep(PAUSE_POLL);
            continue;
        }
        let slice_start = Instant::now();
        loop {
            let mut touched = 0;
            for (buffer, position) in streams.iter_mut().zip(positions.iter_mut()) {
                touched += stream_chunk(buffer, position);
            }
            for buffer in &mut thrashes {
                touched += thrash_chunk(buffer, &mut rng);
            }
            control.work.fetch_add(touched, Ordering::Relaxed);
            if control.stop.load(Ordering::Relaxed)
                || control.paused.load(Ordering::Relaxed)
                || slice_start.elapsed() >= spec.work_slice
            {
                break;
            }
        }
        if !idle.is_zero() {
            thread::sleep(idle);
        }
    }
}

/// Allocates `count` buffers of `bytes` (rounded down to whole lines) and touches every page.
fn alloc_buffers(count: usize, bytes: usize) -> Result<Vec<Vec<u64>>, StressError> {
    let words = bytes / LINE_BYTES * LINE_WORDS;
    let mut buffers = Vec::new();
    buffers.try_reserve_exact(count).map_err(|_| StressError::Alloc { bytes })?;
    for _ in 0..count {
        let mut buffer = Vec::new();
        buffer.try_reserve_exact(words).map_err(|_| StressError::Alloc { bytes })?;
        buffer.extend(0..words as u64);
        buffers.push(buffer);
    }
    Ok(buffers)
}

/// Read-modify-writes the next [`CHUNK_LINES`] lines of `buffer` from `position`, wrapping.
fn stream_chunk(buffer: &mut [u64], position: &mut usize) -> u64 {
    let lines = buffer.len() / LINE_WORDS;
    for _ in 0..CHUNK_LINES {
        if let Some(word) = buffer.get_mut(*position * LINE_WORDS) {
            *word = word.wrapping_add(1);
        }
        *position += 1;
        if *position >= lines {
            *position = 0;
        }
    }
    std::hint::black_box(buffer);
    CHUNK_LINES as u64
}

/// Read-modify-writes [`CHUNK_LINES`] lines of `buffer`: every line of randomly chosen pages.
fn thrash_chunk(buffer: &mut [u64], rng: &mut u64) -> u64 {
    let lines = buffer.len() / LINE_WORDS;
    let page_lines = PAGE_LINES.min(lines).max(1);
    let pages = (lines / page_lines) as u128;
    for _ in 0..CHUNK_LINES / page_lines {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let first = ((u128::from(*rng) * pages) >> 64) as usize * page_lines;
        for line in first..first + page_lines {
            if let Some(word) = buffer.get_mut(line * LINE_WORDS) {
                *word = word.wrapping_add(*rng);
            }
        }
    }
    std::hint::black_box(buffer);
    (CHUNK_LINES / page_lines * page_lines) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(stream_threads: usize, thrash_threads: usize) -> StressConfig {
        StressConfig { stream_threads, thrash_threads, intensity: 0.5, stream_bytes: 1 << 20, thrash_bytes: 1 << 20 }
    }

    fn wait_for_work(stressor: &Stressor) -> u64 {
        // Bounded wait so a broken stressor fails the test instead of hanging it.
        for _ in 0..10_000 {
            let done = stressor.work_done();
            if done > 0 {
                return done;
            }
            thread::sleep(Duration::from_millis(1));
        }
        stressor.work_done()
    }

    #[test]
    fn stressor_starts_works_and_stops() {
        let stressor = Stressor::start(&small(1, 1), &[0]).expect("start");
        assert_eq!(stressor.threads(), 1, "two roles on one core fold onto one thread");
        assert!(wait_for_work(&stressor) > 0, "work counter never advanced");
        let final_work = stressor.stop();
        assert!(final_work > 0);
        assert_eq!(final_work % CHUNK_LINES as u64, 0, "work is counted in whole chunks");
    }

    #[test]
    fn paused_stressor_stops_working_and_resumes() {
        let stressor = Stressor::start(&small(0, 1), &[0]).expect("start");
        stressor.set_paused(true);
        // Bounded waits: a stressor that ignores the pause fails instead of hanging.
        let still = (0..500).any(|_| {
            let before = stressor.work_done();
            thread::sleep(Duration::from_millis(20));
            stressor.work_done() == before
        });
        assert!(still, "a paused stressor kept working");
        let paused_at = stressor.work_done();
        stressor.set_paused(false);
        let advanced = (0..10_000).any(|_| {
            thread::sleep(Duration::from_millis(1));
            stressor.work_done() > paused_at
        });
        assert!(advanced, "a resumed stressor did not work");
    }

    #[test]
    fn roles_spread_over_cores_one_thread_per_core_at_most() {
        let stressor = Stressor::start(&small(1, 2), &[0, 0]).expect("start");
        assert_eq!(stressor.threads(), 2);
        assert!(wait_for_work(&stressor) > 0);
        drop(stressor);
        let stressor = Stressor::start(&small(1, 0), &[0, 0, 0]).expect("start");
        assert_eq!(stressor.threads(), 1, "never more threads than roles");
    }

    #[test]
    fn round_robin_assignment_covers_every_role_once() {
        for (roles, threads) in [(1, 1), (2, 1), (3, 2), (5, 3), (2, 2)] {
            let total: usize = (0..threads).map(|t| count_assigned(roles, threads, t)).sum();
            assert_eq!(total, roles, "{roles} roles over {threads} threads");
        }
        assert_eq!(count_assigned(1, 2, 0), 1);
        assert_eq!(count_assigned(1, 2, 1), 0);
    }

    #[test]
    fn idle_config_starts_nothing_and_needs_no_core() {
        let stressor = Stressor::start(&StressConfig::idle(), &[]).expect("idle start");
        assert_eq!(stressor.threads(), 0);
        assert_eq!(stressor.stop(), 0);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(matches!(Stressor::start(&small(1, 0), &[]), Err(StressError::NoCore)));
        for intensity in [0.0, -0.5, 1.5, f64::NAN] {
            let config = StressConfig { intensity, ..small(1, 0) };
            assert!(matches!(Stressor::start(&config, &[0]), Err(StressError::InvalidIntensity(_))));
        }
        let tiny = StressConfig { thrash_bytes: 8, ..small(0, 1) };
        assert!(matches!(Stressor::start(&tiny, &[0]), Err(StressError::BufferTooSmall { role: "thrash", bytes: 8 })));
        let huge = StressConfig { stream_threads: usize::MAX / 2, ..small(1, 1) };
        assert!(matches!(Stressor::start(&huge, &[0]), Err(StressError::Oversized)));
        assert!(matches!(Stressor::start(&small(1, 0), &[MAX_CORES]), Err(StressError::CoreOutOfRange(_))));
        let unallocatable = StressConfig { stream_bytes: usize::MAX / 2, ..small(1, 0) };
        assert!(matches!(Stressor::start(&unallocatable, &[0]), Err(StressError::Alloc { .. })));
    }

    #[test]
    fn level_zero_and_no_free_core_are_idle() {
        assert_eq!(level_config(0, 3, 1), StressConfig::idle());
        assert_eq!(level_config(2, 3, 0), StressConfig::idle());
        assert_eq!(level_config(1, 0, 4), StressConfig::idle());
    }

    #[test]
    fn level_configs_are_monotone_in_intensity() {
        for free in [1, 2, 3, 8] {
            let levels = 5;
            let configs: Vec<_> = (0..=levels + 1).map(|l| level_config(l, levels, free)).collect();
            for pair in configs.windows(2) {
                assert!(pair[1].intensity >= pair[0].intensity, "free {free}: {pair:?}");
                assert!(pair[1].stream_threads >= pair[0].stream_threads);
                assert!(pair[1].thrash_threads >= pair[0].thrash_threads);
            }
            let top = &configs[levels];
            assert_eq!(top.intensity, 1.0);
            assert_eq!(configs[levels + 1], *top, "levels above the scale clamp to the top");
            assert!(top.stream_threads + top.thrash_threads >= free, "every free core is used");
            assert!(top.validate().is_ok());
        }
        let single = level_config(1, 3, 1);
        assert_eq!((single.stream_threads, single.thrash_threads), (1, 0));
        let pair = level_config(1, 3, 2);
        assert_eq!((pair.stream_threads, pair.thrash_threads), (1, 1));
    }
}
