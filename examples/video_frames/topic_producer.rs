//! Rust camera-like publisher for the fan-out variant (`fanout.py`): synthetic RGB frames
//! published once on a typed topic (`TypedTopic<VideoFrame>`), which every subscriber reads in
//! place.
//!
//! ```text
//! cargo run --release -p mmapipc --example video_topic_producer -- PATH [FRAMES] [WIDTH HEIGHT]
//! ```
//! The topic at PATH must exist and its subscribers be attached (fanout.py does both). Frame
//! `i` has `seq = i` and pixel byte `p` equal to `(p + i) % 251`, as in `producer.rs`.

#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::time::{Duration, Instant};

use mmapipc::typed::TypedTopic;

use example_types::VideoFrame;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: video_topic_producer PATH [FRAMES] [WIDTH HEIGHT]")?;
    let frames: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(300);
    let width: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1920);
    let height: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1080);
    let stride = width * 3;
    let topic = TypedTopic::<VideoFrame>::open(path)?;
    let mut publisher = topic.publisher()?;
    let pattern: Vec<u8> = (0..stride * height + 251).map(|p| (p % 251) as u8).collect();
    let start = Instant::now();
    for seq in 0..frames {
        let shift = (seq % 251) as usize;
        let frame = VideoFrame {
            seq,
            timestamp_ns: start.elapsed().as_nanos() as u64,
            width: width as u32,
            height: height as u32,
            stride: stride as u32,
            pixel_format: 1,
            pixels: pattern[shift..shift + stride * height].to_vec(),
        };
        if !publisher.send_timeout(&frame, Some(Duration::from_secs(30)))? {
            return Err("a subscriber stalled for 30 s".into());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "publisher: {frames} frames {width}x{height} in {secs:.2} s ({:.0} fps), written once",
        frames as f64 / secs
    );
    Ok(())
}
