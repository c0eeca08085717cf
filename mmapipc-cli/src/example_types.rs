//! The example message types used by the examples, tests and benchmarks, each in a v1 and a v2
//! that appends a field. Their schemas are checked in under `schemas/` (see
//! `mmapipc/tests/schemas_checked_in.rs`): changing a layout without bumping its version fails the tests.

use mmapipc::rkyv::{Archive, Deserialize, Serialize};
use mmapipc::IpcMessage;

/// Market data: one trade tick (fixed size: a batch reads as one NumPy structured array).
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, Copy, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "market.Tick", version = 1)]
pub struct Tick {
    /// Exchange timestamp, ns since the epoch.
    pub timestamp_ns: u64,
    /// Symbol, ASCII, NUL-padded.
    pub symbol: [u8; 8],
    /// Price.
    pub price: f64,
    /// Quantity.
    pub size: u32,
    /// 0 = buy, 1 = sell.
    pub side: u8,
}

/// [`Tick`] v2: appends the venue id.
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, Copy, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "market.Tick", version = 2)]
pub struct TickV2 {
    /// Exchange timestamp, ns since the epoch.
    pub timestamp_ns: u64,
    /// Symbol, ASCII, NUL-padded.
    pub symbol: [u8; 8],
    /// Price.
    pub price: f64,
    /// Quantity.
    pub size: u32,
    /// 0 = buy, 1 = sell.
    pub side: u8,
    /// Venue id (new in v2).
    pub venue: u16,
}

/// A raw video frame: header fields plus the pixels (`height * stride` bytes).
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "video.Frame", version = 1)]
pub struct VideoFrame {
    /// Frame sequence number.
    pub seq: u64,
    /// Capture time, ns.
    pub timestamp_ns: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row.
    pub stride: u32,
    /// Pixel format code (1 = RGB8, 2 = GRAY8).
    pub pixel_format: u32,
    /// Pixel bytes.
    pub pixels: Vec<u8>,
}

/// [`VideoFrame`] v2: appends the exposure time.
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "video.Frame", version = 2)]
pub struct VideoFrameV2 {
    /// Frame sequence number.
    pub seq: u64,
    /// Capture time, ns.
    pub timestamp_ns: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row.
    pub stride: u32,
    /// Pixel format code (1 = RGB8, 2 = GRAY8).
    pub pixel_format: u32,
    /// Pixel bytes.
    pub pixels: Vec<u8>,
    /// Exposure time in microseconds (new in v2).
    pub exposure_us: u32,
}

/// An n-dimensional tensor (up to 4 dimensions) with its data.
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "ml.Tensor", version = 1)]
pub struct Tensor {
    /// Element type code (NumPy `dtype.num`-independent: 1 = f32, 2 = f64, 3 = u8, 4 = i64).
    pub dtype: u32,
    /// Number of dimensions used in `shape`/`strides`.
    pub ndim: u32,
    /// Shape, unused dimensions 0.
    pub shape: [u64; 4],
    /// Strides in bytes, unused dimensions 0.
    pub strides: [i64; 4],
    /// Element bytes.
    pub data: Vec<u8>,
}

/// [`Tensor`] v2: appends the batch index.
#[derive(Archive, Serialize, Deserialize, IpcMessage, Debug, Clone, PartialEq)]
#[rkyv(crate = mmapipc::rkyv)]
#[ipc(name = "ml.Tensor", version = 2)]
pub struct TensorV2 {
    /// Element type code (1 = f32, 2 = f64, 3 = u8, 4 = i64).
    pub dtype: u32,
    /// Number of dimensions used in `shape`/`strides`.
    pub ndim: u32,
    /// Shape, unused dimensions 0.
    pub shape: [u64; 4],
    /// Strides in bytes, unused dimensions 0.
    pub strides: [i64; 4],
    /// Element bytes.
    pub data: Vec<u8>,
    /// Index of this tensor in its batch (new in v2).
    pub batch_index: u64,
}

/// Every example type's schema, for tools and the `schemas/` check.
pub fn all_schemas() -> Vec<mmapipc::Schema> {
    use mmapipc::IpcMessage as _;
    vec![
        Tick::schema(),
        TickV2::schema(),
        VideoFrame::schema(),
        VideoFrameV2::schema(),
        Tensor::schema(),
        TensorV2::schema(),
    ]
}
