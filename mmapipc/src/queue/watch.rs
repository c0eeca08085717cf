//! The queue's two sides as [`Watch`]es, for [`Notifier`](crate::wait::Notifier)s (event
//! loops): "a record is committed" on the `not_empty` waiter, "room for a record" on the
//! `not_full` waiter. Each holds the queue in an [`Arc`] (its memory stays mapped while armed).

use std::sync::Arc;
use std::time::Duration;

use crate::wait::{Handshake, Waiter, Watch};

use super::records::record_size;
use super::{Queue, QueueError};

struct Readable(Arc<Queue>);

impl Watch for Readable {
    fn waiter(&self) -> &Waiter {
        &self.0.ctrl().not_empty.waiter
    }

    fn ready(&self) -> bool {
        self.0.maybe_nonempty()
    }

    fn handshake(&self) -> Handshake {
        Handshake::Symmetric
    }
}

struct Writable {
    q: Arc<Queue>,
    need: u64,
}

impl Watch for Writable {
    fn waiter(&self) -> &Waiter {
        &self.q.ctrl().not_full.waiter
    }

    fn ready(&self) -> bool {
        // Records of dead view holders are reclaimed here, as a blocked producer does between
        // its slices (nobody wakes a producer for them: see `poll_interval`).
        self.q.can_progress(self.need) || (self.q.advance_reclaim(true) && self.q.can_progress(self.need))
    }

    fn handshake(&self) -> Handshake {
        Handshake::Symmetric
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.q.check_interval)
    }
}

impl Queue {
    /// The queue's "a message may be ready" side, to arm a
    /// [`Notifier`](crate::wait::Notifier).
    pub fn readable_watch(self: &Arc<Self>) -> Arc<dyn Watch> {
        Arc::new(Readable(self.clone()))
    }

    /// The queue's "room for a message of `len` bytes" side; fails if it could never fit.
    pub fn writable_watch(self: &Arc<Self>, len: usize) -> Result<Arc<dyn Watch>, QueueError> {
        let max = self.max_message_size();
        if len > max {
            return Err(QueueError::TooLarge { len, max });
        }
        Ok(Arc::new(Writable { q: self.clone(), need: record_size(len) }))
    }
}
