//! Kill torture for [`mmapipc::Queue`]: N producer and M consumer *processes* on one queue; the
//! parent SIGKILLs random ones at random moments and restarts them at once, for a set duration,
//! then verifies exactly-once delivery from sequence numbers and prints one summary line.
//!
//! ```text
//! cargo run --release -p mmapipc --example torture -- --duration 60 --producers 3 --consumers 3
//! ```
//!
//! Exit status 0 only if nothing committed was lost or delivered twice, no torn or invalid
//! message was seen, no child failed on its own, and no stall outlasted the recovery bound.
//!
//! # How it knows
//!
//! A second shared file (the *book*, a sparse `/dev/shm` file that survives every child) holds:
//! * per producer **incarnation** (every start of a producer process is a new one, with its own id
//!   and a range of the log): `attempted` (seqs below it may have been put; stored *before* each
//!   put) and `committed` (seqs below it were put: stored *after* `put`/`put_batch` returned);
//! * the **log**: one counter byte per (incarnation, seq), incremented by the consumer that got
//!   the message, *before* it releases its view (`get_views`: the message stays in its slot until
//!   then, so a consumer that dies before logging leaves it TAKEN by a dead owner and the queue
//!   discards it and counts it in `QueueStats::view_recoveries`).
//!
//! Each message is `incarnation u32 | len u32 | seq u64 | checksum u64 | payload[len]`; the
//! payload is derived from (incarnation, seq) and the checksum covers all of it, so a torn or
//! misplaced message is detected.
//!
//! At the end (producers stopped first, consumers drain the queue, then stop; the parent runs
//! `Queue::recover` to count records still held by dead consumers), for every incarnation:
//! * a log count above 1 is a **duplicate**;
//! * a seq below `committed` that was never logged was delivered to a consumer that died before
//!   logging it (*discarded*, the queue's documented semantics) or **lost**: the queue must have
//!   discarded at least that many, so `lost = max(0, unlogged - view_recoveries)` (necessary,
//!   not exact: it also counts logged, unreleased messages, at most `batch × consumer kills`).
//!
//! # Stall
//! The parent samples the queue every millisecond. A side is stalled while it could progress
//! and does not: the consumer while messages wait and none is taken, the producer while there is
//! room by the read position (`tail - read <= capacity / 2`) and none is put, each clock starting
//! no earlier than that side's oldest live process. The longest stall must stay within the
//! recovery bound (dead lock holders and dead views are recovered within a quarter of it).

use std::fs::OpenOptions as FsOpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use mmapipc::queue::Control;
use mmapipc::{Queue, QueueOptions};

/// Messages per producer incarnation (its range of the log); a producer that reaches it exits
/// and is replaced by a new incarnation.
const QUOTA: u64 = 1 << 20;
/// Incarnations the book has room for (the log is sparse: only used pages cost memory).
const MAX_INC: u64 = 16384;
/// Book header words: [0] stop producers, [1] stop consumers, [2] invalid messages seen,
/// [3] incarnations handed out.
const HDR_WORDS: u64 = 16;
/// Words per incarnation: attempted, committed.
const INC_WORDS: u64 = 2;
const LOG_OFFSET: u64 = (HDR_WORDS + MAX_INC * INC_WORDS) * 8;
const BOOK_SIZE: u64 = LOG_OFFSET + MAX_INC * QUOTA;
const MSG_HEADER: usize = 24;

/// The shared book: a sparse file mapped by every process.
struct Book {
    map: memmap2::MmapMut,
}

impl Book {
    fn create(path: &Path) -> Book {
        let f = FsOpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        f.set_len(BOOK_SIZE).expect("size the book");
        Self::map(&f)
    }

    fn open(path: &Path) -> Book {
        let f = FsOpenOptions::new().read(true).write(true).open(path).expect("open the book");
        Self::map(&f)
    }

    fn map(f: &std::fs::File) -> Book {
        // SAFETY: a shared mapping of the torture's own file, whose size is fixed at creation
        // and never truncated; all processes access it only through atomics.
        let map = unsafe { memmap2::MmapMut::map_mut(f) }.expect("map the book");
        assert_eq!(map.len() as u64, BOOK_SIZE);
        Book { map }
    }

    fn word(&self, i: u64) -> &AtomicU64 {
        assert!(i < LOG_OFFSET / 8);
        // SAFETY: i * 8 + 8 <= LOG_OFFSET <= map length; the mapping is page aligned so the word
        // is 8-aligned; every process accesses these words only atomically.
        unsafe { &*(self.map.as_ptr().add(i as usize * 8) as *const AtomicU64) }
    }

    fn attempted(&self, inc: u64) -> &AtomicU64 {
        self.word(HDR_WORDS + inc * INC_WORDS)
    }

    fn committed(&self, inc: u64) -> &AtomicU64 {
        self.word(HDR_WORDS + inc * INC_WORDS + 1)
    }

    fn log(&self, inc: u64, seq: u64) -> &AtomicU8 {
        assert!(inc < MAX_INC && seq < QUOTA);
        // SAFETY: LOG_OFFSET + inc * QUOTA + seq < BOOK_SIZE = map length; bytes of the log are
        // accessed only atomically.
        unsafe { &*(self.map.as_ptr().add((LOG_OFFSET + inc * QUOTA + seq) as usize) as *const AtomicU8) }
    }
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn fnv(acc: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(acc, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn payload_len(inc: u64, seq: u64) -> usize {
    let h = Rng::new((inc << 40) ^ seq ^ 0x9E37_79B9_7F4A_7C15).next();
    if h % 64 == 0 {
        2048 + (h >> 8) as usize % 14000 // now and then a big one, so kills land mid-copy
    } else {
        (h >> 8) as usize % 120
    }
}

fn encode(inc: u64, seq: u64, out: &mut Vec<u8>) {
    let len = payload_len(inc, seq);
    out.clear();
    out.extend_from_slice(&(inc as u32).to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    let mut r = Rng::new(seq.wrapping_mul(31) ^ inc ^ 0x5555);
    out.extend((0..len).map(|_| r.next() as u8));
    let sum = fnv(fnv(0xcbf2_9ce4_8422_2325, &out[..16]), &out[MSG_HEADER..]);
    out[16..24].copy_from_slice(&sum.to_le_bytes());
}

/// Validates a message; returns (incarnation, seq).
fn decode(m: &[u8]) -> Result<(u64, u64), String> {
    if m.len() < MSG_HEADER {
        return Err(format!("message of {} bytes is shorter than its header", m.len()));
    }
    let inc = u32::from_le_bytes(m[0..4].try_into().unwrap()) as u64;
    let len = u32::from_le_bytes(m[4..8].try_into().unwrap()) as usize;
    let seq = u64::from_le_bytes(m[8..16].try_into().unwrap());
    let sum = u64::from_le_bytes(m[16..24].try_into().unwrap());
    if m.len() != MSG_HEADER + len {
        return Err(format!("message of {} bytes says its payload is {len}", m.len()));
    }
    if sum != fnv(fnv(0xcbf2_9ce4_8422_2325, &m[..16]), &m[MSG_HEADER..]) {
        return Err(format!("checksum mismatch (incarnation {inc}, seq {seq})"));
    }
    if inc >= MAX_INC || seq >= QUOTA || len != payload_len(inc, seq) {
        return Err(format!("message names incarnation {inc}, seq {seq}, len {len}: out of range"));
    }
    Ok((inc, seq))
}

fn queue_opts(bound: Duration) -> QueueOptions {
    QueueOptions { recovery_bound: bound, ..QueueOptions::default() }
}

/// Dies with the parent (so a killed test leaves no orphans behind). Elsewhere than Linux the
/// parent's cleanup kills its children, and a child whose parent is gone exits here.
fn die_with_parent(parent: u32) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL)
    };
    if std::os::unix::process::parent_id() != parent {
        std::process::exit(1);
    }
}

fn producer(q: &Queue, book: &Book, inc: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut bufs: Vec<Vec<u8>> = (0..16).map(|_| Vec::new()).collect();
    let stop = book.word(0);
    let mut seq = 0;
    while seq < QUOTA && stop.load(Ordering::Relaxed) == 0 {
        let k = (1 + rng.below(16)).min(QUOTA - seq) as usize;
        for (i, b) in bufs.iter_mut().take(k).enumerate() {
            encode(inc, seq + i as u64, b);
        }
        // Before the put: a consumer may see these seqs as soon as the put commits them.
        book.attempted(inc).store(seq + k as u64, Ordering::Release);
        // Untimed calls wait through lock recovery (one check interval); timed ones also
        // recover a dead holder at their deadline.
        let refs: Vec<&[u8]> = bufs[..k].iter().map(Vec::as_slice).collect();
        let n = match rng.below(4) {
            0 => {
                q.put(refs[0]).expect("put");
                1
            }
            1 => usize::from(q.put_timeout(refs[0], Some(Duration::from_millis(100))).expect("put_timeout")),
            2 => q.put_batch(&refs).expect("put_batch"),
            _ => q.put_batch_timeout(&refs, Some(Duration::from_millis(100))).expect("put_batch_timeout"),
        };
        seq += n as u64;
        // After the put returned: everything below `seq` is committed.
        book.committed(inc).store(seq, Ordering::Release);
    }
}

/// `sabotage`: a self-test of the verifier. The consumer then skips logging seq 1000 of every
/// incarnation (as if the queue had lost it) and logs seq 2000 twice (as if it had been
/// delivered twice); the run must report lost and duplicated messages and fail.
fn consumer(q: &Queue, book: &Book, seed: u64, sabotage: bool) {
    let mut rng = Rng::new(seed);
    loop {
        let max = 1 + rng.below(8) as usize;
        // Mostly a long wait (recovery of a dead lock holder then happens in the wait loop, one
        // check interval in), sometimes a short one; the stop flag is seen when a wait ends empty.
        let timeout = Duration::from_millis(if rng.below(4) == 0 { 50 } else { 2000 });
        let views = q.get_views_timeout(max, Some(timeout)).expect("get_views");
        if views.is_empty() && book.word(1).load(Ordering::Relaxed) != 0 {
            return;
        }
        for v in views {
            match decode(&v) {
                Ok((inc, seq)) if seq < book.attempted(inc).load(Ordering::Acquire) => {
                    // Logged while the view is still held: a kill after this line counts the
                    // message as delivered; a kill before it leaves the record TAKEN by us.
                    let times = match seq {
                        1000 if sabotage => 0,
                        2000 if sabotage => 2,
                        _ => 1,
                    };
                    book.log(inc, seq).fetch_add(times, Ordering::AcqRel);
                }
                Ok((inc, seq)) => {
                    eprintln!("torture consumer: seq {seq} of incarnation {inc} was never attempted");
                    book.word(2).fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    eprintln!("torture consumer: invalid message: {e}");
                    book.word(2).fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(v);
        }
    }
}

fn child(args: &[String]) {
    // child <role> <queue> <book> <bound_ms> <parent pid> <incarnation|0> <seed>
    let bound = Duration::from_millis(args[3].parse().unwrap());
    die_with_parent(args[4].parse().unwrap());
    let q = Queue::open_with(&args[1], &queue_opts(bound)).expect("open queue");
    let book = Book::open(Path::new(&args[2]));
    let seed: u64 = args[6].parse().unwrap();
    match args[0].as_str() {
        "producer" => producer(&q, &book, args[5].parse().unwrap(), seed),
        _ => consumer(&q, &book, seed, args.get(7).map(String::as_str) == Some("sabotage")),
    }
}

struct Config {
    duration: f64,
    producers: usize,
    consumers: usize,
    bound: Duration,
    kill_interval: f64,
    capacity: usize,
    seed: u64,
    sabotage: bool,
}

fn parse_args(args: &[String]) -> Config {
    let mut c = Config {
        duration: 60.0,
        producers: 3,
        consumers: 3,
        bound: Duration::from_secs(1),
        kill_interval: 0.1,
        capacity: 128 << 10,
        seed: 0,
        sabotage: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage(&format!("{a} needs a value"))).clone();
        match a.as_str() {
            "--duration" => c.duration = v().parse().unwrap_or_else(|_| usage("bad --duration")),
            "--producers" => c.producers = v().parse().unwrap_or_else(|_| usage("bad --producers")),
            "--consumers" => c.consumers = v().parse().unwrap_or_else(|_| usage("bad --consumers")),
            "--recovery-bound" => {
                c.bound = Duration::from_secs_f64(v().parse().unwrap_or_else(|_| usage("bad --recovery-bound")))
            }
            "--kill-interval" => c.kill_interval = v().parse().unwrap_or_else(|_| usage("bad --kill-interval")),
            "--capacity" => c.capacity = v().parse().unwrap_or_else(|_| usage("bad --capacity")),
            "--seed" => c.seed = v().parse().unwrap_or_else(|_| usage("bad --seed")),
            "--sabotage" => c.sabotage = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if c.producers == 0 || c.consumers == 0 || c.duration <= 0.0 || c.kill_interval <= 0.0 {
        usage("need at least one producer and one consumer, and positive durations");
    }
    if c.seed == 0 {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        c.seed = t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32);
    }
    c
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("torture: {msg}");
    }
    eprintln!(
        "usage: torture [--duration SECS (60)] [--producers N (3)] [--consumers M (3)] \
         [--recovery-bound SECS (1.0)] [--kill-interval MEAN_SECS (0.1)] [--capacity BYTES (131072)] [--seed N] [--sabotage (verifier self-test: must fail)]"
    );
    std::process::exit(2)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
}

struct Kid {
    role: Role,
    child: Child,
    started: Instant,
}

struct Parent<'a> {
    cfg: &'a Config,
    qpath: PathBuf,
    bpath: PathBuf,
    book: &'a Book,
    rng: Rng,
    failures: u64,
}

impl Parent<'_> {
    fn spawn(&mut self, role: Role) -> Kid {
        let inc = match role {
            Role::Producer => self.book.word(3).fetch_add(1, Ordering::Relaxed),
            Role::Consumer => 0,
        };
        assert!(inc < MAX_INC, "out of producer incarnations (raise MAX_INC or shorten the run)");
        let child = Command::new(std::env::current_exe().expect("current exe"))
            .arg("--child")
            .arg(if role == Role::Producer { "producer" } else { "consumer" })
            .arg(&self.qpath)
            .arg(&self.bpath)
            .arg(self.cfg.bound.as_millis().to_string())
            .arg(std::process::id().to_string())
            .arg(inc.to_string())
            .arg(self.rng.next().to_string())
            .arg(if self.cfg.sabotage { "sabotage" } else { "honest" })
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn child");
        Kid { role, child, started: Instant::now() }
    }
}

/// Longest interval without progress on either side, while progress was possible.
struct StallMeter {
    cons_ok: Instant,
    prod_ok: Instant,
    last_in: u64,
    last_out: u64,
    max: Duration,
}

impl StallMeter {
    /// `kids`: a side's stall is counted from its last progress or from the start of its
    /// oldest live process, whichever is later (how long a live process has waited).
    fn sample(&mut self, q: &Queue, producers_running: bool, kids: &[Kid]) {
        let now = Instant::now();
        let oldest = |role: Role| kids.iter().filter(|k| k.role == role).map(|k| k.started).min().unwrap_or(now);
        self.cons_ok = self.cons_ok.max(oldest(Role::Consumer));
        self.prod_ok = self.prod_ok.max(oldest(Role::Producer));
        // SAFETY: the control block of a queue we opened: `control_ptr` points at a `Control`
        // inside the live mapping, 128-aligned; we only load its atomics.
        let c = unsafe { &*(q.control_ptr() as *const Control) };
        let read = c.read.value.load(Ordering::Acquire);
        let tail = c.tail.value.load(Ordering::Acquire);
        let s = q.stats();
        if s.messages_out != self.last_out || tail == read {
            self.cons_ok = now;
        }
        let room = tail.wrapping_sub(read) <= q.capacity() as u64 / 2;
        if s.messages_in != self.last_in || !producers_running || !room {
            self.prod_ok = now;
        }
        self.last_in = s.messages_in;
        self.last_out = s.messages_out;
        self.max = self.max.max(now - self.cons_ok).max(now - self.prod_ok);
    }
}

fn run(cfg: &Config) -> bool {
    let tag = format!("mmapipc-torture-{}", std::process::id());
    let qpath = PathBuf::from(format!("/dev/shm/{tag}-queue"));
    let bpath = PathBuf::from(format!("/dev/shm/{tag}-book"));
    let _ = std::fs::remove_file(&qpath);
    let _ = std::fs::remove_file(&bpath);
    let q = Queue::create_with(&qpath, cfg.capacity, &queue_opts(cfg.bound)).expect("create queue");
    let book = Book::create(&bpath);
    struct Cleanup<'a>(&'a Path, &'a Path);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
            let _ = std::fs::remove_file(self.1);
        }
    }
    let _cleanup = Cleanup(&qpath, &bpath);

    let mut p =
        Parent { cfg, qpath: qpath.clone(), bpath: bpath.clone(), book: &book, rng: Rng::new(cfg.seed), failures: 0 };
    let mut kids: Vec<Kid> = Vec::new();
    for _ in 0..cfg.producers {
        kids.push(p.spawn(Role::Producer));
    }
    for _ in 0..cfg.consumers {
        kids.push(p.spawn(Role::Consumer));
    }

    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(cfg.duration);
    let mean_ms = (cfg.kill_interval * 1000.0).max(1.0) as u64;
    let mut next_kill = t0 + Duration::from_millis(p.rng.below(2 * mean_ms));
    let (mut kills_p, mut kills_c) = (0u64, 0u64);
    let mut meter = StallMeter { cons_ok: t0, prod_ok: t0, last_in: 0, last_out: 0, max: Duration::ZERO };

    // Torture phase.
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
        meter.sample(&q, true, &kids);
        for kid in kids.iter_mut() {
            if let Ok(Some(st)) = kid.child.try_wait() {
                let role = kid.role;
                if !(role == Role::Producer && st.success()) {
                    eprintln!(
                        "torture: a {} exited on its own: {st}",
                        if role == Role::Producer { "producer" } else { "consumer" }
                    );
                    p.failures += 1;
                }
                *kid = p.spawn(role); // a producer that used its quota: a new incarnation
            }
        }
        let now = Instant::now();
        if now >= next_kill {
            let i = p.rng.below(kids.len() as u64) as usize;
            let role = kids[i].role;
            // SIGKILL, then reap, then restart at once.
            let _ = kids[i].child.kill();
            let _ = kids[i].child.wait();
            match role {
                Role::Producer => kills_p += 1,
                Role::Consumer => kills_c += 1,
            }
            kids[i] = p.spawn(role);
            next_kill = now + Duration::from_millis(p.rng.below(2 * mean_ms) + 1);
        }
    }
    let elapsed = t0.elapsed();

    // Drain: stop producers, let consumers empty the queue, stop consumers.
    book.word(0).store(1, Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    let mut wedged = false;
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let producers_running =
            kids.iter_mut().any(|k| k.role == Role::Producer && k.child.try_wait().ok().flatten().is_none());
        meter.sample(&q, producers_running, &kids);
        for k in kids.iter_mut().filter(|k| k.role == Role::Consumer) {
            if let Ok(Some(st)) = k.child.try_wait() {
                eprintln!("torture: a consumer exited on its own during the drain: {st}");
                p.failures += 1;
                *k = p.spawn(Role::Consumer);
            }
        }
        if !producers_running && q.is_empty() {
            break;
        }
        if Instant::now() > drain_deadline {
            eprintln!("torture: the drain did not finish within 60 s");
            wedged = true;
            break;
        }
    }
    book.word(1).store(1, Ordering::Relaxed);
    for k in kids.iter_mut() {
        match k.child.wait() {
            Ok(st) if st.success() => {}
            Ok(st) => {
                eprintln!("torture: a child ended badly: {st}");
                p.failures += 1;
            }
            Err(e) => {
                eprintln!("torture: wait: {e}");
                p.failures += 1;
            }
        }
    }
    q.recover(); // records still TAKEN by dead consumers are counted now
    let stats = q.stats();

    // Verify.
    let incs = book.word(3).load(Ordering::Relaxed);
    let (mut committed, mut delivered, mut unlogged, mut dup) = (0u64, 0u64, 0u64, 0u64);
    for inc in 0..incs {
        let a = book.attempted(inc).load(Ordering::Acquire);
        let c = book.committed(inc).load(Ordering::Acquire);
        committed += c;
        for seq in 0..a {
            let n = book.log(inc, seq).load(Ordering::Relaxed) as u64;
            if n > 1 {
                dup += n - 1;
                eprintln!("torture: incarnation {inc} seq {seq} delivered {n} times");
            }
            if n > 0 {
                delivered += 1;
            } else if seq < c {
                unlogged += 1;
            }
        }
    }
    let invalid = book.word(2).load(Ordering::Relaxed);
    let discarded_by_queue = stats.view_recoveries;
    let lost = unlogged.saturating_sub(discarded_by_queue);
    if lost > 0 {
        eprintln!(
            "torture: {unlogged} committed messages were never delivered, the queue discarded only {discarded_by_queue}"
        );
    }
    let ok = lost == 0 && dup == 0 && invalid == 0 && p.failures == 0 && !wedged && meter.max <= cfg.bound;
    println!(
        "torture: {:.1} s, {} kills ({} producers, {} consumers), {} messages committed, {} delivered, \
         {} discarded with dead consumers, lost {}, duplicated {}, max stall {:.2} s (bound {:.2} s); \
         invalid {}, child failures {}, {} lock recoveries, {} view recoveries, {} producer incarnations, seed {}{}",
        elapsed.as_secs_f64(),
        kills_p + kills_c,
        kills_p,
        kills_c,
        committed,
        delivered,
        unlogged,
        lost,
        dup,
        meter.max.as_secs_f64(),
        cfg.bound.as_secs_f64(),
        invalid,
        p.failures,
        stats.lock_recoveries,
        stats.view_recoveries,
        incs,
        cfg.seed,
        if ok { "" } else { " -- FAILED" },
    );
    ok
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    let cfg = parse_args(&args);
    std::process::exit(if run(&cfg) { 0 } else { 1 });
}
