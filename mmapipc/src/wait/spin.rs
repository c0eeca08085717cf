//! The polling phase of a wait: spin, then yield, by elapsed time, for as long as the waiting
//! side's window says ([`super::window`]).

use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use crate::sync::spin_loop;

use super::Deadline;

/// Pure spinning (`pause` between polls) lasts this long from the start of a wait: long enough
/// for a peer running on another core to answer (a cross-core round trip plus a Python call is
/// 1 to 3 us), short enough that a peer sharing *this* CPU is not kept waiting for long.
pub const SPIN_PURE: Duration = Duration::from_micros(5);
/// Then the waiter yields the CPU between polls until this long from the start (or as long as
/// its side's [`SpinWindow`](super::SpinWindow) has grown to), and only then sleeps on the
/// futex. A yield with nothing else runnable here returns at once (so this is still polling, at
/// about a syscall's granularity); with a peer runnable on this CPU it lets it run.
pub const SPIN_TOTAL: Duration = Duration::from_micros(50);

/// A yield that kept the waiter off the CPU this long may have run another thread: the CPU is
/// wanted, so polling stops (the wait sleeps) and the side's window narrows. An uncontended
/// `sched_yield` returns in about a microsecond. On Linux the thread's count of context
/// switches decides ([`switches`]): a long yield without one was the hypervisor running
/// something else in place of this virtual CPU, which polling takes from nobody in this system.
#[cfg(not(loom))]
const YIELD_CONTENDED: Duration = Duration::from_micros(20);

/// Context switches of the calling thread so far (`getrusage(RUSAGE_THREAD)`: voluntary and
/// involuntary; a `sched_yield` that ran another thread counts as involuntary); `None` where
/// that cannot be read.
#[cfg(not(loom))]
fn switches() -> Option<u64> {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        // SAFETY: a zeroed rusage is a valid value for getrusage to fill; the pointer is to it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_THREAD with a valid pointer; getrusage writes only into `ru`.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } == 0 {
            return Some((ru.ru_nvcsw as u64).wrapping_add(ru.ru_nivcsw as u64));
        }
        None
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    None
}

/// The polling phase of a wait, by elapsed time (the same on every CPU, unlike a count of
/// `pause` instructions, whose length varies from 10 to 140 cycles between CPU models): spin
/// for [`SPIN_PURE`], then yield between polls until the window ([`SPIN_TOTAL`] or longer)
/// has passed, or a yield ran another thread; the caller then sleeps.
///
/// Polls come well under a microsecond apart while spinning (16 `pause`s and a vDSO clock read),
/// so a waiter notices a peer's store within a fraction of a microsecond, not after a long
/// exponential back-off step. Under loom it allows two steps (each a model yield).
pub(crate) struct Spin {
    #[cfg(not(loom))]
    start: Option<Instant>,
    /// Polls so far (the first polls come quickly: a reply is often a fraction of a microsecond
    /// away, and one `spin_loop` can cost tens of nanoseconds).
    #[cfg(not(loom))]
    polls: u32,
    /// How long polling lasts.
    #[cfg(not(loom))]
    window: Duration,
    /// A yield ran another thread ([`YIELD_CONTENDED`]): polling stopped early.
    #[cfg(not(loom))]
    contended: bool,
    /// This thread's context switches when it first yielded ([`switches`]).
    #[cfg(not(loom))]
    switched: Option<Option<u64>>,
    #[cfg(loom)]
    n: u32,
}

impl Spin {
    /// Polling for `window` (at least [`SPIN_PURE`]).
    pub(crate) fn new(window: Duration) -> Spin {
        #[cfg(loom)]
        let _ = window;
        Spin {
            #[cfg(not(loom))]
            start: None,
            #[cfg(not(loom))]
            polls: 0,
            #[cfg(not(loom))]
            window,
            #[cfg(not(loom))]
            contended: false,
            #[cfg(not(loom))]
            switched: None,
            #[cfg(loom)]
            n: 0,
        }
    }

    /// When the first poll paused (`None` if none did yet).
    #[cfg(not(loom))]
    pub(crate) fn started(&self) -> Option<Instant> {
        self.start
    }

    /// Whether polling stopped because a yield ran another thread.
    pub(crate) fn contended(&self) -> bool {
        #[cfg(not(loom))]
        {
            self.contended
        }
        #[cfg(loom)]
        false
    }

    /// Pauses before the next poll. False when polling should stop: after the window, after a
    /// yield that ran another thread, or once `deadline` has passed and the pure spin is over
    /// (so a caller with no time to wait still waits out a lock held for a moment).
    pub(crate) fn step(&mut self, deadline: &Deadline) -> bool {
        #[cfg(loom)]
        {
            let _ = deadline;
            self.n += 1;
            spin_loop();
            self.n <= 2
        }
        #[cfg(not(loom))]
        {
            let now = Instant::now();
            let t = now - *self.start.get_or_insert(now);
            if t >= self.window {
                return false;
            }
            if t < SPIN_PURE {
                self.polls += 1;
                for _ in 0..(1u32 << self.polls.min(4)) {
                    spin_loop();
                }
                return true;
            }
            if deadline.passed_at(now) {
                return false;
            }
            let before = *self.switched.get_or_insert_with(switches);
            std::thread::yield_now();
            if now.elapsed() >= YIELD_CONTENDED {
                // Another thread ran (or, where switches cannot be counted, may have).
                let after = switches();
                if before.is_none() || after.is_none() || after != before {
                    self.contended = true;
                    return false;
                }
            }
            true
        }
    }
}
