//! [`AsyncSubscriber`] and [`AsyncPublisher`]: a byte topic's two sides under tokio.

use super::{receive, send, AsyncError, Readiness};
use crate::topic::{Publisher, Subscriber, TopicError};

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
        let attempt = |s: &mut Subscriber| Ok(s.try_recv()?.map(|m| (f.take().expect("called once"))(&m)));
        receive(&mut self.sub, &mut self.read, attempt, |s| s.readable_watch()).await
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
        let room = |p: &mut Publisher| p.writable_watch(data.len()).map_err(AsyncError::Channel);
        send(&mut self.publisher, &mut self.write, |p| p.try_publish_waiting(data), room).await
    }
}
