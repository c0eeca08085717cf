//! Reused buffers for the exporter's copies of large messages.
//!
//! A message too large for a batch and too small to leave as a view of its slot
//! ([`ZERO_COPY_MIN`](crate::channel::ZERO_COPY_MIN)) is copied into a buffer that zenoh owns
//! until it has sent the sample. A fresh allocation per message would cost, from glibc's mmap
//! threshold on (128 KiB by default), a new mapping and a page fault per 4 KiB page, more than
//! the copy itself. Here the copy goes into a buffer an earlier sample gave back when zenoh
//! dropped it: memory already faulted in and likely still in the cache.

use std::sync::{Arc, Mutex};

/// Buffers kept for reuse: as many samples as zenoh usually holds at once, so that a steady
/// stream allocates nothing (at most this many buffers of the largest message size are kept).
const KEPT: usize = 8;

/// A pool of copy buffers; cloning shares it.
#[derive(Clone, Default)]
pub struct CopyPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl std::fmt::Debug for CopyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyPool").field("free", &self.free.lock().map(|v| v.len()).unwrap_or(0)).finish()
    }
}

impl CopyPool {
    /// An empty pool.
    pub fn new() -> CopyPool {
        CopyPool::default()
    }

    /// `msg` copied into a pooled buffer, shared as `Bytes`; the buffer comes back to the pool
    /// when the last clone is dropped.
    pub fn copy(&self, msg: &[u8]) -> bytes::Bytes {
        let mut buf = self.free.lock().ok().and_then(|mut f| f.pop()).unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(msg);
        bytes::Bytes::from_owner(Pooled { buf, home: self.free.clone() })
    }

    /// Buffers waiting for reuse (for tests).
    pub fn kept(&self) -> usize {
        self.free.lock().map(|v| v.len()).unwrap_or(0)
    }
}

/// A buffer lent out as a sample's payload; it goes home when dropped.
struct Pooled {
    buf: Vec<u8>,
    home: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut free) = self.home.lock() {
            if free.len() < KEPT {
                free.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_holds_the_message_and_its_buffer_is_reused() {
        let pool = CopyPool::new();
        let a = pool.copy(&[1u8; 1 << 20]);
        assert_eq!(a.len(), 1 << 20);
        assert!(a.iter().all(|&b| b == 1));
        let ptr = a.as_ptr();
        let clone = a.clone();
        drop(a);
        assert_eq!(pool.kept(), 0, "a clone still holds the buffer");
        drop(clone);
        assert_eq!(pool.kept(), 1);
        let b = pool.copy(&[2u8; 1000]);
        assert_eq!(b.as_ptr(), ptr, "the returned buffer is used again");
        assert_eq!(&b[..], &[2u8; 1000][..]);
    }

    #[test]
    fn at_most_kept_buffers_stay() {
        let pool = CopyPool::new();
        let held: Vec<_> = (0..KEPT + 3).map(|i| pool.copy(&[i as u8; 64])).collect();
        drop(held);
        assert_eq!(pool.kept(), KEPT);
    }
}
