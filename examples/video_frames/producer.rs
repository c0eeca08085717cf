//! Rust camera-like producer: synthetic RGB frames written **in place** into a typed ring
//! (`TypedRing<VideoFrame>::loan_vec`: the pixels are generated straight into the slot).
//!
//! ```text
//! cargo run --release -p mmapipc --example video_producer -- PATH [FRAMES] [WIDTH HEIGHT]
//! ```
//! The ring at PATH must exist (the Python side creates it, see run.py). Frame `i` has
//! `seq = i` and pixel byte `p` equal to `(p + i) % 251`, so a consumer can verify it.

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::time::{Duration, Instant};

use mmapipc::typed::TypedRing;

use example_types::VideoFrame;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: video_producer PATH [FRAMES] [WIDTH HEIGHT]")?;
    let frames: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(300);
    let width: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1920);
    let height: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1080);
    let stride = width * 3;
    let mut ring = TypedRing::<VideoFrame>::open(path)?;
    // One pattern row set, copied into each frame (a camera would DMA here; we memcpy).
    let pattern: Vec<u8> = (0..stride * height + 251).map(|p| (p % 251) as u8).collect();
    let start = Instant::now();
    for seq in 0..frames {
        let header = VideoFrame {
            seq,
            timestamp_ns: start.elapsed().as_nanos() as u64,
            width: width as u32,
            height: height as u32,
            stride: stride as u32,
            pixel_format: 1,
            pixels: Vec::new(),
        };
        let mut loan = ring
            .loan_vec::<u8>(&header, "pixels", stride * height, Some(Duration::from_secs(30)))?
            .ok_or("consumer stalled for 30 s")?;
        let shift = (seq % 251) as usize;
        loan.array().copy_from_slice(&pattern[shift..shift + stride * height]);
        loan.commit();
    }
    let secs = start.elapsed().as_secs_f64();
    let gb = (frames as f64 * (stride * height) as f64) / 1e9;
    eprintln!(
        "producer: {frames} frames {width}x{height} in {secs:.2} s ({:.0} fps, {:.2} GB/s)",
        frames as f64 / secs,
        gb / secs
    );
    Ok(())
}
