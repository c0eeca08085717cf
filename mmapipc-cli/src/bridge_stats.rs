//! The counters of an `mmapipc-bridge` process, in a small shared-memory file next to the channel
//! it serves (`<channel>.bridge`), so that `mmapipc stat` shows them without talking to the
//! bridge. The bridge (crate `mmapipc-zenoh`) writes them through [`BridgeStatsFile`]; this tool
//! reads them with [`read`]. The layout is FORMAT.md, "Bridge counters".
//!
//! The file is a [`SharedMemory`] region; every counter is a little-endian `u64` at a multiple
//! of 8, written with a Release store and read with an Acquire load ([`SharedMemory::write_u64`]),
//! by one writer (the bridge) and any number of readers.

use std::path::{Path, PathBuf};

use mmapipc::{OpenError, SharedMemory};

/// `"MMBRIDG1"`, little-endian, at offset 0.
pub const MAGIC: u64 = u64::from_le_bytes(*b"MMBRIDG1");
/// Size of the region.
pub const SIZE: usize = 512;

/// The byte offsets of the fields (each a `u64` unless noted).
pub mod off {
    /// [`super::MAGIC`].
    pub const MAGIC: usize = 0;
    /// 1 export, 2 import.
    pub const ROLE: usize = 8;
    /// The bridge's pid.
    pub const PID: usize = 16;
    /// When the bridge process started (ns since the Unix epoch).
    pub const STARTED_NS: usize = 24;
    /// Messages forwarded (export: sent to zenoh; import: written into the local channel).
    pub const FORWARDED: usize = 32;
    /// Payload bytes forwarded.
    pub const BYTES: usize = 40;
    /// Export: messages taken from the local channel while no importer was there (not sent).
    pub const DROPPED: usize = 48;
    /// Import: messages the sequence numbers show as never received (gaps).
    pub const LOST: usize = 56;
    /// Import: messages received twice (sequence number not after the last one), not written.
    pub const DUPLICATES: usize = 64;
    /// Export: the sequence number of the next message; import: the next one expected.
    pub const NEXT_SEQ: usize = 72;
    /// Import: receive time minus the exporter's send time of the latest message (ns; includes
    /// any clock difference between the hosts).
    pub const LAG_NS: usize = 80;
    /// Export: messages waiting in the local channel at the last look.
    pub const BACKLOG: usize = 88;
    /// Export: 1 while an importer is subscribed; import: 1 while the exporter is announced.
    pub const PEERS: usize = 96;
    /// Importers (export) or exporters (import) refused for a schema mismatch.
    pub const REFUSED: usize = 104;
    /// Last time the bridge updated the file (ns since the Unix epoch).
    pub const UPDATED_NS: usize = 112;
    /// The stream the sequence numbers belong to (the exported channel's identity).
    pub const STREAM: usize = 120;
    /// The zenoh key, UTF-8, NUL padded (256 bytes).
    pub const KEY: usize = 128;
    /// Length of [`KEY`].
    pub const KEY_LEN: usize = 256;
    /// Export: messages sent in history replies (not in [`FORWARDED`]). Import: messages
    /// written from history replies (also in [`FORWARDED`]).
    pub const HISTORY: usize = 384;
    /// Import: messages of history replies the local channel had already (not written, not in
    /// [`DUPLICATES`]).
    pub const HISTORY_SKIPPED: usize = 392;
    /// The counters a bridge of the other role zeroes: `FORWARDED..KEY` and these.
    pub(crate) const COUNTERS: [std::ops::Range<usize>; 2] = [FORWARDED..KEY, HISTORY..HISTORY_SKIPPED + 8];
}

/// Which side a bridge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends a local channel to zenoh.
    Export,
    /// Writes a zenoh key into a local channel.
    Import,
}

impl Role {
    fn code(self) -> u64 {
        match self {
            Role::Export => 1,
            Role::Import => 2,
        }
    }

    /// `"export"` or `"import"`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Export => "export",
            Role::Import => "import",
        }
    }
}

/// The counters file of the channel at `channel`.
pub fn stats_path(channel: &Path) -> PathBuf {
    let mut s = channel.as_os_str().to_owned();
    s.push(".bridge");
    PathBuf::from(s)
}

/// A snapshot of a bridge's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeStats {
    /// Export or import.
    pub role: Role,
    /// The bridge's pid.
    pub pid: u64,
    /// The zenoh key.
    pub key: String,
    /// See [`off::FORWARDED`].
    pub forwarded: u64,
    /// See [`off::BYTES`].
    pub bytes: u64,
    /// See [`off::DROPPED`].
    pub dropped: u64,
    /// See [`off::LOST`].
    pub lost: u64,
    /// See [`off::DUPLICATES`].
    pub duplicates: u64,
    /// See [`off::NEXT_SEQ`].
    pub next_seq: u64,
    /// See [`off::LAG_NS`].
    pub lag_ns: u64,
    /// See [`off::BACKLOG`].
    pub backlog: u64,
    /// See [`off::PEERS`].
    pub peers: u64,
    /// See [`off::REFUSED`].
    pub refused: u64,
    /// See [`off::UPDATED_NS`].
    pub updated_ns: u64,
    /// See [`off::HISTORY`].
    pub history: u64,
    /// See [`off::HISTORY_SKIPPED`].
    pub history_skipped: u64,
}

/// Reads the counters of the bridge serving `channel`; `None` when there is no readable file.
pub fn read(channel: &Path) -> Option<BridgeStats> {
    let shm = SharedMemory::open(stats_path(channel)).ok()?;
    if shm.size() < SIZE || shm.read_u64(off::MAGIC).ok()? != MAGIC {
        return None;
    }
    let u = |o| shm.read_u64(o).unwrap_or(0);
    let role = match u(off::ROLE) {
        1 => Role::Export,
        2 => Role::Import,
        _ => return None,
    };
    let key = shm.read(off::KEY, off::KEY_LEN).ok()?;
    let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
    Some(BridgeStats {
        role,
        pid: u(off::PID),
        key: String::from_utf8_lossy(&key[..end]).into_owned(),
        forwarded: u(off::FORWARDED),
        bytes: u(off::BYTES),
        dropped: u(off::DROPPED),
        lost: u(off::LOST),
        duplicates: u(off::DUPLICATES),
        next_seq: u(off::NEXT_SEQ),
        lag_ns: u(off::LAG_NS),
        backlog: u(off::BACKLOG),
        peers: u(off::PEERS),
        refused: u(off::REFUSED),
        updated_ns: u(off::UPDATED_NS),
        history: u(off::HISTORY),
        history_skipped: u(off::HISTORY_SKIPPED),
    })
}

impl BridgeStats {
    /// One line for `mmapipc stat`.
    pub fn line(&self) -> String {
        let alive = pid_alive(self.pid);
        let who = format!("pid {} {}", self.pid, if alive { "alive" } else { "dead" });
        match self.role {
            Role::Export => format!(
                "bridge export {} ({who}): forwarded {} ({} bytes), dropped {}, backlog {}, importers {}, refused {}, history sent {}",
                self.key, self.forwarded, self.bytes, self.dropped, self.backlog, self.peers, self.refused, self.history
            ),
            Role::Import => format!(
                "bridge import {} ({who}): forwarded {} ({} bytes), lost {}, duplicates {}, history {} (skipped {}), lag {:.3} ms, refused {}",
                self.key,
                self.forwarded,
                self.bytes,
                self.lost,
                self.duplicates,
                self.history,
                self.history_skipped,
                self.lag_ns as f64 / 1e6,
                self.refused
            ),
        }
    }

    /// The counters as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "role": self.role.name(), "pid": self.pid, "key": self.key,
            "forwarded": self.forwarded, "bytes": self.bytes, "dropped": self.dropped,
            "lost": self.lost, "duplicates": self.duplicates, "next_seq": self.next_seq,
            "lag_ns": self.lag_ns, "backlog": self.backlog, "peers": self.peers,
            "refused": self.refused, "updated_ns": self.updated_ns,
            "history": self.history, "history_skipped": self.history_skipped,
        })
    }
}

/// The writer's side: the bridge's handle on its counters file.
#[derive(Debug)]
pub struct BridgeStatsFile {
    shm: SharedMemory,
}

impl BridgeStatsFile {
    /// Opens the counters file of `channel`, creating it if missing, and marks it as this
    /// process's. Counters already there (a previous run of the bridge for the same channel)
    /// are kept: they count over restarts, and an importer resumes from [`off::NEXT_SEQ`].
    pub fn open(channel: &Path, role: Role, key: &str) -> Result<BridgeStatsFile, OpenError> {
        let path = stats_path(channel);
        let shm = match SharedMemory::open(&path) {
            Ok(s) if s.size() >= SIZE && s.read_u64(off::MAGIC).ok() == Some(MAGIC) => s,
            Ok(_) => {
                // Not a counters file of this layout: start afresh.
                mmapipc::region::unlink(&path)?;
                SharedMemory::create(&path, SIZE)?
            }
            Err(_) => SharedMemory::create(&path, SIZE)?,
        };
        let f = BridgeStatsFile { shm };
        if f.get(off::ROLE) != role.code() {
            // Counters of the other role mean nothing to this one.
            for o in off::COUNTERS.into_iter().flat_map(|r| r.step_by(8)) {
                f.set(o, 0);
            }
        }
        let mut k = [0u8; off::KEY_LEN];
        let n = key.len().min(off::KEY_LEN);
        k[..n].copy_from_slice(&key.as_bytes()[..n]);
        // In range: KEY + KEY_LEN <= SIZE.
        let _ = f.shm.write(off::KEY, &k);
        f.set(off::ROLE, role.code());
        f.set(off::PID, u64::from(std::process::id()));
        f.set(off::STARTED_NS, now_ns());
        f.set(off::UPDATED_NS, now_ns());
        f.set(off::PEERS, 0);
        f.set(off::MAGIC, MAGIC);
        Ok(f)
    }

    /// Stores `v` at `o` (an offset of [`off`]).
    pub fn set(&self, o: usize, v: u64) {
        // Offsets of `off` are in range and 8-aligned: this cannot fail.
        let _ = self.shm.write_u64(o, v);
    }

    /// Loads the value at `o`.
    pub fn get(&self, o: usize) -> u64 {
        self.shm.read_u64(o).unwrap_or(0)
    }

    /// Adds `n` to the counter at `o` (one writer: a load and a store suffice).
    pub fn add(&self, o: usize, n: u64) {
        self.set(o, self.get(o).wrapping_add(n));
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.shm.path()
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// True when a process `pid` exists (signal 0 probes without signalling).
fn pid_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks for the process; it has no memory effects.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}
