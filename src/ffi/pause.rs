//! Pause guards: host code that holds a borrow and calls back into guest
//! code pauses the borrow, so the guest's own imports may borrow again.

use super::boundary::{self, on_stack, on_stack_fast, put, required};
use super::identity::storectx_store_id;
use super::status::storectx_status;
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

/// Pauses the current store, which must be `id` (errors as
/// `storectx_get_current`): takes one borrow away if its count is above 0
/// and remembers whether it did. O(1).
///
/// # Safety
/// `out` must be NULL or point to memory writable for one
/// `storectx_pause_guard`.
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
            Some(out) => on_stack_fast(|s| s.try_pause(id))
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

/// `storectx_pause` when its fast path refused (room to make, or an error).
///
/// # Safety
/// As for `storectx_pause`.
#[cold]
#[inline(never)]
unsafe extern "C" fn pause_slow(
    id: storectx_store_id,
    out: *mut storectx_pause_guard,
) -> storectx_status {
    boundary::status_or_refused(
        "pause",
        |s| (!out.is_null() && !s.is_active(id)).then(|| s.not_on_top_error(id)),
        || {
            let out = required(out, "out")?;
            let raw = on_stack(|s| s.pause(id))?;
            // SAFETY: `out` is writable (this function's contract).
            unsafe { put(out, storectx_pause_guard { raw }) };
            Ok(())
        },
    )
}

/// Ends a pause and restores the borrow it took. The pause's entry must be
/// on top and this must be its innermost pause (`STORECTX_ERR_OUT_OF_ORDER`);
/// a pause already ended, of an entry that is gone, or of another thread is
/// `STORECTX_ERR_STALE_HANDLE`. Refused with `STORECTX_ERR_INVALID_ARGUMENT`,
/// nothing changed, when the borrow it restores would take the count past
/// `UINT32_MAX`. O(1).
///
/// \ingroup api_pause
#[no_mangle]
pub extern "C" fn storectx_unpause(g: storectx_pause_guard) -> storectx_status {
    boundary::status_fast(
        "unpause",
        || on_stack_fast(|s| s.try_unpause(g.raw)) == Some(true),
        || unpause_slow(g),
    )
}

/// `storectx_unpause` when its fast path refused: explains why.
#[cold]
#[inline(never)]
extern "C" fn unpause_slow(g: storectx_pause_guard) -> storectx_status {
    boundary::status("unpause", || on_stack(|s| s.unpause(g.raw)))
}
