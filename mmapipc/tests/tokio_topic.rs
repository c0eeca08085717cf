//! `mmapipc::aio` for topics under tokio, between real processes (the test binary re-executes
//! itself as the other side: child roles, `common`): [`AsyncSubscriber`]s fed by a publisher
//! process, and an [`AsyncPublisher`] held back by a subscriber process (block mode).

#![cfg(all(target_os = "linux", not(loom)))]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mmapipc::aio::{AsyncPublisher, AsyncSubscriber};
use mmapipc::topic::{Overflow, Start, Topic, TopicOptions};

fn seq(m: &[u8]) -> u64 {
    u64::from_le_bytes(m.try_into().expect("8-byte message"))
}

/// The child roles:
/// * `publish PATH N`: publishes 0..N into the topic at PATH;
/// * `subscribe PATH N READY`: subscribes, creates the file READY, then receives 0..N (slowly
///   at first, so that the publisher has to wait) and checks them.
fn roles(role: &str, args: &[String]) {
    let n = |i: usize| args[i].parse::<u64>().unwrap();
    match role {
        "publish" => {
            let t = Topic::open(&args[0]).unwrap();
            let mut p = t.publisher().unwrap();
            for i in 0..n(1) {
                p.publish(&i.to_le_bytes()).unwrap();
            }
        }
        "subscribe" => {
            let t = Topic::open(&args[0]).unwrap();
            let mut s = t.subscribe(Start::Latest).unwrap();
            std::fs::write(&args[2], b"").unwrap();
            for i in 0..n(1) {
                if i < 200 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let m = s.recv_timeout(Some(Duration::from_secs(60))).unwrap().expect("timed out");
                assert_eq!(seq(&m), i);
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-tokio-topic-{name}-{}", std::process::id()));
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

fn block_topic(path: &Path, capacity: usize) -> Topic {
    let opts = TopicOptions { max_subscribers: 4, overflow: Overflow::Block, ..Default::default() };
    Topic::create_with(path, capacity, &opts).unwrap()
}

async fn read_all(sub: &mut AsyncSubscriber, total: u64) -> Vec<u64> {
    let mut got = Vec::with_capacity(total as usize);
    while (got.len() as u64) < total {
        got.push(seq(&sub.recv_async().await.unwrap()));
    }
    got
}

#[test]
fn two_async_subscribers_get_every_message_in_order_from_another_process() {
    let total = 100_000u64;
    let path = temp("fanout");
    let t = block_topic(&path, 1 << 14);
    let mut a = AsyncSubscriber::new(t.subscribe(Start::Latest).unwrap());
    let mut b = AsyncSubscriber::new(t.subscribe(Start::Latest).unwrap());
    let child = common::child("publish", &[path.to_str().unwrap(), &total.to_string()]).spawn().unwrap();
    let (ra, rb) = runtime().block_on(async { tokio::join!(read_all(&mut a, total), read_all(&mut b, total)) });
    finish(child);
    let want: Vec<u64> = (0..total).collect();
    assert!(ra == want, "subscriber a: out of order or lost messages");
    assert!(rb == want, "subscriber b: out of order or lost messages");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn send_async_waits_for_a_slow_subscriber_in_another_process() {
    let total = 20_000u64;
    let path = temp("backpressure");
    let ready = temp("backpressure-ready");
    let t = block_topic(&path, 1 << 10);
    let mut p = AsyncPublisher::new(t.publisher().unwrap());
    let args = [path.to_str().unwrap(), &total.to_string(), ready.to_str().unwrap()];
    let child = common::child("subscribe", &args).spawn().unwrap();
    let t0 = Instant::now();
    while !ready.exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "the subscriber never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let full = runtime().block_on(async {
        let mut full = 0u64;
        for i in 0..total {
            let data = i.to_le_bytes();
            if !p.get_mut().try_publish(&data).unwrap() {
                full += 1;
                p.send_async(&data).await.unwrap();
            }
        }
        full
    });
    finish(child);
    // A 1 KiB topic and a subscriber that starts slowly: the publisher did find it full.
    assert!(full > 0);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&ready);
}
