//! Test-only hook: with the `testing` feature, the next core operation on
//! this thread that reaches a mutation point panics, so tests can check the
//! FFI panic boundary. Without the feature every hook compiles to nothing.

#[cfg(feature = "testing")]
thread_local! {
    static PANIC_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes the next mutating operation on this thread panic (testing builds).
#[cfg(feature = "testing")]
pub fn panic_next_operation() {
    PANIC_NEXT.with(|p| p.set(true));
}

/// Called at the point where an operation has validated its input and is
/// about to change state.
#[inline(always)]
pub(crate) fn maybe_panic() {
    #[cfg(feature = "testing")]
    if PANIC_NEXT.with(|p| p.replace(false)) {
        panic!("storectx testing hook: forced panic");
    }
}
