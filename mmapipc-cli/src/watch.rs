//! `tail` and `stat`: the messages waiting in a ring or queue, and its live rates. Both only
//! peek: no role, no lock, no write.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::file::examine;
use crate::preview;
use crate::probe::{self, Live};
use crate::text::{human, io, kind_name};
use mmapipc::queue::{Queue, QueueOptions};
use mmapipc::region::OpenOptions;
use mmapipc::ring::Ring;
use mmapipc::Kind;
use mmapipc::Schema;

/// A ring or queue opened for peeking.
enum Chan {
    Ring(Ring),
    Queue(Queue),
}

impl Chan {
    fn open(path: &Path) -> Result<(Chan, Option<Schema>), (i32, String)> {
        if !path.exists() {
            return Err((2, format!("{}: no such file", path.display())));
        }
        let r = examine(path);
        let h = r.header.map_err(|e| (1, e.to_string()))?;
        let schema = match r.schema {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return Err((1, format!("{}: bad schema: {e}", path.display()))),
            None => None,
        };
        let chan = match Kind::from_code(h.kind) {
            Kind::Ring => Chan::Ring(
                Ring::open_with(path, &OpenOptions { allow_foreign_owner: true }).map_err(|e| (1, e.to_string()))?,
            ),
            Kind::Queue => Chan::Queue(
                Queue::open_with(path, &QueueOptions { allow_foreign_owner: true, ..QueueOptions::default() })
                    .map_err(|e| (1, e.to_string()))?,
            ),
            _ => return Err((1, format!("{}: a {} has no messages", path.display(), kind_name(&h)))),
        };
        Ok((chan, schema))
    }

    fn live(&self) -> Live {
        match self {
            Chan::Ring(r) => probe::ring_live(r),
            Chan::Queue(q) => probe::queue_live(q),
        }
    }

    fn peek(&self, from: Option<u64>, keep: usize) -> Result<mmapipc::ring::Peeked, String> {
        match self {
            Chan::Ring(r) => r.peek_published(from, keep).map_err(|e| e.to_string()),
            Chan::Queue(q) => q
                .peek_committed(from, keep)
                .map(|p| mmapipc::ring::Peeked { records: p.records, next: p.next, missed: p.missed })
                .map_err(|e| e.to_string()),
        }
    }
}

pub(crate) fn tail(
    out: &mut impl Write,
    path: &Path,
    lines: usize,
    follow: bool,
    interval: Duration,
    max: Option<u64>,
) -> Result<i32, String> {
    let (chan, schema) = match Chan::open(path) {
        Ok(c) => c,
        Err((2, msg)) => return Err(msg),
        Err((code, msg)) => {
            eprintln!("mmapipc: {msg}");
            return Ok(code);
        }
    };
    let mut printed = 0u64;
    let mut from = None;
    let mut keep = lines;
    loop {
        let mmapipc::ring::Peeked { records, next, missed } = match chan.peek(from, keep) {
            Ok(x) => x,
            Err(e) => {
                out.flush().map_err(io)?;
                eprintln!("mmapipc: {}: {e}", path.display());
                return Ok(1);
            }
        };
        if missed && from.is_some() {
            writeln!(out, "{}", json!({"missed": true})).map_err(io)?;
        }
        for (pos, msg) in records {
            let line = match &schema {
                Some(s) => match mmapipc::typed::decode::decode_json(s, &msg) {
                    Ok(v) => mmapipc::typed::decode::to_ordered_string(s, &v),
                    Err(e) => json!({"position": pos, "len": msg.len(), "error": e}).to_string(),
                },
                None => {
                    let mut v = preview::preview(&msg);
                    v["position"] = json!(pos);
                    v.to_string()
                }
            };
            writeln!(out, "{line}").map_err(io)?;
            printed += 1;
            if max.is_some_and(|m| printed >= m) {
                out.flush().map_err(io)?;
                return Ok(0);
            }
        }
        out.flush().map_err(io)?;
        if !follow {
            return Ok(0);
        }
        from = Some(next);
        keep = usize::MAX;
        std::thread::sleep(interval);
    }
}

fn rate(now: u64, before: u64, dt: f64) -> f64 {
    now.saturating_sub(before) as f64 / dt
}

pub(crate) fn stat(
    out: &mut impl Write,
    path: &Path,
    interval: Duration,
    count: Option<u64>,
    json: bool,
    tty: bool,
) -> Result<i32, String> {
    let (chan, schema) = match Chan::open(path) {
        Ok(c) => c,
        Err((2, msg)) => return Err(msg),
        Err((code, msg)) => {
            eprintln!("mmapipc: {msg}");
            return Ok(code);
        }
    };
    let kind = match chan {
        Chan::Ring(_) => "ring",
        Chan::Queue(_) => "queue",
    };
    let label = schema.as_ref().map_or("untyped".to_string(), |s| format!("{} v{}", s.name, s.version));
    let in_place = tty && !json;
    if !in_place && !json {
        writeln!(
            out,
            "{:<8} {:>10} {:>10} {:>9} {:>9} {:>6} {:>10} {:>10} {:>6} {:>6}",
            "TIME", "MSG/S IN", "MSG/S OUT", "MB/S IN", "MB/S OUT", "FILL%", "LAG MSGS", "LAG BYTES", "FULL", "EMPTY"
        )
        .map_err(io)?;
    }
    let mut prev = chan.live();
    let mut t_prev = Instant::now();
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) {
        std::thread::sleep(interval);
        let cur = chan.live();
        let now = Instant::now();
        let dt = now.duration_since(t_prev).as_secs_f64().max(1e-9);
        let (a, b) = (&cur.counters, &prev.counters);
        let mi = rate(a.msgs_in, b.msgs_in, dt);
        let mo = rate(a.msgs_out, b.msgs_out, dt);
        let bi = rate(a.bytes_in, b.bytes_in, dt) / 1e6;
        let bo = rate(a.bytes_out, b.bytes_out, dt) / 1e6;
        let fill = if cur.capacity == 0 { 0.0 } else { 100.0 * cur.used as f64 / cur.capacity as f64 };
        let clock = wall_clock();
        if json {
            let v = json!({
                "time": clock, "msgs_per_s_in": mi, "msgs_per_s_out": mo, "mb_per_s_in": bi, "mb_per_s_out": bo,
                "fill_percent": fill, "used_bytes": cur.used, "capacity": cur.capacity,
                "lag_messages": cur.pending, "lag_bytes": cur.lag_bytes,
                "full_waits": a.full_waits, "empty_waits": a.empty_waits,
                "view_stalls": a.view_stalls,
                "attached": cur.holders.iter().map(|h| json!({"role": h.role, "pid": h.pid, "alive": h.alive})).collect::<Vec<_>>(),
            });
            writeln!(out, "{v}").map_err(io)?;
        } else if in_place {
            let holders: Vec<String> = cur
                .holders
                .iter()
                .map(|h| format!("{} {} ({})", h.role, h.pid, if h.alive { "alive" } else { "dead" }))
                .collect();
            let mut s = String::new();
            let _ = write!(s, "\x1b[H\x1b[2J");
            let _ = writeln!(s, "mmapipc stat {}  ({kind}, {label})  {clock}", path.display());
            let _ = writeln!(s);
            let _ = writeln!(s, "             {:>12} {:>12}", "IN", "OUT");
            let _ = writeln!(s, "  msg/s      {mi:>12.0} {mo:>12.0}");
            let _ = writeln!(s, "  MB/s       {bi:>12.2} {bo:>12.2}");
            let _ = writeln!(s, "  total msgs {:>12} {:>12}", a.msgs_in, a.msgs_out);
            let _ = writeln!(s);
            let _ = writeln!(s, "  fill       {fill:.1}% ({} of {})", human(cur.used), human(cur.capacity));
            let _ = writeln!(s, "  lag        {} messages, {}", cur.pending, human(cur.lag_bytes));
            let _ = writeln!(s, "  full/empty {} / {}", a.full_waits, a.empty_waits);
            if let Some(stalls) = a.view_stalls {
                let _ = writeln!(s, "  view stalls {stalls} (waits for space held by unreleased views)");
            }
            let _ = writeln!(s, "  attached   {}", if holders.is_empty() { "-".into() } else { holders.join(", ") });
            let _ = writeln!(s, "\n(refresh every {:.1}s, Ctrl-C to quit)", interval.as_secs_f64());
            out.write_all(s.as_bytes()).map_err(io)?;
        } else {
            writeln!(
                out,
                "{:<8} {:>10.0} {:>10.0} {:>9.2} {:>9.2} {:>6.1} {:>10} {:>10} {:>6} {:>6}",
                clock, mi, mo, bi, bo, fill, cur.pending, cur.lag_bytes, a.full_waits, a.empty_waits
            )
            .map_err(io)?;
        }
        out.flush().map_err(io)?;
        prev = cur;
        t_prev = now;
        n += 1;
    }
    Ok(0)
}

/// HH:MM:SS (UTC).
fn wall_clock() -> String {
    let s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}
