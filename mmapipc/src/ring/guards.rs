//! What the ring hands out: slots to fill in place ([`SlotMut`], [`DetachedSlot`]) and
//! messages read in place ([`RecvGuard`], [`DetachedRead`], [`FixedBatch`]). The detached kinds
//! are a pointer and the [`RingMemory`] that keeps it mapped, for bindings that hand bytes out
//! without a borrow.

use std::fmt;
use std::sync::Arc;

use crate::mem::{Bytes, FixedRun};
use crate::span::Span;

use super::handle::{Ring, RingMemory};
use super::layout::RECORD_HEADER;

/// A reserved slot of the ring, filled in place (derefs to `[u8]` of the loaned length).
/// [`commit`](Self::commit) publishes it; dropping it uncommitted publishes nothing.
pub struct SlotMut<'a> {
    ring: &'a mut Ring,
    off: u64,
    len: usize,
    /// Under loom the slot is filled here and copied in at commit (the twin's bytes are not
    /// contiguous, so no slice of them exists).
    #[cfg(loom)]
    buf: Vec<u8>,
}

impl<'a> SlotMut<'a> {
    pub(super) fn new(ring: &'a mut Ring, off: u64, len: usize) -> SlotMut<'a> {
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
            mem.data.copy_in(self.off + RECORD_HEADER as u64, &self.buf)
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
            std::slice::from_raw_parts(self.ring.mem.data.ptr(self.off + RECORD_HEADER as u64), self.len)
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
            std::slice::from_raw_parts_mut(self.ring.mem.data.ptr(self.off + RECORD_HEADER as u64), self.len)
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
    off: u64,
    len: usize,
    rec: u64,
    /// The payload, held in place.
    bytes: Bytes,
}

impl<'a> RecvGuard<'a> {
    #[inline]
    pub(super) fn new(ring: &'a mut Ring, off: u64, len: usize, rec: u64) -> RecvGuard<'a> {
        // SAFETY: peek (or the fast path's checks) validated off + len <= capacity and that the
        // record is published and not released: the producer writes none of these bytes until
        // the guard releases them, and `ring` keeps the memory mapped meanwhile.
        let bytes = unsafe { ring.mem.data.bytes(off, len) };
        RecvGuard { ring, off, len, rec, bytes }
    }

    /// Keeps the record held past the guard: the returned [`DetachedRead`] (which owns the
    /// mapping) stays valid, and the record's space stays reserved, until the next consumer
    /// operation on this handle (a read, `clear`, or dropping the handle). For bindings that
    /// export the payload without a borrow (Python's `read_view`).
    pub fn detach(self) -> DetachedRead {
        let mut me = std::mem::ManuallyDrop::new(self);
        me.bytes.end();
        let mem = me.ring.mem.clone();
        // Drop is suppressed: we move the advance here instead.
        // SAFETY: `me` is never used again; `bytes` was emptied above (it owns nothing then),
        // and the other fields are plain data and a reference.
        let ring: &mut Ring = unsafe { std::ptr::read(&me.ring) };
        if let Some(c) = ring.cons.as_mut() {
            c.advance(&mem, me.rec, me.len);
            c.held = me.rec;
            if me.off == RECORD_HEADER as u64 {
                // The record starts the buffer: release the padding record skipped before it
                // now, not with the record, so that a producer of frames (two in the ring, see
                // `mem::reuse`) has the other half of the buffer while this one is held.
                c.publish(&mem);
            }
        }
        // SAFETY: the record at off..off+len was published to this consumer and stays held
        // (`held`) until the next consumer operation, so nobody writes it meanwhile; `mem` keeps
        // the mapping.
        let bytes = unsafe { mem.data.bytes(me.off, me.len) };
        DetachedRead { mem, bytes }
    }
}

impl std::ops::Deref for RecvGuard<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        // The bytes go back to the producer below: let go of them first.
        self.bytes.end();
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

/// A record kept held after its guard ([`RecvGuard::detach`]): its bytes in the mapping, which
/// `mem` keeps alive. The bytes stay unchanged until the next consumer operation on the handle
/// that read it; reading them after that shows recycled bytes, which is why they are only
/// available through an `unsafe` accessor.
#[derive(Debug)]
pub struct DetachedRead {
    /// Keeps the mapping alive.
    pub mem: Arc<RingMemory>,
    pub(super) bytes: Bytes,
}

impl DetachedRead {
    /// Start of the payload (valid for reads of `len()` bytes while `mem` lives).
    pub fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.bytes.as_slice().len()
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload.
    ///
    /// # Safety
    /// No consumer operation may have run on the reading handle since the detach (otherwise the
    /// producer may be rewriting these bytes).
    pub unsafe fn as_slice(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

/// A run of equally sized messages held in place past the call (see
/// [`Ring::read_fixed_batch_detached`]): a [`FixedRun`] (payload `i` at `as_ptr() + i *
/// stride()`, the stride being the record size: 8-byte header + payload, rounded up to 8) and
/// the memory that keeps it mapped. The records stay held until the next consumer operation on
/// the handle that read them.
#[derive(Debug)]
pub struct FixedBatch {
    /// Keeps the mapping alive.
    pub mem: Arc<RingMemory>,
    pub(super) run: FixedRun,
}

impl std::ops::Deref for FixedBatch {
    type Target = FixedRun;
    fn deref(&self) -> &FixedRun {
        &self.run
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
    /// The payload (writable until committed or dropped).
    pub(super) span: Span,
    pub(super) off: u64,
    pub(super) tail: u64,
}

// SAFETY: plain pointer + Arc to a Send+Sync memory owner; writing through the pointer is governed
// by the producer protocol (the slot is reserved, unpublished), not by which thread holds it.
unsafe impl Send for DetachedSlot {}
// SAFETY: a shared reference only reads the pointer's value and the length; writing through the
// pointer happens only via the owner of the loan, under the producer protocol.
unsafe impl Sync for DetachedSlot {}

impl std::ops::Deref for DetachedSlot {
    type Target = Span;
    fn deref(&self) -> &Span {
        &self.span
    }
}
