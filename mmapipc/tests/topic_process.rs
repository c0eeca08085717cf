//! The topic between real processes: one publisher and four subscribers, late joiners, a slow
//! subscriber in overwrite mode, groups, and SIGKILLs of subscribers, group members and the
//! publisher. Children are roles of this test binary (`common`).

#![cfg(not(loom))]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mmapipc::topic::{Overflow, Start, Topic, TopicOptions};

const BODY: usize = 48;
/// Message `seq` ends with this to say "the stream is over".
const END: u64 = u64::MAX;

fn path(tag: &str) -> String {
    format!("/dev/shm/mmapipc-test-topic-{}-{tag}", std::process::id())
}

fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| (h ^ u64::from(x)).wrapping_mul(0x100000001b3))
}

/// Message `seq` (64 bytes): the number, a pattern, a checksum of both.
fn message(seq: u64, len: usize) -> Vec<u8> {
    let mut m = seq.to_le_bytes().to_vec();
    m.extend((0..len).map(|i| (seq as usize).wrapping_add(i * 7) as u8));
    let s = checksum(&m);
    m.extend_from_slice(&s.to_le_bytes());
    m
}

fn verify(m: &[u8]) -> u64 {
    let (body, sum) = m.split_at(m.len() - 8);
    assert_eq!(checksum(body), u64::from_le_bytes(sum.try_into().unwrap()), "torn message");
    let seq = u64::from_le_bytes(body[..8].try_into().unwrap());
    assert_eq!(m, message(seq, m.len() - 16), "wrong contents");
    seq
}

fn open(p: &str) -> Topic {
    Topic::open(p).unwrap()
}

/// Roles. Each subscriber prints "ready" once subscribed, then a summary line.
fn roles(role: &str, args: &[String]) {
    let wait = Some(Duration::from_secs(60));
    match role {
        // sub PATH START: receives until END, checks order and contents; prints "first count".
        "sub" => {
            let t = open(&args[0]);
            let start = if args[1] == "oldest" { Start::Oldest } else { Start::Latest };
            let mut s = t.subscribe(start).unwrap();
            println!("ready");
            let (mut first, mut next, mut n) = (None, 0u64, 0u64);
            loop {
                let m = s.recv_timeout(wait).unwrap().expect("publisher went quiet");
                let seq = verify(&m);
                if seq == END {
                    break;
                }
                if first.is_none() {
                    first = Some(seq);
                } else {
                    assert_eq!(seq, next, "gap or duplicate");
                }
                next = seq + 1;
                n += 1;
            }
            println!("{} {n}", first.map_or(-1, |f| f as i64));
        }
        // slow PATH: an overwrite-mode subscriber that sleeps between reads; prints
        // "first received dropped".
        "slow" => {
            let t = open(&args[0]);
            let mut s = t.subscribe(Start::Latest).unwrap();
            println!("ready");
            let (mut first, mut last, mut n) = (None, None, 0u64);
            loop {
                let Some(m) = s.recv_timeout(wait).unwrap() else { panic!("publisher went quiet") };
                let seq = verify(&m);
                if seq == END {
                    break;
                }
                assert!(last.is_none_or(|l| seq > l), "out of order");
                first = first.or(Some(seq));
                last = Some(seq);
                n += 1;
                drop(m);
                if n % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            println!("{} {n} {}", first.unwrap_or(0), s.dropped());
        }
        // member PATH GROUP [slow]: prints every sequence number received, then "end". A slow
        // member (one to be killed) prints each as it goes; the others at the end (the parent
        // reads their output only then).
        "member" => {
            let t = open(&args[0]);
            let mut s = t.subscribe_group(&args[1], Start::Latest).unwrap();
            println!("ready");
            let slow = args.get(2).is_some();
            let mut got = Vec::new();
            loop {
                let Some(m) = s.recv_timeout(Some(Duration::from_millis(500))).unwrap() else { continue };
                let seq = verify(&m);
                if seq == END {
                    break;
                }
                if slow {
                    println!("{seq}");
                    std::thread::sleep(Duration::from_micros(200));
                } else {
                    got.push(seq);
                }
            }
            let mut out = String::new();
            for g in got {
                out.push_str(&format!("{g}\n"));
            }
            println!("{out}end");
        }
        // hold PATH: subscribes and never reads.
        "hold" => {
            let t = open(&args[0]);
            let _s = t.subscribe(Start::Latest).unwrap();
            println!("ready");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        // pub PATH FROM COUNT LEN: publishes messages FROM.. (COUNT of them; 0: until killed).
        "pub" => {
            let t = open(&args[0]);
            let mut p = t.publisher().unwrap();
            let (from, count, len): (u64, u64, usize) =
                (args[1].parse().unwrap(), args[2].parse().unwrap(), args[3].parse().unwrap());
            println!("ready");
            let mut seq = from;
            while count == 0 || seq < from + count {
                assert!(p.publish_timeout(&message(seq, len), wait).unwrap(), "publisher blocked");
                seq += 1;
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

/// Spawns a role and waits for its "ready".
fn spawn(role: &str, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = common::child(role, args).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "{role} exited before it was ready");
    }
    (child, out)
}

/// Waits for a child and returns the rest of its output.
fn finish(mut c: (Child, BufReader<std::process::ChildStdout>)) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut c.1, &mut s).unwrap();
    assert!(c.0.wait().unwrap().success(), "child failed; output: {s}");
    s
}

fn end(t: &Topic) {
    let mut p = t.publisher().unwrap();
    p.publish_timeout(&message(END, BODY), Some(Duration::from_secs(60))).unwrap();
}

fn create(tag: &str, cap: usize, overflow: Overflow) -> (String, Topic) {
    let p = path(tag);
    let _ = std::fs::remove_file(&p);
    let t = Topic::create_with(&p, cap, &TopicOptions { max_subscribers: 16, overflow, ..Default::default() }).unwrap();
    (p, t)
}

#[test]
fn one_publisher_four_subscribers_a_million_messages() {
    let (p, t) = create("fanout", 1 << 20, Overflow::Block);
    let subs: Vec<_> = (0..4).map(|_| spawn("sub", &[&p, "latest"])).collect();
    let n = 1_000_000u64;
    let publisher = spawn("pub", &[&p, "0", &n.to_string(), &BODY.to_string()]);
    finish(publisher);
    end(&t);
    for s in subs {
        assert_eq!(finish(s).trim(), format!("0 {n}"), "every subscriber got every message");
    }
    t.unlink().unwrap();
}

#[test]
fn late_joiners_see_no_gap_and_no_duplicate() {
    let (p, t) = create("late", 1 << 16, Overflow::Block);
    let publisher = spawn("pub", &[&p, "0", "200000", &BODY.to_string()]);
    let mut joiners = Vec::new();
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(3 + 7 * i));
        joiners.push((i % 2 == 0, spawn("sub", &[&p, if i % 2 == 0 { "oldest" } else { "latest" }])));
    }
    finish(publisher);
    let total = t.stats().messages_in;
    end(&t);
    for (oldest, j) in joiners {
        let out = finish(j);
        let v: Vec<i64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        // Consecutive from its first message to the last one published (checked in the child).
        if v[0] >= 0 {
            assert_eq!(v[0] as u64 + v[1] as u64, total, "{out} (oldest: {oldest})");
        }
    }
    t.unlink().unwrap();
}

#[test]
fn overwrite_mode_slow_subscriber_counts_drops_exactly() {
    let (p, t) = create("slow", 1 << 14, Overflow::Overwrite);
    let slow = spawn("slow", &[&p]);
    let publisher = spawn("pub", &[&p, "0", "300000", &BODY.to_string()]);
    finish(publisher);
    end(&t);
    let out = finish(slow);
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (first, received, dropped) = (v[0], v[1], v[2]);
    assert!(dropped > 0, "the subscriber was never lapped: {out}");
    // Everything published after its start, END excluded: first..300000.
    // It subscribed before the first message: everything published counts (END excluded).
    assert_eq!(received + dropped, 300_000, "{out}");
    let _ = first;
    t.unlink().unwrap();
}

fn collect_seqs(out: &str) -> Vec<u64> {
    out.lines().filter(|l| *l != "end").map(|l| l.parse().unwrap()).collect()
}

#[test]
fn groups_exactly_once_within_every_group() {
    let (p, t) = create("groups", 1 << 16, Overflow::Block);
    let a: Vec<_> = (0..3).map(|_| spawn("member", &[&p, "a"])).collect();
    let b: Vec<_> = (0..2).map(|_| spawn("member", &[&p, "b"])).collect();
    let n = 100_000u64;
    finish(spawn("pub", &[&p, "0", &n.to_string(), &BODY.to_string()]));
    // One END per member: each member stops at the first it receives.
    for _ in 0..3 {
        end(&t);
    }
    for group in [a, b] {
        let mut all = Vec::new();
        let mut ends = 0;
        for m in group {
            let out = finish(m);
            ends += 1;
            all.extend(collect_seqs(&out));
        }
        assert!(ends > 0);
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "every message once in the group");
    }
    t.unlink().unwrap();
}

#[test]
fn killed_subscribers_stop_holding_the_publisher_back() {
    let (p, t) = create("killsub", 1 << 12, Overflow::Block);
    let mut held = spawn("hold", &[&p]);
    let mut pubr = t.publisher().unwrap();
    let mut n = 0u64;
    while pubr.try_publish(&message(n, BODY)).unwrap() {
        n += 1;
    }
    assert!(!pubr.publish_timeout(&message(n, BODY), Some(Duration::from_millis(50))).unwrap());
    held.0.kill().unwrap(); // SIGKILL
    held.0.wait().unwrap();
    let t0 = Instant::now();
    assert!(pubr.publish_timeout(&message(n, BODY), Some(Duration::from_secs(30))).unwrap());
    assert!(t0.elapsed() < Duration::from_secs(5), "recovery took {:?}", t0.elapsed());
    assert_eq!(t.stats().reclaimed, 1);
    t.unlink().unwrap();
}

#[test]
fn killed_group_members_neither_lose_nor_duplicate_beyond_one_in_flight() {
    let (p, t) = create("killgroup", 1 << 14, Overflow::Block);
    let steady = spawn("member", &[&p, "g"]);
    let victims: Vec<_> = (0..2).map(|_| spawn("member", &[&p, "g", "slow"])).collect();
    let n = 50_000u64;
    let publisher = spawn("pub", &[&p, "0", &n.to_string(), &BODY.to_string()]);
    let mut seen = Vec::new();
    for (i, mut v) in victims.into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(20 + 30 * i as u64));
        v.0.kill().unwrap();
        v.0.wait().unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut v.1, &mut s).unwrap();
        // The last line may be cut off mid-write: keep whole lines only.
        let whole = s.rfind('\n').map_or("", |i| &s[..i]);
        seen.extend(collect_seqs(whole));
    }
    finish(publisher);
    end(&t);
    seen.extend(collect_seqs(&finish(steady)));
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    assert_eq!(before, seen.len(), "a message was delivered twice");
    // Each killed member may have taken one message it never reported (delivered to it).
    let missing = n - seen.len() as u64;
    assert!(missing <= 2 + 2, "{missing} messages lost");
    t.unlink().unwrap();
}

#[test]
fn a_killed_publisher_leaves_whole_messages_and_is_taken_over() {
    let (p, t) = create("killpub", 1 << 22, Overflow::Block);
    let mut s = t.subscribe(Start::Latest).unwrap();
    let len = 100_000;
    let mut publisher = spawn("pub", &[&p, "0", "0", &len.to_string()]);
    let mut next = 0;
    while next < 30 {
        let m = s.recv_timeout(Some(Duration::from_secs(60))).unwrap().expect("publisher produced nothing");
        assert_eq!(verify(&m), next);
        next += 1;
    }
    publisher.0.kill().unwrap(); // SIGKILL, most likely mid-copy of a 100 kB message
    publisher.0.wait().unwrap();
    while let Some(m) = s.recv_timeout(Some(Duration::from_millis(300))).unwrap() {
        assert_eq!(verify(&m), next);
        next += 1;
    }
    // A new publisher takes the dead one's role over and continues the sequence.
    let mut p2 = t.publisher().unwrap();
    assert_eq!(p2.messages(), next);
    p2.publish(&message(next, len)).unwrap();
    assert_eq!(verify(&s.recv_timeout(Some(Duration::from_secs(10))).unwrap().unwrap()), next);
    assert_eq!(s.dropped(), 0);
    t.unlink().unwrap();
}

#[test]
fn hostile_bytes_in_the_file_are_errors_not_crashes() {
    let (p, t) = create("hostile", 4096, Overflow::Block);
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut pubr = t.publisher().unwrap();
    pubr.try_publish(b"fine").unwrap();
    drop(pubr);
    // Garbage in the control block and the table, written through the file as a peer could.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    let ctrl = 128u64;
    for (off, val) in [
        (ctrl + mmapipc::topic::offsets::TAIL as u64, 12345u64),
        (ctrl + mmapipc::topic::offsets::SUBSCRIBERS as u64 + 128 + 8, 7u64),
        (ctrl + mmapipc::topic::offsets::SUBSCRIBERS as u64 + 128 + 16, 99_999u64),
        (ctrl + mmapipc::topic::offsets::SUBSCRIBERS as u64 + 128, 0x0000_7777_0000_0001u64),
    ] {
        f.write_all_at(&val.to_le_bytes(), off).unwrap();
    }
    assert!(s.try_recv().is_err(), "a misaligned tail is an error");
    assert!(t.publisher().is_err(), "the publisher refuses a corrupt window");
    let _ = t.inspect();
    // A wrong overflow code or table size is refused at open.
    f.write_all_at(&9u64.to_le_bytes(), ctrl + mmapipc::topic::offsets::OVERFLOW as u64).unwrap();
    assert!(Topic::open(&p).is_err());
    t.unlink().unwrap();
}
