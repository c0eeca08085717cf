//! Two "hosts" for the bridge tests: two network namespaces joined by a veth pair (10.89.0.1
//! and 10.89.0.2), made by the test (root needed), or, when they cannot be made, two processes
//! on loopback (said on stderr). Shared memory is not namespaced: both hosts' channels are in
//! /dev/shm, each bridge reaching only its own.

#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mmapipc_cli::bridge_stats::{self, BridgeStats};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Generous bound for anything to happen on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Two hosts, A and B, and the endpoint A's exporter listens on.
pub struct Hosts {
    ns: Option<(String, String)>,
    /// The endpoint the exporter on A listens on (and B connects to).
    pub endpoint: String,
    /// Files to remove at the end.
    scratch: Vec<PathBuf>,
    tag: String,
}

impl Hosts {
    /// Makes the two hosts for the test `name`.
    pub fn new(name: &str) -> Hosts {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let (a, b) = (format!("mmz{tag}a"), format!("mmz{tag}b"));
        match make_namespaces(&a, &b, &tag) {
            Ok(()) => Hosts { ns: Some((a, b)), endpoint: "tcp/10.89.0.1:7447".into(), scratch: vec![], tag },
            Err(why) => {
                let port = 20000 + (std::process::id() % 20000) + n * 7;
                // Straight to the process's stderr, past libtest's capture: the run says so.
                let _ = writeln!(
                    std::io::stderr(),
                    "bridge test {name}: network namespaces unavailable ({why}); FALLBACK: two processes on loopback"
                );
                Hosts { ns: None, endpoint: format!("tcp/127.0.0.1:{port}"), scratch: vec![], tag }
            }
        }
    }

    /// True when the hosts are network namespaces.
    pub fn namespaced(&self) -> bool {
        self.ns.is_some()
    }

    /// A channel path of this test (`side` names it), removed at the end.
    pub fn channel(&mut self, side: &str) -> PathBuf {
        let p = PathBuf::from(format!("/dev/shm/mmz-{}-{side}", self.tag));
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(bridge_stats::stats_path(&p));
        self.scratch.push(p.clone());
        p
    }

    /// A log file of this test.
    pub fn log(&mut self, name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("mmz-{}-{name}.log", self.tag));
        self.scratch.push(p.clone());
        p
    }

    fn bridge(&self, on_a: bool, args: &[&str], log: &Path) -> Child {
        self.command(on_a, args, log, Stdio::null())
    }

    fn command(&self, on_a: bool, args: &[&str], log: &Path, stdout: Stdio) -> Child {
        let bin = env!("CARGO_BIN_EXE_mmapipc-bridge");
        let mut cmd = match &self.ns {
            Some((a, b)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", if on_a { a } else { b }, bin]);
                c
            }
            None => Command::new(bin),
        };
        let err = File::create(log).expect("log file");
        cmd.args(args).stdin(Stdio::null()).stdout(stdout).stderr(err);
        cmd.spawn().expect("spawn mmapipc-bridge")
    }

    /// Starts `mmapipc-bridge export PATH --key KEY --listen EP` on host A.
    pub fn export(&self, path: &Path, key: &str, log: &Path) -> Child {
        self.export_with(path, key, log, &[])
    }

    /// [`export`](Self::export) with more arguments.
    pub fn export_with(&self, path: &Path, key: &str, log: &Path, more: &[&str]) -> Child {
        let mut args = vec!["export", path.to_str().unwrap(), "--key", key, "--listen", &self.endpoint];
        args.extend_from_slice(more);
        self.bridge(true, &args, log)
    }

    /// Starts `mmapipc-bridge import KEY PATH --connect EP` on host B.
    pub fn import(&self, key: &str, path: &Path, log: &Path) -> Child {
        self.import_with(key, path, log, &[])
    }

    /// [`import`](Self::import) with more arguments.
    pub fn import_with(&self, key: &str, path: &Path, log: &Path, more: &[&str]) -> Child {
        let mut args = vec!["import", key, path.to_str().unwrap(), "--connect", &self.endpoint];
        args.extend_from_slice(more);
        self.bridge(false, &args, log)
    }
}

impl Hosts {
    /// Runs `mmapipc-bridge ls` on host B (connected to A's endpoint, or listening only) and
    /// returns its output.
    pub fn ls(&self, log: &Path, connect: bool) -> String {
        let (flag, ep) = if connect {
            ("--connect", self.endpoint.clone())
        } else {
            ("--listen", self.endpoint.replace("10.89.0.1", "10.89.0.2").replace(":7447", ":7448"))
        };
        let c = self.command(false, &["ls", flag, &ep, "--wait", "5"], log, Stdio::piped());
        let out = c.wait_with_output().expect("ls");
        assert!(out.status.success(), "ls failed: {}", read_log(log));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if let Some((a, b)) = &self.ns {
            for ns in [a, b] {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
        for p in &self.scratch {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_file(bridge_stats::stats_path(p));
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn make_namespaces(a: &str, b: &str, tag: &str) -> Result<(), String> {
    let (va, vb) = (format!("vz{tag}a"), format!("vz{tag}b"));
    ip(&["netns", "add", a])?;
    let r = (|| {
        ip(&["netns", "add", b])?;
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", a])?;
        ip(&["link", "set", &vb, "netns", b])?;
        for (ns, v, addr) in [(a, &va, "10.89.0.1/24"), (b, &vb, "10.89.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", v])?;
            ip(&["-n", ns, "link", "set", v, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    })();
    if r.is_err() {
        let _ = ip(&["netns", "del", a]);
        let _ = ip(&["netns", "del", b]);
        let _ = ip(&["link", "del", &va]);
    }
    r
}

/// Waits until `f` returns `Some`, panicking with `what` after [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The counters of the bridge serving `path`, once it has written them.
pub fn stats(path: &Path) -> BridgeStats {
    wait_for("the bridge's counters file", || bridge_stats::read(path))
}

/// Waits until the exporter of `path` sees an importer.
pub fn wait_connected(exported: &Path) {
    wait_for("the exporter to see the importer", || (stats(exported).peers == 1).then_some(()));
}

/// Waits until the bridge `pid` serving `path` sees its peer (an exporter: an importer
/// subscribed; an importer: subscribed, and the exporter announced).
pub fn wait_peer(path: &Path, pid: u32) {
    wait_for("the restarted bridge to see its peer", || {
        let s = stats(path);
        (s.pid == u64::from(pid) && s.peers == 1).then_some(())
    });
}

/// Kills and reaps `child`.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM and waits for a clean exit.
pub fn stop(child: &mut Child) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "bridge exited with {status}");
}

/// The text of a log file.
pub fn read_log(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
