//! Blocking calls from Python: wait with the GIL released, in slices, so Ctrl-C works.
//!
//! Every blocking method follows the same shape: try once with the GIL held (the fast path
//! pays for no GIL release); if that fails and the caller may block, wait in slices of at most
//! [`SLICE`] with the GIL released, checking for signals (KeyboardInterrupt) between slices.

use std::time::Duration;

use mmapipc::wait::Deadline;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Longest time spent without the GIL before checking for signals.
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

/// Runs `attempt` once with the GIL held; if it yields nothing and `block` is true, calls
/// `wait(slice)` repeatedly with the GIL released until it yields a value or `timeout` passes.
///
/// `wait(d)` must block for at most about `d` (the core's `*_timeout` calls do) and return
/// `Ok(None)` when it timed out. Errors from either closure are returned as they are.
pub fn block_on<T, E>(
    py: Python<'_>,
    block: bool,
    timeout: Option<f64>,
    attempt: impl FnOnce() -> Result<Option<T>, E>,
    mut wait: impl FnMut(Duration) -> Result<Option<T>, E> + Send,
) -> PyResult<Result<Option<T>, E>>
where
    T: Send,
    E: Send,
{
    let timeout = timeout_arg(timeout)?;
    match attempt() {
        Ok(None) => {}
        other => return Ok(other),
    }
    if !block || timeout == Some(Duration::ZERO) {
        return Ok(Ok(None));
    }
    let deadline = Deadline::after(timeout);
    loop {
        let slice = deadline.remaining().map_or(SLICE, |r| r.min(SLICE));
        match py.allow_threads(|| wait(slice)) {
            Ok(None) => {}
            other => return Ok(other),
        }
        py.check_signals()?;
        if deadline.expired() {
            return Ok(Ok(None));
        }
    }
}
