//! Readiness descriptors of ring, queue and topic handles (a topic subscriber's readable side,
//! a topic's publisher's writable side), for event loops (`mmapipc._aio`).
//!
//! Each handle owns two [`Notifier`]s (readable: a message may be there; writable: room for a
//! message of a given size), whose eventfds the module functions here expose. The await logic
//! (try the non-blocking call, arm, `loop.add_reader`, retry) is Python, in `mmapipc/_aio.py`,
//! which also attaches `fileno()` and the `*_async` methods to the classes.
//!
//! `close()` disarms both and signals them: an await in progress wakes, retries, and gets the
//! closed handle's `ValueError`.

use std::sync::Arc;

use mmapipc::wait::{Notifier, Watch};
use pyo3::exceptions::{PyOSError, PyTypeError};
use pyo3::prelude::*;

use crate::errors::{queue_error, ring_error};
use crate::queue::PyQueue;
use crate::ring::PyRing;
use crate::topic::{PySubscriber, PyTopic};

/// A handle's two notifiers.
#[derive(Default)]
pub struct Fds {
    read: Notifier,
    write: Notifier,
}

impl Fds {
    fn side(&self, writable: bool) -> &Notifier {
        if writable {
            &self.write
        } else {
            &self.read
        }
    }

    /// For `close()`: nothing stays registered, and anyone waiting on a descriptor wakes.
    pub fn close(&self) {
        for n in [&self.read, &self.write] {
            n.disarm();
            n.signal();
        }
    }
}

fn os_error(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}

/// The watch of the side asked for (`size`: the message to write). `None`: another call holds
/// the topic side (it may take what is ready; the caller retries at once).
fn watch(handle: &Bound<'_, PyAny>, writable: bool, size: usize) -> PyResult<Option<Arc<dyn Watch>>> {
    let py = handle.py();
    if let Ok(r) = handle.downcast::<PyRing>() {
        let info = r.get().info.enter(py)?;
        return if writable {
            info.writable_watch(size).map(Some).map_err(ring_error)
        } else {
            Ok(Some(info.readable_watch()))
        };
    }
    if let Ok(q) = handle.downcast::<PyQueue>() {
        let q = q.get().inner.arc(py)?;
        return if writable {
            q.writable_watch(size).map(Some).map_err(queue_error)
        } else {
            Ok(Some(q.readable_watch()))
        };
    }
    if let Ok(s) = handle.downcast::<PySubscriber>() {
        if writable {
            return Err(PyTypeError::new_err("a TopicSubscriber has no writable side"));
        }
        return s.get().readable_watch(py);
    }
    if let Ok(t) = handle.downcast::<PyTopic>() {
        if !writable {
            return Err(PyTypeError::new_err("a SharedMemoryTopic has no readable side (subscribe to read)"));
        }
        return t.get().writable_watch(py, size);
    }
    Err(not_a_channel())
}

fn not_a_channel() -> PyErr {
    PyTypeError::new_err("expected a SharedMemoryRing, SharedMemoryQueue, SharedMemoryTopic or TopicSubscriber")
}

fn fds<'a>(handle: &'a Bound<'_, PyAny>) -> PyResult<&'a Fds> {
    if let Ok(r) = handle.downcast::<PyRing>() {
        return Ok(&r.get().ready);
    }
    if let Ok(q) = handle.downcast::<PyQueue>() {
        return Ok(&q.get().ready);
    }
    if let Ok(s) = handle.downcast::<PySubscriber>() {
        return Ok(&s.get().ready);
    }
    if let Ok(t) = handle.downcast::<PyTopic>() {
        return Ok(&t.get().ready);
    }
    Err(not_a_channel())
}

/// The handle's readiness eventfd for reading (or, `writable`, for writing).
#[pyfunction]
#[pyo3(signature = (handle, writable = false))]
pub fn ready_fileno(handle: &Bound<'_, PyAny>, writable: bool) -> PyResult<i32> {
    fds(handle)?.side(writable).fd().map_err(os_error)
}

/// Drains the descriptor and registers interest in the side (`size`: the message to write).
/// True: ready now (nothing registered; retry the call). False: the descriptor becomes
/// readable once the side may be ready.
/// With `spin`, first polls the side as a blocking call does (up to 50 us, the GIL released):
/// a peer that answers within that time costs no wake-up of the waiter thread and the loop.
#[pyfunction]
#[pyo3(signature = (handle, writable = false, size = 0, spin = false))]
pub fn ready_arm(handle: &Bound<'_, PyAny>, writable: bool, size: usize, spin: bool) -> PyResult<bool> {
    let Some(w) = watch(handle, writable, size)? else { return Ok(true) };
    let n = fds(handle)?.side(writable);
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
    fds(handle)?.side(writable).disarm();
    Ok(())
}

/// Whether the side has a registration that has not fired (for tests).
#[pyfunction]
#[pyo3(signature = (handle, writable = false))]
pub fn ready_armed(handle: &Bound<'_, PyAny>, writable: bool) -> PyResult<bool> {
    Ok(fds(handle)?.side(writable).armed())
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
