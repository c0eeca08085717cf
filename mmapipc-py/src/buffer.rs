//! The buffer protocol, both ways.
//!
//! * [`with_bytes`] borrows the bytes of any C-contiguous buffer a caller passes in (`bytes`,
//!   `bytearray`, `memoryview`, a NumPy array, ...), without copying.
//! * [`SharedBuffer`] exports a span of shared memory as a buffer; `memoryview(SharedBuffer)` is
//!   what `get_view` returns. The buffer object owns an `Arc` of whatever keeps the span valid
//!   (the mapping, a held slot), so the memory outlives every view and array made from it: the
//!   owner is dropped only when the last consumer of the buffer has released it.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};

/// Calls `f` with the bytes of `obj`, which must support the buffer protocol and be
/// C-contiguous. `bytes` takes a fast path with no buffer request.
pub fn with_bytes<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
    // SAFETY: obj is a live object (we hold a reference and the GIL); `view` is writable storage
    // for one Py_buffer. PyBUF_SIMPLE asks for a contiguous byte span and no format.
    let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) };
    if rc != 0 {
        let err = PyErr::take(obj.py());
        let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
        return Err(PyTypeError::new_err(format!(
            "expected a bytes-like object (bytes, bytearray, memoryview or a C-contiguous buffer), got {name}{}",
            err.map(|e| format!(" ({e})")).unwrap_or_default()
        )));
    }
    // SAFETY: GetBuffer succeeded, so the view is initialised and must be released exactly once.
    let mut view = unsafe { view.assume_init() };
    struct Release(*mut ffi::Py_buffer);
    impl Drop for Release {
        fn drop(&mut self) {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released once,
            // with the GIL held (we never leave the GIL inside `with_bytes`).
            unsafe { ffi::PyBuffer_Release(self.0) };
        }
    }
    let _release = Release(&mut view);
    let len = usize::try_from(view.len).unwrap_or(0);
    let bytes = if len == 0 || view.buf.is_null() {
        &[][..]
    } else {
        // SAFETY: PyBUF_SIMPLE guarantees `buf` points at `len` contiguous bytes that stay valid
        // until the view is released (after `f` returns, by `_release`).
        unsafe { std::slice::from_raw_parts(view.buf as *const u8, len) }
    };
    Ok(f(bytes))
}

/// Something that keeps exported memory valid while it lives.
pub type Owner = Arc<dyn Any + Send + Sync>;

/// A span of shared memory exported through the buffer protocol.
///
/// Wrap it in `memoryview(...)` (see [`SharedBuffer::memoryview`]). The span stays valid as
/// long as this object lives, because it owns `owner`; Python keeps this object alive as long
/// as any memoryview or array made from it.
#[pyclass(module = "mmapipc", name = "SharedBuffer", frozen)]
pub struct SharedBuffer {
    owner: Owner,
    ptr: usize,
    len: usize,
    readonly: bool,
}

impl SharedBuffer {
    /// A buffer over `len` bytes at `ptr`, kept valid by `owner`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for reads (and writes, unless `readonly`) for as long as
    /// `owner` lives.
    pub unsafe fn new(owner: Owner, ptr: *mut u8, len: usize, readonly: bool) -> SharedBuffer {
        SharedBuffer { owner, ptr: ptr as usize, len, readonly }
    }

    /// `memoryview(self)`.
    pub fn memoryview(self, py: Python<'_>) -> PyResult<Bound<'_, PyMemoryView>> {
        let obj = Bound::new(py, self)?;
        PyMemoryView::from(obj.as_any())
    }

    /// The owner keeping the span alive.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }
}

#[pymethods]
impl SharedBuffer {
    /// Implements the buffer protocol: a 1-D span of unsigned bytes.
    ///
    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null Py_buffer"));
        }
        let me = slf.get();
        if me.readonly && (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("this view is read-only"));
        }
        // SAFETY: CPython passes a valid, writable Py_buffer; we fill every field. `obj` gets a
        // new strong reference (released by PyBuffer_Release), which keeps `me` and so its owner
        // and the memory alive while the buffer is in use. The shape/strides pointers point into
        // the Py_buffer itself, which lives as long as the consumer uses them.
        unsafe {
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).buf = me.ptr as *mut c_void;
            (*view).len = me.len as ffi::Py_ssize_t;
            (*view).readonly = c_int::from(me.readonly);
            (*view).itemsize = 1;
            (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
                c"B".as_ptr() as *mut _
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape =
                if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND { &mut (*view).len } else { std::ptr::null_mut() };
            (*view).strides = if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES {
                &mut (*view).itemsize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    /// Nothing to do: the strong reference in `view.obj` is dropped by CPython.
    ///
    /// # Safety
    /// Called by CPython.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.len
    }
}
