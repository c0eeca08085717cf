//! Stable-toolchain smoke run of the fuzz harnesses (`fuzz/` runs them under libFuzzer on
//! nightly) plus regression inputs for anything the fuzzers found. The harnesses live in
//! `tests/hostile/mod.rs`, shared with the fuzz targets; each must return normally on any input.

mod hostile;

use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn open_file_never_crashes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        hostile::open_file(&data);
    }

    #[test]
    fn ring_hostile_peer_never_crashes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        hostile::ring_hostile(&data);
    }

    #[test]
    fn queue_hostile_peer_never_crashes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        hostile::queue_hostile(&data);
    }

    #[test]
    fn typed_access_never_crashes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        hostile::typed_access(&data);
    }
}

/// Valid files of every kind, patched in their header, control block and data at every 8-byte
/// stride with all-ones: deterministic coverage of "a hostile peer zaps one word".
#[test]
fn every_word_zapped_in_turn() {
    for kind in 0u8..4 {
        for off in (0u16..2048).step_by(8) {
            let [lo, hi] = off.to_le_bytes();
            let input = [1u8, kind, 5, lo, hi, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
            hostile::open_file(&input);
        }
    }
}
