//! [`Deadline`], [`Waiter`] (one direction's sleep/wake words in shared memory) and the one
//! wait loop ([`wait_loop`]) that the queue's locks and waits and the ring's waits run.

use std::time::{Duration, Instant};

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering};

use super::futex::{wait_on, wake_all};
use super::spin::{Spin, SPIN_TOTAL};
use super::window::SpinWindow;

/// A monotonic deadline: `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(When);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Never,
    /// A zero timeout: passed from the start. Kept apart so that non-blocking calls (the hot
    /// path of `try_*`) read no clock: a clock read is a visible part of a small put + get.
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
    pub(super) fn passed_at(&self, now: Instant) -> bool {
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
    /// (spinning for [`SPIN_PURE`](super::SPIN_PURE), then yielding,
    /// [`SPIN_TOTAL`](super::SPIN_TOTAL) in all), then sleeps on the futex word in slices of at
    /// most `slice` (so callers can check for Ctrl-C or dead peers between slices through
    /// `between_slices`, which may abort the wait by returning `Err`).
    pub fn wait_until<T, E>(
        &self,
        deadline: Deadline,
        slice: Duration,
        ready: impl FnMut() -> Option<T>,
        between_slices: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<T>, E> {
        // SYNC: sleep-handshake (sleeper side): the SeqCst fence in `wait_loop` suffices.
        wait_loop(self, None, deadline, slice, None, || None, ready, between_slices)
    }

    /// [`wait_until`](Self::wait_until), polling for as long as `window` says and adapting it
    /// to this wait ([`SpinWindow`]).
    pub fn wait_until_in<T, E>(
        &self,
        window: &SpinWindow,
        deadline: Deadline,
        slice: Duration,
        ready: impl FnMut() -> Option<T>,
        between_slices: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<T>, E> {
        // SYNC: sleep-handshake (sleeper side), as in `wait_until`.
        wait_loop(self, Some(window), deadline, slice, None, || None, ready, between_slices)
    }
}

/// The one wait loop: polls `ready()` ([`Spin`], for as long as `window` says, or
/// [`SPIN_TOTAL`] without one), then sleeps on `w` until `ready()` returns `Some` or the
/// deadline passes (`Ok(None)`), in naps of at most `slice`. A wait that slept tells `window`
/// how long it took ([`SpinWindow::slept`], [`SpinWindow::timed_out`]); polling cut short by a
/// contended CPU narrows it.
///
/// Each nap: read `seq`, count ourselves in `sleepers`, SeqCst fence, then `barrier()` (the
/// handshake's sleeper side beyond the fence: nothing for [`Waiter`]'s symmetric handshake, the
/// `membarrier` of `asymmetric.rs`; it returns a shorter nap where it could not do its part),
/// re-check `ready()`, and only then `FUTEX_WAIT` on the `seq` read before the re-check: a wake
/// between the re-check and the call makes it return at once. `between_slices` runs after each
/// nap and may abort the wait with `Err`.
///
/// `sleeping`, if given, is a word of the sleeper's own (a topic subscriber's slot) and its
/// owner word: stored in it right after the increment and cleared before the decrement, it
/// tells whoever reclaims the slot of a process killed during the nap that the count is still
/// held, and that one takes it back ([`Sleeping`]).
#[allow(clippy::too_many_arguments)] // the loop's parts, each a different kind of hook
pub(crate) fn wait_loop<T, E>(
    w: &Waiter,
    window: Option<&SpinWindow>,
    deadline: Deadline,
    slice: Duration,
    sleeping: Option<Sleeping<'_>>,
    mut barrier: impl FnMut() -> Option<Duration>,
    mut ready: impl FnMut() -> Option<T>,
    mut between_slices: impl FnMut() -> Result<(), E>,
) -> Result<Option<T>, E> {
    let mut spin = Spin::new(window.map_or(SPIN_TOTAL, SpinWindow::get));
    loop {
        if let Some(v) = ready() {
            return Ok(Some(v));
        }
        if !spin.step(&deadline) {
            break;
        }
    }
    if spin.contended() {
        if let Some(w) = window {
            w.narrow();
        }
    }
    // What the window learns from this wait, once it has slept (a wait that polled long enough
    // teaches it nothing).
    #[cfg(not(loom))]
    let started = spin.started();
    let learn = |got: bool| {
        #[cfg(not(loom))]
        if let (Some(win), Some(t0)) = (window, started) {
            if got {
                win.slept(t0.elapsed());
            } else {
                win.timed_out(t0.elapsed());
            }
        }
        #[cfg(loom)]
        let _ = got;
    };
    loop {
        if let Some(v) = ready() {
            learn(true);
            return Ok(Some(v));
        }
        let left = deadline.remaining();
        if left == Some(Duration::ZERO) {
            learn(false);
            return Ok(None);
        }
        let mut nap = left.map_or(slice, |l| l.min(slice));
        // SYNC: sleep-handshake / asym-handshake (sleeper side). Acquire on seq: read before the
        // re-check, so a wake after it makes FUTEX_WAIT fail at once.
        let seq = w.seq.load(Ordering::Acquire);
        w.sleepers.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = sleeping {
            // Release: the increment above happens-before the reclaimer's AcqRel CAS that reads
            // this word, so its decrement follows the increment in the count's order.
            s.word.store(s.owner, Ordering::Release);
        }
        fence(Ordering::SeqCst);
        if let Some(cap) = barrier() {
            nap = nap.min(cap);
        }
        let got = ready();
        if got.is_none() {
            wait_on(&w.seq, seq, Some(nap));
        }
        // The count is still ours unless a reclaimer took it back, which it does only for a
        // dead process (never while this one runs; the CAS makes that certain). Relaxed: our own
        // word; the decrement is the count's usual one.
        if sleeping.is_none_or(|s| s.word.compare_exchange(s.owner, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()) {
            w.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(v) = got {
            learn(true);
            return Ok(Some(v));
        }
        between_slices()?;
    }
}

/// A sleeper's own word beside a shared [`Waiter`] ([`wait_loop`]): `owner` (its owner word,
/// never 0) while it is counted in `sleepers`, 0 otherwise. Whoever reclaims the slot of a dead
/// `owner` calls [`Sleeping::take_back`].
#[derive(Clone, Copy)]
pub(crate) struct Sleeping<'a> {
    pub(crate) word: &'a AtomicU64,
    pub(crate) owner: u64,
}

impl Sleeping<'_> {
    /// For a dead `owner`: if it was counted in `w.sleepers` when it died, takes that count
    /// back (once, whoever else calls this too). True if it did.
    pub(crate) fn take_back(&self, w: &Waiter) -> bool {
        // AcqRel: one caller wins; Acquire pairs with the sleeper's Release store of the word
        // (its increment comes first in the count's order, so the count never wraps).
        let took = self.word.compare_exchange(self.owner, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok();
        if took {
            w.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
        took
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
    fn a_nap_marks_its_word_and_clears_it() {
        let w = Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let word = AtomicU64::new(0);
        let marked = AtomicU32::new(0);
        let s = Sleeping { word: &word, owner: 42 };
        let r: Result<Option<()>, ()> = wait_loop(
            &w,
            None,
            Deadline::after(Some(Duration::from_millis(20))),
            Duration::from_millis(5),
            Some(s),
            || None,
            || {
                // The re-check inside a nap sees the nap counted and marked.
                if w.sleepers.load(Ordering::Relaxed) == 1 && word.load(Ordering::Relaxed) == 42 {
                    marked.fetch_add(1, Ordering::Relaxed);
                }
                None
            },
            || Ok(()),
        );
        assert_eq!(r, Ok(None));
        assert!(marked.load(Ordering::Relaxed) > 0, "no nap was marked");
        assert_eq!((w.sleepers.load(Ordering::Relaxed), word.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn a_dead_sleepers_count_is_taken_back_once() {
        let w = Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let word = AtomicU64::new(0);
        // A nap's first half (counted, marked), then the process is gone.
        w.sleepers.fetch_add(1, Ordering::Relaxed);
        word.store(42, Ordering::Release);
        assert!(!Sleeping { word: &word, owner: 43 }.take_back(&w), "another owner's mark");
        let s = Sleeping { word: &word, owner: 42 };
        assert!(s.take_back(&w));
        assert!(!s.take_back(&w), "taken back twice");
        assert_eq!((w.sleepers.load(Ordering::Relaxed), word.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn a_wait_that_slept_widens_its_window() {
        let w = Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let window = SpinWindow::new();
        let t0 = Instant::now();
        // Ready at the re-check of the first nap: the wait polled its whole window, then counted
        // itself a sleeper.
        let r: Result<Option<()>, ()> = wait_loop(
            &w,
            Some(&window),
            Deadline::after(Some(Duration::from_secs(10))),
            Duration::from_millis(5),
            None,
            || None,
            || (w.sleepers.load(Ordering::Relaxed) == 1).then_some(()),
            || Ok(()),
        );
        assert_eq!(r, Ok(Some(())));
        // The window saw at most this wait's length: within the bound, it widened. (A machine
        // that stalled this thread past the bound narrows it instead, which is right too.)
        if t0.elapsed() <= super::super::window::max() && super::super::window::max() > SPIN_TOTAL {
            assert!(window.get() > SPIN_TOTAL, "window {:?} after a wait of {:?}", window.get(), t0.elapsed());
        }
    }

    /// Pins the calling thread to `cpu`.
    #[cfg(target_os = "linux")]
    fn pin(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get a
        // valid pointer to it and its size; pid 0 is the calling thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set), 0);
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn polling_that_takes_the_cpu_from_another_thread_narrows_the_window() {
        // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it (pid 0: this thread).
        let cpu = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set), 0);
            (0..libc::CPU_SETSIZE as usize).find(|&c| libc::CPU_ISSET(c, &set)).expect("some CPU")
        };
        let stop = Arc::new(AtomicU32::new(0));
        let busy = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                pin(cpu);
                // Runs for 100 us at a time: a yield of the waiter lets it run that long, well
                // under the window's bound.
                while stop.load(Ordering::Relaxed) == 0 {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_micros(100) {
                        std::hint::spin_loop();
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        };
        let w = Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let window = SpinWindow::new();
        let max = super::super::window::max();
        pin(cpu);
        let narrowed = (0..200).any(|_| {
            window.slept(max);
            // Shorter than the window's bound: a timeout within it narrows nothing, so only a
            // contended yield can (a wait that took longer than the bound does not count).
            let t0 = Instant::now();
            let deadline = Deadline::after(Some(max / 2));
            let _: Result<Option<()>, ()> =
                wait_loop(&w, Some(&window), deadline, Duration::from_millis(1), None, || None, || None, || Ok(()));
            t0.elapsed() < max && window.get() == SPIN_TOTAL
        });
        stop.store(1, Ordering::Relaxed);
        busy.join().unwrap();
        assert!(narrowed, "a wait sharing its CPU with a busy thread kept polling");
    }

    #[test]
    fn between_slices_can_abort() {
        let w = Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let r: Result<Option<()>, &str> =
            w.wait_until(Deadline::after(None), Duration::from_millis(1), || None, || Err("interrupted"));
        assert_eq!(r, Err("interrupted"));
    }
}
