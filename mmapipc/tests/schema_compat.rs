//! The schema compatibility table both languages are held to: every case in
//! `tests/fixtures/schema_compat.json` gives, with the Rust crate, exactly the verdict and message
//! written there. `tests/test_schema.py` checks the Python package against the same file.

use std::collections::BTreeMap;

use mmapipc::typed::schema::Schema;
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/schema_compat.json");

fn fixture() -> (BTreeMap<String, Schema>, Vec<Value>) {
    let doc: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    let schemas = doc["schemas"]
        .as_object()
        .expect("schemas is an object")
        .iter()
        .map(|(key, s)| {
            // Every schema of the table is valid: its fingerprint is the one of its layout.
            let schema = Schema::from_json(&s.to_string()).unwrap_or_else(|e| panic!("schema {key}: {e}"));
            (key.clone(), schema)
        })
        .collect();
    (schemas, doc["cases"].as_array().expect("cases is an array").clone())
}

#[test]
fn rust_verdicts_match_the_shared_table() {
    let (schemas, cases) = fixture();
    assert!(cases.len() >= 15, "the table lost cases");
    let mut wrong = Vec::new();
    for case in &cases {
        let get = |side: &str| {
            let key = case[side].as_str().expect("schema key");
            schemas.get(key).unwrap_or_else(|| panic!("case {}: no schema {key}", case["case"]))
        };
        let expected = case["mismatch"].as_str().map(str::to_owned);
        let actual = get("channel").check_reader(get("reader")).err().map(|m| m.to_string());
        if actual != expected {
            wrong.push(format!(
                "case {}:\n  expected {}\n  actual   {}",
                case["case"],
                serde_json::to_string(&expected).unwrap_or_default(),
                serde_json::to_string(&actual).unwrap_or_default()
            ));
        }
    }
    assert!(wrong.is_empty(), "verdicts differ from tests/fixtures/schema_compat.json:\n{}", wrong.join("\n"));
}

#[test]
fn the_table_covers_both_verdicts_and_every_rule() {
    let (_, cases) = fixture();
    let messages: Vec<&str> = cases.iter().filter_map(|c| c["mismatch"].as_str()).collect();
    assert!(cases.iter().any(|c| c["mismatch"].is_null()), "no compatible case");
    for rule in [
        "name: ",
        "archive format: ",
        "version: ",
        "(only in channel)",
        "missing in channel",
        "(channel) vs",
        "size/align: ",
        "is smaller than",
        "fingerprint: ",
        "field pos.y: ",
    ] {
        assert!(messages.iter().any(|m| m.contains(rule)), "no case gives a {rule:?} detail");
    }
}
