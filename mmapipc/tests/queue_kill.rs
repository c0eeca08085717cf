//! Cross-process crash recovery: a process SIGKILLed while holding a queue lock, or while
//! holding views, is recovered from within the recovery bound. The peer is this test binary,
//! re-executed as a child role (`common`).

#![cfg(not(loom))]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mmapipc::lock::RobustLock;
use mmapipc::{Queue, QueueOptions};

fn path(tag: &str) -> String {
    format!("/dev/shm/mmapipc-test-qkill-{}-{tag}", std::process::id())
}

/// The peer's roles: `lock PATH producer|consumer` takes that lock and hangs; `views PATH`
/// takes views and hangs; `loan PATH` loans a slot, fills it and hangs without committing. It
/// prints "held" once in position.
fn roles(role: &str, args: &[String]) {
    let q = Queue::open(&args[0]).unwrap();
    let _views;
    let _loan;
    match role {
        "lock" => {
            let off = if args[1] == "producer" { 128 } else { 4 * 128 };
            // SAFETY: the control block holds a RobustLock at this offset (FORMAT.md, ## Queue),
            // 128-aligned inside the mapping, accessed only atomically.
            let l = unsafe { &*(q.control_ptr().add(off) as *const RobustLock) };
            assert!(l.try_lock(mmapipc::lock::me()));
        }
        "views" => _views = q.try_get_views(usize::MAX).unwrap(),
        "loan" => {
            let mut l = q.loan(100, None).unwrap().unwrap();
            l.fill(|s| s.fill(0xEE));
            _loan = l;
        }
        other => panic!("unknown role {other}"),
    }
    println!("held");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

common::child_roles!(roles);

fn spawn_peer(role: &str, args: &[&str]) -> std::process::Child {
    let mut child = common::child(role, args).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("held") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "peer exited early");
    }
    child
}

fn opts() -> QueueOptions {
    QueueOptions { recovery_bound: Duration::from_millis(400), ..QueueOptions::default() }
}

#[test]
fn lock_holders_killed_are_replaced_within_the_bound() {
    for which in ["producer", "consumer"] {
        let p = path(which);
        let _ = std::fs::remove_file(&p);
        let q = Queue::create_with(&p, 4096, &opts()).unwrap();
        q.try_put(b"before").unwrap();
        let mut child = spawn_peer("lock", &[&p, which]);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let t0 = Instant::now();
        assert!(q.put_timeout(b"after", Some(Duration::from_secs(5))).unwrap(), "{which}: put wedged");
        assert_eq!(q.get_timeout(Some(Duration::from_secs(5))).unwrap().as_deref(), Some(&b"before"[..]));
        assert_eq!(q.get_timeout(Some(Duration::from_secs(5))).unwrap().as_deref(), Some(&b"after"[..]));
        let took = t0.elapsed();
        // Recovery happens one check interval (bound / 4) after waiting starts; the bound
        // itself is the promise.
        assert!(took <= Duration::from_millis(400), "{which}: recovery took {took:?}");
        assert_eq!(q.stats().lock_recoveries, 1);
        q.unlink().unwrap();
    }
}

#[test]
fn views_of_a_killed_consumer_are_reclaimed() {
    let p = path("views");
    let _ = std::fs::remove_file(&p);
    let q = Queue::create_with(&p, 4096, &opts()).unwrap();
    let mut n = 0u64;
    while q.try_put(&[n as u8; 80]).unwrap() {
        n += 1;
    }
    let mut child = spawn_peer("views", &[&p]);
    assert!(q.is_empty());
    assert!(!q.try_put(&[0; 80]).unwrap(), "the dead peer's views still pin the ring");
    child.kill().unwrap();
    child.wait().unwrap();
    let t0 = Instant::now();
    assert!(q.put_timeout(&[1; 80], Some(Duration::from_secs(5))).unwrap());
    assert!(t0.elapsed() <= Duration::from_millis(400), "took {:?}", t0.elapsed());
    assert_eq!(q.stats().view_recoveries, n);
    q.unlink().unwrap();
}

#[test]
fn a_producer_killed_holding_a_loan_leaves_the_queue_consistent() {
    let p = path("loan");
    let _ = std::fs::remove_file(&p);
    let q = Queue::create_with(&p, 4096, &opts()).unwrap();
    q.try_put(b"before").unwrap();
    let mut child = spawn_peer("loan", &[&p]);
    assert!(!q.try_put(b"x").unwrap(), "the live loan holds the producer lock");
    assert_eq!(q.len(), 1, "nothing of the loan is visible");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(q.put_timeout(b"after", Some(Duration::from_secs(5))).unwrap(), "put wedged");
    let mut l = q.loan(5, Some(Duration::from_secs(5))).unwrap().expect("room for a loan");
    l.fill(|s| s.copy_from_slice(b"loan2"));
    l.commit().unwrap();
    for want in [&b"before"[..], b"after", b"loan2"] {
        assert_eq!(q.get_timeout(Some(Duration::from_secs(5))).unwrap().as_deref(), Some(want));
    }
    assert_eq!(q.try_get().unwrap(), None, "the dead loan left no message");
    assert_eq!(q.stats().lock_recoveries, 1);
    assert_eq!(q.stats().messages_in, 3);
    q.unlink().unwrap();
}
