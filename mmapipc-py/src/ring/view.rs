//! The exporter behind every `read_view` / `read_fixed_batch` memoryview of one ring handle.
//!
//! One [`ViewExporter`] per consumer side, made at its first view and armed again for each
//! one, so a view costs the memoryview CPython builds and no allocation of ours. The held
//! record(s) stay held while anything uses the exporter: a buffer it handed out (the
//! memoryview, its slices and everything exported from them share one), or a reference to the
//! object itself (a view's `.obj`, the base NumPy keeps for `ndarray(buffer=view)`). When the
//! last buffer goes and nothing else references it, the record and the consumer role are
//! released at once if the side is free (the user released the view); otherwise the next
//! consumer call on the handle releases them, or raises `BufferError` while it is still in
//! use. Unarmed (its last buffer gone) it refuses buffer requests, so an old view's `.obj`
//! never gives a view of recycled bytes.

use std::ffi::c_int;
use std::sync::{Arc, Weak};

use mmapipc::ring::RingMemory;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

use crate::view_export::Exported;

/// The consumer side an exporter belongs to, as the exporter sees it (implemented in
/// `sides.rs`).
pub(super) trait ViewSide: Send + Sync {
    /// The last buffer of `exporter`'s view is gone and nothing else references the exporter:
    /// the side lets the held record(s) and the consumer role go if it is free and `exporter`
    /// is its current one.
    fn view_gone(&self, py: Python<'_>, exporter: &ViewExporter);
}

/// A read-only span of the ring's held record(s), exported through the buffer protocol.
#[pyclass(module = "mmapipc", name = "RingViewBuffer", frozen)]
pub(super) struct ViewExporter {
    /// Keeps the mapping valid while any buffer exported from this object is alive.
    mem: Arc<RingMemory>,
    /// The consumer side to give the record and the role back to when the last buffer goes.
    side: Weak<dyn ViewSide>,
    /// The span served and the buffers out.
    exported: Exported,
}

/// References to the exporter while the last buffer is released, when nothing else holds it:
/// the side's, the managed buffer's (released after this call) and the one pyo3's slot
/// trampoline takes for `slf`. `tests/test_views.py` fails if this count is too high (a NumPy
/// array over a released view would then let the record go).
const RELEASE_REFS: isize = 3;

impl ViewExporter {
    pub(super) fn new(py: Python<'_>, mem: &Arc<RingMemory>, side: Weak<dyn ViewSide>) -> PyResult<Py<Self>> {
        let me = ViewExporter { mem: mem.clone(), side, exported: Exported::default() };
        Py::new(py, me)
    }

    /// Whether this exporter serves `mem`.
    pub(super) fn maps(&self, mem: &Arc<RingMemory>) -> bool {
        Arc::ptr_eq(&self.mem, mem)
    }

    /// Whether anything but the side's own reference `me` holds this exporter: a buffer
    /// exported from it, or a reference to the object (a view's `.obj`, which NumPy keeps as
    /// the base of `ndarray(buffer=view)` without exporting a buffer).
    pub(super) fn in_use(me: &Py<Self>, py: Python<'_>) -> bool {
        me.get().exported.exports() != 0 || me.get_refcnt(py) > 1
    }

    /// A read-only memoryview of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr..ptr+len` lies in `self.mem` and stays valid and unwritten until the consumer side
    /// lets the record(s) go, which it does only once [`in_use`](Self::in_use) is false; the
    /// exporter must not be in use (nothing of a previous arming alive).
    pub(super) unsafe fn view<'py>(
        slf: &Bound<'py, Self>,
        ptr: *const u8,
        len: usize,
    ) -> PyResult<Bound<'py, PyMemoryView>> {
        // SAFETY: the caller's promise (see above) is the one `Exported::view` asks for.
        unsafe { slf.get().exported.view(slf.as_any(), ptr, len) }
    }
}

#[pymethods]
impl ViewExporter {
    /// Implements the buffer protocol: a read-only 1-D span of unsigned bytes, while armed.
    ///
    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let owner = slf.clone().into_any();
        // SAFETY: CPython's arguments; `owner` is this exporter, whose `mem` keeps the mapping
        // and whose side keeps the record held until the last buffer is released.
        unsafe { slf.get().exported.fill(owner, view, flags, "ring") }
    }

    /// The last buffer gone: disarms, and releases the held record and the consumer role if
    /// the side is free (a call in progress, maybe the one releasing this view, or the next
    /// call does it otherwise).
    ///
    /// # Safety
    /// Called by CPython (GIL held) once per buffer filled by `__getbuffer__`.
    unsafe fn __releasebuffer__(slf: Bound<'_, Self>, _view: *mut ffi::Py_buffer) {
        let me = slf.get();
        if !me.exported.release() {
            return;
        }
        // Something else still references this object (NumPy's `ndarray(buffer=view)` keeps
        // the view's `.obj` as its base without a buffer of its own, a user keeps `view.obj`):
        // keep the record held; the next consumer call finds it in use or free (`in_use`).
        if slf.get_refcnt() > RELEASE_REFS {
            return;
        }
        if let Some(side) = me.side.upgrade() {
            side.view_gone(slf.py(), me);
        }
    }
}
