//! cargo-fuzz target: see `mmapipc/tests/hostile/mod.rs` (`typed_access`).
#![no_main]

#[path = "../../mmapipc/tests/hostile/mod.rs"]
mod hostile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hostile::typed_access(data);
});
