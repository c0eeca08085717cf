//! The queue's control block: ten explicitly padded 128-byte lines after the file header (see
//! FORMAT.md, ## Queue).

use super::records::{RECORD_ALIGN, RECORD_HEADER};
use crate::layout::PAD;
use crate::lock::RobustLock;
use crate::sync::{AtomicU32, AtomicU64};
use crate::wait::Waiter;

/// Control-block magic (`b"MMQUEUE1"` little-endian).
pub const QUEUE_MAGIC: u64 = u64::from_le_bytes(*b"MMQUEUE1");
/// Smallest capacity accepted ([`crate::layout::checked_capacity`]: the ring's rule too).
pub const MIN_CAPACITY: usize = crate::layout::MIN_CAPACITY;
/// Largest capacity accepted (lengths are stored as u32).
pub const MAX_CAPACITY: usize = crate::layout::MAX_CAPACITY;

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
/// Aligned to its lines, so a heap queue's block (a `Box`) has them on cache-line boundaries
/// as a file's has (the file offset is 128).
#[repr(C, align(128))]
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

// Loom's atomics have other sizes: the layout is the real atomics'.
#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<PosLine>() == PAD);
    assert!(size_of::<LockLine>() == PAD);
    assert!(size_of::<WaiterLine>() == PAD);
    assert!(size_of::<StatsLine>() == PAD);
    assert!(size_of::<ConfigLine>() == PAD);
    assert!(size_of::<RobustLock>() == 16);
    assert!(size_of::<Control>() == CONTROL_SIZE);
    assert!(align_of::<Control>() == PAD);
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

impl Control {
    /// A fresh control block for a ring of `capacity` bytes: the configuration line, every
    /// other word zero (free locks, positions at 0, no sleepers).
    pub(crate) fn new(capacity: u64) -> Control {
        let z = || AtomicU64::new(0);
        let waiter = || Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let lock = || LockLine { lock: RobustLock { word: z(), waiter: waiter() }, _pad: [0; PAD - 16] };
        let pos = || PosLine { value: z(), _pad: [0; PAD - 8] };
        let stats = || StatsLine {
            msgs: z(),
            bytes: z(),
            waits: z(),
            lock_recoveries: z(),
            view_recoveries: z(),
            view_stalls: z(),
            view_stall_at: z(),
            _pad: [0; PAD - 56],
        };
        Control {
            config: ConfigLine {
                magic: QUEUE_MAGIC,
                capacity,
                record_header: RECORD_HEADER as u64,
                record_align: RECORD_ALIGN as u64,
                _pad: [0; PAD - 32],
            },
            prod_lock: lock(),
            tail: pos(),
            prod_stats: stats(),
            cons_lock: lock(),
            read: pos(),
            cons_stats: stats(),
            reclaim: pos(),
            not_empty: WaiterLine { waiter: waiter(), _pad: [0; PAD - 8] },
            not_full: WaiterLine { waiter: waiter(), _pad: [0; PAD - 8] },
        }
    }
}

/// Writes a fresh control block ([`Control::new`]) at `p`, byte for byte.
///
/// # Safety
/// `p` must point at `CONTROL_SIZE` writable, 128-aligned bytes that no other process uses yet.
pub(super) unsafe fn write_control(p: *mut u8, capacity: u64) {
    debug_assert!(p as usize % PAD == 0);
    // SAFETY: per the contract; `Control` is `repr(C)` with explicit padding fields, so every
    // byte of the block is written (zero for every atomic, then the configuration).
    unsafe { std::ptr::write(p as *mut Control, Control::new(capacity)) };
}
