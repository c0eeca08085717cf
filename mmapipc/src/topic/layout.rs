//! The topic's control block (four 128-byte lines, then the subscriber table and the group
//! table, one 128-byte entry each), its offsets, record framing and the checks of values read
//! from the mapping. FORMAT.md (## Topic) gives the same table.

use crate::layout::PAD;
use crate::lock::RobustLock;
use crate::sync::AtomicU64;
use crate::wait::Waiter;

/// Size of a record header.
pub const RECORD_HEADER: usize = 8;
/// Size of the fixed part of the control block (before the subscriber table).
pub const HEAD_SIZE: usize = 4 * PAD;
/// Size of one subscriber-table or group-table entry.
pub const ENTRY_SIZE: usize = PAD;
/// Most subscribers a topic may be created for (each has a 128-byte entry, and so may a group).
pub const MAX_SUBSCRIBERS: usize = 4096;
/// Longest group name, in bytes (UTF-8).
pub const MAX_GROUP_NAME: usize = 72;

/// Header length value of a padding record (the rest of the data area is skipped).
pub const LEN_PADDING: u32 = u32::MAX;
/// Header length value of the mark at the published end: no record yet, only the stamp of the
/// next message.
pub const LEN_MARK: u32 = u32::MAX - 1;

/// `cursor` (and the publisher's cached minimum) of an entry that holds nothing back.
pub const NO_CURSOR: u64 = u64::MAX;
/// `group` of an entry that belongs to no group (an exclusive subscriber).
pub const NO_GROUP: u64 = u64::MAX;

/// A group entry's `state`: free.
pub const GROUP_FREE: u64 = 0;
/// A group entry's `state`: named and in use (any other value: being named by that owner word).
pub const GROUP_READY: u64 = 1;

/// Offsets inside the control block (relative to its start, file offset 128).
pub mod offsets {
    /// `tail`, the publisher's published position.
    pub const TAIL: usize = 0;
    /// `oldest`, the oldest retained record: the publisher may overwrite only bytes below it.
    pub const OLDEST: usize = 8;
    /// Messages published.
    pub const MESSAGES_IN: usize = 16;
    /// Payload bytes published.
    pub const BYTES_IN: usize = 24;
    /// Times the publisher found no room (block mode).
    pub const FULL_WAITS: usize = 32;
    /// The publisher's owner word (0 = free).
    pub const PUBLISHER: usize = 40;
    /// Subscribers reclaimed after their process died.
    pub const RECLAIMED: usize = 48;
    /// The publisher's owner word while it is counted in the space waiter's `sleepers` (0
    /// otherwise): whoever takes over a dead publisher takes that count back.
    pub const PUBLISHER_SLEEPING: usize = 56;
    /// The subscribers' "data available" waiter.
    pub const DATA_WAITER: usize = 128;
    /// The publisher's "space available" waiter.
    pub const SPACE_WAITER: usize = 136;
    /// `joins`: bumped by every subscription, read by the publisher when it moves `oldest`.
    pub const JOINS: usize = 256;
    /// The robust lock that serialises naming groups.
    pub const GROUP_LOCK: usize = 264;
    /// Capacity of the data area.
    pub const CAPACITY: usize = 384;
    /// Entries in the subscriber table (and in the group table).
    pub const MAX_SUBSCRIBERS: usize = 392;
    /// 0: block, 1: overwrite.
    pub const OVERFLOW: usize = 400;
    /// The subscriber table.
    pub const SUBSCRIBERS: usize = 512;
}

/// Offsets inside a subscriber-table entry.
pub mod sub_offsets {
    /// Owner word of the subscriber (0 = free).
    pub const OWNER: usize = 0;
    /// Next position to read ([`super::NO_CURSOR`]: holds nothing back).
    pub const CURSOR: usize = 8;
    /// Group index, or [`super::NO_GROUP`].
    pub const GROUP: usize = 16;
    /// Sequence number of the next message to read (for lag).
    pub const SEQ: usize = 24;
    /// Messages received.
    pub const MESSAGES: usize = 32;
    /// Payload bytes received.
    pub const BYTES: usize = 40;
    /// Messages lost to overwrite.
    pub const DROPPED: usize = 48;
    /// The owner word of the slot's process while it is counted in the data waiter's
    /// `sleepers` (0 otherwise): a reclaim of a dead slot takes that count back.
    pub const SLEEPING: usize = 56;
    /// Non-zero while the subscriber waits in a blocking receive (a hint: the publisher writes
    /// a frame over the previous one only while every subscriber waits, see `topic::frames`).
    pub const WAITING: usize = 64;
}

/// Offsets inside a group-table entry.
pub mod group_offsets {
    /// [`super::GROUP_FREE`], [`super::GROUP_READY`], or the owner word of the process naming it.
    pub const STATE: usize = 0;
    /// The group's shared position.
    pub const CURSOR: usize = 8;
    /// Sequence number of the next message for the group.
    pub const SEQ: usize = 16;
    /// Messages the group lost to overwrite.
    pub const DROPPED: usize = 24;
    /// Messages delivered to members.
    pub const MESSAGES: usize = 32;
    /// Name length in bytes.
    pub const NAME_LEN: usize = 40;
    /// Name bytes (UTF-8, zero-padded).
    pub const NAME: usize = 48;
}

#[repr(C)]
pub(super) struct PublisherLine {
    pub(super) tail: AtomicU64,
    pub(super) oldest: AtomicU64,
    pub(super) messages: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) full_waits: AtomicU64,
    pub(super) owner: AtomicU64,
    pub(super) reclaimed: AtomicU64,
    pub(super) sleeping: AtomicU64,
    _pad: [u8; PAD - 64],
}

#[repr(C)]
pub(super) struct WaitLine {
    pub(super) data: Waiter,
    pub(super) space: Waiter,
    _pad: [u8; PAD - 16],
}

#[repr(C)]
pub(super) struct JoinLine {
    pub(super) joins: AtomicU64,
    pub(super) group_lock: RobustLock,
    _pad: [u8; PAD - 24],
}

#[repr(C)]
pub(super) struct ConfigLine {
    pub(super) capacity: AtomicU64,
    pub(super) max_subscribers: AtomicU64,
    pub(super) overflow: AtomicU64,
    _pad: [u8; PAD - 24],
}

/// The fixed part of the control block.
#[repr(C)]
pub(super) struct Head {
    pub(super) publisher: PublisherLine,
    pub(super) wait: WaitLine,
    pub(super) join: JoinLine,
    pub(super) config: ConfigLine,
}

/// One subscriber-table entry.
#[repr(C)]
pub(super) struct SubEntry {
    pub(super) owner: AtomicU64,
    pub(super) cursor: AtomicU64,
    pub(super) group: AtomicU64,
    pub(super) seq: AtomicU64,
    pub(super) messages: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) sleeping: AtomicU64,
    pub(super) waiting: AtomicU64,
    _pad: [u8; PAD - 72],
}

/// Words of a group name.
pub(super) const NAME_WORDS: usize = MAX_GROUP_NAME / 8;

/// One group-table entry.
#[repr(C)]
pub(super) struct GroupEntry {
    pub(super) state: AtomicU64,
    pub(super) cursor: AtomicU64,
    pub(super) seq: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) messages: AtomicU64,
    pub(super) name_len: AtomicU64,
    pub(super) name: [AtomicU64; NAME_WORDS],
    _pad: [u8; PAD - 48 - MAX_GROUP_NAME],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<PublisherLine>() == PAD);
    assert!(size_of::<WaitLine>() == PAD);
    assert!(size_of::<JoinLine>() == PAD);
    assert!(size_of::<ConfigLine>() == PAD);
    assert!(size_of::<Head>() == HEAD_SIZE);
    assert!(size_of::<SubEntry>() == ENTRY_SIZE);
    assert!(size_of::<GroupEntry>() == ENTRY_SIZE);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, tail) == offsets::TAIL);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, oldest) == offsets::OLDEST);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, messages) == offsets::MESSAGES_IN);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, bytes) == offsets::BYTES_IN);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, full_waits) == offsets::FULL_WAITS);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, owner) == offsets::PUBLISHER);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, reclaimed) == offsets::RECLAIMED);
    assert!(offset_of!(Head, publisher) + offset_of!(PublisherLine, sleeping) == offsets::PUBLISHER_SLEEPING);
    assert!(offset_of!(Head, wait) + offset_of!(WaitLine, data) == offsets::DATA_WAITER);
    assert!(offset_of!(Head, wait) + offset_of!(WaitLine, space) == offsets::SPACE_WAITER);
    assert!(offset_of!(Head, join) + offset_of!(JoinLine, joins) == offsets::JOINS);
    assert!(offset_of!(Head, join) + offset_of!(JoinLine, group_lock) == offsets::GROUP_LOCK);
    assert!(offset_of!(Head, config) + offset_of!(ConfigLine, capacity) == offsets::CAPACITY);
    assert!(offset_of!(Head, config) + offset_of!(ConfigLine, max_subscribers) == offsets::MAX_SUBSCRIBERS);
    assert!(offset_of!(Head, config) + offset_of!(ConfigLine, overflow) == offsets::OVERFLOW);
    assert!(HEAD_SIZE == offsets::SUBSCRIBERS);
    assert!(offset_of!(SubEntry, owner) == sub_offsets::OWNER);
    assert!(offset_of!(SubEntry, cursor) == sub_offsets::CURSOR);
    assert!(offset_of!(SubEntry, group) == sub_offsets::GROUP);
    assert!(offset_of!(SubEntry, seq) == sub_offsets::SEQ);
    assert!(offset_of!(SubEntry, messages) == sub_offsets::MESSAGES);
    assert!(offset_of!(SubEntry, bytes) == sub_offsets::BYTES);
    assert!(offset_of!(SubEntry, dropped) == sub_offsets::DROPPED);
    assert!(offset_of!(SubEntry, sleeping) == sub_offsets::SLEEPING);
    assert!(offset_of!(SubEntry, waiting) == sub_offsets::WAITING);
    assert!(offset_of!(GroupEntry, state) == group_offsets::STATE);
    assert!(offset_of!(GroupEntry, cursor) == group_offsets::CURSOR);
    assert!(offset_of!(GroupEntry, seq) == group_offsets::SEQ);
    assert!(offset_of!(GroupEntry, dropped) == group_offsets::DROPPED);
    assert!(offset_of!(GroupEntry, messages) == group_offsets::MESSAGES);
    assert!(offset_of!(GroupEntry, name_len) == group_offsets::NAME_LEN);
    assert!(offset_of!(GroupEntry, name) == group_offsets::NAME);
};

#[cfg(loom)]
fn z() -> AtomicU64 {
    AtomicU64::new(0)
}

#[cfg(loom)]
impl Head {
    pub(super) fn new(capacity: u64, max_subscribers: u64, overflow: u64) -> Head {
        use crate::sync::AtomicU32;
        let w = || Waiter { seq: AtomicU32::new(0), sleepers: AtomicU32::new(0) };
        Head {
            publisher: PublisherLine {
                tail: z(),
                oldest: z(),
                messages: z(),
                bytes: z(),
                full_waits: z(),
                owner: z(),
                reclaimed: z(),
                sleeping: z(),
                _pad: [0; PAD - 64],
            },
            wait: WaitLine { data: w(), space: w(), _pad: [0; PAD - 16] },
            join: JoinLine { joins: z(), group_lock: RobustLock { word: z(), waiter: w() }, _pad: [0; PAD - 24] },
            config: ConfigLine {
                capacity: AtomicU64::new(capacity),
                max_subscribers: AtomicU64::new(max_subscribers),
                overflow: AtomicU64::new(overflow),
                _pad: [0; PAD - 24],
            },
        }
    }
}

#[cfg(loom)]
impl SubEntry {
    pub(super) fn new() -> SubEntry {
        SubEntry {
            owner: z(),
            cursor: z(),
            group: z(),
            seq: z(),
            messages: z(),
            bytes: z(),
            dropped: z(),
            sleeping: z(),
            waiting: z(),
            _pad: [0; PAD - 72],
        }
    }
}

#[cfg(loom)]
impl GroupEntry {
    pub(super) fn new() -> GroupEntry {
        GroupEntry {
            state: z(),
            cursor: z(),
            seq: z(),
            dropped: z(),
            messages: z(),
            name_len: z(),
            name: std::array::from_fn(|_| z()),
            _pad: [0; PAD - 48 - MAX_GROUP_NAME],
        }
    }
}

/// Size of the control block of a topic with `max_subscribers` entries.
pub const fn control_size(max_subscribers: usize) -> usize {
    HEAD_SIZE + 2 * ENTRY_SIZE * max_subscribers
}

/// Rounds `n` up to 8.
pub(super) const fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

/// Bytes a message of `len` payload bytes takes in the data area (header and padding included).
pub const fn record_size(len: usize) -> usize {
    align8((RECORD_HEADER + len) as u64) as usize
}

/// A record header word: the length (or [`LEN_PADDING`], [`LEN_MARK`]) and the low 32 bits of
/// the sequence number of the message (of the next message, for padding and the mark).
#[inline]
pub(super) const fn header(len: u32, seq: u64) -> u64 {
    len as u64 | (seq << 32)
}

/// The largest sequence number `<= upper` whose low 32 bits are `stamp` (a header's stamp,
/// widened with a known upper bound less than 2^32 past it).
#[inline]
pub(super) const fn widen(stamp: u32, upper: u64) -> u64 {
    upper.wrapping_sub(upper.wrapping_sub(stamp as u64) & 0xFFFF_FFFF)
}
