//! The on-disk (in-memory) layout shared by every mmapipc file.
//!
//! Every file starts with one 128-byte [`FileHeader`]. After it comes a kind-specific
//! control block (ring indices, queue state; empty for a raw region), then an optional
//! schema blob (typed channels), then the data area, which always starts on a page boundary.
//!
//! ```text
//! 0         128                control_end   schema_end    data_offset (page aligned)   total_size
//! +---------+------------------+-------------+-------------+----------------------------+
//! | header  | control block    | (padding)   | schema      | data                       |
//! +---------+------------------+-------------+-------------+----------------------------+
//! ```
//!
//! Header fields (all little-endian on the only ABI written so far; the ABI flags say which):
//!
//! | offset | size | field                | meaning |
//! |-------:|-----:|----------------------|---------|
//! | 0      | 8    | `magic`              | [`MAGIC`], `b"MMAPIPC\0"` |
//! | 8      | 4    | `state`              | [`STATE_INIT`] while being created, [`STATE_READY`] once published (Release) |
//! | 12     | 4    | `layout_version`     | [`LAYOUT_VERSION`] |
//! | 16     | 4    | `kind`               | [`Kind`] code |
//! | 20     | 4    | `abi_flags`          | [`abi_flags()`]: endianness, pointer width, padding unit |
//! | 24     | 8    | `total_size`         | file length in bytes |
//! | 32     | 8    | `control_offset`     | start of the kind's control block (= 128) |
//! | 40     | 8    | `control_size`       | its size |
//! | 48     | 8    | `schema_offset`      | start of the schema blob (0 if untyped) |
//! | 56     | 8    | `schema_size`        | its size |
//! | 64     | 8    | `data_offset`        | start of the data area (multiple of [`DATA_ALIGN`]) |
//! | 72     | 8    | `data_size`          | its size |
//! | 80     | 4    | `creator_pid`        | pid of the creating process |
//! | 84     | 4    | `reserved0`          | zero |
//! | 88     | 8    | `creator_start_time` | creator's start time (clock ticks since boot, Linux), 0 if unknown |
//! | 96     | 8    | `created_unix_ns`    | wall-clock creation time, for tools only |
//! | 104    | 24   | `reserved`           | zero |
//!
//! The header is written once, by the creator, before `state` becomes READY; after that it is
//! read-only by protocol. Openers copy it once and validate the copy ([`validate`]), and never
//! re-read sizes or offsets from shared memory afterwards, so a peer that scribbles over the
//! header later cannot make this process index out of bounds.

use std::mem::{offset_of, size_of};

/// The first eight bytes of every mmapipc file.
pub const MAGIC: [u8; 8] = *b"MMAPIPC\0";
/// The layout version this library writes and reads (2: owner words; the ring's attach words on
/// its producer and consumer lines).
pub const LAYOUT_VERSION: u32 = 2;
/// `state` while the creator is initialising the file. Zero never means ready.
pub const STATE_INIT: u32 = 0;
/// `state` once the file is fully initialised ("REDY").
pub const STATE_READY: u32 = 0x5245_4459;
/// Size of [`FileHeader`].
pub const HEADER_SIZE: usize = 128;
/// The data area starts on a multiple of this (one page on every supported platform).
pub const DATA_ALIGN: usize = 4096;
/// Hot atomics are padded to this many bytes, explicitly, so the file format does not depend on
/// the target's cache-line size (two 64-byte lines: adjacent-line prefetch on x86 pairs them).
pub const PAD: usize = 128;
/// Largest file this library creates (1 TiB): keeps every offset computation far from overflow.
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Smallest capacity (data-area bytes) of a ring or a queue.
pub const MIN_CAPACITY: usize = 64;
/// Largest capacity of a ring or a queue: 4 GiB - 8 (record lengths are 32-bit).
pub const MAX_CAPACITY: usize = (u32::MAX as usize) & !7;

/// The one capacity rule of rings and queues: the requested capacity must lie between
/// [`MIN_CAPACITY`] and [`MAX_CAPACITY`] bytes, and is rounded up to a multiple of 8.
///
/// ```
/// use mmapipc::layout::{checked_capacity, Kind};
/// assert_eq!(checked_capacity(Kind::Queue, 65).unwrap(), 72);
/// assert!(checked_capacity(Kind::Ring, 60).is_err());
/// ```
pub fn checked_capacity(kind: Kind, requested: usize) -> Result<usize, crate::OpenError> {
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&requested) {
        return Err(crate::OpenError::InvalidArgument(format!(
            "{kind} capacity must be between {MIN_CAPACITY} and {MAX_CAPACITY} bytes \
             (rounded up to a multiple of 8), got {requested}"
        )));
    }
    // No overflow: requested <= MAX_CAPACITY, a multiple of 8.
    Ok((requested + 7) & !7)
}

pub use crate::kind::Kind;

/// The ABI facts of this build, as stored in `abi_flags`:
/// bit 0 = little-endian, bits 8..16 = pointer width in bytes, bits 16..24 = [`PAD`] / 8.
pub const fn abi_flags() -> u32 {
    let little = if cfg!(target_endian = "little") { 1 } else { 0 };
    little | ((size_of::<usize>() as u32) << 8) | (((PAD / 8) as u32) << 16)
}

/// The common file header. `#[repr(C)]`, 128 bytes, see the module docs for the table.
///
/// `state` is accessed only atomically (through [`state_ptr`]); this plain struct is the
/// *copy* an opener validates, and the value a creator writes before publishing.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`STATE_INIT`] or [`STATE_READY`].
    pub state: u32,
    /// [`LAYOUT_VERSION`].
    pub layout_version: u32,
    /// [`Kind::code`].
    pub kind: u32,
    /// [`abi_flags()`].
    pub abi_flags: u32,
    /// File length.
    pub total_size: u64,
    /// Start of the control block.
    pub control_offset: u64,
    /// Size of the control block.
    pub control_size: u64,
    /// Start of the schema blob, 0 if none.
    pub schema_offset: u64,
    /// Size of the schema blob.
    pub schema_size: u64,
    /// Start of the data area.
    pub data_offset: u64,
    /// Size of the data area.
    pub data_size: u64,
    /// Creator's pid.
    pub creator_pid: u32,
    /// Zero.
    pub reserved0: u32,
    /// Creator's start time (Linux: clock ticks since boot), 0 if unknown.
    pub creator_start_time: u64,
    /// Creation time, nanoseconds since the Unix epoch (informational).
    pub created_unix_ns: u64,
    /// Zero.
    pub reserved: [u8; 24],
}

const _: () = assert!(size_of::<FileHeader>() == HEADER_SIZE);
const _: () = assert!(offset_of!(FileHeader, state) == 8);
const _: () = assert!(offset_of!(FileHeader, kind) == 16);
const _: () = assert!(offset_of!(FileHeader, total_size) == 24);
const _: () = assert!(offset_of!(FileHeader, data_offset) == 64);
const _: () = assert!(offset_of!(FileHeader, creator_pid) == 80);
const _: () = assert!(offset_of!(FileHeader, creator_start_time) == 88);
const _: () = assert!(offset_of!(FileHeader, reserved) == 104);

/// Offset of `state` (an `AtomicU32`) from the start of the file.
pub const STATE_OFFSET: usize = offset_of!(FileHeader, state);

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_up(n: u64, align: u64) -> Option<u64> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Where each part of a new file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Control block offset (always [`HEADER_SIZE`]).
    pub control_offset: u64,
    /// Control block size.
    pub control_size: u64,
    /// Schema blob offset (0 when there is none).
    pub schema_offset: u64,
    /// Schema blob size.
    pub schema_size: u64,
    /// Data area offset.
    pub data_offset: u64,
    /// Data area size.
    pub data_size: u64,
    /// File length.
    pub total_size: u64,
}

impl Plan {
    /// Lays out a file with the given part sizes; `None` if it would exceed [`MAX_FILE_SIZE`].
    pub fn new(control_size: u64, schema_size: u64, data_size: u64) -> Option<Plan> {
        let control_offset = HEADER_SIZE as u64;
        let control_end = control_offset.checked_add(control_size)?;
        let (schema_offset, schema_end) = if schema_size == 0 {
            (0, control_end)
        } else {
            let start = align_up(control_end, 8)?;
            (start, start.checked_add(schema_size)?)
        };
        let data_offset = align_up(schema_end, DATA_ALIGN as u64)?;
        let total_size = data_offset.checked_add(data_size)?;
        if total_size > MAX_FILE_SIZE {
            return None;
        }
        Some(Plan { control_offset, control_size, schema_offset, schema_size, data_offset, data_size, total_size })
    }

    /// The header a creator writes for this plan (with `state` still [`STATE_INIT`]).
    pub fn header(&self, kind: Kind, creator_pid: u32, creator_start_time: u64) -> FileHeader {
        let created_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        FileHeader {
            magic: MAGIC,
            state: STATE_INIT,
            layout_version: LAYOUT_VERSION,
            kind: kind.code(),
            abi_flags: abi_flags(),
            total_size: self.total_size,
            control_offset: self.control_offset,
            control_size: self.control_size,
            schema_offset: self.schema_offset,
            schema_size: self.schema_size,
            data_offset: self.data_offset,
            data_size: self.data_size,
            creator_pid,
            reserved0: 0,
            creator_start_time,
            created_unix_ns,
            reserved: [0; 24],
        }
    }
}

/// Why a header copy failed validation (mapped to an [`OpenError`](crate::OpenError) with the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// File shorter than needed.
    Truncated {
        /// Bytes present.
        actual: u64,
        /// Bytes needed.
        expected: u64,
    },
    /// Magic does not match.
    BadMagic,
    /// Magic is zero and state is not READY: the creator has not finished.
    NotReady,
    /// Version unsupported.
    UnsupportedVersion(u32),
    /// ABI differs.
    AbiMismatch(u32),
    /// Wrong kind.
    WrongKind(Kind),
    /// Inconsistent field.
    Corrupt(String),
}

/// Validates a header copy against the file length and the expected kind.
///
/// Checks, in order: length, magic (an all-zero magic means "not ready"), state, version, ABI,
/// kind, and every size and offset (in range, non-overlapping, aligned). Never panics.
pub fn validate(h: &FileHeader, file_len: u64, expected: Kind) -> Result<(), HeaderProblem> {
    validate_kind(h, file_len, Some(expected))
}

/// [`validate`] accepting any kind (for tools that inspect whatever a file holds).
pub fn validate_any(h: &FileHeader, file_len: u64) -> Result<(), HeaderProblem> {
    validate_kind(h, file_len, None)
}

fn validate_kind(h: &FileHeader, file_len: u64, expected: Option<Kind>) -> Result<(), HeaderProblem> {
    if file_len < HEADER_SIZE as u64 {
        return Err(HeaderProblem::Truncated { actual: file_len, expected: HEADER_SIZE as u64 });
    }
    if h.magic != MAGIC {
        return if h.magic == [0; 8] && h.state == STATE_INIT {
            Err(HeaderProblem::NotReady)
        } else {
            Err(HeaderProblem::BadMagic)
        };
    }
    match h.state {
        STATE_READY => {}
        STATE_INIT => return Err(HeaderProblem::NotReady),
        other => return Err(HeaderProblem::Corrupt(format!("unknown state {other:#x}"))),
    }
    if h.layout_version != LAYOUT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion(h.layout_version));
    }
    if h.abi_flags != abi_flags() {
        return Err(HeaderProblem::AbiMismatch(h.abi_flags));
    }
    let kind = Kind::from_code(h.kind);
    if let Some(expected) = expected {
        if kind != expected {
            return Err(HeaderProblem::WrongKind(kind));
        }
    } else if matches!(kind, Kind::Unknown(_)) {
        return Err(HeaderProblem::WrongKind(kind));
    }
    if h.total_size > MAX_FILE_SIZE {
        return Err(HeaderProblem::Corrupt(format!("total size {} exceeds the maximum {MAX_FILE_SIZE}", h.total_size)));
    }
    if file_len < h.total_size {
        return Err(HeaderProblem::Truncated { actual: file_len, expected: h.total_size });
    }
    if file_len > h.total_size {
        return Err(HeaderProblem::Corrupt(format!("file is {file_len} bytes but its header says {}", h.total_size)));
    }
    if h.control_offset != HEADER_SIZE as u64 {
        return Err(HeaderProblem::Corrupt(format!("control block at {} (expected {HEADER_SIZE})", h.control_offset)));
    }
    let control_end = h
        .control_offset
        .checked_add(h.control_size)
        .filter(|&e| e <= h.total_size)
        .ok_or_else(|| HeaderProblem::Corrupt("control block exceeds the file".into()))?;
    let mut schema_end = control_end;
    if (h.schema_offset == 0) != (h.schema_size == 0) {
        return Err(HeaderProblem::Corrupt(format!(
            "schema offset {} and size {} disagree about whether there is a schema",
            h.schema_offset, h.schema_size
        )));
    }
    if h.schema_offset != 0 {
        if h.schema_offset < control_end || h.schema_offset % 8 != 0 {
            return Err(HeaderProblem::Corrupt(format!(
                "schema offset {} overlaps the control block or is misaligned",
                h.schema_offset
            )));
        }
        schema_end = h
            .schema_offset
            .checked_add(h.schema_size)
            .filter(|&e| e <= h.total_size)
            .ok_or_else(|| HeaderProblem::Corrupt("schema exceeds the file".into()))?;
    }
    if h.data_offset % DATA_ALIGN as u64 != 0 || h.data_offset < schema_end {
        return Err(HeaderProblem::Corrupt(format!(
            "data offset {} is misaligned or overlaps the header",
            h.data_offset
        )));
    }
    match h.data_offset.checked_add(h.data_size) {
        Some(end) if end == h.total_size => Ok(()),
        _ => Err(HeaderProblem::Corrupt(format!(
            "data area {}+{} does not end at the file size {}",
            h.data_offset, h.data_size, h.total_size
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> (FileHeader, u64) {
        let plan = Plan::new(256, 0, 1000).unwrap();
        let mut h = plan.header(Kind::Ring, 1, 2);
        h.state = STATE_READY;
        (h, plan.total_size)
    }

    #[test]
    fn plan_places_data_on_a_page() {
        let p = Plan::new(256, 100, 10).unwrap();
        assert_eq!(p.control_offset, 128);
        assert_eq!(p.schema_offset, 384);
        assert_eq!(p.data_offset, 4096);
        assert_eq!(p.total_size, 4106);
        let p = Plan::new(4000, 0, 1).unwrap();
        assert_eq!(p.data_offset, 8192);
        assert!(Plan::new(0, 0, MAX_FILE_SIZE).is_none());
    }

    #[test]
    fn capacity_rule_at_its_boundaries() {
        for kind in [Kind::Ring, Kind::Queue] {
            for bad in [0, 1, 60, 63, MAX_CAPACITY + 1, usize::MAX] {
                let e = checked_capacity(kind, bad).unwrap_err().to_string();
                assert_eq!(
                    e,
                    format!(
                        "invalid argument: {kind} capacity must be between 64 and 4294967288 bytes \
                         (rounded up to a multiple of 8), got {bad}"
                    )
                );
            }
            assert_eq!(checked_capacity(kind, 64).unwrap(), 64);
            assert_eq!(checked_capacity(kind, 65).unwrap(), 72);
            assert_eq!(checked_capacity(kind, MAX_CAPACITY - 1).unwrap(), MAX_CAPACITY);
            assert_eq!(checked_capacity(kind, MAX_CAPACITY).unwrap(), MAX_CAPACITY);
        }
    }

    #[test]
    fn good_header_validates() {
        let (h, len) = good();
        assert_eq!(validate(&h, len, Kind::Ring), Ok(()));
    }

    #[test]
    fn each_field_is_checked() {
        let (h, len) = good();
        let bad = |f: &dyn Fn(&mut FileHeader)| {
            let mut c = h;
            f(&mut c);
            validate(&c, len, Kind::Ring)
        };
        assert_eq!(bad(&|h| h.magic[0] = b'X'), Err(HeaderProblem::BadMagic));
        assert_eq!(bad(&|h| h.state = STATE_INIT), Err(HeaderProblem::NotReady));
        assert!(matches!(bad(&|h| h.state = 7), Err(HeaderProblem::Corrupt(_))));
        assert_eq!(bad(&|h| h.layout_version = 9), Err(HeaderProblem::UnsupportedVersion(9)));
        assert_eq!(bad(&|h| h.abi_flags ^= 1), Err(HeaderProblem::AbiMismatch(abi_flags() ^ 1)));
        assert_eq!(bad(&|h| h.kind = 3), Err(HeaderProblem::WrongKind(Kind::Queue)));
        assert!(matches!(bad(&|h| h.total_size += 1), Err(HeaderProblem::Truncated { .. })));
        assert!(matches!(bad(&|h| h.total_size -= 1), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(bad(&|h| h.control_offset = 0), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(bad(&|h| h.control_size = u64::MAX), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(bad(&|h| h.control_size = 5000), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(bad(&|h| h.schema_offset = 8), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(
            bad(&|h| {
                h.schema_offset = 384;
                h.schema_size = u64::MAX
            }),
            Err(HeaderProblem::Corrupt(_))
        ));
        assert!(matches!(bad(&|h| h.data_offset = 100), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(bad(&|h| h.data_size = u64::MAX), Err(HeaderProblem::Corrupt(_))));
        assert!(matches!(bad(&|h| h.data_size -= 1), Err(HeaderProblem::Corrupt(_))));
    }

    #[test]
    fn zeroed_header_is_not_ready_and_short_file_truncated() {
        // SAFETY: FileHeader is plain old data; all-zero is a valid bit pattern.
        let h: FileHeader = unsafe { std::mem::zeroed() };
        assert_eq!(validate(&h, 4096, Kind::Ring), Err(HeaderProblem::NotReady));
        let (h, _) = good();
        assert!(matches!(validate(&h, 10, Kind::Ring), Err(HeaderProblem::Truncated { .. })));
    }
}
