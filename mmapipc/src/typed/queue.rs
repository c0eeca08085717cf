//! [`TypedQueue`]: a many-producer many-consumer [`Queue`] of `T` records, with the same schema
//! checks, in-place serialization and in-place, validated reads as
//! [`TypedRing`](super::TypedRing).

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rkyv::rancor;
use rkyv::{Archived, Portable};

use super::channel::{Channel, Received, TypedOpenError, TypedRecvError, TypedSendError};
use super::codec::{self, Encode, IpcMessage};
use super::schema::Schema;
use crate::error::OpenError;
use crate::kind::Kind;
use crate::queue::QueueError;
use crate::region::OpenOptions;
use crate::shorthands::channel_shorthands;
use crate::{Queue, QueueOptions, View};

/// A many-producer many-consumer queue of `T` records: the typed counterpart of [`Queue`], with
/// the same schema checks, in-place serialization and in-place, validated reads as
/// [`TypedRing`](super::TypedRing). Each record goes to exactly one consumer.
///
/// ```
/// use mmapipc::TypedQueue;
/// # #[derive(mmapipc::rkyv::Archive, mmapipc::rkyv::Serialize, mmapipc::IpcMessage)]
/// # #[rkyv(crate = mmapipc::rkyv)]
/// # #[ipc(name = "market.Tick", version = 1)]
/// # struct Tick { timestamp_ns: u64, symbol: [u8; 8], price: f64, size: u32, side: u8 }
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
    // In an `Arc`: a queue's readiness `Watch`es hold one (`Queue::readable_watch`).
    chan: Channel<Arc<Queue>>,
    _t: PhantomData<fn() -> T>,
}

/// A record received from a [`TypedQueue`], in its slot; the slot is released when it drops.
pub type TypedView<'q, T> = Received<View<'q>, T>;

impl<T> std::fmt::Debug for TypedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chan.debug(f, "TypedQueue", "queue")
    }
}

channel_shorthands! {
    impl[T: IpcMessage + Encode] TypedQueue<T>
    where [Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>]
    (create: QueueOptions, open: QueueOptions) -> TypedOpenError;
    /// Creates a queue of `capacity` bytes carrying `T`, with `T`'s schema in its header.
    fn create;
    /// Opens a queue and checks that it carries `T` (or a newer, append-only version of it).
    fn open;
}

impl<T: IpcMessage + Encode> TypedQueue<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, capacity: usize, opts: &QueueOptions) -> Result<Self, TypedOpenError> {
        let chan =
            Channel::create::<T>(|schema| Queue::create_with_schema(path, capacity, opts, schema).map(Arc::new))?;
        Ok(TypedQueue { chan, _t: PhantomData })
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &QueueOptions) -> Result<Self, TypedOpenError> {
        let oo = OpenOptions { allow_foreign_owner: opts.allow_foreign_owner };
        let chan = Channel::open::<T>(path, Kind::Queue, &oo, |path| Queue::open_with(path, opts).map(Arc::new))?;
        Ok(TypedQueue { chan, _t: PhantomData })
    }

    /// The schema stored in the channel.
    pub fn schema(&self) -> &Schema {
        self.chan.schema()
    }

    /// The underlying byte queue (in an `Arc`, for its readiness watches).
    pub fn queue(&self) -> &Arc<Queue> {
        &self.chan.bytes
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
        let len = self.chan.send_len(value)?;
        let mut failed = None;
        let put = self.chan.bytes.put_with(len, timeout, |slot| {
            codec::serialize_into(value, slot).map(|_| ()).map_err(|e| {
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
        let Some(view) = self.chan.bytes.get_views_timeout(1, timeout)?.pop() else { return Ok(None) };
        Ok(Some(Received::checked(view, self.chan.root_size)?))
    }

    /// Receives the next record without validating it.
    ///
    /// # Safety
    /// Every producer must be trusted to write valid archives of the channel's schema.
    pub unsafe fn try_recv_unchecked(&self) -> Result<Option<TypedView<'_, T>>, TypedRecvError> {
        let Some(view) = self.chan.bytes.try_get_view()? else { return Ok(None) };
        // SAFETY: the caller vouches for every message of this channel (this fn's contract).
        Ok(Some(unsafe { Received::unchecked(view, self.chan.root_size) }?))
    }

    /// Removes the file.
    pub fn unlink(&self) -> Result<(), OpenError> {
        self.chan.bytes.unlink()
    }
}
