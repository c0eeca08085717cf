//! The files a creation leaves while it runs: `create` writes a file under a temporary name in
//! the same directory and links it to its final name once it is ready. The temporary name is
//! `.<final name>.<pid>-<start time>.mmapipc-creating`, naming the creating process (pid and
//! decimal start time, field 22 of `/proc/<pid>/stat`, 0 if unknown). A creator that dies
//! before the link leaves that file behind; its name says whose it is.

use std::path::Path;

use mmapipc::owner::process_alive;
use mmapipc::process::ProcessId;
use mmapipc::region::parse_creating_name;

/// A temporary creation file, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    /// The final file name it will be linked to (in the same directory).
    pub target: String,
    /// The process creating it.
    pub creator: ProcessId,
}

impl Creation {
    /// Whether its creator still runs (pid and start time; see [`liveness`]).
    pub fn creator_alive(&self) -> bool {
        process_alive(self.creator)
    }
}

/// The creation named by a file name of the form `.<final>.<pid>-<start time>.mmapipc-creating`
/// ([`parse_creating_name`]). `None` for any other name, including a pid of 0.
pub fn parse_name(name: &str) -> Option<Creation> {
    let (target, creator) = parse_creating_name(name)?;
    (creator.pid != 0).then(|| Creation { target: target.to_string_lossy().into_owned(), creator })
}

/// [`parse_name`] of `path`'s file name.
pub fn of_path(path: &Path) -> Option<Creation> {
    parse_name(path.file_name()?.to_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_exactly() {
        let c = parse_name(".ticks.1234-987654.mmapipc-creating").unwrap();
        assert_eq!((c.target.as_str(), c.creator), ("ticks", ProcessId { pid: 1234, start_time: 987654 }));
        // The final name may itself contain dots and dashes.
        let c = parse_name(".a.b-1.c.42-0.mmapipc-creating").unwrap();
        assert_eq!((c.target.as_str(), c.creator), ("a.b-1.c", ProcessId { pid: 42, start_time: 0 }));
        for other in [
            "ticks",
            ".ticks",
            "ticks.1-2.mmapipc-creating",
            "..1-2.mmapipc-creating",
            ".ticks.1-2.mmapipc-creatin",
            ".ticks.1.mmapipc-creating",
            ".ticks.0-5.mmapipc-creating",
            ".ticks.+1-5.mmapipc-creating",
            ".ticks.1--5.mmapipc-creating",
            ".ticks.1-.mmapipc-creating",
            ".ticks.99999999999-1.mmapipc-creating",
            ".ticks.x-1.mmapipc-creating",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }
}
