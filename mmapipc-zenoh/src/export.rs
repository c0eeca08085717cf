//! `mmapipc-bridge export PATH --key KEY`: one consumer of a local channel publishing every
//! message on `mmapipc/data/KEY/FP` (small messages batched, several per zenoh sample), and for
//! a topic a `history` queryable answering its retained messages (see `docs/bridge.md`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmapipc::region::{self, OpenOptions};
use mmapipc::topic::Start;
use mmapipc::Topic;
use mmapipc_cli::bridge_stats::{now_ns, off, BridgeStatsFile, Role};
use zenoh::bytes::ZBytes;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::Query;
use zenoh::Wait;

use crate::channel::{open_source, Outgoing, TopicSource, POLL};
use crate::info::{check, Announcement, ChannelInfo};
use crate::net::{self, push_frame, Attachment, Endpoints};
use crate::pool::CopyPool;
use crate::{z, Error};

/// How often an exporter without an importer looks at the ring's fill.
const ALONE_POLL: Duration = Duration::from_millis(5);

/// Messages up to this size that are ready together travel in one zenoh sample (a batch of
/// frames, [`push_frame`]); larger ones alone. zenoh's cost is per sample, so a batch of small
/// messages costs about what one does.
pub const BATCH_MSG_MAX: usize = 2048;

/// A batch is sent once it holds this many bytes (well inside zenoh's 64 KiB transport batch,
/// so a sample is never fragmented).
pub const BATCH_BYTES: usize = 16 << 10;

/// At most this many messages per batch.
pub const BATCH_COUNT: u64 = 1024;

/// What `export` needs.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The local channel.
    pub path: PathBuf,
    /// The user's key.
    pub key: String,
    /// zenoh endpoints.
    pub endpoints: Endpoints,
    /// Where a topic's subscription starts (`Latest`: what is published from now on).
    pub start: Start,
}

/// The identity of a channel file: its creator's pid and creation time, mixed. A new file at
/// the same path is a new stream (an importer restarts its numbering).
pub fn stream_id(path: &Path) -> Result<u64, Error> {
    let (_r, h) = region::open_any(path, &OpenOptions::default())?;
    Ok(h.created_unix_ns ^ (u64::from(h.creator_pid) << 40))
}

/// Runs an exporter until [`net::STOP`] is set. Errors: the channel cannot be opened (or its
/// consumer role is held by a live process), zenoh cannot start.
pub fn export(opts: &ExportOptions) -> Result<(), Error> {
    net::check_key(&opts.key)?;
    let path = region::resolve_path(&opts.path);
    let info = ChannelInfo::probe(&path)?;
    let stream = stream_id(&path)?;
    let fp = info.fingerprint();
    let stats = Arc::new(BridgeStatsFile::open(&path, Role::Export, &format!("{}/{fp}", opts.key))?);
    let mut source = open_source(&path, &info, stats.get(off::NEXT_SEQ), opts.start)?;
    stats.set(off::STREAM, stream);

    let session = opts.endpoints.open()?;
    let announcement = Announcement::new(&opts.key, info.clone(), &path);
    let ann_json = serde_json::to_string(&announcement).map_err(|e| Error::Protocol(e.to_string()))?;

    let info_q = session
        .declare_queryable(net::key("info", &opts.key, &fp))
        .callback(move |q: Query| {
            let _ = q.reply(q.key_expr().clone(), ann_json.clone()).wait();
        })
        .wait()
        .map_err(z)?;
    let hello_stats = stats.clone();
    let exported = info.clone();
    let hello_q = session
        .declare_queryable(net::key("hello", &opts.key, &fp))
        .callback(move |q: Query| hello(&q, &exported, &hello_stats))
        .wait()
        .map_err(z)?;
    let publisher = session
        .declare_publisher(net::key("data", &opts.key, &fp))
        .congestion_control(CongestionControl::Block)
        .wait()
        .map_err(z)?;
    let matching = Arc::new(AtomicBool::new(false));
    let history_q = if info.kind == "topic" {
        let topic = Topic::open(&path)?;
        let (m, hs) = (matching.clone(), stats.clone());
        let q = session
            .declare_queryable(net::key("history", &opts.key, &fp))
            .callback(move |q: Query| {
                // An importer asks for history after subscribing to the live stream: from now on
                // the exporter forwards what it takes (SeqCst, with the fence in `history`:
                // what was published after the history's end is taken after this store).
                m.store(true, Ordering::SeqCst);
                let (topic, hs) = (topic.clone(), hs.clone());
                // Replies may wait on zenoh's congestion control: not on its callback thread.
                std::thread::spawn(move || history(q, &topic, stream, &hs));
            })
            .wait()
            .map_err(z)?;
        Some(q)
    } else {
        None
    };
    let (m, ms) = (matching.clone(), stats.clone());
    publisher
        .matching_listener()
        .callback(move |s| {
            // Relaxed: the flag only decides whether the next message is sent or dropped.
            m.store(s.matching(), Ordering::Relaxed);
            ms.set(off::PEERS, u64::from(s.matching()));
        })
        .background()
        .wait()
        .map_err(z)?;
    let token = session.liveliness().declare_token(net::key("live", &opts.key, &fp)).wait().map_err(z)?;
    eprintln!(
        "mmapipc-bridge: exporting {} ({} {}, {}) as {}",
        path.display(),
        info.kind,
        info.capacity,
        info.label(),
        net::key("data", &opts.key, &fp)
    );

    let mut last_update = Instant::now();
    let mut out = Batch::new(&publisher, &stats, &matching, stream);
    let mut skipped = source.skipped();
    while !net::stopped() {
        // Relaxed: see the matching listener.
        let alone = !matching.load(Ordering::Relaxed);
        if alone && !source.drop_when_alone() {
            // Without an importer a queue keeps its messages (for a later importer or another
            // local consumer), and a ring keeps them while it has room: a short outage (a
            // bridge restarting) loses nothing the ring can hold.
            std::thread::sleep(ALONE_POLL);
        } else {
            // The first message waits; those ready behind it join its batch without waiting.
            let mut more = source.next(POLL, &mut |seq, msg| out.push(seq, msg))?;
            while more && out.count != 0 {
                more = source.next(Duration::ZERO, &mut |seq, msg| out.push(seq, msg))?;
            }
            out.flush();
        }
        let now_skipped = source.skipped();
        if now_skipped != skipped {
            stats.add(off::DROPPED, now_skipped - skipped);
            skipped = now_skipped;
        }
        if last_update.elapsed() >= Duration::from_millis(50) {
            stats.set(off::BACKLOG, source.backlog());
            stats.set(off::UPDATED_NS, now_ns());
            last_update = Instant::now();
        }
    }
    stats.set(off::BACKLOG, source.backlog());
    stats.set(off::PEERS, 0);
    drop(out);
    drop((token, hello_q, info_q, history_q, publisher));
    session.close().wait().map_err(z)?;
    Ok(())
}

/// Answers an importer's hello: `ok`, or the refusal (logged here too: both ends say why).
fn hello(q: &Query, exported: &ChannelInfo, stats: &BridgeStatsFile) {
    let theirs = q
        .payload()
        .and_then(|p| p.try_to_string().ok().map(|s| s.into_owned()))
        .and_then(|s| serde_json::from_str::<Announcement>(&s).ok());
    let Some(theirs) = theirs else {
        let _ = q.reply_err("bad hello: expected an announcement (JSON)").wait();
        return;
    };
    match check(exported, &theirs.channel) {
        Ok(()) => {
            eprintln!("mmapipc-bridge: importer {}:{} (pid {}) accepted", theirs.host, theirs.path, theirs.pid);
            let _ = q.reply(q.key_expr().clone(), "ok").wait();
        }
        Err(refusal) => {
            stats.add(off::REFUSED, 1);
            eprintln!(
                "mmapipc-bridge: refused importer {}:{} (pid {}): {refusal}",
                theirs.host, theirs.path, theirs.pid
            );
            let _ = q.reply_err(refusal.to_string()).wait();
        }
    }
}

/// The messages taken and not yet put: a batch of frames, consecutive sequence numbers.
struct Batch<'a> {
    publisher: &'a Publisher<'static>,
    stats: &'a BridgeStatsFile,
    matching: &'a AtomicBool,
    stream: u64,
    buf: Vec<u8>,
    first: u64,
    count: u64,
    bytes: u64,
    /// Buffers for the copies of messages that leave alone.
    copies: CopyPool,
}

impl<'a> Batch<'a> {
    fn new(
        publisher: &'a Publisher<'static>,
        stats: &'a BridgeStatsFile,
        matching: &'a AtomicBool,
        stream: u64,
    ) -> Self {
        Batch {
            publisher,
            stats,
            matching,
            stream,
            buf: Vec::with_capacity(BATCH_BYTES + BATCH_MSG_MAX + 4),
            first: 0,
            count: 0,
            bytes: 0,
            copies: CopyPool::new(),
        }
    }

    /// Takes one message: into the batch, or (a large one) straight out after the batch.
    fn push(&mut self, seq: u64, msg: Outgoing<'_>) {
        self.stats.set(off::NEXT_SEQ, seq + 1);
        // Looked at once the message is here (the wait for it may have been long).
        // Relaxed: see the matching listener. Before dropping, a SeqCst fence and a second look:
        // a history query's SeqCst store of the flag and fence before it reads the published
        // count make this see the flag for every message that count left out (the history ends
        // where the live stream is sure to begin; the importer also asks again for a gap).
        if !self.matching.load(Ordering::Relaxed) && {
            fence(Ordering::SeqCst);
            !self.matching.load(Ordering::Relaxed)
        } {
            self.flush();
            self.stats.add(off::DROPPED, 1);
            return;
        }
        if self.count != 0 && seq != self.first + self.count {
            self.flush(); // a gap (a lapped topic subscriber): numbers in a batch are consecutive
        }
        match msg {
            Outgoing::Slice(s) if s.len() <= BATCH_MSG_MAX => {
                if self.count == 0 {
                    self.first = seq;
                }
                push_frame(&mut self.buf, s);
                self.count += 1;
                self.bytes += s.len() as u64;
                if self.buf.len() >= BATCH_BYTES || self.count >= BATCH_COUNT {
                    self.flush();
                }
            }
            Outgoing::Slice(s) => {
                self.flush();
                self.put(seq, 1, s.len(), ZBytes::from(self.copies.copy(s)));
            }
            Outgoing::Shared(b) => {
                self.flush();
                self.put(seq, 1, b.len(), ZBytes::from(b));
            }
        }
    }

    /// Puts the batch: one message as itself, several as frames.
    fn flush(&mut self) {
        if self.count == 0 {
            return;
        }
        let (first, count, bytes) = (self.first, self.count, self.bytes as usize);
        // A copy (at most BATCH_BYTES and a message), so that the buffer is kept for the next
        // batch rather than a fresh one allocated per sample.
        let payload = ZBytes::from(net::sample_bytes(&self.buf, count));
        self.buf.clear();
        self.count = 0;
        self.bytes = 0;
        self.put(first, count, bytes, payload);
    }

    fn put(&self, seq: u64, count: u64, bytes: usize, payload: ZBytes) {
        let att = Attachment { seq, sent_ns: now_ns(), stream: self.stream, count }.encode();
        match self.publisher.put(payload).attachment(att).wait() {
            Ok(()) => {
                self.stats.add(off::FORWARDED, count);
                self.stats.add(off::BYTES, bytes as u64);
            }
            Err(e) => {
                eprintln!("mmapipc-bridge: put failed, {count} message(s) from {seq} dropped: {e}");
                self.stats.add(off::DROPPED, count);
            }
        }
    }
}

/// Serialises the history threads' adds to the `history` counter.
static HISTORY_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Answers a history query: the messages a `Start::Oldest` subscriber gets, from the parameter
/// `from` (a sequence number, default 0) up to the last one published when the query came,
/// in batches like the data key's. Bounded by what the topic retains (at most its capacity).
/// The messages of the replies put are counted in `history`.
fn history(q: Query, topic: &Topic, stream: u64, stats: &BridgeStatsFile) {
    let from: u64 = q.parameters().get("from").and_then(|v| v.parse().ok()).unwrap_or(0);
    // SeqCst: pairs with the store of `matching` before this thread was started (see there).
    fence(Ordering::SeqCst);
    let end = topic.stats().messages_in;
    let sub = match topic.subscribe(Start::Oldest) {
        Ok(s) => s,
        Err(e) => {
            let _ = q.reply_err(format!("history: {e}")).wait();
            return;
        }
    };
    let mut src = TopicSource::new(topic.clone(), sub);
    let (mut buf, mut first, mut count) = (Vec::new(), 0u64, 0u64);
    let mut sent = 0u64;
    let reply = |buf: Vec<u8>, first: u64, count: u64| {
        let att = Attachment { seq: first, sent_ns: now_ns(), stream, count }.encode();
        let sent = q.reply(q.key_expr().clone(), ZBytes::from(net::sample_bytes(&buf, count))).attachment(att).wait();
        if sent.is_ok() {
            // Two history queries may be answered at once: their adds take turns (the counter
            // is a load and a store).
            let _turn = HISTORY_TURN.lock();
            stats.add(off::HISTORY, count);
        }
    };
    loop {
        let next = match src.try_next() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("mmapipc-bridge: history: {e}");
                break;
            }
        };
        let Some((seq, msg)) = next else { break };
        if seq >= end {
            break;
        }
        if seq < from {
            continue;
        }
        if count != 0 && (seq != first + count || buf.len() >= BATCH_BYTES || count >= BATCH_COUNT) {
            reply(std::mem::take(&mut buf), first, count);
            count = 0;
        }
        if count == 0 {
            first = seq;
        }
        push_frame(&mut buf, msg);
        count += 1;
        sent += 1;
    }
    if count != 0 {
        reply(buf, first, count);
    }
    eprintln!("mmapipc-bridge: history from {from}: {sent} message(s) before {end}");
}
