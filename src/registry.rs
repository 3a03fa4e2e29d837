//! Validated handles for heap objects that C hands back to us and may misuse
//! (double resume, release after consumption, a freed handle): write guards
//! and suspended segments live in slots of a process-wide table and C holds
//! `generation | index`, never an address. A handle whose slot has moved on
//! answers `STALE_HANDLE` instead of touching freed memory.
//!
//! Slots are allocated in chunks that are never freed (type-stable memory),
//! and a slot's value keeps its capacity between uses.
//!
//! Threads share nothing on the common path: each slot has its own cache
//! line, and free indices are kept in `SHARDS` lists, each behind its own
//! lock. A thread frees into and allocates from its own shard (assigned
//! round-robin on first use). When its shard is empty it draws a fresh
//! index, up to `OWN_DRAWS` per shard, and only then steals from the other
//! shards; past that, a fresh index is taken only once every shard was seen
//! empty. So two threads that take turns each keep their own indices (were
//! they to steal, one index would bounce between them, a steal per turn),
//! and a thread that only allocates, fed by one that only frees, reuses that
//! thread's indices instead of growing the table. In front of the shards,
//! each thread keeps the index it freed last (`free_cache`): a thread that
//! frees and then allocates, as a coroutine resuming then suspending does,
//! takes no lock but the slot's.

use crate::error::{Error, Result};
use crate::free_cache::{self, FreeToShard};
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::OnceLock;

const CHUNK: usize = 1024;
const MAX_CHUNKS: usize = 4096;
/// Lists of free indices; threads beyond this many share them. At most 32
/// (`allocate` keeps a bitmask of them).
const SHARDS: usize = 16;
/// Marks a handle so that it can never look like NULL or a small integer.
const MARK: u64 = 1 << 63;
/// Bits 61-62 name the table, so a handle of one table (a segment) is never
/// accepted by another (as a write guard), even through a C cast.
const TABLE_SHIFT: u32 = 61;
const TABLE_MASK: u64 = 0b11 << TABLE_SHIFT;
/// A slot whose generation reaches this is retired, never reused.
const LAST_GENERATION: u32 = (1 << 29) - 1;
/// Fresh indices a shard may draw before it steals from the others: at most
/// `SHARDS * OWN_DRAWS` (one chunk) slots exist only because of it.
const OWN_DRAWS: u32 = (CHUNK / SHARDS) as u32;

/// Keeps its content on cache lines of its own, so that two threads working
/// on neighbouring slots or shards do not bounce one line between them.
#[repr(align(64))]
struct CacheLine<T>(T);

struct Slot<T> {
    generation: u32,
    live: bool,
    value: T,
}

/// Bytes one slot of a `Registry<T>` takes (a multiple of the cache line).
pub const fn slot_bytes<T>() -> usize {
    std::mem::size_of::<CacheLine<Mutex<Slot<T>>>>()
}

/// `CHUNK` slots, allocated on first use and never freed.
type Chunk<T> = OnceLock<Box<[CacheLine<Mutex<Slot<T>>>]>>;

/// A shard's free indices.
struct FreeList {
    indices: Vec<u32>,
    /// Fresh indices this shard drew for itself (at most `OWN_DRAWS`).
    drawn: u32,
}

/// A table of `T`s addressed by generation-checked handles.
pub struct Registry<T> {
    what: &'static str,
    /// This table's tag, already shifted into place.
    table: u64,
    chunks: [Chunk<T>; MAX_CHUNKS],
    /// Indices free for reuse, by shard.
    free: [CacheLine<Mutex<FreeList>>; SHARDS],
    /// Indices below this were handed out at least once.
    fresh: AtomicU32,
}

/// The calling thread's shard, the same in every table. Only a hint: a
/// coroutine that migrates simply continues with another thread's shard.
fn home_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        // Constant-initialized and without destructor: usable at any time,
        // thread exit included.
        static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    let mut ticket = HOME.get();
    if ticket == usize::MAX {
        ticket = NEXT.fetch_add(1, Ordering::Relaxed);
        HOME.set(ticket);
    }
    ticket % SHARDS
}

impl<T: Default + Send> FreeToShard for Registry<T> {
    fn free_to_shard(&self, index: u32) {
        self.free[home_shard()].0.lock().indices.push(index);
    }
}

impl<T: Default + Send> Registry<T> {
    /// An empty table of `what`s (named in error messages); `table` (1..=3)
    /// must differ between the process's tables.
    pub const fn new(table: u64, what: &'static str) -> Self {
        assert!(table >= 1 && table <= 3, "three table tags exist");
        Registry {
            what,
            table: table << TABLE_SHIFT,
            chunks: [const { OnceLock::new() }; MAX_CHUNKS],
            free: [const {
                CacheLine(Mutex::new(FreeList {
                    indices: Vec::new(),
                    drawn: 0,
                }))
            }; SHARDS],
            fresh: AtomicU32::new(0),
        }
    }

    fn encode(&self, index: u32, generation: u32) -> u64 {
        MARK | self.table | (u64::from(generation) << 32) | u64::from(index)
    }

    /// (index, generation) of a handle of this table.
    fn decode(&self, handle: u64) -> Option<(u32, u32)> {
        (handle & (MARK | TABLE_MASK) == MARK | self.table).then_some((
            handle as u32,
            ((handle & !(MARK | TABLE_MASK)) >> 32) as u32,
        ))
    }

    fn slot(&self, index: u32) -> Option<&Mutex<Slot<T>>> {
        let index = index as usize;
        let slot = self.chunks.get(index / CHUNK)?.get()?.get(index % CHUNK)?;
        Some(&slot.0)
    }

    /// This table's tag, as `free_cache` indexes its tables.
    fn tag(&self) -> usize {
        (self.table >> TABLE_SHIFT) as usize
    }

    #[inline]
    fn allocate(&'static self) -> Result<u32> {
        if let Some(index) = free_cache::take(self.tag(), self) {
            return Ok(index);
        }
        let home = home_shard();
        let reused = self.free[home].0.lock().indices.pop();
        reused.map_or_else(|| self.allocate_elsewhere(home), Ok)
    }

    #[cold]
    fn allocate_elsewhere(&self, home: usize) -> Result<u32> {
        {
            let mut own = self.free[home].0.lock();
            if let Some(index) = own.indices.pop() {
                return Ok(index); // freed into since `allocate` looked
            }
            if own.drawn < OWN_DRAWS {
                let index = self.fresh_index()?;
                own.drawn += 1;
                return Ok(index);
            }
        }
        // Steal: first from the shards nobody holds, then waiting for those
        // that were busy, so that a fresh index is taken only after every
        // shard was seen empty.
        let mut busy = 0u32;
        for shard in (1..SHARDS).map(|k| (home + k) % SHARDS) {
            match self.free[shard].0.try_lock() {
                Some(mut free) => {
                    if let Some(index) = free.indices.pop() {
                        return Ok(index);
                    }
                }
                None => busy |= 1 << shard,
            }
        }
        for shard in (0..SHARDS).filter(|shard| busy & (1 << shard) != 0) {
            if let Some(index) = self.free[shard].0.lock().indices.pop() {
                return Ok(index);
            }
        }
        // Every shard was seen empty: all indices handed out are in use.
        self.fresh_index()
    }

    /// An index never handed out before, its chunk allocated.
    fn fresh_index(&self) -> Result<u32> {
        let limit = (CHUNK * MAX_CHUNKS) as u32;
        let index = self
            .fresh
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| {
                Error::Exhausted(format!(
                    "{} live {}s: the table is full; free some first",
                    CHUNK * MAX_CHUNKS,
                    self.what
                ))
            })?;
        self.chunks[index as usize / CHUNK].get_or_init(|| {
            (0..CHUNK)
                .map(|_| {
                    CacheLine(Mutex::new(Slot {
                        generation: 0,
                        live: false,
                        value: T::default(),
                    }))
                })
                .collect()
        });
        Ok(index)
    }

    #[inline(always)]
    fn recycle(&'static self, index: u32) {
        if let Some((owner, index)) = free_cache::park(self.tag(), self, index) {
            owner.free_to_shard(index);
        }
    }

    /// Fills a free slot with `fill` and answers its handle. If `fill`
    /// fails, the slot goes back unused.
    pub fn insert_with<R>(
        &'static self,
        fill: impl FnOnce(&mut T) -> Result<R>,
    ) -> Result<(u64, R)> {
        let index = self.allocate()?;
        let mut slot = self.slot(index).expect("allocated slots exist").lock();
        match fill(&mut slot.value) {
            Ok(r) => {
                slot.live = true;
                crate::valgrind::release(std::ptr::from_ref(&*slot).cast());
                Ok((self.encode(index, slot.generation), r))
            }
            Err(e) => {
                drop(slot);
                self.recycle(index);
                Err(e)
            }
        }
    }

    /// Runs `f` on the live value named by `handle`.
    pub fn with_live<R>(&self, handle: u64, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let (index, generation) = self.decode(handle).ok_or_else(|| self.stale())?;
        let mut slot = self.slot(index).ok_or_else(|| self.stale())?.lock();
        if !slot.live || slot.generation != generation {
            return Err(self.stale());
        }
        crate::valgrind::acquire(std::ptr::from_ref(&*slot).cast());
        Ok(f(&mut slot.value))
    }

    /// Runs `consume` on the live value named by `handle`; if it succeeds
    /// the handle is spent (every later use is `STALE_HANDLE`). `consume`
    /// must leave the value empty on success.
    pub fn take_with<R>(
        &'static self,
        handle: u64,
        consume: impl FnOnce(&mut T) -> Result<R>,
    ) -> Result<R> {
        let (index, generation) = self.decode(handle).ok_or_else(|| self.stale())?;
        let mut slot = self.slot(index).ok_or_else(|| self.stale())?.lock();
        if !slot.live || slot.generation != generation {
            return Err(self.stale());
        }
        crate::valgrind::acquire(std::ptr::from_ref(&*slot).cast());
        let r = consume(&mut slot.value)?;
        slot.live = false;
        slot.generation += 1;
        let retired = slot.generation == LAST_GENERATION;
        drop(slot);
        if !retired {
            self.recycle(index);
        }
        Ok(r)
    }

    #[cold]
    fn stale(&self) -> Error {
        Error::StaleHandle(format!(
            "this {} handle was already consumed or released, or was never valid",
            self.what
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: Registry<Vec<u32>> = Registry::new(3, "test object");

    fn holding(x: u32) -> impl FnOnce(&mut Vec<u32>) -> Result<()> {
        move |v| {
            v.push(x);
            Ok(())
        }
    }

    fn clear(v: &mut Vec<u32>) -> Result<()> {
        v.clear();
        Ok(())
    }

    #[test]
    fn handles_are_checked_and_never_alias() {
        let (h1, ()) = TABLE
            .insert_with(|v| {
                v.push(1);
                Ok(())
            })
            .unwrap();
        assert_ne!(h1, 0);
        assert_eq!(TABLE.with_live(h1, |v| v.clone()).unwrap(), vec![1]);
        TABLE
            .take_with(h1, |v| {
                v.clear();
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            TABLE.take_with(h1, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        // The slot is reused under a new generation: the old handle stays dead.
        let (h2, ()) = TABLE
            .insert_with(|v| {
                v.push(2);
                Ok(())
            })
            .unwrap();
        assert_ne!(h1, h2);
        assert!(TABLE.with_live(h1, |_| ()).is_err());
        assert!(TABLE.with_live(0, |_| ()).is_err());
        assert!(TABLE.with_live(u64::MAX, |_| ()).is_err());
        TABLE
            .take_with(h2, |v| {
                v.clear();
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn failed_fill_and_failed_consume_change_nothing() {
        let err = TABLE.insert_with(|_| Err::<(), _>(Error::Busy("no".into())));
        assert!(err.is_err());
        let (h, ()) = TABLE
            .insert_with(|v| {
                v.push(3);
                Ok(())
            })
            .unwrap();
        assert!(TABLE
            .take_with(h, |_| Err::<(), _>(Error::Busy("no".into())))
            .is_err());
        assert_eq!(TABLE.with_live(h, |v| v.len()).unwrap(), 1);
        TABLE
            .take_with(h, |v| {
                v.clear();
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_retired_slot_is_never_reused() {
        static RETIRING: Registry<Vec<u32>> = Registry::new(3, "test object");
        let (h, ()) = RETIRING.insert_with(|_| Ok(())).unwrap();
        let (index, _) = RETIRING.decode(h).unwrap();
        RETIRING.slot(index).unwrap().lock().generation = LAST_GENERATION - 1;
        let h = RETIRING.encode(index, LAST_GENERATION - 1);
        RETIRING.take_with(h, |_| Ok(())).unwrap();
        assert!(RETIRING.with_live(h, |_| ()).is_err());
        for _ in 0..100 {
            let (h2, ()) = RETIRING.insert_with(|_| Ok(())).unwrap();
            assert_ne!(RETIRING.decode(h2).unwrap().0, index);
        }
    }

    #[test]
    fn a_value_keeps_its_capacity() {
        static REUSED: Registry<Vec<u32>> = Registry::new(3, "test object");
        let (h, ()) = REUSED
            .insert_with(|v| {
                v.extend(0..100);
                Ok(())
            })
            .unwrap();
        REUSED.take_with(h, clear).unwrap();
        let (h, capacity) = REUSED.insert_with(|v| Ok(v.capacity())).unwrap();
        assert!(capacity >= 100);
        REUSED.take_with(h, |_| Ok(())).unwrap();
    }

    /// A thread keeps the index it freed last, out of every shard, takes it
    /// first when it allocates, gives it up to its table's shard when it
    /// frees in another table of the same tag, and hands it back when it
    /// exits.
    #[test]
    fn a_thread_parks_its_last_freed_index_until_it_exits() {
        static PARKING: Registry<Vec<u32>> = Registry::new(3, "test object");
        static OTHER: Registry<Vec<u32>> = Registry::new(3, "test object");
        fn on_shards(table: &Registry<Vec<u32>>) -> usize {
            table.free.iter().map(|f| f.0.lock().indices.len()).sum()
        }
        std::thread::spawn(|| {
            let (h, ()) = PARKING.insert_with(holding(1)).unwrap();
            let index = PARKING.decode(h).unwrap().0;
            PARKING.take_with(h, clear).unwrap();
            assert_eq!(on_shards(&PARKING), 0, "parked, not on a shard");
            let (h, ()) = PARKING.insert_with(holding(2)).unwrap();
            assert_eq!(
                PARKING.decode(h).unwrap().0,
                index,
                "the parked index first"
            );
            PARKING.take_with(h, clear).unwrap();

            let (h, ()) = OTHER.insert_with(holding(3)).unwrap();
            OTHER.take_with(h, clear).unwrap();
            assert_eq!(on_shards(&PARKING), 1, "displaced to its own table's shard");
            assert_eq!(on_shards(&OTHER), 0);
        })
        .join()
        .unwrap();
        assert_eq!((on_shards(&PARKING), on_shards(&OTHER)), (1, 1));
    }

    /// A thread that only allocates, fed by one that only frees: the freed
    /// indices are reused, the table does not grow with the traffic.
    #[test]
    fn producer_and_consumer_reuse_indices() {
        static HANDED: Registry<Vec<u32>> = Registry::new(3, "test object");
        const IN_FLIGHT: usize = 16;
        let (send, receive) = std::sync::mpsc::sync_channel::<u64>(IN_FLIGHT);
        let consumer = std::thread::spawn(move || {
            for h in receive {
                HANDED.take_with(h, clear).unwrap();
            }
        });
        for i in 0..100_000 {
            let (h, ()) = HANDED.insert_with(holding(i)).unwrap();
            send.send(h).unwrap();
        }
        drop(send);
        consumer.join().unwrap();
        // The producer's own draws, then at most IN_FLIGHT in the channel
        // and one in each thread's hands.
        let fresh = HANDED.fresh.load(Ordering::Relaxed);
        assert!(
            fresh as usize <= OWN_DRAWS as usize + IN_FLIGHT + 4,
            "{fresh} fresh indices"
        );
    }

    /// Two threads (of different shards) that take turns, each inserting and
    /// taking two handles per turn (one more than a thread's parked index),
    /// keep two indices each: neither steals the other's, which would move
    /// an index and two locks between their cores on every turn.
    #[test]
    fn threads_taking_turns_keep_their_own_indices() {
        use std::collections::BTreeSet;
        use std::sync::atomic::AtomicU64;
        use std::sync::mpsc::{channel, Receiver};
        static TURNS: Registry<Vec<u32>> = Registry::new(3, "test object");
        static TURN: AtomicU64 = AtomicU64::new(0);
        const ROUNDS: u64 = 1_000;
        // A player reports its home shard, then plays the turns `first`,
        // `first + 2`, ... when told to (or quits when told `None`).
        let spawn_player = || {
            let (shard_to_test, shard) = channel();
            let (go, go_from_test) = channel::<Option<u64>>();
            let play = move |go: Receiver<Option<u64>>| {
                shard_to_test.send(home_shard()).unwrap();
                let mut indices = BTreeSet::new();
                let Some(first) = go.recv().unwrap() else {
                    return indices;
                };
                for k in (first..2 * ROUNDS).step_by(2) {
                    while TURN.load(Ordering::Acquire) != k {
                        std::thread::yield_now();
                    }
                    let (h1, ()) = TURNS.insert_with(holding(k as u32)).unwrap();
                    let (h2, ()) = TURNS.insert_with(holding(k as u32)).unwrap();
                    for h in [h1, h2] {
                        indices.insert(TURNS.decode(h).unwrap().0);
                        TURNS.take_with(h, clear).unwrap();
                    }
                    TURN.store(k + 1, Ordering::Release);
                }
                indices
            };
            let thread = std::thread::spawn(move || play(go_from_test));
            (thread, shard.recv().unwrap(), go)
        };
        // Home shards are handed out round-robin, so a few spawns find a
        // second player of another shard.
        let (a, shard_a, go_a) = spawn_player();
        let (b, go_b) = loop {
            let (b, shard_b, go_b) = spawn_player();
            if shard_b != shard_a {
                break (b, go_b);
            }
            go_b.send(None).unwrap();
            b.join().unwrap();
        };
        go_a.send(Some(0)).unwrap();
        go_b.send(Some(1)).unwrap();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!((a.len(), b.len()), (2, 2), "{a:?} {b:?}");
        assert!(a.is_disjoint(&b), "{a:?} {b:?}");
    }

    /// Threads inserting and consuming at once never get the same live slot.
    #[test]
    fn threads_never_share_a_live_slot() {
        static SHARED: Registry<Vec<u32>> = Registry::new(3, "test object");
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        let batch: Vec<u64> = (0..(i % 8))
                            .map(|k| SHARED.insert_with(holding(t * 8 + k)).unwrap().0)
                            .collect();
                        for (k, h) in (0..).zip(batch) {
                            let mine = SHARED.take_with(h, |v| Ok(std::mem::take(v))).unwrap();
                            assert_eq!(mine, [t * 8 + k]);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Each thread's own draws, at most 4 * 7 live at once; a few more
        // only if a thread scanned the shards while others were freeing (no
        // instant sees them all).
        let fresh = SHARED.fresh.load(Ordering::Relaxed);
        assert!(fresh <= 4 * OWN_DRAWS + 2 * 4 * 8, "{fresh} fresh indices");
    }

    #[test]
    fn a_handle_of_one_table_is_stale_in_another() {
        static GUARDS: Registry<Vec<u32>> = Registry::new(1, "guard");
        static SEGMENTS: Registry<Vec<u32>> = Registry::new(2, "segment");
        let (g, ()) = GUARDS.insert_with(|_| Ok(())).unwrap();
        let (s, ()) = SEGMENTS.insert_with(|_| Ok(())).unwrap();
        assert_ne!(g, s, "same index and generation, different tables");
        assert!(matches!(
            GUARDS.take_with(s, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        assert!(matches!(
            SEGMENTS.with_live(g, |_| ()),
            Err(Error::StaleHandle(_))
        ));
        GUARDS.take_with(g, |_| Ok(())).unwrap();
        SEGMENTS.take_with(s, |_| Ok(())).unwrap();
    }
}
