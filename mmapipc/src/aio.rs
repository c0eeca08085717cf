//! tokio integration (feature `tokio`, Linux): `recv_async` / `send_async` on rings, queues,
//! typed rings and topics ([`AsyncSubscriber`], [`AsyncPublisher`]), built on [`tokio::io::unix::AsyncFd`] over each side's readiness eventfd
//! ([`Notifier`], see [`crate::wait::readiness`]).
//!
//! Every call tries the non-blocking operation first and returns without touching the
//! runtime's reactor when it succeeds. Otherwise it arms the side's notifier (registering as a
//! sleeper of the channel's waiter, then re-checking) and awaits the descriptor. Futures are
//! cancel-safe: a message is taken only by the synchronous attempt after a wake, so dropping a
//! pending `recv_async` takes nothing, and its registration is dropped with it.
//!
//! A handle's descriptors belong to the runtime that first awaited them. After `fork`, make new
//! async handles in the child (tokio itself does not survive a fork).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use crate::topic::{Publisher, Subscriber, TopicError};
use crate::typed::{Encode, IpcMessage, TypedRecvError, TypedSendError};
use crate::wait::{Notifier, Watch};
use crate::{Queue, QueueError, Ring, RingError, TypedRing};

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

/// A [`Ring`] with async receive and send.
#[derive(Debug)]
pub struct AsyncRing {
    ring: Ring,
    read: Readiness,
    write: Readiness,
}

impl AsyncRing {
    /// Wraps a ring handle (either side, or both).
    pub fn new(ring: Ring) -> AsyncRing {
        AsyncRing { ring, read: Readiness::new(), write: Readiness::new() }
    }

    /// The ring, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut Ring {
        &mut self.ring
    }

    /// The ring handle back.
    pub fn into_inner(self) -> Ring {
        self.ring
    }

    /// Receives the next message and passes it to `f` in place.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, AsyncError<RingError>> {
        let mut f = Some(f);
        loop {
            if let Some(g) = self.ring.try_read().map_err(AsyncError::Channel)? {
                return Ok((f.take().expect("called once"))(&g));
            }
            self.read.wait(self.ring.readable_watch()).await?;
        }
    }

    /// Receives the next message, copied out.
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, AsyncError<RingError>> {
        self.recv_with(<[u8]>::to_vec).await
    }

    /// Sends `data`, waiting for room.
    pub async fn send_async(&mut self, data: &[u8]) -> Result<(), AsyncError<RingError>> {
        loop {
            if self.ring.try_write(data).map_err(AsyncError::Channel)? {
                return Ok(());
            }
            let watch = self.ring.writable_watch(data.len()).map_err(AsyncError::Channel)?;
            self.write.wait(watch).await?;
        }
    }
}

/// A [`Queue`] with async receive and send (share the `Arc` with synchronous users).
#[derive(Debug)]
pub struct AsyncQueue {
    queue: Arc<Queue>,
    read: Readiness,
    write: Readiness,
}

impl AsyncQueue {
    /// Wraps a queue handle.
    pub fn new(queue: Arc<Queue>) -> AsyncQueue {
        AsyncQueue { queue, read: Readiness::new(), write: Readiness::new() }
    }

    /// The queue, for its synchronous calls.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Takes the next message and passes it to `f` in place.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, AsyncError<QueueError>> {
        let mut f = Some(f);
        loop {
            let got = self.queue.try_get_with(|m| (f.take().expect("called once"))(m)).map_err(AsyncError::Channel)?;
            if let Some(r) = got {
                return Ok(r);
            }
            self.read.wait(self.queue.readable_watch()).await?;
        }
    }

    /// Takes the next message, copied out.
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, AsyncError<QueueError>> {
        self.recv_with(<[u8]>::to_vec).await
    }

    /// Puts `data`, waiting for room.
    pub async fn send_async(&mut self, data: &[u8]) -> Result<(), AsyncError<QueueError>> {
        loop {
            if self.queue.try_put(data).map_err(AsyncError::Channel)? {
                return Ok(());
            }
            let watch = self.queue.writable_watch(data.len()).map_err(AsyncError::Channel)?;
            self.write.wait(watch).await?;
        }
    }
}

/// A [`TypedRing`] with async receive and send.
pub struct AsyncTypedRing<T> {
    ring: TypedRing<T>,
    read: Readiness,
    write: Readiness,
}

impl<T> std::fmt::Debug for AsyncTypedRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTypedRing").field("ring", &self.ring).finish()
    }
}

impl<T: IpcMessage + Encode> AsyncTypedRing<T>
where
    rkyv::Archived<T>:
        rkyv::Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>,
{
    /// Wraps a typed ring.
    pub fn new(ring: TypedRing<T>) -> Self {
        AsyncTypedRing { ring, read: Readiness::new(), write: Readiness::new() }
    }

    /// The typed ring, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut TypedRing<T> {
        &mut self.ring
    }

    /// Receives the next record and passes it to `f`, validated in place.
    pub async fn recv_with<R>(
        &mut self,
        f: impl FnOnce(&rkyv::Archived<T>) -> R,
    ) -> Result<R, AsyncError<TypedRecvError>> {
        let mut f = Some(f);
        loop {
            if let Some(g) = self.ring.try_recv().map_err(AsyncError::Channel)? {
                return Ok((f.take().expect("called once"))(&g));
            }
            let watch = self.ring.ring().readable_watch();
            self.read.wait(watch).await?;
        }
    }

    /// Sends `value`, waiting for room. (The encoded size is known only when it is written:
    /// while the ring is full this retries after each release by the consumer.)
    pub async fn send_async(&mut self, value: &T) -> Result<(), AsyncError<TypedSendError>> {
        loop {
            if self.ring.try_send(value).map_err(AsyncError::Channel)? {
                return Ok(());
            }
            let watch = self.ring.ring().writable_watch(0).map_err(|e| AsyncError::Channel(e.into()))?;
            self.write.wait(watch).await?;
        }
    }
}

/// A topic [`Subscriber`] with async receive.
#[derive(Debug)]
pub struct AsyncSubscriber {
    sub: Subscriber,
    read: Readiness,
}

impl AsyncSubscriber {
    /// Wraps a subscriber.
    pub fn new(sub: Subscriber) -> AsyncSubscriber {
        AsyncSubscriber { sub, read: Readiness::new() }
    }

    /// The subscriber, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut Subscriber {
        &mut self.sub
    }

    /// The subscriber back.
    pub fn into_inner(self) -> Subscriber {
        self.sub
    }

    /// Receives the next message and passes it to `f` (in place, or a checked copy in overwrite
    /// mode and groups).
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, AsyncError<TopicError>> {
        let mut f = Some(f);
        loop {
            if let Some(m) = self.sub.try_recv().map_err(AsyncError::Channel)? {
                return Ok((f.take().expect("called once"))(&m));
            }
            self.read.wait(self.sub.readable_watch()).await?;
        }
    }

    /// Receives the next message, copied out.
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, AsyncError<TopicError>> {
        self.recv_with(<[u8]>::to_vec).await
    }
}

/// A topic [`Publisher`] with async send (waits for room in block mode; an overwrite-mode
/// publish never waits).
#[derive(Debug)]
pub struct AsyncPublisher {
    publisher: Publisher,
    write: Readiness,
}

impl AsyncPublisher {
    /// Wraps a publisher.
    pub fn new(publisher: Publisher) -> AsyncPublisher {
        AsyncPublisher { publisher, write: Readiness::new() }
    }

    /// The publisher, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut Publisher {
        &mut self.publisher
    }

    /// The publisher back.
    pub fn into_inner(self) -> Publisher {
        self.publisher
    }

    /// Publishes `data`, waiting for room.
    pub async fn send_async(&mut self, data: &[u8]) -> Result<(), AsyncError<TopicError>> {
        loop {
            if self.publisher.try_publish(data).map_err(AsyncError::Channel)? {
                return Ok(());
            }
            let watch = self.publisher.writable_watch(data.len()).map_err(AsyncError::Channel)?;
            self.write.wait(watch).await?;
        }
    }
}
