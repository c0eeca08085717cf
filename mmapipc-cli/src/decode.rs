//! Decoding a typed channel's message to JSON from its schema alone (no generated code).
//!
//! The archived root struct sits at the **end** of the message (rkyv writes dependencies first);
//! its fields are read at the schema's offsets. `Vec` fields are a relative pointer (i32, from the
//! field's own address) and a u32 length; `String` fields are rkyv's 8-byte repr: inline (up to 8
//! bytes, `0xff`-terminated) unless the first byte's top bits are `10`, then out of line (length
//! word, then an i32 offset relative to the start of the repr). Every offset is bounds-checked
//! against the message; a bad one is an error, never a panic.

use serde_json::{json, Map, Number, Value};

use mmapipc::schema::{Field, Scalar, Schema, TypeDesc};

/// Longest `Vec` or array shown element by element; longer ones are summarised as
/// `{"len": n, "head": [first elements]}`.
const MAX_ELEMS: usize = 64;
/// Elements shown of a summarised `Vec` or array.
const HEAD_ELEMS: usize = 8;

/// Decodes `msg` (one whole message) with `schema` into a JSON object.
pub fn decode(schema: &Schema, msg: &[u8]) -> Result<Value, String> {
    let size = schema.size as usize;
    let root = msg
        .len()
        .checked_sub(size)
        .ok_or_else(|| format!("message of {} bytes is shorter than its {size}-byte root", msg.len()))?;
    fields(&schema.fields, msg, root, size)
}

fn fields(fs: &[Field], msg: &[u8], base: usize, size: usize) -> Result<Value, String> {
    let mut m = Map::new();
    for f in fs {
        let end = (f.offset as usize).checked_add(f.size as usize).ok_or("field offset overflows")?;
        if end > size {
            return Err(format!("field {} ends at {end}, past its struct's {size} bytes", f.name));
        }
        let v = value(&f.ty, msg, base + f.offset as usize, f.size as usize).map_err(|e| format!("{}: {e}", f.name))?;
        m.insert(f.name.clone(), v);
    }
    Ok(Value::Object(m))
}

fn bytes_at(msg: &[u8], at: usize, n: usize) -> Result<&[u8], String> {
    at.checked_add(n)
        .and_then(|end| msg.get(at..end))
        .ok_or_else(|| format!("bytes {at}..{} lie outside the {}-byte message", at.saturating_add(n), msg.len()))
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, String> {
    let b = bytes_at(msg, at, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Resolves an i32 relative pointer stored at `at` (relative to `base`) to `n` bytes.
fn rel(msg: &[u8], at: usize, base: usize, n: usize) -> Result<usize, String> {
    let off = u32_at(msg, at)? as i32 as i64;
    let start = base as i64 + off;
    if start < 0 || start as u64 + n as u64 > msg.len() as u64 {
        return Err(format!("relative pointer at byte {at} points outside the {}-byte message", msg.len()));
    }
    Ok(start as usize)
}

fn scalar(s: Scalar, b: &[u8]) -> Value {
    let mut a = [0u8; 8];
    a[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    let u = u64::from_le_bytes(a);
    match s {
        Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 => Value::Number(u.into()),
        Scalar::I8 => Value::Number((u as u8 as i8 as i64).into()),
        Scalar::I16 => Value::Number((u as u16 as i16 as i64).into()),
        Scalar::I32 => Value::Number((u as u32 as i32 as i64).into()),
        Scalar::I64 => Value::Number((u as i64).into()),
        Scalar::F32 => float(f64::from(f32::from_bits(u as u32))),
        Scalar::F64 => float(f64::from_bits(u)),
        Scalar::Bool => Value::Bool(u & 0xff != 0),
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(f.to_string()))
}

fn elem_size(t: &TypeDesc) -> Option<usize> {
    match t {
        TypeDesc::Scalar { scalar } => Some(scalar.size() as usize),
        TypeDesc::Array { elem, len } => elem_size(elem).map(|s| s * *len as usize),
        TypeDesc::Struct { size, .. } => Some(*size as usize),
        _ => None,
    }
}

fn value(t: &TypeDesc, msg: &[u8], at: usize, size: usize) -> Result<Value, String> {
    bytes_at(msg, at, size)?;
    match t {
        TypeDesc::Scalar { scalar: s } => Ok(scalar(*s, bytes_at(msg, at, s.size() as usize)?)),
        TypeDesc::Array { elem, len } => {
            // u8 arrays (symbols, names) read best as text when they are printable ASCII.
            if let TypeDesc::Scalar { scalar: Scalar::U8 } = **elem {
                let b = bytes_at(msg, at, *len as usize)?;
                let trimmed: &[u8] = match b.iter().position(|&c| c == 0) {
                    Some(n) if b[n..].iter().all(|&c| c == 0) => &b[..n],
                    _ => b,
                };
                if trimmed.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                    return Ok(Value::String(String::from_utf8_lossy(trimmed).into_owned()));
                }
            }
            let es = elem_size(elem).filter(|&s| s > 0).ok_or("array of unsized elements")?;
            let n = if *len as usize > MAX_ELEMS { HEAD_ELEMS } else { *len as usize };
            let items: Result<Vec<Value>, String> = (0..n).map(|i| value(elem, msg, at + i * es, es)).collect();
            if *len as usize > MAX_ELEMS {
                return Ok(json!({"len": len, "head": items?}));
            }
            Ok(Value::Array(items?))
        }
        TypeDesc::Vec { elem } => {
            let count = u32_at(msg, at + 4)? as usize;
            let es = elem_size(elem).filter(|&s| s > 0).ok_or("Vec of unsized elements")?;
            let start = rel(msg, at, at, es.checked_mul(count).ok_or("Vec length overflows")?)?;
            if count > MAX_ELEMS {
                let head: Result<Vec<Value>, String> =
                    (0..HEAD_ELEMS).map(|i| value(elem, msg, start + i * es, es)).collect();
                return Ok(json!({"len": count, "head": head?}));
            }
            let items: Result<Vec<Value>, String> = (0..count).map(|i| value(elem, msg, start + i * es, es)).collect();
            Ok(Value::Array(items?))
        }
        TypeDesc::String => {
            let raw = bytes_at(msg, at, 8)?;
            let text = if raw[0] & 0xC0 != 0x80 {
                let end = raw.iter().position(|&b| b == 0xff).unwrap_or(8);
                raw[..end].to_vec()
            } else {
                let enc = u32_at(msg, at)?;
                let len = ((enc & 0x3F) | ((enc & !0xFF) >> 2)) as usize;
                let start = rel(msg, at + 4, at, len)?;
                bytes_at(msg, start, len)?.to_vec()
            };
            String::from_utf8(text).map(Value::String).map_err(|_| "invalid UTF-8".to_string())
        }
        TypeDesc::Struct { fields: fs, size: s, .. } => fields(fs, msg, at, *s as usize),
    }
}

/// `v` (from [`decode`]) as JSON text with the keys in schema order (a `serde_json::Map` sorts
/// them), so a tick prints as `{"timestamp_ns":..,"symbol":..,"price":..}`.
pub fn to_ordered_string(schema: &Schema, v: &Value) -> String {
    ordered(&schema.fields, v)
}

fn ordered(fs: &[Field], v: &Value) -> String {
    let Value::Object(m) = v else { return v.to_string() };
    let mut out = String::from("{");
    for (i, f) in fs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(f.name.clone()).to_string());
        out.push(':');
        let fv = m.get(&f.name).unwrap_or(&Value::Null);
        match &f.ty {
            TypeDesc::Struct { fields, .. } => out.push_str(&ordered(fields, fv)),
            _ => out.push_str(&fv.to_string()),
        }
    }
    out.push('}');
    out
}

/// An untyped message as JSON: its length and a preview (UTF-8 text if it is printable, else hex).
pub fn preview(msg: &[u8]) -> Value {
    const MAX: usize = 64;
    let shown = &msg[..msg.len().min(MAX)];
    let mut m = Map::new();
    m.insert("len".into(), Value::Number(msg.len().into()));
    match std::str::from_utf8(shown) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
            m.insert("utf8".into(), Value::String(s.to_string()));
        }
        _ => {
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            m.insert("hex".into(), Value::String(hex));
        }
    }
    if msg.len() > MAX {
        m.insert("truncated".into(), Value::Bool(true));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example_types::{Tick, VideoFrame};
    use mmapipc::schema::IpcMessage;

    #[repr(C, align(8))]
    struct Slot([u8; 4096]);

    #[test]
    fn decodes_example_types_and_rejects_bad_offsets() {
        let mut slot = Slot([0; 4096]);
        let t = Tick { timestamp_ns: 7, symbol: *b"AAPL\0\0\0\0", price: 189.5, size: 10, side: 1 };
        let n = mmapipc::typed::serialize_into(&t, &mut slot.0).unwrap();
        let v = decode(&Tick::schema(), &slot.0[..n]).unwrap();
        assert_eq!(v["timestamp_ns"], 7);
        assert_eq!(v["symbol"], "AAPL");
        assert_eq!(v["price"], 189.5);
        assert_eq!(v["side"], 1);
        let text = to_ordered_string(&Tick::schema(), &v);
        assert!(text.starts_with(r#"{"timestamp_ns":7,"symbol":"AAPL","price":189.5"#), "{text}");
        let f =
            VideoFrame { seq: 3, timestamp_ns: 4, width: 2, height: 1, stride: 6, pixel_format: 1, pixels: vec![9; 6] };
        let n = mmapipc::typed::serialize_into(&f, &mut slot.0).unwrap();
        let v = decode(&VideoFrame::schema(), &slot.0[..n]).unwrap();
        assert_eq!(v["pixels"], serde_json::json!([9, 9, 9, 9, 9, 9]));
        // Point the Vec far outside the message: an error, not a panic.
        let sc = VideoFrame::schema();
        let at = n - sc.size as usize + sc.fields.iter().find(|f| f.name == "pixels").unwrap().offset as usize;
        slot.0[at..at + 4].copy_from_slice(&(-100_000i32).to_le_bytes());
        assert!(decode(&sc, &slot.0[..n]).is_err());
        assert!(decode(&sc, &slot.0[..3]).is_err());
    }

    #[test]
    fn decodes_strings_inline_and_out_of_line() {
        #[derive(mmapipc::rkyv::Archive, mmapipc::rkyv::Serialize, mmapipc::IpcMessage)]
        #[rkyv(crate = mmapipc::rkyv)]
        #[ipc(name = "test.Named", version = 1)]
        struct Named {
            id: u32,
            name: String,
        }
        let mut slot = Slot([0; 4096]);
        for s in ["abc", "a considerably longer name than eight bytes"] {
            let n = mmapipc::typed::serialize_into(&Named { id: 5, name: s.into() }, &mut slot.0).unwrap();
            let v = decode(&Named::schema(), &slot.0[..n]).unwrap();
            assert_eq!(v["name"], s);
            assert_eq!(v["id"], 5);
        }
        assert_eq!(preview(b"hi")["utf8"], "hi");
        assert_eq!(preview(&[0, 1])["hex"], "0001");
    }
}
