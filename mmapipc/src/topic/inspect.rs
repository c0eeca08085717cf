//! Read-only inspection for tools (the `mmapipc` command): nothing here claims a slot or
//! writes the mapping.

use crate::sync::Ordering;

use super::group::name;
use super::handle::Topic;
use super::layout::{GROUP_READY, NO_CURSOR, NO_GROUP};

/// One subscriber slot in use, as a tool sees it ([`Topic::inspect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// Slot index.
    pub slot: usize,
    /// The subscriber's owner word ([`crate::owner`]).
    pub owner: u64,
    /// Whether that process still runs ([`crate::owner::alive`]).
    pub alive: bool,
    /// Next position it reads (`None` for a group member, or while joining).
    pub cursor: Option<u64>,
    /// Its group's name.
    pub group: Option<String>,
    /// Messages published and not yet received by it (by its group, for a member).
    pub lag: u64,
    /// Messages received.
    pub messages: u64,
    /// Messages lost to overwrite.
    pub dropped: u64,
    /// Counted in the data waiter's sleepers (its `sleeping` word is set): asleep in a receive,
    /// or killed asleep and not yet reclaimed.
    pub asleep: bool,
}

/// One named group, as a tool sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Group index.
    pub index: usize,
    /// Name.
    pub name: String,
    /// The shared cursor (`None` before a member started it).
    pub cursor: Option<u64>,
    /// Messages published and not yet received by the group.
    pub lag: u64,
    /// Messages delivered to members.
    pub messages: u64,
    /// Messages lost to overwrite.
    pub dropped: u64,
    /// Slots naming this group.
    pub members: usize,
}

/// A snapshot of a topic's shared state for tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInspect {
    /// Published position.
    pub tail: u64,
    /// Oldest retained position.
    pub oldest: u64,
    /// The publisher's owner word (0 = none).
    pub publisher: u64,
    /// Messages published.
    pub messages_in: u64,
    /// Slots in use.
    pub subscribers: Vec<SubscriberInfo>,
    /// Named groups.
    pub groups: Vec<GroupInfo>,
    /// Subscribers asleep on the data waiter.
    pub data_sleepers: u32,
    /// Publishers asleep on the space waiter.
    pub space_sleepers: u32,
}

impl Topic {
    /// A snapshot of positions, the subscriber table and the groups (nothing is written).
    pub fn inspect(&self) -> TopicInspect {
        let mem = &*self.mem;
        let h = mem.head();
        // Relaxed everywhere: informational values for tools.
        let messages_in = h.publisher.messages.load(Ordering::Relaxed);
        let mut groups = Vec::new();
        for g in 0..mem.nsubs {
            let e = mem.group(g);
            // Acquire: pairs with the Release store of READY (the name is complete).
            if e.state.load(Ordering::Acquire) != GROUP_READY {
                continue;
            }
            let cursor = e.cursor.load(Ordering::Relaxed);
            groups.push(GroupInfo {
                index: g,
                name: name(mem, g),
                cursor: (cursor != NO_CURSOR).then_some(cursor),
                lag: messages_in.saturating_sub(e.seq.load(Ordering::Relaxed)),
                messages: e.messages.load(Ordering::Relaxed),
                dropped: e.dropped.load(Ordering::Relaxed),
                members: 0,
            });
        }
        let mut subscribers = Vec::new();
        for i in 0..mem.nsubs {
            let e = mem.sub(i);
            let owner = e.owner.load(Ordering::Relaxed);
            if owner == 0 {
                continue;
            }
            let g = e.group.load(Ordering::Relaxed);
            let group = groups.iter_mut().find(|x| g != NO_GROUP && x.index as u64 == g);
            let (group, lag, dropped) = match group {
                Some(x) => {
                    x.members += 1;
                    (Some(x.name.clone()), x.lag, x.dropped)
                }
                None => {
                    (None, messages_in.saturating_sub(e.seq.load(Ordering::Relaxed)), e.dropped.load(Ordering::Relaxed))
                }
            };
            let cursor = e.cursor.load(Ordering::Relaxed);
            subscribers.push(SubscriberInfo {
                slot: i,
                owner,
                alive: crate::owner::alive(owner),
                cursor: (cursor != NO_CURSOR && group.is_none()).then_some(cursor),
                group,
                lag,
                messages: e.messages.load(Ordering::Relaxed),
                dropped,
                asleep: e.sleeping.load(Ordering::Relaxed) != 0,
            });
        }
        TopicInspect {
            tail: h.publisher.tail.load(Ordering::Relaxed),
            oldest: h.publisher.oldest.load(Ordering::Relaxed),
            publisher: h.publisher.owner.load(Ordering::Relaxed),
            messages_in,
            subscribers,
            groups,
            data_sleepers: h.wait.data.sleepers.load(Ordering::Relaxed),
            space_sleepers: h.wait.space.sleepers.load(Ordering::Relaxed),
        }
    }
}

/// The topic as [`crate::inspect::peek`] walks it: retained records from `oldest` to `tail`,
/// reuse bound `oldest`.
struct Retained<'t>(&'t Topic);

impl crate::inspect::Walk for Retained<'_> {
    type Error = super::TopicError;

    fn window(&self) -> Option<(u64, u64)> {
        let p = &self.0.head().publisher;
        // SYNC: oldest-publish, tail-publish (Acquire): oldest first, so oldest <= tail holds.
        let oldest = p.oldest.load(Ordering::Acquire);
        let tail = p.tail.load(Ordering::Acquire);
        super::error::check_window(oldest, tail, self.0.mem.capacity).ok().map(|()| (oldest, tail))
    }

    fn record(&self, pos: u64, end: u64) -> Result<crate::inspect::Record, super::TopicError> {
        use super::layout::{align8, LEN_PADDING, RECORD_HEADER};
        use crate::inspect::Record;
        let mem = &*self.0.mem;
        let cap = mem.capacity;
        let off = pos % cap;
        let (len, _) = mem.load_header(off);
        let to_end = cap - off;
        if len == LEN_PADDING && off != 0 && to_end <= end - pos {
            return Ok(Record::Padding { span: to_end });
        }
        let span = align8(u64::from(len) + RECORD_HEADER as u64);
        if span > to_end || span > end - pos {
            return Err(super::error::corrupt(format!("record of {len} bytes at offset {off} exceeds the area")));
        }
        Ok(Record::Message { span, off: off + RECORD_HEADER as u64, len: len as usize })
    }

    fn copy(&self, off: u64, buf: &mut [u8]) {
        // SAFETY: `off` and `buf.len()` come from `record`: 8-aligned, ending inside the area.
        unsafe { self.0.mem.data.snapshot(off, buf) }
    }

    fn reuse_bound(&self) -> u64 {
        // SYNC: oldest-validate (the seqlock re-read): bytes are overwritten only below oldest.
        self.0.head().publisher.oldest.load(Ordering::Acquire)
    }

    fn no_snapshot(&self) -> super::TopicError {
        super::error::corrupt("no consistent snapshot of the topic in 100 attempts")
    }
}

impl Topic {
    /// Copies retained messages without receiving them (for `mmapipc tail`): from `from` (a
    /// [`crate::inspect::Peeked::next`]) or the oldest retained, the last `keep` of them.
    pub fn peek_retained(&self, from: Option<u64>, keep: usize) -> Result<crate::inspect::Peeked, super::TopicError> {
        crate::inspect::peek(&Retained(self), from, keep)
    }
}
