//! A robust, crash-recoverable lock in shared memory.
//!
//! The lock is one 64-bit word: `0` when free, otherwise the holder's *owner word*
//! `(pid << 32) | (low 32 bits of the process start time | 1)` ([`owner_word`]). The holder
//! takes it with a single compare-and-swap, so the owner's identity is never torn: any process
//! can read the word and ask whether that exact process still runs.
//!
//! Acquiring: a CAS fast path, a short spin, then sleep on a futex [`Waiter`] in slices. Between
//! slices the waiter reads the word; if its owner is dead (the pid is gone, or now belongs to a
//! process with another start time: pid reuse is detected), it CASes the word from that exact
//! value to itself. That *steal* is only correct because every critical section guarded by these
//! locks keeps the shared state consistent at every instruction (see `queue`'s module docs): a
//! holder killed anywhere leaves either nothing or a committed change behind, never a half state.
//!
//! The recovery bound is the slice length: a waiter checks the owner at least once per slice, so a
//! dead owner's lock is taken over within one slice (plus a `/proc` read) of the first waiter.
//!
//! Known limit: processes in different pid namespaces sharing one file see different pids; the
//! lock (like every pid-based scheme) assumes all peers share a pid namespace.

use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::time::Duration;

use crate::process;
use crate::sync::{spin_loop, AtomicU64, Ordering};
use crate::wait::{Deadline, Waiter};

/// The owner word for a process: `(pid << 32) | (start_time as u32 | 1)`; never zero.
pub const fn owner_word(id: process::ProcessId) -> u64 {
    ((id.pid as u64) << 32) | ((id.start_time as u32) | 1) as u64
}

/// This process's owner word, cached (reading `/proc` costs microseconds). The cache is reset in
/// a forked child by a `pthread_atfork` handler, so a child never holds locks in its parent's name.
pub fn me() -> u64 {
    // Process-local cache: std atomics even under loom (it is not part of any shared protocol).
    static ME: StdAtomicU64 = StdAtomicU64::new(0);
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn reset_in_child() {
        ME.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    let v = ME.load(std::sync::atomic::Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers a plain extern "C" fn with no captured state; the handler only does
        // an atomic store, which is async-signal-safe and valid in a freshly forked child.
        unsafe { libc::pthread_atfork(None, None, Some(reset_in_child)) };
    });
    let v = owner_word(process::current());
    ME.store(v, std::sync::atomic::Ordering::Relaxed);
    v
}

/// Whether the process named by an owner word still runs (pid reuse counts as dead).
pub fn owner_alive(word: u64) -> bool {
    if word == 0 {
        return false;
    }
    let pid = (word >> 32) as u32;
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        // A killed process stays a zombie (its /proc entry intact) until its parent reaps it;
        // a zombie holds nothing any more, so it counts as dead.
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else { return false };
        if zombie(&stat) {
            return false;
        }
        match process::parse_start_time(&stat) {
            Some(st) => ((st as u32) | 1) == word as u32,
            None => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Start times are unknown here: fall back to kill(pid, 0).
        process::liveness(process::ProcessId { pid, start_time: 0 }) == process::Liveness::Alive
    }
}

/// True if a `/proc/<pid>/stat` line says the process is a zombie (`Z`) or dead (`X`).
#[cfg(target_os = "linux")]
fn zombie(stat: &[u8]) -> bool {
    let Some(close) = stat.iter().rposition(|&b| b == b')') else { return false };
    matches!(stat.get(close + 2), Some(b'Z') | Some(b'X') | Some(b'x'))
}

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// From a free word.
    Clean,
    /// Taken over from a dead owner.
    Recovered,
}

/// A robust lock: the word and the futex its waiters sleep on. Lives in shared memory.
#[repr(C)]
#[derive(Debug)]
pub struct RobustLock {
    /// 0 or the holder's owner word.
    pub word: AtomicU64,
    /// Sleepers waiting for the word to become free.
    pub waiter: Waiter,
}

impl RobustLock {
    /// One attempt: CAS the word from 0 to `me`.
    #[inline]
    pub fn try_lock(&self, me: u64) -> bool {
        // SYNC: lock. Acquire on success pairs with the previous holder's Release in `unlock`, so
        // its critical section happens-before ours. Failure needs no ordering (we only retry).
        self.word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Acquires the lock for `me`, waiting until `deadline` (`None` once it passes). A holder
    /// found dead is replaced (at most one `slice` after waiting began). `slice` also bounds
    /// each futex sleep.
    pub fn lock(&self, me: u64, deadline: Deadline, slice: Duration) -> Option<Acquired> {
        if self.try_lock(me) {
            return Some(Acquired::Clean);
        }
        for i in 0..64u32 {
            if self.word.load(Ordering::Relaxed) == 0 && self.try_lock(me) {
                return Some(Acquired::Clean);
            }
            for _ in 0..(1u32 << i.min(5)) {
                spin_loop();
            }
        }
        let started = std::time::Instant::now();
        struct Stolen;
        let r = self.waiter.wait_until(
            deadline,
            slice,
            || {
                if self.word.load(Ordering::Relaxed) == 0 && self.try_lock(me) {
                    Some(())
                } else {
                    None
                }
            },
            || if self.steal_if_dead(me) { Err(Stolen) } else { Ok(()) },
        );
        match r {
            Ok(Some(())) => Some(Acquired::Clean),
            Err(Stolen) => Some(Acquired::Recovered),
            // Deadline: one last look, so a short timeout still recovers a dead owner (skipped for
            // a try that barely waited: a `/proc` read per failed try would slow contended tries).
            Ok(None) => {
                (started.elapsed() >= Duration::from_millis(1) && self.steal_if_dead(me)).then_some(Acquired::Recovered)
            }
        }
    }

    /// If the word names a dead process, CAS it from that exact value to `me`.
    pub fn steal_if_dead(&self, me: u64) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        if w == 0 || w == me || owner_alive(w) {
            return false;
        }
        // SYNC: lock (steal). Acquire pairs with whatever Release stores the dead holder made
        // before dying (its commits are single Release stores to the protected words, which we
        // also load with Acquire); the CAS from the exact dead value makes two stealers exclusive.
        self.word.compare_exchange(w, me, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Releases the lock held by `me` and wakes sleepers if any. If the word no longer names
    /// `me` (it cannot happen while we live, as only dead owners are replaced) nothing is changed.
    #[inline]
    pub fn unlock(&self, me: u64) {
        // SYNC: lock. Release publishes our critical section to the next holder's Acquire CAS.
        let _ = self.word.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
        self.waiter.notify();
    }

    /// The current holder's owner word (0 = free).
    pub fn holder(&self) -> u64 {
        self.word.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::AtomicU32;

    fn lock() -> RobustLock {
        RobustLock { word: AtomicU64::new(0), waiter: Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) } }
    }

    #[test]
    fn me_is_alive_and_nonzero() {
        let m = me();
        assert_ne!(m, 0);
        assert_eq!(m >> 32, std::process::id() as u64);
        assert!(owner_alive(m));
        assert!(!owner_alive(0));
        // Same pid, other start time: pid reuse, counts as dead (Linux only knows start times).
        if cfg!(target_os = "linux") {
            assert!(!owner_alive(m ^ 2));
        }
    }

    #[test]
    fn dead_owner_is_stolen_live_one_is_not() {
        let l = lock();
        let m = me();
        assert!(l.try_lock(m));
        assert!(!l.try_lock(m));
        // Held by us (alive): a timed lock gives up.
        assert_eq!(l.lock(m ^ 4, Deadline::after(Some(Duration::from_millis(20))), Duration::from_millis(5)), None);
        l.unlock(m);
        assert_eq!(l.holder(), 0);
        // Held by a dead process.
        let dead = owner_word(crate::process::exited_process());
        l.word.store(dead, Ordering::Relaxed);
        let got = l.lock(m, Deadline::after(Some(Duration::from_secs(5))), Duration::from_millis(10));
        assert_eq!(got, Some(Acquired::Recovered));
        assert_eq!(l.holder(), m);
    }
}
