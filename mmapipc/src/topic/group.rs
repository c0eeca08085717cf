//! Consumer groups: a named entry of the group table holds one shared cursor; each message goes
//! to exactly one member. A member copies the record at the cursor, then advances the cursor by
//! CAS: the CAS winner delivers, a loser drops its copy and tries the next record. A member
//! killed before its CAS leaves the cursor where it was (the message goes to another member);
//! killed after it, the message counts as delivered (the queue's promise for a consumer killed
//! after its commit).

use std::time::Duration;

use crate::sync::{fence, Ordering};
use crate::wait::Deadline;

use super::error::{check_window, corrupt, TopicError};
use super::handle::{Overflow, Start, Topic, TopicMemory};
use super::layout::{
    align8, widen, GROUP_FREE, GROUP_READY, LEN_PADDING, MAX_GROUP_NAME, NAME_WORDS, NO_CURSOR, RECORD_HEADER,
};
use super::subscriber::{join, release_slot, seq_at, Got, Subscriber};

/// How long naming a group may wait for the group lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The name stored in group entry `g` (lossy UTF-8; empty if the length is out of range).
pub(super) fn name(mem: &TopicMemory, g: usize) -> String {
    let e = mem.group(g);
    // Relaxed: the name is written before the Release store of READY, which callers loaded.
    let len = e.name_len.load(Ordering::Relaxed) as usize;
    if len > MAX_GROUP_NAME {
        return String::new();
    }
    let mut b = Vec::with_capacity(NAME_WORDS * 8);
    for w in &e.name {
        b.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    b.truncate(len);
    String::from_utf8_lossy(&b).into_owned()
}

/// True if a live-or-unreclaimed slot is a member of group `g`.
fn has_members(mem: &TopicMemory, g: usize) -> bool {
    (0..mem.nsubs).any(|i| {
        let e = mem.sub(i);
        // Relaxed: under the group lock, a hint for reusing an entry; joiners re-check.
        e.owner.load(Ordering::Relaxed) != 0
            && crate::owner::alive(e.owner.load(Ordering::Relaxed))
            && e.group.load(Ordering::Relaxed) == g as u64
    })
}

/// Finds the group named `name`, or names a free entry (or one whose members are all gone).
/// Runs under the group lock.
fn find_or_create(mem: &TopicMemory, name: &str) -> Result<usize, TopicError> {
    let mut free = None;
    for g in 0..mem.nsubs {
        let e = mem.group(g);
        // Acquire: pairs with the Release store of READY; the name is complete.
        match e.state.load(Ordering::Acquire) {
            GROUP_READY if self::name(mem, g) == name => return Ok(g),
            GROUP_READY => {}
            _ => free = free.or(Some(g)),
        }
    }
    let g = match free {
        Some(g) => g,
        None => {
            (0..mem.nsubs).find(|&g| !has_members(mem, g)).ok_or(TopicError::TooManySubscribers { max: mem.nsubs })?
        }
    };
    let e = mem.group(g);
    // Relaxed: the entry is ours under the lock; READY below publishes it.
    e.state.store(GROUP_FREE, Ordering::Relaxed);
    let mut words = [0u8; NAME_WORDS * 8];
    words[..name.len()].copy_from_slice(name.as_bytes());
    for (w, chunk) in e.name.iter().zip(words.chunks(8)) {
        w.store(u64::from_le_bytes(chunk.try_into().expect("8 bytes")), Ordering::Relaxed);
    }
    e.name_len.store(name.len() as u64, Ordering::Relaxed);
    e.cursor.store(NO_CURSOR, Ordering::Relaxed);
    for c in [&e.dropped, &e.messages, &e.seq] {
        c.store(0, Ordering::Relaxed);
    }
    // Release: the name and the fields above are visible to whoever loads READY.
    e.state.store(GROUP_READY, Ordering::Release);
    Ok(g)
}

impl Topic {
    /// Subscribes as a member of the group `name` (created on first use): each message goes to
    /// every group and exclusive subscriber, and within one group to exactly one member. A group
    /// keeps its position while its records are retained; a member joining a group whose
    /// position was overwritten, or a new group, starts at `start`.
    pub fn subscribe_group(&self, name: &str, start: Start) -> Result<Subscriber, TopicError> {
        if name.is_empty() || name.len() > MAX_GROUP_NAME {
            return Err(TopicError::InvalidArgument(format!(
                "a group name is 1 to {MAX_GROUP_NAME} bytes, got {}",
                name.len()
            )));
        }
        let (mem, slot) = self.begin_subscription()?;
        let r = (|| {
            let lock = &mem.head().join.group_lock;
            let me = crate::owner::me();
            if lock.lock(me, Deadline::after(Some(LOCK_WAIT)), Duration::from_millis(10)).is_none() {
                return Err(TopicError::Unsupported("the group table's lock is held by a live process"));
            }
            let g = find_or_create(&mem, name);
            if let Ok(g) = g {
                // Relaxed: published by the joins bump below (our slot names the group).
                mem.sub(slot).cursor.store(NO_CURSOR, Ordering::Relaxed);
                mem.sub(slot).group.store(g as u64, Ordering::Relaxed);
            }
            lock.unlock(me);
            let g = g?;
            let p = &mem.head().publisher;
            let e = mem.group(g);
            loop {
                // AcqRel CAS below; Acquire here: a member's position and what it read.
                let c = e.cursor.load(Ordering::Acquire);
                let oldest = p.oldest.load(Ordering::Acquire);
                let tail = p.tail.load(Ordering::Acquire);
                let pos = if c == NO_CURSOR || c < oldest || c > tail {
                    match start {
                        Start::Latest => tail,
                        Start::Oldest => oldest,
                    }
                } else {
                    c
                };
                if pos != c && e.cursor.compare_exchange(c, pos, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                    continue;
                }
                join(&mem);
                if let Some(seq) = seq_at(&mem, pos)? {
                    // fetch_max: members racing to start the group agree on the later value.
                    e.seq.fetch_max(seq, Ordering::Relaxed);
                    return Ok(g);
                }
            }
        })();
        match r {
            Ok(g) => Ok(Subscriber::new(mem, slot, Some(g), 0, 0)),
            Err(err) => {
                release_slot(&mem, slot);
                Err(err)
            }
        }
    }
}

impl Subscriber {
    /// The group this subscriber belongs to.
    pub fn group_name(&self) -> Option<String> {
        self.group.map(|g| name(&self.mem, g))
    }

    /// A group member's receive: copy the record at the group's cursor, then CAS the cursor.
    pub(super) fn take_group(&mut self) -> Result<Option<Got>, TopicError> {
        let mem = self.mem.clone();
        let g = self.group.expect("a group member");
        let e = mem.group(g);
        let p = &mem.head().publisher;
        let cap = mem.capacity;
        let overwrite = mem.overflow == Overflow::Overwrite;
        for _ in 0..1_000_000 {
            // SYNC: group-cursor. Acquire: pairs with the winning member's AcqRel CAS.
            let c = e.cursor.load(Ordering::Acquire);
            // SYNC: tail-publish. Acquire: the records below tail are visible.
            let tail = p.tail.load(Ordering::Acquire);
            if c == tail {
                return Ok(None);
            }
            if c > tail || tail - c > cap {
                if overwrite && c < tail {
                    self.group_skip(c)?;
                    continue;
                }
                // Another member may have moved the cursor on between our two loads (and the
                // publisher the tail with it): only a cursor that still holds is out of range.
                if e.cursor.load(Ordering::Acquire) != c {
                    continue;
                }
                return Err(corrupt(format!("group cursor {c} is out of range of tail {tail}")));
            }
            let off = c % cap;
            let (len, stamp) = mem.load_header(off);
            let to_end = cap - off;
            let (rec, copied) = if len == LEN_PADDING {
                (to_end, None)
            } else {
                let rec = align8(u64::from(len) + RECORD_HEADER as u64);
                if rec > to_end || rec > tail - c {
                    if e.cursor.load(Ordering::Acquire) != c || (overwrite && p.oldest.load(Ordering::Acquire) > c) {
                        continue; // moved on meanwhile: the header we read may be reused bytes
                    }
                    return Err(corrupt(format!("record of {len} bytes at offset {off} exceeds the area")));
                }
                self.buf.resize(len as usize, 0);
                // SAFETY: off + 8 is 8-aligned and the record ends inside the area (checked).
                // The copy may race with the publisher once another member moved the cursor on;
                // such a copy is dropped (our CAS fails), as a seqlock reader drops it.
                unsafe { mem.data.snapshot(off + RECORD_HEADER as u64, &mut self.buf[..len as usize]) };
                (rec, Some(len as usize))
            };
            if overwrite {
                // SYNC: oldest-validate (as an exclusive subscriber's copy).
                fence(Ordering::Acquire);
                if p.oldest.load(Ordering::Relaxed) > c {
                    self.group_skip(c)?;
                    continue;
                }
            }
            // SYNC: group-cursor. AcqRel: Release orders our copy before the publisher's
            // Acquire scan of the cursor (it overwrites only below it); Acquire: the next record.
            if e.cursor.compare_exchange(c, c + rec, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            if !overwrite {
                crate::wait::asymmetric::notify(&mem.head().wait.space);
            }
            let Some(len) = copied else { continue };
            // Relaxed: statistics (fetch_max: winners of consecutive records may store out of order).
            let upper = p.messages.load(Ordering::Relaxed);
            e.seq.fetch_max(widen(stamp, upper.max(u64::from(stamp))) + 1, Ordering::Relaxed);
            e.messages.fetch_add(1, Ordering::Relaxed);
            self.messages += 1;
            self.bytes += len as u64;
            let s = mem.sub(self.slot);
            s.messages.store(self.messages, Ordering::Relaxed);
            s.bytes.store(self.bytes, Ordering::Relaxed);
            return Ok(Some(Got { off: 0, len, rec: 0 }));
        }
        Err(corrupt("the group cursor never settled"))
    }

    /// Overwrite mode: the group's cursor `c` was lapped: move it to the oldest record (one
    /// member wins the CAS and counts the group's loss).
    fn group_skip(&mut self, c: u64) -> Result<(), TopicError> {
        let mem = &*self.mem;
        let e = mem.group(self.group.expect("a group member"));
        let p = &mem.head().publisher;
        // SYNC: oldest-publish.
        let o = p.oldest.load(Ordering::Acquire);
        let Some(s) = seq_at(mem, o)? else { return Ok(()) };
        check_window(o, p.tail.load(Ordering::Acquire), mem.capacity)?;
        if e.cursor.compare_exchange(c, o, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            // Relaxed: statistics.
            let before = e.seq.load(Ordering::Relaxed);
            e.dropped.fetch_add(s.saturating_sub(before), Ordering::Relaxed);
            e.seq.fetch_max(s, Ordering::Relaxed);
        }
        Ok(())
    }
}
