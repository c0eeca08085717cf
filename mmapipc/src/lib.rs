//! # mmapipc
//!
//! Zero-copy inter-process messaging over memory-mapped files.
//!
//! * [`SharedMemory`]: a raw shared region with bounds-checked byte and integer access.
//! * [`Ring`]: a lock-free single-producer single-consumer ring of variable-length messages.
//!
//! Every file starts with a validated, versioned header (see [`layout`]); files are created with
//! `O_EXCL | O_NOFOLLOW | O_CLOEXEC` and mode 0600 unless told otherwise (see [`region`]).
//! A bare name such as `"frames"` lives in `/dev/shm`; any path with a `/` is used as given.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
pub mod layout;
pub mod process;
pub mod region;
pub mod ring;
pub mod shm;
mod sync;
pub mod wait;

pub use error::{AccessError, OpenError, RingError};
pub use layout::Kind;
pub use region::{resolve_path, CreateOptions, OpenOptions, Region};
pub use ring::{RecvGuard, Ring, SlotMut};
pub use shm::SharedMemory;
