//! `schema export`: a channel file's schema, or a built-in example type's, as JSON.

use std::io::Write;

use mmapipc::region;

use crate::file::examine;
use crate::text::io;

pub(crate) fn schema_export(out: &mut impl Write, target: &str) -> Result<i32, String> {
    let path = region::resolve_path(target);
    if path.exists() {
        let r = examine(&path);
        return match (r.header, r.schema) {
            (Err(e), _) => Err(e.to_string()),
            (Ok(_), None) => Err(format!("{}: untyped channel, it has no schema", path.display())),
            (Ok(_), Some(Err(e))) => Err(format!("{}: {e}", path.display())),
            (Ok(_), Some(Ok(s))) => {
                writeln!(out, "{}", s.to_json()).map_err(io)?;
                Ok(0)
            }
        };
    }
    let (name, version) = match target.split_once('@') {
        Some((n, v)) => (n, Some(v.parse::<u32>().map_err(|_| format!("bad version in {target}"))?)),
        None => (target, None),
    };
    let all = crate::example_types::all_schemas();
    let chosen = all
        .into_iter()
        .filter(|s| s.name == name && version.is_none_or(|v| v == s.version))
        .max_by_key(|s| s.version)
        .ok_or_else(|| {
            format!("{target}: neither a file nor a known example type (market.Tick, video.Frame, ml.Tensor)")
        })?;
    writeln!(out, "{}", chosen.to_json()).map_err(io)?;
    Ok(0)
}
