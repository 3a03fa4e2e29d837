//! Windows (MSVC and GNU toolchains, x86-64 and arm64).
//!
//! * The thread's teardown is a fiber-local-storage callback: `FlsAlloc`
//!   with a callback, once per process, and `FlsSetValue` on a thread's
//!   first call that needs state. Windows runs the callback in every
//!   thread that exits with the slot set — also threads the library never
//!   created (thread pools, other runtimes' threads) — during the thread's
//!   exit, while its TLS is still there. Chosen over the PE TLS callback
//!   (`.CRT$XL?`, what Rust's std uses) because that one runs only when the
//!   final image keeps the section and a TLS directory (a static library
//!   linked into a C program by MSVC gets none unless something references
//!   `_tls_used`) and runs under the loader lock; the FLS callback needs no
//!   linker help and works the same from the DLL and the static library
//!   (the UCRT frees its own per-thread data the same way).
//!   Edge: FLS belongs to a fiber. A thread converted to fibers is torn
//!   down when the fiber that made its first call is deleted; a fiber
//!   deleted on another thread does nothing (docs/platforms.md).
//! * The store lock sleeps with `WaitOnAddress` / `WakeByAddressSingle`
//!   (Windows 8+, synchronization.lib: what Rust's std uses).
//! * Unload: the callback lives in our module, so at the first arming the
//!   module that carries the library (the DLL, or the program or DLL it is
//!   linked into statically) is pinned with `GetModuleHandleExW(PIN)`:
//!   `FreeLibrary` never unmaps it, like ELF `-z nodelete`.
//!
//! The few functions are declared here rather than taken from `windows-sys`:
//! seven declarations of stable kernel32/synchronization entry points cost
//! less than a dependency (and its import libraries) in every consumer's
//! Windows build; none of them is on the hot path.

use crate::error::{Error, Result};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

const FLS_OUT_OF_INDEXES: u32 = u32::MAX;
const INFINITE: u32 = u32::MAX;
const GET_MODULE_HANDLE_EX_FLAG_PIN: u32 = 0x1;
const GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS: u32 = 0x4;

type FlsCallback = unsafe extern "system" fn(*const c_void);

#[link(name = "kernel32")]
extern "system" {
    fn FlsAlloc(callback: Option<FlsCallback>) -> u32;
    fn FlsFree(index: u32) -> i32;
    fn FlsSetValue(index: u32, value: *const c_void) -> i32;
    fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut *mut c_void) -> i32;
    fn GetLastError() -> u32;
}

#[link(name = "synchronization")]
extern "system" {
    fn WaitOnAddress(
        address: *const c_void,
        compare: *const c_void,
        size: usize,
        milliseconds: u32,
    ) -> i32;
    fn WakeByAddressSingle(address: *const c_void);
}

/// The process's FLS index, made (and the module pinned) by the first call
/// that needs it; racing threads keep the first one stored. No lock,
/// nothing cached on failure.
fn index() -> Result<u32> {
    /// The index + 1; 0 until it exists.
    static INDEX: AtomicUsize = AtomicUsize::new(0);
    let known = INDEX.load(Ordering::Acquire);
    if known != 0 {
        return Ok((known - 1) as u32);
    }
    stay_loaded()?;
    // SAFETY: `on_thread_exit` has the callback's signature and stays mapped
    // (the module is pinned just above).
    let index = unsafe { FlsAlloc(Some(on_thread_exit)) };
    if index == FLS_OUT_OF_INDEXES {
        return Err(Error::Exhausted(detail!(
            "FlsAlloc failed: the process has no fiber-local storage index left for libstorectx"
        )));
    }
    match INDEX.compare_exchange(0, index as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(index),
        Err(winner) => {
            // SAFETY: `index` was made just above and never set on any thread.
            unsafe { FlsFree(index) };
            Ok((winner - 1) as u32)
        }
    }
}

/// Pins the module that contains this code: it is never unloaded.
fn stay_loaded() -> Result<()> {
    let mut module = std::ptr::null_mut();
    // SAFETY: FROM_ADDRESS takes any address inside a module (here our own
    // function) in place of a name; `module` is a valid out-pointer.
    let pinned = unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
            on_thread_exit as *const u16,
            &mut module,
        )
    };
    if pinned == 0 {
        // SAFETY: no arguments; reads this thread's last error.
        let code = unsafe { GetLastError() };
        return Err(Error::Exhausted(detail!(
            "GetModuleHandleExW(PIN) failed (error {code}): libstorectx cannot keep its \
             module loaded for its thread-exit callback"
        )));
    }
    Ok(())
}

/// Arms this thread's teardown: at its exit, `crate::thread::teardown`
/// runs with `value` (non-null: the thread's context).
pub(crate) fn arm_thread_exit(value: *mut c_void) -> Result<()> {
    let index = index()?;
    // SAFETY: `index` is a live FLS index of this process; the value is only
    // handed back to the callback.
    if unsafe { FlsSetValue(index, value) } == 0 {
        return Err(Error::Exhausted(detail!(
            "FlsSetValue failed: out of memory for fiber-local storage"
        )));
    }
    Ok(())
}

/// The FLS callback: runs when a thread exits (or its fiber is deleted)
/// with the slot set.
unsafe extern "system" fn on_thread_exit(value: *const c_void) {
    crate::thread::teardown(value.cast_mut());
}

/// Sleeps while `word` holds `expected`, at most `timeout` (`None`:
/// forever). May return early: the caller looks at the word again.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    // Rounded up to a whole millisecond, capped below INFINITE: the caller's
    // loop waits again until its deadline.
    let millis = timeout.map_or(INFINITE, |t| {
        u32::try_from(t.as_nanos().div_ceil(1_000_000))
            .unwrap_or(INFINITE - 1)
            .min(INFINITE - 1)
    });
    // SAFETY: reads 4 bytes at a valid, aligned address and at `expected`,
    // a local; returns at once if they differ. Early returns are fine.
    unsafe {
        WaitOnAddress(
            word.as_ptr().cast_const().cast(),
            std::ptr::from_ref(&expected).cast(),
            std::mem::size_of::<u32>(),
            millis,
        );
    }
}

/// Wakes one thread asleep in [`wait`] on `word`, if any.
pub(crate) fn wake_one(word: &AtomicU32) {
    // SAFETY: only uses the address to find sleepers.
    unsafe { WakeByAddressSingle(word.as_ptr().cast_const().cast()) };
}
