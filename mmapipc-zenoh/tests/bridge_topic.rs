//! Topics through two `mmapipc-bridge` processes on two hosts (network namespaces made by the
//! test, see `net/mod.rs`): every message to every subscriber on B, a late joiner's history
//! then the live stream with no gap and no repeat, a typed topic's schema checked.

// The child-process harness, one implementation shared with the core's tests.
#[path = "../../mmapipc/tests/common/mod.rs"]
mod common;
mod net;

use std::path::{Path, PathBuf};

use mmapipc::rkyv::{Archive, Deserialize, Serialize};
use mmapipc::topic::{Overflow, Start, TopicOptions};
use mmapipc::typed::TypedTopic;
use mmapipc::{IpcMessage, Subscriber, Topic};
use mmapipc_cli::example_types::Tick;

use net::{read_log, stats, stop, wait_connected, wait_for, Hosts, PATIENCE};

/// `market.Tick` v1 with another layout: the same name and version as [`Tick`], other fields.
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, Copy, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "market.Tick", version = 1)]
struct OtherTick {
    timestamp_ns: u64,
    price: f64,
    size: u32,
}

/// Child roles. `topic-publisher PATH FROM TO [PACE]`: publishes messages FROM..TO of 16 bytes
/// (the first 8 the index, the rest its low byte), pausing a millisecond after every PACE
/// messages when given. `frame-publisher PATH N`: N [`frame`]s. `tick-publisher PATH N`: N
/// ticks.
fn roles(role: &str, args: &[String]) {
    match role {
        "topic-publisher" => {
            let (from, to): (u64, u64) = (args[1].parse().unwrap(), args[2].parse().unwrap());
            let pace: Option<u64> = args.get(3).map(|p| p.parse().unwrap());
            let mut p = Topic::open(&args[0]).unwrap().publisher().unwrap();
            let mut m = [0u8; 16];
            for i in from..to {
                m[..8].copy_from_slice(&i.to_le_bytes());
                m[8..].fill(i as u8);
                p.publish(&m).unwrap();
                if pace.is_some_and(|n| i % n == 0) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        "frame-publisher" => {
            let n: u64 = args[1].parse().unwrap();
            let mut p = Topic::open(&args[0]).unwrap().publisher().unwrap();
            for i in 0..n {
                let m = frame(i);
                p.publish(&m).unwrap();
            }
        }
        "tick-publisher" => {
            let n: u64 = args[1].parse().unwrap();
            let mut p = TypedTopic::<Tick>::open(&args[0]).unwrap().publisher().unwrap();
            for i in 0..n {
                p.send(&tick(i)).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

/// Message `i` of `frame-publisher`: 8 MiB for an even `i` (past the exporter's zero-copy
/// threshold), 16 bytes for an odd one; the first 8 bytes the index, the rest its low byte.
fn frame(i: u64) -> Vec<u8> {
    let mut m = vec![i as u8; if i % 2 == 0 { 8 << 20 } else { 16 }];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

fn tick(i: u64) -> Tick {
    Tick {
        timestamp_ns: i,
        symbol: *b"ACME\0\0\0\0",
        price: 100.0 + i as f64 / 4.0,
        size: i as u32,
        side: (i % 2) as u8,
    }
}

fn publisher(path: &Path, from: u64, to: u64, pace: Option<u64>) -> std::process::Child {
    let mut args = vec![path.display().to_string(), from.to_string(), to.to_string()];
    args.extend(pace.map(|p| p.to_string()));
    common::child("topic-publisher", &args).spawn().unwrap()
}

/// Receives one message, checking its framing; returns its index.
fn recv_one(sub: &mut Subscriber) -> u64 {
    let m = sub.recv_timeout(Some(PATIENCE)).unwrap().expect("a message within the patience bound");
    let i = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert!(m.len() == 16 && m[8..].iter().all(|&b| b == i as u8), "message {i}: payload damaged");
    i
}

fn topic(path: &Path, capacity: usize, max_subscribers: usize, overflow: Overflow) {
    let opts = TopicOptions { max_subscribers, overflow, ..TopicOptions::default() };
    drop(Topic::create_with(path, capacity, &opts).unwrap());
}

#[test]
fn a_topic_across_two_subscribers_on_b_each_see_every_message_in_order() {
    const N: u64 = 100_000;
    let mut h = Hosts::new("topic");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    topic(&a, 1 << 20, 8, Overflow::Block);
    let mut exp = h.export(&a, "test/topic", &ea);
    let mut imp = h.import("test/topic", &b, &ib);
    wait_connected(&a);
    let rx = wait_for("the imported topic", || Topic::open(&b).ok());
    assert_eq!(
        (rx.capacity(), rx.max_subscribers(), rx.overflow()),
        (1 << 20, 8, Overflow::Block),
        "the importer creates its topic like the exported one"
    );
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let mut sub = rx.subscribe(Start::Latest).unwrap();
            std::thread::spawn(move || {
                for i in 0..N {
                    assert_eq!(recv_one(&mut sub), i, "subscriber {r}: out of order");
                }
            })
        })
        .collect();
    let mut p = publisher(&a, 0, N, None);
    for r in readers {
        r.join().unwrap();
    }
    assert!(p.wait().unwrap().success());
    // Each bridge counts a message just after handing it on: the counters may trail the reads.
    let s = wait_for("the importer's counters", || Some(stats(&b)).filter(|s| s.forwarded == N));
    let e = wait_for("the exporter's counters", || Some(stats(&a)).filter(|e| e.forwarded == N));
    assert_eq!((s.lost, s.duplicates), (0, 0), "importer counters: {s:?}");
    assert_eq!(e.dropped, 0, "exporter counters: {e:?}");
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn a_late_joiner_with_history_gets_the_retained_messages_then_the_live_ones() {
    // Retained before any importer; then a paced stream that the importer joins in the middle
    // of (its history fetch races the live messages: the seam is wherever it falls).
    const OLD: u64 = 20_000;
    const N: u64 = 150_000;
    let mut h = Hosts::new("history");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    // 4 MiB retains all N records of 24 bytes, here and in the topic the importer creates.
    topic(&a, 4 << 20, 4, Overflow::Block);
    let mut exp = h.export(&a, "test/history", &ea);
    stats(&a);
    // With no importer the exporter takes (and drops) each message; the topic retains them.
    assert!(publisher(&a, 0, OLD, None).wait().unwrap().success());
    wait_for("the exporter to take the retained messages", || (stats(&a).dropped == OLD).then_some(()));
    let mut live = publisher(&a, OLD, N, Some(100));
    wait_for("the live stream to start", || (Topic::open(&a).unwrap().stats().messages_in > OLD).then_some(()));
    let mut imp = h.import_with("test/history", &b, &ib, &["--history"]);
    let rx = wait_for("the imported topic", || Topic::open(&b).ok());
    // B's topic retains all N (4 MiB): a subscriber from the oldest sees what the importer wrote.
    let mut sub = rx.subscribe(Start::Oldest).unwrap();
    for i in 0..N {
        assert_eq!(recv_one(&mut sub), i, "gap or repeat; importer log:\n{}", read_log(&ib));
    }
    assert!(live.wait().unwrap().success());
    let s = wait_for("the importer's counters", || {
        let s = stats(&b);
        (s.forwarded == N).then_some(s)
    });
    assert_eq!(s.lost, 0, "importer counters: {s:?}");
    assert!(sub.try_recv().unwrap().is_none(), "nothing after the last message");
    assert_eq!(rx.stats().messages_in, N, "each message written once");
    eprintln!("history: importer {s:?}\nexporter {:?}", stats(&a));
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn a_history_of_one_message_arrives_intact() {
    // A history reply holding a single message is that message, not a one-frame batch.
    let mut h = Hosts::new("history1");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    topic(&a, 1 << 16, 4, Overflow::Block);
    let mut exp = h.export(&a, "test/history1", &ea);
    stats(&a);
    assert!(publisher(&a, 0, 1, None).wait().unwrap().success());
    wait_for("the exporter to take the retained message", || (stats(&a).dropped == 1).then_some(()));
    let mut imp = h.import_with("test/history1", &b, &ib, &["--history"]);
    let rx = wait_for("the imported topic", || Topic::open(&b).ok());
    let mut sub = rx.subscribe(Start::Oldest).unwrap();
    assert_eq!(recv_one(&mut sub), 0, "importer log:\n{}", read_log(&ib));
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn a_typed_topic_arrives_typed_and_a_mismatch_is_refused_on_both_ends() {
    const N: u64 = 2000;
    let mut h = Hosts::new("typedtopic");
    let (a, b, c) = (h.channel("a"), h.channel("b"), h.channel("c"));
    let (ea, ib, ic): (PathBuf, PathBuf, PathBuf) = (h.log("exp"), h.log("imp"), h.log("bad"));
    drop(TypedTopic::<Tick>::create(&a, 1 << 16, &TopicOptions::default()).unwrap());
    let mut exp = h.export(&a, "market/ticks", &ea);

    // A mismatched local topic: refused by the importer (status 3) and by the exporter.
    drop(TypedTopic::<OtherTick>::create(&c, 1 << 16, &TopicOptions::default()).unwrap());
    let status = h.import("market/ticks", &c, &ic).wait().unwrap();
    assert_eq!(status.code(), Some(3), "the importer refuses: {}", read_log(&ic));
    wait_for("the exporter's refusal", || (stats(&a).refused == 1).then_some(()));
    for (end, log) in [("importer", &ic), ("exporter", &ea)] {
        let text = read_log(log);
        assert!(text.contains("schema mismatch"), "{end} log:\n{text}");
        assert!(text.contains("field price: f64 at 16 size 8 (channel) vs f64 at 8 size 8 (reader)"), "{end}:\n{text}");
    }
    assert_eq!(Topic::open(&c).unwrap().stats().messages_in, 0, "nothing delivered to the refused topic");

    // A missing one is created with the exported schema and opens as TypedTopic<Tick>.
    let mut imp = h.import("market/ticks", &b, &ib);
    wait_connected(&a);
    let rx = wait_for("the typed topic", || TypedTopic::<Tick>::open(&b).ok());
    assert!(TypedTopic::<OtherTick>::open(&b).is_err(), "the other layout is refused locally too");
    let mut sub = rx.subscribe(Start::Latest).unwrap();
    let mut p = common::child("tick-publisher", &[a.display().to_string(), N.to_string()]).spawn().unwrap();
    for i in 0..N {
        let t = sub.recv_timeout(Some(PATIENCE)).unwrap().expect("a tick");
        let got = mmapipc::rkyv::deserialize::<Tick, mmapipc::rkyv::rancor::Error>(&*t).unwrap();
        assert_eq!(got, tick(i));
    }
    assert!(p.wait().unwrap().success());
    stop(&mut exp);
    stop(&mut imp);
}

#[test]
fn a_restarted_importer_with_history_counts_what_it_fetched_skipped_and_lost() {
    // Three runs of an importer with --history, nothing published while one runs: each run's
    // history is the whole retained topic, so the counters are exact. 64 KiB retains about
    // 2,700 records of 24 bytes: runs 1 and 2 get everything, run 3 finds its start overwritten.
    let mut h = Hosts::new("hcount");
    let (a, b, ea) = (h.channel("a"), h.channel("b"), h.log("exp"));
    topic(&a, 1 << 16, 4, Overflow::Block);
    let mut exp = h.export(&a, "test/hcount", &ea);
    stats(&a);
    let mut published = 0;
    let mut runs = 0;
    // Publishes up to `to` with no importer there (the exporter takes and drops each message).
    let mut publish = |to: u64| {
        assert!(publisher(&a, published, to, None).wait().unwrap().success());
        published = to;
        wait_for("the exporter to take every message", || (stats(&a).next_seq == to).then_some(()));
    };
    // One importer run: its history, then it stops. Returns B's counters.
    let mut run = |h: &mut Hosts| {
        runs += 1;
        let log = h.log(&format!("imp{runs}"));
        let mut imp = h.import_with("test/hcount", &b, &log, &["--history"]);
        // The importer says "importing" once the history is written and counted.
        wait_for("the importer to finish its history", || read_log(&log).contains("importing").then_some(()));
        stop(&mut imp);
        wait_for("the exporter to see the importer gone", || (stats(&a).peers == 0).then_some(()));
        eprintln!("run {runs}: {}", read_log(&log));
        stats(&b)
    };

    publish(1000);
    let s = run(&mut h);
    let c =
        |s: &mmapipc_cli::bridge_stats::BridgeStats| (s.forwarded, s.history, s.history_skipped, s.lost, s.duplicates);
    assert_eq!(c(&s), (1000, 1000, 0, 0, 0), "run 1 (forwarded, history, skipped, lost, duplicates): {s:?}");

    // Run 2: the history holds the 1000 it has (skipped, not duplicates) and 500 new ones.
    publish(1500);
    let s = run(&mut h);
    assert_eq!(c(&s), (1500, 1500, 1000, 0, 0), "run 2 (forwarded, history, skipped, lost, duplicates): {s:?}");
    assert_eq!(s.next_seq, 1500);

    // Run 3: the topic has overwritten what followed 1500; the history starts at `first`.
    publish(10_000);
    let first = Topic::open(&a).unwrap().subscribe(Start::Oldest).unwrap().next_seq();
    assert!(first > 1500 && first < 10_000, "the retained history starts at {first}");
    let s = run(&mut h);
    let got = 10_000 - first;
    assert_eq!(
        c(&s),
        (1500 + got, 1500 + got, 1000, first - 1500, 0),
        "run 3 (forwarded, history, skipped, lost, duplicates), history from {first}: {s:?}"
    );
    assert_eq!(Topic::open(&b).unwrap().stats().messages_in, 1500 + got, "each message written once");
    // The exporter sent every message of the three histories.
    wait_for("the exporter's third history", || (read_log(&ea).matches("history from").count() == 3).then_some(()));
    let e = stats(&a);
    assert_eq!(e.history, 1000 + 1500 + got, "exporter counters: {e:?}");
    assert_eq!((e.forwarded, e.dropped), (0, 10_000), "exporter counters: {e:?}");
    stop(&mut exp);
}

#[test]
fn frames_of_8_mib_between_small_messages_arrive_whole_and_in_order() {
    // The exporter sends the 8 MiB messages as views of their records (block mode), the small
    // ones batched: each view goes out after the batch before it.
    const N: u64 = 12;
    let mut h = Hosts::new("topicframes");
    let (a, b, ea, ib) = (h.channel("a"), h.channel("b"), h.log("exp"), h.log("imp"));
    topic(&a, 32 << 20, 4, Overflow::Block);
    let mut exp = h.export(&a, "video/topic", &ea);
    let mut imp = h.import("video/topic", &b, &ib);
    wait_connected(&a);
    let rx = wait_for("the imported topic", || Topic::open(&b).ok());
    let mut sub = rx.subscribe(Start::Latest).unwrap();
    let mut p = common::child("frame-publisher", &[a.display().to_string(), N.to_string()]).spawn().unwrap();
    let mut bytes = 0;
    for i in 0..N {
        let m = sub.recv_timeout(Some(PATIENCE)).unwrap().expect("a message within the patience bound");
        assert!(*m == frame(i), "message {i}: {} bytes, damaged or out of order", m.len());
        bytes += m.len() as u64;
    }
    assert!(p.wait().unwrap().success());
    let s = wait_for("the importer's counters", || Some(stats(&b)).filter(|s| s.forwarded == N));
    assert_eq!((s.bytes, s.lost, s.duplicates), (bytes, 0, 0), "importer counters: {s:?}");
    let e = wait_for("the exporter's counters", || Some(stats(&a)).filter(|e| e.forwarded == N));
    assert_eq!((e.bytes, e.dropped), (bytes, 0), "exporter counters: {e:?}");
    stop(&mut exp);
    stop(&mut imp);
}
