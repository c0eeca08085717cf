//! [`AsyncQueue`]: a byte [`Queue`] under tokio.

use std::sync::Arc;

use super::{receive, send, AsyncError, Readiness};
use crate::{Queue, QueueError};

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
        let attempt = |q: &mut Arc<Queue>| q.try_get_with(|m| (f.take().expect("called once"))(m));
        receive(&mut self.queue, &mut self.read, attempt, |q| q.readable_watch()).await
    }

    /// Takes the next message, copied out.
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, AsyncError<QueueError>> {
        self.recv_with(<[u8]>::to_vec).await
    }

    /// Puts `data`, waiting for room.
    pub async fn send_async(&mut self, data: &[u8]) -> Result<(), AsyncError<QueueError>> {
        let room = |q: &mut Arc<Queue>| q.writable_watch(data.len()).map_err(AsyncError::Channel);
        send(&mut self.queue, &mut self.write, |q| q.try_put(data), room).await
    }
}
