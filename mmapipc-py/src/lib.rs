//! `mmapipc._mmapipc`: the native half of the `mmapipc` Python package.
//!
//! A thin binding over the `mmapipc` crate: it converts arguments, maps errors (all in
//! [`errors`]), releases the GIL around blocking waits, and exports shared memory through the
//! buffer protocol ([`buffer`]). It holds no algorithm of its own.

#[allow(dead_code)] // used by the ring and queue bindings
mod blocking;
mod buffer;
mod errors;
mod queue;
mod shm;

use pyo3::prelude::*;

/// The native module. Import the public names from `mmapipc`, not from here.
#[pymodule]
fn _mmapipc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<shm::PySharedMemory>()?;
    m.add_class::<buffer::SharedBuffer>()?;
    m.add_class::<queue::PyQueue>()?;
    m.add("LAYOUT_VERSION", mmapipc::layout::LAYOUT_VERSION)?;
    Ok(())
}
