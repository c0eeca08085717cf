//! `mmapipc.TopicSubscriber`: one subscriber of a topic (`SharedMemoryTopic.subscribe()`).
//!
//! Its core [`Subscriber`] lives behind a [`SideLock`] inside a [`Shared`] value: one receiving
//! call at a time, `close()` at any time (the slot is given back when the last call ends).
//! `recv_view` returns a read-only memoryview into the record, held (the publisher does not
//! overwrite it) until the next receiving call on this subscriber, which first releases the
//! memoryview (so using it afterwards raises `ValueError` instead of showing newer bytes), or
//! raises `BufferError` if something made from it (a NumPy array, a slice) is still alive.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use mmapipc::topic::Subscriber;
use mmapipc::wait::Watch;
use pyo3::exceptions::{PyBufferError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyMemoryView};

use crate::blocking::{retry, CallDeadline, Waited};
use crate::borrow::WritableBuffer;
use crate::buffer::export;
use crate::errors::{closed, topic_error};
use crate::handle::{handle_pymethods, Handle};
use crate::readiness::{Fds, Ready};
use crate::sync::{Shared, SideLock, Using};

const NAME: &str = "TopicSubscriber";

/// The subscriber, the memoryview of its last `recv_view` / `recv_fixed_batch`, and the token
/// that tells whether anything made from that view still exports its buffer.
pub(crate) struct SubSide {
    sub: Subscriber,
    view: Option<Py<PyMemoryView>>,
    token: Option<Weak<ViewToken>>,
}

/// The owner of an exported view's buffer: keeps the mapping alive; its `Weak` in [`SubSide`]
/// says whether a consumer of the buffer (a NumPy array, a slice) is still alive.
struct ViewToken {
    _mem: Arc<mmapipc::topic::TopicMemory>,
}

pub(crate) struct SubState {
    side: SideLock<SubSide>,
}

/// A subscriber of a `SharedMemoryTopic`: receives every message published after it started
/// (within a group: the messages the group gives it). Iterating blocks for the next message and
/// ends when the subscriber is closed. Close it (or use `with`) to free its slot.
#[pyclass(module = "mmapipc", name = "TopicSubscriber", frozen)]
pub struct PySubscriber {
    inner: Shared<SubState>,
    path: PathBuf,
    ready: Fds,
}

impl PySubscriber {
    pub fn new(sub: Subscriber, path: PathBuf) -> PySubscriber {
        PySubscriber {
            inner: Shared::new(SubState { side: SideLock::new(SubSide { sub, view: None, token: None }) }, NAME),
            path,
            ready: Default::default(),
        }
    }
}

impl Ready for PySubscriber {
    fn fds(&self) -> &Fds {
        &self.ready
    }

    /// The subscriber's readable watch, or `None` if another call holds it (that call may take
    /// what is ready: the caller retries).
    fn watch(&self, py: Python<'_>, writable: bool, _size: usize) -> PyResult<Option<Arc<dyn Watch>>> {
        if writable {
            return Err(PyTypeError::new_err("a TopicSubscriber has no writable side"));
        }
        let s = self.inner.enter(py)?;
        check_open(&s)?;
        Ok(s.side.try_lock(py).map(|side| side.sub.readable_watch()))
    }
}

fn check_open(s: &Using<'_, SubState>) -> PyResult<()> {
    if s.closing() {
        return Err(closed(NAME));
    }
    Ok(())
}

/// Releases the last view (`BufferError`, and the record stays held, if something made from
/// it is still alive).
fn release_view(py: Python<'_>, side: &mut SubSide) -> PyResult<()> {
    if let Some(v) = side.view.take() {
        if let Err(e) = v.bind(py).call_method0(pyo3::intern!(py, "release")) {
            side.view = Some(v);
            return Err(e);
        }
    }
    if side.token.as_ref().is_some_and(|w| w.strong_count() > 0) {
        return Err(PyBufferError::new_err(
            "something made from the last recv_view/recv_fixed_batch result (a NumPy array, a slice) is still \
             alive: its records stay held; drop it (copy what you keep) before the next receive",
        ));
    }
    side.token = None;
    Ok(())
}

/// Exports `len` bytes at `ptr` as a read-only memoryview whose owner is a fresh token, and
/// records the view and the token in `side`.
///
/// # Safety
/// The bytes stay held (unwritten) until `release_view` lets them go, and `mem` maps them.
unsafe fn export_held<'py>(
    py: Python<'py>,
    side: &mut SubSide,
    mem: Arc<mmapipc::topic::TopicMemory>,
    ptr: *const u8,
    len: usize,
) -> PyResult<Bound<'py, PyMemoryView>> {
    let token = Arc::new(ViewToken { _mem: mem });
    side.token = Some(Arc::downgrade(&token));
    // SAFETY: the caller's contract; the token keeps the mapping alive with the buffer.
    let mv = unsafe { export(py, token, ptr, len, true) }?;
    side.view = Some(mv.clone().unbind());
    Ok(mv)
}

impl PySubscriber {
    /// Runs a receiving call: `attempt` until it yields or the deadline passes, waiting for
    /// data with the GIL released in between.
    fn receive<T>(
        &self,
        py: Python<'_>,
        block: bool,
        timeout: Option<f64>,
        mut attempt: impl FnMut(&mut SubSide) -> PyResult<Option<T>>,
    ) -> PyResult<Option<T>> {
        let mut deadline = CallDeadline::from_args(block, timeout)?;
        let s = self.inner.enter(py)?;
        let Some(mut side) = s.side.lock(py, &mut deadline)? else { return Ok(None) };
        release_view(py, &mut side)?;
        let side: &mut SubSide = &mut side;
        // The wait needs only the subscriber (no Python object crosses into it).
        let side_ptr: *mut SubSide = side;
        let mut state = SendPtr(side_ptr);
        retry(
            py,
            &mut deadline,
            &mut state,
            || check_open(&s),
            // SAFETY: the pointer is `side`, exclusively borrowed for this call; attempt and
            // wait never run at once (retry calls them in turn).
            |p| attempt(unsafe { &mut *p.0 }),
            |p, slice| {
                // SAFETY: as above; only the Subscriber is touched here, without the GIL.
                let sub = unsafe { &mut (*p.0).sub };
                Ok(Waited::ready(sub.wait_readable(Some(slice)).map_err(topic_error)?))
            },
        )
    }
}

impl PySubscriber {
    /// `f` of the subscriber, waiting for a receiving call in progress to end.
    fn read_sub<T>(&self, py: Python<'_>, f: impl FnOnce(&Subscriber) -> T) -> PyResult<T> {
        let s = self.inner.enter(py)?;
        let mut deadline = CallDeadline::forever();
        let side = s.side.lock(py, &mut deadline)?.expect("an unbounded lock");
        Ok(f(&side.sub))
    }
}

/// A pointer to the call's side, carried into the GIL-free wait (see `receive`).
struct SendPtr(*mut SubSide);
// SAFETY: the wait touches only the `Subscriber` (Send) through it, while the calling thread
// blocks in `allow_threads`; nothing else reaches the side meanwhile (the side lock is held).
unsafe impl Send for SendPtr {}

impl Handle for PySubscriber {
    /// Releases the last view (an array made from it keeps the mapping alive but may then show
    /// newer bytes), then closes.
    fn shut(&self, py: Python<'_>) -> PyResult<()> {
        if let Ok(s) = self.inner.enter(py) {
            if let Some(mut side) = s.side.try_lock(py) {
                // Closing goes ahead even if an array made from the last view is alive (it
                // keeps the mapping, and may then show newer bytes).
                let _ = release_view(py, &mut side);
            }
        }
        self.inner.close(py);
        self.ready.close();
        Ok(())
    }

    /// A subscriber holds a slot of its own process: it cannot be pickled.
    fn picklable(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a TopicSubscriber belongs to the process that subscribed: pickle the SharedMemoryTopic and subscribe in the child",
        ))
    }

    fn describe(&self, py: Python<'_>) -> Option<String> {
        let s = self.inner.enter(py).ok()?;
        let fields = match s.side.try_lock(py) {
            Some(side) => format!("group={:?}, messages={}", side.sub.group_name(), side.sub.messages()),
            None => "busy".to_string(),
        };
        Some(fields)
    }
}

handle_pymethods! {
    parts(NAME, file: path, slot: inner, ready: ready);
    /// Frees this subscriber's slot (it stops holding the publisher back). A view from
    /// `recv_view` is released (an array made from it keeps the mapping alive but may then show
    /// newer bytes). Calls blocked on it in other threads raise ValueError within
    /// one wait slice. Calling it twice is harmless.
    fn close;
    impl PySubscriber {
        /// Receives one message (a new bytes), or None on timeout (or nothing new with
        /// block=False).
        #[pyo3(signature = (block = true, timeout = None))]
        fn recv<'py>(&self, py: Python<'py>, block: bool, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyBytes>>> {
            self.receive(py, block, timeout, |side| {
                Ok(side.sub.try_recv().map_err(topic_error)?.map(|m| PyBytes::new(py, &m)))
            })
        }

        /// Receives up to `max_count` messages that are ready (waiting, with block=True, up to
        /// `timeout` for the first), as a list of bytes; [] if none came.
        #[pyo3(signature = (max_count, block = true, timeout = None))]
        fn recv_batch<'py>(
            &self,
            py: Python<'py>,
            max_count: i64,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Bound<'py, PyList>> {
            let max = usize::try_from(max_count)
                .map_err(|_| PyValueError::new_err(format!("max_count must be non-negative, got {max_count}")))?;
            if max == 0 {
                return Ok(PyList::empty(py));
            }
            let got = self.receive(py, block, timeout, |side| {
                let mut got: Vec<Bound<'py, PyBytes>> = Vec::new();
                side.sub.recv_batch(max, |m| got.push(PyBytes::new(py, m))).map_err(topic_error)?;
                Ok((!got.is_empty()).then_some(got))
            })?;
            PyList::new(py, got.unwrap_or_default())
        }

        /// Receives one message in place: a read-only memoryview into its record, valid until the
        /// next receiving call on this subscriber (see the class docs). None on timeout. Only an
        /// exclusive subscriber of a block-mode topic gets views (elsewhere nothing would keep the
        /// publisher or another group member off the record): others raise `mmapipc.Error`.
        #[pyo3(signature = (block = true, timeout = None))]
        fn recv_view<'py>(
            &self,
            py: Python<'py>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
            self.receive(py, block, timeout, |side| {
                let Some(m) = side.sub.try_recv_view().map_err(topic_error)? else { return Ok(None) };
                let d = m.detach().expect("a view is in place");
                let (ptr, len, mem) = (d.as_ptr(), d.len(), d.mem.clone());
                // SAFETY: the record stays held (our cursor stays behind it, so the publisher does
                // not overwrite it) until the next receiving call releases this view (and finds
                // nothing made from it alive); `mem` maps it.
                Ok(Some(unsafe { export_held(py, side, mem, ptr, len) }?))
            })
        }

        /// Zero-copy run of fixed-size records: up to `max_count` messages of exactly `size` bytes
        /// that lie at equal distances, as `(view, count, stride)` (payload `i` at `i * stride` in
        /// the read-only `view`), held until the next receiving call on this subscriber (which
        /// releases the view first). None on timeout. Exclusive subscribers of a block-mode topic
        /// only (`mmapipc.Error` otherwise); a first message of another size is received, discarded
        /// and raises `mmapipc.CorruptMessage`.
        #[pyo3(signature = (max_count, size, block = true, timeout = None))]
        fn recv_fixed_batch<'py>(
            &self,
            py: Python<'py>,
            max_count: i64,
            size: usize,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<(Bound<'py, PyMemoryView>, usize, usize)>> {
            let max = usize::try_from(max_count)
                .map_err(|_| PyValueError::new_err(format!("max_count must be non-negative, got {max_count}")))?;
            if max == 0 {
                return Ok(None);
            }
            self.receive(py, block, timeout, |side| {
                let Some(run) = side.sub.try_recv_fixed_batch(max, size).map_err(topic_error)? else { return Ok(None) };
                let (ptr, span, count, stride) = (run.as_ptr(), run.span(), run.count(), run.stride());
                // SAFETY: the run stays held (our cursor stays at its first record) until the next
                // receiving call releases this view (as for recv_view); `run.mem` maps it.
                let mv = unsafe { export_held(py, side, run.mem.clone(), ptr, span) }?;
                Ok(Some((mv, count, stride)))
            })
        }

        /// Receives one message into `buffer` (writable, C-contiguous); returns its length, or
        /// None on timeout. A message larger than the buffer raises `mmapipc.BufferTooShort` with
        /// the message as `args[0]` (it is received).
        #[pyo3(signature = (buffer, block = true, timeout = None))]
        fn recv_into(
            &self,
            py: Python<'_>,
            buffer: &Bound<'_, PyAny>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<Option<usize>> {
            let dst = WritableBuffer::new(buffer)?;
            self.receive(py, block, timeout, |side| {
                side.sub.try_recv().map_err(topic_error)?.map(|m| dst.copy_message(&m)).transpose()
            })
        }

        /// Messages published and not yet received by this subscriber (by its group, for a member).
        #[getter]
        fn lag(&self, py: Python<'_>) -> PyResult<u64> {
            self.read_sub(py, Subscriber::lag)
        }

        /// Messages lost to overwrite since this subscriber started (its group's, for a member).
        #[getter]
        fn dropped(&self, py: Python<'_>) -> PyResult<u64> {
            self.read_sub(py, Subscriber::dropped)
        }

        /// Messages received by this subscriber.
        #[getter]
        fn messages(&self, py: Python<'_>) -> PyResult<u64> {
            self.read_sub(py, Subscriber::messages)
        }

        /// The group's name, or None for an exclusive subscriber.
        #[getter]
        fn group(&self, py: Python<'_>) -> PyResult<Option<String>> {
            self.read_sub(py, Subscriber::group_name)
        }

        fn __iter__(slf: Py<Self>) -> Py<Self> {
            slf
        }

        /// The next message (blocking); the iteration ends when the subscriber is closed.
        fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
            if self.inner.is_closed(py) {
                return Err(PyStopIteration::new_err(()));
            }
            match self.recv(py, true, None) {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(PyStopIteration::new_err(())),
                Err(e) if self.inner.is_closed(py) && e.is_instance_of::<PyValueError>(py) => {
                    Err(PyStopIteration::new_err(()))
                }
                Err(e) => Err(e),
            }
        }
    }
}
