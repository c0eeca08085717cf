//! What [`TypedRing`](super::TypedRing) and [`TypedQueue`](super::TypedQueue) share: the schema
//! check on open, the schema blob on create, the writer-version rule, the send length, and the
//! received record that derefs to the archived root in its slot.
//!
//! A [`Channel<B>`] is one byte channel `B` ([`Ring`](crate::Ring) or [`Queue`](crate::Queue))
//! plus the channel's schema (from the file) and the handle's own (`T`'s). The schema blob's
//! format is FORMAT.md, "Schema blob"; the message bytes are FORMAT.md, "Typed payload" (the root
//! is the last `root_size` bytes of a message, `root_size` being the *channel's* root size).

use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;

use rkyv::rancor;
use rkyv::{Archive, Archived, Portable};

use super::codec::{self, Encode, IpcMessage, TypedError};
use super::schema::{Mismatch, Schema};
use crate::error::OpenError;
use crate::kind::Kind;
use crate::queue::QueueError;
use crate::region::{self, OpenOptions};
use crate::ring::RingError;

/// Why a typed channel could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedOpenError {
    /// The file could not be created or opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The channel carries untyped bytes (no schema in the file).
    #[error("{path}: untyped channel (no schema); open it as a byte channel")]
    Untyped {
        /// The file.
        path: String,
    },
    /// The schema in the file is unreadable.
    #[error("{path}: bad schema in file: {reason}")]
    BadSchema {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The channel's schema is not readable as the requested type.
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    /// The type cannot be used in a channel (alignment above 8, big-endian archive...).
    #[error("unsupported message type: {0}")]
    Unsupported(String),
}

/// Why a typed send failed (nothing was committed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedSendError {
    /// The ring refused (message too large, role held elsewhere, corrupt ring).
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The queue refused (message too large, corrupt queue).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The topic refused (message too large, publisher role held elsewhere, corrupt topic).
    #[error(transparent)]
    Topic(#[from] crate::topic::TopicError),
    /// Serialization failed.
    #[error(transparent)]
    Encode(#[from] TypedError),
    /// A `loan_vec` argument does not match the schema.
    #[error("{0}")]
    BadLoan(String),
    /// This handle's type is an older version than the channel's: it may read, not write.
    #[error("{0}")]
    OlderVersion(String),
}

/// Why a typed receive failed. A message that fails validation is consumed (so one bad message
/// cannot wedge the channel) and reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypedRecvError {
    /// The ring refused (role held elsewhere, corrupt ring).
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The queue refused (corrupt queue).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The topic refused (corrupt topic, an inherited subscriber).
    #[error(transparent)]
    Topic(#[from] crate::topic::TopicError),
    /// The message failed validation.
    #[error(transparent)]
    Invalid(#[from] TypedError),
}

/// The schema stored in a channel file, if any.
pub fn channel_schema(path: &Path, kind: Kind, opts: &OpenOptions) -> Result<Option<Schema>, TypedOpenError> {
    let (region, header) = region::open_file(path, kind, opts)?;
    if header.schema_size == 0 {
        return Ok(None);
    }
    let blob = region::schema_blob(&region, &header);
    let text = String::from_utf8(blob)
        .map_err(|_| TypedOpenError::BadSchema { path: path.display().to_string(), reason: "not UTF-8".into() })?;
    Schema::from_json(&text)
        .map(Some)
        .map_err(|reason| TypedOpenError::BadSchema { path: path.display().to_string(), reason })
}

/// `T`'s schema, if `T` can travel in a channel (slots are 8-byte aligned).
fn check_type<T: IpcMessage>() -> Result<Schema, TypedOpenError> {
    let s = T::schema();
    if s.align > 8 {
        return Err(TypedOpenError::Unsupported(format!("{} needs {}-byte alignment; slots give 8", s.name, s.align)));
    }
    Ok(s)
}

/// A byte channel `B` carrying records of one schema: the state both typed channels hold.
pub(super) struct Channel<B> {
    /// The byte channel.
    pub(super) bytes: B,
    /// The schema stored in the file.
    channel: Schema,
    /// This handle's type's schema (`channel`, or an older version of it).
    reader: Schema,
    /// The channel's archived root size: where a message's root starts, counted from its end.
    pub(super) root_size: usize,
}

impl<B> Channel<B> {
    /// Creates a byte channel with `create(schema blob)` and types it as `T`.
    pub(super) fn create<T: IpcMessage>(
        create: impl FnOnce(&[u8]) -> Result<B, OpenError>,
    ) -> Result<Self, TypedOpenError> {
        let schema = check_type::<T>()?;
        let bytes = create(schema.to_json().as_bytes())?;
        Ok(Channel { bytes, root_size: schema.size as usize, channel: schema.clone(), reader: schema })
    }

    /// Reads the schema of the `kind` file at `path`, checks that `T` may read it
    /// ([`Schema::check_reader`]), then opens the byte channel with `open`.
    pub(super) fn open<T: IpcMessage>(
        path: impl AsRef<Path>,
        kind: Kind,
        opts: &OpenOptions,
        open: impl FnOnce(&Path) -> Result<B, OpenError>,
    ) -> Result<Self, TypedOpenError> {
        let path = region::resolve_path(path);
        let reader = check_type::<T>()?;
        let channel = channel_schema(&path, kind, opts)?
            .ok_or_else(|| TypedOpenError::Untyped { path: path.display().to_string() })?;
        channel.check_reader(&reader)?;
        let bytes = open(&path)?;
        Ok(Channel { bytes, root_size: channel.size as usize, channel, reader })
    }

    /// The schema stored in the channel.
    pub(super) fn schema(&self) -> &Schema {
        &self.channel
    }

    /// Only a handle of the channel's own version may write (an older reader reads a prefix).
    pub(super) fn check_writer(&self) -> Result<(), TypedSendError> {
        if self.channel.version != self.reader.version {
            return Err(TypedSendError::OlderVersion(format!(
                "this handle is typed {} but the channel carries v{}: only a v{} producer may write",
                self.reader.label(),
                self.channel.version,
                self.channel.version
            )));
        }
        Ok(())
    }

    /// The slot length `value` needs, once this handle is known to be allowed to write.
    pub(super) fn send_len<T: Encode>(&self, value: &T) -> Result<usize, TypedSendError> {
        self.check_writer()?;
        // A fixed-size record archives to exactly its root; other records are measured first.
        Ok(if self.channel.fixed_size { self.root_size } else { codec::archived_len(value)? })
    }

    /// The record length if the channel's records have one fixed size (then no message needs
    /// measuring before it is written).
    pub(super) fn fixed_len(&self) -> Option<usize> {
        self.channel.fixed_size.then_some(self.root_size)
    }

    /// `Debug` for a typed channel called `name` whose byte channel is shown as `field`.
    pub(super) fn debug(&self, f: &mut std::fmt::Formatter<'_>, name: &str, field: &str) -> std::fmt::Result
    where
        B: std::fmt::Debug,
    {
        f.debug_struct(name).field("schema", &self.channel.label()).field(field, &self.bytes).finish()
    }
}

/// A received record, in its slot: derefs to the archived root. `G` is the byte channel's guard
/// ([`RecvGuard`](crate::RecvGuard) for a ring, [`View`](crate::View) for a queue); the slot is
/// released when the record drops.
pub struct Received<G, T> {
    guard: G,
    root_size: usize,
    _t: PhantomData<fn() -> T>,
}

impl<G: Deref<Target = [u8]>, T: Archive> Received<G, T> {
    /// Validates the message in `guard` as an archive of `T` whose root is its last `root_size`
    /// bytes.
    pub(super) fn checked(guard: G, root_size: usize) -> Result<Self, TypedError>
    where
        Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
    {
        codec::access::<T>(&guard, root_size)?;
        Ok(Received { guard, root_size, _t: PhantomData })
    }

    /// The message in `guard`, checked for length only.
    ///
    /// # Safety
    /// `guard` must hold a valid archive of `T` (or of a newer, appended version whose root is
    /// `root_size` bytes), written by a trusted producer.
    pub(super) unsafe fn unchecked(guard: G, root_size: usize) -> Result<Self, TypedError> {
        if guard.len() < root_size {
            return Err(TypedError::TooShort { len: guard.len(), root_size });
        }
        Ok(Received { guard, root_size, _t: PhantomData })
    }

    /// The raw message bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.guard
    }
}

impl<G: Deref<Target = [u8]>, T: Archive> Deref for Received<G, T> {
    type Target = Archived<T>;

    fn deref(&self) -> &Archived<T> {
        let bytes: &[u8] = &self.guard;
        // SAFETY: the message was validated as an archive of T (`checked`) or the caller vouched
        // for it (`unchecked`), with its root `root_size` bytes from the end, and its length was
        // checked to be at least root_size; the guard keeps the slot ours while this lives.
        unsafe { rkyv::api::access_pos_unchecked::<Archived<T>>(bytes, bytes.len() - self.root_size) }
    }
}
