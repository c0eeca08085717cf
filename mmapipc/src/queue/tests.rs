use std::sync::Arc;
use std::time::Duration;

use super::records::{head_word, record_size, split_head};
use super::*;
use crate::sync::Ordering;
use proptest::prelude::*;

fn msg(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn framing_and_sizes() {
    assert_eq!(record_size(0), 16);
    assert_eq!(record_size(1), 24);
    assert_eq!(record_size(8), 24);
    assert_eq!(record_size(9), 32);
    let q = Queue::heap(256).unwrap();
    assert_eq!(q.capacity(), 256);
    assert_eq!(q.max_message_size(), 240);
    assert!(q.is_empty());
    assert!(q.try_put(b"").unwrap());
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_get().unwrap(), Some(vec![]));
    assert_eq!(q.try_get().unwrap(), None);
    assert_eq!(q.try_put(&[0; 241]), Err(QueueError::TooLarge { len: 241, max: 240 }));
    assert!(q.try_put(&[7; 240]).unwrap());
    assert!(!q.try_put(b"x").unwrap(), "full");
    assert_eq!(q.try_get().unwrap(), Some(vec![7; 240]));
}

#[test]
fn record_head_word_has_the_format_byte_layout() {
    // FORMAT.md: len u32 at +0, state u32 at +4 (little-endian); one 8-byte atomic holds both.
    let w = head_word(0x0102_0304, STATE_TAKEN);
    let mut expect = [0u8; 8];
    expect[..4].copy_from_slice(&0x0102_0304u32.to_ne_bytes());
    expect[4..].copy_from_slice(&STATE_TAKEN.to_ne_bytes());
    assert_eq!(w.to_ne_bytes(), expect);
    assert_eq!(split_head(w), (0x0102_0304, STATE_TAKEN));
    // And in a queue's data area, after a put: length then state, byte for byte.
    let q = Queue::heap(256).unwrap();
    assert!(q.try_put(b"abc").unwrap());
    // SAFETY: the data area holds at least 16 bytes and nobody else uses this queue.
    let bytes = unsafe { std::slice::from_raw_parts(q.data_ptr(), 8) };
    assert_eq!(bytes[..4], 3u32.to_ne_bytes());
    assert_eq!(bytes[4..8], STATE_COMMITTED.to_ne_bytes());
}

#[test]
fn alignment_padding_after_a_payload_is_zeroed() {
    let q = Queue::heap(256).unwrap();
    assert!(q.try_put(&[0xAA; 232]).unwrap()); // 248 bytes at 0: every byte written
    assert_eq!(q.try_get().unwrap(), Some(vec![0xAA; 232]));
    assert!(q.try_put(b"abc").unwrap()); // padding at 248, the record at 0
                                         // SAFETY: the heap queue is private to this test and holds at least 24 data bytes.
    let bytes = unsafe { std::slice::from_raw_parts(q.data_ptr(), 24) };
    assert_eq!(&bytes[16..24], b"abc\0\0\0\0\0", "no stale bytes after the payload");
}

#[test]
fn wraps_with_padding_and_keeps_order() {
    let q = Queue::heap(256).unwrap();
    let mut next_in = 0;
    let mut next_out = 0;
    for round in 0..200 {
        let len = (round * 7) % 90;
        while q.try_put(&msg(next_in, len + next_in % 3)).unwrap() {
            next_in += 1;
        }
        for _ in 0..1 + round % 3 {
            if let Some(m) = q.try_get().unwrap() {
                assert_eq!(m, msg(next_out, m.len()), "message {next_out}");
                next_out += 1;
            }
        }
    }
    while let Some(m) = q.try_get().unwrap() {
        assert_eq!(m, msg(next_out, m.len()));
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(next_in > 300, "{next_in}");
}

#[test]
fn padding_published_alone_lets_big_message_through() {
    let q = Queue::heap(256).unwrap();
    // Fill to 200 bytes, drain, then a 200-byte message must wrap: padding first, then it.
    assert!(q.try_put(&[1; 180]).unwrap()); // 200 bytes
    assert_eq!(q.try_get().unwrap().unwrap().len(), 180);
    assert!(q.try_put(&[2; 200]).unwrap()); // needs 216 > 56 left: padding + wrap
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_get().unwrap(), Some(vec![2; 200]));
    assert!(q.is_empty());
}

#[test]
fn batches_take_and_give_many() {
    let q = Queue::heap(4096).unwrap();
    let msgs: Vec<Vec<u8>> = (0..100).map(|i| msg(i, i % 80)).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let n = q.try_put_batch(&refs).unwrap();
    assert!(n > 50 && n < 100, "{n}");
    assert_eq!(q.len(), n);
    let got = q.try_get_batch(1000).unwrap();
    assert_eq!(got.len(), n);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m, &msgs[i]);
    }
    assert_eq!(q.try_put_batch(&[b"ok", &[0u8; 5000]]), Err(QueueError::TooLarge { len: 5000, max: 4080 }));
    assert!(q.is_empty(), "a batch with an oversize message puts nothing");
    assert_eq!(q.put_batch_timeout(&refs, Some(Duration::from_millis(1))).unwrap(), n);
}

/// A copying batch of frames (records over a third of the capacity) gives each frame's space
/// back as soon as it is copied, as single gets do: while the second frame is being copied, the
/// producer already has room for a third.
#[test]
fn a_batch_of_frames_reclaims_each_as_it_is_copied() {
    const F: usize = 1000;
    let q = Queue::heap(2 * (F + 64)).unwrap();
    assert!(q.try_put(&msg(1, F)).unwrap() && q.try_put(&msg(2, F)).unwrap());
    assert!(!q.try_put(&msg(3, F)).unwrap(), "two frames fill it");
    let mut seen = Vec::new();
    let n = q
        .try_get_batch_with(10, |m| {
            let i = seen.len() + 1;
            assert_eq!(m, &msg(i, F)[..], "frame {i}");
            if i == 2 {
                assert!(q.try_put(&msg(3, F)).unwrap(), "frame 1 was given back when copied");
            }
            seen.push(i);
        })
        .unwrap();
    assert_eq!(n, 3, "frame 3, put meanwhile, comes in the same batch");
    assert!(q.is_empty());
}

#[test]
fn views_block_reuse_until_released_in_any_order() {
    let q = Queue::heap(256).unwrap();
    for i in 0..5 {
        assert!(q.try_put(&msg(i, 24)).unwrap()); // 40 bytes each: 200
    }
    let mut views = q.try_get_views(3).unwrap();
    assert_eq!(views.len(), 3);
    for (i, v) in views.iter().enumerate() {
        assert_eq!(&**v, msg(i, 24).as_slice());
    }
    assert_eq!(q.try_get().unwrap(), Some(msg(3, 24)));
    assert_eq!(q.try_get().unwrap(), Some(msg(4, 24)));
    // 200 bytes used, views pin the first 120: only 56 free.
    assert!(q.try_put(&[9; 40]).unwrap()); // 56 bytes at the end
    assert!(!q.try_put(&[9; 8]).unwrap(), "slots under views are not reused");
    // Release out of order: the middle one frees nothing.
    drop(views.remove(1));
    assert!(!q.try_put(&[9; 8]).unwrap());
    assert_eq!(&*views[0], msg(0, 24).as_slice());
    assert_eq!(&*views[1], msg(2, 24).as_slice());
    drop(views.remove(0)); // frees records 0 and 1 (80 bytes)
    assert!(q.try_put(&[8; 40]).unwrap());
    assert!(q.try_put(&[8; 8]).unwrap());
    assert_eq!(&*views[0], msg(2, 24).as_slice(), "still intact");
    drop(views);
    assert_eq!(q.try_get().unwrap(), Some(vec![9; 40]));
}

#[test]
fn clear_discards_waiting_and_keeps_views() {
    let q = Queue::heap(1024).unwrap();
    for i in 0..6 {
        q.try_put(&msg(i, 10)).unwrap();
    }
    let v = q.try_get_view().unwrap().unwrap();
    assert_eq!(q.clear().unwrap(), 5);
    assert!(q.is_empty());
    assert_eq!(&*v, msg(0, 10).as_slice());
    drop(v);
    assert!(q.try_put(b"after").unwrap());
    assert_eq!(q.try_get().unwrap().as_deref(), Some(&b"after"[..]));
    let s = q.stats();
    assert_eq!(s.messages_in, 7);
    assert_eq!(s.messages_out, 7);
}

#[test]
fn views_of_a_dead_consumer_are_reclaimed() {
    let q = Queue::heap(256).unwrap();
    for i in 0..4 {
        q.try_put(&msg(i, 40)).unwrap(); // 56 bytes each
    }
    let views = q.try_get_views(4).unwrap();
    // Pretend a dead process took them: stamp a dead owner word and forget the guards.
    let dead = crate::owner::encode(crate::process::exited_process());
    for v in &views {
        q.owner(v.pos % q.cap).store(dead, Ordering::Relaxed);
    }
    views.into_iter().for_each(std::mem::forget); // the guards, not the Vec (Miri checks leaks)
    assert!(!q.try_put(&[0; 100]).unwrap());
    assert!(!q.advance_reclaim(false));
    let t0 = std::time::Instant::now();
    assert!(q.put_timeout(&[0; 100], Some(Duration::from_secs(5))).unwrap());
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(q.stats().view_recoveries, 4);
}

#[test]
fn dead_lock_holder_is_replaced() {
    let q = Queue::heap(256).unwrap();
    let dead = crate::owner::encode(crate::process::exited_process());
    q.ctrl().prod_lock.lock.word.store(dead, Ordering::Relaxed);
    q.ctrl().cons_lock.lock.word.store(dead, Ordering::Relaxed);
    assert!(q.put_timeout(b"x", Some(Duration::from_secs(5))).unwrap());
    assert_eq!(q.get_timeout(Some(Duration::from_secs(5))).unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(q.stats().lock_recoveries, 2);
}

#[test]
#[cfg_attr(miri, ignore)] // files in /dev/shm
fn prefaulted_handles_work_and_change_no_byte() {
    let path = std::env::temp_dir().join(format!("mmapipc-test-prefault-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let opts = QueueOptions { prefault: true, ..QueueOptions::default() };
    let q = Queue::create_with(&path, 1 << 20, &opts).unwrap();
    q.put(&msg(1, 1000)).unwrap();
    // Prefaulting a mapping with a message in it (as a late `open` does) changes nothing.
    let other = Queue::open_with(&path, &opts).unwrap();
    if cfg!(target_os = "linux") {
        // MADV_POPULATE_WRITE needs Linux 5.14; older kernels refuse and nothing happens.
        let _ = other.data.prefault();
    }
    assert_eq!(other.try_get().unwrap(), Some(msg(1, 1000)));
    assert!(other.try_get().unwrap().is_none());
    q.unlink().unwrap();
}

/// Producers on separate handles of one file (as separate processes would be) each keep their
/// own view of `reclaim`: a stale one must never let a producer overwrite unread records.
#[test]
#[cfg_attr(miri, ignore)] // files in /dev/shm
fn producers_on_separate_handles_never_overwrite_unread_records() {
    let path = std::env::temp_dir().join(format!("mmapipc-test-handles-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let q = Queue::create(&path, 1024).unwrap();
    const P: usize = 3;
    const N: usize = 5_000;
    let body = |p: usize, i: usize| -> Vec<u8> {
        let len = 8 + (i * 7 + p * 13) % 90;
        let mut m = vec![(i as u8) ^ (p as u8 * 85); len];
        m[..8].copy_from_slice(&((p * N + i) as u64).to_le_bytes());
        m
    };
    let hs: Vec<_> = (0..P)
        .map(|p| {
            let h = Queue::open(&path).unwrap();
            std::thread::spawn(move || {
                for i in 0..N {
                    h.put(&body(p, i)).unwrap();
                }
            })
        })
        .collect();
    let c = Queue::open(&path).unwrap();
    let mut next = [0usize; P];
    for _ in 0..P * N {
        let m = c.get_timeout(Some(Duration::from_secs(10))).unwrap().expect("a message");
        let k = u64::from_le_bytes(m[..8].try_into().unwrap()) as usize;
        let (p, i) = (k / N, k % N);
        assert_eq!(i, next[p], "order of producer {p}");
        assert_eq!(m, body(p, i), "message {i} of producer {p} was overwritten");
        next[p] += 1;
    }
    for h in hs {
        h.join().unwrap();
    }
    q.unlink().unwrap();
}

#[test]
fn threads_mpmc_exactly_once_in_order() {
    let q = Arc::new(Queue::heap(4096).unwrap());
    const P: usize = 3;
    const N: usize = if cfg!(miri) { 50 } else { 20_000 };
    let mut hs = vec![];
    for p in 0..P {
        let q = q.clone();
        hs.push(std::thread::spawn(move || {
            let mut i = 0usize;
            while i < N {
                if i % 3 == 0 && i + 8 <= N {
                    let batch: Vec<Vec<u8>> =
                        (i..i + 8).map(|k| [p as u8].into_iter().chain((k as u64).to_le_bytes()).collect()).collect();
                    let refs: Vec<&[u8]> = batch.iter().map(|b| b.as_slice()).collect();
                    assert_eq!(q.put_batch(&refs).unwrap(), 8);
                    i += 8;
                } else {
                    let m: Vec<u8> = [p as u8].into_iter().chain((i as u64).to_le_bytes()).collect();
                    q.put(&m).unwrap();
                    i += 1;
                }
            }
        }));
    }
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut cs = vec![];
    for c in 0..3 {
        let q = q.clone();
        let total = total.clone();
        cs.push(std::thread::spawn(move || {
            let mut last = [None::<u64>; P];
            let mut seen = vec![];
            loop {
                let mut got = vec![];
                match c {
                    0 => got.extend(q.get_timeout(Some(Duration::from_millis(50))).unwrap()),
                    1 => got = q.get_batch_timeout(16, Some(Duration::from_millis(50))).unwrap(),
                    _ => got.extend(
                        q.get_views_timeout(4, Some(Duration::from_millis(50))).unwrap().iter().map(|v| v.to_vec()),
                    ),
                }
                if got.is_empty() {
                    if total.load(std::sync::atomic::Ordering::SeqCst) == P * N {
                        break;
                    }
                    continue;
                }
                for m in got {
                    let p = m[0] as usize;
                    let s = u64::from_le_bytes(m[1..9].try_into().unwrap());
                    assert!(last[p].is_none_or(|l| s > l), "order broken for producer {p}");
                    last[p] = Some(s);
                    seen.push((p, s));
                    total.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            seen
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let mut all: Vec<(usize, u64)> = cs.into_iter().flat_map(|c| c.join().unwrap()).collect();
    all.sort();
    assert_eq!(all.len(), P * N);
    all.dedup();
    assert_eq!(all.len(), P * N, "duplicates");
}

#[test]
fn fixed_views_are_one_strided_run_held_until_dropped() {
    let q = Arc::new(Queue::heap(1024).unwrap());
    for i in 0..10 {
        assert!(q.try_put(&msg(i, 24)).unwrap()); // 40 bytes each
    }
    let b = q.get_fixed_views(4, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!((b.count(), b.stride(), b.message_len(), b.span()), (4, 40, 24, 3 * 40 + 24));
    for i in 0..4 {
        assert_eq!(b.get(i).unwrap(), msg(i, 24).as_slice());
        // SAFETY: record i's payload lies within the span the batch holds.
        let raw = unsafe { std::slice::from_raw_parts(b.as_ptr().add(i * b.stride()), 24) };
        assert_eq!(raw, msg(i, 24).as_slice(), "payload i is at i * stride");
    }
    assert!(b.get(4).is_none());
    assert_eq!(q.len(), 6, "max is respected; the rest waits");
    let rest = q.get_fixed_views(100, 24, None).unwrap().unwrap();
    assert_eq!(rest.count(), 6);
    assert_eq!(rest.get(0).unwrap(), msg(4, 24).as_slice());
    assert!(q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().is_none());
    assert!(q.get_fixed_views(100, 24, Some(Duration::from_millis(5))).unwrap().is_none(), "timed out");
    // 400 of 1024 bytes are held: a message needing more than the 624 left cannot go in.
    assert!(!q.try_put(&[0; 620]).unwrap(), "held slots are not reused");
    drop(rest);
    assert!(!q.try_put(&[0; 620]).unwrap(), "space is reclaimed in ring order: the first batch pins it");
    assert_eq!(b.get(3).unwrap(), msg(3, 24).as_slice(), "still intact");
    drop(b);
    assert!(q.try_put(&[0; 620]).unwrap(), "both batches released");
    let s = q.stats();
    assert_eq!((s.messages_out, s.bytes_out), (10, 240));
}

#[test]
fn fixed_views_stop_at_the_wrap_and_before_another_size() {
    // 256 bytes: 6 records of 40 (240) leave 16, so the 7th goes after a padding record at 0.
    let q = Arc::new(Queue::heap(256).unwrap());
    for i in 0..6 {
        assert!(q.try_put(&msg(i, 24)).unwrap());
    }
    let b = q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!(b.count(), 6);
    drop(b);
    for i in 6..9 {
        assert!(q.try_put(&msg(i, 24)).unwrap());
    }
    let b = q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!(b.count(), 3, "the padding is skipped; the run starts at index 0");
    assert_eq!(b.get(0).unwrap(), msg(6, 24).as_slice());
    drop(b);
    // Records at 120..240, then one after the wrap: a run never spans the end of the ring.
    for i in 9..13 {
        assert!(q.try_put(&msg(i, 24)).unwrap());
    }
    let b = q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!((b.count(), b.get(0).unwrap()), (3, msg(9, 24).as_slice()), "120..240");
    let c = q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!((c.count(), c.get(0).unwrap()), (1, msg(12, 24).as_slice()), "after the wrap");
    drop((b, c));
    assert!(q.try_put(&msg(20, 24)).unwrap());
    assert!(q.try_put(b"short").unwrap());
    assert!(q.try_put(&msg(21, 24)).unwrap());
    let b = q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!(b.count(), 1, "stops before a record of another length");
    drop(b);
    assert_eq!(
        q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap_err(),
        QueueError::WrongSize { len: 5, expected: 24 }
    );
    let b = q.get_fixed_views(100, 24, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!(b.get(0).unwrap(), msg(21, 24).as_slice(), "the odd record was taken and discarded, nothing else");
    drop(b);
    assert!(q.is_empty());
    assert!(q.try_put(&[1; 200]).unwrap(), "every slot was released");
}

#[test]
fn fixed_views_of_a_dead_consumer_are_reclaimed() {
    let q = Arc::new(Queue::heap(256).unwrap());
    for i in 0..4 {
        q.try_put(&msg(i, 40)).unwrap(); // 56 bytes each
    }
    let b = q.get_fixed_views(4, 40, Some(Duration::ZERO)).unwrap().unwrap();
    assert_eq!(b.count(), 4);
    let dead = crate::owner::encode(crate::process::exited_process());
    for i in 0..4u64 {
        q.owner((b.pos + i * b.stride() as u64) % q.cap).store(dead, Ordering::Relaxed);
    }
    drop(b); // not ours any more (as in a forked child): releases nothing
    assert!(!q.try_put(&[0; 100]).unwrap());
    assert!(q.put_timeout(&[0; 100], Some(Duration::from_secs(5))).unwrap());
    assert_eq!(q.stats().view_recoveries, 4);
}

#[test]
fn heap_queues_follow_the_capacity_rule() {
    assert!(matches!(Queue::heap(MIN_CAPACITY - 1), Err(crate::OpenError::InvalidArgument(_))));
    assert_eq!(Queue::heap(MIN_CAPACITY + 1).unwrap().capacity(), MIN_CAPACITY + 8);
    assert!(Queue::heap(MAX_CAPACITY + 1).is_err());
}

#[test]
fn peek_shows_waiting_messages_without_taking_them() {
    let q = Queue::heap(256).unwrap();
    for i in 0..4 {
        assert!(q.try_put(&msg(i, 10)).unwrap()); // 32 bytes each
    }
    let p = q.peek_committed(None, 2).unwrap();
    assert_eq!(p.records, vec![(64, msg(2, 10)), (96, msg(3, 10))], "the last two, oldest first");
    assert_eq!((p.next, p.missed), (128, false));
    assert_eq!(q.len(), 4, "nothing was taken");
    // A consumer takes two, then a tool continues from where it stopped and from before.
    q.try_get_batch(2).unwrap();
    assert!(q.try_put(&msg(4, 10)).unwrap());
    let p = q.peek_committed(Some(128), 8).unwrap();
    assert_eq!((p.records, p.next, p.missed), (vec![(128, msg(4, 10))], 160, false));
    let p = q.peek_committed(Some(0), 8).unwrap();
    assert_eq!(p.records.len(), 3);
    assert!(p.missed, "records from 0 on were taken");
    // A corrupt record that nobody may reuse yet is an error.
    q.head(128 % q.cap).store(head_word(10, 0x1234), Ordering::Relaxed);
    assert!(matches!(q.peek_committed(None, 8), Err(QueueError::Corrupt { .. })));
}

fn corrupt_run(q: &Arc<Queue>) {
    // Every operation must return (Ok or Err), never panic or hang.
    let _ = q.len();
    let _ = q.try_put(b"hello");
    let _ = q.try_put_batch(&[b"a", b"bb"]);
    let _ = q.try_get();
    let _ = q.try_get_batch(8);
    let _ = q.try_get_views(8);
    for len in [3, 10, 24] {
        // Touch every byte a fixed batch claims to hold: out of bounds would crash (or fail Miri).
        if let Ok(Some(b)) = q.get_fixed_views(8, len, Some(Duration::ZERO)) {
            let sum: u64 = (0..b.count()).flat_map(|i| b.get(i).unwrap().to_vec()).map(u64::from).sum();
            std::hint::black_box(sum);
        }
    }
    let _ = q.advance_reclaim(false);
    let _ = q.clear();
    let _ = q.len();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]

    #[test]
    fn any_message_sizes_roundtrip(lens in proptest::collection::vec(0usize..300, 1..60)) {
        let q = Queue::heap(512).unwrap();
        let mut out = std::collections::VecDeque::new();
        for (i, &len) in lens.iter().enumerate() {
            let m = msg(i, len.min(q.max_message_size()));
            while !q.try_put(&m).unwrap() {
                prop_assert_eq!(q.try_get().unwrap(), out.pop_front());
            }
            out.push_back(m);
            prop_assert_eq!(q.len(), out.len());
        }
        while let Some(m) = out.pop_front() {
            prop_assert_eq!(q.try_get().unwrap(), Some(m));
        }
        prop_assert!(q.is_empty());
    }

    #[test]
    fn random_control_words_never_panic(
        tail in any::<u64>(), read in any::<u64>(), reclaim in any::<u64>(), small in any::<bool>(),
        junk in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let q = Arc::new(Queue::heap(256).unwrap());
        q.try_put(b"abc").unwrap();
        let (tail, read, reclaim) = if small { (tail % 600, read % 600, reclaim % 600) } else { (tail, read, reclaim) };
        q.ctrl().tail.value.store(tail, Ordering::Relaxed);
        q.ctrl().read.value.store(read, Ordering::Relaxed);
        q.ctrl().reclaim.value.store(reclaim, Ordering::Relaxed);
        // SAFETY: the heap region's data area is 256 bytes; junk is at most 256.
        unsafe { std::ptr::copy_nonoverlapping(junk.as_ptr(), q.data_ptr(), junk.len()) };
        corrupt_run(&q);
    }

    #[test]
    fn random_records_never_panic(junk in proptest::collection::vec(any::<u8>(), 256), fill in 1usize..8) {
        let q = Arc::new(Queue::heap(256).unwrap());
        for i in 0..fill {
            let _ = q.try_put(&msg(i, 10 + i * 5));
        }
        // SAFETY: the heap region's data area is 256 bytes.
        unsafe { std::ptr::copy_nonoverlapping(junk.as_ptr(), q.data_ptr(), 256) };
        corrupt_run(&q);
    }
}

/// Frames (records over a third of the capacity, two fit): when every view of the previous one
/// is released, the next goes to offset 0 again; while one is held, the next goes to the other
/// half (the padding before the held frame is reclaimed), and stays FIFO.
#[test]
fn frames_reuse_the_released_half_and_pipeline_while_one_is_held() {
    const F: usize = 1000;
    let q = Queue::heap(2 * (F + 64)).unwrap();
    let frame = |i: u8| vec![i; F];
    assert!(q.try_put(&frame(1)).unwrap());
    let first = {
        let v = q.try_get_view().unwrap().unwrap();
        assert_eq!(*v, frame(1)[..]);
        v.as_ptr()
    };
    assert!(q.try_put(&frame(2)).unwrap());
    let held = q.try_get_view().unwrap().unwrap();
    assert_eq!(held.as_ptr(), first, "a frame after a released one reuses its bytes");
    assert!(q.try_put(&frame(3)).unwrap(), "the padding before a held frame is reclaimed");
    assert!(!q.try_put(&frame(4)).unwrap(), "two frames fill the queue");
    let v = q.try_get_view().unwrap().unwrap();
    assert_eq!(*v, frame(3)[..]);
    assert_ne!(v.as_ptr(), first, "written while frame 2 was held: the other half");
    assert_eq!(*held, frame(2)[..], "still intact");
    drop((held, v));
    assert!(q.try_put(&frame(4)).unwrap());
    assert_eq!(q.try_get().unwrap(), Some(frame(4)));
    assert_eq!(q.try_get().unwrap(), None);
}
