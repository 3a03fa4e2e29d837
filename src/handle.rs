//! Guard handles: a 64-bit value naming one entry (or one pause) uniquely in
//! the process, so a handle survives migration of its entry to another thread
//! and can be validated on use.
//!
//! Layout: `number << 3 | tag`. Numbers are never reused; the tag keeps a
//! handle of one kind from being accepted as another; 0 is never valid.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a raw handle value stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Tag {
    /// An install guard whose entry was pushed.
    Install = 1,
    /// The no-op guard of an install onto the same store's async entry.
    NoopInstall = 2,
    /// A borrow of an entry.
    Borrow = 3,
    /// A pause guard.
    Pause = 4,
}

const TAG_BITS: u32 = 3;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// Encodes `number` (from a [`NumberSource`]) with its tag.
#[inline]
pub fn encode(tag: Tag, number: u64) -> u64 {
    (number << TAG_BITS) | tag as u64
}

/// The number inside `raw` if `raw` carries `tag`; `None` for any other value
/// (zeroed, forged with another tag, ...).
#[inline]
pub fn decode(raw: u64, tag: Tag) -> Option<u64> {
    let number = raw >> TAG_BITS;
    (raw & TAG_MASK == tag as u64 && number != 0).then_some(number)
}

/// Numbers are handed out to threads in blocks so that the hot path touches
/// only thread-local memory: one shared atomic add per `BLOCK` numbers.
const BLOCK: u64 = 1 << 16;
/// The highest number that still fits a handle next to its tag.
const LIMIT: u64 = u64::MAX >> TAG_BITS;
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

/// A per-thread source of process-unique, never-reused, nonzero numbers.
#[derive(Debug)]
pub struct NumberSource {
    next: u64,
    end: u64,
}

impl NumberSource {
    /// An empty source; it takes its first block on first use.
    pub const fn new() -> Self {
        NumberSource { next: 0, end: 0 }
    }

    /// The next unique number if the current block has one: never calls
    /// out (for fast paths that must not); `None` until [`Self::ensure`].
    #[inline(always)]
    pub fn try_next_number(&mut self) -> Option<u64> {
        self.has_next().then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Whether [`Self::try_next_number`] would succeed.
    #[inline(always)]
    pub fn has_next(&self) -> bool {
        self.next != self.end
    }

    /// Makes sure the next call to [`Self::try_next_number`] succeeds.
    #[inline]
    pub fn ensure(&mut self) {
        if !self.has_next() {
            self.refill();
        }
    }

    #[cold]
    fn refill(&mut self) {
        let start = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
        // 2^61 numbers at 10^9 a second last 73 years of one thread doing
        // nothing else; refuse to wrap rather than ever reuse a number.
        assert!(start < LIMIT - BLOCK, "storectx: entry numbers exhausted");
        self.next = start;
        self.end = start + BLOCK;
    }
}

impl Default for NumberSource {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_tag_check() {
        let raw = encode(Tag::Borrow, 42);
        assert_eq!(decode(raw, Tag::Borrow), Some(42));
        assert_eq!(decode(raw, Tag::Install), None);
        assert_eq!(decode(0, Tag::Install), None);
        assert_eq!(
            decode(Tag::Pause as u64, Tag::Pause),
            None,
            "number 0 is never valid"
        );
    }

    fn next_number(source: &mut NumberSource) -> u64 {
        source.ensure();
        source.try_next_number().expect("ensure leaves a number")
    }

    #[test]
    fn numbers_unique_across_threads() {
        let mut a = NumberSource::new();
        let first: Vec<u64> = (0..10).map(|_| next_number(&mut a)).collect();
        let other = std::thread::spawn(|| {
            let mut b = NumberSource::new();
            (0..10).map(|_| next_number(&mut b)).collect::<Vec<u64>>()
        })
        .join()
        .unwrap();
        assert!(first.iter().all(|n| *n != 0 && !other.contains(n)));
        assert!(first.windows(2).all(|w| w[0] < w[1]));
    }
}
