//! # mmapipc-zenoh
//!
//! Bridges mmapipc channels between hosts over [Eclipse Zenoh](https://zenoh.io): an *exporter*
//! consumes a local ring, queue or topic and publishes each message on a zenoh key; an *importer*
//! subscribes to that key and writes each message into a local channel of the same kind and
//! schema. Local producers and consumers stay on shared memory; only the bridge talks to the
//! network. The `mmapipc-bridge` binary runs [`export()`], [`import()`] and [`ls()`]; the commands,
//! semantics, crash behaviour and backpressure policy are `docs/bridge.md`.
//!
//! # Keys (with `K` the user's key, `F` the schema fingerprint's 16 hex digits or `bytes`)
//!
//! * `mmapipc/data/K/F`: the messages (attachment: [`Attachment`]).
//! * `mmapipc/info/K/F`: the exporter's queryable, answering its [`Announcement`] (JSON).
//! * `mmapipc/hello/K/F`: the exporter's queryable an importer asks with its own announcement;
//!   the answer is `ok` or the schema refusal (a reply error), and both ends print the diff.
//! * `mmapipc/live/K/F`: the exporter's liveliness token (what [`ls()`] lists).
//! * `mmapipc/history/K/F`: a topic exporter's queryable answering the retained messages
//!   (`?from=N`: those numbered `N` and up), as batches like the data key's.
//!
//! Two layouts never share a data key, so a subscriber of one fingerprint never sees a message
//! of another even without the hello.
//!
//! # Files
//!
//! `info.rs` (announcement, schema rule, creating the importer's channel), `channel.rs` (the
//! per-kind [`Source`](channel::Source) and [`Sink`](channel::Sink) traits), `net.rs` (zenoh
//! configuration and keys), `export.rs`, `import.rs`, `ls.rs`.

pub mod channel;
pub mod export;
pub mod import;
pub mod info;
pub mod ls;
pub mod net;
pub mod pool;

pub use export::{export, ExportOptions};
pub use import::{import, ImportOptions};
pub use info::{check, Announcement, ChannelInfo, Refusal};
pub use ls::ls;
pub use net::{Attachment, Endpoints};

/// Why a bridge command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or a file that is not a channel.
    #[error("{0}")]
    Usage(String),
    /// The two ends' channels may not be bridged.
    #[error("{0}")]
    Refused(Refusal),
    /// The local channel refused an operation.
    #[error(transparent)]
    Open(#[from] mmapipc::OpenError),
    /// The ring refused an operation.
    #[error(transparent)]
    Ring(#[from] mmapipc::RingError),
    /// The queue refused an operation.
    #[error(transparent)]
    Queue(#[from] mmapipc::QueueError),
    /// The topic refused an operation.
    #[error(transparent)]
    Topic(#[from] mmapipc::TopicError),
    /// zenoh failed.
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// The other end sent something this bridge does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl Error {
    /// The process exit status for this error: 3 for a refusal, 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Refused(_) => 3,
            Error::Usage(_) | Error::Open(_) => 2,
            _ => 1,
        }
    }
}

/// Turns a zenoh error into [`Error::Zenoh`].
pub(crate) fn z(e: impl std::fmt::Display) -> Error {
    Error::Zenoh(e.to_string())
}
