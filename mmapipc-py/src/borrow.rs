//! Borrowing the bytes of buffers a caller passes in, without copying.
//!
//! * [`with_bytes`]: the bytes of one C-contiguous buffer (`bytes`, `bytearray`, `memoryview`,
//!   a NumPy array, ...), for the length of a closure.
//! * [`WritableBuffer`]: a writable buffer held for a whole call (`read_into`, `get_into`).
//! * [`BorrowedBytes`]: the bytes of many objects at once, for batch writes; memoryviews are
//!   read in place ([`crate::ffi::memoryview`]), with no buffer request.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::errors::buffer_too_short;
use crate::ffi::memoryview as memview;

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

    /// Copies `message` (taken from a channel) to the start of the span and returns its length;
    /// `mmapipc.BufferTooShort` with the message as `args[0]` if it does not fit. The `*_into`
    /// receives of every class end here.
    pub fn copy_message(&self, message: &[u8]) -> PyResult<usize> {
        let room = self.raw();
        if message.len() > room.1 {
            return Err(buffer_too_short(self._obj.py(), message, room.1));
        }
        // SAFETY: `room` is this buffer's span, held while `self` lives; `self` holds a
        // `Bound<'py, _>`, so the GIL is held; the message fits (checked above).
        unsafe { copy_to_raw(message, room) };
        Ok(message.len())
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
unsafe fn copy_to_raw(src: &[u8], dst: (*mut u8, usize)) {
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
/// Reading memoryviews in place is what keeps a batch of NumPy rows as cheap as a batch of
/// `bytes`: a buffer request per message costs more than the rest of a small write.
pub struct BorrowedBytes<'py> {
    /// Keeps each item (and so each exporter) alive, in order.
    items: Vec<Bound<'py, PyAny>>,
    /// How to read each item.
    kinds: Vec<Kind>,
    /// Filled buffer requests, released in Drop. Never moved once filled (an exporter may point
    /// a request's fields into the request itself): the capacity is reserved up front.
    views: Vec<ffi::Py_buffer>,
    /// Buffer requests made by [`pin`](Self::pin), released in Drop. Boxed: the Vec grows while
    /// they are held, and a request must not move (as `views`).
    #[allow(clippy::vec_box)]
    pinned: Vec<Box<ffi::Py_buffer>>,
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
        let mut this = BorrowedBytes {
            kinds: Vec::new(),
            views: Vec::with_capacity(n_requests),
            pinned: Vec::new(),
            items: Vec::new(),
        };
        for (kind, it) in kinds.iter_mut().zip(&items).filter(|(k, _)| matches!(k, Kind::Request)) {
            // SAFETY: an all-zero Py_buffer is plain data (null pointers, zero lengths); it is only
            // released (in Drop) if PyObject_GetBuffer filled it.
            this.views.push(unsafe { std::mem::zeroed() });
            let slot: *mut ffi::Py_buffer = this.views.last_mut().expect("just pushed");
            // SAFETY: `slot` stays put (the Vec never grows past the capacity reserved above:
            // one slot per `Request`); the GIL is held for 'py.
            match unsafe { request(it, slot) } {
                Ok(k) => *kind = k,
                Err(e) => {
                    this.views.pop();
                    return Err(e);
                }
            }
        }
        this.kinds = kinds;
        this.items = items;
        Ok(this)
    }

    /// How many messages are borrowed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Holds a buffer request on every memoryview (read in place so far), so that every span
    /// stays valid, and its exporter cannot resize or release it, until this value drops: the
    /// slices taken after this may be read while the GIL is released (a wait that writes what
    /// is left of a batch), as a single message held by [`with_bytes`] is.
    pub fn pin(&mut self) -> PyResult<()> {
        for (kind, it) in self.kinds.iter_mut().zip(&self.items) {
            if !matches!(kind, Kind::MemoryView) {
                continue;
            }
            // SAFETY: an all-zero Py_buffer is plain data; it is released (in Drop) only once
            // PyObject_GetBuffer filled it. Boxed: it stays put while it is held.
            let mut slot: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
            // SAFETY: `slot` does not move; the GIL is held for 'py.
            let k = unsafe { request(it, &mut *slot) }?;
            self.pinned.push(slot);
            *kind = k;
        }
        Ok(())
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

/// Fills `slot` with a PyBUF_SIMPLE buffer request on `it` and returns the span it serves.
///
/// # Safety
/// The GIL is held, and `slot` is writable storage for one Py_buffer that does not move until it
/// is released (exactly once, only if this returned `Ok`): an exporter may point a request's
/// fields into the request itself.
unsafe fn request(it: &Bound<'_, PyAny>, slot: *mut ffi::Py_buffer) -> PyResult<Kind> {
    // SAFETY: `it` is a live object and the GIL is held; `slot` per the contract. PyBUF_SIMPLE
    // asks for a contiguous byte span and no format.
    if unsafe { ffi::PyObject_GetBuffer(it.as_ptr(), slot, ffi::PyBUF_SIMPLE) } != 0 {
        return Err(not_bytes_like(it));
    }
    // SAFETY: the request succeeded, so `slot` is initialised.
    let v = unsafe { &*slot };
    let len = usize::try_from(v.len).unwrap_or(0);
    // Zero-length spans get a dangling, aligned, non-null pointer, as from_raw_parts requires.
    let ptr = if len == 0 || v.buf.is_null() { std::ptr::NonNull::dangling().as_ptr() } else { v.buf as *const u8 };
    Ok(Kind::Span(ptr, len))
}

impl Drop for BorrowedBytes<'_> {
    fn drop(&mut self) {
        for v in &mut self.views {
            // SAFETY: every entry was filled by a successful PyObject_GetBuffer (failed ones are
            // never pushed) and is released exactly once, here; `Bound<'py, _>` in `items`
            // proves the GIL is held for 'py, and this value cannot leave the thread (!Send).
            unsafe { ffi::PyBuffer_Release(v) };
        }
        for v in &mut self.pinned {
            // SAFETY: as above: filled by a successful request in `pin`, released once, GIL held.
            unsafe { ffi::PyBuffer_Release(&mut **v) };
        }
    }
}
