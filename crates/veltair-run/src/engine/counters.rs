//! Hardware counters for the contention monitor: one last-level-cache-miss counter, opened by
//! the thread that starts the engine just before it starts the crew. The kernel counts that
//! thread and, by inheritance, every thread it starts afterwards: the crew's workers, where all
//! layers run. A host without hardware counters (most VMs,
//! this project's build machine among them) or whose `perf_event_paranoid` forbids them gives
//! no counter, and the monitor keeps the modelled pressure: the fallback is silent by design,
//! and `/metrics` says which source is in use.

use perf_event::events::{Event, Hardware};
use perf_event::{Builder, Counter};
use std::time::Instant;

/// Shortest interval a rate is taken over: shorter ones are mostly noise.
const MIN_INTERVAL: f64 = 2e-3;

/// An enabled, inherited counter and its previous reading.
pub(crate) struct RateCounter {
    counter: Counter,
    last: (u64, Instant),
}

impl RateCounter {
    /// Last-level-cache misses of this thread and the threads it starts from now on, if this
    /// host counts them for this process.
    pub fn cache_misses() -> Option<RateCounter> {
        RateCounter::open(Hardware::CACHE_MISSES)
    }

    /// A counter of `event` in this thread and every thread it starts from now on.
    fn open(event: impl Event + 'static) -> Option<RateCounter> {
        let mut counter = Builder::new(event).inherit(true).build().ok()?;
        counter.enable().ok()?;
        let count = counter.read().ok()?;
        Some(RateCounter { counter, last: (count, Instant::now()) })
    }

    /// Events per second since the previous sample; `None` when that was under
    /// `MIN_INTERVAL` ago (the next sample covers the time) or the read failed.
    pub fn sample(&mut self) -> Option<f64> {
        let now = Instant::now();
        let seconds = now.duration_since(self.last.1).as_secs_f64();
        if seconds < MIN_INTERVAL {
            return None;
        }
        let count = self.counter.read().ok()?;
        let rate = count.saturating_sub(self.last.0) as f64 / seconds;
        self.last = (count, now);
        Some(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf_event::events::Software;
    use std::time::Duration;

    /// Hardware counters cannot be tested on a VM without them, but the same inherited counter
    /// over a software event (task clock, in nanoseconds of CPU time) shows that threads
    /// started after the counter count, as the crew's workers must.
    #[test]
    fn threads_started_after_the_counter_count_in_it() {
        let Some(mut clock) = RateCounter::open(Software::TASK_CLOCK) else {
            eprintln!("perf_event_open refused even a software event here: nothing to check");
            return;
        };
        let busy = Duration::from_millis(60);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let start = Instant::now();
                    let mut x = 0u64;
                    while start.elapsed() < busy {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        let start = clock.last.1;
        let rate = clock.sample().expect("a sample after more than MIN_INTERVAL");
        let counted = rate * clock.last.1.duration_since(start).as_secs_f64();
        // Without inheritance only this thread, which slept, would count: well under a millisecond.
        assert!(counted >= 20e6, "two threads busy 60 ms each, counted {counted} ns");
        assert_eq!(clock.sample(), None, "a second sample at once covers too short a time");
    }
}
