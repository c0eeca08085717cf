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
//! +0    producer line   tail u64 | messages_in u64 | bytes_in u64 | full_waits u64 | producer u64 | pad
//! +128  consumer line   head u64 | messages_out u64 | bytes_out u64 | empty_waits u64 | consumer u64 | pad
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
//! side's counters, and its role's owner word (`producer`, `consumer`: who holds the role),
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
//!   (`membarrier`) before its final re-check instead. See `wait/asymmetric.rs`; where that is not
//!   available it falls back to the symmetric fences of [`crate::wait::Waiter`].
//! * `owner`: roles are claimed with an AcqRel CAS on the owner words and released with a
//!   Release store, so a new holder sees every index store of the previous one (`attach.rs`).
//! * `reuse-fence`: the producer's Release fence after it loaded head and before it writes into
//!   the space that head freed (`producer.rs`, `attach.rs`) pairs with the Acquire fence of a
//!   tool's seqlock walk ([`crate::inspect`]) before it re-reads head (`inspect.rs`).
//!
//! `tail-publish` is stored in `producer.rs` (`publish_tail`) and loaded in `consumer.rs`
//! (`peek`), `attach.rs` and `inspect.rs`; `head-release` is stored in `consumer.rs`
//! (`publish`) and loaded in `producer.rs` (`has_room_slow`, `wait_writable_until`) and
//! `attach.rs`.
//!
//! # Roles
//!
//! The ring has one producer and one consumer *at a time*. A role is claimed lazily: the first
//! write (or [`Ring::loan`], or [`Ring::claim_producer`]) claims the producer role, the first read
//! claims the consumer role, and the handle keeps it until [`Ring::release_producer`] /
//! [`Ring::release_consumer`] or until it is dropped. A handle may hold both. The claim records
//! the process (its owner word, [`crate::owner`]) in the role's word with a CAS;
//! a second live claimant (another process, or another handle of this process) gets
//! [`RingError::AlreadyAttached`], a dead holder (exited, or pid reused) is taken over.
//!
//! Each role's owner word lies on that side's own line (next to `tail` or `head`), so claiming
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
//!
//! # Files
//!
//! `layout.rs` (the control block, offsets, record framing), `attach.rs` (claiming and
//! releasing roles), `producer.rs`, `consumer.rs`, `guards.rs` (slots and messages handed out),
//! `handle.rs` (the [`Ring`] handle: create, open, heap, counters; [`RingMemory`]),
//! `inspect.rs` (read-only walks for tools), `error.rs`. Every access to the data area goes
//! through [`crate::mem::DataArea`], whose loom twin lets `tests/loom_ring.rs` check this code.

mod attach;
mod consumer;
mod error;
mod guards;
mod handle;
mod inspect;
mod layout;
mod producer;
mod state;
#[cfg(all(target_os = "linux", not(loom)))]
mod watch;

#[cfg(all(test, not(loom)))]
mod tests;

pub use crate::inspect::Peeked;
pub use error::RingError;
pub use guards::{DetachedRead, DetachedSlot, FixedBatch, RecvGuard, SlotMut};
pub use handle::{Ring, RingMemory, RingStats};
pub use inspect::RingInspect;
pub use layout::{
    checked_capacity, offsets, record_size, Role, CONTROL_SIZE, FLAG_MESSAGE, FLAG_PADDING, MAX_CAPACITY, MIN_CAPACITY,
    RECORD_ALIGN, RECORD_HEADER,
};
