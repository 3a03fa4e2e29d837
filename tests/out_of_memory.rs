//! Out of memory through the exports, on every platform (the C programs
//! `c-tests/adversary_*_out_of_memory.c` need Linux's RLIMIT_AS): a global
//! allocator that answers NULL to the calling thread while it is told to,
//! around one call at a time. The three allocations that aborted the
//! process before (Rust's allocation-failure handler) are refused with
//! `STORECTX_ERR_EXHAUSTED` and nothing changed: a thread's first context,
//! a handle table's growth, a new async store, a resume's pause records
//! (c-tests/adversary_segment_resume_out_of_memory.c on Linux); and the same
//! calls succeed once memory is back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::ptr::{null_mut, without_provenance_mut};
use std::sync::Mutex;
use storectx::ffi::async_store::*;
use storectx::ffi::borrow::*;
use storectx::ffi::identity::*;
use storectx::ffi::install::*;
use storectx::ffi::pause::*;
use storectx::ffi::segment::*;
use storectx::ffi::status::{storectx_last_error, storectx_status, storectx_status::*};

/// The system allocator, failing this thread's requests while `FAIL` is set.
struct Failing;

thread_local! {
    static FAIL: Cell<bool> = const { Cell::new(false) };
}

fn failing() -> bool {
    FAIL.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards every call to the system allocator unchanged, or answers
// NULL (allowed: an allocation failure).
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if failing() {
            return null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if failing() {
            return null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if failing() {
            return null_mut();
        }
        // SAFETY: forwarded with the caller's block and layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's block and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Failing = Failing;

/// Runs `call` with no memory for this thread (it must not panic: the
/// panic's message would need memory).
fn without_memory<R>(call: impl FnOnce() -> R) -> R {
    FAIL.with(|f| f.set(true));
    let r = call();
    FAIL.with(|f| f.set(false));
    r
}

fn last_error() -> String {
    // SAFETY: storectx_last_error never returns NULL; the text is copied
    // before any other call.
    unsafe { CStr::from_ptr(storectx_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// The tables are process-wide: one test at a time grows them.
static TABLES: Mutex<()> = Mutex::new(());

fn store(n: usize) -> *mut c_void {
    without_provenance_mut(0x1000 * n)
}

/// A thread's first call that needs state, without memory for it: every
/// export that needs state answers EXHAUSTED, every one that only keeps
/// its refusal's message answers its own status, nothing is written, and
/// the thread's next call with memory makes the state.
#[test]
fn a_thread_s_first_context_without_memory() {
    let _tables = TABLES.lock().unwrap();
    // SAFETY: every pointer is a live local, a handle from the library or
    // a forged value where the API takes any value.
    let (s, w) = unsafe {
        let mut s = null_mut();
        let mut w = null_mut();
        assert_eq!(storectx_async_store_new(9, store(9), &mut s), STORECTX_OK);
        assert_eq!(storectx_async_store_try_write(s, &mut w), STORECTX_OK);
        (s as usize, w as usize)
    };
    std::thread::spawn(move || {
        let (s, w) = (
            s as *mut storectx_async_store,
            w as *mut storectx_write_guard,
        );
        let id = storectx_store_id_new();
        let mut g = storectx_install_guard { raw: 0x1234 };
        let mut pg = storectx_pause_guard { raw: 0x1234 };
        let mut b = storectx_borrow { raw: 0x1234 };
        let mut p = store(1);
        let mut got_id = 0x1234;
        let mut a = without_provenance_mut(0x1234);
        let mut seg = without_provenance_mut(0x1234);
        let mut w2 = without_provenance_mut(0x1234);
        let mut base = 0x1234;
        let forged = storectx_install_guard { raw: 0x5678 };
        // SAFETY: as above.
        let answers: Vec<(&str, storectx_status, storectx_status)> = unsafe {
            let mut answers = Vec::with_capacity(32);
            let mut call = |what, want, f: &mut dyn FnMut() -> storectx_status| {
                answers.push((what, want, without_memory(f)));
            };
            let exhausted = STORECTX_ERR_EXHAUSTED;
            call("install", exhausted, &mut || {
                storectx_install(id, store(2), &mut g)
            });
            call("install_async", exhausted, &mut || {
                storectx_install_async(w, &mut g)
            });
            call("uninstall", exhausted, &mut || storectx_uninstall(forged));
            call("pause", exhausted, &mut || storectx_pause(id, &mut pg));
            call("unpause", exhausted, &mut || {
                storectx_unpause(storectx_pause_guard { raw: 0x5678 })
            });
            call("get_current", exhausted, &mut || {
                storectx_get_current(id, &mut p, &mut b)
            });
            call("get_current_transient", exhausted, &mut || {
                storectx_get_current_transient(id, &mut p)
            });
            call("get_current_unborrowed", exhausted, &mut || {
                storectx_get_current_unborrowed(&mut got_id, &mut p, &mut b)
            });
            call("get_current_async", exhausted, &mut || {
                storectx_get_current_async(id, &mut a, &mut p, &mut b)
            });
            call("borrow_clone", exhausted, &mut || {
                storectx_borrow_clone(storectx_borrow { raw: 0x5678 }, &mut b)
            });
            call("borrow_release", exhausted, &mut || {
                storectx_borrow_release(storectx_borrow { raw: 0x5678 })
            });
            call("suspend", exhausted, &mut || storectx_suspend(0, &mut seg));
            call("resume", exhausted, &mut || {
                storectx_resume(without_provenance_mut(0x5678), &mut base)
            });
            call(
                "async_store_new",
                STORECTX_ERR_INVALID_ARGUMENT,
                &mut || storectx_async_store_new(0, store(3), &mut a),
            );
            call("async_store_try_write", STORECTX_ERR_BUSY, &mut || {
                storectx_async_store_try_write(s, &mut w2)
            });
            call("async_store_write", STORECTX_ERR_TIMED_OUT, &mut || {
                storectx_async_store_write(s, 0, &mut w2)
            });
            call("write_guard_release", STORECTX_OK, &mut || {
                storectx_write_guard_release(without_provenance_mut(0x5678));
                STORECTX_OK
            });
            call("suspended_free", STORECTX_OK, &mut || {
                storectx_suspended_free(without_provenance_mut(0x5678));
                STORECTX_OK
            });
            answers
        };
        for (what, want, got) in answers {
            assert_eq!(got, want, "{what}");
        }
        let message = last_error();
        assert!(message.contains("could not be created"), "{message}");
        assert_eq!(
            (g.raw, pg.raw, b.raw, got_id, base),
            (0x1234, 0x1234, 0x1234, 0x1234, 0x1234)
        );
        assert_eq!(p, store(1));
        assert_eq!(
            (a as usize, seg as usize, w2 as usize),
            (0x1234, 0x1234, 0x1234)
        );
        assert!(storectx_is_empty());
        assert_eq!(storectx_write_guard_store(w), store(9));
        // Memory is back: the same thread makes its state.
        // SAFETY: live locals and the live guard.
        unsafe {
            assert_eq!(storectx_install(id, store(2), &mut g), STORECTX_OK);
            assert_eq!(storectx_depth(), 1);
            assert_eq!(storectx_uninstall(g), STORECTX_OK);
            assert_eq!(storectx_install_async(w, &mut g), STORECTX_OK);
            assert_eq!(storectx_uninstall(g), STORECTX_OK);
        }
    })
    .join()
    .expect("the thread ran");
    // SAFETY: main's reference.
    unsafe { storectx_async_store_release(s as *mut storectx_async_store) };
}

/// A new async store without memory: EXHAUSTED, nothing made, the message
/// names the memory; then made.
#[test]
fn an_async_store_without_memory() {
    let mut g = storectx_install_guard::default();
    // SAFETY: live locals.
    unsafe {
        // This thread's state first, so that the message is kept.
        assert_eq!(storectx_install(1, store(1), &mut g), STORECTX_OK);
        assert_eq!(storectx_uninstall(g), STORECTX_OK);
        let mut s = without_provenance_mut(0x1234);
        let got = without_memory(|| storectx_async_store_new(5, store(5), &mut s));
        assert_eq!(got, STORECTX_ERR_EXHAUSTED);
        assert_eq!(s as usize, 0x1234);
        let message = last_error();
        assert!(
            message.contains("no memory for a new async store"),
            "{message}"
        );
        assert_eq!(storectx_async_store_new(5, store(5), &mut s), STORECTX_OK);
        assert_eq!(storectx_async_store_id(s), 5);
        storectx_async_store_release(s);
    }
}

/// A table that must grow without memory: EXHAUSTED (the write lock not
/// taken, nothing suspended), the message names the memory; then grown.
/// Handles are taken without memory until the table must grow (taking a
/// free slot needs none), whatever other tests left in it.
#[test]
fn a_table_s_growth_without_memory() {
    let _tables = TABLES.lock().unwrap();
    const CHUNK: usize = 1024;
    // SAFETY: live locals and handles from the library.
    unsafe {
        let stores: Vec<*mut storectx_async_store> = (0..2 * CHUNK + 1)
            .map(|k| {
                let mut s = null_mut();
                let id = 100 + k as u64;
                assert_eq!(
                    storectx_async_store_new(id, store(k + 1), &mut s),
                    STORECTX_OK
                );
                s
            })
            .collect();
        // This thread's state first, so that the messages are kept.
        let mut ig = storectx_install_guard::default();
        assert_eq!(storectx_install(7, store(7), &mut ig), STORECTX_OK);
        assert_eq!(storectx_uninstall(ig), STORECTX_OK);
        let mut guards = Vec::with_capacity(2 * CHUNK);
        let mut segs = Vec::with_capacity(2 * CHUNK);
        let (refused_at, tries) = without_memory(|| {
            let mut w = null_mut();
            for (k, &s) in stores.iter().enumerate() {
                match storectx_async_store_try_write(s, &mut w) {
                    STORECTX_OK => guards.push(w),
                    _ => {
                        w = without_provenance_mut(0x1234);
                        let again = [
                            storectx_async_store_try_write(s, &mut w),
                            storectx_async_store_write(s, 1000, &mut w),
                        ];
                        return (k, again.map(|st| (st, w as usize)));
                    }
                }
            }
            (usize::MAX, [(STORECTX_OK, 0); 2])
        });
        assert!(
            refused_at <= CHUNK,
            "no growth needed in {refused_at} guards"
        );
        assert_eq!(
            tries,
            [(STORECTX_ERR_EXHAUSTED, 0x1234); 2],
            "{}",
            last_error()
        );
        let message = last_error();
        assert!(
            message.contains("no memory for 1024 more write guards"),
            "{message}"
        );
        let last = stores[refused_at];
        let suspended = without_memory(|| loop {
            let mut seg = null_mut();
            match storectx_suspend(0, &mut seg) {
                STORECTX_OK if segs.len() <= CHUNK => segs.push(seg),
                st => return st,
            }
        });
        assert_eq!(suspended, STORECTX_ERR_EXHAUSTED);
        let message = last_error();
        assert!(
            message.contains("no memory for 1024 more suspended segments"),
            "{message}"
        );
        // A suspend of an installed entry: refused the same way, the stack
        // as it was.
        assert_eq!(storectx_install(7, store(7), &mut ig), STORECTX_OK);
        let mut seg = without_provenance_mut(0x1234);
        let got = without_memory(|| storectx_suspend(0, &mut seg));
        assert_eq!(got, STORECTX_ERR_EXHAUSTED, "{}", last_error());
        assert_eq!(seg as usize, 0x1234);
        assert_eq!((storectx_depth(), storectx_active_store()), (1, 7));
        // Memory is back: both tables grow.
        let mut w = null_mut();
        assert_eq!(storectx_async_store_try_write(last, &mut w), STORECTX_OK);
        assert_eq!(storectx_write_guard_store(w), store(refused_at + 1));
        storectx_write_guard_release(w);
        assert_eq!(storectx_suspend(0, &mut seg), STORECTX_OK);
        assert!(storectx_is_empty());
        let mut base = 9;
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_OK);
        assert_eq!((base, storectx_depth()), (0, 1));
        assert_eq!(storectx_uninstall(ig), STORECTX_OK);
        for w in guards {
            storectx_write_guard_release(w);
        }
        for seg in segs {
            storectx_suspended_free(seg);
        }
        for s in stores {
            storectx_async_store_release(s);
        }
    }
}

/// A resume whose segment carries pause records (an entry paused three
/// times: two records) onto a thread whose record vector must grow, without
/// memory: EXHAUSTED, nothing pushed, the segment untouched; with memory it
/// resumes and its pauses unwind in order there. (Aborted before the fix:
/// the records were appended with an infallible `Vec::append`.)
#[test]
fn a_resume_with_pause_records_without_memory() {
    // SAFETY: live locals and handles from the library.
    let (seg, pauses, entry) = std::thread::spawn(|| unsafe {
        let mut g = storectx_install_guard::default();
        assert_eq!(storectx_install(31, store(31), &mut g), STORECTX_OK);
        let mut pauses = [storectx_pause_guard::default(); 3];
        for p in &mut pauses {
            assert_eq!(storectx_pause(31, p), STORECTX_OK);
        }
        let mut seg = null_mut();
        assert_eq!(storectx_suspend(0, &mut seg), STORECTX_OK);
        (seg as usize, pauses, g)
    })
    .join()
    .unwrap();
    // SAFETY: as above; `seg` is the live segment made just above.
    std::thread::spawn(move || unsafe {
        let seg = without_provenance_mut::<storectx_suspended>(seg);
        // State and room for entries, but no pause record ever.
        let mut g = storectx_install_guard::default();
        assert_eq!(storectx_install(32, store(32), &mut g), STORECTX_OK);
        assert_eq!(storectx_uninstall(g), STORECTX_OK);
        let mut base = 9;
        let got = without_memory(|| storectx_resume(seg, &mut base));
        assert_eq!(got, STORECTX_ERR_EXHAUSTED, "{}", last_error());
        assert!(last_error().contains("no memory"), "{}", last_error());
        assert_eq!(base, 9);
        assert!(storectx_is_empty() && !storectx_is_active(31));
        assert_eq!(storectx_suspended_len(seg), 1);
        assert_eq!(storectx_resume(seg, &mut base), STORECTX_OK);
        assert_eq!((base, storectx_active_store()), (0, 31));
        assert_ne!(storectx_unpause(pauses[0]), STORECTX_OK, "innermost first");
        for p in pauses.iter().rev() {
            assert_eq!(storectx_unpause(*p), STORECTX_OK, "{}", last_error());
        }
        assert_eq!(storectx_uninstall(entry), STORECTX_OK);
        assert!(storectx_is_empty());
    })
    .join()
    .unwrap();
}
