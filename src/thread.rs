//! The calling thread's context: all of its per-thread state in one struct,
//! reached through one thread-local word, torn down in one place.
//!
//! The word holds, for each thread:
//! * `0` — the thread never made a call that needs state. Read-only calls
//!   answer as for an empty stack: they never allocate, lock or create state,
//!   so they work from a signal handler or under the loader's lock.
//! * a pointer to the thread's [`Context`], boxed on its first call that
//!   needs state. That call also arms a `pthread_key` (created once per
//!   process) whose destructor is the one teardown.
//! * `TORN_DOWN` — the teardown ran: the thread is exiting and its state is
//!   gone. A call that needs state, made after it by another destructor, is
//!   refused with nothing changed. (glibc does not say which of its four
//!   destructor rounds it is in, so a context made after the teardown could
//!   fall in the last round and never be torn down: refusing is the only
//!   answer that never leaks a lock.)
//!
//! Why a `pthread_key` and not a Rust `thread_local!` with a destructor:
//! the latter registers through `__cxa_thread_atexit_impl`, which allocates
//! and takes the dynamic loader's lock, and which does nothing once the
//! thread's destructors have started (a first call made from a
//! `pthread_key` destructor would never be cleaned up).

use crate::error::{Error, LastError, Result};
use crate::registry::Spot;
use crate::stack::Stack;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The word of a thread whose teardown ran.
const TORN_DOWN: usize = 1;
/// Word values up to this are markers, never context addresses.
const LAST_MARKER: usize = TORN_DOWN;

/// Everything a thread keeps.
pub(crate) struct Context {
    pub(crate) stack: Stack,
    /// This thread's parking spot in the handle tables (registry.rs).
    pub(crate) spot: Spot,
    /// This thread's last error, formatted when read.
    last_error: LastError,
}

impl Drop for Context {
    /// The teardown order, written once: entries leave the stack top first,
    /// so each async entry releases its write lock; then the last error and
    /// the context's memory go. (Indices parked in the thread's spot stay
    /// there, for the next thread of that spot or any thread that needs
    /// them.)
    fn drop(&mut self) {
        self.stack.clear();
    }
}

mod word {
    //! The one thread-local word. With the `initial-exec-tls` feature on
    //! x86_64 Linux glibc it is declared in assembly in the initial-exec TLS
    //! model (one load relative to the thread pointer, no `__tls_get_addr`,
    //! which can allocate on a thread's first access to a `dlopen`ed
    //! library); elsewhere a constant-initialised `thread_local!` without a
    //! destructor (no registration, nothing run at exit).

    #[cfg(all(
        feature = "initial-exec-tls",
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu"
    ))]
    mod imp {
        use std::arch::{asm, global_asm};

        // One pointer-sized thread-local, zero in every new thread.
        global_asm!(
            ".pushsection .tbss,\"awT\",@nobits",
            ".p2align 3",
            ".globl storectx_thread_word_ie",
            ".hidden storectx_thread_word_ie",
            ".type storectx_thread_word_ie,@tls_object",
            ".size storectx_thread_word_ie,8",
            "storectx_thread_word_ie:",
            ".zero 8",
            ".popsection",
        );

        #[inline(always)]
        pub(crate) fn get() -> usize {
            let p: usize;
            // SAFETY: reads the 8-byte thread-local defined above, at the
            // offset the dynamic linker put in the GOT for it; nothing else.
            unsafe {
                asm!(
                    "mov {p}, qword ptr [rip + storectx_thread_word_ie@GOTTPOFF]",
                    "mov {p}, qword ptr fs:[{p}]",
                    p = out(reg) p,
                    options(nostack, preserves_flags, readonly, pure),
                );
            }
            p
        }

        #[inline(always)]
        pub(crate) fn set(p: usize) {
            // SAFETY: writes the 8-byte thread-local defined above, nothing else.
            unsafe {
                asm!(
                    "mov {t}, qword ptr [rip + storectx_thread_word_ie@GOTTPOFF]",
                    "mov qword ptr fs:[{t}], {p}",
                    t = out(reg) _,
                    p = in(reg) p,
                    options(nostack, preserves_flags),
                );
            }
        }
    }

    #[cfg(not(all(
        feature = "initial-exec-tls",
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu"
    )))]
    mod imp {
        use std::cell::Cell;

        thread_local! {
            static WORD: Cell<usize> = const { Cell::new(0) };
        }

        #[inline(always)]
        pub(crate) fn get() -> usize {
            WORD.with(Cell::get)
        }

        #[inline(always)]
        pub(crate) fn set(p: usize) {
            WORD.with(|w| w.set(p));
        }
    }

    pub(crate) use imp::{get, set};
}

/// This thread's context, if it has one.
#[inline(always)]
fn context_ptr() -> Option<*mut Context> {
    let w = word::get();
    (w > LAST_MARKER).then_some(w as *mut Context)
}

/// Runs `f` on this thread's context, if it has one; `None` otherwise,
/// without running `f` (for fast paths that must not call out).
///
/// # Safety
/// `f` must not reach this thread's context again (through any function of
/// this module): the `&mut` it gets is the only reference while it runs.
/// The core never calls back into embedder code, so no export re-enters.
#[inline(always)]
pub(crate) unsafe fn with_fast<R>(f: impl FnOnce(&mut Context) -> R) -> Option<R> {
    // SAFETY: a context address in the word is this thread's live, boxed
    // context (set by `create`, cleared before `teardown` drops it), and by
    // this function's contract nothing else refers to it while `f` runs.
    context_ptr().map(|p| f(unsafe { &mut *p }))
}

/// Runs `f` on this thread's context, or on `None` when it has none (for
/// calls that need no state but use it when it is there).
///
/// # Safety
/// As for [`with_fast`].
#[inline(always)]
pub(crate) unsafe fn with_if_any<R>(f: impl FnOnce(Option<&mut Context>) -> R) -> R {
    // SAFETY: as in `with_fast`.
    f(context_ptr().map(|p| unsafe { &mut *p }))
}

/// Runs `f` on this thread's context, creating it on the thread's first
/// call. Refused (`NoContext`, nothing changed) once this thread's
/// teardown ran.
///
/// # Safety
/// As for [`with_fast`].
#[inline]
pub(crate) unsafe fn with<R>(f: impl FnOnce(&mut Context) -> Result<R>) -> Result<R> {
    let p = match context_ptr() {
        Some(p) => p,
        None => create()?,
    };
    // SAFETY: as in `with_fast`.
    f(unsafe { &mut *p })
}

/// Reads this thread's context; `default` when it has none. Never creates
/// one, never allocates, never locks.
///
/// # Safety
/// As for [`with_fast`]; `f` only reads.
#[inline(always)]
pub(crate) unsafe fn read<R>(default: R, f: impl FnOnce(&Context) -> R) -> R {
    // SAFETY: as in `with_fast`; shared access while no `with` runs.
    context_ptr().map_or(default, |p| f(unsafe { &*p }))
}

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
    // SAFETY: `key` is a valid out-pointer; `teardown` has the destructor
    // signature and stays mapped (the library is never unloaded, build.rs).
    let made = unsafe { libc::pthread_key_create(&mut key, Some(teardown)) };
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

#[cold]
#[inline(never)]
fn create() -> Result<*mut Context> {
    if word::get() == TORN_DOWN {
        return Err(Error::NoContext(detail!(
            "this thread is exiting and its libstorectx state was already torn down: \
             state made now might never be, so nothing was done"
        )));
    }
    let key = key()?;
    let context = Box::into_raw(Box::new(Context {
        stack: Stack::new(),
        spot: Spot::next(),
        last_error: LastError::new(),
    }));
    // SAFETY: `key` is a live key of this process; the value is the
    // context's address, only ever used as a non-null marker.
    if unsafe { libc::pthread_setspecific(key, context.cast()) } != 0 {
        // SAFETY: `context` was boxed just above and never published.
        drop(unsafe { Box::from_raw(context) });
        return Err(Error::Exhausted(detail!(
            "pthread_setspecific failed: out of memory for thread-specific data"
        )));
    }
    word::set(context as usize);
    Ok(context)
}

/// The one teardown: the `pthread_key` destructor, run by glibc in the
/// thread's exit after its C++ `thread_local` and Rust TLS destructors, in
/// whichever of glibc's destructor rounds first finds the key set (the
/// thread's first call may have come from another destructor).
extern "C" fn teardown(_value: *mut libc::c_void) {
    let context = context_ptr();
    // Cleared first: nothing reaches the context while it is dropped, and
    // later calls that need state are refused.
    word::set(TORN_DOWN);
    if let Some(p) = context {
        // SAFETY: the word held this thread's boxed context; it is no
        // longer reachable, so this is its last use.
        let context = unsafe { Box::from_raw(p) };
        // A panic must not unwind into glibc's exit path.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(context))).is_err() {
            std::process::abort();
        }
    }
}

/// Records `op`'s error `e` as this thread's last error (a copy, formatted
/// only when read), creating its context if needed; dropped silently once
/// the thread's teardown ran.
pub(crate) fn record_error(op: &'static str, e: Error) {
    // SAFETY: the closure only writes the last error; nothing re-enters.
    let _ = unsafe {
        with(|cx| {
            cx.record_error(op, e);
            Ok(())
        })
    };
}

impl Context {
    /// Keeps `op`'s error `e` as this thread's last error (a copy, formatted
    /// only when read).
    #[inline]
    pub(crate) fn record_error(&mut self, op: &'static str, e: Error) {
        self.last_error.set(op, e);
    }
}

/// Records `text`, formatted now, as this thread's last error (the panic
/// boundary), as [`record_error`] does.
pub(crate) fn record_error_text(text: std::fmt::Arguments<'_>) {
    // SAFETY: the closure only writes the last error; nothing re-enters.
    let _ = unsafe {
        with(|cx| {
            cx.last_error.set_text(text);
            Ok(())
        })
    };
}

/// This thread's last error text, NUL-terminated: "" when the thread has no
/// context. Never creates state, allocates or locks (the text is formatted
/// into the context's own buffer).
pub(crate) fn last_error() -> *const u8 {
    if word::get() == TORN_DOWN {
        return c"this thread is exiting and its libstorectx state was torn down; calls that \
need state are refused"
            .as_ptr()
            .cast();
    }
    // SAFETY: the closure only formats the last error; nothing re-enters.
    unsafe { with_fast(|cx| cx.last_error.text()) }.unwrap_or(c"".as_ptr().cast())
}
