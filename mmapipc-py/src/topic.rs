//! `mmapipc.SharedMemoryTopic`: publish-subscribe over the core's `mmapipc::Topic`.
//!
//! A topic handle publishes (it claims the topic's one publisher role at its first `publish`
//! and keeps it until `close()`; another live handle or process then gets `AlreadyAttached`)
//! and makes subscribers (`subscribe()`, a [`PySubscriber`] in `topic/subscriber.rs`), each of
//! which holds one slot of the topic's subscriber table until it is closed.
//!
//! Threads and `close()`: as for the queue, the state is a [`Shared`] value (calls count in and
//! out; `close()` drops it once no call uses it); the publisher is behind a [`SideLock`] held for
//! a whole publishing call. Non-blocking calls keep the GIL; blocking ones wait in slices with the
//! GIL released ([`crate::blocking::retry`]), so Ctrl-C and `close()` are noticed within one.
//! After `fork`, the child's handle claims the publisher role anew at its next `publish`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmapipc::topic::{Overflow, Publisher, Start, Topic, TopicOptions};
use mmapipc::wait::Watch;
use mmapipc::CreateOptions;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use crate::blocking::{retry, CallDeadline, Waited};
use crate::borrow::{with_bytes, BorrowedBytes};
use crate::errors::{closed, open_error, topic_error};
use crate::handle::{handle_pymethods, Handle};
use crate::readiness::{Fds, Ready};
use crate::sync::{generation, Shared, SideLock, Using};

mod subscriber;

pub use subscriber::PySubscriber;

const NAME: &str = "SharedMemoryTopic";

/// The topic and this handle's publisher (claimed at the first publish, in generation `.0`).
pub(crate) struct TopicState {
    pub(crate) topic: Topic,
    publisher: SideLock<Option<(u64, Publisher)>>,
}

/// A publish-subscribe topic in shared memory: one publisher, many subscribers, each of which
/// sees every message published after it subscribed; consumer groups share one cursor.
#[pyclass(module = "mmapipc", name = "SharedMemoryTopic", frozen)]
pub struct PyTopic {
    inner: Shared<TopicState>,
    path: PathBuf,
    ready: Fds,
}

impl PyTopic {
    fn new(topic: Topic) -> PyTopic {
        let path = topic.path().map(Path::to_path_buf).unwrap_or_default();
        PyTopic {
            inner: Shared::new(TopicState { topic, publisher: SideLock::new(None) }, NAME),
            path,
            ready: Default::default(),
        }
    }

    fn state<'a>(&'a self, py: Python<'a>) -> PyResult<Using<'a, TopicState>> {
        self.inner.enter(py)
    }
}

fn overflow_arg(s: &str) -> PyResult<Overflow> {
    match s {
        "block" => Ok(Overflow::Block),
        "overwrite" => Ok(Overflow::Overwrite),
        other => Err(PyValueError::new_err(format!("overflow must be 'block' or 'overwrite', got {other:?}"))),
    }
}

pub(crate) fn start_arg(s: &str) -> PyResult<Start> {
    match s {
        "latest" => Ok(Start::Latest),
        "oldest" => Ok(Start::Oldest),
        other => Err(PyValueError::new_err(format!("start must be 'latest' or 'oldest', got {other:?}"))),
    }
}

fn check_open(s: &Using<'_, TopicState>) -> PyResult<()> {
    if s.closing() {
        return Err(closed(NAME));
    }
    Ok(())
}

/// This handle's publisher, claimed now if it holds none (or only its parent's, after fork).
fn claim<'a>(topic: &Topic, slot: &'a mut Option<(u64, Publisher)>) -> PyResult<&'a mut Publisher> {
    if slot.as_ref().is_none_or(|(g, _)| *g != generation()) {
        *slot = None; // an inherited publisher gives nothing back (it is the parent's)
        *slot = Some((generation(), topic.publisher().map_err(topic_error)?));
    }
    Ok(&mut slot.as_mut().expect("claimed above").1)
}

impl Ready for PyTopic {
    fn fds(&self) -> &Fds {
        &self.ready
    }

    /// The publisher's "room for `size` bytes" watch (claiming the role if this handle holds
    /// none), or `None` if another call holds the publisher (the caller retries).
    fn watch(&self, py: Python<'_>, writable: bool, size: usize) -> PyResult<Option<Arc<dyn Watch>>> {
        if !writable {
            return Err(PyTypeError::new_err("a SharedMemoryTopic has no readable side (subscribe to read)"));
        }
        let s = self.state(py)?;
        check_open(&s)?;
        let Some(mut slot) = s.publisher.try_lock(py) else { return Ok(None) };
        let p = claim(&s.topic, &mut slot)?;
        p.writable_watch(size).map(Some).map_err(topic_error)
    }
}

impl Handle for PyTopic {
    fn describe(&self, py: Python<'_>) -> Option<String> {
        let s = self.inner.enter(py).ok()?;
        let o = match s.topic.overflow() {
            Overflow::Block => "block",
            Overflow::Overwrite => "overwrite",
        };
        Some(format!(
            "capacity={}, max_subscribers={}, overflow={o:?}, subscribers={}",
            s.topic.capacity(),
            s.topic.max_subscribers(),
            s.topic.stats().subscribers
        ))
    }
}

handle_pymethods! {
    parts(NAME, file: path, slot: inner, ready: ready);
    /// Releases this handle and the publisher role it holds. Subscribers made from it stay
    /// usable until they are closed. Calling it twice is harmless.
    fn close;
    impl PyTopic {
        /// Creates a topic whose data area holds `capacity` bytes, with room for
        /// `max_subscribers` subscribers at once. `overflow="block"`: the publisher waits for the
        /// slowest live subscriber; `"overwrite"`: it never waits, and a lapped subscriber skips
        /// ahead and counts what it lost in `dropped`. A bare name lives in /dev/shm.
        #[classmethod]
        #[pyo3(signature = (path, capacity, *, max_subscribers = 16, overflow = "block", mode = 0o600))]
        fn create(
            _cls: &Bound<'_, PyType>,
            path: PathBuf,
            capacity: i64,
            max_subscribers: i64,
            overflow: &str,
            mode: u32,
        ) -> PyResult<Self> {
            let cap = usize::try_from(capacity)
                .map_err(|_| PyValueError::new_err(format!("capacity must be positive, got {capacity}")))?;
            let subs = usize::try_from(max_subscribers)
                .map_err(|_| PyValueError::new_err(format!("max_subscribers must be positive, got {max_subscribers}")))?;
            let opts = TopicOptions { max_subscribers: subs, overflow: overflow_arg(overflow)?, create: CreateOptions { mode } };
            Ok(PyTopic::new(Topic::create_with(&path, cap, &opts).map_err(open_error)?))
        }

        /// Opens an existing topic.
        #[classmethod]
        #[pyo3(signature = (path, *, allow_foreign_owner = false))]
        fn open(_cls: &Bound<'_, PyType>, path: PathBuf, allow_foreign_owner: bool) -> PyResult<Self> {
            let opts = mmapipc::OpenOptions { allow_foreign_owner };
            Ok(PyTopic::new(Topic::open_with(&path, &opts).map_err(open_error)?))
        }

        /// Publishes one message (bytes or any C-contiguous buffer). Returns False if it did not
        /// fit in time (block mode only; never with block=True and no timeout). Raises ValueError
        /// if it can never fit, AlreadyAttached if another live handle publishes.
        #[pyo3(signature = (data, block = true, timeout = None))]
        fn publish(&self, py: Python<'_>, data: &Bound<'_, PyAny>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let s = self.state(py)?;
            let Some(mut slot) = s.publisher.lock(py, &mut deadline)? else { return Ok(false) };
            let p = claim(&s.topic, &mut slot)?;
            let may_wait = deadline.may_wait();
            with_bytes(data, |b| {
                let mut by_wait = false;
                let r = retry(
                    py,
                    &mut deadline,
                    &mut (&mut *p, &mut by_wait),
                    || check_open(&s),
                    |(p, by_wait)| {
                        // A call that may wait lets a frame go over the previous one (see
                        // `Publisher::try_publish_waiting`).
                        let done = **by_wait
                            || if may_wait { p.try_publish_waiting(b) } else { p.try_publish(b) }.map_err(topic_error)?;
                        Ok(done.then_some(()))
                    },
                    |(p, by_wait), slice| {
                        **by_wait = p.publish_timeout(b, Some(slice)).map_err(topic_error)?;
                        Ok(if **by_wait { Waited::Finished } else { Waited::Idle })
                    },
                )?;
                Ok(r.is_some())
            })?
        }

        /// Publishes many messages, one tail publication per burst; returns how many were
        /// published (all of them unless the timeout passed or block=False found no room).
        #[pyo3(signature = (messages, block = true, timeout = None))]
        fn publish_batch(
            &self,
            py: Python<'_>,
            messages: &Bound<'_, PyAny>,
            block: bool,
            timeout: Option<f64>,
        ) -> PyResult<usize> {
            let mut deadline = CallDeadline::from_args(block, timeout)?;
            let mut held = BorrowedBytes::new(messages)?;
            let s = self.state(py)?;
            let Some(mut slot) = s.publisher.lock(py, &mut deadline)? else { return Ok(0) };
            let p = claim(&s.topic, &mut slot)?;
            let refs = held.slices()?;
            let first = if deadline.may_wait() { p.try_publish_batch_waiting(&refs) } else { p.try_publish_batch(&refs) }
                .map_err(topic_error)?;
            if first == refs.len() || !deadline.may_wait() {
                return Ok(first);
            }
            drop(refs);
            // What is left is published by the waits, which release the GIL: every message is
            // held by a buffer request until the call returns, and read in place, never copied.
            held.pin()?;
            let mut left = (held.slices()?, first);
            let mut state = (&mut *p, &mut left);
            retry(
                py,
                &mut deadline,
                &mut state,
                || check_open(&s),
                |(_, left)| Ok((left.1 == left.0.len()).then_some(())),
                |(p, left), slice| {
                    left.1 += p.publish_batch(&left.0[left.1..], Some(slice)).map_err(topic_error)?;
                    Ok(if left.1 == left.0.len() { Waited::Finished } else { Waited::Idle })
                },
            )?;
            Ok(left.1)
        }

        /// A new subscriber (a context manager). `start="latest"`: messages published after this
        /// call returns; `"oldest"`: first every message still retained, then the live stream.
        /// `group="name"`: a member of that consumer group (each message goes to one member).
        #[pyo3(signature = (start = "latest", group = None))]
        fn subscribe(&self, py: Python<'_>, start: &str, group: Option<&str>) -> PyResult<PySubscriber> {
            let start = start_arg(start)?;
            let s = self.state(py)?;
            let sub = match group {
                None => s.topic.subscribe(start),
                Some(g) => s.topic.subscribe_group(g, start),
            }
            .map_err(topic_error)?;
            Ok(PySubscriber::new(sub, self.path.clone()))
        }

        /// Data-area size in bytes.
        #[getter]
        fn capacity(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.state(py)?.topic.capacity())
        }

        /// Largest message that fits.
        #[getter]
        fn max_message_size(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.state(py)?.topic.max_message_size())
        }

        /// Entries in the subscriber table.
        #[getter]
        fn max_subscribers(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.state(py)?.topic.max_subscribers())
        }

        /// "block" or "overwrite".
        #[getter]
        fn overflow(&self, py: Python<'_>) -> PyResult<&'static str> {
            Ok(match self.state(py)?.topic.overflow() {
                Overflow::Block => "block",
                Overflow::Overwrite => "overwrite",
            })
        }

        /// Counters (dict): msgs_in, bytes_in, full_waits, reclaimed (slots of dead
        /// subscribers reclaimed), subscribers (slots in use).
        fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let st = self.state(py)?.topic.stats();
            let d = PyDict::new(py);
            d.set_item("msgs_in", st.messages_in)?;
            d.set_item("bytes_in", st.bytes_in)?;
            d.set_item("full_waits", st.full_waits)?;
            d.set_item("reclaimed", st.reclaimed)?;
            d.set_item("subscribers", st.subscribers)?;
            Ok(d)
        }

        /// The subscriber table (list of dicts: slot, pid, alive, group, lag, messages, dropped).
        fn subscribers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
            let info = self.state(py)?.topic.inspect();
            let list = PyList::empty(py);
            for s in info.subscribers {
                let d = PyDict::new(py);
                d.set_item("slot", s.slot)?;
                d.set_item("pid", mmapipc::owner::pid(s.owner))?;
                d.set_item("alive", s.alive)?;
                d.set_item("group", s.group)?;
                d.set_item("lag", s.lag)?;
                d.set_item("messages", s.messages)?;
                d.set_item("dropped", s.dropped)?;
                list.append(d)?;
            }
            Ok(list)
        }
    }
}
