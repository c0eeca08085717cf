//! Waking the peer without a full fence on the fast path: an asymmetric Dekker handshake.
//!
//! [`Waiter`] pairs a SeqCst fence on each side: the waker's fence, right after its index
//! store, waits for that store to leave the store buffer, which means taking the index's cache
//! line back from the polling peer: a cross-core round trip on every message. Here the waker
//! (every publication) issues only a *compiler* fence and the sleeper (rare: it has already spun
//! and is about to block) pays instead, with `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`: the
//! kernel runs a full memory barrier on every CPU currently running a process registered for it
//! (a CPU running something else has passed a context switch, itself a barrier). So either the
//! waker's index store is visible to the sleeper's re-check, or the waker's later load of
//! `sleepers` sees the sleeper's increment. This is the asymmetric fence of liburcu and folly
//! (`asymmetricHeavyBarrier`), used with the same `Waiter` words and futex as [`Waiter`].
//!
//! Every process that publishes (either role) registers once per process
//! (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`, when a role is claimed). Fallbacks keep it
//! correct everywhere: a process that could not register uses a full SeqCst fence when waking
//! (the symmetric protocol); a sleeper whose `membarrier` call fails sleeps in naps of at most
//! [`NAP_WITHOUT_BARRIER`], so a wake-up it might miss costs at most that much latency. Under loom
//! (and off Linux) it is the plain symmetric protocol.

use std::time::Duration;

use super::{wait_loop, wake_all, Deadline, Sleeping, SpinWindow, Waiter};
use crate::sync::{fence, Ordering};

/// Longest nap of a sleeper that could not run the heavy barrier.
pub(crate) const NAP_WITHOUT_BARRIER: Duration = Duration::from_millis(1);

// Miri cannot run membarrier: it uses the portable (symmetric-fence) side like loom does.
#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod sys {
    use std::sync::atomic::{AtomicU8, Ordering};

    const CMD_QUERY: libc::c_long = 0;
    const CMD_GLOBAL_EXPEDITED: libc::c_long = 1 << 1;
    const CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_long = 1 << 2;

    const UNKNOWN: u8 = 0;
    const REGISTERED: u8 = 1;
    const UNAVAILABLE: u8 = 2;

    /// This process's registration. Reset in a forked child (a new process must register anew).
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
        unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long) }
    }

    /// Registers this process (once) so that sleepers' heavy barriers reach it.
    pub(crate) fn register() {
        if STATE.load(Ordering::Relaxed) != UNKNOWN {
            return;
        }
        // A forked child forgets the registration (it is a new process): the hook resets STATE.
        crate::fork::on_child(super::forget);
        let supported = membarrier(CMD_QUERY);
        let needed = CMD_GLOBAL_EXPEDITED | CMD_REGISTER_GLOBAL_EXPEDITED;
        let ok = supported >= 0 && supported & needed == needed && membarrier(CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
        // Relaxed: the flag only selects which barrier this process's own wakes use; it is
        // set after the registration syscall returned, in program order before any light wake.
        STATE.store(if ok { REGISTERED } else { UNAVAILABLE }, Ordering::Relaxed);
    }

    /// Forgets the registration (called in a forked child, async-signal-safe).
    pub(crate) fn forget() {
        STATE.store(UNKNOWN, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn registered() -> bool {
        STATE.load(Ordering::Relaxed) == REGISTERED
    }

    /// Full barrier on every CPU running a registered process. False if the kernel refused.
    pub(crate) fn heavy_barrier() -> bool {
        membarrier(CMD_GLOBAL_EXPEDITED) == 0
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod sys {
    pub(crate) fn register() {}
    #[allow(dead_code)] // only the Linux fork handler calls it
    pub(crate) fn forget() {}
    #[inline]
    pub(crate) fn registered() -> bool {
        false
    }
    pub(crate) fn heavy_barrier() -> bool {
        true // nobody uses the light side: the symmetric fences suffice
    }
}

#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use sys::register;

/// The sleeper side's system-wide barrier, for a sleeper outside [`wait_until`] (the
/// readiness registrations of `readiness.rs`). False if the kernel refused it.
#[cfg_attr(any(loom, not(target_os = "linux")), allow(dead_code))]
pub(crate) fn heavy_barrier() -> bool {
    sys::heavy_barrier()
}

/// The fork hook ([`crate::fork`]): a child is a new process and must register anew.
#[cfg_attr(not(all(target_os = "linux", not(loom), not(miri))), allow(dead_code))]
fn forget() {
    sys::forget();
}

/// Wakes sleepers on `w` if there are any. Call right after the store that made their
/// condition true. True if it woke (`sleepers` was not 0: the slow path, a system call).
#[inline]
pub(crate) fn notify(w: &Waiter) -> bool {
    if sys::registered() {
        // SYNC: asym-handshake (light side). The compiler must not move the sleepers load above
        // the index store; the CPU may, and a sleeper's heavy barrier covers exactly that.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        // SYNC: asym-handshake (symmetric fallback): a full fence as in `Waiter::notify`.
        fence(Ordering::SeqCst);
    }
    let any = w.sleepers.load(Ordering::Relaxed) != 0;
    if any {
        notify_slow(w);
    }
    any
}

#[cold]
fn notify_slow(w: &Waiter) {
    // Release: keeps the bump after the condition's store; it makes a racing FUTEX_WAIT fail.
    w.seq.fetch_add(1, Ordering::Release);
    wake_all(&w.seq);
}

/// Waits until `ready()` returns `Some`, or the deadline passes (`None`): the one wait loop
/// ([`super::wait_loop`]) with this module's sleeper side, polling as long as `window` says, in
/// naps of at most `slice`.
pub(crate) fn wait_until<T>(
    w: &Waiter,
    window: &SpinWindow,
    deadline: Deadline,
    slice: Duration,
    ready: impl FnMut() -> Option<T>,
) -> Option<T> {
    wait_until_as(w, window, None, deadline, slice, ready)
}

/// [`wait_until`], marking each nap in `sleeping` (see [`wait_loop`]).
pub(crate) fn wait_until_as<T>(
    w: &Waiter,
    window: &SpinWindow,
    sleeping: Option<Sleeping<'_>>,
    deadline: Deadline,
    slice: Duration,
    ready: impl FnMut() -> Option<T>,
) -> Option<T> {
    // SYNC: asym-handshake (heavy side): after the loop's SeqCst fence, the system-wide barrier;
    // where the kernel refused it, naps are capped so a missed wake costs at most that long.
    let barrier = || (!sys::heavy_barrier()).then_some(NAP_WITHOUT_BARRIER);
    match wait_loop(w, Some(window), deadline, slice, sleeping, barrier, ready, || {
        Ok::<(), std::convert::Infallible>(())
    }) {
        Ok(got) => got,
        Err(never) => match never {},
    }
}
