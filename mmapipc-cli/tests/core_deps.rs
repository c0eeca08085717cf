//! The tool's dependencies stay out of the core: `mmapipc` (what a user of the library builds)
//! must not pull in clap, which only the `mmapipc-cli` crate needs.

use std::process::Command;

/// The crates in `package`'s normal (non-dev, non-build) dependency tree, one name per entry.
fn normal_deps(package: &str) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_core_library_does_not_depend_on_clap() {
    let tool = normal_deps("mmapipc-cli");
    // The check below means something only if the tree lists what the tool does use.
    assert!(tool.iter().any(|d| d == "clap"), "mmapipc-cli's tree has no clap: {tool:?}");
    assert!(tool.iter().any(|d| d == "mmapipc"), "mmapipc-cli's tree has no mmapipc: {tool:?}");
    let core = normal_deps("mmapipc");
    assert!(core.iter().any(|d| d == "mmapipc"), "{core:?}");
    let leaked: Vec<&String> = core.iter().filter(|d| d.starts_with("clap") || *d == "mmapipc-cli").collect();
    assert!(leaked.is_empty(), "the core library depends on {leaked:?}");
}
