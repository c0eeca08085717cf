//! Waiting across processes: poll briefly (spin, then yield), then sleep on a 32-bit word in the
//! shared mapping.
//!
//! * `futex.rs`: the system calls ([`wait_on`], [`wake_all`]);
//! * `spin.rs`: the polling phase ([`SPIN_PURE`] of spinning, then yielding until
//!   [`SPIN_TOTAL`] or the waiting side's window);
//! * `window.rs`: that window ([`SpinWindow`]), widened while waits keep ending soon after it
//!   and narrowed when they do not;
//! * `waiter.rs`: [`Deadline`], [`Waiter`] (a futex word and a sleeper count, so wakers make no
//!   syscall while nobody sleeps) and the one wait loop, with the symmetric handshake (a SeqCst
//!   fence on each side; the queue);
//! * `asymmetric.rs`: the same loop with the asymmetric handshake (no fence on the waker's
//!   side, `membarrier` on the sleeper's; the ring);
//! * `watch.rs`, `readiness.rs` and `reactor.rs` (Linux): readiness as an eventfd (a
//!   primitive's side as a [`Watch`], in `watch.rs`; the [`Notifier`] that owns the eventfd)
//!   signalled by per-process waiter threads on `futex_waitv`, for event loops.
//!
//! Deadlines are monotonic ([`Instant`](std::time::Instant)).

pub(crate) mod asymmetric;
mod futex;
#[cfg(all(target_os = "linux", not(loom)))]
mod reactor;
#[cfg(all(target_os = "linux", not(loom)))]
pub mod readiness;
mod spin;
mod waiter;
#[cfg(all(target_os = "linux", not(loom)))]
mod watch;
mod window;

pub use futex::{wait_on, wake_all};

#[cfg(all(target_os = "linux", not(loom)))]
pub use readiness::Notifier;
pub use spin::{SPIN_PURE, SPIN_TOTAL};
pub(crate) use waiter::{wait_loop, Sleeping};
pub use waiter::{Deadline, Waiter};
#[cfg(all(target_os = "linux", not(loom)))]
pub use watch::{Handshake, Watch};
pub use window::{max as spin_max, SpinWindow, SPIN_MAX_DEFAULT, SPIN_MAX_ENV};
