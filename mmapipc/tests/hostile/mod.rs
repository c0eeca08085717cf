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

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mmapipc::channel::TypedRing;
use mmapipc::example_types::{Tensor, VideoFrame};
use mmapipc::{Queue, Ring, SharedMemory};

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
fn drive_ring(ring: &mut Ring) {
    for _ in 0..8 {
        match ring.try_read() {
            Ok(Some(g)) => {
                std::hint::black_box(g.iter().fold(0u8, |a, b| a ^ b));
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = ring.read_batch(16, |m| {
        std::hint::black_box(m.len());
    });
    if let Ok(Some(b)) = ring.read_fixed_batch_detached(8, 8) {
        std::hint::black_box(b.count());
    }
    let _ = ring.read_timeout(Some(Duration::from_millis(1)));
    std::hint::black_box((ring.len(), ring.is_empty(), ring.available_read(), ring.stats()));
    let _ = ring.try_write(b"after");
    let _ = ring.clear();
}

/// Bounded non-blocking operations on a queue: every result must be an error or a message.
fn drive_queue(q: &Queue) {
    std::hint::black_box((q.len(), q.is_empty(), q.stats()));
    for _ in 0..4 {
        match q.try_get() {
            Ok(Some(m)) => {
                std::hint::black_box(m);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = q.try_get_batch(8);
    if let Ok(views) = q.try_get_views(8) {
        for v in &views {
            std::hint::black_box(v.iter().fold(0u8, |a, b| a ^ b));
        }
    }
    let _ = q.get_timeout(Duration::from_millis(1));
    let _ = q.try_put(b"after");
    let _ = q.try_put_batch(&[b"x".as_slice(), &[7u8; 100]]);
    let _ = q.put_timeout(&[1u8; 300], Duration::from_millis(1));
    std::hint::black_box(q.advance_reclaim(true));
    std::hint::black_box(q.recover());
    let _ = q.clear();
    std::hint::black_box(q.len());
}

fn drive_typed(t: &mut TypedRing<VideoFrame>) {
    for _ in 0..4 {
        match t.try_recv() {
            Ok(Some(g)) => {
                std::hint::black_box(g.pixels.len());
            }
            Ok(None) | Err(_) => break,
        }
    }
}

/// Opens the file at `path` as every kind; handles that open are driven (bounded).
fn open_all(path: &std::path::Path) {
    if let Ok(s) = SharedMemory::open(path) {
        let n = s.size();
        let _ = s.read(0, n.min(64));
        let _ = s.read_u64(n.saturating_sub(8));
        let _ = s.read(n, 1);
    }
    if let Ok(mut r) = Ring::open(path) {
        drive_ring(&mut r);
    }
    if let Ok(q) = Queue::open(path) {
        drive_queue(&q);
    }
    if let Ok(mut t) = TypedRing::<VideoFrame>::open(path) {
        drive_typed(&mut t);
    }
    let _ = mmapipc::channel::channel_schema(path, mmapipc::Kind::Ring, &mmapipc::OpenOptions::default());
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
pub fn open_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let tmp = TempPath::new("open");
    if mode % 2 == 0 {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp.0) else {
            return;
        };
        if f.write_all(rest).is_err() {
            return;
        }
    } else {
        let (which, msgs) = (rest.first().copied().unwrap_or(0), rest.get(1).copied().unwrap_or(0));
        if !make_valid(&tmp.0, which, msgs) {
            return;
        }
        patch_file(&tmp.0, rest.get(2..).unwrap_or(&[]));
    }
    open_all(&tmp.0);
}

/// Harness (b), ring: a ring with `data[0] % 8` messages, patched by a hostile peer with
/// `data[1..]`, both before the victim opens it and while it holds it open.
pub fn ring_hostile(data: &[u8]) {
    let Some((&msgs, patches)) = data.split_first() else { return };
    let tmp = TempPath::new("ring");
    if !make_valid(&tmp.0, 1, msgs) {
        return;
    }
    let (before, during) = patches.split_at(patches.len() / 2);
    patch_file(&tmp.0, before);
    let Ok(mut r) = Ring::open(&tmp.0) else { return };
    if msgs & 0x80 != 0 {
        let _ = r.try_read(); // claim the consumer role before the peer strikes again
    }
    patch_file(&tmp.0, during);
    drive_ring(&mut r);
}

/// Harness (b), queue: as [`ring_hostile`] for a queue.
pub fn queue_hostile(data: &[u8]) {
    let Some((&msgs, patches)) = data.split_first() else { return };
    let tmp = TempPath::new("queue");
    if !make_valid(&tmp.0, 2, msgs) {
        return;
    }
    let (before, during) = patches.split_at(patches.len() / 2);
    patch_file(&tmp.0, before);
    let Ok(q) = Queue::open(&tmp.0) else { return };
    let held = if msgs & 0x80 != 0 { q.try_get_views(2).unwrap_or_default() } else { Vec::new() };
    patch_file(&tmp.0, during);
    drive_queue(&q);
    drop(held);
    drive_queue(&q);
}

/// Harness (c): `data[1..]` as one message, 8-byte aligned, through validated typed access for
/// `VideoFrame` and `Tensor`; `data[0]` perturbs the root size the channel claims.
pub fn typed_access(data: &[u8]) {
    let Some((&root_adj, bytes)) = data.split_first() else { return };
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
    if let Ok(f) = mmapipc::typed::access::<VideoFrame>(aligned, adj(vroot)) {
        let sum = f.pixels.iter().fold(0u8, |a, b| a ^ b);
        std::hint::black_box((sum, f.seq.to_native(), f.width.to_native()));
    }
    let troot = std::mem::size_of::<mmapipc::rkyv::Archived<Tensor>>();
    if let Ok(t) = mmapipc::typed::access::<Tensor>(aligned, adj(troot)) {
        let sum = t.data.iter().fold(0u8, |a, b| a ^ b);
        std::hint::black_box((sum, t.ndim.to_native(), t.shape[0].to_native()));
    }
}
