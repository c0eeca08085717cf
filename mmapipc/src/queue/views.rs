//! Zero-copy views: records stamped TAKEN with this process's owner word, read in place, and
//! released (`view-done`) when the view drops.
//!
//! One view type, [`QueueView`], over whatever keeps the queue alive: a borrow ([`View`]) or an
//! `Arc` ([`OwnedView`], for bindings that hand views to a garbage collector). [`FixedViews`]
//! holds a run of equally spaced records of one length as one view.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::consumer::{any_record, Take};
use super::error::QueueError;
use super::handle::Queue;
use super::records::{head_word, record_size, split_head, RECORD_HEADER, STATE_DONE, STATE_TAKEN};
use crate::mem::{Bytes, FixedRun};
use crate::owner;
use crate::sync::Ordering;
use crate::wait::Deadline;

/// A zero-copy view of one message in the ring, holding its queue through `Q` (a `&Queue` or an
/// `Arc<Queue>`). Derefs to its bytes; releases the slot on drop.
///
/// Space is reclaimed in ring order, so a view held for long pins its slot *and everything
/// written after it*: once producers wrap around to it they wait (or time out) until it is
/// released. Keep views short-lived, or copy what must outlive the next lap.
#[derive(Debug)]
pub struct QueueView<Q: Deref<Target = Queue>> {
    q: Q,
    /// Position of the record.
    pub(super) pos: u64,
    /// Its payload, held in place.
    bytes: Bytes,
}

/// A view borrowing its queue ([`Queue::try_get_view`]).
pub type View<'q> = QueueView<&'q Queue>;

/// A view owning an `Arc` of its queue ([`Queue::get_owned_views`]).
pub type OwnedView = QueueView<Arc<Queue>>;

impl<Q: Deref<Target = Queue>> QueueView<Q> {
    /// Pointer to the payload (valid for reads of `len()` bytes while the view lives).
    pub fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }
}

impl<Q: Deref<Target = Queue>> Deref for QueueView<Q> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

/// The position of a view that holds no record (a take that failed before its commit).
const NOT_TAKEN: u64 = u64::MAX;

impl<Q: Deref<Target = Queue>> Drop for QueueView<Q> {
    fn drop(&mut self) {
        // The hold on the bytes ends before the release hands them back to producers.
        self.bytes.end();
        if self.pos != NOT_TAKEN {
            self.q.release_raw(self.pos);
        }
    }
}

/// A run of equally spaced records of one length, held in place (see
/// [`Queue::get_fixed_views`]): a [`FixedRun`] (payload `i` at `as_ptr() + i * stride()`, the
/// stride being the record size: 16-byte header + payload, rounded up to 8). Dropping it
/// releases every record of the run.
#[derive(Debug)]
pub struct FixedViews {
    q: Arc<Queue>,
    /// Position of the first record (record `i` is at `pos + i * stride`).
    pub(super) pos: u64,
    run: FixedRun,
}

impl Deref for FixedViews {
    type Target = FixedRun;
    fn deref(&self) -> &FixedRun {
        &self.run
    }
}

impl Drop for FixedViews {
    fn drop(&mut self) {
        let (count, stride) = (self.run.count() as u64, self.run.stride() as u64);
        self.run.end(); // as for QueueView
        let mut any = false;
        for i in 0..count {
            any |= self.q.mark_done(self.pos + i * stride);
        }
        if any {
            self.q.advance_reclaim(false);
        }
    }
}

impl Queue {
    /// Takes up to `max` messages as views (records stamped TAKEN by this process): position
    /// and payload of each. The caller must pass each position to
    /// [`release_raw`](Self::release_raw) exactly once.
    fn take_views(&self, max: usize, deadline: Deadline, block: bool) -> Result<Vec<(u64, Bytes)>, QueueError> {
        let mut v = Vec::new();
        self.consume(max, Take::View, deadline, block, any_record, |pos, off, len| {
            // SAFETY: take_locked validated the record (inside the data area) and stamped it
            // TAKEN by us: no producer writes it until it is DONE, which only the view's drop
            // makes it; the view holds the queue, which keeps the memory.
            v.push((pos, unsafe { self.data.bytes(off, len) }))
        })?;
        Ok(v)
    }

    /// Takes the next message as a zero-copy view; its slot is not reused until the view drops.
    ///
    /// ```
    /// let q = mmapipc::Queue::heap(4096)?;
    /// q.try_put(b"frame")?;
    /// let v = q.try_get_view()?.expect("one message");
    /// assert_eq!(&*v, b"frame");
    /// drop(v); // releases the slot
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_get_view(&self) -> Result<Option<View<'_>>, QueueError> {
        Ok(self.try_get_views(1)?.pop())
    }

    /// Up to `max` messages now as views, under one lock acquisition.
    pub fn try_get_views(&self, max: usize) -> Result<Vec<View<'_>>, QueueError> {
        self.get_views_deadline(max, Deadline::after(Some(Duration::ZERO)), false)
    }

    /// Up to `max` messages as views, waiting up to `timeout` (`None`: forever) for the first.
    pub fn get_views_timeout(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<View<'_>>, QueueError> {
        self.get_views_deadline(max, Deadline::after(timeout), true)
    }

    fn get_views_deadline(&self, max: usize, deadline: Deadline, block: bool) -> Result<Vec<View<'_>>, QueueError> {
        Ok(self
            .take_views(max, deadline, block)?
            .into_iter()
            .map(|(pos, bytes)| QueueView { q: self, pos, bytes })
            .collect())
    }

    /// Like [`get_views_timeout`](Self::get_views_timeout) but the views own an `Arc` of the
    /// queue (for bindings that hand views to a garbage collector). `timeout` `Some(ZERO)`
    /// does not block.
    pub fn get_owned_views(
        self: &Arc<Self>,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<OwnedView>, QueueError> {
        let mut out = Vec::new();
        self.get_owned_views_into(max, timeout, &mut out)?;
        Ok(out)
    }

    /// [`get_owned_views`](Self::get_owned_views) appending to `out` (a buffer the caller
    /// reuses: no allocation per call); returns how many were appended.
    pub fn get_owned_views_into(
        self: &Arc<Self>,
        max: usize,
        timeout: Option<Duration>,
        out: &mut Vec<OwnedView>,
    ) -> Result<usize, QueueError> {
        let block = timeout != Some(Duration::ZERO);
        let start = out.len();
        let r = self.consume(max, Take::View, Deadline::after(timeout), block, any_record, |pos, off, len| {
            // SAFETY: as in take_views.
            let bytes = unsafe { self.data.bytes(off, len) };
            out.push(QueueView { q: Arc::clone(self), pos, bytes })
        });
        if r.is_err() {
            // The take failed before its commit (`read` not moved): the records stay waiting,
            // so these views must not release them.
            for mut v in out.drain(start..) {
                v.bytes.end();
                v.pos = NOT_TAKEN;
            }
        }
        r
    }

    /// Takes up to `max` messages of exactly `len` bytes each that lie at equal distances in
    /// the ring, as **one** zero-copy view: payload `i` is at `as_ptr() + i * stride()`, so
    /// bindings can expose the run as an array of fixed-size records (NumPy reads a batch of
    /// ticks as one structured array). The records are held (stamped TAKEN by this process, like
    /// [`get_owned_views`](Self::get_owned_views)) until the [`FixedViews`] drops; none is reused
    /// before.
    ///
    /// The run is what the ring holds contiguously from the oldest waiting record: it stops at
    /// the ring's wrap (a padding record, or a record that does not fit before the end) and
    /// before a record of another length; the rest is left for the next call. So a batch may be
    /// shorter than what is waiting, and holds at least one record when it is `Some`.
    ///
    /// Waits up to `timeout` (`None`: forever; `Some(ZERO)`: not at all) for a first record;
    /// `Ok(None)` when none came. A **first** record of another length is taken, discarded and
    /// reported as [`QueueError::WrongSize`] (a channel of fixed-size records never holds one;
    /// taking it keeps it from blocking every later batch).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// let q = Arc::new(mmapipc::Queue::heap(4096)?);
    /// for i in 0..5u64 {
    ///     q.try_put(&i.to_le_bytes())?;
    /// }
    /// let batch = q.get_fixed_views(10, 8, Some(std::time::Duration::ZERO))?.expect("five records");
    /// assert_eq!((batch.count(), batch.stride()), (5, 24));
    /// assert_eq!(batch.get(3), Some(&3u64.to_le_bytes()[..]));
    /// drop(batch); // releases the five slots
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_fixed_views(
        self: &Arc<Self>,
        max: usize,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<FixedViews>, QueueError> {
        let block = timeout != Some(Duration::ZERO);
        let stride = record_size(len);
        // Where the run starts (ring index) and the first record's length, set when the first
        // record is offered: every later record must sit `stride` further on with length `len`.
        let mut run: Option<(u64, u32)> = None;
        let accept = |idx: u64, l: u32, n: usize| {
            if n == 0 {
                run = Some((idx, l)); // the first record is always taken (checked below)
                return true;
            }
            matches!(run, Some((idx0, l0)) if l0 as usize == len && l as usize == len && idx == idx0 + n as u64 * stride)
        };
        let mut first: Option<(u64, u64, usize)> = None; // position, payload offset, length
        let mut count = 0usize;
        let f = |pos: u64, off: u64, l: usize| {
            match first {
                None => first = Some((pos, off, l)),
                // Equal spacing in the ring and no padding between (padding would restart the
                // index at 0): the positions are equally spaced too.
                Some((pos0, _, _)) => debug_assert_eq!(pos, pos0 + count as u64 * stride),
            }
            count += 1;
        };
        self.consume(max, Take::View, Deadline::after(timeout), block, accept, f)?;
        let Some((pos, off, first_len)) = first else { return Ok(None) };
        let span = if first_len == len { (count - 1) * stride as usize + len } else { first_len };
        // SAFETY: the `count` records from `pos` were validated by take_locked (each inside the
        // data area, so the span from the first payload to the end of the last one is too) and
        // stamped TAKEN by us: nobody writes them until this value's drop releases them, and it
        // holds the queue.
        let bytes = unsafe { self.data.bytes(off, span) };
        let run_len = if first_len == len { len } else { first_len };
        let batch = FixedViews { q: Arc::clone(self), pos, run: FixedRun::new(bytes, count, stride as usize, run_len) };
        if first_len != len {
            drop(batch); // releases the odd record: it is discarded
            return Err(QueueError::WrongSize { len: first_len, expected: len });
        }
        Ok(Some(batch))
    }

    /// Marks the viewed record at `pos` DONE and reclaims what it can.
    fn release_raw(&self, pos: u64) {
        if self.mark_done(pos) {
            self.advance_reclaim(false);
        }
    }

    /// Marks the viewed record at `pos` DONE if this process holds it; returns whether it did.
    fn mark_done(&self, pos: u64) -> bool {
        let idx = pos % self.cap;
        if idx + RECORD_HEADER as u64 > self.cap {
            return false;
        }
        // A forked child that inherited a view must not release its parent's slot.
        if self.owner(idx).load(Ordering::Relaxed) != owner::me() {
            return false;
        }
        let head = self.head(idx);
        // Relaxed: this process stamped the word TAKEN (under the consumer lock) before the view
        // existed, so that store happens-before this drop (program order, or whatever moved the
        // view to this thread); nobody else writes the word while the view is held.
        let (len, state) = split_head(head.load(Ordering::Relaxed));
        if state != STATE_TAKEN {
            return false;
        }
        // SYNC: view-done. Release: our reads through the view happen-before an advancer's
        // Acquire load of this state, and so before a producer reuses the slot. The whole word is
        // compared, so a changed `len` (a hostile peer) makes it fail like a changed state.
        head.compare_exchange(
            head_word(len, STATE_TAKEN),
            head_word(len, STATE_DONE),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_ok()
    }
}
