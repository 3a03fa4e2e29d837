//! Pause guards: host code that holds a borrow and calls back into guest
//! code pauses the borrow, so the guest's own imports may borrow again.

use super::boundary::{self, gated_stack_unreentered, put, required, stack_unreentered};
use super::identity::storectx_store_id;
use super::status::storectx_status;
use crate::stack::Stack;
use std::ptr::NonNull;

/// Names one pause. Pauses of an entry nest: unpause the innermost first.
///
/// \ingroup api_pause
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct storectx_pause_guard {
    /// Opaque; do not interpret.
    pub raw: u64,
}

/// Pauses a borrow of the current store, which must be `id`: takes one
/// borrow away if its count is above 0 and remembers whether it did. O(1).
/// Host code that holds a borrow pauses it before it calls back into guest
/// code, so that the guest's imports may take the store unborrowed
/// (`storectx_get_current_unborrowed`); `storectx_unpause` gives the borrow
/// back. The store stays on top and usable: this is not the "paused" of
/// `STORECTX_ERR_PAUSED` and `storectx_is_paused` (a store below the top).
///
/// Thread rules: the calling thread's stack only. Allocates this thread's
/// state if it has none and when nested pauses' records grow; takes no
/// lock, never waits. Not in a signal handler; from a destructor until this
/// thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `out` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `id` is 0 or `UINT64_MAX` (reserved).
/// - `STORECTX_ERR_NOT_INSTALLED`: `id` is not on this thread's stack.
/// - `STORECTX_ERR_PAUSED`: `id` is on this thread's stack but not on top.
/// - `STORECTX_ERR_EXHAUSTED`: the process used every pause number (2^61);
///   or a nested pause's record cannot be kept for lack of memory (a memory
///   limit reached: nothing was paused); or see the first-call case below.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread's stack is empty; or this thread
///   is exiting and its libstorectx state was already torn down (a call from
///   a late thread-exit destructor): nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `out` must point to writable memory for one `storectx_pause_guard`. NULL is
/// not optional: it is refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_pause
#[no_mangle]
pub unsafe extern "C" fn storectx_pause(
    id: storectx_store_id,
    out: *mut storectx_pause_guard,
) -> storectx_status {
    boundary::status_fast(
        "pause",
        || match NonNull::new(out) {
            // SAFETY: only `Stack` methods run: nothing reaches the context again.
            Some(out) => unsafe { gated_stack_unreentered(Stack::has_top, |s| s.try_pause(id)) }
                .flatten()
                // SAFETY: `out` is writable (this function's contract).
                .map(|raw| unsafe { put(out, storectx_pause_guard { raw }) })
                .is_some(),
            None => false,
        },
        // SAFETY: the same arguments, under the same contract.
        || unsafe { pause_slow(id, out) },
    )
}

/// `storectx_pause` when its fast path refused: explains a store not on
/// top at once; otherwise runs the full path (room to make, or an error).
///
/// # Safety
/// As for `storectx_pause`.
#[cold]
#[inline(never)]
unsafe extern "C" fn pause_slow(
    id: storectx_store_id,
    out: *mut storectx_pause_guard,
) -> storectx_status {
    boundary::refused_or(
        op!("pause"),
        |s, record| (!out.is_null() && !s.is_active(id)).then(|| s.explain_not_on_top(id, record)),
        // SAFETY: the same arguments, under the same contract.
        || unsafe { pause_full(id, out) },
    )
}

/// `storectx_pause`'s full path: makes room, then pauses or explains.
///
/// # Safety
/// As for `storectx_pause`.
#[cold]
#[inline(never)]
unsafe extern "C" fn pause_full(
    id: storectx_store_id,
    out: *mut storectx_pause_guard,
) -> storectx_status {
    boundary::status("pause", || {
        let out = required(out, "out")?;
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let raw = unsafe { stack_unreentered(|s| s.pause(id)) }?;
        // SAFETY: `out` is writable (this function's contract).
        unsafe { put(out, storectx_pause_guard { raw }) };
        Ok(())
    })
}

/// Ends a pause and restores the borrow it took. O(1).
///
/// Thread rules: the calling thread's stack only (another thread's or a
/// suspended entry's pause guard: STALE_HANDLE). On a thread without state
/// it creates it (allocates), even to refuse; else it allocates nothing,
/// takes no lock, never waits. Not in a signal handler; from a destructor
/// until this thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_STALE_HANDLE`: the pause already ended, its entry is gone,
///   or `g` is zeroed, forged or another thread's.
/// - `STORECTX_ERR_OUT_OF_ORDER`: the pause's entry is not on top, or this is
///   not its innermost pause.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: the borrow it restores would take the
///   count past `UINT32_MAX`.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// \ingroup api_pause
#[no_mangle]
pub extern "C" fn storectx_unpause(g: storectx_pause_guard) -> storectx_status {
    boundary::status_fast(
        "unpause",
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        || unsafe { gated_stack_unreentered(Stack::has_top, |s| s.try_unpause(g.raw)) } == Some(true),
        || unpause_slow(g),
    )
}

/// `storectx_unpause` when its fast path refused: explains why, or runs
/// the full path (the top entry's innermost pause nested in another, or a
/// thread without a stack).
#[cold]
#[inline(never)]
extern "C" fn unpause_slow(g: storectx_pause_guard) -> storectx_status {
    boundary::refused_or(
        op!("unpause"),
        |s, record| s.unpause_refusal(g.raw, record),
        || unpause_full(g),
    )
}

/// `storectx_unpause` on a thread without a stack (refused: no pause).
#[cold]
#[inline(never)]
extern "C" fn unpause_full(g: storectx_pause_guard) -> storectx_status {
    boundary::status("unpause", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { stack_unreentered(|s| s.unpause(g.raw)) }
    })
}
