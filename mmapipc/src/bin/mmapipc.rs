//! The `mmapipc` command-line tool; see `mmapipc::cli`.

fn main() {
    std::process::exit(mmapipc::cli::main(std::env::args_os()));
}
