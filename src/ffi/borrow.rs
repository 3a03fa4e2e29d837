//! Borrows of the current store: what host code deep in a call chain takes
//! to use the store, given only its id.

use super::async_store::{async_store_into_c, storectx_async_store};
use super::boundary::{self, put, required, stack_unreentered, Fast};
use super::identity::storectx_store_id;
use super::status::storectx_status;
use crate::stack::{Borrowed, Stack};
use crate::thread::Word;
use std::ffi::c_void;
use std::ptr::NonNull;

/// Names the entry a borrow counts against. Borrows are counted per entry:
/// releasing any borrow handle of that entry gives one borrow back.
///
/// \ingroup api_borrow
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct storectx_borrow {
    /// Opaque; do not interpret.
    pub raw: u64,
}

/// Writes a borrow's store address and handle.
///
/// # Safety
/// Both pointers writable (the exports' contract).
unsafe fn put_borrow(store: NonNull<*mut c_void>, out: NonNull<storectx_borrow>, b: &Borrowed) {
    // SAFETY: writable by this function's contract.
    unsafe {
        put(store, b.address as *mut c_void);
        put(out, storectx_borrow { raw: b.raw });
    }
}

/// Borrows the current store, which must be `id`: writes its address to
/// `*store` and a borrow to `*out`; the entry's borrow count goes up by one.
/// O(1).
///
/// Thread rules: the calling thread's stack only (a store only on another
/// thread's is not found here). On a thread without state it creates it
/// (allocates), even to refuse; else it allocates nothing, takes no lock,
/// never waits. Not in a signal handler; from a destructor until this
/// thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `store` or `out` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `id` is 0 or `UINT64_MAX` (reserved), or
///   the entry's borrow count is at `UINT32_MAX`.
/// - `STORECTX_ERR_NOT_INSTALLED`: `id` is not on this thread's stack.
/// - `STORECTX_ERR_PAUSED`: `id` is on this thread's stack but not on top.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread's stack is empty; or this thread
///   is exiting and its libstorectx state was already torn down (a call from
///   a late thread-exit destructor): nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `store` must point to writable memory for a `void *`; `out` must point to
/// writable memory for one `storectx_borrow`. NULL is not optional: it is
/// refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_borrow
#[no_mangle]
pub unsafe extern "C" fn storectx_get_current(
    id: storectx_store_id,
    store: *mut *mut c_void,
    out: *mut storectx_borrow,
) -> storectx_status {
    boundary::status_fast_cx(
        "get_current",
        || match (NonNull::new(store), NonNull::new(out)) {
            (Some(store), Some(out)) => Fast::of(
                // SAFETY: only `Stack` methods run: nothing reaches the context again.
                unsafe { boundary::gated_stack_word(Stack::has_top, |s| s.try_get_current(id)) },
                // SAFETY: writable (this function's contract).
                |b| unsafe { put_borrow(store, out, &b) },
            ),
            _ => Fast::Slow,
        },
        // SAFETY: the word the fast path read; the same arguments.
        |w| unsafe { get_current_refused(id, store, out, w) },
        // SAFETY: the same arguments, under the same contract.
        || unsafe { get_current_slow(id, store, out) },
    )
}

/// `storectx_get_current` refused by its fast path (a thread with a
/// context, both pointers given): records why. An empty stack is the full
/// path's (as on a thread without a context).
///
/// # Safety
/// As for `storectx_get_current`; `w` as for `boundary::refused_at`.
#[cold]
#[inline(never)]
unsafe extern "C" fn get_current_refused(
    id: storectx_store_id,
    store: *mut *mut c_void,
    out: *mut storectx_borrow,
    w: Word,
) -> storectx_status {
    boundary::refused_at(
        op!("get_current"),
        w,
        |s, record| s.explain_get_current(id, record),
        // SAFETY: the export's arguments, under its contract.
        || unsafe { get_current_slow(id, store, out) },
    )
}

/// `storectx_get_current` without a stack or with a NULL pointer.
///
/// # Safety
/// As for `storectx_get_current`.
#[cold]
#[inline(never)]
unsafe extern "C" fn get_current_slow(
    id: storectx_store_id,
    store: *mut *mut c_void,
    out: *mut storectx_borrow,
) -> storectx_status {
    boundary::status("get_current", || {
        let (store, out) = (required(store, "store")?, required(out, "out")?);
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let b = unsafe { stack_unreentered(|s| s.get_current(id)) }?;
        // SAFETY: writable (this function's contract).
        unsafe { put_borrow(store, out, &b) };
        Ok(())
    })
}

/// Like `storectx_get_current` without taking a borrow: for a quick look
/// that ends before anything else can touch the stack. O(1).
///
/// Thread rules: the calling thread's stack only (a store only on another
/// thread's is not found here). On a thread without state it creates it
/// (allocates), even to refuse; else it allocates nothing, takes no lock,
/// never waits. Not in a signal handler; from a destructor until this
/// thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `store` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `id` is 0 or `UINT64_MAX` (reserved).
/// - `STORECTX_ERR_NOT_INSTALLED`: `id` is not on this thread's stack.
/// - `STORECTX_ERR_PAUSED`: `id` is on this thread's stack but not on top.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread's stack is empty; or this thread
///   is exiting and its libstorectx state was already torn down (a call from
///   a late thread-exit destructor): nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `store` must point to writable memory for a `void *`. NULL is not optional:
/// it is refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_borrow
#[no_mangle]
pub unsafe extern "C" fn storectx_get_current_transient(
    id: storectx_store_id,
    store: *mut *mut c_void,
) -> storectx_status {
    boundary::status_fast_cx(
        "get_current_transient",
        || match NonNull::new(store) {
            Some(store) => {
                // SAFETY: only `Stack` methods run: nothing reaches the context again.
                let found =
                    unsafe { boundary::read_any_stack_word(|s| s.try_get_current_transient(id)) };
                match found {
                    Ok(address) => {
                        // SAFETY: writable (this function's contract).
                        unsafe { put(store, address as *mut c_void) };
                        Fast::Done
                    }
                    Err(w) => Fast::Refused(w),
                }
            }
            None => Fast::Slow,
        },
        // SAFETY: the word the fast path read; the same arguments.
        |w| unsafe { get_current_transient_refused(id, store, w) },
        // SAFETY: the same arguments, under the same contract.
        || unsafe { get_current_transient_slow(id, store) },
    )
}

/// `storectx_get_current_transient` refused by its fast path (a thread
/// with a context, `store` given): `id` is not on top; records why. An
/// empty stack is the full path's (as on a thread without a context).
///
/// # Safety
/// As for `storectx_get_current_transient`; `w` as for
/// `boundary::refused_at`.
#[cold]
#[inline(never)]
unsafe extern "C" fn get_current_transient_refused(
    id: storectx_store_id,
    store: *mut *mut c_void,
    w: Word,
) -> storectx_status {
    boundary::refused_at(
        op!("get_current_transient"),
        w,
        |s, record| s.explain_not_on_top(id, record),
        // SAFETY: the export's arguments, under its contract.
        || unsafe { get_current_transient_slow(id, store) },
    )
}

/// `storectx_get_current_transient` without a stack or with `store` NULL.
///
/// # Safety
/// As for `storectx_get_current_transient`.
#[cold]
#[inline(never)]
unsafe extern "C" fn get_current_transient_slow(
    id: storectx_store_id,
    store: *mut *mut c_void,
) -> storectx_status {
    boundary::status("get_current_transient", || {
        let store = required(store, "store")?;
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let address = unsafe { stack_unreentered(|s| s.get_current_transient(id)) }?;
        // SAFETY: writable (this function's contract).
        unsafe { put(store, address as *mut c_void) };
        Ok(())
    })
}

/// Borrows the top store whatever its id, only if its borrow count is 0;
/// writes its id, address and borrow. O(1) (a thread's first stateful call
/// also creates its state).
///
/// The borrow counts like one from `storectx_get_current`: release it with
/// `storectx_borrow_release` while its entry is on top of the calling
/// thread's stack (this thread, or the one a suspended segment holding the
/// entry was resumed on). Until then the entry cannot be uninstalled
/// (`STORECTX_ERR_STILL_BORROWED`) and this call answers
/// `STORECTX_ERR_BORROWED` for it.
///
/// Thread rules: the calling thread's stack only. On a thread without state
/// it creates it (allocates), even to refuse; else it allocates nothing,
/// takes no lock, never waits. Not in a signal handler; from a destructor
/// until this thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `id`, `store` or `out` is NULL.
/// - `STORECTX_ERR_BORROWED`: the top entry is borrowed.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread's stack is empty; or this thread
///   is exiting and its libstorectx state was already torn down (a call from
///   a late thread-exit destructor): nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `id` must point to writable memory for one `storectx_store_id`; `store` must
/// point to writable memory for a `void *`; `out` must point to writable memory
/// for one `storectx_borrow`. NULL is not optional: it is refused with
/// `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_borrow
#[no_mangle]
pub unsafe extern "C" fn storectx_get_current_unborrowed(
    id: *mut storectx_store_id,
    store: *mut *mut c_void,
    out: *mut storectx_borrow,
) -> storectx_status {
    boundary::status("get_current_unborrowed", || {
        let (id, store, out) = (
            required(id, "id")?,
            required(store, "store")?,
            required(out, "out")?,
        );
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let b = unsafe { stack_unreentered(|s| s.get_current_unborrowed()) }?;
        // SAFETY: writable (this function's contract).
        unsafe {
            put(id, b.id);
            put_borrow(store, out, &b);
        }
        Ok(())
    })
}

/// Like `storectx_get_current`; also writes the entry's async store to
/// `*async_store` — a new reference the caller releases with
/// `storectx_async_store_release` — or NULL for a sync entry.
///
/// Thread rules: the calling thread's stack only; the async store reference
/// it writes may be used and released on any thread. On a thread without
/// state it creates it (allocates), even to refuse; else it allocates
/// nothing, takes no lock, never waits. Not in a signal handler; from a
/// destructor until this thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `async_store`, `store` or `out` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `id` is 0 or `UINT64_MAX` (reserved), or
///   the entry's borrow count is at `UINT32_MAX`.
/// - `STORECTX_ERR_NOT_INSTALLED`: `id` is not on this thread's stack.
/// - `STORECTX_ERR_PAUSED`: `id` is on this thread's stack but not on top.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread's stack is empty; or this thread
///   is exiting and its libstorectx state was already torn down (a call from
///   a late thread-exit destructor): nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `async_store` must point to writable memory for one pointer; `store` must
/// point to writable memory for a `void *`; `out` must point to writable memory
/// for one `storectx_borrow`. NULL is not optional: it is refused with
/// `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_borrow
#[no_mangle]
pub unsafe extern "C" fn storectx_get_current_async(
    id: storectx_store_id,
    async_store: *mut *mut storectx_async_store,
    store: *mut *mut c_void,
    out: *mut storectx_borrow,
) -> storectx_status {
    boundary::status("get_current_async", || {
        let (async_out, store, out) = (
            required(async_store, "async_store")?,
            required(store, "store")?,
            required(out, "out")?,
        );
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let (shared, b) = unsafe { stack_unreentered(|s| s.get_current_async(id)) }?;
        // SAFETY: writable (this function's contract).
        unsafe {
            put(
                async_out,
                shared.map_or(std::ptr::null_mut(), async_store_into_c),
            );
            put_borrow(store, out, &b);
        }
        Ok(())
    })
}

/// One more borrow of the same entry, written to `*out`.
///
/// Thread rules: the calling thread's stack only (another thread's or a
/// suspended entry's borrow: STALE_HANDLE). On a thread without state it
/// creates it (allocates), even to refuse; else it allocates nothing, takes
/// no lock, never waits. Not in a signal handler; from a destructor until
/// this thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `out` is NULL.
/// - `STORECTX_ERR_STALE_HANDLE`: `b` names no entry on this thread's stack
///   (released entry, zeroed, forged, another thread's, suspended).
/// - `STORECTX_ERR_OUT_OF_ORDER`: `b`'s entry is on this thread's stack but
///   not on top.
/// - `STORECTX_ERR_NOT_SYNC`: `b`'s entry is an async entry.
/// - `STORECTX_ERR_NOT_BORROWED`: the entry's borrow count is 0.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: the entry's borrow count is at
///   `UINT32_MAX`.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `out` must point to writable memory for one `storectx_borrow`. NULL is not
/// optional: it is refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_borrow
#[no_mangle]
pub unsafe extern "C" fn storectx_borrow_clone(
    b: storectx_borrow,
    out: *mut storectx_borrow,
) -> storectx_status {
    boundary::status("borrow_clone", || {
        let out = required(out, "out")?;
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        let raw = unsafe { stack_unreentered(|s| s.borrow_clone(b.raw)) }?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, storectx_borrow { raw }) };
        Ok(())
    })
}

/// Gives one borrow back. O(1).
///
/// Thread rules: the calling thread's stack only (another thread's or a
/// suspended entry's borrow: STALE_HANDLE). On a thread without state it
/// creates it (allocates), even to refuse; else it allocates nothing, takes
/// no lock, never waits. Not in a signal handler; from a destructor until
/// this thread's teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_STALE_HANDLE`: `b` names no entry on this thread's stack
///   (released entry, zeroed, forged, another thread's, suspended).
/// - `STORECTX_ERR_OUT_OF_ORDER`: `b`'s entry is on this thread's stack but
///   not on top.
/// - `STORECTX_ERR_NOT_BORROWED`: the entry's borrow count is 0.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// \ingroup api_borrow
#[no_mangle]
pub extern "C" fn storectx_borrow_release(b: storectx_borrow) -> storectx_status {
    boundary::status_fast_cx(
        "borrow_release",
        || {
            // SAFETY: only `Stack` methods run: nothing reaches the context again.
            let found = unsafe {
                boundary::gated_stack_word(Stack::has_top, |s| {
                    s.try_borrow_release(b.raw).then_some(())
                })
            };
            Fast::of(found, |()| {})
        },
        // SAFETY: the word the fast path read.
        |w| unsafe { borrow_release_refused(b, w) },
        || borrow_release_slow(b),
    )
}

/// `storectx_borrow_release` refused on a thread with a context (the fast
/// path refuses only what the full path refuses): records why. An empty
/// stack is the full path's (as on a thread without a context).
///
/// # Safety
/// `w` as for `boundary::refused_at`.
#[cold]
#[inline(never)]
unsafe extern "C" fn borrow_release_refused(b: storectx_borrow, w: Word) -> storectx_status {
    boundary::refused_at(
        op!("borrow_release"),
        w,
        |s, record| s.explain_borrow_release(b.raw, record),
        || borrow_release_slow(b),
    )
}

/// `storectx_borrow_release` on a thread without a stack.
#[cold]
#[inline(never)]
extern "C" fn borrow_release_slow(b: storectx_borrow) -> storectx_status {
    boundary::status("borrow_release", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { stack_unreentered(|s| s.borrow_release(b.raw)) }
    })
}
