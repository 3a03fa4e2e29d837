//! libstorectx: for every thread, a stack of store contexts — which store is
//! active while an engine runs guest code — across nested cross-store calls
//! and coroutines that suspend on one thread and resume on another.
//!
//! The core (everything outside [`ffi`]) is plain Rust and knows nothing of C:
//!
//! * [`stack`] — the per-thread stack of entries: install, uninstall, lookups;
//! * [`borrow`] — borrow counting and pause guards on the top entry;
//! * [`handle`] — how guard handles encode an entry and are validated;
//! * [`store_set`] — the O(1) "is this store anywhere on my stack" set;
//! * [`async_store`] — the store lock, owned write guards, keep-alive;
//! * [`segment`] — suspend/resume of entry segments;
//! * [`registry`] — validated handles for heap objects C may misuse;
//! * `free_cache` — each thread's most recently freed registry index;
//! * [`current`] — the calling thread's stack;
//! * `fast_tls` — its address in an initial-exec thread-local word;
//! * [`error`] — one error enum, one variant per C status code;
//! * `valgrind` — happens-before annotations so helgrind sees our locks.
//!
//! [`ffi`] is the thin `extern "C"` layer that `include/storectx.h` declares.

pub mod async_store;
pub mod borrow;
pub mod current;
pub mod error;
mod fast_tls;
pub mod ffi;
mod free_cache;
pub mod handle;
pub mod registry;
pub mod segment;
pub mod stack;
pub mod store_set;
#[doc(hidden)]
pub mod testing;
mod valgrind;

pub use error::Error;
