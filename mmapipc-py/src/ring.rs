//! `mmapipc.SharedMemoryRing`: the SPSC ring, with the original API plus batches and views.
//!
//! Roles are claimed lazily by the core: the first write makes this handle the producer, the
//! first read the consumer (`AlreadyAttached` if another live process holds the role). Non-blocking
//! calls keep the GIL (they take well under a microsecond); blocking calls try once, then wait
//! with the GIL released, in slices, so other threads run and Ctrl-C raises `KeyboardInterrupt`
//! ([`crate::blocking`]). A handle is meant for one thread at a time: a second thread calling it
//! while it waits gets pyo3's "already borrowed" error.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use mmapipc::ring::DetachedSlot;
use mmapipc::wait::Deadline;
use mmapipc::{Ring, RingError};
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyTuple, PyType};

use crate::blocking::{block_on, timeout_arg};
use crate::buffer::{copy_to_raw, with_bytes, BorrowedBytes, Owner, SharedBuffer, WritableBuffer};
use crate::errors::{buffer_too_short, closed, open_error, ring_error};

/// A lock-free single-producer single-consumer ring of byte messages in shared memory.
///
/// The memoryview returned by `read_view` points into the ring; its slot stays reserved until
/// the next consumer call on this handle (`read`, `read_view`, `read_batch`, `clear`, `close`),
/// which first releases the view (`memoryview.release()`), so using it afterwards raises
/// `ValueError` instead of showing recycled bytes. If anything made from the view is still alive
/// (a NumPy array, a slice of the view, its `.obj`), the call raises `BufferError` and does
/// nothing: the slot stays held until those are gone (drop or copy them first). A handle that
/// is garbage-collected (not closed) while such an array lives gives up its role without
/// releasing that slot: the message is delivered again to the next consumer, and the array keeps
/// the mapping alive but may then show recycled bytes; call `close()` to be told instead.
///
/// `clear()` discards what has been written so far, acting as the consumer: allowed if this
/// handle is the consumer or no live process is; otherwise it raises `AlreadyAttached`.
#[pyclass(module = "mmapipc", name = "SharedMemoryRing")]
pub struct PyRing {
    inner: Option<Ring>,
    path: PathBuf,
    view: Option<Py<PyMemoryView>>,
    /// Alive while any exported buffer of the last `read_view` is alive (the SharedBuffer owns
    /// the only strong reference).
    view_token: Option<Weak<ViewToken>>,
    /// An outstanding `loan()`: the reserved slot, its writable memoryview and the token that
    /// tells whether anything still exports that view.
    loan: Option<(DetachedSlot, Py<PyMemoryView>, Weak<ViewToken>)>,
}

/// The owner of a `read_view` buffer: keeps the mapping alive, and tells (through a `Weak`)
/// whether any consumer of the buffer still exists.
struct ViewToken {
    _mem: Arc<mmapipc::ring::RingMemory>,
}

/// A call's deadline, fixed on first use: non-blocking fast paths never read the clock.
struct LazyDeadline {
    timeout: Option<Duration>,
    at: Option<Deadline>,
}

impl LazyDeadline {
    fn new(timeout: Option<Duration>) -> LazyDeadline {
        LazyDeadline { timeout, at: None }
    }

    fn get(&mut self) -> Deadline {
        let t = self.timeout;
        *self.at.get_or_insert_with(|| Deadline::after(t))
    }
}

/// Waits with the GIL released until `wait` says the ring can make progress, or `deadline`.
fn wait_for(
    py: Python<'_>,
    ring: &mut Ring,
    deadline: Deadline,
    mut wait: impl FnMut(&mut Ring, Option<Duration>) -> Result<bool, RingError> + Send,
) -> PyResult<bool> {
    let left = deadline.remaining();
    if left == Some(Duration::ZERO) {
        return Ok(false);
    }
    let r = block_on(
        py,
        true,
        left.map(|d| d.as_secs_f64()),
        || Ok(None),
        |slice| wait(ring, Some(slice)).map(|ready| ready.then_some(())),
    )?;
    match r {
        Ok(Some(())) => Ok(true),
        Ok(None) => Ok(false),
        Err(e) => Err(ring_error(e)),
    }
}

impl PyRing {
    fn new(ring: Ring) -> PyRing {
        let path = ring.path().map(|p| p.to_path_buf()).unwrap_or_default();
        PyRing { inner: Some(ring), path, view: None, view_token: None, loan: None }
    }

    fn no_loan(&self) -> PyResult<()> {
        if self.loan.is_some() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a loaned slot is outstanding on this handle: commit() or abort() it before writing",
            ));
        }
        Ok(())
    }

    /// Releases the loan's memoryview; BufferError if something made from it is still alive.
    fn take_loan(&mut self, py: Python<'_>) -> PyResult<Option<DetachedSlot>> {
        let Some((slot, view, token)) = self.loan.take() else { return Ok(None) };
        if let Err(e) = view.bind(py).call_method0(pyo3::intern!(py, "release")) {
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

    fn ring(&mut self) -> PyResult<&mut Ring> {
        self.inner.as_mut().ok_or_else(|| closed("SharedMemoryRing"))
    }

    fn ring_ref(&self) -> PyResult<&Ring> {
        self.inner.as_ref().ok_or_else(|| closed("SharedMemoryRing"))
    }

    /// Releases the memoryview of the previous `read_view`, so its slot may be recycled.
    fn release_view(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(v) = self.view.take() {
            if let Err(e) = v.bind(py).call_method0(pyo3::intern!(py, "release")) {
                self.view = Some(v);
                return Err(e);
            }
        }
        if let Some(token) = &self.view_token {
            if token.strong_count() != 0 {
                return Err(PyBufferError::new_err(
                    "the previous read_view's buffer is still in use (a NumPy array, a slice of the \
                     memoryview, or its .obj); release it (or copy the data) before reading again",
                ));
            }
            self.view_token = None;
        }
        Ok(())
    }
}

#[pymethods]
impl PyRing {
    /// Creates a ring with `capacity` data bytes (rounded up to a multiple of 8) at `path`.
    /// A bare name lives in /dev/shm. The largest message is `capacity - 8` bytes.
    #[classmethod]
    #[pyo3(signature = (path, capacity, *, mode = 0o600))]
    fn create(_cls: &Bound<'_, PyType>, path: PathBuf, capacity: i64, mode: u32) -> PyResult<Self> {
        let capacity = usize::try_from(capacity).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!("capacity must be positive, got {capacity}"))
        })?;
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
    /// passed; raises ValueError if the message is larger than `max_message_size`.
    #[pyo3(signature = (data, block = false, timeout = None))]
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        self.no_loan()?;
        let ring = self.ring()?;
        with_bytes(data, |b| -> PyResult<bool> {
            loop {
                if ring.try_write(b).map_err(ring_error)? {
                    return Ok(true);
                }
                let n = b.len();
                if !block || !wait_for(py, ring, deadline.get(), |r, t| r.wait_writable(n, t))? {
                    return Ok(false);
                }
            }
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
        &mut self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        self.no_loan()?;
        // Borrow every message (no copy). Writes run with the GIL held; waiting for room
        // releases it but touches no message, and an exporter cannot resize a buffer while we
        // hold its export; memoryviews are read again after each wait.
        let held = BorrowedBytes::new(messages)?;
        let ring = self.ring()?;
        let mut done = 0;
        loop {
            // Re-read after every wait (the GIL was released: a memoryview may be gone).
            let bufs = held.slices()?;
            done += ring.write_batch(&bufs[done..]).map_err(ring_error)?;
            if done == bufs.len() || !block {
                return Ok(done);
            }
            let n = bufs[done].len();
            drop(bufs);
            if !wait_for(py, ring, deadline.get(), |r, t| r.wait_writable(n, t))? {
                return Ok(done);
            }
        }
    }

    /// Reads one message as a new `bytes` (one copy). Returns None if the ring is empty
    /// (`block=False`) or the timeout passed.
    #[pyo3(signature = (block = false, timeout = None))]
    fn read(&mut self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<Py<PyBytes>>> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        self.release_view(py)?;
        let ring = self.ring()?;
        loop {
            if let Some(g) = ring.try_read().map_err(ring_error)? {
                return Ok(Some(PyBytes::new(py, &g).unbind()));
            }
            if !block || !wait_for(py, ring, deadline.get(), |r, t| r.wait_readable(t))? {
                return Ok(None);
            }
        }
    }

    /// Reads one message into `buffer` (a writable, C-contiguous buffer: `bytearray`, NumPy
    /// array, writable memoryview) and returns its length, or None if the ring is empty
    /// (`block=False`) or the timeout passed. No allocation: the copy for large messages that
    /// `read()` would put into a new `bytes`. A message larger than the buffer raises
    /// `mmapipc.BufferTooShort` with the message (taken from the ring) as `args[0]`.
    #[pyo3(signature = (buffer, block = false, timeout = None))]
    fn read_into(
        &mut self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<usize>> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        let dst = WritableBuffer::new(buffer)?;
        self.release_view(py)?;
        let ring = self.ring()?;
        loop {
            if let Some(g) = ring.try_read().map_err(ring_error)? {
                let room = dst.raw();
                if g.len() > room.1 {
                    return Err(buffer_too_short(py, &g, room.1));
                }
                // SAFETY: `dst` is held and the GIL too; the message fits (checked above).
                unsafe { copy_to_raw(&g, room) };
                return Ok(Some(g.len()));
            }
            if !block || !wait_for(py, ring, deadline.get(), |r, t| r.wait_readable(t))? {
                return Ok(None);
            }
        }
    }

    /// Reserves a slot of `size` bytes and returns a writable memoryview of it, to fill in place
    /// (e.g. `numpy.frombuffer(view, dtype)[...] = frame`); then `commit()` publishes it as one
    /// message, or `abort()` drops it. While a slot is loaned this handle makes no other write.
    /// None if the ring is full (`block=False`) or the timeout passed.
    #[pyo3(signature = (size, block = false, timeout = None))]
    fn loan<'py>(
        &mut self,
        py: Python<'py>,
        size: usize,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
        let deadline = timeout_arg(timeout)?;
        self.no_loan()?;
        let ring = self.ring()?;
        let slot = match ring.loan_detached_timeout(size, Some(Duration::ZERO)).map_err(ring_error)? {
            Some(s) => s,
            None if !block => return Ok(None),
            None => {
                let mut deadline = LazyDeadline::new(deadline);
                loop {
                    if !wait_for(py, ring, deadline.get(), |r, t| r.wait_writable(size, t))? {
                        return Ok(None);
                    }
                    if let Some(s) = ring.loan_detached_timeout(size, Some(Duration::ZERO)).map_err(ring_error)? {
                        break s;
                    }
                }
            }
        };
        let token = Arc::new(ViewToken { _mem: slot.mem.clone() });
        let weak = Arc::downgrade(&token);
        let owner: Owner = token;
        // SAFETY: the slot (size bytes at as_ptr) is reserved for this producer and unpublished;
        // this handle makes no other write while the loan is out (no_loan), and commit/abort
        // release the memoryview first; the mapping lives as long as `owner`.
        let buf = unsafe { SharedBuffer::new(owner, slot.as_ptr(), slot.len(), false) };
        let mv = buf.memoryview(py)?;
        self.loan = Some((slot, mv.clone().unbind(), weak));
        Ok(Some(mv))
    }

    /// Publishes the loaned slot as one message. Raises BufferError (and keeps the loan) if an
    /// array made from the slot's memoryview is still alive; ValueError if nothing is loaned.
    fn commit(&mut self, py: Python<'_>) -> PyResult<()> {
        let slot = self.take_loan(py)?.ok_or_else(|| pyo3::exceptions::PyValueError::new_err("no slot is loaned"))?;
        self.ring()?.commit_detached(slot).map_err(ring_error)
    }

    /// Drops the loaned slot without publishing anything (no-op if nothing is loaned).
    fn abort(&mut self, py: Python<'_>) -> PyResult<()> {
        self.take_loan(py)?;
        Ok(())
    }

    /// Reads one message without copying: a read-only memoryview into the ring, valid until the
    /// next consumer call on this handle (see the class docs). None if empty / timed out.
    #[pyo3(signature = (block = false, timeout = None))]
    fn read_view<'py>(
        &mut self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        self.release_view(py)?;
        let ring = self.ring()?;
        let detached = loop {
            if let Some(g) = ring.try_read().map_err(ring_error)? {
                break g.detach();
            }
            if !block || !wait_for(py, ring, deadline.get(), |r, t| r.wait_readable(t))? {
                return Ok(None);
            }
        };
        let token = Arc::new(ViewToken { _mem: detached.mem.clone() });
        let weak = Arc::downgrade(&token);
        let owner: Owner = token;
        // SAFETY: the record stays held (not released to the producer) until this handle's next
        // consumer call, which releases the memoryview first; the mapping lives as long as
        // `owner`. The view is read-only.
        let buf = unsafe { SharedBuffer::new(owner, detached.as_ptr(), detached.len(), true) };
        let mv = buf.memoryview(py)?;
        self.view = Some(mv.clone().unbind());
        self.view_token = Some(weak);
        Ok(Some(mv))
    }

    /// Reads up to `max_count` consecutive messages of exactly `size` bytes each, in place: returns
    /// `(view, count, stride)` where `view` is a read-only memoryview from the first payload to the
    /// end of the last, and payload `i` starts at `i * stride` (so NumPy can view the batch as one
    /// strided array of records). The run stops at the ring's wrap, so a batch may be shorter than
    /// what is available. Held like `read_view`: valid until the next read on this handle.
    /// None if nothing arrived (non-blocking, or timed out). A message of another size raises.
    #[pyo3(signature = (max_count, size, block = false, timeout = None))]
    fn read_fixed_batch<'py>(
        &mut self,
        py: Python<'py>,
        max_count: usize,
        size: usize,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<(Bound<'py, PyMemoryView>, usize, usize)>> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        self.release_view(py)?;
        if max_count == 0 {
            return Ok(None);
        }
        let ring = self.ring()?;
        let batch = loop {
            if let Some(b) = ring.read_fixed_batch_detached(max_count, size).map_err(ring_error)? {
                break b;
            }
            if !block || !wait_for(py, ring, deadline.get(), |r, t| r.wait_readable(t))? {
                return Ok(None);
            }
        };
        let token = Arc::new(ViewToken { _mem: batch.mem.clone() });
        let weak = Arc::downgrade(&token);
        let owner: Owner = token;
        // SAFETY: the records stay held (not released to the producer) until this handle's next
        // consumer call, which releases the memoryview first; `span` bytes from `as_ptr` are the
        // contiguous run of held records; the mapping lives as long as `owner`. Read-only.
        let buf = unsafe { SharedBuffer::new(owner, batch.as_ptr(), batch.span(), true) };
        let mv = buf.memoryview(py)?;
        self.view = Some(mv.clone().unbind());
        self.view_token = Some(weak);
        Ok(Some((mv, batch.count(), batch.stride())))
    }

    /// Reads up to `max_count` messages as `bytes`, releasing them with one publication.
    /// With `block=True`, waits (up to `timeout`) for at least one.
    #[pyo3(signature = (max_count, block = false, timeout = None))]
    fn read_batch(
        &mut self,
        py: Python<'_>,
        max_count: usize,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Vec<Py<PyBytes>>> {
        let mut deadline = LazyDeadline::new(timeout_arg(timeout)?);
        self.release_view(py)?;
        let ring = self.ring()?;
        let mut out = Vec::with_capacity(max_count.min(256));
        loop {
            ring.read_batch(max_count, |m| out.push(PyBytes::new(py, m).unbind())).map_err(ring_error)?;
            if !out.is_empty()
                || max_count == 0
                || !block
                || !wait_for(py, ring, deadline.get(), |r, t| r.wait_readable(t))?
            {
                return Ok(out);
            }
        }
    }

    /// Free bytes in the ring (a message of n bytes takes n + 8 rounded up to 8, and at the wrap
    /// also the rest of the buffer).
    fn available_write(&self) -> PyResult<usize> {
        Ok(self.ring_ref()?.available_write())
    }

    /// Bytes waiting to be read (record headers and padding included); 0 when empty.
    fn available_read(&self) -> PyResult<usize> {
        Ok(self.ring_ref()?.available_read())
    }

    /// Discards every message written so far. Performed as the consumer: raises AlreadyAttached
    /// if another live process is the consumer. Safe while the producer writes.
    fn clear(&mut self, py: Python<'_>) -> PyResult<()> {
        self.release_view(py)?;
        self.ring()?.clear().map_err(ring_error)
    }

    /// Data-area size in bytes.
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        Ok(self.ring_ref()?.capacity())
    }

    /// Largest message, in bytes (`capacity - 8`).
    #[getter]
    fn max_message_size(&self) -> PyResult<usize> {
        Ok(self.ring_ref()?.max_message_size())
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Releases the last `read_view` and this handle's roles and mapping. Raises BufferError
    /// (and stays open) if an array still exports the last view. Calling it twice is harmless.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.release_view(py)?;
        self.take_loan(py)?;
        self.inner = None;
        Ok(())
    }

    /// Removes the file. Handles (here and elsewhere) stay usable until closed.
    fn unlink(&self) -> PyResult<()> {
        mmapipc::region::unlink(&self.path).map_err(open_error)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Messages waiting to be read.
    fn __len__(&self) -> PyResult<usize> {
        Ok(self.ring_ref()?.len())
    }

    fn __repr__(&self) -> String {
        let path = self.path.display().to_string();
        match &self.inner {
            Some(r) => format!(
                "SharedMemoryRing(path={path:?}, capacity={}, pending={} messages/{} bytes)",
                r.capacity(),
                r.len(),
                r.available_read()
            ),
            None => format!("SharedMemoryRing(path={path:?}, closed)"),
        }
    }

    /// Pickles by path: unpickling opens the same file (for `multiprocessing` under spawn).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let open = slf.get_type().getattr("open")?;
        Ok((open, (slf.borrow().path(),)))
    }
}
