//! [`SharedMemory`]: a raw, fixed-size region of bytes shared by processes.
//!
//! No synchronisation beyond what the caller builds: byte reads and writes are plain copies that
//! may observe a concurrent writer's partial update. Aligned 8-byte integer accessors are atomic
//! (a `write_u64` at a multiple of 8 is a Release store, a `read_u64` there an Acquire load), so
//! an aligned integer can serve as a flag or counter that publishes earlier byte writes.

use std::path::{Path, PathBuf};

use crate::error::{AccessError, OpenError};
use crate::layout::{Kind, Plan};
use crate::region::{self, CreateOptions, OpenOptions, Region};
use crate::sync::{AtomicU64, Ordering};

/// A raw shared-memory region backed by a file.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mmapipc-doc-shm-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&dir);
/// use mmapipc::SharedMemory;
/// let shm = SharedMemory::create(&dir, 1024)?;
/// shm.write(0, b"Hello")?;
/// shm.write_u64(104, 42)?;
///
/// let other = SharedMemory::open(&dir)?; // typically in another process
/// assert_eq!(other.read(0, 5)?, b"Hello");
/// assert_eq!(other.read_u64(104)?, 42);
/// shm.unlink()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SharedMemory {
    region: Region,
    data: *mut u8,
    size: usize,
    path: PathBuf,
}

// SAFETY: the handle owns its Region (Send + Sync) and `data` points into it; all access to the
// bytes is through raw-pointer copies or atomics, which are as safe from another thread as from
// another process.
unsafe impl Send for SharedMemory {}
// SAFETY: see Send: `&SharedMemory` only permits raw copies and atomic accesses.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Creates a region of `size` user bytes at `path` (a bare name lives in `/dev/shm`),
    /// zero-filled, with mode 0600. Fails if the path exists.
    pub fn create(path: impl AsRef<Path>, size: usize) -> Result<SharedMemory, OpenError> {
        Self::create_with(path, size, &CreateOptions::default())
    }

    /// [`create`](Self::create) with options (e.g. a group-readable mode).
    pub fn create_with(path: impl AsRef<Path>, size: usize, opts: &CreateOptions) -> Result<SharedMemory, OpenError> {
        let path = region::resolve_path(path);
        if size == 0 {
            return Err(OpenError::InvalidArgument("size must be at least 1 byte".into()));
        }
        let plan = Plan::new(0, 0, size as u64)
            .ok_or_else(|| OpenError::InvalidArgument(format!("size {size} is too large")))?;
        let creating = region::create_file(&path, Kind::SharedMemory, plan, opts)?;
        let region = creating.publish()?;
        Ok(Self::from_region(region, plan.data_offset as usize, size, path))
    }

    /// Opens an existing region, validating its header.
    pub fn open(path: impl AsRef<Path>) -> Result<SharedMemory, OpenError> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<SharedMemory, OpenError> {
        let path = region::resolve_path(path);
        let (region, header) = region::open_file(&path, Kind::SharedMemory, opts)?;
        if header.control_size != 0 || header.schema_size != 0 {
            return Err(OpenError::CorruptHeader {
                path,
                reason: format!(
                    "a raw region has no control block or schema, found {} and {} bytes",
                    header.control_size, header.schema_size
                ),
            });
        }
        // Validated: data_offset + data_size == total_size == region.len().
        Ok(Self::from_region(region, header.data_offset as usize, header.data_size as usize, path))
    }

    fn from_region(region: Region, data_offset: usize, size: usize, path: PathBuf) -> SharedMemory {
        debug_assert!(data_offset + size <= region.len());
        // SAFETY: data_offset + size <= region.len() (validated header / fresh plan), so the
        // pointer stays inside the mapping.
        let data = unsafe { region.as_ptr().add(data_offset) };
        SharedMemory { region, data, size, path }
    }

    /// User-visible size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Start of the user bytes. Valid while `self` lives; other processes may write them.
    pub fn as_ptr(&self) -> *mut u8 {
        self.data
    }

    /// Ok if `offset..offset+len` lies inside the region.
    pub fn check_range(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(AccessError::OutOfBounds { offset: offset as u64, len: len as u64, size: self.size as u64 }),
        }
    }

    /// Copies `data` to `offset`. Nothing is written if the range is out of bounds.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        self.check_range(offset, data.len())?;
        // SAFETY: offset..offset+len is inside the user area (checked); `data` is a separate
        // local buffer so the ranges cannot overlap; only raw pointers touch shared bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.data.add(offset), data.len()) };
        Ok(())
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.check_range(offset, buf.len())?;
        // SAFETY: range checked as in `write`; `buf` is process-local memory.
        unsafe { std::ptr::copy_nonoverlapping(self.data.add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Returns a copy of `len` bytes at `offset`.
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>, AccessError> {
        self.check_range(offset, len)?;
        let mut out = vec![0u8; len];
        self.read_into(offset, &mut out)?;
        Ok(out)
    }

    /// Writes a little-endian `u64` at `offset`. At a multiple of 8 this is an atomic Release
    /// store; elsewhere a plain 8-byte copy.
    pub fn write_u64(&self, offset: usize, value: u64) -> Result<(), AccessError> {
        self.check_range(offset, 8)?;
        match self.aligned_atomic(offset) {
            // SYNC: shm-int. Release: byte writes made before this store are visible to a
            // process whose `read_u64` (Acquire) observes the value.
            Some(a) => a.store(value.to_le(), Ordering::Release),
            None => self.write(offset, &value.to_le_bytes())?,
        }
        Ok(())
    }

    /// Reads a little-endian `u64` at `offset` (atomic Acquire load at a multiple of 8).
    pub fn read_u64(&self, offset: usize) -> Result<u64, AccessError> {
        self.check_range(offset, 8)?;
        Ok(match self.aligned_atomic(offset) {
            // SYNC: shm-int (Acquire side).
            Some(a) => u64::from_le(a.load(Ordering::Acquire)),
            None => {
                let mut b = [0u8; 8];
                self.read_into(offset, &mut b)?;
                u64::from_le_bytes(b)
            }
        })
    }

    /// Writes a little-endian `i64` at `offset` (see [`write_u64`](Self::write_u64)).
    pub fn write_i64(&self, offset: usize, value: i64) -> Result<(), AccessError> {
        self.write_u64(offset, value as u64)
    }

    /// Reads a little-endian `i64` at `offset` (see [`read_u64`](Self::read_u64)).
    pub fn read_i64(&self, offset: usize) -> Result<i64, AccessError> {
        self.read_u64(offset).map(|v| v as i64)
    }

    fn aligned_atomic(&self, offset: usize) -> Option<&AtomicU64> {
        // The user area starts on a page boundary, so offset % 8 == 0 means the address is
        // 8-byte aligned.
        (offset % 8 == 0).then(|| {
            // SAFETY: offset..offset+8 is in bounds (checked by callers) and 8-byte aligned;
            // other processes may access these bytes concurrently, which is what atomics allow.
            unsafe { &*(self.data.add(offset) as *const AtomicU64) }
        })
    }

    /// Removes the file. Open handles (here and in other processes) stay valid.
    pub fn unlink(&self) -> Result<(), OpenError> {
        region::unlink(&self.path)
    }

    /// The underlying region (header included).
    pub fn region(&self) -> &Region {
        &self.region
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("mmapipc-shm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps a file")]
    fn bounds_are_checked_and_nothing_written() {
        let p = tmp("bounds");
        let shm = SharedMemory::create(&p, 16).unwrap();
        assert!(shm.write(10, &[1; 7]).is_err());
        assert_eq!(shm.read(0, 16).unwrap(), vec![0; 16]);
        assert!(shm.read(usize::MAX, 2).is_err());
        assert!(shm.read_u64(9).is_err());
        assert!(shm.write_u64(8, 5).is_ok());
        assert_eq!(shm.read_i64(8).unwrap(), 5);
        shm.write_i64(1, -3).unwrap();
        assert_eq!(shm.read_i64(1).unwrap(), -3);
        shm.unlink().unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps a file")]
    fn create_refuses_existing_and_zero_size() {
        let p = tmp("exists");
        let shm = SharedMemory::create(&p, 8).unwrap();
        assert!(matches!(SharedMemory::create(&p, 8), Err(OpenError::AlreadyExists { .. })));
        assert!(matches!(SharedMemory::create(tmp("zero"), 0), Err(OpenError::InvalidArgument(_))));
        shm.unlink().unwrap();
        assert!(matches!(SharedMemory::open(&p), Err(OpenError::NotFound { .. })));
    }
}
