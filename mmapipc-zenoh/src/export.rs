//! `mmapipc-bridge export PATH --key KEY`: one consumer of a local channel publishing every
//! message on `mmapipc/data/KEY/FP` (see `docs/bridge.md` for the semantics and the policy).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmapipc::region::{self, OpenOptions};
use mmapipc_cli::bridge_stats::{now_ns, off, BridgeStatsFile, Role};
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::query::Query;
use zenoh::Wait;

use crate::channel::{open_source, Outgoing, POLL};
use crate::info::{check, Announcement, ChannelInfo};
use crate::net::{self, Attachment, Endpoints};
use crate::{z, Error};

/// Without an importer, a ring exporter drops the oldest messages while the ring is at least
/// this full, so local producers always find room (see `docs/bridge.md`, "Backpressure").
pub const DROP_FILL: f64 = 0.5;

/// How often an exporter without an importer looks at the ring's fill.
const ALONE_POLL: Duration = Duration::from_millis(5);

/// What `export` needs.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The local channel.
    pub path: PathBuf,
    /// The user's key.
    pub key: String,
    /// zenoh endpoints.
    pub endpoints: Endpoints,
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
    let mut source = open_source(&path, &info, stats.get(off::NEXT_SEQ))?;
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
    while !net::stopped() {
        // Relaxed: see the matching listener.
        let alone = !matching.load(Ordering::Relaxed);
        if alone && !(source.drops_when_alone() && source.fill() >= DROP_FILL) {
            // Without an importer a queue keeps its messages (for a later importer or another
            // local consumer), and a ring keeps them while it has room: a short outage (a
            // bridge restarting) loses nothing the ring can hold.
            std::thread::sleep(ALONE_POLL);
        } else {
            source.next(POLL, &mut |seq, msg| {
                let len = match &msg {
                    Outgoing::Slice(s) => s.len(),
                    Outgoing::Shared(b) => b.len(),
                };
                stats.set(off::NEXT_SEQ, seq + 1);
                // Looked at once the message is here (the wait for it may have been long).
                // Relaxed: see the matching listener.
                if !matching.load(Ordering::Relaxed) {
                    stats.add(off::DROPPED, 1);
                    return;
                }
                let payload = match msg {
                    Outgoing::Slice(s) => ZBytes::from(s),
                    Outgoing::Shared(b) => ZBytes::from(b),
                };
                let att = Attachment { seq, sent_ns: now_ns(), stream }.encode();
                match publisher.put(payload).attachment(att).wait() {
                    Ok(()) => {
                        stats.add(off::FORWARDED, 1);
                        stats.add(off::BYTES, len as u64);
                    }
                    Err(e) => {
                        eprintln!("mmapipc-bridge: put failed, message {seq} dropped: {e}");
                        stats.add(off::DROPPED, 1);
                    }
                }
            })?;
        }
        if last_update.elapsed() >= Duration::from_millis(50) {
            stats.set(off::BACKLOG, source.backlog());
            stats.set(off::UPDATED_NS, now_ns());
            last_update = Instant::now();
        }
    }
    stats.set(off::BACKLOG, source.backlog());
    stats.set(off::PEERS, 0);
    drop((token, hello_q, info_q, publisher));
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
