//! The lock of an async store: one futex word, no owner, so a write guard
//! taken on one thread may be released on another (a coroutine migrates).
//!
//! Why not parking_lot (which the first release used): its waiting path
//! keeps per-thread data in a Rust `thread_local!` with a destructor, whose
//! first use on a thread registers through `__cxa_thread_atexit_impl` —
//! an allocation and the dynamic loader's lock, which the contract forbids
//! (SPEC, "Edges") — and takes 80 bytes of the static TLS this library's
//! initial-exec word makes of all its TLS. The lock needs only try, wait
//! with a timeout and unlock: the three-state futex mutex ("Futexes Are
//! Tricky", U. Drepper, 2011, mutex 2) is all of it.

use crate::sync::{AtomicU32, Ordering};
use std::time::Instant;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and some thread may be asleep waiting for it.
const CONTENDED: u32 = 2;

/// A mutex without an owner.
pub(crate) struct StoreLock {
    word: AtomicU32,
}

impl StoreLock {
    crate::sync::const_fn! {
        pub(crate) const fn new() -> Self {
            StoreLock {
                word: AtomicU32::new(UNLOCKED),
            }
        }
    }

    /// Whether the lock is held (a snapshot).
    pub(crate) fn is_locked(&self) -> bool {
        // Relaxed: a snapshot for messages, ordering nothing.
        self.word.load(Ordering::Relaxed) != UNLOCKED
    }

    /// Takes the lock if it is free.
    pub(crate) fn try_lock(&self) -> bool {
        // Acquire pairs with the Release swap in `unlock`: the previous
        // holder's writes to the store happen before ours. A failure orders
        // nothing (Relaxed).
        self.word
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock, waiting until `deadline` (`None`: forever); false
    /// if it stayed locked.
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> bool {
        if self.try_lock() {
            return true;
        }
        loop {
            // Announce a sleeper, unless the lock came free meanwhile.
            // Acquire pairs with `unlock`'s Release swap, as in `try_lock`.
            if self.word.swap(CONTENDED, Ordering::Acquire) == UNLOCKED {
                return true;
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            // Woken, timed out (the deadline is checked above) or the word
            // changed: look again.
            crate::sync::wait(&self.word, CONTENDED, timeout);
        }
    }

    /// Releases the lock, from any thread.
    ///
    /// # Safety
    /// The lock is held, on behalf of the caller (one unlock per lock).
    pub(crate) unsafe fn unlock(&self) {
        // Release pairs with the Acquire of `try_lock` and `lock_until`:
        // our writes to the store happen before the next holder's.
        if self.word.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            crate::sync::wake_one(&self.word);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn one_holder_timeouts_and_release_from_another_thread() {
        let lock = Arc::new(StoreLock::new());
        assert!(lock.try_lock() && !lock.try_lock() && lock.is_locked());
        let t = Instant::now();
        assert!(!lock.lock_until(Some(t + Duration::from_millis(20))));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let other = Arc::clone(&lock);
        // SAFETY: held above; released exactly once, on another thread.
        std::thread::spawn(move || unsafe { other.unlock() })
            .join()
            .unwrap();
        assert!(lock.lock_until(None));
        // SAFETY: held just above.
        unsafe { lock.unlock() };
        assert!(!lock.is_locked());
    }

    /// Many threads incrementing a plain counter under the lock, with
    /// sleepers: no update lost, nobody left asleep.
    #[test]
    fn mutual_exclusion_under_contention() {
        struct Shared(StoreLock, std::cell::UnsafeCell<u64>);
        // SAFETY: the counter is only touched under the lock.
        unsafe impl Sync for Shared {}
        let shared = Arc::new(Shared(StoreLock::new(), std::cell::UnsafeCell::new(0)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = Arc::clone(&shared);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        assert!(s.0.lock_until(None));
                        // SAFETY: under the lock.
                        unsafe {
                            *s.1.get() += 1;
                            s.0.unlock();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: every thread is joined.
        assert_eq!(unsafe { *shared.1.get() }, 80_000);
    }
}

/// loom checks this file's code (see `crate::sync`): `.ci/loom.sh`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Shared(StoreLock, UnsafeCell<u32>);
    // SAFETY: the counter is only touched under the lock (which loom's cell
    // checks: an access not ordered after the last one fails the model).
    unsafe impl Sync for Shared {}

    fn add_one(s: &Shared, wait: bool) -> bool {
        let locked = if wait {
            s.0.lock_until(None)
        } else {
            s.0.try_lock()
        };
        if locked {
            // SAFETY: under the lock; loom's cell checks it.
            s.1.with_mut(|n| unsafe { *n += 1 });
            // SAFETY: taken just above.
            unsafe { s.0.unlock() };
        }
        locked
    }

    /// Two threads wait for the lock (the contended path: a sleeper on the
    /// futex, a wake on unlock), a third tries once: no update lost, no
    /// access to the counter unordered, nobody left asleep (loom reports a
    /// deadlock).
    #[test]
    fn loom_store_lock_excludes_and_wakes() {
        crate::sync::model("store lock: 2 waiters + 1 try", || {
            let s = Arc::new(Shared(StoreLock::new(), UnsafeCell::new(0)));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let s = Arc::clone(&s);
                    loom::thread::spawn(move || assert!(add_one(&s, true)))
                })
                .collect();
            let tried = add_one(&s, false);
            for w in waiters {
                w.join().unwrap();
            }
            assert!(!s.0.is_locked());
            // SAFETY: every thread is joined.
            let n = s.1.with(|n| unsafe { *n });
            assert_eq!(n, 2 + u32::from(tried));
        });
    }

    /// The lock taken on one thread and released on another (a migrating
    /// coroutine), while a third waits for it.
    #[test]
    fn loom_store_lock_released_on_another_thread() {
        crate::sync::model("store lock: release elsewhere", || {
            let s = Arc::new(Shared(StoreLock::new(), UnsafeCell::new(0)));
            assert!(s.0.try_lock());
            // SAFETY: held.
            s.1.with_mut(|n| unsafe { *n = 10 });
            let releaser = {
                let s = Arc::clone(&s);
                // SAFETY: held by the main thread, released once, here.
                loom::thread::spawn(move || unsafe { s.0.unlock() })
            };
            let waiter = {
                let s = Arc::clone(&s);
                loom::thread::spawn(move || assert!(add_one(&s, true)))
            };
            releaser.join().unwrap();
            waiter.join().unwrap();
            // SAFETY: every thread is joined.
            assert_eq!(s.1.with(|n| unsafe { *n }), 11);
        });
    }
}
