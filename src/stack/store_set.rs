//! The set of store ids present on one thread's stack, so that "is this store
//! paused deeper down?" costs O(1) whatever the depth.
//!
//! Open addressing with linear probing, kept at most a quarter full. Ids
//! leave the set in the reverse order they entered it (entries leave the
//! stack from the top), so removal just clears the slot an id was put in:
//! no id still present has a probe run crossing a slot filled after it.

/// A set of nonzero `u64` store ids with LIFO removal by slot.
#[derive(Debug)]
pub(crate) struct StoreSet {
    /// 0 marks an empty slot; length is 0 or a power of two.
    slots: Vec<u64>,
    len: usize,
    /// 64 - log2(slots.len()): how far `home` shifts the hash.
    shift: u32,
}

const MIN_SLOTS: usize = 16;
/// The slot of an entry that put no id in the set (a nested entry of the
/// same store as the entry below it).
pub(crate) const NO_SLOT: u32 = u32::MAX;

impl Default for StoreSet {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreSet {
    /// An empty set; allocates on first insert.
    pub(crate) const fn new() -> Self {
        StoreSet {
            slots: Vec::new(),
            len: 0,
            shift: 64,
        }
    }

    /// Number of ids in the set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when the set holds no id.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, id: u64) -> usize {
        // Fibonacci hashing: the high bits of the product are well mixed.
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The id in slot `i`. Slots are reached with `get`, never `[]`: the
    /// probes stay below the length by construction, and a lookup that
    /// cannot panic keeps the hot exports free of unwinding code (and of
    /// the stack frame that code needs).
    #[inline(always)]
    fn at(&self, i: usize) -> u64 {
        self.slots.get(i).copied().unwrap_or(0)
    }

    /// Whether `id` is in the set.
    #[inline]
    pub(crate) fn contains(&self, id: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(id);
        loop {
            match self.at(i) {
                0 => return false,
                s if s == id => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Whether one more insert needs a bigger table (see [`StoreSet::reset_for`]).
    #[inline]
    pub(crate) fn needs_grow(&self) -> bool {
        (self.len + 1) * 4 > self.slots.len()
    }

    /// Adds `id` and answers its slot, or `None` if it was present.
    /// The caller checked [`StoreSet::needs_grow`] first.
    #[inline]
    pub(crate) fn insert_slot(&mut self, id: u64) -> Option<u32> {
        debug_assert!(id != 0 && !self.needs_grow());
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = self.home(id);
        loop {
            match self.slots.get_mut(i) {
                Some(s) if *s == 0 => {
                    *s = id;
                    self.len += 1;
                    // At most 2^31 slots (reset_for): never NO_SLOT.
                    return Some(i as u32);
                }
                Some(s) if *s == id => return None,
                Some(_) => i = (i + 1) & mask,
                None => return None, // unreachable: i < len by construction
            }
        }
    }

    /// Removes the id put at `slot`, which must be the most recently
    /// inserted id still present; `NO_SLOT` removes nothing.
    #[inline]
    pub(crate) fn clear_slot(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = 0;
            self.len -= 1;
        }
    }

    /// Empties the set and sizes it for `n` ids; the caller re-inserts its
    /// ids in stack order and records their new slots.
    #[cold]
    pub(crate) fn reset_for(&mut self, n: usize) {
        let mut size = MIN_SLOTS.max(self.slots.len());
        while n * 4 > size {
            size *= 2;
        }
        assert!(size <= 1 << 31, "a store set never needs 2^31 slots");
        self.slots = vec![0; size];
        self.len = 0;
        self.shift = 64 - size.trailing_zeros();
    }
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
        let steps = if cfg!(miri) { 1_000 } else { 200_000 };
        for _ in 0..steps {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // a small id range forces collisions and long probe runs
            let id = x % 700 + 1;
            if x & 0x300 != 0 && stack.len() < 600 {
                if set.needs_grow() {
                    set.reset_for(stack.len() + 1);
                    for (sid, slot) in stack.iter_mut() {
                        if *slot != NO_SLOT {
                            *slot = set.insert_slot(*sid).unwrap_or(NO_SLOT);
                        }
                    }
                }
                let slot = set.insert_slot(id).unwrap_or(NO_SLOT);
                stack.push((id, slot));
                *model.entry(id).or_default() += 1;
            } else if let Some((id, slot)) = stack.pop() {
                set.clear_slot(slot);
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
                }
            }
        }
    }

    #[test]
    fn empty_set_answers_without_allocating() {
        let set = StoreSet::new();
        assert!(!set.contains(7) && set.is_empty());
    }
}
