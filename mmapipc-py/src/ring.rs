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
//! `capacity`, ...) take no side. Non-blocking calls keep the GIL (they take well under a
//! microsecond); blocking calls try once, then wait with the GIL released, in slices, so other
//! threads run and Ctrl-C raises `KeyboardInterrupt` ([`crate::blocking`]). `close()` from
//! another thread wakes blocked calls on the handle at once; they raise `ValueError`.
//!
//! `fork` while a thread is in a call: the child's copy works; the side that thread held is
//! free in the child, and its role is still the parent's (so the child gets `AlreadyAttached`
//! for that role while the parent's call lasts).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use mmapipc::ring::DetachedSlot;
use mmapipc::wait::Deadline;
use mmapipc::{Ring, RingError};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyTuple, PyType};

use crate::blocking::{block_on, timeout_arg};
use crate::buffer::{copy_to_raw, with_bytes, BorrowedBytes, Owner, SharedBuffer, WritableBuffer};
use crate::errors::{buffer_too_short, closed, open_error, ring_error};
use crate::sync::{Shared, SideLock};

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
/// view, its `.obj`), that call raises `BufferError` and does nothing: the slot stays held until
/// those are gone (drop or copy them first). A handle that is garbage-collected (not closed)
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
    info: Shared<Ring>,
    /// Set by `close`: blocked calls stop waiting and raise.
    stop: AtomicBool,
    prod: SideLock<Producer>,
    /// In an Arc: a read view's owner tells it when the view is gone (see [`ViewToken`]).
    cons: Arc<SideLock<Consumer>>,
}

/// The producer side: its ring handle (`None` once closed) and an outstanding `loan()`.
struct Producer {
    ring: Option<Ring>,
    /// The reserved slot, its writable memoryview and the token that tells whether anything
    /// still exports that view.
    loan: Option<(DetachedSlot, Py<PyMemoryView>, Weak<ViewToken>)>,
}

/// The consumer side: its ring handle (`None` once closed) and the last read view.
struct Consumer {
    ring: Option<Ring>,
    view: Option<Py<PyMemoryView>>,
    /// Alive while any exported buffer of the last `read_view` is alive (the SharedBuffer owns
    /// the only strong reference).
    view_token: Option<Weak<ViewToken>>,
}

/// The owner of a `read_view` or `loan` buffer: keeps the mapping alive, and tells (through a
/// `Weak`) whether any consumer of the buffer still exists. A read view's token, when the last
/// export goes, releases the held record and the consumer role if the side is free.
struct ViewToken {
    _mem: Arc<mmapipc::ring::RingMemory>,
    side: Option<Weak<SideLock<Consumer>>>,
}

impl Drop for ViewToken {
    fn drop(&mut self) {
        let Some(side) = self.side.take().and_then(|w| w.upgrade()) else { return };
        let me: *const ViewToken = self;
        // The last export of a buffer goes in its deallocation, with the GIL held.
        Python::with_gil(|py| {
            // Busy (a call in progress, maybe the one releasing this view): that call, or the
            // next one, releases the record.
            let Some(mut c) = side.try_lock(py) else { return };
            if c.view_token.as_ref().is_some_and(|w| w.as_ptr() == me) {
                c.view_token = None;
                if let Some(ring) = c.ring.as_mut() {
                    // A consumer operation releases the held record; then the role goes too.
                    if ring.claim_consumer().is_ok() {
                        ring.release_consumer();
                    }
                }
            }
        });
    }
}

/// A call's deadline, fixed on first use: non-blocking fast paths never read the clock.
struct LazyDeadline {
    timeout: Option<Duration>,
    at: Option<Deadline>,
}

impl LazyDeadline {
    /// The deadline of a call: `timeout` if it may block, none (passed at once) otherwise.
    fn new(block: bool, timeout: Option<Duration>) -> LazyDeadline {
        LazyDeadline { timeout: if block { timeout } else { Some(Duration::ZERO) }, at: None }
    }

    fn get(&mut self) -> Deadline {
        let t = self.timeout;
        *self.at.get_or_insert_with(|| Deadline::after(t))
    }
}

/// Waits with the GIL released until `wait` says the ring can make progress, or `deadline`.
/// `ValueError` if the handle was closed meanwhile (`wait` returns early then: it gets `stop`).
fn wait_for(
    py: Python<'_>,
    ring: &mut Ring,
    deadline: Deadline,
    stop: &AtomicBool,
    mut wait: impl FnMut(&mut Ring, Option<Duration>, &AtomicBool) -> Result<bool, RingError> + Send,
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
        |slice| wait(ring, Some(slice), stop).map(|ready| ready.then_some(())),
    )?;
    // SeqCst: pairs with close()'s store (the wait's own check is SeqCst too).
    if stop.load(Ordering::SeqCst) {
        return Err(closed(NAME));
    }
    match r {
        Ok(Some(())) => Ok(true),
        Ok(None) => Ok(false),
        Err(e) => Err(ring_error(e)),
    }
}

/// The side's ring handle, or `ValueError` once closed.
fn side_ring(ring: &mut Option<Ring>) -> PyResult<&mut Ring> {
    ring.as_mut().ok_or_else(|| closed(NAME))
}

impl Producer {
    fn no_loan(&self) -> PyResult<()> {
        if self.loan.is_some() {
            return Err(PyValueError::new_err(
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
}

impl Consumer {
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

    /// Keeps `view` (over the held record(s) of `detached`) as this side's last view.
    fn hold_view<'py>(
        &mut self,
        py: Python<'py>,
        side: &Arc<SideLock<Consumer>>,
        mem: &Arc<mmapipc::ring::RingMemory>,
        ptr: *mut u8,
        len: usize,
    ) -> PyResult<Bound<'py, PyMemoryView>> {
        let token = Arc::new(ViewToken { _mem: mem.clone(), side: Some(Arc::downgrade(side)) });
        let weak = Arc::downgrade(&token);
        let owner: Owner = token;
        // SAFETY: the record(s) at ptr..ptr+len stay held (not released to the producer) until
        // the view's last export goes (the token then releases them) or this side's next
        // consumer call, which releases the memoryview first; the mapping lives as long as
        // `owner`. The view is read-only.
        let buf = unsafe { SharedBuffer::new(owner, ptr, len, true) };
        let mv = buf.memoryview(py)?;
        self.view = Some(mv.clone().unbind());
        self.view_token = Some(weak);
        Ok(mv)
    }
}

impl PyRing {
    fn new(ring: Ring) -> PyRing {
        let path = ring.path().map(|p| p.to_path_buf()).unwrap_or_default();
        let prod = Producer { ring: Some(ring.new_handle()), loan: None };
        let cons = Consumer { ring: Some(ring.new_handle()), view: None, view_token: None };
        PyRing {
            path,
            info: Shared::new(ring, NAME),
            stop: AtomicBool::new(false),
            prod: SideLock::new(prod),
            cons: Arc::new(SideLock::new(cons)),
        }
    }

    /// Runs `f` as the producer: takes the producer side (waiting for it within `deadline`;
    /// `busy` if that passes), claims the role, runs `f`, and gives the role back unless a loan
    /// is out.
    fn as_producer<R>(
        &self,
        py: Python<'_>,
        deadline: &mut LazyDeadline,
        busy: R,
        f: impl FnOnce(&mut Producer, &mut LazyDeadline) -> PyResult<R>,
    ) -> PyResult<R> {
        let Some(mut side) = self.prod.lock(py, || deadline.get())? else { return Ok(busy) };
        let p: &mut Producer = &mut side;
        let r = match side_ring(&mut p.ring).and_then(|r| r.claim_producer().map_err(ring_error)) {
            Ok(()) => f(p, deadline),
            Err(e) => Err(e),
        };
        let mut r = r;
        if p.loan.is_none() {
            if let Some(ring) = p.ring.as_mut() {
                ring.release_producer();
            }
        }
        // SeqCst: pairs with close()'s store (see wait_for).
        if self.stop.load(Ordering::SeqCst) {
            // close() ran while this call let the GIL go: end as close() would. A loan made by
            // this call is taken back first (its memoryview released), so nobody writes into a
            // slot the ring no longer reserves; if an array already exports it, everything is
            // kept until the handle is garbage-collected.
            let had_loan = p.loan.is_some();
            if p.take_loan(py).is_ok() {
                p.ring = None;
                if had_loan {
                    r = Err(closed(NAME));
                }
            }
        }
        r
    }

    /// Runs `f` as the consumer, as [`as_producer`](Self::as_producer) does: releases the last
    /// view first, and keeps the role if `f` leaves a view out.
    fn as_consumer<R>(
        &self,
        py: Python<'_>,
        deadline: &mut LazyDeadline,
        busy: R,
        f: impl FnOnce(&mut Consumer, &mut LazyDeadline) -> PyResult<R>,
    ) -> PyResult<R> {
        let Some(mut side) = self.cons.lock(py, || deadline.get())? else { return Ok(busy) };
        let c: &mut Consumer = &mut side;
        let r = c.release_view(py).and_then(|()| {
            side_ring(&mut c.ring)?.claim_consumer().map_err(ring_error)?;
            f(c, deadline)
        });
        let mut r = r;
        if c.view_token.is_none() {
            if let Some(ring) = c.ring.as_mut() {
                ring.release_consumer();
            }
        }
        // SeqCst: pairs with close()'s store (see wait_for).
        if self.stop.load(Ordering::SeqCst) {
            // close() ran while this call let the GIL go: end as close() would. A view this
            // call made is released first (its record is then delivered again to the next
            // consumer: dropping the ring leaves it unread); if an array already exports it,
            // everything is kept until the handle is garbage-collected.
            let had_view = c.view_token.is_some();
            if c.release_view(py).is_ok() {
                c.ring = None;
                if had_view {
                    r = Err(closed(NAME));
                }
            }
        }
        r
    }
}

#[pymethods]
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        with_bytes(data, |b| {
            self.as_producer(py, &mut deadline, false, |p, deadline| {
                p.no_loan()?;
                let ring = side_ring(&mut p.ring)?;
                loop {
                    if ring.try_write(b).map_err(ring_error)? {
                        return Ok(true);
                    }
                    let n = b.len();
                    if !block
                        || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_writable_or_stop(n, t, s))?
                    {
                        return Ok(false);
                    }
                }
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        // Borrow every message (no copy) before taking the side: iterating may run Python code.
        // Writes run with the GIL held; waiting for room releases it but touches no message, and
        // an exporter cannot resize a buffer while we hold its export; memoryviews are read again
        // after each wait.
        let held = BorrowedBytes::new(messages)?;
        self.as_producer(py, &mut deadline, 0, |p, deadline| {
            p.no_loan()?;
            let ring = side_ring(&mut p.ring)?;
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
                if !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_writable_or_stop(n, t, s))? {
                    return Ok(done);
                }
            }
        })
    }

    /// Reads one message as a new `bytes` (one copy). Returns None if the ring is empty
    /// (`block=False`) or the timeout passed.
    #[pyo3(signature = (block = false, timeout = None))]
    fn read(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<Py<PyBytes>>> {
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        self.as_consumer(py, &mut deadline, None, |c, deadline| {
            let ring = side_ring(&mut c.ring)?;
            loop {
                if let Some(g) = ring.try_read().map_err(ring_error)? {
                    return Ok(Some(PyBytes::new(py, &g).unbind()));
                }
                if !block || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_readable_or_stop(t, s))? {
                    return Ok(None);
                }
            }
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        let dst = WritableBuffer::new(buffer)?;
        self.as_consumer(py, &mut deadline, None, |c, deadline| {
            let ring = side_ring(&mut c.ring)?;
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
                if !block || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_readable_or_stop(t, s))? {
                    return Ok(None);
                }
            }
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        self.as_producer(py, &mut deadline, None, |p, deadline| {
            p.no_loan()?;
            let ring = side_ring(&mut p.ring)?;
            let slot = loop {
                if let Some(s) = ring.loan_detached_timeout(size, Some(Duration::ZERO)).map_err(ring_error)? {
                    break s;
                }
                if !block
                    || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_writable_or_stop(size, t, s))?
                {
                    return Ok(None);
                }
            };
            let token = Arc::new(ViewToken { _mem: slot.mem.clone(), side: None });
            let weak = Arc::downgrade(&token);
            let owner: Owner = token;
            // SAFETY: the slot (size bytes at as_ptr) is reserved for this producer and
            // unpublished; this handle makes no other write while the loan is out (no_loan), and
            // commit/abort release the memoryview first; the mapping lives as long as `owner`.
            let buf = unsafe { SharedBuffer::new(owner, slot.as_ptr(), slot.len(), false) };
            let mv = buf.memoryview(py)?;
            p.loan = Some((slot, mv.clone().unbind(), weak));
            Ok(Some(mv))
        })
    }

    /// Publishes the loaned slot as one message. Raises BufferError (and keeps the loan) if an
    /// array made from the slot's memoryview is still alive; ValueError if nothing is loaned.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.as_producer(py, &mut LazyDeadline::new(true, None), (), |p, _| {
            let slot = p.take_loan(py)?.ok_or_else(|| PyValueError::new_err("no slot is loaned"))?;
            side_ring(&mut p.ring)?.commit_detached(slot).map_err(ring_error)
        })
    }

    /// Drops the loaned slot without publishing anything (no-op if nothing is loaned).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.as_producer(py, &mut LazyDeadline::new(true, None), (), |p, _| p.take_loan(py).map(drop))
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        self.as_consumer(py, &mut deadline, None, |c, deadline| {
            let ring = side_ring(&mut c.ring)?;
            let detached = loop {
                if let Some(g) = ring.try_read().map_err(ring_error)? {
                    break g.detach();
                }
                if !block || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_readable_or_stop(t, s))? {
                    return Ok(None);
                }
            };
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        self.as_consumer(py, &mut deadline, None, |c, deadline| {
            if max_count == 0 {
                return Ok(None);
            }
            let ring = side_ring(&mut c.ring)?;
            let batch = loop {
                if let Some(b) = ring.read_fixed_batch_detached(max_count, size).map_err(ring_error)? {
                    break b;
                }
                if !block || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_readable_or_stop(t, s))? {
                    return Ok(None);
                }
            };
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
        let mut deadline = LazyDeadline::new(block, timeout_arg(timeout)?);
        self.as_consumer(py, &mut deadline, Vec::new(), |c, deadline| {
            let ring = side_ring(&mut c.ring)?;
            let mut out = Vec::with_capacity(max_count.min(256));
            loop {
                ring.read_batch(max_count, |m| out.push(PyBytes::new(py, m).unbind())).map_err(ring_error)?;
                if !out.is_empty()
                    || max_count == 0
                    || !block
                    || !wait_for(py, ring, deadline.get(), &self.stop, |r, t, s| r.wait_readable_or_stop(t, s))?
                {
                    return Ok(out);
                }
            }
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
        self.as_consumer(py, &mut LazyDeadline::new(true, None), (), |c, _| {
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

    /// The file's path.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        self.info.is_closed(py)
    }

    /// Releases the last `read_view`, an outstanding loan, this handle's roles and its mapping.
    /// Raises BufferError (and stays open) if an array still exports the last view or the loan.
    /// Calls blocked on this handle in other threads wake and raise ValueError. Calling it twice
    /// is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
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
        // SeqCst: pairs with the waits' check (see Ring::wake_waiters) and wait_for's.
        self.stop.store(true, Ordering::SeqCst);
        if cons.is_none() || prod.is_none() {
            if let Ok(info) = self.info.enter(py) {
                info.wake_waiters();
            }
        }
        self.info.close(py);
        if let Some(mut c) = cons {
            c.ring = None;
        }
        if let Some(mut p) = prod {
            p.ring = None;
        }
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
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Messages waiting to be read.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.info.enter(py)?.len())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let path = self.path.display().to_string();
        match self.info.enter(py) {
            Ok(r) => format!(
                "SharedMemoryRing(path={path:?}, capacity={}, pending={} messages/{} bytes)",
                r.capacity(),
                r.len(),
                r.available_read()
            ),
            Err(_) => format!("SharedMemoryRing(path={path:?}, closed)"),
        }
    }

    /// Pickles by path: unpickling opens the same file (for `multiprocessing` under spawn).
    /// A closed handle raises ValueError.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        if slf.get().info.is_closed(slf.py()) {
            return Err(closed(NAME));
        }
        let open = slf.get_type().getattr("open")?;
        Ok((open, (slf.get().path(),)))
    }
}
