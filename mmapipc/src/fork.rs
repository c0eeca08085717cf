//! The one `pthread_atfork` handler of the crate: a fork generation and the hooks that reset
//! per-process state in a forked child.
//!
//! A child inherits its parent's memory, so every per-process cache is wrong in it: the owner
//! word cached by [`crate::owner::me`], the membarrier registration of the ring's wake-ups
//! (`wait/asymmetric.rs`), and every ring role a handle holds (a child holds none). The handler
//! runs in the child right after `fork`, before any other code of the child, and does only
//! atomic operations (async-signal-safe): it bumps [`generation`] (a ring handle compares its
//! claim's generation with it on every operation) and calls the registered hooks, each of which
//! only stores atomics.
//!
//! The handler is registered without `std::sync::Once`: a child forked while another thread of
//! its parent ran the `Once` would find it running forever and block at its first use. Here a
//! child that finds the registration half done by its parent (another pid) registers again
//! (a second registration only runs the hooks twice, which resets the same state twice), and a
//! thread that finds another thread of its own process registering is told "not yet", so that
//! it caches nothing this time.
//!
//! This module imports nothing of the crate: modules register their hooks here ([`on_child`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Incremented in every forked child.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// 0, or `pid << 1` while process `pid` registers the handler, `pid << 1 | 1` once it has.
static REGISTERED: AtomicU64 = AtomicU64::new(0);

/// Hooks run in a forked child (`fn()` pointers as `usize`; 0 = empty slot).
static HOOKS: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

#[cfg_attr(loom, allow(dead_code))]
extern "C" fn in_child() {
    // Async-signal-safe: atomic operations and the hooks, which only store atomics.
    // Relaxed: the child runs nothing else until this handler returns.
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for h in &HOOKS {
        let f = h.load(Ordering::Relaxed);
        if f != 0 {
            // SAFETY: only `on_child` stores non-zero values, each a valid `fn()` pointer.
            let f: fn() = unsafe { std::mem::transmute::<usize, fn()>(f) };
            f();
        }
    }
}

/// Registers the handler (once per process) and says whether it is registered: false only
/// while another thread of this process is registering it.
pub fn registered() -> bool {
    loop {
        // Acquire pairs with the Release store of the "done" state below.
        let r = REGISTERED.load(Ordering::Acquire);
        if r & 1 == 1 {
            return true;
        }
        let me = u64::from(std::process::id());
        if r != 0 && r >> 1 == me {
            return false;
        }
        if REGISTERED.compare_exchange(r, me << 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            #[cfg(not(loom))]
            // SAFETY: registers a plain extern "C" fn with no captured state; the handler only
            // does atomic operations and calls hooks that do, all valid in a freshly forked child.
            unsafe {
                libc::pthread_atfork(None, None, Some(in_child))
            };
            REGISTERED.store((me << 1) | 1, Ordering::Release);
            return true;
        }
    }
}

/// Registers the handler and `hook`, to run in every child forked afterwards (once per hook,
/// however often it is registered). True once both are in place: a caller may then cache a
/// per-process value that `hook` resets. Each hook may only store atomics.
///
/// # Panics
/// If more distinct hooks are registered than there are slots (a bug in this crate).
pub fn on_child(hook: fn()) -> bool {
    let f = hook as usize;
    for h in &HOOKS {
        // AcqRel/Acquire: a slot's value is a plain function pointer; the orderings only keep
        // the slot search consistent between threads registering at once.
        match h.compare_exchange(0, f, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return registered(),
            Err(existing) if existing == f => return registered(),
            Err(_) => {}
        }
    }
    panic!("more fork hooks than slots in mmapipc::fork");
}

/// How many forks separate this process from the first one that registered the handler
/// (0 until a child is forked). Compare values only within one process's lifetime.
#[inline]
pub fn generation() -> u64 {
    // Relaxed: the value only changes in a new process, before it runs any of our code.
    GENERATION.load(Ordering::Relaxed)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    static RAN: AtomicU64 = AtomicU64::new(0);

    fn hook() {
        RAN.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn a_child_sees_a_new_generation_and_runs_each_hook_once() {
        assert!(on_child(hook));
        assert!(on_child(hook), "registering again changes nothing");
        let before = generation();
        // SAFETY: the child only reads atomics and calls _exit (async-signal-safe).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = generation() == before + 1 && RAN.load(Ordering::Relaxed) == 1;
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status}");
        assert_eq!(generation(), before, "the parent's generation is unchanged");
    }
}
