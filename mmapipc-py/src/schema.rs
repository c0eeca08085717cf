//! Message schemas for the Python package: the fingerprint, canonical text and compatibility
//! rules of `mmapipc::typed::schema`, called from `mmapipc.schema.Schema`. Python keeps the model
//! (fields, dtypes, encode/decode); every rule is the Rust crate's, so both languages give the
//! same verdict with the same message.

use mmapipc::Schema;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pyo3::import_exception!(mmapipc.errors, SchemaMismatch);

/// Parses a schema's JSON as given (the stored fingerprint is not checked here).
fn parse(schema_json: &str) -> PyResult<Schema> {
    Schema::from_json_unverified(schema_json).map_err(PyValueError::new_err)
}

/// The canonical text of the layout in `schema_json` (what the fingerprint hashes).
#[pyfunction]
pub fn schema_canonical(schema_json: &str) -> PyResult<String> {
    Ok(parse(schema_json)?.canonical())
}

/// The fingerprint computed from the layout in `schema_json` (`"0x"` and 16 hex digits).
#[pyfunction]
pub fn schema_fingerprint(schema_json: &str) -> PyResult<String> {
    Ok(parse(schema_json)?.computed_fingerprint())
}

/// Raises `ValueError` unless `schema_json` is a schema whose stored fingerprint matches its
/// layout (the check every schema read from a file or a channel header passes).
#[pyfunction]
pub fn schema_verify(schema_json: &str) -> PyResult<()> {
    Schema::from_json(schema_json).map(drop).map_err(PyValueError::new_err)
}

/// Raises `mmapipc.SchemaMismatch` (message: Rust's `Mismatch` text) unless a reader of
/// `reader_json` may read a channel carrying `channel_json`.
#[pyfunction]
pub fn schema_check_reader(channel_json: &str, reader_json: &str) -> PyResult<()> {
    let channel = parse(channel_json)?;
    let reader = parse(reader_json)?;
    channel.check_reader(&reader).map_err(|m| SchemaMismatch::new_err(m.to_string()))
}
