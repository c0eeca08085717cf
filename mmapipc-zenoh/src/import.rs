//! `mmapipc-bridge import KEY PATH`: finds the exporter of KEY, checks (or creates) the local
//! channel, says hello, then writes every message of `mmapipc/data/KEY/FP` straight into its
//! local slot, in order, counting gaps and repeats by sequence number. With `--history` (a
//! topic), the retained messages first: the live samples are held while the exporter's
//! `history` queryable answers, then delivered after it, the sequence numbers deciding what is
//! new.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmapipc::region;
use mmapipc_cli::bridge_stats::{now_ns, off, BridgeStatsFile, Role};
use zenoh::query::ConsolidationMode;
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
    /// A topic: fetch the exported topic's retained messages first (see the module docs).
    pub history: bool,
}

/// How long a history query may take (it answers at most the exported topic's capacity).
const HISTORY_TIMEOUT: Duration = Duration::from_secs(60);

/// History queries at most: when the first live message held is past the history's end, the
/// missing ones are asked for again (the exporter may have taken them before it saw us).
const HISTORY_TRIES: usize = 3;

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
    /// While the history is fetched: the live samples, delivered after it.
    held: Option<Vec<Sample>>,
}

impl State {
    fn receive(&mut self, sample: &Sample) {
        match &mut self.held {
            Some(h) => h.push(sample.clone()),
            None => self.deliver(sample, Origin::Live),
        }
    }

    /// Counts one message written (numbered `expected`).
    fn written(&mut self, len: usize, origin: Origin) {
        self.expected += 1;
        self.stats.set(off::NEXT_SEQ, self.expected);
        self.stats.add(off::FORWARDED, 1);
        self.stats.add(off::BYTES, len as u64);
        if origin == Origin::History {
            self.stats.add(off::HISTORY, 1);
        }
    }

    /// The first held sample's first sequence number and stream, if any.
    fn first_held(&self) -> Option<(u64, u64)> {
        let a = attachment(self.held.as_ref()?.first()?)?;
        Some((a.seq, a.stream))
    }

    /// Writes the messages of one sample that are new, counting what is missing before them
    /// (`lost`) and what was had already (`duplicates`; in a history reply `history_skipped`).
    fn deliver(&mut self, sample: &Sample, origin: Origin) {
        let Some(att) = attachment(sample) else {
            eprintln!("mmapipc-bridge: message without the bridge's attachment ignored");
            return;
        };
        let s = self.stats.clone();
        if att.stream != self.stream {
            // A new exported channel (or the first message ever): numbering starts here.
            if self.stream != 0 {
                eprintln!("mmapipc-bridge: new stream {:#x} (was {:#x}) from seq {}", att.stream, self.stream, att.seq);
            }
            self.stream = att.stream;
            self.expected = att.seq;
            s.set(off::STREAM, att.stream);
        }
        let end = att.seq + att.count;
        let had = self.expected.saturating_sub(att.seq).min(att.count);
        if had > 0 {
            s.add(if origin == Origin::History { off::HISTORY_SKIPPED } else { off::DUPLICATES }, had);
        }
        if end <= self.expected {
            return;
        }
        if att.seq > self.expected {
            s.add(off::LOST, att.seq - self.expected);
        }
        self.expected = att.seq.max(self.expected);
        let payload = sample.payload();
        if att.count == 1 {
            let len = payload.len();
            let mut fill = |slot: &mut [u8]| {
                let mut at = 0;
                for part in payload.slices() {
                    slot[at..at + part.len()].copy_from_slice(part);
                    at += part.len();
                }
            };
            match self.sink.write(len, &mut fill, &net::STOP) {
                Ok(true) => self.written(len, origin),
                Ok(false) => return, // stopped
                Err(e) => {
                    eprintln!("mmapipc-bridge: local write of message {} failed: {e}", att.seq);
                    self.expected = end;
                    s.add(off::LOST, 1);
                    return;
                }
            }
        } else {
            let raw = payload.to_bytes();
            let Some(msgs) = net::frames(&raw, att.count) else {
                eprintln!("mmapipc-bridge: a batch of {} from {} is malformed; counted lost", att.count, att.seq);
                self.expected = end;
                s.add(off::LOST, att.count - had);
                return;
            };
            // One message at a time, each counted as it is written: a crash between the two
            // miscounts at most that one.
            for m in &msgs[had as usize..] {
                match self.sink.write_slice(m, &net::STOP) {
                    Ok(true) => self.written(m.len(), origin),
                    Ok(false) => return,
                    Err(e) => {
                        eprintln!("mmapipc-bridge: local write of message {} failed: {e}", self.expected);
                        s.add(off::LOST, end - self.expected);
                        self.expected = end;
                        return;
                    }
                }
            }
        }
        s.set(off::LAG_NS, now_ns().saturating_sub(att.sent_ns));
    }
}

/// Where a sample came from: the data key, or a reply to a history query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Live,
    History,
}

fn attachment(sample: &Sample) -> Option<Attachment> {
    sample.attachment().and_then(|a| Attachment::decode(&a.to_bytes()))
}

/// Asks the exporter's `history` queryable for the messages from `from` on and delivers them in
/// order; returns how many samples came.
fn fetch_history(session: &Session, key: &str, fp: &str, from: u64, state: &Mutex<State>) -> Result<usize, Error> {
    let replies = session
        .get(format!("{}?from={from}", net::key("history", key, fp)))
        .consolidation(ConsolidationMode::None)
        .timeout(HISTORY_TIMEOUT)
        .wait()
        .map_err(z)?;
    let mut got = Vec::new();
    while let Ok(reply) = replies.recv() {
        match reply.result() {
            Ok(sample) => got.push(sample.clone()),
            Err(e) => {
                let why = e.payload().try_to_string().map_or_else(|_| "?".into(), |s| s.into_owned());
                return Err(Error::Protocol(format!("the exporter's history failed: {why}")));
            }
        }
    }
    got.sort_by_key(|s| attachment(s).map_or(0, |a| a.seq));
    let mut st = state.lock().map_err(|_| Error::Protocol("importer state poisoned".into()))?;
    for s in &got {
        st.deliver(s, Origin::History);
    }
    Ok(got.len())
}

/// The history, then the held live samples, then live delivery (see the module docs).
fn history_then_live(session: &Session, key: &str, fp: &str, state: &Mutex<State>) -> Result<(), Error> {
    let poisoned = || Error::Protocol("importer state poisoned".into());
    // The whole retained history (the counters' stream may not be the exporter's any more);
    // what this importer had already is skipped by number.
    let mut from = 0;
    for attempt in 1..=HISTORY_TRIES {
        let n = fetch_history(session, key, fp, from, state)?;
        let mut st = state.lock().map_err(|_| poisoned())?;
        if let Some((first, stream)) = st.first_held() {
            // Asking again helps only within the stream the history gave.
            if first > st.expected && stream == st.stream && attempt < HISTORY_TRIES {
                from = st.expected;
                eprintln!("mmapipc-bridge: history ended at {from}, live stream at {first}: asking again");
                continue;
            }
        }
        let held = st.held.take().unwrap_or_default();
        let c = |o| st.stats.get(o);
        eprintln!(
            "mmapipc-bridge: history: {n} sample(s), then {} live one(s) held; counters: history {} (skipped {}), lost {}",
            held.len(),
            c(off::HISTORY),
            c(off::HISTORY_SKIPPED),
            c(off::LOST)
        );
        for s in &held {
            st.deliver(s, Origin::Live);
        }
        return Ok(());
    }
    Ok(())
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
    if opts.history && remote.channel.kind != "topic" {
        return Err(Error::Usage(format!("--history needs a topic; {} exports a {}", opts.key, remote.channel.kind)));
    }
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
    let held = opts.history.then(Vec::new);
    let state = Arc::new(Mutex::new(State { sink, stats: stats.clone(), stream, expected, held }));
    let live = state.clone();
    let subscriber = session
        .declare_subscriber(net::key("data", &opts.key, &fp))
        .callback(move |sample| {
            if let Ok(mut st) = live.lock() {
                st.receive(&sample);
            }
        })
        .wait()
        .map_err(z)?;
    if opts.history {
        history_then_live(&session, &opts.key, &fp, &state)?;
    }
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
