//! Ring benchmarks between two processes: this binary re-executes itself as the peer.
//!
//! * `ring_throughput/<size>`: producer (this process) `try_write`s messages of 8 B .. 8 MiB,
//!   the consumer process `try_read`s each one and touches every cache line of it.
//! * `reference/minimal_ring_64B`: a minimal hand-written SPSC ring (fixed 64-byte slots, cached
//!   indices, no framing, no waiting) between the same two kinds of process: the physical
//!   reference for 64 B messages.
//! * `reference/memcpy_8MiB`: single-core memcpy of 8 MiB, the reference for large messages.
//! * `ring_vs_minimal/{ring,minimal}_64B`: the two 64 B rows again, then timed interleaved in
//!   rounds together with the minimal ring moving 72-byte slots (our record size for a 64 B
//!   message), printing the median per-round throughput ratios.
//! * `round_trip/ring`: ping-pong through two rings (spinning), vs `round_trip/bare_cache_line`:
//!   two processes bouncing a counter through two cache lines. After criterion's measurement of
//!   each, the same ping-pong is timed round trip by round trip and the run ends with a table of
//!   p50/p99/p99.9/max, also written to `target/criterion/latency-percentiles-ring.json` (method:
//!   `benches/latency/mod.rs`); only round-trip benchmarks the filter selects are sampled.
//!
//! Run: `cargo bench -p mmapipc --bench ring` (add `-- --quick` for a fast pass; a filter such
//! as `-- 64B` or `-- round_trip` selects benchmarks).

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mmapipc::{Ring, SharedMemory};

mod latency;

const CHILD_ENV: &str = "MMAPIPC_RING_BENCH_CHILD";

// ----- the peer process -----

/// Folds one 8-byte word per cache line of `m` (and its last byte): the consumer touches the
/// whole message without turning the benchmark into a checksum benchmark.
#[inline]
fn touch(m: &[u8]) -> u64 {
    let mut acc = m.len() as u64;
    let mut i = 0;
    while i + 8 <= m.len() {
        acc = acc.wrapping_add(u64::from_le_bytes(m[i..i + 8].try_into().unwrap_or([0; 8])));
        i += 64;
    }
    acc ^ u64::from(m.last().copied().unwrap_or(0))
}

fn child(spec: &str) {
    let (mode, rest) = spec.split_once(':').expect("mode:path");
    match mode {
        "ring-consume" => {
            let mut ring = Ring::open(rest).unwrap();
            let mut acc = 0u64;
            loop {
                match ring.try_read().unwrap() {
                    Some(g) => acc = acc.wrapping_add(touch(&g)),
                    None => std::hint::spin_loop(),
                }
                black_box(acc);
            }
        }
        "ring-echo" => {
            let (a, b) = rest.split_once('|').unwrap();
            let mut ping = Ring::open(a).unwrap();
            let mut pong = Ring::open(b).unwrap();
            let mut buf = [0u8; 8];
            loop {
                let got = match ping.try_read().unwrap() {
                    Some(g) => {
                        buf.copy_from_slice(&g[..8]);
                        true
                    }
                    None => false,
                };
                if got {
                    while !pong.try_write(&buf).unwrap() {}
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        "mini-consume" => mini_consume::<MINI_SLOT>(rest),
        "mini72-consume" => mini_consume::<MINI_SLOT_FRAMED>(rest),
        "line-echo" => {
            let shm = SharedMemory::open(rest).unwrap();
            latency::line_echo(&shm);
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// The minimal ring's consumer (a child process): reads `S`-byte slots forever, touching every
/// cache line of each.
fn mini_consume<const S: usize>(path: &str) {
    let shm = SharedMemory::open(path).unwrap();
    let mut ring = MiniRing::<S>::new(&shm);
    let mut acc = 0u64;
    loop {
        if !ring.try_read(|m| acc = acc.wrapping_add(touch(m))) {
            std::hint::spin_loop();
        }
        black_box(acc);
    }
}

struct Peer(Child);

impl Peer {
    fn spawn(spec: String) -> Peer {
        let exe = std::env::current_exe().unwrap();
        Peer(Command::new(exe).env(CHILD_ENV, spec).spawn().unwrap())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mmapipc-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

// ----- a minimal hand-written SPSC ring (the physical reference) -----

const MINI_SLOTS: u64 = 4096; // 64-byte slots: a 256 KiB ring
const MINI_SLOT: usize = 64;
/// A slot as large as our ring's record for a 64 B message (8-byte header + 64 bytes): the
/// minimal ring with it shows what the framing alone costs.
const MINI_SLOT_FRAMED: usize = 72;

/// head at offset 0, tail at offset 128, slots from offset 256. Fixed `S`-byte messages, each
/// side caching the other's index: nothing this ring could drop and still be correct.
struct MiniRing<'a, const S: usize = MINI_SLOT> {
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    slots: *mut u8,
    pos: u64,
    cached: u64,
}

impl<'a, const S: usize> MiniRing<'a, S> {
    fn new(shm: &'a SharedMemory) -> MiniRing<'a, S> {
        assert!(shm.size() >= 256 + (MINI_SLOTS as usize) * S);
        let base = shm.as_ptr();
        // SAFETY: offsets 0 and 128 are 8-aligned (page-aligned user area) and inside the region;
        // both words are only ever accessed atomically.
        let (head, tail) = unsafe { (&*(base as *const AtomicU64), &*(base.add(128) as *const AtomicU64)) };
        // SAFETY: offset 256 is inside the region (asserted).
        let slots = unsafe { base.add(256) };
        MiniRing { head, tail, slots, pos: 0, cached: 0 }
    }

    #[inline]
    fn try_write(&mut self, m: &[u8; S]) -> bool {
        if self.pos - self.cached == MINI_SLOTS {
            self.cached = self.head.load(Ordering::Acquire);
            if self.pos - self.cached == MINI_SLOTS {
                return false;
            }
        }
        // SAFETY: the slot is inside the region and released by the consumer (head acquired).
        unsafe { std::ptr::copy_nonoverlapping(m.as_ptr(), self.slots.add(((self.pos % MINI_SLOTS) as usize) * S), S) };
        self.pos += 1;
        self.tail.store(self.pos, Ordering::Release);
        true
    }

    #[inline]
    fn try_read(&mut self, f: impl FnOnce(&[u8])) -> bool {
        if self.pos == self.cached {
            self.cached = self.tail.load(Ordering::Acquire);
            if self.pos == self.cached {
                return false;
            }
        }
        // SAFETY: the slot is inside the region and published by the producer (tail acquired).
        let m = unsafe { std::slice::from_raw_parts(self.slots.add(((self.pos % MINI_SLOTS) as usize) * S), S) };
        f(m);
        self.pos += 1;
        self.head.store(self.pos, Ordering::Release);
        true
    }

    fn drained(&self) -> bool {
        self.head.load(Ordering::Acquire) == self.pos
    }
}

// ----- benchmarks -----

fn wait_drained(ring: &Ring) {
    while ring.available_read() != 0 {
        std::hint::spin_loop();
    }
}

fn ring_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_throughput");
    for (label, size) in [
        ("8B", 8usize),
        ("56B", 56),
        ("64B", 64),
        ("1KiB", 1 << 10),
        ("64KiB", 64 << 10),
        ("1MiB", 1 << 20),
        ("8MiB", 8 << 20),
    ] {
        let path = tmp(&format!("tp-{label}"));
        // Small messages: the same 256 KiB of ring as the minimal reference ring.
        let capacity = (4 * (size + 8)).max(256 << 10);
        let mut ring = Ring::create(&path, capacity).unwrap();
        ring.claim_producer().unwrap();
        // The peer starts when criterion runs the benchmark (not when a filter leaves it out).
        let spec = format!("ring-consume:{}", path.display());
        let mut peer: Option<Peer> = None;
        let msg: Vec<u8> = (0..size).map(|i| i as u8).collect();
        if size >= 64 << 10 {
            g.throughput(Throughput::Bytes(size as u64));
        } else {
            g.throughput(Throughput::Elements(1));
        }
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            peer.get_or_insert_with(|| Peer::spawn(spec.clone()));
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    while !ring.try_write(&msg).unwrap() {
                        std::hint::spin_loop();
                    }
                }
                wait_drained(&ring);
                t.elapsed()
            })
        });
        let st = ring.stats();
        if std::env::var_os("MMAPIPC_BENCH_STATS").is_some() {
            eprintln!("{label}: {st:?}");
        }
        ring.unlink().unwrap();
    }
    g.finish();
}

fn references(c: &mut Criterion) {
    let mut g = c.benchmark_group("reference");
    {
        let path = tmp("mini");
        let shm = SharedMemory::create(&path, 256 + MINI_SLOTS as usize * MINI_SLOT).unwrap();
        let spec = format!("mini-consume:{}", path.display());
        let mut peer: Option<Peer> = None;
        let mut ring = MiniRing::<MINI_SLOT>::new(&shm);
        let msg = [7u8; MINI_SLOT];
        g.throughput(Throughput::Elements(1));
        g.bench_function("minimal_ring_64B", |b| {
            peer.get_or_insert_with(|| Peer::spawn(spec.clone()));
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    while !ring.try_write(&msg) {
                        std::hint::spin_loop();
                    }
                }
                while !ring.drained() {
                    std::hint::spin_loop();
                }
                t.elapsed()
            })
        });
        shm.unlink().unwrap();
    }
    {
        let size = 8 << 20;
        let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut dst = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("memcpy_8MiB", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

/// `ring_vs_minimal/{ring,minimal}_64B`: the two 64 B throughput benchmarks side by side, then
/// (in benchmark mode, when both ran) measured again interleaved: 10 rounds, each timing a
/// stretch of messages through our ring and then through the minimal ring, with only that
/// transport's consumer running (the other one is stopped with `SIGSTOP`). A round's ratio
/// compares two measurements taken a few milliseconds apart, so the machine's load moves both;
/// the median of the rounds' ratios is the number to quote. Criterion's rows, taken seconds
/// apart, swing too much on a shared 2-core machine for their quotient to mean much.
fn ring_vs_minimal(c: &mut Criterion, report: &latency::Report) {
    let mut g = c.benchmark_group("ring_vs_minimal");
    g.throughput(Throughput::Elements(1));

    let ring_path = tmp("vs-ring");
    let mut ring = Ring::create(&ring_path, 256 << 10).unwrap();
    ring.claim_producer().unwrap();
    let ring_peer = Peer::spawn(format!("ring-consume:{}", ring_path.display()));
    let msg = [7u8; MINI_SLOT];
    let mut ring_burst = |n: u64| {
        for _ in 0..n {
            while !ring.try_write(&msg).unwrap() {
                std::hint::spin_loop();
            }
        }
        wait_drained(&ring);
    };
    let ring_ran = latency::bench_throughput(&mut g, "ring_64B", &mut ring_burst);
    latency::pause(ring_peer.0.id(), true);

    let mini_path = tmp("vs-mini");
    let shm = SharedMemory::create(&mini_path, 256 + MINI_SLOTS as usize * MINI_SLOT).unwrap();
    let mini_peer = Peer::spawn(format!("mini-consume:{}", mini_path.display()));
    let mut mini = MiniRing::<MINI_SLOT>::new(&shm);
    let mut mini_burst = |n: u64| {
        for _ in 0..n {
            while !mini.try_write(&msg) {
                std::hint::spin_loop();
            }
        }
        while !mini.drained() {
            std::hint::spin_loop();
        }
    };
    let mini_ran = latency::bench_throughput(&mut g, "minimal_64B", &mut mini_burst);
    latency::pause(mini_peer.0.id(), true);
    g.finish();

    let (enabled, quick) = report.mode();
    if enabled && ring_ran && mini_ran {
        // A third transport, information only: the minimal ring moving 72-byte slots, the size
        // of our ring's record for a 64 B message, to separate the cost of framing (a 64 B
        // message takes more than one cache line) from the cost of the implementation.
        let framed_path = tmp("vs-mini72");
        let framed_shm = SharedMemory::create(&framed_path, 256 + MINI_SLOTS as usize * MINI_SLOT_FRAMED).unwrap();
        let framed_peer = Peer::spawn(format!("mini72-consume:{}", framed_path.display()));
        let mut framed = MiniRing::<MINI_SLOT_FRAMED>::new(&framed_shm);
        let framed_msg = [7u8; MINI_SLOT_FRAMED];
        let mut framed_burst = |n: u64| {
            for _ in 0..n {
                while !framed.try_write(&framed_msg) {
                    std::hint::spin_loop();
                }
            }
            while !framed.drained() {
                std::hint::spin_loop();
            }
        };
        latency::pause(framed_peer.0.id(), true);
        let n = if quick { 200_000 } else { 1_000_000 };
        let rounds = latency::interleave(
            10,
            n,
            &mut [
                (ring_peer.0.id(), &mut ring_burst),
                (framed_peer.0.id(), &mut framed_burst),
                (mini_peer.0.id(), &mut mini_burst),
            ],
        );
        latency::print_ratio("ring 64 B vs minimal ring 64 B", "ring", &["ring", "minimal_72B", "minimal"], n, &rounds);
        drop(framed_peer);
        framed_shm.unlink().unwrap();
    }
    drop((ring_peer, mini_peer));
    ring.unlink().unwrap();
    shm.unlink().unwrap();
}

fn round_trip(c: &mut Criterion, report: &mut latency::Report) {
    let mut g = c.benchmark_group("round_trip");

    let (a, b) = (tmp("ping"), tmp("pong"));
    let mut ping = Ring::create(&a, 4096).unwrap();
    let mut pong = Ring::create(&b, 4096).unwrap();
    let ring_peer = Peer::spawn(format!("ring-echo:{}|{}", a.display(), b.display()));
    let mut seq = 0u64;
    let mut ring_rt = || {
        seq += 1;
        while !ping.try_write(&seq.to_le_bytes()).unwrap() {}
        loop {
            if let Some(m) = pong.try_read().unwrap() {
                debug_assert_eq!(&m[..], &seq.to_le_bytes());
                break;
            }
            std::hint::spin_loop();
        }
    };
    let ring_selected = latency::bench(&mut g, "ring", &mut ring_rt);
    latency::pause(ring_peer.0.id(), true); // one spinning peer at a time

    let path = tmp("lines");
    let shm = SharedMemory::create(&path, 256).unwrap();
    let line_peer = Peer::spawn(format!("line-echo:{}", path.display()));
    let (line_ping, line_pong) = latency::lines(&shm);
    let mut line_seq = 0u64;
    let mut line_rt = || latency::line_round_trip(line_ping, line_pong, &mut line_seq);
    let line_selected = latency::bench(&mut g, "bare_cache_line", &mut line_rt);
    latency::pause(line_peer.0.id(), true);
    g.finish();

    report.sample([
        latency::subject("round_trip/ring", ring_selected, ring_peer.0.id(), ring_rt),
        latency::subject(latency::BARE, line_selected, line_peer.0.id(), line_rt),
    ]);
    drop((ring_peer, line_peer));
    for p in [a, b] {
        let _ = std::fs::remove_file(p);
    }
    shm.unlink().unwrap();
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    ring_throughput(&mut c);
    references(&mut c);
    let mut report = latency::Report::new("ring");
    ring_vs_minimal(&mut c, &report);
    round_trip(&mut c, &mut report);
    c.final_summary();
    report.finish();
}
