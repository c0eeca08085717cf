//! Read-only inspection for tools (the `mmapipc` command): nothing here claims a role or writes
//! the mapping.

use crate::inspect::{self, Peeked, Record, Walk};
use crate::sync::Ordering;

use super::error::{check_indices, corrupt, RingError};
use super::handle::Ring;
use super::layout::{align8, FLAG_MESSAGE, FLAG_PADDING, RECORD_HEADER};

/// A snapshot of a ring's shared state for tools ([`Ring::inspect`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingInspect {
    /// Released position (consumer).
    pub head: u64,
    /// Published position (producer).
    pub tail: u64,
    /// The producer's owner word ([`crate::owner`]; 0 = free).
    pub producer: u64,
    /// The consumer's owner word.
    pub consumer: u64,
    /// Wakes issued to a sleeping consumer (the "data available" futex word; wraps at 2^32).
    pub data_wakes: u32,
    /// Consumers asleep (or about to sleep) right now.
    pub data_sleepers: u32,
    /// Wakes issued to a sleeping producer (the "space available" futex word; wraps at 2^32).
    pub space_wakes: u32,
    /// Producers asleep (or about to sleep) right now.
    pub space_sleepers: u32,
}

/// The ring as [`inspect::peek`] walks it: records from `head` to `tail`, reuse bound `head`.
struct Published<'r>(&'r Ring);

impl Walk for Published<'_> {
    type Error = RingError;

    fn window(&self) -> Option<(u64, u64)> {
        // head and tail are two loads: between them the consumer and then the producer may move
        // on, so `tail - head` can exceed the capacity in a snapshot of a healthy ring (retried).
        // SYNC: tail-publish (the Acquire load of tail in `indices`).
        let (head, tail) = self.0.indices();
        check_indices(head, tail, self.0.mem.capacity).ok().map(|()| (head, tail))
    }

    fn record(&self, pos: u64, end: u64) -> Result<Record, RingError> {
        let mem = &*self.0.mem;
        let cap = mem.capacity;
        let off = pos % cap;
        let avail = end - pos;
        if avail < RECORD_HEADER as u64 {
            return Err(corrupt(format!("{avail} bytes published, less than a record header")));
        }
        let (len, flags) = mem.load_header(off);
        let to_end = cap - off;
        match flags {
            FLAG_MESSAGE => {
                let span = align8(u64::from(len) + RECORD_HEADER as u64);
                if span > to_end || span > avail {
                    return Err(corrupt(format!("record of {len} bytes at offset {off} exceeds the buffer")));
                }
                Ok(Record::Message { span, off: off + RECORD_HEADER as u64, len: len as usize })
            }
            FLAG_PADDING if off != 0 && u64::from(len) + RECORD_HEADER as u64 == to_end && to_end <= avail => {
                Ok(Record::Padding { span: to_end })
            }
            other => Err(corrupt(format!("bad record header (flags {other:#x}, length {len}) at offset {off}"))),
        }
    }

    fn copy(&self, off: u64, buf: &mut [u8]) {
        // SAFETY: `off` and `buf.len()` come from `record`: the payload and its alignment
        // padding end before the end of the data area, and `off` is 8-aligned (a record offset
        // plus the 8-byte header).
        unsafe { self.0.mem.data.snapshot(off, buf) }
    }

    fn reuse_bound(&self) -> u64 {
        // SYNC: head-release (the seqlock re-read): a byte is only overwritten after the
        // consumer released it.
        self.0.mem.ctrl().consumer.head.load(Ordering::Acquire)
    }

    fn no_snapshot(&self) -> RingError {
        corrupt("no consistent snapshot of the ring in 100 attempts")
    }
}

impl Ring {
    /// A snapshot of positions, owner words and waiters (no role is claimed, nothing written).
    pub fn inspect(&self) -> RingInspect {
        let c = self.mem.ctrl();
        let (head, tail) = self.indices();
        // Relaxed: informational values for tools.
        RingInspect {
            head,
            tail,
            producer: c.producer.owner.load(Ordering::Relaxed),
            consumer: c.consumer.owner.load(Ordering::Relaxed),
            data_wakes: c.wait.data.seq.load(Ordering::Relaxed),
            data_sleepers: c.wait.data.sleepers.load(Ordering::Relaxed),
            space_wakes: c.wait.space.seq.load(Ordering::Relaxed),
            space_sleepers: c.wait.space.sleepers.load(Ordering::Relaxed),
        }
    }

    /// Copies published, unconsumed messages **without consuming them** (for `mmapipc tail`).
    ///
    /// Starts at `from` (a position returned in [`Peeked::next`]) or at the consumer's head if
    /// `from` is `None` or already released; keeps the last `keep` messages (oldest first). Every
    /// record header is validated as a consumer would. The walk races with the real consumer and
    /// producer: the seqlock walk of [`crate::inspect`] re-reads head afterwards and drops what
    /// may have been overwritten (`missed`).
    pub fn peek_published(&self, from: Option<u64>, keep: usize) -> Result<Peeked, RingError> {
        inspect::peek(&Published(self), from, keep)
    }
}
