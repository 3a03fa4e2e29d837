//! A refused call allocates nothing (SPEC, "A refusal is cheap"): what its
//! message needs is kept by copy, and the text is written only when
//! `storectx_last_error()` is read, into the thread's own buffer (no
//! allocation there either). A counting global allocator counts this
//! thread's allocations around each refused call of each kind, and the text
//! read afterwards is the one the call describes.

use std::ffi::{c_void, CStr};
use std::ptr::{null_mut, without_provenance_mut};
use storectx::ffi::async_store::*;
use storectx::ffi::borrow::*;
use storectx::ffi::identity::*;
use storectx::ffi::install::*;
use storectx::ffi::pause::*;
use storectx::ffi::segment::*;
use storectx::ffi::status::{storectx_last_error, storectx_status, storectx_status::*};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

fn last_error() -> String {
    // SAFETY: storectx_last_error never returns NULL; the text is copied
    // before any other call.
    unsafe { CStr::from_ptr(storectx_last_error()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn store(n: usize) -> *mut c_void {
    without_provenance_mut(0x1000 * n)
}

/// Runs `call`, which must be refused with `status`, and checks that it
/// allocated nothing, that reading the message allocated nothing, and that
/// the message is `expected`.
fn refused(
    what: &str,
    status: storectx_status,
    expected: &str,
    call: impl FnOnce() -> storectx_status,
) {
    let before = allocations();
    let got = call();
    let after_call = allocations();
    // SAFETY: as in `last_error`; only the pointer is taken here.
    let text = unsafe { CStr::from_ptr(storectx_last_error()) };
    let after_read = allocations();
    let text = text.to_str().unwrap().to_owned();
    assert_eq!(got, status, "{what}: {text}");
    assert_eq!(text, expected, "{what}");
    assert_eq!(after_call - before, 0, "{what}: the refusal allocated");
    assert_eq!(
        after_read - after_call,
        0,
        "{what}: reading the message allocated"
    );
}

#[test]
fn refusals_of_every_kind_allocate_nothing_and_say_what_they_found() {
    // SAFETY: every pointer passed below is NULL, a live local, or a handle
    // this test got from the library (or a forged value where the API takes
    // any value).
    unsafe {
        let (a, b) = (storectx_store_id_new(), storectx_store_id_new());
        let mut p: *mut c_void = null_mut();
        let mut g1 = storectx_install_guard::default();
        let mut g2 = storectx_install_guard::default();
        // The thread's state is made by its first call that needs it (and
        // grown by its first installs): that is not a refusal's cost.
        assert_eq!(storectx_install(a, store(1), &mut g1), STORECTX_OK);
        assert_eq!(storectx_install(b, store(2), &mut g2), STORECTX_OK);
        // So is the first use of the segment table (made on the first suspend).
        let mut seg = null_mut();
        let mut base = 0;
        assert_eq!(storectx_suspend(2, &mut seg), STORECTX_OK);
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_OK);
        let depth2 = |id| format!("store {id} is paused at depth 1; top is store {b} at depth 2");

        refused(
            "transient, paused",
            STORECTX_ERR_PAUSED,
            &format!("get_current_transient: {}", depth2(a)),
            || storectx_get_current_transient(a, &mut p),
        );
        refused(
            "get_current, paused",
            STORECTX_ERR_PAUSED,
            &format!("get_current: {}", depth2(a)),
            || storectx_get_current(a, &mut p, &mut storectx_borrow::default()),
        );
        refused(
            "pause, paused",
            STORECTX_ERR_PAUSED,
            &format!("pause: {}", depth2(a)),
            || storectx_pause(a, &mut storectx_pause_guard::default()),
        );
        refused(
            "install, paused",
            STORECTX_ERR_PAUSED,
            &format!("install: {}", depth2(a)),
            || storectx_install(a, store(1), &mut storectx_install_guard::default()),
        );
        let c = storectx_store_id_new();
        refused("transient, not installed", STORECTX_ERR_NOT_INSTALLED,
            &format!("get_current_transient: store {c} is not on this thread's stack; top is store {b} at depth 2"),
            || storectx_get_current_transient(c, &mut p));
        refused("transient, id 0", STORECTX_ERR_INVALID_ARGUMENT,
            "get_current_transient: store id 0x0 is reserved (0 and UINT64_MAX name no store); use storectx_store_id_new()",
            || storectx_get_current_transient(0, &mut p));
        refused(
            "transient, NULL",
            STORECTX_ERR_NULL_ARGUMENT,
            "get_current_transient: store is NULL",
            || storectx_get_current_transient(b, null_mut()),
        );
        refused(
            "install, address mismatch",
            STORECTX_ERR_ADDRESS_MISMATCH,
            &format!("install: store {b} is on top at 0x2000, install asked for 0x3000 (a nested install of a store passes its address again)"),
            || storectx_install(b, store(3), &mut storectx_install_guard::default()),
        );
        refused(
            "uninstall, out of order",
            STORECTX_ERR_OUT_OF_ORDER,
            &format!(
                "uninstall: install guard for store {a} is at depth 1, top is store {b} at depth 2"
            ),
            || storectx_uninstall(g1),
        );
        refused("uninstall, forged", STORECTX_ERR_STALE_HANDLE,
            "uninstall: install guard names no entry of its kind on this thread's stack (depth 2): already uninstalled, zeroed or forged, from another thread, or its entry is suspended",
            || storectx_uninstall(storectx_install_guard { raw: 12345 << 3 }));

        let mut borrow = storectx_borrow::default();
        assert_eq!(storectx_get_current(b, &mut p, &mut borrow), STORECTX_OK);
        refused(
            "uninstall, still borrowed",
            STORECTX_ERR_STILL_BORROWED,
            &format!("uninstall: store {b} at depth 2 still has 1 borrow(s); release them first"),
            || storectx_uninstall(g2),
        );
        let (mut id, mut q) = (0, null_mut());
        refused(
            "get_current_unborrowed, borrowed",
            STORECTX_ERR_BORROWED,
            &format!(
                "get_current_unborrowed: top store {b} at depth 2 has 1 borrow(s); expected none"
            ),
            || storectx_get_current_unborrowed(&mut id, &mut q, &mut storectx_borrow::default()),
        );
        assert_eq!(storectx_borrow_release(borrow), STORECTX_OK);
        refused(
            "borrow_release, not borrowed",
            STORECTX_ERR_NOT_BORROWED,
            &format!("borrow_release: store {b} has a borrow count of 0; expected a live borrow"),
            || storectx_borrow_release(borrow),
        );
        let mut pg = storectx_pause_guard::default();
        assert_eq!(storectx_pause(b, &mut pg), STORECTX_OK);
        assert_eq!(storectx_unpause(pg), STORECTX_OK);
        refused("unpause, spent", STORECTX_ERR_STALE_HANDLE,
            "unpause: pause guard names no outstanding pause on this thread's stack (depth 2): already unpaused, its entry is gone or suspended, or from another thread",
            || storectx_unpause(pg));
        refused(
            "suspend, base above the stack",
            STORECTX_ERR_INVALID_ARGUMENT,
            "suspend: base depth 9 is above this thread's stack (depth 2)",
            || storectx_suspend(9, &mut null_mut()),
        );

        // Async stores: the lock's refusals.
        let s = storectx_store_id_new();
        let mut astore = null_mut();
        assert_eq!(
            storectx_async_store_new(s, store(4), &mut astore),
            STORECTX_OK
        );
        let mut wg = null_mut();
        assert_eq!(storectx_async_store_try_write(astore, &mut wg), STORECTX_OK);
        refused(
            "try_write, busy",
            STORECTX_ERR_BUSY,
            &format!("async_store_try_write: store {s} is locked (by a write guard, an async entry or a suspended segment holding it; storectx_async_store_write waits for it)"),
            || storectx_async_store_try_write(astore, &mut null_mut()),
        );
        let mut ga = storectx_install_guard::default();
        assert_eq!(storectx_install_async(wg, &mut ga), STORECTX_OK);
        refused("write, would deadlock", STORECTX_ERR_WOULD_DEADLOCK,
            &format!("async_store_write: this thread's stack holds store {s}'s lock; uninstall it (or suspend its segment) before writing again"),
            || storectx_async_store_write(astore, 0, &mut null_mut()));
        let mut ab = storectx_borrow::default();
        let mut aref = null_mut();
        assert_eq!(
            storectx_get_current_async(s, &mut aref, &mut p, &mut ab),
            STORECTX_OK
        );
        refused(
            "borrow_clone, async",
            STORECTX_ERR_NOT_SYNC,
            &format!("borrow_clone: store {s} is an async entry; its borrows cannot be cloned"),
            || storectx_borrow_clone(ab, &mut storectx_borrow::default()),
        );
        assert_eq!(storectx_borrow_release(ab), STORECTX_OK);
        storectx_async_store_release(aref);
        refused("install_async, spent guard", STORECTX_ERR_STALE_HANDLE,
            "install_async: this write guard handle was already consumed or released, is in use by another thread right now, or was never valid",
            || storectx_install_async(wg, &mut storectx_install_guard::default()));

        assert_eq!(storectx_uninstall(ga), STORECTX_OK);
        assert_eq!(storectx_uninstall(g2), STORECTX_OK);
        assert_eq!(storectx_uninstall(g1), STORECTX_OK);
        refused("transient, empty stack", STORECTX_ERR_NO_CONTEXT,
            &format!("get_current_transient: store {a} requested but this thread's context stack is empty (install it first; a coroutine moved here brings its entries with storectx_resume)"),
            || storectx_get_current_transient(a, &mut p));
        storectx_async_store_release(astore);
    }
}

/// The text read stays where it is until the next failed call: reading it
/// again gives the same pointer and text, and a success changes neither.
#[test]
fn the_message_stays_until_the_next_failure() {
    // SAFETY: as above.
    unsafe {
        let a = storectx_store_id_new();
        let mut p = null_mut();
        assert_eq!(
            storectx_get_current_transient(a, &mut p),
            STORECTX_ERR_NO_CONTEXT
        );
        let first = storectx_last_error();
        let text = last_error();
        let mut g = storectx_install_guard::default();
        assert_eq!(storectx_install(a, store(1), &mut g), STORECTX_OK);
        assert_eq!(storectx_last_error(), first);
        assert_eq!(CStr::from_ptr(first).to_str().unwrap(), text);
        assert_eq!(storectx_uninstall(g), STORECTX_OK);
        assert_eq!(storectx_uninstall(g), STORECTX_ERR_STALE_HANDLE);
        assert!(
            last_error().starts_with("uninstall: install guard names no entry"),
            "{}",
            last_error()
        );
    }
}

/// The refusals of every handle kind's other cases (out of order, zeroed,
/// spent, not innermost) and of segments: each allocates nothing and says
/// what it found. (The registry's texts, for segments and write guards, are
/// checked by their start: the registry words them.)
#[test]
fn refusals_of_every_handle_kind_allocate_nothing() {
    // SAFETY: as above.
    unsafe {
        let (a, b, c) = (
            storectx_store_id_new(),
            storectx_store_id_new(),
            storectx_store_id_new(),
        );
        let mut p: *mut c_void = null_mut();
        let (mut ga, mut gb, mut gc) = Default::default();
        assert_eq!(storectx_install(a, store(1), &mut ga), STORECTX_OK);
        // A borrow and a pause of store a's entry, then a spent borrow of
        // an entry that is gone, then store b on top.
        let mut ba = storectx_borrow::default();
        assert_eq!(storectx_get_current(a, &mut p, &mut ba), STORECTX_OK);
        let mut pa = storectx_pause_guard::default();
        assert_eq!(storectx_pause(a, &mut pa), STORECTX_OK);
        assert_eq!(storectx_install(c, store(3), &mut gc), STORECTX_OK);
        let mut bc = storectx_borrow::default();
        assert_eq!(storectx_get_current(c, &mut p, &mut bc), STORECTX_OK);
        assert_eq!(storectx_borrow_release(bc), STORECTX_OK);
        assert_eq!(storectx_uninstall(gc), STORECTX_OK);
        assert_eq!(storectx_install(b, store(2), &mut gb), STORECTX_OK);
        // The segment table and the pause records have grown already.
        let mut seg = null_mut();
        let mut base = 0;
        assert_eq!(storectx_suspend(2, &mut seg), STORECTX_OK);
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_OK);

        refused(
            "borrow_release, out of order",
            STORECTX_ERR_OUT_OF_ORDER,
            &format!(
                "borrow_release: borrow for store {a} is at depth 1, top is store {b} at depth 2"
            ),
            || storectx_borrow_release(ba),
        );
        refused(
            "borrow_release, zeroed",
            STORECTX_ERR_STALE_HANDLE,
            "borrow_release: borrow is zeroed, forged or of another kind",
            || storectx_borrow_release(storectx_borrow::default()),
        );
        refused("borrow_release, entry gone", STORECTX_ERR_STALE_HANDLE,
            "borrow_release: borrow names no entry on this thread's stack (depth 2): already released, from another thread, or its entry is suspended",
            || storectx_borrow_release(bc));
        refused(
            "borrow_clone, out of order",
            STORECTX_ERR_OUT_OF_ORDER,
            &format!(
                "borrow_clone: borrow for store {a} is at depth 1, top is store {b} at depth 2"
            ),
            || storectx_borrow_clone(ba, &mut storectx_borrow::default()),
        );
        refused(
            "unpause, out of order",
            STORECTX_ERR_OUT_OF_ORDER,
            &format!(
                "unpause: pause guard for store {a} is at depth 1, top is store {b} at depth 2"
            ),
            || storectx_unpause(pa),
        );
        refused(
            "unpause, zeroed",
            STORECTX_ERR_STALE_HANDLE,
            "unpause: pause guard is zeroed, forged or of another kind",
            || storectx_unpause(storectx_pause_guard::default()),
        );
        let (mut p1, mut p2) = Default::default();
        assert_eq!(storectx_pause(b, &mut p1), STORECTX_OK);
        assert_eq!(storectx_pause(b, &mut p2), STORECTX_OK);
        refused(
            "unpause, not the innermost",
            STORECTX_ERR_OUT_OF_ORDER,
            &format!("unpause: pause guard of store {b} is not its innermost pause; unpause the 1 later pause(s) first"),
            || storectx_unpause(p1),
        );
        assert_eq!(storectx_unpause(p2), STORECTX_OK);
        assert_eq!(storectx_unpause(p1), STORECTX_OK);
        refused(
            "pause, id 0",
            STORECTX_ERR_INVALID_ARGUMENT,
            "pause: store id 0x0 is reserved (0 and UINT64_MAX name no store); use storectx_store_id_new()",
            || storectx_pause(0, &mut storectx_pause_guard::default()),
        );
        refused(
            "install, UINT64_MAX",
            STORECTX_ERR_INVALID_ARGUMENT,
            "install: store id 0xffffffffffffffff is reserved (0 and UINT64_MAX name no store); use storectx_store_id_new()",
            || storectx_install(u64::MAX, store(1), &mut storectx_install_guard::default()),
        );

        // Segments: a spent one is refused, and freeing it is noted.
        let before = allocations();
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_ERR_STALE_HANDLE);
        assert_eq!(allocations(), before, "a refused resume allocated");
        assert!(
            last_error().starts_with("resume: this suspended segment handle was already"),
            "{}",
            last_error()
        );
        let before = allocations(); // (reading the text above allocated its copy)
        storectx_suspended_free(seg);
        assert_eq!(allocations(), before, "a refused free allocated");
        assert!(
            last_error().starts_with("suspended_free: this suspended segment handle"),
            "{}",
            last_error()
        );

        assert_eq!(storectx_uninstall(gb), STORECTX_OK);
        assert_eq!(storectx_unpause(pa), STORECTX_OK);
        assert_eq!(storectx_borrow_release(ba), STORECTX_OK);
        assert_eq!(storectx_uninstall(ga), STORECTX_OK);
    }
}
