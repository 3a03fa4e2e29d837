//! The calling thread's context: all of its per-thread state in one struct,
//! reached through one thread-local word, torn down in one place.
//!
//! The word always points to a [`Stack`]: the first field of the thread's
//! [`Context`], or one of three refusing stacks (static, shared by every
//! thread, never written: no entry, no pause room, no number, so every fast
//! path refuses on one before it writes anything, with no test of the word
//! of its own):
//! * [`Refusing::Never`] (the word's initial value) — the thread never made
//!   a call that needs state. Read-only calls answer as for an empty stack:
//!   they never allocate, lock or create state, so they work from a signal
//!   handler or under the loader's lock.
//! * the thread's [`Context`], boxed on its first call that needs state.
//!   That call also arms a `pthread_key` (created once per process) whose
//!   destructor is the one teardown.
//! * [`Refusing::TornDown`] — the teardown ran: the thread is exiting and
//!   its state is gone. A call that needs state, made after it by another
//!   destructor, is refused with nothing changed. (glibc does not say which
//!   of its four destructor rounds it is in, so a context made after the
//!   teardown could fall in the last round and never be torn down: refusing
//!   is the only answer that never leaks a lock.)
//! * [`Refusing::NoState`] — the thread's state could not be made (its last
//!   try failed: no thread-specific data key or FLS index left, or no
//!   memory for the context); the next call that needs state tries again.
//!
//! Why a `pthread_key` and not a Rust `thread_local!` with a destructor:
//! the latter registers through `__cxa_thread_atexit_impl`, which allocates
//! and takes the dynamic loader's lock, and which does nothing once the
//! thread's destructors have started (a first call made from a
//! `pthread_key` destructor would never be cleaned up).

use crate::error::{Error, LastError, Op, Record, Result};
use crate::registry::Spot;
use crate::stack::Stack;

/// The three states of a thread without a context, each the address of
/// its own refusing stack in [`REFUSING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Refusing {
    /// No call that needs state yet.
    Never = 0,
    /// The thread's teardown ran.
    TornDown = 1,
    /// The thread's state could not be made (no key or index, or no memory).
    NoState = 2,
}

/// A stack that refuses every fast path: `Stack::new()` (no entry, so no
/// top; no pause room; no number), never written. Shared by all threads,
/// so it is only ever read through `&` (the fast paths' gates, see
/// [`with_stack_gated`], refuse on it before any `&mut` is made).
#[repr(transparent)]
struct RefusingStack(Stack);

// SAFETY: never written (only `&` references to it are ever made, see
// `with_stack_gated`), so sharing it between threads is sharing plain
// immutable data; its raw `top` pointer is null.
unsafe impl Sync for RefusingStack {}

/// The refusing stacks, indexed by [`Refusing`].
static REFUSING: [RefusingStack; 3] = [
    RefusingStack(Stack::new()),
    RefusingStack(Stack::new()),
    RefusingStack(Stack::new()),
];

/// The word of a thread in state `r`.
#[inline(always)]
fn refusing_word(r: Refusing) -> *mut () {
    std::ptr::from_ref(&REFUSING[r as usize].0)
        .cast_mut()
        .cast()
}

/// Which refusing stack the word `w` points to, `None` for a context.
#[inline(always)]
fn refusing_state(w: *mut ()) -> Option<Refusing> {
    let offset = w.addr().wrapping_sub(REFUSING.as_ptr().addr());
    match offset / std::mem::size_of::<RefusingStack>() {
        _ if offset >= std::mem::size_of_val(&REFUSING) => None,
        0 => Some(Refusing::Never),
        1 => Some(Refusing::TornDown),
        _ => Some(Refusing::NoState),
    }
}

/// Everything a thread keeps. `repr(C)`, its stack first: the word points
/// to a context's stack as it points to a refusing stack.
#[repr(C)]
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
    /// the context's memory go, and the parking spot goes back to the pool
    /// (its own drop: `Spot`, registry.rs). (Slots parked in the spot stay
    /// there, for its next owner or any thread that needs them.)
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
        target_env = "gnu",
        not(miri)
    ))]
    mod imp {
        use std::arch::{asm, global_asm};

        // One pointer-sized thread-local, in every new thread the address
        // of the first refusing stack (`Refusing::Never`): an initialised
        // TLS image (.tdata) whose one relocation the dynamic linker applies
        // before any thread copies it.
        global_asm!(
            ".pushsection .tdata,\"awT\",@progbits",
            ".p2align 3",
            ".globl storectx_thread_word_ie",
            ".hidden storectx_thread_word_ie",
            ".type storectx_thread_word_ie,@tls_object",
            ".size storectx_thread_word_ie,8",
            "storectx_thread_word_ie:",
            ".quad {never}",
            ".popsection",
            never = sym super::super::REFUSING,
        );

        // The word travels through assembly as an integer: its provenance is
        // exposed when stored and picked up again when read.
        #[inline(always)]
        pub(crate) fn get() -> *mut () {
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
            std::ptr::with_exposed_provenance_mut(p)
        }

        #[inline(always)]
        pub(crate) fn set(p: *mut ()) {
            let p = p.expose_provenance();
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

    // Under Miri too: it runs no inline assembly, and this path is the
    // same word with the same states, read through `thread_local!` (as a
    // pointer, so Miri tracks the context's provenance through it).
    // Windows GNU: a Win32 TLS slot of our own (platform/windows.rs). Not a
    // `thread_local!`: with the GNU toolchain that is an OS-key value which
    // std frees in its TLS callback at DLL_THREAD_DETACH and makes anew (0)
    // on the next access, after this thread's teardown marked it torn down
    // (the FLS callback runs before DLL_THREAD_DETACH), so a call from a
    // later DllMain or TLS callback made a context nothing tore down. (MSVC
    // has native TLS, which lives as long as the thread: `thread_local!`.)
    #[cfg(all(windows, target_env = "gnu", not(miri)))]
    mod imp {
        /// NULL (a slot never set) reads as the first refusing stack.
        #[inline(always)]
        pub(crate) fn get() -> *mut () {
            let p = crate::platform::word_get();
            if p.is_null() {
                super::super::refusing_word(super::super::Refusing::Never)
            } else {
                p
            }
        }

        #[inline(always)]
        pub(crate) fn set(p: *mut ()) {
            crate::platform::word_set(p);
        }
    }

    #[cfg(not(any(
        all(
            feature = "initial-exec-tls",
            target_arch = "x86_64",
            target_os = "linux",
            target_env = "gnu",
            not(miri)
        ),
        all(windows, target_env = "gnu", not(miri))
    )))]
    mod imp {
        use std::cell::Cell;

        thread_local! {
            static WORD: Cell<*mut ()> = const {
                Cell::new(std::ptr::from_ref(&super::super::REFUSING[0].0).cast_mut().cast())
            };
        }

        #[inline(always)]
        pub(crate) fn get() -> *mut () {
            WORD.with(Cell::get)
        }

        #[inline(always)]
        pub(crate) fn set(p: *mut ()) {
            WORD.with(|w| w.set(p));
        }
    }

    pub(crate) use imp::{get, set};
}

/// This thread's context, if it has one: one test of a field of the stack
/// the word points to (a context's stack is made owned, the refusing ones
/// are not: `Stack::is_owned`). Reads through the word, so it runs with
/// [`Held`] taken (no `&mut` to the context exists meanwhile).
#[inline(always)]
fn context_ptr() -> Option<*mut Context> {
    let w = word::get();
    // SAFETY: the word points to a live stack (see `with_stack_gated`);
    // a shared read, and the callers hold `Held`: no `&mut` to it exists.
    let owned = unsafe { (*w.cast::<Stack>()).is_owned() };
    debug_assert_eq!(owned, refusing_state(w).is_none());
    owned.then_some(w.cast())
}

// The four accessors below are the only way to this thread's context. They
// are `unsafe fn`s whose contract is in their name: `f` must not reach the
// context again ("unreentered") — it calls no export and no accessor — so
// the reference it gets is the only one while it runs. No safe function of
// the crate hands out a reference to the context: each call site states
// why its closure keeps the contract, and builds with debug assertions
// (every test) and Miri check it at run time (`Held`), at no cost in
// release builds.

/// Runs `f` on this thread's context, if it has one; `None` otherwise,
/// without running `f` (for fast paths that must not call out).
///
/// # Safety
/// `f` must not reach this thread's context again (no export, no accessor
/// of this module): the `&mut` it gets is the only reference while it runs.
#[inline(always)]
pub(crate) unsafe fn with_existing_unreentered<R>(f: impl FnOnce(&mut Context) -> R) -> Option<R> {
    let _held = Held::take();
    let p = context_ptr()?;
    // SAFETY: a context address in the word is this thread's live, boxed
    // context (set by `create`, cleared before `teardown` drops it), and by
    // this function's contract nothing else refers to it while `f` runs.
    Some(f(unsafe { &mut *p }))
}

/// Runs `f` on this thread's stack if `gate`, shown it first (read-only),
/// lets it; `None` otherwise, without running `f`. The fast paths: no test
/// of the word of its own (a thread without a context reaches a refusing
/// stack, on which `gate` refuses). Calls nothing else.
///
/// # Safety
/// As for [`with_existing_unreentered`]; and `gate` answers `false` on
/// `Stack::new()` (the refusing stacks: no entry, no pause room, no
/// number), so that no `&mut` to a refusing stack is ever made.
#[inline(always)]
pub(crate) unsafe fn with_stack_gated<R>(
    gate: impl FnOnce(&Stack) -> bool,
    f: impl FnOnce(&mut Stack) -> R,
) -> Option<R> {
    let _held = Held::take();
    // The word points to a live stack: a refusing one (static) or the first
    // field of this thread's boxed context (`repr(C)`).
    let p = word::get().cast::<Stack>();
    // SAFETY: a live stack (above); shared, and by this function's contract
    // no `&mut` to it exists while `gate` reads.
    if !gate(unsafe { &*p }) {
        return None;
    }
    debug_assert!(
        context_ptr().is_some(),
        "a gate let a refusing stack through"
    );
    // SAFETY: `gate` let it through, so it is not a refusing stack (this
    // function's contract) but this thread's context's, and by the same
    // contract nothing else refers to it while `f` runs.
    Some(f(unsafe { &mut *p }))
}

/// Reads this thread's stack, or a refusing stack (empty) when it has no
/// context: no test of the word (the read-only fast paths, whose answer
/// on an empty stack is the one for a thread without state).
///
/// # Safety
/// As for [`read_unreentered`].
#[inline(always)]
pub(crate) unsafe fn read_stack_any<R>(f: impl FnOnce(&Stack) -> R) -> R {
    let _held = Held::take();
    // SAFETY: the word points to a live stack (see `with_stack_gated`);
    // shared access, and by the contract no `&mut` exists while `f` reads.
    f(unsafe { &*word::get().cast::<Stack>() })
}

/// The thread's word as a fast path read it: the address of the stack it
/// points to (a refusing stack, or the first field of this thread's
/// context), kept raw (not derived from a reference the fast path made),
/// for the export's out-of-line `*_refused` half (see [`with_context_at`]).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Word(*mut Stack);

/// [`with_stack_gated`] for a fast path whose refusal its `*_refused` half
/// explains: `Ok` with what `f` answers, `Err(Some(word))` where `f`
/// answers `None` (the word to hand on), `Err(None)` where `gate` refused
/// (`f` not run).
///
/// # Safety
/// As for [`with_stack_gated`].
#[inline(always)]
pub(crate) unsafe fn with_stack_gated_word<R>(
    gate: impl FnOnce(&Stack) -> bool,
    f: impl FnOnce(&mut Stack) -> Option<R>,
) -> std::result::Result<R, Option<Word>> {
    let _held = Held::take();
    // As in `with_stack_gated`.
    let p = word::get().cast::<Stack>();
    // SAFETY: as in `with_stack_gated`.
    if !gate(unsafe { &*p }) {
        return Err(None);
    }
    debug_assert!(
        context_ptr().is_some(),
        "a gate let a refusing stack through"
    );
    // SAFETY: as in `with_stack_gated`; the `&mut` ends with `f`, and the
    // word handed on is `p` itself.
    unsafe { f(&mut *p) }.ok_or(Some(Word(p)))
}

/// [`read_stack_any`] for a fast path whose refusal its `*_refused` half
/// explains: `Ok` with what `f` answers, `Err(word)` where it answers
/// `None` (the word may point to a refusing stack: [`with_context_at`]
/// tells).
///
/// # Safety
/// As for [`read_stack_any`].
#[inline(always)]
pub(crate) unsafe fn read_stack_any_word<R>(
    f: impl FnOnce(&Stack) -> Option<R>,
) -> std::result::Result<R, Word> {
    let _held = Held::take();
    let p = word::get().cast::<Stack>();
    // SAFETY: as in `read_stack_any`.
    unsafe { f(&*p) }.ok_or(Word(p))
}

/// Runs `f` on this thread's context, given the word a fast path read
/// during the current export's call (so still live) and handed to its
/// out-of-line half, if the stack it points to is not empty; `None`, `f`
/// not run, otherwise. The emptiness is read through a shared reference
/// first: a refusing stack is empty, so no `&mut` to one is ever made, and
/// a stack that is not empty is this thread's context's.
///
/// # Safety
/// `w` was read from this thread's word during the current export's call,
/// no reference to the context is live, and `f` must not reach the context
/// again (as for [`with_existing_unreentered`]).
#[inline(always)]
pub(crate) unsafe fn with_context_at<R>(w: Word, f: impl FnOnce(&mut Context) -> R) -> Option<R> {
    let _held = Held::take();
    // SAFETY: a live stack (this function's contract); shared, and no
    // `&mut` to it exists.
    if unsafe { (*w.0).is_empty() } {
        return None;
    }
    debug_assert!(
        context_ptr() == Some(w.0.cast()),
        "a word not this thread's context"
    );
    // SAFETY: not empty, so not a refusing stack but the first field of
    // this thread's live context (`repr(C)`), whose whole address the word
    // holds; by this function's contract nothing else refers to it while
    // `f` runs.
    Some(f(unsafe { &mut *w.0.cast::<Context>() }))
}

/// Runs `f` on this thread's context, or on `None` when it has none (for
/// calls that need no state but use it when it is there).
///
/// # Safety
/// As for [`with_existing_unreentered`].
#[inline(always)]
pub(crate) unsafe fn with_any_unreentered<R>(f: impl FnOnce(Option<&mut Context>) -> R) -> R {
    let _held = Held::take();
    // SAFETY: as in `with_existing_unreentered`.
    f(context_ptr().map(|p| unsafe { &mut *p }))
}

/// Runs `f` on this thread's context, creating it on the thread's first
/// call. Refused (`NoContext`, nothing changed) once this thread's
/// teardown ran; `Exhausted`, nothing changed, when the context cannot be
/// made (no thread-specific data key or FLS index, or no memory left: the
/// next call tries again).
///
/// # Safety
/// As for [`with_existing_unreentered`].
#[inline]
pub(crate) unsafe fn with_unreentered<R>(f: impl FnOnce(&mut Context) -> Result<R>) -> Result<R> {
    let _held = Held::take();
    let p = match context_ptr() {
        Some(p) => p,
        None => create()?,
    };
    // SAFETY: as in `with_existing_unreentered`.
    f(unsafe { &mut *p })
}

/// Reads this thread's context; `default` when it has none. Never creates
/// one, never allocates, never locks.
///
/// # Safety
/// As for [`with_existing_unreentered`] (no `&mut` may exist while `f`
/// reads).
#[inline(always)]
pub(crate) unsafe fn read_unreentered<R>(default: R, f: impl FnOnce(&Context) -> R) -> R {
    let _held = Held::take();
    let Some(p) = context_ptr() else {
        return default;
    };
    // SAFETY: as in `with_existing_unreentered`; shared access, and by the
    // contract no `&mut` exists while `f` runs.
    f(unsafe { &*p })
}

/// The run-time check of the accessors' contract, in builds with debug
/// assertions and under Miri: taking the context while it is held panics
/// (the export's panic boundary answers `STORECTX_ERR_PANIC`).
#[cfg(any(debug_assertions, miri))]
struct Held;

#[cfg(any(debug_assertions, miri))]
thread_local! {
    static HELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(any(debug_assertions, miri))]
impl Held {
    /// Whether an accessor is running on this thread.
    fn is_held() -> bool {
        HELD.with(std::cell::Cell::get)
    }

    #[inline]
    fn take() -> Held {
        if HELD.with(|h| h.replace(true)) {
            panic!("this thread's libstorectx context was reached again while in use");
        }
        Held
    }
}

#[cfg(any(debug_assertions, miri))]
impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|h| h.set(false));
    }
}

/// Release builds: the contract is kept by the call sites, checked by the
/// test builds; nothing is left of the check.
#[cfg(not(any(debug_assertions, miri)))]
struct Held;

#[cfg(not(any(debug_assertions, miri)))]
impl Held {
    fn is_held() -> bool {
        false
    }

    #[inline(always)]
    fn take() -> Held {
        Held
    }
}

#[cold]
#[inline(never)]
fn create() -> Result<*mut Context> {
    if refusing_state(word::get()) == Some(Refusing::TornDown) {
        return Err(Error::NoContext(detail!(
            "this thread is exiting and its libstorectx state was already torn down: \
             state made now might never be, so nothing was done"
        )));
    }
    // Fallible: without memory the call is refused, nothing changed, and
    // the next call that needs state tries again (no spot was taken).
    let Some(context) = crate::fallible::try_box(|| Context {
        stack: Stack::new_owned(),
        spot: Spot::next(),
        last_error: LastError::new(),
    }) else {
        word::set(refusing_word(Refusing::NoState));
        return Err(no_memory_for_context());
    };
    let context = Box::into_raw(context);
    if let Err(e) = crate::platform::arm_thread_exit(context.cast()) {
        // SAFETY: `context` was boxed just above and never published.
        drop(unsafe { Box::from_raw(context) });
        // The refusal's message has nowhere to go: `last_error` answers
        // from the marker.
        word::set(refusing_word(Refusing::NoState));
        return Err(e);
    }
    word::set(context.cast());
    Ok(context)
}

/// `EXHAUSTED`: no memory for a thread's first context.
#[cold]
#[inline(never)]
fn no_memory_for_context() -> Error {
    Error::Exhausted(detail!(
        "no memory for this thread's libstorectx state ({} bytes); nothing was done",
        std::mem::size_of::<Context>()
    ))
}

/// The one teardown, run by the platform's thread-exit hook
/// (platform/mod.rs: a `pthread_key` destructor, run after the thread's C++
/// `thread_local` and Rust TLS destructors in whichever destructor round
/// first finds the key set; on Windows an FLS callback). `armed` is the
/// value `create` armed the hook with.
pub(crate) fn teardown(armed: *mut std::ffi::c_void) {
    let context = context_ptr();
    if context.map(<*mut Context>::cast) != Some(armed) {
        // Not this thread's context: a Windows fiber deleted on another
        // thread than the one that armed it. Its own thread keeps it.
        return;
    }
    // Cleared first: nothing reaches the context while it is dropped, and
    // later calls that need state are refused.
    word::set(refusing_word(Refusing::TornDown));
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

/// The backstop of the teardown where the platform has one (Windows: a
/// PE TLS callback at DLL_THREAD_DETACH, which runs after the thread's FLS
/// callbacks): tears down a context made after the thread's teardown ran,
/// or made for the first time during its exit (by another module's
/// DllMain or TLS callback), and marks the thread torn down so that later
/// calls are refused.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn teardown_at_detach() {
    let w = word::get();
    word::set(refusing_word(Refusing::TornDown));
    if refusing_state(w).is_none() {
        // SAFETY: the word held this thread's boxed context; it is no
        // longer reachable, so this is its last use.
        let context = unsafe { Box::from_raw(w.cast::<Context>()) };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(context))).is_err() {
            std::process::abort();
        }
    }
}

/// Records `op`'s error `e` as this thread's last error (a copy, formatted
/// only when read), creating its context if needed; dropped silently once
/// the thread's teardown ran.
pub(crate) fn record_error(op: &'static str, e: Error) {
    if Held::is_held() {
        // The panic of a caught re-entry (test builds): recording it would
        // re-enter once more and abort; the status still says PANIC.
        return;
    }
    // SAFETY: the closure only writes the last error; nothing re-enters.
    let _ = unsafe {
        with_unreentered(|cx| {
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

    /// The stack, to explain a refusal of `op`, and the [`Record`] that
    /// writes the explanation in place as this thread's last error.
    #[inline(always)]
    pub(crate) fn refusal<O: Op>(&mut self, op: O) -> (&Stack, Record<'_, O>) {
        (&self.stack, Record::new(&mut self.last_error, op))
    }

    /// As [`Context::refusal`], with the stack to change (a slow half that
    /// either does the job or explains why not).
    #[inline(always)]
    pub(crate) fn refusal_mut<O: Op>(&mut self, op: O) -> (&mut Stack, Record<'_, O>) {
        (&mut self.stack, Record::new(&mut self.last_error, op))
    }
}

/// Records `text`, formatted now, as this thread's last error (the panic
/// boundary), as [`record_error`] does.
pub(crate) fn record_error_text(text: std::fmt::Arguments<'_>) {
    if Held::is_held() {
        // As in `record_error`: a caught re-entry's panic is not recorded.
        return;
    }
    // SAFETY: the closure only writes the last error; nothing re-enters.
    let _ = unsafe {
        with_unreentered(|cx| {
            cx.last_error.set_text(text);
            Ok(())
        })
    };
}

/// This thread's last error text, NUL-terminated: "" when the thread has no
/// context. Never creates state, allocates or locks (the text is formatted
/// into the context's own buffer).
pub(crate) fn last_error() -> *const u8 {
    match refusing_state(word::get()) {
        Some(Refusing::TornDown) => {
            return c"this thread is exiting and its libstorectx state was torn down; calls \
that need state are refused"
                .as_ptr()
                .cast()
        }
        Some(Refusing::NoState) => {
            return c"EXHAUSTED: this thread's libstorectx state could not be created (the \
process has no thread-specific data key, FLS or TLS index, or memory left), so the message of \
its last failed call could not be kept; calls that need state are refused with nothing changed \
until one is freed"
                .as_ptr()
                .cast()
        }
        _ => {}
    }
    // SAFETY: the closure only formats the last error into the context's
    // buffer; nothing re-enters.
    unsafe { with_existing_unreentered(|cx| cx.last_error.text()) }.unwrap_or(c"".as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reaching the context again from inside an accessor is caught before
    /// a second reference exists (builds with debug assertions, Miri), and
    /// the context stays usable.
    #[test]
    #[cfg(debug_assertions)]
    fn a_reentered_accessor_is_caught() {
        // SAFETY: the outer closure breaks the contract on purpose; the
        // check panics before the inner accessor makes its reference.
        let nested = std::panic::catch_unwind(|| unsafe {
            with_unreentered(|cx| {
                cx.stack.install(1, 0x10)?;
                read_unreentered(0, |inner| inner.stack.depth());
                Ok(())
            })
        });
        assert!(nested.is_err(), "the nested read was not caught");
        // SAFETY: the closure only reads the stack.
        assert_eq!(unsafe { read_unreentered(0, |cx| cx.stack.depth()) }, 1);
        // An export inside an accessor: its own boundary catches the panic
        // and answers 0, not the depth (1).
        // SAFETY: broken on purpose, as above.
        let depth = unsafe { with_any_unreentered(|_| crate::ffi::identity::storectx_depth()) };
        assert_eq!(depth, 0, "the nested export ran");
        assert_eq!(crate::ffi::identity::storectx_depth(), 1);
        // SAFETY: the closure only changes the stack.
        unsafe { with_existing_unreentered(|cx| cx.stack.clear()) }.expect("the context exists");
        record_error("test", Error::Panic(detail!("after the nested calls")));
        assert!(!Held::is_held());
    }

    /// A thread's context owns a parking spot of the pool and its teardown
    /// gives it back: of twice as many threads as there are spots, one
    /// after another, more than `SPOTS` get one (with the spot leaked at
    /// teardown at most `SPOTS` could; other tests running meanwhile may
    /// hold spots for a moment).
    #[test]
    #[cfg_attr(miri, ignore)] // 512 threads
    fn a_context_s_spot_goes_back_at_its_teardown() {
        use crate::registry::SPOTS;
        let pooled = (0..2 * SPOTS)
            .filter(|_| {
                std::thread::spawn(|| {
                    // SAFETY: the closure only reads the context's spot.
                    unsafe { with_unreentered(|cx| Ok(cx.spot.is_pooled())) }.expect("a context")
                })
                .join()
                .expect("the thread ran")
            })
            .count();
        assert!(
            pooled > SPOTS,
            "{pooled} of {} threads had a spot",
            2 * SPOTS
        );
    }
}
