//! [`TopicError`]: why a topic operation failed (beside the topic, as `RingError` beside the
//! ring; the shared conditions have the same variants and messages of the same shape).

/// Why a topic operation failed. "No room", "nothing to read" and "timed out" are not errors:
/// they are the `Ok(false)` / `Ok(None)` results of the `try_` and `_timeout` calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The message can never fit in this topic, however long one waits.
    #[error("message of {len} bytes is larger than the topic's maximum message size of {max} bytes")]
    TooLarge {
        /// Length of the message.
        len: usize,
        /// [`Topic::max_message_size`](crate::Topic::max_message_size).
        max: usize,
    },
    /// Another live process (or another handle in this process) publishes on this topic.
    #[error("the topic's publisher role is held by another live handle (pid {pid}); a topic has one publisher")]
    AlreadyAttached {
        /// The holder's pid.
        pid: u32,
    },
    /// Every entry of the subscriber table (or the group table) is held by a live subscriber.
    #[error("the topic has no free subscriber slot: all {max} are held by live subscribers")]
    TooManySubscribers {
        /// `max_subscribers` of the topic.
        max: usize,
    },
    /// The handle was inherited across `fork`: the slot or role is the parent's.
    #[error("this {what} handle belongs to the parent process (inherited across fork); subscribe or attach anew")]
    Inherited {
        /// "publisher" or "subscriber".
        what: &'static str,
    },
    /// The operation is not available for this subscriber (see the message).
    #[error("{0}")]
    Unsupported(&'static str),
    /// A run of fixed-size records ([`Subscriber::try_recv_fixed_batch`](crate::topic::Subscriber::try_recv_fixed_batch))
    /// met a first message of another length: it was received (so it cannot block the
    /// subscriber) and discarded.
    #[error("message of {len} bytes in a topic of {expected}-byte records (received and discarded)")]
    WrongSize {
        /// The message's length.
        len: usize,
        /// The record length asked for.
        expected: usize,
    },
    /// A bad argument (an empty or too long group name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The shared positions, the subscriber table or a record header are inconsistent: a peer
    /// wrote garbage. Nothing was read or written out of bounds.
    #[error("topic is corrupt: {reason}")]
    Corrupt {
        /// Which check failed.
        reason: String,
    },
}

#[cold]
pub(super) fn corrupt(reason: impl Into<String>) -> TopicError {
    TopicError::Corrupt { reason: reason.into() }
}

/// Checks a (start, tail) pair read from shared memory: `start <= tail`, both 8-aligned, at most
/// `capacity` apart, and far from overflow.
pub(super) fn check_window(start: u64, tail: u64, capacity: u64) -> Result<(), TopicError> {
    if start % 8 != 0 || tail % 8 != 0 {
        return Err(corrupt(format!("misaligned positions {start} and tail {tail}")));
    }
    match tail.checked_sub(start) {
        Some(_) if tail > u64::MAX - 4 * capacity => Err(corrupt(format!("position out of range: tail={tail}"))),
        Some(used) if used <= capacity => Ok(()),
        _ => Err(corrupt(format!("positions out of range: {start} and tail {tail} (capacity {capacity})"))),
    }
}
