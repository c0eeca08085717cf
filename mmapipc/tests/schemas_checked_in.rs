//! The example types' schemas must match the files checked in under `schemas/`.
//!
//! A layout change without a version bump fails here (like a breaking-change check). To add a
//! new version's file, run `MMAPIPC_WRITE_SCHEMAS=1 cargo test -p mmapipc --test schemas_checked_in`;
//! it writes missing files only and never overwrites an existing version.

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::PathBuf;

use mmapipc::Schema;

use example_types::all_schemas;

fn file_for(s: &Schema) -> PathBuf {
    // "market.Tick" v1 -> schemas/market/tick.v1.json
    let (pkg, ty) = s.name.split_once('.').unwrap_or(("misc", &s.name));
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas").join(pkg).join(format!(
        "{}.v{}.json",
        ty.to_lowercase(),
        s.version
    ))
}

#[test]
fn every_example_schema_matches_its_checked_in_file() {
    let write = std::env::var_os("MMAPIPC_WRITE_SCHEMAS").is_some();
    let mut problems = Vec::new();
    for schema in all_schemas() {
        let path = file_for(&schema);
        match std::fs::read_to_string(&path) {
            Ok(text) => match Schema::from_json(&text) {
                Ok(on_disk) if on_disk == schema => {}
                Ok(on_disk) => problems.push(format!(
                    "{}: the layout of {} changed without a version bump: {}",
                    path.display(),
                    schema.label(),
                    on_disk.check_reader(&schema).err().map(|m| m.to_string()).unwrap_or_else(|| "differs".into())
                )),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            },
            Err(_) if write => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, schema.to_json() + "\n").unwrap();
            }
            Err(_) => problems.push(format!(
                "{}: missing; run MMAPIPC_WRITE_SCHEMAS=1 cargo test -p mmapipc --test schemas_checked_in",
                path.display()
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_v2_appends_to_its_v1() {
    let all = all_schemas();
    for v2 in all.iter().filter(|s| s.version == 2) {
        let v1 = all.iter().find(|s| s.name == v2.name && s.version == 1).unwrap();
        assert_eq!(v2.check_reader(v1), Ok(()), "{} must be readable as {}", v2.label(), v1.label());
        assert!(v1.check_reader(v2).is_err());
    }
}
