//! A Rust peer for cross-language tests: produces or consumes deterministic example messages on a
//! typed ring that another process (e.g. Python) created.
//!
//! ```text
//! typed_peer produce tick|frame|tensor PATH COUNT
//! typed_peer consume tick|frame|tensor PATH COUNT     # verifies every message, prints "ok COUNT CHECKSUM"
//! typed_peer produce-queue|consume-queue KIND PATH COUNT   # the same through a typed queue
//! ```
//!
//! Message `i` of each kind (the Python tests generate the same):
//! * tick: timestamp_ns = i, symbol = "SYM", price = i / 2, size = i, side = i % 2
//! * frame: 16x9 RGB, stride 48, seq = i, timestamp_ns = 10 i, pixel p = (p + i) % 256
//! * tensor: f32 2x3, element k = k + i, strides (12, 4)

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::time::Duration;

use mmapipc::typed::{TypedQueue, TypedRing};

use example_types::{Tensor, Tick, VideoFrame};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn tick(i: u64) -> Tick {
    Tick { timestamp_ns: i, symbol: *b"SYM\0\0\0\0\0", price: i as f64 / 2.0, size: i as u32, side: (i % 2) as u8 }
}

fn frame(i: u64) -> VideoFrame {
    VideoFrame {
        seq: i,
        timestamp_ns: 10 * i,
        width: 16,
        height: 9,
        stride: 48,
        pixel_format: 1,
        pixels: (0..16 * 9 * 3).map(|p| ((p + i) % 256) as u8).collect(),
    }
}

fn tensor(i: u64) -> Tensor {
    let data = (0..6).flat_map(|k| ((k + i) as f32).to_le_bytes()).collect();
    Tensor { dtype: 1, ndim: 2, shape: [2, 3, 0, 0], strides: [12, 4, 0, 0], data }
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, kind, path, count] = args.as_slice() else {
        return Err("usage: typed_peer produce|consume tick|frame|tensor PATH COUNT".into());
    };
    let n: u64 = count.parse()?;
    let mut sum = 0xcbf29ce484222325u64;
    match (mode.as_str(), kind.as_str()) {
        ("produce", "tick") => {
            let mut tx = TypedRing::<Tick>::open(path)?;
            for i in 0..n {
                tx.send(&tick(i))?;
            }
        }
        ("produce", "frame") => {
            let mut tx = TypedRing::<VideoFrame>::open(path)?;
            for i in 0..n {
                tx.send(&frame(i))?;
            }
        }
        ("produce", "tensor") => {
            let mut tx = TypedRing::<Tensor>::open(path)?;
            for i in 0..n {
                tx.send(&tensor(i))?;
            }
        }
        ("consume", "tick") => {
            let mut rx = TypedRing::<Tick>::open(path)?;
            for i in 0..n {
                let m = rx.recv_timeout(WAIT)?.ok_or("timed out")?;
                let want = tick(i);
                if m.timestamp_ns != want.timestamp_ns
                    || m.price != want.price
                    || m.size != want.size
                    || m.side != want.side
                    || m.symbol != want.symbol
                {
                    return Err(format!("tick {i} differs").into());
                }
                sum = fnv(sum, m.bytes());
            }
        }
        ("consume", "frame") => {
            let mut rx = TypedRing::<VideoFrame>::open(path)?;
            for i in 0..n {
                let m = rx.recv_timeout(WAIT)?.ok_or("timed out")?;
                let want = frame(i);
                if m.seq != want.seq
                    || m.width != want.width
                    || m.stride != want.stride
                    || m.pixels.as_slice() != &want.pixels[..]
                {
                    return Err(format!("frame {i} differs").into());
                }
                sum = fnv(sum, m.pixels.as_slice());
            }
        }
        ("consume", "tensor") => {
            let mut rx = TypedRing::<Tensor>::open(path)?;
            for i in 0..n {
                let m = rx.recv_timeout(WAIT)?.ok_or("timed out")?;
                if m.data.as_slice() != &tensor(i).data[..] || m.shape[1] != 3 {
                    return Err(format!("tensor {i} differs").into());
                }
                sum = fnv(sum, m.data.as_slice());
            }
        }
        ("produce-queue", "tick") => {
            let q = TypedQueue::<Tick>::open(path)?;
            (0..n).try_for_each(|i| q.send(&tick(i)))?;
        }
        ("produce-queue", "frame") => {
            let q = TypedQueue::<VideoFrame>::open(path)?;
            (0..n).try_for_each(|i| q.send(&frame(i)))?;
        }
        ("produce-queue", "tensor") => {
            let q = TypedQueue::<Tensor>::open(path)?;
            (0..n).try_for_each(|i| q.send(&tensor(i)))?;
        }
        ("consume-queue", "tick") => {
            let q = TypedQueue::<Tick>::open(path)?;
            for i in 0..n {
                let m = q.recv_timeout(WAIT)?.ok_or("timed out")?;
                let want = tick(i);
                if m.timestamp_ns != want.timestamp_ns || m.price != want.price || m.size != want.size {
                    return Err(format!("tick {i} differs").into());
                }
                sum = fnv(sum, m.bytes());
            }
        }
        ("consume-queue", "frame") => {
            let q = TypedQueue::<VideoFrame>::open(path)?;
            for i in 0..n {
                let m = q.recv_timeout(WAIT)?.ok_or("timed out")?;
                if m.seq != i || m.pixels.as_slice() != &frame(i).pixels[..] {
                    return Err(format!("frame {i} differs").into());
                }
                sum = fnv(sum, m.pixels.as_slice());
            }
        }
        ("consume-queue", "tensor") => {
            let q = TypedQueue::<Tensor>::open(path)?;
            for i in 0..n {
                let m = q.recv_timeout(WAIT)?.ok_or("timed out")?;
                if m.data.as_slice() != &tensor(i).data[..] {
                    return Err(format!("tensor {i} differs").into());
                }
                sum = fnv(sum, m.data.as_slice());
            }
        }
        _ => return Err(format!("unknown mode/kind {mode} {kind}").into()),
    }
    println!("ok {n} {sum:#018x}");
    Ok(())
}
