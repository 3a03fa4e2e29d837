//! Status codes, their names, and the thread's last error message.

use super::boundary::{self, boundary};
use crate::error::Error;
use std::ffi::c_char;

/// The result of every fallible call. `STORECTX_OK` is 0; numbers are never
/// reused.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum storectx_status {
    /// Success.
    STORECTX_OK = 0,
    /// A required pointer was NULL.
    STORECTX_ERR_NULL_ARGUMENT = 1,
    /// Store id 0, a base depth above the stack, a counter overflow, ...
    STORECTX_ERR_INVALID_ARGUMENT = 2,
    /// This thread's stack is empty (lookups by store id).
    STORECTX_ERR_NO_CONTEXT = 3,
    /// The store is not on this thread's stack.
    STORECTX_ERR_NOT_INSTALLED = 4,
    /// The store is on this thread's stack but not on top.
    STORECTX_ERR_PAUSED = 5,
    /// The same store id is installed again with another address.
    STORECTX_ERR_ADDRESS_MISMATCH = 6,
    /// The handle's entry is on this thread's stack but not on top.
    STORECTX_ERR_OUT_OF_ORDER = 7,
    /// The handle names no entry on this thread's stack (used twice, zeroed,
    /// from another thread, its entry suspended, or a consumed heap handle).
    STORECTX_ERR_STALE_HANDLE = 8,
    /// Uninstall refused: the entry has live borrows.
    STORECTX_ERR_STILL_BORROWED = 9,
    /// Borrow release or clone with a borrow count of zero.
    STORECTX_ERR_NOT_BORROWED = 10,
    /// `get_current_unborrowed`: the top entry is borrowed.
    STORECTX_ERR_BORROWED = 11,
    /// `borrow_clone` on an async entry.
    STORECTX_ERR_NOT_SYNC = 12,
    /// `try_write`: the store is locked.
    STORECTX_ERR_BUSY = 13,
    /// `write` waited past its timeout.
    STORECTX_ERR_TIMED_OUT = 14,
    /// `write` on a store whose lock this thread's own stack holds.
    STORECTX_ERR_WOULD_DEADLOCK = 15,
    /// `install_async`/`resume` of a store already on this thread's stack.
    STORECTX_ERR_ALREADY_ON_STACK = 16,
    /// An internal bug was caught at the FFI boundary; state unchanged.
    STORECTX_ERR_PANIC = 17,
    /// Too many live write guards or suspended segments (millions).
    STORECTX_ERR_EXHAUSTED = 18,
}

impl From<&Error> for storectx_status {
    fn from(e: &Error) -> Self {
        use storectx_status::*;
        match e {
            Error::NullArgument(_) => STORECTX_ERR_NULL_ARGUMENT,
            Error::InvalidArgument(_) => STORECTX_ERR_INVALID_ARGUMENT,
            Error::NoContext(_) => STORECTX_ERR_NO_CONTEXT,
            Error::NotInstalled(_) => STORECTX_ERR_NOT_INSTALLED,
            Error::Paused(_) => STORECTX_ERR_PAUSED,
            Error::AddressMismatch(_) => STORECTX_ERR_ADDRESS_MISMATCH,
            Error::OutOfOrder(_) => STORECTX_ERR_OUT_OF_ORDER,
            Error::StaleHandle(_) => STORECTX_ERR_STALE_HANDLE,
            Error::StillBorrowed(_) => STORECTX_ERR_STILL_BORROWED,
            Error::NotBorrowed(_) => STORECTX_ERR_NOT_BORROWED,
            Error::Borrowed(_) => STORECTX_ERR_BORROWED,
            Error::NotSync(_) => STORECTX_ERR_NOT_SYNC,
            Error::Busy(_) => STORECTX_ERR_BUSY,
            Error::TimedOut(_) => STORECTX_ERR_TIMED_OUT,
            Error::WouldDeadlock(_) => STORECTX_ERR_WOULD_DEADLOCK,
            Error::AlreadyOnStack(_) => STORECTX_ERR_ALREADY_ON_STACK,
            Error::Panic(_) => STORECTX_ERR_PANIC,
            Error::Exhausted(_) => STORECTX_ERR_EXHAUSTED,
        }
    }
}

/// The name and meaning of a status code, e.g.
/// `"STORECTX_ERR_PAUSED: the store is on this thread's stack but not on top"`.
/// Static, never NULL, also for unknown values.
#[no_mangle]
pub extern "C" fn storectx_status_str(status: i32) -> *const c_char {
    boundary("status_str", || {
        let text: &'static std::ffi::CStr = match status {
            0 => c"STORECTX_OK: success",
            1 => c"STORECTX_ERR_NULL_ARGUMENT: a required pointer was NULL",
            2 => c"STORECTX_ERR_INVALID_ARGUMENT: store id 0, base depth above the stack, or a counter overflow",
            3 => c"STORECTX_ERR_NO_CONTEXT: this thread's stack is empty",
            4 => c"STORECTX_ERR_NOT_INSTALLED: the store is not on this thread's stack",
            5 => c"STORECTX_ERR_PAUSED: the store is on this thread's stack but not on top",
            6 => c"STORECTX_ERR_ADDRESS_MISMATCH: same store id installed again with another address",
            7 => c"STORECTX_ERR_OUT_OF_ORDER: the handle's entry is on this thread but not on top",
            8 => c"STORECTX_ERR_STALE_HANDLE: the handle names no entry on this thread's stack",
            9 => c"STORECTX_ERR_STILL_BORROWED: uninstall refused, the entry has live borrows",
            10 => c"STORECTX_ERR_NOT_BORROWED: borrow release or clone with a borrow count of zero",
            11 => c"STORECTX_ERR_BORROWED: the top entry is borrowed",
            12 => c"STORECTX_ERR_NOT_SYNC: borrow_clone on an async entry",
            13 => c"STORECTX_ERR_BUSY: the store is locked",
            14 => c"STORECTX_ERR_TIMED_OUT: write waited past its timeout",
            15 => c"STORECTX_ERR_WOULD_DEADLOCK: this thread's own stack holds the store's lock",
            16 => c"STORECTX_ERR_ALREADY_ON_STACK: the store is already on this thread's stack",
            17 => c"STORECTX_ERR_PANIC: internal error caught at the boundary, state unchanged",
            18 => c"STORECTX_ERR_EXHAUSTED: too many live write guards or suspended segments",
            _ => c"STORECTX_UNKNOWN_STATUS: not a status code of this library",
        };
        text.as_ptr()
    })
}

/// This thread's message for its most recent failed call: what the call
/// expected and what it found. Empty string when none. Valid until this
/// thread's next failed call.
#[no_mangle]
pub extern "C" fn storectx_last_error() -> *const c_char {
    boundary("last_error", || boundary::last_error().cast())
}
