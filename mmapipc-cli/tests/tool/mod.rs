//! Running the `mmapipc` tool in the tests, and files for it to find.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mmapipc::SharedMemory;

/// The tool's stdout as JSON (`Null` if it is not).
pub fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null)
}

/// Runs the tool (no colour).
pub fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmapipc")).args(args).env("NO_COLOR", "1").output().expect("run mmapipc")
}

/// The tool's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh empty directory for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmapipc-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A process that has exited: its pid and start time (read while it was a zombie), reaped.
pub fn exited_process() -> (u32, u64) {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    // Running or a zombie, its /proc entry stays until it is reaped.
    let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
    let start = mmapipc::process::parse_start_time(&stat).expect("a start time");
    child.wait().unwrap();
    (pid, start)
}

/// A file whose creator died before publishing it: a real header, still in state INIT, naming a
/// process that has exited.
pub fn plant_half_created(path: &Path) {
    let model = path.with_extension("model");
    drop(SharedMemory::create(&model, 100).unwrap());
    let mut bytes = std::fs::read(&model).unwrap();
    std::fs::remove_file(&model).unwrap();
    let (pid, start) = exited_process();
    bytes[8..12].copy_from_slice(&mmapipc::layout::STATE_INIT.to_le_bytes());
    bytes[80..84].copy_from_slice(&pid.to_le_bytes());
    bytes[88..96].copy_from_slice(&start.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The tool's stdout, line by line.
pub fn lines(o: &Output) -> Vec<String> {
    stdout(o).lines().map(str::to_string).collect()
}
