//! The C ABI: thin `extern "C"` functions, one file per C concept. Each
//! export runs inside the panic boundary (`boundary`), checks its pointers,
//! calls the core and turns its `Error` into a `storectx_status`.
//!
//! Nothing here knows how the stack works; everything here is what
//! `include/storectx.h` declares. Exports that dereference a pointer the
//! caller passes are `unsafe extern "C" fn`, with the caller's promise under
//! "Safety"; handles (guards, borrows, write guards, segments) may be any
//! value: they are validated, never trusted.

#![allow(non_camel_case_types)]

pub mod async_store;
pub mod borrow;
pub(crate) mod boundary;
pub mod identity;
pub mod install;
pub mod pause;
pub mod segment;
pub mod status;
