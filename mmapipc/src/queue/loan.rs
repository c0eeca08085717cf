//! Loans: a message slot reserved by one call and published by another ([`Queue::loan`],
//! [`QueueLoan::commit`]), for callers that fill the slot outside a closure (Python's
//! `SharedMemoryQueue.loan`, a frame written from NumPy).
//!
//! A loan is a `put` split in two at the point where the payload is written. The reservation
//! runs the producer path of every put (`Queue::produce`, `write_locked`: the producer lock,
//! room, the padding record at the wrap, the record's head and owner words, the frame restart
//! of `mem::reuse`) and stops before the one `tail` store that publishes, keeping the producer
//! lock held; the commit makes that store (`tail-publish`) and unlocks. So between the two the
//! queue is exactly in the state of a producer inside `write_locked` before its `tail` store:
//!
//! * **Killed while holding a loan** (between reserve and commit, or during either): nothing
//!   past `tail` was published, so no consumer reads the slot, and the lock word names a dead
//!   process, which the next producer replaces (`crate::lock`, within one check interval) and
//!   then writes from `tail`, over the dead loan's bytes, as after a producer killed mid-put.
//!   No committed message is lost or delivered twice: consumers never depended on the lock.
//! * **Killed during the commit**: the `tail` store is one 8-byte store; before it nothing is
//!   visible, after it the record is whole (written before it in program order, Release).
//! * **Dropped without commit** (an error while filling): the lock is released without the
//!   store; the next producer overwrites the slot (and a padding record written for it).
//! * **Fork**: a child that inherited a copy of the loan is another process: the lock is not
//!   its own, so its commit is refused ([`QueueError::ForeignLoan`]) and its drop does nothing.
//!
//! Ordering is that of a put: the payload bytes are written by the loaning thread, or by
//! whichever thread the loan was moved to (the move synchronises them), before the Release
//! store of `tail`. Other producers (threads and processes) wait for the lock while a loan is
//! out: keep loans short, and never put through the same queue from the thread that holds one
//! (it would wait for itself).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::error::QueueError;
use super::handle::{bump, Queue};
use super::producer::Source;
use crate::mem::DataArea;
use crate::owner;
use crate::sync::Ordering;
use crate::wait::Deadline;

/// A reserved, unpublished message slot of a [`Queue`] (see the module docs): write its
/// `len()` bytes ([`fill`](Self::fill) or through [`as_mut_ptr`](Self::as_mut_ptr)), then
/// [`commit`](Self::commit) it. Dropping it publishes nothing. While it lives this process
/// holds the queue's producer lock. Bytes left unwritten keep whatever the slot held before
/// (an older message's bytes), as with the ring's loans.
#[derive(Debug)]
#[must_use = "a loan publishes nothing unless committed"]
pub struct QueueLoan<Q: Deref<Target = Queue>> {
    q: Q,
    /// The owner word holding the producer lock (the process that made the loan).
    me: u64,
    /// `tail` once published: the position just past the record (and its padding).
    end: u64,
    /// Payload offset in the data area.
    off: u64,
    len: usize,
    /// Committed (the lock is released).
    done: bool,
}

/// A loan borrowing its queue ([`Queue::loan`]).
pub type Loan<'q> = QueueLoan<&'q Queue>;

/// A loan owning an `Arc` of its queue ([`Queue::loan_owned`]).
pub type OwnedLoan = QueueLoan<Arc<Queue>>;

/// The producer path's view of a loan: one record whose payload is not written, kept.
struct Reserve {
    len: usize,
    off: u64,
    end: Option<u64>,
}

impl Source for Reserve {
    fn count(&self) -> usize {
        1
    }
    fn len(&self, _: usize) -> usize {
        self.len
    }
    unsafe fn fill(&mut self, _: usize, _: &DataArea, off: u64) -> Result<(), QueueError> {
        self.off = off; // the loan's owner writes it
        Ok(())
    }
    fn keep(&mut self, end: u64) -> bool {
        self.end = Some(end);
        true
    }
    fn kept(&self) -> bool {
        self.end.is_some()
    }
}

impl Queue {
    /// Reserves a slot for one message of `len` bytes, waiting at most `timeout` for room
    /// (`None`: forever; `Some(ZERO)`: not at all); `Ok(None)` when none came in time. Fails
    /// with [`QueueError::TooLarge`] if it can never fit. See [`QueueLoan`].
    ///
    /// ```
    /// let q = mmapipc::Queue::heap(4096)?;
    /// let mut loan = q.loan(5, None)?.expect("room");
    /// loan.fill(|slot| slot.copy_from_slice(b"frame"));
    /// loan.commit()?;
    /// assert_eq!(q.try_get()?.as_deref(), Some(&b"frame"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn loan(&self, len: usize, timeout: Option<Duration>) -> Result<Option<Loan<'_>>, QueueError> {
        let Some((me, end, off)) = self.reserve(len, timeout)? else { return Ok(None) };
        Ok(Some(QueueLoan { q: self, me, end, off, len, done: false }))
    }

    /// [`loan`](Self::loan) whose loan owns an `Arc` of the queue (for bindings that hand it
    /// to a garbage collector).
    pub fn loan_owned(
        self: &Arc<Self>,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<OwnedLoan>, QueueError> {
        let Some((me, end, off)) = self.reserve(len, timeout)? else { return Ok(None) };
        Ok(Some(QueueLoan { q: Arc::clone(self), me, end, off, len, done: false }))
    }

    /// The producer path up to the publishing store: `(owner word, end, payload offset)`, with
    /// the producer lock held by this process, or `None` (lock not held) when no room came.
    fn reserve(&self, len: usize, timeout: Option<Duration>) -> Result<Option<(u64, u64, u64)>, QueueError> {
        let block = timeout != Some(Duration::ZERO);
        let mut src = Reserve { len, off: 0, end: None };
        let me = owner::me();
        if self.produce(&mut src, Deadline::after(timeout), block)? == 0 {
            return Ok(None);
        }
        match src.end {
            Some(end) => Ok(Some((me, end, src.off))),
            None => unreachable!("produce reports a reserved record only after keep()"),
        }
    }
}

impl<Q: Deref<Target = Queue>> QueueLoan<Q> {
    /// Payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the payload: writable for `len()` bytes, by this loan's owner alone, until
    /// the loan is committed or dropped (8-byte aligned; null under loom, use `fill` there).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.q.data.ptr(self.off)
    }

    /// Calls `f` on the payload as a mutable slice.
    pub fn fill<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // SAFETY: [off, off + len) is the reserved record's payload, inside the data area
        // (write_locked placed it), beyond `tail` and under the producer lock this process
        // holds: nobody reads or writes it until the commit below publishes it.
        unsafe { self.q.data.fill(self.off, self.len, f) }
    }

    /// Publishes the message (one `tail` store) and releases the producer lock. Refused with
    /// [`QueueError::ForeignLoan`] in a process that did not make the loan (a forked child).
    pub fn commit(mut self) -> Result<(), QueueError> {
        if self.me != owner::me() {
            return Err(QueueError::ForeignLoan);
        }
        let c = self.q.ctrl();
        // SYNC: tail-publish. Release: the record's head and owner words (written by the
        // reservation) and the payload (written through this loan since) happen-before any
        // consumer's Acquire load of `tail` that sees `end`. The one store that commits, as in
        // `write_locked`; the producer lock held since the reservation keeps `tail` ours.
        c.tail.value.store(self.end, Ordering::Release);
        bump(&c.prod_stats.msgs, 1);
        bump(&c.prod_stats.bytes, self.len as u64);
        self.done = true;
        c.prod_lock.lock.unlock(self.me);
        c.not_empty.waiter.notify();
        Ok(())
    }
}

impl<Q: Deref<Target = Queue>> Drop for QueueLoan<Q> {
    /// Abandons an uncommitted loan: releases the producer lock without publishing (a forked
    /// child's copy leaves its parent's lock alone).
    fn drop(&mut self) {
        if !self.done && self.me == owner::me() {
            self.q.ctrl().prod_lock.lock.unlock(self.me);
        }
    }
}
