//! [`Queue`]: a crash-safe, bounded, multi-producer multi-consumer queue of byte messages.
//!
//! # Algorithm
//!
//! A **two-lock bounded queue** in the spirit of Michael & Scott's two-lock queue ("Simple,
//! Fast, and Practical Non-Blocking and Blocking Concurrent Queue Algorithms", PODC 1996): one
//! lock serialises producers, another serialises consumers, so a producer and a consumer never
//! contend with each other. Here the queue is a ring of variable-length records framed like
//! Agrona's ring buffers (`RecordDescriptor`: a length/type header, 8-byte alignment, a padding
//! record at the wrap so no record is split). The locks are *robust* ([`crate::lock`]): the word
//! holds the owner's pid and start time, and a waiter replaces an owner that has died.
//!
//! Three monotonic byte positions (u64, never wrapping in practice) describe the ring:
//!
//! ```text
//!   reclaim            read                    tail                reclaim + capacity
//!      |  taken / done   |  committed, waiting   |   free for producers    |
//! ```
//!
//! * `tail` (producer lock): everything before it is committed. A producer writes whole records
//!   (header, payload) beyond `tail`, then publishes them with **one** Release store of `tail`.
//! * `read` (consumer lock): the next record to hand out. A consumer copies the records (or, for
//!   views, stamps them TAKEN with its owner word), then commits with **one** Release store of
//!   `read`.
//! * `reclaim` (lock-free, CAS): everything before it is free for producers. Anyone advances it
//!   over records that are finished: padding, records copied out (state still COMMITTED below
//!   `read`: only copying consumers leave that state there, and they copy before moving `read`),
//!   DONE records (released views) and TAKEN records whose owner is dead.
//!
//! # Why a SIGKILL at any instruction wedges nobody and loses nothing committed
//!
//! Each critical section changes shared state visible to others with exactly one store:
//! * a producer killed before its `tail` store has written only bytes beyond `tail`, which nobody
//!   reads and the next producer overwrites; killed after it, the records are committed, whole;
//! * a consumer killed before its `read` store has copied (or stamped) records still at or beyond
//!   `read`: they are delivered again to the next consumer (the dead one never returned them), and
//!   a stale TAKEN stamp at or beyond `read` means COMMITTED; killed after it, copied records are
//!   finished and viewed records are TAKEN by a dead owner;
//! * `reclaim` moves by CAS from a value to a larger one: a killed advancer leaves it unchanged.
//!
//! A lock whose holder died is taken over by the next waiter within one check interval
//! ([`QueueOptions::recovery_bound`] / 4); a TAKEN record whose owner died is reclaimed by a
//! producer that finds the queue full, within one check interval too.
//!
//! **Messages a dead consumer had taken** (as views, or copied with `read` already stored) count
//! as delivered and are discarded: the consumer took them, and nobody can know whether it acted on
//! them. A message is never delivered twice to live consumers, and never lost before some
//! consumer took it.
//!
//! # Records
//!
//! ```text
//! data record (8-aligned, total = align8(16 + len)):
//!   0: len   u32   payload length
//!   4: state u32   COMMITTED | TAKEN | DONE
//!   8: owner u64   owner word of the consumer holding a view (TAKEN), else unused
//!  16: payload[len], padding to 8
//! padding record (at the wrap, fills to the end of the ring, may be only 8 bytes):
//!   0: len   u32   bytes to the end of the ring
//!   4: state u32   PADDING
//! ```
//!
//! A message longer than `capacity - 16` can never fit and is refused with
//! [`QueueError::TooLarge`]. Every length, state and position read from the mapping is validated
//! before use; inconsistent values give [`QueueError::Corrupt`], never an out-of-bounds access.
//! See `FORMAT.md` (## Queue) for the control block layout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{OpenError, QueueError};
use crate::layout::{Kind, Plan, PAD};
use crate::lock::{self, RobustLock};
use crate::owner;
use crate::region::{self, CreateOptions, OpenOptions, Region};
use crate::sync::{AtomicU64, Ordering};
use crate::wait::{Deadline, Waiter};

/// Control-block magic (`b"MMQUEUE1"` little-endian).
pub const QUEUE_MAGIC: u64 = u64::from_le_bytes(*b"MMQUEUE1");
/// Bytes of a data record before its payload.
pub const RECORD_HEADER: usize = 16;
/// Records start on multiples of this.
pub const RECORD_ALIGN: usize = 8;
/// Smallest capacity accepted ([`crate::layout::checked_capacity`]: the ring's rule too).
pub const MIN_CAPACITY: usize = crate::layout::MIN_CAPACITY;
/// Largest capacity accepted (lengths are stored as u32).
pub const MAX_CAPACITY: usize = crate::layout::MAX_CAPACITY;

/// Record state: written by a producer, not yet taken (or copied out, below `read`).
pub const STATE_COMMITTED: u32 = 0x4D4D_0001;
/// Record state: filler to the end of the ring.
pub const STATE_PADDING: u32 = 0x4D4D_0002;
/// Record state: handed out as a view to the consumer named by `owner`.
pub const STATE_TAKEN: u32 = 0x4D4D_0003;
/// Record state: view released, the space may be reclaimed.
pub const STATE_DONE: u32 = 0x4D4D_0004;

/// One padded 128-byte line holding a single hot u64.
#[repr(C)]
#[derive(Debug)]
pub struct PosLine {
    /// The position.
    pub value: AtomicU64,
    _pad: [u8; PAD - 8],
}

/// A lock on its own line.
#[repr(C)]
#[derive(Debug)]
pub struct LockLine {
    /// The lock (word + futex waiter).
    pub lock: RobustLock,
    _pad: [u8; PAD - 16],
}

/// A futex waiter on its own line.
#[repr(C)]
#[derive(Debug)]
pub struct WaiterLine {
    /// The waiter.
    pub waiter: Waiter,
    _pad: [u8; PAD - 8],
}

/// One side's counters (for tools; updated under that side's lock, except `recoveries`).
#[repr(C)]
#[derive(Debug)]
pub struct StatsLine {
    /// Messages put (producer line) / taken (consumer line).
    pub msgs: AtomicU64,
    /// Payload bytes put / taken.
    pub bytes: AtomicU64,
    /// Times a producer found the queue full / a consumer found it empty and had to wait.
    pub waits: AtomicU64,
    /// Locks taken over from dead holders (producer line: producer lock; consumer line: consumer lock).
    pub lock_recoveries: AtomicU64,
    /// Records reclaimed from dead view holders (consumer line only).
    pub view_recoveries: AtomicU64,
    /// Times producers found the queue full because a view not yet released held the oldest
    /// space, counted once per such view (producer line only).
    pub view_stalls: AtomicU64,
    /// 1 + the position of the view last counted in `view_stalls` (0: none yet).
    pub view_stall_at: AtomicU64,
    _pad: [u8; PAD - 56],
}

/// Written once at creation, read-only afterwards (openers validate a copy).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConfigLine {
    /// [`QUEUE_MAGIC`].
    pub magic: u64,
    /// Data area size (ring capacity in bytes).
    pub capacity: u64,
    /// [`RECORD_HEADER`].
    pub record_header: u64,
    /// [`RECORD_ALIGN`].
    pub record_align: u64,
    _pad: [u8; PAD - 32],
}

/// The queue's control block, right after the file header. Every hot word has its own line.
#[repr(C)]
#[derive(Debug)]
pub struct Control {
    /// Immutable configuration.
    pub config: ConfigLine,
    /// Producer lock.
    pub prod_lock: LockLine,
    /// `tail` (producer lock).
    pub tail: PosLine,
    /// Producer counters.
    pub prod_stats: StatsLine,
    /// Consumer lock.
    pub cons_lock: LockLine,
    /// `read` (consumer lock).
    pub read: PosLine,
    /// Consumer counters.
    pub cons_stats: StatsLine,
    /// `reclaim` (CAS, anyone).
    pub reclaim: PosLine,
    /// Consumers sleep here for "not empty".
    pub not_empty: WaiterLine,
    /// Producers sleep here for "not full".
    pub not_full: WaiterLine,
}

/// Size of [`Control`].
pub const CONTROL_SIZE: usize = 10 * PAD;

#[cfg(not(loom))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<PosLine>() == PAD);
    assert!(size_of::<LockLine>() == PAD);
    assert!(size_of::<WaiterLine>() == PAD);
    assert!(size_of::<StatsLine>() == PAD);
    assert!(size_of::<ConfigLine>() == PAD);
    assert!(size_of::<RobustLock>() == 16);
    assert!(size_of::<Control>() == CONTROL_SIZE);
    assert!(offset_of!(Control, prod_lock) == PAD);
    assert!(offset_of!(Control, tail) == 2 * PAD);
    assert!(offset_of!(Control, prod_stats) == 3 * PAD);
    assert!(offset_of!(Control, cons_lock) == 4 * PAD);
    assert!(offset_of!(Control, read) == 5 * PAD);
    assert!(offset_of!(Control, cons_stats) == 6 * PAD);
    assert!(offset_of!(Control, reclaim) == 7 * PAD);
    assert!(offset_of!(Control, not_empty) == 8 * PAD);
    assert!(offset_of!(Control, not_full) == 9 * PAD);
};

/// Options for creating or opening a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    /// File mode at creation (default 0600).
    pub mode: u32,
    /// Open files owned by another user (default false).
    pub allow_foreign_owner: bool,
    /// Longest time a dead lock holder or view holder can block this handle (default 1 s). The
    /// owner is checked every quarter of it while waiting.
    pub recovery_bound: Duration,
    /// Map every page of the ring into this process when the handle is made (default false),
    /// with `madvise(MADV_POPULATE_WRITE)` (Linux 5.14 and later; elsewhere nothing happens).
    /// Without it each page is mapped on first touch: a page fault per 4 KiB page, which made
    /// the first lap of 8 MiB puts about 5x slower than later ones on the test machine. With
    /// it, create/open pays that instead (about 0.25 ms per MiB there), once per handle.
    pub prefault: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            mode: 0o600,
            allow_foreign_owner: false,
            recovery_bound: Duration::from_secs(1),
            prefault: false,
        }
    }
}

/// Counters of a queue (all processes together), for tools and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Messages put.
    pub msgs_in: u64,
    /// Payload bytes put.
    pub bytes_in: u64,
    /// Times a producer found the queue full.
    pub full_waits: u64,
    /// Messages taken (copied or as views).
    pub msgs_out: u64,
    /// Payload bytes taken.
    pub bytes_out: u64,
    /// Times a consumer found the queue empty and waited.
    pub empty_waits: u64,
    /// Locks taken over from dead holders (both sides).
    pub lock_recoveries: u64,
    /// Records reclaimed from dead view holders.
    pub view_recoveries: u64,
    /// Times producers found the queue full because a view not yet released held the oldest
    /// space, counted once per such view however many puts (and wait slices) it stalls. Such a
    /// put waits for the view (or its holder's death), or returns `false`/fewer at its timeout.
    pub view_stalls: u64,
    /// Bytes in use (framing included): messages waiting, and messages taken as views and not
    /// released yet ([`Queue::used_bytes`]).
    pub used_bytes: u64,
}

/// A record's first 8 bytes as one word: `len` in bytes 0..4, `state` in bytes 4..8, each in the
/// machine's byte order (little-endian: the only ABI, see FORMAT.md), exactly as two separate
/// `u32`s would lie there.
#[inline]
const fn head_word(len: u32, state: u32) -> u64 {
    let (l, s) = (len.to_ne_bytes(), state.to_ne_bytes());
    u64::from_ne_bytes([l[0], l[1], l[2], l[3], s[0], s[1], s[2], s[3]])
}

/// `(len, state)` of a record's first word (the inverse of [`head_word`]).
#[inline]
const fn split_head(word: u64) -> (u32, u32) {
    let b = word.to_ne_bytes();
    (u32::from_ne_bytes([b[0], b[1], b[2], b[3]]), u32::from_ne_bytes([b[4], b[5], b[6], b[7]]))
}

#[inline]
const fn record_size(len: usize) -> u64 {
    ((RECORD_HEADER + len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)) as u64
}

/// The `accept` of consumers that take every record ([`Queue::take_locked`]).
#[inline(always)]
fn any_record(_idx: u64, _len: u32, _taken: usize) -> bool {
    true
}

#[cold]
fn corrupt(what: impl Into<String>) -> QueueError {
    QueueError::Corrupt { reason: what.into() }
}

/// A bounded MPMC queue of byte messages in a shared-memory file.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("mmapipc-doc-queue-{}", std::process::id()));
/// # let _ = std::fs::remove_file(&path);
/// use mmapipc::Queue;
/// let q = Queue::create(&path, 1 << 16)?;
/// assert!(q.try_put(b"hello")?);
/// q.put_batch(&[b"a".as_slice(), b"bc"])?;
///
/// let other = Queue::open(&path)?; // typically in another process
/// assert_eq!(other.len(), 3);
/// assert_eq!(other.try_get()?.as_deref(), Some(&b"hello"[..]));
/// let batch = other.try_get_batch(10)?;
/// assert_eq!(batch, vec![b"a".to_vec(), b"bc".to_vec()]);
/// assert!(other.try_get()?.is_none());
/// q.unlink()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue {
    region: Region,
    ctrl: *const Control,
    data: *mut u8,
    cap: u64,
    path: PathBuf,
    check_interval: Duration,
    /// Last `reclaim` this handle read under the producer lock (a process-local lower bound of
    /// it, see `write_locked`; the initial 0 is one too).
    reclaim_seen: std::sync::atomic::AtomicU64,
}

// SAFETY: the handle owns its Region; `ctrl` and `data` point into it. Shared state is reached
// only through atomics and raw-pointer copies, which are as safe from another thread as from
// another process (the protocol already handles concurrent peers).
unsafe impl Send for Queue {}
// SAFETY: as for Send: `&Queue` only allows atomic operations and protocol-guarded copies.
unsafe impl Sync for Queue {}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("path", &self.path).field("capacity", &self.cap).finish()
    }
}

/// What one locked take did: `n` messages, `read` moved from `from` to `to`.
#[derive(Clone, Copy)]
struct Taken {
    n: usize,
    from: u64,
    to: u64,
}

/// Which way a consumer takes records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    Copy,
    View,
}

impl Queue {
    /// Creates a queue whose ring holds `capacity` bytes (64 to 4 GiB - 8, rounded up to a
    /// multiple of 8: [`crate::layout::checked_capacity`]) at `path` (a bare name lives in
    /// `/dev/shm`). Each message costs `16 + len` bytes rounded up
    /// to 8; the largest message is `capacity - 16` bytes.
    pub fn create(path: impl AsRef<Path>, capacity: usize) -> Result<Queue, OpenError> {
        Self::create_with(path, capacity, &QueueOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, capacity: usize, opts: &QueueOptions) -> Result<Queue, OpenError> {
        Self::create_with_schema(path, capacity, opts, &[])
    }

    /// [`create_with`](Self::create_with), storing `schema` (a typed channel's schema JSON; empty
    /// for an untyped queue) in the file's schema area before the file is published.
    pub fn create_with_schema(
        path: impl AsRef<Path>,
        capacity: usize,
        opts: &QueueOptions,
        schema: &[u8],
    ) -> Result<Queue, OpenError> {
        let path = region::resolve_path(path);
        let cap = crate::layout::checked_capacity(Kind::Queue, capacity)?;
        let plan = Plan::new(CONTROL_SIZE as u64, schema.len() as u64, cap as u64)
            .ok_or_else(|| OpenError::InvalidArgument(format!("capacity {capacity} is too large")))?;
        let creating = region::create_file(&path, Kind::Queue, plan, &CreateOptions { mode: opts.mode })?;
        if !schema.is_empty() {
            creating.write_schema(schema)?;
        }
        // SAFETY: the control block lies at control_offset..+CONTROL_SIZE inside the fresh
        // mapping, which nobody else trusts before publish.
        unsafe { init_control(creating.region().as_ptr().add(plan.control_offset as usize), cap as u64) };
        let region = creating.publish()?;
        Ok(Self::from_region(region, plan.control_offset as usize, plan.data_offset as usize, cap as u64, path, opts))
    }

    /// Opens an existing queue, validating its header and control block.
    pub fn open(path: impl AsRef<Path>) -> Result<Queue, OpenError> {
        Self::open_with(path, &QueueOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &QueueOptions) -> Result<Queue, OpenError> {
        let path = region::resolve_path(path);
        let (region, header) =
            region::open_file(&path, Kind::Queue, &OpenOptions { allow_foreign_owner: opts.allow_foreign_owner })?;
        let bad = |reason: String| OpenError::CorruptHeader { path: path.clone(), reason };
        if header.control_size != CONTROL_SIZE as u64 {
            return Err(bad(format!("queue control block is {} bytes, expected {CONTROL_SIZE}", header.control_size)));
        }
        // SAFETY: validated header: control_offset + CONTROL_SIZE <= data_offset <= region.len().
        // The config line is written once before READY (Acquired by open_file) and is plain data.
        let config = unsafe {
            std::ptr::read_volatile(region.as_ptr().add(header.control_offset as usize) as *const ConfigLine)
        };
        let cap = header.data_size;
        if config.magic != QUEUE_MAGIC
            || config.capacity != cap
            || config.record_header != RECORD_HEADER as u64
            || config.record_align != RECORD_ALIGN as u64
            || cap % RECORD_ALIGN as u64 != 0
            || cap < MIN_CAPACITY as u64
            || cap > MAX_CAPACITY as u64
        {
            return Err(bad(format!("queue configuration is inconsistent (capacity {cap}, config {config:?})")));
        }
        Ok(Self::from_region(region, header.control_offset as usize, header.data_offset as usize, cap, path, opts))
    }

    fn from_region(
        region: Region,
        control_offset: usize,
        data_offset: usize,
        cap: u64,
        path: PathBuf,
        opts: &QueueOptions,
    ) -> Queue {
        debug_assert!(data_offset as u64 + cap <= region.len() as u64);
        // SAFETY: both offsets lie inside the region (plan / validated header).
        let (ctrl, data) =
            unsafe { (region.as_ptr().add(control_offset) as *const Control, region.as_ptr().add(data_offset)) };
        let check_interval = (opts.recovery_bound / 4).max(Duration::from_millis(1));
        if opts.prefault {
            prefault(data, cap as usize);
        }
        Queue { region, ctrl, data, cap, path, check_interval, reclaim_seen: std::sync::atomic::AtomicU64::new(0) }
    }

    /// A queue in a heap region (no file): for tests, loom-free unit tests and miri.
    pub fn in_heap(capacity: usize) -> Queue {
        let cap = ((capacity.max(MIN_CAPACITY) + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)) as u64;
        let data_offset = CONTROL_SIZE.next_multiple_of(RECORD_ALIGN * 16);
        let region = Region::heap(data_offset + cap as usize);
        // SAFETY: the heap region is at least CONTROL_SIZE bytes, aligned, and private to us.
        unsafe { init_control(region.as_ptr(), cap) };
        Self::from_region(region, 0, data_offset, cap, PathBuf::new(), &QueueOptions::default())
    }

    fn ctrl(&self) -> &Control {
        // SAFETY: `ctrl` points at CONTROL_SIZE bytes inside our mapping, 128-aligned (the
        // mapping is page aligned, control_offset is 128 or 0). Every field is either an atomic
        // (accessed only atomically by every process) or the config line, written once before
        // publish and never again by protocol; a peer scribbling over it changes only values,
        // which we never trust for memory safety (the validated copy from `open` is what we use).
        unsafe { &*self.ctrl }
    }

    // ----- record access (raw, validated by callers) -----

    /// The first word of the record at ring index `idx` (`len` and `state`, see [`head_word`];
    /// must satisfy `idx % 8 == 0`, `idx + 8 <= cap`).
    ///
    /// `len` and `state` are accessed together as one 8-byte atomic, never as two 4-byte ones:
    /// records move through the ring, so the same 8 bytes are at other times an owner word or
    /// payload words (read by `peek_committed` as 8-byte atomics). With every atomic access to the
    /// data area 8 bytes wide and 8-aligned, no two atomic accesses of different sizes ever touch
    /// the same bytes. That matters because not every access here is ordered: an advancer that
    /// loaded `reclaim` before another advancer moved it may still read heads in space that a
    /// producer is already reusing (its CAS then fails and the values are dropped). With 4-byte
    /// heads that read could race an 8-byte owner store, which Rust's model leaves undefined;
    /// Miri's weak-memory emulation cannot run mixed sizes at all. The bytes in the file are the
    /// same as before. (What remains in that window: the 8-byte load may race the producer's plain
    /// payload stores, a data race in the model; see docs/hardening.md.)
    #[inline]
    fn head(&self, idx: u64) -> &AtomicU64 {
        debug_assert!(idx % 8 == 0 && idx + 8 <= self.cap);
        // SAFETY: idx + 8 <= cap keeps the word inside the data area; idx is a multiple of 8 and
        // the data area is page aligned, so the word is 8-aligned. Record heads are accessed only
        // atomically (8 bytes wide) by every process while they are heads.
        unsafe { &*(self.data.add(idx as usize) as *const AtomicU64) }
    }

    /// The owner word of the data record at `idx` (requires `idx + 16 <= cap`).
    #[inline]
    fn owner(&self, idx: u64) -> &AtomicU64 {
        debug_assert!(idx % 8 == 0 && idx + 16 <= self.cap);
        // SAFETY: idx + 16 <= cap, 8-aligned; accessed only atomically.
        unsafe { &*(self.data.add(idx as usize + 8) as *const AtomicU64) }
    }

    /// Validates the data record at `pos` (state already read) whose bytes must end by `limit`;
    /// returns its total size.
    #[inline]
    fn span(&self, pos: u64, len: u32, state: u32, limit: u64) -> Result<u64, QueueError> {
        let idx = pos % self.cap;
        let span = if state == STATE_PADDING {
            let s = len as u64;
            if s != self.cap - idx || s < 8 {
                return Err(corrupt(format!("padding record at {pos} has length {len}, expected {}", self.cap - idx)));
            }
            s
        } else {
            let s = record_size(len as usize);
            if s > self.cap - idx {
                return Err(corrupt(format!("record at {pos} of {len} bytes crosses the end of the ring")));
            }
            s
        };
        if pos + span > limit {
            return Err(corrupt(format!("record at {pos} of {span} bytes extends past the published end {limit}")));
        }
        Ok(span)
    }

    /// Largest position a valid queue can hold: leaves room for `position + 2 * capacity`
    /// arithmetic (positions grow by bytes written; a real queue takes decades to get here).
    #[inline]
    fn max_pos(&self) -> u64 {
        u64::MAX - 2 * self.cap
    }

    fn positions_ok(&self, a: u64, b: u64, what: &str) -> Result<(), QueueError> {
        if a > b || b - a > self.cap || a % 8 != 0 || b % 8 != 0 || b > self.max_pos() {
            return Err(corrupt(format!("queue positions are inconsistent ({what}: {a}, {b}, capacity {})", self.cap)));
        }
        Ok(())
    }

    // ----- producer side -----

    /// Writes as many of `msgs` as fit now (the producer lock is held); one `tail` store.
    fn write_locked(&self, msgs: &mut dyn Source, from: usize) -> Result<usize, QueueError> {
        let c = self.ctrl();
        // SYNC: tail-publish. Acquire: a previous holder that died after its store is not
        // synchronised with us through the lock word; this load is.
        let tail = c.tail.value.load(Ordering::Acquire);
        // The `reclaim` this process saw last (under this lock): reclaim only grows, so it is a
        // safe lower bound, and while it leaves room we need not read the shared line, which
        // consumers write on every take (a cache miss here, and one for their next CAS).
        // Relaxed: it was stored after an Acquire load of `reclaim` in an earlier critical
        // section of this lock, which happens-before ours through the lock's Release/Acquire.
        let mut reclaim = self.reclaim_seen.load(std::sync::atomic::Ordering::Relaxed);
        let mut fresh = false;
        if self.positions_ok(reclaim, tail, "").is_err() {
            // Stale (another process moved tail on a newer reclaim) or never read.
            reclaim = self.load_reclaim(tail)?;
            fresh = true;
        }
        let mut limit = reclaim + self.cap;
        let mut pos = tail;
        let mut n = 0;
        let mut bytes = 0u64;
        for i in from..msgs.count() {
            let m_len = msgs.len(i);
            let need = record_size(m_len);
            let idx = pos % self.cap;
            let room = self.cap - idx;
            let end = if need > room { pos + room + need } else { pos + need };
            if end > limit && !fresh {
                reclaim = self.load_reclaim(tail)?;
                fresh = true;
                limit = reclaim + self.cap;
            }
            if need > room {
                if pos + room > limit {
                    break;
                }
                // Relaxed: published by the Release store of `tail` below (tail-publish).
                self.head(idx).store(head_word(room as u32, STATE_PADDING), Ordering::Relaxed);
                pos += room;
                if pos + need > limit {
                    break;
                }
            } else if pos + need > limit {
                break;
            }
            let idx = pos % self.cap;
            // Relaxed: both words are published by the Release store of `tail` (tail-publish).
            self.head(idx).store(head_word(m_len as u32, STATE_COMMITTED), Ordering::Relaxed);
            self.owner(idx).store(0, Ordering::Relaxed);
            if m_len % RECORD_ALIGN != 0 {
                // Zero the record's last word before the payload covers its start, so every
                // byte of the record is written by this lap: the padding bytes after the payload
                // carry no stale bytes of an older record, and no 8-byte word here is left half
                // atomic (an older head or owner) and half plain payload, which Miri's
                // weak-memory emulation cannot model (see `head`).
                // SAFETY: need >= 24 here, idx + need <= cap, and the word lies in our free
                // space (as for the slot below); it is 8-aligned, a plain non-atomic write.
                unsafe { std::ptr::write_bytes(self.data.add(idx as usize + need as usize - 8), 0, 8) };
            }
            // SAFETY: idx + need <= cap (checked: need <= room), and [pos, pos + need) lies in
            // [tail, reclaim + cap): free space that only the producer-lock holder writes and no
            // consumer reads before our tail store, so this slot is ours alone until then.
            let slot = unsafe { std::slice::from_raw_parts_mut(self.data.add(idx as usize + RECORD_HEADER), m_len) };
            if let Err(e) = msgs.fill(i, slot) {
                // Nothing of this message is visible: tail still excludes it. Commit what came
                // before, then report.
                if pos != tail {
                    // SYNC: tail-publish (as below).
                    c.tail.value.store(pos, Ordering::Release);
                }
                return Err(e);
            }
            pos += need;
            n += 1;
            bytes += m_len as u64;
        }
        if pos != tail {
            // SYNC: tail-publish. Release: the record headers and payloads written above
            // happen-before any consumer's Acquire load of `tail` that sees `pos`. This single
            // store is the commit: killed before it, nothing is visible.
            c.tail.value.store(pos, Ordering::Release);
        }
        if n > 0 {
            let s = &c.prod_stats;
            s.msgs.store(s.msgs.load(Ordering::Relaxed).wrapping_add(n as u64), Ordering::Relaxed);
            s.bytes.store(s.bytes.load(Ordering::Relaxed).wrapping_add(bytes), Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Reads the shared `reclaim` (producer lock held), checks it against `tail` and remembers it.
    fn load_reclaim(&self, tail: u64) -> Result<u64, QueueError> {
        // SYNC: reclaim-publish. Acquire pairs with the Release CAS in `advance_reclaim`: every
        // consumer read of the space before `reclaim` happens-before our overwrite of it.
        let reclaim = self.ctrl().reclaim.value.load(Ordering::Acquire);
        self.positions_ok(reclaim, tail, "reclaim, tail")?;
        // Relaxed: read back only under the producer lock (see write_locked).
        self.reclaim_seen.store(reclaim, std::sync::atomic::Ordering::Relaxed);
        Ok(reclaim)
    }

    /// Whether a message of `need` record bytes (or a padding record in front of it) can be
    /// written now, judged from the shared positions.
    fn can_progress(&self, need: u64) -> bool {
        let c = self.ctrl();
        let tail = c.tail.value.load(Ordering::Acquire);
        let reclaim = c.reclaim.value.load(Ordering::Acquire);
        if reclaim > tail || tail - reclaim > self.cap || tail > self.max_pos() {
            return true; // let the locked path report the corruption
        }
        let room = self.cap - tail % self.cap;
        let step = if need > room { room } else { need };
        tail + step <= reclaim + self.cap
    }

    fn check_sizes(&self, msgs: &dyn Source) -> Result<(), QueueError> {
        let max = self.max_message_size();
        match (0..msgs.count()).map(|i| msgs.len(i)).find(|&l| l > max) {
            Some(len) => Err(QueueError::TooLarge { len, max }),
            None => Ok(()),
        }
    }

    fn produce(&self, msgs: &mut dyn Source, deadline: Deadline, block: bool) -> Result<usize, QueueError> {
        self.check_sizes(msgs)?;
        let me = owner::me();
        let c = self.ctrl();
        let mut done = 0;
        let mut counted_wait = false;
        while done < msgs.count() {
            let got = c.prod_lock.lock.lock(me, deadline, self.check_interval);
            let Some(how) = got else { return Ok(done) };
            if how == lock::Acquired::Recovered {
                c.prod_stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
            }
            let r = self.write_locked(msgs, done);
            c.prod_lock.lock.unlock(me);
            let n = r?;
            if n > 0 {
                done += n;
                c.not_empty.waiter.notify();
                continue;
            }
            // Full (or only padding fitted). Reclaim what is finished, then wait.
            if self.advance_reclaim(false) || self.skip_padding(deadline)? {
                continue;
            }
            self.count_view_stall();
            if !block {
                if self.can_progress(record_size(msgs.len(done))) {
                    continue;
                }
                return Ok(done);
            }
            if !counted_wait {
                counted_wait = true;
                c.prod_stats.waits.fetch_add(1, Ordering::Relaxed);
            }
            let need = record_size(msgs.len(done));
            let r: Result<Option<()>, ()> = c.not_full.waiter.wait_until(
                deadline,
                self.check_interval,
                || self.can_progress(need).then_some(()),
                || {
                    // A view holder may have died: reclaim its records.
                    self.advance_reclaim(true);
                    Ok(())
                },
            );
            if let Ok(None) = r {
                // Deadline: one last chance for records of dead view holders.
                if !(self.advance_reclaim(true) && self.can_progress(need)) {
                    return Ok(done);
                }
            }
        }
        Ok(done)
    }

    /// If the record at `read` is padding (published alone by a producer that must wrap), moves
    /// `read` past it under the consumer lock and reclaims it. Returns whether anything moved.
    fn skip_padding(&self, deadline: Deadline) -> Result<bool, QueueError> {
        let c = self.ctrl();
        let read = c.read.value.load(Ordering::Acquire);
        if read >= c.tail.value.load(Ordering::Acquire) || read % 8 != 0 {
            return Ok(false);
        }
        // Relaxed: only a hint; the locked take below re-reads it after Acquiring `tail`.
        if split_head(self.head(read % self.cap).load(Ordering::Relaxed)).1 != STATE_PADDING {
            return Ok(false);
        }
        let me = owner::me();
        let Some(got) = c.cons_lock.lock.lock(me, deadline, self.check_interval) else { return Ok(false) };
        if got == lock::Acquired::Recovered {
            c.cons_stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
        }
        let r = self.take_locked(0, Take::Copy, any_record, |_, _, _| {});
        c.cons_lock.lock.unlock(me);
        r?;
        Ok(self.advance_reclaim(false))
    }

    /// Puts `msg` if there is room now; `Ok(false)` if the queue is full.
    pub fn try_put(&self, msg: &[u8]) -> Result<bool, QueueError> {
        Ok(self.produce(&mut Slices(&[msg]), Deadline::after(Some(Duration::ZERO)), false)? == 1)
    }

    /// Puts `msg`, waiting for room as long as it takes.
    pub fn put(&self, msg: &[u8]) -> Result<(), QueueError> {
        self.produce(&mut Slices(&[msg]), Deadline::after(None), true).map(|_| ())
    }

    /// Puts `msg`, waiting at most `timeout` for room; `Ok(false)` on timeout. Space is freed in
    /// ring order, so a view held elsewhere can keep the queue full however fast consumers
    /// take: [`QueueStats::view_stalls`] counts the views that stalled producers so.
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<bool, QueueError> {
        Ok(self.produce(&mut Slices(&[msg]), Deadline::after(Some(timeout)), true)? == 1)
    }

    /// Puts as many of `msgs` as fit now, in order, under one lock acquisition and with one
    /// commit; returns how many. Fails with [`QueueError::TooLarge`] (putting nothing) if any
    /// message can never fit.
    pub fn try_put_batch(&self, msgs: &[&[u8]]) -> Result<usize, QueueError> {
        self.produce(&mut Slices(msgs), Deadline::after(Some(Duration::ZERO)), false)
    }

    /// Puts all of `msgs`, in order, waiting for room as needed (each wait ends with as many
    /// messages as fit being committed at once). Returns `msgs.len()`.
    pub fn put_batch(&self, msgs: &[&[u8]]) -> Result<usize, QueueError> {
        self.produce(&mut Slices(msgs), Deadline::after(None), true)
    }

    /// [`put_batch`](Self::put_batch) waiting at most `timeout`; returns how many were put.
    pub fn put_batch_timeout(&self, msgs: &[&[u8]], timeout: Duration) -> Result<usize, QueueError> {
        self.produce(&mut Slices(msgs), Deadline::after(Some(timeout)), true)
    }

    /// Puts one message of `len` bytes written **in place**: `fill` receives the claimed slot
    /// (8-byte aligned, exactly `len` bytes) while this process holds the producer lock, and the
    /// message is committed when it returns `Ok`. An `Err` from `fill` commits nothing and is
    /// returned. Waits at most `timeout` for room (`None`: forever); `Ok(false)` on timeout.
    /// Keep `fill` short: other producers wait for the lock meanwhile.
    pub fn put_with<F>(&self, len: usize, timeout: Option<Duration>, fill: F) -> Result<bool, QueueError>
    where
        F: FnOnce(&mut [u8]) -> Result<(), QueueError>,
    {
        let block = timeout != Some(Duration::ZERO);
        let mut src = WithFill { len, fill: Some(fill) };
        Ok(self.produce(&mut src, Deadline::after(timeout), block)? == 1)
    }

    // ----- consumer side -----

    /// Takes up to `max` records (consumer lock held); calls `f(pos, payload_ptr, len)` for each.
    /// Before taking a record, asks `accept(idx, len, n)` (its ring index, its length, how many
    /// were taken so far): `false` ends the run there, leaving that record for the next call.
    /// Padding is skipped without asking. Returns how many, and the span `[from, to)` that
    /// `read` moved over.
    fn take_locked(
        &self,
        max: usize,
        how: Take,
        mut accept: impl FnMut(u64, u32, usize) -> bool,
        mut f: impl FnMut(u64, *mut u8, usize),
    ) -> Result<Taken, QueueError> {
        let c = self.ctrl();
        let read = c.read.value.load(Ordering::Acquire);
        // SYNC: tail-publish. Acquire pairs with the producer's Release store: the records
        // before `tail` are fully written when we read them.
        let tail = c.tail.value.load(Ordering::Acquire);
        self.positions_ok(read, tail, "read, tail")?;
        let me = if how == Take::View { owner::me() } else { 0 };
        let mut pos = read;
        let mut n = 0;
        let mut bytes = 0u64;
        while pos < tail {
            let idx = pos % self.cap;
            let head = self.head(idx);
            // Relaxed: the record lies before `tail`, Acquired above (tail-publish); below `tail`
            // and at or beyond `read` only the consumer-lock holder (us) writes it.
            let (len, state) = split_head(head.load(Ordering::Relaxed));
            match state {
                // Padding is always skipped, also after the last record taken (so a producer
                // waiting to wrap is not held up by a padding record nobody reads).
                STATE_PADDING => {
                    pos += self.span(pos, len, state, tail)?;
                }
                STATE_COMMITTED | STATE_TAKEN if n == max || !accept(idx, len, n) => break,
                STATE_COMMITTED | STATE_TAKEN => {
                    // A TAKEN stamp at or beyond `read` was left by a consumer killed before its
                    // commit: the record was never handed out, it is still COMMITTED.
                    let span = self.span(pos, len, state, tail)?;
                    // Relaxed: published to advancers by our Release store of `read` (read-publish);
                    // `len` is unchanged, we rewrite it with the state (one 8-byte word).
                    if how == Take::View {
                        self.owner(idx).store(me, Ordering::Relaxed);
                        head.store(head_word(len, STATE_TAKEN), Ordering::Relaxed);
                    } else if state == STATE_TAKEN {
                        head.store(head_word(len, STATE_COMMITTED), Ordering::Relaxed);
                    }
                    // SAFETY: span() checked idx + 16 + len <= cap; the record lies before
                    // `tail`, so it is fully written and nobody writes it until `reclaim`
                    // passes it, which needs `read` to pass it first (we hold the consumer lock).
                    let p = unsafe { self.data.add(idx as usize + RECORD_HEADER) };
                    f(pos, p, len as usize);
                    pos += span;
                    n += 1;
                    bytes += len as u64;
                }
                other => {
                    return Err(corrupt(format!(
                        "record at {pos} has unknown state {other:#x} (expected a committed record)"
                    )))
                }
            }
        }
        if pos != read {
            // SYNC: read-publish. Release: our copies out of the records (and the TAKEN stamps)
            // happen-before an advancer's Acquire load of `read`, and so before any producer
            // overwrites them. This single store is the consumer's commit.
            c.read.value.store(pos, Ordering::Release);
        }
        if n > 0 {
            let s = &c.cons_stats;
            s.msgs.store(s.msgs.load(Ordering::Relaxed).wrapping_add(n as u64), Ordering::Relaxed);
            s.bytes.store(s.bytes.load(Ordering::Relaxed).wrapping_add(bytes), Ordering::Relaxed);
        }
        Ok(Taken { n, from: read, to: pos })
    }

    /// After a copying take of `[from, to)`: every record there is finished (copied out, or
    /// padding), so if `reclaim` stands at `from` it can jump to `to` without walking the
    /// records; otherwise (views or other consumers' records before `from` not reclaimed yet)
    /// walk as usual.
    fn reclaim_copied(&self, t: Taken) {
        if t.from == t.to {
            return;
        }
        let c = self.ctrl();
        // SYNC: reclaim-publish. Release: our copies out of [from, to) happen-before a producer's
        // Acquire load of the new `reclaim`, as in advance_reclaim. No record in the span needs
        // an Acquire of its state: none is a view (we took them all by copy, under the lock,
        // and nobody else takes records below `read`).
        match c.reclaim.value.compare_exchange(t.from, t.to, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => c.not_full.waiter.notify(),
            Err(_) => {
                self.advance_reclaim(false);
            }
        }
    }

    /// True if `tail != read` (something may be available).
    #[inline]
    fn maybe_nonempty(&self) -> bool {
        let c = self.ctrl();
        // SYNC: tail-publish (Acquire; the locked path re-reads it anyway).
        c.tail.value.load(Ordering::Acquire) != c.read.value.load(Ordering::Relaxed)
    }

    fn consume(
        &self,
        max: usize,
        how: Take,
        deadline: Deadline,
        block: bool,
        mut accept: impl FnMut(u64, u32, usize) -> bool,
        mut f: impl FnMut(u64, *mut u8, usize),
    ) -> Result<usize, QueueError> {
        if max == 0 {
            return Ok(0);
        }
        let c = self.ctrl();
        let me = owner::me();
        let mut counted_wait = false;
        loop {
            if self.maybe_nonempty() {
                let Some(got) = c.cons_lock.lock.lock(me, deadline, self.check_interval) else { return Ok(0) };
                if got == lock::Acquired::Recovered {
                    c.cons_stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
                }
                let r = self.take_locked(max, how, &mut accept, &mut f);
                c.cons_lock.lock.unlock(me);
                let t = r?;
                if t.n > 0 {
                    if how == Take::Copy {
                        self.reclaim_copied(t);
                    }
                    return Ok(t.n);
                }
            }
            if !block || deadline.expired() {
                return Ok(0);
            }
            if !counted_wait {
                counted_wait = true;
                c.cons_stats.waits.fetch_add(1, Ordering::Relaxed);
            }
            let r: Result<Option<()>, ()> = c.not_empty.waiter.wait_until(
                deadline,
                self.check_interval,
                || self.maybe_nonempty().then_some(()),
                || Ok(()),
            );
            if let Ok(None) = r {
                return Ok(0);
            }
        }
    }

    /// Takes the next message, if any, and calls `f` on its bytes in place (while holding the
    /// consumer lock: keep `f` short). The message is consumed whatever `f` does.
    pub fn try_get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, QueueError> {
        self.get_with_deadline(Deadline::after(Some(Duration::ZERO)), false, f)
    }

    /// [`try_get_with`](Self::try_get_with) waiting up to `timeout` (`None`: forever).
    pub fn get_with_timeout<R>(
        &self,
        timeout: Option<Duration>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, QueueError> {
        self.get_with_deadline(Deadline::after(timeout), true, f)
    }

    fn get_with_deadline<R>(
        &self,
        deadline: Deadline,
        block: bool,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, QueueError> {
        let mut f = Some(f);
        let mut out = None;
        self.consume(1, Take::Copy, deadline, block, any_record, |_, p, len| {
            // SAFETY: take_locked hands us `len` bytes at `p` inside a record it owns until the
            // consumer lock is released (after this call).
            let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
            if let Some(f) = f.take() {
                out = Some(f(bytes));
            }
        })?;
        Ok(out)
    }

    /// Takes up to `max` messages now, under one lock acquisition, calling `f` on each in place.
    /// Returns how many were taken (0 if empty).
    pub fn try_get_batch_with(&self, max: usize, f: impl FnMut(&[u8])) -> Result<usize, QueueError> {
        self.get_batch_with_deadline(max, Deadline::after(Some(Duration::ZERO)), false, f)
    }

    /// [`try_get_batch_with`](Self::try_get_batch_with) waiting up to `timeout` (`None`: forever)
    /// for at least one message.
    pub fn get_batch_with_timeout(
        &self,
        max: usize,
        timeout: Option<Duration>,
        f: impl FnMut(&[u8]),
    ) -> Result<usize, QueueError> {
        self.get_batch_with_deadline(max, Deadline::after(timeout), true, f)
    }

    fn get_batch_with_deadline(
        &self,
        max: usize,
        deadline: Deadline,
        block: bool,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize, QueueError> {
        self.consume(max, Take::Copy, deadline, block, any_record, |_, p, len| {
            // SAFETY: as in get_with_deadline.
            f(unsafe { std::slice::from_raw_parts(p as *const u8, len) })
        })
    }

    /// Waits until a message may be available and the consumer lock can be taken (recovering it
    /// from a dead holder if need be), for at most `timeout` (`None`: forever). Takes nothing:
    /// bindings call it without their interpreter lock, then take with a `try_` call.
    pub fn wait_available(&self, timeout: Option<Duration>) -> Result<bool, QueueError> {
        let deadline = Deadline::after(timeout);
        let c = self.ctrl();
        loop {
            if self.maybe_nonempty() {
                // A free lock can be taken by the caller's `try_` call right away: no need to
                // take and drop it here (two more atomic RMWs and a fence per blocking get).
                if c.cons_lock.lock.holder() == 0 {
                    return Ok(true);
                }
                let me = owner::me();
                let Some(got) = c.cons_lock.lock.lock(me, deadline, self.check_interval) else { return Ok(false) };
                if got == lock::Acquired::Recovered {
                    c.cons_stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
                }
                c.cons_lock.lock.unlock(me);
                return Ok(true);
            }
            let r: Result<Option<()>, ()> = c.not_empty.waiter.wait_until(
                deadline,
                self.check_interval,
                || self.maybe_nonempty().then_some(()),
                || Ok(()),
            );
            if let Ok(None) = r {
                return Ok(false);
            }
        }
    }

    /// Takes the next message now, copied into a `Vec`.
    pub fn try_get(&self) -> Result<Option<Vec<u8>>, QueueError> {
        self.try_get_with(<[u8]>::to_vec)
    }

    /// Takes the next message, waiting as long as it takes.
    pub fn get(&self) -> Result<Vec<u8>, QueueError> {
        loop {
            if let Some(v) = self.get_with_timeout(None, <[u8]>::to_vec)? {
                return Ok(v);
            }
        }
    }

    /// Takes the next message, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<Vec<u8>>, QueueError> {
        self.get_with_timeout(Some(timeout), <[u8]>::to_vec)
    }

    /// Takes up to `max` messages now (copies), under one lock acquisition.
    pub fn try_get_batch(&self, max: usize) -> Result<Vec<Vec<u8>>, QueueError> {
        let mut v = Vec::new();
        self.try_get_batch_with(max, |b| v.push(b.to_vec()))?;
        Ok(v)
    }

    /// Takes up to `max` messages, waiting up to `timeout` (`None`: forever) for the first.
    pub fn get_batch_timeout(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>, QueueError> {
        let mut v = Vec::new();
        self.get_batch_with_timeout(max, timeout, |b| v.push(b.to_vec()))?;
        Ok(v)
    }

    /// Takes up to `max` messages as raw views (records stamped TAKEN by this process); the
    /// caller must pass each `pos` to [`release_raw`](Self::release_raw) exactly once.
    fn take_raw_views(&self, max: usize, deadline: Deadline, block: bool) -> Result<Vec<RawView>, QueueError> {
        let mut v = Vec::new();
        self.consume(max, Take::View, deadline, block, any_record, |pos, ptr, len| v.push(RawView { pos, ptr, len }))?;
        Ok(v)
    }

    /// Takes the next message as a zero-copy view; its slot is not reused until the view drops.
    ///
    /// ```
    /// let q = mmapipc::Queue::in_heap(4096);
    /// q.try_put(b"frame")?;
    /// let v = q.try_get_view()?.expect("one message");
    /// assert_eq!(&*v, b"frame");
    /// drop(v); // releases the slot
    /// # Ok::<(), mmapipc::QueueError>(())
    /// ```
    pub fn try_get_view(&self) -> Result<Option<View<'_>>, QueueError> {
        Ok(self.try_get_views(1)?.pop())
    }

    /// Up to `max` messages now as views, under one lock acquisition.
    pub fn try_get_views(&self, max: usize) -> Result<Vec<View<'_>>, QueueError> {
        self.get_views_deadline(max, Deadline::after(Some(Duration::ZERO)), false)
    }

    /// Up to `max` messages as views, waiting up to `timeout` (`None`: forever) for the first.
    pub fn get_views_timeout(&self, max: usize, timeout: Option<Duration>) -> Result<Vec<View<'_>>, QueueError> {
        self.get_views_deadline(max, Deadline::after(timeout), true)
    }

    fn get_views_deadline(&self, max: usize, deadline: Deadline, block: bool) -> Result<Vec<View<'_>>, QueueError> {
        Ok(self.take_raw_views(max, deadline, block)?.into_iter().map(|raw| View { q: self, raw }).collect())
    }

    /// Like [`get_views_timeout`](Self::get_views_timeout) but the views own an `Arc` of the
    /// queue (for bindings that hand views to a garbage collector). `timeout` `Some(ZERO)`
    /// does not block.
    pub fn get_owned_views(
        self: &Arc<Self>,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<OwnedView>, QueueError> {
        let block = timeout != Some(Duration::ZERO);
        Ok(self
            .take_raw_views(max, Deadline::after(timeout), block)?
            .into_iter()
            .map(|raw| OwnedView { q: Arc::clone(self), raw })
            .collect())
    }

    /// Takes up to `max` messages of exactly `len` bytes each that lie at equal distances in
    /// the ring, as **one** zero-copy view: payload `i` is at `as_ptr() + i * stride()`, so
    /// bindings can expose the run as an array of fixed-size records (NumPy reads a batch of
    /// ticks as one structured array). The records are held (stamped TAKEN by this process, like
    /// [`get_owned_views`](Self::get_owned_views)) until the [`FixedViews`] drops; none is reused
    /// before.
    ///
    /// The run is what the ring holds contiguously from the oldest waiting record: it stops at
    /// the ring's wrap (a padding record, or a record that does not fit before the end) and
    /// before a record of another length; the rest is left for the next call. So a batch may be
    /// shorter than what is waiting, and holds at least one record when it is `Some`.
    ///
    /// Waits up to `timeout` (`None`: forever; `Some(ZERO)`: not at all) for a first record;
    /// `Ok(None)` when none came. A **first** record of another length is taken, discarded and
    /// reported as [`QueueError::WrongSize`] (a channel of fixed-size records never holds one;
    /// taking it keeps it from blocking every later batch).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// let q = Arc::new(mmapipc::Queue::in_heap(4096));
    /// for i in 0..5u64 {
    ///     q.try_put(&i.to_le_bytes())?;
    /// }
    /// let batch = q.get_fixed_views(10, 8, Some(std::time::Duration::ZERO))?.expect("five records");
    /// assert_eq!((batch.count(), batch.stride()), (5, 24));
    /// assert_eq!(batch.get(3), Some(&3u64.to_le_bytes()[..]));
    /// drop(batch); // releases the five slots
    /// # Ok::<(), mmapipc::QueueError>(())
    /// ```
    pub fn get_fixed_views(
        self: &Arc<Self>,
        max: usize,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<FixedViews>, QueueError> {
        let block = timeout != Some(Duration::ZERO);
        let stride = record_size(len);
        // Where the run starts (ring index) and the first record's length, set when the first
        // record is offered: every later record must sit `stride` further on with length `len`.
        let mut run: Option<(u64, u32)> = None;
        let accept = |idx: u64, l: u32, n: usize| {
            if n == 0 {
                run = Some((idx, l)); // the first record is always taken (checked below)
                return true;
            }
            matches!(run, Some((idx0, l0)) if l0 as usize == len && l as usize == len && idx == idx0 + n as u64 * stride)
        };
        let mut first: Option<(u64, *mut u8, usize)> = None; // position, payload, length
        let mut count = 0usize;
        let f = |pos: u64, ptr: *mut u8, l: usize| {
            match first {
                None => first = Some((pos, ptr, l)),
                // Equal spacing in the ring and no padding between (padding would restart the
                // index at 0): the positions are equally spaced too.
                Some((pos0, _, _)) => debug_assert_eq!(pos, pos0 + count as u64 * stride),
            }
            count += 1;
        };
        self.consume(max, Take::View, Deadline::after(timeout), block, accept, f)?;
        let Some((pos, ptr, first_len)) = first else { return Ok(None) };
        let batch = FixedViews { q: Arc::clone(self), pos, ptr, count, stride: stride as usize, len };
        if first_len != len {
            drop(batch); // releases the odd record: it is discarded
            return Err(QueueError::WrongSize { len: first_len, expected: len });
        }
        Ok(Some(batch))
    }

    /// Marks the viewed record at `pos` DONE and reclaims what it can.
    fn release_raw(&self, pos: u64) {
        if self.mark_done(pos) {
            self.advance_reclaim(false);
        }
    }

    /// Marks the viewed record at `pos` DONE if this process holds it; returns whether it did.
    fn mark_done(&self, pos: u64) -> bool {
        let idx = pos % self.cap;
        if idx + RECORD_HEADER as u64 > self.cap {
            return false;
        }
        // A forked child that inherited a view must not release its parent's slot.
        if self.owner(idx).load(Ordering::Relaxed) != owner::me() {
            return false;
        }
        let head = self.head(idx);
        // Relaxed: this process stamped the word TAKEN (under the consumer lock) before the view
        // existed, so that store happens-before this drop (program order, or whatever moved the
        // view to this thread); nobody else writes the word while the view is held.
        let (len, state) = split_head(head.load(Ordering::Relaxed));
        if state != STATE_TAKEN {
            return false;
        }
        // SYNC: view-done. Release: our reads through the view happen-before an advancer's
        // Acquire load of this state, and so before a producer reuses the slot. The whole word is
        // compared, so a changed `len` (a hostile peer) makes it fail like a changed state.
        head.compare_exchange(
            head_word(len, STATE_TAKEN),
            head_word(len, STATE_DONE),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_ok()
    }

    /// Moves `reclaim` over finished records (see the module docs); with `check_dead`, also over
    /// records TAKEN by processes that no longer run. Lock-free (CAS). Returns whether it moved.
    pub fn advance_reclaim(&self, check_dead: bool) -> bool {
        let c = self.ctrl();
        let mut moved = false;
        let mut last_owner = (0u64, false);
        for _ in 0..8 {
            // SYNC: reclaim-publish (Acquire, pairs with other advancers' Release CAS).
            let start = c.reclaim.value.load(Ordering::Acquire);
            // SYNC: read-publish. Acquire pairs with the consumer's Release store of `read`: the
            // states and copies of records before it are visible.
            let read = c.read.value.load(Ordering::Acquire);
            if self.positions_ok(start, read, "reclaim, read").is_err() {
                return moved;
            }
            let mut pos = start;
            let mut recovered = 0u64;
            while pos < read {
                let idx = pos % self.cap;
                // SYNC: view-done (Acquire, pairs with the Release CAS in `mark_done`).
                let (len, state) = split_head(self.head(idx).load(Ordering::Acquire));
                let finished = match state {
                    STATE_PADDING | STATE_COMMITTED | STATE_DONE => true,
                    STATE_TAKEN if check_dead && idx + RECORD_HEADER as u64 <= self.cap => {
                        let o = self.owner(idx).load(Ordering::Relaxed);
                        if last_owner.0 != o || o == 0 {
                            last_owner = (o, o != 0 && owner::alive(o));
                        }
                        if !last_owner.1 {
                            recovered += 1;
                        }
                        !last_owner.1
                    }
                    _ => false,
                };
                if !finished {
                    break;
                }
                match self.span(pos, len, state, read) {
                    Ok(s) => pos += s,
                    Err(_) => break, // racing with a reuse, or corrupt: the locked paths report it
                }
            }
            if pos == start {
                return moved;
            }
            // SYNC: reclaim-publish. Release: everything we Acquired above (consumer copies,
            // view releases) happens-before a producer's Acquire load of the new `reclaim`.
            match c.reclaim.value.compare_exchange(start, pos, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    moved = true;
                    if recovered > 0 {
                        c.cons_stats.view_recoveries.fetch_add(recovered, Ordering::Relaxed);
                    }
                    c.not_full.waiter.notify();
                    if pos == read {
                        return true;
                    }
                }
                Err(_) => continue,
            }
        }
        moved
    }

    // ----- inspection and maintenance -----

    /// Messages committed and not yet taken. Exact when no peer is active; otherwise a snapshot
    /// that may be stale by the time it returns. Walks the records (O(messages)).
    pub fn len(&self) -> usize {
        let c = self.ctrl();
        for _ in 0..4 {
            let read = c.read.value.load(Ordering::Acquire);
            let tail = c.tail.value.load(Ordering::Acquire);
            if self.positions_ok(read, tail, "").is_err() {
                continue;
            }
            let mut pos = read;
            let mut n = 0;
            let mut ok = true;
            while pos < tail {
                let idx = pos % self.cap;
                // Relaxed: below `tail` (Acquired above); a snapshot, validated by span().
                let (len, state) = split_head(self.head(idx).load(Ordering::Relaxed));
                match self.span(pos, len, state, tail) {
                    Ok(s) => pos += s,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
                if state != STATE_PADDING {
                    n += 1;
                }
            }
            if ok {
                return n;
            }
        }
        0
    }

    /// True if no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Discards every waiting message; returns how many. Safe with active peers: it takes the
    /// consumer lock, so it never races a consumer; producers keep going. Views already handed
    /// out stay valid.
    pub fn clear(&self) -> Result<usize, QueueError> {
        let c = self.ctrl();
        let me = owner::me();
        if c.cons_lock.lock.lock(me, Deadline::after(None), self.check_interval) == Some(lock::Acquired::Recovered) {
            c.cons_stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
        }
        let r = self.take_locked(usize::MAX, Take::Copy, any_record, |_, _, _| {});
        c.cons_lock.lock.unlock(me);
        let n = r?.n;
        self.advance_reclaim(false);
        Ok(n)
    }

    /// Ring size in bytes.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Largest message that fits (`capacity - 16`).
    pub fn max_message_size(&self) -> usize {
        self.cap as usize - RECORD_HEADER
    }

    /// The file's path (empty for a heap queue).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file; open handles stay usable.
    pub fn unlink(&self) -> Result<(), OpenError> {
        region::unlink(&self.path)
    }

    /// Recovers locks and view records held by dead processes right now (normally done by
    /// waiters within the recovery bound). Returns whether anything was recovered.
    pub fn recover(&self) -> bool {
        let c = self.ctrl();
        let me = owner::me();
        let mut any = false;
        for (l, s) in [(&c.prod_lock, &c.prod_stats), (&c.cons_lock, &c.cons_stats)] {
            if l.lock.steal_if_dead(me) {
                s.lock_recoveries.fetch_add(1, Ordering::Relaxed);
                l.lock.unlock(me);
                any = true;
            }
        }
        self.advance_reclaim(true) || any
    }

    /// The region (for tools and tests).
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Raw pointer to the control block (tests that corrupt it on purpose).
    #[doc(hidden)]
    pub fn control_ptr(&self) -> *mut u8 {
        self.ctrl as *mut u8
    }

    /// Raw pointer to the data area (tests that corrupt it on purpose).
    #[doc(hidden)]
    pub fn data_ptr(&self) -> *mut u8 {
        self.data
    }
}

/// Maps the pages of `[ptr, ptr + len)` (inside a live mapping) into this process's page tables
/// without changing a byte; false if the kernel could not (too old, or not a mapping).
fn prefault(ptr: *mut u8, len: usize) -> bool {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let start = ptr as usize / page * page;
        // SAFETY: the range from the page holding `ptr` to `ptr + len` lies inside the caller's
        // mapping (mappings start on a page boundary). MADV_POPULATE_WRITE only faults the pages
        // in, as a write would, without writing: peers' data is untouched.
        unsafe { libc::madvise(start as *mut libc::c_void, ptr as usize + len - start, libc::MADV_POPULATE_WRITE) == 0 }
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    {
        let _ = (ptr, len);
        false
    }
}

/// Writes a fresh control block at `p`.
///
/// # Safety
/// `p` must point at `CONTROL_SIZE` writable, 8-aligned bytes that no other process uses yet.
unsafe fn init_control(p: *mut u8, cap: u64) {
    // SAFETY: per the contract; zero is a valid value for every atomic, then the config line.
    unsafe {
        std::ptr::write_bytes(p, 0, CONTROL_SIZE);
        std::ptr::write_volatile(
            p as *mut ConfigLine,
            ConfigLine {
                magic: QUEUE_MAGIC,
                capacity: cap,
                record_header: RECORD_HEADER as u64,
                record_align: RECORD_ALIGN as u64,
                _pad: [0; PAD - 32],
            },
        );
    }
}

// ----- read-only inspection (the `mmapipc` tool): nothing here takes a lock or writes -----

/// Messages copied out of a queue without taking them ([`Queue::peek_committed`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peeked {
    /// `(position, payload)` of each message, oldest first.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Where the next call should continue (the committed tail seen).
    pub next: u64,
    /// True if consumers had already taken records from `from` on (they were missed), or if
    /// copied records were reclaimed and overwritten meanwhile and dropped.
    pub missed: bool,
}

#[cfg(not(loom))]
impl Queue {
    /// The control block (positions, locks, counters, waiters), for tools. Read it only.
    pub fn control(&self) -> &Control {
        self.ctrl()
    }

    /// Owner words of records handed out as views and not yet released (between `reclaim` and
    /// `read`, state TAKEN), deduplicated, at most `max` distinct owners.
    pub fn view_holders(&self, max: usize) -> Vec<u64> {
        let c = self.ctrl();
        let start = c.reclaim.value.load(Ordering::Acquire);
        let read = c.read.value.load(Ordering::Acquire);
        let mut owners = Vec::new();
        if self.positions_ok(start, read, "").is_err() {
            return owners;
        }
        let mut pos = start;
        while pos < read && owners.len() < max {
            let idx = pos % self.cap;
            // SYNC: view-done (Acquire, as in advance_reclaim; a snapshot for tools).
            let (len, state) = split_head(self.head(idx).load(Ordering::Acquire));
            if state == STATE_TAKEN && idx + RECORD_HEADER as u64 <= self.cap {
                let o = self.owner(idx).load(Ordering::Relaxed);
                if o != 0 && !owners.contains(&o) {
                    owners.push(o);
                }
            }
            match self.span(pos, len, state, read) {
                Ok(s) => pos += s,
                Err(_) => break, // racing with reuse: a snapshot is all a tool gets
            }
        }
        owners
    }

    /// Copies committed messages not yet taken (between `read` and `tail`) **without taking
    /// them** (for `mmapipc tail`). Starts at `from` (a [`Peeked::next`]) or at `read`; keeps the
    /// last `keep`. Races with consumers: a record taken while we read it may be reclaimed and
    /// overwritten. So afterwards `reclaim` is re-read (seqlock style): records below it are
    /// dropped, and the walk is trusted only if it started at or passed through that position
    /// (an overwritten header could have sent it to a wrong boundary); otherwise it is retried.
    pub fn peek_committed(&self, from: Option<u64>, keep: usize) -> Result<Peeked, QueueError> {
        let c = self.ctrl();
        let mut from = from;
        let mut missed = false;
        for _ in 0..100 {
            // read and tail are two loads: between them consumers and then producers may move
            // on, so `tail - read` can exceed the capacity in a snapshot of a healthy queue.
            let read = c.read.value.load(Ordering::Acquire);
            // SYNC: tail-publish. Acquire: records before tail are fully written.
            let tail = c.tail.value.load(Ordering::Acquire);
            if self.positions_ok(read, tail, "read, tail").is_err() {
                continue;
            }
            let start = match from {
                Some(f) if f >= read && f <= tail && f % 8 == 0 => f,
                Some(f) => {
                    missed |= f < read;
                    read
                }
                None => read,
            };
            let mut chain: Vec<u64> = Vec::new();
            let mut found: std::collections::VecDeque<(u64, u64, usize)> = std::collections::VecDeque::new();
            let mut pos = start;
            let mut failure = None;
            while pos < tail {
                chain.push(pos);
                let idx = pos % self.cap;
                // Relaxed: below `tail` (Acquired above); a racing reuse is caught by the seqlock
                // check of `reclaim` below.
                let (len, state) = split_head(self.head(idx).load(Ordering::Relaxed));
                let span = match self.span(pos, len, state, tail) {
                    Ok(s) => s,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                match state {
                    STATE_PADDING => {}
                    STATE_COMMITTED | STATE_TAKEN | STATE_DONE => {
                        if keep > 0 {
                            if found.len() == keep {
                                found.pop_front();
                            }
                            found.push_back((pos, idx + RECORD_HEADER as u64, len as usize));
                        }
                    }
                    other => {
                        failure = Some(corrupt(format!("record at {pos} has unknown state {other:#x}")));
                        break;
                    }
                }
                pos += span;
            }
            let mut records = Vec::with_capacity(found.len());
            for (p, off, len) in found {
                let mut buf = vec![0u8; len];
                for i in 0..len.div_ceil(8) {
                    // SAFETY: span() checked off - 16 + align8(16 + len) <= cap, so every word
                    // lies in the data area; off is 8-aligned. Read atomically: after a consumer
                    // takes the record a producer may overwrite it (detected below and dropped).
                    let w = unsafe { &*(self.data.add(off as usize + 8 * i) as *const AtomicU64) };
                    let bytes = w.load(Ordering::Relaxed).to_le_bytes();
                    let n = (len - 8 * i).min(8);
                    buf[8 * i..8 * i + n].copy_from_slice(&bytes[..n]);
                }
                records.push((p, buf));
            }
            // SYNC: reclaim-publish (seqlock-style check): a byte is only overwritten after
            // `reclaim` passed it, so everything at or above the reclaim read now was intact.
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let reclaim = c.reclaim.value.load(Ordering::Acquire);
            let synced = start >= reclaim || chain.binary_search(&reclaim).is_ok() || reclaim >= pos;
            if let Some(e) = failure {
                if synced && pos >= reclaim {
                    return Err(e); // a record nobody may reuse yet is bad: real corruption
                }
                missed = true;
                from = None;
                continue;
            }
            if !synced {
                missed = true;
                from = None;
                continue;
            }
            let before = records.len();
            records.retain(|(p, _)| *p >= reclaim);
            missed |= records.len() != before;
            return Ok(Peeked { records, next: pos, missed });
        }
        Err(corrupt("no consistent snapshot of the queue in 100 attempts"))
    }
}

#[derive(Debug)]
struct RawView {
    pos: u64,
    ptr: *mut u8,
    len: usize,
}

/// A zero-copy view of one message in the ring. Derefs to its bytes; releases the slot on drop.
///
/// Space is reclaimed in ring order, so a view held for long pins its slot *and everything
/// written after it*: once producers wrap around to it they wait (or time out) until it is
/// released. Keep views short-lived, or copy what must outlive the next lap.
#[derive(Debug)]
pub struct View<'q> {
    q: &'q Queue,
    raw: RawView,
}

impl std::ops::Deref for View<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the record is TAKEN by this process; no producer writes it until it is DONE,
        // which only our Drop does. The bytes lie inside the mapping, which `q` keeps alive.
        unsafe { std::slice::from_raw_parts(self.raw.ptr, self.raw.len) }
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        self.q.release_raw(self.raw.pos);
    }
}

/// A view that owns an `Arc` of its queue (see [`Queue::get_owned_views`]).
#[derive(Debug)]
pub struct OwnedView {
    q: Arc<Queue>,
    raw: RawView,
}

// SAFETY: the raw pointer targets the mapping kept alive by `q`; the bytes are read-only while
// TAKEN, so sharing or moving the view across threads is fine.
unsafe impl Send for OwnedView {}
// SAFETY: as above, `&OwnedView` only permits reads of a slot nobody writes.
unsafe impl Sync for OwnedView {}

impl OwnedView {
    /// Pointer to the payload (valid while the view lives).
    pub fn as_ptr(&self) -> *const u8 {
        self.raw.ptr
    }
}

impl std::ops::Deref for OwnedView {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: as for View.
        unsafe { std::slice::from_raw_parts(self.raw.ptr, self.raw.len) }
    }
}

impl Drop for OwnedView {
    fn drop(&mut self) {
        self.q.release_raw(self.raw.pos);
    }
}

/// A run of equally spaced records of one length, held in place (see
/// [`Queue::get_fixed_views`]). Dropping it releases every record of the run.
#[derive(Debug)]
pub struct FixedViews {
    q: Arc<Queue>,
    /// Position of the first record (record `i` is at `pos + i * stride`).
    pos: u64,
    /// Payload of the first record.
    ptr: *mut u8,
    count: usize,
    stride: usize,
    len: usize,
}

// SAFETY: the raw pointer targets the mapping kept alive by `q`; the records are read-only
// while TAKEN (nobody writes them until this value drops), so moving or sharing the value
// across threads is fine.
unsafe impl Send for FixedViews {}
// SAFETY: as above, `&FixedViews` only permits reads of slots nobody writes.
unsafe impl Sync for FixedViews {}

impl FixedViews {
    /// Start of the first record's payload; record `i`'s payload is at `i * stride()` from it.
    /// Valid for reads of [`span`](Self::span) bytes while this value lives.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Number of records (at least 1).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Distance between consecutive payloads: the record size (16-byte header + payload,
    /// rounded up to 8).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Payload length of every record.
    pub fn message_len(&self) -> usize {
        self.len
    }

    /// Bytes from the first payload to the end of the last one.
    pub fn span(&self) -> usize {
        (self.count - 1) * self.stride + self.len
    }

    /// Payload of record `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.count).then(|| {
            // SAFETY: record i lies within the span of TAKEN records this value holds (count,
            // stride and len were validated by take_locked's span() checks), inside the mapping
            // `q` keeps alive; nobody writes it until we drop.
            unsafe { std::slice::from_raw_parts(self.ptr.add(i * self.stride), self.len) }
        })
    }
}

impl Drop for FixedViews {
    fn drop(&mut self) {
        let mut any = false;
        for i in 0..self.count as u64 {
            any |= self.q.mark_done(self.pos + i * self.stride as u64);
        }
        if any {
            self.q.advance_reclaim(false);
        }
    }
}

mod space;
#[cfg(all(test, not(loom)))]
mod tests;

/// Messages for the producer path: their lengths, and a way to write each into its slot.
trait Source {
    fn count(&self) -> usize;
    fn len(&self, i: usize) -> usize;
    fn fill(&mut self, i: usize, slot: &mut [u8]) -> Result<(), QueueError>;
}

/// Byte messages copied from the caller's buffers.
struct Slices<'a, 'b>(&'a [&'b [u8]]);

impl Source for Slices<'_, '_> {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn len(&self, i: usize) -> usize {
        self.0[i].len()
    }
    fn fill(&mut self, i: usize, slot: &mut [u8]) -> Result<(), QueueError> {
        slot.copy_from_slice(self.0[i]);
        Ok(())
    }
}

/// One message written in place by a closure.
struct WithFill<F> {
    len: usize,
    fill: Option<F>,
}

impl<F: FnOnce(&mut [u8]) -> Result<(), QueueError>> Source for WithFill<F> {
    fn count(&self) -> usize {
        1
    }
    fn len(&self, _: usize) -> usize {
        self.len
    }
    fn fill(&mut self, _: usize, slot: &mut [u8]) -> Result<(), QueueError> {
        match self.fill.take() {
            Some(f) => f(slot),
            None => Err(corrupt("a message was written twice")),
        }
    }
}
