//! Reading a `memoryview`'s bytes without a buffer request.
//!
//! A buffer request on a memoryview (`PyObject_GetBuffer` + `PyBuffer_Release`) is a large
//! part of the cost of a small batch write. A memoryview already holds the description of its
//! bytes (its `view` field, what CPython's `PyMemoryView_GET_BUFFER` returns); reading it
//! directly is valid as long as the view is not released, which nothing can do while we hold
//! the GIL and run no Python code. The object layout is CPython's
//! (`Include/cpython/memoryobject.h`, the same from 3.3 to 3.14), which pyo3 does not expose:
//! [`usable`] verifies it once per process on known views and turns this path off (falling back
//! to buffer requests) if anything differs.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyMemoryView};

/// CPython's `_PyManagedBufferObject` (the exporter's buffer a memoryview shares).
#[repr(C)]
struct ManagedBuffer {
    ob_base: ffi::PyObject,
    flags: c_int,
    exports: ffi::Py_ssize_t,
    master: ffi::Py_buffer,
}

/// CPython's `PyMemoryViewObject`, up to the fields read here.
#[repr(C)]
struct MemoryViewObject {
    ob_base: ffi::PyVarObject,
    mbuf: *mut ManagedBuffer,
    hash: ffi::Py_hash_t,
    flags: c_int,
    exports: ffi::Py_ssize_t,
    view: ffi::Py_buffer,
}

/// `_Py_MANAGED_BUFFER_RELEASED`, `_Py_MEMORYVIEW_RELEASED`, `_Py_MEMORYVIEW_C`.
const MBUF_RELEASED: c_int = 0x001;
const MV_RELEASED: c_int = 0x001;
const MV_C: c_int = 0x002;

/// 0: not checked yet, 1: layout verified, 2: layout differs (use buffer requests).
static STATE: AtomicU8 = AtomicU8::new(0);

/// `view.release()`, through `memoryview.release` looked up once per process (no attribute
/// lookup per call); any other object gets its own `release()` called.
pub fn release(view: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = view.py();
    if !is_memoryview(view) {
        return view.call_method0(pyo3::intern!(py, "release")).map(drop);
    }
    static RELEASE: GILOnceCell<Py<PyAny>> = GILOnceCell::new();
    let f = RELEASE.get_or_try_init(py, || py.get_type::<PyMemoryView>().getattr("release").map(Bound::unbind))?;
    let args = [view.as_ptr()];
    // SAFETY: `f` is `memoryview.release` (a method descriptor, kept alive by the cell) and
    // `args` one live memoryview, borrowed for the call; the GIL is held. The result is a new
    // reference (or null with an exception set), which `from_owned_ptr_or_err` takes.
    unsafe {
        let r = ffi::PyObject_Vectorcall(f.as_ptr(), args.as_ptr(), 1, std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, r).map(drop)
    }
}

pub fn is_memoryview(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `obj` is a live object (we hold a reference and the GIL).
    unsafe { ffi::PyMemoryView_Check(obj.as_ptr()) != 0 }
}

/// `(buf, len, C-contiguous)` of a memoryview, or None if it is released.
///
/// # Safety
/// `obj` must be a live memoryview (exact type) and the GIL held.
unsafe fn raw(obj: *mut ffi::PyObject) -> Option<(*const u8, usize, bool)> {
    // SAFETY: per the contract `obj` is a memoryview, whose object starts with the fields of
    // `MemoryViewObject` (verified by `usable` before any caller gets here).
    let mv = unsafe { &*(obj as *const MemoryViewObject) };
    // SAFETY: a live memoryview always points at its managed buffer (never null; the
    // reference is dropped only in dealloc), kept alive by the view.
    let mbuf_flags = unsafe { (*mv.mbuf).flags };
    if mv.flags & MV_RELEASED != 0 || mbuf_flags & MBUF_RELEASED != 0 {
        return None;
    }
    Some((mv.view.buf as *const u8, usize::try_from(mv.view.len).unwrap_or(0), mv.flags & MV_C != 0))
}

/// The bytes of a memoryview (C-contiguous, not released), borrowed while the GIL is held.
pub fn bytes<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    // SAFETY: callers pass memoryviews only (`is_memoryview`), once `usable` returned true.
    match unsafe { raw(obj.as_ptr()) } {
        None => Err(PyValueError::new_err("operation forbidden on released memoryview object")),
        Some((_, _, false)) => Err(PyTypeError::new_err(
            "expected a bytes-like object (bytes, bytearray, memoryview or a C-contiguous buffer), \
             got a memoryview that is not C-contiguous",
        )),
        Some((_, 0, true)) => Ok(&[]),
        // SAFETY: a C-contiguous, unreleased memoryview's `view` describes `len` readable,
        // contiguous bytes at `buf` (what a PyBUF_SIMPLE request on it would return); they
        // stay valid until the view is released, which needs the GIL: the slice borrows
        // `obj`, and every caller re-reads it after any release of the GIL.
        Some((p, n, true)) => Ok(unsafe { std::slice::from_raw_parts(p, n) }),
    }
}

/// Whether the memoryview layout matches this interpreter (checked once per process).
pub fn usable(py: Python<'_>) -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let ok = verify(py).unwrap_or(false);
    // Relaxed: the flag only caches a deterministic check; racing initialisers agree.
    STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
    ok
}

/// Reads known views through the layout and compares with what CPython reports.
fn verify(py: Python<'_>) -> PyResult<bool> {
    let data = PyBytes::new(py, b"mmapipc: a memoryview layout check");
    let (base, n) = (data.as_bytes().as_ptr(), data.as_bytes().len());
    let mv = PyMemoryView::from(data.as_any())?;
    let sliced = mv.get_item(pyo3::types::PySlice::new(py, 3, 11, 1))?;
    let strided = mv.get_item(pyo3::types::PySlice::new(py, 0, n as isize, 2))?;
    // SAFETY: three live memoryviews (exact type: checked first), GIL held. `raw` reads only
    // the fields up to `view`, inside the object as long as the layout holds; if it does not,
    // the values read are garbage that fails the comparisons, and this path stays off.
    let checks = [&mv, &sliced, &strided].iter().all(|v| is_memoryview(v))
        && unsafe {
            raw(mv.as_ptr()) == Some((base, n, true))
                && raw(sliced.as_ptr()) == Some((base.add(3), 8, true))
                && raw(strided.as_ptr()).is_some_and(|(p, _, c)| p == base && !c)
        };
    if !checks {
        return Ok(false);
    }
    sliced.call_method0("release")?;
    // SAFETY: as above; a released view is still a live object.
    Ok(unsafe { raw(sliced.as_ptr()) }.is_none())
}
