//! `mmapipc-bridge ls`: the channels exported on the network, from the exporters' liveliness
//! tokens (`mmapipc/live/**`) and their announcements (`mmapipc/info/KEY/FP`).

use std::io::Write;
use std::time::{Duration, Instant};

use zenoh::Wait;

use crate::info::Announcement;
use crate::net::{self, Endpoints};
use crate::{z, Error};

/// Lists the exported channels seen within `wait` (asked again until one shows up or `wait`
/// passes: a peer session may still be connecting) as a table, or as JSON lines.
pub fn ls(out: &mut impl Write, endpoints: &Endpoints, wait: Duration, json: bool) -> Result<usize, Error> {
    let session = endpoints.open()?;
    let start = Instant::now();
    let mut found: Vec<(String, Option<Announcement>)> = Vec::new();
    loop {
        let replies = session.liveliness().get("mmapipc/live/**").timeout(Duration::from_secs(2)).wait().map_err(z)?;
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                let k = sample.key_expr().as_str().to_string();
                if !found.iter().any(|(f, _)| *f == k) {
                    found.push((k, None));
                }
            }
        }
        if !found.is_empty() || start.elapsed() >= wait {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for (k, ann) in &mut found {
        let Some((key, fp)) = net::parse_key("live", k) else { continue };
        let replies = session.get(net::key("info", key, fp)).timeout(Duration::from_secs(2)).wait().map_err(z)?;
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                if let Ok(text) = sample.payload().try_to_string() {
                    *ann = serde_json::from_str(&text).ok();
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let io = |e: std::io::Error| Error::Usage(e.to_string());
    if !json {
        writeln!(out, "{:<28} {:<6} {:>10} {:<44} AT", "KEY", "KIND", "CAPACITY", "SCHEMA").map_err(io)?;
    }
    for (k, ann) in &found {
        match ann {
            Some(a) if json => writeln!(out, "{}", serde_json::to_string(a).unwrap_or_default()).map_err(io)?,
            Some(a) => writeln!(
                out,
                "{:<28} {:<6} {:>10} {:<44} {}:{} (pid {})",
                a.key,
                a.channel.kind,
                a.channel.capacity,
                a.channel.label(),
                a.host,
                a.path,
                a.pid
            )
            .map_err(io)?,
            None if json => writeln!(out, "{}", serde_json::json!({ "token": k })).map_err(io)?,
            None => writeln!(out, "{k:<28} (no answer to the announcement query)").map_err(io)?,
        }
        if !json {
            if let Some(s) = ann.as_ref().and_then(|a| a.channel.schema.as_ref()) {
                for f in &s.fields {
                    writeln!(out, "    {:<24} {} at {} ({} bytes)", f.name, f.ty, f.offset, f.size).map_err(io)?;
                }
            }
        }
    }
    drop(session);
    Ok(found.len())
}
