//! The [`Queue`] handle: creating, opening and heap queues, options, counters and sizes.

use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::Duration;

use super::error::{corrupt, QueueError};
use super::layout::{write_control, ConfigLine, Control, LockLine, StatsLine, CONTROL_SIZE, QUEUE_MAGIC};
use super::layout::{MAX_CAPACITY, MIN_CAPACITY};
use super::records::{record_size, split_head, RECORD_ALIGN, RECORD_HEADER, STATE_PADDING};
use crate::error::OpenError;
use crate::layout::{checked_capacity, Kind};
use crate::lock::Acquired;
use crate::mem::DataArea;
use crate::region::{self, ChannelPlan, CreateOptions, OpenOptions, Region};
use crate::shorthands::channel_shorthands;
use crate::sync::{AtomicU64, Ordering};
use crate::wait::{Deadline, SpinWindow};

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
    /// Without it each page is mapped on first touch, a page fault per 4 KiB page during the
    /// first lap of the ring; with it, create/open pays for all of them at once, once per handle.
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
    pub messages_in: u64,
    /// Payload bytes put.
    pub bytes_in: u64,
    /// Times a producer found the queue full.
    pub full_waits: u64,
    /// Messages taken (copied or as views).
    pub messages_out: u64,
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

/// What keeps a queue's control block and data area alive.
enum Memory {
    /// A file mapping holding both (kept for its drop, which unmaps it).
    File { _mapping: Region },
    /// A heap queue: the control block, leaked from a `Box` and freed on drop; the data area
    /// owns its own block.
    Heap(NonNull<Control>),
}

impl Drop for Memory {
    fn drop(&mut self) {
        if let Memory::Heap(ctrl) = *self {
            // SAFETY: the pointer came from Box::leak in `Queue::heap` and is freed only here;
            // the queue holding it is being dropped, and views hold the queue.
            drop(unsafe { Box::from_raw(ctrl.as_ptr()) });
        }
    }
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
    ctrl: *const Control,
    pub(super) data: DataArea,
    pub(super) cap: u64,
    path: PathBuf,
    pub(super) check_interval: Duration,
    /// Last `reclaim` this handle read under the producer lock (a process-local lower bound of
    /// it, see `write_locked`; the initial 0 is one too).
    pub(super) reclaim_seen: AtomicU64,
    /// When a producer of this handle waits for a frame's release ([`crate::mem::reuse`]),
    /// written under the producer lock.
    pub(super) hot: AtomicU64,
    /// How long this handle's waits for a message and for room poll before they sleep.
    pub(super) get_window: SpinWindow,
    pub(super) put_window: SpinWindow,
    _mem: Memory,
}

// SAFETY: the handle owns its memory (`_mem`); `ctrl` and `data` point into it. Shared state is
// reached only through atomics and protocol-guarded copies, which are as safe from another
// thread as from another process (the protocol already handles concurrent peers).
unsafe impl Send for Queue {}
// SAFETY: as for Send: `&Queue` only allows atomic operations and protocol-guarded copies.
unsafe impl Sync for Queue {}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("path", &self.path).field("capacity", &self.cap).finish()
    }
}

channel_shorthands! {
    impl Queue(create: QueueOptions, open: QueueOptions) -> OpenError;
    /// Creates a queue whose ring holds `capacity` bytes (64 to 4 GiB - 8, rounded up to a
    /// multiple of 8: [`crate::layout::checked_capacity`]) at `path` (a bare name lives in
    /// `/dev/shm`). Each message costs `16 + len` bytes rounded up
    /// to 8; the largest message is `capacity - 16` bytes.
    fn create;
    /// Opens an existing queue, validating its header and control block.
    fn open;
}

impl Queue {
    /// [`create_with`](Self::create_with), storing `schema` (a typed channel's schema JSON; empty
    /// for an untyped queue) in the file's schema area before the file is published.
    pub fn create_with_schema(
        path: impl AsRef<Path>,
        capacity: usize,
        opts: &QueueOptions,
        schema: &[u8],
    ) -> Result<Queue, OpenError> {
        let spec = ChannelPlan { kind: Kind::Queue, control_size: CONTROL_SIZE, capacity, schema };
        let (region, plan, path) =
            region::create_channel(path, spec, &CreateOptions { mode: opts.mode }, |ctrl, cap| {
                // SAFETY: the control block lies at `ctrl`..+CONTROL_SIZE inside the fresh mapping
                // (page aligned; the offset is 128), which nobody else trusts before publish.
                unsafe { write_control(ctrl, cap) }
            })?;
        let cap = plan.data_size;
        Ok(Self::from_region(region, plan.control_offset as usize, plan.data_offset as usize, cap, path, opts))
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &QueueOptions) -> Result<Queue, OpenError> {
        let open = OpenOptions { allow_foreign_owner: opts.allow_foreign_owner };
        let (region, header, path) = region::open_channel(path, Kind::Queue, CONTROL_SIZE, &open)?;
        let bad = |reason: String| OpenError::CorruptHeader { path: path.clone(), reason };
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
        // SAFETY: both offsets lie inside the region (plan / validated header); the data area is
        // page aligned, `cap` bytes long (a multiple of 8), and lives as long as the region,
        // which the queue owns.
        let (ctrl, data) = unsafe {
            let base = region.as_ptr();
            (base.add(control_offset) as *const Control, DataArea::new(base.add(data_offset), cap as usize))
        };
        Self::assemble(ctrl, data, path, opts, Memory::File { _mapping: region })
    }

    /// A queue on the heap (no file), for tests, loom models and Miri: `capacity` as for
    /// [`create`](Self::create). Handles are shared by reference or `Arc`.
    ///
    /// ```
    /// let q = mmapipc::Queue::heap(4096)?;
    /// assert!(q.try_put(b"x")?);
    /// assert_eq!(q.try_get()?.as_deref(), Some(&b"x"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap(capacity: usize) -> Result<Queue, OpenError> {
        let cap = checked_capacity(Kind::Queue, capacity)?;
        let ctrl = NonNull::from(Box::leak(Box::new(Control::new(cap as u64))));
        let data = DataArea::heap(cap);
        Ok(Self::assemble(ctrl.as_ptr(), data, PathBuf::new(), &QueueOptions::default(), Memory::Heap(ctrl)))
    }

    fn assemble(ctrl: *const Control, data: DataArea, path: PathBuf, opts: &QueueOptions, mem: Memory) -> Queue {
        let cap = data.len() as u64;
        let check_interval = (opts.recovery_bound / 4).max(Duration::from_millis(1));
        if opts.prefault {
            data.prefault();
        }
        Queue {
            ctrl,
            data,
            cap,
            path,
            check_interval,
            reclaim_seen: AtomicU64::new(0),
            hot: AtomicU64::new(0),
            get_window: SpinWindow::new(),
            put_window: SpinWindow::new(),
            _mem: mem,
        }
    }

    pub(super) fn ctrl(&self) -> &Control {
        // SAFETY: `ctrl` points at a Control inside the memory `_mem` keeps alive, 128-aligned (a
        // page-aligned mapping at offset 128, or a Box of the 128-aligned type). Every field is
        // either an atomic (accessed only atomically by every process) or the config line,
        // written once before publish and never again by protocol; a peer scribbling over it
        // changes only values, which we never trust for memory safety (the validated copy from
        // `open` is what we use).
        unsafe { &*self.ctrl }
    }

    /// Takes the lock of `line` for `me` by `deadline`, counting a takeover from a dead holder
    /// in `stats`; false when the deadline passed first.
    #[inline]
    pub(super) fn acquire(&self, line: &LockLine, stats: &StatsLine, me: u64, deadline: Deadline) -> bool {
        match line.lock.lock(me, deadline, self.check_interval) {
            Some(Acquired::Clean) => true,
            Some(Acquired::Recovered) => {
                stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Messages committed and not yet taken. Exact when no peer is active; otherwise a snapshot
    /// that may be stale by the time it returns. Walks the records (O(messages)).
    pub fn len(&self) -> usize {
        let c = self.ctrl();
        for _ in 0..4 {
            let read = c.read.value.load(Ordering::Acquire);
            // SYNC: tail-publish (Acquire: the records before it are written).
            let tail = c.tail.value.load(Ordering::Acquire);
            if self.positions_ok(read, tail, "").is_err() {
                continue;
            }
            let mut pos = read;
            let mut n = 0;
            let mut ok = true;
            while pos < tail {
                // Relaxed: below `tail` (Acquired above); a snapshot, validated by span().
                let (len, state) = split_head(self.head(pos % self.cap).load(Ordering::Relaxed));
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

    /// Bytes in use (framing included): between `reclaim` and `tail`, that is messages waiting
    /// and messages taken as views and not released yet. A snapshot when peers are active.
    pub fn used_bytes(&self) -> usize {
        let c = self.ctrl();
        // Acquire, reclaim first: both only grow, so the later tail is at least this reclaim;
        // `tail - reclaim` can exceed the capacity only in a snapshot, hence the `min`.
        let reclaim = c.reclaim.value.load(Ordering::Acquire);
        let tail = c.tail.value.load(Ordering::Acquire);
        tail.saturating_sub(reclaim).min(self.cap) as usize
    }

    /// Bytes free for producers now: `capacity - used_bytes()`. Framing is not subtracted (a
    /// message of `n` bytes takes `16 + n` rounded up to 8, plus the rest of the ring as padding
    /// when it would wrap), and space behind an unreleased view is not free.
    pub fn available_write(&self) -> usize {
        self.capacity() - self.used_bytes()
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

    /// Counters summed over all processes.
    pub fn stats(&self) -> QueueStats {
        let c = self.ctrl();
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueStats {
            messages_in: l(&c.prod_stats.msgs),
            bytes_in: l(&c.prod_stats.bytes),
            full_waits: l(&c.prod_stats.waits),
            messages_out: l(&c.cons_stats.msgs),
            bytes_out: l(&c.cons_stats.bytes),
            empty_waits: l(&c.cons_stats.waits),
            // Wrapping: the counters are peer-writable.
            lock_recoveries: l(&c.prod_stats.lock_recoveries).wrapping_add(l(&c.cons_stats.lock_recoveries)),
            view_recoveries: l(&c.cons_stats.view_recoveries),
            view_stalls: l(&c.prod_stats.view_stalls),
            used_bytes: self.used_bytes() as u64,
        }
    }

    /// The control block (positions, locks, counters, waiters), for tools. Read it only.
    pub fn control(&self) -> &Control {
        self.ctrl()
    }

    /// Raw pointer to the control block (tests that corrupt it on purpose).
    #[doc(hidden)]
    pub fn control_ptr(&self) -> *mut u8 {
        self.ctrl as *mut u8
    }

    /// Raw pointer to the data area (tests that corrupt it on purpose; null under loom).
    #[doc(hidden)]
    pub fn data_ptr(&self) -> *mut u8 {
        self.data.ptr(0)
    }
}

/// Adds `n` to a counter only the holder of its side's lock writes: a load and a store, no
/// read-modify-write (the counters are for tools; a peer may write them, hence wrapping).
#[inline]
pub(super) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Record access and checks (the framing is `records.rs`).
impl Queue {
    /// The first word of the record at ring index `idx` (`len` and `state`, see [`head_word`]);
    /// requires `idx % 8 == 0`, which every validated position gives (`idx < cap` always holds).
    ///
    /// `len` and `state` are accessed together as one 8-byte atomic, never as two 4-byte ones:
    /// records move through the ring, so the same 8 bytes are at other times an owner word or
    /// payload (see `mem`, "Mixed-size atomics"). Not every access is ordered: an advancer that
    /// loaded `reclaim` before another advancer moved it may still read heads in space that a
    /// producer is already reusing (its CAS then fails and the values are dropped); with 8-byte
    /// heads that read never races an atomic of another size. It may race the producer's plain
    /// payload stores, a race the hardware resolves to some value (docs/hardening.md).
    #[inline]
    pub(super) fn head(&self, idx: u64) -> &AtomicU64 {
        debug_assert!(idx % 8 == 0 && idx < self.cap);
        // SAFETY: idx < cap and both are multiples of 8, so idx + 8 <= cap: the word lies in the
        // data area, 8-aligned. Record heads are accessed only atomically, 8 bytes wide.
        unsafe { self.data.word(idx) }
    }

    /// The owner word of the data record at `idx`; requires `idx % 8 == 0`, `idx + 16 <= cap`.
    #[inline]
    pub(super) fn owner(&self, idx: u64) -> &AtomicU64 {
        debug_assert!(idx % 8 == 0 && idx + RECORD_HEADER as u64 <= self.cap);
        // SAFETY: idx + 16 <= cap, 8-aligned (callers check it); accessed only atomically.
        unsafe { self.data.word(idx + 8) }
    }

    /// Validates the record at `pos` (head already read) whose bytes must end by `limit`;
    /// returns its total size.
    #[inline]
    pub(super) fn span(&self, pos: u64, len: u32, state: u32, limit: u64) -> Result<u64, QueueError> {
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
    pub(super) fn max_pos(&self) -> u64 {
        u64::MAX - 2 * self.cap
    }

    /// Checks two positions read from the mapping (`a` before `b` in the ring): ordered, at most
    /// a capacity apart, 8-aligned, and in range. `what` names them in the error.
    pub(super) fn positions_ok(&self, a: u64, b: u64, what: &str) -> Result<(), QueueError> {
        if a > b || b - a > self.cap || a % 8 != 0 || b % 8 != 0 || b > self.max_pos() {
            return Err(corrupt(format!("queue positions are inconsistent ({what}: {a}, {b}, capacity {})", self.cap)));
        }
        Ok(())
    }
}
