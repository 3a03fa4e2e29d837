//! The thread's one teardown on every Unix: a `pthread_key` whose
//! destructor the C library runs in the exiting thread, for every thread
//! (also threads the library never created), after the thread's C++
//! `thread_local` and Rust TLS destructors.
//!
//! Why a `pthread_key` and not a Rust `thread_local!` with a destructor:
//! the latter registers through `__cxa_thread_atexit_impl` (or the
//! platform's equivalent), which allocates and takes the dynamic loader's
//! lock, and which does nothing once the thread's destructors have started
//! (a first call made from a `pthread_key` destructor would never be
//! cleaned up).
//!
//! Destructor rounds: every C library runs the key destructors again while
//! some key is still set, up to its `PTHREAD_DESTRUCTOR_ITERATIONS` rounds
//! (4 in glibc and musl), so a key set during a round is seen in the next
//! one, which is all the teardown needs (thread.rs). Which other
//! destructors run before or after ours differs (docs/platforms.md).

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The process's key, whose destructor tears a thread's context down.
/// Made by the first call that needs it; two threads racing to make it keep
/// the first one stored and the loser deletes its own. No lock (a `fork`
/// child inherits none held) and nothing cached on failure (a later call
/// tries again).
fn key() -> Result<libc::pthread_key_t> {
    /// The key + 1; 0 until it exists.
    static KEY: AtomicUsize = AtomicUsize::new(0);
    let known = KEY.load(Ordering::Acquire);
    if known != 0 {
        return Ok((known - 1) as libc::pthread_key_t);
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; `on_thread_exit` has the
    // destructor signature and stays mapped (the library is never unloaded:
    // platform/mod.rs, "Unload").
    let made = unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) };
    if made != 0 {
        return Err(Error::Exhausted(detail!(
            "pthread_key_create failed (error {made}): the process has no thread-specific \
             data key left for libstorectx"
        )));
    }
    match KEY.compare_exchange(0, key as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(key),
        Err(winner) => {
            // SAFETY: `key` was made just above and never used.
            unsafe { libc::pthread_key_delete(key) };
            Ok((winner - 1) as libc::pthread_key_t)
        }
    }
}

/// Arms this thread's teardown: at its exit, `crate::thread::teardown`
/// runs with `value` (non-null: the thread's context).
pub(crate) fn arm_thread_exit(value: *mut libc::c_void) -> Result<()> {
    let key = key()?;
    // SAFETY: `key` is a live key of this process; the value is only
    // handed back to the destructor.
    if unsafe { libc::pthread_setspecific(key, value) } != 0 {
        return Err(Error::Exhausted(detail!(
            "pthread_setspecific failed: out of memory for thread-specific data"
        )));
    }
    Ok(())
}

/// The key's destructor: called once per thread whose value is set, in
/// whichever destructor round first finds it set.
extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    crate::thread::teardown(value);
}
