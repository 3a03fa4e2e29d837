//! Suspended segments: the entries a coroutine detaches when it yields and
//! re-attaches, on any thread, when it resumes.

use super::boundary::{self, boundary, put, required};
use super::status::storectx_status;
use crate::stack::{Segment, SEGMENTS};
use crate::thread;

/// Entries detached from a thread's stack. A validated handle, not a
/// pointer: resuming or freeing it twice is answered, never undefined.
///
/// \ingroup api_coroutines
pub struct storectx_suspended {
    _private: [u8; 0],
}

// A one-entry segment is one cache line: all that moves between cores when
// another thread resumes it.
const _: () = assert!(
    crate::registry::slot_bytes::<Segment>() == 64,
    "a segment's registry slot must stay one cache line"
);

fn handle(s: *const storectx_suspended) -> u64 {
    s as usize as u64
}

/// Detaches every entry above `base_depth` (zero entries is fine) into a
/// segment that keeps their borrows, pauses and write locks, written to
/// `*out`. A coroutine records `storectx_depth()` when it starts or resumes
/// and passes it here when it yields. O(segment).
///
/// Thread rules: detaches from the calling thread's stack; the segment may
/// be resumed or freed on any thread. May allocate (this thread's state if
/// it has none, the detached entries, the segment table's growth); takes no
/// lock. Not in a signal handler; from a destructor until this thread's
/// teardown.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `out` is NULL.
/// - `STORECTX_ERR_INVALID_ARGUMENT`: `base_depth` is above this thread's
///   stack.
/// - `STORECTX_ERR_EXHAUSTED`: 4,194,304 segments are live at once (free some,
///   from any thread, and any thread can suspend again); or there is no
///   memory for the detached entries and pause records, or for the growth
///   of the segment table (by 1,024 slots) (a memory limit reached: nothing
///   was suspended, the stack is as it was); or see the first-call case
///   below.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `out` must point to writable memory for one pointer. NULL is not optional:
/// it is refused with `STORECTX_ERR_NULL_ARGUMENT`.
///
/// \ingroup api_coroutines
#[no_mangle]
pub unsafe extern "C" fn storectx_suspend(
    base_depth: usize,
    out: *mut *mut storectx_suspended,
) -> storectx_status {
    boundary::status("suspend", || {
        let out = required(out, "out")?;
        // SAFETY: only `Stack` and registry methods run: none reaches the context.
        let (h, ()) = unsafe {
            thread::with_unreentered(|cx| {
                let stack = &mut cx.stack;
                SEGMENTS.insert_with(Some(&cx.spot), |segment| {
                    stack.suspend_into(base_depth, segment)
                })
            })
        }?;
        // SAFETY: writable (this function's contract).
        unsafe { put(out, std::ptr::without_provenance_mut(h as usize)) };
        Ok(())
    })
}

/// Pushes the segment back, in order, on top of this thread's stack (any
/// thread, including one the library never saw), writes the depth where it
/// starts to `*base_depth`, and consumes `s`: every guard, borrow and pause
/// of its entries is valid again on this thread. O(segment).
///
/// Thread rules: pushes on the calling thread's stack, any thread (one the
/// library never saw gets its state); `s` may come from any thread. May
/// allocate (that state, the stack's growth); waits only for another call
/// consuming `s` (at most 2 s). Not in a signal handler; after this
/// thread's teardown refused, `s` untouched.
///
/// # Errors
/// A refused call changes nothing and writes no out-parameter;
/// `storectx_last_error()` says what it expected and found.
/// - `STORECTX_ERR_NULL_ARGUMENT`: `s` or `base_depth` is NULL.
/// - `STORECTX_ERR_STALE_HANDLE`: `s` was already resumed or freed, or never
///   came from this library.
/// - `STORECTX_ERR_ALREADY_ON_STACK`: one of its stores is already on this
///   thread's stack (`s` untouched: resume it elsewhere or free it).
/// - `STORECTX_ERR_EXHAUSTED`: this thread's stack cannot grow to take the
///   segment's entries for lack of memory (a memory limit reached: `s`
///   untouched, nothing was pushed); or see the first-call case below.
/// - `STORECTX_ERR_NO_CONTEXT`: this thread is exiting and its libstorectx
///   state was already torn down (a call from a late thread-exit destructor):
///   nothing was done.
/// - `STORECTX_ERR_EXHAUSTED`: this thread's first stateful call could not
///   create its state (no thread-specific data key or memory left).
/// - `STORECTX_ERR_PANIC`: an internal bug was caught at the boundary.
///
/// # Safety
/// `base_depth` must point to writable memory for one `size_t`; NULL is not
/// optional: it is refused with `STORECTX_ERR_NULL_ARGUMENT`. `s` may be any
/// value: it is validated.
///
/// \ingroup api_coroutines
#[no_mangle]
pub unsafe extern "C" fn storectx_resume(
    s: *mut storectx_suspended,
    base_depth: *mut usize,
) -> storectx_status {
    boundary::status("resume", || {
        let base_out = required(base_depth, "base_depth")?;
        let s = handle(required(s, "s")?.as_ptr());
        // The fast half: a thread with a context and an empty parking spot,
        // the handle live, in a process no race detector annotates (the
        // slow half annotates): the slot is claimed, resumed from and
        // parked inline (`Registry::take_parking_with`).
        let fast = match crate::valgrind::quiet() {
            // SAFETY: only `Stack` and registry methods run: none reaches
            // the context.
            true => unsafe {
                thread::with_existing_unreentered(|cx| {
                    let stack = &mut cx.stack;
                    SEGMENTS.take_parking_with(&cx.spot, s, |segment| stack.resume_from(segment))
                })
            }
            .flatten(),
            false => None,
        };
        let base = match fast {
            Some(base) => base?,
            None => resume_slow(s)?,
        };
        // SAFETY: writable (this function's contract).
        unsafe { put(base_out, base) };
        Ok(())
    })
}

/// `storectx_resume` where its fast half did nothing: the context made on
/// a thread's first call, a slot parked in the spot displaced, a busy
/// handle waited for, a stale one explained, annotations made.
#[cold]
#[inline(never)]
fn resume_slow(s: u64) -> Result<usize, crate::error::Error> {
    // SAFETY: only `Stack` and registry methods run: none reaches the context.
    unsafe {
        thread::with_unreentered(|cx| {
            let stack = &mut cx.stack;
            SEGMENTS.take_with(Some(&cx.spot), s, |segment| stack.resume_from(segment))
        })
    }
}

/// Number of entries in the segment (0 for NULL, a spent or a forged
/// segment: the handle is validated). O(1).
///
/// Thread rules: any thread, including one the library never saw. A resume
/// or a free of the same segment on another thread at the same time makes
/// it answer the length or 0, never another segment's. Uses no per-thread
/// state, allocates nothing, takes no lock.
///
/// \ingroup api_coroutines
#[no_mangle]
pub extern "C" fn storectx_suspended_len(s: *const storectx_suspended) -> usize {
    boundary("suspended_len", || {
        SEGMENTS.peek(handle(s)).unwrap_or(0) as usize
    })
}

/// Drops a segment that will never resume (a cancelled coroutine): releases
/// its write locks; its handles become stale. NULL is fine; a segment already
/// resumed or freed is left alone (and noted in `storectx_last_error`).
/// O(segment).
///
/// Thread rules: any thread, not necessarily the one that suspended it
/// (including one the library never saw). If two threads free or resume the
/// same segment at once, one does and the other finds it spent. Frees
/// memory: not in a signal handler.
///
/// \ingroup api_coroutines
#[no_mangle]
pub extern "C" fn storectx_suspended_free(s: *mut storectx_suspended) {
    boundary("suspended_free", || {
        if s.is_null() {
            return;
        }
        // SAFETY: only `Stack` and registry methods run: none reaches the context.
        let freed = unsafe {
            thread::with_any_unreentered(|cx| {
                SEGMENTS.take_with(cx.map(|cx| &cx.spot), handle(s), |segment| {
                    segment.clear();
                    Ok(())
                })
            })
        };
        if let Err(e) = freed {
            boundary::fail("suspended_free", &e);
        }
    })
}
