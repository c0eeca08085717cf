//! Readiness descriptors of ring, queue and topic handles (a topic subscriber's readable side,
//! a topic's publisher's writable side), for event loops (`mmapipc._aio`).
//!
//! Each handle owns an [`Fds`]: two [`Notifier`]s (readable: a message may be there; writable:
//! room for a message of a given size) whose eventfds the module functions in `aio.rs` expose,
//! and implements [`Ready`] in its own file. The await logic (try the non-blocking call, arm,
//! `loop.add_reader`, retry) is Python, in `mmapipc/_aio.py`, which also attaches `fileno()` and
//! the `*_async` methods to the classes.
//!
//! `close()` disarms both and signals them: an await in progress wakes, retries, and gets the
//! closed handle's `ValueError`.

use std::sync::Arc;

use mmapipc::wait::{Notifier, Watch};
use pyo3::prelude::*;

/// A handle's two notifiers.
#[derive(Default)]
pub struct Fds {
    read: Notifier,
    write: Notifier,
}

impl Fds {
    /// The notifier of the readable side (or, `writable`, of the writable one).
    pub fn side(&self, writable: bool) -> &Notifier {
        if writable {
            &self.write
        } else {
            &self.read
        }
    }

    /// For `close()`: nothing stays registered, and anyone waiting on a descriptor wakes.
    pub fn close(&self) {
        for n in [&self.read, &self.write] {
            n.disarm();
            n.signal();
        }
    }
}

/// A handle class with readiness descriptors.
pub trait Ready {
    /// The handle's notifiers.
    fn fds(&self) -> &Fds;

    /// The watch of the side asked for (`size`: the message to write); `TypeError` for a side
    /// the class does not have. `None`: another call holds the side (it may take what is
    /// ready; the caller retries at once).
    fn watch(&self, py: Python<'_>, writable: bool, size: usize) -> PyResult<Option<Arc<dyn Watch>>>;
}
