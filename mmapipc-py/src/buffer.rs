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
use pyo3::types::{PyBytes, PyList, PyMemoryView, PyTuple};

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

/// A writable, C-contiguous buffer a caller passed in (`bytearray`, a writable `memoryview`, a
/// NumPy array, ...), held through a buffer request until this value drops: the exporter cannot
/// resize or free it meanwhile, so its address stays valid even while the GIL is released (it
/// is only written with the GIL held). `!Send`: it holds `Bound<'py, _>`.
pub struct WritableBuffer<'py> {
    /// Boxed: never moves once filled (an exporter may point fields into the request itself).
    view: Box<ffi::Py_buffer>,
    _obj: Bound<'py, PyAny>,
}

impl<'py> WritableBuffer<'py> {
    /// Requests a writable byte span of `obj` (TypeError if it has none, e.g. `bytes`).
    pub fn new(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        // SAFETY: an all-zero Py_buffer is plain data; it is released (in Drop) only once
        // PyObject_GetBuffer has filled it (on failure no WritableBuffer is built).
        let mut view: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `obj` is a live object and we hold the GIL; `view` is writable storage for
        // one Py_buffer at a fixed heap address. SIMPLE | WRITABLE asks for a contiguous,
        // writable byte span.
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, ffi::PyBUF_SIMPLE | ffi::PyBUF_WRITABLE) } != 0 {
            let err = PyErr::take(obj.py());
            let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
            return Err(PyTypeError::new_err(format!(
                "expected a writable, C-contiguous buffer (bytearray, memoryview, NumPy array), got {name}{}",
                err.map(|e| format!(" ({e})")).unwrap_or_default()
            )));
        }
        Ok(WritableBuffer { view, _obj: obj.clone() })
    }

    /// The span: its start and its length in bytes. Write to it only with the GIL held; it may
    /// alias any other memory the caller chose (even a mapping of the same file), so copy into
    /// it with `std::ptr::copy` (memmove), never through a `&mut [u8]`.
    pub fn raw(&self) -> (*mut u8, usize) {
        let len = usize::try_from(self.view.len).unwrap_or(0);
        if len == 0 || self.view.buf.is_null() {
            (std::ptr::NonNull::dangling().as_ptr(), 0)
        } else {
            (self.view.buf as *mut u8, len)
        }
    }
}

impl Drop for WritableBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: filled by a successful PyObject_GetBuffer, released exactly once, here, with
        // the GIL held (`Bound<'py, _>` proves it for 'py, and this value is !Send).
        unsafe { ffi::PyBuffer_Release(&mut *self.view) };
    }
}

/// Copies `src` to the start of `dst` (which must have room: `src.len() <= dst.1`).
///
/// # Safety
/// `dst` comes from [`WritableBuffer::raw`] of a buffer still held, the GIL is held, and
/// `src.len() <= dst.1`.
pub unsafe fn copy_to_raw(src: &[u8], dst: (*mut u8, usize)) {
    debug_assert!(src.len() <= dst.1);
    // SAFETY: per the contract `dst.0` is writable for `dst.1 >= src.len()` bytes; `copy`
    // (memmove) stays correct even if the caller's buffer overlaps the source.
    unsafe { std::ptr::copy(src.as_ptr(), dst.0, src.len()) };
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

/// The bytes of many objects at once, borrowed without copying, for batch writes.
///
/// * `bytes`: its contents directly (immutable; the item is kept alive here).
/// * `memoryview`: read straight from the view's own buffer description, with no buffer
///   request ([`memview`]); valid only while the GIL is held without a break, so
///   [`BorrowedBytes::slices`] re-reads it on every call and a caller that released the GIL
///   (to wait) must call `slices` again. A released or non-contiguous view is an error.
/// * anything else with the buffer protocol: a buffer request held until this value drops.
///
/// The value is `!Send` (it holds `Bound<'py, _>`), so it cannot travel into `allow_threads`.
/// Costs per message (64 B, one `write_batch` of 64, one process): about 17-20 ns for
/// memoryviews on this path, 22-28 ns for bytes, 32 ns through a buffer request.
pub struct BorrowedBytes<'py> {
    /// Keeps each item (and so each exporter) alive, in order.
    items: Vec<Bound<'py, PyAny>>,
    /// How to read each item.
    kinds: Vec<Kind>,
    /// Filled buffer requests, released in Drop. Never moved once filled (an exporter may point
    /// a request's fields into the request itself): the capacity is reserved up front.
    views: Vec<ffi::Py_buffer>,
}

/// How [`BorrowedBytes`] reads one item.
#[derive(Clone, Copy)]
enum Kind {
    /// A `bytes` object, or a held buffer request: a fixed span.
    Span(*const u8, usize),
    /// A `memoryview`, read from the object each time (see [`memview`]).
    MemoryView,
    /// Needs a buffer request (only while `new` runs).
    Request,
}

impl<'py> BorrowedBytes<'py> {
    /// Borrows every item of `iterable` (a list or tuple without an iterator). Fails (releasing
    /// what it took) on the first item that is not bytes-like.
    pub fn new(iterable: &Bound<'py, PyAny>) -> PyResult<Self> {
        let items: Vec<Bound<'py, PyAny>> = if let Ok(l) = iterable.downcast::<PyList>() {
            l.iter().collect()
        } else if let Ok(t) = iterable.downcast::<PyTuple>() {
            t.iter().collect()
        } else {
            iterable.try_iter()?.collect::<PyResult<_>>()?
        };
        let fast_views = memview::usable(iterable.py());
        // One pass classifies every item; only the ones that need a buffer request are left as
        // `Request`, filled below once their number (the Vec's capacity) is known.
        let mut kinds: Vec<Kind> = items
            .iter()
            .map(|it| match it.downcast_exact::<PyBytes>() {
                Ok(b) => Kind::Span(b.as_bytes().as_ptr(), b.as_bytes().len()),
                // Validated by `slices`, which every caller calls before using anything.
                Err(_) if fast_views && memview::is_memoryview(it) => Kind::MemoryView,
                Err(_) => Kind::Request,
            })
            .collect();
        let n_requests = kinds.iter().filter(|k| matches!(k, Kind::Request)).count();
        let mut this = BorrowedBytes { kinds: Vec::new(), views: Vec::with_capacity(n_requests), items: Vec::new() };
        for (kind, it) in kinds.iter_mut().zip(&items).filter(|(k, _)| matches!(k, Kind::Request)) {
            // SAFETY: an all-zero Py_buffer is plain data (null pointers, zero lengths); it is only
            // released (in Drop) if PyObject_GetBuffer filled it.
            this.views.push(unsafe { std::mem::zeroed() });
            let slot: *mut ffi::Py_buffer = this.views.last_mut().expect("just pushed");
            // SAFETY: `it` is a live object and we hold the GIL; `slot` is writable storage for
            // one Py_buffer that stays put (the Vec never grows past the capacity reserved
            // above: one slot per `Request`). PyBUF_SIMPLE asks for a contiguous byte span and
            // no format.
            if unsafe { ffi::PyObject_GetBuffer(it.as_ptr(), slot, ffi::PyBUF_SIMPLE) } != 0 {
                this.views.pop();
                return Err(not_bytes_like(it));
            }
            // SAFETY: the request succeeded, so `slot` is initialised.
            let v = unsafe { &*slot };
            let len = usize::try_from(v.len).unwrap_or(0);
            let ptr =
                if len == 0 || v.buf.is_null() { std::ptr::NonNull::dangling().as_ptr() } else { v.buf as *const u8 };
            *kind = Kind::Span(ptr, len);
        }
        this.kinds = kinds;
        this.items = items;
        Ok(this)
    }

    /// The borrowed byte strings, in order. Call again after any release of the GIL (a
    /// memoryview may have been released meanwhile: that is then an error, not a stale read).
    pub fn slices(&self) -> PyResult<Vec<&[u8]>> {
        self.kinds
            .iter()
            .zip(&self.items)
            .map(|(k, it)| match *k {
                // SAFETY: the span is a `bytes` object's contents (immutable, kept alive by
                // `items`) or a PyBUF_SIMPLE export, valid and contiguous until its release in
                // our Drop; the slice borrows `self`, so it cannot outlive either. Zero-length
                // spans use a dangling, aligned, non-null pointer, as from_raw_parts requires.
                Kind::Span(p, n) => Ok(unsafe { std::slice::from_raw_parts(p, n) }),
                Kind::MemoryView => memview::bytes(it),
                Kind::Request => unreachable!("BorrowedBytes::new fills every request"),
            })
            .collect()
    }
}

impl Drop for BorrowedBytes<'_> {
    fn drop(&mut self) {
        for v in &mut self.views {
            // SAFETY: every entry was filled by a successful PyObject_GetBuffer (failed ones are
            // never pushed) and is released exactly once, here; `Bound<'py, _>` in `items`
            // proves the GIL is held for 'py, and this value cannot leave the thread (!Send).
            unsafe { ffi::PyBuffer_Release(v) };
        }
    }
}

/// Reading a `memoryview`'s bytes without a buffer request.
///
/// A buffer request on a memoryview (`PyObject_GetBuffer` + `PyBuffer_Release`) costs about a
/// third of a 64 B batch write. A memoryview already holds the description of its bytes (its
/// `view` field, what CPython's `PyMemoryView_GET_BUFFER` returns); reading it directly is valid
/// as long as the view is not released, which nothing can do while we hold the GIL and run no
/// Python code. The object layout is CPython's (`Include/cpython/memoryobject.h`, unchanged
/// from 3.3 to 3.14), which pyo3 does not expose: [`usable`] verifies it once per process on
/// known views and turns this path off (falling back to buffer requests) if anything differs.
mod memview {
    use std::ffi::c_int;
    use std::sync::atomic::{AtomicU8, Ordering};

    use pyo3::exceptions::{PyTypeError, PyValueError};
    use pyo3::ffi;
    use pyo3::prelude::*;
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
