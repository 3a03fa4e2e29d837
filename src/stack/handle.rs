//! Guard handles: a 64-bit value naming one entry (or one pause) uniquely in
//! the process, so a handle survives migration of its entry to another thread
//! and can be validated on use.
//!
//! Layout: `(number + offset) << 3 | tag`. Numbers are multiples of 4 and
//! never reused; each kind adds its own offset (0 to 3), so the handles of
//! one entry differ in more than their tag: rewriting a handle's kind bits
//! gives a value that names nothing (its number has another kind's residue),
//! never another live handle of the same entry. 0 is never valid.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a raw handle value stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Tag {
    /// An install guard whose entry was pushed.
    Install = 1,
    /// The no-op guard of an install onto the same store's async entry.
    NoopInstall = 2,
    /// A borrow of an entry.
    Borrow = 3,
    /// A pause guard.
    Pause = 4,
}

pub(super) const TAG_BITS: u32 = 3;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// Numbers step by this, leaving room for one offset per kind.
const STRIDE: u64 = 4;

/// What `tag` adds to a number before it is encoded.
#[inline(always)]
const fn offset(tag: Tag) -> u64 {
    tag as u64 - 1
}

/// Encodes `number` (from a [`NumberSource`]) as a handle of kind `tag`.
#[inline(always)]
pub(crate) fn encode(tag: Tag, number: u64) -> u64 {
    ((number + offset(tag)) << TAG_BITS) | tag as u64
}

/// The handle of kind `tag` of the number whose install handle is
/// `install` (`encode(Tag::Install, number)`): `encode(tag, number)`, one
/// add.
#[inline(always)]
pub(crate) fn rebase(install: u64, tag: Tag) -> u64 {
    debug_assert!(install & TAG_MASK == Tag::Install as u64);
    install + ((offset(tag) << TAG_BITS) | tag as u64) - Tag::Install as u64
}

/// The number inside `raw` if `raw` is a handle of kind `tag`; `None` for
/// any other value (zeroed, forged, of another kind or with its kind bits
/// rewritten).
#[inline]
pub(crate) fn decode(raw: u64, tag: Tag) -> Option<u64> {
    let shifted = raw >> TAG_BITS;
    let number = shifted.wrapping_sub(offset(tag));
    (raw & TAG_MASK == tag as u64 && number % STRIDE == 0 && number != 0 && number < LIMIT)
        .then_some(number)
}

/// The kind bits of `raw` (a [`Tag`] value if `raw` is a handle).
#[inline(always)]
pub(crate) fn tag_bits(raw: u64) -> u64 {
    raw & TAG_MASK
}

/// The number `raw` carries if it is a handle of kind `tag`, unchecked:
/// for a search by number (refusal paths), which finds nothing for a value
/// that names no entry. [`decode`] checks.
#[inline(always)]
pub(crate) fn number_if(raw: u64, tag: Tag) -> u64 {
    (raw >> TAG_BITS).wrapping_sub(offset(tag))
}

/// Numbers are handed out to threads in blocks so that the hot path touches
/// only thread-local memory: one shared atomic add per `BLOCK` numbers
/// (2^16 entries or pauses).
const BLOCK: u64 = STRIDE << 16;
/// Numbers stay below this, so that a number plus its largest offset still
/// fits a handle next to its tag.
const LIMIT: u64 = (u64::MAX >> TAG_BITS) & !(STRIDE - 1);
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(STRIDE);

/// A per-thread source of process-unique, never-reused, nonzero numbers,
/// kept as the install handle of each (`encode(Tag::Install, number)`), so
/// that install hands the next one out with no arithmetic and any other
/// kind's handle is one add away ([`rebase`]).
#[derive(Debug)]
pub(crate) struct NumberSource {
    /// The install handle of the next number.
    next: u64,
    /// The install handle of the first number past the block.
    end: u64,
}

/// How far the install handles of two consecutive numbers are.
pub(super) const HANDLE_STRIDE: u64 = STRIDE << TAG_BITS;

impl NumberSource {
    /// An empty source; it takes its first block on first use.
    pub const fn new() -> Self {
        NumberSource { next: 0, end: 0 }
    }

    /// An empty source that [`Self::is_owned`]: no number (its install
    /// handles 1 and 1: number 0, never handed out) until its first block.
    pub const fn new_owned() -> Self {
        NumberSource { next: 1, end: 1 }
    }

    /// Whether the source was made by [`Self::new_owned`] (a block's end is
    /// never 0 either): how a thread's context is told from a refusing
    /// stack.
    #[inline(always)]
    pub fn is_owned(&self) -> bool {
        self.end != 0
    }

    /// The handle of kind `tag` of the next unique number, if the current
    /// block has one (taken): never calls out (for fast paths that must
    /// not); `None` until [`Self::ensure`].
    #[inline(always)]
    pub fn try_next_handle(&mut self, tag: Tag) -> Option<u64> {
        self.has_next().then(|| {
            self.next += HANDLE_STRIDE;
            rebase(self.next - HANDLE_STRIDE, tag)
        })
    }

    /// The next unique number if the current block has one (tests).
    #[cfg(test)]
    pub fn try_next_number(&mut self) -> Option<u64> {
        self.try_next_handle(Tag::Install).map(|h| h >> TAG_BITS)
    }

    /// The install handle of the next number, without taking it (once
    /// [`Self::has_next`] said there is one).
    #[inline(always)]
    pub fn peek_after_check(&self) -> u64 {
        debug_assert!(self.has_next());
        self.next
    }

    /// Takes the number whose install handle [`Self::peek_after_check`]
    /// answered.
    #[inline(always)]
    pub fn take_peeked(&mut self, install: u64) {
        debug_assert_eq!(install, self.next);
        self.next = install + HANDLE_STRIDE;
    }

    /// Whether [`Self::try_next_handle`] would succeed.
    #[inline(always)]
    pub fn has_next(&self) -> bool {
        self.next != self.end
    }

    /// Makes sure the next call to [`Self::try_next_handle`] succeeds;
    /// `Exhausted`, nothing changed, once the process used every number.
    #[inline]
    pub fn ensure(&mut self) -> Result<()> {
        if self.has_next() {
            Ok(())
        } else {
            self.refill(&NEXT_BLOCK, LIMIT)
        }
    }

    /// Takes the next block of `next_block`, a counter of numbers that
    /// never passes `limit`. 2^61 numbers at 10^9 a second last 73 years of
    /// one process doing nothing else, but a number is never reused: at the
    /// limit the counter stays put and the caller is refused. (`limit` and
    /// the counter are multiples of `STRIDE`.)
    #[cold]
    fn refill(&mut self, next_block: &AtomicU64, limit: u64) -> Result<()> {
        let start = next_block
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |start| {
                start.checked_add(BLOCK).filter(|end| *end <= limit)
            })
            .map_err(|start| {
                Error::Exhausted(detail!(
                    "entry and pause numbers are used up ({start} handed out); \
                     numbers are never reused"
                ))
            })?;
        // Below LIMIT, so their install handles fit (LIMIT << TAG_BITS does).
        self.next = encode(Tag::Install, start);
        self.end = encode(Tag::Install, start + BLOCK);
        Ok(())
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

    const KINDS: [Tag; 4] = [Tag::Install, Tag::NoopInstall, Tag::Borrow, Tag::Pause];

    /// A handle with its kind bits rewritten (to any of the 8 patterns)
    /// decodes as no handle of any other kind.
    #[test]
    fn rewritten_kind_bits_name_nothing() {
        for number in [STRIDE, 40, LIMIT - STRIDE] {
            for kind in KINDS {
                let raw = encode(kind, number);
                assert_eq!(decode(raw, kind), Some(number));
                for bits in 0..8 {
                    let forged = (raw & !TAG_MASK) | bits;
                    for other in KINDS.iter().filter(|k| **k != kind) {
                        assert_eq!(decode(forged, *other), None, "{kind:?} as {other:?}");
                    }
                }
            }
        }
    }

    /// Every kind's handle follows from the install handle with one add,
    /// up to the largest number.
    #[test]
    fn rebase_is_encode() {
        for number in [STRIDE, 40, 1 << 40, LIMIT - STRIDE] {
            for kind in KINDS {
                let install = encode(Tag::Install, number);
                assert_eq!(rebase(install, kind), encode(kind, number), "{kind:?}");
            }
        }
    }

    #[test]
    fn roundtrip_and_tag_check() {
        let raw = encode(Tag::Borrow, 40);
        assert_eq!(decode(raw, Tag::Borrow), Some(40));
        assert_eq!(decode(raw, Tag::Install), None);
        assert_eq!(decode(0, Tag::Install), None);
        assert_eq!(
            decode(Tag::Pause as u64, Tag::Pause),
            None,
            "number 0 is never valid"
        );
    }

    fn next_number(source: &mut NumberSource) -> u64 {
        source.ensure().unwrap();
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

    /// At the limit the counter is refused and stays put; the numbers of
    /// the last block are all handed out first. Same arithmetic as the
    /// process's counter, with a limit reached in two blocks.
    #[test]
    fn numbers_are_refused_at_the_limit_never_wrapped() {
        let counter = AtomicU64::new(STRIDE);
        let limit = STRIDE + 2 * BLOCK;
        let mut source = NumberSource::new();
        let mut last = 0;
        for _ in 0..2 {
            source.refill(&counter, limit).unwrap();
            while let Some(n) = source.try_next_number() {
                assert!(n > last && n < limit);
                last = n;
            }
        }
        assert_eq!(last, limit - STRIDE);
        let err = source.refill(&counter, limit).unwrap_err();
        assert!(matches!(err, Error::Exhausted(_)), "{err:?}");
        assert_eq!(counter.load(Ordering::Relaxed), limit, "nothing changed");
        assert!(source.try_next_number().is_none());
        let near_wrap = AtomicU64::new(u64::MAX - 3);
        assert!(source.refill(&near_wrap, u64::MAX).is_err());
        assert_eq!(near_wrap.load(Ordering::Relaxed), u64::MAX - 3);
    }
}
