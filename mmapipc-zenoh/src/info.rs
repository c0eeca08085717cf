//! What an exporter announces about its channel, the schema rule both ends apply, and creating
//! the importer's local channel like the exported one.

use std::path::Path;

use mmapipc::region::{self, OpenOptions};
use mmapipc::topic::{Overflow, TopicOptions};
use mmapipc::{CreateOptions, Kind, Queue, QueueOptions, Ring, Schema, Topic};
use serde::{Deserialize, Serialize};

use crate::Error;

/// A channel as the bridge sees it: kind, capacity, schema (and a topic's table size and
/// overflow mode, which the importer gives the topic it creates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// `"ring"`, `"queue"` or `"topic"`.
    pub kind: String,
    /// Data area size in bytes.
    pub capacity: u64,
    /// The schema of a typed channel, `None` for bytes.
    pub schema: Option<Schema>,
    /// A topic's `max_subscribers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscribers: Option<usize>,
    /// A topic's overflow mode: `"block"` or `"overwrite"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow: Option<String>,
}

impl ChannelInfo {
    /// Reads kind, capacity and schema from the channel file at `path`.
    pub fn probe(path: &Path) -> Result<ChannelInfo, Error> {
        let path = region::resolve_path(path);
        let (_region, header) = region::open_any(&path, &OpenOptions::default())?;
        let kind = Kind::from_code(header.kind);
        let (name, max_subscribers, overflow) = match kind {
            Kind::Ring => ("ring", None, None),
            Kind::Queue => ("queue", None, None),
            Kind::Topic => {
                let t = Topic::open(&path)?;
                let o = if t.overflow() == Overflow::Overwrite { "overwrite" } else { "block" };
                ("topic", Some(t.max_subscribers()), Some(o.to_string()))
            }
            other => {
                return Err(Error::Usage(format!("{}: a {other}, not a ring, a queue or a topic", path.display())))
            }
        };
        let schema = mmapipc::typed::channel_schema(&path, kind, &OpenOptions::default())
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(ChannelInfo { kind: name.into(), capacity: header.data_size, schema, max_subscribers, overflow })
    }

    /// The fingerprint chunk of the zenoh keys: the schema's 16 hex digits, or `bytes`.
    pub fn fingerprint(&self) -> String {
        match &self.schema {
            Some(s) => s.fingerprint.trim_start_matches("0x").to_string(),
            None => "bytes".into(),
        }
    }

    /// `name vN (fingerprint)` or `bytes`.
    pub fn label(&self) -> String {
        self.schema.as_ref().map_or("bytes (untyped)".into(), Schema::label)
    }

    /// Creates a channel like this one at `path` (kind, capacity, schema; a topic's
    /// `max_subscribers` and overflow mode).
    pub fn create(&self, path: &Path) -> Result<(), Error> {
        let blob = self.schema.as_ref().map(Schema::to_json).unwrap_or_default();
        let cap = self.capacity as usize;
        match self.kind.as_str() {
            "ring" => drop(Ring::create_with_schema(path, cap, &CreateOptions::default(), blob.as_bytes())?),
            "queue" => drop(Queue::create_with_schema(path, cap, &QueueOptions::default(), blob.as_bytes())?),
            "topic" => {
                let mut opts = TopicOptions::default();
                if let Some(n) = self.max_subscribers {
                    opts.max_subscribers = n;
                }
                if self.overflow.as_deref() == Some("overwrite") {
                    opts.overflow = Overflow::Overwrite;
                }
                drop(Topic::create_with_schema(path, cap, &opts, blob.as_bytes())?);
            }
            other => return Err(Error::Protocol(format!("unknown channel kind {other:?}"))),
        }
        Ok(())
    }
}

/// What the exporter's queryable answers and what an importer's hello carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announcement {
    /// The user's key (`market/ticks`).
    pub key: String,
    /// The channel.
    pub channel: ChannelInfo,
    /// The host name of the bridge.
    pub host: String,
    /// The channel's path on that host.
    pub path: String,
    /// The bridge's pid.
    pub pid: u32,
}

impl Announcement {
    /// This process's announcement of `channel` at `path`.
    pub fn new(key: &str, channel: ChannelInfo, path: &Path) -> Announcement {
        Announcement {
            key: key.into(),
            channel,
            host: hostname(),
            path: path.display().to_string(),
            pid: std::process::id(),
        }
    }
}

/// Why an importer's channel may not receive an exporter's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One sentence per difference (the field-by-field diff of [`Schema::check_reader`] first).
    pub details: Vec<String>,
    /// The two channels, for the headline.
    pub exported: String,
    /// See `exported`.
    pub imported: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "schema mismatch: exported channel has {}, imported channel has {}", self.exported, self.imported)?;
        for d in &self.details {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// The rule both ends apply: may the bridge write the messages of `exported` into `imported`?
///
/// The importer is a producer of its local channel, so the rule is the one a local producer
/// meets: the local channel's readers were checked against its schema ([`Schema::check_reader`]
/// on open) and only a writer of the channel's own version may write (an older or newer layout
/// would put the root elsewhere). So the kinds must match, both must be typed or both untyped,
/// and a typed pair must pass `exported.check_reader(imported)` (the same diff as a local open)
/// at the same version.
pub fn check(exported: &ChannelInfo, imported: &ChannelInfo) -> Result<(), Refusal> {
    let mut details = Vec::new();
    if exported.kind != imported.kind {
        details.push(format!("kind: {} (exported) vs {} (imported)", exported.kind, imported.kind));
    }
    match (&exported.schema, &imported.schema) {
        (None, None) => {}
        (Some(e), None) => details.push(format!("typed {} (exported) vs untyped bytes (imported)", e.label())),
        (None, Some(i)) => details.push(format!("untyped bytes (exported) vs typed {} (imported)", i.label())),
        (Some(e), Some(i)) => {
            if let Err(m) = e.check_reader(i) {
                details.extend(m.details);
            }
            if e.version != i.version && details.is_empty() {
                details.push(format!(
                    "version: exported v{} vs imported v{}: the bridge writes into the imported channel, and only \
                     a writer of the channel's own version may write",
                    e.version, i.version
                ));
            }
        }
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(Refusal { details, exported: exported.label(), imported: imported.label() })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "?".into(), |s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use mmapipc::IpcMessage;
    use mmapipc_cli::example_types::{Tick, TickV2};

    use super::*;

    fn chan(kind: &str, schema: Option<Schema>) -> ChannelInfo {
        ChannelInfo { kind: kind.into(), capacity: 4096, schema, max_subscribers: None, overflow: None }
    }

    #[test]
    fn the_same_channel_is_accepted() {
        assert_eq!(check(&chan("ring", Some(Tick::schema())), &chan("ring", Some(Tick::schema()))), Ok(()));
        assert_eq!(check(&chan("queue", None), &chan("queue", None)), Ok(()));
    }

    #[test]
    fn kinds_and_typedness_must_match() {
        let r = check(&chan("ring", None), &chan("queue", None)).unwrap_err();
        assert_eq!(r.details, ["kind: ring (exported) vs queue (imported)"]);
        let r = check(&chan("ring", Some(Tick::schema())), &chan("ring", None)).unwrap_err();
        assert!(r.details[0].starts_with("typed market.Tick v1"), "{r}");
    }

    #[test]
    fn an_older_import_of_a_newer_export_is_refused_by_the_writer_rule() {
        // check_reader alone accepts a v1 reader of a v2 channel; the bridge writes, so no.
        assert!(TickV2::schema().check_reader(&Tick::schema()).is_ok());
        let r = check(&chan("ring", Some(TickV2::schema())), &chan("ring", Some(Tick::schema()))).unwrap_err();
        assert_eq!(r.details.len(), 1);
        assert!(r.details[0].starts_with("version: exported v2 vs imported v1"), "{r}");
    }

    #[test]
    fn a_newer_import_gets_the_reader_rule_s_diff() {
        let r = check(&chan("ring", Some(Tick::schema())), &chan("ring", Some(TickV2::schema()))).unwrap_err();
        let want = Tick::schema().check_reader(&TickV2::schema()).unwrap_err().details;
        assert_eq!(r.details, want, "the same diff as a local open");
        assert!(r.to_string().starts_with("schema mismatch: exported channel has market.Tick v1"), "{r}");
    }

    #[test]
    fn fingerprints_name_the_keys() {
        let c = chan("ring", Some(Tick::schema()));
        assert_eq!(format!("0x{}", c.fingerprint()), Tick::schema().fingerprint);
        assert_eq!(chan("ring", None).fingerprint(), "bytes");
    }
}
