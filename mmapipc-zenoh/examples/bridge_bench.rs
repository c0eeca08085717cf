//! ring → bridge → bridge → ring (and topic → bridge → bridge → topic, 64 B and 8 MiB) against
//! a bare zenoh publisher and subscriber, same endpoints, same machine, same run: 64 B msg/s,
//! 1 MiB and 8 MiB GB/s, one-way latency p50/p99 (the added latency of the two bridges is the difference).
//!
//! ```text
//! cargo run --release -p mmapipc-zenoh --example bridge_bench -- [--quick]
//! ```
//!
//! The two bridges are child processes (this binary re-executed as `export`/`import`); the
//! producer and the consumer are threads of this process, so one clock stamps both ends. Bare
//! zenoh: two sessions of this process, one listening on a TCP loopback endpoint (the bridges'
//! address, another port), one connected to it,
//! with the bridge's settings (peer mode, multicast scouting off, reliable, blocking congestion
//! control).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mmapipc::topic::Start;
use mmapipc::{Ring, Topic};
use mmapipc_cli::bridge_stats;
use mmapipc_zenoh::{Endpoints, ExportOptions, ImportOptions};
use zenoh::qos::CongestionControl;
use zenoh::Wait;

/// The bridges' endpoint.
const EP: &str = "tcp/127.0.0.1:17447";
/// Bare zenoh's: the same transport and address, another port (the rounds interleave, so both
/// are up at once).
const BARE_EP: &str = "tcp/127.0.0.1:17448";

fn now_ns() -> u64 {
    bridge_stats::now_ns()
}

/// One workload's result.
struct Run {
    secs: f64,
    lat: Vec<u64>,
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

/// Bare zenoh: `n` messages of `size` bytes, `gap` between sends (0: as fast as it goes).
fn bare(n: u64, size: usize, gap: Duration) -> Run {
    let listen = Endpoints { listen: vec![BARE_EP.into()], connect: vec![] }.open().unwrap();
    let connect = Endpoints { listen: vec![], connect: vec![BARE_EP.into()] }.open().unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n as usize)));
    let (g, l) = (got.clone(), lat.clone());
    let timed = !gap.is_zero();
    let sub = connect
        .declare_subscriber("bench/bare")
        .callback(move |s| {
            if timed {
                let b = s.payload().to_bytes();
                let t = u64::from_le_bytes(b[..8].try_into().unwrap());
                l.lock().unwrap().push(now_ns().saturating_sub(t));
            }
            g.fetch_add(1, Ordering::Relaxed);
        })
        .wait()
        .unwrap();
    let publisher = listen.declare_publisher("bench/bare").congestion_control(CongestionControl::Block).wait().unwrap();
    while !publisher.matching_status().wait().unwrap().matching() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut buf = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..n {
        buf[..8].copy_from_slice(&now_ns().to_le_bytes());
        publisher.put(buf.clone()).wait().unwrap();
        if timed {
            std::thread::sleep(gap);
        }
    }
    while got.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_micros(100));
    }
    let secs = start.elapsed().as_secs_f64();
    drop(sub);
    drop(publisher);
    let _ = connect.close().wait();
    let _ = listen.close().wait();
    let lat = std::mem::take(&mut *lat.lock().unwrap());
    Run { secs, lat }
}

/// The bridges: `n` messages of `size` bytes written into ring A, read from ring B.
fn bridged(a: &Path, b: &Path, n: u64, size: usize, gap: Duration) -> Run {
    let mut rx = loop {
        if let Ok(r) = Ring::open(b) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    rx.claim_consumer().unwrap();
    let a = a.to_path_buf();
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut tx = Ring::open(&a).unwrap();
        for _ in 0..n {
            let mut slot = tx.loan(size).unwrap();
            slot[..8].copy_from_slice(&now_ns().to_le_bytes());
            slot.commit();
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
    });
    let mut lat = Vec::with_capacity(if gap.is_zero() { 0 } else { n as usize });
    for _ in 0..n {
        let m = rx.read_timeout(Some(Duration::from_secs(60))).unwrap().expect("a message within a minute");
        if !gap.is_zero() {
            lat.push(now_ns().saturating_sub(u64::from_le_bytes(m[..8].try_into().unwrap())));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    producer.join().unwrap();
    Run { secs, lat }
}

/// The bridges between topics: `n` messages of `size` bytes published on topic A, received by
/// one subscriber of topic B.
fn bridged_topic(a: &Path, b: &Path, n: u64, size: usize) -> Run {
    let topic = loop {
        if let Ok(t) = Topic::open(b) {
            break t;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut rx = topic.subscribe(Start::Latest).unwrap();
    let a = a.to_path_buf();
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut tx = Topic::open(&a).unwrap().publisher().unwrap();
        let buf = vec![7u8; size];
        for _ in 0..n {
            tx.publish(&buf).unwrap();
        }
    });
    for _ in 0..n {
        rx.recv_timeout(Some(Duration::from_secs(60))).unwrap().expect("a message within a minute");
    }
    let secs = start.elapsed().as_secs_f64();
    producer.join().unwrap();
    Run { secs, lat: vec![] }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap()).args(args).spawn().unwrap()
}

fn stop(mut c: Child) {
    // SAFETY: kill(2) on a child we spawned, with a valid signal.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
    let _ = c.wait();
}

/// Runs `f` with two bridges between fresh rings of `cap` bytes at A and B.
fn with_bridges<T>(cap: usize, f: impl FnOnce(&Path, &Path) -> T) -> T {
    with_bridges_of(false, cap, f)
}

/// [`with_bridges`] between rings, or between topics (`topic`).
fn with_bridges_of<T>(topic: bool, cap: usize, f: impl FnOnce(&Path, &Path) -> T) -> T {
    let (a, b) = (PathBuf::from("/dev/shm/mmz-bench-a"), PathBuf::from("/dev/shm/mmz-bench-b"));
    for p in [&a, &b] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(bridge_stats::stats_path(p));
    }
    if topic {
        drop(Topic::create(&a, cap).unwrap());
    } else {
        drop(Ring::create(&a, cap).unwrap());
    }
    let exp = spawn(&["export", a.to_str().unwrap()]);
    let imp = spawn(&["import", b.to_str().unwrap()]);
    let start = Instant::now();
    while bridge_stats::read(&a).is_none_or(|s| s.peers != 1) {
        assert!(start.elapsed() < Duration::from_secs(60), "the bridges did not connect within a minute");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = f(&a, &b);
    stop(imp);
    stop(exp);
    for p in [&a, &b] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(bridge_stats::stats_path(p));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if matches!(args.get(1).map(String::as_str), Some("export" | "import")) {
        // A bridge of this benchmark ends with it, whatever happens to the parent.
        // SAFETY: prctl(PR_SET_PDEATHSIG) changes only this process's own attributes.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    }
    match args.get(1).map(String::as_str) {
        Some("export") => {
            mmapipc_zenoh::net::stop_on_signals();
            let o = ExportOptions {
                path: args[2].clone().into(),
                key: "bench/bridged".into(),
                endpoints: Endpoints { listen: vec![EP.into()], connect: vec![] },
                start: mmapipc::topic::Start::Latest,
            };
            mmapipc_zenoh::export(&o).unwrap();
            return;
        }
        Some("import") => {
            mmapipc_zenoh::net::stop_on_signals();
            let o = ImportOptions {
                key: "bench/bridged".into(),
                path: args[2].clone().into(),
                endpoints: Endpoints { listen: vec![], connect: vec![EP.into()] },
                wait: None,
                history: false,
            };
            mmapipc_zenoh::import(&o).unwrap();
            return;
        }
        _ => {}
    }
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let rounds = if quick { 1 } else { 3 };
    println!("{rounds} rounds, each bare zenoh then the bridges; medians (and the per-round ratios)");
    println!("| workload | bare zenoh | ring→bridge→bridge→ring | ratio of medians | per-round ratios |");
    println!("|---|---|---|---|---|");
    let n64 = 1_000_000 / scale;
    let (mut zs, mut rs) = (vec![], vec![]);
    with_bridges(1 << 22, |a, b| {
        for _ in 0..rounds {
            zs.push(n64 as f64 / bare(n64, 64, Duration::ZERO).secs);
            rs.push(n64 as f64 / bridged(a, b, n64, 64, Duration::ZERO).secs);
        }
    });
    row(&format!("64 B, {n64} msgs"), "msg/s", &zs, &rs);
    let (mut zs, mut ts) = (vec![], vec![]);
    with_bridges_of(true, 1 << 22, |a, b| {
        for _ in 0..rounds {
            zs.push(n64 as f64 / bare(n64, 64, Duration::ZERO).secs);
            ts.push(n64 as f64 / bridged_topic(a, b, n64, 64).secs);
        }
    });
    row(&format!("64 B topic→bridge→bridge→topic, {n64} msgs"), "msg/s", &zs, &ts);
    for (size, n) in [(1usize << 20, 2000 / scale), (8 << 20, 250 / scale)] {
        let (mut zs, mut rs) = (vec![], vec![]);
        let gb = |s: f64| (n as f64 * size as f64) / s / 1e9;
        with_bridges(64 << 20, |a, b| {
            for _ in 0..rounds {
                zs.push(gb(bare(n, size, Duration::ZERO).secs));
                rs.push(gb(bridged(a, b, n, size, Duration::ZERO).secs));
            }
        });
        row(&format!("{} MiB, {n} msgs", size >> 20), "GB/s", &zs, &rs);
    }
    let (nt, size) = (250 / scale, 8usize << 20);
    let gb = |s: f64| (nt as f64 * size as f64) / s / 1e9;
    let (mut zs, mut ts) = (vec![], vec![]);
    with_bridges_of(true, 64 << 20, |a, b| {
        for _ in 0..rounds {
            zs.push(gb(bare(nt, size, Duration::ZERO).secs));
            ts.push(gb(bridged_topic(a, b, nt, size).secs));
        }
    });
    row(&format!("8 MiB topic→bridge→bridge→topic, {nt} msgs"), "GB/s", &zs, &ts);
    let nl = 20_000 / scale;
    let gap = Duration::from_micros(200);
    let mut z = bare(nl, 64, gap);
    let mut r = with_bridges(1 << 22, |a, b| bridged(a, b, nl, 64, gap));
    let (z50, z99, r50, r99) =
        (pct(&mut z.lat, 0.5), pct(&mut z.lat, 0.99), pct(&mut r.lat, 0.5), pct(&mut r.lat, 0.99));
    println!("| one-way latency 64 B, p50 | {z50:.1} us | {r50:.1} us | {:+.1} us added | |", r50 - z50);
    println!("| one-way latency 64 B, p99 | {z99:.1} us | {r99:.1} us | {:+.1} us added | |", r99 - z99);
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn row(name: &str, unit: &str, zs: &[f64], rs: &[f64]) {
    let (z, r) = (median(zs), median(rs));
    let per: Vec<String> = zs.iter().zip(rs).map(|(z, r)| format!("{:.2}", r / z)).collect();
    let fmt = |x: f64| if unit == "msg/s" { format!("{x:.0} {unit}") } else { format!("{x:.2} {unit}") };
    println!("| {name} | {} | {} | {:.2}x | {} |", fmt(z), fmt(r), r / z, per.join(", "));
}
