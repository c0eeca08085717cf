//! tokio integration (feature `tokio`, Linux): `recv_async` / `send_async` on rings
//! ([`AsyncRing`]), queues ([`AsyncQueue`]), topics ([`AsyncSubscriber`], [`AsyncPublisher`])
//! and the typed channels ([`AsyncTypedRing`], [`AsyncTypedQueue`], [`AsyncTypedSubscriber`],
//! [`AsyncTypedPublisher`]), built on [`tokio::io::unix::AsyncFd`] over each side's readiness
//! eventfd ([`Notifier`], see [`crate::wait::readiness`]).
//!
//! Every call tries the non-blocking operation first and returns without touching the
//! runtime's reactor when it succeeds. Otherwise it arms the side's notifier (registering as a
//! sleeper of the channel's waiter, then re-checking) and awaits the descriptor. Futures are
//! cancel-safe: a message is taken (or sent) only by the synchronous attempt after a wake, so
//! dropping a pending `recv_async` takes nothing and dropping a pending `send_async` sends
//! nothing; its registration is dropped with it.
//!
//! This module holds what every wrapper shares: [`Readiness`] (one side's notifier and its
//! descriptor's registration with the runtime) and [`AsyncError`]. Each primitive's wrappers
//! are in their own file (`ring`, `queue`, `topic`, `typed`), each a loop of "try the
//! non-blocking call, else [`Readiness::wait`] on the side's `Watch`".
//!
//! A handle's descriptors belong to the runtime that first awaited them. After `fork`, make new
//! async handles in the child (tokio itself does not survive a fork).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use crate::wait::{Notifier, Watch};

mod queue;
mod ring;
mod topic;
mod typed;

pub use queue::AsyncQueue;
pub use ring::AsyncRing;
pub use topic::{AsyncPublisher, AsyncSubscriber};
pub use typed::{AsyncTypedPublisher, AsyncTypedQueue, AsyncTypedRing, AsyncTypedSubscriber};

/// An error of an async call: the channel's own, or the readiness descriptor's.
#[derive(Debug, thiserror::Error)]
pub enum AsyncError<E: std::error::Error + 'static> {
    /// The channel operation failed.
    #[error(transparent)]
    Channel(E),
    /// Making or awaiting the readiness descriptor failed.
    #[error("readiness descriptor: {0}")]
    Io(#[from] io::Error),
}

/// A duplicate of a notifier's eventfd, owned by the runtime's registration.
struct Fd(OwnedFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Fd {
    /// Registers a duplicate of `fd` (the same eventfd) with the current runtime.
    fn register(fd: RawFd) -> io::Result<AsyncFd<Fd>> {
        // SAFETY: `fd` is the notifier's open eventfd; `dup` makes a new descriptor we own.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is a descriptor we just opened and own.
        let owned = Fd(unsafe { OwnedFd::from_raw_fd(dup) });
        // SAFETY: the descriptor is owned by the `Fd` inside the `AsyncFd`: it stays open and
        // names the same eventfd until the `AsyncFd` is dropped.
        unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }.map_err(|e| e.into_parts().1)
    }
}

/// One side's readiness in a tokio runtime: a [`Notifier`] whose eventfd is registered with the
/// runtime's reactor on first use. Usable for any [`Watch`] (a topic subscription's too).
#[derive(Default)]
pub struct Readiness {
    notifier: Notifier,
    fd: Option<AsyncFd<Fd>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").field("registered", &self.fd.is_some()).finish()
    }
}

/// Drops the registration if the wait did not complete (the future was dropped).
struct Disarm<'a>(&'a Notifier, bool);

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.disarm();
        }
    }
}

impl Readiness {
    /// A side's readiness; its descriptor is made at the first wait.
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Waits until `watch` may be ready (the caller then retries its non-blocking call; a
    /// spurious return is possible). Cancel-safe.
    pub async fn wait(&mut self, watch: Arc<dyn Watch>) -> io::Result<()> {
        if self.notifier.arm(watch)? {
            return Ok(());
        }
        if self.fd.is_none() {
            self.fd = Some(Fd::register(self.notifier.fd()?)?);
        }
        let fd = self.fd.as_ref().expect("set above");
        let mut armed = Disarm(&self.notifier, false);
        let mut guard = fd.readable().await?;
        // The eventfd is drained by the next arm; tokio must wait for its next edge then.
        guard.clear_ready();
        armed.1 = true;
        Ok(())
    }
}

/// The receive loop every wrapper shares: `attempt` (the non-blocking receive, passing the
/// message to the caller's closure) until it returns a result, waiting on `watch` in between.
async fn receive<C, R, E: std::error::Error + 'static>(
    chan: &mut C,
    read: &mut Readiness,
    mut attempt: impl FnMut(&mut C) -> Result<Option<R>, E>,
    watch: impl Fn(&mut C) -> Arc<dyn Watch>,
) -> Result<R, AsyncError<E>> {
    loop {
        if let Some(r) = attempt(chan).map_err(AsyncError::Channel)? {
            return Ok(r);
        }
        read.wait(watch(chan)).await?;
    }
}

/// The send loop every wrapper shares: `attempt` (the non-blocking send) until it succeeds,
/// waiting in between on the watch `watch` makes (for room for the message; made only when
/// there was none).
async fn send<C, E: std::error::Error + 'static>(
    chan: &mut C,
    write: &mut Readiness,
    mut attempt: impl FnMut(&mut C) -> Result<bool, E>,
    mut watch: impl FnMut(&mut C) -> Result<Arc<dyn Watch>, AsyncError<E>>,
) -> Result<(), AsyncError<E>> {
    loop {
        if attempt(chan).map_err(AsyncError::Channel)? {
            return Ok(());
        }
        let w = watch(chan)?;
        write.wait(w).await?;
    }
}
