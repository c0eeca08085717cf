//! Exporting shared memory through the buffer protocol.
//!
//! [`SharedBuffer`] exports a span of shared memory as a buffer; `memoryview(SharedBuffer)` is
//! what `get_fixed_batch`, the loans and the topic's views return ([`export`]; `read_view` and
//! `get_view` have exporters of their own, `ring/view.rs` and `queue/view.rs`). The buffer object owns an
//! `Arc` of whatever keeps the span valid (the mapping, a held slot), so the memory outlives
//! every view and array made from it: the owner is dropped only when the last consumer of the
//! buffer has released it.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

/// Something that keeps exported memory valid while it lives.
pub type Owner = Arc<dyn Any + Send + Sync>;

/// A span of shared memory exported through the buffer protocol.
///
/// Wrap it in `memoryview(...)` (see [`SharedBuffer::memoryview`]). The span stays valid as
/// long as this object lives, because it owns `owner`; Python keeps this object alive as long
/// as any memoryview or array made from it.
#[pyclass(module = "mmapipc", name = "SharedBuffer", frozen)]
pub struct SharedBuffer {
    /// Keeps the span valid; dropped with the last export.
    _owner: Owner,
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
        SharedBuffer { _owner: owner, ptr: ptr as usize, len, readonly }
    }

    /// `memoryview(self)`.
    pub fn memoryview(self, py: Python<'_>) -> PyResult<Bound<'_, PyMemoryView>> {
        let obj = Bound::new(py, self)?;
        PyMemoryView::from(obj.as_any())
    }
}

/// A memoryview of `len` bytes at `ptr`, kept valid by `owner`: [`SharedBuffer::new`] and
/// [`SharedBuffer::memoryview`] in one.
///
/// # Safety
/// As for [`SharedBuffer::new`].
pub unsafe fn export<'py>(
    py: Python<'py>,
    owner: Owner,
    ptr: *const u8,
    len: usize,
    readonly: bool,
) -> PyResult<Bound<'py, PyMemoryView>> {
    // SAFETY: the caller's contract is `new`'s.
    unsafe { SharedBuffer::new(owner, ptr as *mut u8, len, readonly) }.memoryview(py)
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
        // SAFETY: CPython passes a valid, writable Py_buffer. `obj` is a new strong reference
        // (released by PyBuffer_Release), which keeps `me` and so its owner and the memory alive
        // while the buffer is in use.
        unsafe { fill_bytes(view, slf.clone().into_any().into_ptr(), me.ptr, me.len, me.readonly, flags) };
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

/// Fills `view` as a one-dimensional buffer of `len` unsigned bytes at address `addr`, owned by
/// `obj`:
/// the buffer protocol's answer of every exporter of this binding.
///
/// # Safety
/// `view` is a valid Py_buffer to fill; `obj` is a new strong reference that keeps `addr..addr +
/// len` valid (and unwritten by others, when `readonly`) until CPython releases the buffer. The
/// shape and strides pointers point into `view` itself, which lives as long as its user needs
/// them.
pub(crate) unsafe fn fill_bytes(
    view: *mut ffi::Py_buffer,
    obj: *mut ffi::PyObject,
    addr: usize,
    len: usize,
    readonly: bool,
    flags: c_int,
) {
    // SAFETY: the caller's contract: `view` is valid to write, every field is set here.
    unsafe {
        (*view).obj = obj;
        (*view).buf = addr as *mut c_void;
        (*view).len = len as ffi::Py_ssize_t;
        (*view).readonly = c_int::from(readonly);
        (*view).itemsize = 1;
        (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
            c"B".as_ptr() as *mut _
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND { &mut (*view).len } else { std::ptr::null_mut() };
        (*view).strides = if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES {
            &mut (*view).itemsize
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
    }
}
