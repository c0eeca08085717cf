//! Memory regions: a file mapping shared between processes, or a heap block for tests.
//!
//! [`Region`] is a raw, fixed-size span of bytes that other processes may read and write at any
//! moment. It hands out raw pointers only: no `&[u8]` or `&mut [u8]` to shared bytes is ever made
//! here. The rings and queues reach their data areas through [`crate::mem`]'s `DataArea`, over a
//! file mapping in production and a heap region in tests and under Miri; under loom the data area
//! is `DataArea`'s heap twin, and no `Region` is involved.
//!
//! [`create_file`] and [`open_file`] do the file-system part of the protocol: `O_EXCL`,
//! `O_NOFOLLOW`, `O_CLOEXEC`, mode 0600 by default, pages reserved up front with
//! `posix_fallocate`, header written and then published with a Release store of
//! [`STATE_READY`](crate::layout::STATE_READY); `open` validates the whole header before
//! anything else looks at the file.
//!
//! A file is created under a temporary name in the same directory ([`creating_name`]:
//! `.<name>.<pid>-<start time>.mmapipc-creating`) and linked to its final path only once it is
//! published, so a half-created file never stands at the final path: a creator killed during
//! `create` (reserving pages takes about 0.25 s per GiB) leaves only its temporary name behind,
//! which tools recognise with [`parse_creating_name`] and remove once its creator is dead. The
//! link fails if the final path appeared meanwhile, which keeps `O_EXCL`'s promise.

use std::alloc::Layout;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use memmap2::MmapRaw;

use crate::error::OpenError;
use crate::layout::{self, FileHeader, HeaderProblem, Kind, Plan, HEADER_SIZE, STATE_READY};
use crate::owner;
use crate::process::ProcessId;
use crate::span::Span;
use crate::sync::{AtomicU32, Ordering};

/// Options for creating a shared-memory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// File mode bits (default `0o600`: only this user). Use `0o660` to share with a group.
    pub mode: u32,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { mode: 0o600 }
    }
}

/// Options for opening an existing shared-memory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    /// Open files owned by another user. Off by default: a file planted by another local user
    /// is refused with [`OpenError::ForeignOwner`].
    pub allow_foreign_owner: bool,
}

/// Maps a user-supplied name to a path: a bare name (no `/`) lives in `/dev/shm`, anything
/// else is used as given. The empty name stays empty (create and open refuse it).
///
/// ```
/// use std::path::Path;
/// assert_eq!(mmapipc::resolve_path("frames"), Path::new("/dev/shm/frames"));
/// assert_eq!(mmapipc::resolve_path("/tmp/ring"), Path::new("/tmp/ring"));
/// assert_eq!(mmapipc::resolve_path("./ring"), Path::new("./ring"));
/// assert_eq!(mmapipc::resolve_path(""), Path::new(""));
/// ```
pub fn resolve_path(name: impl AsRef<Path>) -> PathBuf {
    let p = name.as_ref();
    let b = p.as_os_str().as_bytes();
    if b.is_empty() || b.contains(&b'/') {
        p.to_path_buf()
    } else {
        Path::new("/dev/shm").join(p)
    }
}

/// Ends every temporary name of a file being created ([`creating_name`]).
pub const CREATING_SUFFIX: &str = ".mmapipc-creating";

/// The name under which `who` creates the file `final_name`, in the same directory, until it is
/// published and linked into place: `.<final_name>.<pid>-<start_time>.mmapipc-creating`, pid and
/// start time (field 22 of `/proc/<pid>/stat`, 0 if unknown) in decimal.
///
/// ```
/// use mmapipc::process::ProcessId;
/// use mmapipc::region::{creating_name, parse_creating_name};
/// let who = ProcessId { pid: 42, start_time: 7 };
/// let tmp = creating_name("frames.q", who);
/// assert_eq!(tmp, ".frames.q.42-7.mmapipc-creating");
/// assert_eq!(parse_creating_name(&tmp), Some(("frames.q".into(), who)));
/// assert_eq!(parse_creating_name("frames.q"), None);
/// ```
pub fn creating_name(final_name: impl AsRef<OsStr>, who: ProcessId) -> OsString {
    let mut s = OsString::from(".");
    s.push(final_name.as_ref());
    s.push(format!(".{}-{}{CREATING_SUFFIX}", who.pid, who.start_time));
    s
}

/// The final name and the creator encoded in a temporary name made by [`creating_name`];
/// `None` for any other name.
pub fn parse_creating_name(name: impl AsRef<OsStr>) -> Option<(OsString, ProcessId)> {
    fn decimal(b: &[u8]) -> Option<u64> {
        if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    }
    let inner = name.as_ref().as_bytes().strip_prefix(b".")?.strip_suffix(CREATING_SUFFIX.as_bytes())?;
    let dot = inner.iter().rposition(|&c| c == b'.')?;
    let (final_name, who) = (&inner[..dot], &inner[dot + 1..]);
    if final_name.is_empty() || final_name.contains(&b'/') {
        return None;
    }
    let dash = who.iter().position(|&c| c == b'-')?;
    let pid = u32::try_from(decimal(&who[..dash])?).ok()?;
    let start_time = decimal(&who[dash + 1..])?;
    Some((OsString::from_vec(final_name.to_vec()), ProcessId { pid, start_time }))
}

/// Splits a final path into its directory and file name, refusing paths that name no file.
fn split_final(path: &Path) -> Result<(PathBuf, &OsStr), OpenError> {
    let b = path.as_os_str().as_bytes();
    if b.is_empty() {
        return Err(empty_path());
    }
    let (dir, name) = match b.iter().rposition(|&c| c == b'/') {
        Some(0) => (Path::new("/"), &b[1..]),
        Some(i) => (Path::new(OsStr::from_bytes(&b[..i])), &b[i + 1..]),
        None => (Path::new("."), b),
    };
    if name.is_empty() {
        let source = io::Error::from_raw_os_error(libc::EISDIR);
        return Err(OpenError::Io { path: path.to_path_buf(), op: "create", source });
    }
    if name == b"." || name == b".." {
        return Err(OpenError::InvalidArgument(format!("path {} does not name a file", path.display())));
    }
    Ok((dir.to_path_buf(), OsStr::from_bytes(name)))
}

fn empty_path() -> OpenError {
    OpenError::InvalidArgument("the path is empty: name a file (a bare name lives in /dev/shm)".into())
}

enum Backing {
    File { _map: MmapRaw, _file: File },
    Heap { ptr: NonNull<u8>, layout: Layout },
}

/// A fixed-size span of bytes shared with other processes (or, for tests, a heap block).
pub struct Region {
    backing: Backing,
    span: Span,
}

// SAFETY: a Region is a raw span of bytes; it gives out only raw pointers, and every access
// through them is either atomic or to bytes the calling protocol owns. Moving the handle to
// another thread changes nothing about that.
unsafe impl Send for Region {}
// SAFETY: as above: shared references to a Region only give raw pointers; concurrent access
// from threads is no different from concurrent access from other processes, which the
// protocols built on it already handle.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backing {
            Backing::File { .. } => "file",
            Backing::Heap { .. } => "heap",
        };
        f.debug_struct("Region").field("backing", &kind).field("len", &self.span.len()).finish()
    }
}

impl Region {
    /// A zero-filled, 4096-byte-aligned heap region of `len` bytes (for tests, loom and miri).
    ///
    /// # Panics
    /// If `len` is zero or the allocation fails.
    pub fn heap(len: usize) -> Region {
        assert!(len > 0, "heap region must not be empty");
        let layout = Layout::from_size_align(len, layout::DATA_ALIGN).expect("region size overflows");
        // SAFETY: layout has non-zero size (asserted above).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Region { backing: Backing::Heap { ptr, layout }, span: Span::new(ptr.as_ptr(), len) }
    }

    /// The header's `state` word.
    pub(crate) fn state(&self) -> &AtomicU32 {
        // SAFETY: every region holds at least a header (HEADER_SIZE bytes, checked at creation
        // and open); offset 8 is 4-byte aligned because the region is page aligned; the word
        // is only ever accessed atomically, by every process, so a shared reference to an
        // atomic over it is sound.
        unsafe { &*(self.as_ptr().add(layout::STATE_OFFSET) as *const AtomicU32) }
    }

    /// A copy of the header (racy by nature: the copy is what gets validated and used).
    pub(crate) fn read_header(&self) -> FileHeader {
        debug_assert!(self.len() >= HEADER_SIZE);
        // SAFETY: the region holds at least HEADER_SIZE bytes and is page aligned; FileHeader
        // is plain data for which every bit pattern is valid. A concurrent writer can only make
        // the copy inconsistent, which validation then rejects.
        unsafe { std::ptr::read_volatile(self.as_ptr() as *const FileHeader) }
    }
}

/// The region's bytes: [`as_ptr`](Span::as_ptr), [`len`](Span::len).
impl std::ops::Deref for Region {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.span
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Backing::Heap { ptr, layout } = self.backing {
            // SAFETY: ptr was allocated in `heap` with exactly this layout and is freed once.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        }
        // File mappings unmap themselves when `map` drops.
    }
}

fn c_path(path: &Path) -> Result<CString, OpenError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| OpenError::InvalidArgument(format!("path {} contains a NUL byte", path.display())))
}

/// A freshly created file, mapped, with its header written but not yet published, under its
/// temporary name ([`creating_name`]).
///
/// Initialise the control block through [`region`](Self::region), then call
/// [`publish`](Self::publish). Dropping it unpublished removes the file again.
pub struct Creating {
    region: Option<Region>,
    path: PathBuf,
    final_c: CString,
    temp: PathBuf,
    temp_c: CString,
    plan: Plan,
    published: bool,
}

impl Creating {
    /// The mapped region (header written, state still INIT).
    pub fn region(&self) -> &Region {
        self.region.as_ref().expect("region present until publish")
    }

    /// Copies `schema` into the file's schema area (the plan must have reserved exactly
    /// `schema.len()` bytes for it).
    pub fn write_schema(&self, schema: &[u8]) -> Result<(), OpenError> {
        if schema.len() as u64 != self.plan.schema_size || self.plan.schema_offset == 0 {
            return Err(OpenError::InvalidArgument(format!(
                "schema of {} bytes does not fit the {} bytes planned for it",
                schema.len(),
                self.plan.schema_size
            )));
        }
        let region = self.region();
        // SAFETY: schema_offset + schema_size <= total_size == region.len() (Plan::new), and the
        // file is unpublished, so no other process reads these bytes yet; `schema` is local memory.
        unsafe {
            std::ptr::copy_nonoverlapping(
                schema.as_ptr(),
                region.as_ptr().add(self.plan.schema_offset as usize),
                schema.len(),
            )
        };
        Ok(())
    }

    /// Publishes the file (Release store of READY), links it to its final path and removes the
    /// temporary name; returns its region. Fails with [`OpenError::AlreadyExists`] (removing
    /// the new file) if the final path was taken meanwhile.
    pub fn publish(mut self) -> Result<Region, OpenError> {
        // SYNC: header-publish. Release: every header and control-block write made by this
        // process happens-before any opener's Acquire load of READY in `open_file`. Nobody
        // opens the temporary name, so the file is complete before any opener can reach it.
        self.region().state().store(STATE_READY, Ordering::Release);
        // SAFETY: both are valid NUL-terminated paths. link(2) never replaces an existing path
        // (EEXIST) and, without AT_SYMLINK_FOLLOW, does not follow a symlink at the source.
        if unsafe { libc::link(self.temp_c.as_ptr(), self.final_c.as_ptr()) } != 0 {
            let e = io::Error::last_os_error();
            // Dropping `self` unpublished removes the temporary name.
            return Err(match e.raw_os_error() {
                Some(libc::EEXIST) => OpenError::AlreadyExists { path: self.path.clone() },
                _ => OpenError::Io { path: self.path.clone(), op: "link", source: e },
            });
        }
        self.published = true;
        // The file stands at its final path now; the temporary name is only a second name. If
        // removing it fails, tools find it (its creator alive or not) and may remove it later.
        let _ = std::fs::remove_file(&self.temp);
        Ok(self.region.take().expect("region present until publish"))
    }
}

impl Drop for Creating {
    fn drop(&mut self) {
        if !self.published {
            // Creation failed (or was abandoned) before publish: leave no half-made file.
            // Drop the mapping first, then the temporary name (the final path was never used).
            self.region = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Creates `path` (already resolved) for `kind` laid out by `plan`, maps it, and writes its
/// header with state INIT, under the temporary name [`creating_name`] in the same directory
/// ([`Creating::publish`] links it into place). Fails with [`OpenError::AlreadyExists`] if the
/// path is taken (including by a symlink, which is never followed), and with
/// [`OpenError::DirectoryNotFound`] if its directory does not exist.
pub fn create_file(path: &Path, kind: Kind, plan: Plan, opts: &CreateOptions) -> Result<Creating, OpenError> {
    if opts.mode & !0o7777 != 0 {
        return Err(OpenError::InvalidArgument(format!("mode {:#o} is not a permission mode", opts.mode)));
    }
    let (dir, name) = split_final(path)?;
    let final_c = c_path(path)?;
    // Refuse a taken path before reserving any pages; the link in `publish` is what guarantees
    // it (the path may appear meanwhile).
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(OpenError::AlreadyExists { path: path.to_path_buf() });
    }
    let me = owner::current();
    let temp = dir.join(creating_name(name, me));
    let temp_c = c_path(&temp)?;
    // SAFETY: temp_c is a valid NUL-terminated string; the flags and mode are plain integers.
    let fd = unsafe {
        libc::open(
            temp_c.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            opts.mode as libc::c_uint,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            // O_CREAT in an existing directory cannot give ENOENT: a directory is missing.
            Some(libc::ENOENT) => OpenError::DirectoryNotFound { path: path.to_path_buf(), dir },
            // Our own temporary name: another thread of this process is creating this path.
            Some(libc::EEXIST) => OpenError::AlreadyExists { path: path.to_path_buf() },
            _ => OpenError::from_io(path, "open", e),
        });
    }
    // SAFETY: fd is a freshly opened descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    // From here on, a failure must remove the file: dropping `creating` unpublished does that.
    let mut creating =
        Creating { region: None, path: path.to_path_buf(), final_c, temp, temp_c, plan, published: false };
    // The umask may have cleared bits the caller asked for (e.g. group bits); set them exactly.
    // SAFETY: fd is valid; fchmod takes plain integers.
    if unsafe { libc::fchmod(fd, opts.mode as libc::mode_t) } != 0 {
        return Err(OpenError::from_io(path, "fchmod", io::Error::last_os_error()));
    }
    let len = plan.total_size;
    reserve(&file, len).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => OpenError::NoSpace { path: path.to_path_buf(), requested: len },
        _ => OpenError::Io { path: path.to_path_buf(), op: "posix_fallocate", source: e },
    })?;
    let map = MmapRaw::map_raw(&file).map_err(|e| OpenError::Io { path: path.to_path_buf(), op: "mmap", source: e })?;
    let header = plan.header(kind, me.pid, me.start_time);
    let ptr = map.as_mut_ptr();
    // SAFETY: the mapping is `len >= HEADER_SIZE` bytes, page aligned and writable; this process
    // created the file with O_EXCL and no opener trusts it before READY, so nothing else reads
    // these bytes as a header yet. FileHeader is plain data.
    unsafe { std::ptr::write_volatile(ptr as *mut FileHeader, header) };
    creating.region =
        Some(Region { span: Span::new(ptr, len as usize), backing: Backing::File { _map: map, _file: file } });
    Ok(creating)
}

/// Reserves `len` bytes for the file so a full file system fails now, not with SIGBUS later.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    let len_off = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    #[cfg(target_os = "linux")]
    {
        // In steps: tmpfs gives up a whole call (undoing it) with EINTR when a signal arrives,
        // so a step interrupted by a signal handler is redone alone, not the whole file.
        const STEP: libc::off_t = 64 << 20;
        let mut off: libc::off_t = 0;
        while off < len_off {
            let n = STEP.min(len_off - off);
            // SAFETY: valid fd, plain integers.
            match unsafe { libc::posix_fallocate(file.as_raw_fd(), off, n) } {
                0 => off += n,
                libc::EINTR => {}
                // Some file systems cannot preallocate; fall back to a sparse file.
                libc::EOPNOTSUPP | libc::EINVAL if off == 0 => break,
                err => return Err(io::Error::from_raw_os_error(err)),
            }
        }
        if off >= len_off {
            return Ok(());
        }
    }
    // SAFETY: valid fd, plain integers.
    if unsafe { libc::ftruncate(file.as_raw_fd(), len_off) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens and maps `path` (already resolved), validating the whole header for `kind`.
/// Returns the region and the validated header copy (use the copy, never re-read the header).
pub fn open_file(path: &Path, kind: Kind, opts: &OpenOptions) -> Result<(Region, FileHeader), OpenError> {
    open_checked(path, Some(kind), opts)
}

/// Opens and maps `path` whatever kind of mmapipc file it is (for inspection tools); the header
/// is validated as in [`open_file`] except for the kind.
pub fn open_any(path: &Path, opts: &OpenOptions) -> Result<(Region, FileHeader), OpenError> {
    open_checked(path, None, opts)
}

fn open_checked(path: &Path, kind: Option<Kind>, opts: &OpenOptions) -> Result<(Region, FileHeader), OpenError> {
    if path.as_os_str().is_empty() {
        return Err(empty_path());
    }
    let cpath = c_path(path)?;
    // SAFETY: cpath is a valid NUL-terminated string; the flags are plain integers.
    let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(OpenError::from_io(path, "open", io::Error::last_os_error()));
    }
    // SAFETY: fd is a freshly opened descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    let meta = file.metadata().map_err(|e| OpenError::Io { path: path.to_path_buf(), op: "fstat", source: e })?;
    if !meta.file_type().is_file() {
        return Err(OpenError::NotRegularFile { path: path.to_path_buf() });
    }
    // SAFETY: geteuid has no preconditions.
    let ours = unsafe { libc::geteuid() };
    if meta.uid() != ours && !opts.allow_foreign_owner {
        return Err(OpenError::ForeignOwner { path: path.to_path_buf(), owner: meta.uid(), ours });
    }
    let len = meta.len();
    if len == 0 {
        return Err(OpenError::Empty { path: path.to_path_buf() });
    }
    if len < HEADER_SIZE as u64 {
        return Err(OpenError::Truncated { path: path.to_path_buf(), actual: len, expected: HEADER_SIZE as u64 });
    }
    if len > layout::MAX_FILE_SIZE {
        return Err(OpenError::CorruptHeader {
            path: path.to_path_buf(),
            reason: format!("file of {len} bytes is larger than any mmapipc file"),
        });
    }
    let map = MmapRaw::map_raw(&file).map_err(|e| OpenError::Io { path: path.to_path_buf(), op: "mmap", source: e })?;
    if (map.len() as u64) < len {
        // The file shrank between fstat and mmap; the mapping length is what counts.
        return Err(OpenError::Truncated { path: path.to_path_buf(), actual: map.len() as u64, expected: len });
    }
    let region =
        Region { span: Span::new(map.as_mut_ptr(), len as usize), backing: Backing::File { _map: map, _file: file } };
    // SYNC: header-publish. Acquire pairs with the creator's Release store of READY, so the
    // header copy below sees every field the creator wrote.
    let state = region.state().load(Ordering::Acquire);
    let mut header = region.read_header();
    header.state = state;
    let p = path.to_path_buf();
    let checked = match kind {
        Some(k) => layout::validate(&header, len, k),
        None => layout::validate_any(&header, len),
    };
    checked.map_err(|problem| match problem {
        HeaderProblem::Truncated { actual, expected } => OpenError::Truncated { path: p, actual, expected },
        HeaderProblem::BadMagic => OpenError::BadMagic { path: p },
        HeaderProblem::NotReady => OpenError::NotReady { path: p },
        HeaderProblem::UnsupportedVersion(found) => {
            OpenError::UnsupportedVersion { path: p, found, supported: layout::LAYOUT_VERSION }
        }
        HeaderProblem::AbiMismatch(found) => OpenError::AbiMismatch { path: p, found, expected: layout::abi_flags() },
        HeaderProblem::WrongKind(found) => OpenError::WrongKind { path: p, found, expected: kind.unwrap_or(found) },
        HeaderProblem::Corrupt(reason) => OpenError::CorruptHeader { path: p, reason },
    })?;
    Ok((region, header))
}

/// A copy of the schema blob of an opened file (empty if it has none). The header must be the
/// validated copy returned by [`open_file`]; the blob is written before READY and never changed.
pub fn schema_blob(region: &Region, header: &FileHeader) -> Vec<u8> {
    let (off, len) = (header.schema_offset as usize, header.schema_size as usize);
    if len == 0 || off.checked_add(len).is_none_or(|end| end > region.len()) {
        return Vec::new();
    }
    let mut buf = vec![0u8; len];
    // SAFETY: off..off+len lies inside the mapping (checked above); we copy into local memory and
    // never form a reference to the shared bytes.
    unsafe { std::ptr::copy_nonoverlapping(region.as_ptr().add(off), buf.as_mut_ptr(), len) };
    buf
}

/// Removes a shared-memory file. The mappings of processes that have it open stay valid; the
/// memory is freed when the last one closes.
pub fn unlink(path: &Path) -> Result<(), OpenError> {
    std::fs::remove_file(path).map_err(|e| OpenError::from_io(path, "unlink", e))
}

/// The file of one channel (ring, queue, topic): what [`create_channel`] lays out after the
/// header.
pub(crate) struct ChannelPlan<'a> {
    /// The primitive.
    pub kind: Kind,
    /// Its control block's size.
    pub control_size: usize,
    /// The requested data capacity (checked and rounded by [`layout::checked_capacity`]).
    pub capacity: usize,
    /// A typed channel's schema JSON; empty for an untyped channel.
    pub schema: &'a [u8],
}

/// Creates a channel's file at `path` (resolved here), stores its schema, lets `init` write the
/// control block (given its start in the fresh, zero-filled mapping and the checked capacity)
/// and publishes the file. Returns the region and its plan. Every primitive creates its file
/// through here, so the capacity rule, the schema area and the publish order are one.
pub(crate) fn create_channel(
    path: impl AsRef<Path>,
    spec: ChannelPlan<'_>,
    opts: &CreateOptions,
    init: impl FnOnce(*mut u8, u64),
) -> Result<(Region, Plan, PathBuf), OpenError> {
    let path = resolve_path(path);
    let capacity = layout::checked_capacity(spec.kind, spec.capacity)?;
    let plan = Plan::new(spec.control_size as u64, spec.schema.len() as u64, capacity as u64)
        .ok_or_else(|| OpenError::InvalidArgument(format!("capacity {capacity} is too large")))?;
    let creating = create_file(&path, spec.kind, plan, opts)?;
    if !spec.schema.is_empty() {
        creating.write_schema(spec.schema)?;
    }
    // In bounds: the plan puts the control block at control_offset..+control_size inside the
    // mapping; nobody else trusts the file before publish.
    init(creating.region().as_ptr().wrapping_add(plan.control_offset as usize), capacity as u64);
    Ok((creating.publish()?, plan, path))
}

/// The control-block size [`open_channel`] accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ControlSize {
    /// Exactly this many bytes (ring, queue: a fixed control block).
    Exact(usize),
    /// At least this many bytes (topic: the block grows with its subscriber table, whose size
    /// the caller checks against the config it then reads inside the block).
    AtLeast(usize),
}

impl From<usize> for ControlSize {
    fn from(n: usize) -> Self {
        ControlSize::Exact(n)
    }
}

/// Opens a channel's file at `path` (resolved here) for `kind`, validating the header, the
/// control block's size and the capacity rule. Returns the region, the validated header copy and
/// the resolved path.
pub(crate) fn open_channel(
    path: impl AsRef<Path>,
    kind: Kind,
    control_size: impl Into<ControlSize>,
    opts: &OpenOptions,
) -> Result<(Region, FileHeader, PathBuf), OpenError> {
    let path = resolve_path(path);
    let (region, header) = open_file(&path, kind, opts)?;
    let bad = |reason: String| OpenError::CorruptHeader { path: path.clone(), reason };
    let have = header.control_size;
    match control_size.into() {
        ControlSize::Exact(n) if have != n as u64 => {
            return Err(bad(format!("{kind} control block is {have} bytes, expected {n}")));
        }
        ControlSize::AtLeast(n) if have < n as u64 => {
            return Err(bad(format!("{kind} control block of {have} bytes is too small, expected at least {n}")));
        }
        _ => {}
    }
    let cap = header.data_size;
    if usize::try_from(cap).ok().and_then(|c| layout::checked_capacity(kind, c).ok()) != Some(cap as usize) {
        return Err(bad(format!("{kind} capacity {cap} is out of range or not a multiple of 8")));
    }
    Ok((region, header, path))
}
