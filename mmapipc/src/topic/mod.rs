//! [`Topic`]: publish-subscribe in shared memory. One publisher, many subscribers; every
//! subscriber sees every message published after its start, in order; consumer groups share a
//! cursor so that each message goes to one member of each group.
//!
//! # Algorithm
//!
//! The data area is a byte ring of records over monotonic 64-bit positions, framed as the ring's
//! (8-byte header, payload, padding to 8; a padding record at the wrap, so a record is always
//! contiguous and can be read in place). The publisher writes each message **once**, whatever
//! the number of subscribers (a Disruptor-style multicast ring: LMAX Disruptor, Thompson et al.,
//! 2011); each subscriber keeps its own cursor in a slot of the subscriber table, a group keeps
//! one shared cursor in the group table.
//!
//! Every header carries, beside the length, the low 32 bits of the message's sequence number
//! (its *stamp*), and the publisher keeps a *mark* (a header with the next stamp) at the published
//! end. So any position's sequence number can be read (widened with `messages_in` as an upper
//! bound), which is what lets a joiner know where it started and a lapped subscriber count
//! exactly what it lost.
//!
//! `oldest` is the oldest retained record: the publisher overwrites only bytes below it, and
//! moves it forward (along record boundaries, `slack` = capacity / 8 past what it needs, so the
//! moves and their fences are rare) before writing into the space.
//!
//! * **Block mode**: `oldest` never passes the least cursor of a live exclusive subscriber or of
//!   a group with a live member. The publisher caches that minimum and rescans the table only
//!   when the cache says "full" (or a subscriber joined), so its cost per message does not grow
//!   with the number of subscribers. When the rescan still says full it looks whether the
//!   subscribers holding it back still run ([`crate::owner::alive`], at most every
//!   [`REAP_INTERVAL`]) and reclaims the slots of dead ones. With no subscriber the publisher
//!   overwrites the oldest records: that is the retained history `Start::Oldest` reads.
//! * **Overwrite mode**: the publisher never waits and never reads a cursor. A subscriber copies
//!   a record, then re-reads `oldest` (a seqlock reader, as the tools' walk of
//!   [`crate::inspect`]): if the record lies below it, the copy may be torn and is dropped, and
//!   the subscriber skips to `oldest`, adding the stamps' difference to `dropped`. Zero-copy views
//!   are refused in this mode ([`TopicError::Unsupported`]): nothing would keep the publisher off
//!   a record while a view is held, and a view cannot be re-validated once handed out.
//!
//! **Joining** races with a publisher that moves `oldest` without looking at the table (its
//! cache says there is room). A joiner stores its cursor, bumps `joins` (SeqCst) and fences, then
//! re-reads `oldest`; the publisher stores `oldest`, fences, then loads `joins` and rescans if it
//! changed. Either the publisher sees the joiner's cursor, or the joiner sees the new `oldest`
//! (and retries further on): a Dekker handshake, paid once per `slack` bytes by the publisher.
//!
//! **Groups** (`group.rs`): a member copies the record at the group's cursor, then advances the
//! cursor by CAS; only the winner delivers.
//!
//! **Frames** (`frames.rs`): in block mode a frame goes to offset 0 again, over the previous
//! one, when every subscriber has let go of it and polls in a receive; the padding in front of
//! it is published first and the frame written once every cursor has passed it.
//!
//! # Crash safety
//!
//! A publisher's commit is its Release store of `tail` (the ring's rule): killed before it, the
//! records it wrote are invisible and the next publisher (a dead one's role is taken over)
//! writes over them; the mark at `tail` gives it the next stamp. A subscriber's slot names its
//! process with an owner word; a killed one's slot is reclaimed by the publisher (when it holds
//! it back) or by a subscriber that finds the table full. A group member killed before its CAS
//! leaves the message to another member; after it, the message counts as delivered.
//!
//! A subscriber asleep in a receive is counted in the data waiter's `sleepers` (the publisher
//! makes its wake system call only while that is not 0). Each nap also stores the owner word
//! in the slot's `sleeping` word (after the increment, Release) and clears it by CAS before the
//! decrement. A reclaim of a dead slot first takes the count back if that word still names the
//! dead process (an AcqRel CAS to 0, then the decrement: one reclaimer does it, after the
//! increment in the count's order), and the publisher, when a wake finds sleepers, looks for
//! such slots at most every 100 ms and reclaims them: a subscriber killed asleep stops costing
//! publications a system call. A publisher asleep for room does the same with the control
//! block's `sleeping` word, which the next publisher of a dead one takes back when it claims the
//! role. A kill between a count and its word (two adjacent instructions at each end of a nap)
//! still leaves one count; so does a process killed with a readiness watch armed
//! (`wait::readiness`).
//!
//! # Synchronisation (the tags name each Release/Acquire pair)
//!
//! * `tail-publish`: the publisher writes records and the mark, then stores `tail` with Release
//!   (`publisher.rs`, `flush`); subscribers load it with Acquire before reading below it.
//! * `cursor-release`: an exclusive subscriber stores its cursor with Release after reading
//!   (`subscriber.rs`, `publish`); a group member's AcqRel CAS of the group cursor
//!   (`group-cursor`, `group.rs`) plays that part for groups; the publisher's scan loads them
//!   with Acquire (`publisher.rs`, `rescan`).
//! * `oldest-publish`: the publisher's Release store of `oldest` (`make_room`) pairs with the
//!   Acquire loads of joiners and lapped subscribers.
//! * `join`: the SeqCst handshake between joiners (`subscriber.rs`, `join`) and the publisher's
//!   store of `oldest` (`make_room`), described above.
//! * `oldest-validate` / `reuse-fence`: the publisher's Release (block mode: SeqCst) fence after
//!   storing `oldest` and before writing the space, paired with a copying reader's Acquire fence
//!   before it re-reads `oldest` (`subscriber.rs`, `take_copy`, `seq_at`; `group.rs`).
//! * `owner`: the publisher role and the slots are claimed by AcqRel CAS of owner words.
//! * `asym-handshake`: wake-ups as in the ring ([`crate::wait`]): the publisher wakes
//!   subscribers only when some sleep; subscribers wake the publisher only when it sleeps.
//! * `sleeping`: a sleeper's Release store of its `sleeping` word, after its increment of
//!   `sleepers`, pairs with the AcqRel CAS of whoever takes a dead sleeper's count back
//!   (`wait::Sleeping::take_back`), before its decrement: the count never wraps.
//!
//! # Files
//!
//! `layout.rs` (the control block, tables, offsets, record framing), `handle.rs` (the [`Topic`]
//! handle: create, open, heap, counters), `publisher.rs`, `subscriber.rs` (slots, joining,
//! exclusive receives), `views.rs` (what receives hand out, runs held in place), `group.rs`
//! (groups), `inspect.rs` (tools), `watch.rs` (the two sides as readiness watches, for event
//! loops), `error.rs`. Every access to the data area goes through
//! `mem::DataArea`, whose loom twin lets `tests/loom_topic.rs` check this code.

mod error;
mod frames;
mod group;
mod handle;
mod inspect;
mod layout;
mod publisher;
mod reap;
mod subscriber;
mod views;
#[cfg(all(target_os = "linux", not(loom)))]
mod watch;

#[cfg(all(test, not(loom)))]
mod tests;

pub use error::TopicError;
pub use handle::{Overflow, Start, Topic, TopicMemory, TopicOptions, TopicStats};
pub use inspect::{GroupInfo, SubscriberInfo, TopicInspect};
pub use layout::{
    control_size, group_offsets, offsets, record_size, sub_offsets, ENTRY_SIZE, GROUP_FREE, GROUP_READY, HEAD_SIZE,
    LEN_MARK, LEN_PADDING, MAX_GROUP_NAME, MAX_SUBSCRIBERS, NO_CURSOR, NO_GROUP, RECORD_HEADER,
};
pub use publisher::Publisher;
pub use reap::REAP_INTERVAL;
pub use subscriber::Subscriber;
pub use views::{DetachedRun, DetachedView, Received};

/// Slice length for Rust-side blocking waits.
pub(crate) const RUST_SLICE: std::time::Duration = std::time::Duration::from_secs(1);

/// The fork generation now ([`crate::fork::generation`]; 0 under loom, which never forks).
#[inline]
pub(crate) fn fork_generation() -> u64 {
    #[cfg(not(loom))]
    {
        crate::fork::generation()
    }
    #[cfg(loom)]
    0
}
