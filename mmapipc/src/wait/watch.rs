//! What the readiness machinery waits for: a channel side as a [`Watch`] (implemented by each
//! primitive: `ring/watch.rs`, `queue/watch.rs`, the topic's), the [`Handshake`] its wakers use,
//! and the [`EventFd`] a [`Notifier`](super::Notifier) makes readable. Both the notifiers
//! (`readiness.rs`) and the waiter threads (`reactor.rs`) use these.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::Waiter;

/// How a side's wakers order their publication before their `sleepers` load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// A SeqCst fence on each side ([`Waiter::notify`]): the queue.
    Symmetric,
    /// No fence on the waker's side, a system-wide barrier on the sleeper's
    /// (`wait/asymmetric.rs`): the ring.
    Asymmetric,
}

/// One side of a channel that a [`Notifier`] can wait for. Implemented by each primitive for
/// its "readable" and "writable" sides; the value keeps the channel's memory alive.
pub trait Watch: Send + Sync + 'static {
    /// The side's sleep/wake words (in the channel's shared memory).
    fn waiter(&self) -> &Waiter;
    /// True when a non-blocking call on this side may make progress now. May be true
    /// spuriously (the caller retries and arms again); must never be false once the peer's
    /// publication that makes progress possible is visible.
    fn ready(&self) -> bool;
    /// Which handshake the side's wakers use.
    fn handshake(&self) -> Handshake;
    /// Re-check at least this often even without a wake: for conditions no peer signals (the
    /// records of a dead view holder of a queue). `None`: only wakes.
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
}

/// An eventfd (non-blocking, close-on-exec), readable while its counter is non-zero.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(super) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor we just opened and own.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The descriptor, for event loops to wait on.
    pub(super) fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Makes the descriptor readable.
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local u64 to our descriptor. The only failure for a
        // non-blocking eventfd is EAGAIN (counter at its maximum), which is readable anyway.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter (the descriptor is not readable afterwards until signalled).
    pub(super) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a local u64; EAGAIN (already zero) is the other outcome.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}
