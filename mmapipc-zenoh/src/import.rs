//! `mmapipc-bridge import KEY PATH`: finds the exporter of KEY, checks (or creates) the local
//! channel, says hello, then writes every message of `mmapipc/data/KEY/FP` straight into its
//! local slot, in order, counting gaps and repeats by sequence number.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmapipc::region;
use mmapipc_cli::bridge_stats::{now_ns, off, BridgeStatsFile, Role};
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Session, Wait};

use crate::channel::{open_sink, Sink, POLL};
use crate::info::{check, Announcement, ChannelInfo};
use crate::net::{self, Attachment, Endpoints};
use crate::{z, Error};

/// What `import` needs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The user's key.
    pub key: String,
    /// The local channel (created like the exported one when missing).
    pub path: PathBuf,
    /// zenoh endpoints.
    pub endpoints: Endpoints,
    /// How long to look for the exporter before giving up (`None`: until stopped).
    pub wait: Option<Duration>,
}

/// Asks `mmapipc/info/KEY/*` until an exporter answers (or `wait` passes, or STOP).
pub fn find_exporter(session: &Session, key: &str, wait: Option<Duration>) -> Result<Option<Announcement>, Error> {
    let start = Instant::now();
    while !net::stopped() {
        let replies = session.get(format!("mmapipc/info/{key}/*")).timeout(Duration::from_secs(2)).wait().map_err(z)?;
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                let text = sample.payload().try_to_string().map_err(|e| Error::Protocol(e.to_string()))?;
                let a: Announcement = serde_json::from_str(&text).map_err(|e| Error::Protocol(e.to_string()))?;
                return Ok(Some(a));
            }
        }
        if wait.is_some_and(|w| start.elapsed() >= w) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(None)
}

/// The importer's state, behind the subscriber callback's lock.
struct State {
    sink: Box<dyn Sink>,
    stats: Arc<BridgeStatsFile>,
    /// The stream and next sequence number expected (from the counters file on start).
    stream: u64,
    expected: u64,
}

impl State {
    fn receive(&mut self, sample: &Sample) {
        let Some(att) = sample.attachment().and_then(|a| Attachment::decode(&a.to_bytes())) else {
            eprintln!("mmapipc-bridge: message without the bridge's attachment ignored");
            return;
        };
        let s = &self.stats;
        if att.stream != self.stream {
            // A new exported channel (or the first message ever): numbering starts here.
            if self.stream != 0 {
                eprintln!("mmapipc-bridge: new stream {:#x} (was {:#x}) from seq {}", att.stream, self.stream, att.seq);
            }
            self.stream = att.stream;
            self.expected = att.seq;
            s.set(off::STREAM, att.stream);
        }
        if att.seq < self.expected {
            s.add(off::DUPLICATES, 1);
            return;
        }
        if att.seq > self.expected {
            s.add(off::LOST, att.seq - self.expected);
        }
        let payload = sample.payload();
        let len = payload.len();
        let mut fill = |slot: &mut [u8]| {
            let mut at = 0;
            for part in payload.slices() {
                slot[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        };
        match self.sink.write(len, &mut fill, &net::STOP) {
            Ok(true) => {
                self.expected = att.seq + 1;
                s.set(off::NEXT_SEQ, self.expected);
                s.add(off::FORWARDED, 1);
                s.add(off::BYTES, len as u64);
                s.set(off::LAG_NS, now_ns().saturating_sub(att.sent_ns));
            }
            Ok(false) => {}
            Err(e) => {
                eprintln!("mmapipc-bridge: local write of message {} failed: {e}", att.seq);
                self.expected = att.seq + 1;
                s.add(off::LOST, 1);
            }
        }
    }
}

/// Runs an importer until [`net::STOP`] is set. Returns [`Error::Refused`] (exit status 3) when
/// the local channel may not receive the exporter's messages, after telling the exporter.
pub fn import(opts: &ImportOptions) -> Result<(), Error> {
    net::check_key(&opts.key)?;
    let path = region::resolve_path(&opts.path);
    let session = opts.endpoints.open()?;
    let Some(remote) = find_exporter(&session, &opts.key, opts.wait)? else {
        if net::stopped() {
            return Ok(());
        }
        return Err(Error::Usage(format!("no exporter of {} answered", opts.key)));
    };
    let fp = remote.channel.fingerprint();
    let local = if path.exists() {
        ChannelInfo::probe(&path)?
    } else {
        remote.channel.create(&path)?;
        eprintln!("mmapipc-bridge: created {} like {}:{}", path.display(), remote.host, remote.path);
        ChannelInfo::probe(&path)?
    };
    let stats = Arc::new(BridgeStatsFile::open(&path, Role::Import, &format!("{}/{fp}", opts.key))?);

    // The hello goes out whatever the local verdict, so that the exporter logs a refusal too.
    let mine = serde_json::to_string(&Announcement::new(&opts.key, local.clone(), &path))
        .map_err(|e| Error::Protocol(e.to_string()))?;
    let replies = session
        .get(net::key("hello", &opts.key, &fp))
        .payload(mine)
        .timeout(Duration::from_secs(10))
        .wait()
        .map_err(z)?;
    let mut answer = None;
    while let Ok(reply) = replies.recv() {
        answer = Some(match reply.result() {
            Ok(_) => Ok(()),
            Err(e) => Err(e.payload().try_to_string().map_or_else(|_| "refused".into(), |s| s.into_owned())),
        });
    }
    if let Err(refusal) = check(&remote.channel, &local) {
        stats.add(off::REFUSED, 1);
        eprintln!(
            "mmapipc-bridge: refusing {}:{} (pid {}) for {}: {refusal}",
            remote.host,
            remote.path,
            remote.pid,
            path.display()
        );
        return Err(Error::Refused(refusal));
    }
    match answer {
        Some(Ok(())) => {}
        Some(Err(text)) => return Err(Error::Protocol(format!("the exporter refused: {text}"))),
        None => return Err(Error::Protocol("the exporter did not answer the hello".into())),
    }

    let sink = open_sink(&path, &local)?;
    let stream = stats.get(off::STREAM);
    let expected = stats.get(off::NEXT_SEQ);
    let state = Mutex::new(State { sink, stats: stats.clone(), stream, expected });
    let subscriber = session
        .declare_subscriber(net::key("data", &opts.key, &fp))
        .callback(move |sample| {
            if let Ok(mut st) = state.lock() {
                st.receive(&sample);
            }
        })
        .wait()
        .map_err(z)?;
    let ps = stats.clone();
    let presence = session
        .liveliness()
        .declare_subscriber(net::key("live", &opts.key, &fp))
        .history(true)
        .callback(move |s| ps.set(off::PEERS, u64::from(s.kind() == SampleKind::Put)))
        .wait()
        .map_err(z)?;
    eprintln!(
        "mmapipc-bridge: importing {} from {}:{} into {} ({})",
        net::key("data", &opts.key, &fp),
        remote.host,
        remote.path,
        path.display(),
        local.label()
    );
    while !net::stopped() {
        std::thread::sleep(POLL);
        stats.set(off::UPDATED_NS, now_ns());
    }
    drop((presence, subscriber));
    session.close().wait().map_err(z)?;
    Ok(())
}
