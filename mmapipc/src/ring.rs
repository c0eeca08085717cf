//! [`Ring`]: a lock-free single-producer single-consumer ring of variable-length byte messages.
//!
//! # Algorithm
//!
//! A Lamport single-producer/single-consumer ring (L. Lamport, *Specifying Concurrent Program
//! Modules*, 1983) over monotonic 64-bit byte positions, with the FastForward/MCRingBuffer
//! refinement that each side *caches* the other side's index and reloads it only when its cached
//! view says "full" (producer) or "empty" (consumer), so the two cache lines move only when they
//! must. Records are framed as in Agrona's `OneToOneRingBuffer`: an 8-byte record header, the
//! payload, padding to 8 bytes; a record never wraps around the end of the buffer: when it would,
//! the producer first writes a *padding record* to the end (published on its own), then the record
//! at offset 0. Every record is therefore one contiguous slice, which is what makes zero-copy
//! reads (`&[u8]` in place, a Python `memoryview`) and zero-copy writes ([`Ring::loan`]) possible.
//!
//! # Layout
//!
//! The file is the common 128-byte header ([`crate::layout`]), then a 512-byte control block made
//! of four explicitly padded 128-byte lines, then the data area (page aligned) of `capacity` bytes:
//!
//! ```text
//! control (file offset 128)
//! +0    producer line   tail u64 | messages_in u64 | bytes_in u64 | full_events u64 | producer u64 | pad
//! +128  consumer line   head u64 | messages_out u64 | bytes_out u64 | empty_events u64 | consumer u64 | pad
//! +256  wait line       data_available Waiter (seq u32, sleepers u32) | space_available Waiter | pad
//! +384  config line     capacity u64 | pad
//!
//! data (file offset data_offset, capacity bytes, capacity % 8 == 0)
//! | hdr | payload | pad | hdr | payload | ... | PADDING hdr | (skipped to the end) |
//!   hdr = u64 little-endian word: bits 0..32 payload length, bits 32..64 flags (0 message, 1 padding)
//! ```
//!
//! `tail` and `head` only grow; a position's offset in the data area is `position % capacity`,
//! and `tail - head` (bytes published and not yet released, framing included) is at most
//! `capacity`. Only the producer writes its line, only the consumer writes its line, so each
//! side's counters, and its role's attach word (`producer`, `consumer`: who holds the role),
//! cost no extra cache-line traffic. See `FORMAT.md` for the offset table.
//!
//! # Synchronisation (the tags name each Release/Acquire pair)
//!
//! * `tail-publish`: the producer writes header and payload, then stores `tail` with Release; the
//!   consumer loads `tail` with Acquire before reading any byte below it. A producer killed
//!   mid-write therefore leaves nothing visible: the commit is that single store.
//! * `head-release`: the consumer reads a record, then stores `head` with Release; the producer
//!   loads `head` with Acquire before overwriting any byte below it.
//! * `asym-handshake`: each side wakes the other after its publication, only if the other
//!   sleeps, with no fence on the publishing side: the sleeper runs a system-wide barrier
//!   (`membarrier`) before its final re-check instead. See `ring/notify.rs`; where that is not
//!   available it falls back to the symmetric fences of [`Waiter`].
//! * `attach`: roles are claimed with an AcqRel CAS on the attach words and released with a
//!   Release store (or CAS), so a new holder sees every index store of the previous one.
//!
//! # Roles
//!
//! The ring has one producer and one consumer *at a time*. A role is claimed lazily: the first
//! write (or [`Ring::loan`], or [`Ring::claim_producer`]) claims the producer role, the first read
//! claims the consumer role, and the handle keeps it until [`Ring::release_producer`] /
//! [`Ring::release_consumer`] or until it is dropped. A handle may hold both. The claim records
//! the process (pid and the low 32 bits of its start time) in the role's attach word with a CAS;
//! a second live claimant (another process, or another handle of this process) gets
//! [`RingError::AlreadyAttached`], a dead holder (exited, or pid reused) is taken over.
//!
//! Each role's attach word lies on that side's own line (next to `tail` or `head`), so claiming
//! and releasing touch no line the side does not write anyway: a binding can hold a role only for
//! the duration of each call (Python does) at the cost of one CAS and one store. A released
//! handle keeps its cached state; claiming again reloads only its own side's index from that
//! line, and keeps the cache if nobody else moved the index meanwhile.
//!
//! After `fork`, a child's inherited handle holds nothing: its next operation claims anew (and
//! fails if the parent still holds the role).
//!
//! # A hostile peer
//!
//! The peer can write anything to the mapping. Every index and record header read from it is
//! checked before use (`head <= tail`, `tail - head <= capacity`, 8-byte alignment, record length
//! within what was published and within the buffer, flags known); a failed check is
//! [`RingError::Corrupt`], never an out-of-bounds access, a panic, or an endless loop.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{OpenError, RingError};
use crate::layout::{Kind, Plan, PAD};
use crate::region::{self, CreateOptions, OpenOptions, Region};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::wait::{Deadline, Waiter};

mod notify;

/// Size of a record header.
pub const RECORD_HEADER: usize = 8;
/// Records start on multiples of this.
pub const RECORD_ALIGN: usize = 8;
/// Smallest capacity accepted ([`crate::layout::checked_capacity`]: the queue's rule too).
pub const MIN_CAPACITY: usize = crate::layout::MIN_CAPACITY;
/// Largest capacity accepted (lengths are 32-bit in the record header).
pub const MAX_CAPACITY: usize = crate::layout::MAX_CAPACITY;
/// Size of the control block.
pub const CONTROL_SIZE: usize = 4 * PAD;

/// Record flag: a message.
pub const FLAG_MESSAGE: u32 = 0;
/// Record flag: padding to the end of the buffer, skipped by the consumer.
pub const FLAG_PADDING: u32 = 1;

/// Offsets inside the control block (relative to its start, file offset 128).
pub mod offsets {
    /// `tail`, the producer's published position.
    pub const TAIL: usize = 0;
    /// Messages committed (producer counter).
    pub const MESSAGES_IN: usize = 8;
    /// Payload bytes committed (producer counter).
    pub const BYTES_IN: usize = 16;
    /// Times the producer found the ring full.
    pub const FULL_EVENTS: usize = 24;
    /// Producer identity word (0 = free), on the producer's line.
    pub const PRODUCER: usize = 32;
    /// `head`, the consumer's released position.
    pub const HEAD: usize = 128;
    /// Messages consumed (consumer counter).
    pub const MESSAGES_OUT: usize = 136;
    /// Payload bytes consumed (consumer counter).
    pub const BYTES_OUT: usize = 144;
    /// Times the consumer found the ring empty.
    pub const EMPTY_EVENTS: usize = 152;
    /// Consumer identity word (0 = free), on the consumer's line.
    pub const CONSUMER: usize = 160;
    /// The consumer's "data available" waiter (futex word, then sleeper count).
    pub const DATA_WAITER: usize = 256;
    /// The producer's "space available" waiter.
    pub const SPACE_WAITER: usize = 264;
    /// Capacity of the data area.
    pub const CAPACITY: usize = 384;
}

#[repr(C)]
struct ProducerLine {
    tail: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    full_events: AtomicU64,
    owner: AtomicU64,
    _pad: [u8; PAD - 40],
}

#[repr(C)]
struct ConsumerLine {
    head: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    empty_events: AtomicU64,
    owner: AtomicU64,
    _pad: [u8; PAD - 40],
}

#[repr(C)]
struct WaitLine {
    data: Waiter,
    space: Waiter,
    _pad: [u8; PAD - 16],
}

#[repr(C)]
struct ConfigLine {
    capacity: AtomicU64,
    _pad: [u8; PAD - 8],
}

/// The ring's control block, as laid out in the file (see the module docs).
#[repr(C)]
struct RingControl {
    producer: ProducerLine,
    consumer: ConsumerLine,
    wait: WaitLine,
    config: ConfigLine,
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<ProducerLine>() == PAD);
    assert!(size_of::<ConsumerLine>() == PAD);
    assert!(size_of::<WaitLine>() == PAD);
    assert!(size_of::<ConfigLine>() == PAD);
    assert!(size_of::<Waiter>() == 8);
    assert!(size_of::<RingControl>() == CONTROL_SIZE);
    assert!(offset_of!(RingControl, producer) + offset_of!(ProducerLine, tail) == offsets::TAIL);
    assert!(offset_of!(RingControl, producer) + offset_of!(ProducerLine, full_events) == offsets::FULL_EVENTS);
    assert!(offset_of!(RingControl, consumer) + offset_of!(ConsumerLine, head) == offsets::HEAD);
    assert!(offset_of!(RingControl, consumer) + offset_of!(ConsumerLine, empty_events) == offsets::EMPTY_EVENTS);
    assert!(offset_of!(RingControl, wait) + offset_of!(WaitLine, data) == offsets::DATA_WAITER);
    assert!(offset_of!(RingControl, wait) + offset_of!(WaitLine, space) == offsets::SPACE_WAITER);
    assert!(offset_of!(RingControl, producer) + offset_of!(ProducerLine, owner) == offsets::PRODUCER);
    assert!(offset_of!(RingControl, consumer) + offset_of!(ConsumerLine, owner) == offsets::CONSUMER);
    assert!(offset_of!(RingControl, config) + offset_of!(ConfigLine, capacity) == offsets::CAPACITY);
};

#[cfg(loom)]
impl RingControl {
    fn new(capacity: u64) -> RingControl {
        let w = || Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let z = || AtomicU64::new(0);
        RingControl {
            producer: ProducerLine {
                tail: z(),
                messages: z(),
                bytes: z(),
                full_events: z(),
                owner: z(),
                _pad: [0; PAD - 40],
            },
            consumer: ConsumerLine {
                head: z(),
                messages: z(),
                bytes: z(),
                empty_events: z(),
                owner: z(),
                _pad: [0; PAD - 40],
            },
            wait: WaitLine { data: w(), space: w(), _pad: [0; PAD - 16] },
            config: ConfigLine { capacity: AtomicU64::new(capacity), _pad: [0; PAD - 8] },
        }
    }
}

/// Which side of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The one writer.
    Producer,
    /// The one reader.
    Consumer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        })
    }
}

/// Rounds `n` up to the record alignment.
const fn align8(n: u64) -> u64 {
    (n + (RECORD_ALIGN as u64 - 1)) & !(RECORD_ALIGN as u64 - 1)
}

/// Bytes a message of `len` payload bytes takes in the ring (header and padding included).
pub const fn record_size(len: usize) -> usize {
    align8((RECORD_HEADER + len) as u64) as usize
}

/// Validates a requested capacity: within the limits, rounded up to a multiple of 8 (the rule of
/// rings and queues alike, [`crate::layout::checked_capacity`]).
pub fn checked_capacity(capacity: usize) -> Result<usize, OpenError> {
    crate::layout::checked_capacity(Kind::Ring, capacity)
}

// ---------------------------------------------------------------------------------------------
// Memory: the control block and the data area, in a mapping (or on the heap, or under loom).
// ---------------------------------------------------------------------------------------------

/// Keeps a ring's memory alive; shared by every handle and every exported view of one ring.
pub struct RingMemory {
    ctrl: *const RingControl,
    #[cfg_attr(loom, allow(dead_code))]
    data: *mut u8,
    capacity: u64,
    path: Option<PathBuf>,
    #[cfg(not(loom))]
    _region: Region,
    #[cfg(loom)]
    _loom: (Box<RingControl>, Box<[loom::cell::UnsafeCell<u8>]>),
}

// SAFETY: the memory is a mapping (or heap block) that every process and thread reaches only
// through atomics on the control block and through raw byte copies of data-area ranges that the
// ring protocol hands to exactly one side at a time. Sending the owner to another thread changes
// nothing about that.
unsafe impl Send for RingMemory {}
// SAFETY: as for Send: `&RingMemory` only gives raw pointers and atomics.
unsafe impl Sync for RingMemory {}

impl fmt::Debug for RingMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingMemory").field("capacity", &self.capacity).field("path", &self.path).finish()
    }
}

impl RingMemory {
    fn ctrl(&self) -> &RingControl {
        // SAFETY: `ctrl` points at a RingControl-sized, 8-aligned block inside the memory this
        // object keeps alive (checked at construction). Every field is an atomic or padding that
        // nobody reads, so a shared reference is sound even while other processes write it.
        unsafe { &*self.ctrl }
    }

    /// Stores a record header word at `off` (the slot belongs to the producer: not yet published).
    fn store_header(&self, off: u64, len: u32, flags: u32) {
        debug_assert!(off % 8 == 0 && off + 8 <= self.capacity);
        let word = u64::from(len) | (u64::from(flags) << 32);
        #[cfg(not(loom))]
        {
            // SAFETY: off + 8 <= capacity and off % 8 == 0, so the word lies in the data area
            // (page aligned) and is 8-aligned. It is accessed atomically by both sides.
            let a = unsafe { &*(self.data.add(off as usize) as *const AtomicU64) };
            // SYNC: tail-publish. Relaxed: made visible by the Release store of tail that follows.
            a.store(word, Ordering::Relaxed);
        }
        #[cfg(loom)]
        // SAFETY: the loom data area has capacity bytes; the range is the producer's.
        unsafe {
            self.copy_in(off, &word.to_le_bytes())
        };
    }

    /// Loads a record header word at `off` (the consumer calls this only below a loaded tail).
    fn load_header(&self, off: u64) -> (u32, u32) {
        debug_assert!(off % 8 == 0 && off + 8 <= self.capacity);
        #[cfg(not(loom))]
        let word = {
            // SAFETY: as in store_header.
            let a = unsafe { &*(self.data.add(off as usize) as *const AtomicU64) };
            // SYNC: tail-publish. Relaxed: ordered after the Acquire load of tail that showed
            // this record as published. Atomic so that a hostile peer writing it concurrently
            // is not a data race in this process.
            a.load(Ordering::Relaxed)
        };
        #[cfg(loom)]
        let word = {
            let mut b = [0u8; 8];
            // SAFETY: in bounds; published to the consumer.
            unsafe { self.copy_out(off, &mut b) };
            u64::from_le_bytes(b)
        };
        (word as u32, (word >> 32) as u32)
    }

    /// A hint to bring the cache line at `off` (in the data area) closer; no effect on what any
    /// load returns.
    #[inline]
    fn prefetch(&self, off: u64) {
        debug_assert!(off < self.capacity);
        #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
        // SAFETY: PREFETCHT0 is a hint: it never faults and changes no architectural state, and
        // `off < capacity` keeps the address inside the mapping anyway. SSE is baseline on x86_64.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.data.add(off as usize) as *const i8)
        };
        #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
        let _ = off;
    }

    /// Copies `src` to the data area at `off`.
    ///
    /// # Safety
    /// `off + src.len() <= capacity`, and the range belongs to the caller by protocol.
    unsafe fn copy_in(&self, off: u64, src: &[u8]) {
        #[cfg(not(loom))]
        // SAFETY: per the contract; `src` is process-local so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.add(off as usize), src.len())
        };
        #[cfg(loom)]
        for (i, b) in src.iter().enumerate() {
            // loom checks that no other thread touches this cell without a happens-before edge.
            self._loom.1[off as usize + i].with_mut(|p| {
                // SAFETY: loom hands out a valid pointer to the cell.
                unsafe { *p = *b }
            });
        }
    }

    /// Copies from the data area at `off` into `dst`.
    ///
    /// # Safety
    /// `off + dst.len() <= capacity`, and the range was published to the caller.
    #[allow(dead_code)]
    unsafe fn copy_out(&self, off: u64, dst: &mut [u8]) {
        #[cfg(not(loom))]
        // SAFETY: per the contract; `dst` is process-local.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.add(off as usize), dst.as_mut_ptr(), dst.len())
        };
        #[cfg(loom)]
        for (i, b) in dst.iter_mut().enumerate() {
            self._loom.1[off as usize + i].with(|p| {
                // SAFETY: loom hands out a valid pointer to the cell.
                *b = unsafe { *p }
            });
        }
    }

    /// Capacity of the data area in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Role claims
// ---------------------------------------------------------------------------------------------

/// Incremented in every forked child, so an inherited handle knows it holds nothing.
#[cfg(not(loom))]
static FORK_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(not(loom))]
extern "C" fn after_fork_in_child() {
    // Async-signal-safe: atomic stores only.
    FORK_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    notify::forget();
}

/// Installs the fork handler (once per process). Called before any role is claimed, so every
/// claim's recorded generation is bumped in a child forked after it.
fn ensure_fork_handler() {
    #[cfg(not(loom))]
    {
        static REGISTER: std::sync::Once = std::sync::Once::new();
        REGISTER.call_once(|| {
            // SAFETY: registers a handler that only performs atomic stores; no preconditions.
            unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        });
    }
}

/// How many forks separate this process from the one that started counting (see
/// [`ensure_fork_handler`]).
#[inline]
fn fork_generation() -> u64 {
    #[cfg(not(loom))]
    {
        // Relaxed: the value only changes in a new process, before it runs any of our code.
        FORK_GENERATION.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(loom)]
    0
}

/// This process as an attach word: its owner word ([`crate::owner::me`], cached).
fn my_identity() -> u64 {
    crate::owner::me()
}

fn holder_pid(word: u64) -> u32 {
    crate::owner::pid(word)
}

/// Whether the process recorded in an attach word still runs (pid reuse and zombies are dead).
fn holder_alive(word: u64) -> bool {
    crate::owner::alive(word)
}

/// A role this handle holds, or held.
#[derive(Debug)]
struct Claim {
    /// The fork generation the claim was made in, or [`RELEASED`]. The fast paths compare it
    /// with the current generation only: a released or inherited role fails that one test.
    generation: u64,
}

/// [`Claim::generation`] of a role given back: never equal to a fork generation.
const RELEASED: u64 = u64::MAX;

fn attach_word(mem: &RingMemory, role: Role) -> &AtomicU64 {
    match role {
        Role::Producer => &mem.ctrl().producer.owner,
        Role::Consumer => &mem.ctrl().consumer.owner,
    }
}

/// Claims `role` for this process. `Ok(true)` if a dead holder was taken over.
fn claim(mem: &RingMemory, role: Role) -> Result<(Claim, bool), RingError> {
    ensure_fork_handler();
    let me = my_identity();
    let word = attach_word(mem, role);
    let mut current = 0u64;
    loop {
        // SYNC: attach. AcqRel: Acquire pairs with the previous holder's Release (in `release`
        // or its own claim), so its last index store is visible to us; Release publishes ours.
        match word.compare_exchange(current, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                return Ok((Claim { generation: fork_generation() }, current != 0));
            }
            Err(found) => {
                // Held by this very process (another handle, or a thread) counts as taken:
                // two producers in one process would corrupt the ring just the same.
                if found == me || holder_alive(found) {
                    return Err(RingError::AlreadyAttached { role, pid: holder_pid(found) });
                }
                current = found; // dead (or free): try to take it over
            }
        }
    }
}

/// Gives the role back (if this process holds it through `claim`) and marks the claim released.
fn release(mem: &RingMemory, role: Role, claim: &mut Claim) {
    if claim.generation == fork_generation() {
        // SYNC: attach. Release: our last index store happens-before the next holder's claim.
        // A plain store: while we live nobody else claims the word (a claimant sees us alive),
        // so it still holds our identity (unless a hostile peer wrote it, which it can anyway).
        attach_word(mem, role).store(0, Ordering::Release);
    }
    // Otherwise released already, or inherited across fork: the parent holds it, not us.
    claim.generation = RELEASED;
}

// ---------------------------------------------------------------------------------------------
// The two sides' local state
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct ProducerState {
    claim: Claim,
    /// Our position (equals the published tail between operations).
    tail: u64,
    /// `tail % capacity`.
    off: u64,
    /// Last head we loaded; reloaded only when the ring looks full.
    cached_head: u64,
    /// Inside a "found full" episode (counted once).
    full: bool,
    /// Our copies of the shared `messages_in`/`bytes_in` (only the producer writes them): the
    /// shared counters are then updated with plain stores, never a load of a line the consumer
    /// may have just pulled away to read `tail` (a load there would stall the producer).
    messages: u64,
    bytes: u64,
}

#[derive(Debug)]
struct ConsumerState {
    claim: Claim,
    /// Our position (may run ahead of the published head by skipped padding and detached reads).
    head: u64,
    /// `head % capacity`.
    off: u64,
    /// Last tail we loaded; reloaded only when the ring looks empty.
    cached_tail: u64,
    /// Bytes of a detached record ([`RecvGuard::detach`]) not yet released.
    held: u64,
    /// Counters not yet published (messages, payload bytes).
    pending_msgs: u64,
    pending_bytes: u64,
    /// Our copies of the shared `messages_out`/`bytes_out` (see ProducerState::messages).
    messages: u64,
    bytes: u64,
    /// Inside a "found empty" episode (counted once).
    empty: bool,
}

#[cold]
fn corrupt(reason: String) -> RingError {
    RingError::Corrupt { reason }
}

/// Checks a (head, tail) pair read from shared memory.
fn check_indices(head: u64, tail: u64, capacity: u64) -> Result<(), RingError> {
    if head % 8 != 0 || tail % 8 != 0 {
        return Err(corrupt(format!("misaligned indices head={head} tail={tail}")));
    }
    match tail.checked_sub(head) {
        // A tail this close to u64::MAX cannot come from a real producer (decades of traffic) and
        // would overflow `tail + record`: a peer wrote it.
        Some(_) if tail > u64::MAX - 2 * capacity => Err(corrupt(format!("index out of range: tail={tail}"))),
        Some(used) if used <= capacity => Ok(()),
        _ => Err(corrupt(format!("indices out of range: head={head} tail={tail} capacity={capacity}"))),
    }
}

/// What the consumer found at its position.
enum Peek {
    Empty,
    /// Payload at `off`, `len` bytes, record of `rec` bytes.
    Message {
        off: u64,
        len: usize,
        rec: u64,
    },
}

impl ProducerState {
    /// Free bytes, reloading head only if the cached view shows fewer than `need`.
    #[inline]
    fn has_room(&mut self, mem: &RingMemory, need: u64) -> Result<bool, RingError> {
        if mem.capacity - (self.tail - self.cached_head) >= need {
            return Ok(true);
        }
        self.has_room_slow(mem, need)
    }

    /// The cached head says "full": reload it.
    #[cold]
    fn has_room_slow(&mut self, mem: &RingMemory, need: u64) -> Result<bool, RingError> {
        let cap = mem.capacity;
        // SYNC: head-release. Acquire: the consumer's reads of the bytes below head happen-before
        // our overwriting them.
        let head = mem.ctrl().consumer.head.load(Ordering::Acquire);
        check_indices(head, self.tail, cap)?;
        self.cached_head = head;
        if cap - (self.tail - head) >= need {
            return Ok(true);
        }
        if !self.full {
            // Counted once per episode, not per poll: a spinning producer must not keep writing
            // the line the consumer polls.
            self.full = true;
            let c = &mem.ctrl().producer.full_events;
            // Relaxed: a statistic written only by the producer.
            c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        Ok(false)
    }

    /// Finds room for the record of a `len`-byte message: returns its offset, or `None` if the
    /// ring is full. May write and publish a padding record first (so the record starts at 0).
    #[inline]
    fn reserve(&mut self, mem: &RingMemory, len: usize, publish_padding: bool) -> Result<Option<u64>, RingError> {
        let rec = record_size(len) as u64;
        let cap = mem.capacity;
        let to_end = cap - self.off;
        if rec > to_end {
            if !self.has_room(mem, to_end)? {
                return Ok(None);
            }
            // Padding fills the rest of the buffer; its length word counts the skipped bytes.
            mem.store_header(self.off, (to_end - RECORD_HEADER as u64) as u32, FLAG_PADDING);
            self.tail += to_end;
            self.off = 0;
            if publish_padding {
                self.publish_tail(mem);
            }
        }
        if !self.has_room(mem, rec)? {
            return Ok(None);
        }
        Ok(Some(self.take_room(mem, len, rec)))
    }

    /// Takes the `rec` bytes at our position for a `len`-byte message, once `has_room` showed
    /// them free (and they lie before the end of the buffer); returns their offset.
    #[inline]
    fn take_room(&mut self, mem: &RingMemory, len: usize, rec: u64) -> u64 {
        self.full = false;
        if len % RECORD_ALIGN != 0 {
            // Zero the record's last word before the payload covers its start: every byte of
            // the record is then written by this lap, so the padding after a payload carries no
            // stale bytes of an older message, and no 8-byte word is left half an older atomic
            // header and half plain payload (mixed atomic and non-atomic bytes in one word, which
            // Miri's weak-memory emulation cannot model; every atomic access to the data area is
            // an aligned 8-byte header word).
            // SAFETY: has_room showed [off, off + rec) released by the consumer and unpublished,
            // so it is ours alone; off + rec <= capacity and rec >= 16 (len > 0), so the word is
            // in bounds.
            unsafe { mem.copy_in(self.off + rec - 8, &[0; 8]) };
        }
        self.off
    }

    /// Copies `data` into the record taken at `off` ([`reserve`](Self::reserve) or
    /// [`take_room`](Self::take_room)), frames it and publishes it.
    #[inline]
    fn write_record(&mut self, mem: &RingMemory, off: u64, data: &[u8]) {
        // SAFETY: the record at `off` was taken for `data.len()` bytes (off + record <=
        // capacity), released by the consumer, and nobody else writes it until we publish.
        unsafe { mem.copy_in(off + RECORD_HEADER as u64, data) };
        self.push(mem, data.len());
        self.commit(mem, 1, data.len() as u64);
    }

    /// Writes a message header for a record of `len` at our position and advances (unpublished).
    #[inline]
    fn push(&mut self, mem: &RingMemory, len: usize) {
        let rec = record_size(len) as u64;
        mem.store_header(self.off, len as u32, FLAG_MESSAGE);
        self.tail += rec;
        self.off += rec;
        if self.off == mem.capacity {
            self.off = 0;
        }
    }

    #[inline]
    fn publish_tail(&self, mem: &RingMemory) {
        // SYNC: tail-publish. Release: every header and payload byte written below `tail`
        // happens-before the consumer's Acquire load that observes it.
        mem.ctrl().producer.tail.store(self.tail, Ordering::Release);
    }

    /// Publishes, updates counters, wakes a sleeping consumer.
    #[inline]
    fn commit(&mut self, mem: &RingMemory, msgs: u64, bytes: u64) {
        let p = &mem.ctrl().producer;
        self.messages = self.messages.wrapping_add(msgs);
        self.bytes = self.bytes.wrapping_add(bytes);
        // Relaxed: statistics, written only by the producer, on the producer's own line, just
        // before the tail store so that all three stores drain with one ownership transfer.
        p.messages.store(self.messages, Ordering::Relaxed);
        p.bytes.store(self.bytes, Ordering::Relaxed);
        self.publish_tail(mem);
        notify::notify(&mem.ctrl().wait.data);
    }
}

impl ConsumerState {
    /// Looks at the record at our position, skipping one padding record. Never advances past a
    /// message; validates everything it reads.
    #[inline]
    fn peek(&mut self, mem: &RingMemory) -> Result<Peek, RingError> {
        let cap = mem.capacity;
        // At most two rounds: one padding record (which ends at the buffer's end and is never at
        // offset 0), then a message.
        for _ in 0..2 {
            let mut avail = self.cached_tail - self.head;
            if avail == 0 {
                // Ask for the line the next record's header will be in while we look at tail:
                // when tail moves, the two cache misses (tail, then header) overlap instead of
                // following each other, which is most of a spinning reader's round trip.
                mem.prefetch(self.off);
                // SYNC: tail-publish. Acquire: the producer's writes below tail are visible.
                let tail = mem.ctrl().producer.tail.load(Ordering::Acquire);
                check_indices(self.head - self.held, tail, cap)?;
                if tail < self.head {
                    return Err(corrupt(format!("tail {tail} moved backwards past head {}", self.head)));
                }
                self.cached_tail = tail;
                avail = tail - self.head;
                if avail == 0 {
                    if !self.empty {
                        // Once per episode, not per poll (see ProducerState::has_room).
                        self.empty = true;
                        let c = &mem.ctrl().consumer.empty_events;
                        // Relaxed: a statistic written only by the consumer.
                        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                    }
                    return Ok(Peek::Empty);
                }
                self.empty = false;
            }
            if avail < RECORD_HEADER as u64 {
                return Err(corrupt(format!("{avail} bytes published, less than a record header")));
            }
            let (len, flags) = mem.load_header(self.off);
            let to_end = cap - self.off;
            match flags {
                FLAG_MESSAGE => {
                    let rec = align8(u64::from(len) + RECORD_HEADER as u64);
                    if rec > to_end || rec > avail {
                        return Err(corrupt(format!(
                            "record of {len} bytes at offset {} exceeds the buffer or the {avail} published bytes",
                            self.off
                        )));
                    }
                    return Ok(Peek::Message { off: self.off + RECORD_HEADER as u64, len: len as usize, rec });
                }
                FLAG_PADDING => {
                    if self.off == 0 || u64::from(len) + RECORD_HEADER as u64 != to_end || to_end > avail {
                        return Err(corrupt(format!("bad padding record of {len} bytes at offset {}", self.off)));
                    }
                    self.head += to_end;
                    self.off = 0;
                }
                other => {
                    return Err(corrupt(format!("unknown record flags {other:#x} at offset {}", self.off)));
                }
            }
        }
        Err(corrupt("two padding records in a row".into()))
    }

    /// Advances past a record just peeked (unpublished).
    #[inline]
    fn advance(&mut self, mem: &RingMemory, rec: u64, len: usize) {
        self.head += rec;
        self.off += rec;
        if self.off == mem.capacity {
            self.off = 0;
        }
        self.pending_msgs += 1;
        self.pending_bytes += len as u64;
    }

    /// Publishes our position (minus any detached record) and wakes a sleeping producer.
    #[inline]
    fn publish(&mut self, mem: &RingMemory) {
        let c = &mem.ctrl().consumer;
        // SYNC: head-release. Release: our reads of every byte below head happen-before the
        // producer's Acquire load that lets it overwrite them.
        c.head.store(self.head - self.held, Ordering::Release);
        if self.pending_msgs != 0 {
            // Relaxed: statistics, written only by the consumer, on its own line.
            self.messages = self.messages.wrapping_add(self.pending_msgs);
            self.bytes = self.bytes.wrapping_add(self.pending_bytes);
            c.messages.store(self.messages, Ordering::Relaxed);
            c.bytes.store(self.bytes, Ordering::Relaxed);
            self.pending_msgs = 0;
            self.pending_bytes = 0;
        }
        notify::notify(&mem.ctrl().wait.space);
    }
}

// ---------------------------------------------------------------------------------------------
// The public handle
// ---------------------------------------------------------------------------------------------

/// Statistics kept in the control block (each side's counters on its own cache line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Messages committed by producers.
    pub messages_in: u64,
    /// Payload bytes committed.
    pub bytes_in: u64,
    /// Times a producer found the ring full (once per episode, however long it polled).
    pub full_events: u64,
    /// Messages consumed.
    pub messages_out: u64,
    /// Payload bytes consumed.
    pub bytes_out: u64,
    /// Times a consumer found the ring empty (once per episode).
    pub empty_events: u64,
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
    mem: Arc<RingMemory>,
    prod: Option<ProducerState>,
    cons: Option<ConsumerState>,
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
const RUST_SLICE: Duration = Duration::from_secs(1);

impl Ring {
    /// Creates a ring with `capacity` data bytes (rounded up to a multiple of 8) at `path`
    /// (a bare name lives in `/dev/shm`), mode 0600. Fails if the path exists.
    pub fn create(path: impl AsRef<Path>, capacity: usize) -> Result<Ring, OpenError> {
        Self::create_with(path, capacity, &CreateOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(path: impl AsRef<Path>, capacity: usize, opts: &CreateOptions) -> Result<Ring, OpenError> {
        Self::create_with_schema(path, capacity, opts, &[])
    }

    /// [`create_with`](Self::create_with), storing `schema` (a typed channel's schema JSON; empty
    /// for an untyped ring) in the file's schema area before the file is published.
    pub fn create_with_schema(
        path: impl AsRef<Path>,
        capacity: usize,
        opts: &CreateOptions,
        schema: &[u8],
    ) -> Result<Ring, OpenError> {
        let path = region::resolve_path(path);
        let capacity = checked_capacity(capacity)?;
        let plan = Plan::new(CONTROL_SIZE as u64, schema.len() as u64, capacity as u64)
            .ok_or_else(|| OpenError::InvalidArgument(format!("capacity {capacity} is too large")))?;
        let creating = region::create_file(&path, Kind::Ring, plan, opts)?;
        if !schema.is_empty() {
            creating.write_schema(schema)?;
        }
        // The file is fresh (zero-filled by the file system): indices, counters, waiters and
        // attach words are all zero already; only the capacity needs writing before READY.
        let ctrl = creating.region().as_ptr().wrapping_add(plan.control_offset as usize) as *const RingControl;
        // SAFETY: the control block lies inside the new mapping (plan), is 8-aligned (offset 128
        // of a page-aligned mapping) and holds only atomics.
        let config = unsafe { &(*ctrl).config };
        // Relaxed: published by the Release store of READY in `publish` (SYNC: header-publish).
        config.capacity.store(capacity as u64, Ordering::Relaxed);
        let region = creating.publish()?;
        Ok(Self::from_region(region, plan.control_offset, plan.data_offset, capacity as u64, Some(path)))
    }

    /// Opens an existing ring, validating its header and control block.
    pub fn open(path: impl AsRef<Path>) -> Result<Ring, OpenError> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Ring, OpenError> {
        let path = region::resolve_path(path);
        let (region, header) = region::open_file(&path, Kind::Ring, opts)?;
        let bad = |reason: String| OpenError::CorruptHeader { path: path.clone(), reason };
        if header.control_size != CONTROL_SIZE as u64 {
            return Err(bad(format!("ring control block is {} bytes, expected {CONTROL_SIZE}", header.control_size)));
        }
        let capacity = header.data_size;
        if !(MIN_CAPACITY as u64..=MAX_CAPACITY as u64).contains(&capacity) || capacity % 8 != 0 {
            return Err(bad(format!("ring capacity {capacity} is out of range or not a multiple of 8")));
        }
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
            let plan = Plan::new(CONTROL_SIZE as u64, 0, capacity as u64)
                .ok_or_else(|| OpenError::InvalidArgument(format!("capacity {capacity} is too large")))?;
            let region = Region::heap(plan.total_size as usize);
            let ring = Self::from_region(region, plan.control_offset, plan.data_offset, capacity as u64, None);
            // Relaxed: the region is not shared yet; handles made later see it through Arc.
            ring.mem.ctrl().config.capacity.store(capacity as u64, Ordering::Relaxed);
            Ok(ring)
        }
        #[cfg(loom)]
        {
            let ctrl = Box::new(RingControl::new(capacity as u64));
            let data: Box<[loom::cell::UnsafeCell<u8>]> =
                (0..capacity).map(|_| loom::cell::UnsafeCell::new(0)).collect();
            let mem = RingMemory {
                ctrl: &*ctrl as *const RingControl,
                data: std::ptr::null_mut(),
                capacity: capacity as u64,
                path: None,
                _loom: (ctrl, data),
            };
            Ok(Ring { mem: Arc::new(mem), prod: None, cons: None })
        }
    }

    #[cfg(not(loom))]
    fn from_region(
        region: Region,
        control_offset: u64,
        data_offset: u64,
        capacity: u64,
        path: Option<PathBuf>,
    ) -> Ring {
        debug_assert!(data_offset + capacity <= region.len() as u64);
        debug_assert!(control_offset + CONTROL_SIZE as u64 <= data_offset);
        let base = region.as_ptr();
        let mem = RingMemory {
            ctrl: base.wrapping_add(control_offset as usize) as *const RingControl,
            data: base.wrapping_add(data_offset as usize),
            capacity,
            path,
            _region: region,
        };
        Ring { mem: Arc::new(mem), prod: None, cons: None }
    }

    #[cfg(loom)]
    fn from_region(_: Region, _: u64, _: u64, _: u64, _: Option<PathBuf>) -> Ring {
        unreachable!("file-backed rings are not modelled under loom")
    }

    /// Another handle on the same ring, holding no role (e.g. for a consumer thread).
    pub fn new_handle(&self) -> Ring {
        Ring { mem: self.mem.clone(), prod: None, cons: None }
    }

    /// The ring's memory, shared by all handles of this process: keeping it alive keeps a
    /// detached read ([`RecvGuard::detach`]) mapped.
    pub fn memory(&self) -> &Arc<RingMemory> {
        &self.mem
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

    /// True if this handle holds `role` (and it was not inherited across `fork`).
    pub fn holds(&self, role: Role) -> bool {
        let g = fork_generation();
        match role {
            Role::Producer => self.prod.as_ref().is_some_and(|p| p.claim.generation == g),
            Role::Consumer => self.cons.as_ref().is_some_and(|c| c.claim.generation == g),
        }
    }

    /// Claims the producer role now (writes claim it lazily otherwise). Cheap when this handle
    /// held the role before and nobody produced since: one CAS and one load, both on the
    /// producer's own line.
    pub fn claim_producer(&mut self) -> Result<(), RingError> {
        self.producer().map(|_| ())
    }

    /// Claims the consumer role now (reads claim it lazily otherwise); cheap as for
    /// [`claim_producer`](Self::claim_producer). Releases a detached record still held.
    pub fn claim_consumer(&mut self) -> Result<(), RingError> {
        self.consumer().map(|_| ())
    }

    /// Gives up the producer role (if held), so another handle or process may produce. The
    /// handle keeps its cached state for a later claim; its next write claims the role again.
    /// Do not release while a [`DetachedSlot`] is out: its commit would then be refused.
    pub fn release_producer(&mut self) {
        if let Some(p) = self.prod.as_mut() {
            release(&self.mem, Role::Producer, &mut p.claim);
        }
    }

    /// Gives up the consumer role (if held); the next read claims it again. A detached record
    /// not yet released is left unread: the next consumer receives it again.
    pub fn release_consumer(&mut self) {
        if let Some(c) = self.cons.as_mut() {
            release(&self.mem, Role::Consumer, &mut c.claim);
        }
    }

    #[inline]
    fn producer(&mut self) -> Result<&mut ProducerState, RingError> {
        let generation = fork_generation();
        if !matches!(&self.prod, Some(p) if p.claim.generation == generation) {
            self.producer_slow()?;
        }
        Ok(self.prod.as_mut().expect("claimed"))
    }

    /// Claims the producer role: the handle never held it, released it, or inherited it across
    /// `fork` (then the claim is the parent's: forgotten without releasing).
    #[cold]
    #[inline(never)]
    fn producer_slow(&mut self) -> Result<&mut ProducerState, RingError> {
        let (claim, took_over) = claim(&self.mem, Role::Producer)?;
        notify::register();
        let ctrl = self.mem.ctrl();
        if took_over {
            // The dead producer may have died asleep; its sleeper count would make every
            // consumer release pay for a wake. Only producers sleep on `space`.
            ctrl.wait.space.sleepers.store(0, Ordering::Relaxed);
        }
        // SYNC: tail-publish. Acquire: we continue from the last published tail (the previous
        // holder's tail store happens-before its release, which our claim CAS read from).
        let tail = ctrl.producer.tail.load(Ordering::Acquire);
        if self.prod.as_ref().is_some_and(|p| p.claim.generation == RELEASED && p.tail == tail) {
            // Released by us at an operation's end and nobody produced since (tail only grows):
            // offset, counters and the cached head (a lower bound: head only grows) are still
            // right.
            let p = self.prod.as_mut().expect("checked above");
            p.claim = claim;
            return Ok(p);
        }
        // SYNC: head-release. Acquire: we must not overwrite bytes the consumer has not released.
        let head = ctrl.consumer.head.load(Ordering::Acquire);
        let cap = self.mem.capacity;
        if let Err(e) = check_indices(head, tail, cap) {
            let mut claim = claim;
            release(&self.mem, Role::Producer, &mut claim);
            return Err(e);
        }
        // Relaxed: counters only the producer writes; a previous holder is dead or released
        // the role (with a Release store that our claim's Acquire CAS read from).
        let (messages, bytes) =
            (ctrl.producer.messages.load(Ordering::Relaxed), ctrl.producer.bytes.load(Ordering::Relaxed));
        self.prod =
            Some(ProducerState { claim, tail, off: tail % cap, cached_head: head, full: false, messages, bytes });
        Ok(self.prod.as_mut().expect("claimed above"))
    }

    #[inline]
    fn consumer(&mut self) -> Result<&mut ConsumerState, RingError> {
        let generation = fork_generation();
        if !matches!(&self.cons, Some(c) if c.claim.generation == generation && c.held == 0) {
            self.consumer_slow()?;
        }
        Ok(self.cons.as_mut().expect("claimed"))
    }

    /// Claims the consumer role if this handle does not hold it (as [`Self::producer_slow`]),
    /// then releases a detached record still held.
    #[cold]
    #[inline(never)]
    fn consumer_slow(&mut self) -> Result<&mut ConsumerState, RingError> {
        if !self.holds(Role::Consumer) {
            let (claim, took_over) = claim(&self.mem, Role::Consumer)?;
            notify::register();
            let ctrl = self.mem.ctrl();
            if took_over {
                // Only consumers sleep on `data`: a dead one's sleeper count is stale.
                ctrl.wait.data.sleepers.store(0, Ordering::Relaxed);
            }
            // SYNC: head-release. Acquire: continue from the last released head.
            let head = ctrl.consumer.head.load(Ordering::Acquire);
            let keep =
                self.cons.as_ref().is_some_and(|c| c.claim.generation == RELEASED && c.held == 0 && c.head == head);
            if keep {
                // Released by us at an operation's end (everything published) and nobody consumed
                // since: offset, counters and the cached tail (a lower bound) are still right.
                self.cons.as_mut().expect("checked above").claim = claim;
            } else {
                // SYNC: tail-publish. Acquire: the records below tail are visible.
                let tail = ctrl.producer.tail.load(Ordering::Acquire);
                let cap = self.mem.capacity;
                if let Err(e) = check_indices(head, tail, cap) {
                    let mut claim = claim;
                    release(&self.mem, Role::Consumer, &mut claim);
                    return Err(e);
                }
                self.cons = Some(ConsumerState {
                    claim,
                    head,
                    off: head % cap,
                    cached_tail: tail,
                    held: 0,
                    pending_msgs: 0,
                    pending_bytes: 0,
                    // Relaxed: as for the producer's counters.
                    messages: ctrl.consumer.messages.load(Ordering::Relaxed),
                    bytes: ctrl.consumer.bytes.load(Ordering::Relaxed),
                    empty: false,
                });
            }
        }
        let mem = &self.mem;
        let c = self.cons.as_mut().expect("claimed above");
        if c.held != 0 {
            // A detached record is released by the next consumer operation.
            c.held = 0;
            c.publish(mem);
        }
        Ok(c)
    }

    fn check_len(&self, len: usize) -> Result<u64, RingError> {
        if len > self.max_message_size() {
            return Err(RingError::TooLarge { len, max: self.max_message_size() });
        }
        Ok(record_size(len) as u64)
    }

    // ----- producer -----

    /// Reserves a slot of `len` bytes without waiting: `None` if the ring is full now.
    /// Fill the slot in place, then [`SlotMut::commit`]; dropping it uncommitted writes nothing.
    pub fn try_loan(&mut self, len: usize) -> Result<Option<SlotMut<'_>>, RingError> {
        self.check_len(len)?;
        self.producer()?;
        let mem = &*self.mem;
        let p = self.prod.as_mut().expect("claimed above");
        match p.reserve(mem, len, true)? {
            None => Ok(None),
            Some(off) => Ok(Some(SlotMut::new(self, off, len))),
        }
    }

    /// Reserves a slot of `len` bytes, waiting for room as long as it takes.
    pub fn loan(&mut self, len: usize) -> Result<SlotMut<'_>, RingError> {
        match self.loan_timeout(len, None)? {
            Some(s) => Ok(s),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Reserves a slot of `len` bytes, waiting at most `timeout` (`None`: forever).
    pub fn loan_timeout(&mut self, len: usize, timeout: Option<Duration>) -> Result<Option<SlotMut<'_>>, RingError> {
        self.check_len(len)?;
        let deadline = Deadline::after(timeout);
        let mem = self.mem.clone();
        loop {
            if let Some(off) = self.producer()?.reserve(&mem, len, true)? {
                return Ok(Some(SlotMut::new(self, off, len)));
            }
            if !self.wait_writable_until(len, deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Writes one message if there is room now. `Ok(false)`: the ring is full.
    ///
    /// Fails with [`RingError::TooLarge`] if `data` can never fit (longer than
    /// [`max_message_size`](Self::max_message_size)).
    #[inline]
    pub fn try_write(&mut self, data: &[u8]) -> Result<bool, RingError> {
        // Fast path, kept small enough to inline into the caller's loop: the role is held and
        // the record fits before the end of the buffer. Claiming, padding at the wrap and errors
        // are in the cold path. Reloading head when the cached value shows no room stays here:
        // a producer that keeps the ring full needs it on nearly every message.
        let mem = &*self.mem;
        if let Some(p) = &mut self.prod {
            let len = data.len();
            let rec = record_size(len.min(mem.capacity as usize)) as u64;
            // (rec <= capacity - off also bounds len below max_message_size.)
            if p.claim.generation == fork_generation() && rec <= mem.capacity - p.off {
                if !p.has_room(mem, rec)? {
                    return Ok(false);
                }
                let off = p.take_room(mem, len, rec);
                p.write_record(mem, off, data);
                return Ok(true);
            }
        }
        self.try_write_slow(data)
    }

    #[cold]
    #[inline(never)]
    fn try_write_slow(&mut self, data: &[u8]) -> Result<bool, RingError> {
        self.check_len(data.len())?;
        self.producer()?;
        // Split borrows instead of cloning the Arc (an atomic read-modify-write).
        let mem = &*self.mem;
        let p = self.prod.as_mut().expect("claimed above");
        match p.reserve(mem, data.len(), true)? {
            None => Ok(false),
            Some(off) => {
                p.write_record(mem, off, data);
                Ok(true)
            }
        }
    }

    /// Writes one message, waiting for room as long as it takes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), RingError> {
        self.write_timeout(data, None).map(|_| ())
    }

    /// Writes one message, waiting at most `timeout` (`None`: forever). `Ok(false)`: timed out.
    pub fn write_timeout(&mut self, data: &[u8], timeout: Option<Duration>) -> Result<bool, RingError> {
        let deadline = Deadline::after(timeout);
        loop {
            if self.try_write(data)? {
                return Ok(true);
            }
            if !self.wait_writable_until(data.len(), deadline, None)? {
                return Ok(false);
            }
        }
    }

    /// Writes as many of `messages`, in order, as fit now, with a single publication of the
    /// tail (and at most one wake-up). Returns how many were written.
    ///
    /// Checks every length first: if any message can never fit, nothing is written and the
    /// error is [`RingError::TooLarge`].
    ///
    /// ```
    /// let mut ring = mmapipc::Ring::heap(64)?; // 64 bytes: four 8-byte messages (16 with framing)
    /// let msgs: Vec<[u8; 8]> = (0..6u8).map(|i| [i; 8]).collect();
    /// assert_eq!(ring.write_batch(&msgs)?, 4);
    /// let mut got = Vec::new();
    /// assert_eq!(ring.read_batch(10, |m| got.push(m[0]))?, 4);
    /// assert_eq!(got, [0, 1, 2, 3]);
    /// assert!(matches!(ring.write_batch(&[vec![0u8; 57]]), Err(mmapipc::RingError::TooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_batch<B: AsRef<[u8]>>(&mut self, messages: &[B]) -> Result<usize, RingError> {
        for m in messages {
            self.check_len(m.as_ref().len())?;
        }
        let mem = self.mem.clone();
        let p = self.producer()?;
        let mut n = 0usize;
        let mut bytes = 0u64;
        for m in messages {
            let m = m.as_ref();
            // A padding record is published with the batch (or alone if nothing follows).
            match p.reserve(&mem, m.len(), false)? {
                None => break,
                Some(off) => {
                    // SAFETY: as in try_write: the reserved range is ours until published.
                    unsafe { mem.copy_in(off + RECORD_HEADER as u64, m) };
                    p.push(&mem, m.len());
                    n += 1;
                    bytes += m.len() as u64;
                }
            }
        }
        // Publish even when n == 0: a padding record written above must become visible so the
        // consumer can pass it.
        if n == 0 {
            p.publish_tail(&mem);
        } else {
            p.commit(&mem, n as u64, bytes);
        }
        Ok(n)
    }

    /// Waits until a message of `len` bytes could make progress (room for it, or for the padding
    /// record that precedes it at the wrap), at most `timeout`. `Ok(false)`: timed out.
    /// Returns at once with `Ok(true)` if there is room already.
    pub fn wait_writable(&mut self, len: usize, timeout: Option<Duration>) -> Result<bool, RingError> {
        self.wait_writable_until(len, Deadline::after(timeout), None)
    }

    /// [`wait_writable`](Self::wait_writable) that also returns `Ok(true)` once `stop` is set
    /// (checked whenever the wait wakes; [`wake_waiters`](Self::wake_waiters) wakes it): for a
    /// binding whose handle may be closed by another thread while it waits.
    pub fn wait_writable_or_stop(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<bool, RingError> {
        self.wait_writable_until(len, Deadline::after(timeout), Some(stop))
    }

    fn wait_writable_until(
        &mut self,
        len: usize,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, RingError> {
        let rec = self.check_len(len)?;
        let mem = self.mem.clone();
        let p = self.producer()?;
        let cap = mem.capacity;
        let to_end = cap - p.off;
        let need = if rec > to_end { to_end } else { rec };
        let tail = p.tail;
        let ctrl = mem.ctrl();
        let slice = deadline.remaining().map_or(RUST_SLICE, |r| r.min(RUST_SLICE));
        let ready = || {
            // SeqCst: pairs with the stopper's store before its wake (see `wake_waiters`).
            if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                return Some(Ok(()));
            }
            // SYNC: head-release (Acquire, as in has_room).
            let head = ctrl.consumer.head.load(Ordering::Acquire);
            match tail.checked_sub(head) {
                Some(used) if used <= cap => (cap - used >= need).then_some(Ok(())),
                _ => Some(Err(())),
            }
        };
        loop {
            match notify::wait_until(&ctrl.wait.space, deadline, slice, ready) {
                Some(Ok(())) => return Ok(true),
                // Corrupt indices: let has_room report them with details.
                Some(Err(())) => return p.has_room(&mem, need).map(|_| true),
                None => {
                    if deadline.expired() {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Bytes free in the ring now (framing not subtracted: a message of `n` bytes needs
    /// `record_size(n)`, plus the rest of the buffer as padding when it would wrap).
    pub fn available_write(&self) -> usize {
        let (head, tail) = self.indices();
        (self.mem.capacity.saturating_sub(tail.saturating_sub(head))) as usize
    }

    // ----- consumer -----

    /// Receives one message if one is ready: a guard that derefs to the payload in place and
    /// releases its space when dropped. `Ok(None)`: the ring is empty.
    #[inline]
    pub fn try_read(&mut self) -> Result<Option<RecvGuard<'_>>, RingError> {
        // Fast path, small enough to inline: the role is held with nothing detached, the cached
        // tail shows a record, and its header is a message that lies inside the published
        // bytes and the buffer. Padding, reloading tail, corruption and claiming are cold.
        let mem = &*self.mem;
        if let Some(c) = &mut self.cons {
            let avail = c.cached_tail - c.head;
            if c.claim.generation == fork_generation() && c.held == 0 && avail >= RECORD_HEADER as u64 {
                let (len, flags) = mem.load_header(c.off);
                let rec = align8(u64::from(len) + RECORD_HEADER as u64);
                if flags == FLAG_MESSAGE && rec <= avail && rec <= mem.capacity - c.off {
                    let off = c.off + RECORD_HEADER as u64;
                    return Ok(Some(RecvGuard::new(self, off, len as usize, rec)));
                }
            }
        }
        self.try_read_slow()
    }

    #[cold]
    #[inline(never)]
    fn try_read_slow(&mut self) -> Result<Option<RecvGuard<'_>>, RingError> {
        self.consumer()?;
        // Split borrows instead of cloning the Arc.
        let mem = &*self.mem;
        let c = self.cons.as_mut().expect("claimed above");
        match c.peek(mem)? {
            Peek::Empty => {
                if c.head - c.held != mem.ctrl().consumer.head.load(Ordering::Relaxed) {
                    c.publish(mem); // we skipped padding: give that space back
                }
                Ok(None)
            }
            Peek::Message { off, len, rec } => Ok(Some(RecvGuard::new(self, off, len, rec))),
        }
    }

    /// Receives one message, waiting as long as it takes.
    pub fn read(&mut self) -> Result<RecvGuard<'_>, RingError> {
        match self.read_timeout(None)? {
            Some(g) => Ok(g),
            None => unreachable!("an unbounded wait does not time out"),
        }
    }

    /// Receives one message, waiting at most `timeout` (`None`: forever). `Ok(None)`: timed out.
    pub fn read_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<RecvGuard<'_>>, RingError> {
        let deadline = Deadline::after(timeout);
        let mem = self.mem.clone();
        loop {
            let c = self.consumer()?;
            if let Peek::Message { off, len, rec } = c.peek(&mem)? {
                return Ok(Some(RecvGuard::new(self, off, len, rec)));
            }
            if c.head - c.held != mem.ctrl().consumer.head.load(Ordering::Relaxed) {
                c.publish(&mem);
            }
            if !self.wait_readable_until(deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Receives up to `max` messages that are ready now, calling `f` on each payload in place,
    /// then releases them all with a single publication of head. Returns how many were read.
    pub fn read_batch(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize, RingError> {
        let mem = self.mem.clone();
        let c = self.consumer()?;
        let start = c.head;
        let mut n = 0;
        let mut result = Ok(());
        while n < max {
            match c.peek(&mem) {
                Ok(Peek::Empty) => break,
                Ok(Peek::Message { off, len, rec }) => {
                    #[cfg(not(loom))]
                    {
                        // SAFETY: peek validated off + len <= capacity and that the record is
                        // published and not released: the protocol gives these bytes to us.
                        let s = unsafe { std::slice::from_raw_parts(mem.data.add(off as usize), len) };
                        f(s);
                    }
                    #[cfg(loom)]
                    {
                        let mut v = vec![0u8; len];
                        // SAFETY: as above.
                        unsafe { mem.copy_out(off, &mut v) };
                        f(&v);
                    }
                    c.advance(&mem, rec, len);
                    n += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if c.head != start {
            c.publish(&mem);
        }
        result.map(|_| n)
    }

    /// Waits until a message may be ready (at most `timeout`). `Ok(false)`: timed out.
    /// Returns at once with `Ok(true)` if data is published already.
    pub fn wait_readable(&mut self, timeout: Option<Duration>) -> Result<bool, RingError> {
        self.wait_readable_until(Deadline::after(timeout), None)
    }

    /// [`wait_readable`](Self::wait_readable) that also returns `Ok(true)` once `stop` is set
    /// (see [`wait_writable_or_stop`](Self::wait_writable_or_stop)).
    pub fn wait_readable_or_stop(
        &mut self,
        timeout: Option<Duration>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<bool, RingError> {
        self.wait_readable_until(Deadline::after(timeout), Some(stop))
    }

    /// Wakes every waiter sleeping on this ring's two futex words, in every process (each
    /// re-checks its condition and sleeps again if nothing changed). Set a waiter's `stop` flag
    /// first: a waiter then either sees the flag or is woken (or never sleeps).
    pub fn wake_waiters(&self) {
        let ctrl = self.mem.ctrl();
        for w in [&ctrl.wait.data, &ctrl.wait.space] {
            // Release: a sleeper that reads the bumped seq (Acquire) sees the stop flag stored
            // before it; one that read the old seq has FUTEX_WAIT fail or is woken here.
            w.seq.fetch_add(1, Ordering::Release);
            crate::wait::wake_all(&w.seq);
        }
    }

    fn wait_readable_until(
        &mut self,
        deadline: Deadline,
        stop: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<bool, RingError> {
        let mem = self.mem.clone();
        let c = self.consumer()?;
        let head = c.head;
        let ctrl = mem.ctrl();
        let slice = deadline.remaining().map_or(RUST_SLICE, |r| r.min(RUST_SLICE));
        loop {
            let ready = || {
                // SeqCst: pairs with the stopper's store before its wake (see `wake_waiters`).
                let stopped = stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
                // SYNC: tail-publish (Acquire; the actual read reloads it anyway).
                (stopped || ctrl.producer.tail.load(Ordering::Acquire) != head).then_some(())
            };
            match notify::wait_until(&ctrl.wait.data, deadline, slice, ready) {
                Some(()) => return Ok(true),
                None => {
                    if deadline.expired() {
                        return Ok(false);
                    }
                }
            }
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

    fn indices(&self) -> (u64, u64) {
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
            full_events: c.producer.full_events.load(Ordering::Relaxed),
            messages_out: c.consumer.messages.load(Ordering::Relaxed),
            bytes_out: c.consumer.bytes.load(Ordering::Relaxed),
            empty_events: c.consumer.empty_events.load(Ordering::Relaxed),
        }
    }

    /// Discards every published message, as the consumer: `head := tail`.
    ///
    /// Safe while the producer is active: only published records are dropped (a message being
    /// written is committed after them and delivered normally), and the producer only ever sees
    /// more room. If this handle does not hold the consumer role it claims it for the duration
    /// of the call; if another live process consumes, this fails with
    /// [`RingError::AlreadyAttached`] (ask the consumer to clear instead). A detached record
    /// held by this handle is released.
    pub fn clear(&mut self) -> Result<(), RingError> {
        let had = self.holds(Role::Consumer);
        let mem = self.mem.clone();
        let c = self.consumer()?;
        // SYNC: tail-publish. Acquire: we release bytes up to this tail, which must not be
        // reordered before the producer's writes we are discarding.
        let tail = mem.ctrl().producer.tail.load(Ordering::Acquire);
        check_indices(c.head, tail, mem.capacity)?;
        // Messages dropped: everything the producer counted and the consumer did not.
        let s = self.stats();
        let c = self.cons.as_mut().expect("claimed above");
        c.pending_msgs = s.messages_in.wrapping_sub(s.messages_out);
        c.pending_bytes = s.bytes_in.wrapping_sub(s.bytes_out);
        c.head = tail;
        c.off = tail % mem.capacity;
        c.cached_tail = tail;
        c.held = 0;
        c.publish(&mem);
        if !had {
            self.release_consumer();
        }
        Ok(())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.release_producer();
        self.release_consumer();
    }
}

/// A reserved slot of the ring, filled in place (derefs to `[u8]` of the loaned length).
/// [`commit`](Self::commit) publishes it; dropping it uncommitted publishes nothing.
pub struct SlotMut<'a> {
    ring: &'a mut Ring,
    off: u64,
    len: usize,
    #[cfg(loom)]
    buf: Vec<u8>,
}

impl<'a> SlotMut<'a> {
    fn new(ring: &'a mut Ring, off: u64, len: usize) -> SlotMut<'a> {
        SlotMut {
            ring,
            off,
            len,
            #[cfg(loom)]
            buf: vec![0; len],
        }
    }

    /// Publishes the message (one Release store of the tail) and wakes a sleeping consumer.
    pub fn commit(self) {
        let Ring { mem, prod, .. } = &mut *self.ring;
        #[cfg(loom)]
        // SAFETY: the slot (off - 8 .. off + len) is ours until published.
        unsafe {
            mem.copy_in(self.off + RECORD_HEADER as u64, &self.buf)
        };
        if let Some(p) = prod.as_mut() {
            p.push(mem, self.len);
            p.commit(mem, 1, self.len as u64);
        }
    }
}

impl std::ops::Deref for SlotMut<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        #[cfg(not(loom))]
        // SAFETY: reserve gave this handle off..off+8+len (inside the data area, released by the
        // consumer, unpublished), so nobody else reads or writes it while the slot lives.
        unsafe {
            std::slice::from_raw_parts(self.ring.mem.data.add(self.off as usize + RECORD_HEADER), self.len)
        }
        #[cfg(loom)]
        &self.buf
    }
}

impl std::ops::DerefMut for SlotMut<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        #[cfg(not(loom))]
        // SAFETY: as in deref; `&mut self` makes this the only reference into the slot.
        unsafe {
            std::slice::from_raw_parts_mut(self.ring.mem.data.add(self.off as usize + RECORD_HEADER), self.len)
        }
        #[cfg(loom)]
        &mut self.buf
    }
}

impl fmt::Debug for SlotMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotMut").field("len", &self.len).finish()
    }
}

/// A received message, in place in the ring (derefs to `[u8]`). Its space is released to the
/// producer when the guard is dropped.
pub struct RecvGuard<'a> {
    ring: &'a mut Ring,
    #[cfg_attr(loom, allow(dead_code))]
    off: u64,
    len: usize,
    rec: u64,
    #[cfg(loom)]
    buf: Vec<u8>,
}

impl<'a> RecvGuard<'a> {
    fn new(ring: &'a mut Ring, off: u64, len: usize, rec: u64) -> RecvGuard<'a> {
        #[cfg(loom)]
        let buf = {
            let mut v = vec![0u8; len];
            // SAFETY: peek validated the range and that it is published to us.
            unsafe { ring.mem.copy_out(off, &mut v) };
            v
        };
        RecvGuard {
            ring,
            off,
            len,
            rec,
            #[cfg(loom)]
            buf,
        }
    }

    /// Keeps the record held past the guard: the returned [`DetachedRead`] (which owns the
    /// mapping) stays valid, and the record's space stays reserved, until the next consumer
    /// operation on this handle (a read, `clear`, or dropping the handle). For bindings that
    /// export the payload without a borrow (Python's `read_view`).
    pub fn detach(self) -> DetachedRead {
        let me = std::mem::ManuallyDrop::new(self);
        let mem = me.ring.mem.clone();
        // Drop is suppressed: we move the advance here instead.
        // SAFETY: `me` is never used again and its fields are plain data/references.
        let ring: &mut Ring = unsafe { std::ptr::read(&me.ring) };
        if let Some(c) = ring.cons.as_mut() {
            c.advance(&mem, me.rec, me.len);
            c.held = me.rec;
        }
        #[cfg(not(loom))]
        let ptr = mem.data.wrapping_add(me.off as usize);
        #[cfg(loom)]
        let ptr = std::ptr::null_mut();
        DetachedRead { mem, ptr, len: me.len }
    }
}

impl std::ops::Deref for RecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        #[cfg(not(loom))]
        // SAFETY: peek validated off + len <= capacity and that the record is published and not
        // yet released: the producer will not write these bytes until we release them.
        unsafe {
            std::slice::from_raw_parts(self.ring.mem.data.add(self.off as usize), self.len)
        }
        #[cfg(loom)]
        &self.buf
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        let Ring { mem, cons, .. } = &mut *self.ring;
        if let Some(c) = cons.as_mut() {
            c.advance(mem, self.rec, self.len);
            c.publish(mem);
        }
    }
}

impl fmt::Debug for RecvGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvGuard").field("len", &self.len).finish()
    }
}

/// A record kept held after its guard ([`RecvGuard::detach`]): a pointer and length into the
/// mapping, which `memory` keeps alive. The bytes stay unchanged until the next consumer
/// operation on the handle that read it; reading them after that shows recycled bytes, which is
/// why the pointer is only available through an `unsafe` accessor.
#[derive(Debug)]
pub struct DetachedRead {
    /// Keeps the mapping alive.
    pub mem: Arc<RingMemory>,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain pointer + Arc to a Send+Sync memory owner; reading through the pointer is
// governed by the unsafe accessor's contract, not by which thread holds the value.
unsafe impl Send for DetachedRead {}

impl DetachedRead {
    /// Start of the payload (valid for reads of `len()` bytes while `mem` lives).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The payload.
    ///
    /// # Safety
    /// No consumer operation may have run on the reading handle since the detach (otherwise the
    /// producer may be rewriting these bytes).
    #[cfg(not(loom))]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: per the contract the record is still held; it lies in the mapping `mem` keeps.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Ring>();
    is_send::<Arc<RingMemory>>();
    let _ = AtomicU32::new(0);
}

#[cfg(all(test, not(loom)))]
mod tests;

/// A run of equally sized messages held in place past the call (see
/// [`Ring::read_fixed_batch_detached`]).
#[derive(Debug)]
pub struct FixedBatch {
    /// Keeps the mapping alive.
    pub mem: Arc<RingMemory>,
    ptr: *mut u8,
    count: usize,
    stride: usize,
    len: usize,
}

// SAFETY: plain pointer + Arc to a Send+Sync memory owner; reading through the pointer is
// governed by the consumer protocol (the records stay held), not by which thread holds the value.
unsafe impl Send for FixedBatch {}

impl FixedBatch {
    /// Start of the first record's payload; record `i`'s payload is at `i * stride()`.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Number of messages.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Distance between consecutive payloads (the record size: header + payload, 8-aligned).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Payload length of every message.
    pub fn message_len(&self) -> usize {
        self.len
    }

    /// Bytes from the first payload to the end of the last one.
    pub fn span(&self) -> usize {
        if self.count == 0 {
            0
        } else {
            (self.count - 1) * self.stride + self.len
        }
    }
}

impl Ring {
    /// Takes up to `max` consecutive messages of exactly `len` bytes each that lie contiguously in
    /// the buffer (the run stops at the wrap or at a message of another length) and keeps them
    /// held past the call, like [`RecvGuard::detach`]: they stay valid, and are not released to
    /// the producer, until the next consumer operation on this handle. The payloads are then an
    /// array of records with a fixed stride, which bindings expose without copying (NumPy reads a
    /// batch of ticks as one structured array).
    ///
    /// `Ok(None)`: nothing to read. A first message of another length is consumed and reported
    /// as [`RingError::WrongSize`] (a typed channel of fixed-size records never holds one).
    pub fn read_fixed_batch_detached(&mut self, max: usize, len: usize) -> Result<Option<FixedBatch>, RingError> {
        let mem = self.mem.clone();
        let c = self.consumer()?;
        let mut first: Option<(u64, u64)> = None; // (payload offset, head at the first record)
        let mut count = 0usize;
        let mut stride = 0u64;
        let mut result = Ok(());
        while count < max {
            match c.peek(&mem) {
                Ok(Peek::Empty) => break,
                Ok(Peek::Message { off, len: l, rec }) => {
                    if l != len {
                        if count == 0 {
                            c.advance(&mem, rec, l);
                            result = Err(RingError::WrongSize { len: l, expected: len });
                        }
                        break;
                    }
                    match first {
                        None => {
                            first = Some((off, c.head));
                            stride = rec;
                        }
                        // Contiguous only: the previous record ends exactly where this one starts.
                        Some((start, _)) if off != start + count as u64 * stride => break,
                        Some(_) => {}
                    }
                    c.advance(&mem, rec, l);
                    count += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let batch = first.map(|(off, head0)| {
            // Hold everything from the first record on: publish releases only what came before.
            c.held = c.head - head0;
            #[cfg(not(loom))]
            let ptr = mem.data.wrapping_add(off as usize);
            #[cfg(loom)]
            let ptr = {
                let _ = off;
                std::ptr::null_mut()
            };
            FixedBatch { mem: mem.clone(), ptr, count, stride: stride as usize, len }
        });
        c.publish(&mem);
        result.map(|_| batch)
    }
}

// ---------------------------------------------------------------------------------------------
// Read-only inspection (the `mmapipc` tool): nothing here claims a role or writes the mapping.
// ---------------------------------------------------------------------------------------------

/// A snapshot of a ring's shared state for tools ([`Ring::inspect`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingInspect {
    /// Released position (consumer).
    pub head: u64,
    /// Published position (producer).
    pub tail: u64,
    /// Producer attach word (an owner word, [`crate::owner`]; 0 = free).
    pub producer: u64,
    /// Consumer attach word.
    pub consumer: u64,
    /// Wakes issued to a sleeping consumer (the "data available" futex word; wraps at 2^32).
    pub data_wakes: u32,
    /// Consumers asleep (or about to sleep) right now.
    pub data_sleepers: u32,
    /// Wakes issued to a sleeping producer (the "space available" futex word; wraps at 2^32).
    pub space_wakes: u32,
    /// Producers asleep (or about to sleep) right now.
    pub space_sleepers: u32,
}

/// Messages copied out of a ring without consuming them ([`Ring::peek_published`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peeked {
    /// `(position, payload)` of each message, oldest first.
    pub records: Vec<(u64, Vec<u8>)>,
    /// Where the next call should continue (the published tail seen).
    pub next: u64,
    /// True if the consumer had already released records from `from` on (they were missed), or
    /// if copied records were overwritten meanwhile and dropped.
    pub missed: bool,
}

/// Whether the process named by a ring attach word still runs (pid reuse and zombies count as
/// dead): [`crate::owner::alive`], as for every owner word.
pub fn attach_word_alive(word: u64) -> bool {
    holder_alive(word)
}

#[cfg(not(loom))]
impl Ring {
    /// A snapshot of positions, attach words and waiters (no role is claimed, nothing written).
    pub fn inspect(&self) -> RingInspect {
        let c = self.mem.ctrl();
        let (head, tail) = self.indices();
        // Relaxed: informational values for tools.
        RingInspect {
            head,
            tail,
            producer: c.producer.owner.load(Ordering::Relaxed),
            consumer: c.consumer.owner.load(Ordering::Relaxed),
            data_wakes: c.wait.data.seq.load(Ordering::Relaxed),
            data_sleepers: c.wait.data.sleepers.load(Ordering::Relaxed),
            space_wakes: c.wait.space.seq.load(Ordering::Relaxed),
            space_sleepers: c.wait.space.sleepers.load(Ordering::Relaxed),
        }
    }

    /// Copies published, unconsumed messages **without consuming them** (for `mmapipc tail`).
    ///
    /// Starts at `from` (a position returned in [`Peeked::next`]) or at the consumer's head if
    /// `from` is `None` or already released; keeps the last `keep` messages (oldest first). Every
    /// record header is validated as a consumer would. The walk races with the real consumer: it
    /// may release records while we read them, and the producer may then overwrite them. So after
    /// copying, the head is re-read (seqlock style): records below it are dropped (`missed`), and
    /// the walk is trusted only if it passed through that head exactly (a released, overwritten
    /// header could have sent it to a wrong boundary); otherwise it is retried from the new head.
    pub fn peek_published(&self, from: Option<u64>, keep: usize) -> Result<Peeked, RingError> {
        let mem = &*self.mem;
        let cap = mem.capacity;
        let mut from = from;
        let mut missed = false;
        for _ in 0..100 {
            // head and tail are two loads: between them the consumer and then the producer may
            // move on, so `tail - head` can exceed the capacity in a snapshot of a healthy ring.
            let (head, tail) = self.indices();
            if check_indices(head, tail, cap).is_err() {
                continue;
            }
            let start = match from {
                Some(f) if f >= head && f <= tail && f % 8 == 0 => f,
                Some(f) => {
                    missed |= f < head;
                    head
                }
                None => head,
            };
            let mut chain: Vec<u64> = Vec::new(); // every record position walked (increasing)
            let mut found: std::collections::VecDeque<(u64, u64, usize)> = std::collections::VecDeque::new();
            let mut pos = start;
            let mut failure = None;
            while pos < tail {
                chain.push(pos);
                let off = pos % cap;
                let avail = tail - pos;
                if avail < RECORD_HEADER as u64 {
                    failure = Some(format!("{avail} bytes published, less than a record header"));
                    break;
                }
                let (len, flags) = mem.load_header(off);
                let to_end = cap - off;
                match flags {
                    FLAG_MESSAGE => {
                        let rec = align8(u64::from(len) + RECORD_HEADER as u64);
                        if rec > to_end || rec > avail {
                            failure = Some(format!("record of {len} bytes at offset {off} exceeds the buffer"));
                            break;
                        }
                        if keep > 0 {
                            if found.len() == keep {
                                found.pop_front();
                            }
                            found.push_back((pos, off + RECORD_HEADER as u64, len as usize));
                        }
                        pos += rec;
                    }
                    FLAG_PADDING if off != 0 && u64::from(len) + RECORD_HEADER as u64 == to_end && to_end <= avail => {
                        pos += to_end;
                    }
                    other => {
                        failure = Some(format!("bad record header (flags {other:#x}, length {len}) at offset {off}"));
                        break;
                    }
                }
            }
            let mut records = Vec::with_capacity(found.len());
            for (p, off, len) in found {
                let mut buf = vec![0u8; len];
                for i in 0..len.div_ceil(8) {
                    // SAFETY: off..off+align8(len) lies inside the data area (validated above:
                    // the record ends before the end of the buffer), off is 8-aligned, so each
                    // word is an aligned u64 in the mapping; it is read atomically because the
                    // producer may be overwriting it (a torn copy is detected below and dropped).
                    let w = unsafe { &*(mem.data.add(off as usize + 8 * i) as *const AtomicU64) };
                    let bytes = w.load(Ordering::Relaxed).to_le_bytes();
                    let n = (len - 8 * i).min(8);
                    buf[8 * i..8 * i + n].copy_from_slice(&bytes[..n]);
                }
                records.push((p, buf));
            }
            // SYNC: head-release (seqlock-style check). The reads above happen before this
            // re-read: a byte is only overwritten after the consumer released it, so everything
            // at or above the head read now was intact while we read it.
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let head_now = mem.ctrl().consumer.head.load(Ordering::Acquire);
            // The walk is sound from head_now on if it started there or passed through it.
            let synced = start >= head_now || chain.binary_search(&head_now).is_ok() || head_now >= pos;
            if let Some(reason) = failure {
                if synced && pos >= head_now {
                    return Err(corrupt(reason)); // an unreleased record is bad: real corruption
                }
                missed = true;
                from = Some(head_now);
                continue;
            }
            if !synced {
                missed = true;
                from = Some(head_now);
                continue;
            }
            let before = records.len();
            records.retain(|(p, _)| *p >= head_now);
            missed |= records.len() != before;
            return Ok(Peeked { records, next: pos, missed });
        }
        Err(corrupt("no consistent snapshot of the ring in 100 attempts".into()))
    }
}

/// A slot reserved past the call, for bindings that hand it out without a borrow (Python's
/// `SharedMemoryRing.loan`): fill `len()` bytes at `as_ptr()`, then
/// [`Ring::commit_detached`]; dropping it commits nothing. While a detached slot is out, the
/// producer handle must make no other write (the binding enforces this); a commit after one is
/// refused as stale.
#[derive(Debug)]
pub struct DetachedSlot {
    /// Keeps the mapping alive.
    pub mem: Arc<RingMemory>,
    ptr: *mut u8,
    off: u64,
    tail: u64,
    len: usize,
}

// SAFETY: plain pointer + Arc to a Send+Sync memory owner; writing through the pointer is governed
// by the producer protocol (the slot is reserved, unpublished), not by which thread holds it.
unsafe impl Send for DetachedSlot {}
// SAFETY: a shared reference only reads the pointer's value and the length; writing through the
// pointer happens only via the owner of the loan, under the producer protocol.
unsafe impl Sync for DetachedSlot {}

impl DetachedSlot {
    /// Start of the payload (writable for `len()` bytes until committed or dropped).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Ring {
    /// [`loan_timeout`](Self::loan_timeout) returning a [`DetachedSlot`] instead of a borrow.
    /// `Some(ZERO)` does not wait.
    pub fn loan_detached_timeout(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
    ) -> Result<Option<DetachedSlot>, RingError> {
        self.check_len(len)?;
        let deadline = Deadline::after(timeout);
        let mem = self.mem.clone();
        loop {
            let p = self.producer()?;
            if let Some(off) = p.reserve(&mem, len, true)? {
                let tail = p.tail;
                #[cfg(not(loom))]
                let ptr = mem.data.wrapping_add(off as usize + RECORD_HEADER);
                #[cfg(loom)]
                let ptr = std::ptr::null_mut();
                return Ok(Some(DetachedSlot { mem, ptr, off, tail, len }));
            }
            if timeout == Some(Duration::ZERO) || !self.wait_writable_until(len, deadline, None)? {
                return Ok(None);
            }
        }
    }

    /// Publishes a slot from [`loan_detached_timeout`](Self::loan_detached_timeout). Refused
    /// (nothing published) if the slot belongs to another ring, or this handle wrote anything
    /// since the loan (the slot may have been overwritten).
    pub fn commit_detached(&mut self, slot: DetachedSlot) -> Result<(), RingError> {
        let mem = self.mem.clone();
        let p = self.producer()?;
        if !Arc::ptr_eq(&slot.mem, &mem) || p.off != slot.off || p.tail != slot.tail {
            return Err(corrupt("stale loan: the producer wrote since the slot was loaned".into()));
        }
        p.push(&mem, slot.len);
        p.commit(&mem, 1, slot.len as u64);
        Ok(())
    }
}
