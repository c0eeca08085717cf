//! Unit tests of the ring on a heap region: framing, wrap, padding, limits, hostile memory.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::error::OpenError;
use crate::layout::PAD;
use crate::sync::Ordering;
use proptest::prelude::*;

fn ring(cap: usize) -> Ring {
    Ring::heap(cap).unwrap()
}

fn read_vec(r: &mut Ring) -> Result<Option<Vec<u8>>, RingError> {
    Ok(r.try_read()?.map(|g| g.to_vec()))
}

#[test]
fn capacity_is_validated_and_rounded() {
    assert!(matches!(Ring::heap(8), Err(OpenError::InvalidArgument(_))));
    assert!(matches!(Ring::heap(MAX_CAPACITY + 8), Err(OpenError::InvalidArgument(_))));
    let r = ring(100);
    assert_eq!(r.capacity(), 104);
    assert_eq!(r.max_message_size(), 96);
    assert_eq!(record_size(0), 8);
    assert_eq!(record_size(1), 16);
    assert_eq!(record_size(8), 16);
    assert_eq!(record_size(9), 24);
}

#[test]
fn roundtrip_in_order_including_empty() {
    let mut r = ring(256);
    assert!(r.try_write(b"one").unwrap());
    assert!(r.try_write(b"").unwrap());
    assert!(r.try_write(b"three!!!").unwrap());
    assert_eq!(r.len(), 3);
    assert_eq!(r.available_read(), 16 + 8 + 16);
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), b"one");
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), b"");
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), b"three!!!");
    assert_eq!(read_vec(&mut r).unwrap(), None);
    assert_eq!(r.len(), 0);
    assert!(r.is_empty());
    let s = r.stats();
    assert_eq!((s.messages_in, s.messages_out, s.bytes_in, s.bytes_out), (3, 3, 11, 11));
    assert!(s.empty_waits >= 1);
}

#[test]
fn full_ring_refuses_then_accepts_after_read() {
    let mut r = ring(64);
    // 64 bytes = four 16-byte records of 8 payload bytes.
    for i in 0..4u8 {
        assert!(r.try_write(&[i; 8]).unwrap());
    }
    assert!(!r.try_write(&[9; 8]).unwrap());
    assert_eq!(r.available_write(), 0);
    assert_eq!(r.stats().full_waits, 1);
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [0; 8]);
    assert!(r.try_write(&[9; 8]).unwrap());
    for i in 1..4u8 {
        assert_eq!(read_vec(&mut r).unwrap().unwrap(), [i; 8]);
    }
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [9; 8]);
}

#[test]
fn alignment_padding_after_a_payload_is_zeroed() {
    let mut r = ring(64);
    assert!(r.try_write(&[0xAA; 40]).unwrap()); // 48 bytes at 0: every byte written
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [0xAA; 40]);
    assert!(r.try_write(&[0xBB; 8]).unwrap()); // 16 bytes at 48, up to the end
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [0xBB; 8]);
    assert!(r.try_write(b"abc").unwrap()); // 16 bytes at 0 (over the old 0xAA bytes)
                                           // SAFETY: the heap ring is private to this test and holds at least 16 data bytes.
    let bytes = unsafe { std::slice::from_raw_parts(r.mem.data.ptr(0), 16) };
    assert_eq!(&bytes[8..16], b"abc\0\0\0\0\0", "no stale bytes after the payload");
}

#[test]
fn wrap_writes_padding_and_records_stay_contiguous() {
    let mut r = ring(64);
    assert!(r.try_write(&[1; 24]).unwrap()); // 32 bytes at 0
    assert!(r.try_write(&[2; 8]).unwrap()); // 16 bytes at 32
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [1; 24]);
    // 24 bytes would need 32 but only 16 remain before the end: padding at 48, record at 0.
    assert!(r.try_write(&[3; 24]).unwrap());
    let (len, flags) = r.mem.load_header(48);
    assert_eq!((len, flags), (8, FLAG_PADDING));
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [2; 8]);
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [3; 24]);
    assert_eq!(read_vec(&mut r).unwrap(), None);
    assert_eq!(r.available_read(), 0);
}

#[test]
fn largest_message_fits_once_consumer_catches_up() {
    let mut r = ring(64);
    let max = r.max_message_size();
    assert!(r.try_write(&[1; 8]).unwrap()); // offset 0..16
    assert!(!r.try_write(&vec![7; max]).unwrap()); // padding 16..64 published alone
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [1; 8]);
    // The consumer passes the padding on its next read (nothing there yet).
    assert_eq!(read_vec(&mut r).unwrap(), None);
    assert!(r.try_write(&vec![7; max]).unwrap());
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), vec![7; max]);
    assert!(
        matches!(r.try_write(&vec![0; max + 1]), Err(RingError::TooLarge { len, max: m }) if len == max + 1 && m == max)
    );
    assert!(matches!(r.write_batch(&[&b"a"[..], &vec![0; max + 1]]), Err(RingError::TooLarge { .. })));
    assert_eq!(r.len(), 0, "a batch with an oversized message writes nothing");
}

#[test]
fn loan_commit_and_abort() {
    let mut r = ring(128);
    {
        let mut s = r.try_loan(5).unwrap().unwrap();
        s.copy_from_slice(b"hello");
        // dropped: aborted
    }
    assert_eq!(read_vec(&mut r).unwrap(), None);
    let mut s = r.loan(5).unwrap();
    s.copy_from_slice(b"world");
    s.commit();
    assert_eq!(&*r.read().unwrap(), b"world");
}

#[test]
fn batches_publish_once_and_stop_when_full() {
    let mut r = ring(128);
    let msgs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 8]).collect();
    let n = r.write_batch(&msgs).unwrap();
    assert_eq!(n, 8); // 8 records of 16 bytes
    let mut got = Vec::new();
    assert_eq!(r.read_batch(5, |m| got.push(m.to_vec())).unwrap(), 5);
    assert_eq!(r.read_batch(100, |m| got.push(m.to_vec())).unwrap(), 3);
    assert_eq!(got, msgs[..8].to_vec());
    assert_eq!(r.read_batch(100, |_| ()).unwrap(), 0);
}

#[test]
fn detached_read_holds_space_until_next_read() {
    let mut r = ring(64);
    for i in 0..4u8 {
        assert!(r.try_write(&[i; 8]).unwrap());
    }
    let d = r.try_read().unwrap().unwrap().detach();
    // SAFETY: no consumer operation since the detach.
    assert_eq!(unsafe { d.as_slice() }, [0; 8]);
    assert!(!r.try_write(&[9; 8]).unwrap(), "held record's space is not released");
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), [1; 8]);
    assert!(r.try_write(&[9; 8]).unwrap());
}

#[test]
fn clear_discards_published_messages() {
    let mut p = ring(256);
    let mut c = p.new_handle();
    assert!(p.try_write(b"a").unwrap());
    assert!(p.try_write(b"b").unwrap());
    c.clear().unwrap();
    assert_eq!(c.available_read(), 0);
    assert_eq!(c.len(), 0);
    assert!(!c.holds(Role::Consumer), "clear by a non-consumer gives the role back");
    assert!(p.try_write(b"c").unwrap());
    assert_eq!(read_vec(&mut c).unwrap().unwrap(), b"c");
    // Now `c` is the consumer: a third handle cannot clear.
    let mut other = p.new_handle();
    assert!(matches!(other.clear(), Err(RingError::AlreadyAttached { role: Role::Consumer, .. })));
}

#[test]
fn second_handle_in_same_process_is_refused_a_held_role() {
    let mut a = ring(128);
    let mut b = a.new_handle();
    a.claim_producer().unwrap();
    assert!(matches!(b.try_write(b"x"), Err(RingError::AlreadyAttached { role: Role::Producer, .. })));
    a.release_producer();
    assert!(b.try_write(b"x").unwrap());
    drop(b);
    assert!(a.try_write(b"y").unwrap());
}

#[test]
fn roles_are_taken_in_turns_by_handles_that_release_them() {
    let mut a = ring(128);
    let mut b = a.new_handle();
    assert!(a.try_write(b"a1").unwrap());
    a.release_producer();
    assert!(!a.holds(Role::Producer));
    assert!(b.try_write(b"b1").unwrap()); // b continues after a's message
    assert_eq!(read_vec(&mut b).unwrap().unwrap(), b"a1");
    b.release_producer();
    b.release_consumer();
    assert!(a.try_write(b"a2").unwrap()); // a's cached tail is stale: reloaded
    assert_eq!(read_vec(&mut a).unwrap().unwrap(), b"b1");
    a.release_consumer();
    assert_eq!(read_vec(&mut b).unwrap().unwrap(), b"a2"); // b's cached head is stale: reloaded
    assert!(read_vec(&mut b).unwrap().is_none());
    let s = a.stats();
    assert_eq!((s.messages_in, s.messages_out), (3, 3), "counters continue across holders");
}

#[test]
fn reclaiming_after_nobody_else_used_the_role_keeps_the_cache() {
    let mut p = ring(128);
    let mut c = p.new_handle();
    assert!(p.try_write(&[1; 8]).unwrap());
    assert!(p.try_write(&[2; 8]).unwrap());
    assert_eq!(read_vec(&mut c).unwrap().unwrap(), [1; 8]);
    p.release_producer();
    c.release_consumer();
    p.claim_producer().unwrap();
    c.claim_consumer().unwrap();
    // Kept, not reloaded: the producer's cached head still predates the read.
    assert_eq!(p.prod.as_ref().unwrap().cached_head, 0);
    assert_eq!(c.cons.as_ref().unwrap().head, 16);
    assert!(p.try_write(&[3; 8]).unwrap());
    assert_eq!(read_vec(&mut c).unwrap().unwrap(), [2; 8]);
    assert_eq!(read_vec(&mut c).unwrap().unwrap(), [3; 8]);
    // The owner word is on the side's own line, so a claim touches nothing else.
    assert_eq!(offsets::PRODUCER / PAD, offsets::TAIL / PAD);
    assert_eq!(offsets::CONSUMER / PAD, offsets::HEAD / PAD);
    assert_eq!(p.mem.ctrl().producer.owner.load(Ordering::Relaxed), crate::owner::me());
    p.release_producer();
    assert_eq!(p.mem.ctrl().producer.owner.load(Ordering::Relaxed), 0);
}

#[test]
fn released_consumer_with_a_detached_record_hands_it_to_the_next() {
    let mut a = ring(128);
    let mut b = a.new_handle();
    assert!(a.try_write(b"held").unwrap());
    let _d = a.try_read().unwrap().unwrap().detach();
    a.release_consumer();
    assert_eq!(read_vec(&mut b).unwrap().unwrap(), b"held", "delivered again");
    b.release_consumer();
    assert!(read_vec(&mut a).unwrap().is_none());
}

#[test]
fn a_stop_flag_ends_waits_early() {
    let empty = ring(64);
    let mut full = ring(64);
    for _ in 0..4 {
        assert!(full.try_write(&[0; 8]).unwrap());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wakers = (empty.new_handle(), full.new_handle());
    let (s1, s2) = (stop.clone(), stop.clone());
    let long = Some(Duration::from_secs(120));
    let reader = std::thread::spawn(move || {
        let mut c = empty;
        let t0 = std::time::Instant::now();
        (c.wait_readable_or_stop(long, &s1).unwrap(), t0.elapsed())
    });
    let writer = std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        (full.wait_writable_or_stop(8, long, &s2).unwrap(), t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(20)); // let both fall asleep (not needed to pass)
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    wakers.0.wake_waiters();
    wakers.1.wake_waiters();
    for (ready, waited) in [reader.join().unwrap(), writer.join().unwrap()] {
        assert!(ready, "a stopped wait reports progress to re-check");
        assert!(waited < Duration::from_secs(60), "the wait returned on the flag, not its timeout");
    }
    assert_eq!(wakers.0.available_read(), 0, "nothing was written: the flag ended the wait");
}

#[test]
fn dead_holder_is_taken_over() {
    let mut r = ring(128);
    // A pid that cannot be alive.
    let dead = u64::from(i32::MAX as u32 - 1) | (12345 << 32);
    r.mem.ctrl().producer.owner.store(dead, Ordering::Relaxed);
    r.mem.ctrl().wait.space.sleepers.store(3, Ordering::Relaxed);
    assert!(r.try_write(b"x").unwrap());
    assert_eq!(r.mem.ctrl().wait.space.sleepers.load(Ordering::Relaxed), 0);
    assert_eq!(r.mem.ctrl().producer.owner.load(Ordering::Relaxed), crate::owner::me());
}

#[test]
fn timeouts_return_false_and_none() {
    let mut r = ring(64);
    let t = Some(Duration::from_millis(20));
    assert!(r.read_timeout(t).unwrap().is_none());
    for _ in 0..4 {
        r.write(&[0; 8]).unwrap();
    }
    assert!(!r.write_timeout(&[0; 8], t).unwrap());
    assert!(!r.wait_writable(8, t).unwrap());
}

#[test]
fn threads_stream_in_order() {
    let n: u32 = if cfg!(miri) { 200 } else { 100_000 };
    let mut p = ring(1024);
    let mut c = p.new_handle();
    let t = std::thread::spawn(move || {
        for i in 0..n {
            let len = (i % 40) as usize;
            let mut msg = vec![0u8; len + 4];
            msg[..4].copy_from_slice(&i.to_le_bytes());
            p.write(&msg).unwrap();
        }
    });
    for i in 0..n {
        let g = c.read().unwrap();
        assert_eq!(g.len(), (i % 40) as usize + 4);
        assert_eq!(u32::from_le_bytes(g[..4].try_into().unwrap()), i);
    }
    t.join().unwrap();
}

// ----- hostile memory -----

fn corrupt_err<T: fmt::Debug>(r: Result<T, RingError>) {
    assert!(matches!(r, Err(RingError::Corrupt { .. })), "expected Corrupt, got {r:?}");
}

#[test]
fn corrupt_length_and_flags_are_errors() {
    let mut r = ring(64);
    assert!(r.try_write(b"abc").unwrap());
    r.mem.store_header(0, 1000, FLAG_MESSAGE);
    corrupt_err(read_vec(&mut r));
    r.mem.store_header(0, 9, FLAG_MESSAGE); // record of 24 > 16 published
    corrupt_err(read_vec(&mut r));
    r.mem.store_header(0, 3, 77);
    corrupt_err(read_vec(&mut r));
    r.mem.store_header(0, 8, FLAG_PADDING); // padding at offset 0
    corrupt_err(read_vec(&mut r));
    r.mem.store_header(0, 3, FLAG_MESSAGE);
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), b"abc");
}

#[test]
fn corrupt_indices_are_errors() {
    let mut r = ring(64);
    assert!(r.try_write(b"abc").unwrap());
    let tail = &r.mem.ctrl().producer.tail;
    tail.store(1000, Ordering::Relaxed); // tail - head > capacity
    corrupt_err(read_vec(&mut r));
    r.mem.ctrl().producer.tail.store(13, Ordering::Relaxed); // misaligned
    corrupt_err(read_vec(&mut r));
    // A fresh producer refuses to start from nonsense too.
    let mut p2 = r.new_handle();
    r.release_producer();
    r.mem.ctrl().consumer.head.store(u64::MAX - 7, Ordering::Relaxed);
    corrupt_err(p2.try_write(b"x"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 64 }, ..ProptestConfig::default() })]

    #[test]
    fn framing_roundtrips_random_sizes(sizes in proptest::collection::vec(0usize..120, 1..200), cap in 64usize..400) {
        let mut r = ring(cap);
        let max = r.max_message_size();
        let msgs: Vec<Vec<u8>> = sizes.iter().enumerate()
            .map(|(i, &s)| (0..s.min(max)).map(|j| (i * 31 + j) as u8).collect()).collect();
        let mut got = Vec::new();
        let mut next = 0;
        while got.len() < msgs.len() {
            if next < msgs.len() && r.try_write(&msgs[next]).unwrap() {
                next += 1;
                continue;
            }
            let g = r.try_read().unwrap().map(|g| g.to_vec());
            match g {
                Some(g) => got.push(g),
                None => prop_assert!(next < msgs.len(), "empty ring but messages missing"),
            }
            prop_assert!(r.available_read() <= r.capacity());
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn hostile_memory_never_panics(words in proptest::collection::vec(any::<u64>(), 8), head in any::<u64>(), tail in any::<u64>(), small in 0u64..80) {
        let mut r = ring(64);
        for (i, w) in words.iter().enumerate() {
            r.mem.store_header(i as u64 * 8, *w as u32, (*w >> 32) as u32 % 3);
        }
        let ctrl = r.mem.ctrl();
        ctrl.consumer.head.store(head % 2 * small, Ordering::Relaxed);
        ctrl.producer.tail.store(if tail % 2 == 0 { tail } else { small * 8 }, Ordering::Relaxed);
        // Whatever the bytes: each call returns (an error or a bounded message) and terminates.
        for _ in 0..10 {
            if let Ok(Some(g)) = r.try_read() {
                prop_assert!(g.len() <= 56);
            }
            let _ = r.read_batch(4, |m| assert!(m.len() <= 56));
            let _ = r.try_write(b"hi");
        }
    }
}

/// A sleeping consumer is woken by the producer's publication (a lost wake-up would only end
/// with the 1 s slice of Rust blocking calls, so each wait finishing well before that shows
/// the handshake worked), and likewise a producer sleeping on a full ring.
#[test]
fn sleepers_are_woken() {
    let rounds = if cfg!(miri) { 2 } else { 10 };
    let mut p = ring(64);
    let mut c = p.new_handle();
    c.claim_consumer().unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..rounds {
            std::thread::sleep(Duration::from_millis(20)); // let the consumer fall asleep
            p.write(&[i as u8; 8]).unwrap();
        }
        // Fill the ring, then block on the fifth message until the consumer drains one.
        for _ in 0..4 {
            p.write(&[0; 8]).unwrap();
        }
        let t0 = std::time::Instant::now();
        p.write(&[1; 8]).unwrap();
        t0.elapsed()
    });
    for i in 0..rounds {
        let t0 = std::time::Instant::now();
        let g = c.read().unwrap();
        assert_eq!(&*g, &[i as u8; 8]);
        assert!(t0.elapsed() < Duration::from_millis(900), "consumer missed a wake-up");
    }
    while c.available_read() < 32 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(20)); // let the producer fall asleep
    drop(c.read().unwrap());
    let waited = t.join().unwrap();
    assert!(waited < Duration::from_millis(900), "producer missed a wake-up");
    assert_eq!(c.read_batch(10, |_| ()).unwrap(), 4);
}

/// Frames (records over a third of the capacity, two fit): when the consumer has released the
/// previous one, the next goes to offset 0 again, over the bytes still in the caches; while it
/// holds one, the next goes to the other half, and stays FIFO.
#[test]
fn frames_reuse_the_released_half_and_pipeline_while_one_is_held() {
    const F: usize = 1000;
    let mut r = ring(2 * (F + 64));
    let frame = |i: u8| vec![i; F];
    assert!(r.try_write(&frame(1)).unwrap());
    let first = {
        let g = r.try_read().unwrap().unwrap();
        assert_eq!(*g, frame(1)[..]);
        g.as_ptr()
    };
    assert!(r.try_write(&frame(2)).unwrap());
    let d = r.try_read().unwrap().unwrap().detach();
    assert_eq!(d.as_ptr(), first, "a frame after a released one reuses its bytes");
    // SAFETY: no consumer operation since the detach.
    assert_eq!(unsafe { d.as_slice() }, &frame(2)[..]);
    // Frame 2 is held (at 0, behind a padding record): the other half is free for frame 3.
    assert!(r.try_write(&frame(3)).unwrap(), "the padding before a held frame is released");
    assert!(!r.try_write(&frame(4)).unwrap(), "two frames fill the ring");
    let g = r.try_read().unwrap().unwrap();
    assert_eq!(*g, frame(3)[..]);
    assert_ne!(g.as_ptr(), first, "written while frame 2 was held: the other half");
    drop(g);
    assert!(r.try_write(&frame(4)).unwrap());
    assert_eq!(read_vec(&mut r).unwrap().unwrap(), frame(4));
    assert!(read_vec(&mut r).unwrap().is_none());
    let s = r.stats();
    assert_eq!((s.messages_in, s.messages_out), (4, 4));
}

/// Records of a third of the capacity or less keep the plain ring order.
#[test]
fn small_records_do_not_restart_at_zero() {
    let mut r = ring(4 * 64);
    assert!(r.try_write(&[1; 56]).unwrap());
    let first = r.try_read().unwrap().unwrap().as_ptr();
    assert!(r.try_write(&[2; 56]).unwrap());
    let second = r.try_read().unwrap().unwrap().as_ptr();
    assert_eq!(second as usize - first as usize, 64);
}
