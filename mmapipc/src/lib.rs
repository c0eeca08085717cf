//! # mmapipc
//!
//! Zero-copy inter-process messaging over memory-mapped files.
//!
//! * [`SharedMemory`]: a raw shared region with bounds-checked byte and integer access.
//! * [`Ring`]: a lock-free single-producer single-consumer ring of variable-length messages.
//! * [`Queue`]: a crash-safe multi-producer multi-consumer queue of byte messages, with batches
//!   and zero-copy views.
//! * [`Topic`]: publish-subscribe: one [`Publisher`], many [`Subscriber`]s that each see every
//!   message, consumer groups, backpressure or overwrite.
//! * [`TypedRing`], [`TypedQueue`]: the same channels carrying records of one
//!   `#[derive(IpcMessage)]` type, schema-checked on open and read in place (see [`typed`]).
//!
//! * [`aio`] (feature `tokio`): `recv_async`/`send_async` on the same channels, and
//!   [`wait::Notifier`] for other event loops (a channel side as an eventfd).
//!
//! Every file starts with a validated, versioned header (see [`layout`]); files are created with
//! `O_EXCL | O_NOFOLLOW | O_CLOEXEC` and mode 0600 unless told otherwise (see [`region`]).
//! A bare name such as `"frames"` lives in `/dev/shm`; any path with a `/` is used as given.

#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets `#[derive(IpcMessage)]`'s `::mmapipc::...` paths resolve inside this crate too.
extern crate self as mmapipc;

/// `#[derive(IpcMessage)]`.
pub use mmapipc_derive::IpcMessage;
/// rkyv, re-exported so users need one dependency (`#[rkyv(crate = mmapipc::rkyv)]`).
pub use rkyv;

#[cfg(all(feature = "tokio", target_os = "linux", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod aio;
pub mod error;
// The example message types for the unit tests: one definition, shipped by the CLI crate.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;
pub mod fork;
pub mod inspect;
pub mod kind;
pub mod layout;
pub mod lock;
pub(crate) mod mem;
pub mod owner;
pub mod process;
pub mod queue;
pub mod region;
pub mod ring;
pub mod shm;
mod shorthands;
mod span;
mod sync;
pub mod topic;
pub mod typed;
pub mod wait;

pub use error::{AccessError, OpenError};
pub use kind::Kind;
pub use mem::FixedRun;
pub use queue::{
    FixedViews, OwnedLoan, OwnedView, Queue, QueueError, QueueLoan, QueueOptions, QueueStats, QueueView, View,
};
pub use region::{resolve_path, CreateOptions, OpenOptions, Region};
pub use ring::{RecvGuard, Ring, RingError, SlotMut};
pub use shm::SharedMemory;
pub use span::Span;
pub use topic::{Publisher, Subscriber, Topic, TopicError};
pub use typed::{
    IpcMessage, Schema, TypedGuard, TypedOpenError, TypedQueue, TypedRecvError, TypedRing, TypedSendError, TypedView,
    VecLoan,
};
