//! Process identity: a pid plus the process's start time, so a recycled pid is not mistaken
//! for the process that used to own it.
//!
//! On Linux the start time is field 22 of `/proc/<pid>/stat` (clock ticks since boot). Where
//! that is unavailable the start time is 0 and liveness falls back to `kill(pid, 0)`. The one
//! liveness rule (start time, zombies) and the cached identity live in [`crate::owner`].

/// A process, identified so that pid reuse is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (Linux), 0 if unknown.
    pub start_time: u64,
}

/// Start time of `pid`, or `None` if there is no such process (or it cannot be read).
#[cfg(target_os = "linux")]
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Start time of `pid`; unknown (`None`) on this platform.
#[cfg(not(target_os = "linux"))]
pub fn start_time(_pid: u32) -> Option<u64> {
    None
}

/// Parses field 22 of a `/proc/<pid>/stat` line. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // After ")" come fields 3.. ; field 22 is the 20th of them.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// A process that has exited, for tests of dead-owner recovery: a spawned and reaped `true`; under
/// Miri, which cannot spawn processes, a pid above any Linux `pid_max` (at most 2^22), which no
/// process can have (its `/proc` entry is missing, as for an exited process).
#[cfg(all(test, not(loom)))]
pub(crate) fn exited_process() -> ProcessId {
    #[cfg(not(miri))]
    {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let who = ProcessId { pid: child.id(), start_time: start_time(child.id()).unwrap_or(0) };
        child.wait().unwrap();
        who
    }
    #[cfg(miri)]
    {
        ProcessId { pid: i32::MAX as u32 - 1, start_time: 12345 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = b"1234 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99887766 20 21";
        assert_eq!(parse_start_time(line), Some(99887766));
        assert_eq!(parse_start_time(b"garbage"), None);
        assert_eq!(parse_start_time(b"1 (x) S 1"), None);
    }
}
