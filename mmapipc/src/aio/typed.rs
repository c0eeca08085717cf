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

use super::{receive, send, AsyncError, Readiness};
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

/// The watch for room for `value`'s archived length (measured only when a send found none).
fn typed_room<T: Encode, E: Into<TypedSendError>>(
    value: &T,
    watch: impl FnOnce(usize) -> Result<Arc<dyn Watch>, E>,
) -> Result<Arc<dyn Watch>, AsyncError<TypedSendError>> {
    let len = archived_len(value).map_err(|e| AsyncError::Channel(e.into()))?;
    watch(len).map_err(|e| AsyncError::Channel(e.into()))
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
        let room = |r: &mut TypedRing<T>| typed_room(value, |len| r.ring().writable_watch(len));
        send(&mut self.ring, &mut self.write, |r| r.try_send(value), room).await
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
        let room = |q: &mut Arc<TypedQueue<T>>| typed_room(value, |len| q.queue().writable_watch(len));
        send(&mut self.queue, &mut self.write, |q| q.try_send(value), room).await
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
        let room = |p: &mut TypedPublisher<T>| typed_room(value, |len| p.bytes().writable_watch(len));
        send(&mut self.publisher, &mut self.write, |p| p.try_send(value), room).await
    }
}
