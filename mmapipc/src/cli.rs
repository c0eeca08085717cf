//! The `mmapipc` command-line tool: list, inspect and repair shared-memory channels.
//!
//! The same code runs as the `mmapipc` binary of this crate and as the `mmapipc` console script
//! of the Python package (which calls [`main`]). Exit codes: 0 success, 1 problems found
//! (`doctor`) or file not usable (`inspect`), 2 usage error.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::layout::{FileHeader, Kind, STATE_READY};
use crate::process::{liveness, Liveness, ProcessId};
use crate::region::{self, OpenOptions};
use crate::{OpenError, Schema};

/// Inspect and repair mmapipc shared-memory channels.
#[derive(Debug, Parser)]
#[command(name = "mmapipc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the mmapipc files in a directory (default /dev/shm).
    Ls {
        /// Directory to scan.
        #[arg(default_value = "/dev/shm")]
        dir: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a file's header, schema and state.
    Inspect {
        /// The file (a bare name means /dev/shm/NAME).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find half-created files of dead processes and unsafe permissions; --fix repairs them.
    Doctor {
        /// Directory to scan.
        #[arg(default_value = "/dev/shm")]
        dir: PathBuf,
        /// Remove half-created files whose creator is dead, and chmod group/world-writable files to 0600.
        #[arg(long)]
        fix: bool,
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
    let mut out = std::io::stdout().lock();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let result = match cli.command {
        Command::Ls { dir, json } => ls(&mut out, &dir, json, color),
        Command::Inspect { path, json } => inspect(&mut out, &region::resolve_path(path), json),
        Command::Doctor { dir, fix } => doctor(&mut out, &dir, fix, color),
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

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
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

fn ls(out: &mut impl Write, dir: &Path, json: bool, color: bool) -> Result<i32, String> {
    let files = candidates(dir)?;
    if !json {
        writeln!(out, "{:<40} {:<6} {:>10} {:<24} {:<8} STATUS", "PATH", "KIND", "DATA", "MESSAGE TYPE", "CREATOR")
            .map_err(io)?;
    }
    for p in files {
        let r = examine(&p);
        let (kind, size) = match &r.header {
            Ok(h) => (kind_name(h), human(h.data_size)),
            Err(_) => ("-", human(r.len)),
        };
        let ty = match &r.schema {
            Some(Ok(s)) => format!("{} v{}", s.name, s.version),
            Some(Err(_)) => "(bad schema)".into(),
            None => "-".into(),
        };
        let creator = match (&r.header, r.creator_alive) {
            (Ok(h), Some(true)) => format!("{} alive", h.creator_pid),
            (Ok(h), _) => format!("{} gone", h.creator_pid),
            (Err(_), Some(true)) => "alive".into(),
            (Err(_), _) => "gone".into(),
        };
        let status = match &r.header {
            Ok(_) => "ok".to_string(),
            Err(OpenError::NotReady { .. }) if r.creator_alive != Some(true) => {
                "stale: half-created by a dead process".into()
            }
            Err(OpenError::NotReady { .. }) => "being created".into(),
            Err(e) => format!("unusable: {}", short_error(e)),
        };
        if json {
            writeln!(
                out,
                "{{\"path\":{},\"kind\":{},\"data_size\":{},\"type\":{},\"creator_alive\":{},\"status\":{}}}",
                json_str(&p.display().to_string()),
                json_str(kind),
                r.header.as_ref().map(|h| h.data_size).unwrap_or(0),
                json_str(&ty),
                r.creator_alive.unwrap_or(false),
                json_str(&status)
            )
            .map_err(io)?;
        } else {
            let status = if color && status != "ok" { format!("\x1b[33m{status}\x1b[0m") } else { status };
            writeln!(out, "{:<40} {:<6} {:>10} {:<24} {:<8} {}", p.display(), kind, size, ty, creator, status)
                .map_err(io)?;
        }
    }
    Ok(0)
}

fn short_error(e: &OpenError) -> String {
    let s = e.to_string();
    s.split_once(": ").map(|(_, rest)| rest.to_string()).unwrap_or(s)
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn inspect(out: &mut impl Write, path: &Path, json: bool) -> Result<i32, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    let r = examine(path);
    let h = match &r.header {
        Ok(h) => *h,
        Err(e) => {
            if json {
                writeln!(
                    out,
                    "{{\"path\":{},\"error\":{}}}",
                    json_str(&path.display().to_string()),
                    json_str(&e.to_string())
                )
                .map_err(io)?;
            } else {
                writeln!(out, "{}: not usable: {e}", path.display()).map_err(io)?;
            }
            return Ok(1);
        }
    };
    let schema_json = match &r.schema {
        Some(Ok(s)) => s.to_json(),
        Some(Err(e)) => json_str(&format!("invalid schema: {e}")),
        None => "null".into(),
    };
    if json {
        writeln!(
            out,
            "{{\"path\":{},\"kind\":{},\"layout_version\":{},\"abi_flags\":{},\"total_size\":{},\"data_offset\":{},\"data_size\":{},\"creator_pid\":{},\"creator_start_time\":{},\"creator_alive\":{},\"created_unix_ns\":{},\"mode\":\"{:o}\",\"uid\":{},\"schema\":{}}}",
            json_str(&path.display().to_string()),
            json_str(kind_name(&h)),
            h.layout_version,
            h.abi_flags,
            h.total_size,
            h.data_offset,
            h.data_size,
            h.creator_pid,
            h.creator_start_time,
            r.creator_alive.unwrap_or(false),
            h.created_unix_ns,
            r.mode,
            r.uid,
            schema_json
        )
        .map_err(io)?;
        return Ok(0);
    }
    let mut s = String::new();
    let _ = writeln!(s, "path            {}", path.display());
    let _ = writeln!(s, "kind            {}", Kind::from_code(h.kind));
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
    Ok(0)
}

/// A repair `doctor --fix` can apply.
type Repair = Box<dyn Fn() -> std::io::Result<()>>;

fn doctor(out: &mut impl Write, dir: &Path, fix: bool, color: bool) -> Result<i32, String> {
    let mut problems = 0;
    let warn = |s: &str| if color { format!("\x1b[33m{s}\x1b[0m") } else { s.to_string() };
    for p in candidates(dir)? {
        let r = examine(&p);
        let mut found: Vec<(String, Option<Repair>)> = Vec::new();
        match &r.header {
            Err(OpenError::NotReady { .. }) if r.creator_alive != Some(true) => {
                let path = p.clone();
                found.push((
                    "half-created by a process that is gone (never became ready)".into(),
                    Some(Box::new(move || std::fs::remove_file(&path))),
                ));
            }
            Err(OpenError::NotReady { .. }) => {}
            Err(e) => found.push((format!("not usable: {}", short_error(e)), None)),
            Ok(_) => {}
        }
        if r.mode & 0o022 != 0 {
            let path = p.clone();
            found.push((
                format!("mode {:o} lets other users write it", r.mode),
                Some(Box::new(move || std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))),
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if r.uid != me {
            found.push((format!("owned by uid {} (not you): mmapipc refuses to open it by default", r.uid), None));
        }
        for (what, repair) in found {
            problems += 1;
            let action = match (fix, repair) {
                (true, Some(f)) => match f() {
                    Ok(()) => " -> fixed".to_string(),
                    Err(e) => format!(" -> fix failed: {e}"),
                },
                (false, Some(_)) => " (--fix repairs this)".to_string(),
                (_, None) => String::new(),
            };
            writeln!(out, "{}: {}{}", p.display(), warn(&what), action).map_err(io)?;
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
