//! `doctor`: what is wrong with the mmapipc files of a directory, and the repairs that are safe.
//! Files that are not mmapipc files (no magic, not a temporary creation file) are never looked
//! at beyond their first bytes: never reported, never changed.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::file::{candidates, probe_file, Status};
use crate::probe;
use crate::text::{io, paint};

/// A repair `doctor --fix` can apply.
type Repair = Box<dyn Fn() -> std::io::Result<()>>;

pub(crate) fn doctor(
    out: &mut impl Write,
    dir: &Path,
    fix: bool,
    remove_stale: bool,
    color: bool,
) -> Result<i32, String> {
    let mut problems = 0;
    let maps = probe::mappers();
    for path in candidates(dir)? {
        let p = probe_file(&path, maps.as_ref());
        if !path.exists() {
            continue; // removed while we looked at it
        }
        let r = &p.report;
        let mut found: Vec<(String, Option<Repair>, &'static str)> = Vec::new();
        let rm = |path: &Path| -> Option<Repair> {
            let path = path.to_path_buf();
            Some(Box::new(move || std::fs::remove_file(&path)))
        };
        match &p.status {
            Status::HalfCreated => found.push((
                "half-created by a process that is gone (never became ready)".into(),
                rm(&path),
                "--fix removes it",
            )),
            Status::Stale(why) => found.push((
                format!("stale channel: {why}"),
                if remove_stale { rm(&path) } else { None },
                "--fix --remove-stale removes it",
            )),
            Status::CreationLeftover(c) => found.push((
                format!(
                    "left over from an interrupted creation of {} (creator pid {} is dead)",
                    c.target, c.creator.pid
                ),
                rm(&path),
                "--fix removes it",
            )),
            Status::CreationRunning(_) => {
                // Not a problem, and not to be touched: its creator links it into place shortly.
                writeln!(out, "{}: {}, left alone", path.display(), p.status).map_err(io)?;
                continue;
            }
            Status::Unusable(why) => found.push((format!("not usable: {why}"), None, "")),
            Status::Live | Status::Idle | Status::BeingCreated => {}
        }
        // A topic's subscriber slots that name dead processes: the publisher reclaims a slot when
        // it needs the room (block mode), a subscriber when the table is full; nothing to repair.
        if let Some(t) = p.live.as_ref().and_then(|l| l.topic.as_ref()) {
            for sub in t.subscribers.iter().filter(|s| !s.alive) {
                found.push((
                    format!(
                        "topic subscriber slot {} names dead pid {}{} (lag {}): reclaimed when the publisher needs its room",
                        sub.slot,
                        mmapipc::owner::pid(sub.owner),
                        sub.group.as_ref().map_or(String::new(), |g| format!(" of group {g:?}")),
                        sub.lag
                    ),
                    None,
                    "",
                ));
            }
        }
        // A leftover is removed whole; its mode does not matter.
        if r.mode & 0o022 != 0 && p.status.creation().is_none() {
            let path2 = path.clone();
            found.push((
                format!("mode {:o} lets other users write it", r.mode),
                Some(Box::new(move || std::fs::set_permissions(&path2, std::fs::Permissions::from_mode(0o600)))),
                "--fix sets mode 600",
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if r.uid != me && p.status.creation().is_none() {
            found.push((format!("owned by uid {} (not you): mmapipc refuses to open it by default", r.uid), None, ""));
        }
        for (what, repair, hint) in found {
            problems += 1;
            let action = match (fix, repair) {
                (true, Some(f)) => match f() {
                    Ok(()) => " -> fixed".to_string(),
                    Err(e) => format!(" -> fix failed: {e}"),
                },
                (_, _) if !hint.is_empty() => format!(" ({hint})"),
                _ => String::new(),
            };
            writeln!(out, "{}: {}{}", path.display(), paint(color, "33", &what), action).map_err(io)?;
        }
    }
    if problems == 0 {
        writeln!(out, "no problems found in {}", dir.display()).map_err(io)?;
        Ok(0)
    } else {
        Ok(if fix { 0 } else { 1 })
    }
}
