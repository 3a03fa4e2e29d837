//! Happens-before annotations for valgrind's helgrind and DRD, which only
//! understand pthread primitives and so cannot see our futex-based
//! locks. The store lock and registry hand-offs announce themselves, so the
//! race detectors can check the embedder's own accesses to a store.
//!
//! Not running under valgrind, an annotation costs a few register rotations.
//! It is never on the hot path (install, get_current, pause).

/// The lock or slot at `tag` is released: what happened before is visible
/// to whoever acquires it next (helgrind's `ANNOTATE_HAPPENS_BEFORE`).
#[inline(always)]
pub fn release(tag: *const u8) {
    client_request(HG_USERSO_SEND_PRE, tag as usize);
}

/// The lock or slot at `tag` was acquired (`ANNOTATE_HAPPENS_AFTER`).
#[inline(always)]
pub fn acquire(tag: *const u8) {
    client_request(HG_USERSO_RECV_POST, tag as usize);
}

/// `_VG_USERREQ__HG_USERSO_SEND_PRE` / `_RECV_POST` from valgrind/helgrind.h
/// (`VG_USERREQ_TOOL_BASE('H','G') + 256 + 33/34`); DRD implements them too.
const HG_USERSO_SEND_PRE: u64 = 0x4847_0121;
const HG_USERSO_RECV_POST: u64 = 0x4847_0122;

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
fn client_request(request: u64, arg: usize) {
    let args: [u64; 6] = [request, arg as u64, 0, 0, 0, 0];
    // SAFETY: valgrind's amd64 client-request sequence: rotating rdi by
    // 3+13+61+51 = 128 bits leaves it unchanged and `xchg rbx, rbx` is a
    // no-op, so natively nothing changes but flags; under valgrind the tool
    // reads the six words at rax and writes its answer to rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0u64 => _,
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
}

// Miri runs no inline assembly (and is not valgrind): the requests are no-ops.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
#[inline(always)]
fn client_request(_request: u64, _arg: usize) {}
