//! The consumer side: taking records at `read` under the consumer lock and committing with one
//! store (`read-publish`), waiting for messages, and the copying `get` family.

use std::time::Duration;

use super::error::{corrupt, QueueError};
use super::handle::{bump, Queue};
use super::records::{head_word, split_head, RECORD_HEADER, STATE_COMMITTED, STATE_PADDING, STATE_TAKEN};
use crate::mem::reuse::is_frame;
use crate::owner;
use crate::sync::Ordering;
use crate::wait::Deadline;

/// What one locked take did: `n` messages, `read` moved from `from` to `to`.
#[derive(Clone, Copy)]
pub(super) struct Taken {
    pub(super) n: usize,
    pub(super) from: u64,
    pub(super) to: u64,
}

/// Which way a consumer takes records.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// Copied out under the lock: finished once `read` passes them.
    Copy,
    /// Stamped TAKEN with this process's owner word: held until released.
    View,
}

/// The `accept` of consumers that take every record ([`Queue::take_locked`]).
#[inline(always)]
pub(super) fn any_record(_idx: u64, _len: u32, _taken: usize) -> bool {
    true
}

impl Queue {
    /// Takes up to `max` records (consumer lock held); calls `f(pos, payload_offset, len)` for
    /// each (`payload_offset` in the data area). Before taking a record, asks
    /// `accept(idx, len, n)` (its ring index, its length, how many were taken so far): `false`
    /// ends the run there, leaving that record for the next call. Padding is skipped without
    /// asking. Returns how many, and the span `[from, to)` that `read` moved over.
    pub(super) fn take_locked(
        &self,
        max: usize,
        how: Take,
        mut accept: impl FnMut(u64, u32, usize) -> bool,
        mut f: impl FnMut(u64, u64, usize),
    ) -> Result<Taken, QueueError> {
        let c = self.ctrl();
        let read = c.read.value.load(Ordering::Acquire);
        // SYNC: tail-publish. Acquire pairs with the producer's Release store: the records
        // before `tail` are fully written when we read them.
        let tail = c.tail.value.load(Ordering::Acquire);
        self.positions_ok(read, tail, "read, tail")?;
        let me = if how == Take::View { owner::me() } else { 0 };
        let mut pos = read;
        // Where `read` stands (moved past a leading padding record below).
        let mut from = read;
        let mut n = 0;
        let mut bytes = 0u64;
        while pos < tail {
            let idx = pos % self.cap;
            let head = self.head(idx);
            // Relaxed: the record lies before `tail`, Acquired above (tail-publish); below `tail`
            // and at or beyond `read` only the consumer-lock holder (us) writes it.
            let (len, state) = split_head(head.load(Ordering::Relaxed));
            match state {
                // Padding is always skipped, also after the last record taken (so a producer
                // waiting to wrap is not held up by a padding record nobody reads).
                STATE_PADDING => {
                    pos += self.span(pos, len, state, tail)?;
                    if n == 0 && pos < tail {
                        // A padding record first, records behind it: move `read` past it and
                        // reclaim it before copying or stamping them, so that its bytes (the
                        // other half of a queue of two frames, `mem::reuse`) are the producers'
                        // while they are read. Crash-safe as any `read` store: nothing below it
                        // but padding. Once per lap of the buffer.
                        // SYNC: read-publish (Release, as below).
                        c.read.value.store(pos, Ordering::Release);
                        from = pos;
                        self.advance_reclaim(false);
                    }
                }
                STATE_COMMITTED | STATE_TAKEN if n == max || !accept(idx, len, n) => break,
                STATE_COMMITTED | STATE_TAKEN => {
                    // A TAKEN stamp at or beyond `read` was left by a consumer killed before its
                    // commit: the record was never handed out, it is still COMMITTED.
                    let span = self.span(pos, len, state, tail)?;
                    // Relaxed: published to advancers by our Release store of `read` (read-publish);
                    // `len` is unchanged, we rewrite it with the state (one 8-byte word).
                    if how == Take::View {
                        self.owner(idx).store(me, Ordering::Relaxed);
                        head.store(head_word(len, STATE_TAKEN), Ordering::Relaxed);
                    } else if state == STATE_TAKEN {
                        head.store(head_word(len, STATE_COMMITTED), Ordering::Relaxed);
                    }
                    // span() checked idx + 16 + len <= cap; the record lies before `tail`, so it
                    // is fully written, and nobody writes it until `reclaim` passes it, which
                    // needs `read` to pass it first (we hold the consumer lock).
                    f(pos, idx + RECORD_HEADER as u64, len as usize);
                    pos += span;
                    n += 1;
                    bytes += len as u64;
                }
                other => {
                    return Err(corrupt(format!(
                        "record at {pos} has unknown state {other:#x} (expected a committed record)"
                    )))
                }
            }
        }
        if pos != from {
            // SYNC: read-publish. Release: our copies out of the records (and the TAKEN stamps)
            // happen-before an advancer's Acquire load of `read`, and so before any producer
            // overwrites them. This single store is the consumer's commit.
            c.read.value.store(pos, Ordering::Release);
        }
        if n > 0 {
            bump(&c.cons_stats.msgs, n as u64);
            bump(&c.cons_stats.bytes, bytes);
        }
        Ok(Taken { n, from, to: pos })
    }

    /// True if `tail != read` (something may be available).
    #[inline]
    pub(super) fn maybe_nonempty(&self) -> bool {
        let c = self.ctrl();
        // SYNC: tail-publish (Acquire; the locked path re-reads it anyway). Relaxed for `read`:
        // only compared, the locked path re-reads it.
        c.tail.value.load(Ordering::Acquire) != c.read.value.load(Ordering::Relaxed)
    }

    /// Takes up to `max` records the way `how` says (see [`take_locked`](Self::take_locked)),
    /// waiting until `deadline` for a first one if `block`; returns how many.
    pub(super) fn consume(
        &self,
        max: usize,
        how: Take,
        deadline: Deadline,
        block: bool,
        mut accept: impl FnMut(u64, u32, usize) -> bool,
        mut f: impl FnMut(u64, u64, usize),
    ) -> Result<usize, QueueError> {
        if max == 0 {
            return Ok(0);
        }
        let c = self.ctrl();
        let me = owner::me();
        let mut counted_wait = false;
        loop {
            if self.maybe_nonempty() {
                if !self.acquire(&c.cons_lock, &c.cons_stats, me, deadline) {
                    return Ok(0);
                }
                let r = self.take_locked(max, how, &mut accept, &mut f);
                c.cons_lock.lock.unlock(me);
                let t = r?;
                if t.n > 0 {
                    if how == Take::Copy {
                        self.reclaim_copied(t);
                    }
                    return Ok(t.n);
                }
            }
            if !block || deadline.expired() {
                return Ok(0);
            }
            if !counted_wait {
                counted_wait = true;
                c.cons_stats.waits.fetch_add(1, Ordering::Relaxed);
            }
            self.expect_typical_message();
            let r: Result<Option<()>, ()> = c.not_empty.waiter.wait_until_in(
                &self.get_window,
                deadline,
                self.check_interval,
                || self.maybe_nonempty().then_some(()),
                || Ok(()),
            );
            if let Ok(None) = r {
                return Ok(0);
            }
        }
    }

    /// Tells the get window the average size of the messages taken so far (the next one is
    /// likely like them).
    fn expect_typical_message(&self) {
        let st = &self.ctrl().cons_stats;
        // Relaxed: statistics, read for a hint.
        let (msgs, bytes) = (st.msgs.load(Ordering::Relaxed), st.bytes.load(Ordering::Relaxed));
        self.get_window.expect(bytes.checked_div(msgs).unwrap_or(0));
    }

    /// If the record at `read` is padding (published alone by a producer that must wrap), moves
    /// `read` past it under the consumer lock and reclaims it. Returns whether anything moved.
    pub(super) fn skip_padding(&self, deadline: Deadline) -> Result<bool, QueueError> {
        let c = self.ctrl();
        let read = c.read.value.load(Ordering::Acquire);
        if read >= c.tail.value.load(Ordering::Acquire) || read % 8 != 0 {
            return Ok(false);
        }
        // Relaxed: only a hint; the locked take below re-reads it after Acquiring `tail`.
        if split_head(self.head(read % self.cap).load(Ordering::Relaxed)).1 != STATE_PADDING {
            return Ok(false);
        }
        let me = owner::me();
        if !self.acquire(&c.cons_lock, &c.cons_stats, me, deadline) {
            return Ok(false);
        }
        let r = self.take_locked(0, Take::Copy, any_record, |_, _, _| {});
        c.cons_lock.lock.unlock(me);
        r?;
        Ok(self.advance_reclaim(false))
    }

    /// Calls `f` on the `len` payload bytes at `off` of a record taken by copy, in place
    /// (the consumer lock is held: nobody writes them meanwhile).
    #[inline]
    fn read_in_place<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: take_locked hands out `off`/`len` of a record inside the data area that is ours
        // until the consumer lock is released, after this call; the Bytes end with it.
        let bytes = unsafe { self.data.bytes(off, len) };
        f(bytes.as_slice())
    }

    /// Takes the next message, if any, and calls `f` on its bytes in place (while holding the
    /// consumer lock: keep `f` short). The message is consumed whatever `f` does.
    pub fn try_get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, QueueError> {
        self.get_with_deadline(Deadline::after(Some(Duration::ZERO)), false, f)
    }

    /// [`try_get_with`](Self::try_get_with) waiting up to `timeout` (`None`: forever).
    pub fn get_with_timeout<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, QueueError> {
        self.get_with_deadline(Deadline::after(timeout), true, f)
    }

    fn get_with_deadline<R>(
        &self,
        deadline: Deadline,
        block: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, QueueError> {
        let mut f = Some(f);
        let mut out = None;
        self.consume(1, Take::Copy, deadline, block, any_record, |_, off, len| {
            if let Some(f) = f.take() {
                out = Some(self.read_in_place(off, len, f));
            }
        })?;
        Ok(out)
    }

    /// Takes up to `max` messages now, under one lock acquisition, calling `f` on each in place.
    /// Returns how many were taken (0 if empty).
    pub fn try_get_batch_with(&self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, QueueError> {
        self.get_batch_with_deadline(max, Deadline::after(Some(Duration::ZERO)), false, f)
    }

    /// [`try_get_batch_with`](Self::try_get_batch_with) waiting up to `timeout` (`None`: forever)
    /// for at least one message.
    pub fn get_batch_with_timeout(
        &self,
        max: usize,
        timeout: Option<Duration>,
        f: impl FnMut(&[u8]),
    ) -> Result<usize, QueueError> {
        self.get_batch_with_deadline(max, Deadline::after(timeout), true, f)
    }

    fn get_batch_with_deadline(
        &self,
        max: usize,
        deadline: Deadline,
        block: bool,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, QueueError> {
        // Frames are copied one per locked run, each reclaimed as soon as it is copied: the
        // producer writes the next one meanwhile, as with single gets, instead of waiting for
        // the whole batch (a queue holds only two or three frames).
        let cap = self.cap;
        let one_frame = || {
            let mut frame = false;
            move |_: u64, len: u32, taken: usize| {
                let is = is_frame(u64::from(len) + RECORD_HEADER as u64, cap);
                let ok = taken == 0 || !(frame || is);
                frame |= is;
                ok
            }
        };
        let mut copy = |_, off, len| self.read_in_place(off, len, &mut f);
        let mut n = self.consume(max, Take::Copy, deadline, block, one_frame(), &mut copy)?;
        while n > 0 && n < max {
            let now = Deadline::after(Some(Duration::ZERO));
            match self.consume(max - n, Take::Copy, now, false, one_frame(), &mut copy)? {
                0 => break,
                more => n += more,
            }
        }
        Ok(n)
    }

    /// Waits until a message may be available and the consumer lock can be taken (recovering it
    /// from a dead holder if need be), for at most `timeout` (`None`: forever). Takes nothing:
    /// bindings call it without their interpreter lock, then take with a `try_` call.
    pub fn wait_available(&self, timeout: Option<Duration>) -> Result<bool, QueueError> {
        let deadline = Deadline::after(timeout);
        let c = self.ctrl();
        loop {
            if self.maybe_nonempty() {
                // A free lock can be taken by the caller's `try_` call right away: no need to
                // take and drop it here (two more atomic RMWs and a fence per blocking get).
                if c.cons_lock.lock.holder() == 0 {
                    return Ok(true);
                }
                let me = owner::me();
                if !self.acquire(&c.cons_lock, &c.cons_stats, me, deadline) {
                    return Ok(false);
                }
                c.cons_lock.lock.unlock(me);
                return Ok(true);
            }
            self.expect_typical_message();
            let r: Result<Option<()>, ()> = c.not_empty.waiter.wait_until_in(
                &self.get_window,
                deadline,
                self.check_interval,
                || self.maybe_nonempty().then_some(()),
                || Ok(()),
            );
            if let Ok(None) = r {
                return Ok(false);
            }
        }
    }

    /// Takes the next message now, copied into a `Vec`.
    pub fn try_get(&self) -> Result<Option<Vec<u8>>, QueueError> {
        self.try_get_with(<[u8]>::to_vec)
    }

    /// Takes the next message, waiting as long as it takes.
    pub fn get(&self) -> Result<Vec<u8>, QueueError> {
        loop {
            if let Some(v) = self.get_with_timeout(None, <[u8]>::to_vec)? {
                return Ok(v);
            }
        }
    }

    /// Takes the next message, waiting at most `timeout` (`None`: forever); `Ok(None)` on
    /// timeout.
    pub fn get_timeout(&self, timeout: Option<Duration>) -> Result<Option<Vec<u8>>, QueueError> {
        self.get_with_timeout(timeout, <[u8]>::to_vec)
    }

    /// Takes up to `max` messages now (copies), under one lock acquisition.
    pub fn try_get_batch(&self, max: usize) -> Result<Vec<Vec<u8>>, QueueError> {
        let mut v = Vec::new();
        self.try_get_batch_with(max, |b| v.push(b.to_vec()))?;
        Ok(v)
    }

    /// Takes up to `max` messages, waiting up to `timeout` (`None`: forever) for the first.
    pub fn get_batch_timeout(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>, QueueError> {
        let mut v = Vec::new();
        self.get_batch_with_timeout(max, timeout, |b| v.push(b.to_vec()))?;
        Ok(v)
    }

    /// Discards every waiting message; returns how many. Safe with active peers: it takes the
    /// consumer lock, so it never races a consumer; producers keep going. Views already handed
    /// out stay valid.
    pub fn clear(&self) -> Result<usize, QueueError> {
        let c = self.ctrl();
        let me = owner::me();
        self.acquire(&c.cons_lock, &c.cons_stats, me, Deadline::after(None));
        let r = self.take_locked(usize::MAX, Take::Copy, any_record, |_, _, _| {});
        c.cons_lock.lock.unlock(me);
        let n = r?.n;
        self.advance_reclaim(false);
        Ok(n)
    }
}
