//! Writes one archived message of every example type into a directory, for the Python decoder
//! tests: `<name>.v<version>.bin` holds the rkyv bytes exactly as a producer puts them in a slot.
//!
//! Usage: `cargo run -p mmapipc --example dump_messages -- OUT_DIR`

// The example message types, one definition shared with the CLI crate (which ships them).
#[allow(dead_code)]
#[path = "../../mmapipc-cli/src/example_types.rs"]
mod example_types;

use std::path::PathBuf;

use mmapipc::typed::{archived_len, serialize_into, Encode};
use mmapipc::IpcMessage;

use example_types::{Tensor, TensorV2, Tick, TickV2, VideoFrame, VideoFrameV2};

/// A local type exercising strings (inline and out of line) and a Vec of u16.
#[derive(mmapipc::rkyv::Archive, mmapipc::rkyv::Serialize, IpcMessage)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "test.Labeled", version = 1)]
struct Labeled {
    id: u32,
    short: String,
    long: String,
    tags: Vec<u16>,
}

#[repr(C, align(16))]
struct Slot([u8; 1 << 16]);

fn dump<T: IpcMessage + Encode>(dir: &std::path::Path, value: &T) -> Result<(), Box<dyn std::error::Error>> {
    let mut slot = Box::new(Slot([0; 1 << 16]));
    let n = archived_len(value)?;
    let written = serialize_into(value, &mut slot.0[..n])?;
    assert_eq!(n, written);
    let name = format!("{}.v{}.bin", T::NAME, T::VERSION);
    std::fs::write(dir.join(name), &slot.0[..n])?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: dump_messages OUT_DIR")?);
    std::fs::create_dir_all(&dir)?;
    dump(
        &dir,
        &Tick { timestamp_ns: 1_700_000_000_000_000_001, symbol: *b"AAPL\0\0\0\0", price: 189.25, size: 300, side: 1 },
    )?;
    dump(&dir, &TickV2 { timestamp_ns: 42, symbol: *b"MSFT\0\0\0\0", price: 411.5, size: 7, side: 0, venue: 12 })?;
    let pixels: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
    dump(
        &dir,
        &VideoFrame {
            seq: 9,
            timestamp_ns: 123,
            width: 4,
            height: 3,
            stride: 12,
            pixel_format: 1,
            pixels: pixels.clone(),
        },
    )?;
    dump(
        &dir,
        &VideoFrameV2 {
            seq: 10,
            timestamp_ns: 124,
            width: 4,
            height: 3,
            stride: 12,
            pixel_format: 1,
            pixels,
            exposure_us: 250,
        },
    )?;
    let data: Vec<u8> = [1.5f32, -2.0, 3.25, 4.0, 5.5, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    dump(&dir, &Tensor { dtype: 1, ndim: 2, shape: [2, 3, 0, 0], strides: [12, 4, 0, 0], data: data.clone() })?;
    dump(&dir, &TensorV2 { dtype: 1, ndim: 2, shape: [2, 3, 0, 0], strides: [12, 4, 0, 0], data, batch_index: 77 })?;
    let labeled =
        Labeled { id: 5, short: "hi".into(), long: "a longer label, out of line".into(), tags: vec![3, 1, 4] };
    dump(&dir, &labeled)?;
    std::fs::write(dir.join("test.Labeled.v1.json"), Labeled::schema().to_json())?;
    println!("wrote 7 messages to {}", dir.display());
    Ok(())
}
