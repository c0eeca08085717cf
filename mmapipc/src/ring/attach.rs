//! Roles: a handle claims the producer or consumer role by storing this process's owner word
//! ([`crate::owner`]) in the role's word with a CAS, and gives it back with a store. A claim
//! records the fork generation ([`crate::fork`]): a child forked afterwards holds nothing.

use crate::sync::{fence, AtomicU64, Ordering};
use crate::wait::SpinWindow;

use super::error::{check_indices, RingError};
use super::handle::{Ring, RingMemory};
use super::layout::Role;
use super::state::{fork_generation, Claim, ConsumerState, ProducerState, RELEASED};

/// The owner word of `role` (0 = free), on that side's own line.
fn owner_word(mem: &RingMemory, role: Role) -> &AtomicU64 {
    match role {
        Role::Producer => &mem.ctrl().producer.owner,
        Role::Consumer => &mem.ctrl().consumer.owner,
    }
}

/// Claims `role` for this process. `Ok(true)` if a dead holder was taken over.
fn claim(mem: &RingMemory, role: Role) -> Result<(Claim, bool), RingError> {
    // The handler must be in place before the claim records a generation: a child forked
    // after this sees a newer one, so it holds nothing.
    // Another thread of this process registering it finishes within a few instructions.
    while !crate::fork::registered() {
        std::hint::spin_loop();
    }
    let me = crate::owner::me();
    let word = owner_word(mem, role);
    let mut current = 0u64;
    loop {
        // SYNC: owner. AcqRel: Acquire pairs with the previous holder's Release (in `release`
        // or its own claim), so its last index store is visible to us; Release publishes ours.
        match word.compare_exchange(current, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                return Ok((Claim { generation: fork_generation() }, current != 0));
            }
            Err(found) => {
                // Held by this very process (another handle, or a thread) counts as taken:
                // two producers in one process would corrupt the ring just the same.
                if found == me || crate::owner::alive(found) {
                    return Err(RingError::AlreadyAttached { role, pid: crate::owner::pid(found) });
                }
                current = found; // dead (or free): try to take it over
            }
        }
    }
}

/// Gives the role back (if this process holds it through `claim`) and marks the claim released.
pub(super) fn release(mem: &RingMemory, role: Role, claim: &mut Claim) {
    if claim.generation == fork_generation() {
        // SYNC: owner. Release: our last index store happens-before the next holder's claim.
        // A plain store: while we live nobody else claims the word (a claimant sees us alive),
        // so it still holds our identity (unless a hostile peer wrote it, which it can anyway).
        owner_word(mem, role).store(0, Ordering::Release);
    }
    // Otherwise released already, or inherited across fork: the parent holds it, not us.
    claim.generation = RELEASED;
}

impl Ring {
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
    pub(super) fn producer(&mut self) -> Result<&mut ProducerState, RingError> {
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
        crate::wait::asymmetric::register();
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
        // SYNC: reuse-fence (as in `ProducerState::has_room_slow`): we write below this head.
        fence(Ordering::Release);
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
        self.prod = Some(ProducerState {
            claim,
            tail,
            off: tail % cap,
            cached_head: head,
            full: false,
            messages,
            bytes,
            hot: Default::default(),
            window: SpinWindow::new(),
        });
        Ok(self.prod.as_mut().expect("claimed above"))
    }

    #[inline]
    pub(super) fn consumer(&mut self) -> Result<&mut ConsumerState, RingError> {
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
            crate::wait::asymmetric::register();
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
                    window: SpinWindow::new(),
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
}
