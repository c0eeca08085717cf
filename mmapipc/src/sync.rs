//! Atomics, swapped for loom's model-checked ones under `--cfg loom`.
//!
//! Algorithms import their atomics from here so the same code is model-checked by loom and
//! compiled to plain atomics otherwise. Shared memory is reached by raw pointer; an atomic
//! reference is made only over a properly aligned control word (see `region`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Hints the CPU that we are spinning (loom: yields to the model's scheduler).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Gives the CPU to another runnable thread (loom: yields to the model's scheduler).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}
