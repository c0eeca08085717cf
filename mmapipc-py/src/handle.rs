//! What every handle class (`SharedMemory`, `SharedMemoryRing`, `SharedMemoryQueue`,
//! `SharedMemoryTopic`, `TopicSubscriber`) has in common: `path`, `closed`, `close`, `unlink`,
//! the context manager, `repr`, and pickling by path (refused for a closed handle, and always
//! for a subscriber).
//!
//! A class writes its `#[pymethods]` block inside [`handle_pymethods!`], which adds the shared
//! methods to it (pyo3 takes one `#[pymethods]` block per class) and implements [`Parts`] from
//! the field names it is given; the class implements [`Handle`] (its `repr` fields, and what
//! `close()` does when closing the mapping is not all).

use std::path::Path;

use pyo3::prelude::*;
use pyo3::PyClass;

use crate::errors::{closed, open_error};
use crate::readiness::Fds;
use crate::sync::Shared;

/// The fields of a handle class that the shared methods use (implemented by
/// [`handle_pymethods!`]).
pub trait Parts {
    /// The Python class name.
    const NAME: &'static str;

    /// The file the handle maps.
    fn file(&self) -> &Path;

    /// The value `close()` drops (and whose state `closed` reports).
    fn slot(&self) -> &dyn Closable;

    /// The readiness descriptors `close()` signals, if the class has them.
    fn fds(&self) -> Option<&Fds>;
}

/// A handle class's own part in the shared methods.
pub trait Handle: Parts {
    /// True after `close()`.
    fn is_closed(&self, py: Python<'_>) -> bool {
        self.slot().is_closed(py)
    }

    /// What `close()` does: closes the slot and signals the readiness descriptors (an await
    /// in progress wakes, retries and raises).
    fn shut(&self, py: Python<'_>) -> PyResult<()> {
        self.slot().close(py);
        if let Some(fds) = self.fds() {
            fds.close();
        }
        Ok(())
    }

    /// The `repr` fields after the path, or None once closed.
    fn describe(&self, py: Python<'_>) -> Option<String>;

    /// Whether the handle may be pickled (by path); a class that may not raises here.
    fn picklable(&self) -> PyResult<()> {
        Ok(())
    }
}

/// A [`Shared`] value of any type, as [`Handle`] sees it.
pub trait Closable {
    fn is_closed(&self, py: Python<'_>) -> bool;
    fn close(&self, py: Python<'_>);
}

impl<T: Send + Sync> Closable for Shared<T> {
    fn is_closed(&self, py: Python<'_>) -> bool {
        Shared::is_closed(self, py)
    }

    fn close(&self, py: Python<'_>) {
        Shared::close(self, py)
    }
}

pub fn path<H: Handle>(h: &H) -> String {
    h.file().display().to_string()
}

pub fn unlink<H: Handle>(h: &H) -> PyResult<()> {
    mmapipc::region::unlink(h.file()).map_err(open_error)
}

pub fn repr<H: Handle>(h: &H, py: Python<'_>) -> String {
    let path = path(h);
    match h.describe(py) {
        Some(fields) => format!("{}(path={path:?}, {fields})", <H as Parts>::NAME),
        None => format!("{}(path={path:?}, closed)", <H as Parts>::NAME),
    }
}

/// `(cls.open, (path,))`; ValueError for a closed handle.
pub fn reduce<'py, H: Handle + PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    slf: &Bound<'py, H>,
) -> PyResult<(Bound<'py, PyAny>, (String,))> {
    let h = slf.get();
    h.picklable()?;
    if h.is_closed(slf.py()) {
        return Err(closed(<H as Parts>::NAME));
    }
    Ok((slf.as_any().get_type().getattr("open")?, (path(h),)))
}

/// `#[pymethods] impl $ty { ... }` with the shared methods of [`Handle`] added, and `$ty`'s
/// [`Parts`] from the fields named in the first line (`ready`: only for a class with readiness
/// descriptors). The doc comments before `fn close;` are `close()`'s docstring.
macro_rules! handle_pymethods {
    (
        parts($name:ident, file: $file:ident, slot: $slot:ident $(, ready: $ready:ident)?);
        $(#[$close_doc:meta])*
        fn close;
        impl $ty:ident { $($items:tt)* }
    ) => {
        impl $crate::handle::Parts for $ty {
            const NAME: &'static str = $name;

            fn file(&self) -> &std::path::Path {
                &self.$file
            }

            fn slot(&self) -> &dyn $crate::handle::Closable {
                &self.$slot
            }

            fn fds(&self) -> Option<&$crate::readiness::Fds> {
                $crate::handle::handle_pymethods!(@fds self $($ready)?)
            }
        }

        #[pyo3::pymethods]
        impl $ty {
            $($items)*

            /// The file's path.
            #[getter]
            fn path(&self) -> String {
                $crate::handle::path(self)
            }

            /// True after `close()`.
            #[getter]
            fn closed(&self, py: Python<'_>) -> bool {
                $crate::handle::Handle::is_closed(self, py)
            }

            $(#[$close_doc])*
            fn close(&self, py: Python<'_>) -> PyResult<()> {
                $crate::handle::Handle::shut(self, py)
            }

            /// Removes the file. Handles (here and elsewhere) stay usable until closed.
            fn unlink(&self) -> PyResult<()> {
                $crate::handle::unlink(self)
            }

            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            #[pyo3(signature = (*_args))]
            fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
                $crate::handle::Handle::shut(self, py)?;
                Ok(false)
            }

            fn __repr__(&self, py: Python<'_>) -> String {
                $crate::handle::repr(self, py)
            }

            /// Pickles by path: unpickling opens the same file (for `multiprocessing` under
            /// spawn). A closed handle raises ValueError.
            fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
                $crate::handle::reduce(slf)
            }
        }
    };
    (@fds $self:ident) => { None };
    (@fds $self:ident $ready:ident) => { Some(&$self.$ready) };
}

pub(crate) use handle_pymethods;
