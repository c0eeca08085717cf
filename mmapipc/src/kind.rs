//! What a file holds: the `kind` code of the common header ([`crate::layout`]).
//!
//! A leaf: [`OpenError`](crate::OpenError) names kinds, and the layout stores them.

use std::fmt;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A raw region ([`SharedMemory`](crate::SharedMemory)).
    SharedMemory,
    /// A single-producer single-consumer ring of byte messages.
    Ring,
    /// A multi-producer multi-consumer queue of byte messages.
    Queue,
    /// A publish-subscribe topic: one publisher, many subscribers and groups.
    Topic,
    /// A code this library does not know.
    Unknown(u32),
}

impl Kind {
    /// The code stored in the header.
    pub const fn code(self) -> u32 {
        match self {
            Kind::SharedMemory => 1,
            Kind::Ring => 2,
            Kind::Queue => 3,
            Kind::Topic => 4,
            Kind::Unknown(c) => c,
        }
    }

    /// The kind for a header code.
    pub const fn from_code(code: u32) -> Kind {
        match code {
            1 => Kind::SharedMemory,
            2 => Kind::Ring,
            3 => Kind::Queue,
            4 => Kind::Topic,
            c => Kind::Unknown(c),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::SharedMemory => f.write_str("shared memory region"),
            Kind::Ring => f.write_str("ring"),
            Kind::Queue => f.write_str("queue"),
            Kind::Topic => f.write_str("topic"),
            Kind::Unknown(c) => write!(f, "unknown kind ({c})"),
        }
    }
}
