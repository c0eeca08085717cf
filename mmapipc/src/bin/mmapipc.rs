//! The `mmapipc` command-line tool; see `mmapipc::cli`.

#[cfg(not(loom))]
fn main() {
    std::process::exit(mmapipc::cli::main(std::env::args_os()));
}

/// The tool is not built for loom model checking.
#[cfg(loom)]
fn main() {}
