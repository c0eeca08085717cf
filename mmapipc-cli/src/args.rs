//! The command line: every command, its arguments and the help text (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// What the tool is, the same for `mmapipc`, `mmapipc -h` and `mmapipc --help`.
const ABOUT: &str = "Inspect and repair mmapipc shared-memory files: rings, queues and regions.";

/// Shown after the command list by every form of the top-level help.
const AFTER_HELP: &str = "\
A bare NAME means /dev/shm/NAME; any path with a '/' is used as given. The tool never claims a
ring role or takes a queue lock: it reads the mapping while producers and consumers run.

Exit codes: 0 ok; 1 problems found (doctor) or file not a usable channel; 2 usage error,
missing file or I/O error. Colour is used only on a terminal, and never with NO_COLOR set.";

/// The command line. Without a command the tool prints its help (to stderr, exit code 2).
#[derive(Debug, Parser)]
#[command(
    name = "mmapipc",
    version,
    about = ABOUT,
    long_about = None,
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the mmapipc files in a directory (default /dev/shm): kind, fill level, message type,
    /// attached processes, and whether anything still uses them (live / idle / stale).
    Ls {
        /// Directory to scan.
        #[arg(default_value = "/dev/shm")]
        dir: PathBuf,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a file's header, schema (with a field table), counters and attached processes.
    Inspect {
        /// The file (a bare name means /dev/shm/NAME).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the messages waiting in a ring or queue (retained in a topic) as JSON lines, without
    /// consuming them.
    ///
    /// Typed channels are decoded with the schema stored in the file; untyped messages are shown
    /// as their length and a UTF-8 or hex preview. Nothing is consumed: the real consumer still
    /// receives every message. This races with the consumer, which may take a message while it is
    /// copied; such a message (possibly overwritten by then) is dropped from the output, and with
    /// --follow the messages the consumer took between two polls are never seen (a
    /// {"missed":true} line says so). tail shows what is waiting, not everything that passes.
    Tail {
        /// The ring, queue or topic file.
        path: PathBuf,
        /// Show the last N waiting messages (0: none, only follow).
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        lines: usize,
        /// Keep polling and print messages as they are committed.
        #[arg(short, long)]
        follow: bool,
        /// Poll interval for --follow, in seconds.
        #[arg(long, default_value_t = 0.1)]
        interval: f64,
        /// Stop after printing this many messages in total.
        #[arg(long)]
        max: Option<u64>,
    },
    /// Live rates (msg/s, MB/s in and out), fill level and lag of a ring, queue or topic.
    ///
    /// On a terminal the display is redrawn in place like top; otherwise one line per refresh is
    /// printed (machine-readable with --json).
    Stat {
        /// The ring, queue or topic file.
        path: PathBuf,
        /// Seconds between refreshes.
        #[arg(short, long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after N refreshes (default: run until interrupted).
        #[arg(short, long)]
        count: Option<u64>,
        /// Print one JSON object per refresh.
        #[arg(long)]
        json: bool,
    },
    /// Find half-created files of dead processes, stale channels (every process that used them
    /// is dead), unusable files and unsafe permissions. Exit code 1 if anything was found.
    Doctor {
        /// Directory to scan.
        #[arg(default_value = "/dev/shm")]
        dir: PathBuf,
        /// Repair what is safe: remove half-created files of dead creators, chmod group- or
        /// world-writable files to 0600. Stale channels are removed only with --remove-stale.
        #[arg(long)]
        fix: bool,
        /// With --fix, also remove stale channels (nothing maps them, every recorded process is dead).
        #[arg(long, requires = "fix")]
        remove_stale: bool,
    },
    /// Schema commands.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Print a schema as JSON (the format of schemas/*.json): of a channel file, or of a built-in
    /// example type given as NAME or NAME@VERSION (e.g. market.Tick@2).
    Export {
        /// A channel file, or an example type name.
        target: String,
    },
}
