//! `#[derive(IpcMessage)]` for mmapipc.
//!
//! Not implemented yet: the typed-message work (issue 5) fills this crate in. It exists now so
//! the workspace has its final shape and the core crate can pin it exactly.
