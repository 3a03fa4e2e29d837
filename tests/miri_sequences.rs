//! Call sequences through the crate's own C exports, small enough for Miri
//! (`.ci/miri.sh` runs this file under Stacked and Tree Borrows): nested
//! installs, the six calls of issue 17, growth past capacity with lookups in
//! between then suspend/resume, borrows, pauses, and async entries and
//! segments moving between threads. Natively it is one more quick test.
//!
//! Each test leaves its thread's stack empty: libtest may run them one
//! after another on one thread (as under Miri) or each on its own.

use std::ffi::c_void;
use std::ptr::null_mut;
use storectx::ffi::async_store::*;
use storectx::ffi::borrow::*;
use storectx::ffi::identity::*;
use storectx::ffi::install::*;
use storectx::ffi::pause::*;
use storectx::ffi::segment::*;
use storectx::ffi::status::storectx_status::{self, *};

/// A store address: never dereferenced by the library, so any non-null
/// value does (with no provenance: it is only compared and handed back).
fn addr(n: usize) -> *mut c_void {
    std::ptr::without_provenance_mut(n * 0x100)
}

fn ok(s: storectx_status) {
    assert_eq!(s, STORECTX_OK);
}

fn install(id: u64, store: *mut c_void) -> storectx_install_guard {
    let mut g = storectx_install_guard::default();
    // SAFETY: `g` is a live local.
    ok(unsafe { storectx_install(id, store, &mut g) });
    g
}

fn get_current(id: u64) -> (storectx_borrow, *mut c_void) {
    let mut b = storectx_borrow::default();
    let mut store = null_mut();
    // SAFETY: both out-pointers are live locals.
    ok(unsafe { storectx_get_current(id, &mut store, &mut b) });
    (b, store)
}

fn transient(id: u64) -> *mut c_void {
    let mut store = null_mut();
    // SAFETY: `store` is a live local.
    ok(unsafe { storectx_get_current_transient(id, &mut store) });
    store
}

fn borrow_clone(b: storectx_borrow) -> storectx_borrow {
    let mut c = storectx_borrow::default();
    // SAFETY: `c` is a live local.
    ok(unsafe { storectx_borrow_clone(b, &mut c) });
    c
}

fn pause(id: u64) -> storectx_pause_guard {
    let mut p = storectx_pause_guard::default();
    // SAFETY: `p` is a live local.
    ok(unsafe { storectx_pause(id, &mut p) });
    p
}

fn suspend(base: usize) -> Segment {
    let mut s = null_mut();
    // SAFETY: `s` is a live local.
    ok(unsafe { storectx_suspend(base, &mut s) });
    Segment(s)
}

/// A segment handle (a validated value, not a pointer), sendable between
/// threads as C code would send it.
struct Segment(*mut storectx_suspended);
// SAFETY: the handle is a number the library validates on use, on any thread.
unsafe impl Send for Segment {}

fn resume(s: Segment) -> usize {
    let mut base = usize::MAX;
    // SAFETY: `base` is a live local; `s` may be any value.
    ok(unsafe { storectx_resume(s.0, &mut base) });
    base
}

/// A write guard handle, sendable like a segment.
struct WriteGuard(*mut storectx_write_guard);
// SAFETY: as for `Segment`.
unsafe impl Send for WriteGuard {}

/// An async store reference, shared between threads as C would.
#[derive(Clone, Copy)]
struct AsyncStore(*mut storectx_async_store);
// SAFETY: the async store is reference-counted and thread-safe.
unsafe impl Send for AsyncStore {}

fn new_async(id: u64, store: *mut c_void) -> AsyncStore {
    let mut s = null_mut();
    // SAFETY: `s` is a live local.
    ok(unsafe { storectx_async_store_new(id, store, &mut s) });
    AsyncStore(s)
}

fn try_write(s: AsyncStore) -> WriteGuard {
    let mut g = null_mut();
    // SAFETY: `s` is a live reference; `g` a live local.
    ok(unsafe { storectx_async_store_try_write(s.0, &mut g) });
    WriteGuard(g)
}

fn install_async(g: WriteGuard) -> storectx_install_guard {
    let mut out = storectx_install_guard::default();
    // SAFETY: `out` is a live local; `g` may be any value.
    ok(unsafe { storectx_install_async(g.0, &mut out) });
    out
}

/// The six calls of issue 17 (undefined behaviour under Miri before the
/// stack's entries had one owner: the cached top pointer, derived from a
/// `&mut` that the borrow's lookup invalidated, was read after the
/// suspend moved it down one entry).
#[test]
fn six_calls_of_issue_17() {
    let a = install(1, addr(1));
    let b = install(2, addr(2));
    let seg = suspend(1);
    let (borrow, store) = get_current(1);
    assert_eq!(store, addr(1));
    let clone = borrow_clone(borrow);
    ok(storectx_borrow_release(clone));
    ok(storectx_borrow_release(borrow));
    // Then everything unwinds through the exports.
    assert_eq!(resume(seg), 1);
    ok(storectx_uninstall(b));
    ok(storectx_uninstall(a));
    assert!(storectx_is_empty());
}

/// Nested installs of one store and of several, with lookups at each depth
/// and refusals that change nothing.
#[test]
fn nested_installs_and_lookups() {
    let a = install(1, addr(1));
    let a2 = install(1, addr(1));
    let b = install(2, addr(2));
    assert_eq!(storectx_depth(), 3);
    assert!(storectx_is_active(2) && storectx_is_paused(1));
    assert_eq!(storectx_uninstall(a2), STORECTX_ERR_OUT_OF_ORDER);
    let mut g = storectx_install_guard::default();
    // SAFETY: `g` is a live local.
    assert_eq!(
        unsafe { storectx_install(1, addr(1), &mut g) },
        STORECTX_ERR_PAUSED
    );
    assert_eq!(transient(2), addr(2));
    // Refused lookups of the paused store (nested: its topmost entry is
    // found past the lowest one), recorded in place and read back.
    let mut p = null_mut();
    let mut out = storectx_borrow::default();
    // SAFETY: `p` and `out` are live locals.
    unsafe {
        assert_eq!(
            storectx_get_current_transient(1, &mut p),
            STORECTX_ERR_PAUSED
        );
        assert_eq!(
            storectx_get_current(1, &mut p, &mut out),
            STORECTX_ERR_PAUSED
        );
        assert_eq!(
            storectx_get_current_transient(3, &mut p),
            STORECTX_ERR_NOT_INSTALLED
        );
        assert_eq!(
            storectx_get_current_transient(1, &mut p),
            STORECTX_ERR_PAUSED
        );
        let text = std::ffi::CStr::from_ptr(storectx::ffi::status::storectx_last_error());
        assert_eq!(
            text.to_str().unwrap(),
            "get_current_transient: store 1 is paused at depth 2; top is store 2 at depth 3"
        );
    }
    assert!(p.is_null(), "a refused call writes no out-parameter");
    ok(storectx_uninstall(b));
    assert_eq!(transient(1), addr(1));
    ok(storectx_uninstall(a2));
    ok(storectx_uninstall(a));
    assert_eq!(storectx_uninstall(a), STORECTX_ERR_STALE_HANDLE);
}

/// Past the entry vector's capacity (it grows by reallocating, which moves
/// every entry) with lookups, borrows and pauses in between, then suspend
/// and resume in both shapes (one entry inline, several spilled).
#[test]
fn growth_with_lookups_then_suspend_and_resume() {
    const DEPTH: u64 = 40; // the vector grows by 16: two reallocations at least
    let mut guards = Vec::new();
    for id in 1..=DEPTH {
        guards.push(install(id, addr(id as usize)));
        assert_eq!(transient(id), addr(id as usize));
        let (b, _) = get_current(id);
        let p = pause(id);
        ok(storectx_unpause(p));
        ok(storectx_borrow_release(b));
        assert!(storectx_is_active(id));
    }
    // One entry, no pause: the inline shape.
    let top = suspend(DEPTH as usize - 1);
    assert_eq!(storectx_active_store(), DEPTH - 1);
    assert_eq!(transient(DEPTH - 1), addr(DEPTH as usize - 1));
    assert_eq!(resume(top), DEPTH as usize - 1);
    // Several entries with a borrow and a pause: the spilled shape.
    let (b, _) = get_current(DEPTH);
    let p = pause(DEPTH);
    let seg = suspend(10);
    assert_eq!(storectx_suspended_len(seg.0), DEPTH as usize - 10);
    assert_eq!(storectx_depth(), 10);
    let (b10, _) = get_current(10);
    ok(storectx_borrow_release(borrow_clone(b10)));
    ok(storectx_borrow_release(b10));
    assert_eq!(resume(seg), 10);
    ok(storectx_unpause(p));
    ok(storectx_borrow_release(b));
    for g in guards.into_iter().rev() {
        assert!(storectx_is_active(storectx_active_store()));
        ok(storectx_uninstall(g));
    }
    assert!(storectx_is_empty());
}

/// Borrows and pauses: counts, clones, nesting and the refusals between.
#[test]
fn borrows_and_pauses() {
    let g = install(7, addr(7));
    let (b1, _) = get_current(7);
    let b2 = borrow_clone(b1);
    assert_eq!(storectx_uninstall(g), STORECTX_ERR_STILL_BORROWED);
    let p1 = pause(7);
    let p2 = pause(7);
    assert_eq!(storectx_unpause(p1), STORECTX_ERR_OUT_OF_ORDER);
    let inner = install(8, addr(8));
    assert_eq!(storectx_unpause(p2), STORECTX_ERR_OUT_OF_ORDER);
    let (b8, _) = get_current(8);
    ok(storectx_borrow_release(b8));
    ok(storectx_uninstall(inner));
    ok(storectx_unpause(p2));
    ok(storectx_unpause(p1));
    ok(storectx_borrow_release(b2));
    ok(storectx_borrow_release(b1));
    assert_eq!(storectx_borrow_release(b1), STORECTX_ERR_NOT_BORROWED);
    let mut id = 0;
    let mut store = null_mut();
    let mut u = storectx_borrow::default();
    // SAFETY: the out-pointers are live locals.
    ok(unsafe { storectx_get_current_unborrowed(&mut id, &mut store, &mut u) });
    assert_eq!((id, store), (7, addr(7)));
    ok(storectx_borrow_release(u));
    ok(storectx_uninstall(g));
}

/// A coroutine's entries (an async entry holding its store's lock, a sync
/// entry above it, a borrow and a pause) suspended on one thread, resumed
/// on another, suspended again and finished on a third; a write guard taken
/// on one thread and installed on another; the lock released at the end.
#[test]
fn async_entries_and_segments_move_between_threads() {
    let store = new_async(50, addr(50));
    let seg = {
        let g = try_write(store);
        assert_eq!(storectx_write_guard_store(g.0), addr(50));
        let outer = install_async(g);
        let inner = install(51, addr(51));
        let (b, _) = get_current(51);
        let p = pause(51);
        let seg = suspend(0);
        assert!(storectx_is_empty());
        std::thread::spawn(move || {
            let local = install(52, addr(52));
            assert_eq!(resume(seg), 1);
            ok(storectx_unpause(p));
            ok(storectx_borrow_release(b));
            let seg = suspend(1);
            ok(storectx_uninstall(local));
            (seg, inner, outer)
        })
        .join()
        .unwrap()
    };
    let (seg, inner, outer) = seg;
    std::thread::spawn(move || {
        assert_eq!(resume(seg), 0);
        ok(storectx_uninstall(inner));
        let mut async_store = null_mut();
        let mut address = null_mut();
        let mut b = storectx_borrow::default();
        // SAFETY: the out-pointers are live locals.
        ok(unsafe { storectx_get_current_async(50, &mut async_store, &mut address, &mut b) });
        assert_eq!(address, addr(50));
        // SAFETY: a new reference, released once.
        unsafe { storectx_async_store_release(async_store) };
        ok(storectx_borrow_release(b));
        ok(storectx_uninstall(outer));
    })
    .join()
    .unwrap();
    // The lock is free again: take it here, hand the guard to a thread
    // that installs it, and free a segment that still holds it.
    let g = try_write(store);
    let seg = std::thread::spawn(move || {
        let _entry = install_async(g);
        suspend(0)
    })
    .join()
    .unwrap();
    storectx_suspended_free(seg.0);
    let g = try_write(store);
    storectx_write_guard_release(g.0);
    // SAFETY: our reference, given back once.
    unsafe { storectx_async_store_release(store.0) };
}

/// A thread that exits with entries on its stack (a sync one, an async one
/// holding a lock): its teardown releases the lock.
#[test]
fn thread_exit_releases_locks() {
    let store = new_async(60, addr(60));
    std::thread::spawn(move || {
        install(61, addr(61));
        install_async(try_write(store));
        let _ = get_current(60);
    })
    .join()
    .unwrap();
    let g = try_write(store);
    storectx_write_guard_release(g.0);
    // SAFETY: our reference, given back once.
    unsafe { storectx_async_store_release(store.0) };
}

/// The async path's fast and slow halves on one thread of its own (its
/// parking spot starts empty): a write guard taken with no slot parked
/// (the lock handed to the slow half) and with one; installed into the
/// empty spot (the fast half) and with the spot full (the slow half, which
/// displaces); a fast install refused (the store on top) hands the guard
/// back whole; a busy lock, a spent guard and NULLs answered as before.
#[test]
fn async_fast_and_slow_halves() {
    let a = new_async(70, addr(70));
    let b = new_async(71, addr(71));
    std::thread::spawn(move || {
        for _ in 0..3 {
            let g = try_write(a);
            assert_eq!(storectx_write_guard_store(g.0), addr(70));
            let ig = install_async(g);
            assert!(storectx_is_active(70));
            ok(storectx_uninstall(ig));
            assert!(storectx_is_empty());
        }
        // Two guards at once: the second finds no slot parked; the second
        // install finds the spot full.
        let (ga, gb) = (try_write(a), try_write(b));
        let mut again = null_mut();
        // SAFETY: `a` is a live reference, `again` a live local.
        let busy = unsafe { storectx_async_store_try_write(a.0, &mut again) };
        assert_eq!((busy, again), (STORECTX_ERR_BUSY, null_mut()));
        let (ia, ib) = (install_async(ga), install_async(gb));
        ok(storectx_uninstall(ib));
        ok(storectx_uninstall(ia));
        // A fast install refused: the store is on top already (sync).
        let sync = install(70, addr(70));
        let g = try_write(a);
        let mut out = storectx_install_guard { raw: 77 };
        // SAFETY: `out` is a live local; `g` may be any value.
        let refused = unsafe { storectx_install_async(g.0, &mut out) };
        assert_eq!((refused, out.raw), (STORECTX_ERR_ALREADY_ON_STACK, 77));
        assert_eq!(storectx_write_guard_store(g.0), addr(70), "not consumed");
        ok(storectx_uninstall(sync));
        let spent = g.0;
        let ig = install_async(g);
        ok(storectx_uninstall(ig));
        // SAFETY: as above; the guard was consumed by the install.
        let stale = unsafe { storectx_install_async(spent, &mut out) };
        assert_eq!((stale, out.raw), (STORECTX_ERR_STALE_HANDLE, 77));
        // SAFETY: NULLs are refused before anything is read or written.
        unsafe {
            assert_eq!(
                storectx_async_store_try_write(null_mut(), &mut again),
                STORECTX_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                storectx_async_store_try_write(a.0, null_mut()),
                STORECTX_ERR_NULL_ARGUMENT
            );
            assert_eq!(
                storectx_install_async(null_mut(), &mut out),
                STORECTX_ERR_NULL_ARGUMENT
            );
        }
        let g = try_write(a);
        storectx_write_guard_release(g.0);
    })
    .join()
    .unwrap();
    for s in [a, b] {
        let g = try_write(s);
        storectx_write_guard_release(g.0);
        // SAFETY: our reference, given back once.
        unsafe { storectx_async_store_release(s.0) };
    }
}
