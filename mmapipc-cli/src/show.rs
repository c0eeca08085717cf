//! `ls` and `inspect`: what each mmapipc file is and who uses it, as a table, as text or as JSON.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::file::{candidates, probe_file, FileReport, Probe, Status};
use crate::probe;
use crate::text::{human, io, kind_name, paint};
use mmapipc::layout::STATE_READY;

fn type_label(r: &FileReport) -> String {
    match &r.schema {
        Some(Ok(s)) => format!("{} v{}", s.name, s.version),
        Some(Err(_)) => "(bad schema)".into(),
        None => "-".into(),
    }
}

/// The kind column: a temporary creation file is no channel yet, whatever its header says.
fn kind_label(p: &Probe) -> &'static str {
    match (&p.report.header, p.status.creation()) {
        (Ok(h), None) => kind_name(h),
        _ => "-",
    }
}

fn fill_label(p: &Probe) -> String {
    if p.status.creation().is_some() {
        return human(p.report.len);
    }
    match (&p.live, &p.report.header) {
        (Some(l), _) => format!(
            "{}/{} {:.0}%",
            human(l.used),
            human(l.capacity),
            if l.capacity == 0 { 0.0 } else { 100.0 * l.used as f64 / l.capacity as f64 }
        ),
        (None, Ok(h)) => human(h.data_size),
        (None, Err(_)) => human(p.report.len),
    }
}

fn holders_label(p: &Probe) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(l) = &p.live {
        for h in &l.holders {
            let tag = match h.role {
                "producer" => "P",
                "consumer" => "C",
                "producer lock" => "PL",
                "consumer lock" => "CL",
                "publisher" => "P",
                "subscriber" => "S",
                "member" => "G",
                _ => "V",
            };
            parts.push(format!("{tag}:{}{}", h.pid, if h.alive { "" } else { "(dead)" }));
        }
    }
    if let Some(m) = &p.mapped_by {
        // Processes that map the file without a recorded role (queue users between operations,
        // users of a raw region, a ring handle that has not read or written yet).
        let recorded: Vec<u32> = p.live.as_ref().map(|l| l.holders.iter().map(|h| h.pid).collect()).unwrap_or_default();
        let others: Vec<String> = m.iter().filter(|pid| !recorded.contains(pid)).map(u32::to_string).collect();
        match others.len() {
            0 => {}
            1..=3 => parts.push(format!("M:{}", others.join(","))),
            n => parts.push(format!("M:{},+{}", others[..2].join(","), n - 2)),
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

fn probe_json(p: &Probe) -> Value {
    let r = &p.report;
    let mut v = json!({
        "path": r.path.display().to_string(),
        "kind": kind_label(p),
        "status": p.status.word(),
        "status_detail": p.status.to_string(),
        "data_size": r.header.as_ref().map(|h| h.data_size).unwrap_or(0),
        "type": match &r.schema { Some(Ok(s)) => json!({"name": s.name, "version": s.version}), _ => Value::Null },
        "creator_pid": match p.status.creation() {
            Some(c) => Some(c.creator.pid),
            None => r.header.as_ref().map(|h| h.creator_pid).ok(),
        },
        "creator_alive": r.creator_alive.unwrap_or(false),
        "mapped_by": p.mapped_by,
    });
    if let Some(l) = &p.live {
        v["live"] = l.to_json();
    }
    if let Some(c) = p.status.creation() {
        v["creating"] = json!(c.target);
        v["type"] = Value::Null;
    }
    v
}

pub(crate) fn ls(out: &mut impl Write, dir: &Path, json: bool, color: bool) -> Result<i32, String> {
    let files = candidates(dir)?;
    let maps = probe::mappers();
    if !json {
        writeln!(
            out,
            "{:<32} {:<6} {:>22} {:>7} {:<16} {:<28} STATUS",
            "PATH", "KIND", "FILL", "PENDING", "MESSAGE TYPE", "ATTACHED"
        )
        .map_err(io)?;
    }
    for path in files {
        let p = probe_file(&path, maps.as_ref());
        if !path.exists() {
            continue; // removed while we looked at it
        }
        if json {
            writeln!(out, "{}", probe_json(&p)).map_err(io)?;
            continue;
        }
        let kind = kind_label(&p);
        let pending = p.live.as_ref().map_or("-".to_string(), |l| l.pending.to_string());
        let status = p.status.to_string();
        let status = match &p.status {
            Status::Live => paint(color, "32", &status),
            Status::Idle | Status::BeingCreated | Status::CreationRunning(_) => status,
            _ => paint(color, "33", &status),
        };
        // Names relative to DIR, like ls(1); --json gives full paths.
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        writeln!(
            out,
            "{:<32} {:<6} {:>22} {:>7} {:<16} {:<28} {}",
            name,
            kind,
            fill_label(&p),
            pending,
            if p.status.creation().is_some() { "-".into() } else { type_label(&p.report) },
            holders_label(&p),
            status
        )
        .map_err(io)?;
    }
    Ok(0)
}

fn short_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "not kept".into(), |x| x.to_string())
}

pub(crate) fn inspect(out: &mut impl Write, path: &Path, json: bool) -> Result<i32, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    let maps = probe::mappers();
    let p = probe_file(path, maps.as_ref());
    if p.status.creation().is_some() {
        if json {
            writeln!(out, "{}", probe_json(&p)).map_err(io)?;
        } else {
            writeln!(out, "{}: not a channel: {}", path.display(), p.status).map_err(io)?;
        }
        return Ok(1);
    }
    let r = &p.report;
    let h = match &r.header {
        Ok(h) => *h,
        Err(e) => {
            if json {
                let v = json!({
                    "path": path.display().to_string(),
                    "error": e.to_string(),
                    "status": p.status.word(),
                    "status_detail": p.status.to_string(),
                });
                writeln!(out, "{v}").map_err(io)?;
            } else {
                writeln!(out, "{}: not usable: {e} ({})", path.display(), p.status).map_err(io)?;
            }
            return Ok(1);
        }
    };
    if json {
        let mut v = probe_json(&p);
        v["layout_version"] = json!(h.layout_version);
        v["abi_flags"] = json!(h.abi_flags);
        v["total_size"] = json!(h.total_size);
        v["data_offset"] = json!(h.data_offset);
        v["creator_start_time"] = json!(h.creator_start_time);
        v["created_unix_ns"] = json!(h.created_unix_ns);
        v["mode"] = json!(format!("{:o}", r.mode));
        v["uid"] = json!(r.uid);
        v["schema"] = match &r.schema {
            Some(Ok(s)) => serde_json::to_value(s).unwrap_or(Value::Null),
            Some(Err(e)) => json!(format!("invalid schema: {e}")),
            None => Value::Null,
        };
        writeln!(out, "{v}").map_err(io)?;
        return Ok(if matches!(p.status, Status::Unusable(_)) { 1 } else { 0 });
    }
    let mut s = String::new();
    let _ = writeln!(s, "path            {}", path.display());
    let _ = writeln!(s, "kind            {}", kind_name(&h));
    let _ = writeln!(s, "status          {}", p.status);
    let _ = writeln!(s, "layout version  {}", h.layout_version);
    let _ = writeln!(s, "state           {}", if h.state == STATE_READY { "ready" } else { "not ready" });
    let _ = writeln!(s, "abi flags       {:#x}", h.abi_flags);
    let _ = writeln!(s, "file size       {} ({})", h.total_size, human(h.total_size));
    let _ = writeln!(s, "data area       {} bytes at offset {}", h.data_size, h.data_offset);
    let _ = writeln!(
        s,
        "creator         pid {} ({})",
        h.creator_pid,
        if r.creator_alive == Some(true) { "alive" } else { "exited" }
    );
    let _ = writeln!(s, "mode / owner    {:o} / uid {}", r.mode, r.uid);
    match &p.mapped_by {
        Some(m) if m.is_empty() => {
            let _ = writeln!(s, "mapped by       no other process");
        }
        Some(m) => {
            let pids: Vec<String> = m.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "mapped by       pids {}", pids.join(", "));
        }
        None => {
            let _ = writeln!(s, "mapped by       unknown (no /proc)");
        }
    }
    if let Some(l) = &p.live {
        let c = &l.counters;
        let _ = writeln!(s, "attached");
        if l.holders.is_empty() {
            let _ = writeln!(s, "  (no role or lock held right now)");
        }
        for hd in &l.holders {
            let _ = writeln!(s, "  {:<14} pid {} ({})", hd.role, hd.pid, if hd.alive { "alive" } else { "dead" });
        }
        let _ = writeln!(s, "fill");
        let _ = writeln!(
            s,
            "  used          {} bytes ({}) of {} bytes ({})",
            l.used,
            human(l.used),
            l.capacity,
            human(l.capacity)
        );
        let _ = writeln!(s, "  pending       {} messages, {} bytes (lag)", l.pending, l.lag_bytes);
        let _ = writeln!(s, "counters");
        let _ = writeln!(s, "  messages in   {:<14} bytes in   {}", c.msgs_in, c.bytes_in);
        let _ = writeln!(s, "  messages out  {:<14} bytes out  {}", c.msgs_out, c.bytes_out);
        let _ = writeln!(s, "  full waits    {:<14} empty waits {}", c.full_waits, c.empty_waits);
        let _ = writeln!(
            s,
            "  wakes         {} to consumers, {} to producers (32-bit, wraps); sleeps: not counted",
            c.consumer_wakes, c.producer_wakes
        );
        let _ = writeln!(s, "  sleeping now  {} consumers, {} producers", c.consumers_sleeping, c.producers_sleeping);
        let _ = writeln!(
            s,
            "  recoveries    locks {}, views {}",
            short_opt(c.lock_recoveries),
            short_opt(c.view_recoveries)
        );
        if let Some(t) = &l.topic {
            let _ = writeln!(
                s,
                "topic           tail {} oldest {} ({} subscribers reclaimed)",
                t.tail,
                t.oldest,
                short_opt(c.view_recoveries)
            );
            let _ = writeln!(
                s,
                "  {:<5} {:<8} {:<6} {:<16} {:>10} {:>12} {:>10}",
                "SLOT", "PID", "ALIVE", "GROUP", "LAG", "MESSAGES", "DROPPED"
            );
            for sub in &t.subscribers {
                let _ = writeln!(
                    s,
                    "  {:<5} {:<8} {:<6} {:<16} {:>10} {:>12} {:>10}",
                    sub.slot,
                    mmapipc::owner::pid(sub.owner),
                    if sub.alive { "yes" } else { "DEAD" },
                    sub.group.as_deref().unwrap_or("-"),
                    sub.lag,
                    sub.messages,
                    sub.dropped
                );
            }
            for g in &t.groups {
                let _ = writeln!(
                    s,
                    "  group {:<16} {} members, lag {}, {} messages, {} dropped",
                    g.name, g.members, g.lag, g.messages, g.dropped
                );
            }
        } else if let Some(stalls) = c.view_stalls {
            let _ = writeln!(s, "  view stalls   {stalls} (producers waited for space held by unreleased views)");
        }
    }
    match &r.schema {
        None => {
            let _ = writeln!(s, "schema          none (untyped bytes)");
        }
        Some(Err(e)) => {
            let _ = writeln!(s, "schema          invalid: {e}");
        }
        Some(Ok(sc)) => {
            let _ = writeln!(s, "schema          {}", sc.label());
            let _ = writeln!(s, "  root          {} bytes, align {}, fixed size: {}", sc.size, sc.align, sc.fixed_size);
            let _ = writeln!(s, "  {:<20} {:<16} {:>6} {:>6}", "FIELD", "TYPE", "OFFSET", "SIZE");
            for f in &sc.fields {
                let _ = writeln!(s, "  {:<20} {:<16} {:>6} {:>6}", f.name, f.ty.to_string(), f.offset, f.size);
            }
        }
    }
    out.write_all(s.as_bytes()).map_err(io)?;
    Ok(if matches!(p.status, Status::Unusable(_)) { 1 } else { 0 })
}
