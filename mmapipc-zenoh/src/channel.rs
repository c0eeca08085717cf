//! The two small traits the bridge needs of a local channel, one pair per kind: a [`Source`]
//! (what `export` reads) and a [`Sink`] (what `import` writes). Rings, queues and topics
//! implement them here; another kind is one more pair of impls and a match arm in
//! [`open_source`] and [`open_sink`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use mmapipc::ring::DetachedRead;
use mmapipc::topic::{DetachedView, Overflow, Start};
use mmapipc::{Publisher, Queue, Ring, Subscriber, Topic};

use crate::info::ChannelInfo;
use crate::Error;

/// Messages at least this long leave the exporter as a view of their ring slot or topic record
/// (a block-mode topic; an overwrite-mode one's are copied, nothing holds its publisher off a
/// record), with no copy before zenoh's own serialisation. A view keeps the consumer waiting
/// until zenoh has let go of the message (for a fragmented message: until it is on the wire),
/// so one message is in flight at a time; a copy lets the next message go out while this one is sent, which is
/// faster while the copy is cheap (1 MiB, docs/benchmarks.md) and slower for large frames
/// (the copies go into reused buffers, `pool.rs`).
pub const ZERO_COPY_MIN: usize = 4 << 20;

/// Without an importer, a ring exporter drops the oldest messages while the ring is at least
/// this full, so local producers always find room (see `docs/bridge.md`, "Backpressure").
pub const DROP_FILL: f64 = 0.5;

/// A message taken from a local channel, handed to the sender in place.
pub enum Outgoing<'a> {
    /// The message's bytes, valid during the call.
    Slice(&'a [u8]),
    /// The message's bytes as a shared buffer over the slot (see [`ZERO_COPY_MIN`]); the slot is
    /// released only once every clone of it has been dropped.
    Shared(bytes::Bytes),
}

/// The exporter's side of a local channel.
pub trait Source {
    /// Waits up to `timeout` for the next message and passes it to `send` with its sequence
    /// number; the message is consumed once `send` returns. `Ok(false)`: nothing came.
    fn next(&mut self, timeout: Duration, send: &mut dyn FnMut(u64, Outgoing<'_>)) -> Result<bool, Error>;
    /// Messages waiting in the channel.
    fn backlog(&self) -> u64;
    /// With no importer: true when the next message is to be taken (and dropped) now, to keep
    /// the local producers going. A ring: once it is [`DROP_FILL`]
    /// full. A queue: never (its messages stay for a later consumer). A topic: always (the
    /// exporter never holds its publisher back, and what it drops stays in the topic's retained
    /// history until the publisher needs the room).
    fn drop_when_alone(&self) -> bool;
    /// Messages this source skipped on its own (a lapped subscriber of an overwrite topic).
    fn skipped(&self) -> u64 {
        0
    }
    /// The sequence number the next message will get.
    fn next_seq(&self) -> u64;
}

/// The importer's side of a local channel.
pub trait Sink: Send {
    /// Writes one message of `len` bytes, filled in place by `fill`, waiting for room while
    /// `stop` is false. `Ok(false)`: stopped before there was room (nothing written).
    fn write(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8]), stop: &AtomicBool) -> Result<bool, Error>;

    /// Writes one message (the bytes of a batch's frame), waiting for room while `stop` is
    /// false. `Ok(false)`: stopped before there was room.
    fn write_slice(&mut self, msg: &[u8], stop: &AtomicBool) -> Result<bool, Error> {
        self.write(msg.len(), &mut |slot: &mut [u8]| slot.copy_from_slice(msg), stop)
    }
}

/// How often blocking calls look at the stop flag.
pub const POLL: Duration = Duration::from_millis(100);

/// Opens the channel at `path` for export. `next_seq` is where a queue's numbering resumes (a
/// ring numbers its messages by its own consumed count, kept in the ring file; a topic by the
/// publisher's sequence numbers). `start`: where a topic's subscription starts.
pub fn open_source(path: &Path, info: &ChannelInfo, next_seq: u64, start: Start) -> Result<Box<dyn Source>, Error> {
    match info.kind.as_str() {
        "ring" => {
            let mut ring = Ring::open(path)?;
            ring.claim_consumer()?;
            let seq = ring.stats().messages_out;
            Ok(Box::new(RingSource { ring, seq }))
        }
        "queue" => Ok(Box::new(QueueSource { queue: Queue::open(path)?, seq: next_seq })),
        "topic" => {
            let topic = Topic::open(path)?;
            let sub = topic.subscribe(start)?;
            Ok(Box::new(TopicSource::new(topic, sub)))
        }
        other => Err(Error::Protocol(format!("cannot export a {other}"))),
    }
}

/// Opens the channel at `path` for import.
pub fn open_sink(path: &Path, info: &ChannelInfo) -> Result<Box<dyn Sink>, Error> {
    match info.kind.as_str() {
        "ring" => {
            let mut ring = Ring::open(path)?;
            ring.claim_producer()?;
            Ok(Box::new(RingSink { ring }))
        }
        "queue" => Ok(Box::new(QueueSink { queue: Queue::open(path)? })),
        "topic" => Ok(Box::new(TopicSink { publisher: Topic::open(path)?.publisher()?, buf: Vec::new() })),
        other => Err(Error::Protocol(format!("cannot import a {other}"))),
    }
}

/// A ring's consumer. Sequence number = the ring's consumed count, so that a restarted exporter
/// continues the numbering exactly where the ring's head is.
struct RingSource {
    ring: Ring,
    seq: u64,
}

/// A detached ring record lent to zenoh, with the token whose weak count tells the exporter
/// when zenoh has let go of it.
struct HeldSlot {
    read: DetachedRead,
    _token: Arc<()>,
}

impl AsRef<[u8]> for HeldSlot {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the record stays held until the next consumer operation on the handle that
        // read it, and `RingSource::next` performs none until every clone of this buffer (and so
        // this HeldSlot) has been dropped: it waits for the token's strong count to reach 0.
        unsafe { self.read.as_slice() }
    }
}

impl Source for RingSource {
    fn next(&mut self, timeout: Duration, send: &mut dyn FnMut(u64, Outgoing<'_>)) -> Result<bool, Error> {
        let Some(guard) = self.ring.read_timeout(Some(timeout))? else { return Ok(false) };
        let seq = self.seq;
        self.seq += 1;
        if guard.len() < ZERO_COPY_MIN {
            send(seq, Outgoing::Slice(&guard));
            return Ok(true);
        }
        let token = Arc::new(());
        let watch: Weak<()> = Arc::downgrade(&token);
        let held = HeldSlot { read: guard.detach(), _token: token };
        send(seq, Outgoing::Shared(bytes::Bytes::from_owner(held)));
        // zenoh serialises the payload into its own batches during the put; a copy kept beyond
        // it (a local subscriber, a queued fragment) holds the slot until it is dropped.
        while watch.strong_count() > 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(true)
    }

    fn backlog(&self) -> u64 {
        self.ring.len() as u64
    }

    fn drop_when_alone(&self) -> bool {
        self.ring.available_read() as f64 / self.ring.capacity() as f64 >= DROP_FILL
    }

    fn next_seq(&self) -> u64 {
        self.seq
    }
}

/// One consumer of a queue; sequence numbers continue from the bridge's counters file.
struct QueueSource {
    queue: Queue,
    seq: u64,
}

impl Source for QueueSource {
    fn next(&mut self, timeout: Duration, send: &mut dyn FnMut(u64, Outgoing<'_>)) -> Result<bool, Error> {
        let seq = self.seq;
        let got = self.queue.get_with_timeout(Some(timeout), |m| send(seq, Outgoing::Slice(m)))?;
        if got.is_some() {
            self.seq += 1;
        }
        Ok(got.is_some())
    }

    fn backlog(&self) -> u64 {
        self.queue.len() as u64
    }

    fn drop_when_alone(&self) -> bool {
        false
    }

    fn next_seq(&self) -> u64 {
        self.seq
    }
}

/// A ring's producer: each message is written straight into its loaned slot.
struct RingSink {
    ring: Ring,
}

impl Sink for RingSink {
    fn write(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8]), stop: &AtomicBool) -> Result<bool, Error> {
        loop {
            // Relaxed: a flag polled between waits; nothing is published through it.
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            if let Some(mut slot) = self.ring.loan_timeout(len, Some(POLL))? {
                fill(&mut slot);
                slot.commit();
                return Ok(true);
            }
        }
    }
}

/// A queue's producer, writing each message in place under the producer lock.
struct QueueSink {
    queue: Queue,
}

impl Sink for QueueSink {
    fn write(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8]), stop: &AtomicBool) -> Result<bool, Error> {
        loop {
            // Relaxed: as in RingSink.
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let put = self.queue.put_with(len, Some(POLL), |slot| {
                fill(slot);
                Ok(())
            })?;
            if put {
                return Ok(true);
            }
        }
    }
}

/// A detached topic record lent to zenoh, with the token whose weak count tells the exporter
/// when zenoh has let go of it.
struct HeldRecord {
    view: DetachedView,
    _token: Arc<()>,
}

impl AsRef<[u8]> for HeldRecord {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the record stays held (and its mapping alive, `view.mem`) until the next
        // operation of the subscriber that read it, and `TopicSource::next` performs none until
        // every clone of this buffer (and so this HeldRecord) has been dropped: it waits for the
        // token's strong count to reach 0. The publisher does not write a held record.
        unsafe { std::slice::from_raw_parts(self.view.as_ptr(), self.view.len()) }
    }
}

/// One subscriber of a topic. Sequence numbers are the topic's own (its publisher's), so a
/// restarted exporter, a history reply and the live stream all number a message alike.
pub struct TopicSource {
    sub: Subscriber,
    /// Overwrite mode: messages are copied here (the publisher never waits for a reader).
    buf: Vec<u8>,
    max: usize,
    overwrite: bool,
}

impl TopicSource {
    /// A source reading `sub`, a subscriber of `topic`.
    pub fn new(topic: Topic, sub: Subscriber) -> TopicSource {
        let overwrite = topic.overflow() == Overflow::Overwrite;
        let max = topic.max_message_size();
        let buf = if overwrite { vec![0; max] } else { Vec::new() };
        TopicSource { sub, buf, max, overwrite }
    }

    /// The next message if one is ready now, as a copy, with its sequence number.
    pub fn try_next(&mut self) -> Result<Option<(u64, &[u8])>, Error> {
        if self.buf.len() < self.max {
            self.buf = vec![0; self.max];
        }
        match self.sub.try_recv_into(&mut self.buf)? {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some((self.sub.next_seq() - 1, &self.buf[..n]))),
            Some(Err(n)) => Err(Error::Protocol(format!("a topic message of {n} bytes exceeds its maximum size"))),
        }
    }

    /// Waits up to `timeout` for a message to be ready.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, Error> {
        Ok(self.sub.wait_readable(Some(timeout))?)
    }
}

impl Source for TopicSource {
    fn next(&mut self, timeout: Duration, send: &mut dyn FnMut(u64, Outgoing<'_>)) -> Result<bool, Error> {
        if !self.overwrite {
            let seq = self.sub.next_seq();
            let Some(m) = self.sub.recv_timeout(Some(timeout))? else { return Ok(false) };
            if m.len() < ZERO_COPY_MIN || !m.in_place() {
                send(seq, Outgoing::Slice(&m));
                return Ok(true);
            }
            // A large message leaves as a view of its record, as a ring's does (RingSource): the
            // record stays held, and the subscriber makes no other call until zenoh has let go.
            let Some(view) = m.detach() else { return Err(Error::Protocol("an in-place message has no view".into())) };
            let token = Arc::new(());
            let watch: Weak<()> = Arc::downgrade(&token);
            send(seq, Outgoing::Shared(bytes::Bytes::from_owner(HeldRecord { view, _token: token })));
            while watch.strong_count() > 0 {
                std::thread::sleep(Duration::from_micros(50));
            }
            return Ok(true);
        }
        for _ in 0..2 {
            match self.sub.try_recv_into(&mut self.buf)? {
                Some(Ok(n)) => {
                    send(self.sub.next_seq() - 1, Outgoing::Slice(&self.buf[..n]));
                    return Ok(true);
                }
                Some(Err(n)) => {
                    return Err(Error::Protocol(format!("a topic message of {n} bytes exceeds its maximum size")))
                }
                None if !self.sub.wait_readable(Some(timeout))? => return Ok(false),
                None => {}
            }
        }
        Ok(false)
    }

    fn backlog(&self) -> u64 {
        self.sub.lag()
    }

    fn drop_when_alone(&self) -> bool {
        true
    }

    fn skipped(&self) -> u64 {
        self.sub.dropped()
    }

    fn next_seq(&self) -> u64 {
        self.sub.next_seq()
    }
}

/// A topic's publisher (the importer is the local topic's one publisher).
struct TopicSink {
    publisher: Publisher,
    buf: Vec<u8>,
}

impl Sink for TopicSink {
    fn write(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8]), stop: &AtomicBool) -> Result<bool, Error> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(len, 0);
        fill(&mut buf);
        let r = self.write_slice(&buf, stop);
        self.buf = buf;
        r
    }

    fn write_slice(&mut self, msg: &[u8], stop: &AtomicBool) -> Result<bool, Error> {
        loop {
            // Relaxed: as in RingSink.
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            if self.publisher.publish_timeout(msg, Some(POLL))? {
                return Ok(true);
            }
        }
    }
}
