//! Typed vs raw: what the schema, rkyv serialization and bytecheck validation cost on top of the
//! byte ring, for a 32-byte `market.Tick` (the archived root is 32 bytes; the raw path moves the
//! same 32 bytes).
//!
//! * `typed_vs_raw/raw_bytes`: `try_write` 32 bytes + `try_read` (in one thread, no peer: this
//!   isolates per-message CPU cost; cross-process throughput is in the `ring` bench).
//! * `typed_vs_raw/typed_validated`: `send(&Tick)` (serialized into the slot) + `try_recv`
//!   (bytecheck-validated, read in place).
//! * `typed_vs_raw/typed_unchecked`: the same with `try_recv_unchecked`.
//!
//! Run: `cargo bench -p mmapipc --bench typed` (`-- --quick` for a fast pass). The target:
//! typed ≤ 1.2× raw.

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use mmapipc::Ring;
use mmapipc::TypedRing;

use example_types::Tick;

fn path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-bench-typed-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("typed_vs_raw");
    g.throughput(Throughput::Elements(1));
    let tick = Tick { timestamp_ns: 1, symbol: *b"AAPL\0\0\0\0", price: 189.5, size: 100, side: 1 };

    let p = path("raw");
    let mut raw = Ring::create(&p, 1 << 16).unwrap();
    let msg = [7u8; 32];
    g.bench_function("raw_bytes", |b| {
        b.iter(|| {
            assert!(raw.try_write(black_box(&msg)).unwrap());
            let m = raw.try_read().unwrap().unwrap();
            black_box(m[16]);
        })
    });
    std::fs::remove_file(&p).unwrap();

    let p = path("typed");
    let mut typed = TypedRing::<Tick>::create(&p, 1 << 16).unwrap();
    g.bench_function("typed_validated", |b| {
        b.iter(|| {
            assert!(typed.try_send(black_box(&tick)).unwrap());
            let m = typed.try_recv().unwrap().unwrap();
            black_box(m.price.to_native());
        })
    });
    g.bench_function("typed_unchecked", |b| {
        b.iter(|| {
            assert!(typed.try_send(black_box(&tick)).unwrap());
            // SAFETY: this process is the trusted producer of every message in the ring.
            let m = unsafe { typed.try_recv_unchecked() }.unwrap().unwrap();
            black_box(m.price.to_native());
        })
    });
    std::fs::remove_file(&p).unwrap();
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
