//! Async stores: the embedder's store behind a lock, so that at most one
//! thread or task uses it at a time; and owned write guards that may be
//! released on any thread (a coroutine may finish on another thread).

use crate::error::{Error, Result};
use crate::store_lock::StoreLock;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A new store id: unique in the process, nonzero, never reused. 0 once
/// all 2^64 - 2 ids are used (never in practice: 584 years at 10^9 a second),
/// with the counter left at its limit rather than wrapped.
pub(crate) fn new_store_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        n.checked_add(1).filter(|next| *next != u64::MAX)
    })
    .unwrap_or(0)
}

/// `EXHAUSTED`: no memory for a new async store.
#[cold]
#[inline(never)]
fn no_memory_for_store() -> Error {
    Error::Exhausted(detail!(
        "no memory for a new async store ({} bytes); nothing was made",
        std::mem::size_of::<AsyncStore>()
    ))
}

/// The embedder's store and the lock around it. Shared through
/// [`StoreRef`]: every handle, write guard, entry and segment referring to
/// it keeps it alive.
pub(crate) struct AsyncStore {
    id: u64,
    address: usize,
    lock: StoreLock,
}

impl std::fmt::Debug for AsyncStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncStore")
            .field("id", &self.id)
            .field("address", &format_args!("{:#x}", self.address))
            .field("locked", &self.lock.is_locked())
            .finish()
    }
}

/// How long `write` may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Try once.
    Never,
    /// Wait up to this long.
    For(Duration),
    /// Wait until the lock is free.
    Forever,
}

impl Wait {
    /// The C convention: 0 tries once, `u64::MAX` waits forever.
    pub(crate) fn from_nanos(timeout_ns: u64) -> Self {
        match timeout_ns {
            0 => Wait::Never,
            u64::MAX => Wait::Forever,
            ns => Wait::For(Duration::from_nanos(ns)),
        }
    }
}

impl AsyncStore {
    /// Wraps the embedder's store (never dereferenced) under store id `id`,
    /// with one reference. `Exhausted` when there is no memory for it.
    #[allow(clippy::new_ret_no_self)]
    pub(crate) fn new(id: u64, address: usize) -> Result<StoreRef> {
        if !crate::stack::is_valid_id(id) {
            return Err(Error::reserved_id(id));
        }
        let store = crate::fallible::try_box(|| AsyncStore {
            id,
            address,
            lock: StoreLock::new(),
        })
        .ok_or_else(no_memory_for_store)?;
        Ok(StoreRef(NonNull::from(Box::leak(store))))
    }

    /// The store id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The embedder's store address.
    pub(crate) fn address(&self) -> usize {
        self.address
    }

    /// Whether some write guard holds the lock right now (a snapshot).
    #[cfg(test)]
    pub(crate) fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    fn lock_tag(&self) -> *const u8 {
        std::ptr::from_ref(&self.lock).cast()
    }
}

/// A counted reference to an async store: what `Arc<AsyncStore>` was,
/// with the count kept in the store lock's word, so that the lock and the
/// reference a write guard holds are taken in one read-modify-write and
/// given back in one (see store_lock.rs).
pub(crate) struct StoreRef(NonNull<AsyncStore>);

// SAFETY: the store is immutable but for its lock's atomic words, and it is
// freed only by whoever gives the last reference back: a `StoreRef` may go
// to and be used from any thread, as `Arc<AsyncStore>` could.
unsafe impl Send for StoreRef {}
// SAFETY: as above.
unsafe impl Sync for StoreRef {}

impl std::ops::Deref for StoreRef {
    type Target = AsyncStore;
    fn deref(&self) -> &AsyncStore {
        // SAFETY: this reference keeps the store alive.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for StoreRef {
    fn clone(&self) -> Self {
        self.lock.add_ref();
        StoreRef(self.0)
    }
}

impl Drop for StoreRef {
    fn drop(&mut self) {
        if self.lock.release_ref() {
            // SAFETY: the last reference: nobody else reaches the store.
            unsafe { StoreRef::free(self.0) }
        }
    }
}

impl std::fmt::Debug for StoreRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl StoreRef {
    /// Whether both refer to the same store.
    pub(crate) fn ptr_eq(a: &StoreRef, b: &StoreRef) -> bool {
        a.0 == b.0
    }

    /// Gives the reference up as a pointer (for C).
    pub(crate) fn into_raw(self) -> *const AsyncStore {
        ManuallyDrop::new(self).0.as_ptr().cast_const()
    }

    /// Takes back a reference given up by [`StoreRef::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` and its reference is still held (it is
    /// taken over here).
    pub(crate) unsafe fn from_raw(p: *const AsyncStore) -> StoreRef {
        // SAFETY: non-null: from `into_raw` (this function's contract).
        StoreRef(unsafe { NonNull::new_unchecked(p.cast_mut()) })
    }

    /// Frees a store whose last reference was given back.
    ///
    /// # Safety
    /// `store` came from `AsyncStore::new` and no reference is left.
    unsafe fn free(store: NonNull<AsyncStore>) {
        // SAFETY: boxed by `AsyncStore::new` (this function's contract).
        drop(unsafe { Box::from_raw(store.as_ptr()) });
    }

    /// The guard of the lock just taken, holding the reference that was
    /// taken with it (no count to change here).
    fn guard(&self) -> WriteGuard {
        crate::valgrind::acquire(self.lock_tag());
        WriteGuard {
            store: ManuallyDrop::new(StoreRef(self.0)),
        }
    }

    /// Takes the lock if it is free.
    pub(crate) fn try_write(&self) -> Result<WriteGuard> {
        if self.lock.try_lock() {
            Ok(self.guard())
        } else {
            Err(Error::Busy(detail!(
                "store {} is locked (by a write guard, an async entry or a suspended \
                 segment holding it; storectx_async_store_write waits for it)",
                self.id
            )))
        }
    }

    /// [`StoreRef::try_write`] for a fast path: `None` if the lock is
    /// held, with no error made and no annotation for a race detector
    /// (the caller checked `valgrind::quiet`). Calls nothing.
    #[inline(always)]
    pub(crate) fn try_write_quiet(&self) -> Option<WriteGuard> {
        self.lock.try_lock().then(|| WriteGuard {
            store: ManuallyDrop::new(StoreRef(self.0)),
        })
    }

    /// Gives a guard's lock up as the store's pointer, still held: the
    /// lock and the reference it holds are taken back by
    /// [`StoreRef::guard_from_raw`] (a fast path handing its guard to its
    /// slow half through the C ABI).
    pub(crate) fn guard_into_raw(guard: WriteGuard) -> *const AsyncStore {
        ManuallyDrop::new(guard).store.0.as_ptr().cast_const()
    }

    /// Takes back a guard given up by [`StoreRef::guard_into_raw`].
    ///
    /// # Safety
    /// `p` came from `guard_into_raw` and is taken back once.
    pub(crate) unsafe fn guard_from_raw(p: *const AsyncStore) -> WriteGuard {
        WriteGuard {
            // SAFETY: non-null, and the lock's reference (this function's
            // contract).
            store: ManuallyDrop::new(unsafe { StoreRef::from_raw(p) }),
        }
    }

    /// Takes the lock for a thread whose stack holds it already or not
    /// (`own_holds_lock`: `Stack::holds_lock`, false for a thread with no
    /// stack), waiting as `wait` allows; refused at once with
    /// `WouldDeadlock` when it does (an entry on it, or suspended and
    /// resumed onto it), since waiting would never end. The caller looks at
    /// its stack first and waits here without holding it: a signal handler
    /// that runs during the wait may use the thread's stack.
    pub(crate) fn write_from(&self, own_holds_lock: bool, wait: Wait) -> Result<WriteGuard> {
        if own_holds_lock {
            return Err(Error::WouldDeadlock(detail!(
                "this thread's stack holds store {}'s lock; uninstall it (or suspend its \
                 segment) before writing again",
                self.id
            )));
        }
        self.write(wait)
    }

    /// Takes the lock, waiting as `wait` allows (see [`AsyncStore::write_from`]).
    pub(crate) fn write(&self, wait: Wait) -> Result<WriteGuard> {
        let locked = match wait {
            Wait::Never => self.lock.try_lock(),
            // A timeout too long to represent is forever.
            Wait::For(timeout) => self.lock.lock_until(Instant::now().checked_add(timeout)),
            Wait::Forever => self.lock.lock_until(None),
        };
        if locked {
            Ok(self.guard())
        } else {
            Err(Error::TimedOut(detail!(
                "store {} stayed locked for the whole timeout ({} ns)",
                self.id,
                match wait {
                    Wait::For(timeout) => timeout.as_nanos() as u64,
                    Wait::Never => 0,
                    Wait::Forever => u64::MAX,
                }
            )))
        }
    }
}

/// The write guards C holds, as validated handles.
pub(crate) static WRITE_GUARDS: crate::registry::Registry<Option<WriteGuard>> =
    crate::registry::Registry::new(1, "write guard");

/// A write guard's table slot shows its store's address to readers.
impl crate::registry::Peek for Option<WriteGuard> {
    fn peek(&self) -> u64 {
        self.as_ref()
            .map_or(0, |guard| guard.store().address() as u64)
    }
}

/// Owns the store's lock, and the reference taken with it, until dropped,
/// on whichever thread that happens.
#[derive(Debug)]
pub(crate) struct WriteGuard {
    /// Invariant: `store.lock` is held on behalf of this guard, and this
    /// reference is the lock's: the unlock gives it back.
    store: ManuallyDrop<StoreRef>,
}

impl WriteGuard {
    /// The locked store.
    pub(crate) fn store(&self) -> &StoreRef {
        &self.store
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        crate::valgrind::release(self.store.lock_tag());
        let store = self.store.0;
        // SAFETY: the lock was taken when this guard was built and only this
        // guard releases it; StoreLock has no owner, so any thread may.
        if unsafe { self.store.lock.unlock() } {
            // SAFETY: the lock's reference was the last.
            unsafe { StoreRef::free(store) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Stack;

    #[test]
    fn one_writer_at_a_time() {
        let s = AsyncStore::new(7, 0x10).unwrap();
        let g = s.try_write().unwrap();
        assert!(matches!(s.try_write(), Err(Error::Busy(_))));
        assert!(matches!(s.write(Wait::Never), Err(Error::TimedOut(_))));
        let t = std::time::Instant::now();
        let waited = s.write(Wait::For(Duration::from_millis(20)));
        assert!(matches!(waited, Err(Error::TimedOut(_))));
        assert!(t.elapsed() >= Duration::from_millis(15));
        drop(g);
        assert!(!s.is_locked());
        assert!(s.write(Wait::Forever).is_ok());
    }

    #[test]
    fn guard_released_on_another_thread() {
        let s = AsyncStore::new(1, 0).unwrap();
        let g = s.try_write().unwrap();
        std::thread::spawn(move || drop(g)).join().unwrap();
        assert!(s.try_write().is_ok());
    }

    #[test]
    fn store_ids_are_unique_and_nonzero() {
        let (a, b) = (new_store_id(), new_store_id());
        assert!(a != 0 && b > a);
    }

    #[test]
    fn writing_a_store_this_stack_holds_would_deadlock() {
        let s = AsyncStore::new(3, 0x30).unwrap();
        let mut stack = Stack::new();
        let g = stack.install_async(s.try_write().unwrap()).unwrap();
        assert!(matches!(
            s.write_from(stack.holds_lock(&s), Wait::Forever),
            Err(Error::WouldDeadlock(_))
        ));
        stack.uninstall(g).unwrap();
        assert!(s.write_from(stack.holds_lock(&s), Wait::Never).is_ok());
    }

    #[test]
    fn id_zero_refused() {
        for id in [0, u64::MAX] {
            assert!(matches!(
                AsyncStore::new(id, 1),
                Err(Error::InvalidArgument(_))
            ));
        }
    }
}
