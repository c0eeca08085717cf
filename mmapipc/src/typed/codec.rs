//! Rust message types: how a type describes itself ([`IpcMessage`], from `#[derive(IpcMessage)]`)
//! and how it is archived straight into slots and read where it lies.
//!
//! [`IpcMessage`] and [`SchemaType`] turn a type into its [`Schema`]; the derive computes every
//! offset from the archived type, never by hand. [`archived_len`] measures a value's archive
//! without writing it anywhere (a counting writer), so a channel can claim a slot of exactly that
//! size; [`serialize_into`] then writes the archive directly into the claimed slot (no
//! intermediate buffer); [`access`] validates a received slot with bytecheck and returns the
//! archived root in place. The bytes are specified in FORMAT.md, "Typed payload".
//!
//! Evolution: the root of an rkyv archive is its *last* `size_of::<Archived<T>>()` bytes. A reader
//! of an older version locates the root with the *channel's* root size (`root_size`), then reads
//! its own, shorter prefix of it (see [`Schema::check_reader`] for the rules that make this sound).

use rkyv::api::high::HighSerializer;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::ser::writer::Buffer;
use rkyv::ser::{Positional, Writer};
use rkyv::{Archive, Archived, Portable, Serialize};

use super::schema::{Scalar, Schema, TypeDesc};

/// Why a typed encode or decode failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypedError {
    /// rkyv could not serialize the value (or it did not fit the slot).
    #[error("serialization failed: {0}")]
    Serialize(String),
    /// The bytes in the slot are not a valid archive of the type (bytecheck failed).
    #[error("message failed validation: {0}")]
    Invalid(String),
    /// The message is shorter than the channel's root struct.
    #[error("message of {len} bytes is shorter than its root struct ({root_size} bytes)")]
    TooShort {
        /// Message length.
        len: usize,
        /// Root size expected.
        root_size: usize,
    },
}

/// A writer that only counts: measures an archive's length without writing it.
#[derive(Debug, Default)]
pub struct Sizer {
    pos: usize,
}

impl Positional for Sizer {
    fn pos(&self) -> usize {
        self.pos
    }
}

impl<E> Writer<E> for Sizer {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.pos += bytes.len();
        Ok(())
    }
}

/// Values that can be written into a slot (everything `#[derive(Archive, Serialize)]` gives).
pub trait Encode:
    for<'a> Serialize<HighSerializer<Sizer, ArenaHandle<'a>, rancor::Error>>
    + for<'a, 'b> Serialize<HighSerializer<Buffer<'b>, ArenaHandle<'a>, rancor::Error>>
{
}

impl<T> Encode for T where
    T: for<'a> Serialize<HighSerializer<Sizer, ArenaHandle<'a>, rancor::Error>>
        + for<'a, 'b> Serialize<HighSerializer<Buffer<'b>, ArenaHandle<'a>, rancor::Error>>
{
}

/// The exact number of bytes `value`'s archive occupies, when written at an address aligned to
/// 8 bytes (slots are).
pub fn archived_len<T: Encode>(value: &T) -> Result<usize, TypedError> {
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, Sizer::default())
        .map(|s| s.pos)
        .map_err(|e| TypedError::Serialize(e.to_string()))
}

/// Serializes `value` directly into `slot` (8-byte aligned) and returns the bytes written.
pub fn serialize_into<T: Encode>(value: &T, slot: &mut [u8]) -> Result<usize, TypedError> {
    debug_assert_eq!(slot.as_ptr() as usize % 8, 0, "slots are 8-byte aligned");
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, Buffer::from(slot))
        .map(|b| b.len())
        .map_err(|e| TypedError::Serialize(e.to_string()))
}

fn root_pos(len: usize, root_size: usize) -> Result<usize, TypedError> {
    len.checked_sub(root_size).ok_or(TypedError::TooShort { len, root_size })
}

/// Validates `bytes` (one message, 8-byte aligned) and returns its archived root. `root_size` is
/// the channel's root size (equal to `size_of::<Archived<T>>()` unless the channel carries a newer,
/// appended version of `T`).
pub fn access<T>(bytes: &[u8], root_size: usize) -> Result<&Archived<T>, TypedError>
where
    T: Archive,
    Archived<T>: Portable + for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>,
{
    let pos = root_pos(bytes.len(), root_size)?;
    rkyv::api::high::access_pos::<Archived<T>, rancor::Error>(bytes, pos)
        .map_err(|e| TypedError::Invalid(e.to_string()))
}

/// [`access`] without validation.
///
/// # Safety
/// `bytes` must hold a valid archive of `T` (or of a newer appended version whose root is
/// `root_size` bytes) written by a trusted producer, 8-byte aligned, and nobody may write it while
/// the returned reference lives.
pub unsafe fn access_unchecked<T: Archive>(bytes: &[u8], root_size: usize) -> Result<&Archived<T>, TypedError> {
    let pos = root_pos(bytes.len(), root_size)?;
    if root_size < std::mem::size_of::<Archived<T>>() {
        return Err(TypedError::TooShort { len: root_size, root_size: std::mem::size_of::<Archived<T>>() });
    }
    // SAFETY: the caller guarantees a valid archive of T (or an appended version) whose root
    // starts at `pos`; the length check above keeps the root inside `bytes`.
    Ok(unsafe { rkyv::api::access_pos_unchecked::<Archived<T>>(bytes, pos) })
}

/// Types that can be fields of an [`IpcMessage`]: primitives, fixed arrays of them, rkyv
/// `Vec`s of primitives, `String`, and nested `#[derive(IpcMessage)]` structs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of an IPC message",
    label = "unsupported field type",
    note = "use a primitive (u8..u64, i8..i64, f32, f64, bool), a fixed array [T; N], Vec<primitive>, String, or a struct that derives IpcMessage"
)]
pub trait SchemaType: rkyv::Archive {
    /// The archived type description.
    fn type_desc() -> TypeDesc;
}

/// Marker for primitives allowed as `Vec` elements.
#[diagnostic::on_unimplemented(
    message = "`Vec<{Self}>` cannot be a field of an IPC message",
    note = "a Vec field must hold primitives (u8..u64, i8..i64, f32, f64, bool)"
)]
pub trait VecElement: SchemaType {}

macro_rules! scalars {
    ($($t:ty => $s:ident),*) => {$(
        impl SchemaType for $t {
            fn type_desc() -> TypeDesc { TypeDesc::Scalar { scalar: Scalar::$s } }
        }
        impl VecElement for $t {}
    )*};
}
scalars!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64, bool => Bool);

impl<T: SchemaType, const N: usize> SchemaType for [T; N] {
    fn type_desc() -> TypeDesc {
        TypeDesc::Array { elem: Box::new(T::type_desc()), len: N as u32 }
    }
}

impl<T: VecElement> SchemaType for Vec<T>
where
    Vec<T>: rkyv::Archive,
{
    fn type_desc() -> TypeDesc {
        TypeDesc::Vec { elem: Box::new(T::type_desc()) }
    }
}

impl SchemaType for String {
    fn type_desc() -> TypeDesc {
        TypeDesc::String
    }
}

/// A message type with a schema. Implement it with `#[derive(IpcMessage)]`, next to rkyv's
/// `Archive` and `Serialize` derives.
pub trait IpcMessage: SchemaType {
    /// The schema name (`#[ipc(name = "...")]`, default: the type's name).
    const NAME: &'static str;
    /// The schema version (`#[ipc(version = N)]`, default 1).
    const VERSION: u32;
    /// The schema, computed from the archived type.
    fn schema() -> Schema;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example_types::{Tick, TickV2, VideoFrame, VideoFrameV2};

    #[repr(C, align(8))]
    struct Slot([u8; 4096]);

    fn frame() -> VideoFrame {
        VideoFrame {
            seq: 7,
            timestamp_ns: 99,
            width: 4,
            height: 2,
            stride: 12,
            pixel_format: 1,
            pixels: (0..24).collect(),
        }
    }

    #[test]
    fn sized_then_written_in_place_then_read_in_place() {
        let f = frame();
        let n = archived_len(&f).unwrap();
        let mut slot = Slot([0xAA; 4096]);
        assert_eq!(serialize_into(&f, &mut slot.0[..n]).unwrap(), n);
        let a = access::<VideoFrame>(&slot.0[..n], std::mem::size_of::<Archived<VideoFrame>>()).unwrap();
        assert_eq!(a.seq, 7);
        assert_eq!(a.pixels.as_slice(), &f.pixels[..]);
        let t = Tick { timestamp_ns: 1, symbol: *b"ABCD\0\0\0\0", price: 2.5, size: 3, side: 1 };
        assert_eq!(archived_len(&t).unwrap(), std::mem::size_of::<Archived<Tick>>());
    }

    #[test]
    fn slot_too_small_is_an_error_not_a_panic() {
        let f = frame();
        let n = archived_len(&f).unwrap();
        let mut slot = Slot([0; 4096]);
        assert!(matches!(serialize_into(&f, &mut slot.0[..n - 1]), Err(TypedError::Serialize(_))));
    }

    #[test]
    fn old_reader_reads_prefix_of_new_version() {
        let v2 = VideoFrameV2 {
            seq: 1,
            timestamp_ns: 2,
            width: 2,
            height: 1,
            stride: 6,
            pixel_format: 1,
            pixels: vec![1, 2, 3, 4, 5, 6],
            exposure_us: 500,
        };
        let mut slot = Slot([0; 4096]);
        let n = serialize_into(&v2, &mut slot.0).unwrap();
        let root = std::mem::size_of::<Archived<VideoFrameV2>>();
        let a = access::<VideoFrame>(&slot.0[..n], root).unwrap();
        assert_eq!((a.seq.to_native(), a.width.to_native(), a.pixels.as_slice()), (1, 2, &[1u8, 2, 3, 4, 5, 6][..]));
        let t2 = TickV2 { timestamp_ns: 5, symbol: [0; 8], price: 1.0, size: 1, side: 0, venue: 9 };
        let n = serialize_into(&t2, &mut slot.0).unwrap();
        let a = access::<Tick>(&slot.0[..n], std::mem::size_of::<Archived<TickV2>>()).unwrap();
        assert_eq!(a.timestamp_ns, 5);
    }

    /// rkyv alone, no code of ours: an archived `Vec` read through its relative pointer. rkyv
    /// computes the elements' address from `&self` of the relative pointer (`RelPtr::as_ptr`),
    /// so the pointer it dereferences carries the provenance of a 4-byte field reference and
    /// reaches outside it. Stacked Borrows rejects that (the tag of a shared reference covers
    /// only its pointee); Tree Borrows accepts it. rkyv's maintainer: rkyv relies on this and
    /// does not support Stacked Borrows (rkyv/rkyv#436). `make miri` runs this test, and every
    /// test that reads an archived `Vec`/`String`, under Tree Borrows for that reason.
    #[test]
    fn rkyv_relative_pointer_alone() {
        let bytes = rkyv::to_bytes::<rancor::Error>(&vec![1u8, 2, 3]).unwrap();
        let archived = rkyv::access::<rkyv::vec::ArchivedVec<u8>, rancor::Error>(&bytes).unwrap();
        assert_eq!(archived.as_slice(), &[1, 2, 3]);
    }

    #[test]
    fn corrupt_relative_pointer_fails_validation() {
        let f = frame();
        let mut slot = Slot([0; 4096]);
        let n = serialize_into(&f, &mut slot.0).unwrap();
        let root = std::mem::size_of::<Archived<VideoFrame>>();
        // The pixels field's relative pointer is at root + 32: point it far outside the message.
        let at = n - root + 32;
        slot.0[at..at + 4].copy_from_slice(&(-100_000i32).to_le_bytes());
        assert!(matches!(access::<VideoFrame>(&slot.0[..n], root), Err(TypedError::Invalid(_))));
        assert!(matches!(access::<VideoFrame>(&slot.0[..3], root), Err(TypedError::TooShort { .. })));
    }
}
