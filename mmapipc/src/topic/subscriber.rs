//! Subscribers: claiming a slot of the table, joining at the oldest or latest message, and the
//! receiving calls of an exclusive subscriber (a group member's are in `group.rs`).

use std::sync::Arc;
use std::time::Duration;

use super::error::{check_window, corrupt, TopicError};
use super::handle::{Overflow, Start, Topic, TopicMemory};
use super::layout::{align8, widen, LEN_PADDING, NO_CURSOR, NO_GROUP, RECORD_HEADER};
use super::{fork_generation, RUST_SLICE};
use crate::sync::{fence, Ordering};
use crate::wait::{asymmetric, Deadline, Sleeping, SpinWindow};

/// One subscriber of a topic ([`Topic::subscribe`], [`Topic::subscribe_group`]). Dropping it
/// frees its slot (it stops holding the publisher back).
pub struct Subscriber {
    pub(super) mem: Arc<TopicMemory>,
    pub(super) slot: usize,
    /// The group index, for a group member.
    pub(super) group: Option<usize>,
    generation: u64,
    /// Exclusive: the next position to read.
    pub(super) cursor: u64,
    pub(super) off: u64,
    /// Exclusive: the sequence number of the next message.
    pub(super) seq: u64,
    cached_tail: u64,
    /// Bytes of a detached view still held (the shared cursor stays behind them).
    pub(super) held: u64,
    pub(super) messages: u64,
    pub(super) bytes: u64,
    dropped: u64,
    /// Copies (overwrite mode, groups).
    pub(super) buf: Vec<u8>,
    /// How long a wait for a message polls before it sleeps.
    window: SpinWindow,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("slot", &self.slot).field("group", &self.group).finish()
    }
}

/// Frees slot `i` if it still holds `word` (a dead subscriber's). True if this call freed it.
/// First, while no new holder can mark the slot, takes back a count left by a kill in a nap.
pub(super) fn reclaim(mem: &TopicMemory, i: usize, word: u64) -> bool {
    let e = mem.sub(i);
    Sleeping { word: &e.sleeping, owner: word }.take_back(&mem.head().wait.data);
    // AcqRel: exclusive between reclaimers; the slot's stale fields are ignored once it is 0.
    let freed = e.owner.compare_exchange(word, 0, Ordering::AcqRel, Ordering::Relaxed).is_ok();
    if freed {
        // Relaxed: a statistic.
        mem.head().publisher.reclaimed.fetch_add(1, Ordering::Relaxed);
        asymmetric::notify(&mem.head().wait.space);
    }
    freed
}

/// Claims a free slot (reclaiming those of dead subscribers if none is free).
fn claim_slot(mem: &TopicMemory) -> Result<usize, TopicError> {
    let me = crate::owner::me();
    for pass in 0..2 {
        for i in 0..mem.nsubs {
            let e = mem.sub(i);
            // SYNC: owner. AcqRel: the previous holder's last stores are visible; Release ours.
            if e.owner.compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return Ok(i);
            }
        }
        if pass == 0 {
            for i in 0..mem.nsubs {
                // Relaxed: a candidate; `reclaim` decides with a CAS.
                let w = mem.sub(i).owner.load(Ordering::Relaxed);
                if w != 0 && w != me && !crate::owner::alive(w) {
                    reclaim(mem, i, w);
                }
            }
        }
    }
    Err(TopicError::TooManySubscribers { max: mem.nsubs })
}

/// The sequence number of the message (or mark) at `pos`, read racily and checked against
/// `oldest` afterwards: `None` if the publisher may have overwritten it meanwhile.
pub(super) fn seq_at(mem: &TopicMemory, pos: u64) -> Result<Option<u64>, TopicError> {
    let p = &mem.head().publisher;
    // SYNC: tail-publish. Acquire: the counter stored before this tail is visible.
    let tail = p.tail.load(Ordering::Acquire);
    let (_, stamp) = mem.load_header(pos % mem.capacity);
    // Relaxed: after the Acquire tail load, at least the count of the records below `tail`.
    let upper = p.messages.load(Ordering::Relaxed);
    // SYNC: oldest-validate. Acquire fence: the racy header load above is ordered before the
    // re-read of oldest (pairs with the publisher's fence after its oldest store).
    fence(Ordering::Acquire);
    if p.oldest.load(Ordering::Relaxed) > pos {
        return Ok(None);
    }
    if pos > tail {
        return Err(corrupt(format!("position {pos} is past the tail {tail}")));
    }
    let s = widen(stamp, upper);
    if s > upper {
        return Err(corrupt(format!("stamp {stamp} at {pos} is past the {upper} messages published")));
    }
    Ok(Some(s))
}

impl Topic {
    /// Subscribes: every message published after `start` reaches this subscriber, in order.
    /// [`TopicError::TooManySubscribers`] if all `max_subscribers` slots are held by live ones.
    pub fn subscribe(&self, start: Start) -> Result<Subscriber, TopicError> {
        let (mem, slot) = self.begin_subscription()?;
        let e = mem.sub(slot);
        let p = &mem.head().publisher;
        let r = (|| loop {
            let pos = match start {
                // SYNC: tail-publish / oldest-publish. Acquire: the records from here on are
                // visible (up to the tail loaded later).
                Start::Latest => p.tail.load(Ordering::Acquire),
                Start::Oldest => p.oldest.load(Ordering::Acquire),
            };
            // Relaxed: published by the joins bump below.
            e.group.store(NO_GROUP, Ordering::Relaxed);
            e.cursor.store(pos, Ordering::Relaxed);
            join(&mem);
            if let Some(seq) = seq_at(&mem, pos)? {
                check_window(pos, p.tail.load(Ordering::Acquire), mem.capacity)?;
                return Ok((pos, seq));
            }
        })();
        match r {
            Ok((pos, seq)) => {
                // Relaxed: informational (lag for tools).
                e.seq.store(seq, Ordering::Relaxed);
                Ok(Subscriber::new(mem, slot, None, pos, seq))
            }
            Err(err) => {
                release_slot(&mem, slot);
                Err(err)
            }
        }
    }

    /// Registers the fork handler and the membarrier, and claims a slot.
    pub(super) fn begin_subscription(&self) -> Result<(Arc<TopicMemory>, usize), TopicError> {
        while !crate::fork::registered() {
            std::hint::spin_loop();
        }
        asymmetric::register();
        let mem = self.mem.clone();
        let slot = claim_slot(&mem)?;
        let e = mem.sub(slot);
        // Relaxed: our own slot's counters and waiting hint, fresh.
        for c in [&e.messages, &e.bytes, &e.dropped, &e.waiting] {
            c.store(0, Ordering::Relaxed);
        }
        Ok((mem, slot))
    }
}

/// The joiner's side of the join handshake: after storing what it holds back (its cursor, or
/// its group and the group's cursor), bump `joins` and fence; the caller then re-reads `oldest`.
pub(super) fn join(mem: &TopicMemory) {
    // SYNC: join (joiner side). SeqCst RMW and fence: either the publisher's next joins load
    // sees this bump (and then, by its Acquire, our cursor stores), or our re-read of oldest
    // (in `seq_at`) sees the oldest it stored before that load.
    mem.head().join.joins.fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
}

/// Gives slot `i` back (this process holds it).
pub(super) fn release_slot(mem: &TopicMemory, i: usize) {
    let e = mem.sub(i);
    // Relaxed: ordered before the owner store's Release; the publisher ignores a free slot.
    e.cursor.store(NO_CURSOR, Ordering::Relaxed);
    e.group.store(NO_GROUP, Ordering::Relaxed);
    // SYNC: cursor-release / owner. Release: our reads happen-before the publisher's reuse.
    let _ = e.owner.compare_exchange(crate::owner::me(), 0, Ordering::Release, Ordering::Relaxed);
    asymmetric::notify(&mem.head().wait.space);
}

/// What the next record is.
pub(super) enum Next {
    Empty,
    /// A message at data offset `off` (payload), `len` bytes, record `rec` bytes.
    Message {
        off: u64,
        len: usize,
        rec: u64,
        stamp: u32,
    },
}

/// A message taken, before its guard is made: in place (`rec != 0`) or copied to `buf`.
pub(super) struct Got {
    pub(super) off: u64,
    pub(super) len: usize,
    pub(super) rec: u64,
}

impl Subscriber {
    pub(super) fn new(mem: Arc<TopicMemory>, slot: usize, group: Option<usize>, pos: u64, seq: u64) -> Subscriber {
        let cap = mem.capacity;
        Subscriber {
            slot,
            group,
            generation: fork_generation(),
            cursor: pos,
            off: pos % cap,
            seq,
            cached_tail: pos,
            held: 0,
            messages: 0,
            bytes: 0,
            dropped: 0,
            buf: Vec::new(),
            window: SpinWindow::new(),
            mem,
        }
    }

    #[inline]
    pub(super) fn check(&mut self) -> Result<(), TopicError> {
        if self.generation != fork_generation() {
            return Err(TopicError::Inherited { what: "subscriber" });
        }
        if self.held != 0 {
            self.held = 0;
            self.publish();
        }
        Ok(())
    }

    /// Messages lost to overwrite since this subscriber started (a group's, for a member).
    pub fn dropped(&self) -> u64 {
        match self.group {
            // Relaxed: a statistic.
            Some(g) => self.mem.group(g).dropped.load(Ordering::Relaxed),
            None => self.dropped,
        }
    }

    /// Messages received by this subscriber.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// The sequence number of the next message this exclusive subscriber receives (in overwrite
    /// mode a lapped one skips ahead, adding the difference to [`dropped`](Self::dropped)); for
    /// a group member, its group's.
    pub fn next_seq(&self) -> u64 {
        match self.group {
            // Relaxed: the group's counter, a hint for a member (another may take the next).
            Some(g) => self.mem.group(g).seq.load(Ordering::Relaxed),
            None => self.seq,
        }
    }

    /// Messages published and not yet received (by this subscriber, or by its group).
    pub fn lag(&self) -> u64 {
        // Relaxed: statistics.
        let published = self.mem.head().publisher.messages.load(Ordering::Relaxed);
        let next = match self.group {
            Some(g) => self.mem.group(g).seq.load(Ordering::Relaxed),
            None => self.seq,
        };
        published.saturating_sub(next)
    }

    #[inline]
    pub(super) fn advance(&mut self, rec: u64, len: usize) {
        self.cursor += rec;
        self.off += rec;
        if self.off == self.mem.capacity {
            self.off = 0;
        }
        self.seq += 1;
        self.messages += 1;
        self.bytes += len as u64;
    }

    /// Stores our position (minus a held view) and counters; wakes a sleeping publisher.
    #[inline]
    pub(super) fn publish(&mut self) {
        let e = self.mem.sub(self.slot);
        // SYNC: cursor-release. Release: our reads below the cursor happen-before the
        // publisher's Acquire scan that lets it overwrite them.
        e.cursor.store(self.cursor - self.held, Ordering::Release);
        // Relaxed: statistics on our own entry.
        e.seq.store(self.seq, Ordering::Relaxed);
        e.messages.store(self.messages, Ordering::Relaxed);
        e.bytes.store(self.bytes, Ordering::Relaxed);
        if self.mem.overflow == Overflow::Block {
            asymmetric::notify(&self.mem.head().wait.space);
        }
    }

    /// The next record at our cursor (skipping padding), validated (block mode: in place).
    #[inline]
    pub(super) fn next(&mut self) -> Result<Next, TopicError> {
        let mem = &*self.mem;
        let cap = mem.capacity;
        for _ in 0..3 {
            if self.cached_tail == self.cursor {
                // SYNC: tail-publish. Acquire: the publisher's writes below tail are visible.
                let tail = mem.head().publisher.tail.load(Ordering::Acquire);
                if tail < self.cursor || tail - self.cursor > cap {
                    if mem.overflow == Overflow::Overwrite && tail > self.cursor {
                        return Ok(Next::Empty); // lapped: the caller's check of oldest skips
                    }
                    return Err(corrupt(format!("tail {tail} is out of range of cursor {}", self.cursor)));
                }
                self.cached_tail = tail;
                if tail == self.cursor {
                    return Ok(Next::Empty);
                }
            }
            let avail = self.cached_tail - self.cursor;
            let (len, stamp) = mem.load_header(self.off);
            let to_end = cap - self.off;
            if len == LEN_PADDING {
                if self.off == 0 || to_end > avail {
                    return Err(corrupt(format!("bad padding record at offset {}", self.off)));
                }
                self.cursor += to_end;
                self.off = 0;
                continue;
            }
            let rec = align8(u64::from(len) + RECORD_HEADER as u64);
            if rec > to_end || rec > avail {
                return Err(corrupt(format!(
                    "record of {len} bytes at offset {} exceeds the area or the {avail} published bytes",
                    self.off
                )));
            }
            return Ok(Next::Message { off: self.off + RECORD_HEADER as u64, len: len as usize, rec, stamp });
        }
        Err(corrupt("two padding records in a row"))
    }

    /// Takes the next message (as plain data; `guard` makes the borrow).
    #[inline]
    pub(super) fn take(&mut self, view: bool) -> Result<Option<Got>, TopicError> {
        self.check()?;
        if view && self.group.is_some() {
            return Err(TopicError::Unsupported("views are not available to a group member (receive a copy)"));
        }
        if view && self.mem.overflow == Overflow::Overwrite {
            return Err(TopicError::Unsupported(
                "views are not available on an overwrite-mode topic (the publisher never waits for them)",
            ));
        }
        if self.group.is_some() {
            return self.take_group();
        }
        if self.mem.overflow == Overflow::Overwrite {
            return self.take_copy();
        }
        self.take_in_place()
    }

    #[inline]
    fn take_in_place(&mut self) -> Result<Option<Got>, TopicError> {
        let start = self.cursor;
        match self.next()? {
            Next::Empty => {
                if self.cursor != start {
                    self.publish(); // passed padding: give that space back
                }
                Ok(None)
            }
            Next::Message { off, len, rec, stamp } => {
                if stamp != self.seq as u32 {
                    return Err(corrupt(format!(
                        "message at {} has stamp {stamp}, expected {}",
                        self.cursor, self.seq
                    )));
                }
                Ok(Some(Got { off, len, rec }))
            }
        }
    }

    /// Overwrite mode: copy the next record, then check it was not overwritten meanwhile; a
    /// lapped subscriber skips to the oldest retained record and counts what it lost.
    fn take_copy(&mut self) -> Result<Option<Got>, TopicError> {
        loop {
            let next = self.next();
            // SYNC: oldest-validate. Acquire fence: the racy loads of the header and the copy
            // are ordered before the re-read of oldest (pairs with the publisher's reuse fence).
            let copied = match next {
                Ok(Next::Message { off, len, stamp, rec }) => {
                    self.buf.resize(len, 0);
                    // SAFETY: off is 8-aligned (a record offset plus the header) and the record
                    // (payload and alignment) ends inside the area (checked by `next`).
                    unsafe { self.mem.data.snapshot(off, &mut self.buf[..len]) };
                    Some((len, stamp, rec))
                }
                _ => None,
            };
            fence(Ordering::Acquire);
            let oldest = self.mem.head().publisher.oldest.load(Ordering::Relaxed);
            if oldest > self.cursor {
                self.skip_to_oldest()?;
                continue;
            }
            match (next?, copied) {
                (Next::Empty, _) | (_, None) => {
                    if self.cursor != self.mem.sub(self.slot).cursor.load(Ordering::Relaxed) {
                        self.publish();
                    }
                    return Ok(None);
                }
                (Next::Message { .. }, Some((len, stamp, rec))) => {
                    if stamp != self.seq as u32 {
                        return Err(corrupt(format!(
                            "message at {} has stamp {stamp}, expected {}",
                            self.cursor, self.seq
                        )));
                    }
                    self.advance(rec, len);
                    self.publish();
                    return Ok(Some(Got { off: 0, len, rec: 0 }));
                }
            }
        }
    }

    /// Lapped: moves to the oldest retained record and counts the messages skipped.
    fn skip_to_oldest(&mut self) -> Result<(), TopicError> {
        let p = &self.mem.head().publisher;
        for _ in 0..1000 {
            // SYNC: oldest-publish. Acquire: the records from oldest on are visible.
            let o = p.oldest.load(Ordering::Acquire);
            if let Some(s) = seq_at(&self.mem, o)? {
                if s < self.seq {
                    return Err(corrupt(format!("oldest message {s} precedes the expected {}", self.seq)));
                }
                self.dropped += s - self.seq;
                self.seq = s;
                self.cursor = o;
                self.off = o % self.mem.capacity;
                self.cached_tail = o;
                // Relaxed: a statistic on our own entry.
                self.mem.sub(self.slot).dropped.store(self.dropped, Ordering::Relaxed);
                return Ok(());
            }
        }
        Err(corrupt("no stable oldest position in 1000 attempts"))
    }

    /// Waits until a message may be ready (at most `timeout`). `Ok(false)`: timed out.
    pub fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, TopicError> {
        self.wait_readable_until(Deadline::after(timeout), None)
    }

    pub(super) fn wait_readable_until(
        &mut self,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, TopicError> {
        let mem = self.mem.clone();
        let head = mem.head();
        let mine = match self.group {
            Some(g) => &mem.group(g).cursor,
            None => &mem.sub(self.slot).cursor,
        };
        let at = if self.group.is_some() { None } else { Some(self.cursor) };
        let slice = deadline.remaining().map_or(RUST_SLICE, |r| r.min(RUST_SLICE));
        let mut stopped = false;
        // Naps are marked in our slot: a reclaim after a kill takes the count back (`reclaim`).
        let sleeping = Sleeping { word: &mem.sub(self.slot).sleeping, owner: crate::owner::me() };
        // The next message is likely the size of those before it.
        self.window.expect(self.bytes.checked_div(self.messages).unwrap_or(0));
        // Relaxed: a hint for the publisher's frame restart (`frames.rs`); what it may
        // overwrite is decided by the cursors alone.
        let waiting = &mem.sub(self.slot).waiting;
        waiting.store(1, Ordering::Relaxed);
        let got = asymmetric::wait_until_as(&head.wait.data, &self.window, Some(sleeping), deadline, slice, || {
            // SeqCst: pairs with the stopper's store before its wake.
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                stopped = true;
                return Some(());
            }
            // SYNC: tail-publish (Acquire; the read reloads it anyway).
            let tail = head.publisher.tail.load(Ordering::Acquire);
            // Relaxed: a hint; the read itself decides.
            let pos = at.unwrap_or_else(|| mine.load(Ordering::Relaxed));
            (tail != pos).then_some(())
        });
        waiting.store(0, Ordering::Relaxed);
        if stopped {
            return Ok(false);
        }
        Ok(got.is_some())
    }

    /// Receives up to `max` messages that are ready now, calling `f` on each payload. Returns
    /// how many were received.
    pub fn recv_batch(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize, TopicError> {
        let mut n = 0;
        while n < max {
            match self.try_recv()? {
                Some(m) => f(&m),
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Copies the next message into `dst` if one is ready and fits: `Ok(Some(len))`. A message
    /// longer than `dst` is left unread: `Err(len)` inside `Ok`, so the caller can grow `dst`.
    pub fn try_recv_into(&mut self, dst: &mut [u8]) -> Result<Option<Result<usize, usize>>, TopicError> {
        if self.group.is_none() && self.mem.overflow == Overflow::Block {
            self.check()?;
            let start = self.cursor;
            return match self.next()? {
                Next::Empty => {
                    if self.cursor != start {
                        self.publish();
                    }
                    Ok(None)
                }
                Next::Message { len, .. } if len > dst.len() => Ok(Some(Err(len))),
                Next::Message { .. } => {
                    let got = self.take_in_place()?.expect("a message was peeked");
                    let g = self.guard(got);
                    dst[..g.len()].copy_from_slice(&g);
                    Ok(Some(Ok(g.len())))
                }
            };
        }
        // Copies: the message is taken; one too long for `dst` is still reported (and lost).
        match self.try_recv()? {
            None => Ok(None),
            Some(m) if m.len() > dst.len() => Ok(Some(Err(m.len()))),
            Some(m) => {
                dst[..m.len()].copy_from_slice(&m);
                Ok(Some(Ok(m.len())))
            }
        }
    }

    /// Frees the slot now (dropping the subscriber does the same).
    pub fn close(self) {}
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if self.generation == fork_generation() {
            release_slot(&self.mem, self.slot);
        }
    }
}
