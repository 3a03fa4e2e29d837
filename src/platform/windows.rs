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
//!   Windows runs FLS callbacks before the DLL_THREAD_DETACH notifications
//!   (DllMain, PE TLS callbacks), which may still call us: a PE TLS
//!   callback of ours at DLL_THREAD_DETACH tears down what such a call made
//!   and marks the thread torn down, and the thread's word is a Win32 TLS
//!   slot, which keeps that mark to the end (see `ON_DETACH`, `WORD`).
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

// The GNU toolchain's thread word (see `WORD`).
#[cfg(target_env = "gnu")]
#[link(name = "kernel32")]
extern "system" {
    fn TlsAlloc() -> u32;
    fn TlsFree(index: u32) -> i32;
    fn TlsGetValue(index: u32) -> *mut c_void;
    fn TlsSetValue(index: u32, value: *const c_void) -> i32;
}

#[cfg(target_env = "gnu")]
const TLS_OUT_OF_INDEXES: u32 = u32::MAX;
const DLL_THREAD_DETACH: u32 = 3;

#[cfg(target_env = "gnu")]
/// The Win32 TLS index of the thread's word (thread.rs) + 1; 0 until the
/// first thread that needs the word makes it. A Win32 TLS slot keeps its
/// value until the thread is gone (nothing frees it at DLL_THREAD_DETACH,
/// unlike the GNU toolchain's Rust `thread_local!`), and reading a slot
/// never allocates.
static WORD: AtomicUsize = AtomicUsize::new(0);

#[cfg(target_env = "gnu")]
/// The thread's word: NULL until set (and while no index exists).
#[inline(always)]
pub(crate) fn word_get() -> *mut () {
    let known = WORD.load(Ordering::Acquire);
    if known == 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: a live TLS index of this process; a slot never set reads NULL.
    unsafe { TlsGetValue((known - 1) as u32) }.cast()
}

#[cfg(target_env = "gnu")]
/// Sets the thread's word. Only called once `word_index` succeeded on
/// this thread (`arm_thread_exit`) or from the detach callback, which
/// makes the index if needed; a failure to make it leaves the word NULL.
pub(crate) fn word_set(p: *mut ()) {
    if let Ok(index) = word_index() {
        // SAFETY: a live TLS index of this process. The first 64 slots live
        // in the thread's TEB; a later one is allocated by Windows on the
        // thread's first set and freed when the thread ends.
        unsafe { TlsSetValue(index, p.cast_const().cast()) };
    }
}

#[cfg(target_env = "gnu")]
/// The word's TLS index, made by the first call that needs it; racing
/// threads keep the first one stored. No lock, nothing cached on failure.
fn word_index() -> Result<u32> {
    let known = WORD.load(Ordering::Acquire);
    if known != 0 {
        return Ok((known - 1) as u32);
    }
    // SAFETY: no arguments.
    let index = unsafe { TlsAlloc() };
    if index == TLS_OUT_OF_INDEXES {
        return Err(Error::Exhausted(detail!(
            "TlsAlloc failed: the process has no thread-local storage index left for libstorectx"
        )));
    }
    match WORD.compare_exchange(0, index as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(index),
        Err(winner) => {
            // SAFETY: `index` was made just above and never set on any thread.
            unsafe { TlsFree(index) };
            Ok((winner - 1) as u32)
        }
    }
}

/// The teardown's backstop, a PE TLS callback: Windows runs a thread's FLS
/// callbacks (the teardown) before the DLL_THREAD_DETACH notifications of
/// its modules' DllMains and TLS callbacks, which may still call us; this
/// one runs among them and tears down a context made there (or marks the
/// thread torn down, so that the calls after it are refused):
/// c-tests/thread_exit_windows_first_call_in_tls_callback.c.
#[used]
#[link_section = ".CRT$XLY"]
static ON_DETACH: unsafe extern "system" fn(*mut c_void, u32, *mut c_void) = on_detach;

unsafe extern "system" fn on_detach(_module: *mut c_void, reason: u32, _reserved: *mut c_void) {
    // Also before any thread made the word: a module whose DLL_THREAD_DETACH
    // comes after ours may make this thread's first call (the word's index
    // is made here then, once per process).
    if reason == DLL_THREAD_DETACH {
        crate::thread::teardown_at_detach();
    }
}

#[cfg(target_env = "msvc")]
extern "C" {
    /// The CRT's TLS directory: MSVC's linker keeps it (and so runs TLS
    /// callbacks) only when something refers to it.
    static _tls_used: u8;
}

/// Makes sure the linker keeps the TLS directory and [`ON_DETACH`].
fn keep_detach_callback() {
    #[cfg(target_env = "msvc")]
    // SAFETY: reads one byte of the CRT's TLS directory, which exists.
    unsafe {
        std::ptr::from_ref(&_tls_used).read_volatile();
    }
    // SAFETY: reads a static of ours.
    unsafe { std::ptr::from_ref(&ON_DETACH).read_volatile() };
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
    #[cfg(target_env = "gnu")]
    word_index()?;
    keep_detach_callback();
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
