//! What one file is: its header, schema and creator ([`examine`]), and whether anything uses it
//! ([`probe_file`], [`Status`]); which files in a directory are mmapipc's ([`candidates`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mmapipc::layout::{FileHeader, Kind};
use mmapipc::owner::process_alive;
use mmapipc::process::ProcessId;
use mmapipc::region::{self, OpenOptions};
use mmapipc::{OpenError, Schema};

use crate::creating;
use crate::probe::{self, Live};
use crate::text::short_error;

/// Whether a file is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A live process maps it or holds a role in it.
    Live,
    /// Nothing uses it right now, and nothing says nobody will: a ring or queue whose creator
    /// still runs and in which no recorded process died (e.g. created ahead of its producer and
    /// consumer), or a region, whatever became of its creator (a region has no owner: its bytes
    /// wait for whoever opens it next). Listed, not reported by `doctor`.
    Idle,
    /// A ring or queue that nothing maps and in which every process recorded (roles, locks,
    /// views, or the creator if nothing else is recorded) is dead.
    Stale(String),
    /// Half-created by a process that is gone.
    HalfCreated,
    /// Being created right now.
    BeingCreated,
    /// A temporary creation file ([`creating`]) whose creator is dead: left over.
    CreationLeftover(creating::Creation),
    /// A temporary creation file whose creator still runs.
    CreationRunning(creating::Creation),
    /// Not a usable mmapipc file.
    Unusable(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Live => f.write_str("live"),
            Status::Idle => f.write_str("idle"),
            Status::Stale(why) => write!(f, "stale: {why}"),
            Status::HalfCreated => f.write_str("stale: half-created by a dead process"),
            Status::BeingCreated => f.write_str("being created"),
            Status::CreationLeftover(c) => write!(
                f,
                "stale: left over from an interrupted creation of {} (creator {} is dead)",
                c.target, c.creator.pid
            ),
            Status::CreationRunning(c) => write!(f, "being created: {} (by pid {})", c.target, c.creator.pid),
            Status::Unusable(why) => write!(f, "unusable: {why}"),
        }
    }
}

impl Status {
    /// The one-word status of `--json` output.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Live => "live",
            Status::Idle => "idle",
            Status::Stale(_) | Status::HalfCreated | Status::CreationLeftover(_) => "stale",
            Status::BeingCreated | Status::CreationRunning(_) => "being created",
            Status::Unusable(_) => "unusable",
        }
    }

    /// The creation this temporary file belongs to, if it is one.
    pub fn creation(&self) -> Option<&creating::Creation> {
        match self {
            Status::CreationLeftover(c) | Status::CreationRunning(c) => Some(c),
            _ => None,
        }
    }
}

/// Everything the tool shows about one file.
#[derive(Debug)]
pub struct Probe {
    /// Header, schema, permissions.
    pub report: FileReport,
    /// Ring/queue state.
    pub live: Option<Live>,
    /// Other processes mapping the file (`None`: unknown, no `/proc`).
    pub mapped_by: Option<Vec<u32>>,
    /// In use or not.
    pub status: Status,
}

/// Examines `path` fully. `maps` is a [`probe::mappers`] table (scan `/proc` once per command).
pub fn probe_file(path: &Path, maps: Option<&std::collections::HashMap<(u64, u64), Vec<u32>>>) -> Probe {
    if let Some(c) = creating::of_path(path) {
        // Not a channel yet (or never): whatever its bytes hold, only its creator counts.
        let mut report = examine(path);
        report.creator_alive = Some(c.creator_alive());
        let status = if c.creator_alive() { Status::CreationRunning(c) } else { Status::CreationLeftover(c) };
        return Probe { report, live: None, mapped_by: None, status };
    }
    let report = examine(path);
    let mut live = None;
    let mut status = match &report.header {
        Ok(_) => Status::Live,
        Err(OpenError::NotReady { .. }) if report.creator_alive != Some(true) => Status::HalfCreated,
        Err(OpenError::NotReady { .. }) => Status::BeingCreated,
        Err(e) => Status::Unusable(short_error(e)),
    };
    let mapped_by = maps.map(|m| probe::mapped_by(m, path));
    if let Ok(h) = &report.header {
        let kind = Kind::from_code(h.kind);
        match probe::live(path, kind) {
            Ok(l) => live = l,
            Err(e) => status = Status::Unusable(e),
        }
        if status == Status::Live {
            let holders = live.as_ref().map(|l| l.holders.as_slice()).unwrap_or(&[]);
            let live_holder = holders.iter().any(|h| h.alive);
            let creator = report.creator_alive == Some(true);
            // Where /proc tells who maps the file, that is the truth; otherwise a live creator
            // counts as a user.
            let in_use = live_holder
                || match &mapped_by {
                    Some(m) => !m.is_empty(),
                    None => creator,
                };
            if !in_use {
                let dead: Vec<String> =
                    holders.iter().filter(|h| !h.alive).map(|h| format!("{} {}", h.role, h.pid)).collect();
                status = if !dead.is_empty() {
                    Status::Stale(format!("attached processes are dead ({})", dead.join(", ")))
                } else if !creator && kind != Kind::SharedMemory {
                    Status::Stale(format!("no process uses it, creator {} exited", h.creator_pid))
                } else {
                    Status::Idle
                };
            }
        }
    }
    Probe { report, live, mapped_by, status }
}

/// What a file turned out to be.
#[derive(Debug)]
pub struct FileReport {
    /// Path.
    pub path: PathBuf,
    /// Validated header, or why the file is not usable.
    pub header: Result<FileHeader, OpenError>,
    /// The schema stored in the file, if any.
    pub schema: Option<Result<Schema, String>>,
    /// Whether the creator still runs.
    pub creator_alive: Option<bool>,
    /// File mode bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// File length.
    pub len: u64,
}

/// Opens `path` (any kind) and reports what it holds. Never fails: problems are in the report.
pub fn examine(path: &Path) -> FileReport {
    let meta = std::fs::symlink_metadata(path).ok();
    let (mode, uid, len) = meta.as_ref().map_or((0, 0, 0), |m| (m.permissions().mode() & 0o7777, m.uid(), m.len()));
    let (schema, header) = match region::open_any(path, &OpenOptions { allow_foreign_owner: true }) {
        Ok((region, h)) => (read_schema(&region, &h), Ok(h)),
        Err(e) => (None, Err(e)),
    };
    let creator_alive = match &header {
        Ok(h) => Some(creator_alive_now(h)),
        Err(_) => raw_creator(path).map(|(pid, start)| process_alive(ProcessId { pid, start_time: start })),
    };
    FileReport { path: path.to_path_buf(), header, schema, creator_alive, mode, uid, len }
}

fn creator_alive_now(h: &FileHeader) -> bool {
    process_alive(ProcessId { pid: h.creator_pid, start_time: h.creator_start_time })
}

/// The creator fields of a file whose header did not validate (e.g. not ready), if readable.
fn raw_creator(path: &Path) -> Option<(u32, u64)> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(96);
    std::fs::File::open(path).ok()?.take(96).read_to_end(&mut bytes).ok()?;
    let pid = u32::from_le_bytes(bytes.get(80..84)?.try_into().ok()?);
    let start = u64::from_le_bytes(bytes.get(88..96)?.try_into().ok()?);
    (pid != 0).then_some((pid, start))
}

/// Reads the schema blob of a validated file, if it has one.
pub fn read_schema(region: &region::Region, h: &FileHeader) -> Option<Result<Schema, String>> {
    if h.schema_size == 0 {
        return None;
    }
    let text = String::from_utf8(region::schema_blob(region, h)).map_err(|_| "schema is not UTF-8".to_string());
    Some(text.and_then(|t| Schema::from_json(&t)))
}

pub(crate) fn candidates(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .filter(|p| is_ours(p))
        .collect();
    files.sort();
    Ok(files)
}

/// True if the file starts with the mmapipc magic, or is a temporary creation file (named by
/// [`creating`], whatever it holds: a creator may die before writing a byte). Nothing else is
/// listed, reported or ever changed by the tool.
fn is_ours(path: &Path) -> bool {
    use std::io::Read;
    if creating::of_path(path).is_some() {
        return true;
    }
    let mut buf = [0u8; 8];
    matches!(std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf)), Ok(()) if buf == mmapipc::layout::MAGIC)
}
