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
//! the bound ([`max`], longer for frames: [`SpinWindow::bound`]) widens the window to a little
//! more than that wait (the next one is likely as long); a wait longer than the bound, or a poll that found the CPU wanted by another thread (a yield
//! that took long: polling would take the CPU from someone), narrows it back. An idle channel
//! therefore polls as before, and a busy one polls through the gaps between its messages,
//! yielding the CPU between polls.
//!
//! The window is a heuristic with no part in any synchronisation: `Relaxed` everywhere, and a
//! lost update between threads sharing a handle only costs one wait's worth of adaptation.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::spin::SPIN_TOTAL;

/// Default bound of the window ([`max`]): long enough for the gap between 8 MiB frames even
/// when they are copied into cold memory, so that a frame stream settles in its fast state; a
/// feed of fewer than about 1,000 messages a second sleeps between messages, and a faster one
/// keeps its waiter polling, up to a core's worth (docs/benchmarks.md, "Issue 16", measures
/// both).
pub const SPIN_MAX_DEFAULT: Duration = Duration::from_millis(1);

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

/// Time per byte of the side's typical message that the bound grows by beyond [`max`]: a
/// frame's gap is mostly its copy, which on a slow machine into cold memory runs at about
/// 4 GB/s, so an 8 MiB frame stream polls through gaps of up to 2.1 ms, a 24 MiB one 6.3 ms;
/// messages under 4 MiB keep [`max`].
pub const SPIN_PER_BYTE_PS: u64 = 250;

/// One waiting side's polling window (see the module docs). Starts at [`SPIN_TOTAL`].
#[derive(Debug, Default)]
pub struct SpinWindow {
    /// Microseconds; 0 means [`SPIN_TOTAL`].
    us: AtomicU32,
    /// The side's typical message size in bytes ([`expect`](Self::expect)).
    size: AtomicU64,
}

impl SpinWindow {
    /// A window at [`SPIN_TOTAL`].
    pub const fn new() -> SpinWindow {
        SpinWindow { us: AtomicU32::new(0), size: AtomicU64::new(0) }
    }

    /// Tells the window the size of the messages this side moves (the one it waits to write,
    /// or the average of those it read), before a wait: frames get a longer bound
    /// ([`SPIN_PER_BYTE_PS`]).
    pub fn expect(&self, bytes: u64) {
        // Relaxed: a hint (module docs).
        self.size.store(bytes, Ordering::Relaxed);
    }

    /// The longest this window grows to: [`max`], longer for frames ([`expect`](Self::expect));
    /// adaptation off ([`max`] at [`SPIN_TOTAL`]) stays off.
    pub fn bound(&self) -> Duration {
        let max = max();
        if max <= SPIN_TOTAL {
            return max;
        }
        // Relaxed: a hint (module docs).
        let frame = Duration::from_nanos(self.size.load(Ordering::Relaxed).saturating_mul(SPIN_PER_BYTE_PS) / 1000);
        max.max(frame)
    }

    /// How long the next wait polls before it sleeps.
    pub fn get(&self) -> Duration {
        // Relaxed: a hint (module docs).
        Duration::from_micros(u64::from(self.us.load(Ordering::Relaxed))).max(SPIN_TOTAL)
    }

    /// A wait that slept ended after `waited` with what it waited for: widen the window to
    /// cover a wait like it (at least doubling it), up to [`bound`](Self::bound); narrow it if
    /// it was longer.
    pub fn slept(&self, waited: Duration) {
        let max = self.bound();
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
        if waited > self.bound() {
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
    fn frames_get_a_longer_bound() {
        let w = SpinWindow::new();
        assert_eq!(w.bound(), max());
        w.expect(1 << 20);
        assert_eq!(w.bound(), max(), "1 MiB messages keep the default bound");
        w.expect(64 << 20);
        if max() > SPIN_TOTAL {
            let want = Duration::from_nanos((64u64 << 20) * SPIN_PER_BYTE_PS / 1000);
            assert_eq!(w.bound(), want.max(max()));
            w.slept(want);
            assert!(w.get() <= w.bound() && w.get() + Duration::from_micros(1) > w.bound(), "{:?}", w.get());
        } else {
            assert_eq!(w.bound(), max(), "adaptation off stays off for frames");
        }
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
