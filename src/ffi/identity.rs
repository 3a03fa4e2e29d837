//! Store ids, version, and inspection of the calling thread's stack.

use super::boundary::boundary;
use crate::current;
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};

/// A store id: nonzero; 0 means "no store".
pub type storectx_store_id = u64;

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

/// A new store id: unique in the process, nonzero, never reused.
#[no_mangle]
pub extern "C" fn storectx_store_id_new() -> storectx_store_id {
    boundary("store_id_new", || {
        NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed)
    })
}

/// Whether store `id` is on top of this thread's stack. O(1).
#[no_mangle]
pub extern "C" fn storectx_is_active(id: storectx_store_id) -> bool {
    boundary("is_active", || current::read(false, |s| s.is_active(id)))
}

/// Whether store `id` is on this thread's stack but not on top. O(1).
#[no_mangle]
pub extern "C" fn storectx_is_paused(id: storectx_store_id) -> bool {
    boundary("is_paused", || current::read(false, |s| s.is_paused(id)))
}

/// Whether this thread's stack is empty. O(1).
#[no_mangle]
pub extern "C" fn storectx_is_empty() -> bool {
    boundary("is_empty", || current::read(true, |s| s.is_empty()))
}

/// Number of entries on this thread's stack. O(1).
#[no_mangle]
pub extern "C" fn storectx_depth() -> usize {
    boundary("depth", || current::read(0, |s| s.depth()))
}

/// The store id on top of this thread's stack, 0 when empty. O(1).
#[no_mangle]
pub extern "C" fn storectx_active_store() -> storectx_store_id {
    boundary("active_store", || current::read(0, |s| s.active_store()))
}

/// Writes this thread's stack into `buf`, one line per entry, top first:
/// `"depth 2: store 7 at 0x5581c0 sync borrows 1\n"`. Like `snprintf`: the
/// text is NUL-terminated and truncated to fit `len` (nothing is written when
/// `buf` is NULL or `len` is 0), and the return value is the length the full
/// text needs, without the NUL. O(depth); for debugging.
///
/// ```c
/// char text[512];
/// if (storectx_describe(text, sizeof text) < sizeof text) fputs(text, stderr);
/// ```
#[no_mangle]
pub extern "C" fn storectx_describe(buf: *mut c_char, len: usize) -> usize {
    boundary("describe", || {
        let text = current::read(String::new(), |s| s.describe());
        if !buf.is_null() && len > 0 {
            let n = text.len().min(len - 1);
            // SAFETY: the caller promises `buf` holds `len` bytes; we write
            // `n + 1 <= len` of them, from a separate Rust string.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                buf.add(n).write(0);
            }
        }
        text.len()
    })
}

/// The library version, "MAJOR.MINOR.PATCH" (see `STORECTX_VERSION_*`).
#[no_mangle]
pub extern "C" fn storectx_version() -> *const c_char {
    boundary("version", || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}
