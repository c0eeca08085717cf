//! A handle's own state of each side (never in shared memory): the role [`Claim`] and the
//! producer's and consumer's positions, cached peer positions and counters. The algorithms over
//! them are `producer.rs` and `consumer.rs`; roles are claimed and given back in `attach.rs`.

use crate::mem::reuse;
use crate::wait::SpinWindow;

/// A role this handle holds, or held.
#[derive(Debug)]
pub(super) struct Claim {
    /// The fork generation the claim was made in, or [`RELEASED`]. The fast paths compare it
    /// with the current generation only: a released or inherited role fails that one test.
    pub(super) generation: u64,
}

/// [`Claim::generation`] of a role given back: never equal to a fork generation.
pub(super) const RELEASED: u64 = u64::MAX;

/// The fork generation now ([`crate::fork::generation`]; 0 under loom, which never forks).
#[inline]
pub(super) fn fork_generation() -> u64 {
    #[cfg(not(loom))]
    {
        crate::fork::generation()
    }
    #[cfg(loom)]
    0
}

#[derive(Debug)]
pub(super) struct ProducerState {
    pub(super) claim: Claim,
    /// Our position (equals the published tail between operations).
    pub(super) tail: u64,
    /// `tail % capacity`.
    pub(super) off: u64,
    /// Last head we loaded; reloaded only when the ring looks full.
    pub(super) cached_head: u64,
    /// Inside a "found full" episode (counted once).
    pub(super) full: bool,
    /// Our copies of the shared `messages_in`/`bytes_in` (only the producer writes them): the
    /// shared counters are then updated with plain stores, never a load of a line the consumer
    /// may have just pulled away to read `tail` (a load there would stall the producer).
    pub(super) messages: u64,
    pub(super) bytes: u64,
    /// When to wait for the consumer's release of the previous frame ([`reuse::Backoff`]).
    pub(super) hot: reuse::Backoff,
    /// How long a wait for room polls before it sleeps.
    pub(super) window: SpinWindow,
}

#[derive(Debug)]
pub(super) struct ConsumerState {
    pub(super) claim: Claim,
    /// Our position (may run ahead of the published head by skipped padding and detached reads).
    pub(super) head: u64,
    /// `head % capacity`.
    pub(super) off: u64,
    /// Last tail we loaded; reloaded only when the ring looks empty.
    pub(super) cached_tail: u64,
    /// Bytes of a detached record ([`RecvGuard::detach`](super::RecvGuard::detach)) not yet released.
    pub(super) held: u64,
    /// Counters not yet published (messages, payload bytes).
    pub(super) pending_msgs: u64,
    pub(super) pending_bytes: u64,
    /// Our copies of the shared `messages_out`/`bytes_out` (see ProducerState::messages).
    pub(super) messages: u64,
    pub(super) bytes: u64,
    /// Inside a "found empty" episode (counted once).
    pub(super) empty: bool,
    /// How long a wait for a message polls before it sleeps.
    pub(super) window: SpinWindow,
}
