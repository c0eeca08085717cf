//! Child processes for the integration tests.
//!
//! A test that needs a second process re-executes its own test binary with [`ROLE_ENV`] naming
//! the child's role (and [`ARGS_ENV`] its arguments). The binary declares its roles with
//! [`child_roles!`], which registers a constructor that runs when the process starts, before
//! libtest's `main`: in a child it runs the role and exits; in a normal run it returns at once.
//! So children are not `#[test]` functions, `cargo test -- --list` lists only tests, and a role
//! that panics or exits non-zero makes the parent's test fail through the child's exit status.
//!
//! ```ignore
//! mod common;
//!
//! fn roles(role: &str, args: &[String]) {
//!     match role {
//!         "producer" => produce(&args[0]),
//!         other => panic!("unknown role {other}"),
//!     }
//! }
//! common::child_roles!(roles);
//!
//! #[test]
//! fn t() {
//!     let mut child = common::child("producer", &[path]).spawn().unwrap();
//!     assert!(child.wait().unwrap().success());
//! }
//! ```

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::Command;

/// The environment variable naming a child's role. Unset in a normal test run.
pub const ROLE_ENV: &str = "MMAPIPC_TEST_CHILD";

/// The child's arguments, separated by [`ARG_SEP`] (an environment variable, not argv: the
/// constructor runs before the standard library is guaranteed to have read argv).
pub const ARGS_ENV: &str = "MMAPIPC_TEST_CHILD_ARGS";

/// Separates arguments in [`ARGS_ENV`] (ASCII unit separator: never in a path or number).
const ARG_SEP: char = '\u{1f}';

/// The pid of the process that spawned the child (see [`run_child`]).
const PARENT_ENV: &str = "MMAPIPC_TEST_CHILD_PARENT";

/// Given to every child on its command line. A dispatched child never looks at its argv; if
/// the constructor did not run, libtest rejects this unknown option and exits non-zero instead
/// of running every test of the binary again (which would spawn children of its own).
pub const NOT_DISPATCHED: &str = "--mmapipc-child-not-dispatched";

/// A command that runs this test binary as the child `role` with `args` (configure its stdio,
/// then `spawn` or `status` it).
pub fn child<S: AsRef<OsStr>>(role: &str, args: &[S]) -> Command {
    let mut joined = std::ffi::OsString::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            joined.push(ARG_SEP.to_string());
        }
        let a = a.as_ref();
        assert!(!a.to_string_lossy().contains(ARG_SEP), "child argument {a:?} contains the separator");
        joined.push(a);
    }
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.arg(NOT_DISPATCHED).env(ROLE_ENV, role).env(ARGS_ENV, joined).env(PARENT_ENV, std::process::id().to_string());
    cmd
}

/// Runs the child role named in the environment, if any, and exits: status 0 if `dispatch`
/// returned, 101 if it panicked (as a failed test would). Returns at once when no role is set.
/// Called from the constructor that [`child_roles!`] registers.
///
/// On Linux the child is SIGKILLed when the test thread that spawned it ends: a test that fails
/// half-way cannot leave a child blocked forever on a channel nobody serves (holding the test
/// run's output pipe open).
pub fn run_child(dispatch: fn(&str, &[String])) {
    let Some(role) = std::env::var_os(ROLE_ENV) else { return };
    die_with_parent();
    let role = role.to_string_lossy().into_owned();
    let args: Vec<String> = match std::env::var(ARGS_ENV) {
        Ok(a) if !a.is_empty() => a.split(ARG_SEP).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    // A panic must not unwind out of the constructor (an `extern "C"` function: that aborts);
    // the default hook has printed it to stderr already.
    let code = match std::panic::catch_unwind(|| dispatch(&role, &args)) {
        Ok(()) => 0,
        Err(_) => 101,
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

#[cfg(target_os = "linux")]
fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes only this process's own
    // attributes.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // The parent may have ended before the signal was armed: then we were re-parented already.
    let parent = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<libc::pid_t>().ok());
    // SAFETY: getppid has no preconditions.
    if parent.is_some_and(|p| p != unsafe { libc::getppid() }) {
        std::process::exit(101);
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent() {}

/// Declares this test binary's child roles: `child_roles!(dispatch)` with
/// `fn dispatch(role: &str, args: &[String])`, which runs the role (panicking on an unknown one).
///
/// The constructor goes in the platform's initialiser section (`.init_array` on ELF,
/// `__mod_init_func` on Mach-O), which the loader runs before `main`. It touches only the
/// environment, the role's own code and `exit`; it does not read `std::env::args` (on Linux the
/// standard library fills that from a constructor of its own, in no guaranteed order).
macro_rules! child_roles {
    ($dispatch:path) => {
        #[used]
        #[cfg_attr(
            any(target_os = "linux", target_os = "android", target_os = "freebsd"),
            link_section = ".init_array"
        )]
        #[cfg_attr(target_vendor = "apple", link_section = "__DATA,__mod_init_func")]
        static CHILD_ROLES: extern "C" fn() = {
            extern "C" fn run() {
                $crate::common::run_child($dispatch);
            }
            run
        };
    };
}
pub(crate) use child_roles;
