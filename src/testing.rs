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

/// The borrow count no entry may pass: `u32::MAX`, or lower in testing
/// builds once [`storectx_testing_set_borrow_limit`] was called, so that C
/// tests reach the limit in milliseconds through the same checks.
#[inline(always)]
pub(crate) fn borrow_limit() -> u32 {
    #[cfg(feature = "testing")]
    {
        BORROW_LIMIT.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "testing"))]
    {
        u32::MAX
    }
}

#[cfg(feature = "testing")]
static BORROW_LIMIT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// Testing builds only (not in the header): lowers the borrow limit for the
/// whole process.
#[cfg(feature = "testing")]
#[no_mangle]
pub extern "C" fn storectx_testing_set_borrow_limit(limit: u32) {
    BORROW_LIMIT.store(limit, std::sync::atomic::Ordering::Relaxed);
}

/// Live handles a registry table may hold: its capacity, or lower in
/// testing builds once [`storectx_testing_set_table_limit`] was called.
#[inline]
pub(crate) fn table_limit(capacity: u32) -> u32 {
    #[cfg(feature = "testing")]
    {
        capacity.min(TABLE_LIMIT.load(std::sync::atomic::Ordering::Relaxed))
    }
    #[cfg(not(feature = "testing"))]
    {
        capacity
    }
}

#[cfg(feature = "testing")]
static TABLE_LIMIT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

/// Testing builds only (not in the header): lowers the number of live write
/// guards and of live segments the process may hold.
#[cfg(feature = "testing")]
#[no_mangle]
pub extern "C" fn storectx_testing_set_table_limit(limit: usize) {
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    TABLE_LIMIT.store(limit, std::sync::atomic::Ordering::Relaxed);
}

/// The store sets' hash multiplier when fixed (testing builds, and the
/// crate's own tests): `Some` once [`storectx_testing_set_hash_multiplier`]
/// or [`fix_hash_multiplier`] set a nonzero one, so that tests can craft ids
/// that collide; `None` (every table draws its own) otherwise.
#[inline]
pub(crate) fn fixed_hash_multiplier() -> Option<u64> {
    #[cfg(any(test, feature = "testing"))]
    {
        match HASH_MULTIPLIER.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            m => Some(m),
        }
    }
    #[cfg(not(any(test, feature = "testing")))]
    {
        None
    }
}

#[cfg(any(test, feature = "testing"))]
static HASH_MULTIPLIER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Fixes the multiplier of every store set table made from now on, process
/// wide (made odd); 0 goes back to a draw per table.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn fix_hash_multiplier(multiplier: u64) {
    HASH_MULTIPLIER.store(multiplier, std::sync::atomic::Ordering::Relaxed);
}

/// Testing builds only (not in the header): fixes the store sets' hash
/// multiplier for every table made from now on (a table is made at a
/// thread's first install and when its stack outgrows the set), so that a C
/// test can craft colliding ids; 0 goes back to a draw per table.
#[cfg(feature = "testing")]
#[no_mangle]
pub extern "C" fn storectx_testing_set_hash_multiplier(multiplier: u64) {
    fix_hash_multiplier(multiplier);
}
