//! A subscriber process SIGKILLed while asleep in a receive: its count in the data waiter's
//! sleepers is taken back when its slot is reclaimed (by a subscription that finds the table
//! full, or by the publisher, which looks for dead sleepers when it finds sleepers to wake), so
//! publishing goes back to its fast path (no futex wake: `sleepers` is 0). The same for a
//! publisher killed asleep in a publish: the next publisher takes its count back. Children are roles
//! of this test binary (`common`); every wait polls with a generous deadline.

#![cfg(not(loom))]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mmapipc::topic::{Overflow, Start, Topic, TopicOptions};

/// Generous bound for anything to happen on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// Roles. `sleeper PATH [GROUP]`: subscribes (to GROUP, if given), prints "ready", then blocks
/// in a receive with no timeout (it is killed there). `blocked-publisher PATH`: publishes until
/// the topic is full, then blocks (killed there).
fn roles(role: &str, args: &[String]) {
    match role {
        "sleeper" => {
            let t = Topic::open(&args[0]).unwrap();
            let mut s = match args.get(1) {
                Some(g) => t.subscribe_group(g, Start::Latest).unwrap(),
                None => t.subscribe(Start::Latest).unwrap(),
            };
            println!("ready");
            let m = s.recv_timeout(None).unwrap();
            panic!("the sleeper received a message ({:?} bytes)", m.map(|m| m.len()));
        }
        "blocked-publisher" => {
            let t = Topic::open(&args[0]).unwrap();
            let mut p = t.publisher().unwrap();
            println!("ready");
            loop {
                p.publish(&[7u8; 64]).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}
common::child_roles!(roles);

fn create(tag: &str, max_subscribers: usize, overflow: Overflow) -> (String, Topic) {
    let p = format!("/dev/shm/mmapipc-test-sleepers-{}-{tag}", std::process::id());
    let _ = std::fs::remove_file(&p);
    let opts = TopicOptions { max_subscribers, overflow, ..Default::default() };
    (p.clone(), Topic::create_with(&p, 1 << 16, &opts).unwrap())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Spawns `role` and waits for its "ready".
fn spawn(role: &str, args: &[&str]) -> Child {
    let mut child: Child = common::child(role, args).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "{role} exited before it was ready");
    }
    child
}

/// Starts a sleeper on `path` and kills it while it is counted asleep. A kill can land between
/// two naps (the count taken back, not yet taken again: a moment in each nap of a second), so
/// it is tried again until the dead one is left counted, as the bug needs.
fn kill_asleep(t: &Topic, path: &str, group: Option<&str>) {
    for _ in 0..5 {
        let mut args = vec![path];
        args.extend(group);
        let mut child = spawn("sleeper", &args);
        wait_for("the sleeper to sleep", || {
            let i = t.inspect();
            i.data_sleepers == 1 && i.subscribers.iter().any(|s| s.asleep)
        });
        child.kill().unwrap();
        child.wait().unwrap();
        let i = t.inspect();
        if i.data_sleepers == 1 {
            let s = i.subscribers.iter().find(|s| !s.alive).expect("the dead subscriber's slot");
            assert!(s.asleep, "a count held by a dead process is marked in its slot: {i:?}");
            return;
        }
        // Killed between naps (its slot, not asleep, is reclaimed by the next subscription
        // that needs it).
        assert_eq!(i.data_sleepers, 0, "{i:?}");
    }
    panic!("five sleepers killed, none while asleep");
}

#[test]
fn a_subscriber_killed_asleep_is_uncounted_when_a_subscription_reclaims_its_slot() {
    let (p, t) = create("claim", 1, Overflow::Block);
    kill_asleep(&t, &p, None);
    let reclaimed = t.stats().reclaimed;
    // The only slot is the dead one's: subscribing reclaims it.
    let sub = t.subscribe(Start::Latest).unwrap();
    let i = t.inspect();
    assert_eq!((i.data_sleepers, t.stats().reclaimed), (0, reclaimed + 1), "{i:?}");
    let mut publisher = t.publisher().unwrap();
    for n in 0..1000u32 {
        publisher.publish(&n.to_le_bytes()).unwrap();
        assert_eq!(t.inspect().data_sleepers, 0, "a publish with nobody asleep wakes nobody");
    }
    drop(sub);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_group_member_killed_asleep_is_uncounted_when_its_slot_is_reclaimed() {
    let (p, t) = create("group", 1, Overflow::Block);
    kill_asleep(&t, &p, Some("workers"));
    let reclaimed = t.stats().reclaimed;
    let sub = t.subscribe_group("workers", Start::Latest).unwrap();
    let i = t.inspect();
    assert_eq!((i.data_sleepers, t.stats().reclaimed), (0, reclaimed + 1), "{i:?}");
    drop(sub);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn the_publisher_reclaims_a_subscriber_killed_asleep_and_stops_waking() {
    // Overwrite mode: the publisher never waits for a cursor, so only its look for dead
    // sleepers (on a publish that finds sleepers to wake) reclaims the slot.
    let (p, t) = create("publisher", 4, Overflow::Overwrite);
    kill_asleep(&t, &p, None);
    let reclaimed = t.stats().reclaimed;
    let mut publisher = t.publisher().unwrap();
    let mut n = 0u64;
    wait_for("the publisher to reclaim the dead sleeper", || {
        n += 1;
        publisher.publish(&n.to_le_bytes()).unwrap();
        t.inspect().data_sleepers == 0
    });
    assert_eq!(t.stats().reclaimed, reclaimed + 1);
    assert!(t.inspect().subscribers.iter().all(|s| !s.asleep), "{:?}", t.inspect());
    for _ in 0..1000 {
        n += 1;
        publisher.publish(&n.to_le_bytes()).unwrap();
        assert_eq!(t.inspect().data_sleepers, 0, "a publish with nobody asleep wakes nobody");
    }
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_publisher_killed_asleep_is_uncounted_when_the_next_publisher_takes_over() {
    let (p, t) = create("takeover", 2, Overflow::Block);
    // Holds the publisher back: it reads only once the dead publisher has been replaced.
    let mut sub = t.subscribe(Start::Latest).unwrap();
    let mut killed = false;
    for _ in 0..5 {
        let mut child = spawn("blocked-publisher", &[p.as_str()]);
        wait_for("the publisher to sleep", || t.inspect().space_sleepers == 1);
        child.kill().unwrap();
        child.wait().unwrap();
        // A kill between two naps leaves nothing counted: try again (the next child takes over).
        if t.inspect().space_sleepers == 1 {
            killed = true;
            break;
        }
    }
    assert!(killed, "five publishers killed, none while asleep");
    let mut publisher = t.publisher().unwrap();
    assert_eq!(t.inspect().space_sleepers, 0, "the takeover takes the dead publisher's count back");
    let mut n = 0;
    while sub.try_recv().unwrap().is_some() {
        n += 1;
        assert_eq!(t.inspect().space_sleepers, 0, "a receive with nobody asleep wakes nobody");
    }
    assert!(n > 0, "the dead publisher's messages are there");
    assert!(publisher.try_publish(&[1u8; 64]).unwrap(), "room again");
    let _ = std::fs::remove_file(&p);
}
