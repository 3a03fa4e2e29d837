//! libstorectx: for every thread, a stack of store contexts — which store is
//! active while an engine runs guest code — across nested cross-store calls
//! and coroutines that suspend on one thread and resume on another.
//!
//! The product is the C ABI that `include/storectx.h` declares ([`ffi`]);
//! the core below it is private to the crate and knows nothing of C:
//!
//! * `thread` — the calling thread's one context and its one teardown;
//! * `stack` — the stack of entries and everything that edits it (borrows,
//!   pauses, segments, the store set, handle numbering);
//! * `async_store` — the store lock, owned write guards, keep-alive, the
//!   would-deadlock rule and store ids;
//! * `registry` — validated handles for heap objects C may misuse;
//! * `fallible` — the allocations that refuse, not abort, when memory runs
//!   out (a thread's context, a registry chunk, an async store);
//! * [`error`] — the one table of status codes, names and texts;
//! * `platform` — what each OS provides: thread exit, wait/wake, unload;
//! * `valgrind` — happens-before annotations so helgrind sees our locks;
//! * `sync` — the atomics, cell and wait/wake the lock-free core is built
//!   from (loom's under `--cfg loom`, the platform's otherwise).

#![warn(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(loom, allow(dead_code, unused_imports))]

// Heap handles (write guards, segments) are 64-bit values carried in C
// pointers: a narrower pointer would silently refuse every one of them.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("libstorectx needs 64-bit pointers: its heap handles are 64-bit values");

// First, so that its `detail!` macro is in scope in every module below.
#[macro_use]
pub mod error;
// Under `--cfg loom` (.ci/loom.sh) the crate is only its lock-free core,
// built on loom's primitives (`sync`), so that loom checks the real code.
#[cfg(not(loom))]
mod async_store;
mod fallible;
#[cfg(not(loom))]
pub mod ffi;
#[cfg(not(loom))]
mod platform;
mod registry;
#[cfg(not(loom))]
mod stack;
mod store_lock;
mod sync;
#[doc(hidden)]
pub mod testing;
#[cfg(not(loom))]
mod thread;
mod valgrind;

pub use error::Error;
