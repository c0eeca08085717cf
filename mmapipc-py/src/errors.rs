//! The one place where Rust errors become Python exceptions.
//!
//! | Rust | Python |
//! |------|--------|
//! | `OpenError::NotFound`, `DirectoryNotFound` | `FileNotFoundError` |
//! | `OpenError::AlreadyExists` | `FileExistsError` |
//! | `OpenError::PermissionDenied`, `ForeignOwner` | `PermissionError` |
//! | `OpenError::Symlink`, `NotRegularFile`, `NoSpace`, `Io` | `OSError` (with errno) |
//! | `OpenError::Empty`, `Truncated`, `BadMagic`, `CorruptHeader` | `mmapipc.CorruptHeader` |
//! | `OpenError::NotReady` | `mmapipc.NotReady` |
//! | `OpenError::UnsupportedVersion`, `AbiMismatch`, `WrongKind` | `mmapipc.IncompatibleLayout` |
//! | `OpenError::InvalidArgument` (an empty path too) | `ValueError` |
//! | `AccessError::OutOfBounds` | `IndexError` |
//! | `RingError::TooLarge` | `ValueError` |
//! | `RingError::AlreadyAttached` | `mmapipc.AlreadyAttached` |
//! | `RingError::Corrupt` | `mmapipc.CorruptHeader` |
//! | `RingError::WrongSize` | `mmapipc.CorruptMessage` |
//! | `QueueError::TooLarge` | `ValueError` |
//! | `QueueError::Corrupt` | `mmapipc.CorruptHeader` |
//! | `QueueError::WrongSize` | `mmapipc.CorruptMessage` |
//! | `TopicError::TooLarge`, `InvalidArgument` | `ValueError` |
//! | `TopicError::AlreadyAttached` | `mmapipc.AlreadyAttached` |
//! | `TopicError::Corrupt` | `mmapipc.CorruptHeader` |
//! | `TopicError::WrongSize` | `mmapipc.CorruptMessage` |
//! | `TopicError::TooManySubscribers`, `Unsupported`, `Inherited` | `mmapipc.Error` |
//!
//! The same condition maps to the same exception from either primitive: a channel whose shared
//! state (positions, record framing) is inconsistent is as broken as a bad header
//! (`CorruptHeader`); one bad message, taken and discarded, is `CorruptMessage`.
//! | a message larger than a `read_into`/`get_into` buffer | `mmapipc.BufferTooShort` (message in `args[0]`) |
//!
//! The library's own exception classes live in `mmapipc/errors.py` so they can use multiple
//! inheritance (e.g. `mmapipc.BufferTooShort` is also a `ValueError`). A timeout is no exception:
//! blocking calls return `False`, `None` or a short count when their time runs out.

use mmapipc::{AccessError, OpenError, QueueError, RingError};
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIndexError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::PyErr;

pyo3::import_exception!(mmapipc.errors, CorruptHeader);
pyo3::import_exception!(mmapipc.errors, NotReady);
pyo3::import_exception!(mmapipc.errors, IncompatibleLayout);
pyo3::import_exception!(mmapipc.errors, AlreadyAttached);
pyo3::import_exception!(mmapipc.errors, Error);
pyo3::import_exception!(mmapipc.errors, CorruptMessage);
pyo3::import_exception!(mmapipc.errors, BufferTooShort);

/// `mmapipc.BufferTooShort` carrying the whole message (taken from the channel) as `args[0]`,
/// as `multiprocessing`'s `recv_bytes_into` does.
pub fn buffer_too_short(py: pyo3::Python<'_>, message: &[u8], room: usize) -> PyErr {
    let bytes = pyo3::types::PyBytes::new(py, message).unbind();
    BufferTooShort::new_err((
        bytes,
        format!("a message of {} bytes does not fit a buffer of {room} bytes", message.len()),
    ))
}

fn os_error(errno: i32, msg: String, path: &std::path::Path) -> PyErr {
    PyOSError::new_err((errno, msg, path.display().to_string()))
}

/// Converts an [`OpenError`] into the matching Python exception.
pub fn open_error(e: OpenError) -> PyErr {
    let msg = e.to_string();
    match e {
        OpenError::NotFound { path } | OpenError::DirectoryNotFound { path, .. } => {
            PyFileNotFoundError::new_err((libc::ENOENT, msg, path.display().to_string()))
        }
        OpenError::AlreadyExists { path } => {
            PyFileExistsError::new_err((libc::EEXIST, msg, path.display().to_string()))
        }
        OpenError::PermissionDenied { path, .. } | OpenError::ForeignOwner { path, .. } => {
            PyPermissionError::new_err((libc::EACCES, msg, path.display().to_string()))
        }
        OpenError::Symlink { path } => os_error(libc::ELOOP, msg, &path),
        OpenError::NotRegularFile { path } => os_error(libc::EINVAL, msg, &path),
        OpenError::NoSpace { path, .. } => os_error(libc::ENOSPC, msg, &path),
        OpenError::Io { path, source, .. } => os_error(source.raw_os_error().unwrap_or(libc::EIO), msg, &path),
        OpenError::Empty { .. }
        | OpenError::Truncated { .. }
        | OpenError::BadMagic { .. }
        | OpenError::CorruptHeader { .. } => CorruptHeader::new_err(msg),
        OpenError::NotReady { .. } => NotReady::new_err(msg),
        OpenError::UnsupportedVersion { .. } | OpenError::AbiMismatch { .. } | OpenError::WrongKind { .. } => {
            IncompatibleLayout::new_err(msg)
        }
        OpenError::InvalidArgument(_) => PyValueError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// Converts an [`AccessError`] into the matching Python exception.
pub fn access_error(e: AccessError) -> PyErr {
    match e {
        AccessError::OutOfBounds { .. } => PyIndexError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// Converts a [`RingError`] into the matching Python exception.
pub fn ring_error(e: RingError) -> PyErr {
    let msg = e.to_string();
    match e {
        RingError::TooLarge { .. } => PyValueError::new_err(msg),
        RingError::AlreadyAttached { .. } => AlreadyAttached::new_err(msg),
        RingError::Corrupt { .. } => CorruptHeader::new_err(msg),
        RingError::WrongSize { .. } => CorruptMessage::new_err(msg),
        _ => Error::new_err(msg),
    }
}

/// Converts a [`QueueError`] into the matching Python exception.
pub fn queue_error(e: QueueError) -> PyErr {
    match e {
        QueueError::TooLarge { .. } => PyValueError::new_err(e.to_string()),
        QueueError::Corrupt { .. } => CorruptHeader::new_err(e.to_string()),
        QueueError::WrongSize { .. } => CorruptMessage::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// The `ValueError` every method raises on a closed handle ("handle is closed", as
/// `multiprocessing` says).
pub fn closed(what: &str) -> PyErr {
    PyValueError::new_err(format!("{what} handle is closed"))
}

/// Converts a [`TopicError`](mmapipc::TopicError) into the matching Python exception: the
/// ring's mapping for the shared conditions; a full subscriber table, a refused view and an
/// inherited handle are `mmapipc.Error` with the message saying which.
pub fn topic_error(e: mmapipc::TopicError) -> PyErr {
    use mmapipc::TopicError;
    let msg = e.to_string();
    match e {
        TopicError::TooLarge { .. } | TopicError::InvalidArgument(_) => PyValueError::new_err(msg),
        TopicError::AlreadyAttached { .. } => AlreadyAttached::new_err(msg),
        TopicError::Corrupt { .. } => CorruptHeader::new_err(msg),
        TopicError::WrongSize { .. } => CorruptMessage::new_err(msg),
        _ => Error::new_err(msg),
    }
}
