//! Install guards: pushing the store an embedder's `call` runs on, and
//! popping it when the call returns.

use super::boundary::{
    self, boundary, gated_stack_unreentered, put, read_stack_unreentered, required,
    stack_unreentered,
};
use super::identity::storectx_store_id;
use super::status::storectx_status;
use crate::error::reserved_id;
use crate::stack::{is_valid_id, Stack};
use std::ffi::c_void;
use std::ptr::NonNull;

/// Names the entry an install pushed. A small value: copy it freely; it is
/// validated on use. A zeroed guard is never valid.
///
/// \ingroup api_install
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct storectx_install_guard {
    /// Opaque; do not interpret.
    pub raw: u64,
}

/// Pushes a sync entry for `store` (never dereferenced) under `id` and
/// writes its guard to `*out`.
///
/// If `id` is already on top as a sync entry, a second entry is pushed (a
/// nested call on the same store) and `store` must equal its address. If `id`
/// is on top as an async entry, nothing is pushed and `*out` is a no-op guard.
/// O(1) amortized, no allocation once the stack has grown: a push whose
/// probe of the thread's store set goes far redraws the set's hash and
/// re-inserts the stack's ids in place, O(depth) for that call (at most 8
/// such redraws per table size in a thread's life).
///
/// ```c
/// storectx_install_guard g;
/// if (storectx_install(id, store, &g) != STORECTX_OK) return -1;
/// run_guest(store);
/// storectx_uninstall(g);
/// ```
///
/// Thread rules: pushes on the calling thread's stack. Allocates this
/// thread's state if it has none and when the stack grows; takes no lock,
/// never waits. Not in a signal handler; from a destructor until this
/// thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `store` or `out` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `id` is 0 or `UINT64_MAX` (reserved).
/// - `STORECTX_ERR_ADDRESS_MISMATCH`: `id` is on top as a sync entry with
///   another address. (An async entry of `id` on top is not compared: the
///   call answers its no-op guard whatever `store` is.)
/// - `STORECTX_ERR_PAUSED`: `id` is deeper in this thread's stack.
/// - `STORECTX_ERR_EXHAUSTED`: the process used every entry number (2^61);
///   or this thread's stack cannot grow for lack of memory (a memory limit
///   reached: nothing was pushed, the stack is as it was); or this thread's
///   first stateful call could not create its state (no thread-specific
///   data key or memory left).
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `out` must point to writable memory for one `storectx_install_guard`. NULL
/// is not optional: it is refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_install
#[no_mangle]
pub unsafe extern "C" fn storectx_install(
    id: storectx_store_id,
    store: *mut c_void,
    out: *mut storectx_install_guard,
) -> storectx_status {
    boundary::status_fast(
        "install",
        || match (NonNull::new(out), NonNull::new(store)) {
            (Some(out), Some(store)) => {
                // SAFETY: only `Stack` methods run: nothing reaches the context again.
                unsafe {
                    gated_stack_unreentered(Stack::has_number, |s| {
                        s.try_install(id, store.as_ptr() as usize)
                    })
                }
                .flatten()
                // SAFETY: `out` is writable (this function's contract).
                .map(|raw| unsafe { put(out, storectx_install_guard { raw }) })
                .is_some()
            }
            _ => false,
        },
        // SAFETY: the same arguments, under the same contract.
        || unsafe { install_slow(id, store, out) },
    )
}

/// `storectx_install` when its fast path refused: explains a reserved id
/// or a paused store at once; otherwise runs the full path (which makes
/// room first, or explains install's other refusals).
///
/// # Safety
/// As for `storectx_install`.
#[cold]
#[inline(never)]
unsafe extern "C" fn install_slow(
    id: storectx_store_id,
    store: *mut c_void,
    out: *mut storectx_install_guard,
) -> storectx_status {
    boundary::refused_or(
        op!("install"),
        |s, record| {
            if out.is_null() || store.is_null() {
                None
            } else if !is_valid_id(id) {
                Some(reserved_id(id, record))
            } else {
                s.explain_paused(id, record)
            }
        },
        // SAFETY: the same arguments, under the same contract.
        || unsafe { install_full(id, store, out) },
    )
}

/// `storectx_install`'s full path: makes room, then pushes or explains.
///
/// # Safety
/// As for `storectx_install`.
#[cold]
#[inline(never)]
unsafe extern "C" fn install_full(
    id: storectx_store_id,
    store: *mut c_void,
    out: *mut storectx_install_guard,
) -> storectx_status {
    boundary::status("install", || {
        let out = required(out, "out")?;
        let store = required(store, "store")?;
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let raw = unsafe { stack_unreentered(|s| s.install(id, store.as_ptr() as usize)) }?;
        // SAFETY: `out` is writable (this function's contract).
        unsafe { put(out, storectx_install_guard { raw }) };
        Ok(())
    })
}

/// Pops the guard's entry. Uninstalling an async entry releases its write
/// lock. The no-op guard pops nothing: it answers `STORECTX_OK` while the
/// async entry it stands for is on top. A paused borrow is not a live one:
/// an entry whose borrows are all paused (`storectx_pause`) is popped, and
/// those pause guards become stale (`storectx_unpause` answers
/// `STORECTX_ERR_STALE_HANDLE`).
///
/// Thread rules: the calling thread's stack only (another thread's or a
/// suspended entry's guard: STALE_HANDLE). On a thread without state it
/// creates it (allocates), even to refuse; takes no lock; releasing an
/// async entry's lock may wake a waiter and free the store. Not in a signal
/// handler; from a destructor until this thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_STALE_HANDLE`: `guard` names no entry on this thread's
///   stack (uninstalled, zeroed, forged, another thread's, suspended).
/// - `STORECTX_ERR_OUT_OF_ORDER`: its entry is deeper in this thread's stack.
/// - `STORECTX_ERR_STILL_BORROWED`: its entry has live borrows.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// \ingroup api_install
#[no_mangle]
pub extern "C" fn storectx_uninstall(guard: storectx_install_guard) -> storectx_status {
    boundary::status_fast(
        "uninstall",
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        || unsafe { gated_stack_unreentered(Stack::has_top, |s| s.try_uninstall(guard.raw)) } == Some(true),
        || uninstall_slow(guard),
    )
}

/// `storectx_uninstall` when its fast path did not pop: pops an async
/// entry (releasing its lock) or an entry with pause records, if that is
/// what the guard names on top, unborrowed; else explains why not in place,
/// or runs the full path (a thread without a stack, the no-op guard). One
/// read of the thread's word for both (issue 20: an async entry's
/// uninstall is not a refusal, and a refusal costs at most 3x a success).
#[cold]
#[inline(never)]
extern "C" fn uninstall_slow(guard: storectx_install_guard) -> storectx_status {
    boundary::done_refused_or(
        op!("uninstall"),
        |s, record| s.uninstall_or_refusal(guard.raw, record),
        || uninstall_full(guard),
    )
}

/// `storectx_uninstall`'s full path.
#[cold]
#[inline(never)]
extern "C" fn uninstall_full(guard: storectx_install_guard) -> storectx_status {
    boundary::status("uninstall", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { stack_unreentered(|s| s.uninstall(guard.raw)) }
    })
}

/// Whether the guard's entry is on this thread's stack (false for the no-op
/// guard, a zeroed or spent guard, or a guard of another thread). O(1) when
/// the entry is on top, else O(depth).
///
/// Thread rules: the calling thread's stack only (another thread's guard
/// answers false). Read-only: allocates nothing, takes no lock, creates no
/// state (a thread without state answers false); callable from a destructor,
/// or a signal handler that did not interrupt a libstorectx call on the same
/// thread.
///
/// \ingroup api_install
#[no_mangle]
pub extern "C" fn storectx_install_guard_installed(guard: storectx_install_guard) -> bool {
    boundary("install_guard_installed", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { read_stack_unreentered(false, |s| s.install_guard_installed(guard.raw)) }
    })
}
