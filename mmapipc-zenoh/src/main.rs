//! `mmapipc-bridge`: export a local channel to a zenoh key, import a key into a local channel,
//! list the exported channels. See `docs/bridge.md`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mmapipc::topic::Start;
use mmapipc_zenoh::{net, Endpoints, ExportOptions, ImportOptions};

#[derive(Parser)]
#[command(name = "mmapipc-bridge", version, about = "Bridge mmapipc channels between hosts over zenoh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Net {
    /// zenoh endpoint to listen on (repeatable), e.g. tcp/0.0.0.0:7447.
    #[arg(long, value_name = "EP")]
    listen: Vec<String>,
    /// zenoh endpoint of a peer to connect to (repeatable), e.g. tcp/hostA:7447.
    #[arg(long, value_name = "EP")]
    connect: Vec<String>,
}

impl Net {
    fn endpoints(self) -> Endpoints {
        Endpoints { listen: self.listen, connect: self.connect }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Publish every message of the local ring, queue or topic at PATH on KEY.
    Export {
        /// The local channel (a bare name lives in /dev/shm).
        path: PathBuf,
        /// The key to export it as (e.g. market/ticks).
        #[arg(long)]
        key: String,
        /// Where a topic's subscription starts: latest (what is published from now on) or
        /// oldest (everything the topic retains, then the live stream).
        #[arg(long, value_name = "WHERE", default_value = "latest", value_parser = ["latest", "oldest"])]
        start: String,
        #[command(flatten)]
        net: Net,
    },
    /// Write every message exported on KEY into the local channel at PATH (created like the
    /// exported one if missing; refused with the schema diff if it differs).
    Import {
        /// The exported key.
        key: String,
        /// The local channel.
        path: PathBuf,
        /// Give up after this many seconds without an exporter (default: wait until stopped).
        #[arg(long, value_name = "SECS")]
        wait: Option<f64>,
        /// A topic: first the messages the exported topic retains, then the live stream (no
        /// gap and no repeat at the seam; sequence numbers decide).
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        net: Net,
    },
    /// List the channels exported on the network, with their schemas.
    Ls {
        /// Seconds to look for exporters.
        #[arg(long, value_name = "SECS", default_value_t = 3.0)]
        wait: f64,
        /// One JSON object per channel.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        net: Net,
    },
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() { s.clamp(0.0, 86400.0) } else { 0.0 })
}

fn main() {
    let cli = Cli::parse();
    net::stop_on_signals();
    let result = match cli.command {
        Command::Export { path, key, start, net } => {
            let start = if start == "oldest" { Start::Oldest } else { Start::Latest };
            mmapipc_zenoh::export(&ExportOptions { path, key, endpoints: net.endpoints(), start })
        }
        Command::Import { key, path, wait, history, net } => mmapipc_zenoh::import(&ImportOptions {
            key,
            path,
            endpoints: net.endpoints(),
            wait: wait.map(secs),
            history,
        }),
        Command::Ls { wait, json, net } => {
            let mut out = std::io::stdout().lock();
            mmapipc_zenoh::ls(&mut out, &net.endpoints(), secs(wait), json).map(|_| ())
        }
    };
    if let Err(e) = result {
        eprintln!("mmapipc-bridge: {e}");
        std::process::exit(e.exit_code());
    }
}
