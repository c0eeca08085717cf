//! The `mmapipc` command-line tool: list, inspect, tail, watch and repair shared-memory channels.
//!
//! The same code runs as the `mmapipc` binary of this crate and as the `mmapipc` console script
//! of the Python package (which calls [`main`]). Nothing here claims a ring role or takes a queue
//! lock: the tool only reads the mappings (except `doctor --fix`, which removes or chmods files).
//!
//! Exit codes (see `docs/cli.md`): 0 success; 1 problems found (`doctor` without `--fix`), or the
//! file is not a usable channel (`inspect`, `tail`, `stat`), or a channel turned out corrupt;
//! 2 usage error, missing file, or I/O error.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::layout::{FileHeader, Kind};
use crate::process::{liveness, Liveness, ProcessId};
use crate::region::{self, OpenOptions};
use crate::{OpenError, Schema};

pub mod creating;
pub mod decode;
mod doctor;
pub mod probe;
mod show;
mod watch;

use probe::Live;

/// What the tool is, the same for `mmapipc`, `mmapipc -h` and `mmapipc --help`.
const ABOUT: &str = "Inspect and repair mmapipc shared-memory files: rings, queues and regions.";

/// Shown after the command list by every form of the top-level help.
const AFTER_HELP: &str = "\
A bare NAME means /dev/shm/NAME; any path with a '/' is used as given. The tool never claims a
ring role or takes a queue lock: it reads the mapping while producers and consumers run.

Exit codes: 0 ok; 1 problems found (doctor) or file not a usable channel; 2 usage error,
missing file or I/O error. Colour is used only on a terminal, and never with NO_COLOR set.";

/// The command line. Without a command the tool prints its help (to stderr, exit code 2).
#[derive(Debug, Parser)]
#[command(
    name = "mmapipc",
    version,
    about = ABOUT,
    long_about = None,
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the mmapipc files in a directory (default /dev/shm): kind, fill level, message type,
    /// attached processes, and whether anything still uses them (live / idle / stale).
    Ls {
        /// Directory to scan.
        #[arg(default_value = "/dev/shm")]
        dir: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a file's header, schema (with a field table), counters and attached processes.
    Inspect {
        /// The file (a bare name means /dev/shm/NAME).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the messages waiting in a ring or queue as JSON lines, without consuming them.
    ///
    /// Typed channels are decoded with the schema stored in the file; untyped messages are shown
    /// as their length and a UTF-8 or hex preview. Nothing is consumed: the real consumer still
    /// receives every message. This races with the consumer, which may take a message while it is
    /// copied; such a message (possibly overwritten by then) is dropped from the output, and with
    /// --follow the messages the consumer took between two polls are never seen (a
    /// {"missed":true} line says so). tail shows what is waiting, not everything that passes.
    Tail {
        /// The ring or queue file.
        path: PathBuf,
        /// Show the last N waiting messages (0: none, only follow).
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        lines: usize,
        /// Keep polling and print messages as they are committed.
        #[arg(short, long)]
        follow: bool,
        /// Poll interval for --follow, in seconds.
        #[arg(long, default_value_t = 0.1)]
        interval: f64,
        /// Stop after printing this many messages in total.
        #[arg(long)]
        max: Option<u64>,
    },
    /// Live rates (msg/s, MB/s in and out), fill level and lag of a ring or queue.
    ///
    /// On a terminal the display is redrawn in place like top; otherwise one line per refresh is
    /// printed (machine-readable with --json).
    Stat {
        /// The ring or queue file.
        path: PathBuf,
        /// Seconds between refreshes.
        #[arg(short, long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after N refreshes (default: run until interrupted).
        #[arg(short, long)]
        count: Option<u64>,
        /// Print one JSON object per refresh.
        #[arg(long)]
        json: bool,
    },
    /// Find half-created files of dead processes, stale channels (every process that used them
    /// is dead), unusable files and unsafe permissions. Exit code 1 if anything was found.
    Doctor {
        /// Directory to scan.
        #[arg(default_value = "/dev/shm")]
        dir: PathBuf,
        /// Repair what is safe: remove half-created files of dead creators, chmod group- or
        /// world-writable files to 0600. Stale channels are removed only with --remove-stale.
        #[arg(long)]
        fix: bool,
        /// With --fix, also remove stale channels (nothing maps them, every recorded process is dead).
        #[arg(long, requires = "fix")]
        remove_stale: bool,
    },
    /// Schema commands.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Print a schema as JSON (the format of schemas/*.json): of a channel file, or of a built-in
    /// example type given as NAME or NAME@VERSION (e.g. market.Tick@2).
    Export {
        /// A channel file, or an example type name.
        target: String,
    },
}

/// Runs the tool with `args` (including the program name) and returns the exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let tty = std::io::stdout().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Ls { dir, json } => show::ls(&mut out, &dir, json, color),
        Command::Inspect { path, json } => show::inspect(&mut out, &region::resolve_path(path), json),
        Command::Tail { path, lines, follow, interval, max } => {
            secs(interval).and_then(|iv| watch::tail(&mut out, &region::resolve_path(path), lines, follow, iv, max))
        }
        Command::Stat { path, interval, count, json } => {
            secs(interval).and_then(|iv| watch::stat(&mut out, &region::resolve_path(path), iv, count, json, tty))
        }
        Command::Doctor { dir, fix, remove_stale } => doctor::doctor(&mut out, &dir, fix, remove_stale, color),
        Command::Schema { command: SchemaCommand::Export { target } } => schema_export(&mut out, &target),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            let _ = out.flush();
            eprintln!("mmapipc: {msg}");
            2
        }
    }
}

fn secs(s: f64) -> Result<Duration, String> {
    if s.is_finite() && (0.001..=86400.0).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("interval {s} is not between 0.001 and 86400 seconds"))
    }
}

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
        Ok(h) => Some(creator_liveness(h)),
        Err(_) => {
            raw_creator(path).map(|(pid, start)| liveness(ProcessId { pid, start_time: start }) == Liveness::Alive)
        }
    };
    FileReport { path: path.to_path_buf(), header, schema, creator_alive, mode, uid, len }
}

fn creator_liveness(h: &FileHeader) -> bool {
    liveness(ProcessId { pid: h.creator_pid, start_time: h.creator_start_time }) == Liveness::Alive
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

/// The user-facing name of a file's kind, the same in every command, in `--json` and in the
/// documentation: `region` (a [`crate::SharedMemory`]), `ring`, `queue`.
fn kind_name(h: &FileHeader) -> &'static str {
    match Kind::from_code(h.kind) {
        Kind::SharedMemory => "region",
        Kind::Ring => "ring",
        Kind::Queue => "queue",
        Kind::Unknown(_) => "?",
    }
}

fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn candidates(dir: &Path) -> Result<Vec<PathBuf>, String> {
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
    matches!(std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf)), Ok(()) if buf == crate::layout::MAGIC)
}

fn short_error(e: &OpenError) -> String {
    let s = e.to_string();
    s.split_once(": ").map(|(_, rest)| rest.to_string()).unwrap_or(s)
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn schema_export(out: &mut impl Write, target: &str) -> Result<i32, String> {
    let path = region::resolve_path(target);
    if path.exists() {
        let r = examine(&path);
        return match (r.header, r.schema) {
            (Err(e), _) => Err(e.to_string()),
            (Ok(_), None) => Err(format!("{}: untyped channel, it has no schema", path.display())),
            (Ok(_), Some(Err(e))) => Err(format!("{}: {e}", path.display())),
            (Ok(_), Some(Ok(s))) => {
                writeln!(out, "{}", s.to_json()).map_err(io)?;
                Ok(0)
            }
        };
    }
    let (name, version) = match target.split_once('@') {
        Some((n, v)) => (n, Some(v.parse::<u32>().map_err(|_| format!("bad version in {target}"))?)),
        None => (target, None),
    };
    let all = crate::example_types::all_schemas();
    let chosen = all
        .into_iter()
        .filter(|s| s.name == name && version.is_none_or(|v| v == s.version))
        .max_by_key(|s| s.version)
        .ok_or_else(|| {
            format!("{target}: neither a file nor a known example type (market.Tick, video.Frame, ml.Tensor)")
        })?;
    writeln!(out, "{}", chosen.to_json()).map_err(io)?;
    Ok(0)
}
