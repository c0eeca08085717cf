//! Blocking calls from Python: the one retry loop every blocking method of the module runs.
//!
//! [`retry`] tries once with the GIL held (the fast path pays for no GIL release and reads no
//! clock); if that yields nothing and the call may block, it waits in slices of at most
//! [`SLICE`] with the GIL released, and between slices checks that the handle is still open,
//! checks for signals (so Ctrl-C raises `KeyboardInterrupt`), and checks the deadline.

use std::time::Duration;

use mmapipc::wait::Deadline;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Longest time spent without the GIL before checking for signals and `close()`.
pub const SLICE: Duration = Duration::from_millis(50);

/// Converts a Python `timeout` (seconds, `None` = forever) into a `Duration`.
pub fn timeout_arg(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => {
            Err(PyValueError::new_err(format!("timeout must be a non-negative number of seconds, got {t}")))
        }
        Some(t) => Ok(Some(Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX))),
    }
}

/// A call's deadline, fixed on first use: a call that may not block never reads the clock.
pub struct CallDeadline {
    timeout: Option<Duration>,
    at: Option<Deadline>,
}

impl CallDeadline {
    /// `timeout` (None: forever) if the call may block, passed at once otherwise.
    pub fn new(block: bool, timeout: Option<Duration>) -> CallDeadline {
        CallDeadline { timeout: if block { timeout } else { Some(Duration::ZERO) }, at: None }
    }

    /// [`new`](Self::new) from Python's `block` and `timeout` arguments.
    pub fn from_args(block: bool, timeout: Option<f64>) -> PyResult<CallDeadline> {
        Ok(CallDeadline::new(block, timeout_arg(timeout)?))
    }

    /// No deadline: the call waits as long as it takes.
    pub fn forever() -> CallDeadline {
        CallDeadline::new(true, None)
    }

    /// Whether the call may wait at all (false for `block=False` or a zero timeout).
    pub fn may_wait(&self) -> bool {
        self.timeout != Some(Duration::ZERO)
    }

    fn get(&mut self) -> Deadline {
        let t = self.timeout;
        *self.at.get_or_insert_with(|| Deadline::after(t))
    }

    fn passed(&mut self) -> bool {
        !self.may_wait() || self.get().expired()
    }

    /// The next slice: at most [`SLICE`], at most what is left.
    fn slice(&mut self) -> Duration {
        self.get().remaining().map_or(SLICE, |r| r.min(SLICE))
    }
}

/// What one wait (with the GIL released) came to.
pub enum Waited {
    /// The wait did the call's work itself (e.g. a queue put that found room) and recorded it
    /// in the state: the next attempt returns it, before any other check.
    Finished,
    /// Progress may be possible: attempt again.
    Ready,
    /// The slice ended with nothing to do.
    Idle,
}

impl Waited {
    /// `Ready` if the wait reported readiness, `Idle` if its slice timed out.
    pub fn ready(ready: bool) -> Waited {
        if ready {
            Waited::Ready
        } else {
            Waited::Idle
        }
    }
}

/// Runs a blocking call: `attempt` with the GIL held until it yields a value or `deadline`
/// passes (`Ok(None)`), waiting between attempts with `wait(state, slice)` with the GIL
/// released.
///
/// After every wait, in this order: `Finished` attempts again at once; otherwise `check_open`
/// runs (its error, typically "handle is closed", is returned) and pending signals are handled
/// (their exception is returned); then `Ready` attempts again, and the deadline is checked.
/// `state` is what both closures work on (it crosses into the GIL-free wait, so it is `Send`).
pub fn retry<S: Send, T>(
    py: Python<'_>,
    deadline: &mut CallDeadline,
    state: &mut S,
    check_open: impl Fn() -> PyResult<()>,
    mut attempt: impl FnMut(&mut S) -> PyResult<Option<T>>,
    mut wait: impl FnMut(&mut S, Duration) -> PyResult<Waited> + Send,
) -> PyResult<Option<T>> {
    let mut try_now = true;
    loop {
        if try_now {
            if let Some(v) = attempt(state)? {
                return Ok(Some(v));
            }
        }
        if deadline.passed() {
            return Ok(None);
        }
        let slice = deadline.slice();
        let waited = py.allow_threads(|| wait(state, slice))?;
        if !matches!(waited, Waited::Finished) {
            check_open()?;
            py.check_signals()?;
        }
        try_now = !matches!(waited, Waited::Idle);
    }
}
