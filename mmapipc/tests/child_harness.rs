//! The child-process harness of the integration tests (`common`): a child runs its role and
//! exits with its status, a panicking role fails, and a child whose role was not dispatched does
//! not run the test binary's tests again.

#![cfg(not(loom))]

mod common;

use std::process::Stdio;

/// `echo ARGS...` prints each argument on its own line; `panic MESSAGE` panics with it;
/// `exit CODE` exits with it.
fn roles(role: &str, args: &[String]) {
    match role {
        "echo" => args.iter().for_each(|a| println!("{a}")),
        "panic" => panic!("{}", args[0]),
        "exit" => std::process::exit(args[0].parse().unwrap()),
        other => panic!("unknown role {other}"),
    }
}

common::child_roles!(roles);

#[test]
fn a_child_runs_its_role_with_its_arguments() {
    let args = ["/dev/shm/a path with spaces", "", "ünïcode", "--exact"];
    let out = common::child("echo", &args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.lines().collect::<Vec<_>>(), args, "the child ran its role, not the tests");
    let out = common::child::<&str>("echo", &[]).output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

#[test]
fn a_failing_role_fails_the_child() {
    let out = common::child("panic", &["the role broke"]).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(out.status.code(), Some(101), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the role broke"), "{out:?}");
    assert_eq!(common::child("exit", &["3"]).status().unwrap().code(), Some(3));
    assert_eq!(common::child("no-such-role", &["x"]).output().unwrap().status.code(), Some(101));
}

#[test]
fn an_undispatched_child_runs_no_tests() {
    // What a child would see if the constructor had not run: libtest with the guard argument.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(common::NOT_DISPATCHED)
        .env_remove(common::ROLE_ENV)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("running"), "{out:?}");
}
