//! Frames written over the previous one ([`crate::mem::reuse`]): a block-mode publisher whose
//! subscribers have all let go of the last frame writes the next one at offset 0 again, over
//! bytes that are still in the caches and the TLB.
//!
//! The ring and the queue restart at offset 0 behind a padding record as soon as the consumer
//! has released everything. The topic has one more step: the mark after the frame (the next
//! stamp at the published end, 8 bytes at the frame's end) lands exactly where the padding's
//! header is when the previous frame also started at offset 0, and a subscriber reads that
//! header to step over the padding. So the publisher publishes the padding, wakes the
//! subscribers, and writes the frame once every live subscriber and group has passed it; the
//! room check demands it anyway (the mark's bytes lie below their cursors until then).
//!
//! That step must be short, or it costs more than the cached bytes save, and it must not turn
//! into a wait for a subscriber that is doing something else. So a publisher restarts only when
//! it would wait anyway for room (`try_publish_waiting`, which the blocking calls use; plain
//! `try_publish` never restarts, so it never reports "no room" that a restart made) and only
//! while every subscriber polls in a blocking receive (its entry's `waiting` hint set, its
//! `sleeping` word clear). A poll that times out counts towards backing off, as the ring's.

use std::convert::Infallible;

use crate::mem::reuse::poll_for;
use crate::sync::Ordering;
use crate::wait::asymmetric;

use super::layout::{NO_CURSOR, RECORD_HEADER};
use super::publisher::Publisher;

impl Publisher {
    /// Whether a frame of `rec` bytes (with `rec <= off`) should start at offset 0: true when
    /// every live subscriber's and group's cursor is at our tail (everything published has been
    /// let go) and every subscriber waits in a receive ([`all_waiting`](Self::all_waiting)).
    /// When only this lap's records since offset 0 are still held (the previous frame, as a
    /// view) or a subscriber is not waiting yet, polls for a moment unless backing off
    /// ([`crate::mem::reuse::Backoff`]). With no subscriber at all the frames keep their order of
    /// space, so late joiners at `oldest` still find as much history as without frames.
    #[cold]
    pub(super) fn restart_hot(&mut self, rec: u64) -> bool {
        let tail = self.tail;
        // Records of a batch not published yet are ours: waiting would not release them.
        if self.published != tail {
            return false;
        }
        self.rescan();
        // No subscriber, or records before this lap's held (not just the last frame).
        if self.cached_min == NO_CURSOR || self.cached_min < tail - self.off {
            return false;
        }
        if self.cached_min >= tail && self.all_waiting() {
            return true;
        }
        let mut hot = self.hot;
        let released = hot
            .poll(rec, || {
                self.rescan();
                Ok::<bool, Infallible>(self.cached_min >= tail && self.all_waiting())
            })
            .unwrap_or_else(|never| match never {});
        self.hot = hot;
        released
    }

    /// True if every live subscriber polls in a blocking receive (its entry's `waiting` hint
    /// set, its `sleeping` word clear), so that it will step over the padding within
    /// microseconds. One that does not wait (it works on the last message, receives without
    /// blocking or through a reactor) might not look again for long, and waking one asleep
    /// costs more than the cached bytes save (docs/benchmarks.md, "Topic frames"): then the
    /// frame goes to the other half, as without restarts.
    fn all_waiting(&self) -> bool {
        let mem = &*self.mem;
        (0..mem.nsubs).all(|i| {
            let e = mem.sub(i);
            // Relaxed: hints; the cursors decide what may be overwritten.
            e.owner.load(Ordering::Relaxed) == 0
                || (e.waiting.load(Ordering::Relaxed) != 0 && e.sleeping.load(Ordering::Relaxed) == 0)
        })
    }

    /// After the padding in front of a frame restarted at offset 0 is published: wakes the
    /// subscribers and polls (yielding, so that a subscriber sharing our CPU runs) until every
    /// one has stepped over the padding, for as long as [`Backoff`](crate::mem::reuse::Backoff)
    /// polls. A timeout counts towards backing off; the caller's room check then finds no room
    /// and waits as for any full topic.
    #[cold]
    pub(super) fn await_padding_passed(&mut self, rec: u64) {
        // The frame's mark ends here: every cursor must be past it (the padding's header).
        let need = self.tail + rec + RECORD_HEADER as u64 - self.mem.capacity;
        if asymmetric::notify(&self.mem.head().wait.data) {
            self.reap_sleepers();
        }
        let passed = poll_for(rec, || {
            self.rescan();
            let ok = self.cached_min >= need;
            if !ok {
                crate::sync::yield_now();
            }
            Ok::<bool, Infallible>(ok)
        })
        .unwrap_or_else(|never| match never {});
        self.hot.record(passed);
    }
}
