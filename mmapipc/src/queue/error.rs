//! [`QueueError`]: why a queue operation failed.

/// Why a queue operation failed. Timeouts and full/empty queues are not errors (they are the
/// `false`/`None` results of the `try_`/`_timeout` calls).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The message can never fit: it is longer than the queue's maximum message size. Nothing
    /// was put (for a batch: none of its messages).
    #[error("message of {len} bytes is larger than the queue's maximum message size of {max} bytes")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// [`Queue::max_message_size`](crate::Queue::max_message_size).
        max: usize,
    },
    /// The queue's shared positions or a record header are inconsistent (a corrupt file or a
    /// misbehaving peer). Nothing was read or written out of bounds.
    #[error("queue is corrupt: {reason}")]
    Corrupt {
        /// Which check failed.
        reason: String,
    },
    /// A run of fixed-size records ([`Queue::get_fixed_views`](crate::Queue::get_fixed_views))
    /// met a first message of another length: a producer wrote something that is not a record of
    /// the channel's type. That message was taken (so it cannot block the queue) and discarded.
    #[error("message of {len} bytes in a queue of {expected}-byte records (taken and discarded)")]
    WrongSize {
        /// The message's length.
        len: usize,
        /// The record length asked for.
        expected: usize,
    },
    /// A [`QueueLoan`](crate::QueueLoan) was committed by a process that did not make it (a
    /// forked child holding a copy of its parent's loan). Nothing was published; the loan stays
    /// its maker's.
    #[error("this loan belongs to the process that made it (a forked child cannot commit its parent's loan)")]
    ForeignLoan,
}

/// A [`QueueError::Corrupt`] saying `what` failed.
#[cold]
pub(super) fn corrupt(what: impl Into<String>) -> QueueError {
    QueueError::Corrupt { reason: what.into() }
}
