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

/// The 24 bytes every message carries as its zenoh attachment (three little-endian `u64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachment {
    /// The message's sequence number in its stream (consecutive).
    pub seq: u64,
    /// When the exporter sent it (ns since the Unix epoch).
    pub sent_ns: u64,
    /// The stream: the exported channel's identity (its creator pid and creation time).
    pub stream: u64,
}

impl Attachment {
    /// Encoded size.
    pub const LEN: usize = 24;

    /// The bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
        b[16..].copy_from_slice(&self.stream.to_le_bytes());
        b
    }

    /// Parses the bytes; `None` unless exactly [`Self::LEN`].
    pub fn decode(b: &[u8]) -> Option<Attachment> {
        if b.len() != Self::LEN {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Some(Attachment { seq: u(0), sent_ns: u(8), stream: u(16) })
    }
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
        let a = Attachment { seq: 7, sent_ns: u64::MAX, stream: 0x0123_4567_89ab_cdef };
        assert_eq!(Attachment::decode(&a.encode()), Some(a));
        assert_eq!(Attachment::decode(&a.encode()[..23]), None);
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
