//! The set of store ids present on one thread's stack, so that "is this store
//! paused deeper down?" costs O(1) whatever the depth.
//!
//! Open addressing with linear probing and backward-shift deletion: no
//! tombstones, no allocation once grown, one multiply per lookup.

/// A set of nonzero `u64` store ids.
#[derive(Debug, Default)]
pub struct StoreSet {
    /// 0 marks an empty slot; length is 0 or a power of two.
    slots: Vec<u64>,
    len: usize,
}

const MIN_SLOTS: usize = 16;

impl StoreSet {
    /// An empty set; allocates on first insert.
    pub const fn new() -> Self {
        StoreSet {
            slots: Vec::new(),
            len: 0,
        }
    }

    /// Number of ids in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the set holds no id.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, id: u64) -> usize {
        // Fibonacci hashing: the high bits of the product are well mixed.
        let bits = self.slots.len().trailing_zeros();
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Whether `id` is in the set.
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(id);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == id => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Adds `id` (nonzero); no effect if present.
    #[inline]
    pub fn insert(&mut self, id: u64) {
        debug_assert_ne!(id, 0);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(id);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = id;
                    self.len += 1;
                    return;
                }
                s if s == id => return,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Removes `id`; no effect if absent.
    #[inline]
    pub fn remove(&mut self, id: u64) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut hole = self.home(id);
        loop {
            match self.slots[hole] {
                0 => return,
                s if s == id => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        // Shift back every later member of the probe run that may move into
        // the hole without ending up before its home slot.
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let s = self.slots[next];
            if s == 0 {
                break;
            }
            let home = self.home(s);
            let movable = if hole <= next {
                home <= hole || home > next
            } else {
                home <= hole && home > next
            };
            if movable {
                self.slots[hole] = s;
                hole = next;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    #[cold]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        self.len = 0;
        for id in old.into_iter().filter(|&id| id != 0) {
            self.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn behaves_like_a_hash_set() {
        let mut ours = StoreSet::new();
        let mut model = HashSet::new();
        let mut x: u64 = 0x1234_5678;
        for _ in 0..200_000 {
            // xorshift; small id range forces collisions and long probe runs
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = x % 300 + 1;
            if x & 0x100 == 0 {
                ours.insert(id);
                model.insert(id);
            } else {
                ours.remove(id);
                model.remove(&id);
            }
            assert_eq!(ours.len(), model.len());
        }
        for id in 1..=300 {
            assert_eq!(ours.contains(id), model.contains(&id), "id {id}");
        }
    }

    #[test]
    fn empty_set_answers_without_allocating() {
        let mut s = StoreSet::new();
        assert!(!s.contains(7));
        s.remove(7);
        assert!(s.is_empty());
    }
}
