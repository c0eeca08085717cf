//! cargo-fuzz target: see `mmapipc/tests/hostile/mod.rs` (`queue_hostile`).
#![no_main]

#[path = "../../mmapipc/tests/hostile/mod.rs"]
mod hostile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hostile::queue_hostile(data);
});
