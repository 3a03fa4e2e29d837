//! Validated handles for heap objects that C hands back to us and may misuse
//! (double resume, release after consumption, a freed or forged handle):
//! write guards and suspended segments live in slots of a process-wide
//! table and C holds `generation | index`, never an address. A handle whose
//! slot has moved on answers `STALE_HANDLE` instead of touching freed memory.
//!
//! The table holds no lock, so nothing can be inherited held by the child of
//! a `fork` (SPEC, "Edges"): each slot is claimed by a compare-and-swap on
//! its state word, free indices sit on one lock-free stack, and chunks of
//! slots are published with a compare-and-swap too. Chunks are never freed
//! while the library is loaded (type-stable memory: a late reader of a
//! recycled slot reads a valid, if outdated, state word), and the library is
//! never unloaded (`-z nodelete`, see build.rs), so they are never lost.
//!
//! In front of the free stack, each table has `SPOTS` parking spots, one
//! cache line each; a thread with a context owns one while it lives
//! ([`Spot`]; threads beyond `SPOTS` at once have none and use the free
//! stack). A thread parks the index it frees in its spot and takes it back
//! first when it allocates, so a coroutine resuming (a free) and suspending
//! again (an allocation) on one thread touches no shared cache line, and two
//! threads doing so at once do not contend on the free stack's head
//! (`benches/run.sh`, per-thread throughput of suspend+resume with 2 threads
//! against one: 0.64–1.00× in two runs with parking, 0.42–0.48× without it).
//! Only its owner writes a spot, with plain stores (no read-modify-write:
//! issue 20); a parked slot says so in its own state word (PARKED), and
//! taking it back is the compare-and-swap PARKED -> BUSY on that word, which
//! any thread may win. A table that finds its free stack empty and no fresh
//! index left takes a parked slot from any spot that way before it answers
//! `EXHAUSTED`: once handles are freed, any thread can allocate again,
//! whichever thread freed them; the owner then finds its slot taken and
//! allocates elsewhere.

use crate::error::{Error, Result};
use crate::sync::{fence, AtomicPtr, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Slots per chunk: a table grows by one chunk (one allocation) at a time.
#[cfg(not(loom))]
pub(crate) const CHUNK: usize = 1024;
#[cfg(not(loom))]
const MAX_CHUNKS: usize = 4096;
// Under loom: two chunks of two slots and two spots, so that a model
// reaches chunk publication, the free stack and exhaustion in a few steps.
#[cfg(loom)]
pub(crate) const CHUNK: usize = 2;
#[cfg(loom)]
const MAX_CHUNKS: usize = 2;
/// Slots in a full table: 4,194,304 live handles.
pub(crate) const CAPACITY: u32 = (CHUNK * MAX_CHUNKS) as u32;
/// The free stack's head keeps `index + 1` (at most CAPACITY) in its low
/// INDEX_BITS and its ABA tag in all the bits above (41 of them).
const INDEX_BITS: u32 = CAPACITY.ilog2() + 1;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Marks a handle so that it can never look like NULL or a small integer.
const MARK: u64 = 1 << 63;
/// Bits 61-62 name the table, so a handle of one table (a segment) is never
/// accepted by another (as a write guard), even through a C cast.
const TABLE_SHIFT: u32 = 61;
const TABLE_MASK: u64 = 0b11 << TABLE_SHIFT;
/// Generations take bits 32-60 of a handle.
const GENERATION_BITS: u32 = 29;
/// A slot whose generation reaches this is retired, never reused: no handle
/// generation ever wraps (issue: no counter wraps).
const LAST_GENERATION: u32 = (1 << GENERATION_BITS) - 1;

/// A slot's state word: `generation << 2 | phase`.
const FREE: u32 = 0;
const LIVE: u32 = 1;
/// Claimed by one call (being filled, read or consumed).
const BUSY: u32 = 2;
/// Free, parked in a spot (not on the free stack): whoever moves it to
/// BUSY with a compare-and-swap owns it (see the top).
const PARKED: u32 = 3;
/// How long a call that finds its handle's slot busy (another call consuming
/// the same handle right now, which is a race in the caller) waits for that
/// call to finish before it answers stale. Consuming calls hold a slot for
/// well under a microsecond, but a thread can be preempted while it holds
/// one; only a slot left busy by a thread that no longer exists (the child
/// of a `fork`) waits the whole time.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn state(generation: u32, phase: u32) -> u32 {
    (generation << 2) | phase
}

/// Keeps its content on cache lines of its own, so that two threads working
/// on neighbouring slots do not bounce one line between them.
#[repr(align(64))]
struct Slot<T> {
    state: AtomicU32,
    /// The next free index (+1; 0 ends the list) while this slot is free.
    next: AtomicU32,
    /// What readers may learn without claiming the slot (see [`Peek`]),
    /// written before the slot goes LIVE.
    info: AtomicU64,
    value: UnsafeCell<T>,
}

/// Parking spots per table: at most this many threads own one at once
/// (the others allocate from the free stack; nothing is lost). 16 KiB per
/// table.
#[cfg(not(loom))]
pub(crate) const SPOTS: usize = 256;
#[cfg(loom)]
pub(crate) const SPOTS: usize = 2;

/// Which spots a thread owns (a bit each), for every table at once.
static OWNED: [std::sync::atomic::AtomicU64; SPOTS.div_ceil(64)] =
    [const { std::sync::atomic::AtomicU64::new(0) }; SPOTS.div_ceil(64)];

/// A thread's parking spot, the same number in every table, its own until
/// dropped (with its context); or none, when every spot is owned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Spot {
    /// `SPOTS`: none.
    index: usize,
    /// Taken from [`OWNED`], given back on drop (false for tests' spots).
    pooled: bool,
}

impl Spot {
    /// A spot no thread owns, for a thread's new context; none if every
    /// spot is owned. One read-modify-write per thread.
    pub(crate) fn next() -> Spot {
        for (word, owned) in OWNED.iter().enumerate() {
            // Relaxed: only a guess, the exchange checks it.
            let mut bits = owned.load(Ordering::Relaxed);
            while bits != u64::MAX {
                let bit = (!bits).trailing_zeros() as usize;
                // Acquire pairs with the Release of the last owner's drop:
                // its plain stores to the spot are seen by this owner.
                match owned.compare_exchange_weak(
                    bits,
                    bits | 1 << bit,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) if word * 64 + bit < SPOTS => {
                        return Spot {
                            index: word * 64 + bit,
                            pooled: true,
                        }
                    }
                    Ok(_) => break, // past the last spot (loom's 2)
                    Err(now) => bits = now,
                }
            }
        }
        Spot {
            index: SPOTS,
            pooled: false,
        }
    }

    /// Whether this spot came from the pool (a thread owns it until drop).
    #[cfg(test)]
    pub(crate) fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// Spot `index`, outside the pool: tests give each thread its own.
    #[cfg(test)]
    pub(crate) fn fixed(index: usize) -> Spot {
        assert!(index < SPOTS);
        Spot {
            index,
            pooled: false,
        }
    }
}

impl Drop for Spot {
    fn drop(&mut self) {
        if self.pooled {
            // Release: see `next`.
            OWNED[self.index / 64].fetch_and(!(1 << (self.index % 64)), Ordering::Release);
        }
    }
}

/// What a spot holds: 0, or the parked slot's `generation << 32 | index +
/// 1`. Written by its owner only (plain stores), read by anyone.
#[repr(align(64))]
struct ParkingSpot(AtomicU64);

fn parked(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index + 1)
}

/// The one word a table's readers need (a segment's length, a write
/// guard's store address), kept beside the value so that reading it never
/// makes the slot busy for a call that consumes the handle.
pub(crate) trait Peek {
    fn peek(&self) -> u64;
}

// SAFETY: `value` is only reached by the one call that moved `state` to
// BUSY (a compare-and-swap), so no two threads ever touch it at once; `T:
// Send` lets it be filled on one thread and consumed on another.
unsafe impl<T: Send> Sync for Slot<T> {}

/// Bytes one slot of a `Registry<T>` takes (a multiple of the cache line).
// Used only in a `const _` assert (ffi/segment.rs), which Rust 1.85 does not
// count as a use.
#[allow(dead_code)]
pub(crate) const fn slot_bytes<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// A table of `T`s addressed by generation-checked handles.
pub(crate) struct Registry<T> {
    what: &'static str,
    /// This table's tag, already shifted into place.
    table: u64,
    chunks: [AtomicPtr<Slot<T>>; MAX_CHUNKS],
    /// The free stack: `tag << INDEX_BITS | (index + 1)`, 0 in the low
    /// bits when empty. The tag counts pushes and pops so that a pop that
    /// read an outdated head fails its compare-and-swap (the ABA problem).
    /// It has every bit the index leaves (41): a thread would have to stall
    /// between its load and its CAS while others do exactly a multiple of
    /// 2^41 pushes and pops (hours at full speed) for it to matter.
    free: AtomicU64,
    /// Indices below this were handed out at least once.
    fresh: AtomicU32,
    /// Indices handed out never reach this (lowered by tests only).
    limit: u32,
    /// Freed slots kept for the thread that freed them (see the top).
    spots: [ParkingSpot; SPOTS],
}

impl<T: Default + Send + Peek> Registry<T> {
    crate::sync::const_fn! {
        /// An empty table of `what`s (named in error messages); `table` (1..=3)
        /// must differ between the process's tables.
        pub(crate) const fn new(table: u64, what: &'static str) -> Self {
            Self::with_limit(table, what, CAPACITY)
        }
    }

    crate::sync::const_fn! {
        /// [`Registry::new`] with room for only `limit` live handles, so that
        /// tests reach exhaustion with the production code in seconds.
        pub(crate) const fn with_limit(table: u64, what: &'static str, limit: u32) -> Self {
            assert!(matches!(table, 1..=3), "three table tags exist");
            assert!(limit <= CAPACITY);
            Registry {
                what,
                table: table << TABLE_SHIFT,
                chunks: crate::sync::array_of!(AtomicPtr::new(std::ptr::null_mut()); MAX_CHUNKS),
                free: AtomicU64::new(0),
                fresh: AtomicU32::new(0),
                limit,
                spots: crate::sync::array_of!(ParkingSpot(AtomicU64::new(0)); SPOTS),
            }
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

    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        let index = index as usize;
        // Acquire pairs with the AcqRel publication in `build_chunk`: the
        // chunk's slots were initialised before we see its pointer.
        let chunk = self.chunks.get(index / CHUNK)?.load(Ordering::Acquire);
        // SAFETY: a non-null chunk pointer was published (Release) by
        // `build_chunk` after its CHUNK slots were initialised, and chunks are
        // never freed while the library is loaded.
        (!chunk.is_null()).then(|| unsafe { &*chunk.add(index % CHUNK) })
    }

    /// The head after `head` with `low` (an index + 1, or 0) on top: the
    /// tag goes up by one, wrapping within its bits.
    fn next_head(head: u64, low: u32) -> u64 {
        (head & !INDEX_MASK).wrapping_add(1 << INDEX_BITS) | u64::from(low)
    }

    fn push_free(&self, index: u32) {
        let slot = self.slot(index).expect("a freed index has a slot");
        // Relaxed: only a guess, the exchange checks it.
        let mut head = self.free.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the exchange's Release just below.
            slot.next
                .store((head & INDEX_MASK) as u32, Ordering::Relaxed);
            let new = Self::next_head(head, index + 1);
            // Release pairs with the Acquire of `pop_free`: this link, and
            // the slot's FREE state stored before the push, are seen by the
            // thread that pops the index.
            match self
                .free
                .compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(seen) => head = seen,
            }
        }
    }

    /// Pops a free index. `latest`: start from the newest head, for the
    /// exhaustion re-check (see below).
    fn pop_free(&self, latest: bool) -> Option<u32> {
        // Acquire pairs with `push_free`'s Release (the link of the top).
        // A load may answer an older head than the newest one (the language
        // model only promises a read-modify-write the last value in the
        // word's modification order): fine for a first look, but the
        // re-check before EXHAUSTED must not call the stack empty on the
        // strength of a head that was already replaced, so it reads the
        // head with a read-modify-write that changes nothing.
        let mut head = if latest {
            self.free.fetch_add(0, Ordering::Acquire)
        } else {
            self.free.load(Ordering::Acquire)
        };
        loop {
            let top = ((head & INDEX_MASK) as u32).checked_sub(1)?;
            // May read a link that another pop just made outdated; then the
            // tag has moved on and the exchange below fails.
            let next = self.slot(top)?.next.load(Ordering::Relaxed);
            let new = Self::next_head(head, next);
            // Acquire (also on failure, which retries with `seen`): pairs
            // with `push_free`'s Release, as above.
            match self
                .free
                .compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(top),
                Err(seen) => head = seen,
            }
        }
    }

    /// An index never handed out before, its chunk allocated: `Ok(None)`
    /// when every index was handed out, `Err` (`Exhausted`, no index handed
    /// out) when there is no memory for its chunk. Cold: each index is
    /// fresh once in the process's life.
    #[cold]
    #[inline(never)]
    fn fresh_index(&self) -> Result<Option<u32>> {
        loop {
            // An index is handed out only once its chunk exists, so a chunk
            // that cannot be allocated loses none. Only a chunk's first
            // index needs the test: the counter passes it only once the
            // chunk exists, so every later index of the chunk finds it
            // built. Acquire (load and exchange) and Release (exchange)
            // carry that on: the claim of a chunk's first index happens
            // after the chunk's publication was seen, and every later claim
            // reads from it (a read-modify-write chain), so it sees the
            // chunk too. The counter only grows, so an old value read that
            // says "all handed out" is still true.
            let mut unbuilt = None;
            let got = self
                .fresh
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    unbuilt = None;
                    if n >= crate::testing::table_limit(self.limit) {
                        return None;
                    }
                    if n as usize % CHUNK == 0 && self.slot(n).is_none() {
                        unbuilt = Some(n);
                        return None;
                    }
                    Some(n + 1)
                });
            match (got, unbuilt) {
                (Ok(index), _) => return Ok(Some(index)),
                (Err(_), None) => return Ok(None),
                (Err(_), Some(index)) => {
                    if let Err(e) = self.build_chunk(index) {
                        // Unless another thread built it meanwhile.
                        self.slot(index).ok_or(e)?;
                    }
                    // The chunk exists now: claim `index` if it is still the
                    // next one; else look again. AcqRel: as above.
                    if self
                        .fresh
                        .compare_exchange(index, index + 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return Ok(Some(index));
                    }
                }
            }
        }
    }

    /// Builds and publishes the chunk of `index`, which was seen missing;
    /// `Exhausted` when there is no memory for it. Two threads may race to
    /// make it: the loser frees its copy (no lock, so none to inherit at
    /// fork).
    #[cold]
    fn build_chunk(&self, index: u32) -> Result<()> {
        let cell = &self.chunks[index as usize / CHUNK];
        let fresh: Box<[Slot<T>]> = crate::fallible::try_boxed_slice(CHUNK, || Slot {
            state: AtomicU32::new(state(0, FREE)),
            next: AtomicU32::new(0),
            info: AtomicU64::new(0),
            value: UnsafeCell::new(T::default()),
        })
        .ok_or_else(|| self.no_memory())?;
        // For helgrind: each slot's first `insert_with` (on any thread)
        // acquires what was initialised here; the publication below is an
        // atomic it cannot see. (Once per chunk: 1024 no-op requests natively.)
        for slot in fresh.iter() {
            crate::valgrind::release(std::ptr::from_ref(slot).cast());
        }
        let fresh = Box::into_raw(fresh).cast::<Slot<T>>();
        // Release pairs with the Acquire loads of `slot` and above: the
        // slots initialised here are seen by whoever sees the pointer;
        // Acquire on failure for the same reason, as `slot` does.
        if cell
            .compare_exchange(
                std::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `fresh` came from `Box::into_raw` of a CHUNK-long boxed
            // slice just above and was never published.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, CHUNK)) });
        }
        Ok(())
    }

    /// A free slot, BUSY for this call: (index, slot, generation).
    fn allocate(&self, spot: Option<&Spot>) -> Result<(u32, &Slot<T>, u32)> {
        if let Some(own) = spot.and_then(|spot| self.unpark(spot)) {
            return Ok(own);
        }
        if let Some(index) = self.pop_free(false) {
            return Ok(self.own(index));
        }
        let fresh = self.fresh_index();
        if let Ok(Some(index)) = fresh {
            return Ok(self.own(index));
        }
        // Freed by another thread since the first look, onto the free stack
        // or into its parking spot? The free stack's head is read with a
        // read-modify-write (its newest value). A spot is read with a load:
        // only its owner writes it, with plain stores, and a write by this
        // call (an RMW that changes nothing) would race with them; a park
        // that happens before this call (through any synchronisation of the
        // caller's) is seen, one that races with it may not be, as if this
        // call had come first. So EXHAUSTED means every index was live, or
        // being freed by a call that had not returned.
        if let Some(index) = self.pop_free(true) {
            return Ok(self.own(index));
        }
        (0..SPOTS)
            .find_map(|spot| {
                // Acquire pairs with `park`'s Release: the PARKED state is
                // seen by the exchange below.
                let hint = self.spots[spot].0.load(Ordering::Acquire);
                self.take_parked(hint)
            })
            // No memory for a fresh index's chunk: say so, not "full".
            .ok_or_else(|| fresh.err().unwrap_or_else(|| self.exhausted()))
    }

    /// Makes the free `index` (off the free stack, or fresh: this call's
    /// alone) BUSY.
    fn own(&self, index: u32) -> (u32, &Slot<T>, u32) {
        let slot = self.slot(index).expect("allocated slots exist");
        // Acquire pairs with the Release store that freed the slot (`finish`
        // or a dropped claim): its last life is over before this one begins.
        let generation = slot.state.load(Ordering::Acquire) >> 2;
        // Relaxed: `insert_with`'s fence orders it before the info word.
        slot.state.store(state(generation, BUSY), Ordering::Relaxed);
        (index, slot, generation)
    }

    /// Takes the slot `hint` (a spot's word) names if it is still parked
    /// there: PARKED -> BUSY, which only one thread wins.
    fn take_parked(&self, hint: u64) -> Option<(u32, &Slot<T>, u32)> {
        self.leave_parked(hint, BUSY)
    }

    /// Moves the slot `hint` (a spot's word) names, if it is still parked
    /// there, from PARKED to `phase` (BUSY: taken; FREE: bound for the free
    /// stack): (index, slot, generation). Only one thread wins; `None` for
    /// the others, and for an empty spot (0 names no index).
    #[inline(always)]
    fn leave_parked(&self, hint: u64, phase: u32) -> Option<(u32, &Slot<T>, u32)> {
        let index = (hint as u32).checked_sub(1)?;
        let generation = (hint >> 32) as u32;
        let slot = self.slot(index)?;
        // Acquire pairs with the Release store of PARKED (`finish`): the
        // slot's last life is over before this one begins (or, to FREE, the
        // free stack's Release hands it on). A failure (the slot was taken
        // from the spot by a full table's allocation, or re-freed to the
        // free stack) orders nothing.
        slot.state
            .compare_exchange(
                state(generation, PARKED),
                state(generation, phase),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()?;
        Some((index, slot, generation))
    }

    /// Takes back the slot parked in the caller's own `spot`, if it is
    /// still there.
    fn unpark(&self, spot: &Spot) -> Option<(u32, &Slot<T>, u32)> {
        let cell = &self.spots.get(spot.index)?.0;
        // Relaxed, and a plain store: only this thread writes its spot (the
        // slot's state word says whether the slot is still parked). An
        // empty spot is emptied again rather than tested twice (0 has no
        // index: `take_parked` answers `None`).
        let hint = cell.load(Ordering::Relaxed);
        cell.store(0, Ordering::Relaxed);
        self.take_parked(hint)
    }

    /// Parks the slot `index`, PARKED under `generation` already, in the
    /// caller's own `spot` (this table's cell of it); the slot parked there before goes to the free
    /// stack (unless a full table's allocation took it meanwhile).
    #[inline(always)]
    fn park(&self, spot: &ParkingSpot, index: u32, generation: u32) {
        let cell = &spot.0;
        // Relaxed: only this thread writes its spot.
        let displaced = cell.load(Ordering::Relaxed);
        // Release pairs with the Acquire load of a full table's allocation:
        // the PARKED state is seen when the spot names the slot.
        cell.store(parked(index, generation), Ordering::Release);
        if displaced != 0 {
            self.unpark_displaced(displaced);
        }
    }

    /// The slot a park displaced (`hint`, a spot's old word) goes to the
    /// free stack, unless a full table's allocation took it meanwhile.
    #[cold]
    #[inline(never)]
    fn unpark_displaced(&self, hint: u64) {
        if let Some((index, _, _)) = self.leave_parked(hint, FREE) {
            self.push_free(index);
        }
    }

    /// Fills a free slot with `fill` and answers its handle; the index
    /// parked in the calling thread's spot first, if it passes one. If
    /// `fill` fails (or panics), the slot goes back unused, to the free stack.
    /// Inline, with the slot parked in the caller's own `spot` taken back
    /// inline and any other allocation out of line (as [`Registry::insert`]):
    /// a suspend that reuses its thread's parked slot makes no call but `fill`.
    #[inline(always)]
    pub(crate) fn insert_with<R>(
        &self,
        spot: Option<&Spot>,
        fill: impl FnOnce(&mut T) -> Result<R>,
    ) -> Result<(u64, R)> {
        let (index, slot, generation) = match spot.and_then(|spot| self.unpark(spot)) {
            Some(own) => own,
            None => self.allocate_elsewhere()?,
        };
        // For helgrind: the slot came to us through the free stack or a
        // parking spot (atomics it cannot see); its last `finish` or dropped
        // claim announced the matching release.
        crate::valgrind::acquire(std::ptr::from_ref(slot).cast());
        // The writer side of a seqlock (crossbeam's `seq_lock.rs`) whose
        // readers are `peek`: BUSY first (`allocate`), then a Release fence,
        // then the info word. The fence pairs with `peek`'s Acquire fence: a
        // peek that reads the info word written below sees BUSY (or later)
        // when it looks at the state again, and discards the word.
        fence(Ordering::Release);
        let claim = Claim {
            registry: self,
            slot,
            index,
            generation,
        };
        let (r, info) = slot.value.with_mut(|value| {
            // SAFETY: the index came off the free stack (or was fresh), so
            // this call is the only one that holds it; the state says BUSY.
            let value = unsafe { &mut *value };
            fill(value).map(|r| (r, value.peek()))
        })?;
        // Relaxed: after the fence above (for a peek of the slot's last
        // life) and before `finish`'s Release (for a peek of this one).
        slot.info.store(info, Ordering::Relaxed);
        Claim::finish(claim, state(generation, LIVE));
        Ok((self.encode(index, generation), r))
    }

    /// [`Registry::insert_with`] of a value made already (a write guard):
    /// a fill that can neither fail nor panic, so there is no claim to
    /// undo and nothing is kept for an unwinding path. Inline, with the
    /// slot parked in the caller's own `spot` taken back inline and any
    /// other allocation out of line. Refused (`EXHAUSTED`), `value` is
    /// dropped.
    #[inline(always)]
    pub(crate) fn insert(&self, spot: Option<&Spot>, value: T) -> Result<u64> {
        let busy = match spot.and_then(|spot| self.unpark(spot)) {
            Some(own) => own,
            None => self.allocate_elsewhere()?,
        };
        // For helgrind: as in `insert_with`. Here, not in `fill`: in `fill`,
        // the annotation's out-of-line call (which may unwind, as far as the
        // compiler knows) would find `value` moved already, and its drop on
        // that path took a second stack copy (one more store; objdump).
        crate::valgrind::acquire(std::ptr::from_ref(busy.1).cast());
        Ok(self.fill::<true>(busy, value))
    }

    /// The fast half of [`Registry::insert`], for a thread with a spot in
    /// a process no race detector annotates (`valgrind::quiet`; this makes
    /// no annotation): puts `value` in the slot parked in `spot`, taken
    /// back, and answers its handle; hands `value` back where the spot
    /// holds no slot or a full table's allocation took it (nothing changed
    /// but the spot, emptied as `unpark` empties it). Calls nothing: an
    /// export's fast path keeps no frame, its slow half does the rest.
    #[inline(always)]
    pub(crate) fn insert_parked(&self, spot: &Spot, value: T) -> std::result::Result<u64, T> {
        match self.unpark(spot) {
            Some(busy) => Ok(self.fill::<false>(busy, value)),
            None => Err(value),
        }
    }

    /// Puts `value` in `busy` (index, slot, generation: a free slot that
    /// `unpark` or `allocate` made BUSY for this call), makes it LIVE and
    /// answers its handle: the one fill of [`Registry::insert`] and
    /// [`Registry::insert_parked`]. With `ANNOTATE`, announces the slot's
    /// release to helgrind and DRD (`insert` announced the acquire); a
    /// constant, so each caller's code has only its own half (the same
    /// instructions as the two copies this replaced). Neither fails nor
    /// panics: no claim to undo, nothing kept for an unwinding path.
    #[inline(always)]
    fn fill<const ANNOTATE: bool>(&self, busy: (u32, &Slot<T>, u32), value: T) -> u64 {
        let (index, slot, generation) = busy;
        // The seqlock's writer side, as in `insert_with`.
        fence(Ordering::Release);
        let info = value.peek();
        slot.value.with_mut(|cell| {
            // SAFETY: the slot is BUSY for this call alone (`unpark` or
            // `allocate` moved it there), so nothing else reaches the value.
            let old = std::mem::replace(unsafe { &mut *cell }, value);
            // A free slot's value is empty: `take_with`'s consumers leave it
            // so, and chunks start with `T::default()`. Forgotten, not
            // dropped: no destructor call (nor its unwinding path) here.
            debug_assert_eq!(old.peek(), 0, "a free slot held a value");
            std::mem::forget(old);
        });
        // Relaxed: as in `insert_with`.
        slot.info.store(info, Ordering::Relaxed);
        if ANNOTATE {
            crate::valgrind::release(std::ptr::from_ref(slot).cast());
        }
        // Release: as in `Claim::finish`.
        slot.state.store(state(generation, LIVE), Ordering::Release);
        self.encode(index, generation)
    }

    /// [`Registry::allocate`] for a caller that found nothing in its own
    /// spot (or has none): the free stack, a fresh index, or a slot parked
    /// in another thread's spot.
    #[cold]
    #[inline(never)]
    fn allocate_elsewhere(&self) -> Result<(u32, &Slot<T>, u32)> {
        self.allocate(None)
    }

    /// Claims the live slot `handle` names (LIVE -> BUSY): (index,
    /// generation, the claim); dropping the claim (a refusal or a panic)
    /// makes it LIVE again. Inline: one compare-and-swap when nobody else
    /// is consuming the handle; the wait for one that is lives out of line.
    #[inline(always)]
    fn claim(&self, handle: u64) -> Result<(u32, u32, Held<'_, T>)> {
        let (index, generation) = self.decode(handle).ok_or_else(|| self.stale())?;
        // No handle names the last generation: a slot that reaches it is
        // retired, BUSY for good, and the wait below would take it for a
        // consume in progress (a forged handle waited BUSY_WAIT for STALE).
        if generation >= LAST_GENERATION {
            return Err(self.stale());
        }
        let slot = self.slot(index).ok_or_else(|| self.stale())?;
        let live = state(generation, LIVE);
        // Acquire pairs with the Release store of `finish` that made the
        // slot LIVE (or of the claim that handed it back): the value as
        // that call left it is seen. A failure only looks (Relaxed).
        if let Err(seen) = slot.state.compare_exchange(
            live,
            state(generation, BUSY),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            self.claim_contended(slot, generation, seen)?;
        }
        crate::valgrind::acquire(std::ptr::from_ref(slot).cast());
        Ok((index, generation, Held { slot, live }))
    }

    /// [`Registry::claim`] when the slot was not LIVE under the handle's
    /// generation (`seen`): stale, unless another call is consuming the
    /// same handle right now; that one either spends it (then this one is
    /// stale) or fails and hands it back (then this one claims it).
    #[cold]
    #[inline(never)]
    fn claim_contended(&self, slot: &Slot<T>, generation: u32, mut seen: u32) -> Result<()> {
        let (live, busy) = (state(generation, LIVE), state(generation, BUSY));
        let since = std::time::Instant::now();
        while seen == busy && since.elapsed() <= BUSY_WAIT {
            #[cfg(all(test, not(loom)))]
            tests::BUSY_YIELDS.with(|n| n.set(n.get() + 1));
            crate::sync::yield_now();
            // Acquire: as in `claim`.
            match slot
                .state
                .compare_exchange(live, busy, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => seen = now,
            }
        }
        Err(self.stale())
    }

    /// The [`Peek`] word of the live value named by `handle`, without
    /// claiming it: `None` when the handle is not live (or is being consumed
    /// right now).
    pub(crate) fn peek(&self, handle: u64) -> Option<u64> {
        let (index, generation) = self.decode(handle)?;
        let slot = self.slot(index)?;
        let live = state(generation, LIVE);
        // The reader side of the seqlock `insert_with` writes. Acquire pairs
        // with `finish`'s Release store of LIVE: the info word of this life
        // is seen (or a later one, which the re-check below catches).
        if slot.state.load(Ordering::Acquire) != live {
            return None;
        }
        let info = slot.info.load(Ordering::Relaxed);
        // Still the same life of the slot: the word read belongs to it. The
        // fence pairs with `insert_with`'s Release fence: if the word read
        // is a later life's, that life's BUSY store is seen below.
        fence(Ordering::Acquire);
        (slot.state.load(Ordering::Relaxed) == live).then_some(info)
    }

    /// Runs `consume` on the live value named by `handle`; if it succeeds
    /// the handle is spent (every later use is `STALE_HANDLE`) and its index
    /// is parked in the calling thread's spot, if it has one (else it goes
    /// to the free stack). `consume` must leave the value empty on success;
    /// if it fails (or panics) nothing changes.
    #[inline(always)]
    pub(crate) fn take_with<R>(
        &self,
        spot: Option<&Spot>,
        handle: u64,
        consume: impl FnOnce(&mut T) -> Result<R>,
    ) -> Result<R> {
        let (index, generation, held) = self.claim(handle)?;
        let slot = held.slot;
        // SAFETY: `claim` moved the slot to BUSY: this call alone reaches it.
        let r = slot
            .value
            .with_mut(|value| consume(unsafe { &mut *value }))?;
        let next = generation + 1;
        if next == LAST_GENERATION {
            // Retired: stays BUSY under a generation no handle has.
            Held::finish(held, state(next, BUSY));
            return Ok(r);
        }
        match spot.and_then(|spot| self.spots.get(spot.index)) {
            Some(cell) => {
                Held::finish(held, state(next, PARKED));
                self.park(cell, index, next);
            }
            None => {
                Held::finish(held, state(next, FREE));
                self.push_free(index);
            }
        }
        Ok(r)
    }

    /// The fast half of [`Registry::take_with`], for a thread with a spot
    /// holding no slot, in a process no race detector annotates
    /// (`valgrind::quiet`; this makes no annotation): claims the live slot
    /// `handle` names, runs `consume` and, if it answers true, spends the
    /// handle and parks the slot in `spot`: true. false, nothing changed,
    /// where the spot holds a slot already, the handle is not live (or is
    /// being consumed right now), or `consume` answers false (it must then
    /// leave the value as it found it; the slot is LIVE again; so too if
    /// `consume` panics). Calls nothing (nor may `consume`): an export's
    /// fast path keeps no frame, its slow half does the rest (a busy
    /// slot's wait among it).
    #[inline(always)]
    pub(crate) fn take_parking(
        &self,
        spot: &Spot,
        handle: u64,
        consume: impl FnOnce(&mut T) -> bool,
    ) -> bool {
        let consume = |value: &mut T| if consume(value) { Ok(()) } else { Err(()) };
        matches!(
            self.take_parking_either(spot, handle, consume),
            Some(Ok(()))
        )
    }

    /// [`Registry::take_parking`] for a `consume` that may refuse (a
    /// segment's resume): claims the live slot `handle` names and runs
    /// `consume`; on success spends the handle and parks the slot in
    /// `spot`: `Some(Ok)`. `Some(Err)` where `consume` refused: the slot
    /// LIVE again under the same handle, nothing else changed (`consume`
    /// must leave the value as it found it). `None`, nothing changed, where
    /// the spot holds a slot already or the handle is not live (or is being
    /// consumed right now): the slow half ([`Registry::take_with`]) explains
    /// or waits. For a thread with a spot in a process no race detector
    /// annotates (`valgrind::quiet`; this makes no annotation). Calls
    /// nothing but `consume`; if `consume` panics, the slot is LIVE again.
    #[inline(always)]
    pub(crate) fn take_parking_with<R>(
        &self,
        spot: &Spot,
        handle: u64,
        consume: impl FnOnce(&mut T) -> Result<R>,
    ) -> Option<Result<R>> {
        self.take_parking_either(spot, handle, consume)
    }

    /// The one claim, consume and park of [`Registry::take_parking`] and
    /// [`Registry::take_parking_with`], for any error `E` of `consume`
    /// (`()` for the first): as `take_parking_with` says. The guard kept
    /// for a panic of `consume` costs nothing where `consume` calls
    /// nothing (no unwinding path): both callers' code is what their two
    /// copies were.
    #[inline(always)]
    fn take_parking_either<R, E>(
        &self,
        spot: &Spot,
        handle: u64,
        consume: impl FnOnce(&mut T) -> std::result::Result<R, E>,
    ) -> Option<std::result::Result<R, E>> {
        let ParkingSpot(cell) = self.spots.get(spot.index)?;
        // Relaxed: only this thread writes its spot. A slot parked there
        // would be displaced by the park below: the slow half does that.
        if cell.load(Ordering::Relaxed) != 0 {
            return None;
        }
        let (index, generation) = self.decode(handle)?;
        if generation >= LAST_GENERATION {
            return None; // no handle names it: `claim` explains
        }
        let slot = self.slot(index)?;
        let live = state(generation, LIVE);
        // Acquire: as in `claim`. A failure (stale, or consumed right
        // now) only looks: the slow half's `claim` explains or waits.
        slot.state
            .compare_exchange(
                live,
                state(generation, BUSY),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()?;
        // Only for a panic of `consume`: its drop makes the slot LIVE again.
        let held = Held { slot, live };
        // SAFETY: BUSY for this call alone (the exchange above).
        let r = slot.value.with_mut(|value| consume(unsafe { &mut *value }));
        std::mem::forget(held);
        let Ok(r) = r else {
            // Release: as in `Claim::finish` (the value as it was).
            slot.state.store(live, Ordering::Release);
            return Some(r);
        };
        let next = generation + 1;
        if next == LAST_GENERATION {
            // Retired, as in `take_with`.
            slot.state.store(state(next, BUSY), Ordering::Release);
            return Some(Ok(r));
        }
        // Release: as in `Claim::finish`; then parked, as `park` parks
        // (nothing displaced: the spot was empty).
        slot.state.store(state(next, PARKED), Ordering::Release);
        cell.store(parked(index, next), Ordering::Release);
        Some(Ok(r))
    }

    /// Handles alive right now (a snapshot; O(table), for messages).
    pub(crate) fn live(&self) -> usize {
        // Relaxed here and below: a count for a message, ordering nothing.
        let fresh = self.fresh.load(Ordering::Relaxed);
        (0..fresh)
            .filter_map(|index| self.slot(index))
            .filter(|slot| {
                let s = slot.state.load(Ordering::Relaxed);
                matches!(s & 3, LIVE | BUSY) && (s >> 2) != LAST_GENERATION
            })
            .count()
    }

    #[cold]
    #[inline(never)]
    fn no_memory(&self) -> Error {
        Error::Exhausted(detail!(
            "no memory for {} more {}s ({} bytes; {} are live); nothing was made",
            CHUNK,
            self.what,
            CHUNK * std::mem::size_of::<Slot<T>>(),
            self.live()
        ))
    }

    #[cold]
    #[inline(never)]
    fn exhausted(&self) -> Error {
        Error::Exhausted(detail!(
            "{} {}s are live, the most this table holds; free some first",
            self.live(),
            self.what
        ))
    }

    #[cold]
    #[inline(never)]
    fn stale(&self) -> Error {
        Error::StaleHandle(detail!(
            "this {} handle was already consumed or released, is in use by another \
             thread right now, or was never valid",
            self.what
        ))
    }
}

/// A free slot `insert_with` moved to BUSY. `finish` publishes its next
/// state; dropped unfinished (the fill refused, or panicked) it makes the
/// slot FREE again and puts it back on the free stack. (A claimed live
/// slot is a [`Held`].)
struct Claim<'a, T: Default + Send + Peek> {
    registry: &'a Registry<T>,
    slot: &'a Slot<T>,
    index: u32,
    generation: u32,
}

impl<T: Default + Send + Peek> Claim<'_, T> {
    /// Publishes the slot's next state and defuses the claim. By reference,
    /// then forgotten: a move into `self` made the claim (kept in memory for
    /// the unwinding path) be copied whole first (12 instructions).
    #[inline(always)]
    fn finish(claim: Self, next: u32) {
        let claim = std::mem::ManuallyDrop::new(claim);
        let slot = claim.slot;
        crate::valgrind::release(std::ptr::from_ref(slot).cast());
        // Release pairs with the Acquire of `claim`, `peek` and
        // `insert_with`: what this call did to the value (and the info
        // word) is seen by the next call that finds the slot in `next`.
        slot.state.store(next, Ordering::Release);
    }
}

impl<T: Default + Send + Peek> Drop for Claim<'_, T> {
    fn drop(&mut self) {
        crate::valgrind::release(std::ptr::from_ref(self.slot).cast());
        // Release: as in `finish`.
        self.slot
            .state
            .store(state(self.generation, FREE), Ordering::Release);
        self.registry.push_free(self.index);
    }
}

/// A live slot this call claimed (LIVE -> BUSY, `Registry::claim`).
/// `finish` publishes its next state; dropped unfinished (the call
/// refused, or panicked) it makes the slot `live` again. Two words: all
/// that an unwinding path keeps.
struct Held<'a, T: Default + Send + Peek> {
    slot: &'a Slot<T>,
    /// The slot's LIVE state word, under the handle's generation.
    live: u32,
}

impl<T: Default + Send + Peek> Held<'_, T> {
    /// Publishes the slot's next state and defuses the claim (by
    /// reference, then forgotten: see `Claim::finish`).
    #[inline(always)]
    fn finish(held: Self, next: u32) {
        let held = std::mem::ManuallyDrop::new(held);
        crate::valgrind::release(std::ptr::from_ref(held.slot).cast());
        // Release: as in `Claim::finish`.
        held.slot.state.store(next, Ordering::Release);
    }
}

impl<T: Default + Send + Peek> Drop for Held<'_, T> {
    fn drop(&mut self) {
        crate::valgrind::release(std::ptr::from_ref(self.slot).cast());
        // Release: as in `Claim::finish`.
        self.slot.state.store(self.live, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    thread_local! {
        /// Yields of this thread's `claim` waiting for a busy slot.
        pub(super) static BUSY_YIELDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    static TABLE: Registry<Vec<u32>> = Registry::new(3, "test object");

    impl Peek for Vec<u32> {
        fn peek(&self) -> u64 {
            self.len() as u64
        }
    }

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
        let (h1, ()) = TABLE.insert_with(None, holding(1)).unwrap();
        assert_ne!(h1, 0);
        assert_eq!(TABLE.peek(h1), Some(1));
        TABLE.take_with(None, h1, clear).unwrap();
        assert!(matches!(
            TABLE.take_with(None, h1, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        // The slot is reused under a new generation: the old handle stays dead.
        let (h2, ()) = TABLE.insert_with(None, holding(2)).unwrap();
        assert_ne!(h1, h2);
        assert!(TABLE.peek(h1).is_none());
        assert!(TABLE.peek(0).is_none());
        assert!(TABLE.peek(u64::MAX).is_none());
        TABLE.take_with(None, h2, clear).unwrap();
    }

    #[test]
    fn failed_fill_and_failed_consume_change_nothing() {
        let err = TABLE.insert_with(None, |_| Err::<(), _>(Error::Busy(detail!("no"))));
        assert!(err.is_err());
        let (h, ()) = TABLE.insert_with(None, holding(3)).unwrap();
        assert!(TABLE
            .take_with(None, h, |_| Err::<(), _>(Error::Busy(detail!("no"))))
            .is_err());
        assert_eq!(TABLE.peek(h), Some(1));
        TABLE.take_with(None, h, clear).unwrap();
    }

    #[test]
    fn a_retired_slot_is_never_reused() {
        static RETIRING: Registry<Vec<u32>> = Registry::new(3, "test object");
        let (h, ()) = RETIRING.insert_with(None, |_| Ok(())).unwrap();
        let (index, _) = RETIRING.decode(h).unwrap();
        RETIRING.take_with(None, h, |_| Ok(())).unwrap();
        // Age the slot to its last usable generation.
        let slot = RETIRING.slot(index).unwrap();
        assert_eq!(RETIRING.pop_free(false), Some(index));
        slot.state
            .store(state(LAST_GENERATION - 1, LIVE), Ordering::Relaxed);
        let h = RETIRING.encode(index, LAST_GENERATION - 1);
        RETIRING.take_with(None, h, |_| Ok(())).unwrap();
        assert!(RETIRING.peek(h).is_none());
        assert_eq!(RETIRING.live(), 0, "a retired slot is not live");
        for _ in 0..100 {
            let (h2, ()) = RETIRING.insert_with(None, |_| Ok(())).unwrap();
            assert_ne!(RETIRING.decode(h2).unwrap().0, index);
            RETIRING.take_with(None, h2, |_| Ok(())).unwrap();
        }
    }

    /// A slot retired at its last generation is `(LAST_GENERATION, BUSY)`
    /// for good; a forged handle naming that generation is refused at once,
    /// not after waiting BUSY_WAIT (2 s) for a consume that never ends.
    #[test]
    fn a_forged_handle_on_a_retired_slot_is_refused_at_once() {
        static RETIRED: Registry<Vec<u32>> = Registry::new(3, "test object");
        let (h, ()) = RETIRED.insert_with(None, |_| Ok(())).unwrap();
        let (index, _) = RETIRED.decode(h).unwrap();
        RETIRED.take_with(None, h, |_| Ok(())).unwrap();
        // Age the slot to its last usable generation and spend it there.
        assert_eq!(RETIRED.pop_free(false), Some(index));
        let slot = RETIRED.slot(index).unwrap();
        slot.state
            .store(state(LAST_GENERATION - 1, LIVE), Ordering::Relaxed);
        RETIRED
            .take_with(None, RETIRED.encode(index, LAST_GENERATION - 1), |_| Ok(()))
            .unwrap();
        assert_eq!(
            slot.state.load(Ordering::Relaxed),
            state(LAST_GENERATION, BUSY),
            "retired"
        );
        let forged = RETIRED.encode(index, LAST_GENERATION);
        let before = BUSY_YIELDS.with(|n| n.get());
        assert!(matches!(
            RETIRED.take_with(None, forged, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        assert_eq!(RETIRED.peek(forged), None);
        assert_eq!(
            BUSY_YIELDS.with(|n| n.get()),
            before,
            "claim waited on a retired slot"
        );
    }

    /// The fallible fast half (`take_parking_with`, the resume export's):
    /// a refusal of `consume` leaves the handle live with its value and the
    /// spot empty; a panic of `consume` too; a spot holding a slot, a
    /// forged, another table's or a spent handle answer `None` with
    /// nothing changed (the slow half explains); a success spends the
    /// handle and parks its slot, which the next insert takes back.
    #[test]
    fn the_fallible_fast_half_changes_nothing_unless_it_succeeds() {
        static FALLIBLE: Registry<Vec<u32>> = Registry::new(3, "test object");
        static OTHER: Registry<Vec<u32>> = Registry::new(1, "other object");
        let t = &FALLIBLE;
        let spot = Spot::fixed(9);
        let h = t.insert(None, vec![4]).unwrap();
        let refused = t.take_parking_with(&spot, h, |_| -> Result<()> {
            Err(Error::InvalidArgument(detail!("no")))
        });
        assert!(matches!(refused, Some(Err(Error::InvalidArgument(_)))));
        assert_eq!(
            (t.peek(h), t.spots[9].0.load(Ordering::Relaxed)),
            (Some(1), 0)
        );
        let panicked = std::panic::catch_unwind(|| {
            t.take_parking_with(&spot, h, |_| -> Result<()> { panic!("consume") })
        });
        assert!(panicked.is_err());
        assert_eq!(
            (t.peek(h), t.spots[9].0.load(Ordering::Relaxed)),
            (Some(1), 0)
        );
        let forged = h ^ (1 << 40);
        assert!(t.take_parking_with(&spot, forged, |_| Ok(())).is_none());
        let foreign = OTHER.insert(None, vec![1]).unwrap();
        assert!(t.take_parking_with(&spot, foreign, |_| Ok(())).is_none());
        assert_eq!(OTHER.peek(foreign), Some(1));
        // Another slot parked in the spot: the slow half displaces it.
        let h2 = t.insert(None, vec![5]).unwrap();
        assert_eq!(
            t.take_parking_with(&spot, h2, |v| Ok(std::mem::take(v)))
                .unwrap()
                .unwrap(),
            [5]
        );
        let parked = t.spots[9].0.load(Ordering::Relaxed);
        assert_eq!(parked as u32, t.decode(h2).unwrap().0 + 1);
        assert!(t.take_parking_with(&spot, h, |_| Ok(())).is_none());
        assert_eq!(t.peek(h), Some(1));
        assert!(
            t.take_parking_with(&spot, h2, |_| Ok(())).is_none(),
            "spent"
        );
        let h3 = t.insert(Some(&spot), vec![6]).unwrap();
        assert_eq!(
            t.decode(h3).unwrap().0,
            t.decode(h2).unwrap().0,
            "taken back"
        );
        assert_eq!(
            t.take_with(Some(&spot), h, |v| Ok(std::mem::take(v)))
                .unwrap(),
            [4]
        );
        assert_eq!(
            t.take_with(None, h3, |v| Ok(std::mem::take(v))).unwrap(),
            [6]
        );
        OTHER.take_with(None, foreign, clear).unwrap();
        assert_eq!(t.live(), 0);
    }

    /// The fast half `take_parking` (the install_async export's): a
    /// `consume` that answers false leaves the handle live with its value
    /// and the spot empty, and so does one that panics (the guard of
    /// `take_parking_with`, whose code it shares; before, the slot stayed
    /// BUSY for good).
    #[test]
    fn the_fast_half_changes_nothing_when_consume_refuses_or_panics() {
        static REFUSING: Registry<Vec<u32>> = Registry::new(3, "test object");
        let t = &REFUSING;
        let spot = Spot::fixed(10);
        let h = t.insert(None, vec![4]).unwrap();
        assert!(!t.take_parking(&spot, h, |_| false));
        assert_eq!(
            (t.peek(h), t.spots[10].0.load(Ordering::Relaxed)),
            (Some(1), 0)
        );
        let panicked = std::panic::catch_unwind(|| t.take_parking(&spot, h, |_| panic!("consume")));
        assert!(panicked.is_err());
        assert_eq!(
            (t.peek(h), t.spots[10].0.load(Ordering::Relaxed)),
            (Some(1), 0)
        );
        assert_eq!(
            t.take_with(None, h, |v| Ok(std::mem::take(v))).unwrap(),
            [4]
        );
        assert_eq!(t.live(), 0);
    }

    /// The fast halves at a slot's last generation: a handle spent through
    /// `take_parking` retires its slot (BUSY for good, never parked: the
    /// spot stays empty and no later allocation gets the slot), a forged
    /// handle naming the retired generation is refused at once, and
    /// `insert_parked` with a spot naming a slot no longer parked there
    /// hands the value back and empties the spot.
    #[test]
    fn the_fast_halves_retire_and_refuse_like_the_slow_ones() {
        static RETIRING_FAST: Registry<Vec<u32>> = Registry::new(3, "test object");
        let t = &RETIRING_FAST;
        let spot = Spot::fixed(7);
        let h = t.insert(Some(&spot), vec![1]).unwrap();
        let (index, _) = t.decode(h).unwrap();
        t.take_with(None, h, |v| {
            drop(std::mem::take(v));
            Ok(())
        })
        .unwrap();
        assert_eq!(t.pop_free(false), Some(index));
        let slot = t.slot(index).unwrap();
        slot.state
            .store(state(LAST_GENERATION - 1, LIVE), Ordering::Relaxed);
        let old = t.encode(index, LAST_GENERATION - 1);
        assert!(t.take_parking(&spot, old, |v| {
            drop(std::mem::take(v)); // frees: the static table is never dropped
            true
        }));
        assert_eq!(
            slot.state.load(Ordering::Relaxed),
            state(LAST_GENERATION, BUSY)
        );
        assert_eq!(
            t.spots[7].0.load(Ordering::Relaxed),
            0,
            "a retired slot parked"
        );
        let forged = t.encode(index, LAST_GENERATION);
        assert!(!t.take_parking(&spot, forged, |_| true));
        assert!(!t.take_parking(&spot, old, |_| true));
        let before = BUSY_YIELDS.with(|n| n.get());
        assert!(matches!(
            t.take_with(Some(&spot), forged, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        assert_eq!(BUSY_YIELDS.with(|n| n.get()), before);
        for _ in 0..100 {
            let h2 = match t.insert_parked(&spot, vec![2]) {
                Ok(h2) => h2,
                Err(v) => t.insert(Some(&spot), v).unwrap(),
            };
            assert_ne!(t.decode(h2).unwrap().0, index, "a retired slot reused");
            // Taken, not cleared: `insert_parked` forgets the value it
            // replaces (empty, by the table's rule), so a cleared vector's
            // buffer would leak (Miri: 99 leaks here).
            assert!(t.take_parking(&spot, h2, |v| {
                drop(std::mem::take(v));
                true
            }));
        }
        // The spot names a parked slot; another allocation takes it (as a
        // full table's would): the owner's fast half finds it gone.
        let hint = t.spots[7].0.load(Ordering::Relaxed);
        assert_ne!(hint, 0);
        let (stolen, stolen_slot, _) = t.take_parked(hint).unwrap();
        assert_eq!(t.insert_parked(&spot, vec![3]), Err(vec![3]));
        assert_eq!(t.spots[7].0.load(Ordering::Relaxed), 0);
        // Given back (as a consumed stolen slot would be, to the free stack).
        stolen_slot
            .state
            .store(state((hint >> 32) as u32, FREE), Ordering::Release);
        t.push_free(stolen);
        assert_eq!(t.live(), 0);
    }

    /// The free stack's tag takes every bit the index leaves, and wraps
    /// within them without touching the index.
    #[test]
    fn the_free_stack_tag_is_as_wide_as_the_word_allows() {
        assert_eq!(INDEX_BITS, 23, "index + 1 up to 2^22 needs 23 bits");
        assert!(u64::from(CAPACITY) <= INDEX_MASK);
        let top_tag = !INDEX_MASK;
        assert_eq!(top_tag.count_ones(), 41);
        let head = top_tag | 5;
        assert_eq!(
            Registry::<Vec<u32>>::next_head(head, 7),
            7,
            "wraps to tag 0"
        );
        assert_eq!(Registry::<Vec<u32>>::next_head(3, 9), (1 << INDEX_BITS) | 9);
    }

    #[test]
    fn a_value_keeps_its_capacity() {
        static REUSED: Registry<Vec<u32>> = Registry::new(3, "test object");
        let (h, ()) = REUSED
            .insert_with(None, |v| {
                v.extend(0..100);
                Ok(())
            })
            .unwrap();
        REUSED.take_with(None, h, clear).unwrap();
        let (h, capacity) = REUSED.insert_with(None, |v| Ok(v.capacity())).unwrap();
        assert!(capacity >= 100);
        REUSED.take_with(None, h, |_| Ok(())).unwrap();
    }

    /// Fill a (small) table, free it all on the filling thread, and every
    /// other thread can allocate again; the message counts the live handles.
    #[test]
    fn exhaustion_recovers_for_every_thread() {
        const LIMIT: u32 = 3 * CHUNK as u32 + 5;
        static SMALL: Registry<Vec<u32>> = Registry::with_limit(3, "test object", LIMIT);
        let handles: Vec<u64> = (0..LIMIT)
            .map(|i| SMALL.insert_with(None, holding(i)).unwrap().0)
            .collect();
        let Err(Error::Exhausted(m)) = SMALL.insert_with(None, holding(0)) else {
            panic!("a full table must refuse");
        };
        assert!(
            m.to_string()
                .contains(&format!("{LIMIT} test objects are live")),
            "{m}"
        );
        for h in &handles[..10] {
            SMALL.take_with(None, *h, clear).unwrap();
        }
        let threads: Vec<_> = (0..16)
            .map(|_| std::thread::spawn(|| SMALL.insert_with(None, holding(7)).map(|(h, ())| h)))
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
        let Some(Err(Error::Exhausted(m))) = results.iter().find(|r| r.is_err()) else {
            panic!("six threads must be refused");
        };
        assert!(
            m.to_string()
                .contains(&format!("{LIMIT} test objects are live")),
            "{m}"
        );
        for h in results
            .into_iter()
            .flatten()
            .chain(handles[10..].iter().copied())
        {
            SMALL.take_with(None, h, clear).unwrap();
        }
        assert_eq!(SMALL.live(), 0);
        let again: Vec<u64> = std::thread::spawn(|| {
            (0..LIMIT)
                .map(|i| SMALL.insert_with(None, holding(i)).unwrap().0)
                .collect()
        })
        .join()
        .unwrap();
        assert_eq!(SMALL.live(), LIMIT as usize);
        for h in again {
            SMALL.take_with(None, h, clear).unwrap();
        }
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
                HANDED.take_with(None, h, clear).unwrap();
            }
        });
        for i in 0..100_000 {
            let (h, ()) = HANDED.insert_with(None, holding(i)).unwrap();
            send.send(h).unwrap();
        }
        drop(send);
        consumer.join().unwrap();
        let fresh = HANDED.fresh.load(Ordering::Relaxed);
        assert!(fresh as usize <= IN_FLIGHT + 4, "{fresh} fresh indices");
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
                            .map(|k| SHARED.insert_with(None, holding(t * 8 + k)).unwrap().0)
                            .collect();
                        for (k, h) in (0..).zip(batch) {
                            let mine = SHARED
                                .take_with(None, h, |v| Ok(std::mem::take(v)))
                                .unwrap();
                            assert_eq!(mine, [t * 8 + k]);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let fresh = SHARED.fresh.load(Ordering::Relaxed);
        assert!(fresh <= 4 * 8, "{fresh} fresh indices");
    }

    /// A thread that frees then allocates gets its own index back without
    /// touching the free stack; the index parked before goes there.
    #[test]
    fn a_parked_index_is_taken_back_first() {
        static PARKING: Registry<Vec<u32>> = Registry::new(3, "test object");
        let index = |h| PARKING.decode(h).unwrap().0;
        let spot = Spot::fixed(5);
        let spot = Some(&spot);
        let (a, ()) = PARKING.insert_with(spot, holding(1)).unwrap();
        let (b, ()) = PARKING.insert_with(spot, holding(2)).unwrap();
        PARKING.take_with(spot, a, clear).unwrap();
        PARKING.take_with(spot, b, clear).unwrap();
        assert_eq!(
            PARKING.pop_free(false),
            Some(index(a)),
            "b parked, a displaced"
        );
        PARKING.push_free(index(a));
        let (c, ()) = PARKING.insert_with(spot, holding(3)).unwrap();
        assert_eq!(index(c), index(b), "the parked index first");
        PARKING.take_with(None, c, clear).unwrap();
        assert_eq!(PARKING.live(), 0);
    }

    /// Spots are owned: contexts living at once get distinct spots (or
    /// none, past SPOTS), and a dropped spot goes back to the pool (with
    /// round-robin spots, as before, two of 65 threads shared one).
    #[test]
    fn live_spots_are_distinct_and_given_back() {
        let held: Vec<Spot> = (0..SPOTS + 8).map(|_| Spot::next()).collect();
        let mut owned: Vec<usize> = held
            .iter()
            .filter(|s| s.index < SPOTS)
            .map(|s| s.index)
            .collect();
        let n = owned.len();
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), n, "a spot handed out twice");
        assert!(held.iter().any(|s| s.index == SPOTS), "none past SPOTS");
        drop(held);
        let again = Spot::next();
        assert!(again.index < SPOTS, "dropped spots go back to the pool");
    }

    /// An index parked in another thread's spot is not lost: a full table
    /// takes it before it answers EXHAUSTED, and the message counts what is
    /// live (found by an adversarial pass: a pool thread that freed a handle
    /// and stayed idle kept it from every other thread).
    #[test]
    fn a_full_table_takes_indices_parked_by_other_threads() {
        static SPOTTED: Registry<Vec<u32>> = Registry::with_limit(3, "test object", 8);
        let handles: Vec<u64> = (0..8)
            .map(|i| {
                SPOTTED
                    .insert_with(Some(&Spot::fixed(1)), holding(i))
                    .unwrap()
                    .0
            })
            .collect();
        for h in &handles[..2] {
            SPOTTED.take_with(Some(&Spot::fixed(1)), *h, clear).unwrap();
        }
        // One index parked in spot 1, one on the free stack: both reachable
        // from a thread with no spot and from one with another spot.
        let (x, ()) = SPOTTED.insert_with(None, holding(9)).unwrap();
        let (y, ()) = SPOTTED
            .insert_with(Some(&Spot::fixed(2)), holding(9))
            .unwrap();
        let Err(Error::Exhausted(m)) = SPOTTED.insert_with(Some(&Spot::fixed(3)), holding(9))
        else {
            panic!("eight live handles fill the table");
        };
        assert!(m.to_string().contains("8 test objects are live"), "{m}");
        for h in handles[2..].iter().chain([&x, &y]) {
            SPOTTED.take_with(Some(&Spot::fixed(4)), *h, clear).unwrap();
        }
        assert_eq!(SPOTTED.live(), 0);
    }

    #[test]
    fn a_handle_of_one_table_is_stale_in_another() {
        static GUARDS: Registry<Vec<u32>> = Registry::new(1, "guard");
        static SEGMENTS: Registry<Vec<u32>> = Registry::new(2, "segment");
        let (g, ()) = GUARDS.insert_with(None, |_| Ok(())).unwrap();
        let (s, ()) = SEGMENTS.insert_with(None, |_| Ok(())).unwrap();
        assert_ne!(g, s, "same index and generation, different tables");
        assert!(matches!(
            GUARDS.take_with(None, s, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        assert!(SEGMENTS.peek(g).is_none());
        GUARDS.take_with(None, g, |_| Ok(())).unwrap();
        SEGMENTS.take_with(None, s, |_| Ok(())).unwrap();
    }
}

/// loom checks this file's code (see `crate::sync`; under loom a table has
/// two chunks of two slots and two parking spots): `.ci/loom.sh`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    impl Peek for Vec<u32> {
        fn peek(&self) -> u64 {
            self.len() as u64
        }
    }

    type Table = Arc<Registry<Vec<u32>>>;

    fn table(limit: u32) -> Table {
        Arc::new(Registry::with_limit(3, "test object", limit))
    }

    fn put(t: &Registry<Vec<u32>>, spot: Option<&Spot>, v: &[u32]) -> Result<u64> {
        t.insert_with(spot, |slot| {
            slot.extend_from_slice(v);
            Ok(())
        })
        .map(|(h, ())| h)
    }

    /// `put` through [`Registry::insert`] (a value made already: no claim
    /// kept for a refusal) rather than `insert_with`: the models that check
    /// a filling call's orderings run with both.
    fn put_ready(t: &Registry<Vec<u32>>, spot: Option<&Spot>, v: &[u32]) -> Result<u64> {
        t.insert(spot, v.to_vec())
    }

    /// `put` as the try_write export does: the fast half first
    /// ([`Registry::insert_parked`], the slot parked in the thread's spot),
    /// then [`Registry::insert`].
    fn put_fast(t: &Registry<Vec<u32>>, spot: Option<&Spot>, v: &[u32]) -> Result<u64> {
        match spot.map(|own| t.insert_parked(own, v.to_vec())) {
            Some(Ok(h)) => Ok(h),
            Some(Err(v)) => t.insert(spot, v),
            None => t.insert(None, v.to_vec()),
        }
    }

    type Put = fn(&Registry<Vec<u32>>, Option<&Spot>, &[u32]) -> Result<u64>;

    fn take(t: &Registry<Vec<u32>>, spot: Option<&Spot>, h: u64) -> Result<Vec<u32>> {
        t.take_with(spot, h, |v| Ok(std::mem::take(v)))
    }

    /// `take` as the install_async export does: the fast half first
    /// ([`Registry::take_parking`], parking in the thread's empty spot),
    /// then `take_with`.
    fn take_fast(t: &Registry<Vec<u32>>, spot: Option<&Spot>, h: u64) -> Result<Vec<u32>> {
        let mut got = None;
        if spot.is_some_and(|own| {
            t.take_parking(own, h, |v| {
                got = Some(std::mem::take(v));
                true
            })
        }) {
            return Ok(got.expect("taken"));
        }
        take(t, spot, h)
    }

    /// `take` as the resume export does: the fallible fast half first
    /// ([`Registry::take_parking_with`], parking in the thread's empty
    /// spot), then `take_with`.
    fn take_fast_with(t: &Registry<Vec<u32>>, spot: Option<&Spot>, h: u64) -> Result<Vec<u32>> {
        match spot.and_then(|own| t.take_parking_with(own, h, |v| Ok(std::mem::take(v)))) {
            Some(r) => r,
            None => take(t, spot, h),
        }
    }

    type Take = fn(&Registry<Vec<u32>>, Option<&Spot>, u64) -> Result<Vec<u32>>;

    /// The ways a handle is made and spent: the models that check the
    /// orderings of a filling or consuming call run with each (the
    /// segment exports: `insert_with`, whose own-spot path is inline, and
    /// the fallible fast half).
    const FLAVOURS: [(&str, Put, Take); 4] = [
        ("insert_with", put, take),
        ("insert", put_ready, take),
        ("fast halves", put_fast, take_fast),
        ("segment halves", put, take_fast_with),
    ];

    /// A peek of a handle being spent while its slot is reused answers the
    /// handle's own word or nothing, never the next life's (issue 17: with
    /// the writer's Release fence missing, loom finds `Some(2)`; so it does
    /// with `insert`'s fence removed). The writer spends and fills through
    /// its spot: the fast halves park and take back.
    #[test]
    fn loom_peek_never_answers_a_later_life() {
        for (name, put, take) in FLAVOURS {
            crate::sync::model(
                &format!("registry: peek vs consume + reuse ({name})"),
                move || {
                    let t = table(CAPACITY);
                    let h = put(&t, None, &[1]).unwrap();
                    let writer = {
                        let t = Arc::clone(&t);
                        thread::spawn(move || {
                            let spot = Spot::fixed(0);
                            assert_eq!(take(&t, Some(&spot), h).unwrap(), [1]);
                            // The same slot (the only free one), next generation.
                            put(&t, Some(&spot), &[2, 2]).unwrap()
                        })
                    };
                    let seen = t.peek(h);
                    assert!(seen.is_none() || seen == Some(1), "peek answered {seen:?}");
                    let h2 = writer.join().unwrap();
                    assert_eq!(t.decode(h2).unwrap().0, t.decode(h).unwrap().0);
                    assert_eq!(t.peek(h), None);
                    assert_eq!(t.peek(h2), Some(2));
                },
            );
        }
    }

    /// A handle handed to another thread through a Relaxed word (no
    /// synchronisation of the caller's own): claiming it still sees the
    /// value as filled, through `finish`'s (or `insert`'s) Release and
    /// `claim`'s Acquire (loom's cell fails the model if the fill is not
    /// ordered before: with `insert`'s LIVE store Relaxed, it does). The
    /// handle is made in a slot parked in the maker's spot (the fast
    /// halves take it back) and spent into the consumer's.
    #[test]
    fn loom_a_handle_carries_its_value_to_another_thread() {
        for (name, put, take) in FLAVOURS {
            let name = format!("registry: handle passed through a Relaxed word ({name})");
            crate::sync::model(&name, move || {
                let t = table(CAPACITY);
                let spot = Spot::fixed(0);
                let h0 = put(&t, Some(&spot), &[9]).unwrap();
                assert_eq!(take(&t, Some(&spot), h0).unwrap(), [9]);
                let word = Arc::new(loom::sync::atomic::AtomicU64::new(0));
                let consumer = {
                    let (t, word) = (Arc::clone(&t), Arc::clone(&word));
                    // Without synchronisation the slot (even its chunk) may
                    // not be seen yet: STALE is a fair answer, a torn value
                    // is not.
                    thread::spawn(move || match word.load(Ordering::Relaxed) {
                        0 => None,
                        h => take(&t, Some(&Spot::fixed(1)), h).ok(),
                    })
                };
                let h = put(&t, Some(&spot), &[5, 6]).unwrap();
                word.store(h, Ordering::Relaxed);
                match consumer.join().unwrap() {
                    Some(v) => assert_eq!(v, [5, 6]),
                    None => assert_eq!(take(&t, None, h).unwrap(), [5, 6]),
                }
            });
        }
    }

    /// Two calls consuming one handle at once: exactly one gets the value,
    /// the other answers stale; a peek meanwhile sees the value or nothing.
    /// Both through `take_with`, then both through the fast half first.
    #[test]
    fn loom_one_of_two_consumes_wins() {
        for (name, take) in [
            ("take_with", take as Take),
            ("fast halves", take_fast),
            ("segment halves", take_fast_with),
        ] {
            crate::sync::model(
                &format!("registry: two consumes of one handle ({name})"),
                move || {
                    let t = table(CAPACITY);
                    let h = put(&t, None, &[7]).unwrap();
                    let other = {
                        let t = Arc::clone(&t);
                        thread::spawn(move || take(&t, Some(&Spot::fixed(1)), h).ok())
                    };
                    let mine = take(&t, Some(&Spot::fixed(0)), h).ok();
                    let theirs = other.join().unwrap();
                    assert!(
                        matches!((&mine, &theirs), (Some(v), None) | (None, Some(v)) if v == &[7]),
                        "{mine:?} {theirs:?}"
                    );
                    assert_eq!(t.peek(h), None);
                    assert_eq!(t.live(), 0);
                },
            );
        }
    }

    /// Two threads take fresh indices in the second chunk at once (both may
    /// build it; one publishes, the other frees its copy), fill the table;
    /// a third call is refused EXHAUSTED; every value comes back intact.
    #[test]
    fn loom_chunk_publication_and_exhaustion() {
        crate::sync::model("registry: chunk publication + exhaustion", || {
            let t = table(CAPACITY);
            let first: Vec<u64> = (0..CHUNK as u32)
                .map(|i| put(&t, None, &[i]).unwrap())
                .collect();
            let threads: Vec<_> = (0..2u32)
                .map(|i| {
                    let t = Arc::clone(&t);
                    thread::spawn(move || {
                        (
                            i,
                            put(&t, Some(&Spot::fixed(i as usize)), &[10 + i]).unwrap(),
                        )
                    })
                })
                .collect();
            let second: Vec<(u32, u64)> = threads.into_iter().map(|j| j.join().unwrap()).collect();
            assert!(matches!(put(&t, None, &[0]), Err(Error::Exhausted(_))));
            for (i, h) in (0..).zip(first) {
                assert_eq!(take(&t, None, h).unwrap(), [i]);
            }
            for (i, h) in second {
                assert_eq!(take(&t, None, h).unwrap(), [10 + i]);
            }
        });
    }

    /// Parking spots under a full table: one thread frees the only index
    /// into its spot while another allocates from its own; whichever way
    /// it goes, nothing is lost: once both are done the index is free for
    /// anyone, and a live handle is never handed out twice. In each flavour
    /// (the fast halves: the freer parks through `take_parking`).
    #[test]
    fn loom_parked_index_is_found_by_a_full_table() {
        for (name, put, take) in FLAVOURS {
            crate::sync::model(
                &format!("registry: park vs allocate, full table ({name})"),
                move || {
                    let t = table(1);
                    let h = put(&t, None, &[1]).unwrap();
                    let freer = {
                        let t = Arc::clone(&t);
                        thread::spawn(move || {
                            assert_eq!(take(&t, Some(&Spot::fixed(0)), h).unwrap(), [1])
                        })
                    };
                    let got = put(&t, Some(&Spot::fixed(1)), &[2]);
                    freer.join().unwrap();
                    let h2 = match got {
                        Ok(h2) => h2,
                        Err(Error::Exhausted(_)) => put(&t, None, &[2]).unwrap(),
                        Err(e) => panic!("{e}"),
                    };
                    assert_ne!(h, h2);
                    assert!(matches!(
                        put(&t, Some(&Spot::fixed(0)), &[3]),
                        Err(Error::Exhausted(_))
                    ));
                    assert_eq!(take(&t, None, h2).unwrap(), [2]);
                },
            );
        }
    }

    /// Three threads, two spots (the third thread has none, as threads
    /// beyond SPOTS do), a main thread filling the first chunk meanwhile:
    /// every value comes back to its owner.
    #[test]
    fn loom_three_threads_two_spots() {
        crate::sync::model("registry: 3 threads, 2 spots, 2 chunks", || {
            let t = table(CAPACITY);
            let threads: Vec<_> = (0..3u32)
                .map(|i| {
                    let t = Arc::clone(&t);
                    thread::spawn(move || {
                        let spot = (i < SPOTS as u32).then(|| Spot::fixed(i as usize));
                        let h = put(&t, spot.as_ref(), &[i]).unwrap();
                        assert_eq!(take(&t, spot.as_ref(), h).unwrap(), [i]);
                    })
                })
                .collect();
            let h = put(&t, None, &[9]).unwrap();
            for j in threads {
                j.join().unwrap();
            }
            assert_eq!(take(&t, None, h).unwrap(), [9]);
            assert_eq!(t.live(), 0);
        });
    }

    /// The owner of a spot takes its parked slot back (plain reads and
    /// writes of its spot, then PARKED -> BUSY) while a full table's
    /// allocation on another thread takes it from the spot: exactly one
    /// gets the slot, the other is refused EXHAUSTED, and the value each
    /// put in comes back (with the owner's exchange made a plain store,
    /// both get it: the model fails). In each flavour (the fast halves:
    /// the owner's parking and taking back inline).
    #[test]
    fn loom_owner_and_full_table_race_for_a_parked_slot() {
        for (name, put, take) in FLAVOURS {
            crate::sync::model(&format!("registry: unpark vs steal ({name})"), move || {
                let t = table(1);
                let h = put(&t, None, &[1]).unwrap();
                assert_eq!(take(&t, Some(&Spot::fixed(0)), h).unwrap(), [1]);
                let owner = {
                    let t = Arc::clone(&t);
                    thread::spawn(move || {
                        let spot = Spot::fixed(0);
                        let got = put(&t, Some(&spot), &[2]);
                        // Taken back, or stolen: then the spot is empty and the
                        // owner parks its next free there again.
                        got.map(|h| (h, take(&t, Some(&spot), h).unwrap()))
                    })
                };
                let thief = put(&t, Some(&Spot::fixed(1)), &[3]);
                let stolen = thief.as_ref().map(|&h| (h, take(&t, None, h).unwrap()));
                let owned = owner.join().unwrap();
                match (owned, stolen) {
                    (Ok((_, v)), Err(Error::Exhausted(_))) => assert_eq!(v, [2]),
                    (Err(Error::Exhausted(_)), Ok((_, v))) => assert_eq!(v, [3]),
                    // Both, one after the other (the first freed it in time).
                    (Ok((a, v)), Ok((b, w))) => {
                        assert_ne!(a, b);
                        assert_eq!((v, w), (vec![2], vec![3]));
                    }
                    (a, b) => panic!("{a:?} {b:?}"),
                }
                assert_eq!(t.live(), 0);
                let h = put(&t, None, &[4]).unwrap();
                assert_eq!(take(&t, None, h).unwrap(), [4]);
            });
        }
    }

    /// Two threads each running two lives through their own spot while the
    /// other does: values never cross, indices are reused, not leaked.
    #[test]
    fn loom_two_threads_insert_and_consume() {
        crate::sync::model("registry: 2 threads x 2 lives", || {
            let t = table(2);
            let threads: Vec<_> = (0..2u32)
                .map(|i| {
                    let t = Arc::clone(&t);
                    thread::spawn(move || {
                        for life in 0..2 {
                            let spot = Some(&Spot::fixed(i as usize));
                            let h = put(&t, spot, &[i, life]).unwrap();
                            assert_eq!(t.peek(h), Some(2));
                            assert_eq!(take(&t, spot, h).unwrap(), [i, life]);
                        }
                    })
                })
                .collect();
            for j in threads {
                j.join().unwrap();
            }
            assert_eq!(t.live(), 0);
        });
    }
}
