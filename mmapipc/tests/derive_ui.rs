//! Compile-fail tests of `#[derive(IpcMessage)]`: every error the macro can give, with its span.
//! Regenerate snapshots after an intended change with `TRYBUILD=overwrite cargo test --test derive_ui`.

#[test]
#[cfg_attr(miri, ignore = "trybuild runs the compiler")]
fn derive_errors() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
