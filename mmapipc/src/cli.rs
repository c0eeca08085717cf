//! The `mmapipc` command-line tool: list, inspect, tail, watch and repair shared-memory channels.
//!
//! The same code runs as the `mmapipc` binary of this crate and as the `mmapipc` console script
//! of the Python package (which calls [`main`]). Nothing here claims a ring role or takes a queue
//! lock: the tool only reads the mappings (except `doctor --fix`, which removes or chmods files).
//!
//! Exit codes (see `docs/cli.md`): 0 success; 1 problems found (`doctor` without `--fix`), or the
//! file is not a usable channel (`inspect`, `tail`, `stat`), or a channel turned out corrupt;
//! 2 usage error, missing file, or I/O error.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::layout::{FileHeader, Kind, STATE_READY};
use crate::process::{liveness, Liveness, ProcessId};
use crate::queue::{Queue, QueueOptions};
use crate::region::{self, OpenOptions};
use crate::ring::Ring;
use crate::{OpenError, Schema};

pub mod decode;
pub mod probe;

use probe::Live;

/// Inspect and repair mmapipc shared-memory channels (rings, queues, raw regions).
///
/// A bare NAME means /dev/shm/NAME; any path with a '/' is used as given. The tool never claims a
/// ring role or takes a queue lock: it reads the mapping while producers and consumers run.
///
/// Exit codes: 0 ok; 1 problems found (doctor) or file not a usable channel; 2 usage error,
/// missing file or I/O error. Colour is used only on a terminal, and never with NO_COLOR set.
#[derive(Debug, Parser)]
#[command(name = "mmapipc", version, about, long_about)]
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
        Command::Ls { dir, json } => ls(&mut out, &dir, json, color),
        Command::Inspect { path, json } => inspect(&mut out, &region::resolve_path(path), json),
        Command::Tail { path, lines, follow, interval, max } => {
            secs(interval).and_then(|iv| tail(&mut out, &region::resolve_path(path), lines, follow, iv, max))
        }
        Command::Stat { path, interval, count, json } => {
            secs(interval).and_then(|iv| stat(&mut out, &region::resolve_path(path), iv, count, json, tty))
        }
        Command::Doctor { dir, fix, remove_stale } => doctor(&mut out, &dir, fix, remove_stale, color),
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

/// Whether a channel is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A live process maps it or holds a role in it.
    Live,
    /// Nothing uses it right now, but its creator still runs and nobody recorded in it died
    /// (e.g. created ahead of its producer and consumer). Listed, not reported by `doctor`.
    Idle,
    /// Nothing maps it and every process recorded in it (roles, locks, views, or the creator if
    /// nothing else is recorded) is dead.
    Stale(String),
    /// Half-created by a process that is gone.
    HalfCreated,
    /// Being created right now.
    BeingCreated,
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
            Status::Unusable(why) => write!(f, "unusable: {why}"),
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
        match probe::live(path, Kind::from_code(h.kind)) {
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
                } else if !creator {
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
    let bytes = std::fs::read(path).ok()?;
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

fn kind_name(h: &FileHeader) -> &'static str {
    match Kind::from_code(h.kind) {
        Kind::SharedMemory => "shm",
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

/// True if the file starts with the mmapipc magic, or is an all-zero/empty file of ours in the
/// making (a half-created file has a zero header).
fn is_ours(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 8];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut buf)) {
        Ok(8) => buf == crate::layout::MAGIC || buf == [0; 8] && raw_creator(path).is_some(),
        _ => false,
    }
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

fn type_label(r: &FileReport) -> String {
    match &r.schema {
        Some(Ok(s)) => format!("{} v{}", s.name, s.version),
        Some(Err(_)) => "(bad schema)".into(),
        None => "-".into(),
    }
}

fn fill_label(p: &Probe) -> String {
    match (&p.live, &p.report.header) {
        (Some(l), _) => format!(
            "{}/{} {:.0}%",
            human(l.used),
            human(l.capacity),
            if l.capacity == 0 { 0.0 } else { 100.0 * l.used as f64 / l.capacity as f64 }
        ),
        (None, Ok(h)) => human(h.data_size),
        (None, Err(_)) => human(p.report.len),
    }
}

fn holders_label(p: &Probe) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(l) = &p.live {
        for h in &l.holders {
            let tag = match h.role {
                "producer" => "P",
                "consumer" => "C",
                "producer lock" => "PL",
                "consumer lock" => "CL",
                _ => "V",
            };
            parts.push(format!("{tag}:{}{}", h.pid, if h.alive { "" } else { "(dead)" }));
        }
    }
    if let Some(m) = &p.mapped_by {
        // Processes that map the file without a recorded role (queue users between operations,
        // users of a raw region, a ring handle that has not read or written yet).
        let recorded: Vec<u32> = p.live.as_ref().map(|l| l.holders.iter().map(|h| h.pid).collect()).unwrap_or_default();
        let others: Vec<String> = m.iter().filter(|pid| !recorded.contains(pid)).map(u32::to_string).collect();
        match others.len() {
            0 => {}
            1..=3 => parts.push(format!("M:{}", others.join(","))),
            n => parts.push(format!("M:{},+{}", others[..2].join(","), n - 2)),
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

fn probe_json(p: &Probe) -> Value {
    let r = &p.report;
    let mut v = json!({
        "path": r.path.display().to_string(),
        "kind": r.header.as_ref().map(kind_name).unwrap_or("-"),
        "status": match &p.status { Status::Live => "live", Status::Idle => "idle", Status::Stale(_) | Status::HalfCreated => "stale", Status::BeingCreated => "being created", Status::Unusable(_) => "unusable" },
        "status_detail": p.status.to_string(),
        "data_size": r.header.as_ref().map(|h| h.data_size).unwrap_or(0),
        "type": match &r.schema { Some(Ok(s)) => json!({"name": s.name, "version": s.version}), _ => Value::Null },
        "creator_pid": r.header.as_ref().map(|h| h.creator_pid).ok(),
        "creator_alive": r.creator_alive.unwrap_or(false),
        "mapped_by": p.mapped_by,
    });
    if let Some(l) = &p.live {
        v["live"] = l.to_json();
    }
    v
}

fn ls(out: &mut impl Write, dir: &Path, json: bool, color: bool) -> Result<i32, String> {
    let files = candidates(dir)?;
    let maps = probe::mappers();
    if !json {
        writeln!(
            out,
            "{:<32} {:<5} {:>22} {:>7} {:<16} {:<28} STATUS",
            "PATH", "KIND", "FILL", "PENDING", "MESSAGE TYPE", "ATTACHED"
        )
        .map_err(io)?;
    }
    for path in files {
        let p = probe_file(&path, maps.as_ref());
        if !path.exists() {
            continue; // removed while we looked at it
        }
        if json {
            writeln!(out, "{}", probe_json(&p)).map_err(io)?;
            continue;
        }
        let kind = p.report.header.as_ref().map(kind_name).unwrap_or("-");
        let pending = p.live.as_ref().map_or("-".to_string(), |l| l.pending.to_string());
        let status = p.status.to_string();
        let status = match &p.status {
            Status::Live => paint(color, "32", &status),
            Status::Idle | Status::BeingCreated => status,
            _ => paint(color, "33", &status),
        };
        // Names relative to DIR, like ls(1); --json gives full paths.
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        writeln!(
            out,
            "{:<32} {:<5} {:>22} {:>7} {:<16} {:<28} {}",
            name,
            kind,
            fill_label(&p),
            pending,
            type_label(&p.report),
            holders_label(&p),
            status
        )
        .map_err(io)?;
    }
    Ok(0)
}

fn short_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "not kept".into(), |x| x.to_string())
}

fn inspect(out: &mut impl Write, path: &Path, json: bool) -> Result<i32, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    let maps = probe::mappers();
    let p = probe_file(path, maps.as_ref());
    let r = &p.report;
    let h = match &r.header {
        Ok(h) => *h,
        Err(e) => {
            if json {
                let v =
                    json!({"path": path.display().to_string(), "error": e.to_string(), "status": p.status.to_string()});
                writeln!(out, "{v}").map_err(io)?;
            } else {
                writeln!(out, "{}: not usable: {e} ({})", path.display(), p.status).map_err(io)?;
            }
            return Ok(1);
        }
    };
    if json {
        let mut v = probe_json(&p);
        v["layout_version"] = json!(h.layout_version);
        v["abi_flags"] = json!(h.abi_flags);
        v["total_size"] = json!(h.total_size);
        v["data_offset"] = json!(h.data_offset);
        v["creator_start_time"] = json!(h.creator_start_time);
        v["created_unix_ns"] = json!(h.created_unix_ns);
        v["mode"] = json!(format!("{:o}", r.mode));
        v["uid"] = json!(r.uid);
        v["schema"] = match &r.schema {
            Some(Ok(s)) => serde_json::to_value(s).unwrap_or(Value::Null),
            Some(Err(e)) => json!(format!("invalid schema: {e}")),
            None => Value::Null,
        };
        writeln!(out, "{v}").map_err(io)?;
        return Ok(if matches!(p.status, Status::Unusable(_)) { 1 } else { 0 });
    }
    let mut s = String::new();
    let _ = writeln!(s, "path            {}", path.display());
    let _ = writeln!(s, "kind            {}", Kind::from_code(h.kind));
    let _ = writeln!(s, "status          {}", p.status);
    let _ = writeln!(s, "layout version  {}", h.layout_version);
    let _ = writeln!(s, "state           {}", if h.state == STATE_READY { "ready" } else { "not ready" });
    let _ = writeln!(s, "abi flags       {:#x}", h.abi_flags);
    let _ = writeln!(s, "file size       {} ({})", h.total_size, human(h.total_size));
    let _ = writeln!(s, "data area       {} bytes at offset {}", h.data_size, h.data_offset);
    let _ = writeln!(
        s,
        "creator         pid {} ({})",
        h.creator_pid,
        if r.creator_alive == Some(true) { "alive" } else { "exited" }
    );
    let _ = writeln!(s, "mode / owner    {:o} / uid {}", r.mode, r.uid);
    match &p.mapped_by {
        Some(m) if m.is_empty() => {
            let _ = writeln!(s, "mapped by       no other process");
        }
        Some(m) => {
            let pids: Vec<String> = m.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "mapped by       pids {}", pids.join(", "));
        }
        None => {
            let _ = writeln!(s, "mapped by       unknown (no /proc)");
        }
    }
    if let Some(l) = &p.live {
        let c = &l.counters;
        let _ = writeln!(s, "attached");
        if l.holders.is_empty() {
            let _ = writeln!(s, "  (no role or lock held right now)");
        }
        for hd in &l.holders {
            let _ = writeln!(s, "  {:<14} pid {} ({})", hd.role, hd.pid, if hd.alive { "alive" } else { "dead" });
        }
        let _ = writeln!(s, "fill");
        let _ = writeln!(s, "  used          {} of {} bytes ({})", l.used, l.capacity, human(l.capacity));
        let _ = writeln!(s, "  pending       {} messages, {} bytes (lag)", l.pending, l.lag_bytes);
        let _ = writeln!(s, "counters");
        let _ = writeln!(s, "  messages in   {:<14} bytes in   {}", c.msgs_in, c.bytes_in);
        let _ = writeln!(s, "  messages out  {:<14} bytes out  {}", c.msgs_out, c.bytes_out);
        let _ = writeln!(s, "  full events   {:<14} empty events {}", c.full_events, c.empty_events);
        let _ = writeln!(
            s,
            "  wakes         {} to consumers, {} to producers (32-bit, wraps); sleeps: not counted",
            c.consumer_wakes, c.producer_wakes
        );
        let _ = writeln!(s, "  sleeping now  {} consumers, {} producers", c.consumers_sleeping, c.producers_sleeping);
        let _ = writeln!(
            s,
            "  recoveries    locks {}, views {}",
            short_opt(c.lock_recoveries),
            short_opt(c.view_recoveries)
        );
    }
    match &r.schema {
        None => {
            let _ = writeln!(s, "schema          none (untyped bytes)");
        }
        Some(Err(e)) => {
            let _ = writeln!(s, "schema          invalid: {e}");
        }
        Some(Ok(sc)) => {
            let _ = writeln!(s, "schema          {}", sc.label());
            let _ = writeln!(s, "  root          {} bytes, align {}, fixed size: {}", sc.size, sc.align, sc.fixed_size);
            let _ = writeln!(s, "  {:<20} {:<16} {:>6} {:>6}", "FIELD", "TYPE", "OFFSET", "SIZE");
            for f in &sc.fields {
                let _ = writeln!(s, "  {:<20} {:<16} {:>6} {:>6}", f.name, f.ty.to_string(), f.offset, f.size);
            }
        }
    }
    out.write_all(s.as_bytes()).map_err(io)?;
    Ok(if matches!(p.status, Status::Unusable(_)) { 1 } else { 0 })
}

/// A ring or queue opened for peeking.
enum Chan {
    Ring(Ring),
    Queue(Queue),
}

impl Chan {
    fn open(path: &Path) -> Result<(Chan, Option<Schema>), (i32, String)> {
        if !path.exists() {
            return Err((2, format!("{}: no such file", path.display())));
        }
        let r = examine(path);
        let h = r.header.map_err(|e| (1, e.to_string()))?;
        let schema = match r.schema {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return Err((1, format!("{}: bad schema: {e}", path.display()))),
            None => None,
        };
        let chan = match Kind::from_code(h.kind) {
            Kind::Ring => Chan::Ring(
                Ring::open_with(path, &OpenOptions { allow_foreign_owner: true }).map_err(|e| (1, e.to_string()))?,
            ),
            Kind::Queue => Chan::Queue(
                Queue::open_with(path, &QueueOptions { allow_foreign_owner: true, ..QueueOptions::default() })
                    .map_err(|e| (1, e.to_string()))?,
            ),
            k => return Err((1, format!("{}: a {k} has no messages", path.display()))),
        };
        Ok((chan, schema))
    }

    fn live(&self) -> Live {
        match self {
            Chan::Ring(r) => probe::ring_live(r),
            Chan::Queue(q) => probe::queue_live(q),
        }
    }

    fn peek(&self, from: Option<u64>, keep: usize) -> Result<crate::ring::Peeked, String> {
        match self {
            Chan::Ring(r) => r.peek_published(from, keep).map_err(|e| e.to_string()),
            Chan::Queue(q) => q
                .peek_committed(from, keep)
                .map(|p| crate::ring::Peeked { records: p.records, next: p.next, missed: p.missed })
                .map_err(|e| e.to_string()),
        }
    }
}

fn tail(
    out: &mut impl Write,
    path: &Path,
    lines: usize,
    follow: bool,
    interval: Duration,
    max: Option<u64>,
) -> Result<i32, String> {
    let (chan, schema) = match Chan::open(path) {
        Ok(c) => c,
        Err((2, msg)) => return Err(msg),
        Err((code, msg)) => {
            eprintln!("mmapipc: {msg}");
            return Ok(code);
        }
    };
    let mut printed = 0u64;
    let mut from = None;
    let mut keep = lines;
    loop {
        let crate::ring::Peeked { records, next, missed } = match chan.peek(from, keep) {
            Ok(x) => x,
            Err(e) => {
                out.flush().map_err(io)?;
                eprintln!("mmapipc: {}: {e}", path.display());
                return Ok(1);
            }
        };
        if missed && from.is_some() {
            writeln!(out, "{}", json!({"missed": true})).map_err(io)?;
        }
        for (pos, msg) in records {
            let line = match &schema {
                Some(s) => match decode::decode(s, &msg) {
                    Ok(v) => decode::to_ordered_string(s, &v),
                    Err(e) => json!({"position": pos, "len": msg.len(), "error": e}).to_string(),
                },
                None => {
                    let mut v = decode::preview(&msg);
                    v["position"] = json!(pos);
                    v.to_string()
                }
            };
            writeln!(out, "{line}").map_err(io)?;
            printed += 1;
            if max.is_some_and(|m| printed >= m) {
                out.flush().map_err(io)?;
                return Ok(0);
            }
        }
        out.flush().map_err(io)?;
        if !follow {
            return Ok(0);
        }
        from = Some(next);
        keep = usize::MAX;
        std::thread::sleep(interval);
    }
}

fn rate(now: u64, before: u64, dt: f64) -> f64 {
    now.saturating_sub(before) as f64 / dt
}

fn stat(
    out: &mut impl Write,
    path: &Path,
    interval: Duration,
    count: Option<u64>,
    json: bool,
    tty: bool,
) -> Result<i32, String> {
    let (chan, schema) = match Chan::open(path) {
        Ok(c) => c,
        Err((2, msg)) => return Err(msg),
        Err((code, msg)) => {
            eprintln!("mmapipc: {msg}");
            return Ok(code);
        }
    };
    let kind = match chan {
        Chan::Ring(_) => "ring",
        Chan::Queue(_) => "queue",
    };
    let label = schema.as_ref().map_or("untyped".to_string(), |s| format!("{} v{}", s.name, s.version));
    let in_place = tty && !json;
    if !in_place && !json {
        writeln!(
            out,
            "{:<8} {:>10} {:>10} {:>9} {:>9} {:>6} {:>10} {:>10} {:>6} {:>6}",
            "TIME", "MSG/S IN", "MSG/S OUT", "MB/S IN", "MB/S OUT", "FILL%", "LAG MSGS", "LAG BYTES", "FULL", "EMPTY"
        )
        .map_err(io)?;
    }
    let mut prev = chan.live();
    let mut t_prev = Instant::now();
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) {
        std::thread::sleep(interval);
        let cur = chan.live();
        let now = Instant::now();
        let dt = now.duration_since(t_prev).as_secs_f64().max(1e-9);
        let (a, b) = (&cur.counters, &prev.counters);
        let mi = rate(a.msgs_in, b.msgs_in, dt);
        let mo = rate(a.msgs_out, b.msgs_out, dt);
        let bi = rate(a.bytes_in, b.bytes_in, dt) / 1e6;
        let bo = rate(a.bytes_out, b.bytes_out, dt) / 1e6;
        let fill = if cur.capacity == 0 { 0.0 } else { 100.0 * cur.used as f64 / cur.capacity as f64 };
        let clock = wall_clock();
        if json {
            let v = json!({
                "time": clock, "msgs_per_s_in": mi, "msgs_per_s_out": mo, "mb_per_s_in": bi, "mb_per_s_out": bo,
                "fill_percent": fill, "used_bytes": cur.used, "capacity": cur.capacity,
                "lag_messages": cur.pending, "lag_bytes": cur.lag_bytes,
                "full_events": a.full_events, "empty_events": a.empty_events,
                "attached": cur.holders.iter().map(|h| json!({"role": h.role, "pid": h.pid, "alive": h.alive})).collect::<Vec<_>>(),
            });
            writeln!(out, "{v}").map_err(io)?;
        } else if in_place {
            let holders: Vec<String> = cur
                .holders
                .iter()
                .map(|h| format!("{} {} ({})", h.role, h.pid, if h.alive { "alive" } else { "dead" }))
                .collect();
            let mut s = String::new();
            let _ = write!(s, "\x1b[H\x1b[2J");
            let _ = writeln!(s, "mmapipc stat {}  ({kind}, {label})  {clock}", path.display());
            let _ = writeln!(s);
            let _ = writeln!(s, "             {:>12} {:>12}", "IN", "OUT");
            let _ = writeln!(s, "  msg/s      {mi:>12.0} {mo:>12.0}");
            let _ = writeln!(s, "  MB/s       {bi:>12.2} {bo:>12.2}");
            let _ = writeln!(s, "  total msgs {:>12} {:>12}", a.msgs_in, a.msgs_out);
            let _ = writeln!(s);
            let _ = writeln!(s, "  fill       {fill:.1}% ({} of {})", human(cur.used), human(cur.capacity));
            let _ = writeln!(s, "  lag        {} messages, {}", cur.pending, human(cur.lag_bytes));
            let _ = writeln!(s, "  full/empty {} / {}", a.full_events, a.empty_events);
            let _ = writeln!(s, "  attached   {}", if holders.is_empty() { "-".into() } else { holders.join(", ") });
            let _ = writeln!(s, "\n(refresh every {:.1}s, Ctrl-C to quit)", interval.as_secs_f64());
            out.write_all(s.as_bytes()).map_err(io)?;
        } else {
            writeln!(
                out,
                "{:<8} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>6.1} {:>10} {:>10} {:>6} {:>6}",
                clock, mi, mo, bi, bo, fill, cur.pending, cur.lag_bytes, a.full_events, a.empty_events
            )
            .map_err(io)?;
        }
        out.flush().map_err(io)?;
        prev = cur;
        t_prev = now;
        n += 1;
    }
    Ok(0)
}

/// HH:MM:SS (UTC).
fn wall_clock() -> String {
    let s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// A repair `doctor --fix` can apply.
type Repair = Box<dyn Fn() -> std::io::Result<()>>;

fn doctor(out: &mut impl Write, dir: &Path, fix: bool, remove_stale: bool, color: bool) -> Result<i32, String> {
    let mut problems = 0;
    let maps = probe::mappers();
    for path in candidates(dir)? {
        let p = probe_file(&path, maps.as_ref());
        if !path.exists() {
            continue; // removed while we looked at it
        }
        let r = &p.report;
        let mut found: Vec<(String, Option<Repair>, &'static str)> = Vec::new();
        let rm = |path: &Path| -> Option<Repair> {
            let path = path.to_path_buf();
            Some(Box::new(move || std::fs::remove_file(&path)))
        };
        match &p.status {
            Status::HalfCreated => found.push((
                "half-created by a process that is gone (never became ready)".into(),
                rm(&path),
                "--fix removes it",
            )),
            Status::Stale(why) => found.push((
                format!("stale channel: {why}"),
                if remove_stale { rm(&path) } else { None },
                "--fix --remove-stale removes it",
            )),
            Status::Unusable(why) => found.push((format!("not usable: {why}"), None, "")),
            Status::Live | Status::Idle | Status::BeingCreated => {}
        }
        if r.mode & 0o022 != 0 {
            let path2 = path.clone();
            found.push((
                format!("mode {:o} lets other users write it", r.mode),
                Some(Box::new(move || std::fs::set_permissions(&path2, std::fs::Permissions::from_mode(0o600)))),
                "--fix sets mode 600",
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if r.uid != me {
            found.push((format!("owned by uid {} (not you): mmapipc refuses to open it by default", r.uid), None, ""));
        }
        for (what, repair, hint) in found {
            problems += 1;
            let action = match (fix, repair) {
                (true, Some(f)) => match f() {
                    Ok(()) => " -> fixed".to_string(),
                    Err(e) => format!(" -> fix failed: {e}"),
                },
                (_, _) if !hint.is_empty() => format!(" ({hint})"),
                _ => String::new(),
            };
            writeln!(out, "{}: {}{}", path.display(), paint(color, "33", &what), action).map_err(io)?;
        }
    }
    if problems == 0 {
        writeln!(out, "no problems found in {}", dir.display()).map_err(io)?;
        Ok(0)
    } else {
        Ok(if fix { 0 } else { 1 })
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
