//! Two `mmapipc-bridge` processes on two hosts (network namespaces made by the test, see
//! `net/mod.rs`), zenoh in peer mode with multicast scouting off and explicit endpoints: a
//! producer process on A's channel, the test reading B's.

// The child-process harness, one implementation shared with the core's tests.
#[path = "../../mmapipc/tests/common/mod.rs"]
mod common;
mod net;

use std::path::{Path, PathBuf};

use mmapipc::rkyv::{Archive, Deserialize, Serialize};
use mmapipc::typed::TypedRing;
use mmapipc::{IpcMessage, Queue, Ring};
use mmapipc_cli::bridge_stats;
use mmapipc_cli::example_types::Tick;

use net::{kill, read_log, stats, stop, wait_connected, wait_for, wait_peer, Hosts, PATIENCE};

/// `market.Tick` v1 with another layout: the same name and version as [`Tick`], other fields.
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, Copy, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "market.Tick", version = 1)]
struct OtherTick {
    timestamp_ns: u64,
    price: f64,
    size: u32,
}

/// Child roles. `ring-producer PATH N SIZE [GATE_AT GATE_FILE]`: writes N messages of SIZE bytes
/// (the first 8 the index, the rest the index's low byte), pausing after GATE_AT messages until
/// GATE_FILE exists. `tick-producer PATH N`: N ticks.
fn roles(role: &str, args: &[String]) {
    let n: u64 = args[1].parse().unwrap();
    match role {
        "ring-producer" => {
            let size: usize = args[2].parse().unwrap();
            let gate = args.get(3).map(|g| (g.parse::<u64>().unwrap(), PathBuf::from(&args[4])));
            let mut ring = Ring::open(&args[0]).unwrap();
            for i in 0..n {
                if let Some((at, file)) = &gate {
                    if i == *at {
                        wait_for("the gate file", || file.exists().then_some(()));
                    }
                }
                let mut slot = ring.loan(size).unwrap();
                slot[..8].copy_from_slice(&i.to_le_bytes());
                slot[8..].fill(i as u8);
                slot.commit();
            }
        }
        "queue-producer" => {
            let q = Queue::open(&args[0]).unwrap();
            for i in 0..n {
                q.put(format!("order {i}").as_bytes()).unwrap();
            }
        }
        "tick-producer" => {
            let mut tx = TypedRing::<Tick>::open(&args[0]).unwrap();
            for i in 0..n {
                tx.send(&tick(i)).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

fn tick(i: u64) -> Tick {
    Tick {
        timestamp_ns: i,
        symbol: *b"ACME\0\0\0\0",
        price: 100.0 + i as f64 / 4.0,
        size: i as u32,
        side: (i % 2) as u8,
    }
}

fn producer(path: &Path, n: u64, size: usize, gate: Option<(u64, &Path)>) -> std::process::Child {
    let mut args = vec![path.display().to_string(), n.to_string(), size.to_string()];
    if let Some((at, file)) = gate {
        args.push(at.to_string());
        args.push(file.display().to_string());
    }
    common::child("ring-producer", &args).spawn().unwrap()
}

/// Reads one message of B's ring, checking its framing; returns its index.
fn read_one(rx: &mut Ring) -> u64 {
    let m = rx.read_timeout(Some(PATIENCE)).unwrap().expect("a message within the patience bound");
    let i = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert!(m[8..].iter().all(|&b| b == i as u8), "message {i}: payload damaged");
    i
}

fn open_ring(path: &Path) -> Ring {
    let mut r = wait_for("the imported ring", || Ring::open(path).ok());
    r.claim_consumer().unwrap();
    r
}

#[test]
fn a_million_messages_in_order() {
    const N: u64 = 1_000_000;
    let mut h = Hosts::new("million");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    drop(Ring::create(&a, 1 << 20).unwrap());
    let mut exp = h.export(&a, "test/million", &ea);
    let mut imp = h.import("test/million", &b, &ib);
    wait_connected(&a);
    let mut rx = open_ring(&b);
    assert_eq!(rx.capacity(), 1 << 20, "the importer creates its ring with the exported capacity");
    let mut p = producer(&a, N, 16, None);
    for i in 0..N {
        assert_eq!(read_one(&mut rx), i, "out of order");
    }
    assert!(p.wait().unwrap().success());
    // Each bridge counts a message just after handing it on: the counters may trail the reads.
    let s = wait_for("the importer's counters", || Some(stats(&b)).filter(|s| s.forwarded == N));
    let e = wait_for("the exporter's counters", || Some(stats(&a)).filter(|e| e.forwarded == N));
    assert_eq!((s.lost, s.duplicates), (0, 0), "importer counters: {s:?}");
    assert_eq!((e.dropped, e.bytes), (0, 16 * N), "exporter counters: {e:?}");
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn typed_ticks_are_read_as_ticks_and_listed_with_their_schema() {
    let mut h = Hosts::new("ticks");
    let (a, b, ea, ib, lsl) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"), h.log("ls"));
    drop(TypedRing::<Tick>::create(&a, 1 << 16).unwrap());
    let mut exp = h.export(&a, "market/ticks", &ea);
    let mut imp = h.import("market/ticks", &b, &ib);
    wait_connected(&a);
    // The importer created B's ring with the exported schema: it opens as TypedRing<Tick>.
    let mut rx = wait_for("the typed ring", || TypedRing::<Tick>::open(&b).ok());
    let mut p = common::child("tick-producer", &[a.display().to_string(), "5000".into()]).spawn().unwrap();
    for i in 0..5000 {
        let t = rx.recv_timeout(Some(PATIENCE)).unwrap().expect("a tick");
        let got = mmapipc::rkyv::deserialize::<Tick, mmapipc::rkyv::rancor::Error>(&*t).unwrap();
        assert_eq!(got, tick(i), "exporter {:?}\nimporter {:?}", stats(&a), stats(&b));
    }
    assert!(p.wait().unwrap().success());

    let out = h.ls(&lsl, true);
    assert!(out.contains("market/ticks") && out.contains("market.Tick v1"), "ls output:\n{out}");
    assert!(out.contains("price") && out.contains("timestamp_ns"), "ls shows the fields:\n{out}");
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn frames_of_8_mib() {
    const N: u64 = 12;
    const SIZE: usize = 8 << 20;
    let mut h = Hosts::new("frames");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    drop(Ring::create(&a, 32 << 20).unwrap());
    let mut exp = h.export(&a, "video/frames", &ea);
    let mut imp = h.import("video/frames", &b, &ib);
    wait_connected(&a);
    let mut rx = open_ring(&b);
    let mut p = producer(&a, N, SIZE, None);
    for i in 0..N {
        let m = rx.read_timeout(Some(PATIENCE)).unwrap().expect("a frame");
        assert_eq!(m.len(), SIZE);
        assert_eq!(u64::from_le_bytes(m[..8].try_into().unwrap()), i);
        assert!(m[8..].iter().all(|&x| x == i as u8), "frame {i} damaged");
    }
    assert!(p.wait().unwrap().success());
    assert_eq!(stats(&b).bytes, N * SIZE as u64);
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn a_schema_mismatch_is_refused_on_both_ends_with_the_diff() {
    let mut h = Hosts::new("mismatch");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    drop(TypedRing::<Tick>::create(&a, 1 << 16).unwrap());
    drop(TypedRing::<OtherTick>::create(&b, 1 << 16).unwrap());
    let mut exp = h.export(&a, "market/ticks", &ea);
    let mut imp = h.import("market/ticks", &b, &ib);
    let status = imp.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the importer refuses: {}", read_log(&ib));
    wait_for("the exporter's refusal", || (stats(&a).refused == 1).then_some(()));
    // The same field-by-field diff at both ends.
    for (end, log) in [("importer", &ib), ("exporter", &ea)] {
        let text = read_log(log);
        assert!(text.contains("schema mismatch"), "{end} log:\n{text}");
        assert!(
            text.contains("field price: f64 at 16 size 8 (channel) vs f64 at 8 size 8 (reader)"),
            "{end} log:\n{text}"
        );
        assert!(text.contains("field symbol"), "{end} log:\n{text}");
    }
    assert_eq!(stats(&b).refused, 1);
    // Nothing was delivered: B's ring is untouched.
    assert_eq!(Ring::open(&b).unwrap().stats().messages_in, 0);
    stop(&mut exp);
}

/// Runs a gated stream of `n` messages, kills the bridge `victim` ("importer" or "exporter")
/// half-way through the first `gate` messages, restarts it, opens the gate, and checks what
/// arrives: in order, and every message either received or counted lost.
fn kill_and_restart(victim: &str) {
    let (n, gate) = (200_000u64, 100_000u64);
    let mut h = Hosts::new(victim);
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    let (ea2, ib2, gate_file) = (h.log("exp2"), h.log("imp2"), h.log("gate"));
    let _ = std::fs::remove_file(&gate_file);
    drop(Ring::create(&a, 1 << 20).unwrap());
    let key = format!("test/{victim}");
    let mut exp = h.export(&a, &key, &ea);
    let mut imp = h.import(&key, &b, &ib);
    wait_connected(&a);
    let mut rx = open_ring(&b);
    let mut p = producer(&a, n, 16, Some((gate, &gate_file)));
    let mut got = Vec::with_capacity(n as usize);
    while got.len() < (gate / 2) as usize {
        got.push(read_one(&mut rx));
    }
    if victim == "importer" {
        kill(&mut imp);
        imp = h.import(&key, &b, &ib2);
        wait_peer(&b, imp.id());
    } else {
        kill(&mut exp);
        exp = h.export(&a, &key, &ea2);
        wait_peer(&a, exp.id());
    }
    std::fs::write(&gate_file, b"go").unwrap();
    loop {
        let i = read_one(&mut rx);
        assert!(got.last().is_none_or(|&l| i > l), "{i} after {:?}: out of order or repeated", got.last());
        got.push(i);
        if i == n - 1 {
            break;
        }
    }
    assert!(p.wait().unwrap().success());
    let (e, s) = (stats(&a), stats(&b));
    let received = got.len() as u64;
    // Every message was received or counted lost; a crash can miscount by one (docs/bridge.md).
    let accounted = received + s.lost;
    assert!(accounted.abs_diff(n) <= 1, "received {received} + lost {} vs {n} sent; importer {s:?}", s.lost);
    assert!(s.forwarded.abs_diff(received) <= 1, "importer forwarded {} vs received {received}", s.forwarded);
    if victim == "importer" {
        assert!(e.dropped <= s.lost, "exporter dropped {} (no importer) but importer lost {}", e.dropped, s.lost);
    }
    eprintln!(
        "{victim} killed: received {received}, lost {}, duplicates {}, exporter dropped {}",
        s.lost, s.duplicates, e.dropped
    );
    stop(&mut exp);
    stop(&mut imp);
    assert!(bridge_stats::read(&b).is_some());
}

#[test]
fn the_importer_killed_and_restarted() {
    kill_and_restart("importer");
}

#[test]
fn the_exporter_killed_and_restarted() {
    kill_and_restart("exporter");
}

#[test]
fn ls_with_nothing_exported_says_so() {
    let mut h = Hosts::new("empty");
    let log = h.log("ls");
    let out = h.ls(&log, false);
    assert_eq!(out.lines().count(), 1, "only the header:\n{out}");
}

#[test]
fn a_queue_keeps_its_messages_until_an_importer_comes_then_each_arrives_once() {
    const N: u64 = 20_000;
    let mut h = Hosts::new("queue");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    drop(Queue::create(&a, 1 << 20).unwrap());
    let mut exp = h.export(&a, "jobs/orders", &ea);
    // Produced before any importer: the exporter takes none of them.
    let p = common::child("queue-producer", &[a.display().to_string(), N.to_string()]).status().unwrap();
    assert!(p.success());
    assert_eq!(Queue::open(&a).unwrap().len() as u64, N, "the queue export took messages with no importer");
    let mut imp = h.import("jobs/orders", &b, &ib);
    let rx = wait_for("the imported queue", || Queue::open(&b).ok());
    for i in 0..N {
        let m = rx.get_timeout(Some(PATIENCE)).unwrap().expect("an order");
        assert_eq!(m, format!("order {i}").as_bytes());
    }
    let s = wait_for("the importer's counters", || Some(stats(&b)).filter(|s| s.forwarded == N));
    let e = wait_for("the exporter's counters", || Some(stats(&a)).filter(|e| e.forwarded == N));
    assert_eq!((e.dropped, s.lost, s.duplicates), (0, 0, 0), "{e:?} {s:?}");
    assert_eq!(Queue::open(&a).unwrap().len(), 0);
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn an_absent_importer_never_blocks_the_ring_producer() {
    const N: u64 = 200_000;
    let mut h = Hosts::new("alone");
    let (a, ea) = (h.channel("a"), h.log("exp"));
    drop(Ring::create(&a, 1 << 16).unwrap());
    let mut exp = h.export(&a, "test/alone", &ea);
    stats(&a);
    // 200,000 messages of 24 bytes (framing included) through a 64 KiB ring nobody imports.
    let mut p = producer(&a, N, 16, None);
    assert!(p.wait().unwrap().success(), "the producer finished");
    let e = wait_for("the exporter to count its drops", || {
        let e = stats(&a);
        (e.dropped + Ring::open(&a).unwrap().len() as u64 == N).then_some(e)
    });
    assert!(e.dropped > 0 && e.forwarded == 0, "{e:?}");
    stop(&mut exp);
}

/// The repository's virtualenv Python (made by `make venv`), if there is one.
fn venv_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if py.exists() {
        return Some(py);
    }
    // Past libtest's capture: the run says what it did not do.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "bridge test: no .venv (run `make venv`): the Python consumer is not run");
    None
}

/// Runs `tests/bridge_consumer.py MODE PATH N` and checks that it read everything.
fn python_consumer(py: &Path, mode: &str, path: &Path, n: u64) -> std::process::Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bridge_consumer.py");
    std::process::Command::new(py)
        .arg(script)
        .args([mode, path.to_str().unwrap(), &n.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn python_done(c: std::process::Child, n: u64) {
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "the Python consumer failed");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ok {n}"));
}

#[test]
fn a_python_consumer_on_b_reads_a_million_in_order_and_ticks_as_numpy() {
    let Some(py) = venv_python() else { return };
    const N: u64 = 1_000_000;
    let mut h = Hosts::new("python");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    drop(Ring::create(&a, 1 << 20).unwrap());
    let mut exp = h.export(&a, "test/python", &ea);
    let mut imp = h.import("test/python", &b, &ib);
    wait_connected(&a);
    wait_for("the imported ring", || b.exists().then_some(()));
    let c = python_consumer(&py, "bytes", &b, N);
    let mut p = producer(&a, N, 16, None);
    python_done(c, N);
    assert!(p.wait().unwrap().success());
    assert_eq!((stats(&b).forwarded, stats(&b).lost), (N, 0));
    stop(&mut exp);
    stop(&mut imp);

    const T: u64 = 50_000;
    let (ta, tb, tea, tib) = (h.channel("ta"), h.channel("tb"), h.log("texp"), h.log("timp"));
    drop(TypedRing::<Tick>::create(&ta, 1 << 20).unwrap());
    let mut exp = h.export(&ta, "test/pyticks", &tea);
    let mut imp = h.import("test/pyticks", &tb, &tib);
    wait_connected(&ta);
    wait_for("the imported typed ring", || tb.exists().then_some(()));
    let c = python_consumer(&py, "ticks", &tb, T);
    let mut p = common::child("tick-producer", &[ta.display().to_string(), T.to_string()]).spawn().unwrap();
    python_done(c, T);
    assert!(p.wait().unwrap().success());
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn the_importer_may_start_before_the_exporter() {
    let mut h = Hosts::new("first");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    drop(Ring::create(&a, 1 << 16).unwrap());
    let mut imp = h.import("test/first", &b, &ib);
    // The importer keeps looking (its connect is retried) while nobody listens.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(imp.try_wait().unwrap().is_none(), "the importer gave up: {}", read_log(&ib));
    let mut exp = h.export(&a, "test/first", &ea);
    wait_connected(&a);
    let mut rx = open_ring(&b);
    let mut p = producer(&a, 1000, 16, None);
    for i in 0..1000 {
        assert_eq!(read_one(&mut rx), i);
    }
    assert!(p.wait().unwrap().success());
    stop(&mut exp);
    stop(&mut imp);
}
