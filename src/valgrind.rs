//! Happens-before annotations for valgrind's helgrind and DRD, which only
//! understand pthread primitives and so cannot see our futex-based
//! locks. The store lock and registry hand-offs announce themselves, so the
//! race detectors can check the embedder's own accesses to a store.
//!
//! Not running under helgrind or DRD, an annotation is one compare of a
//! flag (set by the process's first annotation) with memory and a branch:
//! the async path makes six per write guard (issue 20: the request
//! sequence, its six argument words and its compiler barrier took ~13
//! instructions each, and callgrind, which ignores them, counted them; a
//! load, compare and branch on the flag's three values took 4). It is never on the sync
//! hot path (install, get_current, pause).

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not asked yet; 1: no race detector reads annotations; 2: one does.
static ANNOTATE: AtomicU8 = AtomicU8::new(0);

/// Whether no race detector reads annotations, known already (the
/// process's first annotation asks): the async exports' fast paths, which
/// make none, run only then; their slow halves annotate (and ask).
#[inline(always)]
pub fn quiet() -> bool {
    // Relaxed: as in `annotate`.
    ANNOTATE.load(Ordering::Relaxed) == 1
}

/// Makes client request `request` about `tag` if helgrind or DRD runs the
/// process (asked once). Inline, the common case is one compare of the
/// flag with memory and a branch (the flag is 1): anything else (not
/// asked yet, or a race detector running) goes out of line.
#[inline(always)]
fn annotate(request: u64, tag: *const u8) {
    // Relaxed: the flag orders nothing; every thread that asks gets the
    // same answer.
    if ANNOTATE.load(Ordering::Relaxed) != 1 {
        annotate_slow(request, tag);
    }
}

#[cold]
#[inline(never)]
fn annotate_slow(request: u64, tag: *const u8) {
    // Relaxed: as in `annotate`.
    let annotate = match ANNOTATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => ask(),
    };
    if annotate {
        client_request(request, tag as usize);
    }
}

fn ask() -> bool {
    let annotate = client_request(RUNNING_ON_VALGRIND, 0) != 0 && race_detector_preloaded();
    ANNOTATE.store(1 + u8::from(annotate), Ordering::Relaxed);
    annotate
}

/// Whether valgrind preloaded helgrind's or DRD's library (it names its
/// tool's `vgpreload_<tool>` in `LD_PRELOAD`); other tools ignore the
/// annotations.
fn race_detector_preloaded() -> bool {
    // SAFETY: a NUL-terminated name; glibc's getenv neither allocates nor
    // locks, and the answer is copied out at once.
    let value = unsafe { libc::getenv(c"LD_PRELOAD".as_ptr()) };
    if value.is_null() {
        return false;
    }
    // SAFETY: getenv answers NULL (handled) or a NUL-terminated string.
    let value = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
    [&b"vgpreload_helgrind"[..], b"vgpreload_drd"]
        .iter()
        .any(|tool| value.windows(tool.len()).any(|w| w == *tool))
}

/// The lock or slot at `tag` is released: what happened before is visible
/// to whoever acquires it next (helgrind's `ANNOTATE_HAPPENS_BEFORE`).
#[inline(always)]
pub fn release(tag: *const u8) {
    annotate(HG_USERSO_SEND_PRE, tag);
}

/// The lock or slot at `tag` was acquired (`ANNOTATE_HAPPENS_AFTER`).
#[inline(always)]
pub fn acquire(tag: *const u8) {
    annotate(HG_USERSO_RECV_POST, tag);
}

/// `VG_USERREQ__RUNNING_ON_VALGRIND` from valgrind.h: answers how many
/// valgrinds the program runs under (0 natively: the default).
const RUNNING_ON_VALGRIND: u64 = 0x1001;

/// `_VG_USERREQ__HG_USERSO_SEND_PRE` / `_RECV_POST` from valgrind/helgrind.h
/// (`VG_USERREQ_TOOL_BASE('H','G') + 256 + 33/34`); DRD implements them too.
const HG_USERSO_SEND_PRE: u64 = 0x4847_0121;
const HG_USERSO_RECV_POST: u64 = 0x4847_0122;

/// Makes client request `request` with `arg`; valgrind's answer, 0 natively.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
fn client_request(request: u64, arg: usize) -> u64 {
    let args: [u64; 6] = [request, arg as u64, 0, 0, 0, 0];
    let answer: u64;
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
            inout("rdx") 0u64 => answer,
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
    answer
}

// Miri runs no inline assembly (and is not valgrind): the requests are no-ops.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
#[inline(always)]
fn client_request(_request: u64, _arg: usize) -> u64 {
    0
}
