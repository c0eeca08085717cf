//! The producer: its local state (position, cached head, counters) and the writing calls.

use std::sync::Arc;
use std::time::Duration;

use crate::mem::reuse::is_frame;
use crate::span::Span;
use crate::sync::{fence, Ordering};
use crate::wait::{asymmetric, Deadline};

use super::error::{check_indices, corrupt, RingError};
use super::guards::{DetachedSlot, SlotMut};
use super::handle::{Ring, RingMemory, RUST_SLICE};
use super::layout::{record_size, FLAG_MESSAGE, FLAG_PADDING, RECORD_ALIGN, RECORD_HEADER};
use super::state::{fork_generation, ProducerState};

impl ProducerState {
    /// Free bytes, reloading head only if the cached view shows fewer than `need`.
    #[inline]
    pub(super) fn has_room(&mut self, mem: &RingMemory, need: u64) -> Result<bool, RingError> {
        if mem.capacity - (self.tail - self.cached_head) >= need {
            return Ok(true);
        }
        self.has_room_slow(mem, need)
    }

    /// The cached head says "full": reload it.
    #[cold]
    pub(super) fn has_room_slow(&mut self, mem: &RingMemory, need: u64) -> Result<bool, RingError> {
        let cap = mem.capacity;
        // SYNC: head-release. Acquire: the consumer's reads of the bytes below head happen-before
        // our overwriting them.
        let head = mem.ctrl().consumer.head.load(Ordering::Acquire);
        check_indices(head, self.tail, cap)?;
        // SYNC: reuse-fence. Release: a tool's seqlock walk that reads anything we write into
        // the space this head freed also sees this head when it re-reads it ([`crate::inspect`]).
        fence(Ordering::Release);
        self.cached_head = head;
        if cap - (self.tail - head) >= need {
            return Ok(true);
        }
        if !self.full {
            // Counted once per episode, not per poll: a spinning producer must not keep writing
            // the line the consumer polls.
            self.full = true;
            let c = &mem.ctrl().producer.full_waits;
            // Relaxed: a statistic written only by the producer.
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        Ok(false)
    }

    /// Finds room for the record of a `len`-byte message: returns its offset, or `None` if the
    /// ring is full. May write and publish a padding record first (so the record starts at 0):
    /// at the wrap, or for a frame ([`is_frame`]) whose predecessors since offset 0 the consumer
    /// has released ([`restart_hot`](Self::restart_hot)).
    #[inline]
    pub(super) fn reserve(
        &mut self,
        mem: &RingMemory,
        len: usize,
        publish_padding: bool,
    ) -> Result<Option<u64>, RingError> {
        let rec = record_size(len) as u64;
        let cap = mem.capacity;
        let to_end = cap - self.off;
        if rec > to_end || (self.off != 0 && rec <= self.off && is_frame(rec, cap) && self.restart_hot(mem, rec)?) {
            if !self.has_room(mem, to_end)? {
                return Ok(None);
            }
            // Padding fills the rest of the buffer; its length word counts the skipped bytes.
            mem.store_header(self.off, (to_end - RECORD_HEADER as u64) as u32, FLAG_PADDING);
            self.tail += to_end;
            self.off = 0;
            if publish_padding {
                self.publish_tail(mem);
            }
        }
        if !self.has_room(mem, rec)? {
            return Ok(None);
        }
        Ok(Some(self.take_room(mem, len, rec)))
    }

    /// Whether a frame of `rec` bytes should start at offset 0 instead of our position (`off`,
    /// with `rec <= off`; see [`crate::mem::reuse`]): true when the consumer has released
    /// everything (the ring is empty), so the bytes from 0 on, which the previous frame used, are
    /// free; the padding record in front of the frame then takes `capacity - off` bytes, and the
    /// frame fits in the remaining `off`. When the only unreleased bytes lie between 0 and our
    /// position (the consumer still holds the previous frame), polls for its release for a
    /// moment ([`reuse::Backoff::poll`]).
    #[cold]
    fn restart_hot(&mut self, mem: &RingMemory, rec: u64) -> Result<bool, RingError> {
        let tail = self.tail;
        // Relaxed: our own last store. Records of a batch not published yet are ours: the ring
        // is not empty, and waiting for the consumer would not change that.
        if mem.ctrl().producer.tail.load(Ordering::Relaxed) != tail {
            return Ok(false);
        }
        let load = || -> Result<u64, RingError> {
            // SYNC: head-release (Acquire, as in has_room_slow), then reuse-fence.
            let head = mem.ctrl().consumer.head.load(Ordering::Acquire);
            check_indices(head, tail, mem.capacity)?;
            fence(Ordering::Release);
            Ok(head)
        };
        let mut head = load()?;
        if head != tail && tail - head <= self.off {
            // Only this lap's records since offset 0 are unreleased: the previous frame.
            self.hot.poll(rec, || {
                head = load()?;
                Ok(head == tail)
            })?;
        }
        self.cached_head = head;
        Ok(head == tail)
    }

    /// Takes the `rec` bytes at our position for a `len`-byte message, once `has_room` showed
    /// them free (and they lie before the end of the buffer); returns their offset.
    #[inline]
    pub(super) fn take_room(&mut self, mem: &RingMemory, len: usize, rec: u64) -> u64 {
        self.full = false;
        if len % RECORD_ALIGN != 0 {
            // Zero the record's last word before the payload covers its start: every byte of
            // the record is then written by this lap, so the padding after a payload carries no
            // stale bytes of an older message, and no 8-byte word is left half an older atomic
            // header and half plain payload (mixed atomic and non-atomic bytes in one word, which
            // Miri's weak-memory emulation cannot model; every atomic access to the data area is
            // an aligned 8-byte header word).
            // SAFETY: has_room showed [off, off + rec) released by the consumer and unpublished,
            // so it is ours alone; off + rec <= capacity and rec >= 16 (len > 0), so the word is
            // in bounds.
            unsafe { mem.data.copy_in(self.off + rec - 8, &[0; 8]) };
        }
        self.off
    }

    /// Copies `data` into the record taken at `off` ([`reserve`](Self::reserve) or
    /// [`take_room`](Self::take_room)), frames it and publishes it.
    #[inline]
    pub(super) fn write_record(&mut self, mem: &RingMemory, off: u64, data: &[u8]) {
        // SAFETY: the record at `off` was taken for `data.len()` bytes (off + record <=
        // capacity), released by the consumer, and nobody else writes it until we publish.
        unsafe { mem.data.copy_in(off + RECORD_HEADER as u64, data) };
        self.push(mem, data.len());
        self.commit(mem, 1, data.len() as u64);
    }

    /// Writes a message header for a record of `len` at our position and advances (unpublished).
    #[inline]
    pub(super) fn push(&mut self, mem: &RingMemory, len: usize) {
        let rec = record_size(len) as u64;
        mem.store_header(self.off, len as u32, FLAG_MESSAGE);
        self.tail += rec;
        self.off += rec;
        if self.off == mem.capacity {
            self.off = 0;
        }
    }

    #[inline]
    pub(super) fn publish_tail(&self, mem: &RingMemory) {
        // SYNC: tail-publish. Release: every header and payload byte written below `tail`
        // happens-before the consumer's Acquire load that observes it.
        mem.ctrl().producer.tail.store(self.tail, Ordering::Release);
    }

    /// Publishes, updates counters, wakes a sleeping consumer.
    #[inline]
    pub(super) fn commit(&mut self, mem: &RingMemory, msgs: u64, bytes: u64) {
        let p = &mem.ctrl().producer;
        self.messages = self.messages.wrapping_add(msgs);
        self.bytes = self.bytes.wrapping_add(bytes);
        // Relaxed: statistics, written only by the producer, on the producer's own line, just
        // before the tail store so that all three stores drain with one ownership transfer.
        p.messages.store(self.messages, Ordering::Relaxed);
        p.bytes.store(self.bytes, Ordering::Relaxed);
        self.publish_tail(mem);
        asymmetric::notify(&mem.ctrl().wait.data);
    }
}

impl Ring {
    pub(super) fn check_len(&self, len: usize) -> Result<u64, RingError> {
        if len > self.max_message_size() {
            return Err(RingError::TooLarge { len, max: self.max_message_size() });
        }
        Ok(record_size(len) as u64)
    }

    /// Reserves a slot of `len` bytes without waiting: `None` if the ring is full now.
    /// Fill the slot in place, then [`SlotMut::commit`]; dropping it uncommitted writes nothing.
    pub fn try_loan(&mut self, len: usize) -> Result<Option<SlotMut<'_>>, RingError> {
        self.check_len(len)?;
        self.producer()?;
        let mem = &*self.mem;
        let p = self.prod.as_mut().expect("claimed above");
        match p.reserve(mem, len, true)? {
            None => Ok(None),
            Some(off) => Ok(Some(SlotMut::new(self, off, len))),
        }
    }

    /// Reserves a slot of `len` bytes, waiting for room as long as it takes.
    pub fn loan(&mut self, len: usize) -> Result<SlotMut<'_>, RingError> {
        match self.loan_timeout(len, None)? {
            Some(s) => Ok(s),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Reserves a slot of `len` bytes, waiting at most `timeout` (`None`: forever).
    pub fn loan_timeout(&mut self, len: usize, timeout: Option<Duration>) -> Result<Option<SlotMut<'_>>, RingError> {
        self.check_len(len)?;
        let deadline = Deadline::after(timeout);
        let mem = self.mem.clone();
        loop {
            if let Some(off) = self.producer()?.reserve(&mem, len, true)? {
                return Ok(Some(SlotMut::new(self, off, len)));
            }
            if !self.wait_writable_until(len, deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Writes one message if there is room now. `Ok(false)`: the ring is full.
    ///
    /// A frame (a message of 4 MiB or more and over a third of the capacity) may first poll for a moment (1 ns per
    /// 64 bytes) for the consumer to release the previous frame, so as to write over its bytes
    /// (see `mem::reuse`); every write call does the same.
    ///
    /// Fails with [`RingError::TooLarge`] if `data` can never fit (longer than
    /// [`max_message_size`](Self::max_message_size)).
    #[inline]
    pub fn try_write(&mut self, data: &[u8]) -> Result<bool, RingError> {
        // Fast path, kept small enough to inline into the caller's loop: the role is held and
        // the record fits before the end of the buffer. Claiming, padding at the wrap and errors
        // are in the cold path. Reloading head when the cached value shows no room stays here:
        // a producer that keeps the ring full needs it on nearly every message.
        let mem = &*self.mem;
        if let Some(p) = &mut self.prod {
            let len = data.len();
            let rec = record_size(len.min(mem.capacity as usize)) as u64;
            // (rec <= capacity - off also bounds len below max_message_size.) Frames (longer
            // than frame_over) take the cold path, where `reserve` chooses where they go; one
            // bound for both keeps the fast path at one comparison.
            if p.claim.generation == fork_generation() && rec <= (mem.capacity - p.off).min(mem.frame_over) {
                if !p.has_room(mem, rec)? {
                    return Ok(false);
                }
                let off = p.take_room(mem, len, rec);
                p.write_record(mem, off, data);
                return Ok(true);
            }
        }
        self.try_write_slow(data)
    }

    #[cold]
    #[inline(never)]
    fn try_write_slow(&mut self, data: &[u8]) -> Result<bool, RingError> {
        self.check_len(data.len())?;
        self.producer()?;
        // Split borrows instead of cloning the Arc (an atomic read-modify-write).
        let mem = &*self.mem;
        let p = self.prod.as_mut().expect("claimed above");
        match p.reserve(mem, data.len(), true)? {
            None => Ok(false),
            Some(off) => {
                p.write_record(mem, off, data);
                Ok(true)
            }
        }
    }

    /// Writes one message, waiting for room as long as it takes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), RingError> {
        self.write_timeout(data, None).map(|_| ())
    }

    /// Writes one message, waiting at most `timeout` (`None`: forever). `Ok(false)`: timed out.
    pub fn write_timeout(&mut self, data: &[u8], timeout: Option<Duration>) -> Result<bool, RingError> {
        let deadline = Deadline::after(timeout);
        loop {
            if self.try_write(data)? {
                return Ok(true);
            }
            if !self.wait_writable_until(data.len(), deadline, None)? {
                return Ok(false);
            }
        }
    }

    /// Writes as many of `messages`, in order, as fit now, with a single publication of the
    /// tail (and at most one wake-up). Returns how many were written.
    ///
    /// Checks every length first: if any message can never fit, nothing is written and the
    /// error is [`RingError::TooLarge`].
    ///
    /// ```
    /// let mut ring = mmapipc::Ring::heap(64)?; // 64 bytes: four 8-byte messages (16 with framing)
    /// let msgs: Vec<[u8; 8]> = (0..6u8).map(|i| [i; 8]).collect();
    /// assert_eq!(ring.write_batch(&msgs)?, 4);
    /// let mut got = Vec::new();
    /// assert_eq!(ring.read_batch(10, |m| got.push(m[0]))?, 4);
    /// assert_eq!(got, [0, 1, 2, 3]);
    /// assert!(matches!(ring.write_batch(&[vec![0u8; 57]]), Err(mmapipc::RingError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_batch<B: AsRef<[u8]>>(&mut self, messages: &[B]) -> Result<usize, RingError> {
        for m in messages {
            self.check_len(m.as_ref().len())?;
        }
        let mem = self.mem.clone();
        let p = self.producer()?;
        let mut n = 0usize;
        let mut bytes = 0u64;
        for m in messages {
            let m = m.as_ref();
            // A padding record is published with the batch (or alone if nothing follows).
            match p.reserve(&mem, m.len(), false)? {
                None => break,
                Some(off) => {
                    // SAFETY: as in try_write: the reserved range is ours until published.
                    unsafe { mem.data.copy_in(off + RECORD_HEADER as u64, m) };
                    p.push(&mem, m.len());
                    n += 1;
                    bytes += m.len() as u64;
                }
            }
        }
        // Publish even when n == 0: a padding record written above must become visible so the
        // consumer can pass it.
        if n == 0 {
            p.publish_tail(&mem);
        } else {
            p.commit(&mem, n as u64, bytes);
        }
        Ok(n)
    }

    /// Waits until a message of `len` bytes could make progress (room for it, or for the padding
    /// record that precedes it at the wrap), at most `timeout`. `Ok(false)`: timed out.
    /// Returns at once with `Ok(true)` if there is room already.
    pub fn wait_writable(&mut self, len: usize, timeout: Option<Duration>) -> Result<bool, RingError> {
        self.wait_writable_until(len, Deadline::after(timeout), None)
    }

    /// [`wait_writable`](Self::wait_writable) that also returns `Ok(true)` once `stop` is set
    /// (checked whenever the wait wakes; [`wake_waiters`](Self::wake_waiters) wakes it): for a
    /// binding whose handle may be closed by another thread while it waits.
    pub fn wait_writable_or_stop(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<bool, RingError> {
        self.wait_writable_until(len, Deadline::after(timeout), Some(stop))
    }

    pub(super) fn wait_writable_until(
        &mut self,
        len: usize,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, RingError> {
        let rec = self.check_len(len)?;
        let mem = self.mem.clone();
        let p = self.producer()?;
        let cap = mem.capacity;
        let to_end = cap - p.off;
        let need = if rec > to_end { to_end } else { rec };
        let tail = p.tail;
        let ctrl = mem.ctrl();
        let slice = deadline.remaining().map_or(RUST_SLICE, |r| r.min(RUST_SLICE));
        p.window.expect(len as u64);
        let ready = || {
            // SeqCst: pairs with the stopper's store before its wake (see `wake_waiters`).
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                return Some(Ok(()));
            }
            // SYNC: head-release (Acquire, as in has_room).
            let head = ctrl.consumer.head.load(Ordering::Acquire);
            match tail.checked_sub(head) {
                Some(used) if used <= cap => (cap - used >= need).then_some(Ok(())),
                _ => Some(Err(())),
            }
        };
        loop {
            match asymmetric::wait_until(&ctrl.wait.space, &p.window, deadline, slice, ready) {
                Some(Ok(())) => return Ok(true),
                // Corrupt indices: let has_room report them with details.
                Some(Err(())) => return p.has_room(&mem, need).map(|_| true),
                None => {
                    if deadline.expired() {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Bytes free in the ring now (framing not subtracted: a message of `n` bytes needs
    /// `record_size(n)`, plus the rest of the buffer as padding when it would wrap).
    pub fn available_write(&self) -> usize {
        let (head, tail) = self.indices();
        (self.mem.capacity.saturating_sub(tail.saturating_sub(head))) as usize
    }

    /// [`loan_timeout`](Self::loan_timeout) returning a [`DetachedSlot`] instead of a borrow.
    /// `Some(ZERO)` does not wait.
    pub fn loan_detached_timeout(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<DetachedSlot>, RingError> {
        self.check_len(len)?;
        let deadline = Deadline::after(timeout);
        let mem = self.mem.clone();
        loop {
            let p = self.producer()?;
            if let Some(off) = p.reserve(&mem, len, true)? {
                let tail = p.tail;
                let ptr = mem.data.ptr(off + RECORD_HEADER as u64);
                return Ok(Some(DetachedSlot { mem, span: Span::new(ptr, len), off, tail }));
            }
            if timeout == Some(Duration::ZERO) || !self.wait_writable_until(len, deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Publishes a slot from [`loan_detached_timeout`](Self::loan_detached_timeout). Refused
    /// (nothing published) if the slot belongs to another ring, or this handle wrote anything
    /// since the loan (the slot may have been overwritten).
    pub fn commit_detached(&mut self, slot: DetachedSlot) -> Result<(), RingError> {
        let mem = self.mem.clone();
        let p = self.producer()?;
        if !Arc::ptr_eq(&slot.mem, &mem) || p.off != slot.off || p.tail != slot.tail {
            return Err(corrupt("stale loan: the producer wrote since the slot was loaned"));
        }
        p.push(&mem, slot.len());
        p.commit(&mem, 1, slot.len() as u64);
        Ok(())
    }
}
