//! `mmapipc::aio` under tokio, between real processes: the test binary re-executes itself as
//! the producers (child roles, `common`). Sequence-numbered messages, so "nothing lost, nothing
//! duplicated, in order" is one comparison.

#![cfg(all(target_os = "linux", not(loom)))]

mod common;
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use example_types::Tick;
use mmapipc::aio::{AsyncQueue, AsyncRing, AsyncTypedRing};
use mmapipc::wait::readiness;
use mmapipc::{Queue, Ring};

fn seq(m: &[u8]) -> u64 {
    u64::from_le_bytes(m.try_into().expect("8-byte message"))
}

/// The child roles:
/// * `ring PATH N`: writes 0..N into the ring at PATH;
/// * `queue PATH N`: puts 0..N into the queue at PATH;
/// * `rings N PATH...`: writes 0..N into each ring, round robin;
/// * `paced KIND PATH STOP COUNT`: writes 0, 1, ... with 2 ms pauses until the file STOP exists,
///   then writes how many it wrote to the file COUNT;
/// * `hang PATH N`: writes 0..N, then sleeps until killed;
/// * `ticks PATH N`: sends ticks 0..N (timestamp i) into the typed ring at PATH.
fn roles(role: &str, args: &[String]) {
    let n = |i: usize| args[i].parse::<u64>().unwrap();
    match role {
        "ring" => {
            let mut ring = Ring::open(&args[0]).unwrap();
            for i in 0..n(1) {
                ring.write(&i.to_le_bytes()).unwrap();
            }
        }
        "queue" => {
            let q = Queue::open(&args[0]).unwrap();
            for i in 0..n(1) {
                q.put(&i.to_le_bytes()).unwrap();
            }
        }
        "rings" => {
            let mut rings: Vec<Ring> = args[1..].iter().map(|p| Ring::open(p).unwrap()).collect();
            for i in 0..n(0) {
                for r in &mut rings {
                    r.write(&i.to_le_bytes()).unwrap();
                }
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        "paced" => {
            let (path, stop, count) = (&args[1], Path::new(&args[2]), &args[3]);
            let mut ring = (args[0] == "ring").then(|| Ring::open(path).unwrap());
            let queue = (args[0] == "queue").then(|| Queue::open(path).unwrap());
            let mut i = 0u64;
            while !stop.exists() {
                match (&mut ring, &queue) {
                    (Some(r), _) => r.write(&i.to_le_bytes()).unwrap(),
                    (_, Some(q)) => q.put(&i.to_le_bytes()).unwrap(),
                    _ => unreachable!(),
                }
                i += 1;
                // tokio's timers tick in milliseconds: a message every 2 ms lets most of the
                // receiver's tiny timeouts expire.
                std::thread::sleep(Duration::from_millis(2));
            }
            std::fs::write(format!("{count}.tmp"), i.to_string()).unwrap();
            std::fs::rename(format!("{count}.tmp"), count).unwrap();
        }
        "hang" => {
            let mut ring = Ring::open(&args[0]).unwrap();
            for i in 0..n(1) {
                ring.write(&i.to_le_bytes()).unwrap();
            }
            std::thread::sleep(Duration::from_secs(3600));
        }
        "ticks" => {
            let mut ring = mmapipc::TypedRing::<Tick>::open(&args[0]).unwrap();
            for i in 0..n(1) {
                ring.send(&tick(i)).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

fn tick(i: u64) -> Tick {
    Tick { timestamp_ns: i, symbol: *b"SYM\0\0\0\0\0", price: i as f64 / 2.0, size: i as u32, side: (i % 2) as u8 }
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-tokio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn finish(mut child: std::process::Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
}

#[test]
fn a_million_messages_in_order_from_another_process() {
    let path = temp("million");
    let ring = Ring::create(&path, 64 * 1024).unwrap();
    let total = 1_000_000u64;
    let child = common::child("ring", &[path.to_str().unwrap(), &total.to_string()]).spawn().unwrap();
    let mut r = AsyncRing::new(ring);
    runtime().block_on(async {
        for i in 0..total {
            assert_eq!(r.recv_with(seq).await.unwrap(), i);
        }
    });
    finish(child);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_queue_between_processes() {
    let path = temp("queue");
    let q = Arc::new(Queue::create(&path, 4096).unwrap());
    let total = 100_000u64;
    let child = common::child("queue", &[path.to_str().unwrap(), &total.to_string()]).spawn().unwrap();
    let mut aq = AsyncQueue::new(q);
    runtime().block_on(async {
        for i in 0..total {
            assert_eq!(seq(&aq.recv_async().await.unwrap()), i);
        }
    });
    finish(child);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn one_hundred_channels_in_one_runtime_without_one_hundred_threads() {
    let paths: Vec<PathBuf> = (0..100).map(|i| temp(&format!("many{i}"))).collect();
    let rings: Vec<Ring> = paths.iter().map(|p| Ring::create(p, 4096).unwrap()).collect();
    let count = 300u64;
    let tasks_before = std::fs::read_dir("/proc/self/task").unwrap().count();
    let rt = runtime();
    let most = rt.block_on(async {
        let handles: Vec<_> = rings
            .into_iter()
            .map(|ring| {
                tokio::spawn(async move {
                    let mut r = AsyncRing::new(ring);
                    for i in 0..count {
                        assert_eq!(r.recv_with(seq).await.unwrap(), i);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let children: Vec<_> = (0..4)
            .map(|k| {
                let mut args = vec![count.to_string()];
                args.extend(paths.iter().skip(k).step_by(4).map(|p| p.to_str().unwrap().to_owned()));
                common::child("rings", &args).spawn().unwrap()
            })
            .collect();
        let mut most = 0;
        while !handles.iter().all(|h| h.is_finished()) {
            most = most.max(std::fs::read_dir("/proc/self/task").unwrap().count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for h in handles {
            h.await.unwrap();
        }
        for c in children {
            finish(c);
        }
        most
    });
    // Other tests of this binary run in parallel threads: allow for theirs.
    assert!(most <= tasks_before + 8, "{tasks_before} threads before, {most} while awaiting 100 channels");
    if readiness::uses_futex_waitv() {
        assert!(readiness::waiter_threads() <= 4, "{} waiter threads", readiness::waiter_threads());
    }
    for p in &paths {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn cancelled_receives_lose_and_duplicate_nothing() {
    for kind in ["ring", "queue"] {
        let path = temp(&format!("storm-{kind}"));
        let (stop, count) = (temp(&format!("stop-{kind}")), temp(&format!("count-{kind}")));
        enum Side {
            Ring(AsyncRing),
            Queue(AsyncQueue),
        }
        let mut side = if kind == "ring" {
            Side::Ring(AsyncRing::new(Ring::create(&path, 4096).unwrap()))
        } else {
            Side::Queue(AsyncQueue::new(Arc::new(Queue::create(&path, 4096).unwrap())))
        };
        let args = [kind, path.to_str().unwrap(), stop.to_str().unwrap(), count.to_str().unwrap()];
        let child = common::child("paced", &args).spawn().unwrap();
        let mut got = Vec::new();
        let mut cancelled = 0u32;
        let mut rng = 0x9e3779b97f4a7c15u64;
        runtime().block_on(async {
            while cancelled < 2000 || got.len() < 500 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let tiny = Duration::from_micros(rng % 400);
                let r = match &mut side {
                    Side::Ring(r) => tokio::time::timeout(tiny, r.recv_with(seq)).await.map(Result::unwrap),
                    Side::Queue(q) => tokio::time::timeout(tiny, q.recv_with(seq)).await.map(Result::unwrap),
                };
                match r {
                    Ok(m) => got.push(m),
                    Err(_) => cancelled += 1,
                }
            }
            std::fs::write(&stop, b"").unwrap();
            let watchdog = Instant::now() + Duration::from_secs(60);
            while !count.exists() {
                assert!(Instant::now() < watchdog);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            loop {
                let tail = Duration::from_millis(200);
                let r = match &mut side {
                    Side::Ring(r) => tokio::time::timeout(tail, r.recv_with(seq)).await.map(Result::unwrap),
                    Side::Queue(q) => tokio::time::timeout(tail, q.recv_with(seq)).await.map(Result::unwrap),
                };
                match r {
                    Ok(m) => got.push(m),
                    Err(_) => break,
                }
            }
        });
        finish(child);
        let written: u64 = std::fs::read_to_string(&count).unwrap().parse().unwrap();
        assert_eq!(got, (0..written).collect::<Vec<_>>(), "{kind}: lost, duplicated or reordered");
        for p in [&path, &stop, &count] {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn a_killed_producer_never_hangs_the_receiver() {
    let path = temp("killed");
    let ring = Ring::create(&path, 4096).unwrap();
    let mut child = common::child("hang", &[path.to_str().unwrap(), "5"]).spawn().unwrap();
    let mut r = AsyncRing::new(ring);
    runtime().block_on(async {
        for i in 0..5 {
            let m = tokio::time::timeout(Duration::from_secs(60), r.recv_with(seq)).await;
            assert_eq!(m.unwrap().unwrap(), i);
        }
        let pending = tokio::time::timeout(Duration::from_secs(2), r.recv_with(seq));
        let kill = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            child.kill().unwrap();
        };
        let (got, ()) = tokio::join!(pending, kill);
        assert!(got.is_err(), "nothing more was published: the receive times out");
    });
    child.wait().unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn send_async_waits_for_room() {
    let mut ring = AsyncRing::new(Ring::heap(4096).unwrap());
    let mut consumer = ring.get_mut().new_handle();
    let mut n = 0u64;
    while ring.get_mut().try_write(&n.to_le_bytes()).unwrap() {
        n += 1;
    }
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut got = Vec::new();
        while got.len() as u64 <= n {
            if let Some(g) = consumer.read_timeout(Some(Duration::from_secs(60))).unwrap() {
                got.push(seq(&g));
            }
        }
        got
    });
    runtime().block_on(async {
        ring.send_async(&n.to_le_bytes()).await.unwrap();
    });
    assert_eq!(reader.join().unwrap(), (0..=n).collect::<Vec<_>>());
}

#[test]
fn typed_records_from_another_process_and_send_async() {
    let path = temp("typed");
    let ring = mmapipc::TypedRing::<Tick>::create(&path, 4096).unwrap();
    let total = 20_000u64;
    let child = common::child("ticks", &[path.to_str().unwrap(), &total.to_string()]).spawn().unwrap();
    let mut r = AsyncTypedRing::new(ring);
    runtime().block_on(async {
        for i in 0..total {
            assert_eq!(r.recv_with(|t| t.timestamp_ns.to_native()).await.unwrap(), i);
        }
    });
    finish(child);
    // send_async into a full ring completes once a record is read (by another handle: this one
    // gives the consumer role back).
    r.get_mut().ring().release_consumer();
    let mut reader = mmapipc::TypedRing::<Tick>::open(&path).unwrap();
    let mut n = 0;
    while r.get_mut().try_send(&tick(n)).unwrap() {
        n += 1;
    }
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let first = reader.recv().unwrap().timestamp_ns.to_native();
        (first, reader)
    });
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), r.send_async(&tick(n))).await.expect("room came").unwrap()
    });
    let (first, _reader) = t.join().unwrap();
    assert_eq!(first, 0);
    std::fs::remove_file(&path).unwrap();
}
