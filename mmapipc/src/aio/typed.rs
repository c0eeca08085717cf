//! The typed channels under tokio: [`AsyncTypedRing`], [`AsyncTypedQueue`],
//! [`AsyncTypedSubscriber`] and [`AsyncTypedPublisher`].
//!
//! A receive passes the validated archived record to a closure, in its slot (`recv_with`), or
//! returns it deserialized into `T` (`recv_async`, for a `T` whose archive deserializes, e.g.
//! `#[derive(rkyv::Deserialize)]`). A send that finds no room waits for room for the record's
//! archived length (measured only then, [`archived_len`]).

use std::sync::Arc;

use rkyv::api::high::{HighDeserializer, HighValidator};
use rkyv::rancor;
use rkyv::{Archived, Deserialize, Portable};

use super::{AsyncError, Readiness};
use crate::typed::{
    archived_len, Encode, IpcMessage, TypedError, TypedPublisher, TypedQueue, TypedRecvError, TypedSendError,
    TypedSubscriber,
};
use crate::wait::Watch;
use crate::TypedRing;

/// A validated archived record deserialized into its owned form.
fn owned<T>(archived: &Archived<T>) -> Result<T, TypedRecvError>
where
    T: rkyv::Archive,
    Archived<T>: Deserialize<T, HighDeserializer<rancor::Error>>,
{
    rkyv::deserialize::<T, rancor::Error>(archived)
        .map_err(|e| TypedRecvError::Invalid(TypedError::Invalid(format!("deserialization failed: {e}"))))
}

/// The length `value` archives to: what a send waits for room for.
fn send_len<T: Encode>(value: &T) -> Result<usize, AsyncError<TypedSendError>> {
    archived_len(value).map_err(|e| AsyncError::Channel(e.into()))
}

/// The receive loop every typed wrapper shares: `attempt` (the non-blocking receive, passing a
/// record to the caller's closure) until it returns a result, waiting on `watch` in between.
async fn receive<C, R>(
    chan: &mut C,
    read: &mut Readiness,
    mut attempt: impl FnMut(&mut C) -> Result<Option<R>, TypedRecvError>,
    watch: impl Fn(&mut C) -> Arc<dyn Watch>,
) -> Result<R, AsyncError<TypedRecvError>> {
    loop {
        if let Some(r) = attempt(chan).map_err(AsyncError::Channel)? {
            return Ok(r);
        }
        read.wait(watch(chan)).await?;
    }
}

/// The send loop every typed wrapper shares: `attempt` (the non-blocking send) until it
/// succeeds, waiting in between on `watch` for room for `value`'s archived length.
async fn send<C, T: Encode, E: Into<TypedSendError>>(
    chan: &mut C,
    write: &mut Readiness,
    value: &T,
    mut attempt: impl FnMut(&mut C, &T) -> Result<bool, TypedSendError>,
    watch: impl Fn(&mut C, usize) -> Result<Arc<dyn Watch>, E>,
) -> Result<(), AsyncError<TypedSendError>> {
    loop {
        if attempt(chan, value).map_err(AsyncError::Channel)? {
            return Ok(());
        }
        let len = send_len(value)?;
        let watch = watch(chan, len).map_err(|e| AsyncError::Channel(e.into()))?;
        write.wait(watch).await?;
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
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Wraps a typed ring.
    pub fn new(ring: TypedRing<T>) -> Self {
        AsyncTypedRing { ring, read: Readiness::new(), write: Readiness::new() }
    }

    /// The typed ring, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut TypedRing<T> {
        &mut self.ring
    }

    /// The typed ring back.
    pub fn into_inner(self) -> TypedRing<T> {
        self.ring
    }

    /// Receives the next record and passes it to `f`, validated in place.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&Archived<T>) -> R) -> Result<R, AsyncError<TypedRecvError>> {
        let mut f = Some(f);
        let attempt = |r: &mut TypedRing<T>| Ok(r.try_recv()?.map(|g| (f.take().expect("called once"))(&g)));
        receive(&mut self.ring, &mut self.read, attempt, |r| r.ring().readable_watch()).await
    }

    /// Receives the next record, deserialized.
    pub async fn recv_async(&mut self) -> Result<T, AsyncError<TypedRecvError>>
    where
        Archived<T>: Deserialize<T, HighDeserializer<rancor::Error>>,
    {
        self.recv_with(owned::<T>).await?.map_err(AsyncError::Channel)
    }

    /// Sends `value`, waiting for room.
    pub async fn send_async(&mut self, value: &T) -> Result<(), AsyncError<TypedSendError>> {
        send(&mut self.ring, &mut self.write, value, |r, v| r.try_send(v), |r, len| r.ring().writable_watch(len)).await
    }
}

/// A [`TypedQueue`] with async receive and send (share the `Arc` with synchronous users; each
/// record goes to exactly one receiver, async or not).
pub struct AsyncTypedQueue<T> {
    queue: Arc<TypedQueue<T>>,
    read: Readiness,
    write: Readiness,
}

impl<T> std::fmt::Debug for AsyncTypedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTypedQueue").field("queue", &self.queue).finish()
    }
}

impl<T: IpcMessage + Encode> AsyncTypedQueue<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Wraps a typed queue handle.
    pub fn new(queue: Arc<TypedQueue<T>>) -> Self {
        AsyncTypedQueue { queue, read: Readiness::new(), write: Readiness::new() }
    }

    /// The typed queue, for its synchronous calls.
    pub fn queue(&self) -> &Arc<TypedQueue<T>> {
        &self.queue
    }

    /// Takes the next record and passes it to `f`, validated in place (the slot is released
    /// when `f` returns). A record that fails validation is released and reported.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&Archived<T>) -> R) -> Result<R, AsyncError<TypedRecvError>> {
        let mut f = Some(f);
        let attempt = |q: &mut Arc<TypedQueue<T>>| Ok(q.try_recv()?.map(|v| (f.take().expect("called once"))(&v)));
        receive(&mut self.queue, &mut self.read, attempt, |q| q.queue().readable_watch()).await
    }

    /// Takes the next record, deserialized.
    pub async fn recv_async(&mut self) -> Result<T, AsyncError<TypedRecvError>>
    where
        Archived<T>: Deserialize<T, HighDeserializer<rancor::Error>>,
    {
        self.recv_with(owned::<T>).await?.map_err(AsyncError::Channel)
    }

    /// Sends `value`, waiting for room.
    pub async fn send_async(&mut self, value: &T) -> Result<(), AsyncError<TypedSendError>> {
        send(&mut self.queue, &mut self.write, value, |q, v| q.try_send(v), |q, len| q.queue().writable_watch(len))
            .await
    }
}

/// A [`TypedSubscriber`] with async receive.
pub struct AsyncTypedSubscriber<T> {
    sub: TypedSubscriber<T>,
    read: Readiness,
}

impl<T> std::fmt::Debug for AsyncTypedSubscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTypedSubscriber").field("read", &self.read).finish_non_exhaustive()
    }
}

impl<T: IpcMessage> AsyncTypedSubscriber<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Wraps a typed subscriber.
    pub fn new(sub: TypedSubscriber<T>) -> Self {
        AsyncTypedSubscriber { sub, read: Readiness::new() }
    }

    /// The subscriber, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut TypedSubscriber<T> {
        &mut self.sub
    }

    /// The subscriber back.
    pub fn into_inner(self) -> TypedSubscriber<T> {
        self.sub
    }

    /// Receives the next record and passes it to `f`, validated (in place, or in a checked copy
    /// in overwrite mode and groups, as [`TypedSubscriber::try_recv`]).
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(&Archived<T>) -> R) -> Result<R, AsyncError<TypedRecvError>> {
        let mut f = Some(f);
        let attempt = |s: &mut TypedSubscriber<T>| Ok(s.try_recv()?.map(|m| (f.take().expect("called once"))(&m)));
        receive(&mut self.sub, &mut self.read, attempt, |s| s.bytes().readable_watch()).await
    }

    /// Receives the next record, deserialized.
    pub async fn recv_async(&mut self) -> Result<T, AsyncError<TypedRecvError>>
    where
        Archived<T>: Deserialize<T, HighDeserializer<rancor::Error>>,
    {
        self.recv_with(owned::<T>).await?.map_err(AsyncError::Channel)
    }
}

/// A [`TypedPublisher`] with async send (waits for room in block mode; an overwrite-mode
/// publish never waits).
pub struct AsyncTypedPublisher<T> {
    publisher: TypedPublisher<T>,
    write: Readiness,
}

impl<T> std::fmt::Debug for AsyncTypedPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTypedPublisher").field("write", &self.write).finish_non_exhaustive()
    }
}

impl<T: IpcMessage + Encode> AsyncTypedPublisher<T> {
    /// Wraps a typed publisher.
    pub fn new(publisher: TypedPublisher<T>) -> Self {
        AsyncTypedPublisher { publisher, write: Readiness::new() }
    }

    /// The publisher, for its synchronous calls.
    pub fn get_mut(&mut self) -> &mut TypedPublisher<T> {
        &mut self.publisher
    }

    /// The publisher back.
    pub fn into_inner(self) -> TypedPublisher<T> {
        self.publisher
    }

    /// Publishes `value`, waiting for room.
    pub async fn send_async(&mut self, value: &T) -> Result<(), AsyncError<TypedSendError>> {
        let attempt = |p: &mut TypedPublisher<T>, v: &T| p.try_send(v);
        send(&mut self.publisher, &mut self.write, value, attempt, |p, len| p.bytes().writable_watch(len)).await
    }
}
