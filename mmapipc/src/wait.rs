//! Waiting across processes: poll briefly (spin, then yield), then sleep on a 32-bit word in the
//! shared mapping.
//!
//! Linux: `futex(FUTEX_WAIT)` / `futex(FUTEX_WAKE)` on the word (not `FUTEX_PRIVATE_FLAG`:
//! the waiters live in other processes). Other Unix systems: there is no public cross-process
//! address wait, so [`wait_on`] naps in short, growing sleeps (up to 1 ms) and re-checks the word;
//! it is correct, only slower to wake.
//!
//! Protocol users combine these with a *sleeper count* so wakers make no syscall while nobody
//! sleeps (see [`Waiter`]). Deadlines are monotonic ([`Instant`]).

use std::time::{Duration, Instant};

use crate::sync::{fence, spin_loop, AtomicU32, Ordering};

/// Blocks while `*word == expected`, for at most `timeout` (forever if `None`).
/// May return early (spuriously, on a signal, or when woken); callers re-check their condition.
pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        let ts;
        let ts_ptr = match timeout {
            Some(d) => {
                ts = libc::timespec {
                    tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                &ts as *const libc::timespec
            }
            None => std::ptr::null(),
        };
        // SAFETY: `word` is a valid, 4-byte aligned u32 for the duration of the call (it lives in
        // a mapping the caller keeps alive). FUTEX_WAIT only reads it; the timespec (relative, so
        // measured on CLOCK_MONOTONIC) outlives the call. Errors (EAGAIN: value changed, EINTR,
        // ETIMEDOUT) all mean "return and re-check", which is the contract.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    {
        if word.load(Ordering::Acquire) != expected {
            return;
        }
        let nap = Duration::from_micros(200);
        let nap = timeout.map_or(nap, |t| t.min(nap));
        #[cfg(loom)]
        {
            let _ = nap;
            loom::thread::yield_now();
        }
        #[cfg(not(loom))]
        std::thread::sleep(nap);
    }
}

/// Wakes every process blocked in [`wait_on`] on `word`.
pub fn wake_all(word: &AtomicU32) {
    #[cfg(all(target_os = "linux", not(loom)))]
    // SAFETY: `word` is a valid aligned u32; FUTEX_WAKE does not access memory beyond it.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    let _ = word;
}

/// A monotonic deadline: `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(When);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Never,
    /// A zero timeout: passed from the start. Kept apart so that non-blocking calls (the hot
    /// path of `try_*`) read no clock: a vDSO clock read was ~10% of a 64 B put + get.
    Now,
    At(Instant),
}

impl Deadline {
    /// A deadline `timeout` from now (`None`: never).
    pub fn after(timeout: Option<Duration>) -> Deadline {
        Deadline(match timeout {
            None => When::Never,
            Some(t) if t.is_zero() => When::Now,
            Some(t) => Instant::now().checked_add(t).map_or(When::Never, When::At),
        })
    }

    /// Time left, `Some(ZERO)` once passed, `None` if unbounded.
    pub fn remaining(&self) -> Option<Duration> {
        match self.0 {
            When::Never => None,
            When::Now => Some(Duration::ZERO),
            When::At(d) => Some(d.saturating_duration_since(Instant::now())),
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        matches!(self.remaining(), Some(d) if d.is_zero())
    }

    /// True if the deadline had passed at `now`.
    #[cfg_attr(loom, allow(dead_code))]
    fn passed_at(&self, now: Instant) -> bool {
        match self.0 {
            When::Never => false,
            When::Now => true,
            When::At(d) => now >= d,
        }
    }
}

/// One direction's sleep/wake state, as laid out in shared memory: a sequence word to futex-wait
/// on and a count of sleepers.
///
/// The waker's fast path is one Relaxed load of `sleepers` after a SeqCst fence: no syscall and
/// no write while nobody sleeps.
///
/// Why no wakeup is lost (a Dekker-style handshake):
/// * the sleeper increments `sleepers`, issues a SeqCst fence, *then* re-checks its condition;
/// * the waker makes the condition true, issues a SeqCst fence, *then* reads `sleepers`.
///
/// The two fences are totally ordered; whichever comes second sees the other side's write: either
/// the sleeper sees the new condition and does not sleep, or the waker sees `sleepers > 0` and
/// bumps `seq` and wakes. The sleeper reads `seq` *before* re-checking, so a bump between its
/// re-check and the futex call makes FUTEX_WAIT return at once (value changed).
#[repr(C)]
#[derive(Debug)]
pub struct Waiter {
    /// Bumped by the waker before each wake; the futex word.
    pub seq: AtomicU32,
    /// Number of processes between "about to sleep" and "done sleeping".
    pub sleepers: AtomicU32,
}

impl Waiter {
    /// Wakes sleepers if there are any. Call after making the awaited condition true.
    #[inline]
    pub fn notify(&self) {
        // SYNC: sleep-handshake. See the type docs: this fence orders the condition's store
        // before the sleepers load, pairing with the fence in `sleep_until`.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.notify_slow();
        }
    }

    #[cold]
    fn notify_slow(&self) {
        // Release: nothing to publish through seq itself; the bump only makes a racing
        // FUTEX_WAIT fail with EAGAIN. Release keeps it after the condition's store anyway.
        self.seq.fetch_add(1, Ordering::Release);
        wake_all(&self.seq);
    }

    /// Waits until `ready()` returns `Some`, or the deadline passes (`None`). Polls first
    /// (spinning for [`SPIN_PURE`], then yielding, [`SPIN_TOTAL`] in all), then sleeps on the
    /// futex word in slices of at most `slice` (so callers can check for Ctrl-C or dead peers
    /// between slices through `between_slices`, which may abort the wait by returning `Err`).
    pub fn wait_until<T, E>(
        &self,
        deadline: Deadline,
        slice: Duration,
        mut ready: impl FnMut() -> Option<T>,
        mut between_slices: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<T>, E> {
        let mut spin = Spin::new();
        loop {
            if let Some(v) = ready() {
                return Ok(Some(v));
            }
            if !spin.step(&deadline) {
                break;
            }
        }
        loop {
            if let Some(v) = ready() {
                return Ok(Some(v));
            }
            let left = deadline.remaining();
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            let nap = left.map_or(slice, |l| l.min(slice));
            // SYNC: sleep-handshake (sleeper side).
            let seq = self.seq.load(Ordering::Acquire);
            self.sleepers.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let got = ready();
            if got.is_none() {
                wait_on(&self.seq, seq, Some(nap));
            }
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
            if let Some(v) = got {
                return Ok(Some(v));
            }
            between_slices()?;
        }
    }
}

/// Pure spinning (`pause` between polls) lasts this long from the start of a wait: long enough
/// for a peer running on another core to answer (a cross-core round trip plus a Python call is
/// 1 to 3 us), short enough that a peer sharing *this* CPU is not kept waiting for long.
pub const SPIN_PURE: Duration = Duration::from_micros(5);
/// Then the waiter yields the CPU between polls until this long from the start, and only then
/// sleeps on the futex. A yield with nothing else runnable here returns at once (so this is still
/// polling, at about a syscall's granularity); with a peer runnable on this CPU it lets it run.
pub const SPIN_TOTAL: Duration = Duration::from_micros(50);

/// The polling phase of a wait, by elapsed time (the same on every CPU, unlike a count of
/// `pause` instructions, whose length varies from 10 to 140 cycles between CPU models): spin
/// for [`SPIN_PURE`], then yield between polls until [`SPIN_TOTAL`]; the caller then sleeps.
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
    #[cfg(loom)]
    n: u32,
}

impl Spin {
    pub(crate) fn new() -> Spin {
        Spin {
            #[cfg(not(loom))]
            start: None,
            #[cfg(not(loom))]
            polls: 0,
            #[cfg(loom)]
            n: 0,
        }
    }

    /// Pauses before the next poll. False when polling should stop: after [`SPIN_TOTAL`], or
    /// once `deadline` has passed and the pure spin is over (a lock held for a moment is still
    /// waited for by a caller with no time to wait, as before).
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
            if t >= SPIN_TOTAL {
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
            std::thread::yield_now();
            true
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn deadline_math() {
        assert_eq!(Deadline::after(None).remaining(), None);
        assert!(!Deadline::after(None).expired());
        assert!(Deadline::after(Some(Duration::ZERO)).expired());
        assert!(!Deadline::after(Some(Duration::from_secs(60))).expired());
    }

    #[test]
    fn wait_times_out_and_wakes() {
        let w = Arc::new(Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) });
        let flag = Arc::new(AtomicU32::new(0));
        let r: Result<Option<()>, ()> = w.wait_until(
            Deadline::after(Some(Duration::from_millis(20))),
            Duration::from_millis(5),
            || None,
            || Ok(()),
        );
        assert_eq!(r, Ok(None));
        let (w2, f2) = (w.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            f2.store(1, Ordering::Release);
            w2.notify();
        });
        let r: Result<Option<u32>, ()> = w.wait_until(
            Deadline::after(None),
            Duration::from_secs(3600),
            || (flag.load(Ordering::Acquire) == 1).then_some(7),
            || Ok(()),
        );
        assert_eq!(r, Ok(Some(7)));
        t.join().unwrap();
        assert_eq!(w.sleepers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn between_slices_can_abort() {
        let w = Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let r: Result<Option<()>, &str> =
            w.wait_until(Deadline::after(None), Duration::from_millis(1), || None, || Err("interrupted"));
        assert_eq!(r, Err("interrupted"));
    }
}
