//! The FFI boundary: no panic unwinds into C, NULL pointers become
//! `STORECTX_ERR_NULL_ARGUMENT`, every failure leaves a message for
//! `storectx_last_error()`, and the exports reach the calling thread's stack
//! through the accessors below or `thread`'s own: all `unsafe fn`s whose
//! contract (the closure never reaches the context again) each call site
//! states it keeps.

use super::status::storectx_status;
use crate::error::{Code, Error, Op, Record, Result};
use crate::stack::Stack;
use crate::thread;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// What an export returns when the core panicked: each return type knows.
pub(crate) trait PanicValue {
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

/// Runs `f` on this thread's stack, creating the thread's context on its
/// first call (refused once the thread is past its last destructor round).
///
/// # Safety
/// `f` must not reach this thread's context again (no export, no accessor):
/// see `thread::with_unreentered`.
#[inline(always)]
pub(crate) unsafe fn stack_unreentered<R>(f: impl FnOnce(&mut Stack) -> Result<R>) -> Result<R> {
    // SAFETY: this function's contract is that of `with_unreentered`.
    unsafe { thread::with_unreentered(|cx| f(&mut cx.stack)) }
}

/// Runs `f` on this thread's stack if `gate`, shown it first read-only,
/// lets it (`None`, `f` not run, otherwise): the hot paths, which must not
/// call out and test nothing else before the stack's own fields. `gate`
/// must be one of the stack's gates (`Stack::has_top`,
/// `Stack::has_number`), which refuse a thread without a context.
///
/// # Safety
/// As for [`stack_unreentered`], and `gate` refuses `Stack::new()` (see
/// `thread::with_stack_gated`).
#[inline(always)]
pub(crate) unsafe fn gated_stack_unreentered<R>(
    gate: impl FnOnce(&Stack) -> bool,
    f: impl FnOnce(&mut Stack) -> R,
) -> Option<R> {
    // SAFETY: this function's contract is that of `with_stack_gated`.
    unsafe { thread::with_stack_gated(gate, f) }
}

/// Reads this thread's stack, an empty one for a thread without one: the
/// read-only hot paths, whose answer on an empty stack is the one for a
/// thread without state. Never creates state, allocates or locks.
///
/// # Safety
/// As for [`stack_unreentered`].
#[inline(always)]
pub(crate) unsafe fn read_any_stack_unreentered<R>(f: impl FnOnce(&Stack) -> R) -> R {
    // SAFETY: this function's contract is that of `read_stack_any`.
    unsafe { thread::read_stack_any(f) }
}

/// Reads this thread's stack; `default` for a thread without one. Never
/// creates state, allocates or locks (the read-only calls).
///
/// # Safety
/// As for [`stack_unreentered`].
#[inline(always)]
pub(crate) unsafe fn read_stack_unreentered<R>(default: R, f: impl FnOnce(&Stack) -> R) -> R {
    // SAFETY: this function's contract is that of `read_unreentered`.
    unsafe { thread::read_unreentered(default, |cx| f(&cx.stack)) }
}

/// Runs an export's body, turning a panic into `R::panic_value()` and a
/// last-error message. The core validates before it mutates, so a panic
/// leaves the stack as it was.
#[inline(always)]
pub(crate) fn boundary<R: PanicValue>(op: &'static str, body: impl FnOnce() -> R) -> R {
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
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    // The payload is not Copy: this message is written now.
    thread::record_error_text(format_args!(
        "{op}: internal error caught, nothing changed: {what}"
    ));
    R::panic_value()
}

/// [`boundary`] for exports that return a status.
#[inline(always)]
pub(crate) fn status(op: &'static str, body: impl FnOnce() -> Result<()>) -> storectx_status {
    boundary(op, || match body() {
        Ok(()) => storectx_status::STORECTX_OK,
        Err(e) => fail(op, &e),
    })
}

/// What an export's fast path found (see [`status_fast_cx`]).
pub(crate) enum Fast {
    /// The job is done: `STORECTX_OK`.
    Done,
    /// The call is refused by the stack the thread's word points to: its
    /// `*_refused` half explains why, given the word.
    Refused(thread::Word),
    /// Not tried (a NULL argument, or a stack its gate refused): the
    /// export's slow half runs.
    Slow,
}

impl Fast {
    /// A gated fast path's outcome ([`gated_stack_word`]): `Done` after
    /// `done` wrote the result.
    #[inline(always)]
    pub(crate) fn of<R>(
        found: std::result::Result<R, Option<thread::Word>>,
        done: impl FnOnce(R),
    ) -> Fast {
        match found {
            Ok(r) => {
                done(r);
                Fast::Done
            }
            Err(Some(w)) => Fast::Refused(w),
            Err(None) => Fast::Slow,
        }
    }
}

/// Runs `f` on this thread's stack if `gate` lets it, as
/// [`gated_stack_unreentered`]: `Ok` with what `f` answers, `Err(Some)`
/// with the thread's word (for the export's `*_refused` half) where `f`
/// answers `None`, `Err(None)` where `gate` refused.
///
/// # Safety
/// As for [`gated_stack_unreentered`].
#[inline(always)]
pub(crate) unsafe fn gated_stack_word<R>(
    gate: impl FnOnce(&Stack) -> bool,
    f: impl FnOnce(&mut Stack) -> Option<R>,
) -> std::result::Result<R, Option<thread::Word>> {
    // SAFETY: this function's contract is that of `with_stack_gated_word`.
    unsafe { thread::with_stack_gated_word(gate, f) }
}

/// Reads this thread's stack, as [`read_any_stack_unreentered`]: `Ok`
/// with what `f` answers, `Err` with the thread's word (for the export's
/// `*_refused` half) where it answers `None`.
///
/// # Safety
/// As for [`read_any_stack_unreentered`].
#[inline(always)]
pub(crate) unsafe fn read_any_stack_word<R>(
    f: impl FnOnce(&Stack) -> Option<R>,
) -> std::result::Result<R, thread::Word> {
    // SAFETY: this function's contract is that of `read_stack_any_word`.
    unsafe { thread::read_stack_any_word(f) }
}

/// An export whose fast path hands a refusal on with the thread's word:
/// `fast` either does the whole job, or finds the call refused and answers
/// the word it read, or did not try (`Fast::Slow`, nothing changed). A
/// refusal goes to `refused`: a tail call to the export's out-of-line
/// `*_refused` half (an `extern "C" fn` inside [`refused_at`]), given the
/// word after the export's own arguments, so it stays in the next argument
/// register: no second read of the thread's word. Otherwise `slow` runs, as
/// in [`status_fast`].
#[inline(always)]
pub(crate) fn status_fast_cx(
    op: &'static str,
    fast: impl FnOnce() -> Fast,
    refused: impl FnOnce(thread::Word) -> storectx_status,
    slow: impl FnOnce() -> storectx_status,
) -> storectx_status {
    boundary(op, || match fast() {
        Fast::Done => storectx_status::STORECTX_OK,
        Fast::Refused(w) => refused(w),
        Fast::Slow => slow(),
    })
}

/// The body of an export's `*_refused` half, given the word its fast path
/// read (see [`status_fast_cx`]): `why` explains the refusal (reading the
/// stack, writing the detail in place as the thread's last error through
/// the [`Record`] it is given) and its status is answered. An empty stack
/// (a refusing one among them: a thread without a context) is `empty`'s
/// instead (a tail call to the export's full path, which explains it as on
/// a thread without a context): tested through a shared read first, before
/// any `&mut` is made (`thread::with_context_at`).
///
/// # Safety
/// `w` was read from this thread's word during this export's call, and no
/// reference to the context is live.
#[inline(always)]
pub(crate) unsafe fn refused_at<O: Op>(
    op: O,
    w: thread::Word,
    why: impl FnOnce(&Stack, Record<'_, O>) -> Code,
    empty: impl FnOnce() -> storectx_status,
) -> storectx_status {
    boundary(O::NAME, || {
        // SAFETY: this function's contract; `why` only reads the stack and
        // writes the last error: nothing reaches the context again.
        let code = unsafe {
            thread::with_context_at(w, |cx| {
                let (stack, record) = cx.refusal(op);
                why(stack, record)
            })
        };
        match code {
            Some(code) => code.into(),
            None => empty(),
        }
    })
}

/// The slow half of a fast export whose common refusals can be told from
/// the stack alone: on a thread with a context, `why` either finds the
/// call refused, writes why in place as the thread's last error (through
/// the [`Record`] it is given) and its status is answered, or answers
/// `None` having changed nothing; then (and on a thread without a context)
/// `full` runs, a tail call to the export's `*_full` half (inside
/// [`status`]). No error value is carried through frames, and the refusal
/// keeps no frame of its own. A refusal is routine for embedders (SPEC, "A
/// refusal is cheap").
#[inline(always)]
pub(crate) fn refused_or<O: Op>(
    op: O,
    why: impl FnOnce(&Stack, Record<'_, O>) -> Option<Code>,
    full: impl FnOnce() -> storectx_status,
) -> storectx_status {
    boundary(O::NAME, || {
        // SAFETY: `why` only reads the stack and writes the last error:
        // nothing reaches the context again.
        let refused = unsafe {
            thread::with_existing_unreentered(|cx| {
                let (stack, record) = cx.refusal(op);
                why(stack, record)
            })
        };
        match refused.flatten() {
            Some(code) => code.into(),
            None => full(),
        }
    })
}

/// As [`refused_or`], for a slow half that may also do the job: `why`,
/// given the stack to change, answers `Some(Ok)` having done it,
/// `Some(Err)` with the status of the refusal it recorded, or `None`
/// having changed nothing; then (and on a thread without a context)
/// `full` runs, a tail call to the export's `*_full` half.
#[inline(always)]
pub(crate) fn done_refused_or<O: Op>(
    op: O,
    why: impl FnOnce(&mut Stack, Record<'_, O>) -> Option<std::result::Result<(), Code>>,
    full: impl FnOnce() -> storectx_status,
) -> storectx_status {
    boundary(O::NAME, || {
        // SAFETY: `why` only changes the stack (dropping an entry's store
        // reference reaches no context) and writes the last error: nothing
        // reaches the context again.
        let outcome = unsafe {
            thread::with_existing_unreentered(|cx| {
                let (stack, record) = cx.refusal_mut(op);
                why(stack, record)
            })
        };
        match outcome.flatten() {
            Some(Ok(())) => storectx_status::STORECTX_OK,
            Some(Err(code)) => code.into(),
            None => full(),
        }
    })
}

/// An export with a fast path: `fast` either does the whole job and
/// answers `true`, or changes nothing and answers `false`; then `slow` —
/// which must be a call to the export's own out-of-line `extern "C" fn`
/// with the same arguments, itself inside [`status`], [`refused_or`] or
/// [`done_refused_or`] —
/// does the job or explains why it cannot. A call through the C ABI cannot unwind, so when
/// `fast` cannot panic either, the panic boundary here costs nothing and
/// the slow call is a tail jump: the hot function keeps no frame, no
/// spilled arguments and no error value.
#[inline(always)]
pub(crate) fn status_fast(
    op: &'static str,
    fast: impl FnOnce() -> bool,
    slow: impl FnOnce() -> storectx_status,
) -> storectx_status {
    boundary(op, || {
        if fast() {
            storectx_status::STORECTX_OK
        } else {
            slow()
        }
    })
}

/// Records `e` as this thread's last error (kept unformatted: see
/// `error::LastError`) and answers its status. Never inlined: inlined into
/// an export it costs the export's success path a register and a frame
/// (seen in storectx_suspend, +4 instructions, when `record_error` shrank).
#[cold]
#[inline(never)]
pub(crate) fn fail(op: &'static str, e: &Error) -> storectx_status {
    thread::record_error(op, *e);
    storectx_status::from(e)
}

/// A required pointer: `NULL_ARGUMENT` naming `what` when it is NULL.
#[inline(always)]
pub(crate) fn required<T>(p: *mut T, what: &'static str) -> Result<NonNull<T>> {
    NonNull::new(p).ok_or_else(|| null_argument(what))
}

#[cold]
#[inline(never)]
fn null_argument(what: &'static str) -> Error {
    Error::NullArgument(detail!("{what} is NULL"))
}

/// Writes an out-parameter (after every check has passed).
///
/// # Safety
/// `out` must point to memory writable for a `T` (the C caller's promise,
/// stated on each export).
#[inline(always)]
pub(crate) unsafe fn put<T>(out: NonNull<T>, value: T) {
    // SAFETY: non-NULL by type, writable by this function's contract;
    // unaligned writes tolerate packed C structs.
    unsafe { out.as_ptr().write_unaligned(value) }
}
