//! The exporters behind `get_view`'s memoryviews: a pool per handle, so a view costs the
//! memoryview CPython builds and no object of ours.
//!
//! Each view's record ([`OwnedView`]) is held by one [`ViewExporter`] while anything uses it:
//! a buffer the exporter handed out (the memoryview, its slices and everything exported from
//! them share one), or a reference to the exporter object itself (a view's `.obj`, the base
//! NumPy keeps for `ndarray(buffer=view)`). When the last buffer goes and nothing else
//! references the exporter, the record is released at once (from `bf_releasebuffer`: the view
//! was released or dropped) and the exporter goes back to its handle's pool, to be armed for
//! a later view; when something else still references it, the record goes with the exporter
//! object (its drop). Unarmed (its last buffer gone) an exporter refuses buffer requests, so a
//! kept `.obj` never gives a view of recycled bytes. The pool keeps only unarmed exporters,
//! which hold no record and no queue: a closed handle's mapping goes with its last view.

use std::ffi::c_int;
use std::sync::{Arc, Weak};

use mmapipc::OwnedView;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyMemoryView, PyType};

use crate::sync::GilCell;
use crate::view_export::Exported;

/// Exporters kept for reuse per handle; more views than this out at once get fresh ones.
const POOL_MAX: usize = 64;

/// References to the exporter while its last buffer is released, when nothing else holds it:
/// the managed buffer's (released after this call) and the one pyo3's slot trampoline takes
/// for `slf`. `tests/test_views.py` fails if this count is too high (a NumPy array over a
/// released view would then let the record go).
const RELEASE_REFS: isize = 2;

/// A handle's unarmed exporters, and the buffer its takes collect views in.
#[derive(Default)]
pub(crate) struct Pool {
    free: GilCell<Vec<Py<ViewExporter>>>,
    taken: GilCell<Vec<OwnedView>>,
}

/// A read-only span of one record held by this process, exported through the buffer protocol.
#[pyclass(module = "mmapipc", name = "QueueViewBuffer", frozen)]
pub(crate) struct ViewExporter {
    /// The record held; `None` when unarmed and released.
    view: GilCell<Option<OwnedView>>,
    /// The pool to go back to once released.
    pool: Weak<Pool>,
    /// The span served and the buffers out.
    exported: Exported,
}

impl Pool {
    /// Takes views with `take` (appending to a reused buffer) and returns a `ViewBatch` of
    /// their memoryviews (`cls`: the class, a `list` subclass), or `None` if it took none.
    pub(crate) fn batch<'py>(
        self: &Arc<Self>,
        cls: &Bound<'py, PyType>,
        take: impl FnOnce(&mut Vec<OwnedView>) -> PyResult<usize>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        // Out of the pool while in use: a thread that takes views meanwhile (this one waits with
        // the GIL released) gets an empty one.
        let py = cls.py();
        let mut taken = self.taken.with(py, std::mem::take);
        let r = match take(&mut taken) {
            Ok(0) => Ok(None),
            Ok(_) => self.views(cls, &mut taken).map(Some),
            Err(e) => Err(e),
        };
        taken.clear(); // releases what an error left undelivered (no Python code)
        self.taken.with(py, |t| *t = taken);
        r
    }

    fn views<'py>(
        self: &Arc<Self>,
        cls: &Bound<'py, PyType>,
        taken: &mut Vec<OwnedView>,
    ) -> PyResult<Bound<'py, PyList>> {
        let py = cls.py();
        // SAFETY: `cls` is a live type object (a list subclass); PyType_GenericAlloc returns a
        // new reference to a zeroed instance (an empty list: no items, no allocation) or null
        // with an exception set, which `from_owned_ptr_or_err` takes.
        let batch = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(cls.as_type_ptr(), 0)) }?;
        let batch = batch.downcast_into::<PyList>()?;
        for v in taken.drain(..) {
            let e = self.exporter(py)?;
            batch.append(ViewExporter::view(&e, v)?)?;
        }
        Ok(batch)
    }

    /// An unarmed exporter that nothing else references, from the pool or new.
    fn exporter<'py>(self: &Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, ViewExporter>> {
        while let Some(e) = self.free.with(py, Vec::pop) {
            let e = e.into_bound(py);
            let me = e.get();
            // The pool's reference, now ours, and none else.
            if e.get_refcnt() == 1 && !me.exported.armed() && me.exported.exports() == 0 {
                return Ok(e);
            }
        }
        let me = ViewExporter { view: GilCell::new(None), pool: Arc::downgrade(self), exported: Exported::default() };
        Bound::new(py, me)
    }
}

impl ViewExporter {
    /// Arms `slf` (unarmed, referenced by nothing else) with `v` and returns a read-only
    /// memoryview of its payload; the record goes back when that and everything made from it
    /// are gone (see the module docs).
    fn view<'py>(slf: &Bound<'py, Self>, v: OwnedView) -> PyResult<Bound<'py, PyMemoryView>> {
        let (me, py) = (slf.get(), slf.py());
        let (ptr, len) = (v.as_ptr(), v.len());
        me.view.with(py, |slot| *slot = Some(v));
        // SAFETY: the span is the payload of the record `v`, TAKEN by this process and held in
        // `me.view` until the last buffer is released (`__releasebuffer__`) or this object goes.
        let mv = unsafe { me.exported.view(slf.as_any(), ptr, len) };
        if mv.is_err() && !me.exported.armed() {
            me.view.with(py, |slot| *slot = None); // the record's release: no Python code
        }
        mv
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
        // SAFETY: CPython's arguments; `owner` is this exporter, whose OwnedView holds the
        // record TAKEN by this process (and the queue's mapping): nobody writes the payload
        // until that view is dropped.
        unsafe { slf.get().exported.fill(owner, view, flags, "queue") }
    }

    /// The last buffer gone: disarms; releases the record and goes back to the pool unless
    /// something else references this object (then the record goes with it).
    ///
    /// # Safety
    /// Called by CPython (GIL held) once per buffer filled by `__getbuffer__`.
    unsafe fn __releasebuffer__(slf: Bound<'_, Self>, _view: *mut ffi::Py_buffer) {
        let me = slf.get();
        if !me.exported.release() {
            return;
        }
        if slf.get_refcnt() > RELEASE_REFS {
            return;
        }
        let py = slf.py();
        // The record's release (mark DONE, reclaim): no Python code.
        me.view.with(py, |slot| *slot = None);
        if let Some(pool) = me.pool.upgrade() {
            let back = slf.clone().unbind();
            let refused = pool.free.with(py, |free| {
                if free.len() < POOL_MAX {
                    free.push(back);
                    None
                } else {
                    Some(back)
                }
            });
            drop(refused); // outside the cell: a Python object's drop
        }
    }
}
