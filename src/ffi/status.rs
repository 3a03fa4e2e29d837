//! Status codes, their names, and the thread's last error message. The
//! codes, names and texts come from the one table in `crate::error`; the
//! enum below is that table written out for cbindgen, and the tests check
//! that the two agree.

use super::boundary::boundary;
use crate::error::{Code, Error, STATUSES, UNKNOWN_STATUS};
use std::ffi::c_char;

/// The result of every fallible call. `STORECTX_OK` is 0; numbers are never
/// reused.
///
/// \ingroup api_diagnostics
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum storectx_status {
    /// success
    STORECTX_OK = 0,
    /// a required pointer was NULL
    STORECTX_ERR_NULL_ARGUMENT = 1,
    /// store id 0, base depth above the stack, or a counter at its limit
    STORECTX_ERR_INVALID_ARGUMENT = 2,
    /// this thread's stack is empty
    STORECTX_ERR_NO_CONTEXT = 3,
    /// the store is not on this thread's stack
    STORECTX_ERR_NOT_INSTALLED = 4,
    /// the store is on this thread's stack but not on top
    STORECTX_ERR_PAUSED = 5,
    /// same store id installed again with another address
    STORECTX_ERR_ADDRESS_MISMATCH = 6,
    /// the handle's entry is on this thread but not on top
    STORECTX_ERR_OUT_OF_ORDER = 7,
    /// the handle names no live entry, write guard or segment of its kind here
    STORECTX_ERR_STALE_HANDLE = 8,
    /// uninstall refused, the entry has live borrows
    STORECTX_ERR_STILL_BORROWED = 9,
    /// borrow release or clone with a borrow count of zero
    STORECTX_ERR_NOT_BORROWED = 10,
    /// the top entry is borrowed
    STORECTX_ERR_BORROWED = 11,
    /// borrow_clone on an async entry
    STORECTX_ERR_NOT_SYNC = 12,
    /// the store is locked
    STORECTX_ERR_BUSY = 13,
    /// write waited past its timeout
    STORECTX_ERR_TIMED_OUT = 14,
    /// this thread's own stack holds the store's lock
    STORECTX_ERR_WOULD_DEADLOCK = 15,
    /// the store is already on this thread's stack
    STORECTX_ERR_ALREADY_ON_STACK = 16,
    /// internal error caught at the boundary, state unchanged
    STORECTX_ERR_PANIC = 17,
    /// too many live write guards or segments, a counter used up, or no memory left
    STORECTX_ERR_EXHAUSTED = 18,
}

impl From<Code> for storectx_status {
    #[inline(always)]
    fn from(code: Code) -> Self {
        use storectx_status::*;
        match code {
            Code::NullArgument => STORECTX_ERR_NULL_ARGUMENT,
            Code::InvalidArgument => STORECTX_ERR_INVALID_ARGUMENT,
            Code::NoContext => STORECTX_ERR_NO_CONTEXT,
            Code::NotInstalled => STORECTX_ERR_NOT_INSTALLED,
            Code::Paused => STORECTX_ERR_PAUSED,
            Code::AddressMismatch => STORECTX_ERR_ADDRESS_MISMATCH,
            Code::OutOfOrder => STORECTX_ERR_OUT_OF_ORDER,
            Code::StaleHandle => STORECTX_ERR_STALE_HANDLE,
            Code::StillBorrowed => STORECTX_ERR_STILL_BORROWED,
            Code::NotBorrowed => STORECTX_ERR_NOT_BORROWED,
            Code::Borrowed => STORECTX_ERR_BORROWED,
            Code::NotSync => STORECTX_ERR_NOT_SYNC,
            Code::Busy => STORECTX_ERR_BUSY,
            Code::TimedOut => STORECTX_ERR_TIMED_OUT,
            Code::WouldDeadlock => STORECTX_ERR_WOULD_DEADLOCK,
            Code::AlreadyOnStack => STORECTX_ERR_ALREADY_ON_STACK,
            Code::Panic => STORECTX_ERR_PANIC,
            Code::Exhausted => STORECTX_ERR_EXHAUSTED,
        }
    }
}

impl From<&Error> for storectx_status {
    #[inline(always)]
    fn from(e: &Error) -> Self {
        e.code().into()
    }
}

/// The name and meaning of a status code, e.g.
/// `"STORECTX_ERR_PAUSED: the store is on this thread's stack but not on top"`.
/// Static, never NULL, also for unknown values.
///
/// Thread rules: any thread at any time, signal handlers included; reads no
/// state, allocates nothing, takes no lock.
///
/// \ingroup api_diagnostics
#[no_mangle]
pub extern "C" fn storectx_status_str(status: i32) -> *const c_char {
    boundary("status_str", || {
        usize::try_from(status)
            .ok()
            .and_then(|row| STATUSES.get(row))
            .map_or(UNKNOWN_STATUS, |info| info.described)
            .as_ptr()
    })
}

/// The calling thread's message for its own most recent failed call: what
/// the call expected and what it found (another thread's failures never
/// show here). Empty string when none, e.g. on a thread without state. A
/// successful call leaves the message as it was: read it after a call that
/// failed has returned, with its status kept in a variable, not as another
/// argument of the same call (`printf("%s %s", storectx_status_str(
/// storectx_uninstall(g)), storectx_last_error())` may read the previous
/// message: C leaves the order of arguments open, and gcc evaluates them
/// right to left).
///
/// A failed call keeps its message unformatted; this call writes it into
/// the calling thread's 512-byte buffer (cut to fit, NUL included) and
/// answers a pointer into that buffer, or to a static text on a thread whose
/// state was torn down or could not be created. It allocates nothing, takes
/// no lock and creates no state.
///
/// The pointer is valid until this thread's next failed call, or until its
/// state is torn down while it exits (read it again from a destructor rather
/// than keep the pointer); copy the text to keep it or to hand it to another
/// thread.
///
/// Thread rules: any thread, for its own message. In a signal handler only
/// if the handler did not interrupt a libstorectx call on the same thread
/// (the interrupted call may be using the same state and buffer; see
/// docs/threading.md).
///
/// \ingroup api_diagnostics
#[no_mangle]
pub extern "C" fn storectx_last_error() -> *const c_char {
    boundary("last_error", || crate::thread::last_error().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C enum is the table written out: same codes, same names, one
    /// error variant for each.
    #[test]
    fn the_c_enum_is_the_table() {
        for e in Error::one_of_each() {
            let c = storectx_status::from(&e);
            assert_eq!(c as i32, e.info().code);
            assert_eq!(format!("{c:?}"), e.info().name);
            assert_eq!(e.code() as i32, e.info().code);
        }
        let text = |code| {
            // SAFETY: storectx_status_str returns a static C string.
            unsafe { std::ffi::CStr::from_ptr(storectx_status_str(code)) }
        };
        for info in STATUSES {
            assert_eq!(text(info.code), info.described);
        }
        assert_eq!(text(-1), UNKNOWN_STATUS);
        assert_eq!(text(STATUSES.len() as i32), UNKNOWN_STATUS);
    }

    /// The header says the same: each code with its number and its text as
    /// the doc comment (the header is generated from the enum above).
    #[test]
    fn the_header_is_the_table() {
        let header =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/storectx.h"))
                .unwrap();
        for info in STATUSES {
            let doc = format!(
                "   * {}\n   */\n  {} = {},",
                info.text, info.name, info.code
            );
            assert!(header.contains(&doc), "header lacks:\n{doc}");
        }
    }
}
