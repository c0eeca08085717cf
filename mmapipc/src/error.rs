//! Error types, one per operation family.
//!
//! * [`OpenError`]: creating or opening a shared-memory file (file system, header validation).
//! * [`AccessError`]: reading or writing a raw [`SharedMemory`](crate::SharedMemory) region.
//!
//! The ring's and the queue's errors live beside them: [`RingError`](crate::RingError) in
//! `ring/error.rs`, [`QueueError`](crate::QueueError) in `queue/error.rs`. The two have the same
//! variants for the same conditions (`TooLarge`, `Corrupt { reason }`, `WrongSize`), with
//! messages of the same shape.
//!
//! Every variant is a condition a caller can act on; `Display` is a human sentence naming the
//! file. Library code never panics on bad input: bad input is one of these.

use std::io;
use std::path::PathBuf;

use crate::kind::Kind;

/// Why a shared-memory file could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No file exists at the path.
    #[error("{}: no such shared-memory file", path.display())]
    NotFound {
        /// The resolved path.
        path: PathBuf,
    },
    /// `create` was given a path in a directory that does not exist.
    #[error("{}: cannot create it: directory {} does not exist", path.display(), dir.display())]
    DirectoryNotFound {
        /// The resolved path.
        path: PathBuf,
        /// Its directory, the one missing (or one of its parents).
        dir: PathBuf,
    },
    /// `create` found the path already taken (files are created with `O_EXCL`).
    #[error("{}: file already exists (create never reuses a path; unlink it first or use open)", path.display())]
    AlreadyExists {
        /// The resolved path.
        path: PathBuf,
    },
    /// The operating system refused access (file mode, directory permissions).
    #[error("{}: permission denied", path.display())]
    PermissionDenied {
        /// The resolved path.
        path: PathBuf,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
    /// The path is a symbolic link; mmapipc never follows one (`O_NOFOLLOW`).
    #[error("{}: is a symbolic link; refusing to follow it", path.display())]
    Symlink {
        /// The resolved path.
        path: PathBuf,
    },
    /// The path is not a regular file (a directory, a FIFO, a device).
    #[error("{}: not a regular file", path.display())]
    NotRegularFile {
        /// The resolved path.
        path: PathBuf,
    },
    /// The file belongs to another user and [`OpenOptions::allow_foreign_owner`](crate::OpenOptions::allow_foreign_owner) was not set.
    #[error("{}: owned by uid {owner}, not by this process (uid {ours}); set allow_foreign_owner to open it anyway", path.display())]
    ForeignOwner {
        /// The resolved path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        ours: u32,
    },
    /// The file has length zero (never initialised, or truncated to nothing).
    #[error("{}: file is empty, not an mmapipc file", path.display())]
    Empty {
        /// The resolved path.
        path: PathBuf,
    },
    /// The file is shorter than its header says it must be.
    #[error("{}: file is truncated: {actual} bytes, expected {expected}", path.display())]
    Truncated {
        /// The resolved path.
        path: PathBuf,
        /// Length found on disk.
        actual: u64,
        /// Length the header (or the minimum header size) requires.
        expected: u64,
    },
    /// The file does not start with the mmapipc magic bytes: it is not ours.
    #[error("{}: not an mmapipc file (bad magic)", path.display())]
    BadMagic {
        /// The resolved path.
        path: PathBuf,
    },
    /// The file's creator has not finished initialising it (or died while doing so).
    #[error("{}: file is not ready: its creator has not finished initialising it (or died doing so)", path.display())]
    NotReady {
        /// The resolved path.
        path: PathBuf,
    },
    /// The file was written by an incompatible version of the layout.
    #[error("{}: layout version {found} is not supported (this library reads version {supported})", path.display())]
    UnsupportedVersion {
        /// The resolved path.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this library implements.
        supported: u32,
    },
    /// The file was written on a machine with a different ABI (endianness, pointer width).
    #[error("{}: ABI flags {found:#x} differ from this process's {expected:#x} (endianness/pointer width)", path.display())]
    AbiMismatch {
        /// The resolved path.
        path: PathBuf,
        /// Flags in the file.
        found: u32,
        /// Flags of this build.
        expected: u32,
    },
    /// The file holds another kind of object (e.g. a queue opened as a ring).
    #[error("{}: file is a {found}, not a {expected}", path.display())]
    WrongKind {
        /// The resolved path.
        path: PathBuf,
        /// Kind in the file (`Kind::Unknown` for an unknown code).
        found: Kind,
        /// Kind the caller asked for.
        expected: Kind,
    },
    /// A header field is inconsistent (sizes, offsets or state out of range).
    #[error("{}: corrupt header: {reason}", path.display())]
    CorruptHeader {
        /// The resolved path.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// The file system has no room for the requested size (e.g. `/dev/shm` is full).
    #[error("{}: no space left to reserve {requested} bytes (is /dev/shm full?)", path.display())]
    NoSpace {
        /// The resolved path.
        path: PathBuf,
        /// Bytes the file needed.
        requested: u64,
    },
    /// An argument was out of range (size zero, size too large, bad mode).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another I/O error.
    #[error("{}: {op} failed: {source}", path.display())]
    Io {
        /// The resolved path.
        path: PathBuf,
        /// The system call or step that failed.
        op: &'static str,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
}

impl OpenError {
    /// Builds the variant that best describes `err`, raised by `op` on `path`.
    pub(crate) fn from_io(path: &std::path::Path, op: &'static str, err: io::Error) -> Self {
        let path = path.to_path_buf();
        match err.raw_os_error() {
            Some(libc::ENOENT) => OpenError::NotFound { path },
            Some(libc::EEXIST) => OpenError::AlreadyExists { path },
            Some(libc::EACCES) | Some(libc::EPERM) => OpenError::PermissionDenied { path, source: err },
            Some(libc::ELOOP) => OpenError::Symlink { path },
            Some(libc::ENOSPC) => OpenError::NoSpace { path, requested: 0 },
            _ => OpenError::Io { path, op, source: err },
        }
    }
}

/// Why a read or write of a raw shared region was refused. Nothing was read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// `offset + len` lies beyond the region.
    #[error("range {offset}..{offset}+{len} is out of bounds for a region of {size} bytes")]
    OutOfBounds {
        /// Requested start.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Size of the region.
        size: u64,
    },
}
