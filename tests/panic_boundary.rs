//! A panic inside the library never reaches C: with the `testing` feature a
//! hook forces one at the point where an operation is about to change state,
//! and the C caller must see `STORECTX_ERR_PANIC`, an unchanged stack, a
//! message, and a library that keeps working.
#![cfg(feature = "testing")]

use std::ffi::{c_void, CStr};
use storectx::ffi::borrow::*;
use storectx::ffi::identity::*;
use storectx::ffi::install::*;
use storectx::ffi::pause::*;
use storectx::ffi::segment::*;
use storectx::ffi::status::{storectx_last_error, storectx_status::*};
use storectx::testing::panic_next_operation;

fn last_error() -> String {
    // SAFETY: storectx_last_error never returns NULL and the text stays
    // valid until this thread's next failed call.
    unsafe { CStr::from_ptr(storectx_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn describe() -> String {
    // SAFETY: every pointer passed below is NULL or points to a live local.
    unsafe {
        let mut buf = vec![0u8; 4096];
        let n = storectx_describe(buf.as_mut_ptr().cast(), buf.len());
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

fn store(n: usize) -> *mut c_void {
    std::ptr::without_provenance_mut(0x1000 * n)
}

#[test]
fn forced_panics_are_caught_and_change_nothing() {
    // SAFETY: every pointer passed below is NULL or points to a live local.
    unsafe {
        let (id1, id2) = (storectx_store_id_new(), storectx_store_id_new());
        let mut g1 = storectx_install_guard::default();
        assert_eq!(storectx_install(id1, store(1), &mut g1), STORECTX_OK);
        let mut b = storectx_borrow::default();
        let mut addr = std::ptr::null_mut();
        assert_eq!(storectx_get_current(id1, &mut addr, &mut b), STORECTX_OK);
        let mut p = storectx_pause_guard::default();
        assert_eq!(storectx_pause(id1, &mut p), STORECTX_OK);
        let before = describe();

        // install: refused with PANIC, out-param untouched, nothing pushed.
        let mut g2 = storectx_install_guard { raw: 77 };
        panic_next_operation();
        assert_eq!(storectx_install(id2, store(2), &mut g2), STORECTX_ERR_PANIC);
        assert_eq!(g2.raw, 77);
        assert!(
            last_error().starts_with("install: internal error"),
            "{}",
            last_error()
        );
        assert_eq!(describe(), before);

        // unpause, borrow_release, uninstall, suspend: each refused, nothing changed.
        panic_next_operation();
        assert_eq!(storectx_unpause(p), STORECTX_ERR_PANIC);
        assert_eq!(describe(), before);
        assert_eq!(
            storectx_unpause(p),
            STORECTX_OK,
            "the pause survived the panic"
        );
        panic_next_operation();
        assert_eq!(storectx_borrow_release(b), STORECTX_ERR_PANIC);
        assert_eq!(storectx_borrow_release(b), STORECTX_OK);
        panic_next_operation();
        assert_eq!(storectx_uninstall(g1), STORECTX_ERR_PANIC);
        assert_eq!(storectx_depth(), 1);
        let mut seg = std::ptr::null_mut();
        panic_next_operation();
        assert_eq!(storectx_suspend(0, &mut seg), STORECTX_ERR_PANIC);
        assert!(seg.is_null() && storectx_depth() == 1);

        // resume: a panic leaves the segment resumable.
        assert_eq!(storectx_suspend(0, &mut seg), STORECTX_OK);
        let mut base = usize::MAX;
        panic_next_operation();
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_ERR_PANIC);
        assert_eq!(
            (base, storectx_depth(), storectx_suspended_len(seg)),
            (usize::MAX, 0, 1)
        );
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_OK);

        // Everything still works afterwards.
        assert_eq!(storectx_install(id2, store(2), &mut g2), STORECTX_OK);
        assert_eq!(storectx_uninstall(g2), STORECTX_OK);
        assert_eq!(storectx_uninstall(g1), STORECTX_OK);
        assert!(storectx_is_empty());
    }
}
