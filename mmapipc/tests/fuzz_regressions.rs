//! Stable-toolchain smoke run of the fuzz harnesses (`fuzz/` runs them under libFuzzer on
//! nightly) plus regression inputs for anything the fuzzers found. The harnesses live in
//! `tests/hostile/mod.rs`, shared with the fuzz targets; each must return normally on any input
//! (they assert their own invariants: no message larger than the data area, no read past the
//! end of a region, no archive larger than its bytes).

mod hostile;

use hostile::Outcome;
use proptest::prelude::*;
use std::sync::atomic::Ordering;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn open_file_raw_bytes_error_or_valid(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut input = vec![0u8]; // mode: the bytes are the whole file
        input.extend_from_slice(&data);
        let o = hostile::open_file(&input);
        // Random bytes almost never form a header; whatever happens, every kind answered.
        prop_assert!(o.opened + o.errors >= 4, "{:?}", o);
    }

    #[test]
    fn open_file_patched_error_or_valid(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut input = vec![1u8]; // mode: a valid file with the bytes as patches
        input.extend_from_slice(&data);
        let o = hostile::open_file(&input);
        prop_assert!(o.opened + o.errors >= 4, "{:?}", o);
    }

    #[test]
    fn ring_hostile_peer_error_or_valid(data in proptest::collection::vec(any::<u8>(), 1..256)) {
        hostile::ring_hostile(&data);
    }

    #[test]
    fn queue_hostile_peer_error_or_valid(data in proptest::collection::vec(any::<u8>(), 1..256)) {
        hostile::queue_hostile(&data);
    }

    #[test]
    fn typed_access_error_or_valid(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let o = hostile::typed_access(&data);
        prop_assert_eq!(o.messages + o.errors, if data.is_empty() { 0 } else { 2 });
    }
}

/// Without patches the harnesses see the messages they wrote: they reach the real read paths.
#[test]
fn harnesses_read_real_messages_when_unpatched() {
    // 5 messages, no patches.
    let ring = hostile::ring_hostile(&[5]);
    assert_eq!((ring.opened, ring.errors), (1, 0), "{ring:?}");
    assert!(ring.messages >= 5, "{ring:?}");
    let q = hostile::queue_hostile(&[5]);
    assert_eq!(q.errors, 0, "{q:?}");
    assert!(q.messages >= 3, "{q:?}"); // 5 written, 2 taken at creation
    let typed = hostile::open_file(&[1, 3, 3]);
    assert!(typed.opened >= 1 && typed.messages >= 3, "{typed:?}");
    let frame = hostile::typed_access(&hostile::typed_seed(false));
    assert!(frame.messages >= 1, "{frame:?}");
    let tensor = hostile::typed_access(&hostile::typed_seed(true));
    assert!(tensor.messages >= 1, "{tensor:?}");
}

/// Valid files of every kind, patched at every 8-byte stride of header, control block and data
/// with all-ones: deterministic coverage of "a hostile peer zaps one word".
#[test]
fn every_word_zapped_in_turn() {
    let mut total = Outcome::default();
    for kind in 0u8..4 {
        for off in (0u16..2048).step_by(8) {
            let [lo, hi] = off.to_le_bytes();
            let input = [1u8, kind, 5, lo, hi, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
            let o = hostile::open_file(&input);
            total.opened += o.opened;
            total.messages += o.messages;
            total.errors += o.errors;
        }
    }
    // Zapped headers are refused, zapped records reported, the rest still delivers.
    assert!(total.opened > 0 && total.messages > 0 && total.errors > 0, "{total:?}");
}

/// Writes seed inputs for the cargo-fuzz corpora (`fuzz/corpus/<target>/seed-*`): valid
/// archives, whole valid files of each kind, unpatched hostile setups. A tool, not a check:
/// `cargo test -p mmapipc --test fuzz_regressions -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    write("typed_access", "frame", &hostile::typed_seed(false));
    write("typed_access", "tensor", &hostile::typed_seed(true));
    for (i, kind) in ["shm", "ring", "queue", "typed"].iter().enumerate() {
        let file = hostile::valid_file_bytes(i as u8, 5);
        let mut raw = vec![0u8];
        raw.extend_from_slice(&file);
        write("open_file", &format!("raw-{kind}"), &raw);
        write("open_file", &format!("patched-{kind}"), &[1, i as u8, 5]);
    }
    for (name, seed) in [("plain", [5u8]), ("holding", [0x85])] {
        write("ring_hostile", name, &seed);
        write("queue_hostile", name, &seed);
    }
    assert!(root.join("typed_access/seed-frame").is_file());
}

// ----- regressions -----

/// Found by `queue_hostile_peer_error_or_valid`: a peer that sets both lock-recovery counters
/// near `u64::MAX` made `Queue::stats` overflow (a panic in debug builds).
#[test]
fn regression_stats_counters_near_max() {
    let tmp = hostile::TempPath::new("reg-stats");
    let q = mmapipc::Queue::create(&tmp.0, 4096).unwrap();
    let c = q.control_ptr();
    for off in [3 * 128 + 24, 6 * 128 + 24] {
        // SAFETY: the producer / consumer stats lines hold `lock_recoveries` at +24 (FORMAT.md,
        // ## Queue), 8-aligned inside the control block; written atomically as a peer would.
        unsafe { (*(c.add(off) as *const std::sync::atomic::AtomicU64)).store(u64::MAX - 1, Ordering::Relaxed) };
    }
    let s = q.stats();
    assert_eq!(s.lock_recoveries, (u64::MAX - 1).wrapping_mul(2));
}

/// Positions (`tail`, `read`, `reclaim`) set by a peer near `u64::MAX`: every operation must
/// report corruption or work, never overflow.
#[test]
fn regression_positions_near_max() {
    for (tail, read, reclaim) in [
        (u64::MAX - 7, u64::MAX - 7, u64::MAX - 7),
        (u64::MAX - 7, u64::MAX - 15, u64::MAX - 15),
        (!7, !7 - 64, !7 - 128),
        (8, 0, 0),
        (!7 - 4096, !7 - 4096, !7 - 4096),
    ] {
        let tmp = hostile::TempPath::new("reg-pos");
        let q = mmapipc::Queue::create(&tmp.0, 4096).unwrap();
        q.try_put(b"message").unwrap();
        let c = q.control_ptr();
        for (off, v) in [(2 * 128, tail), (5 * 128, read), (7 * 128, reclaim)] {
            // SAFETY: tail, read and reclaim are AtomicU64s at these offsets of the control block
            // (FORMAT.md, ## Queue); written atomically, as a peer would.
            unsafe { (*(c.add(off) as *const std::sync::atomic::AtomicU64)).store(v, Ordering::Relaxed) };
        }
        std::hint::black_box((q.len(), q.is_empty(), q.stats()));
        let _ = q.try_put(b"x");
        let _ = q.try_put_batch(&[b"a".as_slice(), &[1; 3000]]);
        let _ = q.put_timeout(&[1; 4000], Some(std::time::Duration::from_millis(2)));
        let _ = q.try_get();
        let _ = q.try_get_batch(4);
        let views = q.try_get_views(4);
        drop(views);
        std::hint::black_box((q.advance_reclaim(true), q.recover()));
        let _ = q.clear();
        // Whatever the peer did, the queue is still usable or says it is corrupt.
        match q.try_put(b"after") {
            Ok(_) => {}
            Err(e) => assert!(matches!(e, mmapipc::QueueError::Corrupt { .. }), "{e}"),
        }
    }
}

/// Ring positions (`tail` at file offset 128, `head` at 256; FORMAT.md, ## Ring) set by a peer
/// near `u64::MAX`, before the victim opens the ring and while it uses it: errors, never an
/// overflow.
#[test]
fn ring_positions_near_max() {
    let patch = |off: u16, v: u64| {
        let mut p = off.to_le_bytes().to_vec();
        p.push(7); // 8 bytes
        p.extend_from_slice(&v.to_le_bytes());
        p
    };
    for (tail, head) in [(!7, !7), (!7, !7 - 64), (!15, !15), (!7 - 4096, !7 - 4096), (!7, 0)] {
        for claim_first in [false, true] {
            let tmp = hostile::TempPath::new("reg-ring");
            let mut w = mmapipc::Ring::create(&tmp.0, 4096).unwrap();
            w.try_write(b"one").unwrap();
            let mut r = mmapipc::Ring::open(&tmp.0).unwrap();
            if claim_first {
                let _ = r.try_read().map(|g| g.map(|g| g.len()));
            }
            let mut patches = patch(128, tail);
            patches.extend(patch(256, head));
            hostile::patch_file(&tmp.0, &patches);
            for ring in [&mut w, &mut r] {
                let _ = ring.try_write(b"two");
                let _ = ring.try_write(&[1; 3000]);
                let _ = ring.try_read().map(|g| g.map(|g| g.len()));
                let _ = ring.read_batch(4, |m| {
                    std::hint::black_box(m.len());
                });
                std::hint::black_box((ring.len(), ring.available_read(), ring.available_write(), ring.stats()));
            }
            drop((w, r));
            // Again with no handle open (a live producer republishes its own tail).
            hostile::patch_file(&tmp.0, &patches);
            let mut again = mmapipc::Ring::open(&tmp.0).unwrap();
            let wrote = again.try_write(b"three").map(|_| ());
            let read = again.try_read().map(|g| g.map(|g| g.len())).map(|_| ());
            let corrupt = |r: &Result<(), mmapipc::RingError>| matches!(r, Err(mmapipc::RingError::Corrupt { .. }));
            for res in [&wrote, &read] {
                assert!(res.is_ok() || corrupt(res), "{res:?}");
            }
            if tail.wrapping_sub(head) > 4096 {
                assert!(corrupt(&wrote) && corrupt(&read), "{wrote:?} {read:?}");
            }
        }
    }
}
