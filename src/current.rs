//! The calling thread's stack.
//!
//! A thread that exits drops its stack: async entries release their locks,
//! so no other thread waits on a dead one.

use crate::error::{Error, Result};
use crate::stack::Stack;
use std::cell::UnsafeCell;

thread_local! {
    static STACK: UnsafeCell<Stack> = const { UnsafeCell::new(Stack::new()) };
}

/// Runs `f` on this thread's stack. After the thread's stack was destroyed
/// (a call from another thread-local destructor) the answer is `NoContext`.
///
/// `f` must not call `with` again (it never does: the core never calls back
/// into embedder code).
#[inline]
pub fn with<R>(f: impl FnOnce(&mut Stack) -> Result<R>) -> Result<R> {
    STACK
        .try_with(|cell| {
            // SAFETY: the stack is thread-local and `with` is not re-entered
            // (see above), so this is the only reference for the duration of `f`.
            f(unsafe { &mut *cell.get() })
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
    STACK
        .try_with(|cell| {
            // SAFETY: as in `with`; shared access while no `with` is running.
            f(unsafe { &*cell.get() })
        })
        .unwrap_or(default)
}
