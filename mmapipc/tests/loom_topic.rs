//! loom models of the topic on the real code, over a heap topic (no files, no processes): the
//! cursor protocol of block mode (a subscriber's cursor keeps the publisher off bytes it has not
//! read, around the wrap, and frames restarted at offset 0), the join handshake (a subscriber joining at `oldest` while the
//! publisher moves it), a group's shared cursor, and the overwrite mode's validation (a copy
//! the publisher may have overwritten is dropped and counted, never delivered torn).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p mmapipc --test loom_topic --release`
//!
//! Under loom the data area is `mem::DataArea`'s twin: loom reports any plain read of a byte
//! not ordered after its write and any write not ordered after an earlier read (the publisher
//! overwriting a record a subscriber still reads), in every interleaving within the bound.
#![cfg(loom)]

use loom::thread;
use mmapipc::topic::{Overflow, Start, Topic, TopicOptions};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

fn heap(cap: usize, overflow: Overflow) -> Topic {
    Topic::heap(cap, &TopicOptions { max_subscribers: 2, overflow, ..TopicOptions::default() }).unwrap()
}

/// Three 24-byte messages through a 64-byte topic (a 32-byte record and the 8-byte mark): each
/// record overwrites bytes the subscriber must have released.
#[test]
fn block_mode_cursor_protects_unread_records() {
    model(|| {
        let t = heap(64, Overflow::Block);
        let mut s = t.subscribe(Start::Latest).unwrap();
        let mut p = t.publisher().unwrap();
        let th = thread::spawn(move || {
            for i in 1..=3u8 {
                while !p.try_publish(&[i; 24]).unwrap() {
                    thread::yield_now();
                }
            }
        });
        let mut next = 1u8;
        while next <= 3 {
            match s.try_recv().unwrap() {
                Some(m) => {
                    assert_eq!(&*m, &[next; 24][..], "torn or stale message");
                    next += 1;
                }
                None => thread::yield_now(),
            }
        }
        th.join().unwrap();
    });
}

/// Frames (each 32-byte record is over a third of the 64-byte area) published by a publisher
/// that may wait: once the subscriber has let go of a frame at offset 0, the next one goes
/// there again behind a padding record, and is written only after the subscriber stepped over
/// the padding, whose header the frame's trailing mark overwrites. loom reports any write to
/// bytes the subscriber has not released.
#[test]
fn frames_restart_at_offset_0_after_the_padding_is_passed() {
    model(|| {
        let t = heap(64, Overflow::Block);
        let mut s = t.subscribe(Start::Latest).unwrap();
        let mut p = t.publisher().unwrap();
        let th = thread::spawn(move || {
            for i in 1..=3u8 {
                p.publish(&[i; 24]).unwrap();
            }
        });
        // A blocking receive (the wait marks the slot as waiting, which restarts need).
        let mut next = 1u8;
        while next <= 3 {
            s.wait_readable(None).unwrap();
            if let Some(m) = s.try_recv().unwrap() {
                assert_eq!(&*m, &[next; 24][..], "torn or stale frame");
                next += 1;
            }
        }
        th.join().unwrap();
    });
}

/// A subscriber joins at `oldest` while the publisher, with no subscriber to wait for, moves
/// `oldest` on to make room: either the publisher sees the joiner's cursor or the joiner sees
/// the new `oldest`; what it reads is never overwritten under it.
#[test]
fn joining_at_oldest_races_the_publisher() {
    model(|| {
        let t = heap(64, Overflow::Block);
        let mut p = t.publisher().unwrap();
        assert!(p.try_publish(&[1; 24]).unwrap());
        let t2 = t.clone();
        let th = thread::spawn(move || {
            let mut s = t2.subscribe(Start::Oldest).unwrap();
            let mut last = 0u8;
            for _ in 0..2 {
                match s.try_recv().unwrap() {
                    Some(m) => {
                        assert!(m.iter().all(|&b| b == m[0]) && m[0] > last, "torn or out of order");
                        last = m[0];
                    }
                    None => thread::yield_now(),
                }
            }
        });
        // Room for message 2 only by overwriting message 1 (if no subscriber holds it).
        let _ = p.try_publish(&[2; 24]).unwrap();
        th.join().unwrap();
    });
}

/// Two members of one group take two messages: each exactly once.
#[test]
fn group_members_take_each_message_once() {
    model(|| {
        let t = heap(128, Overflow::Block);
        let mut a = t.subscribe_group("g", Start::Latest).unwrap();
        let mut b = t.subscribe_group("g", Start::Latest).unwrap();
        let mut p = t.publisher().unwrap();
        assert!(p.try_publish(&[1; 8]).unwrap());
        assert!(p.try_publish(&[2; 8]).unwrap());
        let th = thread::spawn(move || b.try_recv().unwrap().map(|m| m[0]));
        let mine = a.try_recv().unwrap().map(|m| m[0]);
        let theirs = th.join().unwrap();
        let mut got: Vec<u8> = mine.into_iter().chain(theirs).collect();
        got.extend(a.try_recv().unwrap().map(|m| m[0]));
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
    });
}

/// Overwrite mode: the publisher laps the subscriber while it copies; the copy of an
/// overwritten record is dropped and counted, and what is delivered is whole.
#[test]
fn overwrite_validation_drops_what_was_overwritten() {
    model(|| {
        let t = heap(64, Overflow::Overwrite);
        let mut s = t.subscribe(Start::Latest).unwrap();
        let mut p = t.publisher().unwrap();
        let th = thread::spawn(move || {
            for i in 1..=3u8 {
                assert!(p.try_publish(&[i; 24]).unwrap(), "overwrite mode never waits");
            }
        });
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Some(m) = s.try_recv().unwrap() {
                assert!(m.iter().all(|&b| b == m[0]), "torn message delivered");
                got.push(m[0]);
            }
        }
        th.join().unwrap();
        while let Some(m) = s.try_recv().unwrap() {
            assert!(m.iter().all(|&b| b == m[0]), "torn message delivered");
            got.push(m[0]);
        }
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(got.last(), Some(&3));
        assert_eq!(got.len() as u64 + s.dropped(), 3, "received + dropped = published");
    });
}
