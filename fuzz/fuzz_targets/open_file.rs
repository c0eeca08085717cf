//! cargo-fuzz target: see `mmapipc/tests/hostile/mod.rs` (`open_file`).
#![no_main]

#[path = "../../mmapipc/tests/hostile/mod.rs"]
mod hostile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hostile::open_file(data);
});
