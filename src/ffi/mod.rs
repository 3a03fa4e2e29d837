//! The C ABI: thin `extern "C"` functions, one file per C concept. Each
//! export runs inside the panic boundary ([`boundary`]), checks its pointers,
//! calls the core and turns its `Error` into a `storectx_status`.
//!
//! Nothing here knows how the stack works; everything here is what
//! `include/storectx.h` declares.

#![allow(non_camel_case_types)]
// The exports take raw pointers from C by design; each dereference is
// preceded by a NULL check and carries a SAFETY note on the C caller's promise.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod async_store;
pub mod borrow;
pub mod boundary;
pub mod identity;
pub mod install;
pub mod pause;
pub mod segment;
pub mod status;
