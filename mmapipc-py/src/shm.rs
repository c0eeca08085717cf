//! `mmapipc.SharedMemory`: the raw region, as in the original API.
//!
//! The class is `frozen` and its mapping a [`Shared`] value: threads may call one handle at
//! once, and `close()` from any thread drops the mapping when no call uses it any more (views
//! keep it alive on their own).

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};

use crate::borrow::with_bytes;
use crate::buffer::export;
use crate::errors::{access_error, open_error};
use crate::handle::{handle_pymethods, Handle};
use crate::sync::{Shared, Using};

const NAME: &str = "SharedMemory";

/// A raw shared-memory region backed by a file.
///
/// `close()` while views from `get_view` are alive is allowed: the mapping stays valid until
/// the last view (and every array made from one) is gone, so no view ever dangles.
#[pyclass(module = "mmapipc", name = "SharedMemory", frozen)]
pub struct PySharedMemory {
    inner: Shared<mmapipc::SharedMemory>,
    path: PathBuf,
}

fn offset_arg(offset: i64) -> PyResult<usize> {
    usize::try_from(offset).map_err(|_| PyIndexError::new_err(format!("offset {offset} is negative")))
}

impl PySharedMemory {
    fn new(shm: mmapipc::SharedMemory) -> Self {
        let path = shm.path().to_path_buf();
        PySharedMemory { inner: Shared::new(shm, NAME), path }
    }

    /// The region for the duration of one call; `ValueError` if closed.
    fn get(&self) -> PyResult<Using<'_, mmapipc::SharedMemory>> {
        // SAFETY: only called from #[pymethods], which pyo3 runs with the GIL held; the token
        // does not outlive `self`'s borrow, i.e. the method call.
        let py = unsafe { Python::assume_gil_acquired() };
        self.inner.enter(py)
    }
}

impl Handle for PySharedMemory {
    fn describe(&self, py: Python<'_>) -> Option<String> {
        Some(format!("size={}", self.inner.enter(py).ok()?.size()))
    }
}

handle_pymethods! {
    parts(NAME, file: path, slot: inner);
    /// Releases this handle's reference to the mapping. Views already taken stay valid.
    /// Calling it twice is harmless.
    fn close;
    impl PySharedMemory {
        /// Creates a zero-filled region of `size` bytes at `path`. A bare name lives in /dev/shm.
        #[classmethod]
        #[pyo3(signature = (path, size, *, mode = 0o600))]
        fn create(_cls: &Bound<'_, pyo3::types::PyType>, path: PathBuf, size: i64, mode: u32) -> PyResult<Self> {
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("size must be positive, got {size}")))?;
            let shm =
                mmapipc::SharedMemory::create_with(&path, size, &mmapipc::CreateOptions { mode }).map_err(open_error)?;
            Ok(PySharedMemory::new(shm))
        }

        /// Opens an existing region.
        #[classmethod]
        #[pyo3(signature = (path, *, allow_foreign_owner = false))]
        fn open(_cls: &Bound<'_, pyo3::types::PyType>, path: PathBuf, allow_foreign_owner: bool) -> PyResult<Self> {
            let shm = mmapipc::SharedMemory::open_with(&path, &mmapipc::OpenOptions { allow_foreign_owner })
                .map_err(open_error)?;
            Ok(PySharedMemory::new(shm))
        }

        /// Size of the region in bytes.
        #[getter]
        fn size(&self) -> PyResult<usize> {
            Ok(self.get()?.size())
        }

        /// Copies `data` (any bytes-like object) to `offset`.
        fn write(&self, offset: i64, data: &Bound<'_, PyAny>) -> PyResult<()> {
            let shm = self.get()?;
            let offset = offset_arg(offset)?;
            with_bytes(data, |b| shm.write(offset, b))?.map_err(access_error)
        }

        /// Returns a copy of `length` bytes at `offset`.
        fn read<'py>(&self, py: Python<'py>, offset: i64, length: i64) -> PyResult<Bound<'py, PyBytes>> {
            let shm = self.get()?;
            let offset = offset_arg(offset)?;
            let length =
                usize::try_from(length).map_err(|_| PyIndexError::new_err(format!("length {length} is negative")))?;
            shm.check_range(offset, length).map_err(access_error)?;
            PyBytes::new_with(py, length, |buf| shm.read_into(offset, buf).map_err(access_error))
        }

        /// Writes a signed 64-bit integer (little-endian) at `offset`.
        fn write_int(&self, offset: i64, value: i64) -> PyResult<()> {
            self.get()?.write_i64(offset_arg(offset)?, value).map_err(access_error)
        }

        /// Reads a signed 64-bit integer (little-endian) at `offset`.
        fn read_int(&self, offset: i64) -> PyResult<i64> {
            self.get()?.read_i64(offset_arg(offset)?).map_err(access_error)
        }

        /// Writes an unsigned 64-bit integer (little-endian) at `offset`.
        fn write_uint(&self, offset: i64, value: u64) -> PyResult<()> {
            self.get()?.write_u64(offset_arg(offset)?, value).map_err(access_error)
        }

        /// Reads an unsigned 64-bit integer (little-endian) at `offset`.
        fn read_uint(&self, offset: i64) -> PyResult<u64> {
            self.get()?.read_u64(offset_arg(offset)?).map_err(access_error)
        }

        /// A writable, zero-copy memoryview of `size` bytes at `offset`.
        fn get_view<'py>(&self, py: Python<'py>, offset: i64, size: i64) -> PyResult<Bound<'py, PyMemoryView>> {
            let shm: Arc<mmapipc::SharedMemory> = self.inner.arc(py)?;
            let offset = offset_arg(offset)?;
            let size = usize::try_from(size).map_err(|_| PyIndexError::new_err(format!("size {size} is negative")))?;
            shm.check_range(offset, size).map_err(access_error)?;
            // SAFETY: offset..offset+size lies inside the user area (checked above), which stays
            // mapped for as long as the owner (an Arc of the mapping) lives.
            unsafe { export(py, shm.clone(), shm.as_ptr().add(offset), size, false) }
        }

        fn __len__(&self) -> PyResult<usize> {
            self.size()
        }

    }
}
