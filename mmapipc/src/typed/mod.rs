//! Typed channels: a ring or a queue whose messages are archived records of one [`IpcMessage`]
//! type.
//!
//! The channel stores its message schema (JSON, FORMAT.md "Schema blob") in the file.
//! [`TypedRing::open`] and [`TypedQueue::open`] check the reader's type against it
//! ([`Schema::check_reader`]) and refuse a mismatch with a field-by-field diff. Producers write
//! records **into the slot**: `send` measures the archive, claims a slot of exactly that size and
//! serializes into it; [`TypedRing::loan_vec`] reserves a large array (a frame's pixels) inside the
//! slot and hands it out as `&mut [E]` to fill before commit. Consumers get a guard that derefs to
//! `&Archived<T>` **in the slot**, validated with bytecheck (`try_recv`), or unvalidated for
//! trusted producers (`try_recv_unchecked`). The message bytes are FORMAT.md, "Typed payload".
//!
//! * [`schema`]: the [`Schema`] model, its JSON, fingerprint and compatibility rules.
//! * `codec`: [`IpcMessage`] (a type's schema) and archiving into and out of slots
//!   ([`archived_len`], [`serialize_into`], [`access`]).
//! * `channel`: what both typed channels share (open with the schema check, create with the
//!   schema blob, the writer rule, [`Received`] records), instantiated by `ring` ([`TypedRing`])
//!   and `queue` ([`TypedQueue`]).
//! * [`decode`]: a message to JSON from its schema alone ([`decode::decode_json`]).
//!
//! ```
//! use mmapipc::rkyv::{Archive, Serialize};
//! use mmapipc::{IpcMessage, TypedRing};
//!
//! #[derive(Archive, Serialize, IpcMessage)]
//! #[rkyv(crate = mmapipc::rkyv)]
//! #[ipc(name = "market.Tick", version = 1)]
//! struct Tick {
//!     timestamp_ns: u64,
//!     symbol: [u8; 8],
//!     price: f64,
//!     size: u32,
//!     side: u8,
//! }
//!
//! # let path = std::env::temp_dir().join(format!("mmapipc-doc-typed-{}", std::process::id()));
//! # let _ = std::fs::remove_file(&path);
//! let mut tx = TypedRing::<Tick>::create(&path, 1 << 16)?;
//! tx.send(&Tick { timestamp_ns: 1, symbol: *b"AAPL\0\0\0\0", price: 189.5, size: 10, side: 0 })?;
//!
//! let mut rx = TypedRing::<Tick>::open(&path)?; // typically another process
//! let tick = rx.try_recv()?.expect("one message");
//! assert_eq!(tick.price, 189.5);
//! # drop(tick); std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod channel;
mod codec;
pub mod decode;
mod queue;
mod ring;
pub mod schema;
mod topic;

pub use channel::{channel_schema, Received, TypedOpenError, TypedRecvError, TypedSendError};
pub use codec::{
    access, access_unchecked, archived_len, serialize_into, Encode, IpcMessage, SchemaType, Sizer, TypedError,
    VecElement,
};
pub use queue::{TypedQueue, TypedView};
pub use ring::{Plain, TypedGuard, TypedRing, VecLoan};
pub use schema::Schema;
pub use topic::{TypedMessage, TypedPublisher, TypedSubscriber, TypedTopic};
