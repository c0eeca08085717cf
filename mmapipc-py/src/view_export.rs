//! The buffer-protocol half every view exporter shares (the ring's per-side exporter and the
//! queue's pooled ones): the span it serves, whether it is armed, and how many buffers it has
//! handed out. What happens when the last buffer goes differs per primitive and stays with it.
//!
//! Every field is read and written with the GIL held (buffer requests, their release and the
//! calls that arm an exporter all run under it), so the atomics need no ordering beyond
//! `Relaxed`: they are there only to make the frozen classes that hold this `Sync`.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

use crate::buffer::fill_bytes;

/// A read-only span exported through the buffer protocol while armed.
#[derive(Debug, Default)]
pub(crate) struct Exported {
    ptr: AtomicUsize,
    len: AtomicUsize,
    /// A span is held: buffer requests are served.
    armed: AtomicBool,
    /// Buffers handed out and not released yet.
    exports: AtomicUsize,
}

impl Exported {
    /// Buffers handed out and not released yet.
    pub(crate) fn exports(&self) -> usize {
        self.exports.load(Ordering::Relaxed)
    }

    /// Whether buffer requests are served.
    pub(crate) fn armed(&self) -> bool {
        self.armed.load(Ordering::Relaxed)
    }

    /// Arms the span `ptr..ptr+len` and returns a memoryview of `owner` (the exporter object
    /// that holds this state); if that fails with nothing exported, it is disarmed again (the
    /// caller then lets go of what it held for the view).
    ///
    /// # Safety
    /// `ptr..ptr+len` stays valid and unwritten while any buffer of `owner` is alive (the
    /// exporter keeps what holds it until [`release`](Self::release) says the last one went).
    pub(crate) unsafe fn view<'py>(
        &self,
        owner: &Bound<'py, PyAny>,
        ptr: *const u8,
        len: usize,
    ) -> PyResult<Bound<'py, PyMemoryView>> {
        self.ptr.store(ptr as usize, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        self.armed.store(true, Ordering::Relaxed);
        let mv = PyMemoryView::from(owner);
        if mv.is_err() && self.exports() == 0 {
            self.armed.store(false, Ordering::Relaxed);
        }
        mv
    }

    /// `__getbuffer__`: fills `view` with the armed span, owned by `owner` (`what` names the
    /// view in the error for a released one).
    ///
    /// # Safety
    /// `view` is null or a valid Py_buffer to fill (CPython's argument); `owner` is the object
    /// holding this state, whose life keeps the span valid (see [`view`](Self::view)).
    pub(crate) unsafe fn fill(
        &self,
        owner: Bound<'_, PyAny>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
        what: &str,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null Py_buffer"));
        }
        if !self.armed() {
            return Err(PyBufferError::new_err(format!("this {what} view was released")));
        }
        if (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("this view is read-only"));
        }
        self.exports.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `view` is a valid Py_buffer (checked non-null; CPython's). `obj` is a new
        // strong reference (released by PyBuffer_Release), which keeps the exporter, and so
        // what holds the span, alive while the buffer is in use.
        unsafe {
            let (ptr, len) = (self.ptr.load(Ordering::Relaxed), self.len.load(Ordering::Relaxed));
            fill_bytes(view, owner.into_ptr(), ptr, len, true, flags)
        };
        Ok(())
    }

    /// `__releasebuffer__`: true if that was the last buffer handed out (the span is then
    /// disarmed: later requests are refused).
    pub(crate) fn release(&self) -> bool {
        if self.exports.fetch_sub(1, Ordering::Relaxed) != 1 {
            return false;
        }
        self.armed.store(false, Ordering::Relaxed);
        true
    }
}
