//! [`DataArea`]: the data area of a ring or a queue, and the one place that reaches its bytes.
//!
//! Other processes may write any byte of a data area at any moment, so no Rust reference to
//! its bytes is made except for a range the protocol gives to one side alone. The protocols
//! touch the area in two ways, and this type offers exactly those:
//!
//! * **words**: 8-byte, 8-aligned atomics ([`DataArea::word`]): record headers, record states,
//!   owner words;
//! * **bytes**: plain copies into ranges the protocol hands to one side at a time
//!   ([`copy_in`](DataArea::copy_in), [`fill`](DataArea::fill)), and ranges held in place for a zero-copy view
//!   ([`bytes`](DataArea::bytes), giving a [`Bytes`]);
//!
//! plus a racy copy for seqlock readers that validate what they copied afterwards
//! ([`snapshot`](DataArea::snapshot)), and hints that change no byte
//! ([`prefetch`](DataArea::prefetch), [`prefault`](DataArea::prefault)).
//!
//! Every method takes a byte offset into the area. Offsets and lengths come from positions the
//! caller has validated (`position % capacity`, record lengths checked against the capacity),
//! hence the `unsafe` contracts below: in bounds, and (for words) 8-aligned.
//!
//! # Mixed-size atomics
//!
//! Every atomic access to a data area is 8 bytes wide and 8-aligned. Records move through the
//! area, so the same 8 bytes are a record header on one lap, an owner word or payload on
//! another, and two atomics of different sizes over the same bytes are outside Rust's memory
//! model (Miri cannot run them). The writer of a record makes every byte of it in its lap:
//! header and owner words through [`word`](DataArea::word), the payload and the alignment
//! padding after it by plain copies (the queue zeroes a record's last word before its payload
//! covers it, see `queue::producer`), so no word is left half an older atomic and half new plain
//! bytes. FORMAT.md gives the width of every shared word.
//!
//! # The loom twin
//!
//! Under `--cfg loom` a data area lives on the heap ([`DataArea::heap`]) and is made for loom's
//! checks: each 8-byte word is a loom `AtomicU64`, and each byte is a plain value with a
//! `loom::cell::UnsafeCell` beside it that records every access. Loom then reports a plain read
//! not ordered after the write of that byte (a consumer reading unpublished bytes), and a write
//! not ordered after earlier reads, or made while a [`Bytes`] holds the byte (a producer
//! overwriting bytes a consumer or a view still uses). A plain write also stores the words it
//! covers (Relaxed), so word readers ([`snapshot`](DataArea::snapshot), an advancer reading a
//! head in reused space) see plain writes as they would in a mapping; atomic stores are not
//! copied back into the plain bytes (no protocol reads a word's bytes plainly in the lap it
//! was a word). What the twin cannot show is a plain access racing an atomic one on the same
//! bytes (the known, discarded reads in docs/hardening.md); Miri checks those in-process. Loom
//! runs one model thread at a time and switches only at its own operations, so the plain values
//! themselves are never accessed concurrently.

#[cfg(not(loom))]
use crate::region::Region;
use crate::sync::{AtomicU64, Ordering};

/// The data area of a ring or queue: `len` bytes, 8-aligned, in a mapping or on the heap.
pub(crate) struct DataArea {
    /// Start of the area (null in the loom twin, whose bytes are not contiguous).
    ptr: *mut u8,
    len: usize,
    /// Owns the memory of a heap area (`None` for an area inside a mapping its owner keeps).
    #[cfg(not(loom))]
    _heap: Option<Region>,
    #[cfg(loom)]
    twin: Twin,
}

/// The loom twin's storage (see the module docs).
#[cfg(loom)]
struct Twin {
    /// One atomic per 8-byte word.
    words: Box<[AtomicU64]>,
    /// The plain bytes' values.
    bytes: Box<[std::cell::Cell<u8>]>,
    /// Loom's record of the accesses to each plain byte.
    access: Box<[loom::cell::UnsafeCell<()>]>,
}

#[cfg(loom)]
impl Twin {
    /// Stores the words over `[off, off + len)` from the plain bytes (Relaxed, as the plain
    /// writes they mirror), so that word readers see what plain writers wrote, as in a mapping.
    fn mirror(&self, off: usize, len: usize) {
        for w in off / 8..(off + len).div_ceil(8) {
            let mut b = [0u8; 8];
            for (i, v) in b.iter_mut().enumerate() {
                *v = self.bytes[8 * w + i].get();
            }
            self.words[w].store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
    }
}

// SAFETY: a data area is memory that other processes (and threads) reach concurrently anyway;
// this handle gives only atomic words and copies of ranges whose ownership the caller's protocol
// establishes (the `unsafe` contracts). Moving it to another thread changes nothing about that.
// The loom twin's plain values are touched by one model thread at a time (loom's scheduler).
unsafe impl Send for DataArea {}
// SAFETY: as for Send: `&DataArea` only allows atomic operations and protocol-guarded copies.
unsafe impl Sync for DataArea {}

impl std::fmt::Debug for DataArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataArea").field("len", &self.len).finish()
    }
}

impl DataArea {
    /// The area of `len` bytes at `ptr`, inside a mapping.
    ///
    /// # Safety
    /// `ptr` is 8-aligned and valid for reads and writes of `len` bytes for as long as the
    /// returned value lives, and `len` is a multiple of 8. Other processes may access those
    /// bytes, but only by the rules of the module docs.
    ///
    /// # Panics
    /// Under loom, always: only heap areas are modelled.
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize) -> DataArea {
        debug_assert!(ptr as usize % 8 == 0 && len % 8 == 0);
        #[cfg(not(loom))]
        {
            DataArea { ptr, len, _heap: None }
        }
        #[cfg(loom)]
        {
            let _ = (ptr, len);
            unreachable!("a file mapping is not modelled under loom; use a heap queue or ring")
        }
    }

    /// A zero-filled area of `len` bytes on the heap (4096-aligned), for heap rings and queues
    /// (tests, loom, Miri). `len` must be a non-zero multiple of 8.
    pub(crate) fn heap(len: usize) -> DataArea {
        assert!(len > 0 && len % 8 == 0, "a data area is a non-zero multiple of 8 bytes");
        #[cfg(not(loom))]
        {
            let region = Region::heap(len);
            DataArea { ptr: region.as_ptr(), len, _heap: Some(region) }
        }
        #[cfg(loom)]
        {
            let twin = Twin {
                words: (0..len / 8).map(|_| AtomicU64::new(0)).collect(),
                bytes: (0..len).map(|_| std::cell::Cell::new(0)).collect(),
                access: (0..len).map(|_| loom::cell::UnsafeCell::new(())).collect(),
            };
            DataArea { ptr: std::ptr::null_mut(), len, twin }
        }
    }

    /// Size in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn in_bounds(&self, off: u64, len: usize) -> bool {
        off <= self.len as u64 && len as u64 <= self.len as u64 - off
    }

    /// The 8-byte word at `off`, as an atomic.
    ///
    /// # Safety
    /// `off % 8 == 0` and `off + 8 <= len()`. Every process accesses the word atomically, 8 bytes
    /// wide, for as long as the protocol uses it as a word (see "Mixed-size atomics").
    #[inline]
    pub(crate) unsafe fn word(&self, off: u64) -> &AtomicU64 {
        debug_assert!(off % 8 == 0 && self.in_bounds(off, 8), "word at {off} in a {}-byte area", self.len);
        #[cfg(not(loom))]
        {
            // SAFETY: per the contract the word lies inside the area and is 8-aligned (the area
            // is); it is only accessed atomically while it is a word, so an atomic reference to
            // it is sound even while other processes use it.
            unsafe { &*(self.ptr.add(off as usize) as *const AtomicU64) }
        }
        #[cfg(loom)]
        {
            &self.twin.words[off as usize / 8]
        }
    }

    /// Copies `src` into the area at `off`.
    ///
    /// # Safety
    /// `off + src.len() <= len()`, and the range belongs to the caller by protocol: nobody reads
    /// or writes it until the caller publishes it.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, off: u64, src: &[u8]) {
        debug_assert!(self.in_bounds(off, src.len()));
        #[cfg(not(loom))]
        // SAFETY: per the contract the range lies in the area and is ours alone; `src` is
        // caller memory, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(off as usize), src.len())
        };
        #[cfg(loom)]
        {
            for (i, &b) in src.iter().enumerate() {
                let at = off as usize + i;
                // Loom checks that this write is ordered after every earlier access to the byte.
                self.twin.access[at].with_mut(|_| self.twin.bytes[at].set(b));
            }
            self.twin.mirror(off as usize, src.len());
        }
    }

    /// Calls `f` on the `len` bytes at `off` as a mutable slice (a slot written in place).
    /// The loom twin hands `f` a zeroed buffer and copies it in afterwards.
    ///
    /// # Safety
    /// As for [`copy_in`](Self::copy_in): the range is in bounds and the caller's alone.
    #[inline]
    pub(crate) unsafe fn fill<R>(&self, off: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        debug_assert!(self.in_bounds(off, len));
        #[cfg(not(loom))]
        {
            // SAFETY: per the contract the range lies in the area and nobody else reads or
            // writes it while `f` runs; the slice does not outlive the call.
            f(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off as usize), len) })
        }
        #[cfg(loom)]
        {
            let mut buf = vec![0u8; len];
            let r = f(&mut buf);
            // SAFETY: per this function's contract.
            unsafe { self.copy_in(off, &buf) };
            r
        }
    }

    /// Holds the `len` bytes at `off` in place for reading (a zero-copy view). The loom twin
    /// copies them and records a read of every byte for as long as the [`Bytes`] lives.
    ///
    /// # Safety
    /// `off + len <= len()`; the range was published to the caller and nobody writes it while
    /// the returned value lives; the memory stays mapped that long (the caller keeps its owner).
    #[inline]
    pub(crate) unsafe fn bytes(&self, off: u64, len: usize) -> Bytes {
        debug_assert!(self.in_bounds(off, len));
        #[cfg(not(loom))]
        {
            Bytes { ptr: self.ptr.wrapping_add(off as usize), len }
        }
        #[cfg(loom)]
        {
            let range = off as usize..off as usize + len;
            let held = self.twin.access[range.clone()].iter().map(|c| c.get()).collect();
            let copy: Vec<u8> = self.twin.bytes[range].iter().map(|b| b.get()).collect();
            Bytes { ptr: copy.as_ptr(), len, held, copy }
        }
    }

    /// Copies `dst.len()` bytes at `off` while writers may be overwriting them: word by word,
    /// each word an atomic load, so the copy may be torn. For seqlock readers, which re-read a
    /// position afterwards and drop what may have changed (see `inspect`).
    ///
    /// # Safety
    /// `off % 8 == 0` and `off + dst.len()` rounded up to 8 is at most `len()`.
    pub(crate) unsafe fn snapshot(&self, off: u64, dst: &mut [u8]) {
        debug_assert!(off % 8 == 0 && self.in_bounds(off, dst.len().next_multiple_of(8)));
        for (i, chunk) in dst.chunks_mut(8).enumerate() {
            // SAFETY: per the contract each word lies in the area, 8-aligned.
            let w = unsafe { self.word(off + 8 * i as u64) };
            // Relaxed: the reader orders its re-read after these loads with an Acquire fence.
            let bytes = w.load(Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// Raw pointer to the byte at `off` (the area's start plus `off`; null in the loom twin).
    /// For tests that corrupt the area on purpose.
    #[inline]
    pub(crate) fn ptr(&self, off: u64) -> *mut u8 {
        self.ptr.wrapping_add(off as usize)
    }

    /// A hint to bring the cache line at `off` closer; changes nothing any load returns.
    #[inline]
    pub(crate) fn prefetch(&self, off: u64) {
        debug_assert!(off < self.len as u64);
        #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
        // SAFETY: PREFETCHT0 is a hint: it never faults and changes no architectural state, and
        // `off < len` keeps the address inside the area anyway. SSE is baseline on x86_64.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.ptr.wrapping_add(off as usize) as *const i8)
        };
        #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
        let _ = off;
    }

    /// Maps every page of the area into this process's page tables without changing a byte
    /// (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14 and later); false where the kernel could not,
    /// and always false off Linux, under loom and under Miri.
    pub(crate) fn prefault(&self) -> bool {
        #[cfg(all(target_os = "linux", not(loom), not(miri)))]
        {
            // SAFETY: sysconf has no memory-safety preconditions.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
            let start = self.ptr as usize / page * page;
            // SAFETY: the range from the page holding the area's start to its end lies inside
            // the mapping or heap block holding the area (both start on a page boundary).
            // MADV_POPULATE_WRITE only faults the pages in, as a write would, without writing:
            // peers' data is untouched.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    self.ptr as usize + self.len - start,
                    libc::MADV_POPULATE_WRITE,
                ) == 0
            }
        }
        #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
        false
    }
}

/// Writing a large record (a *frame*) over the bytes the consumer released last.
///
/// Rings and queues hand out space in order, so a ring of two frames alternates between two
/// regions of the data area, and each frame is copied into memory that the cache and the TLB
/// have mostly let go since the frame before last. When the consumer has released the previous
/// frame before the next one is written (the channel is empty), the producer writes the next one
/// at offset 0 again behind a padding record, over the bytes the previous frame occupied: one
/// region stays hot (docs/benchmarks.md, "Issue 16", has the copy times that show the
/// difference). The topic's publisher does the same when every subscriber has let go of the
/// last frame (`topic::frames`, with one more step for its trailing mark).
pub(crate) mod reuse {
    #[cfg(not(loom))]
    use std::time::Duration;

    /// Frames start at this size: below it two of them and the producer's source stay within
    /// the caches and the TLB anyway, so alternating regions cost nothing (measured in
    /// docs/benchmarks.md, "Issue 16"). Unit tests and loom models use small rings, so there it
    /// is 0.
    #[cfg(not(any(test, loom)))]
    pub(crate) const MIN_FRAME: u64 = 4 << 20;
    #[cfg(any(test, loom))]
    pub(crate) const MIN_FRAME: u64 = 0;

    /// A record is a frame when it takes more than a third of the capacity (the channel holds
    /// at most two) and is at least [`MIN_FRAME`] bytes.
    #[inline]
    pub(crate) fn is_frame(rec: u64, capacity: u64) -> bool {
        rec > frame_over(capacity)
    }

    /// The longest record that is not a frame in a channel of `capacity` bytes.
    #[inline]
    pub(crate) fn frame_over(capacity: u64) -> u64 {
        (capacity / 3).max(MIN_FRAME.saturating_sub(1))
    }

    /// How long a producer polls for the consumer to release the previous frame before writing
    /// the next one elsewhere: 1 ns per 64 bytes of the frame, a fraction of what copying the
    /// frame into a cold region costs more than into a hot one (docs/benchmarks.md, "Issue
    /// 16"), so a poll that succeeds pays for itself and one that times out costs little.
    #[cfg(not(loom))]
    fn wait_for(rec: u64) -> Duration {
        Duration::from_nanos(rec / 64)
    }

    /// When to poll: after three polls in a row that timed out (a consumer that holds each
    /// frame for longer than the poll lasts) the next 4, 8, ... 256 frames go elsewhere without
    /// waiting; a poll that succeeds resets that. One timeout alone (the consumer was preempted)
    /// changes nothing. Packed in one word (`skip << 32 | timeouts in a row`) so that a queue
    /// handle, shared by threads, keeps it in an atomic written under its producer lock.
    #[derive(Debug, Default, Clone, Copy)]
    pub(crate) struct Backoff(pub(crate) u64);

    impl Backoff {
        /// Polls `released` (true: the previous frame is released) for a moment unless backing
        /// off; returns whether it became true.
        pub(crate) fn poll<E>(&mut self, rec: u64, released: impl FnMut() -> Result<bool, E>) -> Result<bool, E> {
            let (skip, streak) = ((self.0 >> 32) as u32, self.0 as u32);
            if skip > 0 {
                self.0 = (u64::from(skip - 1) << 32) | u64::from(streak);
                return Ok(false);
            }
            let ok = poll_for(rec, released)?;
            self.record(ok);
            Ok(ok)
        }

        /// Counts the outcome of a poll: a success resets the backoff, a timeout adds to the
        /// streak (and from the third in a row on, sets frames to skip).
        pub(crate) fn record(&mut self, released: bool) {
            if released {
                self.0 = 0;
                return;
            }
            let streak = (self.0 as u32 + 1).min(9);
            let skip = if streak < 3 { 0 } else { 4u32 << (streak - 3) };
            self.0 = (u64::from(skip) << 32) | u64::from(streak);
        }
    }

    /// Polls `ready` for as long as a producer waits for a frame of `rec` bytes to be released
    /// ([`wait_for`]); returns whether it became true. Loom models no time: one look.
    pub(crate) fn poll_for<E>(rec: u64, mut ready: impl FnMut() -> Result<bool, E>) -> Result<bool, E> {
        #[cfg(not(loom))]
        {
            let until = std::time::Instant::now() + wait_for(rec);
            loop {
                for _ in 0..16 {
                    crate::sync::spin_loop();
                }
                if ready()? {
                    return Ok(true);
                }
                if std::time::Instant::now() >= until {
                    return Ok(false);
                }
            }
        }
        #[cfg(loom)]
        {
            let _ = rec;
            ready()
        }
    }
}

/// Bytes of a data area held in place for reading ([`DataArea::bytes`]): what a zero-copy view
/// holds. The protocol keeps them unwritten while the value lives; the loom twin holds a copy
/// and makes loom report any write to them meanwhile.
pub(crate) struct Bytes {
    ptr: *const u8,
    len: usize,
    #[cfg(loom)]
    #[allow(dead_code)] // held for its Drop: the end of the recorded read
    held: Vec<loom::cell::ConstPtr<()>>,
    #[cfg(loom)]
    #[allow(dead_code)] // `ptr` points into it
    copy: Vec<u8>,
}

// SAFETY: the bytes are read-only while the value lives (the `DataArea::bytes` contract) and
// stay mapped; reading them from another thread is as sound as from this one.
unsafe impl Send for Bytes {}
// SAFETY: as above; `&Bytes` only permits reads.
unsafe impl Sync for Bytes {}

impl Bytes {
    /// The bytes.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `DataArea::bytes`'s contract: `ptr..ptr + len` lies in the area (or in our
        // copy), is mapped while we live, and nobody writes it meanwhile; an empty value's
        // pointer is dangling but aligned and non-null, as a zero-length slice needs.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Start of the bytes (valid for reads of as many bytes as `as_slice` has while this value
    /// lives).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Lets go of the bytes (this value is empty afterwards). Call it before handing them back
    /// to writers: the loom twin's recorded read ends here.
    #[inline]
    pub(crate) fn end(&mut self) {
        *self = Bytes::default();
    }
}

impl Default for Bytes {
    /// No bytes (what a view holds once it has let go of its record).
    fn default() -> Bytes {
        Bytes {
            ptr: std::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 0,
            #[cfg(loom)]
            held: Vec::new(),
            #[cfg(loom)]
            copy: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bytes").field("len", &self.len).finish()
    }
}

/// A run of equally sized messages held in place: what the ring's
/// [`FixedBatch`](crate::ring::FixedBatch) and the queue's [`FixedViews`](crate::FixedViews)
/// share. Payload `i` is at `as_ptr() + i * stride()`; the primitive that made the run keeps the
/// records unwritten while it lives (and releases them when it goes).
pub struct FixedRun {
    /// From the first payload to the end of the last one.
    bytes: Bytes,
    count: usize,
    stride: usize,
    len: usize,
}

impl FixedRun {
    /// A run of `count` payloads of `len` bytes, `stride` apart, held in `bytes` (which spans
    /// from the first payload to the end of the last).
    pub(crate) fn new(bytes: Bytes, count: usize, stride: usize, len: usize) -> FixedRun {
        debug_assert!(count >= 1 && bytes.as_slice().len() == (count - 1) * stride + len);
        FixedRun { bytes, count, stride, len }
    }

    /// Start of the first payload (valid for reads of [`span`](Self::span) bytes while this
    /// value lives).
    pub fn as_ptr(&self) -> *const u8 {
        self.bytes.as_ptr()
    }

    /// Number of messages (at least 1).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Distance between consecutive payloads: the record size of the primitive (header +
    /// payload, rounded up to 8).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Payload length of every message.
    pub fn message_len(&self) -> usize {
        self.len
    }

    /// Bytes from the first payload to the end of the last one.
    pub fn span(&self) -> usize {
        self.bytes.as_slice().len()
    }

    /// Payload `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.count).then(|| &self.bytes.as_slice()[i * self.stride..i * self.stride + self.len])
    }

    /// Lets go of the bytes (see [`Bytes::end`]); the run is empty afterwards.
    pub(crate) fn end(&mut self) {
        self.bytes.end();
        self.count = 0;
    }
}

impl std::fmt::Debug for FixedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedRun")
            .field("count", &self.count)
            .field("stride", &self.stride)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_copies_and_snapshots_see_the_same_bytes() {
        let a = DataArea::heap(64);
        assert_eq!(a.len(), 64);
        // SAFETY: every offset below lies inside the 64 bytes; nobody else uses this area.
        unsafe {
            a.word(8).store(u64::from_le_bytes(*b"headword"), crate::sync::Ordering::Relaxed);
            a.copy_in(16, b"payload!x");
            assert_eq!(a.bytes(16, 9).as_slice(), b"payload!x");
            let mut snap = [0u8; 17];
            a.snapshot(8, &mut snap);
            assert_eq!(&snap, b"headwordpayload!x");
            a.fill(40, 3, |s| s.copy_from_slice(b"abc"));
            let b = a.bytes(40, 3);
            assert_eq!(b.as_slice(), b"abc");
            assert_eq!(b.as_ptr(), a.ptr(40) as *const u8);
        }
        assert!(Bytes::default().as_slice().is_empty());
    }
}
