//! The one table of status codes: for each, its number, its C name, the text
//! `storectx_status_str` gives, and the core error variant that carries the
//! detail of one refusal. Everything else is derived from it or checked
//! against it by tests: the C enum `storectx_status` (which cbindgen must see
//! written out, in `ffi/status.rs`), the header, and the Python binding.
//! Numbers are never reused.

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusInfo {
    /// The value of `storectx_status`.
    pub code: i32,
    /// Its C name, e.g. `STORECTX_ERR_PAUSED`.
    pub name: &'static str,
    /// What it means, e.g. "the store is on this thread's stack but not on top".
    pub text: &'static str,
    /// `"NAME: text"`, NUL-terminated: what `storectx_status_str` returns.
    pub described: &'static std::ffi::CStr,
}

macro_rules! status_table {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $text:literal; )*) => {
        /// Why a core operation refused: one variant per C status code. The
        /// string says what was expected and what was found; it is the
        /// detail `storectx_last_error()` shows after the operation's name.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Error {
            $( $(#[$doc])* $variant(String), )*
        }

        impl Error {
            /// The row of this error's status.
            pub fn info(&self) -> &'static StatusInfo {
                match self { $( Error::$variant(_) => &STATUSES[$code], )* }
            }

            /// The detail text.
            pub fn message(&self) -> &str {
                match self { $( Error::$variant(m) => m, )* }
            }

            /// An error of each status but `STORECTX_OK` (for tests).
            #[cfg(test)]
            pub(crate) fn one_of_each() -> Vec<Error> {
                vec![ $( Error::$variant(String::new()), )* ]
            }
        }

        /// Every status, `STORECTX_OK` first, in order of code.
        pub const STATUSES: &[StatusInfo] = &[
            StatusInfo {
                code: 0,
                name: "STORECTX_OK",
                text: "success",
                described: c"STORECTX_OK: success",
            },
            $( StatusInfo {
                code: $code,
                name: $name,
                text: $text,
                described: match std::ffi::CStr::from_bytes_with_nul(
                    concat!($name, ": ", $text, "\0").as_bytes(),
                ) {
                    Ok(s) => s,
                    Err(_) => panic!("a status text holds no NUL"),
                },
            }, )*
        ];
    };
}

status_table! {
    /// A required pointer was NULL (only the FFI layer can see this).
    NullArgument = 1, "STORECTX_ERR_NULL_ARGUMENT", "a required pointer was NULL";
    /// Store id 0, a base depth above the stack, a counter at its limit, ...
    InvalidArgument = 2, "STORECTX_ERR_INVALID_ARGUMENT",
        "store id 0, base depth above the stack, or a counter at its limit";
    /// A lookup by store id found this thread's stack empty.
    NoContext = 3, "STORECTX_ERR_NO_CONTEXT", "this thread's stack is empty";
    /// The store is not on this thread's stack.
    NotInstalled = 4, "STORECTX_ERR_NOT_INSTALLED", "the store is not on this thread's stack";
    /// The store is on this thread's stack but not on top.
    Paused = 5, "STORECTX_ERR_PAUSED", "the store is on this thread's stack but not on top";
    /// The same store id is on top with another address.
    AddressMismatch = 6, "STORECTX_ERR_ADDRESS_MISMATCH",
        "same store id installed again with another address";
    /// The handle's entry is on this thread's stack but not on top.
    OutOfOrder = 7, "STORECTX_ERR_OUT_OF_ORDER",
        "the handle's entry is on this thread but not on top";
    /// The handle names no entry (or object) of its kind here.
    StaleHandle = 8, "STORECTX_ERR_STALE_HANDLE",
        "the handle names no entry of its kind on this thread's stack";
    /// Uninstall refused: the entry has live borrows.
    StillBorrowed = 9, "STORECTX_ERR_STILL_BORROWED",
        "uninstall refused, the entry has live borrows";
    /// Borrow release or clone with a borrow count of zero.
    NotBorrowed = 10, "STORECTX_ERR_NOT_BORROWED",
        "borrow release or clone with a borrow count of zero";
    /// The top entry is borrowed.
    Borrowed = 11, "STORECTX_ERR_BORROWED", "the top entry is borrowed";
    /// `borrow_clone` on an async entry.
    NotSync = 12, "STORECTX_ERR_NOT_SYNC", "borrow_clone on an async entry";
    /// `try_write`: the store is locked.
    Busy = 13, "STORECTX_ERR_BUSY", "the store is locked";
    /// `write` waited past its timeout.
    TimedOut = 14, "STORECTX_ERR_TIMED_OUT", "write waited past its timeout";
    /// `write` on a store whose lock this thread's own stack holds.
    WouldDeadlock = 15, "STORECTX_ERR_WOULD_DEADLOCK",
        "this thread's own stack holds the store's lock";
    /// The store is already on this thread's stack.
    AlreadyOnStack = 16, "STORECTX_ERR_ALREADY_ON_STACK",
        "the store is already on this thread's stack";
    /// An internal bug was caught at the FFI boundary.
    Panic = 17, "STORECTX_ERR_PANIC",
        "internal error caught at the boundary, state unchanged";
    /// A table or counter is used up: live write guards or segments,
    /// entry numbers, thread-specific data keys.
    Exhausted = 18, "STORECTX_ERR_EXHAUSTED",
        "too many live write guards or segments, or a counter used up";
}

/// The text of an unknown status value.
pub const UNKNOWN_STATUS: &std::ffi::CStr =
    c"STORECTX_UNKNOWN_STATUS: not a status code of this library";

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A reserved store id (0 or `u64::MAX`) given where a store is meant.
    #[cold]
    #[inline(never)]
    pub(crate) fn reserved_id(id: u64) -> Error {
        Error::InvalidArgument(format!(
            "store id {id:#x} is reserved (0 and UINT64_MAX name no store); use \
             storectx_store_id_new()"
        ))
    }
}

/// Shorthand for core results.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_row_numbers_and_each_error_has_its_row() {
        for (row, info) in STATUSES.iter().enumerate() {
            assert_eq!(info.code as usize, row, "{}", info.name);
            assert!(info.name.starts_with("STORECTX_"));
            assert_eq!(
                info.described.to_str().unwrap(),
                format!("{}: {}", info.name, info.text)
            );
        }
        let errors = Error::one_of_each();
        assert_eq!(errors.len() + 1, STATUSES.len());
        for (code, e) in (1..).zip(&errors) {
            assert_eq!(e.info().code, code);
        }
    }
}
