//! Round-trip latency percentiles for the ping-pong benchmarks (shared by `ring.rs` and
//! `queue.rs`; a directory module, so Cargo does not take it for a bench target).
//!
//! Criterion reports a mean per round trip. The bench binaries run each `round_trip/*`
//! benchmark through [`bench`], which also tells whether criterion ran it (the filter selected
//! it), and stop its peer process (`SIGSTOP`) once criterion is done with it. At the end of the
//! group, [`Report::sample`] times the same round-trip closures (same channels, same peers),
//! round trip by round trip:
//!
//! * in 10 rounds; in each round every benchmark in turn gets its peer resumed (`SIGCONT`), a
//!   warm-up (1 000 round trips or 5 ms), a tenth of the sampling budget, and its peer stopped
//!   again. The rows being compared are measured interleaved, close together in time, and only
//!   one peer spins at a time;
//! * one `Instant::now()` between consecutive samples, so a sample is the time of `batch` round
//!   trips plus one clock read (`clock read` in the output: that read's cost, measured in the
//!   same run), divided by `batch`;
//! * `batch` is 1 (every sample is one round trip) unless the clock's measured resolution is
//!   above a quarter of the mean round trip (measured in a first warm-up of 10 000 round trips or
//!   50 ms): then `batch` = the smallest number of round trips that spans 4 x the resolution, and
//!   the percentiles are of per-batch means (tails are smoothed). `MMAPIPC_BENCH_RT_BATCH=k`
//!   forces `k`;
//! * up to 2 000 000 samples or 3 s per benchmark (`--quick`: 200 000 samples or 0.5 s);
//! * nearest-rank percentiles p50, p99, p99.9 and the maximum; the mean of the same samples.
//!
//! Only benchmarks that criterion ran in benchmark mode are sampled: a filter that leaves a
//! round-trip benchmark out, `--list`, `--test` (and `cargo test --benches`) and
//! `--profile-time` sample nothing. [`Report::finish`] prints a table after criterion's summary
//! and writes `<criterion dir>/latency-percentiles-<bench>.json` (`target/criterion/...` by
//! default; the directory is chosen the way criterion chooses its own: `$CRITERION_HOME`, else
//! `$CARGO_TARGET_DIR/criterion`, else the workspace's target directory from `cargo metadata`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use mmapipc::SharedMemory;

/// The id of the reference row that ratios are computed against.
pub const BARE: &str = "round_trip/bare_cache_line";

const ROUNDS: u32 = 10;

/// Criterion's measurement of one round-trip benchmark (`rt`: one round trip, spinning).
/// Returns whether criterion ran it (the filter selected it).
pub fn bench(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &mut impl FnMut()) -> bool {
    bench_throughput(g, name, &mut |n| {
        for _ in 0..n {
            rt();
        }
    })
}

/// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the peer process `pid`.
///
/// `pid` must be a child of this process that has not been waited for (its `Child` is alive
/// and not reaped), so that the pid cannot belong to another process.
pub fn pause(pid: u32, stop: bool) {
    let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
    // SAFETY: kill(2) takes two integers and touches no memory of ours; the caller guarantees
    // that `pid` is an unreaped child of ours, so the signal cannot reach an unrelated process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// What one sampling step does (see [`run`]).
struct Job {
    warm_max: u64,
    warm_time: Duration,
    batch: u64,
    max: usize,
    budget: Duration,
}

/// A warm-up of at most `warm_max` round trips or `warm_time` (returns its mean round trip in
/// ns), then samples of `batch` round trips into `out` until it holds `max` samples or `budget`
/// has passed. Generic, so the round trip is inlined into the timed loop.
fn run(rt: &mut impl FnMut(), job: &Job, out: &mut Vec<u64>) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u64;
    while n < job.warm_max && t0.elapsed() < job.warm_time {
        rt();
        n += 1;
    }
    let warm_mean = t0.elapsed().as_nanos() as f64 / n.max(1) as f64;
    let start = Instant::now();
    let mut prev = start;
    while out.len() < job.max {
        for _ in 0..job.batch {
            rt();
        }
        let now = Instant::now();
        out.push((now - prev).as_nanos() as u64);
        prev = now;
        if now - start >= job.budget {
            break;
        }
    }
    warm_mean
}

/// [`run`] over one benchmark's round trip.
type Runner<'a> = Box<dyn FnMut(&Job, &mut Vec<u64>) -> f64 + 'a>;

/// One round-trip benchmark to sample: see [`subject`].
pub struct Subject<'a> {
    id: &'static str,
    peer: u32,
    run: Runner<'a>,
}

/// Row `id` for [`Report::sample`], if `selected`: `rt` does one round trip with the peer
/// process `peer` (a child of ours, stopped by the caller, see [`pause`]).
pub fn subject<'a>(id: &'static str, selected: bool, peer: u32, mut rt: impl FnMut() + 'a) -> Option<Subject<'a>> {
    selected.then(|| Subject { id, peer, run: Box::new(move |job: &Job, out: &mut Vec<u64>| run(&mut rt, job, out)) })
}

/// Percentiles of one round-trip benchmark, in nanoseconds per round trip.
pub struct Row {
    id: String,
    samples: usize,
    batch: u64,
    mean: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// The rows of one bench binary's run.
pub struct Report {
    bench: &'static str,
    enabled: bool,
    quick: bool,
    clock_ns: f64,
    clock_res_ns: u64,
    spent: Duration,
    rows: Vec<Row>,
}

impl Report {
    /// `bench`: the bench binary's name (`ring`, `queue`), used in the file name.
    pub fn new(bench: &'static str) -> Report {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        // Criterion's own rule: benchmark mode needs `--bench` (cargo bench passes it) and no
        // `--test`; `--list` and `--profile-time` run no measurement either.
        let enabled =
            has("--bench") && !has("--test") && !has("--list") && !args.iter().any(|a| a.starts_with("--profile-time"));
        let (clock_ns, clock_res_ns) = if enabled { clock() } else { (0.0, 0) };
        Report {
            bench,
            enabled,
            quick: has("--quick"),
            clock_ns,
            clock_res_ns,
            spent: Duration::ZERO,
            rows: Vec::new(),
        }
    }

    /// Samples `subjects` (the selected ones; their peers are stopped, and left stopped), in
    /// rounds, and records a row for each (see the module docs). Nothing outside benchmark mode.
    pub fn sample<'a>(&mut self, subjects: impl IntoIterator<Item = Option<Subject<'a>>>) {
        let mut subjects: Vec<Subject<'a>> = subjects.into_iter().flatten().collect();
        if !self.enabled || subjects.is_empty() {
            return;
        }
        let t_start = Instant::now();
        let (max_samples, budget) =
            if self.quick { (200_000, Duration::from_millis(500)) } else { (2_000_000, Duration::from_secs(3)) };
        let forced =
            std::env::var("MMAPIPC_BENCH_RT_BATCH").ok().and_then(|v| v.parse::<u64>().ok()).filter(|&k| k > 0);
        let res = self.clock_res_ns as f64;
        let warm =
            Job { warm_max: 10_000, warm_time: Duration::from_millis(50), batch: 0, max: 0, budget: Duration::ZERO };
        let mut batches = Vec::new();
        for s in &mut subjects {
            pause(s.peer, false);
            let rt_mean = (s.run)(&warm, &mut Vec::new());
            pause(s.peer, true);
            batches.push(match forced {
                Some(k) => k,
                None if res * 4.0 > rt_mean => (res * 4.0 / rt_mean).ceil() as u64,
                None => 1,
            });
        }
        let mut raw: Vec<Vec<u64>> = subjects.iter().map(|_| Vec::with_capacity(max_samples)).collect();
        for round in 0..ROUNDS {
            for k in 0..subjects.len() {
                // Alternate the order, so that no row always follows the other.
                let i = if round % 2 == 0 { k } else { subjects.len() - 1 - k };
                let job = Job {
                    warm_max: 1_000,
                    warm_time: Duration::from_millis(5),
                    batch: batches[i],
                    max: raw[i].len() + max_samples / ROUNDS as usize,
                    budget: budget / ROUNDS,
                };
                let s = &mut subjects[i];
                pause(s.peer, false);
                (s.run)(&job, &mut raw[i]);
                pause(s.peer, true);
            }
        }
        for ((s, mut raw), batch) in subjects.iter().zip(raw).zip(batches) {
            raw.sort_unstable();
            let per = |v: u64| v as f64 / batch as f64;
            let rank = |p: f64| per(raw[((p * raw.len() as f64).ceil() as usize).clamp(1, raw.len()) - 1]);
            self.rows.push(Row {
                id: s.id.to_owned(),
                samples: raw.len(),
                batch,
                mean: raw.iter().map(|&v| v as f64).sum::<f64>() / (raw.len() as f64 * batch as f64),
                p50: rank(0.50),
                p99: rank(0.99),
                p999: rank(0.999),
                max: per(raw[raw.len() - 1]),
            });
        }
        self.spent += t_start.elapsed();
    }

    /// Prints the table and writes the JSON file (nothing when no row was sampled).
    /// Whether criterion runs in benchmark mode (see [`Report::new`]), and `--quick`.
    #[allow(dead_code)] // only the ring bench compares throughput interleaved
    pub fn mode(&self) -> (bool, bool) {
        (self.enabled, self.quick)
    }

    pub fn finish(self) {
        if self.rows.is_empty() {
            return;
        }
        let bare = self.rows.iter().find(|r| r.id == BARE).map(|r| r.p50);
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!();
        println!(
            "Round-trip latency percentiles, `{}` bench (ns per round trip; rows sampled interleaved in {} rounds{}):",
            self.bench,
            ROUNDS,
            if self.quick { "; --quick" } else { "" }
        );
        println!(
            "{} CPUs; every sample includes one clock read ({:.1} ns, resolution {} ns); sampling took {:.1} s; \
             method: mmapipc/benches/latency/mod.rs",
            cpus,
            self.clock_ns,
            self.clock_res_ns,
            self.spent.as_secs_f64()
        );
        println!(
            "{:<28} {:>9} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>12}",
            "benchmark", "samples", "batch", "mean", "p50", "p99", "p99.9", "max", "p50 / bare"
        );
        for r in &self.rows {
            let ratio = bare.map_or(String::from("-"), |b| format!("{:.2}x", r.p50 / b));
            println!(
                "{:<28} {:>9} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>11.0} {:>12}",
                r.id, r.samples, r.batch, r.mean, r.p50, r.p99, r.p999, r.max, ratio
            );
        }

        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "samples": r.samples,
                    "batch": r.batch,
                    "mean_ns": r.mean,
                    "p50_ns": r.p50,
                    "p99_ns": r.p99,
                    "p99_9_ns": r.p999,
                    "max_ns": r.max,
                    "p50_over_bare_cache_line_p50": bare.map(|b| r.p50 / b),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "bench": self.bench,
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "quick": self.quick,
            "rounds": ROUNDS,
            "sampling_seconds": self.spent.as_secs_f64(),
            "cpus": cpus,
            "clock_read_ns": self.clock_ns,
            "clock_resolution_ns": self.clock_res_ns,
            "method": "ns per round trip; each sample = `batch` consecutive round trips timed with \
                       std::time::Instant (one clock read per sample, included), divided by `batch`; \
                       rows sampled interleaved in `rounds` rounds; nearest-rank percentiles; see mmapipc/benches/latency/mod.rs",
            "rows": rows,
        });
        let dir = criterion_dir();
        let path = dir.join(format!("latency-percentiles-{}.json", self.bench));
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
        match written {
            Ok(()) => println!("(written to {})", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

/// Cost of one `Instant::now()` (mean over a burst) and the smallest non-zero step between two
/// consecutive reads.
fn clock() -> (f64, u64) {
    const N: u32 = 100_000;
    let t0 = Instant::now();
    let mut prev = t0;
    let mut res = u64::MAX;
    for _ in 0..N {
        let now = Instant::now();
        let d = (now - prev).as_nanos() as u64;
        if d > 0 {
            res = res.min(d);
        }
        prev = now;
    }
    (t0.elapsed().as_nanos() as f64 / f64::from(N), if res == u64::MAX { 1 } else { res })
}

/// Where criterion writes its reports (the same rule as criterion 0.5's).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = Command::new(cargo).args(["metadata", "--format-version", "1", "--no-deps"]).output().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v.get("target_directory")?.as_str()?).join("criterion"))
    });
    from_metadata.unwrap_or_else(|| PathBuf::from("target/criterion"))
}

// ----- the bare cache-line reference (used by both bench binaries) -----

/// The two words the bare cache-line round trip bounces a counter through: offsets 0 and 128
/// of `shm` (two different cache lines, no false sharing).
pub fn lines(shm: &SharedMemory) -> (&AtomicU64, &AtomicU64) {
    assert!(shm.size() >= 136);
    let base = shm.as_ptr();
    // SAFETY: offsets 0 and 128 are 8-aligned (the mapping is page-aligned) and inside the
    // region (asserted); both words are only ever accessed atomically, and the references live
    // no longer than `shm`'s borrow, hence the mapping.
    unsafe { (&*(base as *const AtomicU64), &*(base.add(128) as *const AtomicU64)) }
}

/// The peer side of the bare cache-line round trip: echoes every new value of the first word
/// into the second, spinning, until the process is killed.
pub fn line_echo(shm: &SharedMemory) -> ! {
    let (ping, pong) = lines(shm);
    let mut last = 0;
    loop {
        let v = ping.load(Ordering::Acquire);
        if v != last {
            last = v;
            pong.store(v, Ordering::Release);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The client side: one round trip through the two words (`seq`: the last value sent).
#[inline]
pub fn line_round_trip(ping: &AtomicU64, pong: &AtomicU64, seq: &mut u64) {
    *seq += 1;
    ping.store(*seq, Ordering::Release);
    while pong.load(Ordering::Acquire) != *seq {
        std::hint::spin_loop();
    }
}

/// Criterion's measurement of a benchmark whose `burst(n)` does `n` operations (sends `n`
/// messages and waits until the peer consumed them; or `n` round trips). Returns whether
/// criterion ran it.
pub fn bench_throughput(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, burst: &mut impl FnMut(u64)) -> bool {
    let mut selected = false;
    g.bench_function(name, |b| {
        selected = true;
        b.iter_custom(|iters| {
            let t = Instant::now();
            burst(iters);
            t.elapsed()
        })
    });
    selected
}

/// Times `n` messages through each transport in turn, `rounds` times, resuming only the peer
/// of the transport being timed (the callers leave every peer stopped). Returns, per round, the
/// nanoseconds per message of each transport, in the order given. One warm-up burst of `n / 10`
/// precedes each timed burst (the resumed peer gets its caches and CPU back first).
#[allow(dead_code)] // only the ring bench compares throughput interleaved
pub fn interleave(rounds: usize, n: u64, subjects: &mut [(u32, &mut dyn FnMut(u64))]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(rounds);
    // An untimed first round: every peer gets scheduled and its caches warm once.
    for (peer, burst) in subjects.iter_mut() {
        pause(*peer, false);
        burst(n / 10);
        pause(*peer, true);
    }
    for _ in 0..rounds {
        let mut row = Vec::with_capacity(subjects.len());
        for (peer, burst) in subjects.iter_mut() {
            pause(*peer, false);
            burst(n / 10);
            let t = Instant::now();
            burst(n);
            row.push(t.elapsed().as_nanos() as f64 / n as f64);
            pause(*peer, true);
        }
        out.push(row);
    }
    out
}

/// Prints the per-round times from [`interleave`] and the median over rounds of each
/// transport's throughput relative to the last one (the reference), and writes them to
/// `<criterion dir>/throughput-ratio-<file>.json`.
#[allow(dead_code)] // only the ring bench compares throughput interleaved
pub fn print_ratio(title: &str, file: &str, names: &[&str], n: u64, rounds: &[Vec<f64>]) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let reference = names.len() - 1;
    println!();
    println!("{title}: throughput interleaved, {} rounds of {n} messages each (ns per message):", rounds.len());
    let header: Vec<String> = names.iter().map(|s| format!("{s:>12}")).collect();
    println!("{:>6} {}", "round", header.join(" "));
    for (i, r) in rounds.iter().enumerate() {
        let cells: Vec<String> = r.iter().map(|v| format!("{v:>12.1}")).collect();
        println!("{:>6} {}", i + 1, cells.join(" "));
    }
    let mut json = Vec::new();
    for (k, name) in names.iter().enumerate().take(reference) {
        // Throughput ratio = reference time / our time, per round.
        let ratios: Vec<f64> = rounds.iter().map(|r| r[reference] / r[k]).collect();
        let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let med = median(ratios.clone());
        println!(
            "{name}: median {:.1} ns/msg; throughput {:.2}x {} (median of per-round ratios; range {lo:.2}-{hi:.2})",
            median(rounds.iter().map(|r| r[k]).collect()),
            med,
            names[reference]
        );
        json.push(format!(
            "{{\"name\": \"{name}\", \"reference\": \"{}\", \"median_ratio\": {med:.4}, \"min_ratio\": {lo:.4}, \
             \"max_ratio\": {hi:.4}, \"ns_per_msg\": {:?}}}",
            names[reference],
            rounds.iter().map(|r| r[k]).collect::<Vec<_>>()
        ));
    }
    println!("{}: median {:.1} ns/msg", names[reference], median(rounds.iter().map(|r| r[reference]).collect()));
    let dir = criterion_dir();
    let path = dir.join(format!("throughput-ratio-{file}.json"));
    let text = format!(
        "{{\"title\": \"{title}\", \"messages_per_round\": {n}, \"reference_ns_per_msg\": {:?}, \"rows\": [{}]}}\n",
        rounds.iter().map(|r| r[reference]).collect::<Vec<_>>(),
        json.join(", ")
    );
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => println!("(written to {})", path.display()),
        Err(e) => println!("(could not write {}: {e})", path.display()),
    }
}
