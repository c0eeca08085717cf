//! The [`Ring`] handle: creating, opening and sharing a ring, its memory ([`RingMemory`]: the
//! control block and the data area, a [`DataArea`]), and the counters.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::OpenError;
use crate::layout::Kind;
use crate::mem::DataArea;
use crate::region::{self, ChannelPlan, CreateOptions, OpenOptions, Region};
use crate::shorthands::channel_shorthands;
use crate::sync::Ordering;

use super::layout::{checked_capacity, RingControl, CONTROL_SIZE, RECORD_HEADER};
use super::state::{ConsumerState, ProducerState};

/// Keeps a ring's memory alive; shared by every handle and every exported view of one ring.
pub struct RingMemory {
    /// The control block, inside the mapping (or in `_ctrl` under loom).
    ctrl: *const RingControl,
    /// The data area: every access to its bytes goes through it.
    pub(super) data: DataArea,
    pub(super) capacity: u64,
    /// Longer records are frames ([`crate::mem::reuse::is_frame`]), which the producer's fast
    /// path leaves to `reserve`.
    pub(super) frame_over: u64,
    pub(super) path: Option<PathBuf>,
    /// The mapping (or heap block) holding the control block and the data area.
    #[cfg(not(loom))]
    _region: Region,
    #[cfg(loom)]
    _ctrl: Box<RingControl>,
}

// SAFETY: the memory is a mapping (or heap block) that every process and thread reaches only
// through atomics on the control block and through the data area's accessors, whose contracts
// hand each range to one side at a time. Sending the owner to another thread changes nothing.
unsafe impl Send for RingMemory {}
// SAFETY: as for Send: `&RingMemory` only gives atomics and the data area (itself Sync).
unsafe impl Sync for RingMemory {}

impl fmt::Debug for RingMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingMemory").field("capacity", &self.capacity).field("path", &self.path).finish()
    }
}

impl RingMemory {
    #[inline]
    pub(super) fn ctrl(&self) -> &RingControl {
        // SAFETY: `ctrl` points at a RingControl-sized, 8-aligned block inside the memory this
        // object keeps alive (checked at construction). Every field is an atomic or padding that
        // nobody reads, so a shared reference is sound even while other processes write it.
        unsafe { &*self.ctrl }
    }

    /// Stores a record header word at `off` (the slot belongs to the producer: not yet published).
    #[inline]
    pub(super) fn store_header(&self, off: u64, len: u32, flags: u32) {
        debug_assert!(off % 8 == 0 && off + 8 <= self.capacity);
        let word = u64::from(len) | (u64::from(flags) << 32);
        // SAFETY: callers pass a record offset: 8-aligned, with off + 8 <= capacity.
        let a = unsafe { self.data.word(off) };
        // SYNC: tail-publish. Relaxed: made visible by the Release store of tail that follows.
        a.store(word, Ordering::Relaxed);
    }

    /// Loads a record header word at `off` (the consumer calls this only below a loaded tail).
    #[inline]
    pub(super) fn load_header(&self, off: u64) -> (u32, u32) {
        debug_assert!(off % 8 == 0 && off + 8 <= self.capacity);
        // SAFETY: as in store_header.
        let a = unsafe { self.data.word(off) };
        // SYNC: tail-publish. Relaxed: ordered after the Acquire load of tail that showed this
        // record as published. Atomic so that a hostile peer writing it concurrently is not a
        // data race in this process.
        let word = a.load(Ordering::Relaxed);
        (word as u32, (word >> 32) as u32)
    }

    /// Capacity of the data area in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

/// Statistics kept in the control block (each side's counters on its own cache line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Messages committed by producers.
    pub messages_in: u64,
    /// Payload bytes committed.
    pub bytes_in: u64,
    /// Times a producer found the ring full (once per episode, however long it polled).
    pub full_waits: u64,
    /// Messages consumed.
    pub messages_out: u64,
    /// Payload bytes consumed.
    pub bytes_out: u64,
    /// Times a consumer found the ring empty (once per episode).
    pub empty_waits: u64,
}

/// A handle on a single-producer single-consumer ring of byte messages (see the module docs).
///
/// ```
/// # let path = std::env::temp_dir().join(format!("mmapipc-doc-ring-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// use mmapipc::Ring;
/// let mut producer = Ring::create(&path, 4096)?;
/// let mut consumer = Ring::open(&path)?; // typically in another process
///
/// assert!(producer.try_write(b"hello")?);
/// let mut slot = producer.loan(3)?; // zero-copy: fill the slot in place
/// slot.copy_from_slice(b"abc");
/// slot.commit();
///
/// assert_eq!(&*consumer.try_read()?.unwrap(), b"hello"); // in place; released on drop
/// assert_eq!(&*consumer.read()?, b"abc");
/// assert!(consumer.try_read()?.is_none());
/// producer.unlink()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Methods take `&mut self`: a handle is one side (or both) of the ring, used by one thread at a
/// time. Use another handle ([`Ring::open`], [`Ring::new_handle`]) for the other side.
pub struct Ring {
    pub(super) mem: Arc<RingMemory>,
    pub(super) prod: Option<ProducerState>,
    pub(super) cons: Option<ConsumerState>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.mem.capacity)
            .field("path", &self.mem.path)
            .field("producer", &self.prod.is_some())
            .field("consumer", &self.cons.is_some())
            .finish()
    }
}

/// Slice length for Rust-side blocking waits (the futex is woken on every publication anyway).
pub(super) const RUST_SLICE: Duration = Duration::from_secs(1);

channel_shorthands! {
    impl Ring(create: CreateOptions, open: OpenOptions) -> OpenError;
    /// Creates a ring with `capacity` data bytes (rounded up to a multiple of 8) at `path`
    /// (a bare name lives in `/dev/shm`), mode 0600. Fails if the path exists.
    fn create;
    /// Opens an existing ring, validating its header and control block.
    fn open;
}

impl Ring {
    /// [`create_with`](Self::create_with), storing `schema` (a typed channel's schema JSON; empty
    /// for an untyped ring) in the file's schema area before the file is published.
    pub fn create_with_schema(
        path: impl AsRef<Path>,
        capacity: usize,
        opts: &CreateOptions,
        schema: &[u8],
    ) -> Result<Ring, OpenError> {
        let spec = ChannelPlan { kind: Kind::Ring, control_size: CONTROL_SIZE, capacity, schema };
        let (region, plan, path) = region::create_channel(path, spec, opts, |ctrl, capacity| {
            // The file is fresh (zero-filled by the file system): indices, counters, waiters and
            // owner words are all zero already; only the capacity needs writing before READY.
            // SAFETY: the control block lies inside the new mapping (plan), is 8-aligned (offset
            // 128 of a page-aligned mapping) and holds only atomics.
            let config = unsafe { &(*(ctrl as *const RingControl)).config };
            // Relaxed: published by the Release store of READY in `publish` (SYNC: header-publish).
            config.capacity.store(capacity, Ordering::Relaxed);
        })?;
        let capacity = plan.data_size;
        Ok(Self::from_region(region, plan.control_offset, plan.data_offset, capacity, Some(path)))
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Ring, OpenError> {
        let (region, header, path) = region::open_channel(path, Kind::Ring, CONTROL_SIZE, opts)?;
        let bad = |reason: String| OpenError::CorruptHeader { path: path.clone(), reason };
        let capacity = header.data_size;
        let ring = Self::from_region(region, header.control_offset, header.data_offset, capacity, Some(path.clone()));
        // Relaxed: the header-publish Acquire in open_file already ordered this after READY.
        let stored = ring.mem.ctrl().config.capacity.load(Ordering::Relaxed);
        if stored != capacity {
            return Err(bad(format!("control block says capacity {stored}, header says {capacity}")));
        }
        Ok(ring)
    }

    /// A process-local ring on the heap, for tests and model checking (loom, miri). Share it
    /// between threads with [`new_handle`](Self::new_handle).
    ///
    /// ```
    /// let mut producer = mmapipc::Ring::heap(1024)?;
    /// let mut consumer = producer.new_handle();
    /// let t = std::thread::spawn(move || {
    ///     for i in 0..100u32 {
    ///         producer.write(&i.to_le_bytes()).unwrap(); // blocks while the ring is full
    ///     }
    /// });
    /// for i in 0..100u32 {
    ///     assert_eq!(&*consumer.read()?, &i.to_le_bytes());
    /// }
    /// t.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap(capacity: usize) -> Result<Ring, OpenError> {
        let capacity = checked_capacity(capacity)?;
        #[cfg(not(loom))]
        {
            let plan = crate::layout::Plan::new(CONTROL_SIZE as u64, 0, capacity as u64)
                .ok_or_else(|| OpenError::InvalidArgument(format!("capacity {capacity} is too large")))?;
            let region = Region::heap(plan.total_size as usize);
            let ring = Self::from_region(region, plan.control_offset, plan.data_offset, capacity as u64, None);
            // Relaxed: the region is not shared yet; handles made later see it through Arc.
            ring.mem.ctrl().config.capacity.store(capacity as u64, Ordering::Relaxed);
            Ok(ring)
        }
        #[cfg(loom)]
        {
            // The data area is DataArea's loom twin; the control block holds loom atomics.
            let ctrl = Box::new(RingControl::new(capacity as u64));
            let mem = RingMemory {
                ctrl: &*ctrl as *const RingControl,
                data: DataArea::heap(capacity),
                capacity: capacity as u64,
                frame_over: crate::mem::reuse::frame_over(capacity as u64),
                path: None,
                _ctrl: ctrl,
            };
            Ok(Ring { mem: Arc::new(mem), prod: None, cons: None })
        }
    }

    #[cfg(not(loom))]
    pub(super) fn from_region(
        region: Region,
        control_offset: u64,
        data_offset: u64,
        capacity: u64,
        path: Option<PathBuf>,
    ) -> Ring {
        debug_assert!(data_offset + capacity <= region.len() as u64);
        debug_assert!(control_offset + CONTROL_SIZE as u64 <= data_offset);
        let base = region.as_ptr();
        // SAFETY: the data area lies inside the region (checked above; the plan or the validated
        // header put it there), page aligned, `capacity` a multiple of 8 bytes; `_region` keeps
        // it mapped as long as the DataArea lives. Peers reach it only by the ring protocol.
        let data = unsafe { DataArea::new(base.wrapping_add(data_offset as usize), capacity as usize) };
        let mem = RingMemory {
            ctrl: base.wrapping_add(control_offset as usize) as *const RingControl,
            data,
            capacity,
            frame_over: crate::mem::reuse::frame_over(capacity),
            path,
            _region: region,
        };
        Ring { mem: Arc::new(mem), prod: None, cons: None }
    }

    #[cfg(loom)]
    pub(super) fn from_region(_: Region, _: u64, _: u64, _: u64, _: Option<PathBuf>) -> Ring {
        unreachable!("file-backed rings are not modelled under loom")
    }

    /// Another handle on the same ring, holding no role (e.g. for a consumer thread).
    pub fn new_handle(&self) -> Ring {
        Ring { mem: self.mem.clone(), prod: None, cons: None }
    }

    /// Data-area size in bytes.
    pub fn capacity(&self) -> usize {
        self.mem.capacity as usize
    }

    /// Largest payload a single message may have: `capacity - 8`.
    pub fn max_message_size(&self) -> usize {
        self.mem.capacity as usize - RECORD_HEADER
    }

    /// The file's path (`None` for a heap ring).
    pub fn path(&self) -> Option<&Path> {
        self.mem.path.as_deref()
    }

    /// Removes the file. Open handles (here and elsewhere) stay valid.
    pub fn unlink(&self) -> Result<(), OpenError> {
        match &self.mem.path {
            Some(p) => region::unlink(p),
            None => Ok(()),
        }
    }

    /// Bytes published and not yet consumed (record framing and padding included).
    pub fn available_read(&self) -> usize {
        let (head, tail) = self.indices();
        tail.saturating_sub(head).min(self.mem.capacity) as usize
    }

    /// Messages published and not yet consumed, from the two sides' counters (a snapshot that
    /// may lag by a message while a side is mid-operation).
    pub fn len(&self) -> usize {
        let s = self.stats();
        s.messages_in.saturating_sub(s.messages_out) as usize
    }

    /// True if nothing is waiting to be read.
    pub fn is_empty(&self) -> bool {
        self.available_read() == 0
    }

    pub(super) fn indices(&self) -> (u64, u64) {
        let ctrl = self.mem.ctrl();
        // Acquire on both: a snapshot for callers that then act on it; head first so that
        // tail >= head holds in the snapshot with a well-behaved peer.
        let head = ctrl.consumer.head.load(Ordering::Acquire);
        let tail = ctrl.producer.tail.load(Ordering::Acquire);
        (head, tail)
    }

    /// A snapshot of the control block's counters.
    pub fn stats(&self) -> RingStats {
        let c = self.mem.ctrl();
        // Relaxed: statistics; no data is read on their strength.
        RingStats {
            messages_in: c.producer.messages.load(Ordering::Relaxed),
            bytes_in: c.producer.bytes.load(Ordering::Relaxed),
            full_waits: c.producer.full_waits.load(Ordering::Relaxed),
            messages_out: c.consumer.messages.load(Ordering::Relaxed),
            bytes_out: c.consumer.bytes.load(Ordering::Relaxed),
            empty_waits: c.consumer.empty_waits.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.release_producer();
        self.release_consumer();
    }
}
