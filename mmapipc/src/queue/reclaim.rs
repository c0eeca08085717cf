//! Reclaiming space: moving `reclaim` forward over finished records by CAS
//! (`reclaim-publish`), recovering what dead processes held, and telling what holds the space.

use super::consumer::Taken;
use super::handle::Queue;
use super::records::{split_head, RECORD_HEADER, STATE_COMMITTED, STATE_DONE, STATE_PADDING, STATE_TAKEN};
use crate::owner;
use crate::sync::Ordering;

impl Queue {
    /// After a copying take of `[from, to)`: every record there is finished (copied out, or
    /// padding), so if `reclaim` stands at `from` it can jump to `to` without walking the
    /// records; otherwise (views or other consumers' records before `from` not reclaimed yet)
    /// walk as usual.
    pub(super) fn reclaim_copied(&self, t: Taken) {
        if t.from == t.to {
            return;
        }
        let c = self.ctrl();
        // SYNC: reclaim-publish. Release: our copies out of [from, to) happen-before a producer's
        // Acquire load of the new `reclaim`, as in advance_reclaim. No record in the span needs
        // an Acquire of its state: none is a view (we took them all by copy, under the lock,
        // and nobody else takes records below `read`).
        match c.reclaim.value.compare_exchange(t.from, t.to, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => c.not_full.waiter.notify(),
            Err(_) => {
                self.advance_reclaim(false);
            }
        }
    }

    /// Moves `reclaim` over finished records (see the module docs); with `check_dead`, also over
    /// records TAKEN by processes that no longer run. Lock-free (CAS). Returns whether it moved.
    pub fn advance_reclaim(&self, check_dead: bool) -> bool {
        let c = self.ctrl();
        let mut moved = false;
        let mut last_owner = (0u64, false);
        for _ in 0..8 {
            // SYNC: reclaim-publish (Acquire, pairs with other advancers' Release CAS).
            let start = c.reclaim.value.load(Ordering::Acquire);
            // SYNC: read-publish. Acquire pairs with the consumer's Release store of `read`: the
            // states and copies of records before it are visible.
            let read = c.read.value.load(Ordering::Acquire);
            if self.positions_ok(start, read, "reclaim, read").is_err() {
                return moved;
            }
            let mut pos = start;
            let mut recovered = 0u64;
            while pos < read {
                let idx = pos % self.cap;
                // SYNC: view-done (Acquire, pairs with the Release CAS in `mark_done`).
                let (len, state) = split_head(self.head(idx).load(Ordering::Acquire));
                let finished = match state {
                    STATE_PADDING | STATE_COMMITTED | STATE_DONE => true,
                    STATE_TAKEN if check_dead && idx + RECORD_HEADER as u64 <= self.cap => {
                        // Relaxed: stamped before the TAKEN state we Acquired (read-publish).
                        let o = self.owner(idx).load(Ordering::Relaxed);
                        if last_owner.0 != o || o == 0 {
                            last_owner = (o, o != 0 && owner::alive(o));
                        }
                        if !last_owner.1 {
                            recovered += 1;
                        }
                        !last_owner.1
                    }
                    _ => false,
                };
                if !finished {
                    break;
                }
                match self.span(pos, len, state, read) {
                    Ok(s) => pos += s,
                    Err(_) => break, // racing with a reuse, or corrupt: the locked paths report it
                }
            }
            if pos == start {
                return moved;
            }
            // SYNC: reclaim-publish. Release: everything we Acquired above (consumer copies,
            // view releases) happens-before a producer's Acquire load of the new `reclaim`.
            match c.reclaim.value.compare_exchange(start, pos, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    moved = true;
                    if recovered > 0 {
                        c.cons_stats.view_recoveries.fetch_add(recovered, Ordering::Relaxed);
                    }
                    c.not_full.waiter.notify();
                    if pos == read {
                        return true;
                    }
                }
                Err(_) => continue,
            }
        }
        moved
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

    /// Recovers locks and view records held by dead processes right now (normally done by
    /// waiters within the recovery bound). Returns whether anything was recovered.
    pub fn recover(&self) -> bool {
        let c = self.ctrl();
        let me = owner::me();
        let mut any = false;
        for (l, s) in [(&c.prod_lock, &c.prod_stats), (&c.cons_lock, &c.cons_stats)] {
            if l.lock.steal_if_dead(me) {
                s.lock_recoveries.fetch_add(1, Ordering::Relaxed);
                l.lock.unlock(me);
                any = true;
            }
        }
        self.advance_reclaim(true) || any
    }
}
