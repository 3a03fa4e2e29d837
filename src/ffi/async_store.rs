//! Async stores and write guards: a store behind a lock, shared by
//! reference count; a write guard owns the lock and may travel to, and be
//! released on, any thread.

use super::boundary::{self, boundary, put, read_stack_unreentered, required};
use super::identity::storectx_store_id;
use super::install::storectx_install_guard;
use super::status::storectx_status;
use crate::async_store::{AsyncStore, StoreRef, Wait, WriteGuard, WRITE_GUARDS};
use crate::error::Error;
use crate::thread;
use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// A reference-counted lock around an embedder's store. Thread-safe.
///
/// \ingroup api_async
pub struct storectx_async_store {
    _private: [u8; 0],
}

/// The lock of one async store, held. A validated handle, not a pointer:
/// using it after it was released or consumed is answered, never undefined.
///
/// \ingroup api_async
pub struct storectx_write_guard {
    _private: [u8; 0],
}

/// Hands a new reference to C.
pub(crate) fn async_store_into_c(store: StoreRef) -> *mut storectx_async_store {
    StoreRef::into_raw(store).cast_mut().cast()
}

/// Borrows the reference behind a C reference without consuming it.
///
/// # Safety
/// `s` is NULL or a reference from `async_store_into_c` that the caller
/// still owns.
unsafe fn async_store_ref(s: *const storectx_async_store) -> Option<ManuallyDrop<StoreRef>> {
    // SAFETY: by this function's contract; ManuallyDrop keeps the count
    // unchanged.
    (!s.is_null()).then(|| ManuallyDrop::new(unsafe { StoreRef::from_raw(s.cast::<AsyncStore>()) }))
}

fn write_guard_handle(g: *const storectx_write_guard) -> u64 {
    g as usize as u64
}

/// Puts `guard` in the table (the calling thread's parked index first, if
/// it has a context) and answers its handle as a C pointer value. Inline:
/// the table's insert is too (no claim to keep, no result in memory).
#[inline(always)]
fn write_guard_into_c(guard: WriteGuard) -> Result<*mut storectx_write_guard, Error> {
    // SAFETY: only registry methods run: none reaches the context.
    let handle = unsafe {
        thread::with_any_unreentered(|cx| WRITE_GUARDS.insert(cx.map(|cx| &cx.spot), Some(guard)))
    }?;
    Ok(std::ptr::without_provenance_mut(handle as usize))
}

/// Creates an async store for the embedder's `store` (never dereferenced)
/// under `id` (from `storectx_store_id_new()`), with one reference, written to
/// `*out`. Release each reference once with `storectx_async_store_release`.
///
/// The library keeps `store` and hands it back (through
/// `storectx_write_guard_store`, `storectx_get_current` and the like), so the
/// embedder's store must stay valid until the last reference, write guard,
/// entry and suspended segment referring to this async store is gone
/// (released, uninstalled or freed).
///
/// Thread rules: any thread; it uses no per-thread state. The async store
/// it makes may be used, cloned and released from any thread. Allocates:
/// not in a signal handler.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `store` or `out` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `id` is 0 or `UINT64_MAX` (reserved).
/// - `STORECTX_ERR_EXHAUSTED`: there is no memory for the new store (a
///   memory limit reached: nothing was made).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `out` must point to writable memory for one pointer. NULL is not optional:
/// it is refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_async_store_new(
    id: storectx_store_id,
    store: *mut c_void,
    out: *mut *mut storectx_async_store,
) -> storectx_status {
    boundary::status("async_store_new", || {
        let out = required(out, "out")?;
        let store = required(store, "store")?;
        let store = AsyncStore::new(id, store.as_ptr() as usize)?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, async_store_into_c(store)) };
        Ok(())
    })
}

/// A new reference to the same store (NULL for NULL). The count cannot wrap:
/// the process aborts at 2^60 references (36 years of clones at 10^9 a
/// second), as Rust's `Arc` does rather than wrap. O(1), one atomic
/// increment.
///
/// Thread rules: any thread, at the same time as any other call on the same
/// store (the count is atomic), as long as the reference `s` stays live
/// during the call. Uses no per-thread state.
///
/// # Safety
/// `s` must be NULL or a live reference from this library.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_async_store_clone(
    s: *const storectx_async_store,
) -> *mut storectx_async_store {
    boundary("async_store_clone", || {
        // SAFETY: `s` is NULL or a live reference (this function's contract).
        match unsafe { async_store_ref(s) } {
            Some(store) => async_store_into_c(StoreRef::clone(&store)),
            None => std::ptr::null_mut(),
        }
    })
}

/// Drops one reference (NULL is fine). The store lives on while any write
/// guard, entry or suspended segment refers to it.
///
/// Thread rules: any thread, not necessarily the one that made or cloned the
/// reference, at the same time as calls on the store's other references;
/// no other call may use `s` itself during or after this one. Uses no
/// per-thread state. The last release frees the store: not in a signal
/// handler.
///
/// # Safety
/// `s` must be NULL or a live reference from this library, given up here.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_async_store_release(s: *mut storectx_async_store) {
    boundary("async_store_release", || {
        if !s.is_null() {
            // SAFETY: `s` came from `async_store_into_c`; the caller gives
            // its reference back here, exactly once.
            drop(unsafe { StoreRef::from_raw(s.cast_const().cast::<AsyncStore>()) });
        }
    })
}

/// The store id (0 for NULL). O(1).
///
/// Thread rules: any thread, at the same time as any other call on the same
/// store. Uses no per-thread state, allocates nothing, takes no lock.
///
/// # Safety
/// `s` must be NULL or a live reference from this library.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_async_store_id(
    s: *const storectx_async_store,
) -> storectx_store_id {
    boundary("async_store_id", || {
        // SAFETY: `s` is NULL or a live reference (this function's contract).
        unsafe { async_store_ref(s) }.map_or(0, |store| store.id())
    })
}

/// Takes the store's lock if it is free and writes the write guard to
/// `*out`. Never waits.
///
/// Thread rules: any thread, including one the library never saw or one
/// whose state was torn down (a late thread-exit destructor); it creates
/// per-thread state only to keep a refusal's message. Never waits; may
/// allocate (the table's growth): not in a signal handler.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `s` or `out` is NULL.
/// - `STORECTX_ERR_BUSY`: the store is locked (by a write guard, an entry or
///   a suspended segment, of any thread).
/// - `STORECTX_ERR_EXHAUSTED`: 4,194,304 write guards are live at once (release
///   some, from any thread, and any thread can take one again); or the table
///   of write guards must grow (by 1,024 slots) and there is no memory for
///   it (a memory limit reached: the lock was not taken).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `s` must be a live reference from this library and `out` must point to
/// writable memory for one pointer. NULL is not optional for either: it is
/// refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_async_store_try_write(
    s: *mut storectx_async_store,
    out: *mut *mut storectx_write_guard,
) -> storectx_status {
    boundary("async_store_try_write", || {
        // A call through the C ABI cannot unwind and the fast path cannot
        // panic: the boundary costs nothing, and the two slow halves are
        // tail calls (see `boundary::status_fast`).
        // SAFETY: this function's contract.
        match unsafe { try_write_fast(s, out) } {
            TryWrite::Done => storectx_status::STORECTX_OK,
            // SAFETY: the store's guard the fast path gave up; `out` as
            // above.
            TryWrite::Locked(store) => unsafe { try_write_held_slow(store, out) },
            // SAFETY: the same arguments, under the same contract.
            TryWrite::Slow => unsafe { try_write_slow(s, out) },
        }
    })
}

/// What `storectx_async_store_try_write`'s fast path did.
enum TryWrite {
    /// The job: `STORECTX_OK`.
    Done,
    /// The lock taken (given up as the store's pointer, see
    /// `StoreRef::guard_into_raw`), no slot parked in the thread's spot:
    /// `try_write_held_slow` puts the guard in the table.
    Locked(*const AsyncStore),
    /// Nothing done: the slow half does the job or explains why not.
    Slow,
}

/// `storectx_async_store_try_write` where it calls nothing: the lock free
/// and the slot parked in the thread's own spot taken back, in a process
/// no race detector annotates.
///
/// # Safety
/// As for `storectx_async_store_try_write`.
#[inline(always)]
unsafe fn try_write_fast(
    s: *mut storectx_async_store,
    out: *mut *mut storectx_write_guard,
) -> TryWrite {
    let (Some(out), false) = (NonNull::new(out), s.is_null()) else {
        return TryWrite::Slow;
    };
    if !crate::valgrind::quiet() {
        return TryWrite::Slow;
    }
    // SAFETY: `s` is a live reference (this function's contract).
    let store = unsafe { async_store_ref(s) };
    // SAFETY: only registry and lock methods run: none reaches the context.
    let done = unsafe {
        thread::with_existing_unreentered(|cx| {
            let guard = store.as_ref()?.try_write_quiet()?;
            Some(WRITE_GUARDS.insert_parked(&cx.spot, Some(guard)))
        })
    };
    match done.flatten() {
        Some(Ok(handle)) => {
            // SAFETY: writable (this function's contract).
            unsafe { put(out, std::ptr::without_provenance_mut(handle as usize)) };
            TryWrite::Done
        }
        Some(Err(Some(guard))) => TryWrite::Locked(StoreRef::guard_into_raw(guard)),
        // (`Err(None)` never: the value is handed back.)
        Some(Err(None)) | None => TryWrite::Slow,
    }
}

/// `storectx_async_store_try_write` with the lock taken by its fast path
/// (`store`, from `StoreRef::guard_into_raw`): the guard goes in the table
/// (any slot), or is released if the table is full.
///
/// # Safety
/// `store` came from `StoreRef::guard_into_raw` in this call's fast path;
/// `out` as for `storectx_async_store_try_write`.
#[cold]
#[inline(never)]
unsafe extern "C" fn try_write_held_slow(
    store: *const AsyncStore,
    out: *mut *mut storectx_write_guard,
) -> storectx_status {
    boundary::status("async_store_try_write", || {
        // SAFETY: this function's contract.
        // (No annotation for a race detector: the fast path runs without.)
        let guard = unsafe { StoreRef::guard_from_raw(store) };
        let out = required(out, "out")?;
        let guard = write_guard_into_c(guard)?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, guard) };
        Ok(())
    })
}

/// `storectx_async_store_try_write`'s full path.
///
/// # Safety
/// As for `storectx_async_store_try_write`.
#[cold]
#[inline(never)]
unsafe extern "C" fn try_write_slow(
    s: *mut storectx_async_store,
    out: *mut *mut storectx_write_guard,
) -> storectx_status {
    boundary::status("async_store_try_write", || {
        let out = required(out, "out")?;
        // SAFETY: `s` is NULL or a live reference (this function's contract).
        let store = unsafe { async_store_ref(s) }.ok_or_else(null_store)?;
        let guard = write_guard_into_c(store.try_write()?)?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, guard) };
        Ok(())
    })
}

#[cold]
fn null_store() -> Error {
    Error::NullArgument(detail!("s is NULL"))
}

/// Takes the store's lock, waiting up to `timeout_ns` nanoseconds (0: try
/// once; `UINT64_MAX`: forever), and writes the write guard to `*out`. The
/// wait is not a cancellation point (see docs/threading.md).
///
/// Thread rules: any thread, including one the library never saw or one
/// whose state was torn down; it reads the calling thread's stack and creates
/// per-thread state only to keep a refusal's message. Waits up to
/// `timeout_ns`; may allocate (the table's growth): not in a signal handler.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `s` or `out` is NULL.
/// - `STORECTX_ERR_WOULD_DEADLOCK`: this thread's own stack holds the store's
///   lock (refused at once, without waiting).
/// - `STORECTX_ERR_TIMED_OUT`: the store stayed locked for `timeout_ns`.
/// - `STORECTX_ERR_EXHAUSTED`: 4,194,304 write guards are live at once (release
///   some, from any thread, and any thread can take one again); or the table
///   of write guards must grow (by 1,024 slots) and there is no memory for
///   it (a memory limit reached: the lock was not taken).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `s` must be a live reference from this library and `out` must point to
/// writable memory for one pointer. NULL is not optional for either: it is
/// refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_async_store_write(
    s: *mut storectx_async_store,
    timeout_ns: u64,
    out: *mut *mut storectx_write_guard,
) -> storectx_status {
    boundary::status("async_store_write", || {
        let out = required(out, "out")?;
        // SAFETY: `s` is NULL or a live reference (this function's contract).
        let store = unsafe { async_store_ref(s) }.ok_or_else(null_store)?;
        let wait = Wait::from_nanos(timeout_ns);
        // A thread without a stack holds no lock: nothing to create for it.
        // The stack is only looked at here: the wait below runs outside the
        // accessor, so a signal handler that interrupts it may use the
        // thread's stack (c-tests/signal_handler_calls_during_a_lock_wait.c).
        // SAFETY: only a `Stack` method runs: nothing reaches the context again.
        let holds = unsafe { read_stack_unreentered(false, |stack| stack.holds_lock(&store)) };
        let guard = store.write_from(holds, wait)?;
        let guard = write_guard_into_c(guard)?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, guard) };
        Ok(())
    })
}

/// The locked store's address; NULL for NULL, a spent or a forged guard
/// (the handle is validated). O(1).
///
/// Thread rules: any thread, including one the library never saw. A release
/// or an install of the same guard on another thread at the same time makes
/// it answer the address or NULL, never another guard's store. Uses no
/// per-thread state, allocates nothing, takes no lock.
///
/// \ingroup api_async
#[no_mangle]
pub extern "C" fn storectx_write_guard_store(g: *const storectx_write_guard) -> *mut c_void {
    boundary("write_guard_store", || {
        WRITE_GUARDS.peek(write_guard_handle(g)).unwrap_or(0) as usize as *mut c_void
    })
}

/// Releases the lock, on any thread. NULL is fine; a guard already released
/// or consumed by `storectx_install_async` is left alone (and noted in
/// `storectx_last_error`).
///
/// Thread rules: any thread, not only the one that took the lock, even one
/// the library never saw or whose state was torn down; creates state only
/// to note a spent guard. Waits only for another call consuming `g` (at
/// most 2 s); may wake a waiter and free the store: not in a signal
/// handler.
///
/// \ingroup api_async
#[no_mangle]
pub extern "C" fn storectx_write_guard_release(g: *mut storectx_write_guard) {
    boundary("write_guard_release", || {
        if g.is_null() {
            return;
        }
        let h = write_guard_handle(g);
        // SAFETY: only `Stack` and registry methods run: none reaches the context.
        let released = unsafe {
            thread::with_any_unreentered(|cx| {
                WRITE_GUARDS.take_with(cx.map(|cx| &cx.spot), h, |slot| Ok(slot.take()))
            })
        };
        if let Err(e) = released {
            boundary::fail("write_guard_release", &e);
        }
    })
}

/// Pushes an async entry that takes over `g` and its lock, and writes its
/// install guard to `*out`. Takes ownership of `g` on success only (on any
/// refusal `g` still holds the lock and stays the caller's); uninstalling
/// the entry releases the lock.
///
/// Thread rules: pushes on the calling thread's stack; `g` may come from
/// any thread. Allocates this thread's state if it has none and when the
/// stack grows; waits only for another call consuming `g` (at most 2 s).
/// Not in a signal handler; after this thread's teardown refused, `g` still
/// locked.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `g` or `out` is NULL.
/// - `STORECTX_ERR_STALE_HANDLE`: `g` was released, already consumed, or never
///   came from this library.
/// - `STORECTX_ERR_ALREADY_ON_STACK`: the store is already on this thread's
///   stack.
/// - `STORECTX_ERR_EXHAUSTED`: the process used every entry number (2^61);
///   or this thread's stack cannot grow for lack of memory (a memory limit
///   reached: nothing was pushed, `g` still holds the lock); or see the
///   first-call case below.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `out` must point to writable memory for one `storectx_install_guard`; NULL
/// is not optional: it is refused with `STORECTX_ERR_NULL_ARGUMENT`. `g` may
/// be any value: it is validated.
///
/// \ingroup api_async
#[no_mangle]
pub unsafe extern "C" fn storectx_install_async(
    g: *mut storectx_write_guard,
    out: *mut storectx_install_guard,
) -> storectx_status {
    boundary::status_fast(
        "install_async",
        // SAFETY: this function's contract.
        || unsafe { install_async_fast(g, out) },
        // SAFETY: the same arguments, under the same contract.
        || unsafe { install_async_slow(g, out) },
    )
}

/// `storectx_install_async` where it calls nothing: the guard live and
/// unclaimed, pushed with room to spare, the thread's spot empty (the
/// guard's slot is parked there), in a process no race detector
/// annotates. `false`, nothing changed, otherwise (the slow half then
/// does the job or explains why not).
///
/// # Safety
/// As for `storectx_install_async`.
#[inline(always)]
unsafe fn install_async_fast(
    g: *mut storectx_write_guard,
    out: *mut storectx_install_guard,
) -> bool {
    let Some(out) = NonNull::new(out) else {
        return false;
    };
    if !crate::valgrind::quiet() {
        return false;
    }
    let mut raw = 0;
    // SAFETY: only `Stack` and registry methods run: none reaches the context.
    let done = unsafe {
        thread::with_existing_unreentered(|cx| {
            let stack = &mut cx.stack;
            WRITE_GUARDS.take_parking(&cx.spot, write_guard_handle(g), |slot| {
                let Some(guard) = slot.take() else {
                    return false;
                };
                match stack.try_install_async(guard) {
                    Ok(pushed) => {
                        raw = pushed;
                        true
                    }
                    Err(guard) => {
                        // Back in its slot, as found (empty until then:
                        // nothing is dropped).
                        if let Some(guard) = guard {
                            std::mem::forget(slot.replace(guard));
                        }
                        false
                    }
                }
            })
        })
    };
    if done != Some(true) {
        return false;
    }
    // SAFETY: writable (this function's contract).
    unsafe { put(out, storectx_install_guard { raw }) };
    true
}

/// `storectx_install_async`'s full path.
///
/// # Safety
/// As for `storectx_install_async`.
#[cold]
#[inline(never)]
unsafe extern "C" fn install_async_slow(
    g: *mut storectx_write_guard,
    out: *mut storectx_install_guard,
) -> storectx_status {
    boundary::status("install_async", || {
        let out = required(out, "out")?;
        let g = required(g, "g")?;
        // The thread's context first: if it cannot be had, the guard is
        // never touched.
        // SAFETY: only `Stack` and registry methods run: none reaches the context.
        let raw = unsafe {
            thread::with_unreentered(|cx| {
                let stack = &mut cx.stack;
                WRITE_GUARDS.take_with(Some(&cx.spot), write_guard_handle(g.as_ptr()), |slot| {
                    let Some(guard) = slot.take() else {
                        return Err(Error::StaleHandle(detail!("write guard slot is empty")));
                    };
                    stack.install_async(guard).map_err(|(e, guard)| {
                        *slot = Some(guard);
                        e
                    })
                })
            })
        }?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, storectx_install_guard { raw }) };
        Ok(())
    })
}
