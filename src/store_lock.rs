//! The lock of an async store and the store's reference count, in one
//! word: no owner, so a write guard taken on one thread may be released on
//! another (a coroutine migrates); and the lock holds one reference, taken
//! and given back by the same read-modify-write that takes and releases the
//! lock (issue 20: a write guard's life was four of them, lock, clone,
//! unlock and drop; it is two now, as a `pthread_mutex`'s).
//!
//! Why not parking_lot (which the first release used): its waiting path
//! keeps per-thread data in a Rust `thread_local!` with a destructor, whose
//! first use on a thread registers through `__cxa_thread_atexit_impl` —
//! an allocation and the dynamic loader's lock, which the contract forbids
//! (SPEC, "Edges") — and takes 80 bytes of the static TLS this library's
//! initial-exec word makes of all its TLS. The lock needs only try, wait
//! with a timeout and unlock: the three-state futex mutex ("Futexes Are
//! Tricky", U. Drepper, 2011, mutex 2), its sleepers waiting on a second
//! word (a 32-bit sequence: futexes are 32-bit, the count is not) that an
//! unlock which finds the CONTENDED bit bumps before it wakes one.

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// The word is `references << 2 | CONTENDED | LOCKED`.
const LOCKED: u64 = 1;
/// Locked, and some thread may be asleep on `wakes` waiting for it.
const CONTENDED: u64 = 2;
/// One reference.
const REF: u64 = 4;
/// A reference taken when this many are held aborts the process, as
/// `Arc` does past `isize::MAX`: 2^60 references (36 years of clones at
/// 10^9 a second), so the count (62 bits) never wraps, even with every
/// thread of a process racing past the check at once.
const MAX_REFS: u64 = 1 << 60;

/// A mutex without an owner, and the reference count of what it guards.
pub(crate) struct StoreLock {
    word: AtomicU64,
    /// Bumped by an unlock that found CONTENDED, before it wakes one
    /// sleeper: sleepers wait on this word while it still holds the value
    /// they read before announcing themselves (see `lock_until`). It wraps:
    /// a sleeper would have to stall between that read and its sleep while
    /// exactly a multiple of 2^32 contended unlocks ran.
    wakes: AtomicU32,
}

impl StoreLock {
    crate::sync::const_fn! {
        /// Unlocked, with one reference (the creator's).
        pub(crate) const fn new() -> Self {
            StoreLock {
                word: AtomicU64::new(REF),
                wakes: AtomicU32::new(0),
            }
        }
    }

    /// Whether the lock is held (a snapshot).
    pub(crate) fn is_locked(&self) -> bool {
        // Relaxed: a snapshot for messages, ordering nothing.
        self.word.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// References held (a snapshot, for tests).
    #[cfg(test)]
    pub(crate) fn references(&self) -> u64 {
        self.word.load(Ordering::Relaxed) >> 2
    }

    /// One more reference, made from one the caller holds.
    pub(crate) fn add_ref(&self) {
        // Relaxed, as `Arc::clone`: the caller's reference keeps the store
        // alive; nothing else is ordered by a new one.
        let old = self.word.fetch_add(REF, Ordering::Relaxed);
        if old >= MAX_REFS * REF {
            too_many_references();
        }
    }

    /// Gives one reference back: true when it was the last one (the
    /// caller frees what the lock guards; nothing else can reach it).
    pub(crate) fn release_ref(&self) -> bool {
        // Release, as `Arc`'s drop: this holder's uses happen before the
        // free, whose Acquire fence below pairs with every such Release.
        if self.word.fetch_sub(REF, Ordering::Release) >> 2 != 1 {
            return false;
        }
        self.acquire_the_last();
        true
    }

    /// Takes the lock, and one reference for it, if the lock is free: one
    /// read-modify-write (a compare-and-swap, retried only if a reference
    /// was taken or given back meanwhile).
    pub(crate) fn try_lock(&self) -> bool {
        // Relaxed: only a guess, the exchange checks it.
        let mut seen = self.word.load(Ordering::Relaxed);
        loop {
            if seen & LOCKED != 0 {
                return false;
            }
            if seen >= MAX_REFS * REF {
                too_many_references();
            }
            // Acquire pairs with the Release of `unlock`: the previous
            // holder's writes to the store happen before ours. A failure
            // orders nothing (Relaxed).
            match self.word.compare_exchange_weak(
                seen,
                seen + REF + LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => seen = now,
            }
        }
    }

    /// Takes the lock (and its reference), waiting until `deadline`
    /// (`None`: forever); false if it stayed locked.
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> bool {
        if self.try_lock() {
            return true;
        }
        loop {
            // Read before announcing a sleeper: an unlock that follows the
            // announcement in the word's order bumps `wakes` after this
            // read (its Acquire below pairs with our Release), so the wait
            // below returns at once or is woken. Relaxed: that pairing
            // orders it.
            let wakes = self.wakes.load(Ordering::Relaxed);
            // Announce a sleeper: a write even when the bit is set already
            // (a load would not order the read above before that unlock).
            // AcqRel: Release for the unlock that reads it; Acquire in case
            // the lock came free meanwhile and is taken just below.
            let mut seen = self.word.fetch_or(CONTENDED, Ordering::AcqRel);
            // Free meanwhile: take it, CONTENDED kept (others may sleep).
            while seen & LOCKED == 0 {
                if seen >= MAX_REFS * REF {
                    too_many_references();
                }
                // Acquire: as in `try_lock`.
                match self.word.compare_exchange_weak(
                    seen,
                    (seen | CONTENDED) + REF + LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(now) => seen = now,
                }
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            // Woken, timed out (the deadline is checked above) or `wakes`
            // changed: look again (which announces us again first).
            crate::sync::wait(&self.wakes, wakes, timeout);
        }
    }

    /// Releases the lock and the reference it held, from any thread, in
    /// one read-modify-write when nobody sleeps: true when that was the
    /// last reference (the caller frees what the lock guards).
    ///
    /// # Safety
    /// The lock is held, on behalf of the caller (one unlock per lock).
    pub(crate) unsafe fn unlock(&self) -> bool {
        // Relaxed: only a guess, the exchange checks it.
        let mut seen = self.word.load(Ordering::Relaxed);
        while seen & CONTENDED == 0 {
            debug_assert!(seen & LOCKED != 0 && seen >= REF);
            // Release pairs with the Acquire of `try_lock` and `lock_until`
            // (our writes to the store happen before the next holder's) and
            // with the Acquire fence of whoever gives the last reference
            // back (they happen before the free).
            match self.word.compare_exchange_weak(
                seen,
                seen - REF - LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) if seen >> 2 == 1 => {
                    // The lock's reference was the last: no sleeper (a
                    // sleeper holds a reference), nobody else to free it.
                    self.acquire_the_last();
                    return true;
                }
                Ok(_) => return false,
                Err(now) => seen = now,
            }
        }
        self.unlock_contended()
    }

    /// Orders every holder's uses of the store before the free, once the
    /// last reference is given back: an Acquire load of the word, which
    /// reads the last read-modify-write of the release sequences headed by
    /// every earlier Release decrement (what `Arc`'s drop does with a fence;
    /// a load, as `Arc` under ThreadSanitizer, which does not model fences
    /// and reported the free racing with a release on another thread).
    #[inline(always)]
    fn acquire_the_last(&self) {
        self.word.load(Ordering::Acquire);
    }

    /// [`StoreLock::unlock`] with a sleeper announced: the lock first (our
    /// reference keeps both words alive for the wake), then the wake, then
    /// the reference.
    #[cold]
    #[inline(never)]
    fn unlock_contended(&self) -> bool {
        // AcqRel: Release as in `unlock`; Acquire pairs with the sleepers'
        // announcements, so that their reads of `wakes` happen before the
        // bump below.
        self.word.fetch_and(!(LOCKED | CONTENDED), Ordering::AcqRel);
        // Relaxed: ordered after the line above by the futex's own rule (a
        // sleeper whose read came first either sees the new value or sleeps
        // until the wake, which follows).
        self.wakes.fetch_add(1, Ordering::Relaxed);
        crate::sync::wake_one(&self.wakes);
        self.release_ref()
    }
}

#[cold]
#[inline(never)]
fn too_many_references() -> ! {
    // A panic could unwind into C; `Arc` aborts too.
    std::process::abort()
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

    /// The lock holds one reference: taken and given back with it; the last
    /// reference is reported once, by whoever gives it back (an unlock or a
    /// release).
    #[test]
    fn the_lock_holds_a_reference() {
        let lock = StoreLock::new();
        assert_eq!(lock.references(), 1);
        assert!(lock.try_lock());
        assert_eq!(lock.references(), 2);
        lock.add_ref();
        assert!(
            !lock.release_ref() && !lock.release_ref(),
            "the lock's reference is left"
        );
        // SAFETY: held.
        let last = unsafe { lock.unlock() };
        assert!(last, "the lock's reference was the last");
        let lock = StoreLock::new();
        assert!(lock.lock_until(None));
        // SAFETY: held.
        assert!(!unsafe { lock.unlock() });
        assert_eq!(lock.references(), 1);
        assert!(!lock.is_locked());
        assert!(lock.release_ref());
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

    /// The last reference given back exactly once, whichever goes last:
    /// the lock's (an unlock on another thread, which wrote the store
    /// under the lock) or the creator's (a plain release). The one that
    /// goes last reads the store, as a free would: loom's cell fails the
    /// model if that is not ordered after the write.
    #[test]
    fn loom_store_lock_last_reference_once() {
        crate::sync::model("store lock: last reference", || {
            let s = Arc::new(Shared(StoreLock::new(), UnsafeCell::new(0)));
            assert!(s.0.try_lock());
            let unlocker = {
                let s = Arc::clone(&s);
                loom::thread::spawn(move || {
                    // SAFETY: held by the main thread; loom's cell checks it.
                    s.1.with_mut(|n| unsafe { *n = 5 });
                    // SAFETY: held by the main thread, released once, here.
                    let last = unsafe { s.0.unlock() };
                    // SAFETY: the last reference: nobody else reaches it.
                    last.then(|| s.1.with(|n| unsafe { *n }))
                })
            };
            let released = s.0.release_ref();
            // SAFETY: the last reference: nobody else reaches it.
            let mine = released.then(|| s.1.with(|n| unsafe { *n }));
            let theirs = unlocker.join().unwrap();
            assert!(
                matches!((mine, theirs), (Some(5), None) | (None, Some(5))),
                "{mine:?} {theirs:?}"
            );
        });
    }

    /// A sleeper holding its own reference while the holder unlocks (the
    /// contended unlock: lock, wake, then reference) and the creator gives
    /// its reference back: the lock is taken, nobody stays asleep, and the
    /// last reference is reported once (by the unlock too, when the sleeper
    /// took the lock and gave everything back between its wake and its
    /// reference).
    #[test]
    fn loom_store_lock_sleeper_keeps_its_reference() {
        crate::sync::model("store lock: sleeper + references", || {
            let s = Arc::new(Shared(StoreLock::new(), UnsafeCell::new(0)));
            assert!(s.0.try_lock());
            s.0.add_ref(); // the sleeper's
            let waiter = {
                let s = Arc::clone(&s);
                loom::thread::spawn(move || {
                    assert!(add_one(&s, true));
                    s.0.release_ref()
                })
            };
            let released = s.0.release_ref(); // the creator's
                                              // SAFETY: taken above, released once, here.
            let unlocked_last = unsafe { s.0.unlock() };
            let waiter_last = waiter.join().unwrap();
            let lasts = [released, unlocked_last, waiter_last];
            assert_eq!(lasts.iter().filter(|l| **l).count(), 1, "{lasts:?}");
            assert!(!released, "the lock and the sleeper held references");
        });
    }
}
