//! What the tool knows about one channel: counters, fill level, attached processes, liveness.
//! Everything here only reads the mapping (no role, no lock, no write).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{json, Value};

use mmapipc::owner;
use mmapipc::queue::{Queue, QueueOptions};
use mmapipc::region::OpenOptions;
use mmapipc::ring::Ring;
use mmapipc::Kind;
use std::sync::atomic::Ordering;

/// A process recorded in a channel's control block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// What it holds: `producer`, `consumer`, `producer lock`, `consumer lock`, `view`.
    pub role: &'static str,
    /// Its pid.
    pub pid: u32,
    /// Whether that exact process (pid and start time) still runs; zombies count as dead.
    pub alive: bool,
}

/// The counters a channel keeps (`None`: this kind does not keep it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages committed by producers.
    pub msgs_in: u64,
    /// Payload bytes committed.
    pub bytes_in: u64,
    /// Messages consumed.
    pub msgs_out: u64,
    /// Payload bytes consumed.
    pub bytes_out: u64,
    /// Times a producer found it full.
    pub full_waits: u64,
    /// Times a consumer found it empty.
    pub empty_waits: u64,
    /// Wakes issued to sleeping consumers (futex sequence word; 32-bit, wraps).
    pub consumer_wakes: u32,
    /// Wakes issued to sleeping producers.
    pub producer_wakes: u32,
    /// Consumers asleep right now.
    pub consumers_sleeping: u32,
    /// Producers asleep right now.
    pub producers_sleeping: u32,
    /// Locks taken over from dead holders (queue only).
    pub lock_recoveries: Option<u64>,
    /// Views reclaimed from dead consumers (queue only).
    pub view_recoveries: Option<u64>,
    /// Times producers waited for space held by views not yet released (queue only).
    pub view_stalls: Option<u64>,
}

/// A ring's or queue's live state.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Data-area size.
    pub capacity: u64,
    /// Bytes in use (framing included): ring `tail - head`, queue `tail - reclaim`.
    pub used: u64,
    /// Bytes committed and not yet consumed (framing included): the lag.
    pub lag_bytes: u64,
    /// Messages committed and not yet consumed (from the counters).
    pub pending: u64,
    /// Counters.
    pub counters: Counters,
    /// Processes recorded in the control block.
    pub holders: Vec<Holder>,
}

/// Opens `path` read-only-in-spirit as its kind and samples its state.
pub fn live(path: &Path, kind: Kind) -> Result<Option<Live>, String> {
    match kind {
        Kind::Ring => {
            let r = Ring::open_with(path, &OpenOptions { allow_foreign_owner: true }).map_err(|e| e.to_string())?;
            Ok(Some(ring_live(&r)))
        }
        Kind::Queue => {
            let q = Queue::open_with(path, &QueueOptions { allow_foreign_owner: true, ..QueueOptions::default() })
                .map_err(|e| e.to_string())?;
            Ok(Some(queue_live(&q)))
        }
        _ => Ok(None),
    }
}

/// A ring's state.
pub fn ring_live(r: &Ring) -> Live {
    let s = r.stats();
    let i = r.inspect();
    let mut holders = Vec::new();
    for (role, w) in [("producer", i.producer), ("consumer", i.consumer)] {
        if w != 0 {
            holders.push(Holder { role, pid: owner::pid(w), alive: owner::alive(w) });
        }
    }
    let used = i.tail.saturating_sub(i.head).min(r.capacity() as u64);
    Live {
        capacity: r.capacity() as u64,
        used,
        lag_bytes: used,
        pending: s.messages_in.saturating_sub(s.messages_out),
        counters: Counters {
            msgs_in: s.messages_in,
            bytes_in: s.bytes_in,
            msgs_out: s.messages_out,
            bytes_out: s.bytes_out,
            full_waits: s.full_waits,
            empty_waits: s.empty_waits,
            consumer_wakes: i.data_wakes,
            producer_wakes: i.space_wakes,
            consumers_sleeping: i.data_sleepers,
            producers_sleeping: i.space_sleepers,
            lock_recoveries: None,
            view_recoveries: None,
            view_stalls: None,
        },
        holders,
    }
}

/// A queue's state.
pub fn queue_live(q: &Queue) -> Live {
    let s = q.stats();
    let c = q.control();
    // Relaxed: a snapshot for display.
    let reclaim = c.reclaim.value.load(Ordering::Relaxed);
    let read = c.read.value.load(Ordering::Relaxed);
    let tail = c.tail.value.load(Ordering::Relaxed);
    let mut holders = Vec::new();
    for (role, l) in [("producer lock", &c.prod_lock), ("consumer lock", &c.cons_lock)] {
        let w = l.lock.word.load(Ordering::Relaxed);
        if w != 0 {
            holders.push(Holder { role, pid: owner::pid(w), alive: owner::alive(w) });
        }
    }
    for w in q.view_holders(16) {
        holders.push(Holder { role: "view", pid: owner::pid(w), alive: owner::alive(w) });
    }
    Live {
        capacity: q.capacity() as u64,
        used: tail.saturating_sub(reclaim).min(q.capacity() as u64),
        lag_bytes: tail.saturating_sub(read).min(q.capacity() as u64),
        pending: s.messages_in.saturating_sub(s.messages_out),
        counters: Counters {
            msgs_in: s.messages_in,
            bytes_in: s.bytes_in,
            msgs_out: s.messages_out,
            bytes_out: s.bytes_out,
            full_waits: s.full_waits,
            empty_waits: s.empty_waits,
            consumer_wakes: c.not_empty.waiter.seq.load(Ordering::Relaxed),
            producer_wakes: c.not_full.waiter.seq.load(Ordering::Relaxed),
            consumers_sleeping: c.not_empty.waiter.sleepers.load(Ordering::Relaxed),
            producers_sleeping: c.not_full.waiter.sleepers.load(Ordering::Relaxed),
            lock_recoveries: Some(s.lock_recoveries),
            view_recoveries: Some(s.view_recoveries),
            view_stalls: Some(s.view_stalls),
        },
        holders,
    }
}

impl Counters {
    /// As JSON (counters this kind does not keep are `null`).
    pub fn to_json(&self) -> Value {
        json!({
            "messages_in": self.msgs_in,
            "bytes_in": self.bytes_in,
            "messages_out": self.msgs_out,
            "bytes_out": self.bytes_out,
            "full_waits": self.full_waits,
            "empty_waits": self.empty_waits,
            "consumer_wakes": self.consumer_wakes,
            "producer_wakes": self.producer_wakes,
            "consumers_sleeping": self.consumers_sleeping,
            "producers_sleeping": self.producers_sleeping,
            "sleeps": Value::Null,
            "lock_recoveries": self.lock_recoveries,
            "view_recoveries": self.view_recoveries,
            "view_stalls": self.view_stalls,
        })
    }
}

impl Live {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "capacity": self.capacity,
            "used_bytes": self.used,
            "lag_bytes": self.lag_bytes,
            "pending_messages": self.pending,
            "counters": self.counters.to_json(),
            "holders": self.holders.iter().map(|h| json!({"role": h.role, "pid": h.pid, "alive": h.alive})).collect::<Vec<_>>(),
        })
    }
}

/// Which processes map which file, from `/proc/*/maps`: `(dev, inode) -> pids` (this process
/// excluded). `None` where `/proc` cannot be read (not Linux).
pub fn mappers() -> Option<HashMap<(u64, u64), Vec<u32>>> {
    let me = std::process::id();
    let mut out: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
    let rd = std::fs::read_dir("/proc").ok()?;
    for e in rd.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else { continue };
        for line in maps.lines() {
            // address perms offset dev inode path
            let mut it = line.split_ascii_whitespace();
            let (Some(_), Some(_), Some(_), Some(dev), Some(inode)) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            let Ok(inode) = inode.parse::<u64>() else { continue };
            if inode == 0 {
                continue;
            }
            let Some((maj, min)) = dev.split_once(':') else { continue };
            let (Ok(maj), Ok(min)) = (u64::from_str_radix(maj, 16), u64::from_str_radix(min, 16)) else { continue };
            let pids = out.entry((maj << 32 | min, inode)).or_default();
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    Some(out)
}

/// The pids mapping `path` according to a [`mappers`] table. Matched on the inode, and on the
/// device where it agrees (overlay file systems report another device in `maps`).
pub fn mapped_by(table: &HashMap<(u64, u64), Vec<u32>>, path: &Path) -> Vec<u32> {
    let Ok(meta) = std::fs::metadata(path) else { return Vec::new() };
    let dev = meta.dev();
    let (maj, min) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
    if let Some(p) = table.get(&(maj << 32 | min, meta.ino())) {
        return p.clone();
    }
    // Fall back to the inode alone only if exactly one device has it mapped.
    let hits: Vec<&Vec<u32>> = table.iter().filter(|((_, ino), _)| *ino == meta.ino()).map(|(_, v)| v).collect();
    match hits.as_slice() {
        [one] => (*one).clone(),
        _ => Vec::new(),
    }
}
