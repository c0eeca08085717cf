//! A robust, crash-recoverable lock in shared memory.
//!
//! The lock is one 64-bit word: `0` when free, otherwise the holder's owner word
//! ([`crate::owner`]: pid and start time). The holder takes it with a single compare-and-swap,
//! so the owner's identity is never torn: any process can read the word and ask whether that
//! exact process still runs ([`owner::alive`]).
//!
//! Acquiring: a CAS fast path, then the [`Waiter`]'s polling (a few microseconds of spinning,
//! then yields), then sleep on its futex in slices. Between slices the waiter reads the word; if
//! its owner is dead (the pid is gone, now belongs to a process with another start time, or is a
//! zombie: killed and not yet reaped), it CASes the word from that exact value to itself. That *steal* is only
//! correct because every critical section guarded by these locks keeps the shared state
//! consistent at every instruction (see `queue`'s module docs): a holder killed anywhere leaves
//! either nothing or a committed change behind, never a half state.
//!
//! The recovery bound is the slice length: a waiter checks the owner at least once per slice, so a
//! dead owner's lock is taken over within one slice (plus a `/proc` read) of the first waiter.

use std::time::Duration;

use crate::owner;
use crate::sync::{AtomicU64, Ordering};
use crate::wait::{Deadline, Waiter};

/// This process's owner word ([`owner::me`]; the lock word is an owner word).
pub use crate::owner::me;

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
        // A try (no time to wait) gives up without the last look below: a `/proc` read per
        // failed try would slow contended tries. Decided from the deadline, not a clock, so the
        // loom models see the same steps in every run.
        let may_wait = deadline.remaining() != Some(Duration::ZERO);
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
            // Deadline: one last look, so a short timeout still recovers a dead owner.
            Ok(None) => (may_wait && self.steal_if_dead(me)).then_some(Acquired::Recovered),
        }
    }

    /// If the word names a dead process, CAS it from that exact value to `me`.
    pub fn steal_if_dead(&self, me: u64) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        if w == 0 || w == me || owner::alive(w) {
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
        let dead = owner::encode(crate::process::exited_process());
        l.word.store(dead, Ordering::Relaxed);
        let got = l.lock(m, Deadline::after(Some(Duration::from_secs(5))), Duration::from_millis(10));
        assert_eq!(got, Some(Acquired::Recovered));
        assert_eq!(l.holder(), m);
    }

    /// A try gives up on a dead holder without looking (no `/proc` read per failed try); any
    /// timeout, however short, takes the dead holder's lock over when it ends.
    #[test]
    fn a_try_does_not_look_a_short_timeout_does() {
        let l = lock();
        let dead = owner::encode(crate::process::exited_process());
        l.word.store(dead, Ordering::Relaxed);
        let slice = Duration::from_secs(60);
        assert_eq!(l.lock(me(), Deadline::after(Some(Duration::ZERO)), slice), None);
        assert_eq!(l.holder(), dead);
        assert_eq!(l.lock(me(), Deadline::after(Some(Duration::from_secs(1))), slice), Some(Acquired::Recovered));
        assert_eq!(l.holder(), me());
    }
}
