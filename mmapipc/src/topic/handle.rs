//! The [`Topic`] handle: creating, opening and sharing a topic, its memory ([`TopicMemory`]: the
//! control block, the two tables and the data area), options and counters.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::OpenError;
use crate::layout::Kind;
#[cfg(not(loom))]
use crate::layout::Plan;
use crate::mem::DataArea;
use crate::region::{self, ChannelPlan, ControlSize, CreateOptions, OpenOptions, Region};
use crate::shorthands::channel_shorthands;
use crate::sync::Ordering;

use super::layout::{control_size, GroupEntry, Head, SubEntry, MAX_SUBSCRIBERS, RECORD_HEADER};

/// What the publisher does when the slowest subscriber has not made room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// Wait for the slowest live subscriber (or group): nothing is lost.
    #[default]
    Block,
    /// Never wait: overwrite the oldest records; a subscriber that was lapped skips to the
    /// oldest retained message and counts what it lost in `dropped`.
    Overwrite,
}

impl Overflow {
    pub(super) fn code(self) -> u64 {
        match self {
            Overflow::Block => 0,
            Overflow::Overwrite => 1,
        }
    }
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Start {
    /// Only messages published after `subscribe` returns.
    #[default]
    Latest,
    /// Every message still retained, then the live stream.
    Oldest,
}

/// Options of [`Topic::create_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicOptions {
    /// Entries in the subscriber table: at most this many subscribers (and groups) at once.
    pub max_subscribers: usize,
    /// Backpressure or overwrite.
    pub overflow: Overflow,
    /// File mode and the like.
    pub create: CreateOptions,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions { max_subscribers: 16, overflow: Overflow::Block, create: CreateOptions::default() }
    }
}

/// Keeps a topic's memory alive; shared by every handle, publisher, subscriber and view.
pub struct TopicMemory {
    head: *const Head,
    subs: *const SubEntry,
    groups: *const GroupEntry,
    pub(super) nsubs: usize,
    pub(super) data: DataArea,
    pub(super) capacity: u64,
    pub(super) overflow: Overflow,
    pub(super) path: Option<PathBuf>,
    #[cfg(not(loom))]
    _region: Region,
    #[cfg(loom)]
    _boxes: (Box<Head>, Box<[SubEntry]>, Box<[GroupEntry]>),
}

// SAFETY: the memory is a mapping (or heap block) reached only through atomics of the control
// block and through the data area's accessors, whose contracts say which side may touch which
// bytes. Moving the owner to another thread changes nothing about that.
unsafe impl Send for TopicMemory {}
// SAFETY: as for Send: `&TopicMemory` only gives atomics and the data area (itself Sync).
unsafe impl Sync for TopicMemory {}

impl fmt::Debug for TopicMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicMemory")
            .field("capacity", &self.capacity)
            .field("max_subscribers", &self.nsubs)
            .field("overflow", &self.overflow)
            .field("path", &self.path)
            .finish()
    }
}

impl TopicMemory {
    #[inline]
    pub(super) fn head(&self) -> &Head {
        // SAFETY: `head` points at a Head-sized, 8-aligned block inside the memory this object
        // keeps alive (checked at construction); every field is an atomic or padding nobody reads.
        unsafe { &*self.head }
    }

    /// Subscriber entry `i` (`i < nsubs`).
    #[inline]
    pub(super) fn sub(&self, i: usize) -> &SubEntry {
        assert!(i < self.nsubs);
        // SAFETY: the table holds `nsubs` entries inside the memory (checked at construction);
        // entries hold only atomics and padding.
        unsafe { &*self.subs.add(i) }
    }

    /// Group entry `i` (`i < nsubs`).
    #[inline]
    pub(super) fn group(&self, i: usize) -> &GroupEntry {
        assert!(i < self.nsubs);
        // SAFETY: as for `sub`: the group table follows the subscriber table, `nsubs` entries.
        unsafe { &*self.groups.add(i) }
    }

    /// Loads the header word at `off` (8-aligned, inside the area).
    #[inline]
    pub(super) fn load_header(&self, off: u64) -> (u32, u32) {
        debug_assert!(off % 8 == 0 && off + 8 <= self.capacity);
        // SAFETY: callers pass a record offset: 8-aligned, off + 8 <= capacity.
        let w = unsafe { self.data.word(off) };
        // Relaxed: ordered by the caller's Acquire load of tail (published records) or checked
        // afterwards against `oldest` (racy reads, SYNC: oldest-validate).
        let word = w.load(Ordering::Relaxed);
        (word as u32, (word >> 32) as u32)
    }

    /// Stores the header word at `off` (the publisher's, unpublished).
    #[inline]
    pub(super) fn store_header(&self, off: u64, word: u64) {
        debug_assert!(off % 8 == 0 && off + 8 <= self.capacity);
        // SAFETY: as in load_header.
        let w = unsafe { self.data.word(off) };
        // SYNC: tail-publish. Relaxed: made visible by the Release store of tail that follows.
        w.store(word, Ordering::Relaxed);
    }

    /// Capacity of the data area.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

/// Counters of the whole topic ([`Topic::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicStats {
    /// Messages published.
    pub messages_in: u64,
    /// Payload bytes published.
    pub bytes_in: u64,
    /// Times the publisher found no room (once per episode).
    pub full_waits: u64,
    /// Subscriber slots reclaimed from dead processes.
    pub reclaimed: u64,
    /// Subscribers attached now (live or not yet reclaimed).
    pub subscribers: usize,
}

/// A publish-subscribe topic in shared memory: one publisher, many subscribers, each of which
/// sees every message (see the module docs). Cheap to clone (the memory is shared).
///
/// ```
/// use mmapipc::topic::{Start, Topic, TopicOptions};
/// let topic = Topic::heap(4096, &TopicOptions::default())?;
/// let mut a = topic.subscribe(Start::Latest)?;
/// let mut b = topic.subscribe(Start::Latest)?;
/// let mut publisher = topic.publisher()?;
/// assert!(publisher.try_publish(b"tick")?);
/// assert_eq!(&*a.try_recv()?.unwrap(), b"tick");
/// assert_eq!(&*b.try_recv()?.unwrap(), b"tick");
/// assert!(a.try_recv()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Topic {
    pub(super) mem: Arc<TopicMemory>,
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.mem.fmt(f)
    }
}

fn check_options(opts: &TopicOptions) -> Result<(), OpenError> {
    if opts.max_subscribers == 0 || opts.max_subscribers > MAX_SUBSCRIBERS {
        return Err(OpenError::InvalidArgument(format!(
            "max_subscribers must be between 1 and {MAX_SUBSCRIBERS}, got {}",
            opts.max_subscribers
        )));
    }
    Ok(())
}

/// Marks `n` subscriber entries at `subs` as holding nothing back (a fresh file is zero-filled,
/// and a zero cursor would be a position).
///
/// # Safety
/// `subs` points at `n` [`SubEntry`]s in live memory that nobody else uses yet.
unsafe fn init_entries(subs: *const SubEntry, n: usize) {
    for i in 0..n {
        // SAFETY: the caller's contract: `i < n` entries lie in the memory.
        let s = unsafe { &*subs.add(i) };
        // Relaxed: before the topic is shared (published by READY, or by the Arc).
        s.cursor.store(super::layout::NO_CURSOR, Ordering::Relaxed);
        s.group.store(super::layout::NO_GROUP, Ordering::Relaxed);
    }
}

channel_shorthands! {
    impl Topic(create: TopicOptions, open: OpenOptions) -> OpenError;
    /// Creates a topic with `capacity` data bytes (rounded up to a multiple of 8) at `path` (a
    /// bare name lives in `/dev/shm`). Fails if the path exists.
    fn create;
    /// Opens an existing topic, validating its header and control block.
    fn open;
}

impl Topic {
    /// [`create_with`](Self::create_with), storing `schema` (a typed topic's schema JSON) in the
    /// file's schema area before the file is published.
    pub fn create_with_schema(
        path: impl AsRef<Path>,
        capacity: usize,
        opts: &TopicOptions,
        schema: &[u8],
    ) -> Result<Topic, OpenError> {
        check_options(opts)?;
        let n = opts.max_subscribers;
        let spec = ChannelPlan { kind: Kind::Topic, control_size: control_size(n), capacity, schema };
        let (region, plan, path) = region::create_channel(path, spec, &opts.create, |ctrl, capacity| {
            let head = ctrl as *const Head;
            // SAFETY: the control block (head, then `n` subscriber entries, then `n` group
            // entries: control_size(n)) lies inside the new mapping (plan), 8-aligned, atomics
            // only; nobody else trusts the file before publish.
            let (config, subs) = unsafe { (&(*head).config, ctrl.add(super::layout::HEAD_SIZE) as *const SubEntry) };
            // Relaxed: published by the Release store of READY (SYNC: header-publish). The rest of
            // the fresh file is zero: positions, counters, waiters and owner words all start at 0.
            config.capacity.store(capacity, Ordering::Relaxed);
            config.max_subscribers.store(n as u64, Ordering::Relaxed);
            config.overflow.store(opts.overflow.code(), Ordering::Relaxed);
            // SAFETY: as above, the `n` subscriber entries follow the head inside the block.
            unsafe { init_entries(subs, n) };
        })?;
        let topic =
            Self::from_region(region.as_ptr(), plan.control_offset, plan.data_offset, plan.data_size, n, opts.overflow);
        Ok(Self::finish(topic, region, Some(path)))
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Topic, OpenError> {
        let min = ControlSize::AtLeast(control_size(1));
        let (region, header, path) = region::open_channel(path, Kind::Topic, min, opts)?;
        let bad = |reason: String| OpenError::CorruptHeader { path: path.clone(), reason };
        let capacity = header.data_size;
        let base = region.as_ptr().wrapping_add(header.control_offset as usize) as *const Head;
        // SAFETY: the control block (at least the fixed part, checked above) lies inside the
        // validated mapping, 8-aligned; atomics only.
        let config = unsafe { &(*base).config };
        // Relaxed: the header-publish Acquire in open_file ordered this after READY.
        let stored = config.capacity.load(Ordering::Relaxed);
        let nsubs = config.max_subscribers.load(Ordering::Relaxed);
        let overflow = match config.overflow.load(Ordering::Relaxed) {
            0 => Overflow::Block,
            1 => Overflow::Overwrite,
            o => return Err(bad(format!("unknown overflow mode {o}"))),
        };
        if stored != capacity {
            return Err(bad(format!("control block says capacity {stored}, header says {capacity}")));
        }
        if nsubs == 0 || nsubs > MAX_SUBSCRIBERS as u64 || control_size(nsubs as usize) as u64 != header.control_size {
            return Err(bad(format!(
                "max_subscribers {nsubs} does not match the control block of {} bytes",
                header.control_size
            )));
        }
        let topic = Self::from_region(
            region.as_ptr(),
            header.control_offset,
            header.data_offset,
            capacity,
            nsubs as usize,
            overflow,
        );
        Ok(Self::finish(topic, region, Some(path)))
    }

    /// A process-local topic on the heap, for tests and model checking (loom, Miri).
    pub fn heap(capacity: usize, opts: &TopicOptions) -> Result<Topic, OpenError> {
        check_options(opts)?;
        let capacity = crate::layout::checked_capacity(Kind::Topic, capacity)?;
        #[cfg(not(loom))]
        {
            let plan = Plan::new(control_size(opts.max_subscribers) as u64, 0, capacity as u64)
                .ok_or_else(|| OpenError::InvalidArgument(format!("capacity {capacity} is too large")))?;
            let region = Region::heap(plan.total_size as usize);
            let topic = Self::from_region(
                region.as_ptr(),
                plan.control_offset,
                plan.data_offset,
                capacity as u64,
                opts.max_subscribers,
                opts.overflow,
            );
            let c = &topic.head().config;
            // Relaxed: the region is not shared yet; handles made later see it through Arc.
            c.capacity.store(capacity as u64, Ordering::Relaxed);
            c.max_subscribers.store(opts.max_subscribers as u64, Ordering::Relaxed);
            c.overflow.store(opts.overflow.code(), Ordering::Relaxed);
            // SAFETY: the subscriber table of `n` entries lies in the fresh heap block.
            unsafe { init_entries(topic.subs, opts.max_subscribers) };
            Ok(Self::finish(topic, region, None))
        }
        #[cfg(loom)]
        {
            let n = opts.max_subscribers;
            let head = Box::new(Head::new(capacity as u64, n as u64, opts.overflow.code()));
            let subs: Box<[SubEntry]> = (0..n).map(|_| SubEntry::new()).collect();
            let groups: Box<[GroupEntry]> = (0..n).map(|_| GroupEntry::new()).collect();
            let mem = TopicMemory {
                head: &*head as *const Head,
                subs: subs.as_ptr(),
                groups: groups.as_ptr(),
                nsubs: n,
                data: DataArea::heap(capacity),
                capacity: capacity as u64,
                overflow: opts.overflow,
                path: None,
                _boxes: (head, subs, groups),
            };
            let t = Topic { mem: Arc::new(mem) };
            t.init_entries();
            Ok(t)
        }
    }

    /// Marks every table entry as holding nothing back (a fresh file is zero-filled, and a zero
    /// cursor would be a position).
    #[cfg(loom)]
    fn init_entries(&self) {
        for i in 0..self.mem.nsubs {
            let s = self.mem.sub(i);
            // Relaxed: before the topic is shared (published by READY, or by the Arc).
            s.cursor.store(super::layout::NO_CURSOR, Ordering::Relaxed);
            s.group.store(super::layout::NO_GROUP, Ordering::Relaxed);
        }
    }

    /// The parts of a topic at `base` (a mapping or heap block), not yet owning it: see `finish`.
    #[cfg(not(loom))]
    fn from_region(
        base: *mut u8,
        control_offset: u64,
        data_offset: u64,
        capacity: u64,
        nsubs: usize,
        overflow: Overflow,
    ) -> PartialTopic {
        let head = base.wrapping_add(control_offset as usize);
        let subs = head.wrapping_add(super::layout::HEAD_SIZE);
        let groups = subs.wrapping_add(super::layout::ENTRY_SIZE * nsubs);
        // SAFETY: the data area lies inside the region (the plan or the validated header put it
        // there), page aligned, a multiple of 8 bytes; the region is kept with the DataArea (in
        // `finish`). Peers reach it only by the topic protocol.
        let data = unsafe { DataArea::new(base.wrapping_add(data_offset as usize), capacity as usize) };
        PartialTopic {
            head: head as *const Head,
            subs: subs as *const SubEntry,
            groups: groups as *const GroupEntry,
            nsubs,
            data,
            capacity,
            overflow,
        }
    }

    #[cfg(loom)]
    fn from_region(_: *mut u8, _: u64, _: u64, _: u64, _: usize, _: Overflow) -> PartialTopic {
        unreachable!("file-backed topics are not modelled under loom")
    }

    #[cfg(not(loom))]
    fn finish(p: PartialTopic, region: Region, path: Option<PathBuf>) -> Topic {
        let mem = TopicMemory {
            head: p.head,
            subs: p.subs,
            groups: p.groups,
            nsubs: p.nsubs,
            data: p.data,
            capacity: p.capacity,
            overflow: p.overflow,
            path,
            _region: region,
        };
        Topic { mem: Arc::new(mem) }
    }

    #[cfg(loom)]
    fn finish(_: PartialTopic, _: Region, _: Option<PathBuf>) -> Topic {
        unreachable!("file-backed topics are not modelled under loom")
    }

    /// Data-area size in bytes.
    pub fn capacity(&self) -> usize {
        self.mem.capacity as usize
    }

    /// Largest payload of one message: `capacity - 16` (a record and the mark after it fit).
    pub fn max_message_size(&self) -> usize {
        self.mem.capacity as usize - 2 * RECORD_HEADER
    }

    /// Entries in the subscriber table.
    pub fn max_subscribers(&self) -> usize {
        self.mem.nsubs
    }

    /// Backpressure or overwrite, as created.
    pub fn overflow(&self) -> Overflow {
        self.mem.overflow
    }

    /// The file's path (`None` for a heap topic).
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

    /// The memory owner (for bindings that export views holding it).
    pub fn memory(&self) -> &Arc<TopicMemory> {
        &self.mem
    }

    pub(super) fn head(&self) -> &Head {
        self.mem.head()
    }

    /// A snapshot of the topic's counters.
    pub fn stats(&self) -> TopicStats {
        let p = &self.head().publisher;
        // Relaxed: statistics; nothing is read on their strength.
        TopicStats {
            messages_in: p.messages.load(Ordering::Relaxed),
            bytes_in: p.bytes.load(Ordering::Relaxed),
            full_waits: p.full_waits.load(Ordering::Relaxed),
            reclaimed: p.reclaimed.load(Ordering::Relaxed),
            subscribers: (0..self.mem.nsubs).filter(|&i| self.mem.sub(i).owner.load(Ordering::Relaxed) != 0).count(),
        }
    }

    /// Wakes every waiter sleeping on this topic's futex words, in every process (each
    /// re-checks and sleeps again if nothing changed). Set a waiter's `stop` flag first.
    pub fn wake_waiters(&self) {
        let w = &self.head().wait;
        for w in [&w.data, &w.space] {
            // Release: a sleeper that reads the bumped seq (Acquire) sees the stop flag stored
            // before it; one that read the old seq has FUTEX_WAIT fail or is woken here.
            w.seq.fetch_add(1, Ordering::Release);
            crate::wait::wake_all(&w.seq);
        }
    }
}

/// The parts of a topic before it owns its memory.
#[cfg_attr(loom, allow(dead_code))]
struct PartialTopic {
    head: *const Head,
    subs: *const SubEntry,
    groups: *const GroupEntry,
    nsubs: usize,
    data: DataArea,
    capacity: u64,
    overflow: Overflow,
}

#[cfg_attr(loom, allow(dead_code))]
impl PartialTopic {
    fn head(&self) -> &Head {
        // SAFETY: as TopicMemory::head: the block lies in the memory the caller keeps.
        unsafe { &*self.head }
    }
}
