//! Cross-process queue throughput (criterion, `harness = false`).
//!
//! Producers and consumers run in separate processes: the bench re-executes itself
//! (`std::env::current_exe()`) with `MMAPIPC_QUEUE_PEER` set, and the peer runs one side.
//!
//! ```text
//! cargo bench -p mmapipc --bench queue             # full run
//! cargo bench -p mmapipc --bench queue -- --quick  # quick mode
//! ```
//!
//! Groups: `queue_1p1c/{single,batch64}/<size>` (bytes/s) for 8 B .. 8 MiB (`8B`, `64B`,
//! `1KiB`, `64KiB`, `1MiB`, `8MiB`: a filter such as `-- 8B` selects one size), and
//! `queue_aggregate/<P>p<C>c` for 1/1, 2/2, 4/4 and 8/8 (64 B messages, batches of 64;
//! elements/s = messages/s; 8/8 needs 16 cores to mean anything).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mmapipc::Queue;

const PEER_ENV: &str = "MMAPIPC_QUEUE_PEER";

/// Peer side: `role path count size batch`. Prints "ready", does its work, prints "done".
fn peer(spec: &str) {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [role, path, count, size, batch] = parts[..] else { panic!("bad peer spec {spec}") };
    let (count, size, batch): (u64, usize, usize) =
        (count.parse().unwrap(), size.parse().unwrap(), batch.parse().unwrap());
    let q = Queue::open(path).expect("peer open");
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap(); // "go"
    match role {
        "produce" => produce(&q, count, size, batch),
        "consume" => {
            // count == 0: until an empty message (stop sentinel).
            let mut got = 0u64;
            let mut stop = false;
            while !stop && (count == 0 || got < count) {
                if batch > 1 {
                    let mut stops = 0;
                    q.get_batch_with_timeout(batch, None, |m| {
                        stops += usize::from(m.is_empty());
                        got += 1;
                    })
                    .unwrap();
                    if stops > 1 {
                        // This batch took another consumer's stop sentinel: hand it back.
                        q.put_batch(&vec![&[][..]; stops - 1]).unwrap();
                    }
                    stop = stops > 0;
                } else {
                    q.get_with_timeout(None, |m| {
                        stop |= m.is_empty();
                        std::hint::black_box(m.first());
                    })
                    .unwrap();
                    got += 1;
                }
            }
        }
        _ => panic!("bad role"),
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

fn produce(q: &Queue, count: u64, size: usize, batch: usize) {
    let msg = vec![0xA5u8; size.max(1)];
    if batch > 1 {
        let refs: Vec<&[u8]> = (0..batch).map(|_| &msg[..]).collect();
        let mut sent = 0u64;
        while sent < count {
            let n = (count - sent).min(batch as u64) as usize;
            q.put_batch(&refs[..n]).unwrap();
            sent += n as u64;
        }
    } else {
        for _ in 0..count {
            q.put(&msg).unwrap();
        }
    }
}

struct Peer {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn start(role: &str, path: &str, count: u64, size: usize, batch: usize) -> Peer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(PEER_ENV, format!("{role} {path} {count} {size} {batch}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn peer");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Peer { child, out }
    }
    fn go(&mut self) {
        writeln!(self.child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    fn finish(mut self) {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
        self.child.wait().unwrap();
    }
}

fn qpath(tag: &str) -> String {
    format!("/dev/shm/mmapipc-bench-q-{}-{tag}", std::process::id())
}

/// One producer (this process) and one consumer peer; returns the time for `iters` messages.
fn run_1p1c(iters: u64, size: usize, batch: usize) -> Duration {
    let path = qpath("1p1c");
    let _ = std::fs::remove_file(&path);
    let cap = (size + 16).next_multiple_of(8) * 4 + (1 << 20);
    let q = Queue::create(&path, cap).unwrap();
    let mut c = Peer::start("consume", &path, iters, size, batch);
    c.go();
    let t0 = Instant::now();
    produce(&q, iters, size, batch);
    c.finish();
    let dt = t0.elapsed();
    q.unlink().unwrap();
    dt
}

fn run_aggregate(iters: u64, p: usize, c: usize) -> Duration {
    let path = qpath("agg");
    let _ = std::fs::remove_file(&path);
    let q = Queue::create(&path, 4 << 20).unwrap();
    let per = iters.div_ceil(p as u64);
    let mut prods: Vec<Peer> = (0..p).map(|_| Peer::start("produce", &path, per, 64, 64)).collect();
    let mut cons: Vec<Peer> = (0..c).map(|_| Peer::start("consume", &path, 0, 64, 64)).collect();
    let t0 = Instant::now();
    for x in prods.iter_mut().chain(cons.iter_mut()) {
        x.go();
    }
    for x in prods {
        x.finish();
    }
    let stops: Vec<&[u8]> = vec![&[][..]; c];
    q.put_batch(&stops).unwrap();
    for x in cons {
        x.finish();
    }
    let dt = t0.elapsed();
    q.unlink().unwrap();
    dt
}

fn benches(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("queue_1p1c");
    g.sample_size(10);
    for &(label, size) in
        &[("8B", 8usize), ("64B", 64), ("1KiB", 1024), ("64KiB", 64 << 10), ("1MiB", 1 << 20), ("8MiB", 8 << 20)]
    {
        g.throughput(Throughput::Bytes(size as u64));
        for &(name, batch) in &[("single", 1usize), ("batch64", 64)] {
            if size >= 1 << 20 && batch > 1 {
                continue; // a batch of 64 x 1 MiB does not fit a sensible ring
            }
            g.bench_with_input(BenchmarkId::new(name, label), &size, |b, &size| {
                b.iter_custom(|iters| run_1p1c(iters.max(1), size, batch))
            });
        }
    }
    g.finish();
    let mut g = cr.benchmark_group("queue_aggregate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    for &(p, c) in &[(1usize, 1usize), (2, 2), (4, 4), (8, 8)] {
        g.bench_function(format!("{p}p{c}c"), |b| b.iter_custom(|iters| run_aggregate(iters.max(64), p, c)));
    }
    g.finish();
}

// The macro generates an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(queue_benches, super::benches);
}
use group::queue_benches;

fn main() {
    if let Ok(spec) = std::env::var(PEER_ENV) {
        peer(&spec);
        return;
    }
    queue_benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
