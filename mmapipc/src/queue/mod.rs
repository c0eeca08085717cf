//! [`Queue`]: a crash-safe, bounded, multi-producer multi-consumer queue of byte messages.
//!
//! # Algorithm
//!
//! A **two-lock bounded queue** in the spirit of Michael & Scott's two-lock queue ("Simple,
//! Fast, and Practical Non-Blocking and Blocking Concurrent Queue Algorithms", PODC 1996): one
//! lock serialises producers, another serialises consumers, so a producer and a consumer never
//! contend with each other. Here the queue is a ring of variable-length records framed like
//! Agrona's ring buffers (`RecordDescriptor`: a length/type header, 8-byte alignment, a padding
//! record at the wrap so no record is split). The locks are *robust* ([`crate::lock`]): the word
//! holds the owner's pid and start time, and a waiter replaces an owner that has died.
//!
//! Three monotonic byte positions (u64, never wrapping in practice) describe the ring:
//!
//! ```text
//!   reclaim            read                    tail                reclaim + capacity
//!      |  taken / done   |  committed, waiting   |   free for producers    |
//! ```
//!
//! * `tail` (producer lock): everything before it is committed. A producer writes whole records
//!   (header, payload) beyond `tail`, then publishes them with **one** Release store of `tail`.
//! * `read` (consumer lock): the next record to hand out. A consumer copies the records (or, for
//!   views, stamps them TAKEN with its owner word), then commits with **one** Release store of
//!   `read`.
//! * `reclaim` (lock-free, CAS): everything before it is free for producers. Anyone advances it
//!   over records that are finished: padding, records copied out (state still COMMITTED below
//!   `read`: only copying consumers leave that state there, and they copy before moving `read`),
//!   DONE records (released views) and TAKEN records whose owner is dead.
//!
//! # Why a SIGKILL at any instruction wedges nobody and loses nothing committed
//!
//! Each critical section changes shared state visible to others with exactly one store:
//! * a producer killed before its `tail` store has written only bytes beyond `tail`, which nobody
//!   reads and the next producer overwrites; killed after it, the records are committed, whole;
//! * a consumer killed before its `read` store has copied (or stamped) records still at or beyond
//!   `read`: they are delivered again to the next consumer (the dead one never returned them), and
//!   a stale TAKEN stamp at or beyond `read` means COMMITTED; killed after it, copied records are
//!   finished and viewed records are TAKEN by a dead owner. A take that starts at a padding
//!   record stores `read` past it first (then reclaims it, so producers of frames get its
//!   space while the records behind it are read): killed between the two stores, only the
//!   padding is passed;
//! * `reclaim` moves by CAS from a value to a larger one: a killed advancer leaves it unchanged.
//!
//! A lock whose holder died is taken over by the next waiter within one check interval
//! ([`QueueOptions::recovery_bound`] / 4); a TAKEN record whose owner died is reclaimed by a
//! producer that finds the queue full, within one check interval too.
//!
//! **Messages a dead consumer had taken** (as views, or copied with `read` already stored) count
//! as delivered and are discarded: the consumer took them, and nobody can know whether it acted on
//! them. A message is never delivered twice to live consumers, and never lost before some
//! consumer took it.
//!
//! # Records
//!
//! ```text
//! data record (8-aligned, total = align8(16 + len)):
//!   0: len   u32   payload length
//!   4: state u32   COMMITTED | TAKEN | DONE
//!   8: owner u64   owner word of the consumer holding a view (TAKEN), else unused
//!  16: payload[len], padding to 8
//! padding record (at the wrap, fills to the end of the ring, may be only 8 bytes):
//!   0: len   u32   bytes to the end of the ring
//!   4: state u32   PADDING
//! ```
//!
//! A message longer than `capacity - 16` can never fit and is refused with
//! [`QueueError::TooLarge`]. Every length, state and position read from the mapping is validated
//! before use; inconsistent values give [`QueueError::Corrupt`], never an out-of-bounds access.
//! See `FORMAT.md` (## Queue) for the control block layout. Every access to the data area goes
//! through `mem::DataArea`, whose loom twin lets `tests/loom_queue.rs` check this code.
//!
//! # Synchronisation (the tags name each Release/Acquire pair)
//!
//! * `tail-publish`: a producer's Release store of `tail` (`producer.rs`, `write_locked`) pairs
//!   with every Acquire load of `tail` before reading records below it (consumers, tools, the
//!   next producer after a dead one).
//! * `read-publish`: a consumer's Release store of `read` (`consumer.rs`, `take_locked`) pairs
//!   with the advancers' Acquire load of `read` (`reclaim.rs`): copies and TAKEN stamps come first.
//! * `view-done`: a view's release, a Release CAS of its record from TAKEN to DONE
//!   (`views.rs`, `mark_done`), pairs with the advancers' Acquire load of record heads.
//! * `reclaim-publish`: the advancers' AcqRel CAS of `reclaim` (`reclaim.rs`) pairs with the
//!   producers' Acquire load before overwriting space (`producer.rs`, `load_reclaim`), with other
//!   advancers, and with a tool's re-read of the reuse bound (`inspect.rs`).
//! * `reuse-fence`: a producer's Release fence between learning how far `reclaim` moved and
//!   writing into the space it freed (`producer.rs`) pairs with the Acquire fence of a tool's
//!   seqlock walk before it re-reads `reclaim` ([`crate::inspect`]): a tool that copied bytes a
//!   producer then rewrote sees the `reclaim` that let it, and drops the copy.
//! * `lock`: the robust locks' Acquire CAS and Release unlock ([`crate::lock`]).
//! * `sleep-handshake`: waiters and wakers ([`crate::wait::Waiter`]).
//!
//! # Files
//!
//! `handle.rs` (the [`Queue`] handle: create, open, options, counters), `layout.rs` (the control
//! block), `records.rs` (record framing and validation), `producer.rs`, `consumer.rs`,
//! `views.rs` (zero-copy views), `loan.rs` (a put split into reserve and commit), `reclaim.rs`,
//! `inspect.rs` (read-only walks for tools), `error.rs`.

mod consumer;
mod error;
mod handle;
mod inspect;
mod layout;
mod loan;
mod producer;
mod reclaim;
mod records;
mod views;
#[cfg(all(target_os = "linux", not(loom)))]
mod watch;

#[cfg(all(test, not(loom)))]
mod loan_tests;
#[cfg(all(test, not(loom)))]
mod tests;

pub use crate::inspect::Peeked;
pub use error::QueueError;
pub use handle::{Queue, QueueOptions, QueueStats};
pub use layout::{
    ConfigLine, Control, LockLine, PosLine, StatsLine, WaiterLine, CONTROL_SIZE, MAX_CAPACITY, MIN_CAPACITY,
    QUEUE_MAGIC,
};
pub use loan::{Loan, OwnedLoan, QueueLoan};
pub use records::{RECORD_ALIGN, RECORD_HEADER, STATE_COMMITTED, STATE_DONE, STATE_PADDING, STATE_TAKEN};
pub use views::{FixedViews, OwnedView, QueueView, View};
