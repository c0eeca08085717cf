//! [`Span`]: a pointer and a length into shared memory, the one shape of "bytes held elsewhere"
//! that regions and detached views share.

/// A span of shared bytes as a pointer and a length (no borrow: other processes may write them):
/// a [`Region`](crate::region::Region)'s bytes, and what the detached slot of the ring
/// ([`DetachedSlot`](crate::ring::DetachedSlot)) and the detached view of the topic
/// ([`DetachedView`](crate::topic::DetachedView)) hand to bindings. The value that holds it
/// also holds the memory; for a detached slot or view, the primitive keeps the bytes reserved
/// until the next operation of the side that took them, and reads or writes through the
/// pointer are governed by that protocol.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    ptr: *mut u8,
    len: usize,
}

impl Span {
    pub(crate) fn new(ptr: *mut u8, len: usize) -> Span {
        Span { ptr, len }
    }

    /// Start of the bytes.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no bytes (an empty message; never a region made by this crate).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
