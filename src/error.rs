//! One error enum for the core. Each variant maps to exactly one C status
//! code (see `ffi::status`); its text says what was expected and what was found.

/// Why a core operation refused. The string is the detail shown by
/// `storectx_last_error()` after the operation name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A required pointer was NULL (only the FFI layer can see this).
    #[error("{0}")]
    NullArgument(String),
    /// Store id 0, a base depth above the stack, a counter overflow, ...
    #[error("{0}")]
    InvalidArgument(String),
    /// A lookup by store id found this thread's stack empty.
    #[error("{0}")]
    NoContext(String),
    /// The store is not on this thread's stack.
    #[error("{0}")]
    NotInstalled(String),
    /// The store is on this thread's stack but not on top.
    #[error("{0}")]
    Paused(String),
    /// The same store id is on top with another address.
    #[error("{0}")]
    AddressMismatch(String),
    /// The handle's entry is on this thread's stack but not on top.
    #[error("{0}")]
    OutOfOrder(String),
    /// The handle names no entry on this thread's stack.
    #[error("{0}")]
    StaleHandle(String),
    /// Uninstall refused: the entry has live borrows.
    #[error("{0}")]
    StillBorrowed(String),
    /// Borrow release or clone with a borrow count of zero.
    #[error("{0}")]
    NotBorrowed(String),
    /// The top entry is borrowed.
    #[error("{0}")]
    Borrowed(String),
    /// `borrow_clone` on an async entry.
    #[error("{0}")]
    NotSync(String),
    /// `try_write`: the store is locked.
    #[error("{0}")]
    Busy(String),
    /// `write` waited past its timeout.
    #[error("{0}")]
    TimedOut(String),
    /// `write` on a store whose lock this thread's own stack holds.
    #[error("{0}")]
    WouldDeadlock(String),
    /// The store is already on this thread's stack.
    #[error("{0}")]
    AlreadyOnStack(String),
    /// An internal bug was caught at the FFI boundary.
    #[error("{0}")]
    Panic(String),
    /// A handle table is full (millions of live write guards or segments).
    #[error("{0}")]
    Exhausted(String),
}

impl Error {
    /// Store id 0 given where a store is meant.
    #[cold]
    #[inline(never)]
    pub(crate) fn id_zero() -> Error {
        Error::InvalidArgument("store id 0 is reserved; use storectx_store_id_new()".into())
    }
}

/// Shorthand for core results.
pub type Result<T> = std::result::Result<T, Error>;
