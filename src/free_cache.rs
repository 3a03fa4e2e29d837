//! Each thread's most recently freed registry index, one per table.
//!
//! A coroutine that resumes a segment usually suspends one again before long,
//! and a write guard is usually consumed on the thread that took it: the
//! index just freed is the next one allocated, by the same thread. Keeping it
//! here, in thread-local memory, skips the shard's lock twice per round trip
//! (lock + unlock to free, lock + unlock to allocate again), and the slot's
//! cache line is still in this core's cache.
//!
//! An index parked here is free but invisible to other threads: at most one
//! per table per live thread. A thread that exits hands its indices back to
//! their shards.

use std::cell::Cell;

/// What a registry does with an index that does not stay in a thread's
/// cache: put it on a shard's free list.
pub trait FreeToShard: Sync {
    fn free_to_shard(&self, index: u32);
}

/// Table tags go from 1 to 3; slot 0 stays unused.
const TABLES: usize = 4;

type Parked = Option<(&'static dyn FreeToShard, u32)>;

struct ThreadCache {
    parked: [Cell<Parked>; TABLES],
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        for parked in &self.parked {
            if let Some((owner, index)) = parked.take() {
                owner.free_to_shard(index);
            }
        }
    }
}

thread_local! {
    static CACHE: ThreadCache = const {
        ThreadCache {
            parked: [const { Cell::new(None) }; TABLES],
        }
    };
}

fn same(a: &'static dyn FreeToShard, b: &'static dyn FreeToShard) -> bool {
    std::ptr::addr_eq(a, b)
}

/// Takes the index this thread parked for `owner` (a registry of table tag
/// `table`), if any.
#[inline]
pub fn take(table: usize, owner: &'static dyn FreeToShard) -> Option<u32> {
    CACHE
        .try_with(|cache| {
            let parked = &cache.parked[table % TABLES];
            match parked.get() {
                Some((o, index)) if same(o, owner) => {
                    parked.set(None);
                    Some(index)
                }
                _ => None,
            }
        })
        .ok()
        .flatten()
}

/// Parks `index`, just freed in `owner` (of table tag `table`), and answers
/// the index that must go to a shard instead: the one parked before, or
/// `index` itself once this thread's cache is gone (thread exit).
#[inline]
pub fn park(table: usize, owner: &'static dyn FreeToShard, index: u32) -> Parked {
    CACHE
        .try_with(|cache| cache.parked[table % TABLES].replace(Some((owner, index))))
        .unwrap_or(Some((owner, index)))
}
