//! cargo-fuzz target: see `mmapipc/tests/hostile/mod.rs` (`ring_hostile`).
#![no_main]

#[path = "../../mmapipc/tests/hostile/mod.rs"]
mod hostile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hostile::ring_hostile(data);
});
