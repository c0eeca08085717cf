//! The two sides of a ring handle, each behind its own [`SideLock`]: the state a producer or a
//! consumer call works on, how a call takes its side and role, and how it waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use mmapipc::ring::DetachedSlot;
use mmapipc::{Ring, RingError};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

use super::view::{ViewExporter, ViewSide};
use super::{PyRing, NAME};
use crate::blocking::{retry, CallDeadline, Waited};
use crate::errors::{closed, ring_error};
use crate::ffi::memoryview::release;
use crate::sync::{Shared, SideLock};

/// The producer side: its ring handle (`None` once closed) and an outstanding `loan()`.
pub(super) struct Producer {
    pub(super) ring: Option<Ring>,
    /// The reserved slot, its writable memoryview and the token that tells whether anything
    /// still exports that view.
    pub(super) loan: Option<(DetachedSlot, Py<PyMemoryView>, Weak<ViewToken>)>,
}

/// The consumer side: its ring handle (`None` once closed) and the last read view.
pub(super) struct Consumer {
    pub(super) ring: Option<Ring>,
    pub(super) view: Option<Py<PyMemoryView>>,
    /// The exporter of this side's views, made at the first one and armed again for each.
    pub(super) exporter: Option<Py<ViewExporter>>,
    /// A view is held: its record(s) and the consumer role stay held until its exporter has no
    /// buffer left alive (the exporter then clears this if the side is free, or the next call).
    pub(super) viewing: bool,
}

/// The owner of a `loan` buffer: keeps the mapping alive, and tells (through a `Weak`)
/// whether any consumer of the buffer still exists.
pub(super) struct ViewToken {
    pub(super) _mem: Arc<mmapipc::ring::RingMemory>,
}

/// The side's ring handle, or `ValueError` once closed.
pub(super) fn side_ring(ring: &mut Option<Ring>) -> PyResult<&mut Ring> {
    ring.as_mut().ok_or_else(|| closed(NAME))
}

impl Producer {
    pub(super) fn no_loan(&self) -> PyResult<()> {
        if self.loan.is_some() {
            return Err(PyValueError::new_err(
                "a loaned slot is outstanding on this handle: commit() or abort() it before writing",
            ));
        }
        Ok(())
    }

    /// Releases the loan's memoryview; BufferError if something made from it is still alive.
    pub(super) fn take_loan(&mut self, py: Python<'_>) -> PyResult<Option<DetachedSlot>> {
        let Some((slot, view, token)) = self.loan.take() else { return Ok(None) };
        if let Err(e) = release(view.bind(py)) {
            self.loan = Some((slot, view, token));
            return Err(e);
        }
        if token.strong_count() != 0 {
            self.loan = Some((slot, view, token));
            return Err(PyBufferError::new_err(
                "the loaned slot is still in use (a NumPy array or a slice of its memoryview); drop it first",
            ));
        }
        Ok(Some(slot))
    }
}

impl Consumer {
    /// Releases the memoryview of the previous `read_view`, so its slot may be recycled.
    pub(super) fn release_view(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(v) = self.view.take() {
            if let Err(e) = release(v.bind(py)) {
                self.view = Some(v);
                return Err(e);
            }
        }
        if self.viewing {
            if self.exporter.as_ref().is_some_and(|e| ViewExporter::in_use(e, py)) {
                return Err(PyBufferError::new_err(
                    "the previous read_view's buffer is still in use (a NumPy array, a slice of the \
                     memoryview, or a memoryview of its .obj); release it (or copy the data) before reading again",
                ));
            }
            self.viewing = false;
        }
        Ok(())
    }

    /// Keeps `view` (over the held record(s) of `detached`) as this side's last view.
    pub(super) fn hold_view<'py>(
        &mut self,
        py: Python<'py>,
        side: &Arc<SideLock<Consumer>>,
        mem: &Arc<mmapipc::ring::RingMemory>,
        ptr: *const u8,
        len: usize,
    ) -> PyResult<Bound<'py, PyMemoryView>> {
        let exporter = match &self.exporter {
            Some(e) if e.get().maps(mem) && !ViewExporter::in_use(e, py) => e.bind(py).clone(),
            _ => {
                let e = ViewExporter::new(py, mem, Arc::downgrade(side) as Weak<dyn ViewSide>)?.into_bound(py);
                self.exporter = Some(e.clone().unbind());
                e
            }
        };
        // SAFETY: the record(s) at ptr..ptr+len, in `mem`, stay held (not released to the
        // producer) until the exporter's last buffer goes (it then releases them) or this
        // side's next consumer call, which releases the memoryview first and refuses to go on
        // while the exporter is in use; it is not in use here (checked, or new).
        let mv = unsafe { ViewExporter::view(&exporter, ptr, len) }?;
        self.view = Some(mv.clone().unbind());
        self.viewing = true;
        Ok(mv)
    }
}

impl ViewSide for SideLock<Consumer> {
    fn view_gone(&self, py: Python<'_>, exporter: &ViewExporter) {
        let Some(mut c) = self.try_lock(py) else { return };
        let current = c.exporter.as_ref().is_some_and(|e| std::ptr::eq(e.get(), exporter));
        if c.viewing && current {
            c.viewing = false;
            if let Some(ring) = c.ring.as_mut() {
                // A consumer operation releases the held record; then the role goes too.
                if ring.claim_consumer().is_ok() {
                    ring.release_consumer();
                }
            }
        }
    }
}

/// What a blocked ring call waits for.
#[derive(Clone, Copy)]
pub(super) enum Need {
    /// A message to read.
    Message,
    /// Room for a message of this many bytes.
    Room(usize),
}

/// One wait slice of a ring call for `need`: returns early when `stop` is set (by `close()`).
pub(super) fn wait_ring(ring: &mut Ring, need: Need, slice: Duration, stop: &AtomicBool) -> PyResult<Waited> {
    let ready = match need {
        Need::Message => ring.wait_readable_or_stop(Some(slice), stop),
        Need::Room(n) => ring.wait_writable_or_stop(n, Some(slice), stop),
    };
    Ok(Waited::ready(ready.map_err(ring_error)?))
}

impl PyRing {
    /// `ValueError` once `close()` ran (in another thread, while this call let the GIL go).
    pub(super) fn check_open(&self) -> PyResult<()> {
        // SeqCst: pairs with close()'s store (the core's wait checks `stop` with SeqCst too).
        if self.stop.load(Ordering::SeqCst) {
            return Err(closed(NAME));
        }
        Ok(())
    }

    /// A blocking call on this side's `ring`: [`retry`] of `attempt`, waiting for `need`.
    pub(super) fn retry<T>(
        &self,
        py: Python<'_>,
        deadline: &mut CallDeadline,
        ring: &mut Ring,
        need: Need,
        attempt: impl FnMut(&mut Ring) -> PyResult<Option<T>>,
    ) -> PyResult<Option<T>> {
        let stop = &self.stop;
        retry(py, deadline, ring, || self.check_open(), attempt, |r, slice| wait_ring(r, need, slice, stop))
    }

    pub(super) fn new(ring: Ring) -> PyRing {
        let path = ring.path().map(|p| p.to_path_buf()).unwrap_or_default();
        let prod = Producer { ring: Some(ring.new_handle()), loan: None };
        let cons = Consumer { ring: Some(ring.new_handle()), view: None, exporter: None, viewing: false };
        PyRing {
            path,
            info: Shared::new(ring, NAME),
            ready: Default::default(),
            stop: AtomicBool::new(false),
            prod: SideLock::new(prod),
            cons: Arc::new(SideLock::new(cons)),
        }
    }

    /// Runs `f` as one side (`lock`: the producer or the consumer): takes the side (waiting
    /// for it within `deadline`; `busy` if that passes), claims the role (a consumer first
    /// releases its last view), runs `f`, and gives the role back unless `f` left a loan or a
    /// view out.
    pub(super) fn as_side<S: Side, R>(
        &self,
        py: Python<'_>,
        lock: &SideLock<S>,
        deadline: &mut CallDeadline,
        busy: R,
        f: impl FnOnce(&mut S, &mut CallDeadline) -> PyResult<R>,
    ) -> PyResult<R> {
        let Some(mut side) = lock.lock(py, deadline)? else { return Ok(busy) };
        let s: &mut S = &mut side;
        let mut r = s.begin(py).and_then(|()| {
            S::claim(side_ring(s.ring())?).map_err(ring_error)?;
            f(s, deadline)
        });
        if !s.lent() {
            if let Some(ring) = s.ring().as_mut() {
                S::release(ring);
            }
        }
        // SeqCst: pairs with close()'s store (see check_open).
        if self.stop.load(Ordering::SeqCst) {
            // close() ran while this call let the GIL go: end as close() would. A loan or view
            // this call made is taken back first (its memoryview released), so nobody writes
            // into a slot the ring no longer reserves (a view's record is delivered again to the
            // next consumer: dropping the ring leaves it unread); if an array already exports
            // it, everything is kept until the handle is garbage-collected.
            let had = s.lent();
            if s.take_back(py).is_ok() {
                *s.ring() = None;
                if had {
                    r = Err(closed(NAME));
                }
            }
        }
        r
    }
}

/// What [`PyRing::as_side`] needs of a side.
pub(super) trait Side: Send {
    /// The side's ring handle (`None` once closed).
    fn ring(&mut self) -> &mut Option<Ring>;
    /// Whether a buffer this side handed out (a loan, a read view) keeps the role.
    fn lent(&self) -> bool;
    /// Takes that buffer back (BufferError, keeping it, if something still exports it).
    fn take_back(&mut self, py: Python<'_>) -> PyResult<()>;
    /// Runs before the role is claimed.
    fn begin(&mut self, _py: Python<'_>) -> PyResult<()> {
        Ok(())
    }
    fn claim(ring: &mut Ring) -> Result<(), RingError>;
    fn release(ring: &mut Ring);
}

impl Side for Producer {
    fn ring(&mut self) -> &mut Option<Ring> {
        &mut self.ring
    }
    fn lent(&self) -> bool {
        self.loan.is_some()
    }
    fn take_back(&mut self, py: Python<'_>) -> PyResult<()> {
        self.take_loan(py).map(drop)
    }
    fn claim(ring: &mut Ring) -> Result<(), RingError> {
        ring.claim_producer()
    }
    fn release(ring: &mut Ring) {
        ring.release_producer()
    }
}

impl Side for Consumer {
    fn ring(&mut self) -> &mut Option<Ring> {
        &mut self.ring
    }
    fn lent(&self) -> bool {
        self.viewing
    }
    fn take_back(&mut self, py: Python<'_>) -> PyResult<()> {
        self.release_view(py)
    }
    /// The last view goes before the next consumer call.
    fn begin(&mut self, py: Python<'_>) -> PyResult<()> {
        self.release_view(py)
    }
    fn claim(ring: &mut Ring) -> Result<(), RingError> {
        ring.claim_consumer()
    }
    fn release(ring: &mut Ring) {
        ring.release_consumer()
    }
}
