//! The `mmapipc` command-line tool: list, inspect, tail, watch and repair shared-memory channels.
//!
//! The same code runs as the `mmapipc` binary of this crate and as the `mmapipc` console script
//! of the Python package (`mmapipc._mmapipc.cli_main` calls [`main_with_args`]). Nothing here
//! claims a ring role or takes a queue lock: the tool only reads the mappings (except
//! `doctor --fix`, which removes or chmods files). The core crate `mmapipc` does not depend on
//! this one; clap lives only here.
//!
//! Exit codes (see `docs/cli.md`): 0 success; 1 problems found (`doctor` without `--fix`), or the
//! file is not a usable channel (`inspect`, `tail`, `stat`), or a channel turned out corrupt;
//! 2 usage error, missing file, or I/O error.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Parser;

use mmapipc::region;

mod args;
pub mod bridge_stats;
pub mod creating;
mod doctor;
pub mod example_types;
mod file;
pub mod preview;
pub mod probe;
mod schema_export;
mod show;
mod text;
mod watch;

use args::{Cli, Command, SchemaCommand};
pub use file::{examine, probe_file, read_schema, FileReport, Probe, Status};

/// Runs the tool with `args` (including the program name) and returns the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let tty = std::io::stdout().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Ls { dir, json } => show::ls(&mut out, &dir, json, color),
        Command::Inspect { path, json } => show::inspect(&mut out, &region::resolve_path(path), json),
        Command::Tail { path, lines, follow, interval, max } => {
            secs(interval).and_then(|iv| watch::tail(&mut out, &region::resolve_path(path), lines, follow, iv, max))
        }
        Command::Stat { path, interval, count, json } => {
            secs(interval).and_then(|iv| watch::stat(&mut out, &region::resolve_path(path), iv, count, json, tty))
        }
        Command::Doctor { dir, fix, remove_stale } => doctor::doctor(&mut out, &dir, fix, remove_stale, color),
        Command::Schema { command: SchemaCommand::Export { target } } => {
            schema_export::schema_export(&mut out, &target)
        }
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            let _ = out.flush();
            eprintln!("mmapipc: {msg}");
            2
        }
    }
}

fn secs(s: f64) -> Result<Duration, String> {
    if s.is_finite() && (0.001..=86400.0).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("interval {s} is not between 0.001 and 86400 seconds"))
    }
}
