//! A pointer to the calling thread's stack, in the initial-exec TLS model.
//!
//! A Rust `thread_local!` in a shared library is reached through
//! `__tls_get_addr` (the general-dynamic model: a call, ~11 instructions),
//! and stable Rust offers no other model. This word is declared in assembly
//! with the initial-exec model instead: one load relative to the thread
//! pointer. `current` keeps the stack itself in its `thread_local!` (which
//! owns it and drops it at thread exit) and caches its address here.
//!
//! Initial-exec TLS in a shared library takes 8 bytes of glibc's static TLS
//! surplus, which is reserved for exactly this (libGL and most allocators do
//! the same), so `dlopen` works too. Other targets (and other C libraries),
//! and builds without the `initial-exec-tls` feature (on by default), get a
//! null pointer here, always: `current` then takes the portable path.

#[cfg(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux",
    target_env = "gnu"
))]
mod imp {
    use crate::stack::Stack;
    use std::arch::{asm, global_asm};

    // One pointer-sized thread-local, zero (null) in every new thread.
    global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 3",
        ".globl storectx_current_stack_ie",
        ".hidden storectx_current_stack_ie",
        ".type storectx_current_stack_ie,@tls_object",
        ".size storectx_current_stack_ie,8",
        "storectx_current_stack_ie:",
        ".zero 8",
        ".popsection",
    );

    /// The cached pointer (null until `set`).
    #[inline(always)]
    pub fn get() -> *mut Stack {
        let p: *mut Stack;
        // SAFETY: reads the 8-byte thread-local defined above, at the offset
        // the dynamic linker put in the GOT for it; touches nothing else.
        unsafe {
            asm!(
                "mov {p}, qword ptr [rip + storectx_current_stack_ie@GOTTPOFF]",
                "mov {p}, qword ptr fs:[{p}]",
                p = out(reg) p,
                options(nostack, preserves_flags, readonly, pure),
            );
        }
        p
    }

    /// Caches `p` for the calling thread.
    #[inline(always)]
    pub fn set(p: *mut Stack) {
        // SAFETY: writes the 8-byte thread-local defined above, nothing else.
        unsafe {
            asm!(
                "mov {t}, qword ptr [rip + storectx_current_stack_ie@GOTTPOFF]",
                "mov qword ptr fs:[{t}], {p}",
                t = out(reg) _,
                p = in(reg) p,
                options(nostack, preserves_flags),
            );
        }
    }
}

#[cfg(not(all(
    feature = "initial-exec-tls",
    target_arch = "x86_64",
    target_os = "linux",
    target_env = "gnu"
)))]
mod imp {
    use crate::stack::Stack;

    /// No initial-exec word on this target: always null.
    #[inline(always)]
    pub fn get() -> *mut Stack {
        std::ptr::null_mut()
    }

    #[inline(always)]
    pub fn set(_: *mut Stack) {}
}

pub use imp::{get, set};
