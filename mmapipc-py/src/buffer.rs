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
        return Err(not_bytes_like(obj));
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

/// The TypeError for an object that gave no contiguous buffer (takes the pending error).
fn not_bytes_like(obj: &Bound<'_, PyAny>) -> PyErr {
    let err = PyErr::take(obj.py());
    let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
    PyTypeError::new_err(format!(
        "expected a bytes-like object (bytes, bytearray, memoryview or a C-contiguous buffer), got {name}{}",
        err.map(|e| format!(" ({e})")).unwrap_or_default()
    ))
}

/// The bytes of many objects at once, borrowed without copying: `bytes` directly, any other
/// C-contiguous buffer through a buffer request held until this value drops (with the GIL held:
/// it is `!Send`, so it cannot travel into `allow_threads`). For batch puts: one allocation per
/// batch instead of one copy per message.
pub struct BorrowedBytes<'py> {
    /// Keeps each `bytes` (and every exporter) alive.
    _items: Vec<Bound<'py, PyAny>>,
    /// Filled buffer requests; never moved after filling (capacity fixed up front).
    views: Vec<ffi::Py_buffer>,
    spans: Vec<(*const u8, usize)>,
}

impl<'py> BorrowedBytes<'py> {
    /// Borrows every item of `iterable`. Fails (releasing what it took) on the first item that
    /// is not bytes-like.
    pub fn new(iterable: &Bound<'py, PyAny>) -> PyResult<Self> {
        let items: Vec<Bound<'py, PyAny>> = iterable.try_iter()?.collect::<PyResult<_>>()?;
        let n_buffers = items.iter().filter(|it| !it.is_instance_of::<PyBytes>()).count();
        let mut this = BorrowedBytes {
            views: Vec::with_capacity(n_buffers),
            spans: Vec::with_capacity(items.len()),
            _items: Vec::new(),
        };
        for it in &items {
            if let Ok(b) = it.downcast::<PyBytes>() {
                let s = b.as_bytes();
                this.spans.push((s.as_ptr(), s.len()));
                continue;
            }
            // SAFETY: an all-zero Py_buffer is plain data (null pointers, zero lengths); it is only
            // released below if PyObject_GetBuffer filled it.
            this.views.push(unsafe { std::mem::zeroed() });
            let slot: *mut ffi::Py_buffer = this.views.last_mut().expect("just pushed");
            // SAFETY: `it` is a live object and we hold the GIL; `slot` is writable storage for one
            // Py_buffer that stays put (the Vec never grows past the capacity reserved above).
            // PyBUF_SIMPLE asks for a contiguous byte span and no format.
            if unsafe { ffi::PyObject_GetBuffer(it.as_ptr(), slot, ffi::PyBUF_SIMPLE) } != 0 {
                this.views.pop();
                return Err(not_bytes_like(it));
            }
            // SAFETY: the request succeeded, so `slot` is initialised.
            let v = unsafe { &*slot };
            let len = usize::try_from(v.len).unwrap_or(0);
            let ptr =
                if len == 0 || v.buf.is_null() { std::ptr::NonNull::dangling().as_ptr() } else { v.buf as *const u8 };
            this.spans.push((ptr, len));
        }
        this._items = items;
        Ok(this)
    }

    /// The borrowed byte strings, in order.
    pub fn slices(&self) -> Vec<&[u8]> {
        self.spans
            .iter()
            // SAFETY: each span is a `bytes` object's contents (immutable, kept alive by `_items`)
            // or a PyBUF_SIMPLE export, valid and contiguous until its release in our Drop;
            // the slices borrow `self`, so they cannot outlive either. Zero-length spans use a
            // dangling, aligned, non-null pointer, as from_raw_parts requires.
            .map(|&(p, n)| unsafe { std::slice::from_raw_parts(p, n) })
            .collect()
    }
}

impl Drop for BorrowedBytes<'_> {
    fn drop(&mut self) {
        for v in &mut self.views {
            // SAFETY: every entry was filled by a successful PyObject_GetBuffer (failed ones are
            // popped) and is released exactly once, here; `Bound<'py, _>` in `_items` proves the
            // GIL is held for 'py, and this value cannot leave the thread (it is !Send).
            unsafe { ffi::PyBuffer_Release(v) };
        }
    }
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
