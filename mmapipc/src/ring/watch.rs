//! The ring's two sides as [`Watch`]es, for [`Notifier`](crate::wait::Notifier)s (event loops):
//! "a message is published" on the data waiter, "room for a message" on the space waiter. Both
//! read the indices the roles published (a handle holding no role can arm them) and keep the
//! ring's memory alive.

use std::sync::Arc;

use crate::sync::Ordering;
use crate::wait::{Handshake, Waiter, Watch};

use super::handle::{Ring, RingMemory};
use super::RingError;

struct Readable(Arc<RingMemory>);

impl Watch for Readable {
    fn waiter(&self) -> &Waiter {
        &self.0.ctrl().wait.data
    }

    fn ready(&self) -> bool {
        let c = self.0.ctrl();
        // SYNC: tail-publish (Acquire; the read that follows reloads it anyway). Relaxed on
        // head: only compared, and only the consumer moves it.
        c.producer.tail.load(Ordering::Acquire) != c.consumer.head.load(Ordering::Relaxed)
    }

    fn handshake(&self) -> Handshake {
        Handshake::Asymmetric
    }
}

struct Writable {
    mem: Arc<RingMemory>,
    /// Record size of the message to write (framing included).
    rec: u64,
}

impl Watch for Writable {
    fn waiter(&self) -> &Waiter {
        &self.mem.ctrl().wait.space
    }

    fn ready(&self) -> bool {
        let c = self.mem.ctrl();
        let cap = self.mem.capacity;
        // Relaxed on tail: only the producer moves it. SYNC: head-release (Acquire, as in
        // `has_room`).
        let tail = c.producer.tail.load(Ordering::Relaxed);
        let head = c.consumer.head.load(Ordering::Acquire);
        let to_end = cap - tail % cap;
        // At the wrap the producer first needs room for the padding to the end.
        let need = if self.rec > to_end { to_end } else { self.rec };
        match tail.checked_sub(head) {
            Some(used) if used <= cap => cap - used >= need,
            _ => true, // corrupt indices: let the write report them
        }
    }

    fn handshake(&self) -> Handshake {
        Handshake::Asymmetric
    }
}

impl Ring {
    /// This ring's "a message is ready" side, to arm a [`Notifier`](crate::wait::Notifier).
    pub fn readable_watch(&self) -> Arc<dyn Watch> {
        Arc::new(Readable(self.mem.clone()))
    }

    /// This ring's "room for a message of `len` bytes" side. Fails if the message could never
    /// fit ([`RingError::TooLarge`]).
    pub fn writable_watch(&self, len: usize) -> Result<Arc<dyn Watch>, RingError> {
        let rec = self.check_len(len)?;
        Ok(Arc::new(Writable { mem: self.mem.clone(), rec }))
    }
}
