//! Hostile-input harnesses shared by the cargo-fuzz targets (`fuzz/`, included with `#[path]`)
//! and the stable fuzz smoke test (`tests/fuzz_regressions.rs`). Each takes arbitrary bytes and
//! must return normally: any panic, out-of-bounds access, SIGBUS or hang is a finding.
//!
//! * [`open_file`]: the bytes become a file (raw, or a valid file of some kind with the bytes as
//!   patches over it), opened as every kind; a handle that opens is then read from (bounded).
//! * [`ring_hostile`] / [`queue_hostile`]: a real ring / queue with a few messages, then a hostile
//!   peer overwrites bytes of its mapping (header, control block, records) through its own
//!   mapping of the file, then the victim runs a bounded number of non-blocking operations.
//! * [`typed_access`]: the bytes as one message, through the validated typed access path.

#![allow(dead_code)] // each includer uses some of the harnesses

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmapipc::typed::TypedRing;
use mmapipc::{Queue, Ring, SharedMemory};

use example_types::{Tensor, VideoFrame};

/// What a harness run did, so tests can check the harness reaches real code paths.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Handles that opened.
    pub opened: usize,
    /// Messages handed out (each checked to lie inside the data area).
    pub messages: usize,
    /// Operations that returned an error.
    pub errors: usize,
}

impl Outcome {
    fn add(&mut self, o: Outcome) {
        self.opened += o.opened;
        self.messages += o.messages;
        self.errors += o.errors;
    }
}

/// Ring / queue data capacity used by the hostile harnesses: small, so 16-bit patch offsets
/// reach every byte of the file.
pub const SMALL_CAPACITY: usize = 512;

/// A fresh path in `/dev/shm` for this process, removed on drop.
pub struct TempPath(pub PathBuf);

impl TempPath {
    /// A unique path tagged `tag`.
    pub fn new(tag: &str) -> TempPath {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = PathBuf::from(format!("/dev/shm/mmapipc-hostile-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempPath(p)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Applies `patches` (a sequence of `offset: u16 LE, len: u8, bytes[len % 16 + 1]`) to the file
/// at `path` through a separate shared mapping, as a hostile peer with write access would.
pub fn patch_file(path: &std::path::Path, patches: &[u8]) {
    let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(path) else { return };
    let Ok(meta) = file.metadata() else { return };
    let len = meta.len() as usize;
    if len == 0 {
        return;
    }
    // SAFETY: a shared mapping of a file we created; other mappings of it exist in this process
    // (the handles under test), which is the point: they must not trust these bytes. We only
    // write through raw byte stores into our own mapping, never forming references to memory
    // the handles read.
    let Ok(mut map) = (unsafe { memmap2::MmapMut::map_mut(&file) }) else { return };
    let mut rest = patches;
    while rest.len() >= 3 {
        let off = u16::from_le_bytes([rest[0], rest[1]]) as usize % len;
        let n = (rest[2] % 16) as usize + 1;
        rest = &rest[3..];
        let take = n.min(rest.len());
        let end = (off + take).min(len);
        map[off..end].copy_from_slice(&rest[..end - off]);
        rest = &rest[take..];
    }
    let _ = map.flush();
}

/// Bounded reads of a ring (as its consumer): every result must be an error or a message.
fn drive_ring(ring: &mut Ring) -> Outcome {
    let mut o = Outcome { opened: 1, ..Outcome::default() };
    let max = ring.capacity();
    let seen = |len: usize, o: &mut Outcome| {
        assert!(len <= max, "a {len}-byte message from a {max}-byte ring");
        o.messages += 1;
    };
    for _ in 0..8 {
        match ring.try_read() {
            Ok(Some(g)) => {
                std::hint::black_box(g.iter().fold(0u8, |a, b| a ^ b));
                seen(g.len(), &mut o);
            }
            Ok(None) => break,
            Err(_) => {
                o.errors += 1;
                break;
            }
        }
    }
    let mut lens = Vec::new();
    match ring.read_batch(16, |m| {
        std::hint::black_box(m.iter().fold(0u8, |a, b| a ^ b));
        lens.push(m.len());
    }) {
        Ok(_) => lens.into_iter().for_each(|len| seen(len, &mut o)),
        Err(_) => o.errors += 1,
    }
    match ring.read_fixed_batch_detached(8, 8) {
        Ok(Some(b)) => {
            assert!(b.span() <= max);
            o.messages += b.count();
        }
        Ok(None) => {}
        Err(_) => o.errors += 1,
    }
    match ring.read_timeout(Some(Duration::from_millis(1))) {
        Ok(Some(g)) => seen(g.len(), &mut o),
        Ok(None) => {}
        Err(_) => o.errors += 1,
    }
    std::hint::black_box((ring.len(), ring.is_empty(), ring.available_read(), ring.stats()));
    o.errors += usize::from(ring.try_write(b"after").is_err());
    o.errors += usize::from(ring.clear().is_err());
    o
}

/// Bounded non-blocking operations on a queue: every result must be an error or a message.
fn drive_queue(q: &Arc<Queue>) -> Outcome {
    let mut o = Outcome { opened: 1, ..Outcome::default() };
    let max = q.max_message_size();
    let check = |len: usize| assert!(len <= max, "a {len}-byte message from a queue whose largest is {max}");
    std::hint::black_box((q.len(), q.is_empty(), q.stats()));
    for _ in 0..4 {
        match q.try_get() {
            Ok(Some(m)) => {
                check(m.len());
                o.messages += 1;
            }
            Ok(None) => break,
            Err(_) => {
                o.errors += 1;
                break;
            }
        }
    }
    match q.try_get_batch(8) {
        Ok(b) => {
            b.iter().for_each(|m| check(m.len()));
            o.messages += b.len();
        }
        Err(_) => o.errors += 1,
    }
    match q.try_get_views(8) {
        Ok(views) => {
            for v in &views {
                check(v.len());
                std::hint::black_box(v.iter().fold(0u8, |a, b| a ^ b));
            }
            o.messages += views.len();
        }
        Err(_) => o.errors += 1,
    }
    for len in [8, 24] {
        match q.get_fixed_views(8, len, Some(Duration::ZERO)) {
            Ok(Some(b)) => {
                for i in 0..b.count() {
                    let m = b.get(i).expect("a record of the batch");
                    check(m.len());
                    std::hint::black_box(m.iter().fold(0u8, |a, b| a ^ b));
                }
                o.messages += b.count();
            }
            Ok(None) => {}
            Err(_) => o.errors += 1,
        }
    }
    match q.get_timeout(Some(Duration::from_millis(1))) {
        Ok(Some(m)) => {
            check(m.len());
            o.messages += 1;
        }
        Ok(None) => {}
        Err(_) => o.errors += 1,
    }
    o.errors += usize::from(q.try_put(b"after").is_err());
    o.errors += usize::from(q.try_put_batch(&[b"x".as_slice(), &[7u8; 100]]).is_err());
    o.errors += usize::from(q.put_timeout(&[1u8; 300], Some(Duration::from_millis(1))).is_err());
    std::hint::black_box(q.advance_reclaim(true));
    std::hint::black_box(q.recover());
    o.errors += usize::from(q.clear().is_err());
    std::hint::black_box(q.len());
    o
}

fn drive_typed(t: &mut TypedRing<VideoFrame>) -> Outcome {
    let mut o = Outcome { opened: 1, ..Outcome::default() };
    for _ in 0..4 {
        match t.try_recv() {
            Ok(Some(g)) => {
                std::hint::black_box(g.pixels.iter().fold(0u8, |a, b| a ^ b));
                o.messages += 1;
            }
            Ok(None) => break,
            Err(_) => {
                o.errors += 1;
                break;
            }
        }
    }
    o
}

/// Opens the file at `path` as every kind; handles that open are driven (bounded).
fn open_all(path: &std::path::Path) -> Outcome {
    let mut o = Outcome::default();
    match SharedMemory::open(path) {
        Ok(s) => {
            o.opened += 1;
            let n = s.size();
            assert!(s.read(0, n.min(64)).is_ok());
            assert!(s.read(n, 1).is_err(), "read past the end of a {n}-byte region");
        }
        Err(_) => o.errors += 1,
    }
    match Ring::open(path) {
        Ok(mut r) => o.add(drive_ring(&mut r)),
        Err(_) => o.errors += 1,
    }
    match Queue::open(path) {
        Ok(q) => o.add(drive_queue(&Arc::new(q))),
        Err(_) => o.errors += 1,
    }
    match TypedRing::<VideoFrame>::open(path) {
        Ok(mut t) => o.add(drive_typed(&mut t)),
        Err(_) => o.errors += 1,
    }
    let _ = mmapipc::typed::channel_schema(path, mmapipc::Kind::Ring, &mmapipc::OpenOptions::default());
    o
}

fn frame(seq: u64) -> VideoFrame {
    VideoFrame {
        seq,
        timestamp_ns: seq * 7,
        width: 2,
        height: 2,
        stride: 2,
        pixel_format: 2,
        pixels: vec![seq as u8; 4],
    }
}

/// Creates a valid file of kind `which % 4` (shared memory, ring, queue, typed ring) at `path`
/// holding up to `msgs % 8` messages.
fn make_valid(path: &std::path::Path, which: u8, msgs: u8) -> bool {
    let n = (msgs % 8) as usize;
    match which % 4 {
        0 => SharedMemory::create(path, SMALL_CAPACITY).is_ok(),
        1 => {
            let Ok(mut r) = Ring::create(path, SMALL_CAPACITY) else { return false };
            for i in 0..n {
                let _ = r.try_write(&vec![i as u8; i * 9 + 1]);
            }
            true
        }
        2 => {
            let Ok(q) = Queue::create(path, SMALL_CAPACITY) else { return false };
            for i in 0..n {
                let _ = q.try_put(&vec![i as u8; i * 11 + 1]);
            }
            // One message out as a view that is released, one copied: DONE and taken records.
            if n > 2 {
                drop(q.try_get_view());
                let _ = q.try_get();
            }
            true
        }
        _ => {
            let Ok(mut t) = TypedRing::<VideoFrame>::create(path, 4096) else { return false };
            for i in 0..n.min(3) {
                let _ = t.try_send(&frame(i as u64));
            }
            true
        }
    }
}

/// Harness (a): arbitrary bytes as a file. Byte 0 picks the mode: even, the rest of the input
/// is the whole file; odd, a valid file (kind from byte 1, messages from byte 2) gets the rest
/// as patches. Then the file is opened as every kind.
pub fn open_file(data: &[u8]) -> Outcome {
    let Some((&mode, rest)) = data.split_first() else { return Outcome::default() };
    let tmp = TempPath::new("open");
    if mode % 2 == 0 {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp.0) else {
            return Outcome::default();
        };
        if f.write_all(rest).is_err() {
            return Outcome::default();
        }
    } else {
        let (which, msgs) = (rest.first().copied().unwrap_or(0), rest.get(1).copied().unwrap_or(0));
        if !make_valid(&tmp.0, which, msgs) {
            return Outcome::default();
        }
        patch_file(&tmp.0, rest.get(2..).unwrap_or(&[]));
    }
    open_all(&tmp.0)
}

/// Harness (b), ring: a ring with `data[0] % 8` messages, patched by a hostile peer with
/// `data[1..]`, both before the victim opens it and while it holds it open.
pub fn ring_hostile(data: &[u8]) -> Outcome {
    let Some((&msgs, patches)) = data.split_first() else { return Outcome::default() };
    let tmp = TempPath::new("ring");
    if !make_valid(&tmp.0, 1, msgs) {
        return Outcome::default();
    }
    let (before, during) = patches.split_at(patches.len() / 2);
    patch_file(&tmp.0, before);
    let Ok(mut r) = Ring::open(&tmp.0) else { return Outcome { errors: 1, ..Outcome::default() } };
    let mut o = Outcome::default();
    if msgs & 0x80 != 0 {
        // Claim the consumer role (taking one message) before the peer strikes again.
        match r.try_read() {
            Ok(Some(g)) => {
                assert!(g.len() <= SMALL_CAPACITY, "a {}-byte message from a {SMALL_CAPACITY}-byte ring", g.len());
                o.messages += 1;
            }
            Ok(None) => {}
            Err(_) => o.errors += 1,
        }
    }
    patch_file(&tmp.0, during);
    o.add(drive_ring(&mut r));
    o
}

/// Harness (b), queue: as [`ring_hostile`] for a queue.
pub fn queue_hostile(data: &[u8]) -> Outcome {
    let Some((&msgs, patches)) = data.split_first() else { return Outcome::default() };
    let tmp = TempPath::new("queue");
    if !make_valid(&tmp.0, 2, msgs) {
        return Outcome::default();
    }
    let (before, during) = patches.split_at(patches.len() / 2);
    patch_file(&tmp.0, before);
    let Ok(q) = Queue::open(&tmp.0) else { return Outcome { errors: 1, ..Outcome::default() } };
    let q = Arc::new(q);
    let held = if msgs & 0x80 != 0 { q.try_get_views(2).unwrap_or_default() } else { Vec::new() };
    let mut o = Outcome { messages: held.len(), ..Outcome::default() };
    patch_file(&tmp.0, during);
    o.add(drive_queue(&q));
    drop(held);
    o.add(drive_queue(&q));
    o
}

/// Harness (c): `data[1..]` as one message, 8-byte aligned, through validated typed access for
/// `VideoFrame` and `Tensor`; `data[0]` perturbs the root size the channel claims.
pub fn typed_access(data: &[u8]) -> Outcome {
    let Some((&root_adj, bytes)) = data.split_first() else { return Outcome::default() };
    let mut o = Outcome::default();
    let mut buf = vec![0u64; bytes.len().div_ceil(8)];
    // SAFETY: `buf` owns at least `bytes.len()` initialised bytes; viewing u64s as bytes is
    // always valid, and the slice does not outlive `buf`.
    let aligned = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, bytes.len()) };
    aligned.copy_from_slice(bytes);
    let aligned: &[u8] = aligned;
    let adj = |root: usize| match root_adj % 4 {
        0 => root,
        1 => root + (root_adj as usize >> 2) * 8,
        2 => root.saturating_sub((root_adj as usize >> 2) * 8),
        _ => root_adj as usize,
    };
    let vroot = std::mem::size_of::<mmapipc::rkyv::Archived<VideoFrame>>();
    match mmapipc::typed::access::<VideoFrame>(aligned, adj(vroot)) {
        Ok(f) => {
            assert!(f.pixels.len() <= aligned.len());
            let sum = f.pixels.iter().fold(0u8, |a, b| a ^ b);
            std::hint::black_box((sum, f.seq.to_native(), f.width.to_native()));
            o.messages += 1;
        }
        Err(_) => o.errors += 1,
    }
    let troot = std::mem::size_of::<mmapipc::rkyv::Archived<Tensor>>();
    match mmapipc::typed::access::<Tensor>(aligned, adj(troot)) {
        Ok(t) => {
            assert!(t.data.len() <= aligned.len());
            let sum = t.data.iter().fold(0u8, |a, b| a ^ b);
            std::hint::black_box((sum, t.ndim.to_native(), t.shape[0].to_native()));
            o.messages += 1;
        }
        Err(_) => o.errors += 1,
    }
    o
}

/// A valid archive of `frame` / a tensor, as `typed_access` input (for tests and seeds).
pub fn typed_seed(tensor: bool) -> Vec<u8> {
    let mut slot = vec![0u64; 64];
    // SAFETY: as in `typed_access`: a u64 buffer viewed as bytes, not outliving it.
    let bytes = unsafe { std::slice::from_raw_parts_mut(slot.as_mut_ptr() as *mut u8, slot.len() * 8) };
    let n = if tensor {
        let t = Tensor { dtype: 3, ndim: 1, shape: [4, 0, 0, 0], strides: [1, 0, 0, 0], data: vec![1, 2, 3, 4] };
        mmapipc::typed::serialize_into(&t, bytes).expect("serialize a tensor")
    } else {
        mmapipc::typed::serialize_into(&frame(3), bytes).expect("serialize a frame")
    };
    let mut v = vec![0u8];
    v.extend_from_slice(&bytes[..n]);
    v
}

/// The bytes of a valid file of kind `which % 4` (see `make_valid`) with `msgs` messages.
pub fn valid_file_bytes(which: u8, msgs: u8) -> Vec<u8> {
    let tmp = TempPath::new("seed");
    assert!(make_valid(&tmp.0, which, msgs));
    std::fs::read(&tmp.0).expect("read back a fresh file")
}
