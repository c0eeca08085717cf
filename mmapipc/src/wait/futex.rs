//! The futex system calls: block while a 32-bit word holds a value, wake those blocked on it.
//!
//! Linux: `futex(FUTEX_WAIT)` / `futex(FUTEX_WAKE)` on the word (not `FUTEX_PRIVATE_FLAG`: the
//! waiters live in other processes). Other Unix systems have no public cross-process address
//! wait: [`wait_on`] naps for 200 us (or the timeout, if shorter) and returns, and the caller
//! re-checks the word; correct, only slower to wake. Under loom it yields to the model.

use std::time::Duration;

use crate::sync::AtomicU32;
#[cfg(not(all(target_os = "linux", not(loom))))]
use crate::sync::Ordering;

/// Blocks while `*word == expected`, for at most `timeout` (forever if `None`).
/// May return early (spuriously, on a signal, or when woken); callers re-check their condition.
pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        let ts;
        let ts_ptr = match timeout {
            Some(d) => {
                ts = libc::timespec {
                    tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                &ts as *const libc::timespec
            }
            None => std::ptr::null(),
        };
        // SAFETY: `word` is a valid, 4-byte aligned u32 for the duration of the call (it lives in
        // a mapping the caller keeps alive). FUTEX_WAIT only reads it; the timespec (relative, so
        // measured on CLOCK_MONOTONIC) outlives the call. Errors (EAGAIN: value changed, EINTR,
        // ETIMEDOUT) all mean "return and re-check", which is the contract.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    {
        if word.load(Ordering::Acquire) != expected {
            return;
        }
        let nap = Duration::from_micros(200);
        let nap = timeout.map_or(nap, |t| t.min(nap));
        #[cfg(loom)]
        {
            let _ = nap;
            loom::thread::yield_now();
        }
        #[cfg(not(loom))]
        std::thread::sleep(nap);
    }
}

/// Wakes every process blocked in [`wait_on`] on `word`.
pub fn wake_all(word: &AtomicU32) {
    #[cfg(all(target_os = "linux", not(loom)))]
    // SAFETY: `word` is a valid aligned u32; FUTEX_WAKE does not access memory beyond it.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    let _ = word;
}
