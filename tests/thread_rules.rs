//! The "Thread rules:" paragraphs of the header say what each call does on
//! a thread the library never saw: the stateful calls create the thread's
//! state (an allocation) even when they then refuse, the async store and
//! write guard calls create none when they succeed (only to keep a
//! refusal's message), and the read-only calls allocate nothing and create
//! nothing. Each case runs on a fresh thread; a counting global allocator
//! counts that thread's allocations around the call, and
//! `storectx_last_error()` (an empty string exactly when the thread has no
//! state) tells whether state was made. (Cross-thread handles:
//! c-tests/misuse_foreign_thread.c; calls after a thread's teardown:
//! c-tests/thread_exit_late_call_changes_nothing_or_is_cleaned.c.)

use std::ffi::{c_void, CStr};
use std::ptr::{null_mut, without_provenance_mut};
use storectx::ffi::async_store::*;
use storectx::ffi::borrow::*;
use storectx::ffi::identity::*;
use storectx::ffi::install::*;
use storectx::ffi::pause::*;
use storectx::ffi::segment::*;
use storectx::ffi::status::{
    storectx_last_error, storectx_status, storectx_status::*, storectx_status_str,
};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

/// Whether the calling thread has libstorectx state: `storectx_last_error`
/// answers "" exactly on a thread without (it creates none itself).
fn has_state() -> bool {
    // SAFETY: never NULL; read before any other call.
    !unsafe { CStr::from_ptr(storectx_last_error()) }
        .to_bytes()
        .is_empty()
}

/// Runs `call` on a fresh thread: its status, the allocations it made, and
/// whether the thread had state afterwards.
fn on_fresh_thread(call: impl FnOnce() -> storectx_status + Send) -> (storectx_status, u64, bool) {
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(!has_state(), "a fresh thread has state");
            let before = allocations();
            let status = call();
            let made = allocations() - before;
            (status, made, has_state())
        })
        .join()
        .expect("the thread ran")
    })
}

fn store() -> *mut c_void {
    without_provenance_mut(0x1000)
}

/// Every stateful call, refused on a thread the library never saw (its
/// stack is empty), made the thread's state on the way: "allocates only
/// this thread's state, on its first stateful call (a refused one too)".
#[test]
fn a_refused_first_stateful_call_creates_the_thread_s_state() {
    let id = storectx_store_id_new();
    let stale_guard = storectx_install_guard { raw: 0x1234_5678 };
    let stale_borrow = storectx_borrow { raw: 0x1234_5678 };
    let stale_pause = storectx_pause_guard { raw: 0x1234_5678 };
    type Call = Box<dyn FnOnce() -> storectx_status + Send>;
    // SAFETY (each call below): every out-pointer is a writable local; the
    // handles are forged values, which the calls validate.
    let calls: Vec<(&str, Call)> = vec![
        (
            "get_current",
            Box::new(move || {
                let (mut p, mut b) = (null_mut(), storectx_borrow::default());
                unsafe { storectx_get_current(id, &mut p, &mut b) }
            }),
        ),
        (
            "get_current_transient",
            Box::new(move || {
                let mut p = null_mut();
                unsafe { storectx_get_current_transient(id, &mut p) }
            }),
        ),
        (
            "get_current_unborrowed",
            Box::new(|| {
                let (mut i, mut p, mut b) = (0, null_mut(), storectx_borrow::default());
                unsafe { storectx_get_current_unborrowed(&mut i, &mut p, &mut b) }
            }),
        ),
        (
            "get_current_async",
            Box::new(move || {
                let (mut a, mut p, mut b) = (null_mut(), null_mut(), storectx_borrow::default());
                unsafe { storectx_get_current_async(id, &mut a, &mut p, &mut b) }
            }),
        ),
        (
            "borrow_clone",
            Box::new(move || {
                let mut b = storectx_borrow::default();
                unsafe { storectx_borrow_clone(stale_borrow, &mut b) }
            }),
        ),
        (
            "borrow_release",
            Box::new(move || storectx_borrow_release(stale_borrow)),
        ),
        (
            "uninstall",
            Box::new(move || storectx_uninstall(stale_guard)),
        ),
        (
            "pause",
            Box::new(move || {
                let mut g = storectx_pause_guard::default();
                unsafe { storectx_pause(id, &mut g) }
            }),
        ),
        ("unpause", Box::new(move || storectx_unpause(stale_pause))),
        (
            "install_async",
            Box::new(|| {
                let mut g = storectx_install_guard::default();
                unsafe { storectx_install_async(without_provenance_mut(0x1234_5678), &mut g) }
            }),
        ),
        (
            "resume",
            Box::new(|| {
                let mut depth = 0usize;
                unsafe { storectx_resume(without_provenance_mut(0x1234_5678), &mut depth) }
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (name, call) in calls {
        let (status, made, state) = on_fresh_thread(call);
        if status == STORECTX_OK || made == 0 || !state {
            failures.push(format!(
                "{name}: {status:?}, {made} allocations, state made: {state}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The async store and write guard calls need no per-thread state: on a
/// thread the library never saw they succeed without making any and, the
/// write guard table warm, without allocating; a refusal makes it, to keep
/// its message. The read-only calls allocate nothing and make nothing.
#[test]
fn async_and_read_only_calls_create_no_state() {
    let mut s = null_mut();
    // SAFETY: `s` is writable.
    assert_eq!(
        unsafe { storectx_async_store_new(storectx_store_id_new(), store(), &mut s) },
        STORECTX_OK
    );
    let s = s as usize;
    let store_ptr = || s as *mut storectx_async_store;
    // Warm the write guard table (its first chunk) on this thread.
    let mut w = null_mut();
    // SAFETY: a live reference; `w` writable.
    assert_eq!(
        unsafe { storectx_async_store_try_write(store_ptr(), &mut w) },
        STORECTX_OK
    );
    storectx_write_guard_release(w);

    let (status, made, state) = on_fresh_thread(|| {
        let mut w = null_mut();
        // SAFETY: a live reference; `w` writable.
        let mut status = unsafe { storectx_async_store_try_write(store_ptr(), &mut w) };
        storectx_write_guard_release(w);
        if status == STORECTX_OK {
            // SAFETY: as above.
            status = unsafe { storectx_async_store_write(store_ptr(), 0, &mut w) };
            storectx_write_guard_release(w);
        }
        assert!(!storectx_install_guard_installed(storectx_install_guard {
            raw: 7
        }));
        assert!(!storectx_status_str(3).is_null());
        status
    });
    assert_eq!((status, made, state), (STORECTX_OK, 0, false));

    // A refusal (BUSY: this thread holds the lock) keeps its message in the
    // fresh thread's state, made for it.
    let mut held = null_mut();
    // SAFETY: a live reference; `held` writable.
    assert_eq!(
        unsafe { storectx_async_store_try_write(store_ptr(), &mut held) },
        STORECTX_OK
    );
    let (status, _, state) = on_fresh_thread(|| {
        let mut w = null_mut();
        // SAFETY: a live reference; `w` writable.
        unsafe { storectx_async_store_try_write(store_ptr(), &mut w) }
    });
    assert_eq!((status, state), (STORECTX_ERR_BUSY, true));
    // Released on another thread than the one that took it; then a spent
    // guard's release is noted, which makes a fresh thread's state.
    let held = held as usize;
    let (_, made, state) = on_fresh_thread(|| {
        storectx_write_guard_release(held as *mut storectx_write_guard);
        STORECTX_OK
    });
    assert_eq!(
        (made, state),
        (0, false),
        "a live guard's release on a fresh thread"
    );
    let (_, _, state) = on_fresh_thread(|| {
        storectx_write_guard_release(held as *mut storectx_write_guard);
        STORECTX_OK
    });
    assert!(state, "a spent guard's release noted nothing");
    // SAFETY: the reference made above, given up here.
    unsafe { storectx_async_store_release(store_ptr()) };
}
