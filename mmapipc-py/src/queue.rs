//! `mmapipc.SharedMemoryQueue`: the crash-safe MPMC queue, as in the original API.
//!
//! Non-blocking attempts run with the GIL held; blocking ones wait with the GIL released in
//! slices ([`crate::blocking::retry`]: Ctrl-C and `close()` are checked between slices). `get` copies each
//! message once, straight into a new `bytes`. `get_view` returns memoryviews of the handle's
//! pooled exporters (`queue/view.rs`), each holding one view's slot: the slot is released when
//! the last memoryview/array on it goes. `loan`/`commit`/`abort` are in `queue/loan.rs`.
//!
//! Threads: the class is `frozen` and its queue is a [`Shared`] value: any number of threads
//! call one handle at once (the queue itself is many-producer many-consumer, its locks live in
//! the mapping), and `close()` works at any time: a call blocked in another thread stops
//! waiting at its next slice and raises `ValueError`; the mapping goes when the last call ends.
//! After `fork`, the child's copy works whatever the parent's threads were doing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mmapipc::wait::Watch;
use mmapipc::{FixedViews, Queue, QueueOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyList, PyMemoryView, PyType};

use crate::blocking::{retry, timeout_arg, CallDeadline, Waited};
use crate::borrow::{with_bytes, BorrowedBytes, WritableBuffer};
use crate::buffer::export;
use crate::errors::{closed, open_error, queue_error};
use crate::ffi::malloc::keep_heap_for;
use crate::ffi::memoryview::release;
use crate::handle::{handle_pymethods, Handle};
use crate::readiness::{Fds, Ready};
use crate::sync::{Shared, Using};

mod loan;
mod view;

const NAME: &str = "SharedMemoryQueue";

/// A bounded, crash-safe queue shared by many producer and consumer processes (and threads:
/// one handle may be used by several at once). `close()` from another thread makes calls
/// blocked on this handle raise `ValueError` ("handle is closed") within one wait slice (50 ms).
#[pyclass(module = "mmapipc", name = "SharedMemoryQueue", frozen)]
pub struct PyQueue {
    pub(crate) inner: Shared<Queue>,
    path: PathBuf,
    /// Readiness descriptors for event loops (`readiness.rs`).
    pub(crate) ready: Fds,
    /// The outstanding `loan()`, seen weakly (`queue/loan.rs`).
    loans: loan::Loans,
    /// The exporters of `get_view`'s memoryviews (`queue/view.rs`).
    views: Arc<view::Pool>,
}

impl PyQueue {
    fn new(q: Queue) -> PyQueue {
        let path = q.path().to_path_buf();
        PyQueue {
            inner: Shared::new(q, NAME),
            path,
            ready: Default::default(),
            loans: Default::default(),
            views: Default::default(),
        }
    }

    /// The queue for the duration of one call (derefs to [`Queue`]); `ValueError` if closed.
    fn q(&self) -> PyResult<Using<'_, Queue>> {
        // SAFETY: only called from #[pymethods], which pyo3 runs with the GIL held; the token
        // does not outlive `self`'s borrow, i.e. the method call.
        let py = unsafe { Python::assume_gil_acquired() };
        self.inner.enter(py)
    }
}

/// `ValueError` if `close()` ran while the call waited.
fn check_open(q: &Using<'_, Queue>) -> PyResult<()> {
    if q.closing() {
        return Err(closed(NAME));
    }
    Ok(())
}

fn options(mode: u32, allow_foreign_owner: bool, recovery_bound: f64, prefault: bool) -> PyResult<QueueOptions> {
    let bound = timeout_arg(Some(recovery_bound))?.unwrap_or(Duration::from_secs(1));
    Ok(QueueOptions { mode, allow_foreign_owner, recovery_bound: bound, prefault })
}

/// A blocking take: [`retry`] of `attempt`, waiting (GIL released) for a message to arrive.
fn retry_take<T>(
    py: Python<'_>,
    q: &Using<'_, Queue>,
    deadline: &mut CallDeadline,
    mut attempt: impl FnMut() -> PyResult<Option<T>>,
) -> PyResult<Option<T>> {
    let queue: &Queue = q;
    retry(
        py,
        deadline,
        &mut (),
        || check_open(q),
        |()| attempt(),
        |(), slice| Ok(Waited::ready(queue.wait_available(Some(slice)).map_err(queue_error)?)),
    )
}

impl Ready for PyQueue {
    fn fds(&self) -> &Fds {
        &self.ready
    }

    fn watch(&self, py: Python<'_>, writable: bool, size: usize) -> PyResult<Option<Arc<dyn Watch>>> {
        let q = self.inner.arc(py)?;
        if writable {
            q.writable_watch(size).map(Some).map_err(queue_error)
        } else {
            Ok(Some(q.readable_watch()))
        }
    }
}

impl Handle for PyQueue {
    fn describe(&self, py: Python<'_>) -> Option<String> {
        let q = self.inner.enter(py).ok()?;
        Some(format!("capacity={}, qsize={}", q.capacity(), q.len()))
    }
}

handle_pymethods! {
    parts(NAME, file: path, slot: inner, ready: ready);
    /// Releases this handle. Views already taken stay valid. Calls blocked on this handle in
    /// other threads raise ValueError within one wait slice. Calling it twice is harmless.
    fn close;
    impl PyQueue {
        /// Creates a queue whose ring holds `capacity` bytes. A bare name lives in /dev/shm.
        /// `prefault=True` maps every page of the ring into this process now (Linux 5.14+) instead
        /// of on first touch: slower to create, no page faults in the first lap of puts.
        #[classmethod]
        #[pyo3(signature = (path, capacity, *, mode = 0o600, recovery_bound = 1.0, prefault = false))]
        fn create(
            _cls: &Bound<'_, PyType>,
            path: PathBuf,
            capacity: i64,
            mode: u32,
            recovery_bound: f64,
            prefault: bool,
        ) -> PyResult<Self> {
            let cap = usize::try_from(capacity)
                .map_err(|_| PyValueError::new_err(format!("capacity must be positive, got {capacity}")))?;
            let q = Queue::create_with(&path, cap, &options(mode, false, recovery_bound, prefault)?).map_err(open_error)?;
            Ok(PyQueue::new(q))
        }

        /// Opens an existing queue (`prefault` as for `create`).
        #[classmethod]
        #[pyo3(signature = (path, *, allow_foreign_owner = false, recovery_bound = 1.0, prefault = false))]
        fn open(
            _cls: &Bound<'_, PyType>,
            path: PathBuf,
            allow_foreign_owner: bool,
            recovery_bound: f64,
            prefault: bool,
        ) -> PyResult<Self> {
            let opts = options(0o600, allow_foreign_owner, recovery_bound, prefault)?;
            let q = Queue::open_with(&path, &opts).map_err(open_error)?;
            Ok(PyQueue::new(q))
        }

        /// Puts one message. Returns False if it did not fit in time (never with block=True and no
        /// timeout). Raises ValueError if it can never fit.
        #[pyo3(signature = (data, block = true, timeout = None))]
        fn put(&self, py: Python<'_>, data: &Bound<'_, PyAny>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let q = self.q()?;
            self.loans.none_out()?;
            let queue: &Queue = &q;
            with_bytes(data, |b| {
                // Whether a wait put the message (the wait itself puts).
                let mut put_by_wait = false;
                let put = retry(
                    py,
                    &mut deadline,
                    &mut put_by_wait,
                    || check_open(&q),
                    |&mut by_wait| Ok((by_wait || queue.try_put(b).map_err(queue_error)?).then_some(())),
                    |by_wait, slice| {
                        *by_wait = queue.put_timeout(b, Some(slice)).map_err(queue_error)?;
                        Ok(if *by_wait { Waited::Finished } else { Waited::Idle })
                    },
                )?;
                Ok(put.is_some())
            })?
        }

        /// Puts many messages under one lock acquisition per burst; returns how many were put
        /// (all of them unless the queue stayed full past the timeout or block=False). Messages are
        /// read in place (`bytes`, memoryviews, any C-contiguous buffer), also those that wait for
        /// room; each stays held by a buffer request until the call returns.
        #[pyo3(signature = (messages, block = true, timeout = None))]
        fn put_batch(
            &self,
            py: Python<'_>,
            messages: &Bound<'_, PyAny>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<usize> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            // Borrow every message (no copy): the first attempt runs with the GIL held.
            let mut held = BorrowedBytes::new(messages)?;
            let q = self.q()?;
            self.loans.none_out()?;
            let queue: &Queue = &q;
            check_open(&q)?;
            let first = queue.try_put_batch(&held.slices()?).map_err(queue_error)?;
            if first == held.len() || !deadline.may_wait() {
                return Ok(first);
            }
            // What is left is put by the waits, which release the GIL: every message is held by a
            // buffer request until the call returns, and read in place, never copied.
            held.pin()?;
            let mut left = (held.slices()?, first);
            retry(
                py,
                &mut deadline,
                &mut left,
                || check_open(&q),
                |(msgs, put)| Ok((*put == msgs.len()).then_some(())),
                |(msgs, put), slice| {
                    *put += queue.put_batch_timeout(&msgs[*put..], Some(slice)).map_err(queue_error)?;
                    Ok(if *put == msgs.len() { Waited::Finished } else { Waited::Idle })
                },
            )?;
            Ok(left.1)
        }

        /// Reserves a slot of `size` bytes and returns a writable memoryview of it, to fill in
        /// place (e.g. `numpy.frombuffer(view, dtype)[...] = frame`); then `commit()` publishes it
        /// as one message, or `abort()` drops it. None if no room came in time (block=False: at
        /// once). While a slot is loaned, this process holds the queue's producer lock: other
        /// producers (processes, threads, handles) wait for the commit, and writes on this handle
        /// raise ValueError. A loan whose memoryview (and everything made from it) goes without a
        /// commit is abandoned: nothing is published (`with q.loan(n) as buf:` abandons it on an
        /// exception). A producer killed holding a loan leaves the queue as a put killed midway.
        #[pyo3(signature = (size, block = true, timeout = None))]
        fn loan<'py>(
            &self,
            py: Python<'py>,
            size: usize,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
            loan::loan(self, py, size, block, timeout)
        }

        /// Publishes the loaned slot as one message. Raises BufferError (and keeps the loan) if
        /// an array or slice made from the slot's memoryview is still alive; ValueError if nothing
        /// is loaned (never, already committed or aborted, or abandoned).
        fn commit(&self, py: Python<'_>) -> PyResult<()> {
            loan::commit(self, py)
        }

        /// Drops the loaned slot without publishing anything (no-op if nothing is loaned);
        /// BufferError as for `commit`.
        fn abort(&self, py: Python<'_>) -> PyResult<()> {
            loan::abort(self, py)
        }

        /// Takes one message (a new bytes), or None on timeout / empty with block=False.
        #[pyo3(signature = (block = true, timeout = None))]
        fn get<'py>(&self, py: Python<'py>, block: bool, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyBytes>>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let q = self.q()?;
            retry_take(py, &q, &mut deadline, || {
                let r = q
                    .try_get_with(|b| {
                        keep_heap_for(b.len());
                        PyBytes::new_with(py, b.len(), |dst| {
                            dst.copy_from_slice(b);
                            Ok(())
                        })
                    })
                    .map_err(queue_error)?;
                r.transpose()
            })
        }

        /// Takes one message into `buffer` (a writable, C-contiguous buffer) and returns its length,
        /// or None on timeout / empty with block=False. No allocation: the copy for large messages
        /// that `get()` would put into a new `bytes`. A message larger than the buffer raises
        /// `mmapipc.BufferTooShort` with the message (taken from the queue) as `args[0]`.
        #[pyo3(signature = (buffer, block = true, timeout = None))]
        fn get_into(
            &self,
            py: Python<'_>,
            buffer: &Bound<'_, PyAny>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<usize>> {
            let dst = WritableBuffer::new(buffer)?;
            let q = self.q()?;
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            retry_take(py, &q, &mut deadline, || q.try_get_with(|b| dst.copy_message(b)).map_err(queue_error)?.transpose())
        }

        /// Takes up to `max_count` messages under one lock acquisition. With block=True, waits
        /// (up to `timeout`) for the first; returns [] on timeout.
        #[pyo3(signature = (max_count, block = true, timeout = None))]
        fn get_batch<'py>(
            &self,
            py: Python<'py>,
            max_count: i64,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Bound<'py, PyList>> {
            let q = self.q()?;
            let max = usize::try_from(max_count)
                .map_err(|_| PyValueError::new_err(format!("max_count must be non-negative, got {max_count}")))?;
            if max == 0 {
                return Ok(PyList::empty(py));
            }
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let r = retry_take(py, &q, &mut deadline, || {
                // Collect first, then build the list at its final size (no appends, no regrowth).
                let mut got: Vec<Bound<'py, PyBytes>> = Vec::with_capacity(max.min(256));
                let mut total = 0;
                q.try_get_batch_with(max, |b| {
                    total += b.len();
                    keep_heap_for(total);
                    got.push(PyBytes::new(py, b));
                })
                .map_err(queue_error)?;
                if got.is_empty() {
                    return Ok(None);
                }
                PyList::new(py, got).map(Some)
            })?;
            Ok(r.unwrap_or_else(|| PyList::empty(py)))
        }

        /// Zero-copy take, the twin of `get`: one message, as a list holding one read-only
        /// memoryview straight into its slot, or None on timeout / empty (block=False). With
        /// `max_count=N`, every message available at that moment up to N (at least one); with
        /// `max_count=None`, all of them. The slots are not reused until each view, and every array
        /// made from it, is released (`q.release(views)`, `with views:`, or garbage collection).
        /// Space is reclaimed in ring order: a view held for long also holds back the space after
        /// it, so producers wait once they wrap around to it.
        ///
        /// The list is a `ViewBatch` (a `list` subclass): `with` releases every view on exit.
        #[pyo3(
            signature = (block = true, timeout = None, *, max_count = Some(1)),
            text_signature = "(self, /, block=True, timeout=None, *, max_count=1)"
        )]
        fn get_view<'py>(
            &self,
            py: Python<'py>,
            block: bool,
            timeout: Option<f64>,
            max_count: Option<i64>,
        ) -> PyResult<Option<Bound<'py, PyAny>>> {
            let q = self.q()?;
            // The views own an Arc of the queue (their slots outlive this handle's close()).
            let arc = self.inner.arc(py)?;
            let max = match max_count {
                None => usize::MAX,
                Some(m) if m > 0 => m as usize,
                Some(m) => return Err(PyValueError::new_err(format!("max_count must be positive, got {m}"))),
            };
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            // `ViewBatch` instances are made without calling the class (an empty list filled in
            // place: `_views.py` keeps it free of `__new__` and `__init__`).
            static VIEW_BATCH: GILOnceCell<Py<PyType>> = GILOnceCell::new();
            let cls = VIEW_BATCH.import(py, "mmapipc._views", "ViewBatch")?;
            let batch = self.views.batch(cls, |out| {
                let n = retry_take(py, &q, &mut deadline, || {
                    let n = arc.get_owned_views_into(max, Some(Duration::ZERO), out).map_err(queue_error)?;
                    Ok((n > 0).then_some(n))
                })?;
                Ok(n.unwrap_or(0))
            })?;
            Ok(batch.map(Bound::into_any))
        }

        /// Zero-copy take of fixed-size records: up to `max_count` messages of exactly `size` bytes
        /// that lie at equal distances in the queue, as `(view, count, stride)`: `view` is a
        /// read-only memoryview from the first payload to the end of the last, and payload `i`
        /// starts at `i * stride` (so NumPy can view the batch as one strided array of records).
        /// None on timeout / empty (block=False). The run stops at the ring's wrap and before a
        /// message of another size (those wait for the next call), so a batch may be shorter than
        /// what is waiting. A *first* message of another size is taken, discarded, and raises
        /// `CorruptMessage`.
        ///
        /// The slots stay held (not reused by producers) until the memoryview and everything made
        /// from it (NumPy arrays included) are gone; `view.release()` ends the memoryview itself.
        #[pyo3(signature = (max_count, size, block = true, timeout = None))]
        fn get_fixed_batch<'py>(
            &self,
            py: Python<'py>,
            max_count: i64,
            size: usize,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<(Bound<'py, PyMemoryView>, usize, usize)>> {
            let q = self.q()?;
            // The batch owns an Arc of the queue (its slots outlive this handle's close()).
            let arc = self.inner.arc(py)?;
            let max = usize::try_from(max_count)
                .map_err(|_| PyValueError::new_err(format!("max_count must be non-negative, got {max_count}")))?;
            if max == 0 {
                return Ok(None);
            }
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let taken: Option<FixedViews> = retry_take(py, &q, &mut deadline, || {
                arc.get_fixed_views(max, size, Some(Duration::ZERO)).map_err(queue_error)
            })?;
            let Some(batch) = taken else { return Ok(None) };
            let (ptr, span, count, stride) = (batch.as_ptr(), batch.span(), batch.count(), batch.stride());
            // SAFETY: the `span` bytes from `ptr` are the run of records the FixedViews (the owner)
            // holds TAKEN by this process: no producer writes them until it drops, and it holds an
            // Arc of the queue, so the mapping outlives the buffer. The view is read-only.
            let mv = unsafe { export(py, Arc::new(batch), ptr, span, true) }?;
            Ok(Some((mv, count, stride)))
        }

        /// Releases views from `get_view` now (calls `.release()` on each memoryview). A view used
        /// afterwards raises ValueError; views already released are skipped. A NumPy array made from
        /// a view keeps its slot held until the array is gone (it holds its own export). Raises
        /// BufferError if something exports the memoryview object itself.
        fn release(&self, views: &Bound<'_, PyAny>) -> PyResult<()> {
            for v in views.try_iter()? {
                release(&v?)?;
            }
            Ok(())
        }

        /// Number of waiting messages (exact when no peer is active).
        fn qsize(&self) -> PyResult<usize> {
            Ok(self.q()?.len())
        }

        /// True if no message is waiting.
        fn empty(&self) -> PyResult<bool> {
            Ok(self.q()?.is_empty())
        }

        /// Bytes free for producers now (framing not subtracted: a message of n bytes takes 16 + n
        /// rounded up to 8). Space behind a view not yet released is not free.
        fn available_write(&self) -> PyResult<usize> {
            Ok(self.q()?.available_write())
        }

        /// Discards every waiting message (safe with active peers; views stay valid).
        fn clear(&self, py: Python<'_>) -> PyResult<()> {
            let q = self.q()?;
            let queue: &Queue = &q;
            py.allow_threads(|| queue.clear()).map_err(queue_error)?;
            Ok(())
        }

        /// Ring size in bytes.
        #[getter]
        fn capacity(&self) -> PyResult<usize> {
            Ok(self.q()?.capacity())
        }

        /// Largest message that fits.
        #[getter]
        fn max_message_size(&self) -> PyResult<usize> {
            Ok(self.q()?.max_message_size())
        }

        /// Counters of all processes together (dict), and `used_bytes`: bytes in use (waiting
        /// messages and unreleased views). `view_stalls` counts the times producers found the queue
        /// full because a view not yet released held the oldest space (once per such view): such a
        /// put waits for the view, or returns False at its timeout.
        fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
            let s = self.q()?.stats();
            let d = pyo3::types::PyDict::new(py);
            d.set_item("msgs_in", s.messages_in)?;
            d.set_item("bytes_in", s.bytes_in)?;
            d.set_item("full_waits", s.full_waits)?;
            d.set_item("msgs_out", s.messages_out)?;
            d.set_item("bytes_out", s.bytes_out)?;
            d.set_item("empty_waits", s.empty_waits)?;
            d.set_item("lock_recoveries", s.lock_recoveries)?;
            d.set_item("view_recoveries", s.view_recoveries)?;
            d.set_item("view_stalls", s.view_stalls)?;
            d.set_item("used_bytes", s.used_bytes)?;
            Ok(d)
        }

        fn __len__(&self) -> PyResult<usize> {
            self.qsize()
        }

    }
}
