//! zenoh configuration, the bridge's keys, the per-message attachment, and the stop flag.

use std::sync::atomic::{AtomicBool, Ordering};

use zenoh::{Config, Session, Wait};

use crate::{z, Error};

/// Where a bridge listens and which peers it connects to (zenoh endpoints such as
/// `tcp/10.0.0.1:7447` or `unixsock-stream//tmp/bridge.sock`).
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// `listen.endpoints`.
    pub listen: Vec<String>,
    /// `connect.endpoints`.
    pub connect: Vec<String>,
}

impl Endpoints {
    /// The zenoh configuration: peer mode, multicast scouting off (peers are found only through
    /// the explicit endpoints and gossip over them), these endpoints.
    pub fn config(&self) -> Result<Config, Error> {
        let mut c = Config::default();
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        c.insert_json5("mode", r#""peer""#).map_err(z)?;
        c.insert_json5("scouting/multicast/enabled", "false").map_err(z)?;
        if !self.listen.is_empty() {
            c.insert_json5("listen/endpoints", &json(&self.listen)).map_err(z)?;
        }
        if !self.connect.is_empty() {
            c.insert_json5("connect/endpoints", &json(&self.connect)).map_err(z)?;
            // Reconnect to a restarted peer within a fifth of a second at first (zenoh's
            // default starts at one second), backing off to two seconds.
            c.insert_json5(
                "connect/retry",
                r#"{ period_init_ms: 200, period_max_ms: 2000, period_increase_factor: 2 }"#,
            )
            .map_err(z)?;
        }
        Ok(c)
    }

    /// Opens a zenoh session with [`config`](Self::config).
    pub fn open(&self) -> Result<Session, Error> {
        zenoh::open(self.config()?).wait().map_err(z)
    }
}

/// Checks a user's key: one or more `/`-separated chunks, none empty, none a wildcard or
/// starting with `@` or `$` (zenoh's reserved forms).
pub fn check_key(key: &str) -> Result<(), Error> {
    let bad = key.is_empty()
        || key.split('/').any(|c| {
            c.is_empty() || c.starts_with('@') || c.contains(['*', '$', '?', '#']) || c.chars().any(char::is_whitespace)
        });
    if bad {
        return Err(Error::Usage(format!(
            "key {key:?}: use /-separated names without wildcards, spaces, '$', '?', '#' or a leading '@'"
        )));
    }
    Ok(())
}

/// `mmapipc/<what>/<key>/<fingerprint>`.
pub fn key(what: &str, key: &str, fingerprint: &str) -> String {
    format!("mmapipc/{what}/{key}/{fingerprint}")
}

/// Splits `mmapipc/<what>/<key>/<fingerprint>` into key and fingerprint.
pub fn parse_key<'a>(what: &str, full: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = full.strip_prefix("mmapipc/")?.strip_prefix(what)?.strip_prefix('/')?;
    rest.rsplit_once('/')
}

/// The 32 bytes every zenoh sample of the bridge carries as its attachment (four little-endian
/// `u64`). A sample holds `count` messages numbered `seq..seq + count`: one message is the
/// payload itself; several are [`frames`] (a batch of small messages taken at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachment {
    /// The (first) message's sequence number in its stream (consecutive).
    pub seq: u64,
    /// When the exporter sent it (ns since the Unix epoch).
    pub sent_ns: u64,
    /// The stream: the exported channel's identity (its creator pid and creation time).
    pub stream: u64,
    /// Messages in the sample (at least 1).
    pub count: u64,
}

impl Attachment {
    /// Encoded size.
    pub const LEN: usize = 32;

    /// The bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
        b[16..24].copy_from_slice(&self.stream.to_le_bytes());
        b[24..].copy_from_slice(&self.count.to_le_bytes());
        b
    }

    /// Parses the bytes; `None` unless exactly [`Self::LEN`] with a count of at least 1.
    pub fn decode(b: &[u8]) -> Option<Attachment> {
        if b.len() != Self::LEN {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let a = Attachment { seq: u(0), sent_ns: u(8), stream: u(16), count: u(24) };
        (a.count >= 1).then_some(a)
    }
}

/// Appends one message to a batch: its length (little-endian `u32`), then its bytes.
pub fn push_frame(batch: &mut Vec<u8>, msg: &[u8]) {
    batch.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    batch.extend_from_slice(msg);
}

/// The payload of a sample holding the `count` messages framed in `batch` by [`push_frame`]:
/// one message as itself (no frame), several as their frames. Every sender uses this, so that
/// receivers can tell the two apart by the attachment's count alone.
pub fn sample_bytes(batch: &[u8], count: u64) -> &[u8] {
    if count == 1 {
        &batch[4..]
    } else {
        batch
    }
}

/// The messages of a batch made by [`push_frame`]; `None` if it is not exactly `count` frames.
pub fn frames(batch: &[u8], count: u64) -> Option<Vec<&[u8]>> {
    let mut out = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut rest = batch;
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        out.push(rest.get(4..4 + len)?);
        rest = &rest[4 + len..];
    }
    (out.len() as u64 == count).then_some(out)
}

/// Set by SIGINT/SIGTERM: the bridge stops at the next poll.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Relaxed: a flag polled by the bridge's loops; an atomic store is async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM set [`STOP`] (for the binary; a library user sets it directly).
pub fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic (async-signal-safe); the
        // function pointer has the C signature signal() expects.
        unsafe { libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

/// True once [`STOP`] is set.
pub fn stopped() -> bool {
    // Relaxed: see on_signal.
    STOP.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_round_trip() {
        let a = Attachment { seq: 7, sent_ns: u64::MAX, stream: 0x0123_4567_89ab_cdef, count: 3 };
        assert_eq!(Attachment::decode(&a.encode()), Some(a));
        assert_eq!(Attachment::decode(&a.encode()[..31]), None);
        assert_eq!(Attachment::decode(&Attachment { count: 0, ..a }.encode()), None);
    }

    #[test]
    fn batches_round_trip_and_bad_ones_are_refused() {
        let mut b = Vec::new();
        for m in [&b"one"[..], b"", b"three"] {
            push_frame(&mut b, m);
        }
        assert_eq!(frames(&b, 3), Some(vec![&b"one"[..], b"", b"three"]));
        assert_eq!(frames(&b, 2), None, "count mismatch");
        assert_eq!(frames(&b[..b.len() - 1], 3), None, "truncated");
    }

    #[test]
    fn a_sample_of_one_message_is_the_message_itself() {
        let mut b = Vec::new();
        push_frame(&mut b, b"only");
        assert_eq!(sample_bytes(&b, 1), b"only", "one message travels without its frame");
        push_frame(&mut b, b"two");
        assert_eq!(frames(sample_bytes(&b, 2), 2), Some(vec![&b"only"[..], b"two"]));
    }

    #[test]
    fn keys_are_checked_and_parsed() {
        for ok in ["market/ticks", "a", "a/b/c-d_e.f"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", "a/*", "a/**", "@x/y", "a/$b", "a b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        let k = key("live", "market/ticks", "00ff");
        assert_eq!(k, "mmapipc/live/market/ticks/00ff");
        assert_eq!(parse_key("live", &k), Some(("market/ticks", "00ff")));
        assert_eq!(parse_key("info", &k), None);
    }
}
