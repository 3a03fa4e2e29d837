//! Install guards: pushing the store an embedder's `call` runs on, and
//! popping it when the call returns.

use super::boundary::{self, boundary, on_stack, on_stack_fast, put, read_stack, required};
use super::identity::storectx_store_id;
use super::status::storectx_status;
use crate::stack::is_valid_id;
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
/// nested call on the same store) and `store` must equal its address
/// (`STORECTX_ERR_ADDRESS_MISMATCH`). If `id` is on top as an async entry,
/// nothing is pushed and `*out` is a no-op guard. If `id` is deeper in the
/// stack: `STORECTX_ERR_PAUSED`. NULL `store` or `out`:
/// `STORECTX_ERR_NULL_ARGUMENT`; `id` 0 or `UINT64_MAX` (reserved):
/// `STORECTX_ERR_INVALID_ARGUMENT`.
/// O(1), no allocation once the stack has grown.
///
/// ```c
/// storectx_install_guard g;
/// if (storectx_install(id, store, &g) != STORECTX_OK) return -1;
/// run_guest(store);
/// storectx_uninstall(g);
/// ```
///
/// # Safety
/// `out` must be NULL or point to memory writable for one
/// `storectx_install_guard`.
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
                on_stack_fast(|s| s.try_install(id, store.as_ptr() as usize))
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

/// `storectx_install` when its fast path refused: does the job (making
/// room first) or explains why it cannot.
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
    boundary::status_or_refused(
        "install",
        // A paused store or a reserved id (install's other refusals, and
        // making room, are the full path's).
        |s| {
            (!out.is_null() && !store.is_null() && (s.is_paused(id) || !is_valid_id(id)))
                .then(|| s.not_on_top_error(id))
        },
        || {
            let out = required(out, "out")?;
            let store = required(store, "store")?;
            let raw = on_stack(|s| s.install(id, store.as_ptr() as usize))?;
            // SAFETY: `out` is writable (this function's contract).
            unsafe { put(out, storectx_install_guard { raw }) };
            Ok(())
        },
    )
}

/// Pops the guard's entry. It must be on top (`STORECTX_ERR_OUT_OF_ORDER` if
/// deeper, `STORECTX_ERR_STALE_HANDLE` if not on this thread's stack) and
/// unborrowed (`STORECTX_ERR_STILL_BORROWED`). Uninstalling an async entry
/// releases its write lock. The no-op guard pops nothing: it answers
/// `STORECTX_OK` while the async entry it stands for is on top.
///
/// \ingroup api_install
#[no_mangle]
pub extern "C" fn storectx_uninstall(guard: storectx_install_guard) -> storectx_status {
    boundary::status_fast(
        "uninstall",
        || on_stack_fast(|s| s.try_uninstall(guard.raw)) == Some(true),
        || uninstall_slow(guard),
    )
}

/// `storectx_uninstall` when its fast path refused: explains why.
#[cold]
#[inline(never)]
extern "C" fn uninstall_slow(guard: storectx_install_guard) -> storectx_status {
    boundary::status_or_refused(
        "uninstall",
        |s| s.uninstall_refusal(guard.raw),
        || on_stack(|s| s.uninstall(guard.raw)),
    )
}

/// Whether the guard's entry is on this thread's stack (false for the no-op
/// guard, a zeroed or spent guard, or a guard of another thread). O(1) when
/// the entry is on top, else O(depth). Read-only.
///
/// \ingroup api_install
#[no_mangle]
pub extern "C" fn storectx_install_guard_installed(guard: storectx_install_guard) -> bool {
    boundary("install_guard_installed", || {
        read_stack(false, |s| s.install_guard_installed(guard.raw))
    })
}
