//! Allocations that answer `None` when the allocator has no memory, where
//! `Box::new` would call Rust's allocation-failure handler (which aborts
//! the process): a thread's first context (thread.rs), a registry chunk
//! (registry.rs) and an async store (async_store.rs). `Box::try_new` is
//! unstable; these are `std::alloc::alloc` with the value's own layout, so
//! the box they make is freed as any other (`Box` uses the global
//! allocator with `Layout::new::<T>()`: std's documented round trip).
//!
//! In unit tests, [`fail_next`] makes this thread's next allocations here
//! fail, so the callers' refusals run under Miri and the normal test run.

use std::alloc::Layout;
use std::ptr::NonNull;

/// `Box::new(make())`, or `None` when there is no memory for a `T` (then
/// `make` is not run: nothing it would take, such as a parking spot, is
/// taken).
pub(crate) fn try_box<T>(make: impl FnOnce() -> T) -> Option<Box<T>> {
    let p = raw::<T>(Layout::new::<T>())?;
    // SAFETY: `p` is fresh memory with `T`'s layout (`raw`); written once,
    // then owned by the box, which frees it with the same layout.
    unsafe {
        p.as_ptr().write(make());
        Some(Box::from_raw(p.as_ptr()))
    }
}

/// A boxed slice of `n` values made by `make` in order, or `None` when
/// there is no memory for them (`make` not run). A panic in `make` leaks
/// the memory and the values made so far (never a double drop).
pub(crate) fn try_boxed_slice<T>(n: usize, mut make: impl FnMut() -> T) -> Option<Box<[T]>> {
    let p = raw::<T>(Layout::array::<T>(n).ok()?)?;
    for i in 0..n {
        // SAFETY: `p` has room for `n` `T`s (`raw`); each is written once.
        unsafe { p.as_ptr().add(i).write(make()) };
    }
    // SAFETY: all `n` values are written; the slice's layout is the array
    // layout it was allocated with, so the box frees it correctly.
    Some(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), n)) })
}

/// Memory with `layout` (`T`'s, or an array of `T`s) from the global
/// allocator; dangling and aligned for a size of 0 (as `Box` does).
fn raw<T>(layout: Layout) -> Option<NonNull<T>> {
    if layout.size() == 0 {
        return Some(NonNull::dangling());
    }
    #[cfg(test)]
    if tests::FAIL.with(|n| n.replace(n.get().saturating_sub(1))) > 0 {
        return None;
    }
    // SAFETY: the size is not 0 (tested above).
    NonNull::new(unsafe { std::alloc::alloc(layout) }.cast())
}

/// Test builds: the next `n` allocations of this thread through this
/// module fail, as under a memory limit.
#[cfg(test)]
pub(crate) fn fail_next(n: u32) {
    tests::FAIL.with(|f| f.set(n));
}

#[cfg(test)]
mod tests {
    thread_local! {
        pub(super) static FAIL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    #[test]
    #[cfg(not(loom))]
    fn a_failed_allocation_makes_nothing() {
        let mut made = 0;
        super::fail_next(2);
        assert!(super::try_box(|| {
            made += 1;
            made
        })
        .is_none());
        assert!(super::try_boxed_slice(3, || {
            made += 1;
            made
        })
        .is_none());
        assert_eq!(made, 0, "make ran without memory");
        let b = super::try_boxed_slice(3, || {
            made += 1;
            vec![made]
        })
        .expect("memory is back");
        assert_eq!(&*b, &[vec![1], vec![2], vec![3]]);
        assert_eq!(*super::try_box(|| 7u64).expect("memory"), 7);
        assert!(super::try_boxed_slice(0, || 1u8).is_some_and(|s| s.is_empty()));
    }

    /// A thread whose first context cannot be allocated is refused
    /// EXHAUSTED with nothing made (its last error says why state is
    /// missing), and its next call, with memory back, makes it (before,
    /// `Box::new` aborted the process).
    #[test]
    #[cfg(not(loom))]
    fn a_thread_s_first_context_without_memory_is_refused_then_made() {
        use crate::error::Error;
        std::thread::spawn(|| {
            super::fail_next(1);
            // SAFETY: the closure only reads the stack.
            let refused = unsafe { crate::thread::with_unreentered(|cx| Ok(cx.stack.depth())) };
            assert!(matches!(refused, Err(Error::Exhausted(_))), "{refused:?}");
            assert_eq!(crate::ffi::identity::storectx_depth(), 0);
            // SAFETY: `last_error` answers a NUL-terminated static or
            // context-owned text.
            let text = unsafe { std::ffi::CStr::from_ptr(crate::thread::last_error().cast()) };
            assert!(
                text.to_str().unwrap().contains("could not be created"),
                "{text:?}"
            );
            // SAFETY: the closure only changes the stack.
            let pushed = unsafe { crate::thread::with_unreentered(|cx| cx.stack.install(9, 0x90)) };
            assert!(pushed.is_ok(), "{pushed:?}");
            assert_eq!(crate::ffi::identity::storectx_depth(), 1);
            // SAFETY: as above.
            unsafe { crate::thread::with_existing_unreentered(|cx| cx.stack.clear()) };
        })
        .join()
        .expect("the thread ran");
    }

    /// A table whose next chunk cannot be allocated answers EXHAUSTED
    /// saying so, hands out no index (every one up to the limit is still
    /// handed out once memory is back) and leaves the live handles alone.
    #[test]
    #[cfg(not(loom))]
    // 2,048 handles through a table: minutes under Miri, which checks
    // `try_boxed_slice` in the test above and chunk publication in every
    // registry test.
    #[cfg_attr(miri, ignore)]
    fn a_chunk_without_memory_loses_no_index() {
        use crate::error::Error;
        use crate::registry::{Registry, CHUNK};
        static GROWING: Registry<Vec<u32>> =
            Registry::with_limit(3, "test object", 2 * CHUNK as u32);
        let put = |i: u32| {
            GROWING
                .insert_with(None, |v| {
                    v.push(i);
                    Ok(())
                })
                .map(|(h, ())| h)
        };
        let mut live: Vec<u64> = (0..CHUNK as u32).map(|i| put(i).unwrap()).collect();
        for _ in 0..2 {
            super::fail_next(1);
            let Err(Error::Exhausted(m)) = put(0) else {
                panic!("the second chunk was made without memory");
            };
            assert!(m.to_string().contains("no memory for"), "{m}");
            assert!(m.to_string().contains(&format!("{CHUNK} are live")), "{m}");
        }
        live.extend((0..CHUNK as u32).map(|i| put(i).unwrap()));
        assert!(matches!(put(0), Err(Error::Exhausted(_))), "the limit");
        for (i, h) in live.into_iter().enumerate() {
            let v = GROWING
                .take_with(None, h, |v| Ok(std::mem::take(v)))
                .unwrap();
            assert_eq!(v, [(i % CHUNK) as u32]);
        }
    }

    /// An async store without memory: EXHAUSTED, nothing made; then made.
    #[test]
    #[cfg(not(loom))]
    fn an_async_store_without_memory_is_refused() {
        use crate::async_store::AsyncStore;
        use crate::error::Error;
        super::fail_next(1);
        assert!(matches!(AsyncStore::new(5, 0x50), Err(Error::Exhausted(_))));
        assert_eq!(AsyncStore::new(5, 0x50).unwrap().id(), 5);
    }
}

/// loom (`.ci/loom.sh`; under loom a table has two chunks of two slots):
/// two threads need the second chunk at once and the first allocation of
/// either fails (loom runs its threads on one OS thread, so the failure
/// hook is shared: whichever builds first fails).
#[cfg(all(test, loom))]
mod loom_tests {
    use crate::error::{Error, Result};
    use crate::registry::{Peek, Registry, CAPACITY, CHUNK};
    use loom::sync::Arc;
    use loom::thread;

    /// A value for the table (the registry's own tests' `Vec<u32>` is
    /// theirs).
    #[derive(Default)]
    struct Cell(u32);

    impl Peek for Cell {
        fn peek(&self) -> u64 {
            u64::from(self.0)
        }
    }

    fn put(t: &Registry<Cell>, v: u32) -> Result<u64> {
        t.insert_with(None, |c| {
            c.0 = v;
            Ok(())
        })
        .map(|(h, ())| h)
    }

    /// Whichever way the failed build and the other thread's interleave, a
    /// refusal is EXHAUSTED, nothing is half made, and no index is lost:
    /// once both are done the table still hands out every index it has.
    #[test]
    fn loom_a_chunk_build_without_memory_loses_no_index() {
        crate::sync::model("registry: chunk build fails while another builds", || {
            let t = Arc::new(Registry::<Cell>::with_limit(3, "test object", CAPACITY));
            let mut live: Vec<u64> = (0..CHUNK as u32).map(|i| put(&t, i).unwrap()).collect();
            super::fail_next(1);
            let other = {
                let t = Arc::clone(&t);
                thread::spawn(move || put(&t, 10))
            };
            let mine = put(&t, 11);
            let theirs = other.join().unwrap();
            super::fail_next(0);
            for got in [mine, theirs] {
                match got {
                    Ok(h) => live.push(h),
                    Err(Error::Exhausted(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            while live.len() < CAPACITY as usize {
                live.push(put(&t, 12).expect("an index was lost"));
            }
            assert!(matches!(put(&t, 13), Err(Error::Exhausted(_))));
            for h in live {
                t.take_with(None, h, |c| Ok(std::mem::take(&mut c.0)))
                    .unwrap();
            }
        });
    }
}
