//! The ring's control block (four 128-byte lines), its offsets, record framing and the checks
//! of positions read from the mapping. FORMAT.md (## Ring) gives the same table.

use std::fmt;

use crate::error::OpenError;
use crate::layout::{Kind, PAD};
#[cfg(loom)]
use crate::sync::AtomicU32;
use crate::sync::AtomicU64;
use crate::wait::Waiter;

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
    pub const FULL_WAITS: usize = 24;
    /// Producer identity word (0 = free), on the producer's line.
    pub const PRODUCER: usize = 32;
    /// `head`, the consumer's released position.
    pub const HEAD: usize = 128;
    /// Messages consumed (consumer counter).
    pub const MESSAGES_OUT: usize = 136;
    /// Payload bytes consumed (consumer counter).
    pub const BYTES_OUT: usize = 144;
    /// Times the consumer found the ring empty.
    pub const EMPTY_WAITS: usize = 152;
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
pub(super) struct ProducerLine {
    pub(super) tail: AtomicU64,
    pub(super) messages: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) full_waits: AtomicU64,
    pub(super) owner: AtomicU64,
    _pad: [u8; PAD - 40],
}

#[repr(C)]
pub(super) struct ConsumerLine {
    pub(super) head: AtomicU64,
    pub(super) messages: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) empty_waits: AtomicU64,
    pub(super) owner: AtomicU64,
    _pad: [u8; PAD - 40],
}

#[repr(C)]
pub(super) struct WaitLine {
    pub(super) data: Waiter,
    pub(super) space: Waiter,
    _pad: [u8; PAD - 16],
}

#[repr(C)]
pub(super) struct ConfigLine {
    pub(super) capacity: AtomicU64,
    _pad: [u8; PAD - 8],
}

/// The ring's control block, as laid out in the file (see the module docs).
#[repr(C)]
pub(super) struct RingControl {
    pub(super) producer: ProducerLine,
    pub(super) consumer: ConsumerLine,
    pub(super) wait: WaitLine,
    pub(super) config: ConfigLine,
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
    assert!(offset_of!(RingControl, producer) + offset_of!(ProducerLine, full_waits) == offsets::FULL_WAITS);
    assert!(offset_of!(RingControl, consumer) + offset_of!(ConsumerLine, head) == offsets::HEAD);
    assert!(offset_of!(RingControl, consumer) + offset_of!(ConsumerLine, empty_waits) == offsets::EMPTY_WAITS);
    assert!(offset_of!(RingControl, wait) + offset_of!(WaitLine, data) == offsets::DATA_WAITER);
    assert!(offset_of!(RingControl, wait) + offset_of!(WaitLine, space) == offsets::SPACE_WAITER);
    assert!(offset_of!(RingControl, producer) + offset_of!(ProducerLine, owner) == offsets::PRODUCER);
    assert!(offset_of!(RingControl, consumer) + offset_of!(ConsumerLine, owner) == offsets::CONSUMER);
    assert!(offset_of!(RingControl, config) + offset_of!(ConfigLine, capacity) == offsets::CAPACITY);
};

#[cfg(loom)]
impl RingControl {
    pub(super) fn new(capacity: u64) -> RingControl {
        let w = || Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        let z = || AtomicU64::new(0);
        RingControl {
            producer: ProducerLine {
                tail: z(),
                messages: z(),
                bytes: z(),
                full_waits: z(),
                owner: z(),
                _pad: [0; PAD - 40],
            },
            consumer: ConsumerLine {
                head: z(),
                messages: z(),
                bytes: z(),
                empty_waits: z(),
                owner: z(),
                _pad: [0; PAD - 40],
            },
            wait: WaitLine { data: w(), space: w(), _pad: [0; PAD - 16] },
            config: ConfigLine { capacity: AtomicU64::new(capacity), _pad: [0; PAD - 8] },
        }
    }
}

/// Rounds `n` up to the record alignment.
pub(super) const fn align8(n: u64) -> u64 {
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
