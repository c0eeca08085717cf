//! The shorthands every channel type has over its full constructors: `create(path, capacity)`
//! over `create_with`, `open(path)` over `open_with`, each with the default options, and for a
//! byte channel `create_with(path, capacity, opts)` over `create_with_schema` (no schema). A
//! channel type writes the full constructors and invokes [`channel_shorthands!`] for the rest.

/// `impl $ty { create, create_with, open }` for a byte channel, `impl<..> $ty<T> where ..
/// { create, open }` for a typed one (see the module docs). The doc comments before `fn create;`
/// and `fn open;` are theirs; `$opts` is the options type of `create_with` and `$open_opts`
/// that of `open_with`.
macro_rules! channel_shorthands {
    (
        impl[$($gen:tt)*] $ty:ident<$t:ident> where [$($bounds:tt)*] (create: $opts:ty, open: $open_opts:ty) -> $err:ty;
        $(#[$create_doc:meta])*
        fn create;
        $(#[$open_doc:meta])*
        fn open;
    ) => {
        impl<$($gen)*> $ty<$t>
        where
            $($bounds)*
        {
            $(#[$create_doc])*
            pub fn create(path: impl AsRef<std::path::Path>, capacity: usize) -> Result<Self, $err> {
                Self::create_with(path, capacity, &<$opts>::default())
            }

            $(#[$open_doc])*
            pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, $err> {
                Self::open_with(path, &<$open_opts>::default())
            }
        }
    };
    (
        impl $ty:ident(create: $opts:ty, open: $open_opts:ty) -> $err:ty;
        $(#[$create_doc:meta])*
        fn create;
        $(#[$open_doc:meta])*
        fn open;
    ) => {
        impl $ty {
            $(#[$create_doc])*
            pub fn create(path: impl AsRef<std::path::Path>, capacity: usize) -> Result<$ty, $err> {
                Self::create_with(path, capacity, &<$opts>::default())
            }

            /// [`create`](Self::create) with options.
            pub fn create_with(path: impl AsRef<std::path::Path>, capacity: usize, opts: &$opts) -> Result<$ty, $err> {
                Self::create_with_schema(path, capacity, opts, &[])
            }

            $(#[$open_doc])*
            pub fn open(path: impl AsRef<std::path::Path>) -> Result<$ty, $err> {
                Self::open_with(path, &<$open_opts>::default())
            }
        }
    };
}

pub(crate) use channel_shorthands;
