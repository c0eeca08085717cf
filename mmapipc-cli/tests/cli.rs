//! The `mmapipc` tool against live channels, run as a real process next to real producer and
//! consumer processes (the file-level commands on files of every state: `cli_files.rs`).

// The child-process harness, one implementation shared with the core's tests.
#[path = "../../mmapipc/tests/common/mod.rs"]
mod common;
mod tool;

use std::path::Path;

use tool::{json_of, lines, scratch, stdout, tool};

use mmapipc::typed::TypedRing;
use mmapipc::{Queue, SharedMemory};
use mmapipc_cli::example_types::Tick;

/// The child roles, each given the channel's path: `ring-producer`, `ring-consumer`,
/// `queue-producer`, `queue-consumer` run until killed; `*-create` create the file and exit.
fn roles(role: &str, args: &[String]) {
    let path = &args[0];
    let pause = std::time::Duration::from_millis(2);
    match role {
        "ring-producer" => {
            let mut tx = TypedRing::<Tick>::open(path).unwrap();
            tx.ring().claim_producer().unwrap();
            for i in 0u64.. {
                let t = Tick { timestamp_ns: i, symbol: *b"AAPL\0\0\0\0", price: 100.0 + i as f64, size: 1, side: 0 };
                let _ = tx.send_timeout(&t, Some(std::time::Duration::from_millis(50)));
                std::thread::sleep(pause);
            }
        }
        "ring-consumer" => {
            // Slower than the producer: a backlog builds up for `tail` and `stat` to see.
            let mut rx = TypedRing::<Tick>::open(path).unwrap();
            rx.ring().claim_consumer().unwrap();
            loop {
                drop(rx.recv_timeout(Some(std::time::Duration::from_millis(50))));
                std::thread::sleep(pause * 3);
            }
        }
        "ring-create" => drop(TypedRing::<Tick>::create(path, 1 << 16).unwrap()),
        "queue-create" => {
            // Creates the queue and exits: its creator is then dead, as in production where a
            // launcher creates channels.
            drop(Queue::create(path, 1 << 16).unwrap());
        }
        "queue-producer" => {
            let q = Queue::open(path).unwrap();
            for i in 0u64.. {
                let _ = q.put_timeout(format!("order {i}").as_bytes(), Some(std::time::Duration::from_millis(50)));
                std::thread::sleep(pause);
            }
        }
        "queue-consumer" => {
            let q = Queue::open(path).unwrap();
            loop {
                let _ = q.get_timeout(Some(std::time::Duration::from_millis(50)));
                std::thread::sleep(pause * 3);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

common::child_roles!(roles);

/// A producer and a consumer process attached to `path` (killed on drop).
struct Peers(Vec<std::process::Child>);

impl Peers {
    fn start(path: &Path, kind: &str) -> Peers {
        let spawn = |role: String| {
            common::child(&role, &[path])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let peers = Peers(vec![spawn(format!("{kind}-producer")), spawn(format!("{kind}-consumer"))]);
        // Wait until both are attached and messages flow.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let j = json_of(&tool(&["inspect", "--json", path.to_str().unwrap()]));
            let live = &j["live"];
            let flowing = live["counters"]["messages_out"].as_u64().unwrap_or(0) > 5
                && live["pending_messages"].as_u64().unwrap_or(0) > 0;
            let mapped = j["mapped_by"].as_array().map_or(0, |a| a.len());
            if flowing && mapped >= 2 {
                return peers;
            }
            assert!(std::time::Instant::now() < deadline, "peers did not start: {j}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.0.iter().map(|c| c.id()).collect()
    }

    /// SIGKILL both and reap them: the channel is left stale.
    fn kill(mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn typed_ring(path: &Path) {
    drop(TypedRing::<Tick>::create(path, 1 << 16).unwrap());
}

/// A queue created by a child process that has exited.
fn queue(path: &Path) {
    let st = common::child("queue-create", &[path]).stdout(std::process::Stdio::null()).status().unwrap();
    assert!(st.success());
}

/// Every subcommand against a typed ring with a live producer and consumer, then against the same
/// ring once both were killed.
#[test]
fn ring_live_and_stale() {
    let dir = scratch("ring");
    let path = dir.join("ticks");
    let p = path.to_str().unwrap();
    let d = dir.to_str().unwrap();
    typed_ring(&path);
    let peers = Peers::start(&path, "ring");
    let (prod, cons) = (peers.pids()[0], peers.pids()[1]);

    // ls: kind, type, attached processes, live.
    let s = stdout(&tool(&["ls", d]));
    let line = s.lines().find(|l| l.contains("ticks")).expect("listed");
    assert!(line.contains("ring") && line.contains("market.Tick v1"), "{line}");
    assert!(line.contains(&format!("P:{prod}")) && line.contains(&format!("C:{cons}")), "{line}");
    assert!(line.ends_with("live"), "{line}");
    let j: serde_json::Value =
        serde_json::from_str(stdout(&tool(&["ls", "--json", d])).lines().next().unwrap()).unwrap();
    assert_eq!(j["status"], "live");
    assert_eq!(j["live"]["holders"].as_array().unwrap().len(), 2);

    // inspect: attachments, counters, schema table.
    let o = tool(&["inspect", p]);
    assert!(o.status.success());
    let s = stdout(&o);
    for want in [
        format!("producer       pid {prod} (alive)"),
        format!("consumer       pid {cons} (alive)"),
        "messages in".into(),
        "full waits".into(),
        "sleeps: not counted".into(),
        "timestamp_ns".into(),
        "status          live".into(),
    ] {
        assert!(s.contains(&want), "missing {want:?} in\n{s}");
    }
    let j = json_of(&tool(&["inspect", "--json", p]));
    assert!(j["live"]["counters"]["messages_in"].as_u64().unwrap() > 0);
    assert_eq!(j["schema"]["name"], "market.Tick");

    // tail: decoded ticks, oldest first, without disturbing the consumer.
    let o = tool(&["tail", "-n", "3", p]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ticks: Vec<serde_json::Value> = lines(&o).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!ticks.is_empty() && ticks.len() <= 3, "{ticks:?}");
    for w in ticks.windows(2) {
        assert!(w[0]["timestamp_ns"].as_u64() < w[1]["timestamp_ns"].as_u64(), "{ticks:?}");
    }
    assert_eq!(ticks[0]["symbol"], "AAPL");
    let o = tool(&["tail", "--follow", "--max", "5", "-n", "0", "--interval", "0.02", p]);
    assert!(o.status.success());
    let followed = lines(&o);
    assert!(followed.iter().filter(|l| l.contains("timestamp_ns")).count() >= 1, "{followed:?}");

    // stat: plain lines (not a terminal) with non-zero rates.
    let o = tool(&["stat", "--interval", "0.2", "--count", "3", p]);
    assert!(o.status.success());
    let l = lines(&o);
    assert_eq!(l.len(), 4, "{l:?}");
    assert!(l[0].contains("MSG/S IN") && !stdout(&o).contains('\x1b'));
    let rate_in: f64 = l[3].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rate_in > 0.0, "{l:?}");
    let j: serde_json::Value =
        serde_json::from_str(&stdout(&tool(&["stat", "--json", "--interval", "0.1", "--count", "1", p]))).unwrap();
    assert!(j["lag_messages"].is_u64() && j["attached"].as_array().unwrap().len() == 2);

    // schema export from the live channel file.
    let o = tool(&["schema", "export", p]);
    assert!(o.status.success());
    assert_eq!(mmapipc::Schema::from_json(&stdout(&o)).unwrap().name, "market.Tick");

    // doctor: nothing wrong with a live ring.
    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // Kill both peers: the ring is stale.
    peers.kill();
    let s = stdout(&tool(&["ls", d]));
    let line = s.lines().find(|l| l.contains("ticks")).unwrap();
    assert!(line.contains("stale: attached processes are dead") && line.contains("(dead)"), "{line}");
    let s = stdout(&tool(&["inspect", p]));
    assert!(s.contains(&format!("producer       pid {prod} (dead)")), "{s}");
    let o = tool(&["tail", "-n", "2", p]);
    assert!(o.status.success());
    assert!(lines(&o).len() <= 2);
    let o = tool(&["stat", "--interval", "0.05", "--count", "1", p]);
    assert!(o.status.success());
    let rate_in: f64 = lines(&o)[1].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(rate_in, 0.0);
    let o = tool(&["schema", "export", p]);
    assert!(o.status.success(), "the schema stays readable in a stale channel");
    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("stale channel: attached processes are dead"), "{}", stdout(&o));
    assert!(stdout(&o).contains("--fix --remove-stale removes it"));
    assert!(tool(&["doctor", "--fix", d]).status.success());
    assert!(path.exists(), "--fix alone keeps stale channels");
    assert!(tool(&["doctor", "--fix", "--remove-stale", d]).status.success());
    assert!(!path.exists());
}

/// Every subcommand against a queue with a live producer and consumer, then once they were killed
/// (the queue's creator has exited too, so nothing uses it any more).
#[test]
fn queue_live_and_stale() {
    let dir = scratch("queue");
    let path = dir.join("orders");
    let p = path.to_str().unwrap();
    let d = dir.to_str().unwrap();
    queue(&path);
    let peers = Peers::start(&path, "queue");

    let s = stdout(&tool(&["ls", d]));
    let line = s.lines().find(|l| l.contains("orders")).expect("listed");
    assert!(line.contains("queue") && line.ends_with("live"), "{line}");
    let s = stdout(&tool(&["inspect", p]));
    assert!(s.contains("recoveries    locks 0, views 0") && s.contains("mapped by       pids"), "{s}");
    let j = json_of(&tool(&["inspect", "--json", p]));
    let mapped: Vec<u64> = j["mapped_by"].as_array().unwrap().iter().filter_map(|v| v.as_u64()).collect();
    for pid in peers.pids() {
        assert!(mapped.contains(&u64::from(pid)), "{j}");
    }
    let o = tool(&["tail", "-n", "2", p]);
    assert!(o.status.success());
    for l in lines(&o) {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert!(v["utf8"].as_str().unwrap().starts_with("order "), "{v}");
    }
    let o = tool(&["stat", "--interval", "0.2", "--count", "2", p]);
    assert!(o.status.success());
    assert_eq!(lines(&o).len(), 3);
    assert_eq!(tool(&["doctor", d]).status.code(), Some(0));

    peers.kill();
    let s = stdout(&tool(&["ls", d]));
    let line = s.lines().find(|l| l.contains("orders")).unwrap();
    // A consumer killed while it held the queue's consumer lock leaves that lock naming it:
    // then the reason names the dead holder instead. Either way the queue is reported stale.
    assert!(
        line.contains("stale: no process uses it")
            || line.contains("stale: attached processes are dead") && line.contains("(dead)"),
        "{line}"
    );
    assert!(tool(&["inspect", p]).status.success());
    assert!(tool(&["tail", p]).status.success());
    assert!(tool(&["stat", "--interval", "0.05", "--count", "1", p]).status.success());
    let o = tool(&["doctor", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(tool(&["doctor", "--fix", "--remove-stale", d]).status.success());
    assert!(!path.exists());
}

/// `tail` leaves every message for the real consumer (ring, queue, untyped preview).
#[test]
fn tail_does_not_consume() {
    let dir = scratch("tail");
    let rp = dir.join("ring");
    let mut tx = TypedRing::<Tick>::create(&rp, 4096).unwrap();
    for i in 0..5u64 {
        tx.send(&Tick { timestamp_ns: i, symbol: *b"MSFT\0\0\0\0", price: 1.5, size: 2, side: 1 }).unwrap();
    }
    let o = tool(&["tail", "-n", "2", rp.to_str().unwrap()]);
    let got: Vec<serde_json::Value> = lines(&o).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.iter().map(|v| v["timestamp_ns"].as_u64().unwrap()).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(got[0]["price"], 1.5);
    // inspect puts each human size next to the number it belongs to.
    let j = json_of(&tool(&["inspect", "--json", rp.to_str().unwrap()]));
    let (used, cap) = (j["live"]["used_bytes"].as_u64().unwrap(), j["live"]["capacity"].as_u64().unwrap());
    assert_eq!((used, cap), (5 * 40, 4096), "{j}");
    let text = stdout(&tool(&["inspect", rp.to_str().unwrap()]));
    assert!(text.contains("\n  used          200 bytes (200 B) of 4096 bytes (4.0 KiB)\n"), "{text}");
    let mut rx = TypedRing::<Tick>::open(&rp).unwrap();
    for i in 0..5u64 {
        assert_eq!(rx.try_recv().unwrap().expect("still there").timestamp_ns, i);
    }

    let qp = dir.join("queue");
    let q = Queue::create(&qp, 4096).unwrap();
    q.put(b"hello").unwrap();
    q.put(&[0u8, 1, 2, 255]).unwrap();
    let o = tool(&["tail", qp.to_str().unwrap()]);
    let got: Vec<serde_json::Value> = lines(&o).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got[0]["utf8"], "hello");
    assert_eq!(got[1]["hex"], "000102ff");
    assert_eq!(got[1]["len"], 4);
    assert_eq!(q.len(), 2);
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"hello"[..]));
    // A consumer holding a zero-copy view shows up as attached (with its pid), and tail no
    // longer lists the taken message.
    let view = q.try_get_view().unwrap().expect("one message");
    let j = json_of(&tool(&["inspect", "--json", qp.to_str().unwrap()]));
    let holders = j["live"]["holders"].as_array().unwrap().clone();
    assert!(holders.iter().any(|h| h["role"] == "view" && h["pid"] == std::process::id() && h["alive"] == true), "{j}");
    assert!(stdout(&tool(&["tail", qp.to_str().unwrap()])).is_empty());
    drop(view);

    // A typed queue: decoded with the schema stored in the file, and still all there afterwards.
    let tq = dir.join("typed-queue");
    let q = mmapipc::typed::TypedQueue::<Tick>::create(&tq, 4096).unwrap();
    for i in 0..3u64 {
        q.send(&Tick { timestamp_ns: 10 + i, symbol: *b"IBM\0\0\0\0\0", price: 2.0, size: 1, side: 0 }).unwrap();
    }
    let o = tool(&["tail", "-n", "2", tq.to_str().unwrap()]);
    let got: Vec<serde_json::Value> = lines(&o).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(got.iter().map(|v| v["timestamp_ns"].as_u64().unwrap()).collect::<Vec<_>>(), vec![11, 12]);
    assert_eq!(got[0]["symbol"], "IBM");
    let listing = stdout(&tool(&["ls", dir.to_str().unwrap()]));
    let line = listing.lines().find(|l| l.starts_with("typed-queue ")).unwrap();
    assert!(line.contains("queue") && line.contains("market.Tick v1"), "{line}");
    assert_eq!(q.try_recv().unwrap().expect("not consumed by tail").timestamp_ns, 10);

    // Not a channel with messages: exit 1.
    let _shm = SharedMemory::create(dir.join("shm"), 64).unwrap();
    let o = tool(&["tail", dir.join("shm").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a region has no messages"), "{o:?}");
    assert_eq!(tool(&["stat", dir.join("shm").to_str().unwrap()]).status.code(), Some(1));
    assert_eq!(tool(&["tail", dir.join("missing").to_str().unwrap()]).status.code(), Some(2));
}

/// A self-checking message: its sequence number, then `len(seq)` bytes derived from it.
fn stress_msg(seq: u64) -> Vec<u8> {
    let len = 8 + (seq * 7919 % 97) as usize;
    let mut m = seq.to_le_bytes().to_vec();
    m.extend((8..len).map(|i| (seq as usize * 31 + i) as u8));
    m
}

fn check_stress_msg(m: &[u8]) -> u64 {
    let seq = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert_eq!(m, stress_msg(seq).as_slice(), "torn or foreign record for seq {seq}");
    seq
}

/// The non-consuming peek races a hot producer and consumer (small ring: constant wrap-around and
/// overwrites): every record it returns must be whole, in order, and never one it was not given.
#[test]
fn peek_under_a_hot_producer_and_consumer_never_returns_torn_records() {
    let dir = scratch("stress");
    let n = 50_000u64;
    let mut tx = mmapipc::Ring::create(dir.join("ring"), 1024).unwrap();
    let mut rx = mmapipc::Ring::open(dir.join("ring")).unwrap();
    let peeker = mmapipc::Ring::open(dir.join("ring")).unwrap();
    let q = Queue::create(dir.join("queue"), 1024).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                tx.write(&stress_msg(i)).unwrap();
            }
        });
        s.spawn(move || {
            for i in 0..n {
                assert_eq!(check_stress_msg(&rx.read().unwrap()), i);
            }
        });
        s.spawn(|| {
            for i in 0..n {
                q.put(&stress_msg(i)).unwrap();
            }
        });
        s.spawn(|| {
            for i in 0..n {
                assert_eq!(check_stress_msg(&q.get().unwrap()), i);
            }
        });
        let (mut ring_seen, mut queue_seen) = (0u64, 0u64);
        let (mut rfrom, mut qfrom) = (None, None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let p = peeker.peek_published(rfrom, usize::MAX).unwrap();
            let mut last = None;
            for (_, m) in &p.records {
                let seq = check_stress_msg(m);
                assert!(last.is_none_or(|l| seq == l + 1), "out of order");
                last = Some(seq);
                ring_seen += 1;
            }
            rfrom = Some(p.next);
            let p = q.peek_committed(qfrom, usize::MAX).unwrap();
            let mut last = None;
            for (_, m) in &p.records {
                let seq = check_stress_msg(m);
                assert!(last.is_none_or(|l| seq == l + 1), "out of order");
                last = Some(seq);
                queue_seen += 1;
            }
            qfrom = Some(p.next);
            if q.stats().messages_out == n && peeker.stats().messages_out == n {
                break;
            }
        }
        eprintln!("peeked {ring_seen} ring and {queue_seen} queue records");
        assert!(ring_seen > 0 && queue_seen > 0, "peeked nothing ({ring_seen}, {queue_seen})");
    });
}

/// A producer stalled by views a consumer has not released shows in `inspect` and `stat`.
#[test]
fn view_stalls_are_shown() {
    let dir = scratch("stalls");
    let path = dir.join("held");
    let p = path.to_str().unwrap();
    let q = Queue::create(&path, 4096).unwrap();
    let msg = [7u8; 200];
    while q.try_put(&msg).unwrap() {}
    let views = q.try_get_views(usize::MAX).unwrap();
    assert!(!views.is_empty());
    assert!(!q.put_timeout(&msg, Some(std::time::Duration::from_millis(20))).unwrap());
    let j = json_of(&tool(&["inspect", "--json", p]));
    assert_eq!(j["live"]["counters"]["view_stalls"], 1, "{j}");
    let s = stdout(&tool(&["inspect", p]));
    assert!(s.contains("view stalls   1 (producers waited for space held by unreleased views)"), "{s}");
    let o = tool(&["stat", "--json", "--interval", "0.05", "--count", "1", p]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["view_stalls"], 1, "{v}");
    drop(views);
}

/// `stat` shows the counters of an mmapipc-bridge serving the channel (`<path>.bridge`).
#[test]
fn stat_shows_bridge_counters() {
    use mmapipc_cli::bridge_stats::{off, BridgeStatsFile, Role};
    let dir = scratch("bridge");
    let path = dir.join("ticks");
    let p = path.to_str().unwrap();
    drop(mmapipc::Ring::create(&path, 4096).unwrap());
    let o = tool(&["stat", "--json", "--interval", "0.05", "--count", "1", p]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["bridge"].is_null(), "no bridge yet: {v}");
    let f = BridgeStatsFile::open(&path, Role::Import, "market/ticks/0123").unwrap();
    f.add(off::FORWARDED, 41);
    f.add(off::LOST, 2);
    f.set(off::LAG_NS, 1_500_000);
    let o = tool(&["stat", "--json", "--interval", "0.05", "--count", "1", p]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let b = &v["bridge"];
    assert_eq!((b["role"].as_str(), b["key"].as_str()), (Some("import"), Some("market/ticks/0123")), "{v}");
    assert_eq!(
        (b["forwarded"].as_u64(), b["lost"].as_u64(), b["lag_ns"].as_u64()),
        (Some(41), Some(2), Some(1_500_000))
    );
    let s = stdout(&tool(&["stat", "--interval", "0.05", "--count", "1", p]));
    assert!(s.contains("bridge import market/ticks/0123") && s.contains("forwarded 41") && s.contains("lost 2"), "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}
