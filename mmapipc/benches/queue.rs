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
//! `1KiB`, `64KiB`, `1MiB`, `8MiB`: a filter such as `-- 8B` selects one size),
//! `queue_aggregate/<P>p<C>c` for 1/1, 2/2, 4/4 and 8/8 (64 B messages, batches of 64;
//! elements/s = messages/s; 8/8 needs 16 cores to mean anything), and
//! `round_trip/{queue,bare_cache_line}`: ping-pong of 8 B messages through two queues
//! (`try_put` / `try_get_with`, spinning) vs two processes bouncing a counter through two cache
//! lines. After criterion's measurement of each round trip, the same ping-pong is timed round
//! trip by round trip; the run ends with a table of p50/p99/p99.9/max, also written to
//! `target/criterion/latency-percentiles-queue.json` (method: `benches/latency/mod.rs`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mmapipc::{Queue, SharedMemory};

mod latency;

const PEER_ENV: &str = "MMAPIPC_QUEUE_PEER";

/// Peer side: `role path count size batch`, `echo ping_path pong_path` or `line-echo path`.
/// Prints "ready", waits for "go", does its work, prints "done" (`line-echo` runs until killed).
fn peer(spec: &str) {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    match parts[..] {
        ["echo", ping, pong] => return echo(ping, pong),
        ["line-echo", path] => {
            let shm = SharedMemory::open(path).expect("peer open");
            ready_go();
            latency::line_echo(&shm);
        }
        _ => {}
    }
    let [role, path, count, size, batch] = parts[..] else { panic!("bad peer spec {spec}") };
    let (count, size, batch): (u64, usize, usize) =
        (count.parse().unwrap(), size.parse().unwrap(), batch.parse().unwrap());
    let q = Queue::open(path).expect("peer open");
    ready_go();
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
    done();
}

fn ready_go() {
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap(); // "go"
}

fn done() {
    let mut out = std::io::stdout();
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

/// Round-trip peer: takes each message from `ping` and puts it back on `pong`, spinning on the
/// non-blocking calls, until an empty message.
fn echo(ping: &str, pong: &str) {
    let (ping, pong) = (Queue::open(ping).expect("peer open"), Queue::open(pong).expect("peer open"));
    ready_go();
    let mut buf = [0u8; 8];
    loop {
        match ping.try_get_with(|m| {
            let n = m.len().min(8);
            buf[..n].copy_from_slice(&m[..n]);
            n
        }) {
            Ok(Some(0)) => break,
            Ok(Some(_)) => while !pong.try_put(&buf).unwrap() {},
            Ok(None) => std::hint::spin_loop(),
            Err(e) => panic!("echo: {e}"),
        }
    }
    done();
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
        Peer::start_spec(&format!("{role} {path} {count} {size} {batch}"))
    }
    fn start_spec(spec: &str) -> Peer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(PEER_ENV, spec)
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

impl Drop for Peer {
    /// A peer that did not `finish` (a spinning echo peer, or a panic in the bench) is killed.
    fn drop(&mut self) {
        let _ = self.child.kill(); // no-op once `finish` has reaped it
        let _ = self.child.wait();
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

fn round_trip(c: &mut Criterion, report: &mut latency::Report) {
    let mut g = c.benchmark_group("round_trip");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);

    let (a, b) = (qpath("ping"), qpath("pong"));
    for p in [&a, &b] {
        let _ = std::fs::remove_file(p);
    }
    let (ping, pong) = (Queue::create(&a, 64 << 10).unwrap(), Queue::create(&b, 64 << 10).unwrap());
    let mut queue_peer = Peer::start_spec(&format!("echo {a} {b}"));
    queue_peer.go();
    let mut seq = 0u64;
    let mut queue_rt = || {
        seq += 1;
        while !ping.try_put(&seq.to_le_bytes()).unwrap() {}
        loop {
            if let Some(ok) = pong.try_get_with(|m| m == seq.to_le_bytes()).unwrap() {
                debug_assert!(ok);
                break;
            }
            std::hint::spin_loop();
        }
    };
    let queue_selected = latency::bench(&mut g, "queue", &mut queue_rt);
    latency::pause(queue_peer.child.id(), true); // one spinning peer at a time

    let path = qpath("lines");
    let _ = std::fs::remove_file(&path);
    let shm = SharedMemory::create(&path, 256).unwrap();
    let mut line_peer = Peer::start_spec(&format!("line-echo {path}"));
    line_peer.go();
    let (line_ping, line_pong) = latency::lines(&shm);
    let mut line_seq = 0u64;
    let mut line_rt = || latency::line_round_trip(line_ping, line_pong, &mut line_seq);
    let line_selected = latency::bench(&mut g, "bare_cache_line", &mut line_rt);
    latency::pause(line_peer.child.id(), true);
    g.finish();

    report.sample([
        latency::subject("round_trip/queue", queue_selected, queue_peer.child.id(), queue_rt),
        latency::subject(latency::BARE, line_selected, line_peer.child.id(), line_rt),
    ]);
    drop(line_peer); // spins until killed
    latency::pause(queue_peer.child.id(), false);
    ping.put(&[]).unwrap(); // the echo peer's stop
    queue_peer.finish();
    ping.unlink().unwrap();
    pong.unlink().unwrap();
    shm.unlink().unwrap();
}

fn main() {
    if let Ok(spec) = std::env::var(PEER_ENV) {
        peer(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    let mut report = latency::Report::new("queue");
    round_trip(&mut c, &mut report);
    c.final_summary();
    report.finish();
}
