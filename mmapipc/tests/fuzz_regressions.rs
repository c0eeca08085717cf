//! Stable-toolchain smoke run of the fuzz harnesses (`fuzz/` runs them under libFuzzer on
//! nightly) plus regression inputs for anything the fuzzers found. The harnesses live in
//! `tests/hostile/mod.rs`, shared with the fuzz targets; each must return normally on any input
//! (they assert their own invariants: no message larger than the data area, no read past the
//! end of a region, no archive larger than its bytes).

mod hostile;

use hostile::Outcome;
use proptest::prelude::*;

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
