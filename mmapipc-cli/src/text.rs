//! Formatting shared by the commands: kind names, sizes, colours, error texts.

use mmapipc::layout::{FileHeader, Kind};
use mmapipc::OpenError;

/// The user-facing name of a file's kind, the same in every command, in `--json` and in the
/// documentation: `region` (a [`mmapipc::SharedMemory`]), `ring`, `queue`, `topic`.
pub(crate) fn kind_name(h: &FileHeader) -> &'static str {
    match Kind::from_code(h.kind) {
        Kind::SharedMemory => "region",
        Kind::Ring => "ring",
        Kind::Queue => "queue",
        Kind::Topic => "topic",
        _ => "?",
    }
}

pub(crate) fn human(n: u64) -> String {
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

pub(crate) fn short_error(e: &OpenError) -> String {
    let s = e.to_string();
    s.split_once(": ").map(|(_, rest)| rest.to_string()).unwrap_or(s)
}

pub(crate) fn io(e: std::io::Error) -> String {
    e.to_string()
}

pub(crate) fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}
