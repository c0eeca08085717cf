//! Typed-channel support for the Python package: creating a channel with a schema in its
//! header and reading a channel's schema. The typed API itself (`mmapipc.typed`) is Python over
//! the byte channels and `mmapipc.schema`.

use std::path::PathBuf;

use mmapipc::region::{self, CreateOptions, OpenOptions};
use mmapipc::Kind;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::open_error;

/// Creates a ring whose header holds `schema_json` (the channel's message schema), then closes
/// it; open it with `SharedMemoryRing.open`.
#[pyfunction]
#[pyo3(signature = (path, capacity, schema_json, *, mode = 0o600))]
pub fn create_ring_with_schema(path: PathBuf, capacity: usize, schema_json: &str, mode: u32) -> PyResult<String> {
    mmapipc::Schema::from_json(schema_json).map_err(PyValueError::new_err)?;
    let ring = mmapipc::Ring::create_with_schema(&path, capacity, &CreateOptions { mode }, schema_json.as_bytes())
        .map_err(open_error)?;
    Ok(ring.path().map(|p| p.display().to_string()).unwrap_or_default())
}

/// Creates a queue whose header holds `schema_json`, then closes it; open it with
/// `SharedMemoryQueue.open`.
#[pyfunction]
#[pyo3(signature = (path, capacity, schema_json, *, mode = 0o600))]
pub fn create_queue_with_schema(path: PathBuf, capacity: usize, schema_json: &str, mode: u32) -> PyResult<String> {
    mmapipc::Schema::from_json(schema_json).map_err(PyValueError::new_err)?;
    let opts = mmapipc::QueueOptions { mode, ..Default::default() };
    let queue =
        mmapipc::Queue::create_with_schema(&path, capacity, &opts, schema_json.as_bytes()).map_err(open_error)?;
    Ok(queue.path().display().to_string())
}

/// The schema JSON stored in a channel file (`None` for an untyped channel). `kind` is
/// `"ring"` or `"queue"`.
#[pyfunction]
#[pyo3(signature = (path, kind, *, allow_foreign_owner = false))]
pub fn channel_schema(path: PathBuf, kind: &str, allow_foreign_owner: bool) -> PyResult<Option<String>> {
    let kind = match kind {
        "ring" => Kind::Ring,
        "queue" => Kind::Queue,
        other => return Err(PyValueError::new_err(format!("kind must be 'ring' or 'queue', not {other:?}"))),
    };
    let path = region::resolve_path(path);
    let (region, header) = region::open_file(&path, kind, &OpenOptions { allow_foreign_owner }).map_err(open_error)?;
    if header.schema_size == 0 {
        return Ok(None);
    }
    String::from_utf8(region::schema_blob(&region, &header))
        .map(Some)
        .map_err(|_| PyValueError::new_err(format!("{}: schema is not UTF-8", path.display())))
}
