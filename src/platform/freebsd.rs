//! FreeBSD: the store lock sleeps with `_umtx_op`, FreeBSD's futex
//! (`UMTX_OP_WAIT_UINT_PRIVATE` / `UMTX_OP_WAKE_PRIVATE`, what libthr's own
//! mutexes and Rust's std use).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` holds `expected`, at most `timeout` (`None`:
/// forever). May return early: the caller looks at the word again.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    // A relative timeout on the monotonic clock, passed as `struct
    // _umtx_time` with its size in `uaddr` (_umtx_op(2)).
    let mut time = timeout.map(|t| libc::_umtx_time {
        _timeout: libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as _,
            tv_nsec: t.subsec_nanos() as _,
        },
        _flags: 0,
        _clockid: libc::CLOCK_MONOTONIC as u32,
    });
    let (size, time_ptr) = match time.as_mut() {
        Some(t) => (
            std::mem::size_of::<libc::_umtx_time>(),
            std::ptr::from_mut(t).cast::<libc::c_void>(),
        ),
        None => (0, std::ptr::null_mut()),
    };
    // SAFETY: UMTX_OP_WAIT_UINT_PRIVATE reads the u32 at a valid, aligned
    // address and the optional timeout we own (its size in `uaddr`, as the
    // call wants); it returns at once if the word no longer holds
    // `expected`. EINTR and spurious returns are fine: the caller looks again.
    unsafe {
        libc::_umtx_op(
            word.as_ptr().cast(),
            libc::UMTX_OP_WAIT_UINT_PRIVATE,
            expected as libc::c_ulong,
            size as *mut libc::c_void,
            time_ptr,
        );
    }
}

/// Wakes one thread asleep in [`wait`] on `word`, if any.
pub(crate) fn wake_one(word: &AtomicU32) {
    // SAFETY: UMTX_OP_WAKE_PRIVATE only uses the address to find sleepers.
    unsafe {
        libc::_umtx_op(
            word.as_ptr().cast(),
            libc::UMTX_OP_WAKE_PRIVATE,
            1,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
}
