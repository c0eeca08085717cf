//! Keeping glibc's heap for the large `bytes` that reads return.
//!
//! A read that returns a message as a new `bytes` of a megabyte or more gets it from `malloc`.
//! With glibc's defaults the first such block is mmapped; freeing it raises the mmap threshold
//! to its size and the trim threshold to twice that, so later ones come from the heap, and
//! freeing two or more at the top of the heap (a batch, or a few frames alive at once) returns
//! the memory to the kernel: every later message then faults in and zeroes fresh pages, which
//! costs more than the copy (docs/benchmarks.md, issue 16). Before returning such a `bytes`,
//! [`keep_heap_for`] fixes both thresholds for this process: blocks up to the largest mmap
//! threshold glibc accepts (32 MiB) come from the heap, and the heap keeps freed memory up to
//! twice the largest amount one call returned (at least 64 MiB, at most 1 GiB). Messages larger
//! than 32 MiB stay mmapped blocks (a page fault per page, as with the defaults).
//!
//! Only with glibc; elsewhere it does nothing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Results smaller than this change nothing (the defaults serve them from the heap already).
const LARGE: usize = 1 << 20;
/// glibc's largest accepted `M_MMAP_THRESHOLD` on 64-bit (`HEAP_MAX_SIZE / 2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: usize = 32 << 20;
const TRIM_MIN: usize = 64 << 20;
const TRIM_MAX: usize = 1 << 30;

/// The trim threshold set so far (0: the defaults are in force).
static TRIM: AtomicUsize = AtomicUsize::new(0);

/// Call before allocating `bytes` objects of `total` bytes in one call (a message, or a batch).
#[inline]
pub fn keep_heap_for(total: usize) {
    if total < LARGE {
        return;
    }
    let want = total.saturating_mul(2).clamp(TRIM_MIN, TRIM_MAX);
    // Relaxed: a cache of a setting that glibc holds under its own lock; racing callers each
    // call mallopt with values that only grow.
    if want <= TRIM.load(Ordering::Relaxed) {
        return;
    }
    TRIM.fetch_max(want, Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables (under the arena lock); the values are in
    // the ranges glibc accepts (it returns 0 and changes nothing otherwise).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, want as libc::c_int);
    }
}
