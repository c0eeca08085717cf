//! Typed channels: a ring whose messages are archived records of one [`IpcMessage`] type.
//!
//! The channel stores its message schema (JSON) in the file. [`TypedRing::open`] checks the
//! reader's type against it ([`Schema::check_reader`]) and refuses a mismatch with a field-by-field
//! diff. Producers write records **into the slot**: [`TypedRing::send`] measures the archive,
//! claims a slot of exactly that size and serializes into it; [`TypedRing::loan_vec`] reserves a
//! large array (a frame's pixels) inside the slot and hands it out as `&mut [E]` to fill before
//! commit. Consumers get a guard that derefs to `&Archived<T>` **in the slot**, validated with
//! bytecheck ([`TypedRing::try_recv`]), or unvalidated for trusted producers
//! ([`TypedRing::try_recv_unchecked`]).
//!
//! ```
//! use mmapipc::channel::TypedRing;
//! use mmapipc::example_types::Tick;
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

use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use rkyv::rancor;
use rkyv::{Archive, Archived, Portable};

use crate::error::OpenError;
use crate::layout::Kind;
use crate::queue::{Queue, QueueError, QueueOptions, View};
use crate::region::{self, CreateOptions, OpenOptions};
use crate::ring::RingError;
use crate::ring::{RecvGuard, Ring, SlotMut};
use crate::schema::{IpcMessage, Mismatch, Schema, TypeDesc};
use crate::typed::{self, Encode, TypedError};

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

/// The channel's schema at `path` and the reader's (`T`'s), checked against each other.
fn open_schemas<T: IpcMessage>(
    path: &Path,
    kind: Kind,
    opts: &OpenOptions,
) -> Result<(Schema, Schema), TypedOpenError> {
    let reader = check_type::<T>()?;
    let channel = channel_schema(path, kind, opts)?
        .ok_or_else(|| TypedOpenError::Untyped { path: path.display().to_string() })?;
    channel.check_reader(&reader)?;
    Ok((channel, reader))
}

/// Only a handle of the channel's own version may write (an older reader reads a prefix).
fn check_writer(channel: &Schema, reader: &Schema) -> Result<(), TypedSendError> {
    if channel.version != reader.version {
        return Err(TypedSendError::OlderVersion(format!(
            "this handle is typed {} but the channel carries v{}: only a v{} producer may write",
            reader.label(),
            channel.version,
            channel.version
        )));
    }
    Ok(())
}

fn check_type<T: IpcMessage>() -> Result<Schema, TypedOpenError> {
    let s = T::schema();
    if s.align > 8 {
        return Err(TypedOpenError::Unsupported(format!("{} needs {}-byte alignment; slots give 8", s.name, s.align)));
    }
    Ok(s)
}

/// A single-producer single-consumer ring of `T` records (see the module docs).
pub struct TypedRing<T> {
    ring: Ring,
    channel: Schema,
    reader: Schema,
    root_size: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedRing").field("schema", &self.channel.label()).field("ring", &self.ring).finish()
    }
}

impl<T: IpcMessage + Encode> TypedRing<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    /// Creates a ring of `capacity` bytes carrying `T`, with `T`'s schema in its header.
    pub fn create(path: impl AsRef<Path>, capacity: usize) -> Result<Self, TypedOpenError> {
        Self::create_with(path, capacity, &CreateOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, capacity: usize, opts: &CreateOptions) -> Result<Self, TypedOpenError> {
        let schema = check_type::<T>()?;
        let ring = Ring::create_with_schema(path, capacity, opts, schema.to_json().as_bytes())?;
        Ok(TypedRing {
            ring,
            root_size: schema.size as usize,
            channel: schema.clone(),
            reader: schema,
            _t: PhantomData,
        })
    }

    /// Opens a ring and checks that it carries `T` (or a newer version of it that only appended
    /// fields). A mismatch is [`TypedOpenError::Mismatch`], whose message lists every difference.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TypedOpenError> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Self, TypedOpenError> {
        let path = region::resolve_path(path);
        let (channel, reader) = open_schemas::<T>(&path, Kind::Ring, opts)?;
        let ring = Ring::open_with(&path, opts)?;
        Ok(TypedRing { ring, root_size: channel.size as usize, channel, reader, _t: PhantomData })
    }

    /// The schema stored in the channel.
    pub fn schema(&self) -> &Schema {
        &self.channel
    }

    /// The underlying byte ring.
    pub fn ring(&mut self) -> &mut Ring {
        &mut self.ring
    }

    /// Sends `value` if there is room now; `Ok(false)` if the ring is full.
    pub fn try_send(&mut self, value: &T) -> Result<bool, TypedSendError> {
        self.send_timeout(value, Some(Duration::ZERO))
    }

    /// Sends `value`, waiting for room.
    pub fn send(&mut self, value: &T) -> Result<(), TypedSendError> {
        self.send_timeout(value, None).map(|_| ())
    }

    /// Sends `value`, waiting at most `timeout` (`None`: forever); `Ok(false)` on timeout.
    pub fn send_timeout(&mut self, value: &T, timeout: Option<Duration>) -> Result<bool, TypedSendError> {
        check_writer(&self.channel, &self.reader)?;
        // A fixed-size record archives to exactly its root; other records are measured first.
        let len = if self.channel.fixed_size { self.root_size } else { typed::archived_len(value)? };
        let slot = if timeout == Some(Duration::ZERO) {
            self.ring.try_loan(len)?
        } else {
            self.ring.loan_timeout(len, timeout)?
        };
        let Some(mut slot) = slot else { return Ok(false) };
        // Serialized straight into the claimed slot; on error the slot drops uncommitted.
        let written = typed::serialize_into(value, &mut slot)?;
        debug_assert_eq!(written, len);
        slot.commit();
        Ok(true)
    }

    /// Reserves a slot for `header` plus an array of `count` elements of type `E` that becomes the
    /// `Vec` field `field` of the message (which must be empty in `header`). Fill the array in
    /// place through [`VecLoan::array`], then [`VecLoan::commit`]; dropping the loan sends nothing.
    /// Waits at most `timeout` for room (`Some(ZERO)`: do not wait); `Ok(None)` on timeout.
    pub fn loan_vec<E: Plain>(
        &mut self,
        header: &T,
        field: &str,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<VecLoan<'_, E>>, TypedSendError> {
        check_writer(&self.channel, &self.reader)?;
        let f = self
            .channel
            .fields
            .iter()
            .find(|f| f.name == field)
            .ok_or_else(|| TypedSendError::BadLoan(format!("{} has no field {field}", self.channel.name)))?;
        match &f.ty {
            TypeDesc::Vec { elem } if matches!(**elem, TypeDesc::Scalar { scalar } if scalar.size() as usize == std::mem::size_of::<E>()) =>
                {}
            other => {
                return Err(TypedSendError::BadLoan(format!(
                    "field {field} is {other}, not a Vec of {}-byte elements",
                    std::mem::size_of::<E>()
                )))
            }
        }
        let field_offset = f.offset as usize;
        let array_bytes = count
            .checked_mul(std::mem::size_of::<E>())
            .and_then(|b| b.checked_add(7))
            .map(|b| b & !7)
            .filter(|&b| b <= i32::MAX as usize)
            .ok_or_else(|| TypedSendError::BadLoan(format!("{count} elements do not fit a message")))?;
        let header_len = typed::archived_len(header)?;
        let total = array_bytes + header_len;
        let slot = if timeout == Some(Duration::ZERO) {
            self.ring.try_loan(total)?
        } else {
            self.ring.loan_timeout(total, timeout)?
        };
        let Some(mut slot) = slot else { return Ok(None) };
        typed::serialize_into(header, &mut slot[array_bytes..])?;
        // Point the Vec field (relative pointer + length, see TypeDesc::Vec) at the array, which
        // starts at offset 0 of the slot.
        let field_at = total - self.root_size + field_offset;
        let rel = -(field_at as i64) as i32;
        slot[field_at..field_at + 4].copy_from_slice(&rel.to_le_bytes());
        slot[field_at + 4..field_at + 8].copy_from_slice(&(count as u32).to_le_bytes());
        Ok(Some(VecLoan { slot, count, _e: PhantomData }))
    }

    /// Receives the next record if there is one, validated in place.
    pub fn try_recv(&mut self) -> Result<Option<TypedGuard<'_, T>>, TypedRecvError> {
        self.recv_timeout(Some(Duration::ZERO))
    }

    /// Receives the next record, waiting for one.
    pub fn recv(&mut self) -> Result<TypedGuard<'_, T>, TypedRecvError> {
        match self.recv_timeout(None)? {
            Some(g) => Ok(g),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Receives the next record, waiting at most `timeout` (`None`: forever).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<TypedGuard<'_, T>>, TypedRecvError> {
        let root_size = self.root_size;
        let guard =
            if timeout == Some(Duration::ZERO) { self.ring.try_read()? } else { self.ring.read_timeout(timeout)? };
        let Some(guard) = guard else { return Ok(None) };
        typed::access::<T>(&guard, root_size)?;
        Ok(Some(TypedGuard { guard, root_size, _t: PhantomData }))
    }

    /// Receives the next record without validating it.
    ///
    /// # Safety
    /// The producer must be trusted to write valid archives of the channel's schema (e.g. a
    /// `TypedRing<T>` in a process you control): an invalid message is undefined behaviour here.
    pub unsafe fn try_recv_unchecked(&mut self) -> Result<Option<TypedGuard<'_, T>>, TypedRecvError> {
        let root_size = self.root_size;
        let Some(guard) = self.ring.try_read()? else { return Ok(None) };
        if guard.len() < root_size {
            return Err(TypedError::TooShort { len: guard.len(), root_size }.into());
        }
        Ok(Some(TypedGuard { guard, root_size, _t: PhantomData }))
    }

    /// Removes the file.
    pub fn unlink(&self) -> Result<(), OpenError> {
        self.ring.unlink()
    }
}

/// Element types a [`TypedRing::loan_vec`] array can hold: plain numbers whose archived form
/// is their native form on this (little-endian) machine.
pub trait Plain: Copy + 'static + private::Sealed {}
mod private {
    pub trait Sealed {}
}
macro_rules! plain {
    ($($t:ty),*) => {$( impl private::Sealed for $t {} impl Plain for $t {} )*};
}
#[cfg(target_endian = "little")]
plain!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// A claimed slot with an array inside it to fill before [`commit`](Self::commit).
pub struct VecLoan<'a, E> {
    slot: SlotMut<'a>,
    count: usize,
    _e: PhantomData<E>,
}

impl<E: Plain> VecLoan<'_, E> {
    /// The array, in the slot.
    pub fn array(&mut self) -> &mut [E] {
        let ptr = self.slot.as_mut_ptr();
        debug_assert_eq!(ptr as usize % std::mem::align_of::<E>(), 0);
        // SAFETY: the slot starts 8-byte aligned with `count * size_of::<E>()` bytes reserved
        // for the array at offset 0 (loan_vec); E is a plain number type valid for any bit
        // pattern; the slot is exclusively ours until commit, and the borrow of `self` keeps it so.
        unsafe { std::slice::from_raw_parts_mut(ptr as *mut E, self.count) }
    }

    /// Publishes the message.
    pub fn commit(self) {
        self.slot.commit();
    }
}

/// A received record, in its slot; the slot is released when the guard drops.
pub struct TypedGuard<'a, T: Archive> {
    guard: RecvGuard<'a>,
    root_size: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Archive> TypedGuard<'_, T> {
    /// The raw message bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.guard
    }
}

impl<T: Archive> Deref for TypedGuard<'_, T> {
    type Target = Archived<T>;

    fn deref(&self) -> &Archived<T> {
        let bytes: &[u8] = &self.guard;
        // SAFETY: the message was validated as an archive of T (or, for the unchecked path, the
        // caller vouched for it) with its root `root_size` bytes from the end, and length was
        // checked to be at least root_size; the slot stays ours while the guard lives.
        unsafe { rkyv::api::access_pos_unchecked::<Archived<T>>(bytes, bytes.len() - self.root_size) }
    }
}

/// A many-producer many-consumer queue of `T` records: the typed counterpart of [`Queue`], with
/// the same schema checks, in-place serialization and in-place, validated reads as
/// [`TypedRing`]. Each record goes to exactly one consumer.
///
/// ```
/// use mmapipc::channel::TypedQueue;
/// use mmapipc::example_types::Tick;
/// # let path = std::env::temp_dir().join(format!("mmapipc-doc-typedq-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let q = TypedQueue::<Tick>::create(&path, 1 << 16)?;
/// q.send(&Tick { timestamp_ns: 1, symbol: *b"MSFT\0\0\0\0", price: 411.0, size: 5, side: 1 })?;
/// let worker = TypedQueue::<Tick>::open(&path)?; // typically another process
/// assert_eq!(worker.try_recv()?.expect("one message").size, 5);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedQueue<T> {
    queue: Queue,
    channel: Schema,
    reader: Schema,
    root_size: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedQueue").field("schema", &self.channel.label()).field("queue", &self.queue).finish()
    }
}

impl<T: IpcMessage + Encode> TypedQueue<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    /// Creates a queue of `capacity` bytes carrying `T`, with `T`'s schema in its header.
    pub fn create(path: impl AsRef<Path>, capacity: usize) -> Result<Self, TypedOpenError> {
        Self::create_with(path, capacity, &QueueOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, capacity: usize, opts: &QueueOptions) -> Result<Self, TypedOpenError> {
        let schema = check_type::<T>()?;
        let queue = Queue::create_with_schema(path, capacity, opts, schema.to_json().as_bytes())?;
        Ok(TypedQueue {
            queue,
            root_size: schema.size as usize,
            channel: schema.clone(),
            reader: schema,
            _t: PhantomData,
        })
    }

    /// Opens a queue and checks that it carries `T` (or a newer, append-only version of it).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TypedOpenError> {
        Self::open_with(path, &QueueOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &QueueOptions) -> Result<Self, TypedOpenError> {
        let path = region::resolve_path(path);
        let oo = OpenOptions { allow_foreign_owner: opts.allow_foreign_owner };
        let (channel, reader) = open_schemas::<T>(&path, Kind::Queue, &oo)?;
        let queue = Queue::open_with(&path, opts)?;
        Ok(TypedQueue { queue, root_size: channel.size as usize, channel, reader, _t: PhantomData })
    }

    /// The schema stored in the channel.
    pub fn schema(&self) -> &Schema {
        &self.channel
    }

    /// The underlying byte queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Sends `value` if there is room now; `Ok(false)` if the queue is full.
    pub fn try_send(&self, value: &T) -> Result<bool, TypedSendError> {
        self.send_timeout(value, Some(Duration::ZERO))
    }

    /// Sends `value`, waiting for room.
    pub fn send(&self, value: &T) -> Result<(), TypedSendError> {
        self.send_timeout(value, None).map(|_| ())
    }

    /// Sends `value`, waiting at most `timeout` (`None`: forever); `Ok(false)` on timeout. The
    /// record is serialized straight into the claimed slot.
    pub fn send_timeout(&self, value: &T, timeout: Option<Duration>) -> Result<bool, TypedSendError> {
        check_writer(&self.channel, &self.reader)?;
        let len = if self.channel.fixed_size { self.root_size } else { typed::archived_len(value)? };
        let mut failed = None;
        let put = self.queue.put_with(len, timeout, |slot| {
            typed::serialize_into(value, slot).map(|_| ()).map_err(|e| {
                failed = Some(e);
                QueueError::Corrupt { reason: "serialization failed".into() }
            })
        });
        match (put, failed) {
            (_, Some(e)) => Err(e.into()),
            (r, None) => Ok(r?),
        }
    }

    /// Receives the next record if there is one, validated in place.
    pub fn try_recv(&self) -> Result<Option<TypedView<'_, T>>, TypedRecvError> {
        self.recv_timeout(Some(Duration::ZERO))
    }

    /// Receives the next record, waiting for one.
    pub fn recv(&self) -> Result<TypedView<'_, T>, TypedRecvError> {
        match self.recv_timeout(None)? {
            Some(v) => Ok(v),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Receives the next record, waiting at most `timeout` (`None`: forever). A record that
    /// fails validation is released and reported.
    pub fn recv_timeout(&self, timeout: Option<Duration>) -> Result<Option<TypedView<'_, T>>, TypedRecvError> {
        let Some(view) = self.queue.get_views_timeout(1, timeout)?.pop() else { return Ok(None) };
        typed::access::<T>(&view, self.root_size)?;
        Ok(Some(TypedView { view, root_size: self.root_size, _t: PhantomData }))
    }

    /// Receives the next record without validating it.
    ///
    /// # Safety
    /// Every producer must be trusted to write valid archives of the channel's schema.
    pub unsafe fn try_recv_unchecked(&self) -> Result<Option<TypedView<'_, T>>, TypedRecvError> {
        let Some(view) = self.queue.try_get_view()? else { return Ok(None) };
        if view.len() < self.root_size {
            return Err(TypedError::TooShort { len: view.len(), root_size: self.root_size }.into());
        }
        Ok(Some(TypedView { view, root_size: self.root_size, _t: PhantomData }))
    }

    /// Removes the file.
    pub fn unlink(&self) -> Result<(), OpenError> {
        self.queue.unlink()
    }
}

/// A record received from a [`TypedQueue`], in its slot; the slot is released on drop.
pub struct TypedView<'q, T: Archive> {
    view: View<'q>,
    root_size: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Archive> TypedView<'_, T> {
    /// The raw message bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.view
    }
}

impl<T: Archive> Deref for TypedView<'_, T> {
    type Target = Archived<T>;

    fn deref(&self) -> &Archived<T> {
        let bytes: &[u8] = &self.view;
        // SAFETY: validated (or vouched for, on the unchecked path) as an archive of T whose root
        // is `root_size` bytes from the end, with len >= root_size; the slot is ours while the
        // view lives.
        unsafe { rkyv::api::access_pos_unchecked::<Archived<T>>(bytes, bytes.len() - self.root_size) }
    }
}
