//! [`RingError`]: why a ring operation failed (beside the ring, as `QueueError` beside the
//! queue; the two have the same variants, with messages of the same shape, for the same
//! conditions), and the check of positions read from the mapping.

use super::layout::Role;

/// Why a ring operation failed. "Full", "empty" and "timed out" are not errors: they are the
/// `Ok(false)` / `Ok(None)` results of the `try_` and `_timeout` calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The message can never fit in this ring, however long one waits.
    #[error("message of {len} bytes is larger than the ring's maximum message size of {max} bytes")]
    TooLarge {
        /// Length of the message.
        len: usize,
        /// [`Ring::max_message_size`](crate::Ring::max_message_size).
        max: usize,
    },
    /// Another live process (or another handle in this process) holds the role.
    #[error(
        "the ring's {role} role is held by another live handle (pid {pid}); a ring has one producer and one consumer"
    )]
    AlreadyAttached {
        /// The role asked for.
        role: Role,
        /// The holder's pid.
        pid: u32,
    },
    /// The shared indices or a record header are inconsistent: a peer wrote garbage.
    /// Nothing was read or written out of bounds.
    #[error("ring is corrupt: {reason}")]
    Corrupt {
        /// Which check failed.
        reason: String,
    },
    /// A run of fixed-size records ([`Ring::read_fixed_batch_detached`](crate::Ring::read_fixed_batch_detached))
    /// met a first message of another length: a producer wrote something that is not a record of
    /// the channel's type. That message was consumed (so it cannot block the ring) and discarded.
    #[error("message of {len} bytes in a ring of {expected}-byte records (taken and discarded)")]
    WrongSize {
        /// The message's length.
        len: usize,
        /// The record length asked for.
        expected: usize,
    },
}

#[cold]
pub(super) fn corrupt(reason: impl Into<String>) -> RingError {
    RingError::Corrupt { reason: reason.into() }
}

/// Checks a (head, tail) pair read from shared memory.
pub(super) fn check_indices(head: u64, tail: u64, capacity: u64) -> Result<(), RingError> {
    if head % 8 != 0 || tail % 8 != 0 {
        return Err(corrupt(format!("misaligned indices head={head} tail={tail}")));
    }
    match tail.checked_sub(head) {
        // A tail this close to u64::MAX cannot come from a real producer (decades of traffic) and
        // would overflow `tail + record`: a peer wrote it.
        Some(_) if tail > u64::MAX - 2 * capacity => Err(corrupt(format!("index out of range: tail={tail}"))),
        Some(used) if used <= capacity => Ok(()),
        _ => Err(corrupt(format!("indices out of range: head={head} tail={tail} capacity={capacity}"))),
    }
}
