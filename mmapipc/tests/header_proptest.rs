//! Random bytes in a file header give a typed error, never a panic; a single corrupted byte in
//! a valid header is either harmless (a reserved/informational field) or rejected.

use std::io::Write;
use std::path::PathBuf;

use mmapipc::{OpenError, SharedMemory};
use proptest::prelude::*;

fn path(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "mmapipc-hdr-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn plant(p: &PathBuf, bytes: &[u8]) {
    let mut f = std::fs::File::create(p).unwrap();
    f.write_all(bytes).unwrap();
}

fn valid_file() -> Vec<u8> {
    let p = path("valid");
    let shm = SharedMemory::create(&p, 64).unwrap();
    shm.write(0, b"payload").unwrap();
    drop(shm);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 256 }, ..ProptestConfig::default() })]

    #[test]
    fn random_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let p = path("random");
        plant(&p, &bytes);
        let r = SharedMemory::open(&p);
        std::fs::remove_file(&p).unwrap();
        prop_assert!(r.is_err(), "random bytes opened as a valid file");
    }

    #[test]
    fn one_corrupted_header_byte_is_rejected_or_harmless(at in 0usize..128, xor in 1u8..=255) {
        let mut bytes = valid_file();
        bytes[at] ^= xor;
        let p = path("flip");
        plant(&p, &bytes);
        let r = SharedMemory::open(&p);
        std::fs::remove_file(&p).unwrap();
        // Informational fields: creator pid/start time, creation time, reserved bytes.
        let harmless = (80..128).contains(&at);
        match r {
            Ok(shm) => {
                prop_assert!(harmless, "corrupted byte {} accepted", at);
                prop_assert_eq!(shm.read(0, 7).unwrap(), b"payload".to_vec());
            }
            Err(e) => {
                prop_assert!(!harmless, "harmless byte {} rejected: {}", at, e);
                let typed = matches!(e,
                    OpenError::BadMagic { .. } | OpenError::NotReady { .. } | OpenError::CorruptHeader { .. }
                    | OpenError::UnsupportedVersion { .. } | OpenError::AbiMismatch { .. }
                    | OpenError::WrongKind { .. } | OpenError::Truncated { .. });
                prop_assert!(typed, "unexpected error {:?}", e);
            }
        }
    }
}

/// Every header byte, corrupted in several ways: rejected unless informational (deterministic
/// companion of the proptest above, so no position is left to chance).
#[test]
fn every_header_byte_is_checked() {
    let good = valid_file();
    let p = path("every");
    for at in 0..128 {
        for xor in [0x01u8, 0x80, 0xff] {
            let mut bytes = good.clone();
            bytes[at] ^= xor;
            plant(&p, &bytes);
            let accepted = SharedMemory::open(&p).is_ok();
            assert_eq!(accepted, (80..128).contains(&at), "byte {at} ^ {xor:#x}: accepted = {accepted}");
        }
    }
    std::fs::remove_file(&p).unwrap();
}
