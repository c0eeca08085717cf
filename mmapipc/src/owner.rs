//! The owner word: which process holds a ring role, a queue lock or a queue view.
//!
//! Every place in a file that names a process stores one 64-bit *owner word*:
//!
//! ```text
//! bits 32..64  pid
//! bits  0..32  (low 32 bits of the process's start time) | 1
//! ```
//!
//! The start time is field 22 of `/proc/<pid>/stat` (clock ticks since boot, Linux; 0 where
//! unknown). Bit 0 is always set, so an owner word is never zero and zero means "free". The word
//! is written with a single atomic store or compare-and-swap, so a reader never sees half of
//! one.
//!
//! A word's process is [`alive`] if a process with that pid runs, its start time matches (a
//! recycled pid is another process), and it is not a zombie: a process that was killed but not
//! yet reaped by its parent (state `Z` or `X` in `/proc/<pid>/stat`) has its `/proc` entry and
//! its start time, but it runs no more code and holds nothing. A supervisor that restarts a
//! crashed child before reaping it relies on that rule.
//!
//! [`me`] is this process's word, cached. The cache is reset in a forked child by a hook of the
//! crate's one `pthread_atfork` handler ([`crate::fork`]), so a child never claims or releases
//! anything in its parent's name.
//!
//! Known limit: processes in different pid namespaces sharing one file see different pids; like
//! every pid-based scheme this assumes all peers share a pid namespace.

use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

use crate::process::{self, ProcessId};

/// The owner word of `id`: `(pid << 32) | (start_time as u32 | 1)`; never zero.
pub const fn encode(id: ProcessId) -> u64 {
    ((id.pid as u64) << 32) | ((id.start_time as u32) | 1) as u64
}

/// The pid recorded in an owner word (0 for the free word).
pub const fn pid(word: u64) -> u32 {
    (word >> 32) as u32
}

// Process-local caches (std atomics even under loom: they are no part of any shared protocol).
// `PID` is 0 until this process's identity is known; `START` is valid once `PID` is non-zero.
static PID: StdAtomicU32 = StdAtomicU32::new(0);
static START: StdAtomicU64 = StdAtomicU64::new(0);
static WORD: StdAtomicU64 = StdAtomicU64::new(0);

/// The fork hook ([`crate::fork`]): forgets the cached identity in a forked child.
fn reset_in_child() {
    // Async-signal-safe: plain atomic stores, run in the child before any other code of it, so
    // no thread can see a half-reset cache.
    WORD.store(0, StdOrdering::Relaxed);
    PID.store(0, StdOrdering::Relaxed);
}

/// This process (pid and start time), cached; correct in a forked child.
pub fn current() -> ProcessId {
    // Acquire pairs with the Release store below: a non-zero pid comes with its start time.
    let pid = PID.load(StdOrdering::Acquire);
    if pid != 0 {
        return ProcessId { pid, start_time: START.load(StdOrdering::Relaxed) };
    }
    let pid = std::process::id();
    let id = ProcessId { pid, start_time: process::start_time(pid).unwrap_or(0) };
    if crate::fork::on_child(reset_in_child) {
        // Racing threads store the same values. Relaxed for START: published by PID's Release.
        START.store(id.start_time, StdOrdering::Relaxed);
        PID.store(id.pid, StdOrdering::Release);
    }
    id
}

/// This process's owner word, cached (reading `/proc` costs microseconds; this is one load).
#[inline]
pub fn me() -> u64 {
    // Relaxed: the value is a per-process constant; a stale 0 only sends us to the slow path.
    let w = WORD.load(StdOrdering::Relaxed);
    if w != 0 {
        return w;
    }
    me_slow()
}

#[cold]
fn me_slow() -> u64 {
    let id = current();
    let w = encode(id);
    // Cached only once `current` cached too, i.e. once the fork handler is registered.
    if PID.load(StdOrdering::Acquire) == id.pid {
        WORD.store(w, StdOrdering::Relaxed);
    }
    w
}

/// Claims `word` for this process: a compare-and-swap from 0, or from the word of a dead
/// holder, to [`me`]. `Ok(true)` if a dead holder was taken over, `Err(holder)` if a live process
/// (this one included, through another handle) holds it. The one claim of a role word (the
/// topic's publisher, its subscriber slots).
pub fn claim(word: &crate::sync::AtomicU64) -> Result<bool, u64> {
    use crate::sync::Ordering;
    let me = me();
    let mut current = 0u64;
    loop {
        // AcqRel: Acquire pairs with the previous holder's Release (its release store or its own
        // claim), so its last stores to what the word guards are visible; Release publishes ours.
        match word.compare_exchange(current, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(current != 0),
            Err(found) if found == me || alive(found) => return Err(found),
            Err(found) => current = found,
        }
    }
}

/// Whether the process named by an owner word still runs: same pid, same start time, not a
/// zombie. The free word (0) is never alive.
pub fn alive(word: u64) -> bool {
    let p = pid(word);
    if word == 0 || p == 0 || p > i32::MAX as u32 {
        return false;
    }
    let low = word as u32;
    check(p, |start| ((start as u32) | 1) == low)
}

/// Whether `who` still runs, by the rules of [`alive`] with its whole start time compared (a
/// start time of 0 means unknown: then only the pid and the zombie rule are checked).
pub fn process_alive(who: ProcessId) -> bool {
    if who.pid == 0 || who.pid > i32::MAX as u32 {
        return false;
    }
    check(who.pid, |start| who.start_time == 0 || start == who.start_time)
}

/// True if a `/proc/<pid>/stat` line says the process is a zombie (`Z`) or dead (`X`): killed
/// (or exited) and not yet reaped, holding nothing any more.
pub fn stat_says_dead(stat: &[u8]) -> bool {
    // Field 3 (the state) follows the command name, which may itself contain ") ".
    let Some(close) = stat.iter().rposition(|&b| b == b')') else { return false };
    matches!(stat.get(close + 2), Some(b'Z') | Some(b'X') | Some(b'x'))
}

/// The liveness rule, for `pid` and a test of its start time.
fn check(pid: u32, same_start: impl Fn(u64) -> bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        match std::fs::read(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat_says_dead(&stat) && process::parse_start_time(&stat).is_some_and(same_start),
            // No entry (or it went while we read it): no such process, as long as /proc works
            // here at all (it does if we could read our own start time). Any other failure (no
            // file descriptor left, no memory) says nothing of the process: ask the kernel, so
            // that a live holder is never taken for dead. Without /proc, ask the kernel too.
            Err(e) if gone(&e) && current().start_time != 0 => false,
            Err(_) => signal_zero(pid),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Start times and process states are unknown here: the pid's existence is all we have.
        let _ = same_start;
        signal_zero(pid)
    }
}

/// True if reading `/proc/<pid>/stat` failed because the process does not exist.
#[cfg(target_os = "linux")]
fn gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// `kill(pid, 0)`: the process exists (EPERM: it exists and belongs to another user).
fn signal_zero(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission; pid is positive.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_encode_pid_and_start_and_are_never_zero() {
        let w = encode(ProcessId { pid: 0x1234, start_time: 0xABCD_0000_0000_0010 });
        assert_eq!(w, (0x1234 << 32) | 0x11);
        assert_eq!(pid(w), 0x1234);
        assert_ne!(encode(ProcessId { pid: 0, start_time: 0 }), 0);
        assert_eq!(pid(0), 0);
    }

    #[test]
    fn me_is_alive_and_pid_reuse_is_dead() {
        let m = me();
        assert_eq!(m, encode(current()));
        assert_eq!(pid(m), std::process::id());
        assert!(alive(m));
        assert!(!alive(0));
        assert!(process_alive(current()));
        if cfg!(target_os = "linux") {
            // Same pid, another start time: a recycled pid, another process.
            assert!(!alive(m ^ 2));
            let me = current();
            assert!(!process_alive(ProcessId { pid: me.pid, start_time: me.start_time + 1 }));
        }
    }

    #[test]
    fn stat_states() {
        assert!(stat_says_dead(b"12 (a) b) Z 1 2 3"));
        assert!(stat_says_dead(b"12 (x) X 1"));
        assert!(!stat_says_dead(b"12 (a) Z) S 1 2 3"));
        assert!(!stat_says_dead(b"garbage"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "spawns a process")]
    fn exited_process_is_dead() {
        assert!(!alive(encode(process::exited_process())));
        assert!(!process_alive(process::exited_process()));
    }

    /// A SIGKILLed child that its parent has not reaped yet is a zombie: dead, although its
    /// `/proc` entry (and start time) are still there.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "spawns a process")]
    fn killed_unreaped_child_is_dead() {
        let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        let who = ProcessId { pid: child.id(), start_time: process::start_time(child.id()).unwrap() };
        assert!(alive(encode(who)));
        child.kill().unwrap();
        // Wait (without reaping) until the kernel has made it a zombie.
        let watchdog = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !std::fs::read(format!("/proc/{}/stat", who.pid)).is_ok_and(|s| stat_says_dead(&s)) {
            assert!(std::time::Instant::now() < watchdog, "child never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(process::start_time(who.pid), Some(who.start_time), "the zombie keeps its entry");
        assert!(!alive(encode(who)));
        assert!(!process_alive(who));
        child.wait().unwrap();
    }

    /// The cached word is reset in a forked child: the child's `me()` names the child.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "forks")]
    fn me_after_fork_names_the_child() {
        let parent = me();
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only computes its word (a /proc read, as the parent already does
        // safely from many threads; glibc keeps malloc usable after fork), writes it to the
        // pipe and exits with _exit, running no destructors or atexit handlers.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            let w = me().to_le_bytes();
            // SAFETY: fds[1] is the pipe's write end; w is 8 readable bytes.
            unsafe {
                libc::write(fds[1], w.as_ptr().cast(), 8);
                libc::_exit(0)
            };
        }
        // SAFETY: closing our copy of the write end, so read sees EOF if the child dies.
        unsafe { libc::close(fds[1]) };
        let mut buf = [0u8; 8];
        // SAFETY: fds[0] is the read end; buf has room for 8 bytes.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), 8) };
        let mut status = 0;
        // SAFETY: reaps our own child; status is a valid int.
        unsafe {
            libc::waitpid(child, &mut status, 0);
            libc::close(fds[0]);
        }
        assert_eq!(n, 8);
        let w = u64::from_le_bytes(buf);
        assert_eq!(pid(w), child as u32);
        assert_ne!(w, parent);
        assert_eq!(me(), parent);
    }

    #[test]
    fn self_is_alive_and_pid_reuse_is_dead() {
        let me = current();
        assert!(process_alive(me));
        if cfg!(target_os = "linux") {
            assert_ne!(me.start_time, 0);
            let other = ProcessId { pid: me.pid, start_time: me.start_time + 1 };
            assert!(!process_alive(other));
        }
        assert!(!process_alive(ProcessId { pid: 0, start_time: 0 }));
    }

    #[test]
    #[cfg_attr(miri, ignore = "spawns a process")]
    fn exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let who = ProcessId { pid: child.id(), start_time: crate::process::start_time(child.id()).unwrap_or(0) };
        child.wait().unwrap();
        assert!(!process_alive(who));
    }
}
