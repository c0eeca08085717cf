//! A topic's two sides as [`Watch`]es, for [`Notifier`](crate::wait::Notifier)s (event loops):
//! "a message for this subscriber (or its group)" on the data waiter, "room for a message"
//! (block mode) on the space waiter. Both wakers are the ring's asymmetric ones
//! (`asym-handshake` in `mod.rs`: `asymmetric::notify`, no fence on the waker's side), so both
//! watches use [`Handshake::Asymmetric`]. The watches keep the topic's memory alive.

use std::sync::Arc;
use std::time::Duration;

use crate::sync::Ordering;
use crate::wait::{Handshake, Waiter, Watch};

use super::error::TopicError;
use super::handle::{Overflow, TopicMemory};
use super::layout::{record_size, NO_CURSOR, NO_GROUP, RECORD_HEADER};
use super::publisher::Publisher;
use super::reap::REAP_INTERVAL;
use super::subscriber::{reclaim, Subscriber};

struct Readable {
    mem: Arc<TopicMemory>,
    /// An exclusive subscriber's next position (it does not move while the watch is armed:
    /// only this subscriber's receives move it).
    at: u64,
    /// A group member's group (whose shared cursor other members move).
    group: Option<usize>,
}

impl Watch for Readable {
    fn waiter(&self) -> &Waiter {
        &self.mem.head().wait.data
    }

    fn ready(&self) -> bool {
        // SYNC: tail-publish (Acquire; the receive that follows reloads it anyway).
        let tail = self.mem.head().publisher.tail.load(Ordering::Acquire);
        // Relaxed: a hint, as in `wait_readable_until`; the receive decides.
        let pos = self.group.map_or(self.at, |g| self.mem.group(g).cursor.load(Ordering::Relaxed));
        // A padding record or a lapped cursor also reads as "ready": the receive skips it and
        // the caller arms again.
        tail != pos
    }

    fn handshake(&self) -> Handshake {
        Handshake::Asymmetric
    }
}

struct Writable {
    mem: Arc<TopicMemory>,
    /// The least position every holder-back must have passed for the message to fit.
    need: u64,
}

impl Watch for Writable {
    fn waiter(&self) -> &Waiter {
        &self.mem.head().wait.space
    }

    /// The publisher's rescan, without its cache: every live exclusive subscriber's cursor and
    /// every group with a live member at or past `need`. A subscriber below `need` whose process
    /// is gone is reclaimed here (as the publisher's `reap` would): nobody signals its death,
    /// hence the [`poll_interval`](Watch::poll_interval).
    fn ready(&self) -> bool {
        let mem = &*self.mem;
        for i in 0..mem.nsubs {
            let e = mem.sub(i);
            // SYNC: cursor-release (Acquire, as in the publisher's `rescan`; the publish that
            // follows scans again before it overwrites anything).
            let w = e.owner.load(Ordering::Acquire);
            if w == 0 {
                continue;
            }
            let g = e.group.load(Ordering::Acquire);
            let pos = if g == NO_GROUP {
                e.cursor.load(Ordering::Acquire)
            } else if (g as usize) < mem.nsubs {
                mem.group(g as usize).cursor.load(Ordering::Acquire)
            } else {
                return true; // a hostile group index: let the publish report it
            };
            if pos == NO_CURSOR || pos >= self.need {
                continue;
            }
            if crate::owner::alive(w) {
                return false;
            }
            reclaim(mem, i, w);
        }
        true
    }

    fn handshake(&self) -> Handshake {
        Handshake::Asymmetric
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(REAP_INTERVAL)
    }
}

impl Subscriber {
    /// This subscriber's "a message may be ready" side, to arm a
    /// [`Notifier`](crate::wait::Notifier). Arm it after a receive found nothing (it watches
    /// the position that receive stopped at).
    pub fn readable_watch(&self) -> Arc<dyn Watch> {
        Arc::new(Readable { mem: self.mem.clone(), at: self.cursor, group: self.group })
    }
}

impl Publisher {
    /// This publisher's "room for a message of `len` bytes" side (block mode; in overwrite mode
    /// a publish never waits and the watch is always ready). Arm it after a publish found no
    /// room. [`TopicError::TooLarge`] if the message could never fit.
    pub fn writable_watch(&self, len: usize) -> Result<Arc<dyn Watch>, TopicError> {
        let cap = self.mem.capacity;
        let max = cap as usize - 2 * RECORD_HEADER;
        if len > max {
            return Err(TopicError::TooLarge { len, max });
        }
        let need = if self.mem.overflow == Overflow::Block {
            let (tail, off) = self.position();
            let rec = record_size(len) as u64;
            // As `wait_room`: at the wrap the padding to the end comes first.
            let pad = if rec > cap - off { cap - off } else { 0 };
            (tail + pad.max(rec) + RECORD_HEADER as u64).saturating_sub(cap)
        } else {
            0
        };
        Ok(Arc::new(Writable { mem: self.mem.clone(), need }))
    }
}
