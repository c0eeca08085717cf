//! Message schemas: the archived layout of a typed message, as data.
//!
//! A [`Schema`] names a message type, gives its version, and lists every field of its *archived*
//! (rkyv) root struct with type, offset and size. `#[derive(IpcMessage)]` computes it at compile
//! time from the archived type (`offset_of!`, `size_of`, `align_of`), never by hand. A typed
//! channel stores its schema (as JSON) in the file, so any process (Rust, or Python without
//! generated code) can check or decode what a channel carries.
//!
//! # Compatibility rules ([`Schema::check_reader`])
//!
//! * Names must be equal.
//! * Same version: the layouts must be identical (same fingerprint). A layout change without a
//!   version bump is refused, and the checked-in `schemas/` files catch it before release.
//! * Channel version newer than the reader's: allowed when the newer root struct only **appends**
//!   fields: every reader field exists in the channel at the same offset with the same type and
//!   size, and the archive format (endianness, alignment, pointer width) is the same. The reader
//!   sees the prefix it knows.
//! * Channel version older than the reader's: refused (the reader expects fields that are not there).
//!
//! The fingerprint is FNV-1a (64-bit) over a canonical text of the layout (format flags, root size
//! and alignment, every field's name, type, offset and size, nested structs included); it does not
//! cover the name or version, so it identifies a layout.
//!
//! These rules, the canonical text and the fingerprint exist only here: the Python package calls
//! them through `mmapipc._mmapipc` (`schema_check_reader`, `schema_fingerprint`, ...), and
//! `mmapipc/tests/fixtures/schema_compat.json` holds the verdicts both languages must give.
//!
//! Specified in FORMAT.md, "Schema blob" (the JSON, canonical text and fingerprint) and "Typed
//! payload" (the archived bytes a schema describes).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The archive format the layout was computed under (rkyv's format features).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    /// `"little"` or `"big"`.
    pub endian: String,
    /// Alignment of an archived `u64` (1 with rkyv's `unaligned` feature, else 8).
    pub primitive_align: u32,
    /// Size of rkyv's archived `usize`/relative pointers in bytes.
    pub pointer_width: u32,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-endian, primitive_align {}, pointer_width {}",
            self.endian, self.primitive_align, self.pointer_width
        )
    }
}

impl Format {
    /// The format this build of rkyv writes.
    pub fn current() -> Format {
        let probe = rkyv::primitive::ArchivedU32::from_native(1);
        // SAFETY: ArchivedU32 is a 4-byte plain integer wrapper; viewing it as bytes is sound.
        let bytes: [u8; 4] = unsafe { std::mem::transmute(probe) };
        Format {
            endian: if bytes[0] == 1 { "little".into() } else { "big".into() },
            primitive_align: std::mem::align_of::<rkyv::primitive::ArchivedU64>() as u32,
            pointer_width: std::mem::size_of::<rkyv::primitive::ArchivedUsize>() as u32,
        }
    }
}

/// A primitive archived scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Scalar {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Bool,
}

impl Scalar {
    /// Size in bytes.
    pub fn size(self) -> u32 {
        match self {
            Scalar::U8 | Scalar::I8 | Scalar::Bool => 1,
            Scalar::U16 | Scalar::I16 => 2,
            Scalar::U32 | Scalar::I32 | Scalar::F32 => 4,
            Scalar::U64 | Scalar::I64 | Scalar::F64 => 8,
        }
    }

    /// The Rust name (`"u64"`, `"f32"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Scalar::U8 => "u8",
            Scalar::U16 => "u16",
            Scalar::U32 => "u32",
            Scalar::U64 => "u64",
            Scalar::I8 => "i8",
            Scalar::I16 => "i16",
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::Bool => "bool",
        }
    }
}

/// The type of a field, as archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeDesc {
    /// A primitive.
    Scalar {
        /// Which one.
        scalar: Scalar,
    },
    /// A fixed-size array `[elem; len]`, stored inline.
    Array {
        /// Element type.
        elem: Box<TypeDesc>,
        /// Number of elements.
        len: u32,
    },
    /// An rkyv `ArchivedVec<elem>`: a relative pointer (signed offset from the field's own
    /// address, `pointer_width` bytes) followed by a length (`pointer_width` bytes); the elements
    /// live elsewhere in the same message.
    Vec {
        /// Element type (a scalar).
        elem: Box<TypeDesc>,
    },
    /// An rkyv `ArchivedString` (UTF-8; short strings inline, longer ones out of line).
    String,
    /// A nested `#[derive(IpcMessage)]` struct, stored inline.
    Struct {
        /// The nested type's schema name.
        name: String,
        /// Its archived size.
        size: u32,
        /// Its archived alignment.
        align: u32,
        /// Its fields.
        fields: Vec<Field>,
    },
}

impl fmt::Display for TypeDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeDesc::Scalar { scalar } => f.write_str(scalar.name()),
            TypeDesc::Array { elem, len } => write!(f, "[{elem}; {len}]"),
            TypeDesc::Vec { elem } => write!(f, "Vec<{elem}>"),
            TypeDesc::String => f.write_str("String"),
            TypeDesc::Struct { name, .. } => f.write_str(name),
        }
    }
}

/// One field of an archived struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Archived type.
    #[serde(rename = "type")]
    pub ty: TypeDesc,
    /// Byte offset within the archived struct.
    pub offset: u32,
    /// Archived size in bytes.
    pub size: u32,
}

/// The schema of a message type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Message name, e.g. `"market.Tick"`.
    pub name: String,
    /// Message version (bumped on every layout change).
    pub version: u32,
    /// Archived root size.
    pub size: u32,
    /// Archived root alignment.
    pub align: u32,
    /// True when every field is stored inline (no `Vec`/`String`): every message is exactly
    /// `size` bytes, and a batch of them can be viewed as one array of records.
    pub fixed_size: bool,
    /// The archive format.
    pub format: Format,
    /// Fingerprint of the layout, `"0x"` + 16 hex digits.
    pub fingerprint: String,
    /// Root fields in offset order.
    pub fields: Vec<Field>,
}

/// Why a reader may not use a channel's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The channel's schema (name, version, fingerprint).
    pub channel: String,
    /// The reader's schema (name, version, fingerprint).
    pub reader: String,
    /// Field-by-field differences and rule violations, one sentence each.
    pub details: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schema mismatch: channel has {}, reader expects {}", self.channel, self.reader)?;
        for d in &self.details {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Mismatch {}

impl Schema {
    /// Builds a schema and computes its fingerprint and `fixed_size`.
    pub fn new(name: &str, version: u32, size: usize, align: usize, mut fields: Vec<Field>) -> Schema {
        fields.sort_by_key(|f| f.offset);
        let fixed_size = fields.iter().all(|f| is_inline(&f.ty));
        let mut s = Schema {
            name: name.to_string(),
            version,
            size: size as u32,
            align: align as u32,
            fixed_size,
            format: Format::current(),
            fingerprint: String::new(),
            fields,
        };
        s.fingerprint = format!("{:#018x}", fnv1a(s.canonical().as_bytes()));
        s
    }

    /// `name v<version> (<fingerprint>)`.
    pub fn label(&self) -> String {
        format!("{} v{} ({})", self.name, self.version, self.fingerprint)
    }

    /// The canonical text the fingerprint is computed over.
    pub fn canonical(&self) -> String {
        let mut out = format!(
            "mmapipc-schema-1;endian={};palign={};pw={};size={};align={};",
            self.format.endian, self.format.primitive_align, self.format.pointer_width, self.size, self.align
        );
        canon_fields(&self.fields, &mut out);
        out
    }

    /// Recomputes the fingerprint from the layout (to check a schema read from a file).
    pub fn computed_fingerprint(&self) -> String {
        format!("{:#018x}", fnv1a(self.canonical().as_bytes()))
    }

    /// Serialises to pretty JSON (the format of `schemas/*.json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses JSON and checks the fingerprint matches the layout.
    pub fn from_json(text: &str) -> Result<Schema, String> {
        let s = Schema::from_json_unverified(text)?;
        s.verify_fingerprint()?;
        Ok(s)
    }

    /// Parses JSON without checking the stored fingerprint against the layout (for comparing
    /// two schemas as given: [`Schema::check_reader`] reports differing fingerprints itself).
    pub fn from_json_unverified(text: &str) -> Result<Schema, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid schema JSON: {e}"))
    }

    /// Checks that the stored fingerprint is the one computed from the layout.
    pub fn verify_fingerprint(&self) -> Result<(), String> {
        let fp = self.computed_fingerprint();
        if fp == self.fingerprint {
            Ok(())
        } else {
            Err(format!(
                "schema {} v{}: fingerprint {} does not match its layout ({fp})",
                self.name, self.version, self.fingerprint
            ))
        }
    }

    /// Checks that a reader of `reader` may read a channel carrying `self` (see module docs).
    ///
    /// The details, in order: name, archive format, version; then the fields the reader knows
    /// (missing or different in the channel; inside a nested struct of the same name, the nested
    /// fields that differ); then, at the same version only, the channel's fields the reader does
    /// not know. A size/align line appears only when no field differs, and a fingerprint line only
    /// when nothing else does.
    pub fn check_reader(&self, reader: &Schema) -> Result<(), Mismatch> {
        let mut details = Vec::new();
        if self.name != reader.name {
            details.push(format!("name: {} (channel) vs {} (reader)", self.name, reader.name));
        }
        if self.format != reader.format {
            details.push(format!("archive format: {} (channel) vs {} (reader)", self.format, reader.format));
        }
        if self.version < reader.version {
            details.push(format!(
                "version: channel has v{}, reader needs v{} or newer; an older channel cannot be read by a newer reader",
                self.version, reader.version
            ));
        }
        let mut diffs = FieldDiffs::default();
        diffs.compare("", &self.fields, &reader.fields);
        if self.version == reader.version {
            let fields_differ = !diffs.reader.is_empty() || !diffs.channel_only.is_empty();
            details.extend(diffs.reader);
            details.extend(diffs.channel_only);
            if !fields_differ && (self.size != reader.size || self.align != reader.align) {
                details.push(format!(
                    "size/align: {}/{} (channel) vs {}/{} (reader)",
                    self.size, self.align, reader.size, reader.align
                ));
            }
            if details.is_empty() && self.fingerprint != reader.fingerprint {
                details.push(format!(
                    "fingerprint: {} (channel) vs {} (reader) although every field matches (fields listed in \
                     another order, or a fingerprint not computed from its layout)",
                    self.fingerprint, reader.fingerprint
                ));
            }
        } else if self.version > reader.version {
            // Append-only evolution: the reader's fields must be a prefix of the channel's.
            details.extend(diffs.reader);
            if self.size < reader.size || self.align < reader.align {
                details.push(format!(
                    "size/align: {}/{} (channel) is smaller than {}/{} (reader)",
                    self.size, self.align, reader.size, reader.align
                ));
            }
        }
        if details.is_empty() {
            Ok(())
        } else {
            Err(Mismatch { channel: self.label(), reader: reader.label(), details })
        }
    }
}

/// The differences between a channel's fields and a reader's, one sentence each.
#[derive(Default)]
struct FieldDiffs {
    /// Reader fields missing or different in the channel (always refused).
    reader: Vec<String>,
    /// Root fields only the channel has (refused at the same version, appended otherwise).
    channel_only: Vec<String>,
}

impl FieldDiffs {
    /// Compares the fields of one struct; `prefix` is the path of a nested struct (`"pos."`).
    fn compare(&mut self, prefix: &str, channel: &[Field], reader: &[Field]) {
        for r in reader {
            let path = format!("{prefix}{}", r.name);
            match channel.iter().find(|c| c.name == r.name) {
                None => {
                    self.reader.push(format!("field {path}: missing in channel (reader: {} at {})", r.ty, r.offset))
                }
                Some(c) if c == r => {}
                Some(c) => {
                    let before = self.reader.len();
                    if let (
                        TypeDesc::Struct { name: cn, size: cs, align: ca, fields: cf },
                        TypeDesc::Struct { name: rn, size: rs, align: ra, fields: rf },
                    ) = (&c.ty, &r.ty)
                    {
                        if cn == rn && c.offset == r.offset && c.size == r.size {
                            // The same nested type at the same place: say what changed inside it.
                            if (cs, ca) != (rs, ra) {
                                self.reader.push(format!(
                                    "field {path}: {cn} size/align {cs}/{ca} (channel) vs {rs}/{ra} (reader)"
                                ));
                            }
                            let mut inner = FieldDiffs::default();
                            inner.compare(&format!("{path}."), cf, rf);
                            self.reader.extend(inner.reader);
                            self.reader.extend(inner.channel_only);
                        }
                    }
                    if self.reader.len() == before {
                        self.reader.push(format!(
                            "field {path}: {} at {} size {} (channel) vs {} at {} size {} (reader)",
                            c.ty, c.offset, c.size, r.ty, r.offset, r.size
                        ));
                    }
                }
            }
        }
        for c in channel {
            if !reader.iter().any(|r| r.name == c.name) {
                self.channel_only.push(format!("field {prefix}{}: {} at {} (only in channel)", c.name, c.ty, c.offset));
            }
        }
    }
}

fn is_inline(ty: &TypeDesc) -> bool {
    match ty {
        TypeDesc::Scalar { .. } => true,
        TypeDesc::Array { elem, .. } => is_inline(elem),
        TypeDesc::Vec { .. } | TypeDesc::String => false,
        TypeDesc::Struct { fields, .. } => fields.iter().all(|f| is_inline(&f.ty)),
    }
}

fn canon_fields(fields: &[Field], out: &mut String) {
    for f in fields {
        out.push_str(&format!("{}:", f.name));
        canon_type(&f.ty, out);
        out.push_str(&format!("@{}/{};", f.offset, f.size));
    }
}

fn canon_type(ty: &TypeDesc, out: &mut String) {
    match ty {
        TypeDesc::Scalar { scalar } => out.push_str(scalar.name()),
        TypeDesc::Array { elem, len } => {
            out.push('[');
            canon_type(elem, out);
            out.push_str(&format!(";{len}]"));
        }
        TypeDesc::Vec { elem } => {
            out.push_str("Vec<");
            canon_type(elem, out);
            out.push('>');
        }
        TypeDesc::String => out.push_str("String"),
        TypeDesc::Struct { name, size, align, fields } => {
            out.push_str(&format!("{name}{{{size},{align};"));
            canon_fields(fields, out);
            out.push('}');
        }
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, s: Scalar, offset: u32) -> Field {
        Field { name: name.into(), ty: TypeDesc::Scalar { scalar: s }, offset, size: s.size() }
    }

    fn tick(version: u32, extra: bool) -> Schema {
        let mut fields = vec![f("ts", Scalar::U64, 0), f("price", Scalar::F64, 8)];
        if extra {
            fields.push(f("venue", Scalar::U32, 16));
        }
        Schema::new("t.Tick", version, if extra { 24 } else { 16 }, 8, fields)
    }

    #[test]
    fn fingerprint_is_stable_and_layout_sensitive() {
        assert_eq!(tick(1, false).fingerprint, tick(2, false).fingerprint);
        assert_ne!(tick(1, false).fingerprint, tick(1, true).fingerprint);
        let json = tick(1, false).to_json();
        assert_eq!(Schema::from_json(&json).unwrap(), tick(1, false));
        let tampered = json.replace("\"offset\": 8", "\"offset\": 4");
        assert_eq!(
            Schema::from_json(&tampered).unwrap_err(),
            format!(
                "schema t.Tick v1: fingerprint {} does not match its layout ({})",
                tick(1, false).fingerprint,
                Schema::from_json_unverified(&tampered).unwrap().computed_fingerprint()
            )
        );
    }

    #[test]
    fn a_stale_fingerprint_is_compared_not_trusted() {
        let v1 = tick(1, false);
        let stale = Schema::from_json_unverified(&v1.to_json().replace(&v1.fingerprint, "0x0000000000000000")).unwrap();
        assert_eq!(stale.check_reader(&stale), Ok(()));
        let err = stale.check_reader(&v1).unwrap_err().to_string();
        assert!(err.contains("fingerprint: 0x0000000000000000 (channel) vs"), "{err}");
    }

    #[test]
    fn evolution_rules() {
        let v1 = tick(1, false);
        let v2 = tick(2, true);
        assert_eq!(v1.check_reader(&v1), Ok(()));
        assert_eq!(v2.check_reader(&v1), Ok(()), "v1 reader on v2 channel (appended field)");
        let err = v1.check_reader(&v2).unwrap_err();
        assert!(err.to_string().contains("older channel"), "{err}");
        // Same version, different layout: refused with a field diff.
        let mut changed = tick(1, false);
        changed.fields[1] = f("price", Scalar::F32, 8);
        let changed = Schema::new("t.Tick", 1, 16, 8, changed.fields);
        let err = v1.check_reader(&changed).unwrap_err();
        assert!(
            err.to_string().contains("field price: f64 at 8 size 8 (channel) vs f32 at 8 size 4 (reader)"),
            "{err}"
        );
        // Newer version that changed a field instead of appending: refused.
        let bad_v2 = Schema::new("t.Tick", 2, 16, 8, vec![f("ts", Scalar::U64, 0), f("price", Scalar::I64, 8)]);
        assert!(bad_v2.check_reader(&v1).is_err());
        // Different name.
        let other = Schema::new("t.Other", 1, 16, 8, v1.fields.clone());
        assert!(other.check_reader(&v1).unwrap_err().to_string().contains("name"));
    }
}
