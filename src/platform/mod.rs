//! What the core needs from the operating system, in one place: the
//! thread's teardown, the store lock's sleep and wake-up, and staying
//! loaded. One small module per system; everything above this module is
//! the same on all of them.
//!
//! | | thread's word | its one teardown | store lock wait / wake (timeout) | unload |
//! |---|---|---|---|---|
//! | Linux x86-64 glibc | initial-exec TLS word (feature `initial-exec-tls`, default) | `pthread_key` destructor (`pthread.rs`) | private futex (`linux.rs`) | never: ELF `-z nodelete` (build.rs) |
//! | Linux other (aarch64, musl, Android) | `thread_local!` without destructor | `pthread_key` destructor | private futex | never: `-z nodelete` |
//! | FreeBSD | `thread_local!` | `pthread_key` destructor | `_umtx_op` `WAIT_UINT_PRIVATE` / `WAKE_PRIVATE` (`freebsd.rs`) | never: `-z nodelete` |
//! | macOS | `thread_local!` | `pthread_key` destructor | `__ulock_wait` / `__ulock_wake` (`macos.rs`) | never: dyld does not unload a dylib with thread-local variables, and ours has one (the word) |
//! | Windows (MSVC, GNU) | MSVC: `thread_local!` (native TLS); GNU: a Win32 TLS slot (`TlsAlloc`, `windows.rs`: std's GNU `thread_local!` is freed at DLL_THREAD_DETACH) | FLS callback (`FlsAlloc`), and a PE TLS callback at DLL_THREAD_DETACH as its backstop | `WaitOnAddress` / `WakeByAddressSingle` | never: module pinned by `GetModuleHandleExW(PIN)` at the first arming |
//!
//! The thread word itself stays in thread.rs (its fast path is the hot path).
//!
//! Why not parking_lot for the store lock, on any of them: its waiting
//! path keeps per-thread data in a Rust `thread_local!` with a destructor.
//! On Linux and FreeBSD that registers through `__cxa_thread_atexit_impl`
//! (an allocation and the loader's lock on a thread's first wait, which
//! SPEC "Edges" forbids; and it does nothing once a thread's destructors
//! have started, so a wait from a `pthread_key` destructor would leak); on
//! macOS through `_tlv_atexit` (an allocation as well); on Windows through
//! the TLS callback, which runs under the loader lock. And its process-wide
//! table of parked threads has a lock per bucket: a `fork` while another
//! thread holds one leaves the child hung on its next wait or wake-up in
//! that bucket, where a bare futex word leaves the child only the word
//! (SPEC "Edges", fork). Each system's own wait-on-address call is a few
//! lines and has none of these costs.

#[cfg(unix)]
mod pthread;
#[cfg(unix)]
pub(crate) use pthread::arm_thread_exit;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{wait, wake_one};

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
pub(crate) use freebsd::{wait, wake_one};

#[cfg(target_vendor = "apple")]
mod macos;
#[cfg(target_vendor = "apple")]
pub(crate) use macos::{wait, wake_one};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{arm_thread_exit, wait, wake_one};
#[cfg(all(windows, target_env = "gnu"))]
pub(crate) use windows::{word_get, word_set};

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_vendor = "apple",
    windows
)))]
compile_error!(
    "libstorectx has no platform module for this target: add one to src/platform/ \
     (a thread-exit hook, a wait/wake on a 32-bit word, and how it stays loaded)"
);
