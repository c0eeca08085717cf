//! `SharedMemoryQueue.loan` / `commit` / `abort`: a message slot filled in place from Python
//! (the core's [`mmapipc::QueueLoan`], which holds the queue's producer lock until it is
//! committed or dropped).
//!
//! The loan lives in a [`LoanToken`], the owner of the writable memoryview's exporter, and so
//! it lives exactly as long as something can write the slot: the memoryview, a slice of it, a
//! NumPy array made from it, or a reference to its `.obj`. `commit()` and `abort()` release
//! the memoryview first and go on only if that was the last of them (else `BufferError`, the
//! loan kept); when all of them go without a commit (the memoryview dropped, `with loan:`
//! left by an exception) the token's drop abandons the loan: nothing is published and the
//! lock is released, and no one is left who could still write the slot. The handle keeps only
//! a weak reference to each, so a forgotten loan cannot outlive its memoryview and wedge the
//! queue's other producers; only a `commit`/`abort` refused with `BufferError` pins the loan
//! to the handle until the next `commit`/`abort` (the caller was told to retry).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mmapipc::{OwnedLoan, Queue};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyMemoryView, PyWeakrefMethods, PyWeakrefReference};

use super::{check_open, PyQueue};
use crate::blocking::{retry, CallDeadline, Waited};
use crate::buffer::export;
use crate::errors::queue_error;
use crate::ffi::memoryview::release;

/// The owner of a loan's memoryview exporter: holds the loan until `commit`/`abort` takes it,
/// or abandons it when dropped (the last export gone).
struct LoanToken {
    loan: Mutex<Option<OwnedLoan>>,
}

/// The loan handed out by a handle, seen weakly: its token and its memoryview.
struct Outstanding {
    token: Weak<LoanToken>,
    view: Py<PyWeakrefReference>,
    /// The token, held once a `commit`/`abort` released the memoryview and found the slot
    /// still in use: the loan then waits for the caller's next `commit`/`abort` (or this
    /// handle's end) instead of being abandoned when that last use goes.
    pinned: Option<Arc<LoanToken>>,
}

impl Outstanding {
    fn alive(&self) -> bool {
        self.pinned.is_some() || self.token.strong_count() != 0
    }
}

/// A handle's outstanding loan (at most one), if it is still alive.
#[derive(Default)]
pub(crate) struct Loans {
    out: Mutex<Option<Outstanding>>,
    /// `out` may hold a loan (a hint for `none_out`, which every put calls; Relaxed: it is
    /// set and cleared with the GIL held, like `out`, and only spares the lock when clear).
    maybe: AtomicBool,
}

impl Loans {
    /// The outstanding loan, taken out (a dead one, abandoned, is dropped).
    fn take(&self) -> Option<Outstanding> {
        self.maybe.store(false, Ordering::Relaxed);
        let o = self.out.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        o.alive().then_some(o)
    }

    fn set(&self, o: Outstanding) {
        *self.out.lock().unwrap_or_else(|e| e.into_inner()) = Some(o);
        self.maybe.store(true, Ordering::Relaxed);
    }

    /// `ValueError` if this handle has a loan out: a write would wait for its own lock.
    pub(crate) fn none_out(&self) -> PyResult<()> {
        if !self.maybe.load(Ordering::Relaxed) {
            return Ok(());
        }
        let guard = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_some_and(Outstanding::alive) {
            return Err(PyValueError::new_err(
                "a loaned slot is outstanding on this handle: commit() or abort() it before writing",
            ));
        }
        Ok(())
    }

    /// Releases the outstanding loan's memoryview and takes the loan out of its token, or
    /// puts it back and raises `BufferError` if something made from the slot is still alive.
    fn claim(&self, py: Python<'_>) -> PyResult<Option<OwnedLoan>> {
        let Some(mut o) = self.take() else { return Ok(None) };
        // Held before the memoryview's release, which drops the exporter (and so its reference
        // to the token) when that was its last export.
        let Some(token) = o.pinned.take().or_else(|| o.token.upgrade()) else { return Ok(None) };
        if let Some(mv) = o.view.bind(py).upgrade() {
            if let Err(e) = release(&mv) {
                o.pinned = Some(token);
                self.set(o);
                return Err(e);
            }
        }
        // Ours, and the exporter's if something still references it (a slice, an array, `.obj`):
        // then the slot is still writable by someone.
        if Arc::strong_count(&token) != 1 {
            o.pinned = Some(token);
            self.set(o);
            return Err(PyBufferError::new_err(
                "the loaned slot is still in use (a NumPy array, a slice of its memoryview or its .obj); drop it first",
            ));
        }
        let loan = token.loan.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(loan)
    }
}

/// `loan(size, block, timeout)`: see the method's docs in `queue.rs`.
pub(super) fn loan<'py>(
    h: &PyQueue,
    py: Python<'py>,
    size: usize,
    block: bool,
    timeout: Option<f64>,
) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
    let mut deadline = CallDeadline::from_args(block, timeout)?;
    let q = h.q()?;
    h.loans.none_out()?;
    // The loan owns an Arc of the queue (it outlives this handle's close() until it goes).
    let arc: Arc<Queue> = h.inner.arc(py)?;
    let mut got: Option<OwnedLoan> = None;
    retry(
        py,
        &mut deadline,
        &mut got,
        || check_open(&q),
        |got| {
            if got.is_none() {
                *got = arc.loan_owned(size, Some(Duration::ZERO)).map_err(queue_error)?;
            }
            Ok(got.is_some().then_some(()))
        },
        |got, slice| {
            *got = arc.loan_owned(size, Some(slice)).map_err(queue_error)?;
            Ok(if got.is_some() { Waited::Finished } else { Waited::Idle })
        },
    )?;
    let Some(mut l) = got else { return Ok(None) };
    let (ptr, len) = (l.as_mut_ptr(), l.len());
    let token = Arc::new(LoanToken { loan: Mutex::new(Some(l)) });
    let weak = Arc::downgrade(&token);
    // SAFETY: the `len` bytes at `ptr` are the loan's payload, reserved for this process and
    // unpublished while the loan lives in the token; the token lives as long as the exporter,
    // i.e. until every view and array made from it is gone, and commit/abort take the loan only
    // once nothing but themselves holds the token. The loan holds an Arc of the queue, so the
    // mapping outlives the buffer.
    let mv = unsafe { export(py, token, ptr, len, false) }?;
    let view = PyWeakrefReference::new(&mv)?.unbind();
    h.loans.set(Outstanding { token: weak, view, pinned: None });
    Ok(Some(mv))
}

/// `commit()`: publishes the outstanding loan.
pub(super) fn commit(h: &PyQueue, py: Python<'_>) -> PyResult<()> {
    let _q = h.q()?;
    match h.loans.claim(py)? {
        Some(l) => l.commit().map_err(queue_error),
        None => Err(PyValueError::new_err(
            "no slot is loaned on this handle (never loaned, committed or aborted already, or abandoned when its memoryview went)",
        )),
    }
}

/// `abort()`: drops the outstanding loan, publishing nothing (no-op without one).
pub(super) fn abort(h: &PyQueue, py: Python<'_>) -> PyResult<()> {
    drop(h.loans.claim(py)?);
    Ok(())
}
