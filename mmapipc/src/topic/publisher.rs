//! The publisher: its local state (position, the retained window, the cached minimum of the
//! subscribers' cursors) and the publishing calls.

use std::sync::Arc;
use std::time::Duration;

use crate::mem::reuse::{is_frame, Backoff};
use crate::sync::{fence, Ordering};
use crate::wait::{asymmetric, Deadline, Sleeping, SpinWindow};

use super::error::{check_window, corrupt, TopicError};
use super::handle::{Overflow, Topic, TopicMemory};
use super::layout::{header, record_size, widen, LEN_MARK, LEN_PADDING, NO_CURSOR, NO_GROUP, RECORD_HEADER};
use super::reap::REAP_INTERVAL;
use super::{fork_generation, RUST_SLICE};

/// The one publisher of a topic ([`Topic::publisher`]). Dropping it gives the role back.
pub struct Publisher {
    pub(super) mem: Arc<TopicMemory>,
    generation: u64,
    /// Our position (equals the published tail between operations).
    pub(super) tail: u64,
    /// `tail % capacity`.
    pub(super) off: u64,
    /// The tail last stored.
    pub(super) published: u64,
    /// The `oldest` last stored: no subscriber starts below it.
    oldest: u64,
    /// Bytes at positions below this may be overwritten: `oldest`, and in block mode also at
    /// most the cached minimum of the cursors.
    free_to: u64,
    /// Block mode: the least cursor of a live subscriber or group at the last scan.
    pub(super) cached_min: u64,
    /// `joins` at the last scan.
    joins_seen: u64,
    /// Sequence number of the next message.
    seq: u64,
    /// Our copies of `messages_in` / `bytes_in` (only the publisher writes them).
    messages: u64,
    bytes: u64,
    pending_msgs: u64,
    pending_bytes: u64,
    /// Inside a "found no room" episode (counted once).
    full: bool,
    /// When we last looked for dead subscribers.
    #[cfg(not(loom))]
    pub(super) last_reap: Option<std::time::Instant>,
    /// When we last looked for dead sleepers.
    #[cfg(not(loom))]
    pub(super) last_sleeper_reap: Option<std::time::Instant>,
    /// Groups with a live member, scratch for `rescan`.
    marks: Vec<bool>,
    /// How far past what it needs the publisher moves `oldest` at once (amortises the fence).
    slack: u64,
    /// How long a wait for room polls before it sleeps.
    window: SpinWindow,
    /// When to wait for the subscribers' release of the previous frame ([`crate::mem::reuse`]).
    pub(super) hot: Backoff,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("tail", &self.tail).field("oldest", &self.oldest).finish()
    }
}

impl Topic {
    /// Claims the publisher role: one live publisher at a time ([`TopicError::AlreadyAttached`]
    /// otherwise); a dead one is taken over, continuing after its last whole message.
    pub fn publisher(&self) -> Result<Publisher, TopicError> {
        while !crate::fork::registered() {
            std::hint::spin_loop();
        }
        let mem = self.mem.clone();
        let p = &mem.head().publisher;
        // SYNC: owner (AcqRel CAS): a previous holder's last tail store is visible to us.
        crate::owner::claim(&p.owner).map_err(|w| TopicError::AlreadyAttached { pid: crate::owner::pid(w) })?;
        // A publisher killed asleep is still counted in the space waiter's sleepers (every
        // subscriber's receive would make a system call): its `sleeping` word names it. Relaxed:
        // a candidate; `take_back` decides with a CAS.
        let dead = p.sleeping.load(Ordering::Relaxed);
        if dead != 0 && !crate::owner::alive(dead) {
            Sleeping { word: &p.sleeping, owner: dead }.take_back(&mem.head().wait.space);
        }
        asymmetric::register();
        match Publisher::resume(mem.clone()) {
            Ok(p) => Ok(p),
            Err(e) => {
                // Release: nothing was written; give the role back.
                mem.head().publisher.owner.store(0, Ordering::Release);
                Err(e)
            }
        }
    }
}

impl Publisher {
    /// Continues from the published state (a fresh topic, or a released or dead publisher's).
    fn resume(mem: Arc<TopicMemory>) -> Result<Publisher, TopicError> {
        let cap = mem.capacity;
        let p = &mem.head().publisher;
        // SYNC: tail-publish. Acquire: the records below tail, and the mark at it, are visible.
        let tail = p.tail.load(Ordering::Acquire);
        // Relaxed: only publishers store oldest; the claim CAS ordered us after the last one.
        let oldest = p.oldest.load(Ordering::Relaxed);
        check_window(oldest, tail, cap)?;
        // Relaxed: the publisher's own counters (ordered by the claim, as `oldest`).
        let counted = p.messages.load(Ordering::Relaxed);
        let (_, stamp) = mem.load_header(tail % cap);
        // The mark at tail carries the next sequence number; `messages_in` is at least that (a
        // publisher killed between its counter and tail stores left it ahead).
        let seq = widen(stamp, counted);
        if seq > counted {
            return Err(corrupt(format!("mark at tail {tail} names message {seq}, only {counted} published")));
        }
        p.messages.store(seq, Ordering::Relaxed);
        let bytes = p.bytes.load(Ordering::Relaxed);
        let n = mem.nsubs;
        let mut me = Publisher {
            generation: fork_generation(),
            tail,
            off: tail % cap,
            published: tail,
            oldest,
            free_to: oldest,
            cached_min: NO_CURSOR,
            joins_seen: 0,
            seq,
            messages: seq,
            bytes,
            pending_msgs: 0,
            pending_bytes: 0,
            full: false,
            #[cfg(not(loom))]
            last_reap: None,
            #[cfg(not(loom))]
            last_sleeper_reap: None,
            marks: vec![false; n],
            slack: (cap / 8) & !7,
            window: SpinWindow::new(),
            hot: Backoff::default(),
            mem,
        };
        if me.mem.overflow == Overflow::Block {
            me.rescan();
            me.free_to = me.oldest.min(me.cached_min);
        }
        Ok(me)
    }

    #[inline]
    fn check(&self) -> Result<(), TopicError> {
        if self.generation != fork_generation() {
            return Err(TopicError::Inherited { what: "publisher" });
        }
        Ok(())
    }

    /// Reloads the least cursor of the live subscribers and of the groups that have a live
    /// member (block mode).
    pub(super) fn rescan(&mut self) {
        let mem = &*self.mem;
        // SYNC: join. Acquire: a subscriber's cursor store before its joins bump is visible
        // below. Loaded first: a join after this load makes the next `make_room` scan again.
        self.joins_seen = mem.head().join.joins.load(Ordering::Acquire);
        let mut min = NO_CURSOR;
        self.marks.iter_mut().for_each(|m| *m = false);
        for i in 0..mem.nsubs {
            let e = mem.sub(i);
            // SYNC: cursor-release. Acquire: the subscriber's reads below its cursor
            // happen-before our overwriting them.
            if e.owner.load(Ordering::Acquire) == 0 {
                continue;
            }
            let g = e.group.load(Ordering::Acquire);
            if g == NO_GROUP {
                min = min.min(e.cursor.load(Ordering::Acquire));
            } else if let Some(m) = self.marks.get_mut(g as usize) {
                *m = true;
            }
        }
        for (g, _) in self.marks.iter().enumerate().filter(|(_, m)| **m) {
            // SYNC: cursor-release (a group's cursor is advanced by its members' AcqRel CAS).
            min = min.min(mem.group(g).cursor.load(Ordering::Acquire));
        }
        self.cached_min = min;
    }

    /// True if the bytes up to position `end` may be written, making room if the cached view
    /// says there is none.
    #[inline]
    fn room(&mut self, end: u64) -> Result<bool, TopicError> {
        let cap = self.mem.capacity;
        if end <= self.free_to + cap {
            self.full = false;
            return Ok(true);
        }
        self.make_room(end - cap)
    }

    /// Moves `oldest` to a record boundary at or past `need` (and up to `slack` further), as far
    /// as the subscribers allow in block mode. True if `need` is reached.
    #[cold]
    fn make_room(&mut self, need: u64) -> Result<bool, TopicError> {
        if need > self.published {
            // Part of an unpublished batch would be overwritten: publish it first.
            self.flush();
        }
        let block = self.mem.overflow == Overflow::Block;
        if block {
            let joins = self.mem.head().join.joins.load(Ordering::Relaxed);
            if need > self.cached_min || joins != self.joins_seen {
                self.rescan();
            }
            if need > self.cached_min && self.reap(need) {
                self.rescan();
            }
            if need > self.cached_min {
                return Ok(self.found_full());
            }
        }
        let limit = if block { self.cached_min.min(self.published) } else { self.published };
        let target = (need.max(self.oldest) + self.slack).min(limit);
        let cap = self.mem.capacity;
        let mut pos = self.oldest;
        while pos < target {
            let off = pos % cap;
            let (len, _) = self.mem.load_header(off);
            pos += match len {
                LEN_PADDING if off != 0 => cap - off,
                l if (l as usize) <= cap as usize - 2 * RECORD_HEADER => record_size(l as usize) as u64,
                l => return Err(corrupt(format!("bad record header (length {l:#x}) at retained position {pos}"))),
            };
        }
        if pos > self.published || (block && pos > self.cached_min) {
            return Err(corrupt(format!("record boundaries from {} miss position {target}", self.oldest)));
        }
        self.oldest = pos;
        let p = &self.mem.head().publisher;
        // SYNC: oldest-publish. Release: a joiner or a lapped reader that reads this value
        // starts at or past it, after the records before it.
        p.oldest.store(pos, Ordering::Release);
        if block {
            // SYNC: join (publisher side). SeqCst fence between the oldest store and the joins
            // load: either a joiner's joins bump is seen here (and its cursor by the rescan), or
            // its re-read of oldest after its own fence sees this store. Also the reuse fence.
            fence(Ordering::SeqCst);
            if self.mem.head().join.joins.load(Ordering::Relaxed) != self.joins_seen {
                self.rescan();
            }
            self.free_to = self.oldest.min(self.cached_min);
        } else {
            // SYNC: reuse-fence. Release: a reader whose racy copy sees a byte we write after
            // this also sees the oldest stored above when it re-reads it, and drops the copy.
            fence(Ordering::Release);
            self.free_to = self.oldest;
        }
        if need > self.free_to {
            return Ok(self.found_full());
        }
        self.full = false;
        Ok(true)
    }

    fn found_full(&mut self) -> bool {
        if !self.full {
            self.full = true;
            let c = &self.mem.head().publisher.full_waits;
            // Relaxed: a statistic written only by the publisher.
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        false
    }

    /// Finds room for a `len`-byte record (padding the end of the area first if it would not
    /// fit there) and its following mark: its offset, or `None` if there is no room now. With
    /// `hot`, a frame may go to offset 0 over the previous one ([`restart_hot`](Self::restart_hot)).
    #[inline]
    fn reserve(&mut self, len: usize, hot: bool) -> Result<Option<u64>, TopicError> {
        let cap = self.mem.capacity;
        let rec = record_size(len) as u64;
        let restart = hot
            && self.mem.overflow == Overflow::Block
            && self.off != 0
            && rec <= self.off
            && is_frame(rec, cap)
            && self.restart_hot(rec);
        if restart || rec > cap - self.off {
            let pad = cap - self.off;
            if !self.room(self.tail + pad + RECORD_HEADER as u64)? {
                return Ok(None);
            }
            // Padding fills the rest of the area, published on its own (so it never has to be
            // retained together with the record after it); the mark follows at offset 0.
            self.mem.store_header(self.off, header(LEN_PADDING, self.seq));
            self.mem.store_header(0, header(LEN_MARK, self.seq));
            self.tail += pad;
            self.off = 0;
            self.flush();
            if restart {
                self.await_padding_passed(rec);
            }
        }
        if !self.room(self.tail + rec + RECORD_HEADER as u64)? {
            return Ok(None);
        }
        Ok(Some(self.off))
    }

    /// Writes a message into the record reserved at our position, and the mark after it.
    #[inline]
    fn write(&mut self, data: &[u8]) {
        let mem = &*self.mem;
        let rec = record_size(data.len()) as u64;
        if data.len() % 8 != 0 {
            // Zero the record's last word first: no stale bytes of an older record in its padding,
            // and no word left half atomic header and half plain payload (see the ring).
            // SAFETY: `reserve` showed [off, off + rec) free (below oldest + capacity, so no
            // subscriber may read it) and unpublished: ours alone; rec >= 16, within the area.
            unsafe { mem.data.copy_in(self.off + rec - 8, &[0; 8]) };
        }
        // SAFETY: as above: the payload lies inside the reserved record.
        unsafe { mem.data.copy_in(self.off + RECORD_HEADER as u64, data) };
        mem.store_header(self.off, header(data.len() as u32, self.seq));
        self.seq += 1;
        self.tail += rec;
        self.off += rec;
        if self.off == mem.capacity {
            self.off = 0;
        }
        // The mark: the next message's stamp at the published end (`reserve` made room for it).
        mem.store_header(self.off, header(LEN_MARK, self.seq));
        self.pending_msgs += 1;
        self.pending_bytes += data.len() as u64;
    }

    /// Publishes everything written: counters, then tail; wakes sleeping subscribers.
    #[inline]
    fn flush(&mut self) {
        let p = &self.mem.head().publisher;
        self.messages = self.messages.wrapping_add(self.pending_msgs);
        self.bytes = self.bytes.wrapping_add(self.pending_bytes);
        // Relaxed: statistics on our own line, before the tail store that drains with them.
        p.messages.store(self.messages, Ordering::Relaxed);
        p.bytes.store(self.bytes, Ordering::Relaxed);
        // SYNC: tail-publish. Release: every record and the mark below and at tail happen-before
        // a subscriber's Acquire load that observes it.
        p.tail.store(self.tail, Ordering::Release);
        self.published = self.tail;
        let notify = self.pending_msgs != 0;
        self.pending_msgs = 0;
        self.pending_bytes = 0;
        if notify && asymmetric::notify(&self.mem.head().wait.data) {
            self.reap_sleepers();
        }
    }

    /// Publishes one message if there is room now. `Ok(false)`: block mode and the slowest
    /// subscriber has not made room (overwrite mode always has room).
    #[inline]
    pub fn try_publish(&mut self, data: &[u8]) -> Result<bool, TopicError> {
        self.publish_now(data, false)
    }

    /// [`try_publish`](Self::try_publish) for a caller that waits for room when it returns
    /// `Ok(false)`, as the blocking calls do: a frame may then go to offset 0 over the previous
    /// one, still in the caches (the `frames` module), after a poll of at most 1 ns per 64 bytes
    /// for the subscribers to let go of it and step over the padding in front of it. Until they
    /// have, this returns `Ok(false)` even though the area had room elsewhere.
    #[inline]
    pub fn try_publish_waiting(&mut self, data: &[u8]) -> Result<bool, TopicError> {
        self.publish_now(data, true)
    }

    /// [`try_publish`](Self::try_publish); `hot`: as [`try_publish_waiting`](Self::try_publish_waiting).
    #[inline]
    fn publish_now(&mut self, data: &[u8], hot: bool) -> Result<bool, TopicError> {
        self.check()?;
        self.topic_check_len(data.len())?;
        match self.reserve(data.len(), hot)? {
            None => Ok(false),
            Some(_) => {
                self.write(data);
                self.flush();
                Ok(true)
            }
        }
    }

    /// Publishes one message, waiting for room as long as it takes.
    pub fn publish(&mut self, data: &[u8]) -> Result<(), TopicError> {
        self.publish_timeout(data, None).map(|_| ())
    }

    /// Publishes one message, waiting at most `timeout` (`None`: forever). `Ok(false)`: timed out.
    pub fn publish_timeout(&mut self, data: &[u8], timeout: Option<Duration>) -> Result<bool, TopicError> {
        self.publish_until(data, Deadline::after(timeout), None)
    }

    /// [`publish_timeout`](Self::publish_timeout) that also gives up (`Ok(false)`) once `stop`
    /// is set (checked whenever the wait wakes; [`Topic::wake_waiters`] wakes it).
    pub fn publish_or_stop(
        &mut self,
        data: &[u8],
        timeout: Option<Duration>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<bool, TopicError> {
        self.publish_until(data, Deadline::after(timeout), Some(stop))
    }

    fn publish_until(
        &mut self,
        data: &[u8],
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, TopicError> {
        loop {
            if self.publish_now(data, true)? {
                return Ok(true);
            }
            if !self.wait_room(data.len(), deadline, stop)? {
                return Ok(false);
            }
        }
    }

    /// Publishes as many of `messages`, in order, as fit now, with one tail store (and at most
    /// one wake-up). Every length is checked first: if any can never fit, nothing is published.
    pub fn try_publish_batch<B: AsRef<[u8]>>(&mut self, messages: &[B]) -> Result<usize, TopicError> {
        self.publish_batch_now(messages, false)
    }

    /// [`try_publish_batch`](Self::try_publish_batch) for a caller that waits when not all were
    /// published, as [`try_publish_waiting`](Self::try_publish_waiting).
    pub fn try_publish_batch_waiting<B: AsRef<[u8]>>(&mut self, messages: &[B]) -> Result<usize, TopicError> {
        self.publish_batch_now(messages, true)
    }

    /// [`try_publish_batch`](Self::try_publish_batch); `hot` as in [`publish_now`](Self::publish_now).
    fn publish_batch_now<B: AsRef<[u8]>>(&mut self, messages: &[B], hot: bool) -> Result<usize, TopicError> {
        self.check()?;
        for m in messages {
            self.topic_check_len(m.as_ref().len())?;
        }
        let mut n = 0;
        for m in messages {
            let m = m.as_ref();
            match self.reserve(m.len(), hot) {
                Ok(Some(_)) => {
                    self.write(m);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    self.flush();
                    return Err(e);
                }
            }
        }
        self.flush();
        Ok(n)
    }

    /// Publishes all of `messages`, waiting for room at most `timeout` in all. Returns how many
    /// were published (fewer only on timeout).
    pub fn publish_batch<B: AsRef<[u8]>>(
        &mut self,
        messages: &[B],
        timeout: Option<Duration>,
    ) -> Result<usize, TopicError> {
        let deadline = Deadline::after(timeout);
        let mut sent = 0;
        while sent < messages.len() {
            sent += self.publish_batch_now(&messages[sent..], true)?;
            if sent < messages.len() && !self.wait_room(messages[sent].as_ref().len(), deadline, None)? {
                break;
            }
        }
        Ok(sent)
    }

    #[inline]
    fn topic_check_len(&self, len: usize) -> Result<(), TopicError> {
        let max = self.mem.capacity as usize - 2 * RECORD_HEADER;
        if len > max {
            return Err(TopicError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Waits until a `len`-byte message may fit (at most until `deadline`). `Ok(false)`: timed
    /// out or stopped.
    fn wait_room(
        &mut self,
        len: usize,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, TopicError> {
        let cap = self.mem.capacity;
        let rec = record_size(len) as u64;
        let pad = if rec > cap - self.off { cap - self.off } else { 0 };
        let need = (self.tail + pad.max(rec) + RECORD_HEADER as u64).saturating_sub(cap);
        let mem = self.mem.clone();
        let space = &mem.head().wait.space;
        // Naps end at the reap interval, so a killed subscriber is noticed within it.
        let slice = deadline.remaining().map_or(RUST_SLICE, |r| r.min(RUST_SLICE)).min(REAP_INTERVAL);
        let mut stopped = false;
        // Each nap is marked, so that a takeover after a kill takes the count back.
        let sleeping = Sleeping { word: &mem.head().publisher.sleeping, owner: crate::owner::me() };
        // The window is moved out while the readiness check needs all of `self`.
        let window = std::mem::take(&mut self.window);
        window.expect(len as u64);
        let got = asymmetric::wait_until_as(space, &window, Some(sleeping), deadline, slice, || {
            // SeqCst: pairs with the stopper's store before its wake (see `Topic::wake_waiters`).
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                stopped = true;
                return Some(());
            }
            self.rescan();
            // A subscriber holding us back may have died (looked at once per REAP_INTERVAL).
            if self.cached_min < need && self.reap(need) {
                self.rescan();
            }
            (self.cached_min >= need).then_some(())
        });
        self.window = window;
        if stopped {
            return Ok(false);
        }
        // Timed out, or room: either way the caller's next try decides (and reaps).
        Ok(got.is_some() || !deadline.expired())
    }

    /// Our position and its offset in the data area (the next record goes there).
    #[cfg(all(target_os = "linux", not(loom)))]
    pub(super) fn position(&self) -> (u64, u64) {
        (self.tail, self.off)
    }

    /// Messages published so far (the sequence number of the next one).
    pub fn messages(&self) -> u64 {
        self.messages
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.generation == fork_generation() {
            // SYNC: owner. Release: our last tail store happens-before the next holder's claim.
            let me = crate::owner::me();
            let _ = self.mem.head().publisher.owner.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
        }
    }
}
