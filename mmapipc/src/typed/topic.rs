//! [`TypedTopic`]: a [`Topic`] of `T` records, with the schema checks of the other typed
//! channels: every subscriber reads every record, validated, in place where the topic allows it
//! (an exclusive subscriber of a block-mode topic) and from its copy otherwise.

use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use rkyv::rancor;
use rkyv::{Archived, Portable};

use super::channel::{Channel, Received, TypedOpenError, TypedRecvError, TypedSendError};
use super::codec::{self, Encode, IpcMessage};
use super::schema::Schema;
use crate::kind::Kind;
use crate::region::OpenOptions;
use crate::topic::{self, Publisher, Start, Subscriber, Topic, TopicOptions};

/// A publish-subscribe topic of `T` records: the typed counterpart of [`Topic`].
///
/// ```
/// use mmapipc::topic::Start;
/// use mmapipc::typed::TypedTopic;
/// # #[derive(mmapipc::rkyv::Archive, mmapipc::rkyv::Serialize, mmapipc::IpcMessage)]
/// # #[rkyv(crate = mmapipc::rkyv)]
/// # #[ipc(name = "market.Tick", version = 1)]
/// # struct Tick { timestamp_ns: u64, symbol: [u8; 8], price: f64, size: u32, side: u8 }
/// # let path = std::env::temp_dir().join(format!("mmapipc-doc-typedt-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// let topic = TypedTopic::<Tick>::create(&path, 1 << 16, &Default::default())?;
/// let mut a = topic.subscribe(Start::Latest)?;
/// let mut b = TypedTopic::<Tick>::open(&path)?.subscribe(Start::Latest)?; // another process
/// let mut tx = topic.publisher()?;
/// tx.send(&Tick { timestamp_ns: 1, symbol: *b"MSFT\0\0\0\0", price: 411.0, size: 5, side: 1 })?;
/// assert_eq!(a.try_recv()?.expect("one record").size, 5);
/// assert_eq!(b.try_recv()?.expect("one record").price, 411.0);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedTopic<T> {
    chan: Channel<Topic>,
    _t: PhantomData<fn() -> T>,
}

/// A record received from a [`TypedTopic`]: derefs to the archived root.
pub type TypedMessage<'s, T> = Received<topic::Received<'s>, T>;

impl<T> std::fmt::Debug for TypedTopic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chan.debug(f, "TypedTopic", "topic")
    }
}

impl<T: IpcMessage + Encode> TypedTopic<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    /// Creates a topic of `capacity` bytes carrying `T`, with `T`'s schema in its header.
    pub fn create(path: impl AsRef<Path>, capacity: usize, opts: &TopicOptions) -> Result<Self, TypedOpenError> {
        let chan = Channel::create::<T>(|schema| Topic::create_with_schema(path, capacity, opts, schema))?;
        Ok(TypedTopic { chan, _t: PhantomData })
    }

    /// Opens a topic and checks that it carries `T` (or a newer, append-only version of it).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TypedOpenError> {
        let oo = OpenOptions::default();
        let chan = Channel::open::<T>(path, Kind::Topic, &oo, |path| Topic::open_with(path, &oo))?;
        Ok(TypedTopic { chan, _t: PhantomData })
    }

    /// The schema stored in the topic.
    pub fn schema(&self) -> &Schema {
        self.chan.schema()
    }

    /// The byte topic underneath.
    pub fn topic(&self) -> &Topic {
        &self.chan.bytes
    }

    /// Claims the publisher role (refused for a handle typed with an older version).
    pub fn publisher(&self) -> Result<TypedPublisher<T>, TypedSendError> {
        self.chan.check_writer()?;
        let publisher = self.chan.bytes.publisher()?;
        Ok(TypedPublisher { publisher, fixed: self.chan.fixed_len(), buf: Vec::new(), _t: PhantomData })
    }

    /// Subscribes (see [`Topic::subscribe`]).
    pub fn subscribe(&self, start: Start) -> Result<TypedSubscriber<T>, TypedRecvError> {
        let sub = self.chan.bytes.subscribe(start)?;
        Ok(TypedSubscriber { sub, root_size: self.chan.root_size, _t: PhantomData })
    }

    /// Subscribes as a member of group `name` (see [`Topic::subscribe_group`]).
    pub fn subscribe_group(&self, name: &str, start: Start) -> Result<TypedSubscriber<T>, TypedRecvError> {
        let sub = self.chan.bytes.subscribe_group(name, start)?;
        Ok(TypedSubscriber { sub, root_size: self.chan.root_size, _t: PhantomData })
    }
}

/// The publisher of a [`TypedTopic`].
pub struct TypedPublisher<T> {
    publisher: Publisher,
    fixed: Option<usize>,
    buf: Vec<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T: IpcMessage + Encode> TypedPublisher<T> {
    /// Publishes one record, waiting for room as long as it takes (block mode).
    pub fn send(&mut self, value: &T) -> Result<(), TypedSendError> {
        self.send_timeout(value, None).map(|_| ())
    }

    /// Publishes one record, waiting at most `timeout`. `Ok(false)`: timed out.
    pub fn send_timeout(&mut self, value: &T, timeout: Option<Duration>) -> Result<bool, TypedSendError> {
        self.encode(value)?;
        Ok(self.publisher.publish_timeout(&self.buf, timeout)?)
    }

    /// Publishes one record if there is room now; `Ok(false)` if not (block mode).
    pub fn try_send(&mut self, value: &T) -> Result<bool, TypedSendError> {
        self.encode(value)?;
        Ok(self.publisher.try_publish(&self.buf)?)
    }

    /// Archives `value` into `buf`.
    fn encode(&mut self, value: &T) -> Result<(), TypedSendError> {
        let len = match self.fixed {
            Some(n) => n,
            None => codec::archived_len(value)?,
        };
        self.buf.clear();
        self.buf.resize(len, 0);
        codec::serialize_into(value, &mut self.buf)?;
        Ok(())
    }

    /// The byte publisher underneath.
    pub fn bytes(&mut self) -> &mut Publisher {
        &mut self.publisher
    }
}

/// A subscriber of a [`TypedTopic`].
pub struct TypedSubscriber<T> {
    sub: Subscriber,
    root_size: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: IpcMessage> TypedSubscriber<T>
where
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    /// Receives one record if one is ready, validated. A record that fails validation is
    /// consumed and reported.
    pub fn try_recv(&mut self) -> Result<Option<TypedMessage<'_, T>>, TypedRecvError> {
        let root = self.root_size;
        match self.sub.try_recv()? {
            None => Ok(None),
            Some(m) => Ok(Some(Received::checked(m, root)?)),
        }
    }

    /// Receives one record, waiting at most `timeout` (`None`: forever).
    pub fn recv_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<TypedMessage<'_, T>>, TypedRecvError> {
        let root = self.root_size;
        match self.sub.recv_timeout(timeout)? {
            None => Ok(None),
            Some(m) => Ok(Some(Received::checked(m, root)?)),
        }
    }

    /// The byte subscriber underneath (lag, dropped, views).
    pub fn bytes(&mut self) -> &mut Subscriber {
        &mut self.sub
    }
}
