//! The `mmapipc` command-line tool; see the `mmapipc_cli` library.

fn main() {
    std::process::exit(mmapipc_cli::main_with_args(std::env::args_os()));
}
