//! Pause guards: host code that holds a borrow and calls back into guest
//! code pauses the borrow, so the guest's own imports may borrow again.

use super::boundary::{self, put, required};
use super::identity::storectx_store_id;
use super::status::storectx_status;
use crate::current;
use std::ptr::NonNull;

/// Names one pause. Pauses of an entry nest: unpause the innermost first.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct storectx_pause_guard {
    /// Opaque; do not interpret.
    pub raw: u64,
}

/// Pauses the current store, which must be `id` (errors as
/// `storectx_get_current`): takes one borrow away if its count is above 0
/// and remembers whether it did. O(1).
#[no_mangle]
pub extern "C" fn storectx_pause(
    id: storectx_store_id,
    out: *mut storectx_pause_guard,
) -> storectx_status {
    boundary::status_fast(
        "pause",
        || match NonNull::new(out) {
            Some(out) => current::with_fast(|s| s.try_pause(id))
                .flatten()
                .map(|raw| put(out, storectx_pause_guard { raw }))
                .is_some(),
            None => false,
        },
        || {
            let out = required(out, "out")?;
            let raw = current::with(|s| s.pause(id))?;
            put(out, storectx_pause_guard { raw });
            Ok(())
        },
    )
}

/// Ends a pause and restores the borrow it took. The pause's entry must be
/// on top and this must be its innermost pause (`STORECTX_ERR_OUT_OF_ORDER`);
/// a pause already ended, of an entry that is gone, or of another thread is
/// `STORECTX_ERR_STALE_HANDLE`. O(1).
#[no_mangle]
pub extern "C" fn storectx_unpause(g: storectx_pause_guard) -> storectx_status {
    boundary::status_fast(
        "unpause",
        || current::with_fast(|s| s.try_unpause(g.raw)) == Some(true),
        || current::with(|s| s.unpause(g.raw)),
    )
}
