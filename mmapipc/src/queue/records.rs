//! Record framing: the head word (`len`, `state`), the states, record sizes, and the checks that
//! every position and record read from the mapping passes before it is used.

use super::error::{corrupt, QueueError};
use super::handle::Queue;
use crate::sync::AtomicU64;

/// Bytes of a data record before its payload.
pub const RECORD_HEADER: usize = 16;
/// Records start on multiples of this.
pub const RECORD_ALIGN: usize = 8;

/// Record state: written by a producer, not yet taken (or copied out, below `read`).
pub const STATE_COMMITTED: u32 = 0x4D4D_0001;
/// Record state: filler to the end of the ring.
pub const STATE_PADDING: u32 = 0x4D4D_0002;
/// Record state: handed out as a view to the consumer named by `owner`.
pub const STATE_TAKEN: u32 = 0x4D4D_0003;
/// Record state: view released, the space may be reclaimed.
pub const STATE_DONE: u32 = 0x4D4D_0004;

/// A record's first 8 bytes as one word: `len` in bytes 0..4, `state` in bytes 4..8, each in the
/// machine's byte order (little-endian: the only ABI, see FORMAT.md), exactly as two separate
/// `u32`s would lie there.
#[inline]
pub(super) const fn head_word(len: u32, state: u32) -> u64 {
    let (l, s) = (len.to_ne_bytes(), state.to_ne_bytes());
    u64::from_ne_bytes([l[0], l[1], l[2], l[3], s[0], s[1], s[2], s[3]])
}

/// `(len, state)` of a record's first word (the inverse of [`head_word`]).
#[inline]
pub(super) const fn split_head(word: u64) -> (u32, u32) {
    let b = word.to_ne_bytes();
    (u32::from_ne_bytes([b[0], b[1], b[2], b[3]]), u32::from_ne_bytes([b[4], b[5], b[6], b[7]]))
}

/// Bytes a message of `len` payload bytes takes in the ring (header and alignment included).
#[inline]
pub(super) const fn record_size(len: usize) -> u64 {
    ((RECORD_HEADER + len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)) as u64
}

impl Queue {
    /// The first word of the record at ring index `idx` (`len` and `state`, see [`head_word`]);
    /// requires `idx % 8 == 0`, which every validated position gives (`idx < cap` always holds).
    ///
    /// `len` and `state` are accessed together as one 8-byte atomic, never as two 4-byte ones:
    /// records move through the ring, so the same 8 bytes are at other times an owner word or
    /// payload (see `mem`, "Mixed-size atomics"). Not every access is ordered: an advancer that
    /// loaded `reclaim` before another advancer moved it may still read heads in space that a
    /// producer is already reusing (its CAS then fails and the values are dropped); with 8-byte
    /// heads that read never races an atomic of another size. It may race the producer's plain
    /// payload stores, a race the hardware resolves to some value (docs/hardening.md).
    #[inline]
    pub(super) fn head(&self, idx: u64) -> &AtomicU64 {
        debug_assert!(idx % 8 == 0 && idx < self.cap);
        // SAFETY: idx < cap and both are multiples of 8, so idx + 8 <= cap: the word lies in the
        // data area, 8-aligned. Record heads are accessed only atomically, 8 bytes wide.
        unsafe { self.data.word(idx) }
    }

    /// The owner word of the data record at `idx`; requires `idx % 8 == 0`, `idx + 16 <= cap`.
    #[inline]
    pub(super) fn owner(&self, idx: u64) -> &AtomicU64 {
        debug_assert!(idx % 8 == 0 && idx + RECORD_HEADER as u64 <= self.cap);
        // SAFETY: idx + 16 <= cap, 8-aligned (callers check it); accessed only atomically.
        unsafe { self.data.word(idx + 8) }
    }

    /// Validates the record at `pos` (head already read) whose bytes must end by `limit`;
    /// returns its total size.
    #[inline]
    pub(super) fn span(&self, pos: u64, len: u32, state: u32, limit: u64) -> Result<u64, QueueError> {
        let idx = pos % self.cap;
        let span = if state == STATE_PADDING {
            let s = len as u64;
            if s != self.cap - idx || s < 8 {
                return Err(corrupt(format!("padding record at {pos} has length {len}, expected {}", self.cap - idx)));
            }
            s
        } else {
            let s = record_size(len as usize);
            if s > self.cap - idx {
                return Err(corrupt(format!("record at {pos} of {len} bytes crosses the end of the ring")));
            }
            s
        };
        if pos + span > limit {
            return Err(corrupt(format!("record at {pos} of {span} bytes extends past the published end {limit}")));
        }
        Ok(span)
    }

    /// Largest position a valid queue can hold: leaves room for `position + 2 * capacity`
    /// arithmetic (positions grow by bytes written; a real queue takes decades to get here).
    #[inline]
    pub(super) fn max_pos(&self) -> u64 {
        u64::MAX - 2 * self.cap
    }

    /// Checks two positions read from the mapping (`a` before `b` in the ring): ordered, at most
    /// a capacity apart, 8-aligned, and in range. `what` names them in the error.
    pub(super) fn positions_ok(&self, a: u64, b: u64, what: &str) -> Result<(), QueueError> {
        if a > b || b - a > self.cap || a % 8 != 0 || b % 8 != 0 || b > self.max_pos() {
            return Err(corrupt(format!("queue positions are inconsistent ({what}: {a}, {b}, capacity {})", self.cap)));
        }
        Ok(())
    }
}
