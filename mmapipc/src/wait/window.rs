//! How long a waiter polls before it sleeps: a window per waiting side that follows its recent
//! waits.
//!
//! Sleeping has a price that polling does not: the waker's `FUTEX_WAKE` and the sleeper's
//! return to a CPU, which on a virtual machine whose idle CPUs halt can cost each side more
//! than copying a large frame does (docs/benchmarks.md, "Issue 16", has the measurements). A
//! stream whose messages come a little further apart than the fixed polling phase (large
//! frames written as fast as a core copies) paid that on every message, and a frame producer
//! that found its predecessor not yet released copied into memory the caches had let go.
//!
//! So the polling phase ([`Spin`](super::spin::Spin)) lasts as long as the window says:
//! [`SPIN_TOTAL`](super::SPIN_TOTAL) to begin with. A wait that slept and still ended within
//! [`max`] widens the window to a little more than that wait (the next one is likely as long);
//! a wait longer than [`max`], or a poll that found the CPU wanted by another thread (a yield
//! that took long: polling would take the CPU from someone), narrows it back. An idle channel
//! therefore polls as before, and a busy one polls through the gaps between its messages,
//! yielding the CPU between polls.
//!
//! The window is a heuristic with no part in any synchronisation: `Relaxed` everywhere, and a
//! lost update between threads sharing a handle only costs one wait's worth of adaptation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::spin::SPIN_TOTAL;

/// Default bound of the window ([`max`]): long enough for the gap between 8 MiB frames even
/// when they are copied into cold memory, so that a frame stream settles in its fast state
/// (docs/benchmarks.md, "Issue 16"); a feed slower than 500 messages a second sleeps between
/// messages.
pub const SPIN_MAX_DEFAULT: Duration = Duration::from_millis(2);

/// The environment variable that sets [`max`] in microseconds (read once per process). `0`,
/// or anything up to [`SPIN_TOTAL`], turns adaptation off: every wait polls for `SPIN_TOTAL`.
pub const SPIN_MAX_ENV: &str = "MMAPIPC_SPIN_MAX_US";

/// The longest the window grows to: [`SPIN_MAX_DEFAULT`], or [`SPIN_MAX_ENV`] when set to a
/// number.
pub fn max() -> Duration {
    static MAX: OnceLock<Duration> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var(SPIN_MAX_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(SPIN_MAX_DEFAULT, Duration::from_micros)
            .max(SPIN_TOTAL)
    })
}

/// One waiting side's polling window (see the module docs). Starts at [`SPIN_TOTAL`].
#[derive(Debug, Default)]
pub struct SpinWindow {
    /// Microseconds; 0 means [`SPIN_TOTAL`].
    us: AtomicU32,
}

impl SpinWindow {
    /// A window at [`SPIN_TOTAL`].
    pub const fn new() -> SpinWindow {
        SpinWindow { us: AtomicU32::new(0) }
    }

    /// How long the next wait polls before it sleeps.
    pub fn get(&self) -> Duration {
        // Relaxed: a hint (module docs).
        Duration::from_micros(u64::from(self.us.load(Ordering::Relaxed))).max(SPIN_TOTAL)
    }

    /// A wait that slept ended after `waited` with what it waited for: widen the window to
    /// cover a wait like it (at least doubling it), up to [`max`]; narrow it if it was longer.
    pub fn slept(&self, waited: Duration) {
        let max = max();
        if waited > max {
            self.narrow();
            return;
        }
        let want = (waited + waited / 4).max(2 * self.get()).min(max);
        let us = u32::try_from(want.as_micros()).unwrap_or(u32::MAX);
        // Relaxed: a hint (module docs).
        self.us.store(us, Ordering::Relaxed);
    }

    /// A wait gave up after `waited` (its deadline passed): narrows the window if that was
    /// longer than [`max`] (nothing came for that long: the channel is idle).
    pub fn timed_out(&self, waited: Duration) {
        if waited > max() {
            self.narrow();
        }
    }

    /// Back to [`SPIN_TOTAL`]: the channel went quiet, or polling took the CPU from another
    /// thread.
    pub fn narrow(&self) {
        // Relaxed: a hint (module docs).
        if self.us.load(Ordering::Relaxed) != 0 {
            self.us.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_base_and_widens_to_cover_short_waits() {
        let w = SpinWindow::new();
        assert_eq!(w.get(), SPIN_TOTAL);
        // A wait just past the window: at least doubled.
        w.slept(SPIN_TOTAL + Duration::from_micros(1));
        assert_eq!(w.get(), (2 * SPIN_TOTAL).min(max()));
        // A longer one: a quarter more than it, within the bound.
        let gap = Duration::from_micros(300).min(max() * 4 / 5);
        w.slept(gap);
        assert!(w.get() >= gap && w.get() <= max(), "{:?} for a wait of {gap:?}", w.get());
    }

    #[test]
    fn never_exceeds_the_bound_and_narrows_after_long_waits() {
        let w = SpinWindow::new();
        for _ in 0..20 {
            w.slept(max());
            assert!(w.get() <= max());
        }
        assert_eq!(w.get(), max());
        w.timed_out(max() / 2);
        assert_eq!(w.get(), max(), "a short timeout says nothing about the stream");
        w.slept(max() + Duration::from_micros(1));
        assert_eq!(w.get(), SPIN_TOTAL);
        w.slept(max());
        w.timed_out(2 * max());
        assert_eq!(w.get(), SPIN_TOTAL);
        w.slept(max());
        w.narrow();
        assert_eq!(w.get(), SPIN_TOTAL);
    }
}
