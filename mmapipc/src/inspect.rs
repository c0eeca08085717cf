//! Read-only walks over a live ring or queue, for tools (`mmapipc tail`): nothing here takes a
//! lock, claims a role or writes shared memory.
//!
//! # The seqlock walk
//!
//! A tool copies records out of a ring or a queue that producers and consumers keep using:
//! space behind the consumers may be reused by a producer while the tool reads it. [`peek`]
//! reads like a seqlock reader (C. Lameter, "Effective Synchronization on Linux/NUMA Systems",
//! 2005; the Linux kernel's `seqcount_t`), with a position in the role of the sequence count:
//!
//! 1. Load the *window* `[start, end)` ([`Walk::window`]): `start` is the oldest record a tool
//!    is shown (the ring's head, the queue's read position), `end` the published end (tail),
//!    loaded with Acquire so that every record before it is fully written.
//! 2. Walk the records from `start` (or from where the previous call stopped) to `end`,
//!    validating each header as a consumer would ([`Walk::record`]), and copy the payloads of
//!    the last `keep` messages with racy word loads ([`Walk::copy`]).
//! 3. Fence (Acquire), then re-read the *reuse bound* ([`Walk::reuse_bound`]: the ring's head,
//!    the queue's reclaim position). A byte is only overwritten after the reuse bound has passed
//!    it, so everything at or above the bound read now was intact while we copied it: records
//!    below it are dropped (reported as `missed`).
//!
//! Step 3 needs one thing of the writers: a producer issues a Release fence after it learned
//! how far the bound moved and before it writes into the space freed (the queue's
//! `reuse-fence`). If the walk's racy loads read anything such a write stored, the two fences
//! synchronise and the re-read bound is at least the one the producer saw, so the copy is
//! dropped; without the writer's fence the language model lets the re-read return an older
//! bound (the loom model `peek_while_producing_and_consuming` finds that interleaving). On
//! x86-64 a Release fence compiles to nothing.
//!
//! An overwritten header could have sent the walk to a wrong record boundary, so the walk is
//! trusted only from a position it is known to have reached correctly: it started at or above
//! the bound, passed through the bound exactly, or ended at or below it (then it keeps nothing).
//! Otherwise it is retried from the window's new start. A record that fails validation at or
//! above the bound, on a trusted walk, is real corruption (nobody may reuse it yet): an error.

use std::collections::VecDeque;

use crate::sync::{fence, Ordering};

/// Messages copied out of a ring or queue without taking them ([`Queue::peek_committed`],
/// `Ring::peek_published`).
///
/// [`Queue::peek_committed`]: crate::Queue::peek_committed
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peeked {
    /// `(position, payload)` of each message, oldest first.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Where the next call should continue (the published end seen).
    pub next: u64,
    /// True if consumers had already taken records from the requested start on (they were
    /// missed), or if copied records were overwritten meanwhile and dropped.
    pub missed: bool,
}

/// A record as a walk sees it ([`Walk::record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// Filler (to the end of the data area): skipped.
    Padding {
        /// Bytes to the next record.
        span: u64,
    },
    /// A message.
    Message {
        /// Bytes to the next record (header, payload and alignment).
        span: u64,
        /// Data-area offset of the payload.
        off: u64,
        /// Payload length.
        len: usize,
    },
}

/// What a ring or queue gives [`peek`] to walk it (see the module docs).
pub(crate) trait Walk {
    /// The error of a corrupt record.
    type Error;

    /// `(start, end)`: the oldest position a tool is shown and the published end, each loaded
    /// with Acquire (the end's load pairs with the producers' publishing store). `None` if the
    /// two are inconsistent (racing updates between the loads, or corruption): retried.
    fn window(&self) -> Option<(u64, u64)>;

    /// Decodes and validates the record at `pos`, which must end by `end`.
    fn record(&self, pos: u64, end: u64) -> Result<Record, Self::Error>;

    /// Copies `buf.len()` payload bytes from data-area offset `off` (a message's `off` and `len`
    /// from [`record`](Self::record)), tolerating writers: the copy may be torn.
    fn copy(&self, off: u64, buf: &mut [u8]);

    /// The reuse bound, loaded with Acquire: no byte at or above it has been reused.
    fn reuse_bound(&self) -> u64;

    /// The error after too many attempts without a consistent snapshot.
    fn no_snapshot(&self) -> Self::Error;
}

/// Attempts before [`peek`] gives up (each fails only when consumers and producers overtook it).
const ATTEMPTS: usize = 100;

/// Copies the last `keep` messages from `from` (a [`Peeked::next`]; `None` or a position no
/// longer in the window: the window's start) to the published end, without taking them.
pub(crate) fn peek<W: Walk>(w: &W, from: Option<u64>, keep: usize) -> Result<Peeked, W::Error> {
    let mut from = from;
    let mut missed = false;
    for _ in 0..ATTEMPTS {
        let Some((first, end)) = w.window() else { continue };
        let start = match from {
            Some(f) if f >= first && f <= end && f % 8 == 0 => f,
            Some(f) => {
                missed |= f < first;
                first
            }
            None => first,
        };
        let mut chain: Vec<u64> = Vec::new(); // every record position walked (increasing)
        let mut found: VecDeque<(u64, u64, usize)> = VecDeque::new(); // position, offset, length
        let mut pos = start;
        let mut failure = None;
        while pos < end {
            chain.push(pos);
            match w.record(pos, end) {
                Ok(Record::Padding { span }) => pos += span,
                Ok(Record::Message { span, off, len }) => {
                    if keep > 0 {
                        if found.len() == keep {
                            found.pop_front();
                        }
                        found.push_back((pos, off, len));
                    }
                    pos += span;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut records = Vec::with_capacity(found.len());
        for (p, off, len) in found {
            let mut buf = vec![0u8; len];
            w.copy(off, &mut buf);
            records.push((p, buf));
        }
        // SYNC: the writers' reuse fence (see the module docs). Acquire fence: the copies above
        // (Relaxed loads) are ordered before the re-read of the bound, as a seqlock reader
        // orders its data reads before the second sequence read.
        fence(Ordering::Acquire);
        let bound = w.reuse_bound();
        let synced = start >= bound || chain.binary_search(&bound).is_ok() || bound >= pos;
        if let Some(e) = failure {
            if synced && pos >= bound {
                return Err(e);
            }
            missed = true;
            from = None;
            continue;
        }
        if !synced {
            missed = true;
            from = None;
            continue;
        }
        let before = records.len();
        records.retain(|(p, _)| *p >= bound);
        missed |= records.len() != before;
        return Ok(Peeked { records, next: pos, missed });
    }
    Err(w.no_snapshot())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A scripted ring: 8-byte records `[len u32, kind u32]` then the payload, over a plain
    /// buffer; `windows` and `bounds` are what the walk reads, one per attempt (the last one
    /// repeats).
    struct Script {
        data: Vec<u8>,
        windows: Vec<(u64, u64)>,
        bounds: Vec<u64>,
        attempts: Cell<usize>,
        reads: Cell<usize>,
    }

    impl Walk for Script {
        type Error = String;
        fn window(&self) -> Option<(u64, u64)> {
            let i = self.attempts.get();
            self.attempts.set(i + 1);
            Some(self.windows[i.min(self.windows.len() - 1)])
        }
        fn record(&self, pos: u64, end: u64) -> Result<Record, String> {
            let p = pos as usize;
            let len = u32::from_le_bytes(self.data[p..p + 4].try_into().unwrap()) as u64;
            let span = (8 + len).next_multiple_of(8);
            if pos + span > end || self.data[p + 4] > 1 {
                return Err(format!("bad record at {pos}"));
            }
            Ok(match self.data[p + 4] {
                1 => Record::Padding { span },
                _ => Record::Message { span, off: pos + 8, len: len as usize },
            })
        }
        fn copy(&self, off: u64, buf: &mut [u8]) {
            buf.copy_from_slice(&self.data[off as usize..off as usize + buf.len()]);
        }
        fn reuse_bound(&self) -> u64 {
            let i = self.reads.get();
            self.reads.set(i + 1);
            self.bounds[i.min(self.bounds.len() - 1)]
        }
        fn no_snapshot(&self) -> String {
            "no snapshot".into()
        }
    }

    /// Records "a" at 0, padding at 16 (8 bytes), "bcd" at 24; 40 bytes in all.
    fn script(bounds: Vec<u64>) -> Script {
        let mut data = vec![0u8; 40];
        data[0] = 1;
        data[8] = b'a';
        data[20] = 1; // padding: len 0, kind 1
        data[24] = 3;
        data[32..35].copy_from_slice(b"bcd");
        Script { data, windows: vec![(0, 40)], bounds, attempts: Cell::new(0), reads: Cell::new(0) }
    }

    #[test]
    fn keeps_the_last_messages_and_skips_padding() {
        let p = peek(&script(vec![0]), None, 8).unwrap();
        assert_eq!(p.records, vec![(0, b"a".to_vec()), (24, b"bcd".to_vec())]);
        assert_eq!((p.next, p.missed), (40, false));
        let p = peek(&script(vec![0]), None, 1).unwrap();
        assert_eq!(p.records, vec![(24, b"bcd".to_vec())]);
        let p = peek(&script(vec![0]), Some(24), 8).unwrap();
        assert_eq!(p.records, vec![(24, b"bcd".to_vec())], "continues from a Peeked::next");
    }

    #[test]
    fn records_below_the_bound_are_dropped_as_missed() {
        let p = peek(&script(vec![24]), None, 8).unwrap();
        assert_eq!(p.records, vec![(24, b"bcd".to_vec())]);
        assert!(p.missed);
        let p = peek(&script(vec![40]), None, 8).unwrap();
        assert!(p.records.is_empty() && p.missed, "everything was reused meanwhile");
    }

    #[test]
    fn a_bound_inside_a_record_means_retry() {
        // The bound at 8 lies inside the first record: the walk may have been sent astray, so
        // it is retried (the second attempt reads the bound at 24, on a record boundary).
        let s = script(vec![8, 24]);
        let p = peek(&s, None, 8).unwrap();
        assert_eq!(p.records, vec![(24, b"bcd".to_vec())]);
        assert!(p.missed);
        assert_eq!(s.reads.get(), 2);
        let s = script(vec![8]);
        assert_eq!(peek(&s, None, 8), Err("no snapshot".into()), "never consistent");
    }

    #[test]
    fn a_bad_record_is_an_error_only_where_nobody_may_reuse_it() {
        let mut s = script(vec![0]);
        s.data[28] = 7; // the record at 24 has kind 7
        assert_eq!(peek(&s, None, 8), Err("bad record at 24".into()));
        // Below the bound it may be a reused record: retried from the window's new start.
        let mut s = script(vec![32, 40]);
        s.data[28] = 7;
        s.windows = vec![(0, 40), (40, 40)];
        let p = peek(&s, None, 8).unwrap();
        assert_eq!((p.records.len(), p.next, p.missed), (0, 40, true));
    }
}
