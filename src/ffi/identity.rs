//! Store ids, version, and inspection of the calling thread's stack. Every
//! function here but `storectx_store_id_new` is read-only: it never
//! allocates, locks or creates per-thread state, so it may be called from a
//! signal handler (one that does not interrupt a libstorectx call on the same
//! thread), a destructor, or under the dynamic loader's lock; a thread with
//! no state answers as an empty stack.

use super::boundary::{boundary, read_any_stack_unreentered, read_stack_unreentered};
use std::ffi::c_char;

/// A store id: nonzero; 0 means "no store"; `UINT64_MAX` is reserved (never
/// handed out, refused as `STORECTX_ERR_INVALID_ARGUMENT`). Take ids from
/// `storectx_store_id_new()` (a hard-coded number may equal one it hands
/// out; pointers are fine). No id is slower than another by construction:
/// each thread's hash set of ids draws its own hash multiplier, so ids
/// crafted to collide collide no more than any others, by chance and for
/// one probe step (docs/threading.md, "The rules").
///
/// \ingroup api_identity
pub type storectx_store_id = u64;

/// A new store id: unique in the process, nonzero, never reused. Answers 0
/// (never a valid id) once 2^64 - 2 ids were handed out, which takes 584
/// years at 10^9 a second.
///
/// Thread rules: any thread, at the same time as any other call (a
/// lock-free compare-and-swap on one process-wide counter); uses no
/// per-thread state.
///
/// \ingroup api_identity
#[no_mangle]
pub extern "C" fn storectx_store_id_new() -> storectx_store_id {
    boundary("store_id_new", crate::async_store::new_store_id)
}

/// Whether store `id` is on top of this thread's stack. O(1). Always
/// false for 0 and `UINT64_MAX` (reserved: no entry has either), recording
/// no error.
///
/// Thread rules: the calling thread's stack only. Read-only: allocates
/// nothing, takes no lock, creates no state (a thread without state
/// answers false); callable from a destructor, or a signal handler that did
/// not interrupt a libstorectx call on the same thread.
///
/// \ingroup api_identity
#[no_mangle]
pub extern "C" fn storectx_is_active(id: storectx_store_id) -> bool {
    boundary("is_active", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { read_any_stack_unreentered(|s| s.is_active(id)) }
    })
}

/// Whether store `id` is on this thread's stack but not on top. O(1).
/// Always false for 0 and `UINT64_MAX` (reserved: no entry has either),
/// recording no error.
///
/// Thread rules: the calling thread's stack only. Read-only: allocates
/// nothing, takes no lock, creates no state (a thread without state
/// answers false); callable from a destructor, or a signal handler that did
/// not interrupt a libstorectx call on the same thread.
///
/// \ingroup api_identity
#[no_mangle]
pub extern "C" fn storectx_is_paused(id: storectx_store_id) -> bool {
    boundary("is_paused", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { read_stack_unreentered(false, |s| s.is_paused(id)) }
    })
}

/// Whether this thread's stack is empty. O(1).
///
/// Thread rules: the calling thread's stack only. Read-only: allocates
/// nothing, takes no lock, creates no state (a thread without state
/// answers true); callable from a destructor, or a signal handler that did
/// not interrupt a libstorectx call on the same thread.
///
/// \ingroup api_identity
#[no_mangle]
pub extern "C" fn storectx_is_empty() -> bool {
    boundary("is_empty", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { read_stack_unreentered(true, |s| s.is_empty()) }
    })
}

/// Number of entries on this thread's stack. O(1).
///
/// Thread rules: the calling thread's stack only. Read-only: allocates
/// nothing, takes no lock, creates no state (a thread without state
/// answers 0); callable from a destructor, or a signal handler that did
/// not interrupt a libstorectx call on the same thread.
///
/// \ingroup api_identity
#[no_mangle]
pub extern "C" fn storectx_depth() -> usize {
    boundary("depth", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { read_stack_unreentered(0, |s| s.depth()) }
    })
}

/// The store id on top of this thread's stack, 0 when empty. O(1).
///
/// Thread rules: the calling thread's stack only. Read-only: allocates
/// nothing, takes no lock, creates no state (a thread without state
/// answers 0); callable from a destructor, or a signal handler that did
/// not interrupt a libstorectx call on the same thread.
///
/// \ingroup api_identity
#[no_mangle]
pub extern "C" fn storectx_active_store() -> storectx_store_id {
    boundary("active_store", || {
        // SAFETY: only `Stack` methods run: nothing reaches the context again.
        unsafe { read_stack_unreentered(0, |s| s.active_store()) }
    })
}

/// Copies text into a C buffer as far as it fits (keeping room for the
/// NUL) and counts the length of the whole text.
struct CBuffer {
    buf: *mut u8,
    /// Bytes that may hold text: `len - 1`, or 0 without a buffer.
    room: usize,
    needed: usize,
}

impl std::fmt::Write for CBuffer {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let n = text.len().min(self.room.saturating_sub(self.needed));
        if n > 0 {
            // SAFETY: `buf` holds `room + 1` bytes (the caller's promise to
            // `storectx_describe`), `needed + n <= room`, and `text` is ours.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), self.buf.add(self.needed), n);
            }
        }
        self.needed += text.len();
        Ok(())
    }
}

/// Writes this thread's stack into `buf`, one line per entry, top first:
/// `"depth 2: store 7 at 0x5581c0 sync borrows 1\n"`. Like `snprintf`: the
/// text is NUL-terminated and truncated to fit `len` (nothing is written when
/// `buf` is NULL or `len` is 0), and the return value is the length the full
/// text needs, without the NUL. O(depth); for debugging.
///
/// Thread rules: the calling thread's stack only. Read-only: allocates
/// nothing, takes no lock, creates no state (a thread without state
/// writes an empty text and answers 0); callable from a destructor, or a
/// signal handler that did not interrupt a libstorectx call on the same
/// thread.
///
/// ```c
/// char text[512];
/// if (storectx_describe(text, sizeof text) < sizeof text) fputs(text, stderr);
/// ```
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes.
///
/// \ingroup api_identity
#[no_mangle]
pub unsafe extern "C" fn storectx_describe(buf: *mut c_char, len: usize) -> usize {
    boundary("describe", || {
        let has_buffer = !buf.is_null() && len > 0;
        let mut out = CBuffer {
            buf: buf.cast(),
            room: if has_buffer { len - 1 } else { 0 },
            needed: 0,
        };
        // SAFETY: only `describe_to` runs, writing into the caller's buffer:
        // nothing reaches the context again.
        unsafe {
            read_stack_unreentered((), |s| {
                let _ = s.describe_to(&mut out);
            })
        };
        if has_buffer {
            // SAFETY: `out.needed.min(room) < len`: inside the caller's buffer.
            unsafe { buf.add(out.needed.min(out.room)).write(0) };
        }
        out.needed
    })
}

/// The library version, "MAJOR.MINOR.PATCH" (see `STORECTX_VERSION_*`):
/// a static string, never NULL, the same for the life of the process; do
/// not free it.
///
/// Thread rules: any thread at any time, signal handlers included; reads no
/// state, allocates nothing.
///
/// \ingroup api_diagnostics
#[no_mangle]
pub extern "C" fn storectx_version() -> *const c_char {
    boundary("version", || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}
