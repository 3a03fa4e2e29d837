//! The primitives the lock-free core (the registry, the store lock) is
//! built from: atomics, a cell, a yield and a futex-style wait/wake. Built
//! with `--cfg loom` they are loom's, so that loom model-checks the real
//! code (as tokio's `loom` module and sharded-slab's `sync.rs` do); else
//! they are std's and the OS's, at no cost.
//!
//! Loom builds compile only that core (see lib.rs), and only as unit tests
//! (loom is a dev-dependency): `RUSTFLAGS="--cfg loom" cargo test --release
//! --lib loom_` (.ci/loom.sh).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64};

use std::time::Duration;

/// An array of `N` copies of `$e` (a constructor call): a constant
/// expression in normal builds, so that tables can be statics; built at run
/// time under loom, whose atomics have no `const fn new`.
#[cfg(not(loom))]
macro_rules! array_of {
    ($e:expr; $n:expr) => {
        [const { $e }; $n]
    };
}
#[cfg(loom)]
macro_rules! array_of {
    ($e:expr; $n:expr) => {
        std::array::from_fn(|_| $e)
    };
}
pub(crate) use array_of;

/// A `const fn` in normal builds, a plain `fn` under loom (tokio's
/// `loom_const_fn`).
#[cfg(not(loom))]
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis const fn $($rest:tt)*) => {
        $(#[$attr])* $vis const fn $($rest)*
    };
}
#[cfg(loom)]
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis const fn $($rest:tt)*) => {
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn;

/// `std::cell::UnsafeCell` reached through closures, so that loom's cell
/// can check that no two threads reach the value at once.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return UnsafeCell(std::cell::UnsafeCell::new(value));
        #[cfg(loom)]
        return UnsafeCell(loom::cell::UnsafeCell::new(value));
    }

    /// Runs `f` on a pointer to the value; the caller's `unsafe` block
    /// that dereferences it says why nobody else reaches the value.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with_mut(f);
    }
}

/// Gives the processor to another thread (a bounded busy wait).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Sleeps while `word` holds `expected`, until a [`wake_one`] on it or
/// `timeout` (`None`: no timeout). It may also return at once (the word
/// changed), spuriously or on timeout: callers look again and keep their
/// own deadline. Outside loom this is the OS's wait-on-address
/// (`crate::platform`: futex, `_umtx_op`, `__ulock_wait`, `WaitOnAddress`).
#[inline]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(not(loom))]
    crate::platform::wait(word, expected, timeout);
    #[cfg(loom)]
    model::wait(word, expected, timeout);
}

/// Wakes one thread sleeping in [`wait`] on `word`, if any.
#[inline]
pub(crate) fn wake_one(word: &AtomicU32) {
    #[cfg(not(loom))]
    crate::platform::wake_one(word);
    #[cfg(loom)]
    model::wake(word);
}

/// The futex as loom sees it: one process-wide mutex and condition
/// variable (a futex's hash bucket). A waiter checks the word and goes to
/// sleep under the mutex, a waker takes the mutex before it notifies, so a
/// wake that follows the waker's change of the word is never lost — and one
/// that the real code forgot is a deadlock loom reports. Every wake wakes
/// all (a futex may wake spuriously); a timed wait never times out (loom has
/// no clock: the models only wait without a deadline).
#[cfg(loom)]
mod model {
    use super::{AtomicU32, Duration, Ordering};
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        static ref BUCKET: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
        let (mutex, condvar) = &*BUCKET;
        let guard = mutex.lock().unwrap();
        // Relaxed: the bucket's mutex orders this load after any waker's
        // change of the word that took the mutex first.
        if word.load(Ordering::Relaxed) == expected {
            drop(condvar.wait(guard).unwrap());
        }
    }

    pub(super) fn wake(_word: &AtomicU32) {
        let (mutex, condvar) = &*BUCKET;
        drop(mutex.lock().unwrap());
        condvar.notify_all();
    }
}

/// Runs a loom model of `f` at the preemption bound `LOOM_MAX_PREEMPTIONS`
/// (2 if unset) and prints how many interleavings it explored.
#[cfg(all(test, loom))]
pub(crate) fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::AtomicUsize;
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    let bound = *builder.preemption_bound.get_or_insert(2);
    let start = std::time::Instant::now();
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom: {name}: {} interleavings explored at preemption bound {bound} in {:.1?}",
        runs.load(Ordering::Relaxed),
        start.elapsed()
    );
}
