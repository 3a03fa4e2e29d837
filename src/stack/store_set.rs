//! The set of store ids present on one thread's stack, so that "is this store
//! paused deeper down?" costs O(1) whatever the depth.
//!
//! Open addressing with linear probing. The owner sizes it from its entry
//! capacity ([`StoreSet::reserve_for`]: at most 5/8 full once every entry
//! it can hold has a store of its own; usually much less, since most
//! entries' stores are not all distinct and most stacks are not full), so an insert never needs a room test
//! of its own and the set keeps no count. Ids leave the set in the reverse
//! order they entered it (entries leave the stack from the top), so removal
//! just clears the slot an id was put in: no id still present has a probe
//! run crossing a slot filled after it.
//!
//! Slot 0 is a scratch slot, never probed: an entry that put no id in the
//! set (a nested entry of the store below it) holds [`NO_SLOT`] = 0, and
//! clearing it writes 0 there, so that removal needs no test.
//!
//! The hash is multiply-shift, `(id * a) >> (64 - log2(slots))`, with a
//! multiplier `a` each table draws afresh ([`good_multiplier`]): an odd
//! number, different from one table to the next (threads, growths,
//! processes), kept only if it spreads ids that are close together
//! ([`spreads_close_ids`]: then ids fewer than slots / 5 apart, such as
//! those `storectx_store_id_new` hands out, never share a home). For a
//! random odd `a`, two distinct ids share a home slot with probability at
//! most 2 / slots (Dietzfelbinger, Hagerup, Katajainen and Penttonen, "A
//! reliable randomized algorithm for the closest-pair problem",
//! J. Algorithms 25, 1997; a short proof is in Morin's "Open Data
//! Structures", section 5.1.1); keeping only the multipliers that spread
//! close ids loosens that bound by the share kept, and the tests measure
//! about 1 / slots for pairs far apart (`tests::no_pair_of_ids_collides_on_most_draws`).
//! So no id, and no pair of ids, costs more than another by construction:
//! a collision, which costs one probe step, is a draw of the table's, not
//! a property of the ids (0.2's fixed multiplier made some pairs collide on
//! every thread of every process, and let crafted ids make lookups
//! O(depth)).
//!
//! Multiply-shift is only 2-independent, and linear probing needs more for
//! its expected O(1) on every key set (Patrascu and Thorup, "On the
//! k-independence required by linear probing and minwise independence",
//! ICALP 2010): an arithmetic run of ids (addresses of one array, pages)
//! whose stride a draw maps close to a multiple of the table piles up, and
//! an adversarial round measured 1-3% of threads probing 8 to 160 slots per
//! id with such ids. So a push whose probe goes far
//! ([`StoreSet::probes_far`]: more than 2 log2(slots) slots) redraws the
//! multiplier and re-inserts the stack's ids ([`StoreSet::redraw`], at most
//! [`MAX_REDRAWS`] times per table size, out of line: nothing on the path
//! of an id whose home slot is free).

use std::sync::atomic::{AtomicU64, Ordering};

/// A set of nonzero `u64` store ids with LIFO removal by slot.
#[derive(Debug)]
pub(crate) struct StoreSet {
    /// `slots[0]` is the scratch slot; `slots[1..]` the table, 0 marking an
    /// empty slot, its length 0 or a power of two (`mask + 1`).
    slots: Vec<u64>,
    /// `entry[i]`: the index (in its stack) of the entry that put the id of
    /// table slot `i` (`slots[1 + i]`) there, so that the depth of a paused
    /// store, which a refusal names, is found without scanning the stack.
    /// (Indexed like the table, not like `slots`: the refusal's probe then
    /// reads it at the index it probed.) As long as `slots`.
    entry: Vec<u32>,
    /// Table length - 1 (0 for no table).
    mask: usize,
    /// 64 - log2(table length): how far `home` shifts the hash.
    shift: u32,
    /// The table's odd multiplier ([`good_multiplier`]); 0 without a table.
    multiplier: u64,
    /// How many more times a push's far probe may redraw the multiplier
    /// ([`StoreSet::redraw`]) before the table keeps the one it has:
    /// [`MAX_REDRAWS`] per table size, 0 for a fixed multiplier (testing).
    redraws_left: u32,
    /// The probe distance past which a push's insert is far: 2 log2(table
    /// length) while `redraws_left` is not 0, `usize::MAX` after (one
    /// compare on the collision path, no register held for it).
    far: usize,
}

const MIN_SLOTS: usize = 16;
/// The slot of an entry that put no id in the set (a nested entry of the
/// same store as the entry below it): the scratch slot.
pub(crate) const NO_SLOT: u32 = 0;

impl Default for StoreSet {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreSet {
    /// An empty set with no table; allocates in [`StoreSet::reserve_for`].
    pub(crate) const fn new() -> Self {
        StoreSet {
            slots: Vec::new(),
            entry: Vec::new(),
            mask: 0,
            shift: 64,
            multiplier: 0,
            redraws_left: 0,
            far: usize::MAX,
        }
    }

    /// The table's first slot's index in `slots`: home `h` is `slots[1 + h]`.
    #[inline(always)]
    fn home(&self, id: u64) -> usize {
        // Multiply-shift: the high bits of the product are well mixed.
        // (`shift` is 64 only without a table, which callers rule out.)
        (id.wrapping_mul(self.multiplier) >> (self.shift & 63)) as usize
    }

    /// [`StoreSet::home`] from the multiplier and shift read anew (volatile
    /// reads): the compiler cannot reuse a home computed earlier, nor keep
    /// one in a register for this (see `insert_in`).
    #[inline(always)]
    fn home_again(&self, id: u64) -> usize {
        // SAFETY: references to fields of `self`: valid, aligned.
        let (multiplier, shift) = unsafe {
            (
                std::ptr::read_volatile(&self.multiplier),
                std::ptr::read_volatile(&self.shift),
            )
        };
        (id.wrapping_mul(multiplier) >> (shift & 63)) as usize
    }

    /// The id in table slot `i` (`i <= mask`).
    #[inline(always)]
    fn at(&self, i: usize) -> u64 {
        debug_assert!(i <= self.mask && self.slots.len() == self.mask + 2);
        // SAFETY: `i <= mask` (a home is below the table length, and every
        // probe step is masked), and `slots` holds `mask + 2` slots while a
        // table exists (`reserve_for`), so `1 + i` is in bounds.
        unsafe { *self.slots.get_unchecked(1 + i) }
    }

    /// The number of ids the table holds at most 5/8 full: what the owner
    /// compares with its entry capacity.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        if self.slots.is_empty() {
            0
        } else {
            (self.mask + 1) / 8 * 5
        }
    }

    /// Gives the table multiplier `m` (made odd) and `redraws` redraws
    /// left, emptied: the caller re-inserts its ids (tests).
    #[cfg(test)]
    pub(crate) fn force_multiplier(&mut self, m: u64, redraws: u32) {
        self.multiplier = m | 1;
        self.redraws_left = redraws;
        self.far = self.far_limit();
        self.slots.fill(0);
    }

    /// The table's multiplier and redraws left (tests).
    #[cfg(test)]
    pub(crate) fn draw_state(&self) -> (u64, u32) {
        (self.multiplier, self.redraws_left)
    }

    /// Whether table slot `slot` (as `insert_slot` answers it) holds `id`,
    /// put there by entry `entry`, and `id`'s probe reaches it from its
    /// home without crossing an empty slot (tests: an entry's recorded slot
    /// after growths, redraws and resumes).
    #[cfg(test)]
    pub(crate) fn holds(&self, slot: u32, id: u64, entry: usize) -> bool {
        let i = (slot as usize).wrapping_sub(1);
        if slot == NO_SLOT || i > self.mask || self.slots[slot as usize] != id {
            return false;
        }
        let mut at = self.home(id);
        while at != i {
            if self.at(at) == 0 {
                return false;
            }
            at = (at + 1) & self.mask;
        }
        self.entry[i] as usize == entry
    }

    /// Number of ids in the set (O(table): tests and checks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().skip(1).filter(|&&s| s != 0).count()
    }

    /// Bytes of its table (tests).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u64>()
            + self.entry.capacity() * std::mem::size_of::<u32>()
    }

    /// True when the set holds no id.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is in the set.
    #[inline]
    pub(crate) fn contains(&self, id: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mut i = self.home(id);
        loop {
            match self.at(i) {
                0 => return false,
                s if s == id => return true,
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// The index of the entry that put `id` in the set (the lowest entry
    /// of its store), `None` if `id` is not in the set.
    #[cfg(test)]
    pub(crate) fn entry_of(&self, id: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        // SAFETY: the set has a table (tested just above).
        unsafe { self.entry_of_in_table(id) }
    }

    /// [`StoreSet::entry_of`] of a set known to have a table (its owner
    /// has an entry): the refusal of a paused store asks this, and a hit
    /// is tested first.
    ///
    /// # Safety
    /// The set has a table (`reserve_for` ran).
    #[inline(always)]
    pub(crate) unsafe fn entry_of_in_table(&self, id: u64) -> Option<usize> {
        debug_assert!(!self.slots.is_empty());
        // 0 marks an empty slot: never an id of the set.
        if id == 0 {
            return None;
        }
        let mut i = self.home(id);
        loop {
            // A hit is tested first (the refusal of a paused store asks).
            let s = self.at(i);
            if s == id {
                // SAFETY: as in `at`: `i <= mask` and `entry` is as long
                // as `slots`.
                return Some(unsafe { *self.entry.get_unchecked(i) } as usize);
            }
            if s == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `id`, put there by the entry of index `entry`, and answers its
    /// slot, or `None` if it was present. The owner keeps the set sized for
    /// its entries ([`StoreSet::reserve_for`]), so there is always an empty
    /// slot to end the probe.
    #[inline(always)]
    pub(crate) fn insert_slot(&mut self, id: u64, entry: u32) -> Option<u32> {
        self.insert_in::<false>(id, entry)
    }

    /// [`StoreSet::insert_slot`] for a push, which also answers `None`
    /// (nothing inserted) where the probe went far
    /// ([`StoreSet::probes_far`]) and the table may still redraw: the
    /// owner then calls [`StoreSet::would_probe_far`] and
    /// [`StoreSet::redraw`] out of line and pushes again. Costs nothing
    /// where the id's home slot is free.
    #[inline(always)]
    pub(crate) fn insert_slot_near(&mut self, id: u64, entry: u32) -> Option<u32> {
        self.insert_in::<true>(id, entry)
    }

    #[inline(always)]
    fn insert_in<const NEAR: bool>(&mut self, id: u64, entry: u32) -> Option<u32> {
        debug_assert!(id != 0 && !self.slots.is_empty());
        let mut i = self.home(id);
        let mut s = self.at(i);
        if s == 0 {
            return Some(self.put(i, id, entry));
        }
        loop {
            if s == id {
                return None;
            }
            // The mask is read again at each step (a volatile read, which
            // the compiler keeps in the loop): held in a register, it made
            // the install export save and restore one, and a collision
            // costs 2 instructions fewer this way (BENCHMARKS.md).
            // SAFETY: a reference to a field of `self`: valid, aligned.
            i = (i + 1) & unsafe { std::ptr::read_volatile(&self.mask) };
            s = self.at(i);
            if s == 0 {
                break;
            }
        }
        let slot = self.put(i, id, entry);
        // Tested once the slot is written (the registers the write used are
        // free then), with the home hashed again from fields read anew
        // (volatile reads) rather than kept: held across the loop, it made
        // the install export save and restore four registers, +7
        // instructions on every install, collision or not.
        if NEAR && self.probes_far(i.wrapping_sub(self.home_again(id)) & self.mask) {
            // SAFETY: `slot` was answered by `put` just now.
            unsafe { self.clear_slot(slot) };
            return None;
        }
        Some(slot)
    }

    /// Writes `id`, put there by the entry of index `entry`, in the empty
    /// table slot `i` (`i <= mask`) and answers its slot, `1 + i`.
    #[inline(always)]
    fn put(&mut self, i: usize, id: u64, entry: u32) -> u32 {
        debug_assert!(i <= self.mask && self.at(i) == 0);
        // SAFETY: `i <= mask` and the table has fewer than 2^31 slots
        // (`reserve_for`), so the slot, `1 + i`, fits in 31 bits: the
        // compiler then needs no zero-extension to store it in an entry's
        // `slot`/`borrows` word.
        unsafe { std::hint::assert_unchecked(i < (1 << 31) - 1) };
        // SAFETY: as in `at`: `1 + i` is a slot of the table, and `entry`
        // is as long as `slots` (`reserve_for`), so `i` is in it.
        unsafe {
            *self.slots.get_unchecked_mut(1 + i) = id;
            *self.entry.get_unchecked_mut(i) = entry;
        }
        // At most 2^31 slots (reserve_for): never wraps to NO_SLOT.
        (1 + i) as u32
    }

    /// Whether an insert that found its empty slot `distance` slots past its
    /// home went far: more than 2 log2(slots) (10 in a thread's first table
    /// of 32 slots), while the table has redraws left. Ids spread at random
    /// rarely go that far; a multiplier that piles up the ids at hand (an
    /// arithmetic run of ids whose stride it maps close to a multiple of
    /// the table: addresses of one array, pages) does, and is redrawn.
    #[inline(always)]
    fn probes_far(&self, distance: usize) -> bool {
        distance > self.far
    }

    /// Whether [`StoreSet::insert_slot_near`] of `id` would refuse for a
    /// far probe (false where `id` is present or the set has no table).
    #[cold]
    pub(crate) fn would_probe_far(&self, id: u64) -> bool {
        if self.slots.is_empty() || id == 0 {
            return false;
        }
        let home = self.home(id);
        let mut i = home;
        loop {
            match self.at(i) {
                0 => return self.probes_far(i.wrapping_sub(home) & self.mask),
                s if s == id => return false,
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// What `far` is for the table as it is.
    fn far_limit(&self) -> usize {
        if self.redraws_left == 0 {
            usize::MAX
        } else {
            2 * (self.mask + 1).trailing_zeros() as usize
        }
    }

    /// Empties the table and draws it a new multiplier (one redraw fewer
    /// left, of [`MAX_REDRAWS`] per table size); the caller re-inserts its
    /// ids in stack order and records their new slots, as after
    /// [`StoreSet::reserve_for`]. Allocates nothing.
    #[cold]
    pub(crate) fn redraw(&mut self) {
        debug_assert!(self.redraws_left != 0 && !self.slots.is_empty());
        self.redraws_left = self.redraws_left.saturating_sub(1);
        self.far = self.far_limit();
        self.slots.fill(0);
        self.multiplier = good_multiplier(self.slots.as_ptr() as usize, self.mask + 1);
    }

    /// Removes the id put at `slot`, which must be the most recently
    /// inserted id still present, or [`NO_SLOT`] (writes the scratch slot).
    ///
    /// # Safety
    /// `slot` is [`NO_SLOT`] or a slot `insert_slot` answered since the last
    /// [`StoreSet::reserve_for`], and the set has a table (its owner has an
    /// entry, whose slot this is).
    #[inline(always)]
    pub(crate) unsafe fn clear_slot(&mut self, slot: u32) {
        debug_assert!((slot as usize) < self.slots.len());
        // SAFETY: by this function's contract `slot` is below the length
        // (the scratch slot 0 or `1 + i` for a table slot `i`).
        unsafe { *self.slots.get_unchecked_mut(slot as usize) = 0 };
    }

    /// Empties the set and sizes it for `n` ids at most 5/8 full (with
    /// linear probing, a miss then probes 4 slots on average, a hit 1.8);
    /// the caller re-inserts its ids in stack order and records their new
    /// slots. 5/8 rather than 1/2 keeps heap bytes per entry below 96 at
    /// every depth (BENCHMARKS.md, "Memory").
    #[cold]
    pub(crate) fn reserve_for(&mut self, n: usize) {
        assert!(self.try_reserve_for(n), "no memory for the store set");
    }

    /// [`StoreSet::reserve_for`], or `false` with the set unchanged when
    /// the memory for its new table cannot be had (or it would need 2^31
    /// slots): the caller refuses its push rather than abort.
    #[cold]
    pub(crate) fn try_reserve_for(&mut self, n: usize) -> bool {
        let mut size = MIN_SLOTS.max(self.mask + 1);
        while size / 8 * 5 < n {
            if size >= 1 << 30 {
                return false; // 2^31 slots or more: never needed
            }
            size *= 2;
        }
        let (mut slots, mut entry) = (Vec::new(), Vec::new());
        if slots.try_reserve_exact(size + 1).is_err() || entry.try_reserve_exact(size + 1).is_err()
        {
            return false;
        }
        slots.resize(size + 1, 0);
        entry.resize(size + 1, 0);
        (self.multiplier, self.redraws_left) = match crate::testing::fixed_hash_multiplier() {
            Some(fixed) => (fixed | 1, 0),
            None => (good_multiplier(slots.as_ptr() as usize, size), MAX_REDRAWS),
        };
        self.slots = slots;
        self.entry = entry;
        self.mask = size - 1;
        self.shift = 64 - size.trailing_zeros();
        self.far = self.far_limit();
        true
    }
}

/// The largest partial quotient [`spreads_close_ids`] lets a multiplier
/// have (see there).
const MAX_QUOTIENT: u128 = 3;

/// Draws after which [`good_multiplier`] gives up and takes 0.2's fixed
/// multiplier, whose quotients all pass (a safety net for tables of
/// hundreds of millions of slots: the draws needed grow with the table,
/// about 1,000 at 32,768 slots, each a few dozen instructions).
const MAX_DRAWS: u32 = 1 << 20;

/// Redraws a table may make ([`StoreSet::redraw`]) before it keeps its
/// multiplier, per table size: a bound on the rehashing a stack's ids can
/// cause (each redraw re-inserts them all), so a push costs O(1) amortized
/// whatever the ids.
pub(crate) const MAX_REDRAWS: u32 = 8;

/// [`fresh_multiplier`] drawn until one [`spreads_close_ids`] (about 17
/// draws for a thread's first table of 32 slots, 100 at 1,024, 200 at
/// 2,048, 1,000 at 32,768, each a splitmix64 and a few subtractions per
/// quotient: `tests::good_multipliers_spread_consecutive_ids` prints the
/// draws of 10 tables of each size).
fn good_multiplier(table: usize, slots: usize) -> u64 {
    for _ in 0..MAX_DRAWS {
        let a = fresh_multiplier(table);
        if spreads_close_ids(a, slots as u64) {
            return a;
        }
    }
    0x9E37_79B9_7F4A_7C15
}

/// Whether ids close together (consecutive ids from
/// `storectx_store_id_new`, objects of one array) get well spread homes
/// under multiplier `a` in a table of `slots` slots: every partial quotient
/// of the continued fraction of a / 2^64, up to and including the one
/// that takes the convergents' denominator to slots or more, is at most
/// [`MAX_QUOTIENT`]. Then two ids
/// `d` apart, `d` below slots / (MAX_QUOTIENT + 2), never share a home
/// (||d a / 2^64|| >= 1 / ((MAX_QUOTIENT + 2) d) > 1 / slots, the
/// convergents' best-approximation property), and consecutive ids filling
/// a table 5/8 probe 1.03 to 1.06 slots each
/// (`tests::good_multipliers_spread_consecutive_ids`; 0.2's Fibonacci
/// multiplier, all of whose partial quotients are 1: 1.02; multipliers
/// drawn with no test: a mean of 3.5 over 300 draws at 2,048 slots, some
/// draws over 500, and with quotients up to 8 allowed 1.08 to 1.15, in a
/// simulation). A random multiplier passes each quotient with probability
/// about 0.68 (Gauss-Kuzmin: a quotient exceeds 3 with probability
/// log2(1 + 1/4)).
fn spreads_close_ids(a: u64, slots: u64) -> bool {
    // a / 2^64 = [0; t1, t2, ...]: Euclid's algorithm on (n, d) = (2^64, a),
    // each quotient t = n / d found by at most MAX_QUOTIENT subtractions (a
    // larger one refuses), kept as n - d so that 2^64 needs no 128 bits; the
    // convergents' denominators by q_next = t q + q_prev (below 2^33: q <
    // slots <= 2^31, t <= 3).
    let (mut n_less_d, mut d) = (a.wrapping_neg(), a);
    let (mut q_prev, mut q) = (0u64, 1u64);
    while d != 0 {
        let (mut r, mut t) = (n_less_d, 1u64);
        while r >= d {
            if u128::from(t) == MAX_QUOTIENT {
                return false;
            }
            r -= d;
            t += 1;
        }
        let q_next = t * q + q_prev;
        if q_next >= slots {
            return true;
        }
        (q_prev, q) = (q, q_next);
        (n_less_d, d) = (d - r, r);
    }
    true
}

/// A fresh odd multiplier: the splitmix64 finalizer (Steele, Lea and Flood,
/// "Fast splittable pseudorandom number generators", OOPSLA 2014) of a
/// process-wide draw counter mixed with the table's address and the address
/// of a static (which ASLR moves from one process to the next). Spread, not
/// secrecy, is what the set needs: no syscall, no lock and no thread-local
/// is touched, so a table can be made anywhere a thread's first call can
/// happen (its TLS teardown included), and under valgrind, which keeps
/// addresses fixed, the draws and so the instruction counts are the same
/// from one run to the next.
fn fresh_multiplier(table: usize) -> u64 {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let n = DRAWS.fetch_add(1, Ordering::Relaxed);
    let here = &DRAWS as *const AtomicU64 as u64;
    let mut z = (n ^ (table as u64).rotate_left(17) ^ here.rotate_left(41))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Drives the set the way a stack does (push inserts, pop clears the
    /// newest slot, growth re-inserts in order) and compares with a HashSet.
    #[test]
    fn behaves_like_a_hash_set_under_stack_discipline() {
        let mut set = StoreSet::new();
        let mut stack: Vec<(u64, u32)> = Vec::new();
        let mut model: HashMap<u64, usize> = HashMap::new(); // id -> entries
        let mut x: u64 = 0x1234_5678;
        // Under Miri (~1000x slower) a shorter run: still hundreds of
        // pushes and pops, the set's growth steps and long probe runs.
        let steps = if cfg!(miri) { 400 } else { 200_000 };
        for _ in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // a small id range forces collisions and long probe runs
            let id = x % 700 + 1;
            if x & 0x300 != 0 && stack.len() < 600 {
                if set.capacity() < stack.len() + 1 {
                    set.reserve_for(stack.len() + 1);
                    for (k, (sid, slot)) in stack.iter_mut().enumerate() {
                        if *slot != NO_SLOT {
                            *slot = set.insert_slot(*sid, k as u32).unwrap_or(NO_SLOT);
                        }
                    }
                }
                let slot = set.insert_slot(id, stack.len() as u32).unwrap_or(NO_SLOT);
                stack.push((id, slot));
                *model.entry(id).or_default() += 1;
            } else if let Some((id, slot)) = stack.pop() {
                // SAFETY: `slot` was answered by the set since its last
                // reserve_for (which re-answers every live one) or NO_SLOT.
                unsafe { set.clear_slot(slot) };
                let n = model.get_mut(&id).expect("present");
                *n -= 1;
                if *n == 0 {
                    model.remove(&id);
                }
            }
            assert_eq!(set.len(), model.len());
            if x & 0xff == 0 {
                for probe in 1..=700 {
                    assert_eq!(
                        set.contains(probe),
                        model.contains_key(&probe),
                        "id {probe}"
                    );
                    let lowest = stack.iter().position(|&(sid, _)| sid == probe);
                    assert_eq!(set.entry_of(probe), lowest, "id {probe}");
                }
            }
        }
    }

    /// Sized for n ids, the table is at most 5/8 full with n ids.
    #[test]
    fn reserve_for_keeps_the_table_at_most_five_eighths_full() {
        let mut set = StoreSet::new();
        assert_eq!(set.capacity(), 0);
        // (Under Miri, ~1000x slower, without the largest table: its
        // multiplier's draws and its 2^17 slots took most of the test.)
        let sizes: &[usize] = if cfg!(miri) {
            &[1, 10, 11, 1000, 1025, 1280]
        } else {
            &[1, 10, 11, 1000, 1025, 1280, 65_537]
        };
        for &n in sizes {
            set.reserve_for(n);
            assert!(set.capacity() >= n && (set.mask + 1) * 5 >= 8 * n, "{n}");
            assert!(set.capacity() < 2 * n.max(10), "{n}: not more than needed");
        }
    }

    /// A table it cannot have is refused with the set unchanged (the
    /// stack then refuses its push: no abort).
    #[test]
    fn try_reserve_for_refuses_and_changes_nothing() {
        let mut set = StoreSet::new();
        set.reserve_for(10);
        let slot = set.insert_slot(7, 0).unwrap();
        assert!(!set.try_reserve_for(1 << 31));
        assert!(!set.try_reserve_for(usize::MAX / 2));
        assert_eq!((set.capacity(), set.entry_of(7)), (10, Some(0)));
        // SAFETY: answered by the set above, no reserve since.
        unsafe { set.clear_slot(slot) };
        assert!(set.is_empty());
    }

    /// Each draw is odd (multiply-shift needs it) and differs from the
    /// others: threads and growths do not share a hash.
    #[test]
    fn fresh_multipliers_are_odd_and_all_differ() {
        let n = if cfg!(miri) { 256 } else { 4096 };
        let draws: Vec<u64> = (0..n).map(|_| fresh_multiplier(0x1000)).collect();
        assert!(draws.iter().all(|m| m & 1 == 1));
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert_eq!(distinct.len(), draws.len());
    }

    /// No pair of ids shares a home slot on most tables: over 4,000 draws
    /// (20 under Miri, rates untested there) of a thread's first table (32 slots), each pair
    /// below collides on at most 10% of them (for uniform odd multipliers
    /// the bound is 2/32 = 6.25%; the ids far apart measure about 1/32).
    /// The pairs are the worst for the old fixed multiplier (they shared a
    /// home at every table size, on every thread), close ids (what
    /// `storectx_store_id_new` hands out: never together, by the draw's
    /// test) and page-aligned addresses (what hosts that use pointers as
    /// ids pass).
    #[test]
    fn no_pair_of_ids_collides_on_most_draws() {
        let fib = 0x9E37_79B9_7F4A_7C15u64;
        let cinv = crate::stack::adversary_tests::inverse(fib);
        let pairs = [
            (cinv, cinv.wrapping_mul(2), None),
            (cinv, 0u64.wrapping_sub(cinv), None),
            (1, 2, Some(0)),
            (41, 47, Some(0)),
            (0x7f00_0000_1000, 0x7f00_0000_2000, None),
            (0x7f00_0000_1000, 0x7f00_0001_1000, None),
            (1 << 40, 1 << 41, None),
        ];
        // Under Miri (~1000x slower) 20 draws: the code runs, the rates are
        // not tested (too few draws), the close pairs still never collide.
        let draws = if cfg!(miri) { 20 } else { 4000 };
        let mut set = StoreSet::new();
        set.reserve_for(MIN_SLOTS); // 32 slots
        assert_eq!(set.shift, 59);
        for (a, b, exactly) in pairs {
            let mut same = 0;
            for _ in 0..draws {
                set.multiplier = good_multiplier(&set as *const _ as usize, 32);
                same += usize::from(set.home(a) == set.home(b));
            }
            println!("ids {a:#x} and {b:#x}: same home on {same} of {draws} draws");
            match exactly {
                Some(n) => assert_eq!(same, n, "{a:#x}, {b:#x}"),
                None => assert!(
                    cfg!(miri) || same * 10 <= draws,
                    "{a:#x}, {b:#x}: same home {same} of {draws}"
                ),
            }
        }
        // The old multiplier put the first two pairs in one home always.
        let home = |id: u64| id.wrapping_mul(fib) >> 59;
        assert_eq!((home(cinv), home(cinv.wrapping_mul(2))), (0, 0));
    }

    /// Consecutive ids filling a table 5/8 (a stack of stores from
    /// `storectx_store_id_new`) are spread by every good multiplier: no two
    /// fewer than slots / 5 apart share a home, and they probe at most 1.15
    /// slots each on average (1.03 to 1.06: printed; 0.2's Fibonacci
    /// multiplier 1.02). The draws needed per table are printed too.
    #[test]
    fn good_multipliers_spread_consecutive_ids() {
        let sizes: &[usize] = if cfg!(miri) {
            &[32]
        } else {
            &[32, 1024, 2048, 32768]
        };
        for &slots in sizes {
            let (mut probes, mut tries, rounds) = (0usize, 0u64, if cfg!(miri) { 2 } else { 10 });
            let n = slots / 8 * 5;
            for round in 0..rounds {
                let mut set = StoreSet::new();
                set.reserve_for(n);
                assert_eq!(set.mask + 1, slots);
                // good_multiplier's loop, counting its draws.
                set.multiplier = loop {
                    tries += 1;
                    let a = fresh_multiplier(0);
                    if spreads_close_ids(a, slots as u64) {
                        break a;
                    }
                };
                let start = 1000 + round as u64 * 7919;
                let homes: Vec<usize> = (0..n as u64).map(|k| set.home(start + k)).collect();
                let near = slots / 5;
                for (i, h) in homes.iter().enumerate() {
                    for (j, g) in homes.iter().enumerate().skip(i + 1).take(near.max(1) - 1) {
                        assert_ne!(h, g, "{slots} slots: ids {i} and {j} share a home");
                    }
                }
                for (k, id) in (0..n as u64).map(|k| start + k).enumerate() {
                    set.insert_slot(id, k as u32).expect("distinct ids");
                    let mut i = set.home(id);
                    probes += 1;
                    while set.at(i) != id {
                        i = (i + 1) & set.mask;
                        probes += 1;
                    }
                }
            }
            let mean = probes as f64 / (n * rounds) as f64;
            println!("{slots} slots, {n} consecutive ids: {mean:.3} probes per id, {tries} draws");
            // (The mean is a statistic over 10 tables: under Miri, with 2,
            // only the close-ids guarantee above is asserted; one table can
            // probe 1.2.)
            assert!(
                cfg!(miri) || mean <= 1.15,
                "{slots} slots: {mean} probes per id"
            );
        }
    }

    /// The draw's test: 0.2's Fibonacci multiplier (all quotients 1) passes
    /// at every size; 1 and 2^64 / 3 (a first or second quotient far above
    /// 8: close ids pile up) fail.
    #[test]
    fn spreads_close_ids_keeps_the_golden_ratio_and_refuses_near_rationals() {
        for slots in [32, 1 << 20, 1 << 31] {
            assert!(spreads_close_ids(0x9E37_79B9_7F4A_7C15, slots));
            assert!(!spreads_close_ids(1, slots));
            assert!(!spreads_close_ids(0x5555_5555_5555_5555, slots));
        }
    }

    /// The test written the plain way: Euclid with 128-bit divisions.
    fn spreads_close_ids_by_division(a: u64, slots: u64) -> bool {
        let (mut n, mut d) = (1u128 << 64, u128::from(a));
        let (mut q_prev, mut q) = (0u128, 1u128);
        while d != 0 {
            let t = n / d;
            if t > MAX_QUOTIENT {
                return false;
            }
            let q_next = t * q + q_prev;
            if q_next >= u128::from(slots) {
                return true;
            }
            (q_prev, q) = (q, q_next);
            (n, d) = (d, n - t * d);
        }
        true
    }

    /// The subtracting test answers as the dividing one, for random odd
    /// multipliers (about a fifth pass at 32 slots), multipliers built
    /// from small quotients (all pass at some size), and the edges.
    #[test]
    fn spreads_close_ids_agrees_with_euclid_by_division() {
        let mut x = 0x243F_6A88_85A3_08D3u64;
        let n = if cfg!(miri) { 300 } else { 200_000 };
        let mut passed = 0;
        for k in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = if k % 2 == 0 { x | 1 } else { x | (3 << 62) | 1 };
            for slots in [32u64, 1024, 1 << 20, 1 << 31] {
                let want = spreads_close_ids_by_division(a, slots);
                assert_eq!(spreads_close_ids(a, slots), want, "{a:#x} at {slots} slots");
                passed += usize::from(want);
            }
        }
        assert!(passed > 0);
        for a in [
            1,
            3,
            u64::MAX,
            1 << 63 | 1,
            (1 << 62) + 1,
            0x9E37_79B9_7F4A_7C15,
        ] {
            for slots in [2u64, 32, 1 << 31] {
                let want = spreads_close_ids_by_division(a, slots);
                assert_eq!(spreads_close_ids(a, slots), want, "{a:#x} at {slots} slots");
            }
        }
    }

    /// A fixed multiplier (testing builds) is what new tables hash with, so
    /// that tests can craft collisions. (The same value as the adversary
    /// tests fix: tests run in parallel and the setting is process-wide.)
    #[test]
    fn a_fixed_multiplier_is_what_new_tables_use() {
        let fib = 0x9E37_79B9_7F4A_7C15u64;
        crate::testing::fix_hash_multiplier(fib);
        let mut set = StoreSet::new();
        set.reserve_for(1);
        assert_eq!(set.multiplier, fib);
        let cinv = crate::stack::adversary_tests::inverse(fib);
        assert_eq!((set.home(cinv), set.home(cinv.wrapping_mul(2))), (0, 0));
    }

    #[test]
    fn empty_set_answers_without_allocating() {
        let set = StoreSet::new();
        assert!(!set.contains(7) && set.is_empty() && set.entry_of(7).is_none());
    }
}
