//! `mmapipc._mmapipc`: the native half of the `mmapipc` Python package.
//!
//! A thin binding over the `mmapipc` crate: it converts arguments, maps errors (all in
//! [`errors`]), releases the GIL around blocking waits ([`blocking`]), borrows the buffers
//! callers pass in ([`borrow`]) and exports shared memory through the buffer protocol
//! ([`buffer`]). It holds no algorithm of its own. Every class is `frozen` and safe to share
//! between threads ([`sync`]).

mod aio;
mod blocking;
mod borrow;
mod buffer;
mod errors;
mod ffi;
mod handle;
mod queue;
mod readiness;
mod ring;
mod schema;
mod shm;
mod sync;
mod topic;
mod typed;
mod view_export;

use pyo3::prelude::*;

/// Runs the `mmapipc` command-line tool with `argv` (program name first); returns its exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.allow_threads(|| mmapipc_cli::main_with_args(argv))
}

/// The native module. Import the public names from `mmapipc`, not from here.
#[pymodule]
fn _mmapipc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    sync::install_fork_handler();
    m.add_class::<shm::PySharedMemory>()?;
    m.add_class::<buffer::SharedBuffer>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(typed::create_ring_with_schema, m)?)?;
    m.add_function(wrap_pyfunction!(typed::channel_schema, m)?)?;
    m.add_function(wrap_pyfunction!(typed::create_queue_with_schema, m)?)?;
    m.add_function(wrap_pyfunction!(typed::create_topic_with_schema, m)?)?;
    m.add_function(wrap_pyfunction!(schema::schema_canonical, m)?)?;
    m.add_function(wrap_pyfunction!(schema::schema_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(schema::schema_verify, m)?)?;
    m.add_function(wrap_pyfunction!(schema::schema_check_reader, m)?)?;
    m.add_class::<ring::PyRing>()?;
    m.add_class::<queue::PyQueue>()?;
    m.add_class::<topic::PyTopic>()?;
    m.add_class::<topic::PySubscriber>()?;
    aio::register(m)?;
    m.add("LAYOUT_VERSION", mmapipc::layout::LAYOUT_VERSION)?;
    Ok(())
}
