//! The file-level commands of the `mmapipc` tool (`ls`, `inspect`, `doctor`, `schema`, help) on
//! files in every state: live, idle, half-created, left over by a dead creator, being created,
//! foreign, unsafe permissions. The tool runs as a real process.

// The child-process harness, one implementation shared with the core's tests.
#[path = "../../mmapipc/tests/common/mod.rs"]
mod common;
mod tool;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use mmapipc::SharedMemory;
use tool::{exited_process, json_of, plant_half_created, scratch, stdout, tool};

/// The child roles: `region-create PATH` is the original README's writer (creates a region,
/// writes to it, exits; a reader comes later).
fn roles(role: &str, args: &[String]) {
    match role {
        "region-create" => {
            let shm = SharedMemory::create(&args[0], 1024).unwrap();
            shm.write(0, b"Hello").unwrap();
            shm.write(100, &42u64.to_le_bytes()).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

common::child_roles!(roles);

#[test]
fn ls_lists_live_and_stale_files() {
    let dir = scratch("ls");
    let live = SharedMemory::create(dir.join("live"), 1000).unwrap();
    plant_half_created(&dir.join("stale"));
    std::fs::write(dir.join("not-ours"), b"hello world, not an mmapipc file").unwrap();
    let o = tool(&["ls", dir.to_str().unwrap()]);
    assert!(o.status.success());
    let s = stdout(&o);
    let live_line = s.lines().find(|l| l.starts_with("live ")).expect("live listed");
    assert!(live_line.contains(" region ") && live_line.ends_with("live"), "{live_line}");
    let stale_line = s.lines().find(|l| l.starts_with("stale ")).expect("stale listed");
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
        s.contains("kind            region\n") && s.contains("12345 bytes at offset 4096") && s.contains("alive"),
        "{s}"
    );
    let j: serde_json::Value =
        serde_json::from_slice(&tool(&["inspect", "--json", p.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(j["data_size"], 12345);
    assert_eq!(j["kind"], "region");
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
        &["tail", "--help"],
        &["stat", "--help"],
        &["schema", "export", "--help"],
    ] {
        let o = tool(cmd);
        assert!(o.status.success(), "{cmd:?}");
        assert!(stdout(&o).contains("Usage"), "{cmd:?}");
    }
    let tail_help = stdout(&tool(&["tail", "--help"]));
    assert!(tail_help.contains("without consuming") && tail_help.contains("races"), "{tail_help}");
    // No colour when stdout is not a terminal, even without NO_COLOR.
    let dir = scratch("colour");
    let _shm = SharedMemory::create(dir.join("r"), 8).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_mmapipc"))
        .args(["ls", dir.to_str().unwrap()])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(o.status.success() && !o.stdout.contains(&0x1b), "{}", stdout(&o));
    assert_eq!(tool(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(tool(&["doctor", "--remove-stale"]).status.code(), Some(2), "--remove-stale needs --fix");
    assert_eq!(tool(&["stat", "--interval", "0", "x"]).status.code(), Some(2));
}

/// `mmapipc`, `mmapipc -h` and `mmapipc --help` describe the tool in the same words: the bare
/// command prints the help (to stderr, as a usage error: exit 2).
#[test]
fn bare_command_and_help_describe_the_tool_alike() {
    let bare = tool(&[]);
    assert_eq!(bare.status.code(), Some(2));
    let bare_text = String::from_utf8_lossy(&bare.stderr).into_owned();
    let long = stdout(&tool(&["--help"]));
    let short = stdout(&tool(&["-h"]));
    assert!(long.starts_with("Inspect and repair mmapipc shared-memory files: rings, queues and regions.\n"), "{long}");
    assert_eq!(bare_text, long);
    assert_eq!(short, long);
    assert!(long.contains("Exit codes: 0 ok") && long.contains("inspect") && long.contains("doctor"), "{long}");
}

/// A region has no owner: one whose creator exited holds data for a later reader (the original
/// README's writer/reader example). It is idle, not stale, and `doctor --fix --remove-stale`
/// keeps it.
#[test]
fn a_region_outlives_its_creator() {
    let dir = scratch("region");
    let path = dir.join("shm");
    let (p, d) = (path.to_str().unwrap(), dir.to_str().unwrap());
    assert!(common::child("region-create", &[p]).status().unwrap().success());
    let j = json_of(&tool(&["inspect", "--json", p]));
    assert_eq!(
        (j["kind"].as_str(), j["status"].as_str(), j["creator_alive"].as_bool()),
        (Some("region"), Some("idle"), Some(false)),
        "{j}"
    );
    let line = stdout(&tool(&["ls", d])).lines().find(|l| l.starts_with("shm ")).map(str::to_string).expect("listed");
    assert!(line.contains(" region ") && line.ends_with(" idle"), "{line}");
    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
    let o = tool(&["doctor", "--fix", "--remove-stale", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The reader of the example still finds what the writer left.
    let shm = SharedMemory::open(&path).unwrap();
    let mut hello = [0u8; 5];
    shm.read_into(0, &mut hello).unwrap();
    let mut num = [0u8; 8];
    shm.read_into(100, &mut num).unwrap();
    assert_eq!((&hello, u64::from_le_bytes(num)), (b"Hello", 42));
}

/// The temporary file of a creation (`.<name>.<pid>-<start>.mmapipc-creating`): a dead
/// creator's is reported and removed by `--fix`; a live creator's is "being created" and left
/// alone; neither is shown as a channel, whatever its bytes hold.
#[test]
fn creation_leftovers_are_removed_and_running_creations_left_alone() {
    let dir = scratch("creating");
    let d = dir.to_str().unwrap();
    let (dead, dead_start) = exited_process();
    let leftover = dir.join(format!(".ticks.{dead}-{dead_start}.mmapipc-creating"));
    std::fs::write(&leftover, b"").unwrap();
    let me = mmapipc::owner::current();
    let running = dir.join(format!(".orders.{}-{}.mmapipc-creating", me.pid, me.start_time));
    // A complete ring not yet linked into place: still not a channel.
    drop(mmapipc::Ring::create(dir.join("model"), 4096).unwrap());
    std::fs::rename(dir.join("model"), &running).unwrap();

    let s = stdout(&tool(&["ls", d]));
    let line = |name: &str| {
        s.lines().find(|l| l.starts_with(name)).map(str::to_string).unwrap_or_else(|| panic!("{name} not in\n{s}"))
    };
    let l = line(".ticks.");
    assert!(
        l.contains(&format!("stale: left over from an interrupted creation of ticks (creator {dead} is dead)")),
        "{l}"
    );
    let l = line(".orders.");
    assert!(l.ends_with(&format!("being created: orders (by pid {})", me.pid)), "{l}");
    assert!(!l.contains(" ring "), "not shown as a channel: {l}");
    for v in stdout(&tool(&["ls", "--json", d])).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    {
        assert_eq!(v["kind"], "-", "{v}");
        let (status, target) = if v["path"].as_str().unwrap().contains(".ticks.") {
            ("stale", "ticks")
        } else {
            ("being created", "orders")
        };
        assert_eq!((v["status"].as_str(), v["creating"].as_str()), (Some(status), Some(target)), "{v}");
    }
    let o = tool(&["inspect", running.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not a channel: being created: orders"), "{}", stdout(&o));

    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let s = stdout(&o);
    assert!(
        s.contains(&format!(
            "{}: left over from an interrupted creation of ticks (creator pid {dead} is dead) (--fix removes it)",
            leftover.display()
        )),
        "{s}"
    );
    assert!(
        s.contains(&format!("{}: being created: orders (by pid {}), left alone", running.display(), me.pid)),
        "{s}"
    );
    assert!(tool(&["doctor", "--fix", "--remove-stale", d]).status.success());
    assert!(!leftover.exists(), "the dead creator's leftover is removed");
    assert!(running.exists(), "a running creation is never touched");
    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
}

/// Files that are not mmapipc files are never listed, reported or changed, even ones that look
/// like a zeroed header naming a dead process, or that are writable by everyone.
#[test]
fn files_that_are_not_mmapipc_files_are_left_alone() {
    let dir = scratch("foreign");
    let d = dir.to_str().unwrap();
    let (dead, _) = exited_process();
    let mut zeroed = vec![0u8; 4096];
    zeroed[80..84].copy_from_slice(&dead.to_le_bytes());
    let files: [(&str, Vec<u8>); 4] = [
        ("zero-header", zeroed),
        ("text", b"hello world, not an mmapipc file".to_vec()),
        ("empty", Vec::new()),
        (".x.notapid-1.mmapipc-creating", Vec::new()),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let listing = stdout(&tool(&["ls", d]));
    assert_eq!(listing.lines().count(), 1, "only the table header: {listing}");
    let o = tool(&["doctor", "--fix", "--remove-stale", d]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), format!("no problems found in {d}\n"));
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name} changed");
        assert_eq!(std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777, 0o666, "{name}");
    }
}
