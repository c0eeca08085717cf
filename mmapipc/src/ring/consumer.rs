//! The consumer: its local state (position, cached tail, held bytes, counters) and the reading
//! calls.

use std::time::Duration;

use crate::sync::Ordering;
use crate::wait::{asymmetric, Deadline};

use super::error::{check_indices, corrupt, RingError};
use super::guards::{FixedBatch, RecvGuard};
use super::handle::{Ring, RingMemory, RUST_SLICE};
use super::layout::{align8, Role, FLAG_MESSAGE, FLAG_PADDING, RECORD_HEADER};
use super::state::{fork_generation, ConsumerState};
use crate::mem::FixedRun;

/// What the consumer found at its position.
pub(super) enum Peek {
    Empty,
    /// Payload at `off`, `len` bytes, record of `rec` bytes.
    Message {
        off: u64,
        len: usize,
        rec: u64,
    },
}

impl ConsumerState {
    /// Looks at the record at our position, skipping one padding record. Never advances past a
    /// message; validates everything it reads.
    #[inline]
    pub(super) fn peek(&mut self, mem: &RingMemory) -> Result<Peek, RingError> {
        let cap = mem.capacity;
        // At most two rounds: one padding record (which ends at the buffer's end and is never at
        // offset 0), then a message.
        for _ in 0..2 {
            let mut avail = self.cached_tail - self.head;
            if avail == 0 {
                // Ask for the line the next record's header will be in while we look at tail:
                // when tail moves, the two cache misses (tail, then header) overlap instead of
                // following each other, which is most of a spinning reader's round trip.
                mem.data.prefetch(self.off);
                // SYNC: tail-publish. Acquire: the producer's writes below tail are visible.
                let tail = mem.ctrl().producer.tail.load(Ordering::Acquire);
                check_indices(self.head - self.held, tail, cap)?;
                if tail < self.head {
                    return Err(corrupt(format!("tail {tail} moved backwards past head {}", self.head)));
                }
                self.cached_tail = tail;
                avail = tail - self.head;
                if avail == 0 {
                    if !self.empty {
                        // Once per episode, not per poll (see ProducerState::has_room).
                        self.empty = true;
                        let c = &mem.ctrl().consumer.empty_waits;
                        // Relaxed: a statistic written only by the consumer.
                        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                    }
                    return Ok(Peek::Empty);
                }
                self.empty = false;
            }
            if avail < RECORD_HEADER as u64 {
                return Err(corrupt(format!("{avail} bytes published, less than a record header")));
            }
            let (len, flags) = mem.load_header(self.off);
            let to_end = cap - self.off;
            match flags {
                FLAG_MESSAGE => {
                    let rec = align8(u64::from(len) + RECORD_HEADER as u64);
                    if rec > to_end || rec > avail {
                        return Err(corrupt(format!(
                            "record of {len} bytes at offset {} exceeds the buffer or the {avail} published bytes",
                            self.off
                        )));
                    }
                    return Ok(Peek::Message { off: self.off + RECORD_HEADER as u64, len: len as usize, rec });
                }
                FLAG_PADDING => {
                    if self.off == 0 || u64::from(len) + RECORD_HEADER as u64 != to_end || to_end > avail {
                        return Err(corrupt(format!("bad padding record of {len} bytes at offset {}", self.off)));
                    }
                    self.head += to_end;
                    self.off = 0;
                }
                other => {
                    return Err(corrupt(format!("unknown record flags {other:#x} at offset {}", self.off)));
                }
            }
        }
        Err(corrupt("two padding records in a row"))
    }

    /// Advances past a record just peeked (unpublished).
    #[inline]
    pub(super) fn advance(&mut self, mem: &RingMemory, rec: u64, len: usize) {
        self.head += rec;
        self.off += rec;
        if self.off == mem.capacity {
            self.off = 0;
        }
        self.pending_msgs += 1;
        self.pending_bytes += len as u64;
    }

    /// After a peek from position `before` that found a message behind a padding record:
    /// publishes the position in front of the message (everything before it is consumed), so
    /// that the padding's bytes, the other half of a ring of two frames (`mem::reuse`), are the
    /// producer's while the message is read. Once per lap of the buffer.
    #[inline]
    pub(super) fn release_padding(&mut self, mem: &RingMemory, before: u64) {
        if self.head != before && self.held == 0 {
            self.publish(mem);
        }
    }

    /// Publishes our position (minus any detached record) and wakes a sleeping producer.
    #[inline]
    pub(super) fn publish(&mut self, mem: &RingMemory) {
        let c = &mem.ctrl().consumer;
        // SYNC: head-release. Release: our reads of every byte below head happen-before the
        // producer's Acquire load that lets it overwrite them.
        c.head.store(self.head - self.held, Ordering::Release);
        if self.pending_msgs != 0 {
            // Relaxed: statistics, written only by the consumer, on its own line.
            self.messages = self.messages.wrapping_add(self.pending_msgs);
            self.bytes = self.bytes.wrapping_add(self.pending_bytes);
            c.messages.store(self.messages, Ordering::Relaxed);
            c.bytes.store(self.bytes, Ordering::Relaxed);
            self.pending_msgs = 0;
            self.pending_bytes = 0;
        }
        asymmetric::notify(&mem.ctrl().wait.space);
    }
}

impl Ring {
    /// Receives one message if one is ready: a guard that derefs to the payload in place and
    /// releases its space when dropped. `Ok(None)`: the ring is empty.
    #[inline]
    pub fn try_read(&mut self) -> Result<Option<RecvGuard<'_>>, RingError> {
        // Fast path, small enough to inline: the role is held with nothing detached, the cached
        // tail shows a record, and its header is a message that lies inside the published
        // bytes and the buffer. Padding, reloading tail, corruption and claiming are cold.
        let mem = &*self.mem;
        if let Some(c) = &mut self.cons {
            let avail = c.cached_tail - c.head;
            if c.claim.generation == fork_generation() && c.held == 0 && avail >= RECORD_HEADER as u64 {
                let (len, flags) = mem.load_header(c.off);
                let rec = align8(u64::from(len) + RECORD_HEADER as u64);
                if flags == FLAG_MESSAGE && rec <= avail && rec <= mem.capacity - c.off {
                    let off = c.off + RECORD_HEADER as u64;
                    return Ok(Some(RecvGuard::new(self, off, len as usize, rec)));
                }
            }
        }
        self.try_read_slow()
    }

    #[cold]
    #[inline(never)]
    fn try_read_slow(&mut self) -> Result<Option<RecvGuard<'_>>, RingError> {
        self.consumer()?;
        // Split borrows instead of cloning the Arc.
        let mem = &*self.mem;
        let c = self.cons.as_mut().expect("claimed above");
        let before = c.head;
        match c.peek(mem)? {
            Peek::Empty => {
                if c.head - c.held != mem.ctrl().consumer.head.load(Ordering::Relaxed) {
                    c.publish(mem); // we skipped padding: give that space back
                }
                Ok(None)
            }
            Peek::Message { off, len, rec } => {
                c.release_padding(mem, before);
                Ok(Some(RecvGuard::new(self, off, len, rec)))
            }
        }
    }

    /// Receives one message, waiting as long as it takes.
    pub fn read(&mut self) -> Result<RecvGuard<'_>, RingError> {
        match self.read_timeout(None)? {
            Some(g) => Ok(g),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Receives one message, waiting at most `timeout` (`None`: forever). `Ok(None)`: timed out.
    pub fn read_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<RecvGuard<'_>>, RingError> {
        let deadline = Deadline::after(timeout);
        let mem = self.mem.clone();
        loop {
            let c = self.consumer()?;
            let before = c.head;
            if let Peek::Message { off, len, rec } = c.peek(&mem)? {
                c.release_padding(&mem, before);
                return Ok(Some(RecvGuard::new(self, off, len, rec)));
            }
            if c.head - c.held != mem.ctrl().consumer.head.load(Ordering::Relaxed) {
                c.publish(&mem);
            }
            if !self.wait_readable_until(deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Receives up to `max` messages that are ready now, calling `f` on each payload in place,
    /// then releases them all with a single publication of head. Returns how many were read.
    pub fn read_batch(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize, RingError> {
        let mem = self.mem.clone();
        let c = self.consumer()?;
        let start = c.head;
        let mut n = 0;
        let mut result = Ok(());
        while n < max {
            let before = c.head;
            match c.peek(&mem) {
                Ok(Peek::Empty) => break,
                Ok(Peek::Message { off, len, rec }) => {
                    // The messages before were handed to `f` already.
                    c.release_padding(&mem, before);
                    // SAFETY: peek validated off + len <= capacity and that the record is
                    // published and not released: the protocol gives these bytes to us until
                    // we publish head below, and `mem` keeps them mapped.
                    let mut bytes = unsafe { mem.data.bytes(off, len) };
                    f(bytes.as_slice());
                    bytes.end();
                    c.advance(&mem, rec, len);
                    n += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if c.head != start {
            c.publish(&mem);
        }
        result.map(|_| n)
    }

    /// Waits until a message may be ready (at most `timeout`). `Ok(false)`: timed out.
    /// Returns at once with `Ok(true)` if data is published already.
    pub fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, RingError> {
        self.wait_readable_until(Deadline::after(timeout), None)
    }

    /// [`wait_readable`](Self::wait_readable) that also returns `Ok(true)` once `stop` is set
    /// (see [`wait_writable_or_stop`](Self::wait_writable_or_stop)).
    pub fn wait_readable_or_stop(
        &mut self,
        timeout: Option<Duration>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<bool, RingError> {
        self.wait_readable_until(Deadline::after(timeout), Some(stop))
    }

    /// Wakes every waiter sleeping on this ring's two futex words, in every process (each
    /// re-checks its condition and sleeps again if nothing changed). Set a waiter's `stop` flag
    /// first: a waiter then either sees the flag or is woken (or never sleeps).
    pub fn wake_waiters(&self) {
        let ctrl = self.mem.ctrl();
        for w in [&ctrl.wait.data, &ctrl.wait.space] {
            // Release: a sleeper that reads the bumped seq (Acquire) sees the stop flag stored
            // before it; one that read the old seq has FUTEX_WAIT fail or is woken here.
            w.seq.fetch_add(1, Ordering::Release);
            crate::wait::wake_all(&w.seq);
        }
    }

    pub(super) fn wait_readable_until(
        &mut self,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, RingError> {
        let mem = self.mem.clone();
        let c = self.consumer()?;
        let head = c.head;
        let ctrl = mem.ctrl();
        let slice = deadline.remaining().map_or(RUST_SLICE, |r| r.min(RUST_SLICE));
        // The next message is likely the size of those before it.
        c.window.expect(c.bytes.checked_div(c.messages).unwrap_or(0));
        loop {
            let ready = || {
                // SeqCst: pairs with the stopper's store before its wake (see `wake_waiters`).
                let stopped = stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
                // SYNC: tail-publish (Acquire; the actual read reloads it anyway).
                (stopped || ctrl.producer.tail.load(Ordering::Acquire) != head).then_some(())
            };
            match asymmetric::wait_until(&ctrl.wait.data, &c.window, deadline, slice, ready) {
                Some(()) => return Ok(true),
                None => {
                    if deadline.expired() {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Discards every published message, as the consumer: `head := tail`.
    ///
    /// Safe while the producer is active: only published records are dropped (a message being
    /// written is committed after them and delivered normally), and the producer only ever sees
    /// more room. If this handle does not hold the consumer role it claims it for the duration
    /// of the call; if another live process consumes, this fails with
    /// [`RingError::AlreadyAttached`] (ask the consumer to clear instead). A detached record
    /// held by this handle is released.
    pub fn clear(&mut self) -> Result<(), RingError> {
        let had = self.holds(Role::Consumer);
        let mem = self.mem.clone();
        let c = self.consumer()?;
        // SYNC: tail-publish. Acquire: we release bytes up to this tail, which must not be
        // reordered before the producer's writes we are discarding.
        let tail = mem.ctrl().producer.tail.load(Ordering::Acquire);
        check_indices(c.head, tail, mem.capacity)?;
        // Messages dropped: everything the producer counted and the consumer did not.
        let s = self.stats();
        let c = self.cons.as_mut().expect("claimed above");
        c.pending_msgs = s.messages_in.wrapping_sub(s.messages_out);
        c.pending_bytes = s.bytes_in.wrapping_sub(s.bytes_out);
        c.head = tail;
        c.off = tail % mem.capacity;
        c.cached_tail = tail;
        c.held = 0;
        c.publish(&mem);
        if !had {
            self.release_consumer();
        }
        Ok(())
    }
}

impl Ring {
    /// Takes up to `max` consecutive messages of exactly `len` bytes each that lie contiguously in
    /// the buffer (the run stops at the wrap or at a message of another length) and keeps them
    /// held past the call, like [`RecvGuard::detach`]: they stay valid, and are not released to
    /// the producer, until the next consumer operation on this handle. The payloads are then an
    /// array of records with a fixed stride, which bindings expose without copying (NumPy reads a
    /// batch of ticks as one structured array).
    ///
    /// `Ok(None)`: nothing to read. A first message of another length is consumed and reported
    /// as [`RingError::WrongSize`] (a typed channel of fixed-size records never holds one).
    pub fn read_fixed_batch_detached(&mut self, max: usize, len: usize) -> Result<Option<FixedBatch>, RingError> {
        let mem = self.mem.clone();
        let c = self.consumer()?;
        let mut first: Option<(u64, u64)> = None; // (payload offset, head at the first record)
        let mut count = 0usize;
        let mut stride = 0u64;
        let mut result = Ok(());
        while count < max {
            match c.peek(&mem) {
                Ok(Peek::Empty) => break,
                Ok(Peek::Message { off, len: l, rec }) => {
                    if l != len {
                        if count == 0 {
                            c.advance(&mem, rec, l);
                            result = Err(RingError::WrongSize { len: l, expected: len });
                        }
                        break;
                    }
                    match first {
                        None => {
                            first = Some((off, c.head));
                            stride = rec;
                        }
                        // Contiguous only: the previous record ends exactly where this one starts.
                        Some((start, _)) if off != start + count as u64 * stride => break,
                        Some(_) => {}
                    }
                    c.advance(&mem, rec, l);
                    count += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let batch = first.map(|(off, head0)| {
            // Hold everything from the first record on: publish releases only what came before.
            c.held = c.head - head0;
            let span = (count - 1) * stride as usize + len;
            // SAFETY: the `count` records from `off` were published to this consumer, lie
            // contiguously inside the data area, and stay held (`held`) until the next consumer
            // operation; `mem` keeps the mapping.
            let bytes = unsafe { mem.data.bytes(off, span) };
            FixedBatch { mem: mem.clone(), run: FixedRun::new(bytes, count, stride as usize, len) }
        });
        c.publish(&mem);
        result.map(|_| batch)
    }
}
