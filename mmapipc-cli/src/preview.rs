//! Untyped messages for `mmapipc tail`: a short preview. Typed messages are decoded by the core
//! ([`mmapipc::typed::decode`], FORMAT.md "Typed payload").

use serde_json::{Map, Value};

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

    #[test]
    fn previews_text_and_bytes() {
        assert_eq!(preview(b"hi")["utf8"], "hi");
        assert_eq!(preview(&[0, 1])["hex"], "0001");
        let long = vec![b'a'; 100];
        assert_eq!(preview(&long)["truncated"], true);
        assert_eq!(preview(&long)["len"], 100);
    }
}
