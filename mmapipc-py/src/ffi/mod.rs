//! Mirrors of CPython internals that pyo3 does not expose, each verified at run time before use.

pub mod malloc;
pub mod memoryview;
