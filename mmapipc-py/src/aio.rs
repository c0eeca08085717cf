//! The module functions `mmapipc._aio` calls on a ring, queue or topic handle (`ready_fileno`,
//! `ready_arm`, ...): each finds the handle's [`Ready`] part (see `readiness.rs`) and acts on
//! the side asked for.

use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;

use crate::queue::PyQueue;
use crate::readiness::Ready;
use crate::ring::PyRing;
use crate::topic::{PySubscriber, PyTopic};

fn os_error(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}

fn not_a_channel() -> PyErr {
    PyTypeError::new_err("expected a SharedMemoryRing, SharedMemoryQueue, SharedMemoryTopic or TopicSubscriber")
}

/// The handle's part in readiness, for any of the four classes.
fn ready<'a>(handle: &'a Bound<'_, PyAny>) -> PyResult<&'a dyn Ready> {
    if let Ok(r) = handle.downcast::<PyRing>() {
        return Ok(r.get());
    }
    if let Ok(q) = handle.downcast::<PyQueue>() {
        return Ok(q.get());
    }
    if let Ok(s) = handle.downcast::<PySubscriber>() {
        return Ok(s.get());
    }
    if let Ok(t) = handle.downcast::<PyTopic>() {
        return Ok(t.get());
    }
    Err(not_a_channel())
}

/// The handle's readiness eventfd for reading (or, `writable`, for writing).
#[pyfunction]
#[pyo3(signature = (handle, writable = false))]
pub fn ready_fileno(handle: &Bound<'_, PyAny>, writable: bool) -> PyResult<i32> {
    ready(handle)?.fds().side(writable).fd().map_err(os_error)
}

/// Drains the descriptor and registers interest in the side (`size`: the message to write).
/// True: ready now (nothing registered; retry the call). False: the descriptor becomes
/// readable once the side may be ready.
/// With `spin`, first polls the side as a blocking call does (up to 50 us, the GIL released):
/// a peer that answers within that time costs no wake-up of the waiter thread and the loop.
#[pyfunction]
#[pyo3(signature = (handle, writable = false, size = 0, spin = false))]
pub fn ready_arm(handle: &Bound<'_, PyAny>, writable: bool, size: usize, spin: bool) -> PyResult<bool> {
    let r = ready(handle)?;
    let Some(w) = r.watch(handle.py(), writable, size)? else { return Ok(true) };
    let n = r.fds().side(writable);
    if spin {
        handle.py().allow_threads(|| n.arm_after_spin(w)).map_err(os_error)
    } else {
        n.arm(w).map_err(os_error)
    }
}

/// Drops the registration of the side, if any.
#[pyfunction]
#[pyo3(signature = (handle, writable = false))]
pub fn ready_disarm(handle: &Bound<'_, PyAny>, writable: bool) -> PyResult<()> {
    ready(handle)?.fds().side(writable).disarm();
    Ok(())
}

/// Whether the side has a registration that has not fired (for tests).
#[pyfunction]
#[pyo3(signature = (handle, writable = false))]
pub fn ready_armed(handle: &Bound<'_, PyAny>, writable: bool) -> PyResult<bool> {
    Ok(ready(handle)?.fds().side(writable).armed())
}

/// Waiter threads this process runs for readiness descriptors (for tests).
#[pyfunction]
pub fn ready_threads() -> usize {
    mmapipc::wait::readiness::waiter_threads()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ready_fileno, m)?)?;
    m.add_function(wrap_pyfunction!(ready_arm, m)?)?;
    m.add_function(wrap_pyfunction!(ready_disarm, m)?)?;
    m.add_function(wrap_pyfunction!(ready_armed, m)?)?;
    m.add_function(wrap_pyfunction!(ready_threads, m)?)?;
    Ok(())
}
