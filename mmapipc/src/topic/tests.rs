//! Unit tests of the topic on heap topics (threads, no processes).

use std::time::Duration;

use super::*;
use crate::sync::Ordering;

fn heap(cap: usize, overflow: Overflow, subs: usize) -> Topic {
    Topic::heap(cap, &TopicOptions { max_subscribers: subs, overflow, ..TopicOptions::default() }).unwrap()
}

fn recv_all(s: &mut Subscriber) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while let Some(m) = s.try_recv().unwrap() {
        v.push(m.to_vec());
    }
    v
}

#[test]
fn every_subscriber_sees_every_message_in_place() {
    let t = heap(4096, Overflow::Block, 4);
    let mut subs: Vec<_> = (0..3).map(|_| t.subscribe(Start::Latest).unwrap()).collect();
    let mut p = t.publisher().unwrap();
    for i in 0..10u8 {
        assert!(p.try_publish(&[i; 5]).unwrap());
    }
    for s in &mut subs {
        assert_eq!(s.lag(), 10);
        let m = s.try_recv_view().unwrap().unwrap();
        assert!(m.in_place());
        assert_eq!(&*m, &[0; 5]);
        drop(m);
        let rest = recv_all(s);
        assert_eq!(rest, (1..10u8).map(|i| vec![i; 5]).collect::<Vec<_>>());
        assert_eq!((s.lag(), s.dropped(), s.messages()), (0, 0, 10));
    }
    assert_eq!(t.stats().messages_in, 10);
    assert_eq!(t.stats().subscribers, 3);
}

#[test]
fn block_mode_waits_for_the_slowest_and_wraps() {
    let t = heap(256, Overflow::Block, 2);
    let mut fast = t.subscribe(Start::Latest).unwrap();
    let mut slow = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    let mut sent = 0u32;
    while p.try_publish(&sent.to_le_bytes()).unwrap() {
        sent += 1;
    }
    assert!(sent > 5 && sent < 20, "{sent} 16-byte records in 256 bytes");
    assert_eq!(recv_all(&mut fast).len(), sent as usize);
    assert!(!p.try_publish(b"x").unwrap(), "the slow subscriber holds the publisher back");
    assert_eq!(t.stats().full_waits, 1);
    // Around the wrap many times: nothing is lost, both see everything in order.
    let mut next_fast = sent;
    let mut next_slow = 0u32;
    for _ in 0..200 {
        for m in recv_all(&mut slow) {
            assert_eq!(m, next_slow.to_le_bytes());
            next_slow += 1;
        }
        while p.try_publish(&sent.to_le_bytes()).unwrap() {
            sent += 1;
        }
        for m in recv_all(&mut fast) {
            assert_eq!(m, next_fast.to_le_bytes());
            next_fast += 1;
        }
    }
    assert!(sent > 1000);
    assert_eq!(recv_all(&mut slow).len() as u32, sent - next_slow);
}

#[test]
fn a_dropped_subscriber_stops_holding_back() {
    let t = heap(256, Overflow::Block, 2);
    let s = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    while p.try_publish(&[1; 8]).unwrap() {}
    drop(s);
    assert!(p.try_publish(&[2; 8]).unwrap());
}

#[test]
fn oldest_gets_history_then_live_latest_only_live() {
    let t = heap(1024, Overflow::Block, 4);
    let mut p = t.publisher().unwrap();
    // No subscriber: the publisher overwrites the oldest; history is what is retained.
    for i in 0..200u32 {
        assert!(p.try_publish(&i.to_le_bytes()).unwrap());
    }
    let mut old = t.subscribe(Start::Oldest).unwrap();
    let mut new = t.subscribe(Start::Latest).unwrap();
    assert!(new.try_recv().unwrap().is_none());
    assert!(p.try_publish(&200u32.to_le_bytes()).unwrap());
    let h: Vec<u32> = recv_all(&mut old).iter().map(|m| u32::from_le_bytes(m[..].try_into().unwrap())).collect();
    assert!(h.len() > 20 && h.len() < 64, "retained {}", h.len());
    assert_eq!(*h.last().unwrap(), 200);
    assert!(h.windows(2).all(|w| w[1] == w[0] + 1), "no gap, no duplicate");
    assert_eq!(recv_all(&mut new), vec![200u32.to_le_bytes().to_vec()]);
}

#[test]
fn overwrite_mode_counts_drops_exactly() {
    let t = heap(512, Overflow::Overwrite, 2);
    let mut slow = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    let mut received = 0u64;
    let mut last = None;
    for round in 0..50u64 {
        for i in 0..(round % 7) * 10 {
            assert!(p.try_publish(&(round * 1000 + i).to_le_bytes()).unwrap(), "never waits");
        }
        if let Some(m) = slow.try_recv().unwrap() {
            let v = u64::from_le_bytes(m[..].try_into().unwrap());
            assert!(last.is_none_or(|l| v > l));
            last = Some(v);
            received += 1;
        }
    }
    received += recv_all(&mut slow).len() as u64;
    assert!(slow.dropped() > 0);
    assert_eq!(received + slow.dropped(), t.stats().messages_in);
    assert!(matches!(slow.try_recv_view(), Err(TopicError::Unsupported(_))));
}

#[test]
fn a_group_delivers_each_message_once_and_every_group_all() {
    let t = heap(4096, Overflow::Block, 8);
    let mut a1 = t.subscribe_group("a", Start::Latest).unwrap();
    let mut a2 = t.subscribe_group("a", Start::Latest).unwrap();
    let mut b = t.subscribe_group("b", Start::Latest).unwrap();
    assert_eq!(a1.group_name().as_deref(), Some("a"));
    let mut p = t.publisher().unwrap();
    for i in 0..30u8 {
        assert!(p.try_publish(&[i]).unwrap());
    }
    let mut got_a = Vec::new();
    for i in 0..30 {
        let s = if i % 3 == 0 { &mut a2 } else { &mut a1 };
        got_a.push(s.try_recv().unwrap().unwrap()[0]);
    }
    assert!(a1.try_recv().unwrap().is_none() && a2.try_recv().unwrap().is_none());
    assert_eq!(got_a, (0..30).collect::<Vec<u8>>());
    assert_eq!(recv_all(&mut b).len(), 30);
    assert!(matches!(a1.try_recv_view(), Err(TopicError::Unsupported(_))));
    let info = t.inspect();
    assert_eq!(info.groups.len(), 2);
    assert_eq!(info.groups.iter().find(|g| g.name == "a").unwrap().members, 2);
}

#[test]
fn groups_compete_between_threads_exactly_once() {
    let t = heap(2048, Overflow::Block, 8);
    let members: Vec<_> = (0..3).map(|_| t.subscribe_group("g", Start::Latest).unwrap()).collect();
    let n = 20_000u32;
    let handles: Vec<_> = members
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(m) = s.recv_timeout(Some(Duration::from_millis(500))).unwrap() {
                    got.push(u32::from_le_bytes(m[..].try_into().unwrap()));
                }
                got
            })
        })
        .collect();
    let mut p = t.publisher().unwrap();
    for i in 0..n {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    let mut all: Vec<u32> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
}

#[test]
fn one_publisher_at_a_time_and_a_full_table_is_an_error() {
    let t = heap(1024, Overflow::Block, 2);
    let p = t.publisher().unwrap();
    assert!(matches!(t.publisher(), Err(TopicError::AlreadyAttached { .. })));
    drop(p);
    let _p = t.publisher().unwrap();
    let _a = t.subscribe(Start::Latest).unwrap();
    let _b = t.subscribe(Start::Latest).unwrap();
    assert_eq!(t.subscribe(Start::Latest).unwrap_err(), TopicError::TooManySubscribers { max: 2 });
    assert!(matches!(t.subscribe_group("", Start::Latest), Err(TopicError::InvalidArgument(_))));
}

#[test]
fn a_dead_subscribers_slot_is_reclaimed() {
    let t = heap(256, Overflow::Block, 1);
    let s = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    while p.try_publish(&[1; 8]).unwrap() {}
    // The slot now names a process that has exited (as if SIGKILLed).
    let dead = crate::owner::encode(crate::process::exited_process());
    t.mem.sub(s.slot).owner.store(dead, Ordering::Relaxed);
    std::mem::forget(s);
    assert!(p.publish_timeout(&[2; 8], Some(Duration::from_secs(10))).unwrap());
    assert_eq!(t.stats().reclaimed, 1);
    assert!(t.subscribe(Start::Latest).is_ok(), "the slot is free again");
}

#[test]
fn a_new_publisher_continues_the_stamps() {
    let t = heap(1024, Overflow::Block, 2);
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    p.try_publish(b"one").unwrap();
    drop(p);
    let mut p = t.publisher().unwrap();
    assert_eq!(p.messages(), 1);
    p.try_publish(b"two").unwrap();
    assert_eq!(recv_all(&mut s), vec![b"one".to_vec(), b"two".to_vec()]);
}

#[test]
fn batches_and_recv_into() {
    let t = heap(1024, Overflow::Block, 2);
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
    assert_eq!(p.try_publish_batch(&msgs).unwrap(), 5);
    let mut small = [0u8; 4];
    assert_eq!(s.try_recv_into(&mut small).unwrap(), Some(Err(10)), "left unread");
    let mut buf = [0u8; 16];
    assert_eq!(s.try_recv_into(&mut buf).unwrap(), Some(Ok(10)));
    assert_eq!(&buf[..10], &[0; 10]);
    let mut got = Vec::new();
    assert_eq!(s.recv_batch(10, |m| got.push(m[0])).unwrap(), 4);
    assert_eq!(got, [1, 2, 3, 4]);
    assert!(matches!(p.try_publish(&[0; 1020]), Err(TopicError::TooLarge { max: 1008, .. })));
}

#[test]
fn hostile_table_and_headers_are_errors() {
    let t = heap(1024, Overflow::Block, 2);
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    p.try_publish(b"hello").unwrap();
    // A length past the published bytes.
    let off = t.mem.data.ptr(0);
    // SAFETY: the test owns the heap area; nobody reads it concurrently.
    unsafe { (off as *mut u32).write_unaligned(5000) };
    assert!(matches!(s.try_recv(), Err(TopicError::Corrupt { .. })));
    // A hostile group index and cursor in another slot: the publisher neither crashes nor hangs.
    let e = t.mem.sub(1);
    e.owner.store(crate::owner::me() ^ 0x8000_0000_0000_0000, Ordering::Relaxed);
    e.group.store(u64::MAX - 5, Ordering::Relaxed);
    e.cursor.store(3, Ordering::Relaxed);
    for _ in 0..200 {
        let _ = p.try_publish(&[7; 16]);
    }
    // The slot names no live process: the publisher, held back by its cursor, reclaimed it.
    assert_eq!(t.stats().reclaimed, 1);
    assert_eq!(t.inspect().subscribers.len(), 1);
}

#[test]
fn a_run_of_fixed_size_records_is_held_in_place() {
    let t = heap(1024, Overflow::Block, 2);
    let mut s = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    for i in 0..5u8 {
        p.try_publish(&[i; 16]).unwrap();
    }
    let run = s.try_recv_fixed_batch(10, 16).unwrap().unwrap();
    assert_eq!((run.count(), run.stride(), run.span()), (5, 24, 4 * 24 + 16));
    // SAFETY: the run is held until the next operation of `s`; nothing else writes the heap topic.
    let bytes = unsafe { std::slice::from_raw_parts(run.as_ptr(), run.span()) };
    assert!((0..5).all(|i| bytes[i * 24..i * 24 + 16] == [i as u8; 16]));
    // Held: the publisher cannot overwrite the run until the subscriber moves on.
    while p.try_publish(&[9; 16]).unwrap() {}
    assert!(bytes[..16] == [0; 16]);
    assert!(s.try_recv_fixed_batch(100, 16).unwrap().is_some(), "the next call releases the run");
    p.try_publish(&[1; 8]).unwrap();
    assert_eq!(s.try_recv_fixed_batch(10, 16).unwrap_err(), TopicError::WrongSize { len: 8, expected: 16 });
    assert!(s.try_recv().unwrap().is_none(), "the odd message was taken");
}

/// Frames (records over a third of the capacity, two fit): once every subscriber has let go of
/// the last one, a publisher that may wait writes the next at offset 0 again, over the bytes
/// still in the caches, if every subscriber waits in a receive, after they stepped over the
/// padding in front of it (the frame's mark lands on the padding's header). `try_publish` never
/// waits for that; a frame held as a view sends the next one to the other half.
#[test]
fn frames_go_back_to_offset_0_once_every_subscriber_let_go() {
    const F: usize = 1000;
    let t = heap(2 * (F + 64), Overflow::Block, 4);
    let mut a = t.subscribe(Start::Latest).unwrap();
    let mut b = t.subscribe(Start::Latest).unwrap();
    let mut p = t.publisher().unwrap();
    let frame = |i: u8| vec![i; F];
    let short = Some(Duration::from_millis(20));
    let recv = |s: &mut Subscriber, i: u8| {
        let m = s.try_recv_view().unwrap().expect("a frame");
        assert_eq!(*m, frame(i)[..], "frame {i}");
        m.as_ptr()
    };

    assert!(p.publish_timeout(&frame(1), short).unwrap());
    let first = recv(&mut a, 1);
    recv(&mut b, 1);
    assert!(p.try_publish(&frame(2)).unwrap());
    assert_ne!(recv(&mut a, 2), first, "try_publish keeps the order of space");
    recv(&mut b, 2);
    assert!(p.publish_timeout(&frame(3), short).unwrap());
    assert_eq!(recv(&mut a, 3), first, "the wrap");
    recv(&mut b, 3);

    // Both let go of frame 3 at offset 0, but neither waits in a receive: frame 4 goes to the
    // other half (a subscriber that is not waiting might not look at the padding for long).
    assert!(p.publish_timeout(&frame(4), short).unwrap());
    assert_ne!(recv(&mut a, 4), first);
    recv(&mut b, 4);
    assert!(p.publish_timeout(&frame(5), short).unwrap());
    assert_eq!(recv(&mut a, 5), first, "the wrap");
    recv(&mut b, 5);

    // Both let go of frame 5 at offset 0 and wait (as a blocking receive marks its slot): frame
    // 6 goes there again, once both pass the padding.
    let waiting = |s: &Subscriber, on: bool| t.mem.sub(s.slot).waiting.store(on.into(), Ordering::Relaxed);
    waiting(&a, true);
    waiting(&b, true);
    let full_waits = t.stats().full_waits;
    assert!(!p.publish_timeout(&frame(6), short).unwrap(), "no subscriber stepped over the padding");
    assert_eq!(p.position().1, 0, "the padding is published");
    assert_eq!(t.stats().full_waits, full_waits + 1);
    assert!(a.try_recv().unwrap().is_none() && b.try_recv().unwrap().is_none(), "padding, then nothing");
    assert!(p.publish_timeout(&frame(6), short).unwrap());
    assert_eq!(recv(&mut a, 6), first, "written over frame 5");
    let held = b.try_recv_view().unwrap().unwrap().detach().unwrap();
    assert_eq!(held.as_ptr().cast_const(), first);

    // b holds frame 6: frame 7 goes to the other half, and both still see everything in order.
    assert!(p.publish_timeout(&frame(7), short).unwrap());
    assert_ne!(recv(&mut a, 7), first, "frame 6 is held");
    drop(held);
    recv(&mut b, 7);
    assert!(a.try_recv().unwrap().is_none() && b.try_recv().unwrap().is_none());
    assert_eq!(t.stats().messages_in, 7);
}

/// Frames between threads: two subscribers reading views while a waiting publisher restarts at
/// offset 0 whenever it can: every frame arrives whole and in order.
#[test]
fn frames_between_threads_arrive_whole_and_in_order() {
    const F: usize = 1000;
    const N: u32 = 2000;
    let t = heap(2 * (F + 64), Overflow::Block, 4);
    let subs: Vec<_> = (0..2).map(|_| t.subscribe(Start::Latest).unwrap()).collect();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                for i in 0..N {
                    while !s.wait_readable(Some(Duration::from_secs(10))).unwrap() {}
                    let m = loop {
                        if let Some(m) = s.try_recv_view().unwrap() {
                            break m;
                        }
                    };
                    let stamp = u32::from_le_bytes(m[..4].try_into().unwrap());
                    assert_eq!(stamp, i, "out of order");
                    assert!(m[4..].iter().all(|&x| x == i as u8), "frame {i} torn");
                }
            })
        })
        .collect();
    let mut p = t.publisher().unwrap();
    let mut buf = vec![0u8; F];
    for i in 0..N {
        buf[..4].copy_from_slice(&i.to_le_bytes());
        buf[4..].fill(i as u8);
        assert!(p.publish_timeout(&buf, Some(Duration::from_secs(10))).unwrap(), "frame {i} timed out");
    }
    for r in readers {
        r.join().unwrap();
    }
}
