//! The FFI boundary: no panic unwinds into C, NULL pointers become
//! `STORECTX_ERR_NULL_ARGUMENT`, and every failure leaves a message for
//! `storectx_last_error()`.

use super::status::storectx_status;
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// What an export returns when the core panicked: each return type knows.
pub trait PanicValue {
    /// The value C sees after a caught panic.
    fn panic_value() -> Self;
}

impl PanicValue for storectx_status {
    fn panic_value() -> Self {
        storectx_status::STORECTX_ERR_PANIC
    }
}

macro_rules! zero_on_panic {
    ($($t:ty),*) => { $(impl PanicValue for $t { fn panic_value() -> Self { Default::default() } })* };
}
zero_on_panic!(bool, usize, u64, ());

impl<T> PanicValue for *mut T {
    fn panic_value() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

/// Runs an export's body, turning a panic into `R::panic_value()` and a
/// last-error message. The core validates before it mutates, so a panic
/// leaves the stack as it was.
#[inline(always)]
pub fn boundary<R: PanicValue>(op: &'static str, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => panicked(op, payload),
    }
}

#[cold]
#[inline(never)]
fn panicked<R: PanicValue>(op: &'static str, payload: Box<dyn std::any::Any + Send>) -> R {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    record(
        op,
        &Error::Panic(format!("internal error caught, nothing changed: {what}")),
    );
    R::panic_value()
}

/// [`boundary`] for exports that return a status.
#[inline(always)]
pub fn status(op: &'static str, body: impl FnOnce() -> Result<()>) -> storectx_status {
    boundary(op, || match body() {
        Ok(()) => storectx_status::STORECTX_OK,
        Err(e) => fail(op, &e),
    })
}

/// [`status`] with a fast path: `fast` either does the whole job and
/// answers `true`, or changes nothing and answers `false`; then `slow`, out
/// of line, does the job or explains why it cannot. Keeps error values (and
/// the registers and stack they need) out of the hot function.
#[inline(always)]
pub fn status_fast(
    op: &'static str,
    fast: impl FnOnce() -> bool,
    slow: impl FnOnce() -> Result<()>,
) -> storectx_status {
    boundary(op, || {
        if fast() {
            storectx_status::STORECTX_OK
        } else {
            status_slow(op, slow)
        }
    })
}

#[cold]
#[inline(never)]
fn status_slow(op: &'static str, slow: impl FnOnce() -> Result<()>) -> storectx_status {
    match slow() {
        Ok(()) => storectx_status::STORECTX_OK,
        Err(e) => fail(op, &e),
    }
}

/// Records `e` as this thread's last error and answers its status.
#[cold]
pub fn fail(op: &'static str, e: &Error) -> storectx_status {
    record(op, e);
    storectx_status::from(e)
}

/// A required pointer: `NULL_ARGUMENT` naming `what` when it is NULL.
#[inline(always)]
pub fn required<T>(p: *mut T, what: &str) -> Result<NonNull<T>> {
    NonNull::new(p).ok_or_else(|| null_argument(what))
}

#[cold]
#[inline(never)]
fn null_argument(what: &str) -> Error {
    Error::NullArgument(format!("{what} is NULL"))
}

/// Writes an out-parameter (after every check has passed).
#[inline(always)]
pub fn put<T>(out: NonNull<T>, value: T) {
    // SAFETY: `out` is non-NULL and the C caller promises it points to
    // writable memory for a `T`; unaligned writes tolerate packed C structs.
    unsafe { out.as_ptr().write_unaligned(value) }
}

thread_local! {
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn record(op: &'static str, e: &Error) {
    let text = format!("{op}: {e}");
    let _ = LAST_ERROR.try_with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        buf.extend(text.bytes().map(|b| if b == 0 { b'?' } else { b }));
        buf.push(0);
    });
}

/// This thread's last error text, NUL-terminated ("" when none).
pub fn last_error() -> *const u8 {
    LAST_ERROR
        .try_with(|cell| {
            let buf = cell.borrow();
            if buf.is_empty() {
                c"".as_ptr().cast()
            } else {
                buf.as_ptr()
            }
        })
        .unwrap_or(c"".as_ptr().cast())
}
