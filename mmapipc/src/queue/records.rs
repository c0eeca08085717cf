//! Record framing: the head word (`len`, `state`), the states and record sizes. The accessors of
//! a record's words and the checks that every position and record read from the mapping passes
//! before it is used are `Queue`'s (`handle.rs`).

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
