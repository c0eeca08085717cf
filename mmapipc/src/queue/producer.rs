//! The producer side: writing records beyond `tail` under the producer lock and publishing them
//! with one store (`tail-publish`), waiting for room, and the `put` family.

use std::time::Duration;

use super::error::{corrupt, QueueError};
use super::handle::{bump, Queue};
use super::records::{head_word, record_size, RECORD_ALIGN, RECORD_HEADER, STATE_COMMITTED, STATE_PADDING};
use crate::mem::reuse::{self, is_frame};
use crate::mem::DataArea;
use crate::owner;
use crate::sync::{fence, Ordering};
use crate::wait::Deadline;

/// Messages for the producer path: their lengths, and a way to write each into its slot.
pub(super) trait Source {
    fn count(&self) -> usize;
    fn len(&self, i: usize) -> usize;
    /// Writes message `i` into the data area at `off`.
    ///
    /// # Safety
    /// `[off, off + self.len(i))` lies in `data` and belongs to the caller (unpublished space
    /// under the producer lock).
    unsafe fn fill(&mut self, i: usize, data: &DataArea, off: u64) -> Result<(), QueueError>;
    /// Called by [`Queue::write_locked`] once its records are written, with the position just
    /// past them: `true` keeps them unpublished with the producer lock held (a loan, which
    /// publishes them itself, `loan.rs`), `false` (every other source) publishes them now.
    fn keep(&mut self, _end: u64) -> bool {
        false
    }
    /// Whether [`keep`](Self::keep) kept records (the lock is then still held).
    fn kept(&self) -> bool {
        false
    }
}

/// Byte messages copied from the caller's buffers.
struct Slices<'a, 'b>(&'a [&'b [u8]]);

impl Source for Slices<'_, '_> {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn len(&self, i: usize) -> usize {
        self.0[i].len()
    }
    unsafe fn fill(&mut self, i: usize, data: &DataArea, off: u64) -> Result<(), QueueError> {
        // SAFETY: per this function's contract (the slot is `len(i)` bytes, ours alone).
        unsafe { data.copy_in(off, self.0[i]) };
        Ok(())
    }
}

/// One message written in place by a closure.
struct WithFill<F> {
    len: usize,
    fill: Option<F>,
}

impl<F: FnOnce(&mut [u8]) -> Result<(), QueueError>> Source for WithFill<F> {
    fn count(&self) -> usize {
        1
    }
    fn len(&self, _: usize) -> usize {
        self.len
    }
    unsafe fn fill(&mut self, _: usize, data: &DataArea, off: u64) -> Result<(), QueueError> {
        match self.fill.take() {
            // SAFETY: per this function's contract (the slot is `len` bytes, ours alone).
            Some(f) => unsafe { data.fill(off, self.len, f) },
            None => Err(corrupt("a message was written twice")),
        }
    }
}

/// Issued after learning how far `reclaim` has moved and before writing into the space it
/// freed.
///
/// SYNC: reuse-fence. Release fence, paired with the Acquire fence a tool's seqlock walk issues
/// before re-reading `reclaim` (`crate::inspect`): a tool whose racy copy read any byte this
/// producer then writes (a head or a payload word) also sees the `reclaim` that freed it, and
/// so drops the copy. The `reclaim` value came from an Acquire load (here or, through the
/// producer lock, in an earlier critical section), so the CAS that moved it happens-before this
/// fence. Consumers need no fence: they read only below `tail` (tail-publish).
#[inline]
fn reuse_fence() {
    fence(Ordering::Release);
}

impl Queue {
    /// Writes as many of `msgs` as fit now (the producer lock is held); one `tail` store.
    fn write_locked(&self, msgs: &mut dyn Source, from: usize) -> Result<usize, QueueError> {
        let c = self.ctrl();
        // SYNC: tail-publish. Acquire: a previous holder that died after its store is not
        // synchronised with us through the lock word; this load is.
        let tail = c.tail.value.load(Ordering::Acquire);
        // The `reclaim` this process saw last (under this lock): reclaim only grows, so it is a
        // safe lower bound, and while it leaves room we need not read the shared line, which
        // consumers write on every take (a cache miss here, and one for their next CAS).
        // Relaxed: it was stored after an Acquire load of `reclaim` in an earlier critical
        // section of this lock, which happens-before ours through the lock's Release/Acquire.
        let mut reclaim = self.reclaim_seen.load(Ordering::Relaxed);
        let mut fresh = false;
        if self.positions_ok(reclaim, tail, "").is_err() {
            // Stale (another process moved tail on a newer reclaim) or never read.
            reclaim = self.load_reclaim(tail)?;
            fresh = true;
        }
        reuse_fence();
        let mut limit = reclaim + self.cap;
        let mut pos = tail;
        let mut n = 0;
        let mut bytes = 0u64;
        for i in from..msgs.count() {
            let m_len = msgs.len(i);
            let need = record_size(m_len);
            let idx = pos % self.cap;
            let room = self.cap - idx;
            // A frame (see `mem::reuse`) goes to offset 0, over the previous frame, when the
            // consumers have released everything before it.
            let restart = pos == tail && idx != 0 && need <= idx && is_frame(need, self.cap) && {
                reclaim = self.restart_hot(tail, idx, need)?;
                fresh = true;
                limit = reclaim + self.cap;
                reuse_fence();
                reclaim == tail
            };
            let end = if need > room || restart { pos + room + need } else { pos + need };
            if end > limit && !fresh {
                reclaim = self.load_reclaim(tail)?;
                fresh = true;
                limit = reclaim + self.cap;
                reuse_fence();
            }
            if need > room || restart {
                if pos + room > limit {
                    break;
                }
                // Relaxed: published by the Release store of `tail` below (tail-publish).
                self.head(idx).store(head_word(room as u32, STATE_PADDING), Ordering::Relaxed);
                pos += room;
                if pos + need > limit {
                    break;
                }
            } else if pos + need > limit {
                break;
            }
            let idx = pos % self.cap;
            // Relaxed: both words are published by the Release store of `tail` (tail-publish).
            self.head(idx).store(head_word(m_len as u32, STATE_COMMITTED), Ordering::Relaxed);
            self.owner(idx).store(0, Ordering::Relaxed);
            if m_len % RECORD_ALIGN != 0 {
                // Zero the record's last word before the payload covers its start, so every
                // byte of the record is written by this lap: the padding bytes after the payload
                // carry no stale bytes of an older record, and no 8-byte word here is left half
                // atomic (an older head or owner) and half plain payload (`mem`, "Mixed-size
                // atomics").
                // SAFETY: need >= 24 here and idx + need <= cap, so the word lies in the slot
                // below (our free space, as argued there).
                unsafe { self.data.copy_in(idx + need - 8, &[0; 8]) };
            }
            // SAFETY: idx + need <= cap (checked: need <= room), and [pos, pos + need) lies in
            // [tail, reclaim + cap): free space that only the producer-lock holder writes and no
            // consumer reads before our tail store, so this slot is ours alone until then.
            if let Err(e) = unsafe { msgs.fill(i, &self.data, idx + RECORD_HEADER as u64) } {
                // Nothing of this message is visible: tail still excludes it. Commit what came
                // before, then report.
                if pos != tail {
                    // SYNC: tail-publish (as below).
                    c.tail.value.store(pos, Ordering::Release);
                }
                return Err(e);
            }
            pos += need;
            n += 1;
            bytes += m_len as u64;
        }
        if n > 0 && msgs.keep(pos) {
            // A loan: its commit stores `tail` (and counts the message) later, in this critical
            // section, which the producer lock keeps open until then (`loan.rs`).
            return Ok(n);
        }
        if pos != tail {
            // SYNC: tail-publish. Release: the record headers and payloads written above
            // happen-before any consumer's Acquire load of `tail` that sees `pos`. This single
            // store is the commit: killed before it, nothing is visible.
            c.tail.value.store(pos, Ordering::Release);
        }
        if n > 0 {
            bump(&c.prod_stats.msgs, n as u64);
            bump(&c.prod_stats.bytes, bytes);
        }
        Ok(n)
    }

    /// The shared `reclaim` for a frame of `need` bytes that could go to offset 0 (`idx`: the
    /// tail's offset, `need <= idx`): if consumers still hold only the records since offset 0
    /// (the previous frame), polls for a moment for them to release it
    /// ([`reuse::Backoff::poll`]). The caller restarts at 0 if the result equals `tail`.
    #[cold]
    fn restart_hot(&self, tail: u64, idx: u64, need: u64) -> Result<u64, QueueError> {
        let mut reclaim = self.load_reclaim(tail)?;
        if reclaim != tail && tail - reclaim <= idx {
            // Relaxed: read and written only under the producer lock (as `reclaim_seen`).
            let mut hot = reuse::Backoff(self.hot.load(Ordering::Relaxed));
            hot.poll(need, || {
                reclaim = self.load_reclaim(tail)?;
                Ok(reclaim == tail)
            })?;
            self.hot.store(hot.0, Ordering::Relaxed);
        }
        Ok(reclaim)
    }

    /// Reads the shared `reclaim` (producer lock held), checks it against `tail` and remembers it.
    fn load_reclaim(&self, tail: u64) -> Result<u64, QueueError> {
        // SYNC: reclaim-publish. Acquire pairs with the Release CAS in `advance_reclaim`: every
        // consumer read of the space before `reclaim` happens-before our overwrite of it.
        let reclaim = self.ctrl().reclaim.value.load(Ordering::Acquire);
        self.positions_ok(reclaim, tail, "reclaim, tail")?;
        // Relaxed: read back only under the producer lock (see write_locked).
        self.reclaim_seen.store(reclaim, Ordering::Relaxed);
        Ok(reclaim)
    }

    /// Whether a message of `need` record bytes (or a padding record in front of it) can be
    /// written now, judged from the shared positions.
    pub(super) fn can_progress(&self, need: u64) -> bool {
        let c = self.ctrl();
        // Acquire, as the locked path loads them (tail-publish, reclaim-publish).
        let tail = c.tail.value.load(Ordering::Acquire);
        let reclaim = c.reclaim.value.load(Ordering::Acquire);
        if reclaim > tail || tail - reclaim > self.cap || tail > self.max_pos() {
            return true; // let the locked path report the corruption
        }
        let room = self.cap - tail % self.cap;
        let step = if need > room { room } else { need };
        tail + step <= reclaim + self.cap
    }

    fn check_sizes(&self, msgs: &dyn Source) -> Result<(), QueueError> {
        let max = self.max_message_size();
        match (0..msgs.count()).map(|i| msgs.len(i)).find(|&l| l > max) {
            Some(len) => Err(QueueError::TooLarge { len, max }),
            None => Ok(()),
        }
    }

    /// Puts `msgs` in order until all are in, the deadline passes (`block`) or the queue is
    /// full (not `block`); returns how many were put. A source that keeps its records
    /// ([`Source::keep`]) returns with the producer lock still held by this process.
    pub(super) fn produce(&self, msgs: &mut dyn Source, deadline: Deadline, block: bool) -> Result<usize, QueueError> {
        self.check_sizes(msgs)?;
        let me = owner::me();
        let c = self.ctrl();
        let mut done = 0;
        let mut counted_wait = false;
        while done < msgs.count() {
            if !self.acquire(&c.prod_lock, &c.prod_stats, me, deadline) {
                return Ok(done);
            }
            let r = self.write_locked(msgs, done);
            if matches!(r, Ok(n) if n > 0) && msgs.kept() {
                return Ok(done + 1); // a loan: the lock stays held until its commit or drop
            }
            c.prod_lock.lock.unlock(me);
            let n = r?;
            if n > 0 {
                done += n;
                c.not_empty.waiter.notify();
                continue;
            }
            // Full (or only padding fitted). Reclaim what is finished, then wait.
            if self.advance_reclaim(false) || self.skip_padding(deadline)? {
                continue;
            }
            self.count_view_stall();
            let need = record_size(msgs.len(done));
            if !block {
                if self.can_progress(need) {
                    continue;
                }
                return Ok(done);
            }
            if !counted_wait {
                counted_wait = true;
                c.prod_stats.waits.fetch_add(1, Ordering::Relaxed);
            }
            self.put_window.expect(need);
            let r: Result<Option<()>, ()> = c.not_full.waiter.wait_until_in(
                &self.put_window,
                deadline,
                self.check_interval,
                || self.can_progress(need).then_some(()),
                || {
                    // A view holder may have died: reclaim its records.
                    self.advance_reclaim(true);
                    Ok(())
                },
            );
            if let Ok(None) = r {
                // Deadline: one last chance for records of dead view holders.
                if !(self.advance_reclaim(true) && self.can_progress(need)) {
                    return Ok(done);
                }
            }
        }
        Ok(done)
    }

    /// Puts `msg` if there is room now; `Ok(false)` if the queue is full. A frame (a message
    /// of 4 MiB or more and over a third of the capacity) may first poll for a moment (1 ns per 64 bytes) for the
    /// consumers to release the previous frame, so as to write over its bytes (see
    /// `mem::reuse`); every put call does the same.
    pub fn try_put(&self, msg: &[u8]) -> Result<bool, QueueError> {
        Ok(self.produce(&mut Slices(&[msg]), Deadline::after(Some(Duration::ZERO)), false)? == 1)
    }

    /// Puts `msg`, waiting for room as long as it takes.
    pub fn put(&self, msg: &[u8]) -> Result<(), QueueError> {
        self.produce(&mut Slices(&[msg]), Deadline::after(None), true).map(|_| ())
    }

    /// Puts `msg`, waiting at most `timeout` for room (`None`: forever); `Ok(false)` on timeout.
    /// Space is freed in ring order, so a view held elsewhere can keep the queue full however
    /// fast consumers take: [`QueueStats::view_stalls`](super::QueueStats::view_stalls) counts
    /// the views that stalled producers so.
    pub fn put_timeout(&self, msg: &[u8], timeout: Option<Duration>) -> Result<bool, QueueError> {
        Ok(self.produce(&mut Slices(&[msg]), Deadline::after(timeout), true)? == 1)
    }

    /// Puts as many of `msgs` as fit now, in order, under one lock acquisition and with one
    /// commit; returns how many. Fails with [`QueueError::TooLarge`] (putting nothing) if any
    /// message can never fit.
    pub fn try_put_batch(&self, msgs: &[&[u8]]) -> Result<usize, QueueError> {
        self.produce(&mut Slices(msgs), Deadline::after(Some(Duration::ZERO)), false)
    }

    /// Puts all of `msgs`, in order, waiting for room as needed (each wait ends with as many
    /// messages as fit being committed at once). Returns `msgs.len()`.
    pub fn put_batch(&self, msgs: &[&[u8]]) -> Result<usize, QueueError> {
        self.produce(&mut Slices(msgs), Deadline::after(None), true)
    }

    /// [`put_batch`](Self::put_batch) waiting at most `timeout` (`None`: forever); returns how
    /// many were put.
    pub fn put_batch_timeout(&self, msgs: &[&[u8]], timeout: Option<Duration>) -> Result<usize, QueueError> {
        self.produce(&mut Slices(msgs), Deadline::after(timeout), true)
    }

    /// Puts one message of `len` bytes written **in place**: `fill` receives the claimed slot
    /// (8-byte aligned, exactly `len` bytes) while this process holds the producer lock, and the
    /// message is committed when it returns `Ok`. An `Err` from `fill` commits nothing and is
    /// returned. Waits at most `timeout` for room (`None`: forever); `Ok(false)` on timeout.
    /// Keep `fill` short: other producers wait for the lock meanwhile.
    pub fn put_with<F>(&self, len: usize, timeout: Option<Duration>, fill: F) -> Result<bool, QueueError>
    where
        F: FnOnce(&mut [u8]) -> Result<(), QueueError>,
    {
        let block = timeout != Some(Duration::ZERO);
        let mut src = WithFill { len, fill: Some(fill) };
        Ok(self.produce(&mut src, Deadline::after(timeout), block)? == 1)
    }
}
