//! The calling thread's stack.
//!
//! A thread that exits drops its stack: async entries release their locks,
//! so no other thread waits on a dead one.
//!
//! The stack lives in a `thread_local!`, which owns it and drops it at thread
//! exit; its address is cached in an initial-exec thread-local word
//! (`fast_tls`) so that every call after a thread's first reaches it
//! without `__tls_get_addr`.

use crate::error::{Error, Result};
use crate::fast_tls;
use crate::stack::Stack;
use std::cell::UnsafeCell;

/// This thread's stack. Dropping it (thread exit) first clears the cached
/// address, so that nothing reaches the stack while or after it is dropped.
struct Owned(UnsafeCell<Stack>);

impl Drop for Owned {
    fn drop(&mut self) {
        fast_tls::set(std::ptr::null_mut());
    }
}

thread_local! {
    static STACK: Owned = const { Owned(UnsafeCell::new(Stack::new())) };
}

/// Runs `f` on this thread's stack. After the thread's stack was destroyed
/// (a call from another thread-local destructor) the answer is `NoContext`.
///
/// `f` must not call `with` or `read` again (it never does: the core never
/// calls back into embedder code).
#[inline]
pub fn with<R>(f: impl FnOnce(&mut Stack) -> Result<R>) -> Result<R> {
    let cached = fast_tls::get();
    if cached.is_null() {
        return with_slow(f);
    }
    // SAFETY: a non-null cached address is this thread's live stack (set by
    // `with_slow` on this thread, cleared before the stack is dropped), and
    // `with` is not re-entered (see above), so this is the only reference
    // for the duration of `f`.
    f(unsafe { &mut *cached })
}

/// Runs `f` on this thread's stack if its address is cached (every call
/// after the thread's first, on targets with the initial-exec word); `None`
/// otherwise, without running `f`. Same contract as [`with`].
#[inline(always)]
pub fn with_fast<R>(f: impl FnOnce(&mut Stack) -> R) -> Option<R> {
    let cached = fast_tls::get();
    // SAFETY: as in `with`.
    (!cached.is_null()).then(|| f(unsafe { &mut *cached }))
}

/// The first call on a thread (or every call, on targets without the
/// initial-exec word): reaches the stack through the `thread_local!` and
/// caches its address.
#[cold]
#[inline(never)]
fn with_slow<R>(f: impl FnOnce(&mut Stack) -> Result<R>) -> Result<R> {
    STACK
        .try_with(|owned| {
            fast_tls::set(owned.0.get());
            // SAFETY: the stack is thread-local and `with` is not re-entered
            // (see `with`), so this is the only reference for the duration
            // of `f`.
            f(unsafe { &mut *owned.0.get() })
        })
        .unwrap_or_else(|_| {
            Err(Error::NoContext(
                "this thread is exiting and its context stack is gone".into(),
            ))
        })
}

/// Reads this thread's stack; `default` once it is gone.
#[inline]
pub fn read<R>(default: R, f: impl FnOnce(&Stack) -> R) -> R {
    let cached = fast_tls::get();
    if cached.is_null() {
        return read_slow(default, f);
    }
    // SAFETY: as in `with`; shared access while no `with` is running.
    f(unsafe { &*cached })
}

#[cold]
#[inline(never)]
fn read_slow<R>(default: R, f: impl FnOnce(&Stack) -> R) -> R {
    STACK
        .try_with(|owned| {
            fast_tls::set(owned.0.get());
            // SAFETY: as in `with_slow`; shared access while no `with` runs.
            f(unsafe { &*owned.0.get() })
        })
        .unwrap_or(default)
}
