//! One handle, many Python threads, and `fork`: the state behind a frozen pyclass.
//!
//! Every pyclass of this module is `frozen` (shared `&self` only, no pyo3 borrow flag), and its
//! mutable state lives in the types here. Their bookkeeping is guarded by the GIL itself: this
//! extension module does not declare itself free-threading safe, so the interpreter keeps the
//! GIL while it is loaded, and every access below happens with the GIL held (a `Python` token
//! proves it) and runs no Python code. Uncontended, they cost plain loads and stores, no atomic
//! read-modify-write.
//!
//! * [`Shared`]: a value (a queue, a region, a role-less ring handle) that calls use and
//!   `close()` drops. Calls count themselves in and out; `close()` marks it closed and drops it
//!   at once if no call is in flight, otherwise the last call out drops it.
//! * [`SideLock`]: one side of a ring (producer or consumer state), held for a whole call,
//!   across the waits that release the GIL. A second thread waits for it with the GIL released
//!   (never blocking on it with the GIL held, which would deadlock with a holder that needs the
//!   GIL back), within its call's deadline, interruptible by Ctrl-C.
//!
//! `fork`: the child inherits the bookkeeping of threads that do not exist there. [`generation`]
//! tells which process a record was made in; a lock held by a thread that did not survive the
//! fork is free in the child. Its data is consistent then: a lock holder lets the GIL go only
//! while waiting (or while reacquiring it), and `os.fork()` runs with the GIL held, so a holder
//! in another thread is always at a wait when the process forks.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use mmapipc::wait::{wait_on, wake_all};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::blocking::{retry, CallDeadline, Waited};
use crate::errors::closed;

/// The thread that forked this process (the only thread a child starts with), or 0.
static FORKER: AtomicUsize = AtomicUsize::new(0);

/// The fork hook ([`mmapipc::fork`]): records the forking thread in the child.
fn after_fork_in_child() {
    // Async-signal-safe: an atomic store and pthread_self only.
    FORKER.store(thread_id(), Ordering::Relaxed);
}

/// Registers the fork hook (at module import, before any handle exists).
pub fn install_fork_handler() {
    mmapipc::fork::on_child(after_fork_in_child);
}

/// How many forks separate this process from the first that registered the fork handler.
pub fn generation() -> u64 {
    mmapipc::fork::generation()
}

/// The calling thread (`pthread_self`: a forking thread keeps its value in the child).
fn thread_id() -> usize {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as usize }
}

/// Whether a thread recorded (as `thread`, in generation `gen`) still exists in this process.
fn survives(gen: u64, thread: usize) -> bool {
    // A thread of an earlier generation survived only if it is the one that forked us.
    gen == generation() || thread == FORKER.load(Ordering::Relaxed)
}

/// A value touched only with the GIL held, by code that runs no Python code meanwhile (a
/// lock per access would cost more than the bookkeeping it guards).
#[derive(Default)]
pub(crate) struct GilCell<T>(UnsafeCell<T>);

// SAFETY: every access goes through `with`, which needs the GIL (a `Python` token): the GIL
// serialises all accesses, and `with` runs no Python code, so no two `&mut` overlap.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub(crate) fn new(v: T) -> Self {
        GilCell(UnsafeCell::new(v))
    }

    /// Runs `f` on the value. `f` must not run Python code (nor drop Python objects).
    pub(crate) fn with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: see the Sync impl: the GIL is held and `f` cannot re-enter.
        f(unsafe { &mut *self.0.get() })
    }
}

// ---------------------------------------------------------------------------------------------

struct SlotState<T> {
    value: Option<Arc<T>>,
    closed: bool,
    /// Calls in flight (made in generation `gen`).
    busy: usize,
    gen: u64,
}

impl<T> SlotState<T> {
    /// In a forked child, forgets the parent's calls in flight.
    fn refresh(&mut self, now: u64) {
        if self.gen != now {
            // Those calls are not running here, but one of the forking thread may be (os.fork
            // from a signal handler): keep the value alive for good then.
            if self.busy != 0 {
                if let Some(v) = &self.value {
                    std::mem::forget(v.clone());
                }
            }
            self.busy = 0;
            self.gen = now;
        }
    }
}

/// A value used by calls and dropped by `close()` once no call uses it (see the module docs).
pub struct Shared<T> {
    state: GilCell<SlotState<T>>,
    what: &'static str,
}

/// One call's use of a [`Shared`] value; derefs to it. Dropped with the GIL held (it holds a
/// `Python` token, so it cannot enter `allow_threads`; borrow `&T` from it for that).
pub struct Using<'a, T> {
    slot: &'a Shared<T>,
    ptr: *const T,
    gen: u64,
    py: Python<'a>,
}

impl<T: Send + Sync> Shared<T> {
    pub fn new(value: T, what: &'static str) -> Self {
        let state = SlotState { value: Some(Arc::new(value)), closed: false, busy: 0, gen: generation() };
        Shared { state: GilCell::new(state), what }
    }

    /// Counts a call in: `ValueError` if closed.
    pub fn enter<'a>(&'a self, py: Python<'a>) -> PyResult<Using<'a, T>> {
        let now = generation();
        let got = self.state.with(py, |st| {
            st.refresh(now);
            match &st.value {
                Some(v) if !st.closed => {
                    st.busy += 1;
                    Some(Arc::as_ptr(v))
                }
                _ => None,
            }
        });
        match got {
            Some(ptr) => Ok(Using { slot: self, ptr, gen: now, py }),
            None => Err(closed(self.what)),
        }
    }

    /// A clone of the value (for an owner that outlives the call), unless closed.
    pub fn arc(&self, py: Python<'_>) -> PyResult<Arc<T>> {
        self.state.with(py, |st| if st.closed { None } else { st.value.clone() }).ok_or_else(|| closed(self.what))
    }

    /// Marks the value closed; drops it now unless a call is in flight (the last one drops it).
    pub fn close(&self, py: Python<'_>) {
        let now = generation();
        let dropped = self.state.with(py, |st| {
            st.refresh(now);
            st.closed = true;
            if st.busy == 0 {
                st.value.take()
            } else {
                None
            }
        });
        drop(dropped);
    }

    pub fn is_closed(&self, py: Python<'_>) -> bool {
        self.state.with(py, |st| st.closed)
    }
}

impl<T> Using<'_, T> {
    /// True once `close()` ran (the value stays valid until this call ends).
    pub fn closing(&self) -> bool {
        self.slot.state.with(self.py, |st| st.closed)
    }
}

impl<T> std::ops::Deref for Using<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the Arc is dropped only when no call is counted in (or, after a fork, never:
        // see `enter`), and this call is counted until `drop`.
        unsafe { &*self.ptr }
    }
}

impl<T> Drop for Using<'_, T> {
    fn drop(&mut self) {
        let gen = self.gen;
        let dropped = self.slot.state.with(self.py, |st| {
            if st.gen == gen {
                st.busy -= 1;
            }
            if st.closed && st.busy == 0 {
                st.value.take()
            } else {
                None
            }
        });
        drop(dropped);
    }
}

// ---------------------------------------------------------------------------------------------

struct LockState {
    held: bool,
    /// The holder (when `held`), and the generation it locked in.
    thread: usize,
    gen: u64,
    /// Threads of generation `gen` waiting for the lock.
    waiters: u32,
}

/// One side of a ring, held for a whole call (see the module docs).
pub struct SideLock<T> {
    state: GilCell<LockState>,
    /// Futex word: bumped by an unlock that has waiters.
    wake: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is reached only through a guard, and the lock protocol (its state guarded by
// the GIL, see `GilCell`) hands out one guard at a time; T: Send lets the holder's thread use it.
unsafe impl<T: Send> Sync for SideLock<T> {}

/// The held lock; derefs to the data. Unlocks on drop, with the GIL held (it holds a token).
pub struct SideGuard<'a, T> {
    lock: &'a SideLock<T>,
    py: Python<'a>,
}

impl<T: Send> SideLock<T> {
    pub fn new(data: T) -> Self {
        let state = LockState { held: false, thread: 0, gen: generation(), waiters: 0 };
        SideLock { state: GilCell::new(state), wake: AtomicU32::new(0), data: UnsafeCell::new(data) }
    }

    /// Takes the lock if it is free now (else counts the caller a waiter if `register`). `Err`
    /// if this very thread holds it (a signal handler or finalizer calling the handle whose call
    /// it interrupted).
    fn try_take(&self, py: Python<'_>, register: bool) -> PyResult<bool> {
        let me = thread_id();
        self.state.with(py, |st| {
            if st.gen != generation() {
                // The waiters counted are the parent's; the holder survives only if it forked us.
                st.waiters = 0;
                if st.held && !survives(st.gen, st.thread) {
                    st.held = false;
                }
                st.gen = generation();
            }
            if !st.held {
                *st = LockState { held: true, thread: me, gen: st.gen, waiters: st.waiters };
                return Ok(true);
            }
            if st.thread == me {
                return Err(PyRuntimeError::new_err(
                    "this handle is already in a call on this thread (a signal handler or finalizer \
                     used the handle whose call it interrupted)",
                ));
            }
            if register {
                st.waiters += 1;
            }
            Ok(false)
        })
    }

    /// The lock, waiting for it with the GIL released until `deadline` (`Ok(None)`: it passed).
    pub fn lock<'a>(&'a self, py: Python<'a>, deadline: &mut CallDeadline) -> PyResult<Option<SideGuard<'a, T>>> {
        // The futex word as read before the last try, while this thread is counted a waiter.
        let mut waiting: Option<u32> = None;
        let wake = &self.wake;
        let taken = retry(
            py,
            deadline,
            &mut waiting,
            || Ok(()),
            |waiting| {
                if waiting.take().is_some() {
                    self.unregister(py);
                }
                // Read the word before letting the GIL go: an unlock (which needs the GIL) after
                // this point changes it, so the futex wait returns at once.
                // Acquire: pairs with the unlocker's Release bump (nothing else is published by it).
                let seq = wake.load(Ordering::Acquire);
                if self.try_take(py, true)? {
                    return Ok(Some(()));
                }
                *waiting = Some(seq);
                Ok(None)
            },
            |waiting, slice| {
                if let Some(seq) = *waiting {
                    wait_on(wake, seq, Some(slice));
                }
                Ok(Waited::Ready)
            },
        );
        if waiting.is_some() {
            self.unregister(py);
        }
        Ok(taken?.map(|()| SideGuard { lock: self, py }))
    }

    /// Stops counting the calling thread as a waiter (registered by `try_take`).
    fn unregister(&self, py: Python<'_>) {
        let gen = generation();
        self.state.with(py, |st| {
            if st.gen == gen {
                st.waiters = st.waiters.saturating_sub(1);
            }
        });
    }

    /// The lock if it is free now (`None` if another call, or this thread, holds it).
    pub fn try_lock<'a>(&'a self, py: Python<'a>) -> Option<SideGuard<'a, T>> {
        match self.try_take(py, false) {
            Ok(true) => Some(SideGuard { lock: self, py }),
            _ => None,
        }
    }
}

impl<T> std::ops::Deref for SideGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the lock's one holder (see `SideLock`'s Sync impl).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> std::ops::DerefMut for SideGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SideGuard<'_, T> {
    fn drop(&mut self) {
        let wake = self.lock.state.with(self.py, |st| {
            st.held = false;
            st.thread = 0;
            st.waiters != 0
        });
        if wake {
            // Release: orders the bump after the unlock above for a waiter that reads it.
            self.lock.wake.fetch_add(1, Ordering::Release);
            wake_all(&self.lock.wake);
        }
    }
}
