//! The `mmapipc` tool, run as a real process against real files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mmapipc::SharedMemory;

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmapipc")).args(args).env("NO_COLOR", "1").output().expect("run mmapipc")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmapipc-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file that looks like a creator died before publishing: zero header except the creator pid
/// (of a process that has exited).
fn plant_half_created(path: &Path) {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mut bytes = vec![0u8; 4096];
    bytes[80..84].copy_from_slice(&pid.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn ls_lists_live_and_stale_files() {
    let dir = scratch("ls");
    let live = SharedMemory::create(dir.join("live"), 1000).unwrap();
    plant_half_created(&dir.join("stale"));
    std::fs::write(dir.join("not-ours"), b"hello world, not an mmapipc file").unwrap();
    let o = tool(&["ls", dir.to_str().unwrap()]);
    assert!(o.status.success());
    let s = stdout(&o);
    let live_line = s.lines().find(|l| l.contains("/live")).expect("live listed");
    assert!(live_line.contains("shm") && live_line.contains("alive") && live_line.ends_with("ok"), "{live_line}");
    let stale_line = s.lines().find(|l| l.contains("/stale")).expect("stale listed");
    assert!(stale_line.contains("stale: half-created by a dead process"), "{stale_line}");
    assert!(!s.contains("not-ours"));
    let j = tool(&["ls", "--json", dir.to_str().unwrap()]);
    for line in stdout(&j).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["path"].is_string());
    }
    drop(live);
}

#[test]
fn inspect_text_json_and_unusable_file() {
    let dir = scratch("inspect");
    let p = dir.join("region");
    let _shm = SharedMemory::create(&p, 12345).unwrap();
    let o = tool(&["inspect", p.to_str().unwrap()]);
    assert!(o.status.success());
    let s = stdout(&o);
    assert!(
        s.contains("shared memory region") && s.contains("12345 bytes at offset 4096") && s.contains("alive"),
        "{s}"
    );
    let j: serde_json::Value =
        serde_json::from_slice(&tool(&["inspect", "--json", p.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(j["data_size"], 12345);
    assert_eq!(j["mode"], "600");
    let stale = dir.join("stale");
    plant_half_created(&stale);
    let o = tool(&["inspect", stale.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not ready"));
    let o = tool(&["inspect", dir.join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file"));
}

#[test]
fn doctor_finds_and_fixes() {
    let dir = scratch("doctor");
    let _ok = SharedMemory::create(dir.join("ok"), 10).unwrap();
    let open = SharedMemory::create(dir.join("open"), 10).unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
    plant_half_created(&dir.join("stale"));
    let d = dir.to_str().unwrap();
    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(1), "problems found -> exit 1");
    let s = stdout(&o);
    assert!(s.contains("stale: half-created") || s.contains("half-created by a process that is gone"), "{s}");
    assert!(s.contains("mode 666"), "{s}");
    assert!(!s.contains("/ok:"), "{s}");
    let o = tool(&["doctor", "--fix", d]);
    assert!(o.status.success());
    assert!(!dir.join("stale").exists());
    assert_eq!(std::fs::metadata(open.path()).unwrap().permissions().mode() & 0o777, 0o600);
    let o = tool(&["doctor", d]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("no problems"));
}

#[test]
fn schema_export_of_example_types() {
    let o = tool(&["schema", "export", "market.Tick@1"]);
    assert!(o.status.success());
    let s = mmapipc::Schema::from_json(&stdout(&o)).unwrap();
    assert_eq!((s.name.as_str(), s.version), ("market.Tick", 1));
    let latest = mmapipc::Schema::from_json(&stdout(&tool(&["schema", "export", "market.Tick"]))).unwrap();
    assert_eq!(latest.version, 2);
    let o = tool(&["schema", "export", "no.Such"]);
    assert_eq!(o.status.code(), Some(2));
    let dir = scratch("schema");
    let _shm = SharedMemory::create(dir.join("untyped"), 8).unwrap();
    let o = tool(&["schema", "export", dir.join("untyped").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("untyped"));
}

#[test]
fn help_and_usage_errors() {
    for cmd in [
        &["--help"][..],
        &["ls", "--help"],
        &["inspect", "--help"],
        &["doctor", "--help"],
        &["schema", "export", "--help"],
    ] {
        let o = tool(cmd);
        assert!(o.status.success(), "{cmd:?}");
        assert!(stdout(&o).contains("Usage"), "{cmd:?}");
    }
    assert_eq!(tool(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(tool(&[]).status.code(), Some(2));
}
