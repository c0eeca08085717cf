//! The typed channels under tokio ([`AsyncTypedRing`], [`AsyncTypedQueue`],
//! [`AsyncTypedSubscriber`], [`AsyncTypedPublisher`]) between real processes: the test binary
//! re-executes itself as the other side (child roles, `common`). Tick i has timestamp i (and
//! its other fields follow from i), so "nothing lost, nothing duplicated, in order" is one
//! comparison.

#![cfg(all(target_os = "linux", not(loom)))]

mod common;
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use example_types::Tick;
use mmapipc::aio::{AsyncTypedPublisher, AsyncTypedQueue, AsyncTypedRing, AsyncTypedSubscriber};
use mmapipc::topic::{Overflow, Start, TopicOptions};
use mmapipc::typed::{TypedQueue, TypedRing, TypedTopic};

/// The timestamp of the record that ends a stream.
const STOP: u64 = u64::MAX;

fn tick(i: u64) -> Tick {
    Tick { timestamp_ns: i, symbol: *b"SYM\0\0\0\0\0", price: i as f64 / 2.0, size: i as u32, side: (i % 2) as u8 }
}

fn stop() -> Tick {
    Tick { timestamp_ns: STOP, ..tick(0) }
}

fn topic_opts() -> TopicOptions {
    TopicOptions { max_subscribers: 4, overflow: Overflow::Block, ..Default::default() }
}

/// The child roles (KIND: `ring`, `queue` or `topic`):
/// * `send KIND PATH N`: sends ticks 0..N (a topic: publishes them);
/// * `paced KIND PATH STOP COUNT`: sends 0, 1, ... with 2 ms pauses until the file STOP
///   exists, then writes how many it sent to the file COUNT;
/// * `drain KIND PATH READY GO OUT PAUSE_MS`: opens the channel (a topic: subscribes), creates
///   the file READY, waits for the file GO, then receives ticks up to the STOP record, pausing
///   PAUSE_MS after each, checks each tick's fields, and writes the timestamps (STOP excluded)
///   to the file OUT.
fn roles(role: &str, args: &[String]) {
    let (kind, path) = (args[0].as_str(), &args[1]);
    match role {
        "send" => {
            let n: u64 = args[2].parse().unwrap();
            let mut send = sender(kind, path);
            for i in 0..n {
                send(&tick(i));
            }
        }
        "paced" => {
            let (stop, count) = (Path::new(&args[2]), &args[3]);
            let mut send = sender(kind, path);
            let mut i = 0u64;
            while !stop.exists() {
                send(&tick(i));
                i += 1;
                // tokio's timers tick in milliseconds: a record every 2 ms lets most of the
                // receiver's tiny timeouts expire.
                std::thread::sleep(Duration::from_millis(2));
            }
            std::fs::write(format!("{count}.tmp"), i.to_string()).unwrap();
            std::fs::rename(format!("{count}.tmp"), count).unwrap();
        }
        "drain" => {
            let (ready, go, out) = (&args[2], Path::new(&args[3]), &args[4]);
            let pause = Duration::from_millis(args[5].parse().unwrap());
            let mut recv = receiver(kind, path);
            std::fs::write(ready, b"").unwrap();
            let t0 = Instant::now();
            while !go.exists() {
                assert!(t0.elapsed() < Duration::from_secs(60), "no go");
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut got = Vec::new();
            loop {
                let t = recv();
                if t.timestamp_ns == STOP {
                    break;
                }
                assert_eq!(t, tick(t.timestamp_ns), "a record's fields");
                got.push(t.timestamp_ns.to_string());
                std::thread::sleep(pause);
            }
            std::fs::write(format!("{out}.tmp"), got.join(",")).unwrap();
            std::fs::rename(format!("{out}.tmp"), out).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

/// A blocking send of ticks into the typed channel at `path`.
fn sender(kind: &str, path: &str) -> Box<dyn FnMut(&Tick)> {
    match kind {
        "ring" => {
            let mut r = TypedRing::<Tick>::open(path).unwrap();
            Box::new(move |t| r.send(t).unwrap())
        }
        "queue" => {
            let q = TypedQueue::<Tick>::open(path).unwrap();
            Box::new(move |t| q.send(t).unwrap())
        }
        _ => {
            let mut p = TypedTopic::<Tick>::open(path).unwrap().publisher().unwrap();
            Box::new(move |t| p.send(t).unwrap())
        }
    }
}

/// A blocking receive of ticks (deserialized) from the typed channel at `path`.
fn receiver(kind: &str, path: &str) -> Box<dyn FnMut() -> Tick> {
    let wait = Some(Duration::from_secs(60));
    let owned = |t: &mmapipc::rkyv::Archived<Tick>| {
        mmapipc::rkyv::deserialize::<Tick, mmapipc::rkyv::rancor::Error>(t).unwrap()
    };
    match kind {
        "ring" => {
            let mut r = TypedRing::<Tick>::open(path).unwrap();
            Box::new(move || owned(&r.recv_timeout(wait).unwrap().expect("no record for 60 s")))
        }
        "queue" => {
            let q = TypedQueue::<Tick>::open(path).unwrap();
            Box::new(move || owned(&q.recv_timeout(wait).unwrap().expect("no record for 60 s")))
        }
        _ => {
            let mut s = TypedTopic::<Tick>::open(path).unwrap().subscribe(Start::Latest).unwrap();
            Box::new(move || owned(&s.recv_timeout(wait).unwrap().expect("no record for 60 s")))
        }
    }
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-tokio-typed-{name}-{}", std::process::id()));
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

fn wait_for(file: &Path) {
    let t0 = Instant::now();
    while !file.exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no {}", file.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The async side of one typed channel.
enum Side {
    Ring(Box<AsyncTypedRing<Tick>>),
    Queue(AsyncTypedQueue<Tick>),
    Sub(AsyncTypedSubscriber<Tick>),
    Pub(AsyncTypedPublisher<Tick>),
}

impl Side {
    /// Creates the channel at `path`: the receiving side, or the sending one.
    fn create(kind: &str, path: &Path, capacity: usize, sending: bool) -> Side {
        match kind {
            "ring" => Side::Ring(Box::new(AsyncTypedRing::new(TypedRing::create(path, capacity).unwrap()))),
            "queue" => Side::Queue(AsyncTypedQueue::new(Arc::new(TypedQueue::create(path, capacity).unwrap()))),
            _ => {
                let topic = TypedTopic::<Tick>::create(path, capacity, &topic_opts()).unwrap();
                if sending {
                    Side::Pub(AsyncTypedPublisher::new(topic.publisher().unwrap()))
                } else {
                    Side::Sub(AsyncTypedSubscriber::new(topic.subscribe(Start::Latest).unwrap()))
                }
            }
        }
    }

    /// The next tick: deserialized (`recv_async`) or read in place (`recv_with`).
    async fn recv(&mut self, in_place: bool) -> Tick {
        let copy = |t: &mmapipc::rkyv::Archived<Tick>| tick(t.timestamp_ns.to_native());
        match (self, in_place) {
            (Side::Ring(r), false) => r.recv_async().await.unwrap(),
            (Side::Ring(r), true) => r.recv_with(copy).await.unwrap(),
            (Side::Queue(q), false) => q.recv_async().await.unwrap(),
            (Side::Queue(q), true) => q.recv_with(copy).await.unwrap(),
            (Side::Sub(s), false) => s.recv_async().await.unwrap(),
            (Side::Sub(s), true) => s.recv_with(copy).await.unwrap(),
            (Side::Pub(_), _) => unreachable!("a publisher does not receive"),
        }
    }

    async fn send(&mut self, t: &Tick) {
        match self {
            Side::Ring(r) => r.send_async(t).await.unwrap(),
            Side::Queue(q) => q.send_async(t).await.unwrap(),
            Side::Pub(p) => p.send_async(t).await.unwrap(),
            Side::Sub(_) => unreachable!("a subscriber does not send"),
        }
    }

    /// A non-blocking send: false if there is no room.
    fn try_send(&mut self, t: &Tick) -> bool {
        match self {
            Side::Ring(r) => r.get_mut().try_send(t).unwrap(),
            Side::Queue(q) => q.queue().try_send(t).unwrap(),
            Side::Pub(p) => p.get_mut().try_send(t).unwrap(),
            Side::Sub(_) => unreachable!("a subscriber does not send"),
        }
    }
}

#[test]
fn records_from_a_child_producer_arrive_in_order() {
    for kind in ["ring", "queue", "topic"] {
        let path = temp(&format!("order-{kind}"));
        let total = 30_000u64;
        // A topic's subscription exists before the publisher starts.
        let mut side = Side::create(kind, &path, 4096, false);
        let child = common::child("send", &[kind, path.to_str().unwrap(), &total.to_string()]).spawn().unwrap();
        runtime().block_on(async {
            for i in 0..total {
                // Deserialized and in place, in turn.
                assert_eq!(side.recv(i % 2 == 1).await, tick(i), "{kind}");
            }
        });
        finish(child);
        std::fs::remove_file(&path).unwrap();
    }
}

/// Runs the `drain` child on the channel at `path` (created by the caller) and `produce` (which
/// ends with the STOP record); returns what the child received and what `produce` returned.
/// The child starts reading when `produce` creates the file it is given.
fn drained<R, F: std::future::Future<Output = R>>(
    kind: &str,
    path: &Path,
    pause_ms: u32,
    produce: impl FnOnce(PathBuf) -> F,
) -> (Vec<u64>, R) {
    let (ready, go, out) = (temp(&format!("{kind}-ready")), temp(&format!("{kind}-go")), temp(&format!("{kind}-out")));
    let args = [
        kind,
        path.to_str().unwrap(),
        ready.to_str().unwrap(),
        go.to_str().unwrap(),
        out.to_str().unwrap(),
        &pause_ms.to_string(),
    ];
    let child = common::child("drain", &args).spawn().unwrap();
    wait_for(&ready); // (a topic: the subscription exists)
    let r = runtime().block_on(produce(go.clone()));
    finish(child);
    let text = std::fs::read_to_string(&out).unwrap();
    for p in [&ready, &go, &out] {
        std::fs::remove_file(p).unwrap();
    }
    (text.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect(), r)
}

#[test]
fn send_async_into_a_full_channel_that_a_child_drains() {
    for kind in ["ring", "queue", "topic"] {
        let path = temp(&format!("full-{kind}"));
        let total = 20_000u64;
        let mut side = Side::create(kind, &path, 4096, true);
        let (got, ()) = drained(kind, &path, 0, |go| async move {
            let mut full = false;
            for i in 0..total {
                if !side.try_send(&tick(i)) {
                    if !full {
                        // The consumer starts reading once a send has found the channel full.
                        full = true;
                        std::fs::write(&go, b"").unwrap();
                    }
                    side.send(&tick(i)).await;
                }
            }
            assert!(full, "{kind}: 20,000 records never filled a 4 KiB channel");
            side.send(&stop()).await;
        });
        assert!(got == (0..total).collect::<Vec<_>>(), "{kind}: lost, duplicated or reordered");
        std::fs::remove_file(&path).unwrap();
    }
}

/// A small xorshift: the tiny timeouts of a storm.
fn tiny(rng: &mut u64) -> Duration {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    Duration::from_micros(*rng % 400)
}

#[test]
fn receive_timeout_storms_lose_and_duplicate_nothing() {
    for kind in ["queue", "topic"] {
        let path = temp(&format!("rstorm-{kind}"));
        let (stop, count) = (temp(&format!("rstop-{kind}")), temp(&format!("rcount-{kind}")));
        let mut side = Side::create(kind, &path, 4096, false);
        let args = [kind, path.to_str().unwrap(), stop.to_str().unwrap(), count.to_str().unwrap()];
        let child = common::child("paced", &args).spawn().unwrap();
        let mut got = Vec::new();
        let mut cancelled = 0u32;
        let mut rng = 0x9e3779b97f4a7c15u64;
        runtime().block_on(async {
            while cancelled < 2000 || got.len() < 500 {
                match tokio::time::timeout(tiny(&mut rng), side.recv(got.len() % 2 == 0)).await {
                    Ok(t) => got.push(t.timestamp_ns),
                    Err(_) => cancelled += 1,
                }
            }
            std::fs::write(&stop, b"").unwrap();
            let watchdog = Instant::now() + Duration::from_secs(60);
            while !count.exists() {
                assert!(Instant::now() < watchdog);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            while let Ok(t) = tokio::time::timeout(Duration::from_millis(200), side.recv(false)).await {
                got.push(t.timestamp_ns);
            }
        });
        finish(child);
        let sent: u64 = std::fs::read_to_string(&count).unwrap().parse().unwrap();
        assert!(got == (0..sent).collect::<Vec<_>>(), "{kind}: lost, duplicated or reordered");
        for p in [&path, &stop, &count] {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn send_timeout_storms_send_each_record_once() {
    for kind in ["queue", "topic"] {
        let path = temp(&format!("sstorm-{kind}"));
        let mut side = Side::create(kind, &path, 4096, true);
        let (got, sent) = drained(kind, &path, 2, |go| async move {
            std::fs::write(go, b"").unwrap();
            let (mut sent, mut cancelled) = (0u64, 0u32);
            let mut rng = 0x2545f4914f6cdd1du64;
            // Each tick is sent under tiny timeouts until a send completes: a cancelled send
            // that had written its record would arrive twice, one that lost it never.
            while cancelled < 500 || sent < 300 {
                match tokio::time::timeout(tiny(&mut rng), side.send(&tick(sent))).await {
                    Ok(()) => sent += 1,
                    Err(_) => cancelled += 1,
                }
            }
            side.send(&stop()).await;
            sent
        });
        assert!(got == (0..sent).collect::<Vec<_>>(), "{kind}: {} received for {sent} sent", got.len());
        std::fs::remove_file(&path).unwrap();
    }
}
