//! [`AsyncRing`]: a byte [`Ring`] under tokio.

use super::{receive, send, AsyncError, Readiness};
use crate::{Ring, RingError};

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
        let attempt = |r: &mut Ring| Ok(r.try_read()?.map(|g| (f.take().expect("called once"))(&g)));
        receive(&mut self.ring, &mut self.read, attempt, |r| r.readable_watch()).await
    }

    /// Receives the next message, copied out.
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, AsyncError<RingError>> {
        self.recv_with(<[u8]>::to_vec).await
    }

    /// Sends `data`, waiting for room.
    pub async fn send_async(&mut self, data: &[u8]) -> Result<(), AsyncError<RingError>> {
        let room = |r: &mut Ring| r.writable_watch(data.len()).map_err(AsyncError::Channel);
        send(&mut self.ring, &mut self.write, |r| r.try_write(data), room).await
    }
}
