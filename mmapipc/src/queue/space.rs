//! How much room producers have, what holds it, and the counters.

use super::{split_head, Queue, QueueStats, STATE_TAKEN};
use crate::sync::{AtomicU64, Ordering};

impl Queue {
    /// Counters summed over all processes.
    pub fn stats(&self) -> QueueStats {
        let c = self.ctrl();
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueStats {
            msgs_in: l(&c.prod_stats.msgs),
            bytes_in: l(&c.prod_stats.bytes),
            full_waits: l(&c.prod_stats.waits),
            msgs_out: l(&c.cons_stats.msgs),
            bytes_out: l(&c.cons_stats.bytes),
            empty_waits: l(&c.cons_stats.waits),
            // Wrapping: the counters are peer-writable.
            lock_recoveries: l(&c.prod_stats.lock_recoveries).wrapping_add(l(&c.cons_stats.lock_recoveries)),
            view_recoveries: l(&c.cons_stats.view_recoveries),
            view_stalls: l(&c.prod_stats.view_stalls),
            used_bytes: self.used_bytes() as u64,
        }
    }

    /// Bytes in use (framing included): between `reclaim` and `tail`, that is messages waiting
    /// and messages taken as views and not released yet. A snapshot when peers are active.
    pub fn used_bytes(&self) -> usize {
        let c = self.ctrl();
        // Acquire, reclaim first: both only grow, so the later tail is at least this reclaim;
        // `tail - reclaim` can exceed the capacity only in a snapshot, hence the `min`.
        let reclaim = c.reclaim.value.load(Ordering::Acquire);
        let tail = c.tail.value.load(Ordering::Acquire);
        tail.saturating_sub(reclaim).min(self.cap) as usize
    }

    /// Bytes free for producers now: `capacity - used_bytes()`. Framing is not subtracted (a
    /// message of `n` bytes takes `16 + n` rounded up to 8, plus the rest of the ring as padding
    /// when it would wrap), and space behind an unreleased view is not free.
    pub fn available_write(&self) -> usize {
        self.capacity() - self.used_bytes()
    }

    /// Called by a producer that found the queue full: if the oldest space not yet reclaimed is
    /// a record handed out as a view and not released, the producer waits for that view (or for
    /// its holder's death); counts it in `view_stalls`, once per view position.
    pub(super) fn count_view_stall(&self) {
        let c = self.ctrl();
        // SYNC: reclaim-publish / read-publish (Acquire, as in advance_reclaim).
        let reclaim = c.reclaim.value.load(Ordering::Acquire);
        let read = c.read.value.load(Ordering::Acquire);
        if reclaim == read || self.positions_ok(reclaim, read, "").is_err() {
            return;
        }
        // SYNC: view-done (Acquire, as in advance_reclaim). Below `read`, so a record head.
        let (_, state) = split_head(self.head(reclaim % self.cap).load(Ordering::Acquire));
        // `reclaim + 1` is never 0 (positions are multiples of 8 far below u64::MAX): the
        // initial 0 means "none counted yet". Relaxed: statistics.
        let s = &c.prod_stats;
        if state == STATE_TAKEN && s.view_stall_at.swap(reclaim + 1, Ordering::Relaxed) != reclaim + 1 {
            s.view_stalls.fetch_add(1, Ordering::Relaxed);
        }
    }
}
