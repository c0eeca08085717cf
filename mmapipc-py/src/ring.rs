//! `mmapipc.SharedMemoryRing`: the SPSC ring, with the original API plus batches and views.
//!
//! Roles follow the single-producer/single-consumer contract in time: each call claims the
//! role it needs (producer for writes, consumer for reads and `clear`) when it starts and gives
//! it back when it returns, so handles, threads and processes may take turns freely, while two
//! at the same time are refused with `AlreadyAttached` (another process, or another handle of
//! this process, is in a call as that role). A `read_view`/`read_fixed_batch` result keeps the
//! consumer role until it is released (or the next consumer call on this handle releases it),
//! and a `loan` keeps the producer role until `commit`/`abort`. The claim is one CAS on the
//! side's own cache line, and a handle that claims again after nobody else used the role keeps
//! its cached indices (see the core's `Ring::claim_producer`).
//!
//! Threads: the class is `frozen`; its state is split by side ([`Producer`], [`Consumer`]),
//! each behind a [`SideLock`] held for the whole call, so a producer thread and a consumer
//! thread share one handle without contention, and two threads on one side are serialised (the
//! second waits, with the GIL released, within its own timeout; a non-blocking call returns its
//! "nothing" value at once if the side is busy). Status calls (`available_read`, `len`,
//! `capacity`, ...) take no side. Non-blocking calls keep the GIL (releasing it would cost more
//! than the call); blocking calls try once, then wait with the GIL released, in slices, so
//! other threads run and Ctrl-C raises `KeyboardInterrupt` ([`crate::blocking`]). `close()` from
//! another thread wakes blocked calls on the handle at once; they raise `ValueError`.
//!
//! `fork` while a thread is in a call: the child's copy works; the side that thread held is
//! free in the child, and its role is still the parent's (so the child gets `AlreadyAttached`
//! for that role while the parent's call lasts).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmapipc::wait::Watch;
use mmapipc::Ring;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyType};

use crate::blocking::{retry, CallDeadline};
use crate::borrow::{with_bytes, BorrowedBytes, WritableBuffer};
use crate::buffer::export;
use crate::errors::{open_error, ring_error};
use crate::ffi::malloc::keep_heap_for;
use crate::handle::{handle_pymethods, Handle};
use crate::readiness::{Fds, Ready};
use crate::sync::{Shared, SideLock};

mod sides;
mod view;

use sides::{side_ring, wait_ring, Consumer, Need, Producer, ViewToken};

const NAME: &str = "SharedMemoryRing";

/// A lock-free single-producer single-consumer ring of byte messages in shared memory.
///
/// One producer and one consumer at a time: each call takes its role (producer for writes,
/// consumer for reads and `clear`) for its duration, so handles, threads and processes may take
/// turns; a call while another handle or process is in a call as that role raises
/// `AlreadyAttached`. A handle may be shared by threads: a producer thread and a consumer thread
/// run concurrently, two threads on one side take turns.
///
/// The memoryview returned by `read_view` points into the ring; its slot (and the consumer role)
/// stays held until the view is released (`view.release()`, `with ring.read_view() as v:`) or
/// the next consumer call on this handle (`read`, `read_view`, `read_batch`, `clear`, `close`),
/// which first releases the view, so using it afterwards raises `ValueError` instead of showing
/// recycled bytes. If anything made from the view is still alive (a NumPy array, a slice of the
/// view, a memoryview of its `.obj`), that call raises `BufferError` and does nothing: the slot
/// stays held until those are gone (drop or copy them first). The `.obj` of every view of one
/// handle is the same exporter object; a reference to it holds the slot too (NumPy's
/// `ndarray(buffer=view)` keeps it as the array's base), and once the view and every buffer
/// made from it are gone it refuses buffer requests until the next `read_view`. A slot held
/// only by such a reference is released by the next consumer call after it goes. A handle that is garbage-collected (not closed)
/// while such an array lives gives up its role without releasing that slot: the message is
/// delivered again to the next consumer, and the array keeps the mapping alive but may then show
/// recycled bytes; call `close()` to be told instead.
///
/// `clear()` discards what has been written so far, acting as the consumer: allowed unless
/// another handle or process is in a consumer call; otherwise it raises `AlreadyAttached`.
///
/// `close()` may be called at any time from any thread: calls blocked on this handle wake and
/// raise `ValueError` ("handle is closed").
#[pyclass(module = "mmapipc", name = "SharedMemoryRing", frozen)]
pub struct PyRing {
    path: PathBuf,
    /// A handle holding no role, for status calls and waking waiters; dropped by `close`.
    pub(crate) info: Shared<Ring>,
    /// Readiness descriptors for event loops (`readiness.rs`).
    pub(crate) ready: Fds,
    /// Set by `close`: blocked calls stop waiting and raise.
    stop: AtomicBool,
    prod: SideLock<Producer>,
    /// In an Arc: a read view's exporter tells it when the view is gone (see `view.rs`).
    cons: Arc<SideLock<Consumer>>,
}

impl Ready for PyRing {
    fn fds(&self) -> &Fds {
        &self.ready
    }

    fn watch(&self, py: Python<'_>, writable: bool, size: usize) -> PyResult<Option<Arc<dyn Watch>>> {
        let info = self.info.enter(py)?;
        if writable {
            info.writable_watch(size).map(Some).map_err(ring_error)
        } else {
            Ok(Some(info.readable_watch()))
        }
    }
}

impl Handle for PyRing {
    fn shut(&self, py: Python<'_>) -> PyResult<()> {
        if self.info.is_closed(py) {
            return Ok(());
        }
        // A side in a call has no view or loan out (each call releases the view first, and
        // writes refuse to run while a loan is out): only a free side needs them released.
        let mut cons = self.cons.try_lock(py);
        let mut prod = self.prod.try_lock(py);
        if let Some(c) = cons.as_mut() {
            c.release_view(py)?;
        }
        if let Some(p) = prod.as_mut() {
            p.take_loan(py)?;
        }
        // SeqCst: pairs with the waits' check (see Ring::wake_waiters) and check_open's.
        self.stop.store(true, Ordering::SeqCst);
        if cons.is_none() || prod.is_none() {
            if let Ok(info) = self.info.enter(py) {
                info.wake_waiters();
            }
        }
        self.info.close(py);
        self.ready.close();
        if let Some(mut c) = cons {
            c.ring = None;
        }
        if let Some(mut p) = prod {
            p.ring = None;
        }
        Ok(())
    }

    fn describe(&self, py: Python<'_>) -> Option<String> {
        let r = self.info.enter(py).ok()?;
        Some(format!("capacity={}, pending={} messages/{} bytes", r.capacity(), r.len(), r.available_read()))
    }
}

handle_pymethods! {
    parts(NAME, file: path, slot: info, ready: ready);
    /// Releases the last `read_view`, an outstanding loan, this handle's roles and its mapping.
    /// Raises BufferError (and stays open) if an array still exports the last view or the loan.
    /// Calls blocked on this handle in other threads wake and raise ValueError. Calling it twice
    /// is harmless.
    fn close;
    impl PyRing {
        /// Creates a ring with `capacity` data bytes (rounded up to a multiple of 8) at `path`.
        /// A bare name lives in /dev/shm. The largest message is `capacity - 8` bytes.
        #[classmethod]
        #[pyo3(signature = (path, capacity, *, mode = 0o600))]
        fn create(_cls: &Bound<'_, PyType>, path: PathBuf, capacity: i64, mode: u32) -> PyResult<Self> {
            let capacity = usize::try_from(capacity)
                .map_err(|_| PyValueError::new_err(format!("capacity must be positive, got {capacity}")))?;
            let ring = Ring::create_with(&path, capacity, &mmapipc::CreateOptions { mode }).map_err(open_error)?;
            Ok(PyRing::new(ring))
        }

        /// Opens an existing ring.
        #[classmethod]
        #[pyo3(signature = (path, *, allow_foreign_owner = false))]
        fn open(_cls: &Bound<'_, PyType>, path: PathBuf, allow_foreign_owner: bool) -> PyResult<Self> {
            let ring = Ring::open_with(&path, &mmapipc::OpenOptions { allow_foreign_owner }).map_err(open_error)?;
            Ok(PyRing::new(ring))
        }

        /// Writes one message. Returns False if the ring is full (`block=False`) or the timeout
        /// passed; raises ValueError if the message is larger than `max_message_size`, and
        /// AlreadyAttached if another handle or process is writing right now.
        #[pyo3(signature = (data, block = false, timeout = None))]
        fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            with_bytes(data, |b| {
                self.as_side(py, &self.prod, &mut deadline, false, |p, deadline| {
                    p.no_loan()?;
                    let ring = side_ring(&mut p.ring)?;
                    let done = self.retry(py, deadline, ring, Need::Room(b.len()), |r| {
                        Ok(r.try_write(b).map_err(ring_error)?.then_some(()))
                    })?;
                    Ok(done.is_some())
                })
            })?
        }

        /// Writes messages in order with one publication per run of messages that fit; returns how
        /// many were written (fewer than given if the ring filled up and `block` is False or the
        /// timeout passed). Raises ValueError, writing nothing, if any message is too large.
        /// Messages are read in place (no copy into Python objects): `bytes`, memoryviews (e.g. rows
        /// of one NumPy block) and any C-contiguous buffer. A memoryview released by another thread
        /// while this call waits for room raises ValueError after the wait.
        #[pyo3(signature = (messages, block = false, timeout = None))]
        fn write_batch(
            &self,
            py: Python<'_>,
            messages: &Bound<'_, PyAny>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<usize> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            // Borrow every message (no copy) before taking the side: iterating may run Python code.
            // Writes run with the GIL held; waiting for room releases it but touches no message, and
            // an exporter cannot resize a buffer while we hold its export; memoryviews are read again
            // after each wait.
            let held = BorrowedBytes::new(messages)?;
            self.as_side(py, &self.prod, &mut deadline, 0, |p, deadline| {
                p.no_loan()?;
                // The ring, the messages written so far, and the size of the next one.
                let mut st = (side_ring(&mut p.ring)?, 0, 0);
                let stop = &self.stop;
                retry(
                    py,
                    deadline,
                    &mut st,
                    || self.check_open(),
                    |(ring, done, next)| {
                        // Re-read after every wait (the GIL was released: a memoryview may be gone).
                        let bufs = held.slices()?;
                        *done += ring.write_batch(&bufs[*done..]).map_err(ring_error)?;
                        let Some(b) = bufs.get(*done) else { return Ok(Some(())) };
                        *next = b.len();
                        Ok(None)
                    },
                    |(ring, _, next), slice| wait_ring(ring, Need::Room(*next), slice, stop),
                )?;
                Ok(st.1)
            })
        }

        /// Reads one message as a new `bytes` (one copy). Returns None if the ring is empty
        /// (`block=False`) or the timeout passed.
        #[pyo3(signature = (block = false, timeout = None))]
        fn read(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<Py<PyBytes>>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            self.as_side(py, &self.cons, &mut deadline, None, |c, deadline| {
                self.retry(py, deadline, side_ring(&mut c.ring)?, Need::Message, |r| {
                    Ok(r.try_read().map_err(ring_error)?.map(|g| {
                        keep_heap_for(g.len());
                        PyBytes::new(py, &g).unbind()
                    }))
                })
            })
        }

        /// Reads one message into `buffer` (a writable, C-contiguous buffer: `bytearray`, NumPy
        /// array, writable memoryview) and returns its length, or None if the ring is empty
        /// (`block=False`) or the timeout passed. No allocation: the copy for large messages that
        /// `read()` would put into a new `bytes`. A message larger than the buffer raises
        /// `mmapipc.BufferTooShort` with the message (taken from the ring) as `args[0]`.
        #[pyo3(signature = (buffer, block = false, timeout = None))]
        fn read_into(
            &self,
            py: Python<'_>,
            buffer: &Bound<'_, PyAny>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<usize>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let dst = WritableBuffer::new(buffer)?;
            self.as_side(py, &self.cons, &mut deadline, None, |c, deadline| {
                self.retry(py, deadline, side_ring(&mut c.ring)?, Need::Message, |r| {
                    r.try_read().map_err(ring_error)?.map(|g| dst.copy_message(&g)).transpose()
                })
            })
        }

        /// Reserves a slot of `size` bytes and returns a writable memoryview of it, to fill in place
        /// (e.g. `numpy.frombuffer(view, dtype)[...] = frame`); then `commit()` publishes it as one
        /// message, or `abort()` drops it. While a slot is loaned this handle keeps the producer role
        /// and makes no other write. None if the ring is full (`block=False`) or the timeout passed.
        #[pyo3(signature = (size, block = false, timeout = None))]
        fn loan<'py>(
            &self,
            py: Python<'py>,
            size: usize,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            self.as_side(py, &self.prod, &mut deadline, None, |p, deadline| {
                p.no_loan()?;
                let slot = self.retry(py, deadline, side_ring(&mut p.ring)?, Need::Room(size), |r| {
                    r.loan_detached_timeout(size, Some(Duration::ZERO)).map_err(ring_error)
                })?;
                let Some(slot) = slot else { return Ok(None) };
                let token = Arc::new(ViewToken { _mem: slot.mem.clone() });
                let weak = Arc::downgrade(&token);
                // SAFETY: the slot (size bytes at as_ptr) is reserved for this producer and
                // unpublished; this handle makes no other write while the loan is out (no_loan), and
                // commit/abort release the memoryview first; the mapping lives as long as the token.
                let mv = unsafe { export(py, token, slot.as_ptr(), slot.len(), false) }?;
                p.loan = Some((slot, mv.clone().unbind(), weak));
                Ok(Some(mv))
            })
        }

        /// Publishes the loaned slot as one message. Raises BufferError (and keeps the loan) if an
        /// array made from the slot's memoryview is still alive; ValueError if nothing is loaned.
        fn commit(&self, py: Python<'_>) -> PyResult<()> {
            self.as_side(py, &self.prod, &mut CallDeadline::forever(), (), |p, _| {
                let slot = p.take_loan(py)?.ok_or_else(|| PyValueError::new_err("no slot is loaned"))?;
                side_ring(&mut p.ring)?.commit_detached(slot).map_err(ring_error)
            })
        }

        /// Drops the loaned slot without publishing anything (no-op if nothing is loaned).
        fn abort(&self, py: Python<'_>) -> PyResult<()> {
            self.as_side(py, &self.prod, &mut CallDeadline::forever(), (), |p, _| p.take_loan(py).map(drop))
        }

        /// Reads one message without copying: a read-only memoryview into the ring, valid until it
        /// is released or the next consumer call on this handle (see the class docs). None if empty
        /// / timed out.
        #[pyo3(signature = (block = false, timeout = None))]
        fn read_view<'py>(
            &self,
            py: Python<'py>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            self.as_side(py, &self.cons, &mut deadline, None, |c, deadline| {
                let detached = self.retry(py, deadline, side_ring(&mut c.ring)?, Need::Message, |r| {
                    Ok(r.try_read().map_err(ring_error)?.map(|g| g.detach()))
                })?;
                let Some(detached) = detached else { return Ok(None) };
                c.hold_view(py, &self.cons, &detached.mem, detached.as_ptr(), detached.len()).map(Some)
            })
        }

        /// Reads up to `max_count` consecutive messages of exactly `size` bytes each, in place: returns
        /// `(view, count, stride)` where `view` is a read-only memoryview from the first payload to the
        /// end of the last, and payload `i` starts at `i * stride` (so NumPy can view the batch as one
        /// strided array of records). The run stops at the ring's wrap, so a batch may be shorter than
        /// what is available. Held like `read_view`: valid until released or the next read on this
        /// handle. None if nothing arrived (non-blocking, or timed out). A message of another size
        /// raises.
        #[pyo3(signature = (max_count, size, block = false, timeout = None))]
        fn read_fixed_batch<'py>(
            &self,
            py: Python<'py>,
            max_count: usize,
            size: usize,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<(Bound<'py, PyMemoryView>, usize, usize)>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            self.as_side(py, &self.cons, &mut deadline, None, |c, deadline| {
                if max_count == 0 {
                    return Ok(None);
                }
                let batch = self.retry(py, deadline, side_ring(&mut c.ring)?, Need::Message, |r| {
                    r.read_fixed_batch_detached(max_count, size).map_err(ring_error)
                })?;
                let Some(batch) = batch else { return Ok(None) };
                let mv = c.hold_view(py, &self.cons, &batch.mem, batch.as_ptr(), batch.span())?;
                Ok(Some((mv, batch.count(), batch.stride())))
            })
        }

        /// Reads up to `max_count` messages as `bytes`, releasing them with one publication.
        /// With `block=True`, waits (up to `timeout`) for at least one.
        #[pyo3(signature = (max_count, block = false, timeout = None))]
        fn read_batch(
            &self,
            py: Python<'_>,
            max_count: usize,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Vec<Py<PyBytes>>> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            self.as_side(py, &self.cons, &mut deadline, Vec::new(), |c, deadline| {
                if max_count == 0 {
                    return Ok(Vec::new());
                }
                let got = self.retry(py, deadline, side_ring(&mut c.ring)?, Need::Message, |r| {
                    let mut out = Vec::with_capacity(max_count.min(256));
                    let mut total = 0;
                    r.read_batch(max_count, |m| {
                        total += m.len();
                        keep_heap_for(total);
                        out.push(PyBytes::new(py, m).unbind());
                    })
                    .map_err(ring_error)?;
                    Ok((!out.is_empty()).then_some(out))
                })?;
                Ok(got.unwrap_or_default())
            })
        }

        /// Free bytes in the ring (a message of n bytes takes n + 8 rounded up to 8, and at the wrap
        /// also the rest of the buffer).
        fn available_write(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.info.enter(py)?.available_write())
        }

        /// Bytes waiting to be read (record headers and padding included); 0 when empty.
        fn available_read(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.info.enter(py)?.available_read())
        }

        /// Discards every message written so far. Performed as the consumer: raises AlreadyAttached
        /// if another handle or process is in a consumer call. Safe while the producer writes.
        /// Waits for a consumer call of another thread on this handle to end.
        fn clear(&self, py: Python<'_>) -> PyResult<()> {
            self.as_side(py, &self.cons, &mut CallDeadline::forever(), (), |c, _| {
                side_ring(&mut c.ring)?.clear().map_err(ring_error)
            })
        }

        /// Data-area size in bytes.
        #[getter]
        fn capacity(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.info.enter(py)?.capacity())
        }

        /// Largest message, in bytes (`capacity - 8`).
        #[getter]
        fn max_message_size(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.info.enter(py)?.max_message_size())
        }

        /// Messages waiting to be read.
        fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.info.enter(py)?.len())
        }

    }
}
