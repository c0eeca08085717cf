//! Readiness as a file descriptor: a channel's "data available" or "space available" made
//! readable on an `eventfd`, so event loops (asyncio, tokio, selectors) can wait for shared
//! memory without a thread per channel and without polling.
//!
//! A primitive describes one side it can wait for as a [`Watch`]: the side's [`Waiter`](super::Waiter) (the
//! futex word and sleeper count its peers already signal), a readiness check, and which
//! handshake its wakers use. A [`Notifier`] owns one eventfd; [`Notifier::arm`] registers a
//! watch with the per-process waiter threads (`reactor.rs`), which make the eventfd readable
//! once the watch is ready. Registration is one-shot: the threads drop it when they fire, and
//! the caller arms again after it has taken what was ready.
//!
//! # The protocol (why no wake is lost)
//!
//! Registering counts as a sleeper of the side's [`Waiter`](super::Waiter) for as long as the registration
//! lasts, so the peers' wakers, which make their syscall only while `sleepers > 0`, wake the
//! waiter thread; while nobody is registered they keep their syscall-free fast path.
//!
//! 1. [`Notifier::arm`] drains the eventfd, increments `sleepers`, issues a SeqCst fence and,
//!    for the asymmetric handshake (the ring), the system-wide barrier of `asymmetric.rs`, then
//!    re-checks the condition: either the re-check sees the peer's publication, or every later
//!    waker sees `sleepers > 0` (the handshake of [`Waiter`](super::Waiter)) and bumps `seq` after publishing.
//! 2. The waiter thread reads `seq` (Acquire), then checks the condition, then blocks while
//!    `seq` still holds the value read: a bump after the read makes the wait return at once, a
//!    bump before it is seen together with the publication it follows (Release/Acquire).
//! 3. When the condition holds, the thread writes the eventfd and unregisters (decrementing
//!    `sleepers`); [`Notifier::disarm`] unregisters without firing. Whoever removes the
//!    registration decrements, under the registry's lock, so it happens exactly once.
//!
//! A process killed while registered leaves its count in `sleepers`: its peers then make a
//! wake syscall per publication (correct, slower), as with a process killed in a blocking wait.
//!
//! # Fork
//!
//! A forked child has no waiter threads and shares its parent's eventfds. A [`Notifier`]
//! remembers the fork generation it was made in ([`crate::fork`]): used in a child, it forgets
//! the parent's registration (the parent's thread still owns that count) and makes a new
//! eventfd, so [`Notifier::fd`] differs in the child. The registry itself is dropped from
//! reach by a fork hook and made anew at the child's first registration.
//!
//! Linux only (eventfd, futex). See `reactor.rs` for the kernels each path needs.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use super::asymmetric;
use super::reactor::{self, Ticket};
use super::spin::Spin;
use super::watch::{EventFd, Handshake, Watch};
use super::Deadline;
use crate::sync::{fence, Ordering};

struct Inner {
    /// The fork generation `fd` and `ticket` belong to.
    generation: u64,
    fd: Option<Arc<EventFd>>,
    ticket: Option<Ticket>,
}

/// One eventfd that becomes readable when the [`Watch`] it was last armed with is ready (see
/// the module docs). Owned by a handle (one per side it waits for); thread-safe.
pub struct Notifier {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::new()
    }
}

impl Notifier {
    /// A notifier; its eventfd is opened at the first [`fd`](Self::fd) or [`arm`](Self::arm).
    pub fn new() -> Notifier {
        // The fork handler must be in place before a child can inherit the eventfd: a child
        // tells its copy from the parent's by the fork generation.
        crate::fork::registered();
        Notifier { inner: Mutex::new(Inner { generation: crate::fork::generation(), fd: None, ticket: None }) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = crate::fork::generation();
        if g.generation != now {
            // A forked child: the registration and the eventfd are the parent's. Forget the
            // ticket (its count is the parent thread's to drop) and open a new eventfd; the
            // inherited descriptor stays open (the parent's registry may still hold it).
            g.generation = now;
            g.ticket = None;
            if let Some(old) = g.fd.take() {
                std::mem::forget(old);
            }
        }
        g
    }

    fn eventfd(g: &mut Inner) -> io::Result<Arc<EventFd>> {
        if let Some(fd) = &g.fd {
            return Ok(fd.clone());
        }
        let fd = Arc::new(EventFd::new()?);
        g.fd = Some(fd.clone());
        Ok(fd)
    }

    /// The eventfd (opened on first use). Readable once the armed watch was ready; stays
    /// readable until the next [`arm`](Self::arm). Another number in a forked child.
    pub fn fd(&self) -> io::Result<RawFd> {
        let mut g = self.lock();
        Ok(Self::eventfd(&mut g)?.raw_fd())
    }

    /// Drains the eventfd and registers `watch` (replacing any earlier registration), then
    /// re-checks it. `Ok(true)`: ready now (the descriptor is signalled too and nothing stays
    /// registered): try the non-blocking call again. `Ok(false)`: registered; the descriptor
    /// becomes readable once the watch is ready.
    pub fn arm(&self, watch: Arc<dyn Watch>) -> io::Result<bool> {
        let mut g = self.lock();
        if let Some(t) = g.ticket.take() {
            reactor::cancel(t);
        }
        let fd = Self::eventfd(&mut g)?;
        fd.drain();
        let w = watch.waiter();
        // SYNC: sleep-handshake / asym-handshake (sleeper side), as in `wait_loop`: count
        // ourselves, fence, (heavy barrier), then re-check. Relaxed on the count: the fence
        // orders it before the re-check.
        w.sleepers.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let mut nap = None;
        if watch.handshake() == Handshake::Asymmetric && !asymmetric::heavy_barrier() {
            // A waker's light-side store may stay unseen: re-check on a timer instead.
            nap = Some(asymmetric::NAP_WITHOUT_BARRIER);
        }
        if watch.ready() {
            w.sleepers.fetch_sub(1, Ordering::Relaxed);
            fd.signal();
            return Ok(true);
        }
        let keep = watch.clone();
        match reactor::register(watch, fd, nap) {
            Ok(t) => {
                g.ticket = Some(t);
                Ok(false)
            }
            Err(e) => {
                keep.waiter().sleepers.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// [`arm`](Self::arm) after polling `watch` as a blocking wait does first ([`SPIN_PURE`] of
    /// spinning, then yielding until [`SPIN_TOTAL`]): a peer that answers within that time is
    /// seen without the two thread wake-ups of the descriptor path. Returns `Ok(true)` as soon
    /// as the watch is ready (without registering).
    ///
    /// [`SPIN_PURE`]: super::SPIN_PURE
    /// [`SPIN_TOTAL`]: super::SPIN_TOTAL
    pub fn arm_after_spin(&self, watch: Arc<dyn Watch>) -> io::Result<bool> {
        let mut spin = Spin::new(super::SPIN_TOTAL);
        let no_deadline = Deadline::after(None);
        while spin.step(&no_deadline) {
            if watch.ready() {
                return Ok(true);
            }
        }
        self.arm(watch)
    }

    /// Drops the registration, if any (the descriptor keeps its state).
    pub fn disarm(&self) {
        let mut g = self.lock();
        if let Some(t) = g.ticket.take() {
            reactor::cancel(t);
        }
    }

    /// Makes the descriptor readable (if it was opened) without a registration firing: wakes
    /// whoever waits on it, for example when the handle is closed.
    pub fn signal(&self) {
        let g = self.lock();
        if let Some(fd) = &g.fd {
            fd.signal();
        }
    }

    /// True while a watch is registered and has not fired.
    pub fn armed(&self) -> bool {
        let g = self.lock();
        g.ticket.as_ref().is_some_and(reactor::pending)
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Number of waiter threads this process runs now (for tests and diagnostics).
pub fn waiter_threads() -> usize {
    reactor::threads()
}

/// Whether registrations use `futex_waitv` (one thread per 127 watches) or the fallback of one
/// thread per watch.
pub fn uses_futex_waitv() -> bool {
    reactor::uses_waitv()
}

#[cfg(all(test, not(miri)))]
mod tests;
