//! Read-only inspection for tools (the `mmapipc` command): nothing here takes a lock or writes.

use super::error::{corrupt, QueueError};
use super::handle::Queue;
use super::records::{split_head, RECORD_HEADER, STATE_COMMITTED, STATE_DONE, STATE_PADDING, STATE_TAKEN};
use crate::inspect::{self, Peeked, Record, Walk};
use crate::sync::Ordering;

/// The queue as [`inspect::peek`] walks it: records from `read` to `tail`, reuse bound
/// `reclaim`.
struct Committed<'q>(&'q Queue);

impl Walk for Committed<'_> {
    type Error = QueueError;

    fn window(&self) -> Option<(u64, u64)> {
        let c = self.0.ctrl();
        // read and tail are two loads: between them consumers and then producers may move on,
        // so `tail - read` can exceed the capacity in a snapshot of a healthy queue (retried).
        let read = c.read.value.load(Ordering::Acquire);
        // SYNC: tail-publish. Acquire: records before tail are fully written.
        let tail = c.tail.value.load(Ordering::Acquire);
        self.0.positions_ok(read, tail, "read, tail").ok().map(|()| (read, tail))
    }

    fn record(&self, pos: u64, end: u64) -> Result<Record, QueueError> {
        let q = self.0;
        let idx = pos % q.cap;
        // Relaxed: below `tail` (Acquired in `window`); a racing reuse is caught by the re-read
        // of `reclaim`.
        let (len, state) = split_head(q.head(idx).load(Ordering::Relaxed));
        let span = q.span(pos, len, state, end)?;
        match state {
            STATE_PADDING => Ok(Record::Padding { span }),
            STATE_COMMITTED | STATE_TAKEN | STATE_DONE => {
                Ok(Record::Message { span, off: idx + RECORD_HEADER as u64, len: len as usize })
            }
            other => Err(corrupt(format!("record at {pos} has unknown state {other:#x}"))),
        }
    }

    fn copy(&self, off: u64, buf: &mut [u8]) {
        // SAFETY: `off` and `buf.len()` come from `record`, whose span() check puts the payload
        // and its alignment padding inside the data area; `off` is 8-aligned (idx + 16).
        unsafe { self.0.data.snapshot(off, buf) }
    }

    fn reuse_bound(&self) -> u64 {
        // SYNC: reclaim-publish (the seqlock re-read): a byte is only overwritten after
        // `reclaim` passed it.
        self.0.ctrl().reclaim.value.load(Ordering::Acquire)
    }

    fn no_snapshot(&self) -> QueueError {
        corrupt("no consistent snapshot of the queue in 100 attempts")
    }
}

impl Queue {
    /// Owner words of records handed out as views and not yet released (between `reclaim` and
    /// `read`, state TAKEN), deduplicated, at most `max` distinct owners.
    pub fn view_holders(&self, max: usize) -> Vec<u64> {
        let c = self.ctrl();
        let start = c.reclaim.value.load(Ordering::Acquire);
        let read = c.read.value.load(Ordering::Acquire);
        let mut owners = Vec::new();
        if self.positions_ok(start, read, "").is_err() {
            return owners;
        }
        let mut pos = start;
        while pos < read && owners.len() < max {
            let idx = pos % self.cap;
            // SYNC: view-done (Acquire, as in advance_reclaim; a snapshot for tools).
            let (len, state) = split_head(self.head(idx).load(Ordering::Acquire));
            if state == STATE_TAKEN && idx + RECORD_HEADER as u64 <= self.cap {
                let o = self.owner(idx).load(Ordering::Relaxed);
                if o != 0 && !owners.contains(&o) {
                    owners.push(o);
                }
            }
            match self.span(pos, len, state, read) {
                Ok(s) => pos += s,
                Err(_) => break, // racing with reuse: a snapshot is all a tool gets
            }
        }
        owners
    }

    /// Copies committed messages not yet taken (between `read` and `tail`) **without taking
    /// them** (for `mmapipc tail`). Starts at `from` (a [`Peeked::next`]) or at `read`; keeps the
    /// last `keep`. Races with consumers and producers: the seqlock walk of [`crate::inspect`]
    /// re-reads `reclaim` afterwards and drops what may have been overwritten (`missed`).
    pub fn peek_committed(&self, from: Option<u64>, keep: usize) -> Result<Peeked, QueueError> {
        inspect::peek(&Committed(self), from, keep)
    }
}
