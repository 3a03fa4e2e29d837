//! macOS (and the other Darwin systems): the store lock sleeps with
//! `__ulock_wait` / `__ulock_wake`, exported by libSystem since macOS 10.12
//! (what libc++'s `std::atomic::wait` uses). The public
//! `os_sync_wait_on_address` wraps the same kernel call but exists only
//! from macOS 14.4: linking it would make the library fail to load on
//! every older system Rust still supports (10.12 on x86-64, 11 on arm64).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// `UL_COMPARE_AND_WAIT`: wait while the 32-bit word holds the value,
/// process-private (sys/ulock.h).
const UL_COMPARE_AND_WAIT: u32 = 1;
/// `ULF_NO_ERRNO`: answer `-errno` instead of setting `errno`.
const ULF_NO_ERRNO: u32 = 0x0100_0000;

extern "C" {
    // sys/ulock.h (xnu); `timeout` in microseconds, 0 = forever.
    fn __ulock_wait(
        operation: u32,
        addr: *mut libc::c_void,
        value: u64,
        timeout: u32,
    ) -> libc::c_int;
    fn __ulock_wake(operation: u32, addr: *mut libc::c_void, wake_value: u64) -> libc::c_int;
}

/// Sleeps while `word` holds `expected`, at most `timeout` (`None`:
/// forever). May return early: the caller looks at the word again.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    // Rounded up to a whole microsecond (0 would mean forever) and capped at
    // u32::MAX µs (~71 min): the caller's loop waits again until its deadline.
    let micros = timeout.map_or(0, |t| {
        u32::try_from(t.as_nanos().div_ceil(1000))
            .unwrap_or(u32::MAX)
            .max(1)
    });
    // SAFETY: reads the u32 at a valid, aligned address; returns at once if
    // it no longer holds `expected`. Early returns (EINTR, timeouts) are fine.
    unsafe {
        __ulock_wait(
            UL_COMPARE_AND_WAIT | ULF_NO_ERRNO,
            word.as_ptr().cast(),
            u64::from(expected),
            micros,
        );
    }
}

/// Wakes one thread asleep in [`wait`] on `word`, if any.
pub(crate) fn wake_one(word: &AtomicU32) {
    // SAFETY: only uses the address to find sleepers (ENOENT when none).
    unsafe {
        __ulock_wake(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO, word.as_ptr().cast(), 0);
    }
}
